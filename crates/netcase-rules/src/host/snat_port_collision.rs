//! snat-port-collision: MASQUERADE/SNAT without `--random-fully` gives concurrent connections
//! the same translated source port; conntrack's insert then fails and the SYN vanishes.

use super::ns;
use netcase_host::HostEvidence;
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let (Some(rs), Some(ct)) = (&ev.netfilter, &ev.conntrack) else { return };
    let failed = ct.totals.get("insert_failed").copied().unwrap_or(0);
    let rate = ct.per_s.get("insert_failed").copied();
    let active = match rate {
        Some(r) => r > 0.0,
        None => failed > 0,
    };
    if !active {
        return;
    }
    for r in rs.with_target("nat", &["MASQUERADE", "SNAT"]).filter(|r| !r.random_fully) {
        let per_cpu: Vec<String> = ct
            .per_cpu
            .iter()
            .enumerate()
            .map(|(i, c)| format!("cpu{i}={}", c.get("insert_failed").copied().unwrap_or(0)))
            .collect();
        let mut f = Finding::new(
            CaseId::SnatPortCollision,
            if rate.is_some() { Severity::Warning } else { Severity::Info },
            Subject::Rule { table: "nat".into(), chain: r.chain.clone(), rule: r.text.clone() },
            format!(
                "source NAT without --random-fully while conntrack insert_failed is {failed}{}: concurrent connections collide on translated ports",
                rate.map(|r| format!(" (+{r:.1}/s)")).unwrap_or_default()
            ),
        )
        .with_measure("insert_failed", failed as f64, "count")
        .with(Evidence::text("insert_failed_per_cpu", per_cpu.join(" ")))
        .with(Evidence::Counter { name: "conntrack.insert_failed".into(), value: failed, per_s: rate });
        if let Some(r) = rate {
            f = f.with_measure("insert_failed_per_s", r, "per_s");
        }
        if let Some(n) = ns(ev) {
            f = f.with(Evidence::text("netns", n));
        }
        out.push(f.with_fix(
            "add --random-fully to the MASQUERADE/SNAT rule (iptables ≥ 1.6.2), or avoid SNAT for this traffic",
        ));
    }
}
