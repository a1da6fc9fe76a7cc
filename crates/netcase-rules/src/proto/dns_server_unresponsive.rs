//! dns-server-unresponsive: a DNS server that answers nothing (or nearly nothing) in a capture.
//! Every lookup sent to it waits for the resolver's timeout and is retried or sent elsewhere:
//! "no web access" that is really no DNS.
//!
//! Per server (unicast DNS only; mDNS and LLMNR are silent by design): queries sent, query
//! attempts (retries included), answers, the time they span, and what other servers answered
//! meanwhile. Queries in the last seconds of the capture are left out: their answers may simply
//! not have been captured yet.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{ProtoEvidence, ProtoRules};
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use netcase_proto::DnsFlavor;

/// Queries this close to the last DNS packet of the capture are not counted (a resolver
/// waits 1–5 s for an answer).
const RECENT_NS: i64 = 2_000_000_000;
/// A warning needs this many unanswered lookups to the server...
const MIN_UNANSWERED: u64 = 3;
/// ...over at least this long (a burst within a second can be one lost packet's worth)...
const MIN_SPAN_NS: i64 = 2_000_000_000;
/// ...and at most this share of its lookups answered ("nearly nothing").
const MAX_ANSWERED_SHARE: f64 = 0.1;

#[derive(Default)]
struct Server {
    lookups: u64,
    answered: u64,
    attempts: u64,
    first_ts: i64,
    last_ts: i64,
    clients: std::collections::BTreeSet<std::net::IpAddr>,
    frames: Vec<u64>,
}

pub(crate) fn check(_cfg: &ProtoRules, ev: &ProtoEvidence<'_>, out: &mut Vec<Finding>) {
    let end = ev.dns.iter().map(|t| t.response_ts_ns.unwrap_or(t.ts_ns).max(t.ts_ns)).max().unwrap_or(0);
    let mut by: BTreeMap<SocketAddr, Server> = BTreeMap::new();
    for t in ev.dns.iter().filter(|t| t.flavor == DnsFlavor::Dns && !t.orphan_response()) {
        if t.no_response() && end - t.ts_ns < RECENT_NS {
            continue;
        }
        let s = by.entry(t.server).or_insert_with(|| Server { first_ts: t.ts_ns, ..Server::default() });
        s.lookups += 1;
        s.attempts += u64::from(t.attempts());
        s.first_ts = s.first_ts.min(t.ts_ns);
        s.last_ts = s.last_ts.max(t.query_ts_ns.last().copied().unwrap_or(t.ts_ns));
        if t.response_frame.is_some() {
            s.answered += 1;
        } else {
            s.clients.insert(t.client.ip());
            if s.frames.len() < 20 {
                s.frames.extend(t.query_frame());
            }
        }
    }
    let total_answered: u64 = by.values().map(|s| s.answered).sum();
    for (server, s) in &by {
        let unanswered = s.lookups - s.answered;
        if unanswered == 0 {
            continue;
        }
        let share = s.answered as f64 / s.lookups as f64;
        let span = s.last_ts - s.first_ts;
        let others = total_answered - s.answered;
        let warn = unanswered >= MIN_UNANSWERED && span >= MIN_SPAN_NS && share <= MAX_ANSWERED_SHARE;
        if !warn && unanswered < MIN_UNANSWERED {
            continue; // one or two lost answers: not a server that is gone
        }
        let f = Finding::new(
            CaseId::DnsServerUnresponsive,
            if warn { Severity::Warning } else { Severity::Info },
            Subject::ServerPort { proto: "udp", ip: Some(server.ip()), port: server.port() },
            format!(
                "DNS server {server} answered {} of {} lookups ({} query packets with retries) from {} client(s) over \
                 {:.1} s{}: every lookup sent to it waits for the resolver's timeout before the next try.",
                s.answered,
                s.lookups,
                s.attempts,
                s.clients.len(),
                span as f64 / 1e9,
                if others > 0 {
                    format!("; other servers answered {others} lookups meanwhile, so the clients got through late")
                } else {
                    "; no other server answered either".to_owned()
                },
            ),
        )
        .with_measure("lookups", s.lookups as f64, "count")
        .with_measure("unanswered", unanswered as f64, "count")
        .with_measure("attempts", s.attempts as f64, "count")
        .with_measure("answered_pct", (share * 1000.0).round() / 10.0, "%")
        .with_measure("span_s", (span as f64 / 1e7).round() / 100.0, "s")
        .with_measure("answered_by_others", others as f64, "count")
        .with(Evidence::frames("unanswered_queries", s.frames.clone()))
        .with_fix(
            "Check the server and the path to it (is it up, does a firewall drop port 53, does it answer `dig \
             @SERVER NAME`); remove it from resolv.conf or the DHCP options if it is gone.",
        );
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{check_with, ProtoEvidence, ProtoRules};
    use netcase_model::{CaseId, Severity};
    use netcase_proto::DnsTxn;

    fn to(server: &str, port: u16, t_ms: i64) -> DnsTxn {
        DnsTxn::new(sa(&format!("10.0.0.2:{port}")), sa(server), port, "example.com", 1, port as u64, t_ms * MS)
    }

    #[test]
    fn a_silent_server_is_named_with_the_fallback() {
        let mut dns = Vec::new();
        for i in 0..6i64 {
            // Each lookup tried twice at the dead server, then answered by the second one.
            dns.push(to("10.0.0.53:53", 40000 + i as u16, i * 1000).retried(100 + i as u64, (i * 1000 + 1000) * MS));
            dns.push(to("10.0.0.54:53", 41000 + i as u16, i * 1000 + 2000).answered(
                200 + i as u64,
                (i * 1000 + 2010) * MS,
                0,
                vec![],
            ));
        }
        dns.push(to("10.0.0.54:53", 42000, 12_000).answered(300, 12_010 * MS, 0, vec![]));
        let f = check_with(&ProtoRules::default(), &ProtoEvidence { dns: &dns, ..Default::default() });
        let f: Vec<_> = f.iter().filter(|f| f.case == CaseId::DnsServerUnresponsive).collect();
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].measure("unanswered"), Some(6.0));
        assert_eq!(f[0].measure("attempts"), Some(12.0));
        assert_eq!(f[0].measure("answered_by_others"), Some(7.0));
        assert!(f[0].summary.contains("10.0.0.53:53"), "{}", f[0].summary);
    }

    #[test]
    fn healthy_servers_and_a_lost_answer_are_not_findings() {
        let mut dns = Vec::new();
        for i in 0..20i64 {
            dns.push(to("10.0.0.54:53", 40000 + i as u16, i * 500).answered(i as u64, (i * 500 + 5) * MS, 0, vec![]));
        }
        dns.push(to("10.0.0.54:53", 41000, 3_000)); // one answer lost
        let f = check_with(&ProtoRules::default(), &ProtoEvidence { dns: &dns, ..Default::default() });
        assert!(f.iter().all(|f| f.case != CaseId::DnsServerUnresponsive), "{f:#?}");
    }

    #[test]
    fn lookups_at_the_end_of_the_capture_are_not_counted() {
        let dns: Vec<_> = (0..5i64).map(|i| to("10.0.0.53:53", 40000 + i as u16, 10_000 + i * 100)).collect();
        let f = check_with(&ProtoRules::default(), &ProtoEvidence { dns: &dns, ..Default::default() });
        assert!(f.iter().all(|f| f.case != CaseId::DnsServerUnresponsive), "{f:#?}");
    }
}
