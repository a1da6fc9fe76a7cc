//! `probe dns`: lookups the way glibc's resolver sends them, timed per server.
//!
//! glibc's `getaddrinfo(AF_UNSPEC)` sends the A and the AAAA query at once from one UDP
//! socket (one 5-tuple, [`Mode::Parallel`]); `options single-request` sends them one after
//! the other on that socket ([`Mode::SingleRequest`]); `options single-request-reopen` sends
//! them from different sockets ([`Mode::SingleRequestReopen`]). A query left unanswered is
//! sent again after the resolver's timeout (`timeout:N`, 5 s by default), up to `attempts`
//! sends: a lookup that waited that long for one of its two answers is the 5 s stall of case
//! `dns-conntrack-race-5s` when the other answer came at once.
//!
//! The report also carries this host's resolver order for the name (nsswitch.conf, the hosts
//! file; case `resolver-order`). Answers are read with checked reads; a malformed datagram
//! is ignored like one for another query.

use crate::error::{Error, Result};
use crate::stats::Percentiles;
use netcase_model::{CaseId, Confidence, Evidence, Finding, Severity, Subject};
use netcase_wire::Reader;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Record type A.
pub const A: u16 = 1;
/// Record type AAAA.
pub const AAAA: u16 = 28;

/// How the A and AAAA queries of a lookup are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Both at once from one socket (glibc's default).
    Parallel,
    /// One after the other on one socket (`options single-request`).
    SingleRequest,
    /// At once, from two sockets (`options single-request-reopen`).
    SingleRequestReopen,
}

impl Mode {
    /// The resolv.conf spelling (`parallel` for the default).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Parallel => "parallel",
            Mode::SingleRequest => "single-request",
            Mode::SingleRequestReopen => "single-request-reopen",
        }
    }

    /// Parses [`Mode::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::Parallel, Mode::SingleRequest, Mode::SingleRequestReopen].into_iter().find(|m| m.as_str() == s)
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct DnsOptions {
    /// The name to look up.
    pub name: String,
    /// The servers (`None`: the nameservers of resolv.conf).
    pub servers: Option<Vec<SocketAddr>>,
    /// Lookups per server and mode.
    pub count: u32,
    /// Gap between lookup starts.
    pub interval: Duration,
    /// Lookups in flight at once.
    pub concurrency: u32,
    /// Wait before a query is sent again (`None`: resolv.conf's `timeout`, 5 s by default).
    pub timeout: Option<Duration>,
    /// Sends of a query at most (`None`: resolv.conf's `attempts`, 2 by default).
    pub attempts: Option<u32>,
    /// The modes (`None`: the one resolv.conf's options select).
    pub modes: Option<Vec<Mode>>,
    /// When parallel lookups stall, run as many with `single-request-reopen` to compare.
    pub compare: bool,
    /// Read the resolver files as `ip netns exec NAME` would (`/etc/netns/NAME/` first).
    pub netns: Option<String>,
}

/// One query of a lookup.
#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    /// `A` or `AAAA`.
    pub qtype: &'static str,
    /// From the lookup's start to this answer.
    pub latency_ms: Option<f64>,
    /// Times it was sent.
    pub sends: u32,
    /// The answer's RCODE.
    pub rcode: Option<u8>,
    /// Answer records.
    pub answers: u16,
    /// The local port it was sent from.
    pub source_port: u16,
}

/// One lookup (A and AAAA).
#[derive(Debug, Clone, Serialize)]
pub struct Lookup {
    /// Its number per server and mode.
    pub seq: u32,
    /// The server.
    pub server: SocketAddr,
    /// How the queries were sent.
    pub mode: Mode,
    /// Until both answers came (what getaddrinfo waits); `None` when one never came.
    pub total_ms: Option<f64>,
    /// A query was answered only after it was sent again.
    pub stalled: bool,
    /// The queries.
    pub queries: Vec<QueryResult>,
}

/// Lookups to one server in one mode.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStats {
    /// The server.
    pub server: SocketAddr,
    /// The mode.
    pub mode: Mode,
    /// Lookups made.
    pub lookups: u64,
    /// Lookups with both answers.
    pub answered: u64,
    /// Lookups that stalled (a query answered only after it was sent again).
    pub stalled: u64,
    /// Queries never answered.
    pub unanswered_queries: u64,
    /// Percentiles of the answered lookups' totals.
    pub latency: Option<Percentiles>,
}

/// This host's resolver order for the name.
#[derive(Debug, Clone, Serialize)]
pub struct ResolverOrder {
    /// Whether nsswitch.conf exists.
    pub nsswitch_present: bool,
    /// Its `hosts:` sources in order (`["files", "dns"]`); glibc's default without it.
    pub order: Vec<String>,
    /// Addresses the hosts file gives the name.
    pub hosts_file: Vec<IpAddr>,
    /// The name goes to DNS before the hosts file is read.
    pub dns_before_files: bool,
    /// resolv.conf's nameservers.
    pub nameservers: Vec<String>,
    /// resolv.conf's options.
    pub options: Vec<String>,
    /// The files read.
    pub files: Vec<String>,
}

/// The result of `probe dns`.
#[derive(Debug, Clone, Serialize)]
pub struct DnsReport {
    /// The name.
    pub name: String,
    /// Wait before a query is sent again.
    pub timeout_ms: f64,
    /// Sends of a query at most.
    pub attempts: u32,
    /// Per server and mode.
    pub servers: Vec<ServerStats>,
    /// The resolver order.
    pub resolver: ResolverOrder,
    /// Every lookup.
    pub lookups: Vec<Lookup>,
    /// How long the run took.
    pub duration_s: f64,
}

/// A query for `name` of type `qtype` with id `id` (recursion desired).
pub fn query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(Error::Target { target: name.to_owned(), reason: "not a DNS name".into() });
        }
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if m.len() > 512 {
        return Err(Error::Target { target: name.to_owned(), reason: "name too long".into() });
    }
    Ok(m)
}

/// What an answer says: (id, qtype of its question, rcode, answer count); `None` for a
/// datagram that is not a response with one question.
pub fn parse_answer(m: &[u8]) -> Option<(u16, u16, u8, u16)> {
    let mut r = Reader::new(m);
    let id = r.u16_be()?;
    let flags = r.u16_be()?;
    if flags & 0x8000 == 0 {
        return None;
    }
    let qd = r.u16_be()?;
    let an = r.u16_be()?;
    r.skip(4)?;
    if qd != 1 {
        return None;
    }
    for _ in 0..128 {
        let len = r.u8()?;
        if len == 0 {
            break;
        }
        if len & 0xc0 == 0xc0 {
            r.u8()?;
            break;
        }
        r.skip(usize::from(len))?;
    }
    let qtype = r.u16_be()?;
    Some((id, qtype, (flags & 0x000f) as u8, an))
}

/// A query in flight.
struct Pending {
    sock: usize,
    qtype: u16,
    id: u16,
    msg: Vec<u8>,
    sends: u32,
    last: Instant,
    answer: Option<(f64, u8, u16)>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Sends the queries (each on its socket), resends each unanswered one after `timeout` up
/// to `attempts` sends, and collects the answers; times count from `t0`.
fn exchange(socks: &[UdpSocket], qs: &mut [Pending], t0: Instant, timeout: Duration, attempts: u32) {
    for q in qs.iter_mut() {
        if let Some(s) = socks.get(q.sock) {
            let _ = s.send(&q.msg);
        }
        q.sends = 1;
        q.last = Instant::now();
    }
    let mut buf = [0u8; 4096];
    // Bounded: every query's sends and waits, and a margin.
    let limit = Instant::now() + timeout * attempts.max(1) + Duration::from_secs(1);
    while qs.iter().any(|q| q.answer.is_none() && (q.sends < attempts || q.last.elapsed() < timeout))
        && Instant::now() < limit
    {
        let now = Instant::now();
        for q in qs.iter_mut().filter(|q| q.answer.is_none()) {
            if now.saturating_duration_since(q.last) >= timeout && q.sends < attempts {
                if let Some(s) = socks.get(q.sock) {
                    let _ = s.send(&q.msg);
                }
                q.sends += 1;
                q.last = now;
            }
        }
        let wake = qs
            .iter()
            .filter(|q| q.answer.is_none())
            .map(|q| (q.last + timeout).saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_millis(1), Duration::from_millis(200));
        let mut pfds: Vec<libc::pollfd> =
            socks.iter().map(|s| libc::pollfd { fd: s.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
        // SAFETY: pfds is a valid array of pfds.len() pollfds.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, wake.as_millis() as libc::c_int) };
        if r <= 0 {
            continue;
        }
        for (i, s) in socks.iter().enumerate() {
            for _ in 0..16 {
                let Ok(n) = s.recv(&mut buf) else { break };
                let at = ms(t0.elapsed());
                let Some((id, qtype, rcode, an)) = buf.get(..n).and_then(parse_answer) else { continue };
                if let Some(q) =
                    qs.iter_mut().find(|q| q.sock == i && q.id == id && q.qtype == qtype && q.answer.is_none())
                {
                    q.answer = Some((at, rcode, an));
                }
            }
        }
    }
}

fn socket_to(server: SocketAddr) -> Result<UdpSocket> {
    let bind: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(bind).map_err(|e| Error::io("udp socket", e))?;
    s.connect(server).map_err(|e| Error::io(format!("connect {server}"), e))?;
    s.set_nonblocking(true).map_err(|e| Error::io("nonblocking", e))?;
    Ok(s)
}

/// One lookup of `name` at `server` in `mode`.
fn lookup(
    seq: u32,
    name: &str,
    server: SocketAddr,
    mode: Mode,
    timeout: Duration,
    attempts: u32,
    ids: (u16, u16),
) -> Result<Lookup> {
    let pend = |sock: usize, qtype: u16, id: u16| -> Result<Pending> {
        Ok(Pending { sock, qtype, id, msg: query(id, name, qtype)?, sends: 0, last: Instant::now(), answer: None })
    };
    let t0 = Instant::now();
    let (socks, qs) = match mode {
        Mode::Parallel => {
            let s = socket_to(server)?;
            let mut qs = vec![pend(0, A, ids.0)?, pend(0, AAAA, ids.1)?];
            exchange(std::slice::from_ref(&s), &mut qs, t0, timeout, attempts);
            (vec![s], qs)
        }
        Mode::SingleRequest => {
            let s = socket_to(server)?;
            let mut a = [pend(0, A, ids.0)?];
            exchange(std::slice::from_ref(&s), &mut a, t0, timeout, attempts);
            let mut b = [pend(0, AAAA, ids.1)?];
            exchange(std::slice::from_ref(&s), &mut b, t0, timeout, attempts);
            let [a] = a;
            let [b] = b;
            (vec![s], vec![a, b])
        }
        Mode::SingleRequestReopen => {
            let socks = vec![socket_to(server)?, socket_to(server)?];
            let mut qs = vec![pend(0, A, ids.0)?, pend(1, AAAA, ids.1)?];
            exchange(&socks, &mut qs, t0, timeout, attempts);
            (socks, qs)
        }
    };
    let port = |i: usize| socks.get(i).and_then(|s| s.local_addr().ok()).map_or(0, |a| a.port());
    let queries: Vec<QueryResult> = qs
        .iter()
        .map(|q| QueryResult {
            qtype: if q.qtype == A { "A" } else { "AAAA" },
            latency_ms: q.answer.map(|a| a.0),
            sends: q.sends,
            rcode: q.answer.map(|a| a.1),
            answers: q.answer.map_or(0, |a| a.2),
            source_port: port(q.sock),
        })
        .collect();
    let all = queries.iter().all(|q| q.latency_ms.is_some());
    let total_ms = if all { queries.iter().filter_map(|q| q.latency_ms).reduce(f64::max) } else { None };
    let stalled = queries.iter().any(|q| q.sends > 1 && q.latency_ms.is_some());
    Ok(Lookup { seq, server, mode, total_ms, stalled, queries })
}

/// The resolver order of this host (or of `netns`'s `/etc/netns/NAME/` files) for `name`.
pub fn resolver_order(name: &str, netns: Option<&str>) -> ResolverOrder {
    let r = netcase_host::resolver::read(std::path::Path::new("/"), netns, None);
    let order = r.nsswitch_hosts.clone().unwrap_or_else(|| vec!["files".into(), "dns".into()]);
    let want = name.trim_end_matches('.');
    let hosts_file: Vec<IpAddr> = r
        .hosts
        .iter()
        .filter(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(want)))
        .map(|(ip, _)| *ip)
        .collect();
    let pos = |s: &str| order.iter().position(|o| o == s);
    let dns_before_files = match (pos("dns"), pos("files")) {
        (Some(d), Some(f)) => d < f,
        (Some(_), None) => true,
        _ => false,
    };
    let rc = r.resolv_conf.clone().unwrap_or_default();
    ResolverOrder {
        nsswitch_present: r.nsswitch_present,
        order,
        hosts_file,
        dns_before_files,
        nameservers: rc.nameservers,
        options: rc.options,
        files: r.files,
    }
}

/// Measures lookups of `opts.name`.
pub fn run(opts: &DnsOptions) -> Result<DnsReport> {
    if opts.count == 0 || opts.concurrency == 0 {
        return Err(Error::Usage("--count and --concurrency must be at least 1".into()));
    }
    query(0, &opts.name, A)?;
    let started = Instant::now();
    let resolver = resolver_order(&opts.name, opts.netns.as_deref());
    let conf = netcase_host::resolver::read(std::path::Path::new("/"), opts.netns.as_deref(), None)
        .resolv_conf
        .unwrap_or_else(|| netcase_host::resolver::parse_resolv_conf(""));
    let servers: Vec<SocketAddr> = match &opts.servers {
        Some(s) => s.clone(),
        None => {
            conf.nameservers.iter().filter_map(|n| n.parse::<IpAddr>().ok()).map(|ip| SocketAddr::new(ip, 53)).collect()
        }
    };
    if servers.is_empty() {
        return Err(Error::Usage("no nameserver in resolv.conf; name one with --server IP".into()));
    }
    let timeout = opts.timeout.unwrap_or(Duration::from_secs(u64::from(conf.timeout_s.clamp(1, 30))));
    let attempts = opts.attempts.unwrap_or(conf.attempts.clamp(1, 5)).max(1);
    let modes = opts.modes.clone().unwrap_or_else(|| {
        vec![if conf.single_request_reopen {
            Mode::SingleRequestReopen
        } else if conf.single_request {
            Mode::SingleRequest
        } else {
            Mode::Parallel
        }]
    });
    let seed = crate::raw::seed();
    let ids = AtomicU32::new(0);
    let batch = |server: SocketAddr, mode: Mode| -> Result<Vec<Lookup>> {
        let err = Mutex::new(None);
        let mut v = crate::paced(
            opts.count,
            opts.concurrency,
            opts.interval,
            |_| (),
            |seq, _| {
                let n = ids.fetch_add(2, Ordering::Relaxed);
                let id = |k: u32| crate::raw::isn(seed, n + k) as u16;
                match lookup(seq, &opts.name, server, mode, timeout, attempts, (id(0), id(1))) {
                    Ok(l) => Some(l),
                    Err(e) => {
                        if let Ok(mut v) = err.lock() {
                            v.get_or_insert(e);
                        }
                        None
                    }
                }
            },
        );
        if let Some(e) = err.into_inner().ok().flatten() {
            return Err(e);
        }
        v.sort_by_key(|l| l.seq);
        Ok(v)
    };
    let mut lookups = Vec::new();
    for &server in &servers {
        for &mode in &modes {
            let v = batch(server, mode)?;
            let stalled = v.iter().any(|l| l.stalled);
            lookups.extend(v);
            if stalled && mode == Mode::Parallel && opts.compare && !modes.contains(&Mode::SingleRequestReopen) {
                lookups.extend(batch(server, Mode::SingleRequestReopen)?);
            }
        }
    }
    let mut keys: Vec<(SocketAddr, Mode)> = lookups.iter().map(|l| (l.server, l.mode)).collect();
    keys.dedup();
    let stats = keys
        .into_iter()
        .map(|(server, mode)| {
            let ls: Vec<&Lookup> = lookups.iter().filter(|l| l.server == server && l.mode == mode).collect();
            let totals: Vec<f64> = ls.iter().filter_map(|l| l.total_ms).collect();
            ServerStats {
                server,
                mode,
                lookups: ls.len() as u64,
                answered: totals.len() as u64,
                stalled: ls.iter().filter(|l| l.stalled).count() as u64,
                unanswered_queries: ls.iter().flat_map(|l| &l.queries).filter(|q| q.latency_ms.is_none()).count()
                    as u64,
                latency: Percentiles::of(&totals),
            }
        })
        .collect();
    Ok(DnsReport {
        name: opts.name.clone(),
        timeout_ms: ms(timeout),
        attempts,
        servers: stats,
        resolver,
        lookups,
        duration_s: started.elapsed().as_secs_f64(),
    })
}

/// Findings of a `probe dns` run: per server the percentiles (`latency-methodology`, info),
/// the 5 s stall (`dns-conntrack-race-5s`), a server that does not answer
/// (`dns-server-unresponsive`), and the name leaking to DNS before the hosts file
/// (`resolver-order`).
pub fn findings(r: &DnsReport) -> Vec<Finding> {
    let mut out = Vec::new();
    let subject = Subject::Name { name: r.name.clone() };
    for s in &r.servers {
        if let Some(l) = &s.latency {
            out.push(
                Finding::new(
                    CaseId::LatencyMethodology,
                    Severity::Info,
                    Subject::ServerPort { proto: "udp", ip: Some(s.server.ip()), port: s.server.port() },
                    format!(
                        "lookups of {} (A + AAAA, {}) at {}: {} of {} answered, p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
                        r.name,
                        s.mode.as_str(),
                        s.server,
                        s.answered,
                        s.lookups,
                        l.p50_ms,
                        l.p90_ms,
                        l.max_ms
                    ),
                )
                .with_measure("p50_ms", l.p50_ms, "ms")
                .with_measure("p90_ms", l.p90_ms, "ms")
                .with_measure("max_ms", l.max_ms, "ms")
                .with_measure("lookups", s.lookups as f64, "count")
                .with(Evidence::text("mode", s.mode.as_str()))
                .with_confidence(Confidence::Certain, &[]),
            );
        }
        let ls: Vec<&Lookup> = r.lookups.iter().filter(|l| l.server == s.server && l.mode == s.mode).collect();
        // The 5 s pattern: one of the pair answered at once, the other only after it was sent
        // again one timeout later, both from one socket.
        let race: Vec<&&Lookup> = ls
            .iter()
            .filter(|l| {
                l.stalled
                    && l.mode != Mode::SingleRequestReopen
                    && l.queries.iter().any(|q| q.sends == 1 && q.latency_ms.is_some_and(|v| v < r.timeout_ms))
            })
            .collect();
        if !race.is_empty() {
            let mut delays: Vec<f64> = race.iter().filter_map(|l| l.total_ms).collect();
            delays.sort_by(f64::total_cmp);
            let delay = delays.get(delays.len() / 2).copied().unwrap_or(r.timeout_ms);
            let lost: Vec<&str> =
                race.iter().flat_map(|l| l.queries.iter().filter(|q| q.sends > 1).map(|q| q.qtype)).collect();
            let lost_aaaa = lost.iter().filter(|q| **q == "AAAA").count();
            let reopen = r.servers.iter().find(|o| o.server == s.server && o.mode == Mode::SingleRequestReopen);
            let reopen_ok = reopen.is_some_and(|o| o.stalled == 0 && o.answered == o.lookups);
            let mut text = format!(
                "{} of {} lookups of {} at {} ({}) waited {:.0} ms: one of A/AAAA from the same socket was answered at once, the other ({}) only after the {:.0} ms resend",
                race.len(),
                ls.len(),
                r.name,
                s.server,
                s.mode.as_str(),
                delay,
                if lost_aaaa * 2 >= lost.len() { "AAAA" } else { "A" },
                r.timeout_ms
            );
            if let (Some(o), true) = (reopen, reopen_ok) {
                text.push_str(&format!(
                    "; from separate sockets (single-request-reopen) {} of {} lookups answered without a stall (p50 {:.1} ms)",
                    o.answered,
                    o.lookups,
                    o.latency.map_or(0.0, |l| l.p50_ms)
                ));
            }
            let confidence = if reopen_ok { Confidence::Likely } else { Confidence::Possible };
            out.push(
                Finding::new(CaseId::DnsConntrackRace5s, Severity::Warning, subject.clone(), text)
                    .with_measure("delay_ms", delay, "ms")
                    .with_measure("lookups_delayed", race.len() as f64, "count")
                    .with_measure("lookups", ls.len() as f64, "count")
                    .with_measure("timeout_ms", r.timeout_ms, "ms")
                    .with_measure("reopen_fixes", if reopen_ok { 1.0 } else { 0.0 }, "bool")
                    .with(Evidence::text("server", s.server.to_string()))
                    .with(Evidence::text("mode", s.mode.as_str()))
                    .with_confidence(confidence, &[CaseId::DnsServerUnresponsive])
                    .with_fix("glibc: `options single-request-reopen` in resolv.conf (or `single-request`, or `use-vc`); musl ignores them: run a node-local DNS cache; on the DNS NAT path, check `conntrack -S` insert_failed"),
            );
        }
        if s.unanswered_queries > 0 && s.answered < s.lookups {
            out.push(
                Finding::new(
                    CaseId::DnsServerUnresponsive,
                    if s.answered == 0 { Severity::Error } else { Severity::Warning },
                    Subject::ServerPort { proto: "udp", ip: Some(s.server.ip()), port: s.server.port() },
                    format!(
                        "{} of {} lookups of {} at {} ({}) got no answer to {} queries after {} sends {:.0} ms apart",
                        s.lookups - s.answered,
                        s.lookups,
                        r.name,
                        s.server,
                        s.mode.as_str(),
                        s.unanswered_queries,
                        r.attempts,
                        r.timeout_ms
                    ),
                )
                .with_measure("unanswered_queries", s.unanswered_queries as f64, "count")
                .with_measure("lookups_failed", (s.lookups - s.answered) as f64, "count")
                .with_confidence(if s.answered == 0 { Confidence::Certain } else { Confidence::Likely }, &[])
                .with_fix("check the server is up and reachable (`netcase probe tcp SERVER:53`), and firewalls dropping UDP 53"),
            );
        }
    }
    let o = &r.resolver;
    if o.dns_before_files && !o.hosts_file.is_empty() {
        let addrs: Vec<String> = o.hosts_file.iter().map(ToString::to_string).collect();
        out.push(
            Finding::new(
                CaseId::ResolverOrder,
                Severity::Warning,
                subject.clone(),
                format!(
                    "{} is in the hosts file ({}) but nsswitch.conf `hosts: {}` asks DNS first: the name leaks to DNS (slow, and wrong if DNS answers)",
                    r.name,
                    addrs.join(", "),
                    o.order.join(" ")
                ),
            )
            .with(Evidence::text("order", o.order.join(" ")))
            .with(Evidence::text("hosts_file", addrs.join(", ")))
            .with_confidence(Confidence::Certain, &[])
            .with_fix("put `files` before `dns` on the hosts line of /etc/nsswitch.conf"),
        );
    } else if !o.nsswitch_present && !o.hosts_file.is_empty() {
        out.push(
            Finding::new(
                CaseId::ResolverOrder,
                Severity::Info,
                subject,
                format!(
                    "no nsswitch.conf: glibc reads the hosts file first, but Go's resolver then asks DNS before it for {}",
                    r.name
                ),
            )
            .with_confidence(Confidence::Likely, &[])
            .with_fix("add /etc/nsswitch.conf with `hosts: files dns` for Go programs"),
        );
    }
    Finding::settle(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_answer_round_trip() {
        let q = query(0x1234, "api.lab.internal", AAAA).unwrap();
        // Not a response: ignored.
        assert!(parse_answer(&q).is_none());
        let mut a = q.clone();
        a[2] |= 0x80;
        a[3] = 0x83;
        assert_eq!(parse_answer(&a), Some((0x1234, AAAA, 3, 0)));
        for n in 0..a.len() {
            let _ = parse_answer(&a[..n]);
        }
        assert!(query(1, "a..b", A).is_err());
        assert!(query(1, &"x".repeat(64), A).is_err());
    }

    fn lk(mode: Mode, a: (f64, u32), aaaa: (Option<f64>, u32)) -> Lookup {
        let q = |t: &'static str, l: Option<f64>, s: u32| QueryResult {
            qtype: t,
            latency_ms: l,
            sends: s,
            rcode: Some(0),
            answers: 1,
            source_port: 1000,
        };
        let queries = vec![q("A", Some(a.0), a.1), q("AAAA", aaaa.0, aaaa.1)];
        let total_ms = aaaa.0.map(|x| x.max(a.0));
        Lookup {
            seq: 0,
            server: "10.0.0.53:53".parse().unwrap(),
            mode,
            total_ms,
            stalled: aaaa.1 > 1 && aaaa.0.is_some(),
            queries,
        }
    }

    fn report(lookups: Vec<Lookup>) -> DnsReport {
        let mut keys: Vec<(SocketAddr, Mode)> = lookups.iter().map(|l| (l.server, l.mode)).collect();
        keys.dedup();
        let servers = keys
            .into_iter()
            .map(|(server, mode)| {
                let ls: Vec<&Lookup> = lookups.iter().filter(|l| l.mode == mode).collect();
                let totals: Vec<f64> = ls.iter().filter_map(|l| l.total_ms).collect();
                ServerStats {
                    server,
                    mode,
                    lookups: ls.len() as u64,
                    answered: totals.len() as u64,
                    stalled: ls.iter().filter(|l| l.stalled).count() as u64,
                    unanswered_queries: 0,
                    latency: Percentiles::of(&totals),
                }
            })
            .collect();
        DnsReport {
            name: "api.lab.internal".into(),
            timeout_ms: 5000.0,
            attempts: 2,
            servers,
            resolver: ResolverOrder {
                nsswitch_present: true,
                order: vec!["files".into(), "dns".into()],
                hosts_file: vec![],
                dns_before_files: false,
                nameservers: vec![],
                options: vec![],
                files: vec![],
            },
            lookups,
            duration_s: 1.0,
        }
    }

    #[test]
    fn five_second_stall_is_named() {
        let r = report(vec![
            lk(Mode::Parallel, (1.0, 1), (Some(5001.5), 2)),
            lk(Mode::Parallel, (1.0, 1), (Some(5001.0), 2)),
            lk(Mode::SingleRequestReopen, (1.0, 1), (Some(1.2), 1)),
        ]);
        let f = findings(&r);
        let race = f.iter().find(|f| f.case == CaseId::DnsConntrackRace5s).unwrap();
        assert_eq!(race.severity, Severity::Warning);
        assert_eq!(race.measure("lookups_delayed"), Some(2.0));
        assert!((race.measure("delay_ms").unwrap() - 5001.0).abs() < 1.0);
        assert_eq!(race.measure("reopen_fixes"), Some(1.0));
    }

    #[test]
    fn healthy_lookups_are_info_only() {
        let r = report(vec![lk(Mode::Parallel, (1.0, 1), (Some(1.1), 1))]);
        assert!(findings(&r).iter().all(|f| f.severity == Severity::Info));
    }
}
