//! `probe tcp`: TCP connect latency, SYN → SYN-ACK, the way `hping3 -S` measures it.
//!
//! As root the probe sends its own SYNs from a raw socket ([`Method::Syn`]) and times the
//! SYN-ACK (or RST); the local kernel answers the SYN-ACK with a RST since no socket owns the
//! half-open connection (see [`crate::raw`]). Otherwise it times `connect()`
//! ([`Method::Connect`]), which includes the kernel's own SYN retransmissions.
//!
//! A SYN that goes unanswered is sent again after 1 s and 3 s, as the kernel does: an answer
//! that then comes is a *retried SYN*, and its 1 s or 3 s is a dropped SYN, not latency. The
//! report keeps both views: `latency` (what a client waited, retries included) and `rtt` (the
//! probes answered at the first SYN: the network's round trip plus the server's SYN path).

use crate::error::{Error, Result};
use crate::raw::{self, flags, RawSocket};
use crate::stats::{histogram, Bucket, Percentiles};
use netcase_model::{CaseId, Confidence, Evidence, Finding, Severity, Subject};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// When an unanswered SYN is sent again, after the first (the kernel's initial RTO of 1 s,
/// doubled).
pub const SYN_RETRY_AT: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(3)];

/// How the connect latency is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// A raw SYN and its SYN-ACK or RST (root, IPv4).
    Syn,
    /// The duration of `connect()`.
    Connect,
}

impl Method {
    /// `"syn"` or `"connect"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Syn => "syn",
            Method::Connect => "connect",
        }
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct TcpOptions {
    /// The target.
    pub target: SocketAddr,
    /// How many probes.
    pub count: u32,
    /// Gap between probe starts (over all concurrent probes).
    pub interval: Duration,
    /// Probes in flight at most.
    pub concurrency: u32,
    /// How long a probe waits for an answer, retries included.
    pub timeout: Duration,
    /// The method; `None` picks [`Method::Syn`] as root for IPv4, else [`Method::Connect`].
    pub method: Option<Method>,
}

/// How one probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// SYN-ACK: the port is open.
    Open,
    /// RST: nothing listens (or a firewall rejects).
    Reset,
    /// No answer within the timeout.
    Timeout,
    /// The probe could not be sent (see its `error`).
    Error,
}

/// One probe.
#[derive(Debug, Clone, Serialize)]
pub struct TcpProbe {
    /// Its number (0-based, in start order).
    pub seq: u32,
    /// When it started, from the run's start.
    pub start_ms: f64,
    /// How it ended.
    pub outcome: Outcome,
    /// From the first SYN to the answer (SYN-ACK or RST), when one came.
    pub latency_ms: Option<f64>,
    /// SYNs sent again before the answer (or before the timeout).
    pub syn_retries: u32,
    /// Why it could not be sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The result of `probe tcp`.
#[derive(Debug, Clone, Serialize)]
pub struct TcpReport {
    /// The target.
    pub target: SocketAddr,
    /// The method used.
    pub method: Method,
    /// Probes asked for.
    pub count: u32,
    /// Probes in flight at most.
    pub concurrency: u32,
    /// Gap between probe starts.
    pub interval_ms: f64,
    /// Per-probe timeout.
    pub timeout_ms: f64,
    /// Probes sent.
    pub sent: u64,
    /// Answered with SYN-ACK.
    pub open: u64,
    /// Answered with RST.
    pub reset: u64,
    /// Not answered.
    pub timeouts: u64,
    /// Could not be sent.
    pub errors: u64,
    /// Probes whose first SYN went unanswered (answered or not after a retry).
    pub retried: u64,
    /// Latency of the answered probes as a client waited (retries included).
    pub latency: Option<Percentiles>,
    /// Latency of the probes answered at the first SYN (the round trip).
    pub rtt: Option<Percentiles>,
    /// Histogram of `latency`.
    pub histogram: Vec<Bucket>,
    /// Every probe.
    pub probes: Vec<TcpProbe>,
    /// How long the run took.
    pub duration_s: f64,
}

/// Whether the process can open raw sockets (is root).
fn can_raw() -> bool {
    crate::is_root()
}

/// Measures connect latency to `opts.target`.
pub fn run(opts: &TcpOptions) -> Result<TcpReport> {
    if opts.count == 0 || opts.concurrency == 0 {
        return Err(Error::Usage("--count and --concurrency must be at least 1".into()));
    }
    let method = match opts.method {
        Some(m) => m,
        None if can_raw() && opts.target.is_ipv4() => Method::Syn,
        None => Method::Connect,
    };
    let started = Instant::now();
    let mut probes = match method {
        Method::Syn => {
            let SocketAddr::V4(t) = opts.target else {
                return Err(Error::Usage("raw SYN probes are IPv4 only; use --method connect".into()));
            };
            run_syn(opts, *t.ip(), t.port(), started)?
        }
        Method::Connect => run_connect(opts, started),
    };
    probes.sort_by_key(|p| p.seq);
    Ok(summarize(opts, method, probes, started.elapsed()))
}

fn summarize(opts: &TcpOptions, method: Method, probes: Vec<TcpProbe>, took: Duration) -> TcpReport {
    let count = |o: Outcome| probes.iter().filter(|p| p.outcome == o).count() as u64;
    let all: Vec<f64> = probes.iter().filter_map(|p| p.latency_ms).collect();
    let first: Vec<f64> = probes.iter().filter(|p| p.syn_retries == 0).filter_map(|p| p.latency_ms).collect();
    TcpReport {
        target: opts.target,
        method,
        count: opts.count,
        concurrency: opts.concurrency,
        interval_ms: opts.interval.as_secs_f64() * 1000.0,
        timeout_ms: opts.timeout.as_secs_f64() * 1000.0,
        sent: probes.iter().filter(|p| p.outcome != Outcome::Error).count() as u64,
        open: count(Outcome::Open),
        reset: count(Outcome::Reset),
        timeouts: count(Outcome::Timeout),
        errors: count(Outcome::Error),
        retried: probes.iter().filter(|p| p.syn_retries > 0).count() as u64,
        latency: Percentiles::of(&all),
        rtt: Percentiles::of(&first),
        histogram: histogram(&all),
        probes,
        duration_s: took.as_secs_f64(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `connect()` timing: `concurrency` threads, each connecting in turn, starts paced by one
/// [`Pacer`]. SYN retransmissions are read from TCP_INFO (`tcpi_total_retrans`).
fn run_connect(opts: &TcpOptions, started: Instant) -> Vec<TcpProbe> {
    crate::paced(
        opts.count,
        opts.concurrency,
        opts.interval,
        |_| (),
        |seq, _| Some(connect_once(seq, opts.target, opts.timeout, started)),
    )
}

/// SYNs the kernel sent again during a connect of `took` that timed out (1 s, 3 s, 7 s…).
fn retries_within(took: Duration) -> u32 {
    let mut at = Duration::from_secs(1);
    let mut n = 0;
    while at < took && n < 16 {
        n += 1;
        at = at * 2 + Duration::from_secs(1);
    }
    n
}

fn connect_once(seq: u32, to: SocketAddr, timeout: Duration, started: Instant) -> TcpProbe {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let t0 = Instant::now();
    let start_ms = ms(t0 - started);
    let err = |e: String| TcpProbe {
        seq,
        start_ms,
        outcome: Outcome::Error,
        latency_ms: None,
        syn_retries: 0,
        error: Some(e),
    };
    let s = match Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP)) {
        Ok(s) => s,
        Err(e) => return err(format!("socket: {e}")),
    };
    let r = s.connect_timeout(&SockAddr::from(to), timeout);
    let took = t0.elapsed();
    match r {
        Ok(()) => {
            let retries = tcp_info_total_retrans(&s).unwrap_or(0);
            TcpProbe {
                seq,
                start_ms,
                outcome: Outcome::Open,
                latency_ms: Some(ms(took)),
                syn_retries: retries,
                error: None,
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => TcpProbe {
            seq,
            start_ms,
            outcome: Outcome::Reset,
            latency_ms: Some(ms(took)),
            syn_retries: retries_within(took),
            error: None,
        },
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock => TcpProbe {
            seq,
            start_ms,
            outcome: Outcome::Timeout,
            latency_ms: None,
            syn_retries: retries_within(took),
            error: None,
        },
        Err(e) => err(format!("connect: {e}")),
    }
}

/// `tcpi_total_retrans` of a connected socket: the SYNs sent again during its handshake.
pub fn tcp_info_total_retrans(s: &socket2::Socket) -> Option<u32> {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain data; zeroed is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `info`.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::addr_of_mut!(info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(info.tcpi_total_retrans)
}

/// A raw SYN in flight.
struct Pending {
    seq: u32,
    sport: u16,
    isn: u32,
    first: Instant,
    start_ms: f64,
    retries: u32,
    /// Keeps the source port reserved until the probe ends.
    _port: socket2::Socket,
}

impl Pending {
    /// The probe's result when no answer came in time.
    fn timed_out(&self) -> TcpProbe {
        TcpProbe {
            seq: self.seq,
            start_ms: self.start_ms,
            outcome: Outcome::Timeout,
            latency_ms: None,
            syn_retries: self.retries,
            error: None,
        }
    }
}

/// Raw SYNs: one thread sends (paced, at most `concurrency` in flight), resends unanswered
/// SYNs at [`SYN_RETRY_AT`], and reads SYN-ACKs and RSTs from a raw TCP socket.
fn run_syn(opts: &TcpOptions, dst: std::net::Ipv4Addr, dport: u16, started: Instant) -> Result<Vec<TcpProbe>> {
    let sock = RawSocket::open(libc::IPPROTO_TCP)?;
    let src = raw::source_for(dst)?;
    let seed = raw::seed();
    let mut pending: Vec<Pending> = Vec::new();
    let mut done: Vec<TcpProbe> = Vec::new();
    let mut sent = 0u32;
    let mut next_send = Instant::now();
    let mut buf = vec![0u8; 2048];
    // Bounded in time whatever happens: every probe's slot and its whole timeout, and a margin.
    let limit = started + (opts.interval + opts.timeout) * opts.count + Duration::from_secs(2);
    while (sent < opts.count || !pending.is_empty()) && Instant::now() < limit {
        let now = Instant::now();
        if sent < opts.count && pending.len() < opts.concurrency as usize && now >= next_send {
            let seq = sent;
            sent += 1;
            next_send = (next_send + opts.interval).max(now);
            let start_ms = ms(now - started);
            let isn = raw::isn(seed, seq);
            let t0 = Instant::now();
            let sent_ok = raw::reserve_port(src).and_then(|(port, sport)| {
                sock.send_to(&raw::syn(src, sport, dst, dport, isn), dst).map(|()| (port, sport))
            });
            match sent_ok {
                Ok((port, sport)) => {
                    pending.push(Pending { seq, sport, isn, first: t0, start_ms, retries: 0, _port: port })
                }
                Err(e) => done.push(TcpProbe {
                    seq,
                    start_ms,
                    outcome: Outcome::Error,
                    latency_ms: None,
                    syn_retries: 0,
                    error: Some(e.to_string()),
                }),
            }
            continue;
        }
        // Resends and timeouts.
        let mut i = 0;
        while let Some(p) = pending.get_mut(i) {
            let age = now.saturating_duration_since(p.first);
            if age >= opts.timeout {
                done.push(p.timed_out());
                pending.swap_remove(i);
                continue;
            }
            if let Some(at) = SYN_RETRY_AT.get(p.retries as usize) {
                if age >= *at {
                    let _ = sock.send_to(&raw::syn(src, p.sport, dst, dport, p.isn), dst);
                    p.retries += 1;
                }
            }
            i += 1;
        }
        // Wait for answers until the next thing to do.
        let mut wake = now + Duration::from_millis(50);
        if sent < opts.count && pending.len() < opts.concurrency as usize {
            wake = wake.min(next_send);
        }
        for p in &pending {
            let next_retry = SYN_RETRY_AT.get(p.retries as usize).map_or(opts.timeout, |d| (*d).min(opts.timeout));
            wake = wake.min(p.first + next_retry);
        }
        let Some(first) = sock.recv(&mut buf, wake.saturating_duration_since(now)) else { continue };
        let mut got = Some(first);
        let mut reads = 0;
        while let Some((n, at)) = got {
            if let Some(t) = buf.get(..n).and_then(raw::parse_tcp) {
                answer(&mut pending, &mut done, &t, at, dst, dport);
            }
            reads += 1;
            got = if reads < 256 { sock.try_recv(&mut buf) } else { None };
        }
    }
    done.extend(pending.iter().map(Pending::timed_out));
    Ok(done)
}

/// Matches a segment read from the raw socket to a pending probe (the target's address and
/// port, the probe's source port, our SYN's sequence number acknowledged).
fn answer(
    pending: &mut Vec<Pending>,
    done: &mut Vec<TcpProbe>,
    t: &raw::TcpSeen,
    at: Instant,
    dst: std::net::Ipv4Addr,
    dport: u16,
) {
    if t.src != dst || t.sport != dport {
        return;
    }
    let Some(i) = pending.iter().position(|p| p.sport == t.dport && t.ack == p.isn.wrapping_add(1)) else {
        return;
    };
    let outcome = if t.flags & (flags::SYN | flags::ACK) == flags::SYN | flags::ACK {
        Outcome::Open
    } else if t.flags & flags::RST != 0 {
        Outcome::Reset
    } else {
        return;
    };
    let p = pending.swap_remove(i);
    done.push(TcpProbe {
        seq: p.seq,
        start_ms: p.start_ms,
        outcome,
        latency_ms: Some(ms(at.saturating_duration_since(p.first))),
        syn_retries: p.retries,
        error: None,
    });
}

/// Findings of a `probe tcp` run: the percentiles (`latency-methodology`, info), retried and
/// unanswered SYNs (`syn-unanswered`), refusals (`port-unreachable`).
pub fn findings(r: &TcpReport) -> Vec<Finding> {
    let subject = Subject::ServerPort { proto: "tcp", ip: Some(r.target.ip()), port: r.target.port() };
    let mut out = Vec::new();
    if let Some(l) = &r.latency {
        let how = match r.method {
            Method::Syn => "SYN → SYN-ACK, raw SYNs like hping3 -S",
            Method::Connect => "connect() duration",
        };
        let mut f = Finding::new(
            CaseId::LatencyMethodology,
            Severity::Info,
            subject.clone(),
            format!(
                "connect latency to {} over {} answered probes ({how}, concurrency {}): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                r.target, l.n, r.concurrency, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
            ),
        )
        .with_measure("p50_ms", l.p50_ms, "ms")
        .with_measure("p90_ms", l.p90_ms, "ms")
        .with_measure("p99_ms", l.p99_ms, "ms")
        .with_measure("max_ms", l.max_ms, "ms")
        .with_measure("probes", l.n as f64, "count")
        .with_measure("concurrency", f64::from(r.concurrency), "count")
        .with(Evidence::text("method", r.method.as_str()))
        .with_confidence(Confidence::Certain, &[]);
        if let Some(rtt) = &r.rtt {
            if r.retried > 0 {
                f = f.with_measure("rtt_p50_ms", rtt.p50_ms, "ms");
            }
        }
        f.fix = "single-connection latency; compare with --concurrency K (queueing at the server shows as a higher p99 under concurrency), the path with `netcase probe path`, and time to first byte with `netcase probe http`".into();
        out.push(f);
    }
    if r.retried > 0 || r.timeouts > 0 {
        let answered_after_retry = r.probes.iter().filter(|p| p.syn_retries > 0 && p.latency_ms.is_some()).count();
        let mut f = Finding::new(
            CaseId::SynUnanswered,
            Severity::Warning,
            subject.clone(),
            format!(
                "{} of {} SYNs to {} went unanswered at first: {} answered only after a retried SYN (the 1 s / 3 s jumps are dropped SYNs, not latency), {} never answered within {:.0} ms",
                r.retried.max(r.timeouts),
                r.sent,
                r.target,
                answered_after_retry,
                r.timeouts,
                r.timeout_ms
            ),
        )
        .with_measure("retried", r.retried as f64, "count")
        .with_measure("answered_after_retry", answered_after_retry as f64, "count")
        .with_measure("timeouts", r.timeouts as f64, "count")
        .with_measure("sent", r.sent as f64, "count")
        .with_confidence(
            Confidence::Possible,
            &[CaseId::SynQueueOverflow, CaseId::SnatPortCollision, CaseId::NatTimestampPaws, CaseId::IpConflict],
        );
        if let Some(rtt) = &r.rtt {
            f = f.with_measure("rtt_p50_ms", rtt.p50_ms, "ms");
        }
        f.fix = "find where the SYNs are lost (see `netcase explain syn-unanswered`): on the server `nstat -az TcpExtListenDrops TcpExtTcpReqQFullDrop` (SYN queue), `conntrack -S` insert_failed (SNAT collision), firewall DROP rules (`iptables-save -c`), and `netcase probe path` for the hop".into();
        out.push(f);
    }
    if r.reset > 0 {
        let f = Finding::new(
            CaseId::PortUnreachable,
            if r.open == 0 { Severity::Error } else { Severity::Warning },
            subject,
            format!(
                "{} of {} SYNs to {} were answered with RST: nothing listens there (or a firewall rejects)",
                r.reset, r.sent, r.target
            ),
        )
        .with_measure("resets", r.reset as f64, "count")
        .with_measure("sent", r.sent as f64, "count")
        .with_confidence(if r.open == 0 { Confidence::Certain } else { Confidence::Likely }, &[])
        .with_fix("check that the service listens on that address and port (`ss -ltn`), and REJECT rules on the way");
        out.push(f);
    }
    if r.errors > 0 {
        let first = r.probes.iter().find_map(|p| p.error.clone()).unwrap_or_default();
        out.push(
            Finding::new(
                CaseId::LatencyMethodology,
                Severity::Warning,
                Subject::ServerPort { proto: "tcp", ip: Some(r.target.ip()), port: r.target.port() },
                format!("{} probes could not be sent: {first}", r.errors),
            )
            .with_measure("errors", r.errors as f64, "count")
            .with_confidence(Confidence::Certain, &[]),
        );
    }
    Finding::settle(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_retries_follow_the_rto() {
        assert_eq!(retries_within(Duration::from_millis(900)), 0);
        assert_eq!(retries_within(Duration::from_millis(2000)), 1);
        assert_eq!(retries_within(Duration::from_millis(4000)), 2);
    }

    fn report(latencies: &[(f64, u32)], timeouts: u32) -> TcpReport {
        let mut probes: Vec<TcpProbe> = latencies
            .iter()
            .enumerate()
            .map(|(i, (l, r))| TcpProbe {
                seq: i as u32,
                start_ms: 0.0,
                outcome: Outcome::Open,
                latency_ms: Some(*l),
                syn_retries: *r,
                error: None,
            })
            .collect();
        for _ in 0..timeouts {
            probes.push(TcpProbe {
                seq: 99,
                start_ms: 0.0,
                outcome: Outcome::Timeout,
                latency_ms: None,
                syn_retries: 2,
                error: None,
            });
        }
        let opts = TcpOptions {
            target: "10.0.0.2:80".parse().unwrap(),
            count: probes.len() as u32,
            interval: Duration::from_millis(100),
            concurrency: 1,
            timeout: Duration::from_secs(4),
            method: Some(Method::Syn),
        };
        summarize(&opts, Method::Syn, probes, Duration::from_secs(1))
    }

    #[test]
    fn healthy_run_is_info_only() {
        let r = report(&[(50.0, 0), (51.0, 0), (49.0, 0)], 0);
        let f = findings(&r);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].case, CaseId::LatencyMethodology);
        assert_eq!(f[0].severity, Severity::Info);
        assert_eq!(f[0].measure("p50_ms"), Some(50.0));
    }

    #[test]
    fn retried_syn_is_named_not_counted_as_latency() {
        let r = report(&[(50.0, 0), (1050.0, 1), (50.0, 0)], 1);
        assert_eq!(r.rtt.unwrap().max_ms, 50.0);
        let f = findings(&r);
        let s = f.iter().find(|f| f.case == CaseId::SynUnanswered).unwrap();
        assert_eq!(s.severity, Severity::Warning);
        assert_eq!(s.measure("answered_after_retry"), Some(1.0));
        assert_eq!(s.measure("timeouts"), Some(1.0));
        assert!(s.summary.contains("not latency"));
    }
}
