//! accept-queue-overflow: a listener's accept queue is full (the kernel counts it full at
//! backlog + 1); new handshakes are dropped (ListenOverflows, ListenDrops) or, with
//! `tcp_abort_on_overflow=1`, reset.

use super::{counter, moving_or_set, ns, push_opt, rate, sysctl};
use netcase_host::{HostEvidence, TcpState};
use netcase_model::{CaseId, Finding, Severity, Subject};

/// The queue is "full" when it holds more than the backlog (`sk_acceptq_is_full`).
fn full(recv_q: u32, backlog: u32) -> bool {
    recv_q > backlog
}

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let (growing, set) = moving_or_set(ev, "TcpExt.ListenOverflows");
    let somaxconn = ev.sysctl_u64("net.core.somaxconn");
    let mut any = false;
    for l in ev.sockets.iter().filter(|s| s.state == TcpState::Listen && full(s.recv_q, s.send_q)) {
        any = true;
        let owner = l.owner().map(|(p, c)| format!("{c} (pid {p})")).unwrap_or_else(|| "unknown process".into());
        let mut f = Finding::new(
            CaseId::AcceptQueueOverflow,
            if growing { Severity::Error } else { Severity::Warning },
            Subject::Listener { local: l.local, netns: ns(ev) },
            format!(
                "accept queue of {} is full: {} waiting for a backlog of {} (effective backlog = min(somaxconn {}, listen backlog)); {owner} does not accept fast enough",
                l.local,
                l.recv_q,
                l.send_q,
                somaxconn.map_or_else(|| "?".into(), |v| v.to_string())
            ),
        )
        .with_measure("accept_queue", f64::from(l.recv_q), "count")
        .with_measure("backlog", f64::from(l.send_q), "count")
        .with_measure("fill_pct", if l.send_q == 0 { 100.0 } else { f64::from(l.recv_q) * 100.0 / f64::from(l.send_q) }, "%");
        if let Some((p, _)) = l.owner() {
            f = f.with_measure("pid", f64::from(p), "pid");
        }
        // The absolute count is meaningful with one sample too: in a network namespace the
        // counters start at zero when it is created, so it is "overflows since then".
        if let Some((v, _)) = ev.counter("TcpExt.ListenOverflows") {
            f = f.with_measure("listen_overflows", v as f64, "count");
        }
        if let Some(r) = rate(ev, "TcpExt.ListenOverflows") {
            f = f.with_measure("listen_overflows_per_s", r, "per_s");
        }
        push_opt(&mut f, counter(ev, "TcpExt.ListenOverflows"));
        push_opt(&mut f, counter(ev, "TcpExt.ListenDrops"));
        push_opt(&mut f, sysctl(ev, "net.core.somaxconn"));
        push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_abort_on_overflow"));
        out.push(f.with_confidence(netcase_model::Confidence::Certain, &[]).with_fix(format!(
            "accept faster (more acceptor threads, no blocking work before accept()); raise net.core.somaxconn (now {}) and the listen() backlog together; net.ipv4.tcp_abort_on_overflow=1 makes clients fail fast with RST instead of retrying",
            somaxconn.map_or_else(|| "?".into(), |v| v.to_string())
        )));
    }
    if !any && (growing || set) {
        let (v, r) = ev.counter("TcpExt.ListenOverflows").unwrap_or((0, None));
        let mut f = Finding::new(
            CaseId::AcceptQueueOverflow,
            if growing { Severity::Warning } else { Severity::Info },
            Subject::Netns { name: ns(ev).unwrap_or_else(|| "host".into()) },
            match r {
                Some(r) => format!("accept queues overflowed {r:.1} times per second between samples (ListenOverflows {v}), no listener full at the moment"),
                None => format!("accept queues have overflowed {v} times since the namespace started (one sample, no rate)"),
            },
        )
        .with_measure("listen_overflows", v as f64, "count");
        if let Some(r) = r {
            f = f.with_measure("listen_overflows_per_s", r, "per_s");
        }
        push_opt(&mut f, counter(ev, "TcpExt.ListenOverflows"));
        push_opt(&mut f, counter(ev, "TcpExt.ListenDrops"));
        push_opt(&mut f, sysctl(ev, "net.core.somaxconn"));
        out.push(f.with_confidence(netcase_model::Confidence::Certain, &[]).with_fix("find the listener whose Recv-Q reaches its Send-Q (ss -lnt) during bursts; raise somaxconn and its backlog, accept faster"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::{empty, tcp};

    #[test]
    fn full_listener_with_rate() {
        let mut ev = empty();
        let mut l = tcp(TcpState::Listen, "0.0.0.0:8080", "0.0.0.0:0");
        l.recv_q = 5;
        l.send_q = 4;
        ev.sockets.push(l);
        ev.counters.insert("TcpExt.ListenOverflows".into(), 30);
        ev.counter_rates.insert("TcpExt.ListenOverflows".into(), 3.0);
        let mut out = vec![];
        check(&ev, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].severity, Severity::Error);
        assert_eq!(out[0].measure("backlog"), Some(4.0));
        assert_eq!(out[0].measure("listen_overflows_per_s"), Some(3.0));
    }

    #[test]
    fn one_sample_reports_the_absolute_overflows() {
        let mut ev = empty();
        let mut l = tcp(TcpState::Listen, "0.0.0.0:8080", "0.0.0.0:0");
        l.recv_q = 5;
        l.send_q = 4;
        ev.sockets.push(l);
        ev.counters.insert("TcpExt.ListenOverflows".into(), 14);
        let mut out = vec![];
        check(&ev, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].severity, Severity::Warning, "no rate: cannot tell the drops are current");
        assert_eq!(out[0].measure("listen_overflows"), Some(14.0));
        assert_eq!(out[0].measure("listen_overflows_per_s"), None);
        assert!(out[0].evidence.iter().any(|e| matches!(e, netcase_model::Evidence::Counter { name, value: 14, per_s: None } if name == "TcpExt.ListenOverflows")));
    }

    #[test]
    fn quiet_listener_is_silent() {
        let mut ev = empty();
        let mut l = tcp(TcpState::Listen, "0.0.0.0:8080", "0.0.0.0:0");
        l.recv_q = 0;
        l.send_q = 4096;
        ev.sockets.push(l);
        ev.counters.insert("TcpExt.ListenOverflows".into(), 0);
        let mut out = vec![];
        check(&ev, &mut out);
        assert!(out.is_empty());
    }
}
