//! reuseport-balance: connections on one server port spread unevenly over worker processes
//! (one shared listener woken LIFO loads one worker most; SO_REUSEPORT spreads by hash).

use super::ns;
use netcase_host::{HostEvidence, Proto, TcpState};
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use std::collections::BTreeMap;

/// Fewer connections than this say nothing about balance.
pub const MIN_CONNECTIONS: usize = 50;
/// The busiest worker holding twice the mean is an imbalance worth acting on.
pub const MAX_OVER_MEAN: f64 = 2.0;

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let mut listeners: BTreeMap<u16, usize> = BTreeMap::new();
    for s in ev.sockets.iter().filter(|s| s.proto == Proto::Tcp && s.state == TcpState::Listen) {
        *listeners.entry(s.local.port()).or_default() += 1;
    }
    for (port, nlisten) in listeners {
        let mut per_pid: BTreeMap<u32, (String, usize)> = BTreeMap::new();
        for s in ev
            .sockets
            .iter()
            .filter(|s| s.proto == Proto::Tcp && s.state == TcpState::Established && s.local.port() == port)
        {
            if let Some((p, c)) = s.owner() {
                per_pid.entry(p).or_insert_with(|| (c.to_owned(), 0)).1 += 1;
            }
        }
        let total: usize = per_pid.values().map(|v| v.1).sum();
        if per_pid.len() < 2 || total < MIN_CONNECTIONS {
            continue;
        }
        let mean = total as f64 / per_pid.len() as f64;
        let Some((pid, (comm, max))) = per_pid.iter().max_by_key(|(_, v)| v.1) else { continue };
        let ratio = *max as f64 / mean;
        if ratio < MAX_OVER_MEAN {
            continue;
        }
        let list: Vec<String> = per_pid.iter().map(|(p, (c, n))| format!("{c}/{p}: {n}")).collect();
        out.push(
            Finding::new(
                CaseId::ReuseportBalance,
                Severity::Warning,
                Subject::ServerPort { proto: "tcp", ip: None, port },
                format!("{comm} (pid {pid}) holds {max} of {total} connections on port {port}, {ratio:.1}× the mean over {} workers ({nlisten} listening sockets)", per_pid.len()),
            )
            .with_measure("max", *max as f64, "count")
            .with_measure("mean", mean, "count")
            .with_measure("max_over_mean", ratio, "ratio")
            .with_measure("workers", per_pid.len() as f64, "count")
            .with_measure("listeners", nlisten as f64, "count")
            .with(Evidence::text("per_worker", list.join(", ")))
            .with(Evidence::text("netns", ns(ev).unwrap_or_else(|| "host".into())))
            .with_fix("give each worker its own SO_REUSEPORT listener (nginx: listen ... reuseport) so the kernel spreads connections by hash"),
        );
    }
}
