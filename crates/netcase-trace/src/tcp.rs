//! TCP events with addresses: `tcp:tcp_retransmit_skb`, `tcp:tcp_send_reset`,
//! `tcp:tcp_receive_reset` and `sock:inet_sock_set_state`, as a timeline and per socket.
//!
//! Addresses are the socket's view: `local` is this host's end. State names come from the
//! running kernel (`inet_sock_set_state`'s format file spells them with numbers), reset
//! reasons from `tcp_send_reset`'s (`TCP_ABORT_ON_LINGER`, `NO_SOCKET`...).
//!
//! One blind spot: a tail loss probe that resends a segment goes through
//! `__tcp_retransmit_skb`, which counts `Tcp.RetransSegs` but does not fire
//! `tcp_retransmit_skb` on older kernels; `TcpExt.TCPLossProbes` counts those.
//!
//! Known gap (seen on 6.18): hits of these tracepoints from timer context on an otherwise
//! idle CPU — the RTO retransmits of an idle connection — sometimes never reach perf rings
//! (no lost-sample record either), while an ftrace instance sees them. Busy CPUs do not show
//! it. Retransmit counts are therefore lower bounds; compare with `Tcp.RetransSegs`.

use crate::error::Result;
use crate::format::{EventFormat, SymbolTable};
use crate::record::{common_type, Slot};
use crate::session::{Session, SessionOptions, SessionStats};
use crate::tracefs::Tracefs;
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
const IPPROTO_TCP: u64 = 6;

/// Where an event keeps its addresses.
#[derive(Debug, Clone, Copy)]
enum AddrSlots {
    /// family, sport, dport (host order), saddr[4], daddr[4], saddr_v6[16], daddr_v6[16].
    Split { family: Slot, sport: Slot, dport: Slot, saddr: Slot, daddr: Slot, saddr6: Slot, daddr6: Slot },
    /// saddr[28], daddr[28]: a `struct sockaddr_in` or `sockaddr_in6` each (tcp_send_reset, 6.10+).
    Sockaddr { saddr: Slot, daddr: Slot },
}

impl AddrSlots {
    fn resolve(fmt: &EventFormat, ev: &str) -> Result<Self> {
        if fmt.field("sport").is_some() {
            let r = |n| Slot::required(fmt, ev, n);
            Ok(AddrSlots::Split {
                family: r("family")?,
                sport: r("sport")?,
                dport: r("dport")?,
                saddr: r("saddr")?,
                daddr: r("daddr")?,
                saddr6: r("saddr_v6")?,
                daddr6: r("daddr_v6")?,
            })
        } else {
            Ok(AddrSlots::Sockaddr {
                saddr: Slot::required(fmt, ev, "saddr")?,
                daddr: Slot::required(fmt, ev, "daddr")?,
            })
        }
    }

    fn decode(&self, raw: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
        match *self {
            AddrSlots::Split { family, sport, dport, saddr, daddr, saddr6, daddr6 } => {
                let sp = u16::try_from(sport.uint(raw)?).ok()?;
                let dp = u16::try_from(dport.uint(raw)?).ok()?;
                let (s, d): (IpAddr, IpAddr) = match family.uint(raw)? {
                    AF_INET => {
                        (Ipv4Addr::from(saddr.array::<4>(raw)?).into(), Ipv4Addr::from(daddr.array::<4>(raw)?).into())
                    }
                    AF_INET6 => (
                        Ipv6Addr::from(saddr6.array::<16>(raw)?).into(),
                        Ipv6Addr::from(daddr6.array::<16>(raw)?).into(),
                    ),
                    _ => return None,
                };
                Some((SocketAddr::new(s, sp), SocketAddr::new(d, dp)))
            }
            AddrSlots::Sockaddr { saddr, daddr } => Some((sockaddr(saddr.bytes(raw)?)?, sockaddr(daddr.bytes(raw)?)?)),
        }
    }
}

/// Decodes a `struct sockaddr_in`/`sockaddr_in6` (family in host order, port in network order).
pub fn sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
    match u64::from(family) {
        AF_INET => Some(SocketAddr::new(Ipv4Addr::from(<[u8; 4]>::try_from(b.get(4..8)?).ok()?).into(), port)),
        AF_INET6 => Some(SocketAddr::new(Ipv6Addr::from(<[u8; 16]>::try_from(b.get(8..24)?).ok()?).into(), port)),
        _ => None,
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpEventKind {
    /// A segment was retransmitted.
    Retransmit,
    /// This host sent a RST.
    SendReset,
    /// A socket of this host received a RST.
    ReceiveReset,
    /// A socket changed state.
    StateChange,
}

/// One decoded TCP event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TcpEvent {
    /// CLOCK_MONOTONIC ns.
    #[serde(skip)]
    pub time_ns: u64,
    /// Milliseconds since the trace started.
    pub t_ms: f64,
    /// What happened.
    pub kind: TcpEventKind,
    /// This host's end.
    pub local: SocketAddr,
    /// The peer.
    pub remote: SocketAddr,
    /// The socket's state (the old state of a transition).
    pub state: Option<String>,
    /// The new state of a transition.
    pub new_state: Option<String>,
    /// The reason the kernel gives (for resets sent).
    pub reason: Option<String>,
    /// The kernel's socket address (identifies the socket; 0 when the event has none, as for
    /// a RST answering a packet no socket wanted). Not printed.
    #[serde(skip)]
    pub sock: u64,
    /// For retransmits: the error of the attempt (0 sent; kernels since 6.11 also report
    /// attempts that failed, e.g. -EBUSY while the original is still queued on the host).
    pub err: Option<i64>,
}

#[derive(Debug, Clone)]
struct EventDecoder {
    id: u16,
    kind: TcpEventKind,
    addrs: AddrSlots,
    state: Option<Slot>,
    new_state: Option<Slot>,
    reason: Option<(Slot, SymbolTable)>,
    protocol: Option<Slot>,
    sock: Option<Slot>,
    err: Option<Slot>,
}

/// Decodes the four TCP tracepoints of the running kernel.
#[derive(Debug, Clone, Default)]
pub struct TcpDecoder {
    events: Vec<EventDecoder>,
    states: SymbolTable,
}

impl TcpDecoder {
    /// Builds decoders from whichever formats are given (`tcp_retransmit_skb`,
    /// `tcp_send_reset`, `tcp_receive_reset`, `inet_sock_set_state`, by their `name`).
    pub fn new(formats: &[&EventFormat]) -> Result<Self> {
        let mut d = TcpDecoder::default();
        for fmt in formats {
            let (kind, ev) = match fmt.name.as_str() {
                "tcp_retransmit_skb" => (TcpEventKind::Retransmit, "tcp/tcp_retransmit_skb"),
                "tcp_send_reset" => (TcpEventKind::SendReset, "tcp/tcp_send_reset"),
                "tcp_receive_reset" => (TcpEventKind::ReceiveReset, "tcp/tcp_receive_reset"),
                "inet_sock_set_state" => (TcpEventKind::StateChange, "sock/inet_sock_set_state"),
                _ => continue,
            };
            let addrs = AddrSlots::resolve(fmt, ev)?;
            let (state, new_state) = if kind == TcpEventKind::StateChange {
                d.states = fmt.symbols("newstate");
                (Slot::optional(fmt, "oldstate"), Slot::optional(fmt, "newstate"))
            } else {
                (Slot::optional(fmt, "state"), None)
            };
            let reason = Slot::optional(fmt, "reason").map(|s| (s, fmt.symbols("reason")));
            d.events.push(EventDecoder {
                id: fmt.id,
                kind,
                addrs,
                state,
                new_state,
                reason,
                protocol: Slot::optional(fmt, "protocol"),
                sock: Slot::optional(fmt, "skaddr"),
                err: Slot::optional(fmt, "err"),
            });
        }
        Ok(d)
    }

    /// The kernel's TCP state names (from inet_sock_set_state).
    pub fn states(&self) -> &SymbolTable {
        &self.states
    }

    fn state_name(&self, v: i64) -> Option<String> {
        if v <= 0 {
            return None;
        }
        let v = u64::try_from(v).ok()?;
        Some(self.states.name(v).map_or_else(|| format!("STATE_{v}"), str::to_owned))
    }

    /// Decodes a raw record of one of the four events; `None` for other events, records too
    /// short, unknown families and non-TCP state changes.
    pub fn decode(&self, time_ns: u64, raw: &[u8]) -> Option<TcpEvent> {
        let id = common_type(raw)?;
        let e = self.events.iter().find(|e| e.id == id)?;
        if let Some(p) = e.protocol {
            if p.uint(raw)? != IPPROTO_TCP {
                return None;
            }
        }
        let (local, remote) = e.addrs.decode(raw)?;
        let state = e.state.and_then(|s| s.int(raw)).and_then(|v| self.state_name(v));
        let new_state = e.new_state.and_then(|s| s.int(raw)).and_then(|v| self.state_name(v));
        let reason = e
            .reason
            .as_ref()
            .and_then(|(s, t)| s.uint(raw).map(|v| t.name(v).map_or_else(|| format!("REASON_{v}"), str::to_owned)));
        let sock = e.sock.and_then(|s| s.uint(raw)).unwrap_or(0);
        let err = e.err.and_then(|s| s.int(raw));
        Some(TcpEvent { time_ns, t_ms: 0.0, kind: e.kind, local, remote, state, new_state, reason, sock, err })
    }
}

/// Which connections to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFilter {
    /// Either end has this address.
    pub host: Option<IpAddr>,
    /// Either end has this port.
    pub port: Option<u16>,
}

impl TcpFilter {
    /// Whether the event's endpoints match.
    pub fn matches(&self, local: &SocketAddr, remote: &SocketAddr) -> bool {
        self.host.is_none_or(|h| local.ip() == h || remote.ip() == h)
            && self.port.is_none_or(|p| local.port() == p || remote.port() == p)
    }
}

/// Time spent in one state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateTime {
    /// The kernel's name (`TCP_ESTABLISHED`).
    pub state: String,
    /// Milliseconds, from the first transition seen on.
    pub ms: f64,
}

/// One socket over the trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowSummary {
    /// This host's end.
    pub local: SocketAddr,
    /// The peer.
    pub remote: SocketAddr,
    /// First event, ms since the start.
    pub first_ms: f64,
    /// Last event, ms since the start.
    pub last_ms: f64,
    /// Segments retransmitted.
    pub retransmits: u64,
    /// Retransmissions attempted but not sent.
    pub retransmit_failures: u64,
    /// RSTs sent.
    pub resets_sent: u64,
    /// RSTs received.
    pub resets_received: u64,
    /// Reasons of the RSTs sent.
    pub reset_reasons: Vec<String>,
    /// State transitions seen.
    pub transitions: u64,
    /// States passed through, in order (the first one is the old state of the first transition).
    pub path: Vec<String>,
    /// Time in each state, from the first transition to the end of the trace.
    pub time_in_state: Vec<StateTime>,
}

/// A socket: the kernel's socket address and the peer, or both ends when there is no socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FlowKey {
    Sock(u64, SocketAddr),
    Ends(SocketAddr, SocketAddr),
}

#[derive(Debug, Clone)]
struct FlowState {
    local: SocketAddr,
    remote: SocketAddr,
    closed: bool,
    first_ns: u64,
    last_ns: u64,
    retransmits: u64,
    retransmit_failures: u64,
    resets_sent: u64,
    resets_received: u64,
    reset_reasons: Vec<String>,
    transitions: u64,
    path: Vec<String>,
    current: Option<(String, u64)>,
    time: Vec<(String, u64)>,
}

/// Totals over all matching events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TcpTotals {
    /// Retransmitted segments.
    pub retransmits: u64,
    /// Retransmissions the kernel attempted but did not send (the tracepoint's `err` ≠ 0).
    pub retransmit_failures: u64,
    /// RSTs sent.
    pub resets_sent: u64,
    /// RSTs received.
    pub resets_received: u64,
    /// State transitions.
    pub state_changes: u64,
}

fn failed(ev: &TcpEvent) -> bool {
    ev.err.is_some_and(|e| e != 0)
}

/// Builds the timeline and per-socket summaries, with fixed bounds.
#[derive(Debug, Clone)]
pub struct TcpAggregator {
    filter: TcpFilter,
    base_ns: u64,
    events: Vec<TcpEvent>,
    events_dropped: u64,
    index: HashMap<FlowKey, usize>,
    flows: Vec<FlowState>,
    flows_dropped: u64,
    totals: TcpTotals,
}

/// Most events kept in the timeline.
pub const MAX_TIMELINE: usize = 10_000;
/// Most sockets summarised.
pub const MAX_FLOWS: usize = 4096;
const MAX_PATH: usize = 32;
const MAX_REASONS: usize = 8;

fn ms(base: u64, t: u64) -> f64 {
    t.saturating_sub(base) as f64 / 1e6
}

impl TcpAggregator {
    /// Starts an aggregation whose times count from `base_ns` (CLOCK_MONOTONIC).
    pub fn new(filter: TcpFilter, base_ns: u64) -> Self {
        TcpAggregator {
            filter,
            base_ns,
            events: Vec::new(),
            events_dropped: 0,
            index: HashMap::new(),
            flows: Vec::new(),
            flows_dropped: 0,
            totals: TcpTotals::default(),
        }
    }

    /// Adds one event (ignored when the filter does not match).
    pub fn add(&mut self, mut ev: TcpEvent) {
        if !self.filter.matches(&ev.local, &ev.remote) {
            return;
        }
        let t = ev.time_ns;
        match ev.kind {
            TcpEventKind::Retransmit if failed(&ev) => self.totals.retransmit_failures += 1,
            TcpEventKind::Retransmit => self.totals.retransmits += 1,
            TcpEventKind::SendReset => self.totals.resets_sent += 1,
            TcpEventKind::ReceiveReset => self.totals.resets_received += 1,
            TcpEventKind::StateChange => self.totals.state_changes += 1,
        }
        let key = if ev.sock != 0 { FlowKey::Sock(ev.sock, ev.remote) } else { FlowKey::Ends(ev.local, ev.remote) };
        // A socket address reused after a close starts a new flow.
        if ev.kind == TcpEventKind::StateChange {
            if let Some(&i) = self.index.get(&key) {
                if self.flows.get(i).is_some_and(|f| f.closed) {
                    self.index.remove(&key);
                }
            }
        }
        let idx = match self.index.get(&key) {
            Some(&i) => Some(i),
            None if self.flows.len() >= MAX_FLOWS => {
                self.flows_dropped += 1;
                None
            }
            None => {
                self.flows.push(FlowState {
                    local: ev.local,
                    remote: ev.remote,
                    closed: false,
                    first_ns: t,
                    last_ns: t,
                    retransmits: 0,
                    retransmit_failures: 0,
                    resets_sent: 0,
                    resets_received: 0,
                    reset_reasons: Vec::new(),
                    transitions: 0,
                    path: Vec::new(),
                    current: None,
                    time: Vec::new(),
                });
                self.index.insert(key, self.flows.len() - 1);
                Some(self.flows.len() - 1)
            }
        };
        if let Some(f) = idx.and_then(|i| self.flows.get_mut(i)) {
            f.last_ns = f.last_ns.max(t);
            // The source port is chosen after the SYN_SENT transition: learn it later.
            if f.local.port() == 0 && ev.local.port() != 0 {
                f.local = ev.local;
            }
            match ev.kind {
                TcpEventKind::Retransmit if failed(&ev) => f.retransmit_failures += 1,
                TcpEventKind::Retransmit => f.retransmits += 1,
                TcpEventKind::SendReset => {
                    f.resets_sent += 1;
                    if let Some(r) = &ev.reason {
                        if !f.reset_reasons.contains(r) && f.reset_reasons.len() < MAX_REASONS {
                            f.reset_reasons.push(r.clone());
                        }
                    }
                }
                TcpEventKind::ReceiveReset => f.resets_received += 1,
                TcpEventKind::StateChange => {
                    f.transitions += 1;
                    if let Some((cur, since)) = f.current.take() {
                        add_time(&mut f.time, cur, t.saturating_sub(since));
                    }
                    if f.path.is_empty() {
                        f.path.extend(ev.state.clone());
                    }
                    if let Some(new) = &ev.new_state {
                        if f.path.len() < MAX_PATH {
                            f.path.push(new.clone());
                        }
                        // A closed socket is gone: no time accrues in TCP_CLOSE.
                        f.closed = new == "TCP_CLOSE";
                        f.current = (!f.closed).then(|| (new.clone(), t));
                    }
                }
            }
        }
        if self.events.len() < MAX_TIMELINE {
            ev.t_ms = ms(self.base_ns, t);
            self.events.push(ev);
        } else {
            self.events_dropped += 1;
        }
    }

    /// The report, closing open states at `end_ns`.
    pub fn report(&self, end_ns: u64) -> TcpReport {
        let mut events = self.events.clone();
        events.sort_by_key(|e| e.time_ns);
        let mut flows: Vec<FlowSummary> = self
            .flows
            .iter()
            .map(|f| {
                let mut time = f.time.clone();
                if let Some((cur, since)) = &f.current {
                    add_time(&mut time, cur.clone(), end_ns.saturating_sub(*since));
                }
                FlowSummary {
                    local: f.local,
                    remote: f.remote,
                    first_ms: ms(self.base_ns, f.first_ns),
                    last_ms: ms(self.base_ns, f.last_ns),
                    retransmits: f.retransmits,
                    retransmit_failures: f.retransmit_failures,
                    resets_sent: f.resets_sent,
                    resets_received: f.resets_received,
                    reset_reasons: f.reset_reasons.clone(),
                    transitions: f.transitions,
                    path: f.path.clone(),
                    time_in_state: time
                        .into_iter()
                        .map(|(state, ns)| StateTime { state, ms: ns as f64 / 1e6 })
                        .collect(),
                }
            })
            .collect();
        flows.sort_by(|a, b| {
            let w = |f: &FlowSummary| f.retransmits + f.resets_sent + f.resets_received;
            w(b).cmp(&w(a))
                .then_with(|| a.first_ms.total_cmp(&b.first_ms))
                .then_with(|| a.local.cmp(&b.local))
                .then_with(|| a.remote.cmp(&b.remote))
        });
        TcpReport {
            kernel: String::new(),
            duration_s: ms(self.base_ns, end_ns) / 1e3,
            filter: FilterDesc { host: self.filter.host, port: self.filter.port },
            session: SessionStats::default(),
            totals: self.totals,
            events,
            events_dropped: self.events_dropped,
            flows,
            flows_dropped: self.flows_dropped,
            notes: Vec::new(),
        }
    }
}

fn add_time(time: &mut Vec<(String, u64)>, state: String, ns: u64) {
    match time.iter_mut().find(|(s, _)| *s == state) {
        Some((_, t)) => *t += ns,
        None => time.push((state, ns)),
    }
}

/// The filter, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FilterDesc {
    /// `--host`.
    pub host: Option<IpAddr>,
    /// `--port`.
    pub port: Option<u16>,
}

/// What `netcase trace` saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TcpReport {
    /// Kernel release.
    pub kernel: String,
    /// Seconds traced.
    pub duration_s: f64,
    /// The filter applied.
    pub filter: FilterDesc,
    /// CPUs, samples, lost samples.
    pub session: SessionStats,
    /// Totals of matching events.
    pub totals: TcpTotals,
    /// The timeline (at most [`MAX_TIMELINE`] events).
    pub events: Vec<TcpEvent>,
    /// Matching events beyond the timeline's bound (still in totals and flows).
    pub events_dropped: u64,
    /// Per socket, most retransmits and resets first.
    pub flows: Vec<FlowSummary>,
    /// Events of sockets beyond [`MAX_FLOWS`] (still in totals).
    pub flows_dropped: u64,
    /// Things the reader should know.
    pub notes: Vec<String>,
}

impl TcpReport {
    /// The socket with these ends.
    pub fn flow(&self, local: SocketAddr, remote: SocketAddr) -> Option<&FlowSummary> {
        self.flows.iter().find(|f| f.local == local && f.remote == remote)
    }
}

/// The tracepoints `netcase trace` reads.
pub const TCP_TRACEPOINTS: [(&str, &str); 4] = [
    ("tcp", "tcp_retransmit_skb"),
    ("tcp", "tcp_send_reset"),
    ("tcp", "tcp_receive_reset"),
    ("sock", "inet_sock_set_state"),
];

/// An attached TCP tracer; dropping it detaches.
pub struct TcpTracer {
    session: Session,
    decoder: TcpDecoder,
    agg: TcpAggregator,
    notes: Vec<String>,
    started: bool,
}

impl TcpTracer {
    /// Reads the formats (mounting tracefs if needed) and opens the events present in this
    /// kernel on every CPU, disabled.
    pub fn open(filter: TcpFilter, opts: SessionOptions) -> Result<Self> {
        let mut notes = Vec::new();
        let mut formats = Vec::new();
        {
            let tfs = Tracefs::open()?;
            notes.extend(tfs.note());
            for (sys, name) in TCP_TRACEPOINTS {
                match tfs.format(sys, name) {
                    Ok(f) => formats.push(f),
                    Err(crate::Error::NoTracepoint(e)) => {
                        notes.push(format!("this kernel has no {e}: its events are missing"))
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if formats.is_empty() {
            return Err(crate::Error::NoTracepoint("tcp/tcp_retransmit_skb".into()));
        }
        let refs: Vec<&EventFormat> = formats.iter().collect();
        let decoder = TcpDecoder::new(&refs)?;
        let session = Session::open(&refs, opts)?;
        Ok(TcpTracer { session, decoder, agg: TcpAggregator::new(filter, 0), notes, started: false })
    }

    /// Enables the events: times count from now.
    pub fn start(&mut self) -> Result<()> {
        if !self.started {
            self.agg.base_ns = crate::sys::monotonic_ns();
            self.session.start()?;
            self.started = true;
        }
        Ok(())
    }

    /// Traces until `duration` has passed since [`TcpTracer::start`] or `stop()` is true,
    /// then detaches and reports.
    pub fn run(mut self, duration: Option<Duration>, stop: &dyn Fn() -> bool) -> Result<TcpReport> {
        self.start()?;
        let (decoder, agg) = (&self.decoder, &mut self.agg);
        self.session.run(duration, stop, &mut |s| {
            if let Some(ev) = decoder.decode(s.time_ns, s.raw) {
                agg.add(ev);
            }
        })?;
        let end = crate::sys::monotonic_ns();
        let stats = self.session.stats();
        drop(self.session);
        let mut r = self.agg.report(end);
        r.kernel = crate::session::kernel_release();
        r.session = stats;
        r.notes = self.notes;
        if stats.lost > 0 {
            r.notes
                .push(format!("{} samples were lost because the rings were full: counts are lower bounds", stats.lost));
        }
        if r.events_dropped > 0 {
            r.notes.push(format!(
                "the timeline keeps the first {MAX_TIMELINE} events; {} more are only counted",
                r.events_dropped
            ));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETRANS: &str = include_str!("../tests/data/6.18/tcp_retransmit_skb.format");
    const SEND_RESET: &str = include_str!("../tests/data/6.18/tcp_send_reset.format");
    const RECV_RESET: &str = include_str!("../tests/data/6.18/tcp_receive_reset.format");
    const SET_STATE: &str = include_str!("../tests/data/6.18/inet_sock_set_state.format");

    fn decoder() -> TcpDecoder {
        let f: Vec<EventFormat> = [
            ("tcp/tcp_retransmit_skb", RETRANS),
            ("tcp/tcp_send_reset", SEND_RESET),
            ("tcp/tcp_receive_reset", RECV_RESET),
            ("sock/inet_sock_set_state", SET_STATE),
        ]
        .iter()
        .map(|(n, t)| EventFormat::parse(n, t).unwrap())
        .collect();
        TcpDecoder::new(&f.iter().collect::<Vec<_>>()).unwrap()
    }

    fn put(r: &mut [u8], off: usize, b: &[u8]) {
        r[off..off + b.len()].copy_from_slice(b);
    }

    fn set_state(old: i32, new: i32, sport: u16, dport: u16) -> Vec<u8> {
        let mut r = vec![0u8; 72];
        put(&mut r, 0, &2287u16.to_ne_bytes());
        put(&mut r, 16, &old.to_ne_bytes());
        put(&mut r, 20, &new.to_ne_bytes());
        put(&mut r, 24, &sport.to_ne_bytes());
        put(&mut r, 26, &dport.to_ne_bytes());
        put(&mut r, 28, &2u16.to_ne_bytes());
        put(&mut r, 30, &6u16.to_ne_bytes());
        put(&mut r, 32, &[10, 202, 0, 1]);
        put(&mut r, 36, &[10, 202, 0, 2]);
        r
    }

    #[test]
    fn decodes_retransmit_v4() {
        let d = decoder();
        let mut r = vec![0u8; 80];
        put(&mut r, 0, &2281u16.to_ne_bytes());
        put(&mut r, 24, &1i32.to_ne_bytes());
        put(&mut r, 28, &40000u16.to_ne_bytes());
        put(&mut r, 30, &5201u16.to_ne_bytes());
        put(&mut r, 32, &2u16.to_ne_bytes());
        put(&mut r, 34, &[10, 202, 0, 1]);
        put(&mut r, 38, &[10, 202, 0, 2]);
        let e = d.decode(5, &r).unwrap();
        assert_eq!(e.kind, TcpEventKind::Retransmit);
        assert_eq!(e.local, "10.202.0.1:40000".parse().unwrap());
        assert_eq!(e.remote, "10.202.0.2:5201".parse().unwrap());
        assert_eq!(e.state.as_deref(), Some("TCP_ESTABLISHED"));
        assert!(d.decode(5, &r[..40]).is_none());
    }

    #[test]
    fn decodes_send_reset_sockaddrs_and_reason() {
        let d = decoder();
        let mut r = vec![0u8; 88];
        put(&mut r, 0, &2280u16.to_ne_bytes());
        put(&mut r, 24, &1i32.to_ne_bytes());
        put(&mut r, 28, &12u32.to_ne_bytes());
        // sockaddr_in6 [fd00::1]:80 → [fd00::2]:4000
        put(&mut r, 32, &10u16.to_ne_bytes());
        put(&mut r, 34, &80u16.to_be_bytes());
        put(&mut r, 40, &"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        put(&mut r, 60, &10u16.to_ne_bytes());
        put(&mut r, 62, &4000u16.to_be_bytes());
        put(&mut r, 68, &"fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        let e = d.decode(0, &r).unwrap();
        assert_eq!(e.kind, TcpEventKind::SendReset);
        assert_eq!(e.local, "[fd00::1]:80".parse().unwrap());
        assert_eq!(e.remote, "[fd00::2]:4000".parse().unwrap());
        assert_eq!(e.reason.as_deref(), Some("TCP_ABORT_ON_LINGER"));
        // Unknown family: not an event.
        put(&mut r, 32, &99u16.to_ne_bytes());
        assert!(d.decode(0, &r).is_none());
    }

    #[test]
    fn flow_summary_times_states() {
        let d = decoder();
        let mut agg = TcpAggregator::new(TcpFilter { host: None, port: Some(5201) }, 1_000_000);
        agg.add(d.decode(1_000_000, &set_state(7, 2, 40000, 5201)).unwrap());
        agg.add(d.decode(2_000_000, &set_state(2, 1, 40000, 5201)).unwrap());
        agg.add(d.decode(12_000_000, &set_state(1, 4, 40000, 5201)).unwrap());
        agg.add(d.decode(13_000_000, &set_state(7, 2, 40001, 80)).unwrap()); // filtered out
        let r = agg.report(21_000_000);
        assert_eq!(r.totals.state_changes, 3);
        assert_eq!(r.flows.len(), 1);
        let f = &r.flows[0];
        assert_eq!(f.path, ["TCP_CLOSE", "TCP_SYN_SENT", "TCP_ESTABLISHED", "TCP_FIN_WAIT1"]);
        let t = |s: &str| f.time_in_state.iter().find(|x| x.state == s).map(|x| x.ms);
        assert_eq!(t("TCP_SYN_SENT"), Some(1.0));
        assert_eq!(t("TCP_ESTABLISHED"), Some(10.0));
        assert_eq!(t("TCP_FIN_WAIT1"), Some(9.0));
        assert_eq!(r.events[1].t_ms, 1.0);
    }

    #[test]
    fn socket_identity_learns_the_port_and_survives_reuse() {
        let d = decoder();
        let with_sk = |old, new, sport| {
            let mut r = set_state(old, new, sport, 5201);
            put(&mut r, 8, &0xffff_8880_0000_1000u64.to_ne_bytes());
            r
        };
        let mut agg = TcpAggregator::new(TcpFilter::default(), 0);
        agg.add(d.decode(1, &with_sk(7, 2, 0)).unwrap()); // port not chosen yet
        agg.add(d.decode(2, &with_sk(2, 1, 40000)).unwrap());
        agg.add(d.decode(3, &with_sk(1, 7, 40000)).unwrap());
        agg.add(d.decode(4, &with_sk(7, 2, 0)).unwrap()); // same sock reused
        agg.add(d.decode(5, &with_sk(2, 1, 40002)).unwrap());
        let r = agg.report(10);
        assert_eq!(r.flows.len(), 2);
        let f = r.flow("10.202.0.1:40000".parse().unwrap(), "10.202.0.2:5201".parse().unwrap()).unwrap();
        assert_eq!(f.path, ["TCP_CLOSE", "TCP_SYN_SENT", "TCP_ESTABLISHED", "TCP_CLOSE"]);
        assert!(f.time_in_state.iter().all(|s| s.state != "TCP_CLOSE"));
        assert!(r.flow("10.202.0.1:40002".parse().unwrap(), "10.202.0.2:5201".parse().unwrap()).is_some());
    }

    #[test]
    fn non_tcp_state_changes_are_skipped() {
        let d = decoder();
        let mut r = set_state(7, 2, 1, 2);
        put(&mut r, 30, &132u16.to_ne_bytes());
        assert!(d.decode(0, &r).is_none());
    }
}
