//! dns-conntrack-race-5s, seen in a capture: A and AAAA leave one client socket within a few
//! ms (glibc/musl parallel lookup), one of them is never answered (conntrack dropped it after
//! DNAT) and the lookup only completes after the resolver's timeout, ~5 s later, on a retry.

use super::{ms, sample, ProtoEvidence, ProtoRules};
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use netcase_proto::{DnsFlavor, DnsTxn};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

struct Incident<'a> {
    victim: &'a DnsTxn,
    delay_ns: Option<i64>,
    retry_after_ns: Option<i64>,
}

fn same_name(a: &DnsTxn, b: &DnsTxn) -> bool {
    match (&a.name, &b.name) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    }
}

pub(crate) fn check(cfg: &ProtoRules, ev: &ProtoEvidence<'_>, out: &mut Vec<Finding>) {
    let min_delay = (cfg.race_min_delay_ms * 1e6) as i64;
    let window = (cfg.race_pair_window_ms * 1e6) as i64;
    let txns: Vec<&DnsTxn> = ev
        .dns
        .iter()
        .filter(|t| t.flavor == DnsFlavor::Dns && !t.query_frames.is_empty() && t.name.is_some())
        .collect();
    // Lookups per client socket and server.
    let mut by_sock: BTreeMap<(SocketAddr, SocketAddr), Vec<&DnsTxn>> = BTreeMap::new();
    for t in &txns {
        by_sock.entry((t.client, t.server)).or_default().push(t);
    }
    let delayed = |t: &DnsTxn| {
        t.unanswered()
            || t.response_time_ns.is_some_and(|r| r >= min_delay)
            || t.query_ts_ns.get(1).zip(t.query_ts_ns.first()).is_some_and(|(b, a)| b - a >= min_delay)
    };
    let mut incidents: BTreeMap<(IpAddr, SocketAddr), Vec<Incident<'_>>> = BTreeMap::new();
    for list in by_sock.values() {
        for (i, a) in list.iter().enumerate() {
            for b in list.iter().skip(i + 1) {
                if b.ts_ns - a.ts_ns > window {
                    break;
                }
                if a.qtype == b.qtype || !same_name(a, b) {
                    continue;
                }
                let (victim, partner) = match (delayed(a), delayed(b)) {
                    (true, false) => (*a, *b),
                    (false, true) => (*b, *a),
                    _ => continue,
                };
                let _ = partner;
                let retry_after_ns = victim.query_ts_ns.get(1).map(|r| r - victim.ts_ns);
                let delay_ns = if victim.unanswered() {
                    // A retry from another socket (single-request-reopen) completes it.
                    txns.iter()
                        .filter(|t| {
                            t.client.ip() == victim.client.ip()
                                && t.qtype == victim.qtype
                                && same_name(t, victim)
                                && t.ts_ns >= victim.ts_ns + min_delay * 8 / 10
                        })
                        .find_map(|t| t.response_ts_ns)
                        .map(|r| r - victim.ts_ns)
                } else {
                    victim.response_time_ns
                };
                incidents.entry((victim.client.ip(), victim.server)).or_default().push(Incident {
                    victim,
                    delay_ns,
                    retry_after_ns,
                });
            }
        }
    }
    for ((client, server), list) in incidents {
        let mut names: Vec<String> = list.iter().filter_map(|i| i.victim.name.as_deref().map(str::to_owned)).collect();
        names.dedup();
        let mut lost: Vec<String> = list.iter().map(|i| i.victim.qtype_name()).collect();
        lost.sort();
        lost.dedup();
        let mut delays: Vec<f64> = list.iter().filter_map(|i| i.delay_ns.map(ms)).collect();
        delays.sort_by(f64::total_cmp);
        let frames: Vec<u64> = list.iter().filter_map(|i| i.victim.query_frame()).collect();
        let median = delays.get(delays.len() / 2).copied();
        let summary = match median {
            Some(d) => format!(
                "{} lookup(s) from {client} to {server} lost one of a parallel A/AAAA pair and completed only after {:.1} s (median), e.g. {}",
                list.len(),
                d / 1e3,
                names.first().map_or("?", String::as_str)
            ),
            None => format!(
                "{} lookup(s) from {client} to {server} lost one of a parallel A/AAAA pair and never completed in the capture, e.g. {}",
                list.len(),
                names.first().map_or("?", String::as_str)
            ),
        };
        let mut f = Finding::new(
            CaseId::DnsConntrackRace5s,
            Severity::Warning,
            Subject::Flow {
                proto: "udp",
                stream: None,
                client: list.first().map_or(SocketAddr::new(client, 0), |i| i.victim.client),
                server,
            },
            summary,
        )
        .with_measure("lookups_delayed", list.len() as f64, "count")
        .with(Evidence::text("names", sample(&names, 5).join(", ")))
        .with(Evidence::text("lost_query_types", lost.join(", ")))
        .with(Evidence::frames("delayed_queries", sample(&frames, 20)));
        if let Some(d) = median {
            f = f.with_measure("delay_ms", d, "ms");
        }
        if let Some(d) = delays.last() {
            f = f.with_measure("max_delay_ms", *d, "ms");
        }
        if let Some(r) = list.iter().find_map(|i| i.retry_after_ns) {
            f = f.with_measure("retry_after_ms", ms(r), "ms");
        }
        out.push(f.with_fix(
            "glibc: add 'options single-request-reopen' (or single-request, or use-vc) to resolv.conf; \
             musl ignores these options: run a node-local DNS cache or resolve over TCP",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{q, MS};
    use super::super::{check_with, ProtoEvidence, ProtoRules};
    use netcase_model::CaseId;

    fn run(dns: &[netcase_proto::DnsTxn]) -> Vec<netcase_model::Finding> {
        check_with(&ProtoRules::default(), &ProtoEvidence { dns, ..ProtoEvidence::default() })
            .into_iter()
            .filter(|f| f.case == CaseId::DnsConntrackRace5s)
            .collect()
    }

    #[test]
    fn aaaa_lost_and_retried_after_5s() {
        let dns = vec![
            q(40000, 1, "api.svc", 1, 1, 0).answered(3, 2 * MS, 0, vec![]),
            q(40000, 2, "api.svc", 28, 2, 0).retried(10, 5_000 * MS).answered(11, 5_002 * MS, 0, vec![]),
        ];
        let f = run(&dns);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].measure("lookups_delayed"), Some(1.0));
        assert_eq!(f[0].measure("delay_ms"), Some(5002.0));
        assert_eq!(f[0].measure("retry_after_ms"), Some(5000.0));
        assert_eq!(f[0].text("lost_query_types"), Some("AAAA"));
    }

    #[test]
    fn unanswered_then_reopened_socket() {
        let dns = vec![
            q(40000, 1, "db.svc", 1, 1, 0),
            q(40000, 2, "db.svc", 28, 2, 1).answered(3, 3 * MS, 0, vec![]),
            q(40001, 3, "db.svc", 1, 9, 5_001).answered(10, 5_003 * MS, 0, vec![]),
        ];
        let f = run(&dns);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].measure("delay_ms"), Some(5003.0));
    }

    #[test]
    fn healthy_parallel_lookups_are_silent() {
        let dns = vec![
            q(40000, 1, "api.svc", 1, 1, 0).answered(3, 2 * MS, 0, vec![]),
            q(40000, 2, "api.svc", 28, 2, 0).answered(4, 3 * MS, 0, vec![]),
            // slow but alone: a slow server, not the race
            q(40002, 3, "slow.example", 1, 5, 100).answered(6, 5_200 * MS, 0, vec![]),
        ];
        assert!(run(&dns).is_empty());
    }
}
