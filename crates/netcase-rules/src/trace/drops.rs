//! kernel-drop-trace and packet-drop-layers from a kfree_skb aggregate.

use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use netcase_trace::drops::{DropReport, ReasonRow};
use netcase_trace::Layer;

/// When a drop reason becomes a warning.
#[derive(Debug, Clone, Copy)]
pub struct DropThresholds {
    /// Drops of one reason over the trace.
    pub min_count: u64,
    /// And drops per second.
    pub min_per_s: f64,
    /// Reasons reported at most (largest first).
    pub max_reasons: usize,
    /// Drops per second at which even a routine reason (NO_SOCKET, OTHERHOST...) warns.
    pub routine_per_s: f64,
}

impl Default for DropThresholds {
    fn default() -> Self {
        DropThresholds { min_count: 10, min_per_s: 1.0, max_reasons: 5, routine_per_s: 100.0 }
    }
}

/// Reasons that are routine on a healthy host (traffic not for us, closed sockets, duplicates).
const ROUTINE: &[&str] = &[
    "NOT_SPECIFIED",
    "OTHERHOST",
    "UNICAST_IN_L2_MULTICAST",
    "IPV6DISABLED",
    "UNHANDLED_PROTO",
    "SOCKET_CLOSE",
    "TCP_CLOSE",
    "TCP_RESET",
    "TCP_OLD_DATA",
    "TCP_OLD_ACK",
    "TCP_OLD_SEQUENCE",
    "QUEUE_PURGE",
    "UNIX_DISCONNECT",
    "IP_LOCAL_SOURCE",
    "NO_SOCKET",
];

/// Reasons for packets freed because their socket is gone (its queues purged at close,
/// data after close): they follow the rate sockets close, and a busy healthy server closes
/// hundreds a second, so they never warn (measured: QUEUE_PURGE at sk_stream_kill_queues,
/// 447/s beside 444 connection closes/s of a healthy HTTP server without keep-alive).
const END_OF_LIFE: &[&str] = &["QUEUE_PURGE", "SOCKET_CLOSE", "TCP_CLOSE", "UNIX_DISCONNECT"];

/// The case a drop with reason `reason` in function `symbol` suggests, and what to look at.
pub fn points_to(reason: &str, symbol: &str, layer: Layer) -> (CaseId, &'static str) {
    match reason {
        "SOCKET_RCVBUFF" | "PROTO_MEM" | "SOCKET_BACKLOG" if layer == Layer::Udp => (
            CaseId::UdpRcvbufDrops,
            "a UDP receiver is slower than its traffic: read faster, or raise SO_RCVBUF (net.core.rmem_max)",
        ),
        "SOCKET_RCVBUFF" | "SOCKET_BACKLOG" | "PROTO_MEM" => (
            CaseId::PacketDropLayers,
            "a socket's receive buffer or backlog is full: the application reads too slowly",
        ),
        "TCP_LISTEN_OVERFLOW" => (
            CaseId::AcceptQueueOverflow,
            "a listener's accept queue is full: accept faster, raise net.core.somaxconn and the listen backlog",
        ),
        "NO_SOCKET" => (CaseId::PortUnreachable, "packets for a port nobody listens on: check the service and its port"),
        "TCP_RFC7323_PAWS" | "TCP_RFC7323_TW_PAWS" => (
            CaseId::NatTimestampPaws,
            "PAWS rejects segments with old timestamps: clients behind one NAT, or tcp_tw_recycle on old kernels",
        ),
        "CPU_BACKLOG" => (
            CaseId::RssRpsImbalance,
            "a CPU's softnet backlog overflows: spread receive work (RSS/RPS), raise net.core.netdev_max_backlog",
        ),
        "NETFILTER_DROP" if symbol.contains("conntrack") || symbol.starts_with("nf_ct") => (
            CaseId::ConntrackTableFull,
            "conntrack drops: compare nf_conntrack_count with nf_conntrack_max, and insert_failed in conntrack -S",
        ),
        "NETFILTER_DROP" => (
            CaseId::PacketDropLayers,
            "a netfilter rule drops these packets: find it with iptables-save -c or nft list ruleset (the counters that grow)",
        ),
        _ => (CaseId::PacketDropLayers, "see the layer table for where the packets go"),
    }
}

fn reason_finding(r: &ReasonRow, total: u64, ev: &DropReport, t: &DropThresholds) -> Finding {
    let routine = ROUTINE.contains(&r.reason.as_str());
    let min_per_s = if routine { t.routine_per_s } else { t.min_per_s };
    let end_of_life = END_OF_LIFE.contains(&r.reason.as_str());
    let severity =
        if !end_of_life && r.count >= t.min_count && r.per_s >= min_per_s { Severity::Warning } else { Severity::Info };
    let symbol = r.top_location.split('+').next().unwrap_or("");
    let (case, fix) = points_to(&r.reason, symbol, r.layer);
    let share = if total > 0 { 100.0 * r.count as f64 / total as f64 } else { 0.0 };
    let mut f = Finding::new(
        CaseId::KernelDropTrace,
        severity,
        Subject::Host,
        format!(
            "the kernel dropped {} packets ({:.1}/s, {:.0}% of all drops) with reason {} mostly at {} ({} layer)",
            r.count, r.per_s, share, r.reason, r.top_location, r.layer
        ),
    )
    .with(Evidence::text("reason", r.reason.clone()))
    .with(Evidence::text("location", r.top_location.clone()))
    .with(Evidence::text("layer", r.layer.as_str()))
    .with_measure("drops", r.count as f64, "count")
    .with_measure("drops_per_s", r.per_s, "per_s")
    .with_measure("share", share, "%")
    .with(Evidence::text("points_to", case.as_str()))
    .with_fix(fix);
    // Locations of this reason beyond the top one, largest first.
    let others: Vec<String> = ev
        .entries
        .iter()
        .filter(|e| e.reason == r.reason && e.location != r.top_location)
        .take(3)
        .map(|e| format!("{} ({})", e.location, e.count))
        .collect();
    if !others.is_empty() {
        f = f.with(Evidence::text("other_locations", others.join(", ")));
    }
    if let Some(c) = related_counter(&r.reason, r.layer).and_then(|n| ev.counters.iter().find(|c| c.name == n)) {
        f = f.with(Evidence::Counter { name: c.name.clone(), value: c.delta, per_s: None });
    }
    f
}

/// The namespace counter that counts the same drops, when there is one.
fn related_counter(reason: &str, layer: Layer) -> Option<&'static str> {
    match (reason, layer) {
        ("SOCKET_RCVBUFF", Layer::Udp) => Some("Udp.RcvbufErrors"),
        ("NO_SOCKET", Layer::Udp) => Some("Udp.NoPorts"),
        ("TCP_LISTEN_OVERFLOW", _) => Some("TcpExt.ListenOverflows"),
        ("TCP_RFC7323_PAWS", _) => Some("TcpExt.PAWSEstab"),
        _ => None,
    }
}

/// kernel-drop-trace per dominant reason, and packet-drop-layers.
pub(super) fn check(ev: &DropReport, t: &DropThresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    if ev.total == 0 {
        return out;
    }
    for r in ev.by_reason.iter().take(t.max_reasons) {
        out.push(reason_finding(r, ev.total, ev, t));
    }
    if let Some(worst) = ev.by_layer.first() {
        let table: Vec<String> = ev.by_layer.iter().map(|l| format!("{} {}", l.layer, l.count)).collect();
        let mut f = Finding::new(
            CaseId::PacketDropLayers,
            Severity::Info,
            Subject::Host,
            format!(
                "{} kernel drops in {:.1} s; the {} layer loses most ({}, {:.1}/s)",
                ev.total, ev.duration_s, worst.layer, worst.count, worst.per_s
            ),
        )
        .with(Evidence::text("worst_layer", worst.layer.as_str()))
        .with(Evidence::text("layers", table.join(", ")))
        .with_fix("look at the worst layer's kernel-drop-trace finding and its counters");
        for l in &ev.by_layer {
            f = f.with_measure(&format!("drops_{}", l.layer), l.count as f64, "count");
        }
        if ev.session.lost > 0 {
            f = f.with_measure("lost_samples", ev.session.lost as f64, "count");
        }
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcase_trace::drops::{DropAggregator, DropSample};
    use netcase_trace::format::EventFormat;
    use netcase_trace::kallsyms::Kallsyms;
    use std::time::Duration;

    const FORMAT: &str = "name: kfree_skb\nID: 1\nformat:\n\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;\n\
        \tfield:enum skb_drop_reason reason;\toffset:36;\tsize:4;\tsigned:0;\n\n\
        print fmt: \"%s\", __print_symbolic(REC->reason, { 2, \"NOT_SPECIFIED\" }, { 3, \"NO_SOCKET\" }, \
        { 6, \"SOCKET_RCVBUFF\" }, { 12, \"NETFILTER_DROP\" }, { 40, \"TCP_LISTEN_OVERFLOW\" }, \
        { 70, \"QUEUE_PURGE\" })\n";
    const SYMS: &str = "1000 T __udp_queue_rcv_skb\n2000 T nf_hook_slow\n3000 T tcp_v4_syn_recv_sock\n4000 T ip_rcv\n";

    fn report(drops: &[(u32, u64, u64)], secs: u64) -> DropReport {
        let fmt = EventFormat::parse("skb/kfree_skb", FORMAT).unwrap();
        let mut agg = DropAggregator::default();
        for &(reason, loc, n) in drops {
            for _ in 0..n {
                agg.add(DropSample { location: loc, protocol: 0x0800, reason: Some(reason) });
            }
        }
        agg.report(&fmt.symbols("reason"), &Kallsyms::parse(SYMS), Duration::from_secs(secs))
    }

    #[test]
    fn rcvbuf_drops_point_to_udp_case() {
        let ev = report(&[(6, 0x1010, 2000), (2, 0x4010, 5)], 2);
        let f = super::super::check(&ev);
        let top = f.iter().find(|f| f.text("reason") == Some("SOCKET_RCVBUFF")).unwrap();
        assert_eq!(top.severity, Severity::Warning);
        assert_eq!(top.text("points_to"), Some("udp-rcvbuf-drops"));
        assert_eq!(top.measure("drops"), Some(2000.0));
        assert_eq!(top.measure("drops_per_s"), Some(1000.0));
        assert_eq!(top.text("location"), Some("__udp_queue_rcv_skb+0x10"));
        let routine = f.iter().find(|f| f.text("reason") == Some("NOT_SPECIFIED")).unwrap();
        assert_eq!(routine.severity, Severity::Info);
        let layers = f.iter().find(|f| f.case == CaseId::PacketDropLayers).unwrap();
        assert_eq!(layers.text("worst_layer"), Some("udp"));
        assert_eq!(layers.measure("drops_udp"), Some(2000.0));
        assert_eq!(layers.measure("drops_ip"), Some(5.0));
    }

    #[test]
    fn listen_overflow_and_netfilter() {
        let ev = report(&[(40, 0x3001, 50), (12, 0x2001, 30)], 10);
        let f = super::super::check(&ev);
        let lo = f.iter().find(|f| f.text("reason") == Some("TCP_LISTEN_OVERFLOW")).unwrap();
        assert_eq!(lo.text("points_to"), Some("accept-queue-overflow"));
        assert_eq!(lo.severity, Severity::Warning);
        let nf = f.iter().find(|f| f.text("reason") == Some("NETFILTER_DROP")).unwrap();
        assert_eq!(nf.text("layer"), Some("netfilter"));
        assert!(nf.fix.contains("iptables-save"));
    }

    #[test]
    fn routine_reason_at_a_high_rate_warns() {
        let ev = report(&[(3, 0x1010, 1000)], 2);
        let f = super::super::check(&ev);
        let ports = f.iter().find(|f| f.text("reason") == Some("NO_SOCKET")).unwrap();
        assert_eq!((ports.severity, ports.text("points_to")), (Severity::Warning, Some("port-unreachable")));
        let ev = report(&[(3, 0x1010, 100)], 10);
        assert!(super::super::check(&ev).iter().all(|f| f.severity == Severity::Info));
    }

    #[test]
    fn queues_purged_with_their_sockets_never_warn() {
        // A busy server closing 450 connections a second.
        let ev = report(&[(70, 0x3001, 900)], 2);
        let f = super::super::check(&ev);
        let purge = f.iter().find(|f| f.text("reason") == Some("QUEUE_PURGE")).unwrap();
        assert_eq!(purge.severity, Severity::Info);
        assert_eq!(purge.measure("drops_per_s"), Some(450.0));
    }

    #[test]
    fn slow_trickle_is_info() {
        let ev = report(&[(6, 0x1010, 5)], 60);
        let f = super::super::check(&ev);
        assert!(f.iter().all(|f| f.severity == Severity::Info));
    }

    #[test]
    fn healthy_host_is_silent() {
        let ev = report(&[], 5);
        assert!(super::super::check(&ev).is_empty());
    }
}
