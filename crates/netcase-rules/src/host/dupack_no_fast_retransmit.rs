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
    // Kernel advice only for the kernel the counter's regression is known on.
    let fix = if ev.kernel.starts_with("3.10.0-957") {
        "upgrade the kernel: 3.10.0-1062.1.1 or later fixes this CentOS 7 regression (the 2019 SACK-panic fix refuses to \
         split the retransmit queue, so holes are not fast-retransmitted)"
            .to_owned()
    } else {
        format!(
            "retransmissions refused on a fragmented write queue (the 2019 SACK-panic mitigation); kernel {} is not the \
             known CentOS 7 3.10.0-957 regression: look for senders with very large send buffers filled by small writes \
             (tcp_wmem, SO_SNDBUF) and compare with `netcase pcap` of their traffic (duplicate ACKs without fast \
             retransmit)",
            ev.kernel
        )
    };
    out.push(f.with_confidence(netcase_model::Confidence::Certain, &[]).with_fix(fix));
}
