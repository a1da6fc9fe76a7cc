//! dupack-no-fast-retransmit: TCPWqueueTooBig grows: the 2019 SACK-panic fixes on some kernels
//! (CentOS 7 3.10.0-957) refuse to split the retransmit queue, so a hole is never fast
//! retransmitted.

use super::{counter, moving_or_set, ns, push_opt, sysctl};
use netcase_host::HostEvidence;
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let (growing, set) = moving_or_set(ev, "TcpExt.TCPWqueueTooBig");
    if !growing && !set {
        return;
    }
    let (v, r) = ev.counter("TcpExt.TCPWqueueTooBig").unwrap_or((0, None));
    let mut f = Finding::new(
        CaseId::DupackNoFastRetransmit,
        if growing { Severity::Warning } else { Severity::Info },
        Subject::Netns { name: ns(ev).unwrap_or_else(|| "host".into()) },
        format!(
            "TCPWqueueTooBig is {v}{}: retransmissions are refused on a long write queue (kernel {})",
            r.map(|r| format!(" (+{r:.1}/s)")).unwrap_or_default(),
            ev.kernel
        ),
    )
    .with_measure("wqueue_too_big", v as f64, "count")
    .with(Evidence::text("kernel", ev.kernel.clone()));
    if let Some(r) = r {
        f = f.with_measure("wqueue_too_big_per_s", r, "per_s");
    }
    push_opt(&mut f, counter(ev, "TcpExt.TCPWqueueTooBig"));
    push_opt(&mut f, sysctl(ev, "net.ipv4.tcp_reordering"));
    out.push(f.with_fix("upgrade the kernel (CentOS 7: 3.10.0-1062.1.1 or later fixes the 3.10.0-957 regression)"));
}
