//! One TCP connection: reassembly of both directions and the application parser on top
//! (HTTP/1.x, TLS handshake, or DNS over TCP).

use netcase_wire::Reader;
use serde::Serialize;
use std::net::SocketAddr;

use crate::dns::{DnsFlavor, DnsTracker};
use crate::http::{
    chunk_size, find_head_end, looks_like_request, looks_like_response, parse_head, says_close, version_text, Body,
    ChunkLine, HttpTxn, Interim, Phase, Side, MAX_HEAD,
};
use crate::reasm::{Consumer, Reasm};
use crate::text::Text;
use crate::timing::Timing;
use crate::tls::{looks_like_client_hello, TlsInfo, TlsState};
use crate::{ProtoStats, Transport};

const MAX_LINE: usize = 1024;
const MAX_DNS_TCP: usize = 65_537;
/// Data segments per direction inspected before a connection is declared not ours.
const MAX_UNKNOWN: u32 = 16;

/// A frame number and its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FrameTs {
    /// Frame number (1-based).
    pub frame: u64,
    /// Time, ns since the epoch.
    pub ts_ns: i64,
}

/// What a connection carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// HTTP/1.x.
    Http,
    /// TLS (HTTPS or anything else over TLS).
    Tls,
}

/// How a connection ended: who closed first, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnEnd {
    /// The client sent the first FIN.
    ClientFin,
    /// The server sent the first FIN.
    ServerFin,
    /// The client reset it (before any FIN).
    ClientRst,
    /// The server reset it (before any FIN).
    ServerRst,
    /// Still open when the capture ended.
    Open,
}

/// One HTTP or TLS connection, with the facts the connection-level cases need.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppConn {
    /// HTTP or TLS.
    pub kind: AppKind,
    /// The caller's stream number (tcp.stream).
    pub stream: Option<u64>,
    /// Client socket.
    pub client: SocketAddr,
    /// Server socket.
    pub server: SocketAddr,
    /// The client's SYN.
    pub syn: Option<FrameTs>,
    /// The server's SYN/ACK.
    pub synack: Option<FrameTs>,
    /// First and last packets seen.
    pub first_ts_ns: i64,
    /// Last packet seen.
    pub last_ts_ns: i64,
    /// HTTP requests seen.
    pub requests: u32,
    /// HTTP responses seen (final ones).
    pub responses: u32,
    /// The side that first sent `Connection: close`.
    pub close_header_from: Option<Side>,
    /// The client's first FIN.
    pub client_fin: Option<FrameTs>,
    /// The server's first FIN.
    pub server_fin: Option<FrameTs>,
    /// The client's first RST.
    pub client_rst: Option<FrameTs>,
    /// The server's first RST.
    pub server_rst: Option<FrameTs>,
    /// Who ended it first.
    pub end: ConnEnd,
    /// Time from the end of the last complete HTTP message to the first FIN (the idle time
    /// after which the closing side gave up on the connection), ns.
    pub idle_before_close_ns: Option<i64>,
    /// Requests sent after the server's FIN (keep-alive race).
    pub requests_after_server_fin: u32,
    /// Requests without a response when the client sent its FIN.
    pub unanswered_at_client_fin: u32,
    /// Holes in the captured byte stream.
    pub gaps: u32,
    /// A 101 response or CONNECT handed the connection to another protocol.
    pub upgraded: bool,
    /// TLS facts, for TLS connections.
    pub tls: Option<Box<TlsInfo>>,
    /// Lookup / connect / TLS / first byte, for TLS connections.
    pub timing: Option<Box<crate::timing::Timing>>,
}

impl AppConn {
    /// SYN to SYN/ACK, ns.
    pub fn connect_ns(&self) -> Option<i64> {
        connect_ns(self.syn, self.synack)
    }
}

/// SYN to SYN/ACK, ns.
fn connect_ns(syn: Option<FrameTs>, synack: Option<FrameTs>) -> Option<i64> {
    Some(synack?.ts_ns - syn?.ts_ns)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Unknown,
    Http,
    Tls,
    Dns(DnsFlavor),
    Opaque,
}

#[derive(Debug)]
pub(crate) struct Dir {
    phase: Phase,
    head: Vec<u8>,
    line: Vec<u8>,
    msg_start: Option<FrameTs>,
    msg_last: Option<FrameTs>,
    cur: Option<usize>,
    body: u64,
    uncaptured: u64,
    unknown: u32,
    nobody_resp: Option<usize>,
    after_gap: bool,
    pub(crate) fin: Option<FrameTs>,
    /// Sequence number of the first FIN (where the stream ends).
    fin_seq: Option<u32>,
    pub(crate) rst: Option<FrameTs>,
    dns_buf: Vec<u8>,
}

impl Default for Dir {
    fn default() -> Self {
        Dir {
            phase: Phase::Sync,
            head: Vec::new(),
            line: Vec::new(),
            msg_start: None,
            msg_last: None,
            cur: None,
            body: 0,
            uncaptured: 0,
            unknown: 0,
            nobody_resp: None,
            after_gap: false,
            fin: None,
            fin_seq: None,
            rst: None,
            dns_buf: Vec::new(),
        }
    }
}

/// Everything but the reassemblers (so they can feed it).
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) id: u64,
    pub(crate) a: SocketAddr,
    pub(crate) b: SocketAddr,
    pub(crate) client_is_a: bool,
    pub(crate) client_known: bool,
    pub(crate) stream: Option<u64>,
    pub(crate) kind: Kind,
    pub(crate) dirs: [Dir; 2],
    /// Transactions still in flight (finished ones move to the output as they complete).
    pub(crate) txns: Vec<HttpTxn>,
    next_resp: usize,
    /// Transactions created on this connection (for `seq_on_conn`).
    pushed: u32,
    /// Counts over the transactions already moved out.
    counts: TxnCounts,
    pub(crate) syn: Option<FrameTs>,
    pub(crate) syn_seq: Option<u32>,
    pub(crate) synack: Option<FrameTs>,
    pub(crate) first_ts: i64,
    pub(crate) last_ts: i64,
    close_header_from: Option<Side>,
    last_msg_end_ts: Option<i64>,
    idle_at_first_fin: Option<i64>,
    upgraded: bool,
    tls: Option<Box<TlsState>>,
    tls_active: bool,
    pub(crate) gaps: u32,
    pub(crate) closing: bool,
}

/// Per-connection counts of its transactions.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TxnCounts {
    requests: u32,
    responses: u32,
    after_fin: u32,
    unanswered_fin: u32,
}

/// A tracked connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) reasm: [Reasm; 2],
    pub(crate) core: Core,
}

struct Feeder<'a> {
    core: &'a mut Core,
    dir: usize,
    dns: &'a mut DnsTracker,
    stats: &'a mut ProtoStats,
}

impl Consumer for Feeder<'_> {
    fn data(&mut self, data: &[u8], frame: u64, ts_ns: i64) {
        self.core.on_data(self.dir, data, FrameTs { frame, ts_ns }, self.dns, self.stats);
    }
    fn missing(&mut self, n: u32, frame: u64, ts_ns: i64) {
        self.core.on_missing(self.dir, u64::from(n), FrameTs { frame, ts_ns }, self.stats);
    }
    fn gap(&mut self, _n: u32) {
        self.core.gaps += 1;
        self.stats.tcp_gaps += 1;
        self.core.on_gap(self.dir);
    }
}

/// Keeps the latest frame that contributed to a message (the one that completed it).
fn bump(last: &mut Option<FrameTs>, at: FrameTs) {
    if !matches!(last, Some(l) if at.frame < l.frame) {
        *last = Some(at);
    }
}

fn other(d: usize) -> usize {
    d ^ 1
}

impl Conn {
    pub(crate) fn new(id: u64, a: SocketAddr, b: SocketAddr, stream: Option<u64>, ts: i64) -> Self {
        let kind = match DnsFlavor::from_ports(a.port(), b.port()) {
            Some(f) => Kind::Dns(f),
            None => Kind::Unknown,
        };
        // Until a SYN or a request says otherwise, the side on the lower port is the server.
        let client_is_a = a.port() >= b.port();
        Conn {
            reasm: [Reasm::default(), Reasm::default()],
            core: Core {
                id,
                a,
                b,
                client_is_a,
                client_known: false,
                stream,
                kind,
                dirs: [Dir::default(), Dir::default()],
                txns: Vec::new(),
                next_resp: 0,
                pushed: 0,
                counts: TxnCounts::default(),
                syn: None,
                syn_seq: None,
                synack: None,
                first_ts: ts,
                last_ts: ts,
                close_header_from: None,
                last_msg_end_ts: None,
                idle_at_first_fin: None,
                upgraded: false,
                tls: None,
                tls_active: false,
                gaps: 0,
                closing: false,
            },
        }
    }

    /// One segment in direction `dir` (0: from `a`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn segment(
        &mut self,
        dir: usize,
        at: FrameTs,
        seq: u32,
        ack: u32,
        flags: u16,
        payload: &[u8],
        tcp_len: u32,
        dns: &mut DnsTracker,
        stats: &mut ProtoStats,
        http_out: &mut Vec<HttpTxn>,
    ) {
        use crate::tcp_flags::{ACK, FIN, RST, SYN};
        let c = &mut self.core;
        c.last_ts = c.last_ts.max(at.ts_ns);
        if flags & SYN != 0 {
            if let Some(r) = self.reasm.get_mut(dir) {
                r.syn(seq);
            }
            if flags & ACK == 0 {
                c.syn.get_or_insert(at);
                c.syn_seq = Some(seq);
                c.client_is_a = dir == 0;
                c.client_known = true;
            } else {
                c.synack.get_or_insert(at);
                if !c.client_known {
                    c.client_is_a = dir == 1;
                    c.client_known = true;
                }
            }
        }
        if flags & ACK != 0 && c.kind != Kind::Opaque {
            if let Some(r) = self.reasm.get_mut(other(dir)) {
                let mut f = Feeder { core: &mut self.core, dir: other(dir), dns, stats };
                r.ack(&mut f, ack);
            }
        }
        let c = &mut self.core;
        if (payload.is_empty() && tcp_len == 0) || c.kind == Kind::Opaque {
            // nothing to reassemble
        } else if let Some(r) = self.reasm.get_mut(dir) {
            let mut f = Feeder { core: &mut self.core, dir, dns, stats };
            r.segment(&mut f, seq, payload, tcp_len, at.frame, at.ts_ns);
        }
        let c = &mut self.core;
        if flags & RST != 0 {
            if let Some(d) = c.dirs.get_mut(dir) {
                d.rst.get_or_insert(at);
            }
            c.closing = true;
        }
        if flags & FIN != 0 {
            let first = c.dirs.get(dir).is_some_and(|d| d.fin.is_none());
            if c.dirs.iter().all(|d| d.fin.is_none()) {
                c.idle_at_first_fin = c.last_msg_end_ts.map(|t| at.ts_ns - t);
            }
            if first {
                if let Some(d) = c.dirs.get_mut(dir) {
                    d.fin = Some(at);
                    d.fin_seq = Some(seq.wrapping_add(tcp_len.max(payload.len() as u32)));
                }
                if c.side(dir) == Side::Client {
                    c.mark_client_fin(at);
                }
                let held = self.reasm.get(dir).is_some_and(Reasm::holding);
                if !held {
                    self.core.end_until_close(dir, at);
                }
            }
            let c = &mut self.core;
            if c.dirs.iter().all(|d| d.fin.is_some()) {
                c.closing = true;
            }
        }
        if !self.core.txns.is_empty() {
            self.core.drain_done(http_out, dns);
        }
    }

    /// The connection is over: flush both directions and return its record (for HTTP/TLS).
    /// Transactions get the connection's id in `conn`; the caller maps it to the index of the
    /// returned record.
    pub(crate) fn finalize(
        mut self,
        dns: &mut DnsTracker,
        stats: &mut ProtoStats,
        http_out: &mut Vec<HttpTxn>,
    ) -> Option<AppConn> {
        for dir in 0..2 {
            if let Some(r) = self.reasm.get_mut(dir) {
                let mut f = Feeder { core: &mut self.core, dir, dns, stats };
                r.flush(&mut f);
                stats.tcp_dup_segments += u64::from(r.dup_segments);
            }
            let end = self.core.dirs.get(dir).and_then(|d| d.fin.or(d.rst));
            // A body that runs to the close ends at the FIN or RST; at the end of the
            // capture it stays incomplete.
            if let Some(at) = end {
                self.core.end_until_close(dir, at);
            }
        }
        let c = self.core;
        let kind = match c.kind {
            Kind::Http => AppKind::Http,
            Kind::Tls => AppKind::Tls,
            _ => return None,
        };
        let (ci, si) = if c.client_is_a { (0, 1) } else { (1, 0) };
        let (client, server) = if c.client_is_a { (c.a, c.b) } else { (c.b, c.a) };
        let cd = c.dirs.get(ci);
        let sd = c.dirs.get(si);
        let client_fin = cd.and_then(|d| d.fin);
        let server_fin = sd.and_then(|d| d.fin);
        let client_rst = cd.and_then(|d| d.rst);
        let server_rst = sd.and_then(|d| d.rst);
        let mut ends = [
            (client_fin, ConnEnd::ClientFin),
            (server_fin, ConnEnd::ServerFin),
            (client_rst, ConnEnd::ClientRst),
            (server_rst, ConnEnd::ServerRst),
        ];
        ends.sort_by_key(|(f, _)| f.map_or(u64::MAX, |f| f.frame));
        let end = match ends.first() {
            Some((Some(_), e)) => *e,
            _ => ConnEnd::Open,
        };
        let idle = c.idle_at_first_fin.filter(|&i| i >= 0);
        let mut c = c;
        let txns = std::mem::take(&mut c.txns);
        for mut t in txns {
            if t.status.is_some() && t.response_frame.is_none() {
                t.response_incomplete = true;
            }
            c.account(&mut t, dns);
            http_out.push(t);
        }
        let TxnCounts { requests, responses, after_fin, unanswered_fin } = c.counts;
        Some(AppConn {
            kind,
            stream: c.stream,
            client,
            server,
            syn: c.syn,
            synack: c.synack,
            first_ts_ns: c.first_ts,
            last_ts_ns: c.last_ts,
            requests,
            responses,
            close_header_from: c.close_header_from,
            client_fin,
            server_fin,
            client_rst,
            server_rst,
            end,
            idle_before_close_ns: idle,
            requests_after_server_fin: after_fin,
            unanswered_at_client_fin: unanswered_fin,
            gaps: c.gaps,
            upgraded: c.upgraded,
            timing: c.tls.as_ref().filter(|_| kind == AppKind::Tls).map(|t| Box::new(tls_timing(&t.info, &c, dns))),
            tls: c.tls.map(|t| Box::new(t.info)),
        })
    }
}

fn stamp(n: &mut TxnCounts, who: (u32, Option<u64>, SocketAddr, SocketAddr), t: &mut HttpTxn) {
    n.requests += u32::from(t.has_request());
    n.responses += u32::from(t.status.is_some());
    n.after_fin += u32::from(t.after_server_fin);
    n.unanswered_fin += u32::from(t.unanswered_at_client_fin);
    t.conn = Some(who.0);
    t.stream = who.1;
    t.client = Some(who.2);
    t.server = Some(who.3);
}

/// The phases of a TLS connection (curl's -w timers): lookup, connect, handshake, and the
/// first server record after the client's first one.
fn tls_timing(tls: &TlsInfo, c: &Core, dns: &DnsTracker) -> Timing {
    Timing {
        dns_ns: tls.sni.as_deref().and_then(|s| c.lookup(s, dns)),
        connect_ns: connect_ns(c.syn, c.synack),
        tls_ns: tls.handshake_ns(),
        ttfb_ns: match (tls.client_app_data_ts_ns, tls.server_app_data_ts_ns) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        transfer_ns: None,
    }
}

impl Core {
    /// Counts a transaction leaving the connection and stamps it with the connection's facts.
    fn account(&mut self, t: &mut HttpTxn, dns: &DnsTracker) {
        let who = self.who();
        stamp(&mut self.counts, who, t);
        self.time(t, dns);
    }

    /// The DNS phase of this connection for the name `host` (a Host header or an SNI).
    fn lookup(&self, host: &str, dns: &DnsTracker) -> Option<i64> {
        let start = self.syn.map_or(self.first_ts, |s| s.ts_ns);
        let server = if self.client_is_a { self.b } else { self.a };
        dns.lookup_before(&crate::timing::host_only(host), server.ip(), start)
    }

    /// A transaction's times, as it leaves the connection: first byte and total, and for the
    /// first request on the connection its lookup and connect.
    fn time(&self, t: &mut HttpTxn, dns: &DnsTracker) {
        // An early response (started before the request was complete) counts from the
        // request's first byte: never a negative first-byte time.
        let req_at = if t.early_response { t.request_start_ts_ns } else { t.request_ts_ns };
        t.ttfb_ns = match (req_at, t.response_start_ts_ns) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        t.total_ns = match (t.request_start_ts_ns, t.response_ts_ns) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        if t.seq_on_conn == 1 {
            t.connect_ns = connect_ns(self.syn, self.synack);
            t.dns_ns = t.host.as_deref().and_then(|h| self.lookup(h, dns));
        }
    }

    /// Connection id, stream, client and server.
    fn who(&self) -> (u32, Option<u64>, SocketAddr, SocketAddr) {
        let (client, server) = if self.client_is_a { (self.a, self.b) } else { (self.b, self.a) };
        (u32::try_from(self.id).unwrap_or(u32::MAX), self.stream, client, server)
    }

    /// Moves the leading transactions that are over (response complete, nothing refers to
    /// them any more) to the output, so a long keep-alive connection holds only those in
    /// flight.
    fn drain_done(&mut self, out: &mut Vec<HttpTxn>, dns: &DnsTracker) {
        let mut limit = self.next_resp.min(self.txns.len());
        for d in &self.dirs {
            for i in [d.cur, d.nobody_resp].into_iter().flatten() {
                limit = limit.min(i);
            }
        }
        let n = self.txns.iter().take(limit).take_while(|t| t.response_frame.is_some()).count();
        if n == 0 {
            return;
        }
        let mut txns = std::mem::take(&mut self.txns);
        for mut t in txns.drain(..n) {
            self.account(&mut t, dns);
            out.push(t);
        }
        self.txns = txns;
        self.next_resp -= n;
        for d in &mut self.dirs {
            d.cur = d.cur.map(|i| i - n);
            d.nobody_resp = d.nobody_resp.map(|i| i - n);
        }
    }

    pub(crate) fn side(&self, dir: usize) -> Side {
        if (dir == 0) == self.client_is_a {
            Side::Client
        } else {
            Side::Server
        }
    }

    fn mark_client_fin(&mut self, at: FrameTs) {
        for t in &mut self.txns {
            if t.has_request() && t.response_start_frame.is_none() {
                t.unanswered_at_client_fin = true;
                t.client_fin_after_ns = t.request_ts_ns.or(t.request_start_ts_ns).map(|r| at.ts_ns - r);
            }
        }
    }

    /// A body delimited by the close ends at `at` (the FIN or RST).
    fn end_until_close(&mut self, dir: usize, at: FrameTs) {
        if let Some(d) = self.dirs.get_mut(dir) {
            if d.phase == Phase::Body(Body::UntilClose) {
                d.msg_last = Some(at);
                self.message_done(dir);
            }
        }
    }

    fn on_data(&mut self, dir: usize, data: &[u8], at: FrameTs, dns: &mut DnsTracker, stats: &mut ProtoStats) {
        if self.kind == Kind::Unknown {
            self.detect(dir, data);
        }
        match self.kind {
            Kind::Http => self.http_data(dir, data, at, stats),
            Kind::Tls => {
                if self.tls_active {
                    let side = usize::from(self.side(dir) == Side::Server);
                    if let Some(t) = self.tls.as_mut() {
                        self.tls_active = t.feed(side, data, at.frame, at.ts_ns);
                    }
                }
            }
            Kind::Dns(flavor) => self.dns_data(dir, data, at, flavor, dns, stats),
            Kind::Unknown | Kind::Opaque => {}
        }
    }

    fn detect(&mut self, dir: usize, data: &[u8]) {
        let set_client = |c: &mut Core, client_dir: usize| {
            if !c.client_known {
                c.client_is_a = client_dir == 0;
                c.client_known = true;
            }
        };
        if looks_like_client_hello(data) {
            set_client(self, dir);
            self.kind = Kind::Tls;
            self.tls = Some(Box::default());
            self.tls_active = true;
        } else if data.len() >= 4 && looks_like_request(data) {
            set_client(self, dir);
            self.kind = Kind::Http;
        } else if data.len() >= 5 && looks_like_response(data) {
            set_client(self, other(dir));
            self.kind = Kind::Http;
        } else if let Some(d) = self.dirs.get_mut(dir) {
            d.unknown += 1;
            // With the SYN seen these are the stream's first bytes: unless too few to judge,
            // not ours. Without it the capture may have started mid-message: look further.
            if (self.syn.is_some() && data.len() >= 8) || d.unknown > MAX_UNKNOWN {
                self.kind = Kind::Opaque;
            }
        }
    }

    fn dns_data(
        &mut self,
        dir: usize,
        mut data: &[u8],
        at: FrameTs,
        flavor: DnsFlavor,
        dns: &mut DnsTracker,
        stats: &mut ProtoStats,
    ) {
        let (src, dst) = if dir == 0 { (self.a, self.b) } else { (self.b, self.a) };
        let Some(d) = self.dirs.get_mut(dir) else { return };
        // Whole messages (2-byte length, then the message) straight from the segment when
        // nothing is pending.
        while d.dns_buf.is_empty() {
            let mut r = Reader::new(data);
            let Some(msg) = r.u16_be_prefixed() else { break };
            dns.message(at.frame, at.ts_ns, src, dst, Transport::Tcp, flavor, msg);
            data = r.rest();
            if data.is_empty() {
                return;
            }
        }
        if d.dns_buf.len() + data.len() > MAX_DNS_TCP {
            stats.dns_tcp_overflow += 1;
            d.dns_buf.clear();
            return;
        }
        d.dns_buf.extend_from_slice(data);
        loop {
            let mut r = Reader::new(&d.dns_buf);
            let Some(msg) = r.u16_be_prefixed() else { break };
            dns.message(at.frame, at.ts_ns, src, dst, Transport::Tcp, flavor, msg);
            let used = r.offset();
            d.dns_buf.drain(..used);
        }
    }

    fn on_missing(&mut self, dir: usize, n: u64, at: FrameTs, stats: &mut ProtoStats) {
        match self.kind {
            Kind::Http => {}
            Kind::Dns(_) => {
                if let Some(d) = self.dirs.get_mut(dir) {
                    d.dns_buf.clear();
                }
                return;
            }
            Kind::Tls => {
                self.tls_active = false;
                return;
            }
            _ => return,
        }
        let Some(d) = self.dirs.get_mut(dir) else { return };
        match d.phase {
            Phase::Body(Body::Length(m)) => {
                let k = n.min(m);
                d.body += k;
                d.uncaptured += k;
                bump(&mut d.msg_last, at);
                if k == m {
                    self.message_done(dir);
                    // Anything beyond the body that was not captured: lose sync.
                    if n > k {
                        self.desync(dir, stats);
                    }
                } else {
                    d.phase = Phase::Body(Body::Length(m - k));
                }
            }
            Phase::Body(Body::UntilClose) => {
                d.body += n;
                d.uncaptured += n;
                bump(&mut d.msg_last, at);
            }
            Phase::ChunkData(m) if n <= m => {
                d.body += n;
                d.uncaptured += n;
                bump(&mut d.msg_last, at);
                d.phase = if n == m { Phase::ChunkLine(ChunkLine::AfterData) } else { Phase::ChunkData(m - n) };
            }
            Phase::Opaque => {}
            _ => self.desync(dir, stats),
        }
    }

    fn on_gap(&mut self, dir: usize) {
        match self.kind {
            Kind::Http => {
                if let Some(d) = self.dirs.get_mut(dir) {
                    if d.phase != Phase::Opaque {
                        d.after_gap = true;
                        d.phase = Phase::Sync;
                        d.head.clear();
                        d.line.clear();
                        d.cur = None;
                    }
                }
            }
            Kind::Dns(_) => {
                if let Some(d) = self.dirs.get_mut(dir) {
                    d.dns_buf.clear();
                }
            }
            Kind::Tls => self.tls_active = false,
            _ => {}
        }
    }

    /// The current message cannot be followed: wait for the next message start.
    fn desync(&mut self, dir: usize, stats: &mut ProtoStats) {
        stats.http_desync += 1;
        if let Some(d) = self.dirs.get_mut(dir) {
            d.phase = Phase::Sync;
            d.head.clear();
            d.line.clear();
            d.cur = None;
        }
    }

    fn http_data(&mut self, dir: usize, mut data: &[u8], at: FrameTs, stats: &mut ProtoStats) {
        let is_client = self.side(dir) == Side::Client;
        while !data.is_empty() {
            let Some(d) = self.dirs.get_mut(dir) else { return };
            match d.phase {
                Phase::Opaque => return,
                Phase::Sync | Phase::Head if d.head.is_empty() => {
                    let starts = if is_client { looks_like_request(data) } else { looks_like_response(data) };
                    if !starts {
                        if let Some(i) = d.nobody_resp {
                            if let Some(t) = self.txns.get_mut(i) {
                                t.unexpected_body_bytes += data.len() as u64;
                            }
                        } else if d.phase == Phase::Head {
                            stats.http_desync += 1;
                        }
                        d.phase = Phase::Sync;
                        return;
                    }
                    d.nobody_resp = None;
                    d.phase = Phase::Head;
                    d.msg_start = Some(at);
                    d.msg_last = None;
                    d.body = 0;
                    d.uncaptured = 0;
                    data = self.head_bytes(dir, data, at, stats);
                }
                Phase::Sync => return,
                Phase::Head => data = self.head_bytes(dir, data, at, stats),
                Phase::Body(Body::Length(n)) => {
                    let k = n.min(data.len() as u64);
                    d.body += k;
                    bump(&mut d.msg_last, at);
                    data = data.get(k as usize..).unwrap_or(&[]);
                    if k == n {
                        self.message_done(dir);
                    } else {
                        d.phase = Phase::Body(Body::Length(n - k));
                    }
                }
                Phase::Body(Body::UntilClose) => {
                    d.body += data.len() as u64;
                    bump(&mut d.msg_last, at);
                    return;
                }
                Phase::Body(Body::None) => self.message_done(dir),
                Phase::Body(Body::Chunked) => d.phase = Phase::ChunkLine(ChunkLine::Size),
                Phase::ChunkData(n) => {
                    let k = n.min(data.len() as u64);
                    d.body += k;
                    bump(&mut d.msg_last, at);
                    data = data.get(k as usize..).unwrap_or(&[]);
                    d.phase = if k == n { Phase::ChunkLine(ChunkLine::AfterData) } else { Phase::ChunkData(n - k) };
                }
                Phase::ChunkLine(kind) => {
                    bump(&mut d.msg_last, at);
                    let nl = data.iter().position(|&b| b == b'\n');
                    let take = nl.map_or(data.len(), |p| p + 1);
                    let (part, rest) = data.split_at_checked(take).unwrap_or((data, &[]));
                    d.body += part.len() as u64;
                    data = rest;
                    if d.line.len() + part.len() > MAX_LINE {
                        self.desync(dir, stats);
                        return;
                    }
                    d.line.extend_from_slice(part);
                    if nl.is_none() {
                        return;
                    }
                    let line = d.line.strip_suffix(b"\n").unwrap_or(&d.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let empty = line.is_empty();
                    let next = match kind {
                        ChunkLine::Size => match chunk_size(line) {
                            Some(0) => Some(Phase::ChunkLine(ChunkLine::Trailer)),
                            Some(n) => Some(Phase::ChunkData(n)),
                            None => None,
                        },
                        ChunkLine::AfterData => Some(Phase::ChunkLine(ChunkLine::Size)),
                        ChunkLine::Trailer if empty => Some(Phase::Body(Body::None)),
                        ChunkLine::Trailer => Some(Phase::ChunkLine(ChunkLine::Trailer)),
                    };
                    d.line.clear();
                    match next {
                        Some(Phase::Body(Body::None)) => self.message_done(dir),
                        Some(p) => d.phase = p,
                        None => {
                            self.desync(dir, stats);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Adds bytes to the head being collected; returns what follows the head. A head that
    /// lies whole in one segment is parsed in place, without copying.
    fn head_bytes<'d>(&mut self, dir: usize, data: &'d [u8], at: FrameTs, stats: &mut ProtoStats) -> &'d [u8] {
        let Some(d) = self.dirs.get_mut(dir) else { return &[] };
        bump(&mut d.msg_last, at);
        if d.head.is_empty() {
            let lim = data.len().min(MAX_HEAD);
            if let Some(end) = find_head_end(data.get(..lim).unwrap_or(&[]), 0) {
                self.head_done(dir, data.get(..end).unwrap_or(&[]), stats);
                return data.get(end..).unwrap_or(&[]);
            }
            if data.len() >= MAX_HEAD {
                stats.http_oversize_heads += 1;
                self.desync(dir, stats);
                return &[];
            }
            d.head.extend_from_slice(data);
            return &[];
        }
        let old = d.head.len();
        let room = MAX_HEAD.saturating_sub(old);
        let take = room.min(data.len());
        d.head.extend_from_slice(data.get(..take).unwrap_or(&[]));
        match find_head_end(&d.head, old.saturating_sub(3)) {
            Some(end) => {
                let used = end.saturating_sub(old);
                let mut head = std::mem::take(&mut d.head);
                head.truncate(end);
                self.head_done(dir, &head, stats);
                head.clear();
                // Keep a small buffer for the next split head; give big ones back.
                if head.capacity() <= 4096 {
                    if let Some(d) = self.dirs.get_mut(dir) {
                        if d.head.is_empty() {
                            d.head = head;
                        }
                    }
                }
                data.get(used..).unwrap_or(&[])
            }
            None => {
                if d.head.len() >= MAX_HEAD {
                    stats.http_oversize_heads += 1;
                    self.desync(dir, stats);
                }
                &[]
            }
        }
    }

    fn head_done(&mut self, dir: usize, head: &[u8], stats: &mut ProtoStats) {
        let side = self.side(dir);
        let is_client = side == Side::Client;
        // The FIN of the other side (the server's for a request, the client's for a response).
        let other_fin = self.dirs.get(other(dir)).and_then(|d| d.fin);
        let Some(d) = self.dirs.get_mut(dir) else { return };
        let Some(h) = parse_head(head, is_client) else {
            stats.http_bad_heads += 1;
            self.desync(dir, stats);
            return;
        };
        let start = d.msg_start;
        let head_len = head.len() as u64;
        if h.connection.is_some_and(says_close) && self.close_header_from.is_none() {
            self.close_header_from = Some(side);
        }
        if is_client {
            let t = HttpTxn {
                seq_on_conn: self.pushed.saturating_add(1),
                version: Some(version_text(h.version)),
                host: h.host.map(Text::from_wire),
                req_connection: h.connection.map(Text::from_wire),
                req_content_length: h.content_length,
                request_start_ts_ns: start.map(|s| s.ts_ns),
                request_start_frame: start.map(|s| s.frame),
                req_header_bytes: head_len as u32,
                after_server_fin: other_fin.is_some_and(|f| start.is_some_and(|s| s.frame > f.frame)),
                method: h.method.map(Text::new),
                uri: h.uri.map(Text::new),
                ..HttpTxn::default()
            };
            let is_connect = h.method == Some("CONNECT");
            if self.txns.capacity() == 0 {
                // Most connections carry one transaction: no room for four up front.
                self.txns.reserve_exact(1);
            }
            self.txns.push(t);
            self.pushed = self.pushed.saturating_add(1);
            d.cur = Some(self.txns.len() - 1);
            d.phase = if h.chunked {
                Phase::Body(Body::Chunked)
            } else {
                match h.content_length {
                    Some(n) if n > 0 && !is_connect => Phase::Body(Body::Length(n)),
                    _ => Phase::Body(Body::None),
                }
            };
        } else {
            let status = h.status;
            if (100..200).contains(&status) && status != 101 {
                // Interim response (no body): it belongs to the oldest request still waiting,
                // which keeps waiting for its final response. With no request pending (it was
                // not captured) a response-only transaction takes it and the final response.
                let done = d.msg_last.or(start);
                d.cur = None;
                if self.next_resp >= self.txns.len() {
                    self.txns.push(HttpTxn::default());
                    self.pushed = self.pushed.saturating_add(1);
                }
                if let (Some(t), Some(at)) = (self.txns.get_mut(self.next_resp), done) {
                    t.interim.push(Interim { status, frame: at.frame, ts_ns: at.ts_ns });
                }
                self.last_msg_end_ts = done.map(|l| l.ts_ns).or(self.last_msg_end_ts);
                if let Some(d) = self.dirs.get_mut(dir) {
                    d.phase = Phase::Head;
                    d.head.clear();
                }
                return;
            }
            let client_fin = other_fin;
            if d.after_gap {
                // Responses were lost in the hole: this one answers the latest request sent
                // before it started; the ones before that lost theirs.
                d.after_gap = false;
                let sf = start.map_or(u64::MAX, |s| s.frame);
                let mut last = None;
                for i in self.next_resp..self.txns.len() {
                    if self.txns.get(i).and_then(|t| t.request_start_frame).is_some_and(|f| f < sf) {
                        last = Some(i);
                    }
                }
                if let Some(l) = last {
                    for t in self.txns.iter_mut().take(l).skip(self.next_resp) {
                        t.response_lost = true;
                    }
                    self.next_resp = l;
                }
            }
            let idx = if self.next_resp < self.txns.len() {
                self.next_resp += 1;
                self.next_resp - 1
            } else {
                self.txns.push(HttpTxn::default());
                self.pushed = self.pushed.saturating_add(1);
                self.next_resp = self.txns.len();
                self.txns.len() - 1
            };
            let Some(d) = self.dirs.get_mut(dir) else { return };
            let Some(t) = self.txns.get_mut(idx) else { return };
            t.status = Some(status);
            t.reason = h.reason.map(Text::new);
            t.resp_connection = h.connection.map(Text::from_wire);
            t.resp_content_length = h.content_length;
            t.resp_content_length_header = h.content_length_header.map(Text::from_wire);
            t.resp_transfer_encoding = h.transfer_encoding.map(Text::from_wire);
            t.response_start_frame = start.map(|s| s.frame);
            t.response_start_ts_ns = start.map(|s| s.ts_ns);
            t.resp_header_bytes = head_len as u32;
            t.response_after_client_fin = client_fin.is_some_and(|f| start.is_some_and(|s| s.frame > f.frame));
            t.early_response = t.has_request() && t.request_frame.is_none();
            let head_req = t.method.as_deref() == Some("HEAD");
            let connect_ok = t.method.as_deref() == Some("CONNECT") && (200..300).contains(&status);
            d.cur = Some(idx);
            let no_body = head_req || status == 204 || status == 304 || status == 101 || status < 200 || connect_ok;
            d.phase = if no_body {
                Phase::Body(Body::None)
            } else if h.chunked {
                Phase::Body(Body::Chunked)
            } else {
                match h.content_length {
                    Some(0) => Phase::Body(Body::None),
                    Some(n) => Phase::Body(Body::Length(n)),
                    None => Phase::Body(Body::UntilClose),
                }
            };
            if status == 101 || connect_ok {
                self.upgraded = true;
            }
            if no_body && (status == 204 || status == 304 || head_req) {
                d.nobody_resp = Some(idx);
            }
        }
        if let Some(d) = self.dirs.get_mut(dir) {
            if d.phase == Phase::Body(Body::None) {
                self.message_done(dir);
            }
        }
    }

    fn message_done(&mut self, dir: usize) {
        let is_client = self.side(dir) == Side::Client;
        let Some(d) = self.dirs.get_mut(dir) else { return };
        let last = d.msg_last;
        if let Some(t) = d.cur.and_then(|i| self.txns.get_mut(i)) {
            if is_client {
                t.request_frame = last.map(|l| l.frame);
                t.request_ts_ns = last.map(|l| l.ts_ns);
                t.req_body_bytes = d.body;
            } else {
                t.response_frame = last.map(|l| l.frame);
                t.response_ts_ns = last.map(|l| l.ts_ns);
                t.resp_body_bytes = d.body;
                t.resp_body_uncaptured = d.uncaptured;
            }
        }
        self.last_msg_end_ts = last.map(|l| l.ts_ns).or(self.last_msg_end_ts);
        d.cur = None;
        d.body = 0;
        d.uncaptured = 0;
        d.phase = Phase::Head;
        d.head.clear();
        if self.upgraded {
            for d in &mut self.dirs {
                d.phase = Phase::Opaque;
            }
        }
    }
}

impl Conn {
    /// Whether nothing more can come: reset, or both FINs with every byte before them
    /// delivered (no hole waits for a retransmission).
    pub(crate) fn complete(&self) -> bool {
        let c = &self.core;
        if c.kind == Kind::Opaque || c.dirs.iter().any(|d| d.rst.is_some()) {
            return true;
        }
        self.reasm.iter().zip(&c.dirs).all(|(r, d)| !r.holding() && d.fin_seq.is_none_or(|f| r.ends_at(f)))
    }

    /// Whether the connection has carried anything.
    pub(crate) fn started(&self) -> bool {
        self.core.syn.is_some() || self.core.kind != Kind::Unknown || self.core.first_ts != self.core.last_ts
    }
}
