//! ip-conflict: the same IP address configured in two network namespaces (two containers):
//! connections to it split between the holders.
//!
//! With every namespace checked (`--all-netns`) each duplicate is reported. When one namespace
//! is checked, the others' addresses come with its evidence ([`HostEvidence::other_netns`]):
//! an address is reported when two namespaces hold it and the checked one holds it itself or
//! talks to it (a socket's peer or a neighbour entry): the client of a split service sees it.

use netcase_host::{HostEvidence, Proto, TcpState};
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

fn shared_by_design(ip: &IpAddr, ifname: &str) -> bool {
    ifname == "lo"
        || ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
        || matches!(ip, IpAddr::V4(v4) if v4.is_link_local() || v4.is_broadcast())
}

/// One holder of an address: (namespace, interface, MAC).
type Holder = (String, String, Option<String>);

fn add(holders: &mut BTreeMap<IpAddr, Vec<Holder>>, name: &str, a: &netcase_host::rtnl::IfAddr) {
    if shared_by_design(&a.addr, &a.ifname) {
        return;
    }
    let h = holders.entry(a.addr).or_default();
    if !h.iter().any(|(n, _, _)| n == name) {
        h.push((name.to_owned(), a.ifname.clone(), a.mac.clone()));
    }
}

fn finding(ip: IpAddr, h: &[Holder], seen_from: Option<(&str, String)>) -> Finding {
    let list: Vec<String> = h
        .iter()
        .map(|(n, i, m)| format!("netns {n} on {i}{}", m.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()))
        .collect();
    let macs: Vec<String> = h.iter().filter_map(|(_, _, m)| m.clone()).collect();
    let mut summary = format!("{ip} is held by {} network namespaces: {}", h.len(), list.join(", "));
    if let Some((ns, how)) = &seen_from {
        summary.push_str(&format!("; netns {ns} {how}, so its connections to {ip} split between them"));
    }
    let mut f = Finding::new(CaseId::IpConflict, Severity::Error, Subject::Peer { ip }, summary)
        .with_measure("holders", h.len() as f64, "count")
        .with(Evidence::text("holders", list.join("; ")))
        .with(Evidence::text("netns", h.iter().map(|(n, _, _)| n.clone()).collect::<Vec<_>>().join(",")));
    if !macs.is_empty() {
        f = f.with(Evidence::text("macs", macs.join(",")));
    }
    if let Some((ns, how)) = seen_from {
        f = f.with(Evidence::text("checked_netns", ns)).with(Evidence::text("relation", how));
    }
    f.with_confidence(netcase_model::Confidence::Certain, &[]).with_fix("give each namespace (container) its own address: fix the IPAM or static configuration that assigned it twice; arping -D shows the duplicate on a shared segment")
}

/// How the checked namespace relates to `ip`, if it does: holds it, has sockets to it, or a
/// neighbour entry for it.
fn relation(ev: &HostEvidence, ip: IpAddr) -> Option<String> {
    let mut how = Vec::new();
    if ev.addresses.iter().any(|a| a.addr == ip) {
        how.push("holds it too".to_owned());
    }
    let socks = ev
        .sockets
        .iter()
        .filter(|s| s.remote.ip() == ip && !(s.proto == Proto::Tcp && s.state == TcpState::Listen))
        .count();
    if socks > 0 {
        how.push(format!("has {socks} socket{} to it", if socks == 1 { "" } else { "s" }));
    }
    if let Some(n) = ev.neighbours.iter().find(|n| n.addr == ip) {
        how.push(format!("resolves it on {} to {}", n.ifname, n.mac.as_deref().unwrap_or("no MAC (incomplete)")));
    }
    (!how.is_empty()).then(|| how.join(", "))
}

pub(crate) fn check(evs: &[HostEvidence], out: &mut Vec<Finding>) {
    // Every checked namespace against every other checked one.
    let mut holders: BTreeMap<IpAddr, Vec<Holder>> = BTreeMap::new();
    for ev in evs {
        let name = ev.netns.label().unwrap_or_else(|| "host".into());
        for a in &ev.addresses {
            add(&mut holders, &name, a);
        }
    }
    let mut reported = BTreeSet::new();
    for (ip, h) in &holders {
        if h.len() >= 2 {
            reported.insert(*ip);
            out.push(finding(*ip, h, None));
        }
    }
    // A single checked namespace against the addresses of all the others.
    for ev in evs.iter().filter(|e| !e.other_netns.is_empty()) {
        let name = ev.netns.label().unwrap_or_else(|| "host".into());
        let mut all: BTreeMap<IpAddr, Vec<Holder>> = BTreeMap::new();
        for a in &ev.addresses {
            add(&mut all, &name, a);
        }
        for o in ev.other_netns.iter().filter(|o| o.inode != ev.netns.inode) {
            for a in &o.addresses {
                add(&mut all, &o.netns, a);
            }
        }
        for (ip, h) in all {
            if h.len() < 2 || reported.contains(&ip) {
                continue;
            }
            let Some(how) = relation(ev, ip) else { continue };
            reported.insert(ip);
            out.push(finding(ip, &h, Some((&name, how))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::{empty, tcp};
    use netcase_host::rtnl::{IfAddr, Neighbour};
    use netcase_host::NetnsAddrs;

    fn addr(ip: &str, mac: &str) -> IfAddr {
        IfAddr { ifname: "eth0".into(), ifindex: 2, addr: ip.parse().unwrap(), prefix: 24, mac: Some(mac.into()) }
    }

    fn other(name: &str, inode: u64, ip: &str, mac: &str) -> NetnsAddrs {
        NetnsAddrs { netns: name.into(), inode, addresses: vec![addr(ip, mac)] }
    }

    #[test]
    fn client_sees_the_duplicate_it_talks_to() {
        let mut ev = empty();
        ev.addresses = vec![addr("10.9.0.1", "02:00:00:00:00:01")];
        ev.sockets = vec![tcp(TcpState::TimeWait, "10.9.0.1:40000", "10.9.0.2:8080")];
        ev.neighbours =
            vec![Neighbour { ifname: "eth0".into(), addr: "10.9.0.2".parse().unwrap(), mac: None, state: 0x20 }];
        ev.other_netns = vec![
            other("s1", 11, "10.9.0.2", "02:00:00:00:00:02"),
            other("s2", 12, "10.9.0.2", "02:00:00:00:00:03"),
            other("x1", 13, "10.9.0.7", "02:00:00:00:00:04"),
            other("x2", 14, "10.9.0.7", "02:00:00:00:00:05"),
        ];
        let mut out = vec![];
        check(std::slice::from_ref(&ev), &mut out);
        assert_eq!(out.len(), 1, "10.9.0.7 is unrelated to the checked namespace");
        assert_eq!(out[0].subject, Subject::Peer { ip: "10.9.0.2".parse().unwrap() });
        assert_eq!(out[0].measure("holders"), Some(2.0));
        assert_eq!(out[0].text("netns"), Some("s1,s2"));
        assert_eq!(out[0].text("macs"), Some("02:00:00:00:00:02,02:00:00:00:00:03"));
        let rel = out[0].text("relation").unwrap();
        assert!(rel.contains("has 1 socket to it") && rel.contains("no MAC"), "{rel}");
    }

    #[test]
    fn own_address_held_elsewhere_counts_both() {
        let mut ev = empty();
        ev.addresses = vec![addr("10.9.0.2", "02:00:00:00:00:02")];
        ev.other_netns = vec![other("s2", 12, "10.9.0.2", "02:00:00:00:00:03")];
        let mut out = vec![];
        check(std::slice::from_ref(&ev), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].measure("holders"), Some(2.0));
        assert_eq!(out[0].text("netns"), Some("t,s2"));
    }

    #[test]
    fn distinct_addresses_are_silent() {
        let mut ev = empty();
        ev.addresses = vec![addr("10.9.0.1", "02:00:00:00:00:01")];
        ev.sockets = vec![tcp(TcpState::Established, "10.9.0.1:40000", "10.9.0.2:8080")];
        ev.other_netns =
            vec![other("s1", 11, "10.9.0.2", "02:00:00:00:00:02"), other("s2", 12, "10.9.0.3", "02:00:00:00:00:03")];
        let mut out = vec![];
        check(std::slice::from_ref(&ev), &mut out);
        assert!(out.is_empty());
    }
}
