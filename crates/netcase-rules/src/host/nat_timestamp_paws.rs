//! nat-timestamp-paws: `tcp_tw_recycle=1` (kernels before 4.12) drops SYNs from clients behind
//! one NAT whose TCP timestamp clocks differ (PAWS).

use super::{counter, ns, push_opt, sysctl};
use netcase_host::HostEvidence;
use netcase_model::{CaseId, Finding, Severity, Subject};

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    if ev.sysctl_u64("net.ipv4.tcp_tw_recycle") != Some(1) {
        return;
    }
    let mut f = Finding::new(
        CaseId::NatTimestampPaws,
        if ev.sysctl_u64("net.ipv4.tcp_timestamps").unwrap_or(1) == 1 { Severity::Error } else { Severity::Warning },
        Subject::Netns { name: ns(ev).unwrap_or_else(|| "host".into()) },
        format!(
            "tcp_tw_recycle is on (kernel {}): SYNs from clients behind a NAT with differing timestamps are dropped",
            ev.kernel
        ),
    );
    for n in ["TcpExt.PAWSPassive", "TcpExt.PAWSActive", "TcpExt.PAWSEstab"] {
        if let Some((v, r)) = ev.counter(n) {
            let key = n.trim_start_matches("TcpExt.").to_lowercase();
            f = f.with_measure(&key, v as f64, "count");
            if let Some(r) = r {
                f = f.with_measure(&format!("{key}_per_s"), r, "per_s");
            }
        }
        push_opt(&mut f, counter(ev, n));
    }
    push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_tw_recycle"));
    push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_timestamps"));
    out.push(f.with_fix("set net.ipv4.tcp_tw_recycle=0 (removed in 4.12); use tcp_tw_reuse on clients instead"));
}
