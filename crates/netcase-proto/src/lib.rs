//! DNS, HTTP/1.x and TLS-handshake transactions from captured packets.
//!
//! Sans-I/O: the caller decodes frames (e.g. with `netcase-wire`) and hands each UDP datagram
//! and TCP segment to a [`ProtoTracker`]; [`ProtoTracker::finish`] returns the transactions.
//!
//! ```
//! use netcase_proto::ProtoTracker;
//! let mut t = ProtoTracker::new();
//! let c = "10.0.0.1:40000".parse().unwrap();
//! let s = "10.0.0.53:53".parse().unwrap();
//! let q = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1];
//! t.udp(1, 1_000, c, s, &q, q.len() as u32);
//! let out = t.finish();
//! assert!(out.dns[0].unanswered());
//! ```
//!
//! * DNS over UDP and TCP (length-prefixed, several messages per segment), paired like
//!   tshark's `dns.response_in`/`dns.time` ([`dns`]).
//! * HTTP/1.x over each TCP direction reassembled in order (retransmissions dropped,
//!   out-of-order data held within a bound, holes reported as gaps), with pipelining,
//!   chunked bodies, bodyless responses by rule and bodies cut by the snap length ([`http`]).
//! * TLS ClientHello SNI/ALPN and handshake timing ([`tls`]).
//! * Timing breakdowns ([`timing`]), filters, sorts and per-server statistics ([`query`]).
//!
//! Memory is bounded per connection (64 KiB of head, 256 KiB of out-of-order data per
//! direction, both only while needed; bodies are counted, never kept) and a connection's
//! state is freed as soon as it is closed both ways or reset. Only a tombstone (its key)
//! lingers, so that late segments (the last ACK, retransmissions) are recognised.

#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used))]

mod conn;
pub mod dns;
pub mod http;
pub mod query;
mod reasm;
mod spill;
pub mod text;
pub mod timing;
pub mod tls;

use serde::Serialize;
use std::collections::VecDeque;
use std::net::SocketAddr;

pub use conn::{AppConn, AppKind, ConnEnd, FrameTs};
pub use dns::{DnsFlavor, DnsRecord, DnsTxn, RData};
pub use http::{HttpTxn, HttpVersion, Interim, Side};
pub use text::{List, Text};
pub use timing::Timing;
pub use tls::TlsInfo;

use conn::Conn;
use dns::DnsTracker;
use text::FxMap;

/// TCP flag bits, as in the header (`tcp.flags`).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u16 = 0x001;
    /// SYN.
    pub const SYN: u16 = 0x002;
    /// RST.
    pub const RST: u16 = 0x004;
    /// ACK.
    pub const ACK: u16 = 0x010;
}

/// The transport a message travelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

/// One TCP segment as the trackers read it; the payload travels beside it (so a caller can
/// keep segments in an arena, as the capture pipeline does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Frame number.
    pub frame: u64,
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number, raw.
    pub seq: u32,
    /// Acknowledgement number, raw.
    pub ack: u32,
    /// TCP flags as in the header.
    pub flags: u16,
    /// Payload length by the IP header (`tcp.len`); the captured payload may be shorter.
    pub tcp_len: u32,
    /// The caller's connection number when it has one (a new number for the same addresses is
    /// a new connection); with `None` the tracker tells connections apart by addresses and SYNs.
    pub stream: Option<u64>,
}

/// Counted anomalies and volumes (stable snake_case names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProtoStats {
    /// DNS messages read.
    pub dns_messages: u64,
    /// DNS messages that could not be decoded.
    pub dns_malformed: u64,
    /// DNS-over-TCP messages longer than the buffer.
    pub dns_tcp_overflow: u64,
    /// HTTP heads httparse rejected.
    pub http_bad_heads: u64,
    /// HTTP heads over 64 KiB.
    pub http_oversize_heads: u64,
    /// Times an HTTP direction lost its framing and waited for the next message.
    pub http_desync: u64,
    /// Holes in reassembled TCP streams.
    pub tcp_gaps: u64,
    /// Segments (or parts) dropped as already delivered.
    pub tcp_dup_segments: u64,
    /// TCP connections tracked.
    pub tcp_conns: u64,
    /// Packets handed in.
    pub packets: u64,
}

/// Everything the tracker found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProtoOutput {
    /// DNS transactions, by first query time.
    pub dns: Vec<DnsTxn>,
    /// HTTP transactions, by request time (response time when no request was seen).
    pub http: Vec<HttpTxn>,
    /// HTTP and TLS connections (`HttpTxn::conn` indexes this).
    pub conns: Vec<AppConn>,
    /// Counters.
    pub stats: ProtoStats,
}

/// Tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// How long (capture time) a closed connection is remembered for late segments, and a
    /// closed connection with a hole in its data waits for the retransmission.
    pub linger_ns: i64,
    /// Park finished HTTP transactions in an unlinked temporary file until
    /// [`ProtoTracker::finish`] (see the `spill` module): less memory on large captures, the
    /// same output. Falls back to memory when no file can be written.
    pub spill_http: bool,
    /// Keep no finished HTTP transaction or connection: the caller takes them as they finish
    /// with [`ProtoTracker::drain_http`] and [`ProtoTracker::drain_conns`] (memory flat in
    /// their number). `HttpTxn::conn` is then an internal connection number, not an index:
    /// the connection's `stream` ties a transaction to its connection.
    pub stream: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { linger_ns: 2_000_000_000, spill_http: false, stream: false }
    }
}

/// Finished HTTP transactions collected before they go to the spill file.
const SPILL_BATCH: usize = 256;

type ConnKey = (SocketAddr, SocketAddr);

fn key(src: SocketAddr, dst: SocketAddr) -> (ConnKey, usize) {
    if src <= dst {
        ((src, dst), 0)
    } else {
        ((dst, src), 1)
    }
}

/// Keys of connections the caller gave no stream number for (above any real stream number).
const ANON_BASE: u64 = 1 << 62;

/// A connection slot: live state, or the tombstone of a finished one (by connection id).
#[derive(Debug)]
enum Slot {
    Live(Box<Conn>),
    Gone(u64),
}

/// Turns packets into DNS/HTTP/TLS transactions. Drive it per packet, then call
/// [`ProtoTracker::finish`]. It is `Send`: it can run on its own thread.
#[derive(Debug, Default)]
pub struct ProtoTracker {
    cfg: Config,
    /// By the caller's stream number (or an internal one, see `by_addr`).
    conns: FxMap<u64, Slot>,
    /// Internal stream numbers of connections the caller gave none for.
    by_addr: FxMap<ConnKey, u64>,
    next_anon: u64,
    /// (key, connection id, time) of closed connections: tombstones to drop, or connections
    /// with a hole to finalize, after `linger_ns`.
    linger: VecDeque<(u64, u64, i64)>,
    next_id: u64,
    /// Connection id → index in `app_conns` (transactions carry the id until `finish`).
    conn_index: FxMap<u32, u32>,
    dns: DnsTracker,
    http: Vec<HttpTxn>,
    /// Where finished HTTP transactions go when `cfg.spill_http` (created on first use).
    spill: Option<spill::Spill>,
    /// Spilling failed: the rest stays in memory.
    no_spill: bool,
    app_conns: Vec<AppConn>,
    stats: ProtoStats,
}

impl ProtoTracker {
    /// A tracker with default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker with `cfg`.
    pub fn with_config(cfg: Config) -> Self {
        ProtoTracker { cfg, ..Self::default() }
    }

    /// Moves finished HTTP transactions to the spill file, when spilling.
    #[inline]
    fn maybe_spill(&mut self) {
        if self.cfg.stream || !self.cfg.spill_http || self.no_spill || self.http.len() < SPILL_BATCH {
            return;
        }
        if self.spill.is_none() {
            self.spill = spill::Spill::new();
        }
        let ok = match self.spill.as_mut() {
            Some(s) => s.push(&mut self.http),
            None => false,
        };
        self.no_spill = !ok;
    }

    /// One UDP datagram: `payload` as captured, `udp_len` the payload length it really had.
    /// DNS ports (53, 5353, 5355) and SSDP (HTTP over UDP, 1900) are read.
    pub fn udp(&mut self, frame: u64, ts_ns: i64, src: SocketAddr, dst: SocketAddr, payload: &[u8], udp_len: u32) {
        self.stats.packets += 1;
        let _ = udp_len;
        if let Some(flavor) = DnsFlavor::from_ports(src.port(), dst.port()) {
            self.dns.message(frame, ts_ns, src, dst, Transport::Udp, flavor, payload);
        } else if src.port() == 1900 || dst.port() == 1900 {
            if let Some(t) = http::udp_message(frame, ts_ns, src, dst, payload) {
                self.http.push(t);
                self.maybe_spill();
            }
        }
    }

    /// One TCP segment as arguments (tests, benches and fuzz targets); the same as
    /// [`segment`](Self::segment).
    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        &mut self,
        frame: u64,
        ts_ns: i64,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: u16,
        payload: &[u8],
        tcp_len: u32,
        stream: Option<u64>,
    ) {
        self.segment(&Segment { frame, ts_ns, src, dst, seq, ack, flags, tcp_len, stream }, payload);
    }

    /// One TCP segment and its payload as captured.
    pub fn segment(&mut self, s: &Segment, payload: &[u8]) {
        let Segment { frame, ts_ns, src, dst, seq, ack, flags, tcp_len, stream } = *s;
        self.stats.packets += 1;
        if self.linger.front().is_some_and(|l| ts_ns - l.2 >= self.cfg.linger_ns) {
            self.expire(ts_ns);
        }
        let syn_only = flags & tcp_flags::SYN != 0 && flags & tcp_flags::ACK == 0;
        let id = match stream {
            Some(s) => s,
            None => match self.anon_id(src, dst, payload, tcp_len, flags) {
                Some(id) => id,
                None => return,
            },
        };
        let at = FrameTs { frame, ts_ns };
        // The common case: one lookup, straight to the connection.
        let closed = match self.conns.get_mut(&id) {
            Some(Slot::Live(c)) if !(syn_only && c.started() && c.core.syn_seq != Some(seq)) => {
                let dir = usize::from(src != c.core.a);
                let was_closing = c.core.closing;
                c.segment(dir, at, seq, ack, flags, payload, tcp_len, &mut self.dns, &mut self.stats, &mut self.http);
                (c.core.closing && !was_closing).then(|| (c.core.id, c.complete()))
            }
            Some(Slot::Gone(_)) if !syn_only => return,
            _ => {
                // A new connection (or a new one on the same addresses).
                let may_open =
                    !payload.is_empty() || tcp_len > 0 || (flags & tcp_flags::SYN != 0 && flags & tcp_flags::RST == 0);
                if !may_open {
                    return;
                }
                if let Some(Slot::Live(c)) = self.conns.remove(&id) {
                    self.finalize(*c);
                }
                self.next_id += 1;
                self.stats.tcp_conns += 1;
                let (k, dir) = key(src, dst);
                let mut c = Box::new(Conn::new(self.next_id, k.0, k.1, stream, ts_ns));
                c.segment(dir, at, seq, ack, flags, payload, tcp_len, &mut self.dns, &mut self.stats, &mut self.http);
                let closed = c.core.closing.then(|| (c.core.id, c.complete()));
                self.conns.insert(id, Slot::Live(c));
                closed
            }
        };
        if let Some((cid, complete)) = closed {
            if complete {
                // Nothing more can come: free it now, keep a tombstone for late segments.
                if let Some(Slot::Live(c)) = self.conns.insert(id, Slot::Gone(cid)) {
                    self.finalize(*c);
                }
            }
            self.linger.push_back((id, cid, ts_ns));
        }
        self.maybe_spill();
    }

    /// The internal stream number of a connection the caller numbered none for.
    fn anon_id(&mut self, src: SocketAddr, dst: SocketAddr, payload: &[u8], tcp_len: u32, flags: u16) -> Option<u64> {
        let (k, _) = key(src, dst);
        if let Some(&id) = self.by_addr.get(&k) {
            return Some(id);
        }
        let may_open =
            !payload.is_empty() || tcp_len > 0 || (flags & tcp_flags::SYN != 0 && flags & tcp_flags::RST == 0);
        if !may_open {
            return None;
        }
        let id = ANON_BASE + self.next_anon;
        self.next_anon += 1;
        self.by_addr.insert(k, id);
        Some(id)
    }

    fn expire(&mut self, now: i64) {
        while let Some(&(k, id, t)) = self.linger.front() {
            if now - t < self.cfg.linger_ns {
                break;
            }
            self.linger.pop_front();
            let ours = match self.conns.get(&k) {
                Some(Slot::Live(c)) => c.core.id == id,
                Some(Slot::Gone(g)) => *g == id,
                None => false,
            };
            if !ours {
                continue;
            }
            if let Some(Slot::Live(c)) = self.conns.remove(&k) {
                if k >= ANON_BASE {
                    self.by_addr.remove(&(c.core.a, c.core.b));
                }
                self.finalize(*c);
            }
        }
        if self.conns.is_empty() {
            self.by_addr.clear();
        }
    }

    fn finalize(&mut self, c: Conn) {
        let id = u32::try_from(c.core.id).unwrap_or(u32::MAX);
        if let Some(a) = c.finalize(&mut self.dns, &mut self.stats, &mut self.http) {
            if !self.cfg.stream {
                self.conn_index.insert(id, u32::try_from(self.app_conns.len()).unwrap_or(u32::MAX));
            }
            self.app_conns.push(a);
        }
    }

    /// The HTTP transactions finished since the last call, in the order they finished (with
    /// [`Config::stream`]; otherwise they are kept for [`finish`](Self::finish) and this
    /// yields nothing).
    pub fn drain_http(&mut self) -> std::vec::Drain<'_, HttpTxn> {
        let n = if self.cfg.stream { self.http.len() } else { 0 };
        self.http.drain(..n)
    }

    /// The HTTP/TLS connections finished since the last call (with [`Config::stream`]), each
    /// after its transactions.
    pub fn drain_conns(&mut self) -> std::vec::Drain<'_, AppConn> {
        let n = if self.cfg.stream { self.app_conns.len() } else { 0 };
        self.app_conns.drain(..n)
    }

    /// Connections currently tracked (for memory checks).
    pub fn live_connections(&self) -> usize {
        self.conns.values().filter(|s| matches!(s, Slot::Live(_))).count()
    }

    /// Ends the capture: closes every connection, pairs what can be paired, computes timing.
    pub fn finish(mut self) -> ProtoOutput {
        let mut rest: Vec<Box<Conn>> = self
            .conns
            .drain()
            .filter_map(|(_, s)| match s {
                Slot::Live(c) => Some(c),
                Slot::Gone(_) => None,
            })
            .collect();
        rest.sort_by_key(|c| c.core.id);
        for c in rest {
            self.finalize(*c);
        }
        let mut dns = std::mem::take(&mut self.dns.txns);
        self.stats.dns_messages = self.dns.messages;
        self.stats.dns_malformed = self.dns.malformed;
        // The pairing tables are no longer needed: free them before the transactions come back.
        self.dns = DnsTracker::default();
        self.conns = FxMap::default();
        self.by_addr = FxMap::default();
        self.linger = VecDeque::new();
        sort_in_place(&mut dns, |t| (t.ts_ns, t.query_frame().or(t.response_frame)));
        dns.shrink_to_fit();
        let mut conns = std::mem::take(&mut self.app_conns);
        conns.shrink_to_fit();
        let mut http = std::mem::take(&mut self.http);
        if let Some(s) = self.spill.take() {
            http = s.read_back(http);
        }
        for t in &mut http {
            if !self.cfg.stream {
                t.conn = t.conn.and_then(|id| self.conn_index.get(&id).copied());
            }
        }
        sort_in_place(&mut http, HttpTxn::order_key);
        ProtoOutput { dns, http, conns, stats: self.stats }
    }
}

/// Sorts `v` by `key`, stably, moving each (large) element at most once: the keys are sorted
/// with their indices, then the permutation is applied in place cycle by cycle.
fn sort_in_place<T, K: Ord>(v: &mut [T], key: impl Fn(&T) -> K) {
    let mut order: Vec<(K, u32)> = v.iter().zip(0u32..).map(|(t, i)| (key(t), i)).collect();
    order.sort_unstable();
    let mut perm: Vec<u32> = order.into_iter().map(|(_, i)| i).collect();
    for i in 0..perm.len() {
        let mut j = i;
        while let Some(slot) = perm.get_mut(j) {
            let k = std::mem::replace(slot, j as u32) as usize;
            if k == i || k >= v.len() {
                break;
            }
            v.swap(j, k);
            j = k;
        }
    }
}

/// The tracker runs on its own thread in the pipeline.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<ProtoTracker>();
    send::<ProtoOutput>();
};

#[cfg(test)]
mod size_tests {
    #[test]
    fn sorts_in_place_stably() {
        let mut v = vec![(3, 'a'), (1, 'b'), (2, 'c'), (1, 'd'), (0, 'e'), (3, 'f')];
        let mut w = v.clone();
        super::sort_in_place(&mut v, |x| x.0);
        w.sort_by_key(|x| x.0);
        assert_eq!(v, w);
    }

    #[test]
    fn sizes() {
        eprintln!(
            "HttpTxn {} DnsTxn {} AppConn {} Conn {} DnsRecord {} Timing {}",
            std::mem::size_of::<crate::HttpTxn>(),
            std::mem::size_of::<crate::DnsTxn>(),
            std::mem::size_of::<crate::AppConn>(),
            std::mem::size_of::<crate::conn::Conn>(),
            std::mem::size_of::<crate::DnsRecord>(),
            std::mem::size_of::<crate::Timing>()
        );
    }
}
