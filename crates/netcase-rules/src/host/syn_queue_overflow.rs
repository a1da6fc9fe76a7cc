//! syn-queue-overflow: half-open connections (SYN_RECV) fill the SYN queue; without syncookies
//! new SYNs are dropped once 3/4 of `tcp_max_syn_backlog` wait, or at the listen backlog.

use super::{counter, moving_or_set, ns, push_opt, sysctl};
use netcase_host::{HostEvidence, TcpState};
use netcase_model::{CaseId, Finding, Severity, Subject};
use std::collections::BTreeMap;

/// The kernel starts dropping (syncookies off) at three quarters of tcp_max_syn_backlog.
pub const SYN_BACKLOG_DROP_SHARE: f64 = 0.75;

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let max_syn = ev.sysctl_u64("net.ipv4.tcp_max_syn_backlog").unwrap_or(1024);
    let cookies = ev.sysctl_u64("net.ipv4.tcp_syncookies").unwrap_or(1);
    let mut per_port: BTreeMap<u16, u32> = BTreeMap::new();
    for s in ev.sockets.iter().filter(|s| s.state == TcpState::SynRecv) {
        *per_port.entry(s.local.port()).or_default() += 1;
    }
    let (qfull_growing, qfull_set) = moving_or_set(ev, "TcpExt.TCPReqQFullDrop");
    let (cookie_growing, _) = moving_or_set(ev, "TcpExt.TCPReqQFullDoCookies");
    let mut any = false;
    for (port, n) in &per_port {
        let l = ev.sockets.iter().find(|s| s.state == TcpState::Listen && s.local.port() == *port);
        let backlog = l.map_or(u64::from(u32::MAX), |l| u64::from(l.send_q));
        let limit =
            if cookies == 0 { ((max_syn as f64 * SYN_BACKLOG_DROP_SHARE) as u64).min(backlog) } else { backlog };
        if u64::from(*n) < limit || limit == 0 {
            continue;
        }
        any = true;
        let mut f = Finding::new(
            CaseId::SynQueueOverflow,
            Severity::Error,
            l.map_or(Subject::ServerPort { proto: "tcp", ip: None, port: *port }, |l| Subject::Listener { local: l.local, netns: ns(ev) }),
            format!("{n} half-open connections (SYN_RECV) on port {port} reach the SYN queue limit {limit}; new SYNs are dropped"),
        )
        .with_measure("syn_recv", f64::from(*n), "count")
        .with_measure("limit", limit as f64, "count")
        .with_measure("backlog", backlog as f64, "count");
        push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_max_syn_backlog"));
        push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_syncookies"));
        push_opt(&mut f, counter(ev, "TcpExt.TCPReqQFullDrop"));
        push_opt(&mut f, counter(ev, "TcpExt.ListenDrops"));
        out.push(f.with_confidence(netcase_model::Confidence::Certain, &[]).with_fix("enable net.ipv4.tcp_syncookies=1, raise net.ipv4.tcp_max_syn_backlog and the listen backlog; check for a SYN flood or a peer that never completes the handshake"));
    }
    if !any && (qfull_growing || qfull_set || cookie_growing) {
        let mut f = Finding::new(
            CaseId::SynQueueOverflow,
            if qfull_growing { Severity::Warning } else { Severity::Info },
            Subject::Netns { name: ns(ev).unwrap_or_else(|| "host".into()) },
            "SYN queues overflowed: TCPReqQFullDrop/TCPReqQFullDoCookies counted SYNs dropped or answered with cookies"
                .to_owned(),
        );
        if let Some((v, r)) = ev.counter("TcpExt.TCPReqQFullDrop") {
            f = f.with_measure("req_q_full_drop", v as f64, "count");
            if let Some(r) = r {
                f = f.with_measure("req_q_full_drop_per_s", r, "per_s");
            }
        }
        push_opt(&mut f, counter(ev, "TcpExt.TCPReqQFullDrop"));
        push_opt(&mut f, counter(ev, "TcpExt.TCPReqQFullDoCookies"));
        push_opt(&mut f, counter(ev, "TcpExt.ListenDrops"));
        push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_max_syn_backlog"));
        push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_syncookies"));
        out.push(
            f.with_confidence(netcase_model::Confidence::Certain, &[])
                .with_fix("raise net.ipv4.tcp_max_syn_backlog and the listen backlog; keep syncookies on"),
        );
    }
}
