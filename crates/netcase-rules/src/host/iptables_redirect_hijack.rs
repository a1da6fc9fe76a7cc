//! iptables-redirect-hijack: a nat OUTPUT rule (often a sidecar's) REDIRECTs or DNATs locally
//! generated traffic: calls to a remote ip:port end at a local port (or another address).
//! The walk follows jumps from nat OUTPUT for a sample destination of each rule.

use super::ns;
use netcase_host::netfilter::{Packet, Rule};
use netcase_host::{HostEvidence, Proto, TcpState};
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A documentation address (TEST-NET-3) stands in for "any remote" when a rule names none.
const SAMPLE_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const SAMPLE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

fn sample_packet(r: &Rule) -> Packet {
    let dst = match &r.dst {
        Some(n) if !n.negated => n.addr,
        _ if r.family == "ipv6" => IpAddr::V6(SAMPLE_V6),
        _ => IpAddr::V4(SAMPLE_V4),
    };
    let proto = match r.proto.as_deref() {
        Some("udp") => "udp",
        _ => "tcp",
    };
    Packet { proto, dst, dport: r.dports.first().map_or(80, |p| p.0) }
}

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let Some(rs) = &ev.netfilter else { return };
    for r in rs.with_target("nat", &["REDIRECT", "DNAT"]) {
        if !rs.reachable_from("nat", "OUTPUT", &r.chain) {
            continue;
        }
        let p = sample_packet(r);
        let v = rs.walk("nat", "OUTPUT", &p);
        // Only rules that actually decide for their own sample packet (not shadowed by an
        // earlier RETURN/ACCEPT) are reported.
        if v.rule.as_ref() != Some(r) {
            continue;
        }
        let to_port = r.to_port.unwrap_or(p.dport);
        let to = match (r.target.as_deref(), &r.to_addr) {
            (Some("DNAT"), Some(a)) => format!("{a}:{to_port}"),
            _ => format!("local port {to_port}"),
        };
        let listener = ev
            .sockets
            .iter()
            .find(|s| s.proto == Proto::Tcp && s.state == TcpState::Listen && s.local.port() == to_port);
        let who = listener.map(|l| {
            l.owner().map_or_else(|| format!("a listener on {}", l.local), |(pid, c)| format!("{c} (pid {pid})"))
        });
        // Live connections this rule captures: local sockets whose remote it matches.
        let captured = ev
            .sockets
            .iter()
            .filter(|s| {
                s.proto == Proto::Tcp
                    && s.state == TcpState::Established
                    && !s.remote.ip().is_loopback()
                    && r.matches(&Packet { proto: "tcp", dst: s.remote.ip(), dport: s.remote.port() })
            })
            .count();
        let what = match (&r.dst, r.dports.as_slice()) {
            (Some(d), []) => format!("{}{}/{}", if d.negated { "not " } else { "" }, d.addr, d.prefix),
            (Some(d), [(a, b), ..]) => format!(
                "{}{}/{} port {a}{}",
                if d.negated { "not " } else { "" },
                d.addr,
                d.prefix,
                if a == b { String::new() } else { format!("-{b}") }
            ),
            (None, [(a, b), ..]) => {
                format!("any address, port {a}{}", if a == b { String::new() } else { format!("-{b}") })
            }
            (None, []) => "every destination".to_owned(),
        };
        let mut f = Finding::new(
            CaseId::IptablesRedirectHijack,
            if listener.is_none() && r.target.as_deref() == Some("REDIRECT") {
                Severity::Error
            } else {
                Severity::Warning
            },
            Subject::Rule { table: "nat".into(), chain: r.chain.clone(), rule: r.text.clone() },
            format!(
                "outgoing {} traffic to {what} is sent to {to} by nat {}: e.g. {}:{} ends at {to}, served by {}",
                p.proto,
                r.chain,
                p.dst,
                p.dport,
                who.clone().unwrap_or_else(|| "nothing (connections will be refused)".into())
            ),
        )
        .with_measure("to_port", f64::from(to_port), "port")
        .with_measure("captured_connections", captured as f64, "count")
        .with(Evidence::text("path", v.path.join(" -> ")))
        .with(Evidence::text("target", v.target.clone()))
        .with(Evidence::text("example_destination", format!("{}:{}", p.dst, p.dport)))
        .with(Evidence::text("served_by", who.unwrap_or_else(|| "nobody".into())));
        if let Some((pid, _)) = listener.and_then(|l| l.owner()) {
            f = f.with_measure("listener_pid", f64::from(pid), "pid");
        }
        if v.conditional {
            f = f.with(Evidence::text("conditional", "the path has matches netcase does not evaluate (owner, mark, interface): it applies to some packets only"));
        }
        if let Some(n) = ns(ev) {
            f = f.with(Evidence::text("netns", n));
        }
        // The nat table was walked: certain, unless matches netcase does not evaluate decide.
        let confidence =
            if v.conditional { netcase_model::Confidence::Likely } else { netcase_model::Confidence::Certain };
        out.push(f.with_confidence(confidence, &[]).with_fix(format!(
            "if this is not intended, delete the rule (iptables -t nat -D {} ...) or exclude the real destination before it (-d DEST -j RETURN); check which sidecar or agent installed it",
            r.chain
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::empty;
    use netcase_host::netfilter::{parse_iptables_save, Ruleset};

    #[test]
    fn redirect_in_output_is_named() {
        let mut ev = empty();
        let mut rs = Ruleset::default();
        parse_iptables_save("*nat\n:OUTPUT ACCEPT [0:0]\n:PROXY - [0:0]\n-A OUTPUT -j PROXY\n-A PROXY -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 15001\nCOMMIT\n", "ipv4", &mut rs);
        ev.netfilter = Some(rs);
        let mut out = vec![];
        check(&ev, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].measure("to_port"), Some(15001.0));
        assert_eq!(out[0].severity, Severity::Error); // nobody listens on 15001
    }

    #[test]
    fn prerouting_redirect_is_not_a_hijack() {
        let mut ev = empty();
        let mut rs = Ruleset::default();
        parse_iptables_save(
            "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 8080\nCOMMIT\n",
            "ipv4",
            &mut rs,
        );
        ev.netfilter = Some(rs);
        let mut out = vec![];
        check(&ev, &mut out);
        assert!(out.is_empty());
    }
}
