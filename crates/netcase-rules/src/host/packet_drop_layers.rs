//! packet-drop-layers: drops counted layer by layer (device, softnet, IP, netfilter/conntrack,
//! TCP, UDP, socket) and the layer that loses most. Rates when two samples were taken,
//! otherwise totals since the namespace (or boot) started.

use super::ns;
use netcase_host::HostEvidence;
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};

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

pub(crate) fn check(ev: &HostEvidence, out: &mut Vec<Finding>) {
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
    let softnet: f64 = if ev.netns.label().is_some() {
        0.0 // global counters: judged in the caller's own namespace only
    } else if rates {
        ev.softnet_rates.iter().map(|r| r.2).sum()
    } else {
        ev.softnet.iter().map(|c| c.dropped as f64).sum()
    };
    let netfilter: f64 = ev.conntrack.as_ref().map_or(0.0, |ct| {
        ["drop", "early_drop", "insert_failed"]
            .iter()
            .map(|k| {
                if rates {
                    ct.per_s.get(*k).copied().unwrap_or(0.0)
                } else {
                    ct.totals.get(*k).copied().unwrap_or(0) as f64
                }
            })
            .sum()
    });
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
    let layers = [
        ("device", device),
        ("softnet", softnet),
        ("ip", sum(IP)),
        ("netfilter", netfilter),
        ("tcp", sum(TCP)),
        ("udp", sum(UDP)),
        ("socket", socket),
    ];
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
    .with(Evidence::text("worst_layer", worst.0))
    .with(Evidence::text("table", table.join(", ")));
    for (n, v) in layers {
        f = f.with_measure(n, v, unit);
    }
    out.push(f.with_fix("follow the worst layer: device → ring sizes/driver; softnet → netdev_max_backlog/RPS; netfilter → conntrack limits; tcp → listen queues/memory; udp/socket → receive buffers and readers; `netcase drops` names kernel locations"));
}
