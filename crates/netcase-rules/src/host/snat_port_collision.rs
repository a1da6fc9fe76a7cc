//! snat-port-collision: MASQUERADE/SNAT without `--random-fully` gives concurrent connections
//! the same translated source port; conntrack's insert then fails and the SYN vanishes.
//!
//! Evidence: `insert_failed` growing (or, with one sample, non-zero) in a namespace that has a
//! source-NAT rule without `--random-fully`. The table's fill does not matter: a lost insert
//! race is counted whatever the headroom (conntrack-table-full judges the fill). When the
//! namespace also carries DNS traffic, parallel A/AAAA lookups fail the same insert
//! (dns-conntrack-race-5s), and the finding says both are possible.

use super::conntrack_table_full::fill;
use super::{ct_active, ct_stat, dns_traffic, ns, snat_without_random_fully};
use netcase_host::HostEvidence;
use netcase_model::{CaseId, Confidence, Evidence, Finding, Severity, Subject};

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let Some(ct) = &ev.conntrack else { return };
    if !ct_active(ct, "insert_failed") {
        return;
    }
    let rules = snat_without_random_fully(ev);
    if rules.is_empty() {
        return;
    }
    let (failed, rate) = ct_stat(ct, "insert_failed");
    let dns = dns_traffic(ev);
    let (confidence, alternatives): (Confidence, &[CaseId]) =
        if dns.any() { (Confidence::Possible, &[CaseId::DnsConntrackRace5s]) } else { (Confidence::Likely, &[]) };
    let fill = fill(ct);
    let per_cpu: Vec<String> = ct
        .per_cpu
        .iter()
        .enumerate()
        .map(|(i, c)| format!("cpu{i}={}", c.get("insert_failed").copied().unwrap_or(0)))
        .collect();
    for r in rules {
        let mut f = Finding::new(
            CaseId::SnatPortCollision,
            if rate.is_some() { Severity::Warning } else { Severity::Info },
            Subject::Rule { table: "nat".into(), chain: r.chain.clone(), rule: r.text.clone() },
            format!(
                "source NAT without --random-fully while conntrack insert_failed is {failed}{}{}: concurrent \
                 connections translated to the same port lose the insert race and their SYNs are dropped{}",
                rate.map(|r| format!(" (+{r:.1}/s)")).unwrap_or_default(),
                fill.map(|(_, _, f)| format!(" with the table {:.1}% full (a race, not a full table)", f * 100.0))
                    .unwrap_or_default(),
                if dns.any() { "; DNS traffic here can fail the same insert (dns-conntrack-race-5s)" } else { "" }
            ),
        )
        .with_confidence(confidence, alternatives)
        .with_measure("insert_failed", failed as f64, "count")
        .with(Evidence::text("insert_failed_per_cpu", per_cpu.join(" ")))
        .with(Evidence::Counter { name: "conntrack.insert_failed".into(), value: failed, per_s: rate });
        if let Some(r) = rate {
            f = f.with_measure("insert_failed_per_s", r, "per_s");
        }
        if let Some((_, _, fr)) = fill {
            f = f.with_measure("fill_pct", (fr * 1000.0).round() / 10.0, "%");
        }
        if dns.any() {
            f = f.with_measure("dns_sockets", dns.sockets as f64, "count");
        }
        if let Some(n) = ns(ev) {
            f = f.with(Evidence::text("netns", n));
        }
        out.push(f.with_fix(
            "add --random-fully to the MASQUERADE/SNAT rule (iptables ≥ 1.6.2), or avoid SNAT for this traffic",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::{conntrack, empty, masquerade, udp};

    fn with(random_fully: bool, totals: &[(&str, u64)], rates: &[(&str, f64)]) -> HostEvidence {
        let mut ev = empty();
        ev.netfilter = Some(masquerade(random_fully));
        ev.conntrack = Some(conntrack(1180, 327_680, totals, rates));
        ev
    }

    fn run(ev: &HostEvidence) -> Vec<Finding> {
        let mut out = vec![];
        check(ev, &mut out);
        out
    }

    #[test]
    fn masquerade_without_random_fully_and_growing_insert_failed_is_named() {
        let out = run(&with(false, &[("insert_failed", 351)], &[("insert_failed", 35.1)]));
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!((f.severity, f.confidence), (Severity::Warning, Confidence::Likely));
        assert!(f.alternatives.is_empty());
        assert_eq!(f.measure("insert_failed"), Some(351.0));
        assert_eq!(f.measure("insert_failed_per_s"), Some(35.1));
        assert_eq!(f.measure("fill_pct"), Some(0.4));
        assert!(matches!(&f.subject, Subject::Rule { chain, .. } if chain == "POSTROUTING"));
    }

    #[test]
    fn one_sample_is_info_with_the_observed_count() {
        let out = run(&with(false, &[("insert_failed", 89)], &[]));
        assert_eq!(out[0].severity, Severity::Info);
        assert_eq!(out[0].measure("insert_failed"), Some(89.0));
    }

    #[test]
    fn random_fully_or_quiet_counters_are_silent() {
        assert!(run(&with(true, &[("insert_failed", 351)], &[("insert_failed", 35.1)])).is_empty());
        assert!(run(&with(false, &[("insert_failed", 351)], &[("insert_failed", 0.0)])).is_empty());
        assert!(run(&with(false, &[], &[])).is_empty());
    }

    #[test]
    fn without_snat_rules_it_is_not_this_case() {
        let mut ev = with(false, &[("insert_failed", 10)], &[("insert_failed", 1.0)]);
        ev.netfilter = None;
        assert!(run(&ev).is_empty());
    }

    #[test]
    fn dns_traffic_beside_snat_leaves_the_dns_race_possible() {
        let mut ev = with(false, &[("insert_failed", 10)], &[("insert_failed", 1.0)]);
        ev.sockets.push(udp("10.0.0.5:40000", "10.96.0.10:53"));
        let out = run(&ev);
        assert_eq!(out[0].confidence, Confidence::Possible);
        assert_eq!(out[0].alternatives, vec![CaseId::DnsConntrackRace5s]);
    }
}
