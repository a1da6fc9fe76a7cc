//! conntrack-table-full: the conntrack table at its limit drops new flows.
//!
//! Judged by the fill ratio (entries of this namespace against the global
//! `nf_conntrack_max`) and by the drops only a full table causes:
//!
//! * `early_drop`: the kernel evicted an unreplied entry to make room, which it tries only when
//!   the table is over its limit;
//! * `drop` beyond `insert_failed`: the kernel counts a lost insert race (two CPUs confirming
//!   entries with the same tuple at once) in both `insert_failed` and `drop`, so only the drops
//!   in excess of `insert_failed` are allocations refused by a full table ("nf_conntrack: table
//!   full, dropping packet").
//!
//! `insert_failed` with headroom is a race, not a full table: snat-port-collision and
//! dns-conntrack-race-5s judge it.

use super::{ct_stat, ns, push_opt, sysctl};
use netcase_host::{Conntrack, HostEvidence};
use netcase_model::{CaseId, Confidence, Evidence, Finding, Severity, Subject};

/// Past 90% a burst of new flows fills the table; early_drop starts evicting.
pub const FILL_WARN: f64 = 0.9;
/// Past 95% the table is as good as full: an error.
pub const FILL_ERROR: f64 = 0.95;

/// The drops that only a full table causes: (total since start, growth per second when
/// sampled twice).
pub(crate) fn full_table_drops(ct: &Conntrack) -> (u64, Option<f64>) {
    let (early, early_r) = ct_stat(ct, "early_drop");
    let (drop, drop_r) = ct_stat(ct, "drop");
    let (failed, failed_r) = ct_stat(ct, "insert_failed");
    let total = early + drop.saturating_sub(failed);
    let rate = match (early_r, drop_r) {
        (None, None) => None,
        (e, d) => Some(e.unwrap_or(0.0) + (d.unwrap_or(0.0) - failed_r.unwrap_or(0.0)).max(0.0)),
    };
    (total, rate)
}

/// The fill ratio: (count, max, count / max).
pub(crate) fn fill(ct: &Conntrack) -> Option<(u64, u64, f64)> {
    match (ct.count, ct.max) {
        (Some(c), Some(m)) if m > 0 => Some((c, m, c as f64 / m as f64)),
        _ => None,
    }
}

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let Some(ct) = &ev.conntrack else { return };
    let fill = fill(ct);
    let ratio = fill.map_or(0.0, |(_, _, f)| f);
    let (drops, drop_rate) = full_table_drops(ct);
    let dropping_now = drop_rate.is_some_and(|r| r > 0.0);
    // Totals without a rate: drops at some time since the namespace (or boot) started.
    let dropped_before = drops > 0 && !dropping_now;
    let (severity, confidence, state) = if ratio >= 1.0 || dropping_now {
        (Severity::Error, Confidence::Certain, "full: new flows are dropped")
    } else if ratio >= FILL_ERROR {
        (Severity::Error, Confidence::Likely, "nearly full: the next burst of new flows fills it")
    } else if ratio >= FILL_WARN {
        (Severity::Warning, Confidence::Likely, "filling up")
    } else if dropped_before {
        // The table was full at some time, not at this reading.
        (Severity::Info, Confidence::Certain, "was full before (drops counted since start), has headroom now")
    } else {
        return;
    };
    let drops_text = match drop_rate {
        Some(r) => format!("{r:.1} flows dropped per second by the full table ({drops} since start)"),
        None => format!("{drops} flows dropped by a full table since start (one sample, no rate)"),
    };
    let mut f = Finding::new(
        CaseId::ConntrackTableFull,
        severity,
        Subject::Netns { name: ns(ev).unwrap_or_else(|| "host".into()) },
        match fill {
            Some((c, m, fr)) => format!(
                "conntrack table {state}: {c} of {m} entries ({:.1}%), headroom {}; {drops_text}",
                fr * 100.0,
                m.saturating_sub(c)
            ),
            None => format!("conntrack table {state}: {drops_text}"),
        },
    )
    .with_confidence(confidence, &[]);
    if let Some((c, m, fr)) = fill {
        f = f
            .with_measure("count", c as f64, "count")
            .with_measure("max", m as f64, "count")
            .with_measure("fill_pct", (fr * 1000.0).round() / 10.0, "%")
            .with_measure("headroom", m.saturating_sub(c) as f64, "count");
    }
    f = f.with_measure("full_table_drops", drops as f64, "count");
    if let Some(r) = drop_rate {
        f = f.with_measure("full_table_drops_per_s", r, "per_s");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::{conntrack, empty};

    fn run(ct: Conntrack) -> Vec<Finding> {
        let mut ev = empty();
        ev.conntrack = Some(ct);
        let mut out = vec![];
        check(&ev, &mut out);
        out
    }

    #[test]
    fn insert_failed_with_headroom_is_a_race_not_a_full_table() {
        // 0.36 % full; every drop is a lost insert race (the kernel counts those in both).
        let out = run(conntrack(
            1180,
            327_680,
            &[("insert_failed", 5000), ("drop", 5000)],
            &[("insert_failed", 12.0), ("drop", 12.0), ("early_drop", 0.0)],
        ));
        assert!(out.is_empty(), "{out:?}");
        // The same with one sample only.
        assert!(run(conntrack(1180, 327_680, &[("insert_failed", 5000), ("drop", 5000)], &[])).is_empty());
    }

    #[test]
    fn a_full_table_is_an_error_the_counters_prove() {
        let out = run(conntrack(600, 600, &[("drop", 88)], &[]));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].severity, Severity::Error);
        assert_eq!(out[0].confidence, Confidence::Certain);
        assert_eq!(out[0].measure("count"), Some(600.0));
        assert_eq!(out[0].measure("max"), Some(600.0));
        assert_eq!(out[0].measure("full_table_drops"), Some(88.0));
    }

    #[test]
    fn nearly_full_is_an_error_and_filling_a_warning() {
        let out = run(conntrack(960, 1000, &[], &[("drop", 0.0)]));
        assert_eq!((out[0].severity, out[0].confidence), (Severity::Error, Confidence::Likely));
        assert_eq!(out[0].measure("fill_pct"), Some(96.0));
        let out = run(conntrack(910, 1000, &[], &[("drop", 0.0)]));
        assert_eq!((out[0].severity, out[0].confidence), (Severity::Warning, Confidence::Likely));
        assert!(run(conntrack(890, 1000, &[], &[("drop", 0.0)])).is_empty());
    }

    #[test]
    fn early_drops_between_readings_mean_it_filled_in_between() {
        // Half full at the reading, but the kernel evicted entries to make room meanwhile.
        let out = run(conntrack(500, 1000, &[("early_drop", 40)], &[("early_drop", 4.0), ("drop", 0.0)]));
        assert_eq!((out[0].severity, out[0].confidence), (Severity::Error, Confidence::Certain));
        assert_eq!(out[0].measure("full_table_drops_per_s"), Some(4.0));
    }

    #[test]
    fn drops_beyond_insert_failed_are_full_table_drops() {
        let out = run(conntrack(
            500,
            1000,
            &[("drop", 130), ("insert_failed", 30)],
            &[("drop", 10.0), ("insert_failed", 3.0)],
        ));
        assert_eq!(out[0].severity, Severity::Error);
        assert_eq!(out[0].measure("full_table_drops"), Some(100.0));
        assert_eq!(out[0].measure("full_table_drops_per_s"), Some(7.0));
    }

    #[test]
    fn drops_long_ago_with_headroom_now_are_info() {
        // One sample: totals since start, table at 1 % now.
        let out = run(conntrack(10, 1000, &[("early_drop", 5)], &[]));
        assert_eq!((out[0].severity, out[0].confidence), (Severity::Info, Confidence::Certain));
        // Two samples, not moving.
        let out = run(conntrack(10, 1000, &[("early_drop", 5)], &[("early_drop", 0.0), ("drop", 0.0)]));
        assert_eq!(out[0].severity, Severity::Info);
    }

    #[test]
    fn healthy_table_is_silent() {
        assert!(run(conntrack(10, 262_144, &[], &[("drop", 0.0)])).is_empty());
    }
}
