//! Findings from TCP tracepoint events: refused connects, aborts, retransmission stalls.

use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use netcase_trace::tcp::{FlowSummary, TcpReport};

fn subject(f: &FlowSummary) -> Subject {
    Subject::Socket { proto: "tcp", local: f.local, remote: f.remote, netns: None }
}

/// Every rule over a TCP trace; findings sorted.
pub fn check_tcp(ev: &TcpReport) -> Vec<Finding> {
    let mut out = Vec::new();
    for f in &ev.flows {
        let refused = f.resets_received > 0
            && f.path.iter().any(|s| s == "TCP_SYN_SENT")
            && !f.path.iter().any(|s| s == "TCP_ESTABLISHED");
        if refused {
            out.push(
                Finding::new(
                    CaseId::PortUnreachable,
                    Severity::Warning,
                    subject(f),
                    format!("connect from {} to {} was answered by RST", f.local, f.remote),
                )
                .with_measure("resets_received", f.resets_received as f64, "count")
                .with(Evidence::text("path", f.path.join(" > ")))
                .with_fix("nothing listens there, or a REJECT rule answers: check the service, its port and netfilter"),
            );
        }
        let aborts: Vec<&str> = f
            .reset_reasons
            .iter()
            .map(String::as_str)
            // SO_LINGER 0 closes through tcp_disconnect, which recent kernels name TCP_STATE.
            .filter(|r| matches!(*r, "TCP_ABORT_ON_LINGER" | "TCP_ABORT_ON_CLOSE" | "TCP_ABORT_ON_DATA" | "TCP_STATE"))
            .collect();
        if !aborts.is_empty() {
            out.push(
                Finding::new(
                    CaseId::LingerZeroRst,
                    Severity::Info,
                    subject(f),
                    format!("{} aborted its connection to {} with RST ({})", f.local, f.remote, aborts.join(", ")),
                )
                .with_measure("resets_sent", f.resets_sent as f64, "count")
                .with(Evidence::text("reset_reason", aborts.join(", ")))
                .with_fix("close without SO_LINGER 0 and read pending data before close, unless an abort is intended"),
            );
        }
        if f.retransmits > 0 {
            let sev = if f.retransmits >= 3 { Severity::Warning } else { Severity::Info };
            out.push(
                Finding::new(
                    CaseId::RetransHolBlocking,
                    sev,
                    subject(f),
                    format!("{} retransmitted {} segments to {}", f.local, f.retransmits, f.remote),
                )
                .with_measure("retransmits", f.retransmits as f64, "count")
                .with_fix("find where the segments are lost: `netcase drops` for this host, a capture on the path"),
            );
        }
    }
    Finding::settle(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcase_trace::tcp::{TcpAggregator, TcpEvent, TcpEventKind, TcpFilter};

    fn ev(kind: TcpEventKind, t: u64, state: Option<&str>, new: Option<&str>, reason: Option<&str>) -> TcpEvent {
        TcpEvent {
            time_ns: t,
            t_ms: 0.0,
            kind,
            local: "10.202.0.1:40000".parse().unwrap(),
            remote: "10.202.0.2:80".parse().unwrap(),
            state: state.map(str::to_owned),
            new_state: new.map(str::to_owned),
            reason: reason.map(str::to_owned),
            sock: 0,
            err: None,
        }
    }

    #[test]
    fn refused_connect_is_port_unreachable() {
        let mut a = TcpAggregator::new(TcpFilter::default(), 0);
        a.add(ev(TcpEventKind::StateChange, 1, Some("TCP_CLOSE"), Some("TCP_SYN_SENT"), None));
        a.add(ev(TcpEventKind::ReceiveReset, 2, None, None, None));
        a.add(ev(TcpEventKind::StateChange, 3, Some("TCP_SYN_SENT"), Some("TCP_CLOSE"), None));
        let f = check_tcp(&a.report(4));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].case, CaseId::PortUnreachable);
    }

    #[test]
    fn retransmits_and_linger_abort() {
        let mut a = TcpAggregator::new(TcpFilter::default(), 0);
        for t in 0..4 {
            a.add(ev(TcpEventKind::Retransmit, t, Some("TCP_ESTABLISHED"), None, None));
        }
        a.add(ev(TcpEventKind::SendReset, 9, Some("TCP_ESTABLISHED"), None, Some("TCP_ABORT_ON_LINGER")));
        let f = check_tcp(&a.report(10));
        let r = f.iter().find(|f| f.case == CaseId::RetransHolBlocking).unwrap();
        assert_eq!((r.severity, r.measure("retransmits")), (Severity::Warning, Some(4.0)));
        assert!(f.iter().any(|f| f.case == CaseId::LingerZeroRst));
    }

    #[test]
    fn clean_connection_is_silent() {
        let mut a = TcpAggregator::new(TcpFilter::default(), 0);
        a.add(ev(TcpEventKind::StateChange, 1, Some("TCP_CLOSE"), Some("TCP_SYN_SENT"), None));
        a.add(ev(TcpEventKind::StateChange, 2, Some("TCP_SYN_SENT"), Some("TCP_ESTABLISHED"), None));
        assert!(check_tcp(&a.report(3)).is_empty());
    }
}
