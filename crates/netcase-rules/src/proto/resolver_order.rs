//! resolver-order, seen in a capture: names that the hosts file answers (`localhost`, its
//! subdomains, `localhost.<search domain>`, and any names the caller lists from /etc/hosts)
//! were sent to DNS. Go's resolver does this without /etc/nsswitch.conf: slow, and wrong when
//! the network's DNS has its own record for the name.

use super::{ProtoEvidence, ProtoRules};
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use netcase_proto::{DnsFlavor, DnsTxn};
use std::collections::BTreeMap;

fn belongs_in_hosts(name: &str, extra: &[String]) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    n == "localhost"
        || n.ends_with(".localhost")
        || n.starts_with("localhost.")
        || extra.iter().any(|h| h.trim_end_matches('.').eq_ignore_ascii_case(&n))
}

pub(crate) fn check(cfg: &ProtoRules, ev: &ProtoEvidence<'_>, out: &mut Vec<Finding>) {
    let mut by_name: BTreeMap<String, Vec<&DnsTxn>> = BTreeMap::new();
    for t in ev.dns.iter().filter(|t| t.flavor == DnsFlavor::Dns && !t.query_frames.is_empty()) {
        if let Some(n) = &t.name {
            if belongs_in_hosts(n, &cfg.hosts_names) {
                by_name.entry(n.trim_end_matches('.').to_ascii_lowercase()).or_default().push(t);
            }
        }
    }
    for (name, list) in by_name {
        let mut addrs: Vec<String> = list.iter().flat_map(|t| t.addresses()).map(|a| a.to_string()).collect();
        addrs.sort();
        addrs.dedup();
        let non_loopback = list.iter().flat_map(|t| t.addresses()).any(|a| !a.is_loopback());
        let answer = if addrs.is_empty() {
            list.iter().find_map(|t| t.rcode_name()).unwrap_or("no answer").to_owned()
        } else {
            addrs.join(", ")
        };
        let mut clients: Vec<String> = list.iter().map(|t| t.client.ip().to_string()).collect();
        clients.sort();
        clients.dedup();
        let f = Finding::new(
            CaseId::ResolverOrder,
            if non_loopback { Severity::Warning } else { Severity::Info },
            Subject::Name { name: name.clone() },
            format!(
                "{} DNS quer{} for '{name}', a name the hosts file should answer, went to {} and got: {answer}",
                list.len(),
                if list.len() == 1 { "y" } else { "ies" },
                list.first().map_or_else(String::new, |t| t.server.to_string())
            ),
        )
        .with_measure("queries", list.len() as f64, "count")
        .with(Evidence::text("answer", answer))
        .with(Evidence::text("clients", clients.join(", ")))
        .with(Evidence::frames("queries", list.iter().filter_map(|t| t.query_frame()).take(20).collect()));
        out.push(f.with_fix(
            "make the hosts file win: create /etc/nsswitch.conf with 'hosts: files dns' in the image (Go reads it; \
             GODEBUG=netdns=go+2 shows the order in force)",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{q, MS};
    use super::super::{check_with, ProtoEvidence, ProtoRules};
    use netcase_model::{CaseId, Severity};
    use netcase_proto::{DnsRecord, RData};

    fn run(cfg: &ProtoRules, dns: &[netcase_proto::DnsTxn]) -> Vec<netcase_model::Finding> {
        check_with(cfg, &ProtoEvidence { dns, ..ProtoEvidence::default() })
            .into_iter()
            .filter(|f| f.case == CaseId::ResolverOrder)
            .collect()
    }

    #[test]
    fn localhost_sent_to_dns_with_a_wrong_answer() {
        let ans = vec![DnsRecord::new("localhost.corp", 60, RData::A("10.1.2.3".parse().unwrap()))];
        let dns = vec![q(40000, 1, "localhost.corp", 1, 1, 0).answered(2, MS, 0, ans)];
        let f = run(&ProtoRules::default(), &dns);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].text("answer"), Some("10.1.2.3"));
    }

    #[test]
    fn listed_hosts_name_is_reported() {
        let cfg = ProtoRules { hosts_names: vec!["db.internal".into()], ..ProtoRules::default() };
        let dns = vec![q(40000, 1, "db.internal", 1, 1, 0).answered(2, MS, 3, vec![])];
        let f = run(&cfg, &dns);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].text("answer"), Some("NXDOMAIN"));
    }

    #[test]
    fn ordinary_names_are_silent() {
        let dns = vec![q(40000, 1, "example.com", 1, 1, 0).answered(2, MS, 0, vec![])];
        assert!(run(&ProtoRules::default(), &dns).is_empty());
    }
}
