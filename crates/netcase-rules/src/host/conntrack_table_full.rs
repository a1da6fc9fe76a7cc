//! conntrack-table-full: the conntrack table at its limit drops new flows.

use super::{ns, push_opt, sysctl};
use netcase_host::HostEvidence;
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};

/// Past 90% a burst of new flows fills the table; early_drop starts evicting.
pub const FILL_WARN: f64 = 0.9;

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let Some(ct) = &ev.conntrack else { return };
    let fill = match (ct.count, ct.max) {
        (Some(c), Some(m)) if m > 0 => Some((c, m, c as f64 / m as f64)),
        _ => None,
    };
    let drop_rate = ct.per_s.get("drop").copied().unwrap_or(0.0) + ct.per_s.get("early_drop").copied().unwrap_or(0.0);
    let near = fill.is_some_and(|(_, _, f)| f >= FILL_WARN);
    if !near && drop_rate <= 0.0 {
        return;
    }
    let mut f = Finding::new(
        CaseId::ConntrackTableFull,
        if drop_rate > 0.0 || fill.is_some_and(|(_, _, f)| f >= 1.0) { Severity::Error } else { Severity::Warning },
        Subject::Netns { name: ns(ev).unwrap_or_else(|| "host".into()) },
        match fill {
            Some((c, m, fr)) => format!(
                "conntrack table {c} of {m} ({:.0}%), headroom {} entries; {drop_rate:.1} flows dropped per second",
                fr * 100.0,
                m.saturating_sub(c)
            ),
            None => format!("conntrack drops {drop_rate:.1} new flows per second"),
        },
    );
    if let Some((c, m, fr)) = fill {
        f = f
            .with_measure("count", c as f64, "count")
            .with_measure("max", m as f64, "count")
            .with_measure("fill_pct", fr * 100.0, "%")
            .with_measure("headroom", m.saturating_sub(c) as f64, "count");
    }
    for k in ["drop", "early_drop", "insert_failed"] {
        if let Some(v) = ct.totals.get(k) {
            f = f.with(Evidence::Counter {
                name: format!("conntrack.{k}"),
                value: *v,
                per_s: ct.per_s.get(k).copied(),
            });
        }
    }
    push_opt(&mut f, sysctl(ev, "net.netfilter.nf_conntrack_max"));
    out.push(f.with_fix("raise net.netfilter.nf_conntrack_max (and nf_conntrack_buckets), shorten timeouts for short flows, or exempt heavy traffic with a raw-table NOTRACK rule"));
}
