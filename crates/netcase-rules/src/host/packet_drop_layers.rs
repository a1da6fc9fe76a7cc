//! packet-drop-layers: drops counted layer by layer (device, softnet, IP, netfilter/conntrack,
//! TCP, UDP, socket) and the layer that loses most. Rates when two samples were taken,
//! otherwise totals since the namespace (or boot) started.

use super::ns;
use netcase_host::HostEvidence;
use netcase_model::{CaseId, Confidence, Evidence, Finding, Severity, Subject};

/// One lost packet per second, sustained, is a real loss for any service.
pub const WARN_PER_S: f64 = 1.0;

const IP: &[&str] = &[
    "Ip.InDiscards",
    "Ip.InHdrErrors",
    "Ip.InAddrErrors",
    "Ip.OutDiscards",
    "Ip.ReasmFails",
    "Ip6.InDiscards",
    "Ip6.InHdrErrors",
    "Ip6.InAddrErrors",
    "Ip6.OutDiscards",
];
const TCP: &[&str] = &[
    "TcpExt.ListenDrops",
    "TcpExt.TCPBacklogDrop",
    "TcpExt.TCPRcvQDrop",
    "TcpExt.TCPZeroWindowDrop",
    "TcpExt.PFMemallocDrop",
    "TcpExt.TCPMinTTLDrop",
    "TcpExt.TCPDeferAcceptDrop",
    "Tcp.InErrs",
];
const UDP: &[&str] = &["Udp.InErrors", "Udp6.InErrors", "UdpLite.InErrors"];

/// One layer's drops, as this rule counts them, and where the number comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct DropLayer {
    /// `device`, `softnet`, `ip`, `netfilter`, `tcp`, `udp`, `socket`.
    pub layer: &'static str,
    /// Per second with two samples, otherwise the total since the namespace (or boot) started.
    pub value: f64,
    /// The counters summed.
    pub source: String,
}

/// Drops per layer, device to socket (the rule's reading; the host report draws the same).
pub fn drop_layers(ev: &HostEvidence) -> Vec<DropLayer> {
    let rates = ev.interval_s > 0.0;
    let sum = |names: &[&str]| -> f64 {
        names
            .iter()
            .map(|n| {
                if rates {
                    ev.counter_rates.get(*n).copied().unwrap_or(0.0)
                } else {
                    ev.counters.get(*n).copied().unwrap_or(0) as f64
                }
            })
            .sum()
    };
    let device: f64 = if rates {
        ev.device_drop_rates.values().map(|(a, b)| a + b).sum()
    } else {
        ev.devices.iter().map(|d| (d.rx_drop + d.tx_drop + d.rx_fifo) as f64).sum()
    };
    let own = ev.netns.label().is_none();
    let softnet: f64 = if !own {
        0.0 // global counters: judged in the caller's own namespace only
    } else if rates {
        ev.softnet_rates.iter().map(|r| r.2).sum()
    } else {
        ev.softnet.iter().map(|c| c.dropped as f64).sum()
    };
    let socket: f64 = if rates {
        ev.sockets
            .iter()
            .filter_map(|s| {
                let now = s.mem?.drops;
                let before = ev.earlier_sockets.iter().find(|e| e.cookie == s.cookie && e.proto == s.proto)?.mem?.drops;
                Some(f64::from(now.saturating_sub(before)) / ev.interval_s)
            })
            .sum()
    } else {
        ev.sockets.iter().filter_map(|s| s.mem.map(|m| f64::from(m.drops))).sum()
    };
    let l = |layer: &'static str, value: f64, source: String| DropLayer { layer, value, source };
    vec![
        l("device", device, "/proc/net/dev rx_drop + tx_drop + rx_fifo".into()),
        l(
            "softnet",
            softnet,
            if own {
                "/proc/net/softnet_stat dropped".into()
            } else {
                "global; counted in the own namespace only".into()
            },
        ),
        l("ip", sum(IP), IP.join(" + ")),
        l("netfilter", conntrack_value(ev, "drop"), "conntrack drop".into()),
        l("tcp", sum(TCP), TCP.join(" + ")),
        l("udp", sum(UDP), UDP.join(" + ")),
        l("socket", socket, "sk_drops of every socket (sock_diag meminfo)".into()),
    ]
}

/// A conntrack statistic: per second with two samples, otherwise the total.
fn conntrack_value(ev: &HostEvidence, k: &str) -> f64 {
    ev.conntrack.as_ref().map_or(0.0, |ct| {
        if ev.interval_s > 0.0 {
            ct.per_s.get(k).copied().unwrap_or(0.0)
        } else {
            ct.totals.get(k).copied().unwrap_or(0) as f64
        }
    })
}

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
    let rates = ev.interval_s > 0.0;
    // Conntrack's `drop` counts every packet it dropped, lost insert races (also counted in
    // `insert_failed`) and full-table refusals alike; `early_drop` evicts an entry, it drops no
    // packet. Adding the three counted each lost race twice.
    let netfilter = conntrack_value(ev, "drop");
    let races = conntrack_value(ev, "insert_failed").min(netfilter);
    let layers: Vec<(&str, f64)> = drop_layers(ev).into_iter().map(|l| (l.layer, l.value)).collect();
    let total: f64 = layers.iter().map(|l| l.1).sum();
    if total <= 0.0 {
        return;
    }
    let Some(worst) = layers.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else { return };
    let unit = if rates { "per_s" } else { "count" };
    let table: Vec<String> = layers.iter().map(|(n, v)| format!("{n}: {v:.1}")).collect();
    let mut f = Finding::new(
        CaseId::PacketDropLayers,
        if rates && total >= WARN_PER_S { Severity::Warning } else { Severity::Info },
        Subject::Netns { name: ns(ev).unwrap_or_else(|| "host".into()) },
        format!(
            "packets are dropped {}; the {} layer loses most ({:.1}{})",
            if rates { "now" } else { "(totals since start, no rate)" },
            worst.0,
            worst.1,
            if rates { "/s" } else { "" }
        ),
    )
    // The counters show the drops themselves; which layer loses most is read, not inferred.
    .with_confidence(Confidence::Certain, &[])
    .with(Evidence::text("worst_layer", worst.0))
    .with(Evidence::text("table", table.join(", ")));
    if netfilter > 0.0 {
        f = f.with(Evidence::text(
            "netfilter_detail",
            format!(
                "{races:.1} of the {netfilter:.1} conntrack drops were lost insert races (insert_failed: \
                 snat-port-collision, dns-conntrack-race-5s), the rest refused entries (a full table, \
                 conntrack-table-full)"
            ),
        ));
    }
    for (n, v) in &layers {
        f = f.with_measure(n, *v, unit);
    }
    out.push(f.with_fix("follow the worst layer: device → ring sizes/driver; softnet → netdev_max_backlog/RPS; netfilter → conntrack limits; tcp → listen queues/memory; udp/socket → receive buffers and readers; `netcase drops` names kernel locations"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixture::{conntrack, empty};

    #[test]
    fn lost_insert_races_count_once_in_the_netfilter_layer() {
        // 351 lost races: the kernel counts each in insert_failed and in drop.
        let mut ev = empty();
        ev.conntrack = Some(conntrack(10, 1000, &[("insert_failed", 351), ("drop", 351), ("early_drop", 0)], &[]));
        let mut out = vec![];
        check(&ev, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].measure("netfilter"), Some(351.0));
        assert_eq!(out[0].severity, Severity::Info); // totals, no rate
        assert!(out[0].text("netfilter_detail").is_some_and(|t| t.starts_with("351.0 of the 351.0")));
    }

    #[test]
    fn drops_per_second_above_one_are_a_warning() {
        let mut ev = empty();
        ev.interval_s = 1.0;
        ev.conntrack = Some(conntrack(10, 1000, &[("drop", 400)], &[("drop", 5.0), ("insert_failed", 0.0)]));
        let mut out = vec![];
        check(&ev, &mut out);
        assert_eq!(out[0].severity, Severity::Warning);
        assert_eq!(out[0].measure("netfilter"), Some(5.0));
    }

    #[test]
    fn no_drops_is_silent() {
        let mut out = vec![];
        check(&empty(), &mut out);
        assert!(out.is_empty());
    }
}
