//! rss-rps-imbalance: receive softirq work concentrated on few CPUs (per-CPU softnet_stat).
//! softnet_stat is global, so it is judged only in the caller's own namespace.

use netcase_host::HostEvidence;
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};

/// Below this many packets per second over all CPUs, imbalance costs nothing.
pub const MIN_PPS: f64 = 10_000.0;
/// The busiest CPU at three times the mean: receive processing is not spread.
pub const MAX_OVER_MEAN: f64 = 3.0;

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    if ev.netns.label().is_some() || ev.softnet_rates.len() < 2 {
        return;
    }
    let total: f64 = ev.softnet_rates.iter().map(|r| r.1).sum();
    if total < MIN_PPS {
        return;
    }
    let mean = total / ev.softnet_rates.len() as f64;
    let Some(max) = ev.softnet_rates.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else { return };
    let ratio = max.1 / mean;
    if ratio < MAX_OVER_MEAN {
        return;
    }
    let list: Vec<String> = ev
        .softnet_rates
        .iter()
        .map(|r| format!("cpu{}: {:.0}/s (drop {:.1}/s, squeeze {:.1}/s)", r.0, r.1, r.2, r.3))
        .collect();
    out.push(
        Finding::new(
            CaseId::RssRpsImbalance,
            Severity::Warning,
            Subject::Host,
            format!("cpu{} processes {:.0} packets/s, {ratio:.1}× the mean of {mean:.0}", max.0, max.1),
        )
        .with_measure("max_pps", max.1, "per_s")
        .with_measure("mean_pps", mean, "per_s")
        .with_measure("max_over_mean", ratio, "ratio")
        .with_measure("busiest_cpu", f64::from(max.0), "cpu")
        .with(Evidence::text("per_cpu", list.join("; ")))
        .with_fix("spread receive work: more NIC queues (ethtool -L), RPS (/sys/class/net/IF/queues/rx-*/rps_cpus) for tunnelled traffic RSS cannot hash"),
    );
}
