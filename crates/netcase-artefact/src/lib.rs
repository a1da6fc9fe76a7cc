//! Capture artefacts: what a capture shows that the network did not do.
//!
//! A capture is evidence with faults of its own. Frames captured two to four times (capture on
//! `any` with a bridge and veth pairs, a SPAN port mirroring both directions, merged
//! interfaces) look like retransmissions; timestamps that step back or jump (merged files,
//! several interfaces, clock steps) make durations meaningless; checksums computed by the NIC
//! after the capture point look wrong; minimum-size Ethernet frames whose IP length covers the
//! link padding look like data. This crate sees each of them in one streaming pass, in
//! bounded memory and without allocating per frame, so the analysis can correct for them and
//! the rules can say so.
//!
//! What it decides, and why:
//! - **Duplicates** ([`Dedup`]): a frame is a copy of an earlier one when its IP addresses, IP
//!   ID, length, transport header (ports, TCP seq/ack/flags/window/length, timestamps) and the
//!   first payload bytes match a frame seen shortly before (TTL and link headers left out, as
//!   Arkime does, so a copy seen on both sides of a router still matches). A real
//!   retransmission differs in the IPv4 ID (every stack that numbers its packets gives the
//!   retransmission a new ID), so an IPv4 match with a non-zero ID is *proof*. Where nothing
//!   tells a copy from a quick retransmission or a duplicate ACK (IPv6, an IPv4 ID of 0,
//!   non-IP frames), a match is merged only when the link layer proves a second capture point
//!   (another interface, VLAN, MAC pair or TTL) or the capture has already shown that it
//!   duplicates frames (proven copies are at least 10% of the frames that could prove it).
//!   `editcap -D` compares whole-frame MD5s of the last few frames and would merge a
//!   retransmission of identical bytes; Zeek and Wireshark keep copies and call them
//!   retransmissions.
//! - **Time** ([`TimeCheck`]): steps backwards and forward gaps of an hour or more, and the
//!   capture's duration without them.
//! - **Checksums** ([`Checksums`]): TCP/UDP checksums verified on a sample (every frame of the
//!   first 512, then one in 128), counted per source host: bad checksums on one host's own
//!   packets mean the capture was taken above a NIC that computes them (offload).
//! - **Padding** ([`strip_padding`]): a pure ACK in a minimum-size IPv4 packet (total length
//!   46, the least an Ethernet frame carries) whose "payload" is all zeros carries link padding
//!   inside its IP length, not data.

use netcase_wire::checksum::{fold, ones_sum};
use netcase_wire::{tcp_flags, Packet, Transport};
use std::net::IpAddr;

/// What the caller knows of a frame besides its decoded layers.
#[derive(Debug, Clone, Copy)]
pub struct FrameMeta {
    /// Frame number (1-based, the file's).
    pub number: u64,
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// pcapng interface id (0 for pcap).
    pub interface: u32,
}

/// How many recent frames the duplicate detector remembers (direct-mapped by hash).
const SLOTS: usize = 4096;
/// A copy proven by the IPv4 ID may arrive this long after the original.
pub const WINDOW_PROVEN_NS: i64 = 500_000_000;
/// A copy that only the link layer or the capture's pattern vouches for: this long.
pub const WINDOW_AMBIGUOUS_NS: i64 = 200_000_000;
/// Frames without a single copy after which the detector samples one IPv4 TCP/UDP packet in sixteen (a clean
/// capture then costs a sixteenth of the table lookups; the first copy found turns full checking on).
pub const CLEAN_FRAMES: u64 = 8_192;
/// How many of the latest frames are compared with every frame while sampling (copies from
/// `any` or a SPAN port come right after their original).
const RECENT: usize = 4;
/// Proven copies needed before unprovable matches are merged on the pattern alone.
const PATTERN_MIN_COPIES: u64 = 8;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    frame: u64,
    link: u64,
    iface: u32,
    vlan: u16,
    ttl: u8,
}

impl Slot {
    /// What is remembered of frame `m`: its number and where it was captured.
    #[inline]
    fn of(m: &FrameMeta, data: &[u8], pkt: &Packet<'_>) -> Slot {
        Slot {
            frame: m.number,
            link: link_word_fast(data, pkt),
            iface: m.interface,
            vlan: if pkt.link.vlan_count > 0 { pkt.link.vlans[0] | 0x8000 } else { 0 },
            ttl: pkt.ip.as_ref().map_or(0, |i| i.ttl),
        }
    }

    /// Why `now` repeats this frame: what differs between the two observations.
    fn cause(&self, now: &Slot) -> DupCause {
        if self.iface != now.iface {
            DupCause::TwoInterfaces
        } else if self.vlan != now.vlan {
            DupCause::TwoVlans
        } else if self.ttl != now.ttl {
            DupCause::RouterHop
        } else if self.link != now.link {
            DupCause::TwoSegments
        } else {
            DupCause::SameInterface
        }
    }
}

/// The part of a slot every frame reads: its key (0 = empty) and time. Kept apart from the rest
/// so the table read per frame is 64 KiB, not 192.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(16))]
struct Hot {
    key: u64,
    ts: i64,
}

/// Why a frame was seen twice, judged from what differs between the copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DupCause {
    /// Nothing differs: the same interface delivered it twice (capture on `any` with a bridge
    /// or veth pair, a SPAN session mirroring both directions of a port).
    SameInterface,
    /// Captured on two pcapng interfaces.
    TwoInterfaces,
    /// Seen on two VLANs (a trunk or SPAN copying both).
    TwoVlans,
    /// Seen before and after a router (TTL differs).
    RouterHop,
    /// Seen with two MAC pairs (two segments of a bridge).
    TwoSegments,
}

impl DupCause {
    /// All causes, in report order.
    pub const ALL: [DupCause; 5] = [
        DupCause::SameInterface,
        DupCause::TwoInterfaces,
        DupCause::TwoVlans,
        DupCause::RouterHop,
        DupCause::TwoSegments,
    ];
    /// A short phrase for reports.
    pub fn describe(self) -> &'static str {
        match self {
            DupCause::SameInterface => {
                "identical copies on one interface (capture on `any` with a bridge or veth pair, or a SPAN port mirroring both directions)"
            }
            DupCause::TwoInterfaces => "the same packet captured on two interfaces",
            DupCause::TwoVlans => "the same packet seen on two VLANs (a trunk or SPAN copying both)",
            DupCause::RouterHop => "the same packet seen before and after a router (TTL differs)",
            DupCause::TwoSegments => "the same packet seen with two MAC pairs (both sides of a bridge)",
        }
    }
    /// A stable snake_case id.
    pub fn id(self) -> &'static str {
        match self {
            DupCause::SameInterface => "same_interface",
            DupCause::TwoInterfaces => "two_interfaces",
            DupCause::TwoVlans => "two_vlans",
            DupCause::RouterHop => "router_hop",
            DupCause::TwoSegments => "two_segments",
        }
    }
    fn index(self) -> usize {
        match self {
            DupCause::SameInterface => 0,
            DupCause::TwoInterfaces => 1,
            DupCause::TwoVlans => 2,
            DupCause::RouterHop => 3,
            DupCause::TwoSegments => 4,
        }
    }
}

/// What the duplicate detector saw.
#[derive(Debug, Clone, Default)]
pub struct DupStats {
    /// Frames looked at.
    pub checked: u64,
    /// Frames that could prove a copy (IPv4 with a non-zero ID).
    pub provable: u64,
    /// Frames found to be copies (left out of the analysis).
    pub copies: u64,
    /// Of those, proven by the IPv4 ID.
    pub proven: u64,
    /// Matches that nothing proved to be copies, kept in the analysis (they may be copies,
    /// or quick retransmissions / duplicate ACKs that look the same).
    pub unproven_kept: u64,
    /// Copies by cause, in [`DupCause::ALL`] order.
    pub by_cause: [u64; 5],
    /// Copies of TCP segments.
    pub tcp_copies: u64,
    /// The first copies: (copy frame, original frame, delay ns).
    pub examples: Vec<(u64, u64, i64)>,
    /// The longest delay between an original and its copy, ns.
    pub max_delay_ns: i64,
}

impl DupStats {
    /// The most common cause, if there were copies.
    pub fn main_cause(&self) -> Option<DupCause> {
        if self.copies == 0 {
            return None;
        }
        DupCause::ALL.iter().copied().max_by_key(|c| (self.by_cause[c.index()], std::cmp::Reverse(c.index())))
    }
    /// Copies of `cause`.
    pub fn count(&self, cause: DupCause) -> u64 {
        self.by_cause[cause.index()]
    }
}

/// Finds frames captured more than once (see the crate docs for the rule).
pub struct Dedup {
    hot: Box<[Hot]>,
    slots: Box<[Slot]>,
    /// After [`CLEAN_FRAMES`] frames without a copy, one IPv4 TCP segment or UDP datagram in
    /// sixteen is looked up in the table; the others only among the last [`RECENT`] frames.
    sampling: bool,
    /// While sampling: the last [`RECENT`] unsampled frames' [`sample_key`]s, and their times
    /// and link facts.
    recent_keys: [u64; RECENT],
    recent: [(i64, Slot); RECENT],
    recent_pos: usize,
    stats: DupStats,
}

impl Default for Dedup {
    fn default() -> Self {
        Self::new()
    }
}

#[inline(always)]
fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(31)
}

/// Mixes the first `max` bytes of `b` into `h`, 16 at a time.
fn mix_bytes(mut h: u64, b: &[u8], max: usize) -> u64 {
    for c in b.get(..b.len().min(max)).unwrap_or(&[]).chunks(16) {
        let (x, y) = head_words(c);
        h = mix(mix(h, x), y);
    }
    h
}

/// Up to 16 bytes of `b` as two words (zero-filled).
#[inline]
fn head_words(b: &[u8]) -> (u64, u64) {
    let mut w = [0u8; 16];
    let n = b.len().min(16);
    if let (Some(dst), Some(src)) = (w.get_mut(..n), b.get(..n)) {
        dst.copy_from_slice(src);
    }
    let (x, y) = w.split_at(8);
    (u64::from_le_bytes(x.try_into().unwrap_or([0; 8])), u64::from_le_bytes(y.try_into().unwrap_or([0; 8])))
}

/// The key of an IPv4 TCP segment with an IP ID (which tells a resend from a copy): IP total
/// length and ID, addresses, ports, seq/ack, data
/// offset and flags, window (TTL and checksums left out). Computed from the raw bytes on the
/// common path and from the decoded fields otherwise, with the same result.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tcp4_key(
    total: u16,
    id: u16,
    src: u32,
    dst: u32,
    ports: u32,
    seq: u32,
    ack: u32,
    off_flags: u16,
    window: u16,
) -> u64 {
    let len_id = (u64::from(total) << 16) | u64::from(id);
    let addrs = (u64::from(src) << 32) | u64::from(dst);
    let ports_seq = (u64::from(ports) << 32) | u64::from(seq);
    let ack_flags = (u64::from(ack) << 32) | (u64::from(off_flags & 0xF1FF) << 16) | u64::from(window);
    let k = mix(mix(addrs ^ len_id.rotate_left(29), ports_seq), ack_flags);
    k ^ (k >> 29)
}

/// [`tcp4_key`] read straight from an Ethernet/IPv4 (no options, not a fragment)/TCP frame.
#[inline(always)]
fn fast_key(data: &[u8], pkt: &Packet<'_>) -> Option<(u64, bool)> {
    if pkt.link.dst_mac.is_none() || pkt.link.vlan_count != 0 || !matches!(pkt.transport, Some(Transport::Tcp(_))) {
        return None;
    }
    let h: &[u8; 50] = data.get(..50)?.try_into().ok()?;
    if h[12] != 0x08 || h[13] != 0x00 || h[14] != 0x45 || h[20] & 0x3F != 0 || h[21] != 0 {
        return None;
    }
    let be16 = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let be32 = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let id = be16(18);
    if id == 0 {
        // Without an ID, the TCP options (timestamps, SACK blocks) must tell segments apart.
        return None;
    }
    let k = tcp4_key(be16(16), id, be32(26), be32(30), be32(34), be32(38), be32(42), be16(46), be16(48));
    Some((k, id != 0))
}

#[inline(always)]
fn addr_fold(a: IpAddr) -> u64 {
    match a {
        IpAddr::V4(v) => u64::from(u32::from(v)),
        IpAddr::V6(v) => {
            let x = u128::from(v);
            (x as u64) ^ ((x >> 64) as u64).rotate_left(23) ^ 1
        }
    }
}

/// The key of a frame and whether it can prove a copy. A handful of multiplications: this
/// runs on every frame.
#[inline]
fn frame_key(data: &[u8], pkt: &Packet<'_>) -> (u64, bool) {
    let Some(ip) = pkt.ip.as_ref() else {
        // Non-IP: the frame's bytes (editcap's way), up to 128 of them.
        return (mix_bytes(mix(0x5EED, data.len() as u64), data, 128), false);
    };
    let provable = matches!(ip.src, IpAddr::V4(_)) && ip.id != 0;
    if let (IpAddr::V4(src), IpAddr::V4(dst), None, Some(Transport::Tcp(ref t)), true) =
        (ip.src, ip.dst, ip.fragment, pkt.transport, ip.id != 0)
    {
        let total = u32::from(ip.header_len) + ip.payload_len;
        let off_flags = (u16::from(t.header_len / 4) << 12) | t.flags;
        let ports = (u32::from(t.src_port) << 16) | u32::from(t.dst_port);
        let k = tcp4_key(total as u16, ip.id, u32::from(src), u32::from(dst), ports, t.seq, t.ack, off_flags, t.window);
        return (k, provable);
    }
    let addrs = addr_fold(ip.src) ^ addr_fold(ip.dst).rotate_left(32);
    let frag = ip.fragment.map_or(0, |f| (u64::from(f.offset) << 1) | u64::from(f.more) | (u64::from(f.id) << 17));
    let ipw = u64::from(ip.id) | (u64::from(ip.proto) << 16) | (u64::from(ip.payload_len) << 24) | frag.rotate_left(48);
    let mut h = mix(addrs, ipw);
    match pkt.transport {
        Some(Transport::Tcp(ref t)) => {
            // seq/ack/flags/window/length and the timestamps tell segments apart; the payload
            // adds nothing a real copy would not share.
            let ports = u64::from(t.src_port)
                | (u64::from(t.dst_port) << 16)
                | (u64::from(t.flags) << 32)
                | (u64::from(t.window) << 48);
            let sa = u64::from(t.seq) | (u64::from(t.ack) << 32);
            let ts = t.options.timestamp.map_or(0, |(a, b)| u64::from(a) | (u64::from(b) << 32));
            let sack = if t.options.sack_count > 0 {
                let (l, r) = t.options.sack[0];
                u64::from(l) ^ (u64::from(r) << 32) ^ u64::from(t.options.sack_count)
            } else {
                0
            };
            h = mix(h ^ ports, sa ^ u64::from(t.len).rotate_left(17));
            h = mix(h, ts ^ sack.rotate_left(7));
        }
        Some(Transport::Udp(ref u)) => {
            h = mix(h, u64::from(u.src_port) | (u64::from(u.dst_port) << 16) | (u64::from(u.length) << 32));
            let (a, b) = head_words(u.payload);
            h = mix(mix(h, a), b);
            let tail = u.payload.len().saturating_sub(16);
            let (c, d) = head_words(u.payload.get(tail..).unwrap_or(&[]));
            h = mix(mix(h, c), d);
        }
        _ => h = mix_bytes(h, pkt.ip_payload, 64),
    }
    (h ^ (h >> 29), provable)
}

/// [`link_word`] from the frame's first 12 bytes when they are Ethernet addresses (a copy
/// always comes the same way, so the two forms never meet).
#[inline(always)]
fn link_word_fast(data: &[u8], pkt: &Packet<'_>) -> u64 {
    if pkt.link.dst_mac.is_some() {
        if let Some(b) = data.get(..12) {
            let (x, y) = b.split_at(8);
            let x = u64::from_le_bytes(x.try_into().unwrap_or([0; 8]));
            let y = u64::from(u32::from_le_bytes(y.try_into().unwrap_or([0; 4])));
            return x ^ y.rotate_left(37);
        }
    }
    link_word(pkt)
}

fn link_word(pkt: &Packet<'_>) -> u64 {
    let m = |x: Option<[u8; 6]>| x.map_or(0, |b| u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]]));
    m(pkt.link.src_mac) ^ m(pkt.link.dst_mac).rotate_left(17)
}

impl Dedup {
    /// An empty detector.
    pub fn new() -> Self {
        Dedup {
            hot: vec![Hot::default(); SLOTS].into_boxed_slice(),
            slots: vec![Slot::default(); SLOTS].into_boxed_slice(),
            sampling: false,
            recent_keys: [0; RECENT],
            recent: [(0, Slot::default()); RECENT],
            recent_pos: 0,
            stats: DupStats::default(),
        }
    }

    /// What was seen so far.
    pub fn stats(&self) -> &DupStats {
        &self.stats
    }

    /// `Some(original frame)` when this frame is a copy of an earlier one and should be left
    /// out of the analysis; `None` otherwise (the frame is remembered).
    ///
    /// After a long clean stretch the detector samples: an IPv4 TCP segment with an ID is
    /// looked up in the table only when its ID and transport header — which every copy shares —
    /// falls in one sixteenth of the key space, so a duplicating capture still shows within a few
    /// copies, and then every frame is checked again. The others are compared with the last
    /// [`RECENT`] frames only (where the copies of a capture on `any` or of a SPAN port land).
    #[inline(always)]
    pub fn check(&mut self, m: &FrameMeta, data: &[u8], pkt: &Packet<'_>) -> Option<u64> {
        self.stats.checked += 1;
        if self.sampling {
            match sample_key(pkt) {
                Some(k) if k >> 60 != 0 => return self.check_recent(m, k, data, pkt),
                Some(_) => {}
                // Frames that cannot prove a copy by themselves (no IPv4 ID, not TCP/UDP):
                // one key in sixteen too, chosen by the frame's own key.
                None => return self.check_other(m, data, pkt),
            }
        } else if self.stats.copies == 0 && self.stats.checked >= CLEAN_FRAMES {
            self.sampling = true;
        }
        let (key, provable) = fast_key(data, pkt).unwrap_or_else(|| frame_key(data, pkt));
        self.check_table(m, data, pkt, key, provable)
    }

    /// While sampling, a frame without a [`sample_key`]: looked up when its key is sampled.
    #[inline(never)]
    fn check_other(&mut self, m: &FrameMeta, data: &[u8], pkt: &Packet<'_>) -> Option<u64> {
        let (key, provable) = frame_key(data, pkt);
        if key >> 60 != 0 {
            if provable {
                self.stats.provable += 1;
            }
            return None;
        }
        self.check_table(m, data, pkt, key, provable)
    }

    /// The frame against the table of recent frames' keys (see [`check`](Self::check)).
    #[inline(never)]
    fn check_table(&mut self, m: &FrameMeta, data: &[u8], pkt: &Packet<'_>, key: u64, provable: bool) -> Option<u64> {
        if provable {
            self.stats.provable += 1;
        }
        let key = key | 1; // 0 marks an empty slot
        let idx = (key.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 52) as usize & (SLOTS - 1);
        // Four-way: the key's set of four slots (one 64-byte cache line of `hot`); a miss
        // replaces the empty or oldest of them, so a copy that comes many frames later still
        // finds its original.
        let base = idx & !3;
        let set = self.hot.get(base..base + 4)?;
        let mut pick = base;
        let mut hit = None;
        let mut oldest = i64::MAX;
        for (k, h) in set.iter().enumerate() {
            if h.key == key {
                pick = base + k;
                hit = Some(*h);
                break;
            }
            let age = if h.key == 0 { i64::MIN } else { h.ts };
            if age < oldest {
                oldest = age;
                pick = base + k;
            }
        }
        let now = Slot::of(m, data, pkt);
        if let (Some(h), Some(slot)) = (hit, self.slots.get(pick).copied()) {
            let delay = m.ts_ns.saturating_sub(h.ts).saturating_abs();
            let cause = slot.cause(&now);
            let s = &self.stats;
            let pattern = s.proven >= PATTERN_MIN_COPIES && s.proven.saturating_mul(10) >= s.provable;
            let merge = if provable {
                delay <= WINDOW_PROVEN_NS
            } else {
                delay <= WINDOW_AMBIGUOUS_NS && (cause != DupCause::SameInterface || pattern)
            };
            if merge {
                return Some(self.record_copy(m, &slot, cause, delay, provable, pkt));
            }
            if delay <= WINDOW_AMBIGUOUS_NS && !provable {
                self.stats.unproven_kept += 1;
            }
        }
        if let (Some(h), Some(slot)) = (self.hot.get_mut(pick), self.slots.get_mut(pick)) {
            *h = Hot { key, ts: m.ts_ns };
            *slot = now;
        }
        None
    }

    /// Counts `m` as a copy of `orig` and turns full checking back on; returns the original's
    /// frame number.
    fn record_copy(
        &mut self,
        m: &FrameMeta,
        orig: &Slot,
        cause: DupCause,
        delay: i64,
        provable: bool,
        pkt: &Packet<'_>,
    ) -> u64 {
        let s = &mut self.stats;
        s.copies += 1;
        if provable {
            s.proven += 1;
        }
        if matches!(pkt.transport, Some(Transport::Tcp(_))) {
            s.tcp_copies += 1;
        }
        if let Some(c) = s.by_cause.get_mut(cause.index()) {
            *c += 1;
        }
        s.max_delay_ns = s.max_delay_ns.max(delay);
        if s.examples.len() < 8 {
            s.examples.push((m.number, orig.frame, delay));
        }
        self.sampling = false;
        orig.frame
    }

    /// While sampling: an IPv4 TCP/UDP packet with an ID (which proves a copy) against the last
    /// [`RECENT`] such frames, by its [`sample_key`]; a copy among them turns full checking
    /// back on.
    #[inline(always)]
    fn check_recent(&mut self, m: &FrameMeta, key: u64, data: &[u8], pkt: &Packet<'_>) -> Option<u64> {
        self.stats.provable += 1;
        if let Some(i) = self.recent_keys.iter().position(|&k| k == key) {
            if let Some((ts, slot)) = self.recent.get(i).copied() {
                let delay = m.ts_ns.saturating_sub(ts).saturating_abs();
                if delay <= WINDOW_PROVEN_NS {
                    let now = Slot::of(m, data, pkt);
                    return Some(self.record_copy(m, &slot, slot.cause(&now), delay, true, pkt));
                }
            }
        }
        let pos = self.recent_pos % RECENT;
        if let (Some(k), Some(e)) = (self.recent_keys.get_mut(pos), self.recent.get_mut(pos)) {
            *k = key;
            *e = (m.ts_ns, Slot::of(m, data, pkt));
        }
        self.recent_pos = pos + 1;
        None
    }
}

/// While sampling, what selects and matches an IPv4 TCP segment or UDP datagram with a
/// non-zero ID: its ID with the TCP seq, ack, flags and length, or the UDP ports and length
/// (all shared by a copy; a resend has a new ID). `None` for other frames, which are always
/// looked up in the table.
#[inline(always)]
fn sample_key(pkt: &Packet<'_>) -> Option<u64> {
    let ip = pkt.ip.as_ref()?;
    if ip.id == 0 || ip.fragment.is_some() || !ip.src.is_ipv4() {
        return None;
    }
    let (a, b) = match pkt.transport.as_ref()? {
        Transport::Tcp(t) => (
            (u64::from(ip.id) << 48) | (u64::from(t.flags) << 32) | u64::from(t.seq),
            u64::from(t.ack) | (u64::from(t.len) << 32),
        ),
        Transport::Udp(u) => (
            (u64::from(ip.id) << 48) | (1 << 47) | (u64::from(u.src_port) << 16) | u64::from(u.dst_port),
            u64::from(u.length),
        ),
        _ => return None,
    };
    Some(mix(a, b) | 1)
}

/// A forward gap of at least this much is a jump (merged files, a clock step, or a capture
/// left idle for an hour).
pub const JUMP_NS: i64 = 3_600_000_000_000;
/// Steps backwards larger than this are reported one by one; smaller ones (several
/// interfaces or CPUs timestamping) are only counted.
pub const BACKSTEP_NOTABLE_NS: i64 = 1_000_000;

/// What the timestamps did.
#[derive(Debug, Clone, Default)]
pub struct TimeStats {
    /// Frames whose timestamp is earlier than the frame before.
    pub backwards: u64,
    /// Of those, steps larger than [`BACKSTEP_NOTABLE_NS`].
    pub backwards_notable: u64,
    /// The largest step backwards, ns.
    pub max_backwards_ns: i64,
    /// Forward gaps of [`JUMP_NS`] or more.
    pub jumps: u64,
    /// The first notable steps and jumps: (frame, step ns; negative = backwards).
    pub examples: Vec<(u64, i64)>,
    /// The capture's duration without the steps backwards and the jumps, ns.
    pub span_ns: i64,
    /// First and last timestamp in file order.
    pub first_ns: Option<i64>,
    /// See `first_ns`.
    pub last_ns: Option<i64>,
    /// The earliest and latest timestamp anywhere in the file.
    pub min_ns: Option<i64>,
    /// See `min_ns`.
    pub max_ns: Option<i64>,
}

impl TimeStats {
    /// Whether durations computed as last − first would be wrong.
    pub fn distorted(&self) -> bool {
        self.backwards_notable > 0 || self.jumps > 0
    }
}

/// Watches timestamps frame by frame.
#[derive(Debug)]
pub struct TimeCheck {
    stats: TimeStats,
    /// The previous frame's time (valid once `started`).
    last: i64,
    started: bool,
    min: i64,
    max: i64,
}

impl Default for TimeCheck {
    fn default() -> Self {
        TimeCheck { stats: TimeStats::default(), last: 0, started: false, min: i64::MAX, max: i64::MIN }
    }
}

impl TimeCheck {
    /// Looks at one frame's time. The common case (a step forward of less than an hour) is
    /// one comparison; everything else is out of line.
    #[inline(always)]
    pub fn frame(&mut self, number: u64, ts: i64) {
        let d = ts.saturating_sub(self.last);
        if self.started && (0..JUMP_NS).contains(&d) {
            self.stats.span_ns = self.stats.span_ns.saturating_add(d);
            self.max = self.max.max(ts);
            self.last = ts;
        } else {
            self.unusual(number, ts, d);
        }
    }

    /// The first frame, a step backwards or a jump.
    #[cold]
    #[inline(never)]
    fn unusual(&mut self, number: u64, ts: i64, d: i64) {
        let s = &mut self.stats;
        if !self.started {
            self.started = true;
            s.first_ns = Some(ts);
        } else if d < 0 {
            s.backwards += 1;
            s.max_backwards_ns = s.max_backwards_ns.max(d.saturating_neg());
            if d < -BACKSTEP_NOTABLE_NS {
                s.backwards_notable += 1;
                if s.examples.len() < 8 {
                    s.examples.push((number, d));
                }
            }
        } else {
            s.jumps += 1;
            if s.examples.len() < 8 {
                s.examples.push((number, d));
            }
        }
        self.last = ts;
        self.min = self.min.min(ts);
        self.max = self.max.max(ts);
    }

    /// What was seen.
    pub fn stats(&self) -> TimeStats {
        let mut s = self.stats.clone();
        if self.started {
            s.last_ns = Some(self.last);
        }
        if self.min <= self.max {
            s.min_ns = Some(self.min);
            s.max_ns = Some(self.max);
        }
        s
    }
}

/// Checksums verified, per source host (at most this many hosts are told apart).
const CSUM_HOSTS: usize = 64;
/// Every frame of the first this many is verified, then one in [`CSUM_EVERY`].
const CSUM_ALL_FIRST: u64 = 512;
const CSUM_EVERY: u64 = 128;

/// Checksum results of one source host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostChecksums {
    /// The sender.
    pub host: IpAddr,
    /// Checksums verified.
    pub checked: u64,
    /// Of those, wrong.
    pub bad: u64,
    /// The first frame with a wrong one.
    pub first_bad: u64,
}

/// What the checksum sampler saw.
#[derive(Debug, Clone, Default)]
pub struct ChecksumStats {
    /// Checksums verified (TCP and UDP, whole packets only).
    pub checked: u64,
    /// Of those, wrong.
    pub bad: u64,
    /// Per source host (the first [`CSUM_HOSTS`] hosts).
    pub hosts: Vec<HostChecksums>,
}

/// Verifies TCP/UDP checksums on a sample of frames.
#[derive(Debug, Default)]
pub struct Checksums {
    seen: u64,
    stats: ChecksumStats,
}

/// The Internet checksum of `l4` (the whole transport segment, checksum field included) with
/// its pseudo-header: 0xFFFF (all ones) when the checksum is right.
pub fn transport_checksum(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> u16 {
    let mut acc = 0u64;
    for a in [src, dst] {
        acc = match a {
            IpAddr::V4(v) => ones_sum(acc, &v.octets()),
            IpAddr::V6(v) => ones_sum(acc, &v.octets()),
        };
    }
    acc += u64::from(proto) + l4.len() as u64;
    fold(ones_sum(acc, l4))
}

impl Checksums {
    /// Verifies this frame's transport checksum if it falls in the sample.
    #[inline(always)]
    pub fn frame(&mut self, number: u64, pkt: &Packet<'_>) {
        // The sample is taken over all frames, before anything else is read.
        self.seen += 1;
        if self.seen <= CSUM_ALL_FIRST || self.seen.is_multiple_of(CSUM_EVERY) {
            self.verify(number, pkt);
        }
    }

    /// Verifies one frame of the sample.
    #[inline(never)]
    fn verify(&mut self, number: u64, pkt: &Packet<'_>) {
        let Some(ip) = pkt.ip.as_ref() else { return };
        if ip.fragment.is_some() || !matches!(ip.proto, 6 | 17) {
            return;
        }
        // Only whole packets whose IP header gives the length (not offloaded super-packets).
        let l4 = pkt.ip_payload;
        if l4.len() as u64 != u64::from(ip.payload_len) || l4.len() < 8 || l4.len() > 65_535 {
            return;
        }
        if ip.proto == 17 {
            let field = l4.get(6..8).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
            if field == 0 && ip.src.is_ipv4() {
                return; // no checksum
            }
        }
        if ip.has_options && ip.src.is_ipv6() {
            // Routing headers change the pseudo-header's destination: not verified.
            return;
        }
        let ok = transport_checksum(ip.src, ip.dst, ip.proto, l4) == 0xFFFF;
        let s = &mut self.stats;
        s.checked += 1;
        if !ok {
            s.bad += 1;
        }
        if let Some(h) = s.hosts.iter_mut().find(|h| h.host == ip.src) {
            h.checked += 1;
            if !ok {
                if h.bad == 0 {
                    h.first_bad = number;
                }
                h.bad += 1;
            }
        } else if s.hosts.len() < CSUM_HOSTS {
            s.hosts.push(HostChecksums {
                host: ip.src,
                checked: 1,
                bad: u64::from(!ok),
                first_bad: if ok { 0 } else { number },
            });
        }
    }
    /// What was seen.
    pub fn stats(&self) -> &ChecksumStats {
        &self.stats
    }
}

/// Takes link padding out of a TCP segment's payload: a pure ACK (no PSH, SYN, FIN, RST) in a
/// minimum-size IPv4 packet (total length 46, what an Ethernet frame needs at least) whose
/// payload is 1–6 zero bytes carries padding that the sender counted into the IP length, not
/// data. Returns whether it did (the packet's TCP length and payload are then 0).
#[inline]
pub fn strip_padding(pkt: &mut Packet<'_>) -> bool {
    let Some(ip) = pkt.ip.as_ref() else { return false };
    if !ip.src.is_ipv4() || u32::from(ip.header_len) + ip.payload_len != 46 || ip.fragment.is_some() {
        return false;
    }
    let Some(Transport::Tcp(t)) = pkt.transport.as_mut() else { return false };
    if t.len == 0 || t.len > 6 || t.flags != tcp_flags::ACK || t.payload.len() != t.len as usize {
        return false;
    }
    if t.payload.iter().any(|&b| b != 0) {
        return false;
    }
    t.len = 0;
    t.payload = &[];
    true
}

/// Everything this crate saw in one pass.
#[derive(Debug, Clone, Default)]
pub struct ArtefactReport {
    /// Duplicated frames.
    pub dups: DupStats,
    /// Timestamps.
    pub time: TimeStats,
    /// Checksums.
    pub checksums: ChecksumStats,
    /// TCP segments whose zero "payload" was link padding (treated as pure ACKs).
    pub padded_acks: u64,
    /// The first such frame.
    pub first_padded_ack: Option<u64>,
}

/// All artefact checks in one place, for the capture pipeline.
#[derive(Default)]
pub struct Artefacts {
    dedup: Dedup,
    time: TimeCheck,
    csum: Checksums,
    padded: u64,
    first_padded: Option<u64>,
}

impl Artefacts {
    /// Fresh state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks at one decoded frame. Returns `Some(original)` when the frame is a copy that the
    /// analysis should skip; otherwise strips link padding from `pkt` if it has some.
    #[inline(always)]
    pub fn frame(&mut self, m: &FrameMeta, data: &[u8], pkt: &mut Packet<'_>) -> Option<u64> {
        self.time.frame(m.number, m.ts_ns);
        if let Some(orig) = self.dedup.check(m, data, pkt) {
            return Some(orig);
        }
        self.csum.frame(m.number, pkt);
        // Padding lives in minimum-size frames only (60 bytes, 64 with a VLAN tag or FCS).
        if data.len() <= 68 && strip_padding(pkt) {
            self.padded += 1;
            self.first_padded.get_or_insert(m.number);
        }
        None
    }

    /// What was seen.
    pub fn report(&self) -> ArtefactReport {
        ArtefactReport {
            dups: self.dedup.stats().clone(),
            time: self.time.stats(),
            checksums: self.csum.stats().clone(),
            padded_acks: self.padded,
            first_padded_ack: self.first_padded,
        }
    }
}
