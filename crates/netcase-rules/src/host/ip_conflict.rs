//! ip-conflict: the same IP address configured in two network namespaces (two containers):
//! connections to it split between the holders.

use netcase_host::HostEvidence;
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use std::collections::BTreeMap;
use std::net::IpAddr;

fn shared_by_design(ip: &IpAddr, ifname: &str) -> bool {
    ifname == "lo"
        || ip.is_loopback()
        || ip.is_unspecified()
        || matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

pub(crate) fn check(evs: &[HostEvidence], out: &mut Vec<Finding>) {
    let mut holders: BTreeMap<IpAddr, Vec<(String, String, Option<String>)>> = BTreeMap::new();
    for ev in evs {
        let name = ev.netns.label().unwrap_or_else(|| "host".into());
        for a in &ev.addresses {
            if shared_by_design(&a.addr, &a.ifname) {
                continue;
            }
            let h = holders.entry(a.addr).or_default();
            if !h.iter().any(|(n, _, _)| *n == name) {
                h.push((name.clone(), a.ifname.clone(), a.mac.clone()));
            }
        }
    }
    for (ip, h) in holders {
        if h.len() < 2 {
            continue;
        }
        let list: Vec<String> = h
            .iter()
            .map(|(n, i, m)| format!("netns {n} on {i}{}", m.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()))
            .collect();
        out.push(
            Finding::new(
                CaseId::IpConflict,
                Severity::Error,
                Subject::Peer { ip },
                format!("{ip} is held by {} network namespaces: {}", h.len(), list.join(", ")),
            )
            .with_measure("holders", h.len() as f64, "count")
            .with(Evidence::text("holders", list.join("; ")))
            .with(Evidence::text("netns", h.iter().map(|(n, _, _)| n.clone()).collect::<Vec<_>>().join(",")))
            .with_fix("give each namespace (container) its own address: fix the IPAM or static configuration that assigned it twice; arping -D shows the duplicate on a shared segment"),
        );
    }
}
