//! ephemeral-port-odd-even: connections to one destination use up the local port range; since
//! 4.6 connect() tries one parity half first, so half the range full already makes every
//! connect scan it.

use super::{ns, push_opt, sysctl};
use netcase_host::{HostEvidence, Proto, TcpState};
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Half the range: the parity half connect() searches first is (nearly) exhausted.
pub const SHARE_WARN: f64 = 0.5;

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let (lo, hi) = match ev.sysctl_list("net.ipv4.ip_local_port_range").as_slice() {
        [lo, hi] if hi >= lo => (*lo, *hi),
        _ => (32768, 60999),
    };
    let size = (hi - lo + 1) as f64;
    let mut per_dst: BTreeMap<SocketAddr, usize> = BTreeMap::new();
    for s in ev.sockets.iter().filter(|s| s.proto == Proto::Tcp && s.state != TcpState::Listen) {
        let p = u64::from(s.local.port());
        if (lo..=hi).contains(&p) && s.remote.port() != 0 {
            *per_dst.entry(s.remote).or_default() += 1;
        }
    }
    for (dst, n) in per_dst {
        let share = n as f64 / size;
        if share < SHARE_WARN {
            continue;
        }
        let mut f = Finding::new(
            CaseId::EphemeralPortOddEven,
            if share >= 0.9 { Severity::Error } else { Severity::Warning },
            Subject::ServerPort { proto: "tcp", ip: Some(dst.ip()), port: dst.port() },
            format!("{n} local ports of {size:.0} ({:.0}%) are used for {dst}: connect() scans long for a free port (kernel {})", share * 100.0, ev.kernel),
        )
        .with_measure("ports_used", n as f64, "count")
        .with_measure("port_range_size", size, "count")
        .with_measure("share_pct", share * 100.0, "%")
        .with(Evidence::text("kernel", ev.kernel.clone()));
        if let Some(n) = ns(ev) {
            f = f.with(Evidence::text("netns", n));
        }
        push_opt(&mut f, sysctl(ev, "net.ipv4.ip_local_port_range"));
        out.push(f.with_confidence(netcase_model::Confidence::Certain, &[]).with_fix("widen net.ipv4.ip_local_port_range, spread over more destination addresses or ports, reuse connections; tcp_tw_reuse=1 for TIME_WAIT ports"));
    }
}
