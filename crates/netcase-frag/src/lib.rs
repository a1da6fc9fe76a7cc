//! IPv4 and IPv6 fragment reassembly for netcase: one streaming pass, bounded memory.
//!
//! A [`Reassembler`] is offered every decoded packet that is a fragment, in file order
//! ([`Reassembler::push`]). When a fragment completes its datagram, the whole datagram is
//! returned as the bytes of an unfragmented IPv4 or IPv6 packet, which
//! `netcase_wire::decode(LinkType::Raw, bytes)` decodes down to the transport layer. At the end
//! of the pass, [`Reassembler::finish`] reports what never completed, and why.
//!
//! # Keys
//! IPv4 datagrams are keyed by (source, destination, protocol, identification) as RFC 791
//! says; IPv6 datagrams by (source, destination, 32-bit identification) as RFC 8200 says (the
//! protocol is not part of the IPv6 key: the decoder reports the upper-layer protocol of the
//! first fragment after any extension headers that follow the Fragment header, which may
//! differ from the Next Header of the later fragments).
//!
//! # Policies
//! * **Overlaps** keep the *first* bytes received (first-wins, as BSD and Windows stacks and
//!   Zeek do). Bytes of a later fragment only fill holes. An overlap whose bytes agree with
//!   what is held counts as [`FragStats::overlap_same`] (or [`FragStats::duplicates`] when the
//!   whole fragment was already held, e.g. the capture saw it twice); one whose bytes differ
//!   counts as [`FragStats::overlap_inconsistent`]. Note that Linux discards the whole datagram
//!   on any overlap that is not an exact duplicate (and RFC 5722 requires that for IPv6), so an
//!   inconsistent overlap means the receiver may have seen nothing, or other bytes.
//! * **Non-last fragments whose length is not a multiple of 8** are trimmed to a multiple of 8,
//!   as Linux does, and counted ([`FragStats::misaligned`]).
//! * **Length disagreements** (two last fragments with different ends, data beyond the end a
//!   last fragment gave) abandon the datagram, as Linux does
//!   ([`IncompleteReason::InconsistentLength`]).
//! * **Too large**: a datagram whose payload would end beyond what the IP length fields can
//!   carry (IPv4: header + payload > 65535; IPv6: payload > 65535), or whose rebuilt packet
//!   would exceed [`Config::max_datagram_len`], is abandoned ([`IncompleteReason::TooLarge`]).
//! * **Snap length**: a fragment whose captured bytes are fewer than its IP length says can
//!   never complete its datagram ([`IncompleteReason::NotFullyCaptured`]).
//! * An abandoned datagram is kept as a tombstone without bytes until it times out, so that
//!   its later fragments are attributed to it rather than starting a new datagram.
//! * **Timeouts**: a datagram not complete within [`Config::timeout_ns`] of its first fragment
//!   is dropped. Timeouts are checked whenever a fragment arrives, oldest datagram first.
//!   Timestamps that go backwards never make a datagram expire early (differences saturate).
//! * **Memory bound**: when holding a fragment's bytes would exceed [`Config::max_bytes`], or
//!   a new datagram would exceed [`Config::max_datagrams`], the oldest datagrams in progress
//!   are dropped ([`IncompleteReason::DroppedAtBound`]). Bytes held are counted as the extent
//!   of each datagram's buffer (its highest fragment end), which is what is allocated.
//!
//! # Rebuilt headers
//! The IPv4 header is rebuilt from the decoded facts of the first fragment (offset 0):
//! version 4, IHL 5, TOS 0, total length, identification, flags and offset cleared, TTL,
//! protocol, checksum, addresses. IP options are **not** kept: the decoded packet does not
//! carry the option bytes. The IPv6 header is the fixed header with the payload length set,
//! Next Header = the upper-layer protocol and the first fragment's hop limit; extension headers
//! (before and including the Fragment header) are dropped, traffic class and flow label are 0.
//!
//! # Limitations
//! * The Don't-Fragment bit is not counted: `netcase_wire::IpInfo` does not expose it.
//! * An IPv6 first fragment with extension headers *after* the Fragment header (legal, rare)
//!   cannot be reassembled: the decoder's `ip_payload` skips them, leaving a hole at offset 0.
//! * Fragmented IP-in-IP: the decoder reports the inner header of the first fragment, so such
//!   datagrams are not offered whole.
//!
//! # Cost
//! Per fragment: a hash lookup or two, a walk over the (few) byte ranges held for its
//! datagram and a copy of its bytes. Buffers of finished datagrams are reused, so nothing is
//! allocated once the buffers are warm. Nothing panics on untrusted bytes.

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::unwrap_used))]

use netcase_wire::Packet;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::IpAddr;

/// Room kept in front of every datagram buffer for the rebuilt IP header (IPv6: 40 bytes).
const HDR_ROOM: usize = 40;
/// How many released buffers are kept for reuse.
const FREE_LIST_MAX: usize = 16;
/// Non-last fragments smaller than this are counted as tiny (Zeek: excessively_small_fragment).
pub const TINY_FRAGMENT: u32 = 64;
/// How many incomplete datagrams [`FragReport::incomplete`] lists (all are counted).
pub const MAX_INCOMPLETE_KEPT: usize = 64;

/// Limits of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// A datagram not complete within this many nanoseconds of its first fragment is dropped.
    /// Default 30 s, like Linux `ipfrag_time`.
    pub timeout_ns: i64,
    /// The most payload bytes held by all datagrams in progress. Default 4 MiB.
    pub max_bytes: usize,
    /// The most datagrams in progress (including abandoned ones kept as tombstones).
    /// Default 1024.
    pub max_datagrams: usize,
    /// The largest rebuilt packet (header + payload). Default 65 535 + 40 (an IPv6 header and a
    /// full payload length).
    pub max_datagram_len: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { timeout_ns: 30_000_000_000, max_bytes: 4 << 20, max_datagrams: 1024, max_datagram_len: 65_535 + 40 }
    }
}

/// A datagram made whole again. Borrows the reassembler until its next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reassembled<'a> {
    /// The complete, unfragmented IPv4 or IPv6 packet (header rebuilt, see the crate docs).
    pub bytes: &'a [u8],
    /// 4 or 6.
    pub version: u8,
    /// Frame number of the datagram's first fragment in capture order.
    pub first_frame: u64,
    /// Frame number of its last fragment in capture order (the one that completed it).
    pub last_frame: u64,
    /// Timestamp of the first fragment, ns since the epoch.
    pub first_ts_ns: i64,
    /// Timestamp of the last fragment, ns since the epoch.
    pub last_ts_ns: i64,
    /// How many fragments were offered for it (duplicates included).
    pub fragments: u32,
}

/// Counters of a reassembly pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FragStats {
    /// Fragments offered (IPv4 and IPv6).
    pub fragments: u64,
    /// IPv4 fragments offered.
    pub fragments_v4: u64,
    /// IPv6 fragments offered (atomic fragments included).
    pub fragments_v6: u64,
    /// Packets offered that were not fragments (no IP header or no fragment info); ignored.
    pub not_fragments: u64,
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// IPv4 datagrams reassembled.
    pub reassembled_v4: u64,
    /// IPv6 datagrams reassembled.
    pub reassembled_v6: u64,
    /// Fragments whose bytes were all already held, identical (a duplicated frame).
    pub duplicates: u64,
    /// Fragments that partly overlapped held bytes, all overlapping bytes identical
    /// (Zeek: fragment_overlap).
    pub overlap_same: u64,
    /// Fragments that overlapped held bytes with different bytes; the first bytes are kept
    /// (Zeek: fragment_inconsistency).
    pub overlap_inconsistent: u64,
    /// Non-last fragments shorter than [`TINY_FRAGMENT`] bytes (Zeek: excessively_small_fragment).
    pub tiny: u64,
    /// Non-last fragments whose length is not a multiple of 8 (trimmed, as Linux does).
    pub misaligned: u64,
    /// Fragments captured short: fewer bytes captured than the IP length says (snap length;
    /// Zeek: incompletely_captured_fragment). Their datagram cannot be completed.
    pub incompletely_captured: u64,
    /// Fragments of a datagram already abandoned (too large, not fully captured, inconsistent,
    /// dropped at the bound): counted, bytes not held.
    pub ignored: u64,
    /// Datagrams abandoned because their lengths disagreed (two different ends, or data beyond
    /// the end a last fragment gave).
    pub inconsistent_len: u64,
    /// Datagrams abandoned as too large (Zeek: excessively_large_fragment).
    pub too_large: u64,
    /// Datagrams dropped because they did not complete within the timeout.
    pub timed_out: u64,
    /// Datagrams dropped to keep within [`Config::max_bytes`] / [`Config::max_datagrams`].
    pub dropped_at_bound: u64,
    /// Datagrams still in progress at the end of the pass.
    pub incomplete_at_end: u64,
    /// Payload bytes held now.
    pub bytes_held: usize,
    /// The most payload bytes held at once.
    pub peak_bytes: usize,
    /// The most datagrams in progress at once.
    pub peak_datagrams: usize,
}

/// Why a datagram was never completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IncompleteReason {
    /// Not complete within the timeout of its first fragment.
    Timeout,
    /// Still in progress when the capture ended.
    EndOfCapture,
    /// Dropped to stay within the memory bound.
    DroppedAtBound,
    /// A fragment was captured short (snap length).
    NotFullyCaptured,
    /// It would be larger than an IP packet can be (or than [`Config::max_datagram_len`]).
    TooLarge,
    /// Its fragments disagreed on its total length.
    InconsistentLength,
}

impl IncompleteReason {
    /// A short name: `timeout`, `end of capture`, `dropped at bound`, `not fully captured`,
    /// `too large`, `inconsistent length`.
    pub fn as_str(self) -> &'static str {
        match self {
            IncompleteReason::Timeout => "timeout",
            IncompleteReason::EndOfCapture => "end of capture",
            IncompleteReason::DroppedAtBound => "dropped at bound",
            IncompleteReason::NotFullyCaptured => "not fully captured",
            IncompleteReason::TooLarge => "too large",
            IncompleteReason::InconsistentLength => "inconsistent length",
        }
    }
}

impl std::fmt::Display for IncompleteReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A datagram that was never completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incomplete {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Protocol (IPv6: the upper-layer protocol, from the first fragment when it was seen).
    pub proto: u8,
    /// Identification (IPv4: 16 bits, IPv6: 32 bits).
    pub id: u32,
    /// 4 or 6.
    pub version: u8,
    /// Frame number of its first fragment in capture order.
    pub first_frame: u64,
    /// Frame number of its last fragment in capture order.
    pub last_frame: u64,
    /// Timestamp of the first fragment, ns.
    pub first_ts_ns: i64,
    /// Timestamp of the last fragment, ns.
    pub last_ts_ns: i64,
    /// Fragments offered for it.
    pub fragments: u32,
    /// Distinct payload bytes received (before it was abandoned, if it was).
    pub bytes_held: u32,
    /// Its payload length, when a last fragment (more-fragments clear) was seen.
    pub total_len: Option<u32>,
    /// Whether the first fragment (offset 0) was seen.
    pub first_seen: bool,
    /// (source port, destination port) for UDP and TCP when the first fragment was seen.
    pub ports: Option<(u16, u16)>,
    /// Why it is incomplete.
    pub reason: IncompleteReason,
}

/// The outcome of a reassembly pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FragReport {
    /// The counters.
    pub stats: FragStats,
    /// The first [`MAX_INCOMPLETE_KEPT`] incomplete datagrams, in the order they were given up.
    pub incomplete: Vec<Incomplete>,
    /// How many datagrams were incomplete in all (the list may be shorter).
    pub incomplete_total: u64,
}

/// A datagram's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    /// IPv4: the protocol; IPv6: 0.
    proto: u8,
    v6: bool,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u128(u128::from_ne_bytes(self.src));
        h.write_u128(u128::from_ne_bytes(self.dst));
        h.write_u64(u64::from(self.id) | u64::from(self.proto) << 32 | u64::from(self.v6) << 40);
    }
}

/// A small multiplicative hasher (as rustc's FxHash): the map holds few keys, bounded in number.
#[derive(Default)]
struct FxHasher(u64);

const FX_K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(FX_K);
    }
    #[inline]
    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

fn addr_bytes(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            [a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Reusable storage of a datagram: its buffer (header room + payload) and received ranges.
#[derive(Default)]
struct Bufs {
    data: Vec<u8>,
    ranges: Vec<(u32, u32)>,
}

/// A datagram in progress (or abandoned, kept as a tombstone).
struct Slot {
    gen: u64,
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
    ttl: u8,
    first_frame: u64,
    last_frame: u64,
    first_ts: i64,
    last_ts: i64,
    fragments: u32,
    /// Distinct payload bytes received.
    received: u32,
    /// Payload length, from a last fragment.
    total: Option<u32>,
    /// The highest end of any fragment received.
    max_end: u32,
    first_seen: bool,
    ports: Option<(u16, u16)>,
    dead: Option<IncompleteReason>,
    bufs: Bufs,
}

impl Slot {
    /// Payload bytes held (the extent of the buffer).
    fn held(&self) -> usize {
        self.bufs.data.len().saturating_sub(HDR_ROOM)
    }
}

/// The streaming reassembler. See the crate docs.
pub struct Reassembler {
    cfg: Config,
    map: HashMap<Key, Slot, BuildHasherDefault<FxHasher>>,
    /// Datagrams in creation order (key, generation); entries whose generation no longer
    /// matches the map are stale and skipped.
    order: VecDeque<(Key, u64)>,
    next_gen: u64,
    free: Vec<Bufs>,
    /// The buffer of the last datagram returned (lent out until the next call).
    done: Option<Bufs>,
    stats: FragStats,
    incomplete: Vec<Incomplete>,
    incomplete_total: u64,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(Config::default())
    }
}

impl Reassembler {
    /// A reassembler with the given limits (`max_datagrams` 0 is taken as 1).
    pub fn new(mut cfg: Config) -> Self {
        cfg.max_datagrams = cfg.max_datagrams.max(1);
        Reassembler {
            cfg,
            map: HashMap::default(),
            order: VecDeque::new(),
            next_gen: 0,
            free: Vec::new(),
            done: None,
            stats: FragStats::default(),
            incomplete: Vec::new(),
            incomplete_total: 0,
        }
    }

    /// The limits in use.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The counters so far.
    pub fn stats(&self) -> &FragStats {
        &self.stats
    }

    /// Datagrams in progress (including abandoned ones kept until they time out).
    pub fn in_progress(&self) -> usize {
        self.map.len()
    }

    /// Offers a decoded packet that is a fragment (`pkt.ip` has `fragment: Some(..)`; anything
    /// else is counted in [`FragStats::not_fragments`] and ignored). `frame` is its frame number
    /// and `ts_ns` its timestamp. Returns the whole datagram when this fragment completes it:
    /// the bytes of an unfragmented IPv4 or IPv6 packet that
    /// `netcase_wire::decode(LinkType::Raw, ..)` decodes, with the frame numbers of its first
    /// and last fragment and the fragment count.
    pub fn push(&mut self, frame: u64, ts_ns: i64, pkt: &Packet<'_>) -> Option<Reassembled<'_>> {
        if let Some(b) = self.done.take() {
            self.release(b);
        }
        let (ip, frag) = match pkt.ip {
            Some(ip) => match ip.fragment {
                Some(f) => (ip, f),
                None => {
                    self.stats.not_fragments += 1;
                    return None;
                }
            },
            None => {
                self.stats.not_fragments += 1;
                return None;
            }
        };
        let v6 = matches!(ip.src, IpAddr::V6(_));
        self.stats.fragments += 1;
        if v6 {
            self.stats.fragments_v6 += 1;
        } else {
            self.stats.fragments_v4 += 1;
        }
        self.expire(ts_ns);

        let key = Key {
            src: addr_bytes(ip.src),
            dst: addr_bytes(ip.dst),
            id: frag.id,
            proto: if v6 { 0 } else { ip.proto },
            v6,
        };
        let off = u64::from(frag.offset);
        let mut len = u64::from(ip.payload_len);
        let captured_ok = pkt.ip_payload.len() as u64 >= len;
        if frag.more {
            if len < u64::from(TINY_FRAGMENT) {
                self.stats.tiny += 1;
            }
            if len % 8 != 0 {
                self.stats.misaligned += 1;
                len &= !7;
            }
        }
        let end = off + len;
        let hdr_rebuilt: u64 = if v6 { 40 } else { 20 };
        let too_large = if v6 { end > 65_535 } else { end + u64::from(ip.header_len.max(20)) > 65_535 }
            || end + hdr_rebuilt > self.cfg.max_datagram_len as u64;

        // An existing datagram past its timeout (not caught by `expire` when it was not the
        // oldest) is dropped before this fragment starts a new one.
        if let Some(s) = self.map.get(&key) {
            if ts_ns.saturating_sub(s.first_ts) > self.cfg.timeout_ns {
                self.remove(&key, IncompleteReason::Timeout);
            }
        }
        if !self.map.contains_key(&key) {
            while self.map.len() >= self.cfg.max_datagrams {
                if !self.evict_oldest(None) {
                    break;
                }
            }
            let gen = self.next_gen;
            self.next_gen += 1;
            let bufs = self.free.pop().unwrap_or_default();
            self.map.insert(
                key,
                Slot {
                    gen,
                    src: ip.src,
                    dst: ip.dst,
                    id: frag.id,
                    proto: ip.proto,
                    ttl: ip.ttl,
                    first_frame: frame,
                    last_frame: frame,
                    first_ts: ts_ns,
                    last_ts: ts_ns,
                    fragments: 0,
                    received: 0,
                    total: None,
                    max_end: 0,
                    first_seen: false,
                    ports: None,
                    dead: None,
                    bufs,
                },
            );
            self.order.push_back((key, gen));
            self.compact_order();
            self.stats.peak_datagrams = self.stats.peak_datagrams.max(self.map.len());
        }

        // Book-keeping, then the checks that abandon the datagram.
        let verdict = {
            let slot = self.map.get_mut(&key)?;
            slot.fragments = slot.fragments.saturating_add(1);
            slot.last_frame = frame;
            slot.last_ts = ts_ns;
            if frag.offset == 0 {
                slot.first_seen = true;
                slot.proto = ip.proto;
                slot.ttl = ip.ttl;
                if matches!(ip.proto, 6 | 17) {
                    if let Some(&[a, b, c, d]) = pkt.ip_payload.get(..4) {
                        slot.ports = Some((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])));
                    }
                }
            }
            if slot.dead.is_some() {
                Verdict::Ignore
            } else if too_large {
                Verdict::Abandon(IncompleteReason::TooLarge)
            } else if !captured_ok {
                Verdict::Abandon(IncompleteReason::NotFullyCaptured)
            } else {
                // end <= 65535 from here on.
                let end32 = end as u32;
                let bad = if frag.more {
                    slot.total.is_some_and(|t| end32 > t)
                } else {
                    slot.total.is_some_and(|t| t != end32) || slot.max_end > end32
                };
                if bad {
                    Verdict::Abandon(IncompleteReason::InconsistentLength)
                } else {
                    if !frag.more {
                        slot.total = Some(end32);
                    }
                    slot.max_end = slot.max_end.max(end32);
                    Verdict::Keep
                }
            }
        };
        match verdict {
            Verdict::Ignore => {
                self.stats.ignored += 1;
                return None;
            }
            Verdict::Keep => {}
            Verdict::Abandon(reason) => {
                match reason {
                    IncompleteReason::TooLarge => self.stats.too_large += 1,
                    IncompleteReason::NotFullyCaptured => self.stats.incompletely_captured += 1,
                    IncompleteReason::InconsistentLength => self.stats.inconsistent_len += 1,
                    _ => {}
                }
                self.kill(&key, reason);
                return None;
            }
        }

        // Memory bound: make room for the buffer growth this fragment needs.
        let end = end as usize;
        let growth = {
            let slot = self.map.get(&key)?;
            end.saturating_sub(slot.held())
        };
        while self.stats.bytes_held.saturating_add(growth) > self.cfg.max_bytes {
            if !self.evict_oldest(Some(&key)) {
                break;
            }
        }
        if self.stats.bytes_held.saturating_add(growth) > self.cfg.max_bytes {
            // This datagram alone does not fit.
            self.stats.dropped_at_bound += 1;
            self.kill(&key, IncompleteReason::DroppedAtBound);
            return None;
        }

        // Store the bytes.
        let slot = self.map.get_mut(&key)?;
        if growth > 0 {
            slot.bufs.data.resize(HDR_ROOM + end, 0);
            self.stats.bytes_held += growth;
            self.stats.peak_bytes = self.stats.peak_bytes.max(self.stats.bytes_held);
        }
        let off = off as usize;
        let data = pkt.ip_payload.get(..end - off).unwrap_or(&[]);
        match insert(&mut slot.bufs, off, data) {
            Overlap::None => {}
            Overlap::Duplicate => self.stats.duplicates += 1,
            Overlap::Same => self.stats.overlap_same += 1,
            Overlap::Inconsistent => self.stats.overlap_inconsistent += 1,
        }
        slot.received = slot.bufs.ranges.iter().map(|&(a, b)| b - a).sum();
        let total = slot.total?;
        let complete = match slot.bufs.ranges.as_slice() {
            [] => total == 0,
            [(0, e)] => *e == total,
            _ => false,
        };
        if !complete {
            return None;
        }
        let slot = self.map.remove(&key)?;
        self.stats.bytes_held = self.stats.bytes_held.saturating_sub(slot.held());
        self.stats.reassembled += 1;
        if v6 {
            self.stats.reassembled_v6 += 1;
        } else {
            self.stats.reassembled_v4 += 1;
        }
        let mut slot = slot;
        let mut bufs = std::mem::take(&mut slot.bufs);
        let total = total as usize;
        bufs.data.resize(HDR_ROOM + total, 0);
        let start = write_header(&mut bufs.data, &slot, v6, total)?;
        let done = self.done.insert(bufs);
        Some(Reassembled {
            bytes: done.data.get(start..).unwrap_or(&[]),
            version: if v6 { 6 } else { 4 },
            first_frame: slot.first_frame,
            last_frame: slot.last_frame,
            first_ts_ns: slot.first_ts,
            last_ts_ns: slot.last_ts,
            fragments: slot.fragments,
        })
    }

    /// Ends the pass: everything still in progress is reported as incomplete.
    pub fn finish(mut self) -> FragReport {
        while let Some((key, gen)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|s| s.gen == gen) {
                self.remove(&key, IncompleteReason::EndOfCapture);
            }
        }
        // Anything left (cannot happen: every slot is in `order`).
        let keys: Vec<Key> = self.map.keys().copied().collect();
        for k in keys {
            self.remove(&k, IncompleteReason::EndOfCapture);
        }
        FragReport { stats: self.stats, incomplete: self.incomplete, incomplete_total: self.incomplete_total }
    }

    /// Drops datagrams older than the timeout, oldest first.
    fn expire(&mut self, now: i64) {
        while let Some(&(key, gen)) = self.order.front() {
            match self.map.get(&key) {
                Some(s) if s.gen == gen => {
                    if now.saturating_sub(s.first_ts) > self.cfg.timeout_ns {
                        self.order.pop_front();
                        self.remove(&key, IncompleteReason::Timeout);
                    } else {
                        break;
                    }
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
    }

    /// Drops the oldest datagram other than `keep`; false when there is none.
    fn evict_oldest(&mut self, keep: Option<&Key>) -> bool {
        let mut skipped = None;
        let mut evicted = false;
        while let Some((key, gen)) = self.order.pop_front() {
            let live = self.map.get(&key).is_some_and(|s| s.gen == gen);
            if !live {
                continue;
            }
            if keep == Some(&key) {
                skipped = Some((key, gen));
                continue;
            }
            self.remove(&key, IncompleteReason::DroppedAtBound);
            evicted = true;
            break;
        }
        if let Some(e) = skipped {
            self.order.push_front(e);
        }
        evicted
    }

    /// Keeps the order queue from growing with stale entries.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order.retain(|(k, g)| map.get(k).is_some_and(|s| s.gen == *g));
        }
    }

    /// Abandons a datagram: frees its bytes, keeps a tombstone with the reason.
    fn kill(&mut self, key: &Key, reason: IncompleteReason) {
        let Some(slot) = self.map.get_mut(key) else { return };
        slot.dead = Some(reason);
        let held = slot.held();
        let bufs = std::mem::take(&mut slot.bufs);
        self.stats.bytes_held = self.stats.bytes_held.saturating_sub(held);
        self.release(bufs);
    }

    /// Removes a datagram and reports it as incomplete (an abandoned one keeps its reason).
    fn remove(&mut self, key: &Key, reason: IncompleteReason) {
        let Some(slot) = self.map.remove(key) else { return };
        let reason = match slot.dead {
            Some(r) => r,
            None => {
                match reason {
                    IncompleteReason::Timeout => self.stats.timed_out += 1,
                    IncompleteReason::DroppedAtBound => self.stats.dropped_at_bound += 1,
                    IncompleteReason::EndOfCapture => self.stats.incomplete_at_end += 1,
                    _ => {}
                }
                reason
            }
        };
        self.stats.bytes_held = self.stats.bytes_held.saturating_sub(slot.held());
        self.incomplete_total += 1;
        if self.incomplete.len() < MAX_INCOMPLETE_KEPT {
            self.incomplete.push(Incomplete {
                src: slot.src,
                dst: slot.dst,
                proto: slot.proto,
                id: slot.id,
                version: if matches!(slot.src, IpAddr::V6(_)) { 6 } else { 4 },
                first_frame: slot.first_frame,
                last_frame: slot.last_frame,
                first_ts_ns: slot.first_ts,
                last_ts_ns: slot.last_ts,
                fragments: slot.fragments,
                bytes_held: slot.received,
                total_len: slot.total,
                first_seen: slot.first_seen,
                ports: slot.ports,
                reason,
            });
        }
        self.release(slot.bufs);
    }

    /// Returns buffers to the free list.
    fn release(&mut self, mut b: Bufs) {
        if self.free.len() < FREE_LIST_MAX && b.data.capacity() <= HDR_ROOM + self.cfg.max_datagram_len {
            b.data.clear();
            b.ranges.clear();
            self.free.push(b);
        }
    }
}

/// What to do with a fragment after the checks.
enum Verdict {
    /// Its datagram was abandoned already.
    Ignore,
    /// Store its bytes.
    Keep,
    /// Abandon its datagram.
    Abandon(IncompleteReason),
}

/// How a fragment's bytes met the bytes already held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overlap {
    None,
    Duplicate,
    Same,
    Inconsistent,
}

/// Copies `data` at payload offset `off` into the holes of `b` (first bytes win), merges its
/// range, and says how it overlapped. `b.data` already extends to `off + data.len()`.
fn insert(b: &mut Bufs, off: usize, data: &[u8]) -> Overlap {
    let (s, e) = (off as u32, (off + data.len()) as u32);
    if s == e {
        return Overlap::None;
    }
    let mut covered = 0u32;
    let mut differs = false;
    let mut pos = s;
    for &(a, z) in &b.ranges {
        if z <= s {
            continue;
        }
        if a >= e {
            break;
        }
        let (os, oe) = (a.max(s), z.min(e));
        covered += oe - os;
        let held = b.data.get(HDR_ROOM + os as usize..HDR_ROOM + oe as usize);
        let new = data.get((os - s) as usize..(oe - s) as usize);
        if held != new {
            differs = true;
        }
        // Fill the hole before this range.
        if a > pos {
            copy(&mut b.data, data, s, pos, a);
        }
        pos = pos.max(z);
    }
    if pos < e {
        copy(&mut b.data, data, s, pos, e);
    }
    // Merge [s, e) into the sorted, disjoint, non-adjacent ranges.
    let i = b.ranges.partition_point(|r| r.1 < s);
    let mut j = i;
    let (mut ns, mut ne) = (s, e);
    while let Some(&(a, z)) = b.ranges.get(j) {
        if a > e {
            break;
        }
        ns = ns.min(a);
        ne = ne.max(z);
        j += 1;
    }
    b.ranges.drain(i..j);
    b.ranges.insert(i, (ns, ne));
    match (covered, differs) {
        (0, _) => Overlap::None,
        (_, true) => Overlap::Inconsistent,
        (c, false) if c == e - s => Overlap::Duplicate,
        _ => Overlap::Same,
    }
}

/// Copies payload bytes [from, to) of a fragment starting at `s` into the buffer.
fn copy(buf: &mut [u8], data: &[u8], s: u32, from: u32, to: u32) {
    let dst = buf.get_mut(HDR_ROOM + from as usize..HDR_ROOM + to as usize);
    let src = data.get((from - s) as usize..(to - s) as usize);
    if let (Some(d), Some(x)) = (dst, src) {
        d.copy_from_slice(x);
    }
}

/// Writes the rebuilt IP header in front of the payload; returns where the packet starts.
fn write_header(buf: &mut [u8], slot: &Slot, v6: bool, total: usize) -> Option<usize> {
    let len = u16::try_from(if v6 { total } else { total + 20 }).ok()?;
    if v6 {
        let (fixed, addrs) = buf.get_mut(..40)?.split_at_mut(8);
        let [l0, l1] = len.to_be_bytes();
        fixed.copy_from_slice(&[0x60, 0, 0, 0, l0, l1, slot.proto, slot.ttl]);
        let (s, d) = addrs.split_at_mut(16);
        s.copy_from_slice(&addr_bytes(slot.src));
        d.copy_from_slice(&addr_bytes(slot.dst));
        Some(0)
    } else {
        let h = buf.get_mut(20..40)?;
        let [l0, l1] = len.to_be_bytes();
        let [i0, i1] = (slot.id as u16).to_be_bytes();
        let [s0, s1, s2, s3, ..] = addr_bytes(slot.src);
        let [d0, d1, d2, d3, ..] = addr_bytes(slot.dst);
        let (ttl, proto) = (slot.ttl, slot.proto);
        let zero_sum = [0x45, 0, l0, l1, i0, i1, 0, 0, ttl, proto, 0, 0, s0, s1, s2, s3, d0, d1, d2, d3];
        let [c0, c1] = ipv4_checksum(&zero_sum).to_be_bytes();
        h.copy_from_slice(&[0x45, 0, l0, l1, i0, i1, 0, 0, ttl, proto, c0, c1, s0, s1, s2, s3, d0, d1, d2, d3]);
        Some(20)
    }
}

/// The Internet checksum of an IPv4 header (checksum field zero).
fn ipv4_checksum(h: &[u8; 20]) -> u16 {
    !netcase_wire::checksum::fold(netcase_wire::checksum::ones_sum(0, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_ranges_merge_and_classify() {
        let mut b = Bufs { data: vec![0; HDR_ROOM + 40], ranges: Vec::new() };
        assert_eq!(insert(&mut b, 16, &[2; 8]), Overlap::None);
        assert_eq!(insert(&mut b, 0, &[1; 8]), Overlap::None);
        assert_eq!(b.ranges, vec![(0, 8), (16, 24)]);
        assert_eq!(insert(&mut b, 8, &[3; 8]), Overlap::None);
        assert_eq!(b.ranges, vec![(0, 24)]);
        assert_eq!(insert(&mut b, 8, &[3; 8]), Overlap::Duplicate);
        assert_eq!(insert(&mut b, 16, &[2, 2, 2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 4, 4]), Overlap::Same);
        assert_eq!(b.ranges, vec![(0, 32)]);
        assert_eq!(insert(&mut b, 28, &[9; 12]), Overlap::Inconsistent);
        assert_eq!(b.ranges, vec![(0, 40)]);
        // First bytes win.
        assert_eq!(&b.data[HDR_ROOM + 28..HDR_ROOM + 32], &[4; 4]);
        assert_eq!(&b.data[HDR_ROOM + 32..HDR_ROOM + 40], &[9; 8]);
    }

    #[test]
    fn checksum_of_known_header() {
        // Example header from RFC 1071 discussions (Wikipedia "IPv4 header checksum").
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00,
            0xc7,
        ];
        assert_eq!(ipv4_checksum(&h), 0xb861);
    }
}
