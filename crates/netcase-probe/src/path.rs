//! `probe path`: a TCP traceroute (like `traceroute --tcp`): SYNs to the target's port with
//! TTL 1, 2, 3…; each router on the way answers the SYN whose TTL runs out there with an ICMP
//! time exceeded, and the target answers with a SYN-ACK or RST. Per hop: who answered, the
//! round trip, the loss; then the hop where the delay starts (the largest step in the hop's
//! fastest round trip) and the hop where loss starts (loss at that hop and every answering
//! hop after it; loss at one hop only is a router slow to send ICMP, not loss on the path).
//!
//! Root only (raw sockets), IPv4. The SYNs that reach the target are answered by the local
//! kernel's RST as in [`crate::tcp`].

use crate::error::{Error, Result};
use crate::raw::{self, flags, RawSocket};
use crate::stats::Percentiles;
use crate::Pacer;
use netcase_model::{CaseId, Confidence, Evidence, Finding, Severity, Subject};
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Hops without any answer, one after the other, after which the trace stops.
pub const SILENT_HOPS_STOP: u8 = 3;

/// What to trace.
#[derive(Debug, Clone)]
pub struct PathOptions {
    /// The target.
    pub target: SocketAddrV4,
    /// The last TTL tried.
    pub max_hops: u8,
    /// SYNs per hop.
    pub queries: u32,
    /// Gap between SYNs.
    pub interval: Duration,
    /// Wait for each SYN's answer.
    pub timeout: Duration,
    /// A step in round trip at least this large (and at least half the path's) names the hop
    /// where delay starts.
    pub min_step: Duration,
}

/// One SYN of a hop.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HopProbe {
    /// Who answered.
    pub from: Option<Ipv4Addr>,
    /// The round trip.
    pub rtt_ms: Option<f64>,
    /// The answer was an ICMP destination unreachable with this code (traceroute's `!H`,
    /// `!N`, `!X`…): the path ends there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<u8>,
}

/// One TTL.
#[derive(Debug, Clone, Serialize)]
pub struct Hop {
    /// The TTL.
    pub ttl: u8,
    /// Who answered most (a router, or the target).
    pub addr: Option<Ipv4Addr>,
    /// SYNs sent.
    pub sent: u32,
    /// Answers.
    pub answered: u32,
    /// Unanswered share.
    pub loss_pct: f64,
    /// Round trips of the answers.
    pub rtt: Option<Percentiles>,
    /// The target answered at this TTL.
    pub target: bool,
    /// An ICMP destination unreachable came from this hop (its code): the trace ends here.
    pub unreachable: Option<u8>,
    /// Every SYN.
    pub probes: Vec<HopProbe>,
}

/// The result of `probe path`.
#[derive(Debug, Clone, Serialize)]
pub struct PathReport {
    /// The target.
    pub target: SocketAddrV4,
    /// The hops, by TTL.
    pub hops: Vec<Hop>,
    /// The target answered.
    pub reached: bool,
    /// The TTL of the hop where the delay starts.
    pub delay_hop: Option<u8>,
    /// The round trip that hop adds (its fastest round trip minus the previous answering hop's).
    pub delay_added_ms: Option<f64>,
    /// The TTL from which every answering hop loses SYNs (or the first silent one after the
    /// last answer when the target is not reached).
    pub loss_hop: Option<u8>,
    /// How long the trace took.
    pub duration_s: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Traces the path to `opts.target`.
pub fn run(opts: &PathOptions) -> Result<PathReport> {
    if opts.queries == 0 || opts.max_hops == 0 {
        return Err(Error::Usage("--queries and --max-hops must be at least 1".into()));
    }
    if !crate::is_root() {
        return Err(Error::NeedsRoot("probe path"));
    }
    let started = Instant::now();
    let tcp = RawSocket::open(libc::IPPROTO_TCP)?;
    let icmp = RawSocket::open(libc::IPPROTO_ICMP)?;
    let dst = *opts.target.ip();
    let dport = opts.target.port();
    let src = raw::source_for(dst)?;
    let seed = raw::seed();
    let pacer = Pacer::new(opts.interval);
    let mut hops: Vec<Hop> = Vec::new();
    let mut silent = 0u8;
    let mut n = 0u32;
    let mut buf = vec![0u8; 2048];
    for ttl in 1..=opts.max_hops {
        tcp.set_ttl(ttl)?;
        let mut probes = Vec::new();
        for _ in 0..opts.queries {
            pacer.wait();
            let isn = raw::isn(seed, n);
            n += 1;
            let (_port, sport) = raw::reserve_port(src)?;
            let t0 = Instant::now();
            tcp.send_to(&raw::syn(src, sport, dst, dport, isn), dst)?;
            let deadline = t0 + opts.timeout;
            let mut got: Option<HopProbe> = None;
            let mut reads = 0;
            while got.is_none() && reads < 10_000 {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let ready = raw::poll_any(&[&tcp, &icmp], deadline - now);
                for i in ready {
                    let sock = if i == 0 { &tcp } else { &icmp };
                    for _ in 0..64 {
                        let Some((len, at)) = sock.try_recv(&mut buf) else { break };
                        reads += 1;
                        let pkt = buf.get(..len).unwrap_or_default();
                        let rtt = Some(ms(at.saturating_duration_since(t0)));
                        if i == 0 {
                            if let Some(t) = raw::parse_tcp(pkt) {
                                let answers = t.src == dst
                                    && t.sport == dport
                                    && t.dport == sport
                                    && t.ack == isn.wrapping_add(1)
                                    && (t.flags & flags::RST != 0 || t.flags & flags::SYN != 0);
                                if answers && got.is_none() {
                                    got = Some(HopProbe { from: Some(t.src), rtt_ms: rtt, unreachable: None });
                                }
                            }
                        } else if let Some(c) = raw::parse_icmp(pkt) {
                            let ours = c.inner_dst == dst
                                && c.inner_dport == dport
                                && c.inner_sport == sport
                                && c.inner_seq == isn;
                            if ours && got.is_none() {
                                let unreachable = (c.icmp_type == raw::ICMP_UNREACHABLE).then_some(c.code);
                                got = Some(HopProbe { from: Some(c.from), rtt_ms: rtt, unreachable });
                            }
                        }
                    }
                }
            }
            probes.push(got.unwrap_or(HopProbe { from: None, rtt_ms: None, unreachable: None }));
        }
        let hop = make_hop(ttl, probes, dst);
        let answered = hop.answered > 0;
        let end = hop.target || hop.unreachable.is_some();
        hops.push(hop);
        if end {
            break;
        }
        silent = if answered { 0 } else { silent + 1 };
        if silent >= SILENT_HOPS_STOP {
            break;
        }
    }
    Ok(analyse(opts, hops, started.elapsed()))
}

fn make_hop(ttl: u8, probes: Vec<HopProbe>, dst: Ipv4Addr) -> Hop {
    let mut addrs: Vec<(Ipv4Addr, u32)> = Vec::new();
    for a in probes.iter().filter_map(|p| p.from) {
        match addrs.iter_mut().find(|(x, _)| *x == a) {
            Some(e) => e.1 += 1,
            None => addrs.push((a, 1)),
        }
    }
    let addr = addrs.iter().max_by_key(|(_, c)| *c).map(|(a, _)| *a);
    let rtts: Vec<f64> = probes.iter().filter_map(|p| p.rtt_ms).collect();
    let sent = probes.len() as u32;
    let answered = rtts.len() as u32;
    Hop {
        ttl,
        addr,
        sent,
        answered,
        loss_pct: if sent == 0 { 0.0 } else { 100.0 * f64::from(sent - answered) / f64::from(sent) },
        rtt: Percentiles::of(&rtts),
        target: probes.iter().any(|p| p.from == Some(dst) && p.unreachable.is_none()),
        unreachable: probes.iter().find_map(|p| p.unreachable),
        probes,
    }
}

fn analyse(opts: &PathOptions, hops: Vec<Hop>, took: Duration) -> PathReport {
    let reached = hops.iter().any(|h| h.target);
    // Delay: the largest step in the fastest round trip between answering hops.
    let answering: Vec<(u8, f64)> =
        hops.iter().filter(|h| h.unreachable.is_none()).filter_map(|h| h.rtt.map(|r| (h.ttl, r.min_ms))).collect();
    let end = answering.last().map_or(0.0, |a| a.1);
    let mut best: Option<(u8, f64)> = None;
    let mut prev = 0.0;
    for &(ttl, rtt) in &answering {
        let step = rtt - prev;
        if best.is_none_or(|(_, s)| step > s) {
            best = Some((ttl, step));
        }
        prev = rtt;
    }
    let (delay_hop, delay_added_ms) = match best {
        Some((ttl, step)) if step >= ms(opts.min_step) && step >= end * 0.5 => (Some(ttl), Some(step)),
        _ => (None, None),
    };
    // Loss: the first hop from which every answering hop lost SYNs.
    let mut loss_hop = None;
    for h in hops.iter().rev().filter(|h| h.answered > 0) {
        if h.loss_pct > 0.0 {
            loss_hop = Some(h.ttl);
        } else {
            break;
        }
    }
    if !reached && loss_hop.is_none() {
        let last = hops.iter().rev().find(|h| h.answered > 0).map_or(0, |h| h.ttl);
        loss_hop = hops.iter().find(|h| h.ttl > last).map(|h| h.ttl);
    }
    PathReport {
        target: opts.target,
        hops,
        reached,
        delay_hop,
        delay_added_ms,
        loss_hop,
        duration_s: took.as_secs_f64(),
    }
}

fn hop_name(r: &PathReport, ttl: u8) -> String {
    let addr = r.hops.iter().find(|h| h.ttl == ttl).and_then(|h| h.addr);
    addr.map_or_else(|| format!("hop {ttl}"), |a| format!("hop {ttl} ({a})"))
}

/// Findings of a `probe path` run: the per-hop view and the hop that adds the delay
/// (`latency-methodology`, info), loss that starts at a hop, and a target that never answers
/// (`syn-unanswered`).
pub fn findings(r: &PathReport) -> Vec<Finding> {
    let subject =
        Subject::ServerPort { proto: "tcp", ip: Some(std::net::IpAddr::V4(*r.target.ip())), port: r.target.port() };
    let mut out = Vec::new();
    let end = r.hops.iter().rev().find_map(|h| h.rtt.map(|p| p.p50_ms));
    let mut text = format!(
        "TCP path to {} ({} hops{}), end-to-end p50 {}",
        r.target,
        r.hops.len(),
        if r.reached { ", target reached" } else { ", target not reached" },
        end.map_or_else(|| "-".to_owned(), |e| format!("{e:.1} ms"))
    );
    let mut f = Finding::new(CaseId::LatencyMethodology, Severity::Info, subject.clone(), String::new());
    if let (Some(ttl), Some(added)) = (r.delay_hop, r.delay_added_ms) {
        text.push_str(&format!("; the delay starts at {}: it adds {added:.1} ms to the round trip", hop_name(r, ttl)));
        f = f.with_measure("delay_hop", f64::from(ttl), "count").with_measure("delay_added_ms", added, "ms");
        if let Some(a) = r.hops.iter().find(|h| h.ttl == ttl).and_then(|h| h.addr) {
            f = f.with(Evidence::text("delay_hop_addr", a.to_string()));
        }
    }
    f.summary = text;
    f = f.with_measure("hops", r.hops.len() as f64, "count").with_confidence(Confidence::Certain, &[]);
    if let Some(e) = end {
        f = f.with_measure("end_p50_ms", e, "ms");
    }
    out.push(f);
    if let (Some(ttl), true) = (r.loss_hop, r.reached) {
        let loss = r.hops.iter().filter(|h| h.ttl >= ttl && h.answered > 0).map(|h| h.loss_pct).fold(0.0, f64::max);
        out.push(
            Finding::new(
                CaseId::LatencyMethodology,
                Severity::Warning,
                subject.clone(),
                format!("SYNs are lost from {} on (up to {loss:.0} % per hop, to the target included)", hop_name(r, ttl)),
            )
            .with_measure("loss_hop", f64::from(ttl), "count")
            .with_measure("loss_pct", loss, "%")
            .with_confidence(Confidence::Likely, &[])
            .with_fix("look at the link into that hop: interface errors and drops (`ip -s link`), its queue, a policer; `netcase probe tcp` for the loss rate end to end"),
        );
    }
    if let Some(h) = r.hops.iter().find(|h| h.unreachable.is_some()) {
        out.push(
            Finding::new(
                CaseId::SynUnanswered,
                Severity::Warning,
                subject.clone(),
                format!(
                    "{} answered the SYNs with ICMP destination unreachable (code {}): {} is not reachable past it",
                    hop_name(r, h.ttl),
                    h.unreachable.unwrap_or(0),
                    r.target
                ),
            )
            .with_measure("unreachable_hop", f64::from(h.ttl), "count")
            .with_measure("icmp_code", f64::from(h.unreachable.unwrap_or(0)), "count")
            .with_confidence(Confidence::Certain, &[])
            .with_fix("code 1 (host unreachable): no ARP answer on the last link; 0 (net): a missing route; 13: a firewall's REJECT; check routes and neighbours at that hop"),
        );
    } else if !r.reached {
        let last = r.hops.iter().rev().find(|h| h.answered > 0);
        out.push(
            Finding::new(
                CaseId::SynUnanswered,
                Severity::Warning,
                subject,
                format!(
                    "the target {} never answered the SYNs; the last hop that answered is {}",
                    r.target,
                    last.map_or_else(|| "none".to_owned(), |h| hop_name(r, h.ttl))
                ),
            )
            .with_measure("last_hop", f64::from(last.map_or(0, |h| h.ttl)), "count")
            .with_confidence(Confidence::Possible, &[CaseId::SynQueueOverflow, CaseId::PortUnreachable])
            .with_fix("the SYNs are dropped past the last answering hop: a firewall there or at the target, or the target's SYN queue (see `netcase explain syn-unanswered`)"),
        );
    }
    Finding::settle(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(ttl: u8, from: [u8; 4], rtts: &[Option<f64>]) -> Hop {
        let probes = rtts
            .iter()
            .map(|r| HopProbe { from: r.map(|_| Ipv4Addr::from(from)), rtt_ms: *r, unreachable: None })
            .collect();
        make_hop(ttl, probes, Ipv4Addr::new(10, 0, 3, 2))
    }

    fn opts() -> PathOptions {
        PathOptions {
            target: "10.0.3.2:80".parse().unwrap(),
            max_hops: 16,
            queries: 3,
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
            min_step: Duration::from_millis(10),
        }
    }

    #[test]
    fn names_the_hop_that_adds_the_delay() {
        let hops = vec![
            hop(1, [10, 0, 1, 1], &[Some(0.1), Some(0.2), Some(0.1)]),
            hop(2, [10, 0, 2, 1], &[Some(80.3), Some(80.1), Some(80.2)]),
            hop(3, [10, 0, 3, 2], &[Some(80.4), Some(80.5), Some(80.3)]),
        ];
        let r = analyse(&opts(), hops, Duration::from_secs(1));
        assert!(r.reached);
        assert_eq!(r.delay_hop, Some(2));
        assert!((r.delay_added_ms.unwrap() - 80.0).abs() < 0.5);
        assert_eq!(r.loss_hop, None);
        let f = findings(&r);
        assert!(f.iter().all(|f| f.severity == Severity::Info));
        assert_eq!(f[0].measure("delay_hop"), Some(2.0));
    }

    #[test]
    fn flat_path_has_no_delay_hop_and_loss_starts_where_it_persists() {
        let hops = vec![
            hop(1, [10, 0, 1, 1], &[Some(0.1), None, Some(0.1)]),
            hop(2, [10, 0, 2, 1], &[Some(0.3), Some(0.2), Some(0.2)]),
            hop(3, [10, 0, 3, 2], &[Some(0.4), None, Some(0.3)]),
        ];
        let r = analyse(&opts(), hops, Duration::from_secs(1));
        assert_eq!(r.delay_hop, None);
        assert_eq!(r.loss_hop, Some(3));
        let hops = vec![hop(1, [10, 0, 1, 1], &[Some(0.1)]), hop(2, [0, 0, 0, 0], &[None])];
        let r = analyse(&opts(), hops, Duration::from_secs(1));
        assert!(!r.reached);
        assert_eq!(r.loss_hop, Some(2));
        assert!(findings(&r).iter().any(|f| f.case == CaseId::SynUnanswered));
    }
}
