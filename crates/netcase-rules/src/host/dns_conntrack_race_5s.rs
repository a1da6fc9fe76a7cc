//! dns-conntrack-race-5s: the resolver sends A and AAAA at once from one socket; conntrack's
//! insert race drops one and the lookup waits the resolv.conf timeout (5 s).
//!
//! Evidence: `insert_failed` growing (or, with one sample, non-zero) in a namespace that
//! carries DNS traffic — its own sockets to or from port 53, or nat rules for port 53 that
//! translate other namespaces' lookups (a cluster DNS service). Without DNS traffic a failed
//! insert is not a lookup's, and nothing is said. The resolv.conf options that avoid the race
//! (`single-request-reopen`, `single-request`, `use-vc`; musl ignores them) clear this
//! namespace's own lookups; lookups translated here come from clients whose resolv.conf is
//! elsewhere. Source NAT without `--random-fully` in the same namespace fails inserts too
//! (snat-port-collision): the finding then says both are possible.

use super::{ct_active, ct_stat, dns_traffic, ns, snat_without_random_fully};
use netcase_host::resolver::Libc;
use netcase_host::HostEvidence;
use netcase_model::{CaseId, Confidence, Evidence, Finding, Severity, Subject};

/// glibc's resolver timeout when resolv.conf does not set one.
const DEFAULT_TIMEOUT_S: u32 = 5;

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let Some(ct) = &ev.conntrack else { return };
    if !ct_active(ct, "insert_failed") {
        return;
    }
    let dns = dns_traffic(ev);
    if !dns.any() {
        return;
    }
    let libc = ev.resolver.libc;
    let rc = ev.resolver.resolv_conf.as_ref();
    let local_only = dns.nat_rules.is_empty();
    let protected =
        libc != Libc::Musl && rc.is_some_and(|rc| rc.single_request || rc.single_request_reopen || rc.use_vc);
    if local_only && protected {
        return;
    }
    let (failed, rate) = ct_stat(ct, "insert_failed");
    let timeout_s = rc.map_or(DEFAULT_TIMEOUT_S, |rc| rc.timeout_s);
    let snat = !snat_without_random_fully(ev).is_empty();
    let (confidence, alternatives): (Confidence, &[CaseId]) =
        if snat { (Confidence::Possible, &[CaseId::SnatPortCollision]) } else { (Confidence::Likely, &[]) };
    let seen = match (dns.sockets, dns.nat_rules.len()) {
        (s, 0) => format!("{s} sockets to or from port 53"),
        (0, r) => format!("{r} nat rules for port 53"),
        (s, r) => format!("{s} sockets to or from port 53, {r} nat rules for port 53"),
    };
    let who = if local_only {
        format!(
            "this namespace's lookups ({libc:?} libc, options '{}')",
            rc.map(|rc| rc.options.join(" ")).unwrap_or_default()
        )
    } else {
        "the lookups translated here".to_owned()
    };
    let fix = match (libc, local_only) {
        (Libc::Musl, true) => "musl ignores single-request options: run a node-local DNS cache, or resolve over TCP in the application; or switch the image to glibc",
        (_, true) => "add 'options single-request-reopen' (or single-request, or use-vc) to resolv.conf; a node-local DNS cache avoids the DNAT race entirely",
        (_, false) => "in the clients' resolv.conf add 'options single-request-reopen' (glibc; musl ignores it), or run a node-local DNS cache so lookups are not translated here",
    };
    let mut f = Finding::new(
        CaseId::DnsConntrackRace5s,
        if rate.is_some() { Severity::Warning } else { Severity::Info },
        Subject::Netns { name: ns(ev).unwrap_or_else(|| "host".into()) },
        format!(
            "conntrack insert_failed is {failed}{} with DNS traffic here ({seen}): A and AAAA sent at once from one \
             socket lose the insert race, and {who} can stall for the {timeout_s} s resolver timeout{}",
            rate.map(|r| format!(" (+{r:.1}/s)")).unwrap_or_default(),
            if snat { "; source NAT without --random-fully here fails inserts too (snat-port-collision)" } else { "" }
        ),
    )
    .with_confidence(confidence, alternatives)
    .with_measure("insert_failed", failed as f64, "count")
    .with_measure("timeout_s", f64::from(timeout_s), "s")
    .with_measure("dns_sockets", dns.sockets as f64, "count")
    .with_measure("dns_nat_rules", dns.nat_rules.len() as f64, "count")
    .with(Evidence::text("libc", format!("{libc:?}").to_lowercase()))
    .with(Evidence::Counter { name: "conntrack.insert_failed".into(), value: failed, per_s: rate });
    if let Some(rc) = rc {
        f = f.with(Evidence::text("nameservers", rc.nameservers.join(" ")));
    }
    if let Some(r) = dns.nat_rules.first() {
        f = f.with(Evidence::text("dns_nat_rule", r.clone()));
    }
    if let Some(r) = rate {
        f = f.with_measure("insert_failed_per_s", r, "per_s");
    }
    out.push(f.with_fix(fix));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::{conntrack, empty, masquerade, rules, udp};
    use netcase_host::resolver::parse_resolv_conf;

    fn racing(rates: bool) -> HostEvidence {
        let mut ev = empty();
        ev.resolver.resolv_conf = Some(parse_resolv_conf("nameserver 10.96.0.10\n"));
        let r: &[(&str, f64)] = if rates { &[("insert_failed", 2.0)] } else { &[] };
        ev.conntrack = Some(conntrack(1180, 327_680, &[("insert_failed", 40)], r));
        ev
    }

    fn run(ev: &HostEvidence) -> Vec<Finding> {
        let mut out = vec![];
        check(ev, &mut out);
        out
    }

    #[test]
    fn no_dns_traffic_no_finding() {
        // insert_failed growing and a resolver configured, but no DNS in this namespace.
        let mut ev = racing(true);
        ev.netfilter = Some(masquerade(false));
        assert!(run(&ev).is_empty());
    }

    #[test]
    fn lookups_in_flight_with_insert_failed_are_named() {
        let mut ev = racing(true);
        ev.sockets.push(udp("10.0.0.5:40000", "10.96.0.10:53"));
        let out = run(&ev);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!((f.severity, f.confidence), (Severity::Warning, Confidence::Likely));
        assert_eq!(f.measure("insert_failed"), Some(40.0));
        assert_eq!(f.measure("dns_sockets"), Some(1.0));
        assert_eq!(f.measure("timeout_s"), Some(5.0));
        // One sample: info.
        let mut ev = racing(false);
        ev.sockets.push(udp("10.0.0.5:40000", "10.96.0.10:53"));
        assert_eq!(run(&ev)[0].severity, Severity::Info);
    }

    #[test]
    fn a_dns_server_here_counts_as_dns_traffic() {
        let mut ev = racing(true);
        ev.sockets.push(udp("10.0.0.1:53", "0.0.0.0:0"));
        assert_eq!(run(&ev).len(), 1);
    }

    #[test]
    fn dns_translated_here_is_named_whatever_the_local_options() {
        let mut ev = racing(true);
        ev.resolver.resolv_conf = Some(parse_resolv_conf("nameserver 10.0.0.2\noptions single-request-reopen\n"));
        ev.netfilter = Some(rules(
            "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 10.96.0.10/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.244.1.5:53\nCOMMIT\n",
        ));
        let out = run(&ev);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].measure("dns_nat_rules"), Some(1.0));
    }

    #[test]
    fn resolver_options_protect_local_lookups_but_not_under_musl() {
        let mut ev = racing(true);
        ev.sockets.push(udp("10.0.0.5:40000", "10.96.0.10:53"));
        ev.resolver.resolv_conf = Some(parse_resolv_conf("nameserver 10.96.0.10\noptions single-request-reopen\n"));
        assert!(run(&ev).is_empty());
        ev.resolver.libc = Libc::Musl;
        assert_eq!(run(&ev).len(), 1);
    }

    #[test]
    fn snat_beside_dns_leaves_the_snat_collision_possible() {
        let mut ev = racing(true);
        ev.sockets.push(udp("10.0.0.5:40000", "10.96.0.10:53"));
        ev.netfilter = Some(masquerade(false));
        let out = run(&ev);
        assert_eq!(out[0].confidence, Confidence::Possible);
        assert_eq!(out[0].alternatives, vec![CaseId::SnatPortCollision]);
    }

    #[test]
    fn quiet_insert_failed_is_silent() {
        let mut ev = racing(true);
        ev.sockets.push(udp("10.0.0.5:40000", "10.96.0.10:53"));
        ev.conntrack = Some(conntrack(1180, 327_680, &[("insert_failed", 40)], &[("insert_failed", 0.0)]));
        assert!(run(&ev).is_empty());
    }
}
