//! time-wait-pileup: the side that closes first holds TIME_WAIT for 2MSL (60 s on Linux).
//! On a client the sockets pin local ports per destination; everywhere they count against
//! `tcp_max_tw_buckets`.

use super::{ns, push_opt, sysctl};
use netcase_host::{HostEvidence, TcpState};
use netcase_model::{CaseId, Finding, Severity, Subject};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// A quarter of the local port range pinned in TIME_WAIT for one destination: connects to it
/// start scanning long for a free port and fail once the rest is used.
pub const PORT_SHARE_WARN: f64 = 0.25;
/// Half of `tcp_max_tw_buckets`: past the limit the kernel destroys TIME_WAIT sockets early
/// ("time wait bucket table overflow"), losing their protection.
pub const BUCKET_SHARE_WARN: f64 = 0.5;

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let tw: Vec<_> = ev.sockets.iter().filter(|s| s.state == TcpState::TimeWait).collect();
    if tw.is_empty() {
        return;
    }
    let listening: BTreeSet<u16> =
        ev.sockets.iter().filter(|s| s.state == TcpState::Listen).map(|s| s.local.port()).collect();
    let range = ev.sysctl_list("net.ipv4.ip_local_port_range");
    let range_size = match range.as_slice() {
        [lo, hi] if hi >= lo => (hi - lo + 1) as f64,
        _ => 28232.0, // the kernel default 32768-60999
    };
    let buckets = ev.sysctl_u64("net.ipv4.tcp_max_tw_buckets").unwrap_or(262_144) as f64;
    // Client side: we connected and closed first → TIME_WAIT keyed by destination.
    let mut per_dst: BTreeMap<SocketAddr, usize> = BTreeMap::new();
    let mut per_server_port: BTreeMap<u16, usize> = BTreeMap::new();
    for s in &tw {
        if listening.contains(&s.local.port()) {
            *per_server_port.entry(s.local.port()).or_default() += 1;
        } else {
            *per_dst.entry(s.remote).or_default() += 1;
        }
    }
    let total = tw.len() as f64;
    let reuse = ev.sysctls.get("net.ipv4.tcp_tw_reuse").cloned().unwrap_or_default();
    for (dst, n) in &per_dst {
        let share = *n as f64 / range_size;
        if share < PORT_SHARE_WARN {
            continue;
        }
        let mut f = Finding::new(
            CaseId::TimeWaitPileup,
            if share >= 0.75 { Severity::Error } else { Severity::Warning },
            Subject::ServerPort { proto: "tcp", ip: Some(dst.ip()), port: dst.port() },
            format!(
                "this side closes first: {n} TIME_WAIT sockets to {dst} pin {:.0}% of the {range_size:.0} local ports",
                share * 100.0
            ),
        )
        .with_measure("count", *n as f64, "count")
        .with_measure("port_range_size", range_size, "count")
        .with_measure("share_of_port_range_pct", share * 100.0, "%")
        .with_measure("time_wait_total", total, "count")
        .with_measure("tcp_max_tw_buckets", buckets, "count");
        push_opt(&mut f, sysctl(ev, "net.ipv4.ip_local_port_range"));
        push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_tw_reuse"));
        push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_timestamps"));
        f = f.with(netcase_model::Evidence::text("who_closes_first", "client (this namespace)"));
        out.push(f.with_confidence(netcase_model::Confidence::Certain, &[]).with_fix(format!(
            "reuse connections (HTTP keep-alive, a pool) instead of one per request; set net.ipv4.tcp_tw_reuse=1 on this client (now {reuse}, needs tcp_timestamps=1); widen net.ipv4.ip_local_port_range (e.g. 10240 65535)"
        )));
    }
    if total / buckets >= BUCKET_SHARE_WARN {
        let top = per_server_port.iter().max_by_key(|(_, n)| **n).map(|(p, n)| (*p, *n));
        let mut f = Finding::new(
            CaseId::TimeWaitPileup,
            if total >= buckets { Severity::Error } else { Severity::Warning },
            Subject::Netns { name: ns(ev).unwrap_or_else(|| "host".into()) },
            format!("{total:.0} TIME_WAIT sockets, {:.0}% of tcp_max_tw_buckets {buckets:.0}", total * 100.0 / buckets),
        )
        .with_measure("count", total, "count")
        .with_measure("tcp_max_tw_buckets", buckets, "count")
        .with_measure("share_of_buckets_pct", total * 100.0 / buckets, "%");
        if let Some((p, n)) = top {
            f = f.with_measure("server_port", f64::from(p), "port").with_measure(
                "server_port_count",
                n as f64,
                "count",
            );
            f = f.with(netcase_model::Evidence::text(
                "who_closes_first",
                format!("server on port {p} (no keep-alive, idle timeout or a request cap)"),
            ));
        }
        push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_max_tw_buckets"));
        out.push(f.with_confidence(netcase_model::Confidence::Certain, &[]).with_fix("let clients close first or keep connections alive (nginx keepalive_requests/keepalive_timeout higher); raise net.ipv4.tcp_max_tw_buckets"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::{empty, tcp};

    #[test]
    fn client_side_pileup_vs_port_range() {
        let mut ev = empty();
        ev.sysctls.insert("net.ipv4.ip_local_port_range".into(), "40000 40999".into());
        for i in 0..400 {
            let mut s = tcp(TcpState::TimeWait, &format!("10.0.0.1:{}", 40000 + i), "10.0.0.2:80");
            s.inode = 0;
            ev.sockets.push(s);
        }
        let mut out = vec![];
        check(&ev, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].measure("count"), Some(400.0));
        assert_eq!(out[0].measure("port_range_size"), Some(1000.0));
        assert_eq!(out[0].measure("share_of_port_range_pct"), Some(40.0));
    }

    #[test]
    fn a_few_time_wait_are_fine() {
        let mut ev = empty();
        ev.sockets =
            (0..50).map(|i| tcp(TcpState::TimeWait, &format!("10.0.0.1:{}", 40000 + i), "10.0.0.2:80")).collect();
        let mut out = vec![];
        check(&ev, &mut out);
        assert!(out.is_empty());
    }
}
