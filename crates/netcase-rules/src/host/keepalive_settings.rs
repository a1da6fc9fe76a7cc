//! keepalive-settings: long-idle established connections without a keepalive timer die
//! silently in NATs and load balancers that forget idle flows.

use super::{ns, push_opt, sysctl};
use netcase_host::{HostEvidence, Proto, TcpState, TimerKind};
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use std::collections::BTreeMap;

/// Idle for 5 minutes: below the idle timeouts of common middleboxes (AWS NAT gateway 350 s,
/// many firewalls 600-3600 s) yet long enough that normal request gaps do not count.
pub const IDLE_MS: u32 = 300_000;
/// Keepalive probing later than this (the 7200 s default) outlives most middlebox timeouts.
pub const SLOW_KEEPALIVE_S: u64 = 600;

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    check_idle(ev, IDLE_MS, out);
}

/// [`check`] with another idle threshold (ms), for short-lived tests and tighter policies.
pub(crate) fn check_idle(ev: &HostEvidence, idle_ms: u32, out: &mut Vec<Finding>) {
    let mut groups: BTreeMap<(Option<u32>, String), (usize, u32)> = BTreeMap::new();
    for s in ev.sockets.iter().filter(|s| s.proto == Proto::Tcp && s.state == TcpState::Established) {
        let Some(t) = s.tcp else { continue };
        let idle = t.last_data_recv_ms.min(t.last_data_sent_ms);
        if idle < idle_ms || s.timer.is_some_and(|t| t.kind == TimerKind::Keepalive) {
            continue;
        }
        let (pid, comm) = s.owner().map_or((None, "unknown".to_owned()), |(p, c)| (Some(p), c.to_owned()));
        let g = groups.entry((pid, comm)).or_default();
        g.0 += 1;
        g.1 = g.1.max(idle);
    }
    let ka = ev.sysctl_u64("net.ipv4.tcp_keepalive_time").unwrap_or(7200);
    for ((pid, comm), (n, idle)) in groups {
        let subject = match pid {
            Some(pid) => Subject::Process { pid, comm: comm.clone(), netns: ns(ev) },
            None => Subject::Netns { name: ns(ev).unwrap_or_else(|| "host".into()) },
        };
        let mut f = Finding::new(
            CaseId::KeepaliveSettings,
            Severity::Warning,
            subject,
            format!("{n} established connections of {comm} idle up to {:.0} s with no keepalive timer: a NAT or load balancer may have dropped them already", f64::from(idle) / 1000.0),
        )
        .with_measure("count", n as f64, "count")
        .with_measure("max_idle_s", f64::from(idle) / 1000.0, "s")
        .with_measure("tcp_keepalive_time_s", ka as f64, "s");
        push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_keepalive_time"));
        push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_keepalive_intvl"));
        if ka > SLOW_KEEPALIVE_S {
            f = f.with(Evidence::text("note", format!("even with SO_KEEPALIVE the first probe comes after {ka} s")));
        }
        out.push(f.with_fix("enable SO_KEEPALIVE with an idle time below the middlebox timeout (e.g. TCP_KEEPIDLE 60 s, TCP_KEEPINTVL 15 s; Go: SetKeepAlive + SetKeepAlivePeriod)"));
    }
}
