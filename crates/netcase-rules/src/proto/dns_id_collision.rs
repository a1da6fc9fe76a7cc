//! dns-id-collision: one client socket has two different questions outstanding under the
//! same transaction id (musl draws ids from the clock without locking). The resolver may take
//! the first answer with that id for both and drop the other: answers come out of order, or
//! one query is never answered.

use super::{ms, ProtoEvidence, ProtoRules};
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use netcase_proto::{DnsFlavor, DnsTxn};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Two queries sharing an id, and whether the client was harmed (answer lost or out of order).
type Pair<'a> = (&'a DnsTxn, &'a DnsTxn, bool);

/// How long a query counts as outstanding when it was never answered.
const OUTSTANDING_NS: i64 = 5_000_000_000;

pub(crate) fn check(_cfg: &ProtoRules, ev: &ProtoEvidence<'_>, out: &mut Vec<Finding>) {
    // Queries by (client, server, id), then time: one sort instead of a list per key.
    let mut all: Vec<&DnsTxn> =
        ev.dns.iter().filter(|t| t.flavor == DnsFlavor::Dns && !t.query_frames.is_empty()).collect();
    all.sort_by_key(|t| (t.client, t.server, t.id, t.ts_ns));
    let mut per_sock: BTreeMap<(SocketAddr, SocketAddr), Vec<Pair<'_>>> = BTreeMap::new();
    for list in all.chunk_by(|a, b| (a.client, a.server, a.id) == (b.client, b.server, b.id)) {
        let Some(first) = list.first() else { continue };
        let (client, server) = (first.client, first.server);
        for (i, a) in list.iter().enumerate() {
            let end = a.response_ts_ns.unwrap_or(a.ts_ns + OUTSTANDING_NS);
            for b in list.iter().skip(i + 1) {
                if b.ts_ns > end {
                    break;
                }
                // The same question repeated is a retransmission, not a collision.
                let same = a.qtype == b.qtype
                    && match (a.name.as_deref(), b.name.as_deref()) {
                        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
                        (x, y) => x == y,
                    };
                if same {
                    continue;
                }
                let out_of_order = matches!((a.response_ts_ns, b.response_ts_ns), (Some(x), Some(y)) if y < x);
                let harm = out_of_order || a.unanswered() || b.unanswered();
                per_sock.entry((client, server)).or_default().push((a, b, harm));
            }
        }
    }
    for ((client, server), pairs) in per_sock {
        let harmful = pairs.iter().filter(|p| p.2).count();
        let Some(&(a, b, _)) = pairs.iter().find(|p| p.2).or(pairs.first()) else { continue };
        let describe = |t: &DnsTxn| format!("{} {}", t.name.as_deref().unwrap_or("?"), t.qtype_name());
        let lost: Vec<u64> =
            pairs.iter().flat_map(|p| [p.0, p.1]).filter(|t| t.unanswered()).filter_map(DnsTxn::query_frame).collect();
        let mut f = Finding::new(
            CaseId::DnsIdCollision,
            if harmful > 0 { Severity::Warning } else { Severity::Info },
            Subject::Flow { proto: "udp", stream: None, client, server },
            format!(
                "{} pair(s) of concurrent queries from {client} shared a DNS id ({harmful} with an answer out of order or lost), e.g. id {:#06x}: {} and {}",
                pairs.len(),
                a.id,
                describe(a),
                describe(b)
            ),
        )
        .with_measure("colliding_pairs", pairs.len() as f64, "count")
        .with_measure("harmed_pairs", harmful as f64, "count")
        .with(Evidence::text("ids", {
            let mut ids: Vec<String> = pairs.iter().map(|p| format!("{:#06x}", p.0.id)).collect();
            ids.dedup();
            ids.join(", ")
        }))
        .with(Evidence::frames("queries", pairs.iter().flat_map(|p| [p.0, p.1]).filter_map(DnsTxn::query_frame).take(20).collect()));
        if !lost.is_empty() {
            f = f.with(Evidence::frames("unanswered_queries", lost));
        }
        if let (Some(x), Some(y)) = (a.response_ts_ns, b.response_ts_ns) {
            f = f.with_measure("answer_order_gap_ms", ms(x - y), "ms");
        }
        out.push(f.with_fix(
            "use a resolver that picks random ids per query and matches answers by question (glibc, or a local \
             caching resolver); with musl, avoid parallel A/AAAA on one socket (node-local DNS cache)",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{q, MS};
    use super::super::{check_with, ProtoEvidence, ProtoRules};
    use netcase_model::{CaseId, Severity};

    fn run(dns: &[netcase_proto::DnsTxn]) -> Vec<netcase_model::Finding> {
        check_with(&ProtoRules::default(), &ProtoEvidence { dns, ..ProtoEvidence::default() })
            .into_iter()
            .filter(|f| f.case == CaseId::DnsIdCollision)
            .collect()
    }

    #[test]
    fn shared_id_with_answers_out_of_order() {
        let dns = vec![
            q(40000, 0x1234, "web.svc", 1, 1, 0).answered(4, 9 * MS, 0, vec![]),
            q(40000, 0x1234, "web.svc", 28, 2, 1).answered(3, 5 * MS, 0, vec![]),
        ];
        let f = run(&dns);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].measure("harmed_pairs"), Some(1.0));
        assert_eq!(f[0].text("ids"), Some("0x1234"));
    }

    #[test]
    fn distinct_ids_and_sequential_reuse_are_silent() {
        let dns = vec![
            q(40000, 1, "web.svc", 1, 1, 0).answered(3, 2 * MS, 0, vec![]),
            q(40000, 2, "web.svc", 28, 2, 0).answered(4, 3 * MS, 0, vec![]),
            // same id again, but after the first was answered
            q(40000, 1, "other.svc", 1, 5, 100).answered(6, 102 * MS, 0, vec![]),
        ];
        assert!(run(&dns).is_empty());
    }
}
