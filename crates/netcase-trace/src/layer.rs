//! The layer of the stack a drop belongs to, from the reason's name and the function that
//! dropped the packet — the rows of the packet-drop-layers table that `netcase check` fills
//! from counters.
//!
//! Names, never numbers: reasons are classified by the names the running kernel gives them
//! (`TCP_*`, `SOCKET_RCVBUFF`), so a reason added in a later kernel still lands in a sensible
//! row. The function decides first where it is unambiguous (a NO_SOCKET drop in
//! `__udp4_lib_rcv` is UDP's, in `tcp_v4_rcv` TCP's).

use serde::Serialize;
use std::fmt;

/// A row of the layered drop table, from the wire up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// NIC, driver, qdisc, tc, neighbour, tunnels, bridge.
    Device,
    /// The per-CPU backlog between the driver and the stack (softnet_stat).
    Softnet,
    /// IPv4/IPv6 receive and output, fragments, routing, ICMP.
    Ip,
    /// netfilter hooks: iptables/nftables rules, conntrack.
    Netfilter,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// Socket layer: receive buffers, filters, backlog, other families.
    Socket,
    /// Nothing points to a layer.
    Other,
}

impl Layer {
    /// Every layer, in table order.
    pub const ALL: [Layer; 8] = [
        Layer::Device,
        Layer::Softnet,
        Layer::Ip,
        Layer::Netfilter,
        Layer::Tcp,
        Layer::Udp,
        Layer::Socket,
        Layer::Other,
    ];

    /// Its name in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Device => "device",
            Layer::Softnet => "softnet",
            Layer::Ip => "ip",
            Layer::Netfilter => "netfilter",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Socket => "socket",
            Layer::Other => "other",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn starts(s: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| s.starts_with(p))
}

fn layer_of_symbol(sym: &str) -> Option<Layer> {
    let s = sym.trim_start_matches('_');
    if starts(s, &["nf_", "nft_", "ipt_", "ip6t_", "ebt_", "xt_", "nfqnl", "br_nf"]) {
        Some(Layer::Netfilter)
    } else if starts(
        s,
        &["enqueue_to_backlog", "netif_receive", "netif_rx", "process_backlog", "net_rx_action", "napi_", "gro_"],
    ) {
        Some(Layer::Softnet)
    } else if starts(s, &["tcp", "inet_csk", "inet_twsk", "reqsk"]) {
        Some(Layer::Tcp)
    } else if starts(s, &["udp", "__udp"]) {
        Some(Layer::Udp)
    } else if starts(
        s,
        &[
            "ip_",
            "ip6_",
            "ipv6_",
            "ipv4_",
            "icmp",
            "inet_frag",
            "ip_frag",
            "ipv6_frag",
            "raw_",
            "rawv6",
            "fib",
            "arp_",
            "ndisc",
        ],
    ) {
        Some(Layer::Ip)
    } else if starts(
        s,
        &[
            "sk_",
            "sock_",
            "skb_queue_purge",
            "unix_",
            "netlink_",
            "packet_",
            "tpacket",
            "inet_sock",
            "virtio_transport",
            "vsock",
        ],
    ) {
        Some(Layer::Socket)
    } else if starts(
        s,
        &[
            "dev_", "qdisc", "sch_", "tc_", "tcf_", "neigh", "br_", "vxlan", "veth", "tun_", "bond_", "macvlan", "xdp",
            "ipvlan", "geneve", "gre",
        ],
    ) {
        Some(Layer::Device)
    } else {
        None
    }
}

fn layer_of_reason(r: &str) -> Option<Layer> {
    if r == "NETFILTER_DROP" {
        Some(Layer::Netfilter)
    } else if r == "CPU_BACKLOG" {
        Some(Layer::Softnet)
    } else if starts(r, &["TCP_"]) {
        Some(Layer::Tcp)
    } else if starts(r, &["UDP_"]) {
        Some(Layer::Udp)
    } else if starts(r, &["SOCKET_", "UNIX_", "PROTO_MEM", "PACKET_SOCK", "QUEUE_PURGE"]) {
        Some(Layer::Socket)
    } else if starts(
        r,
        &[
            "IP_",
            "IPV6",
            "ICMP_",
            "OTHERHOST",
            "PKT_TOO_BIG",
            "DUP_FRAG",
            "FRAG_",
            "XFRM_",
            "UNICAST_IN_L2",
            "INVALID_PROTO",
            "IP_TUNNEL",
        ],
    ) {
        Some(Layer::Ip)
    } else if starts(
        r,
        &[
            "QDISC_",
            "TC_",
            "DEV_",
            "FULL_RING",
            "NEIGH_",
            "CAKE_",
            "FQ_",
            "TAP_",
            "XDP",
            "UNHANDLED_PROTO",
            "MAC_",
            "VXLAN_",
            "LOCAL_MAC",
            "BRIDGE_",
            "CAN",
            "TUNNEL_",
            "NO_TX_TARGET",
            "ARP_",
            "SKB_GSO",
            "HDR_TRUNC",
            "DUALPI2",
            "BPF_CGROUP",
        ],
    ) {
        Some(Layer::Device)
    } else {
        None
    }
}

/// The layer of a drop with reason `reason` (the kernel's name, without prefix) in function
/// `symbol`.
pub fn classify(reason: &str, symbol: &str) -> Layer {
    // Reasons that name their layer outright win; for the rest the function decides.
    if reason == "NETFILTER_DROP" || reason == "CPU_BACKLOG" {
        return layer_of_reason(reason).unwrap_or(Layer::Other);
    }
    match (layer_of_symbol(symbol), layer_of_reason(reason)) {
        (Some(l @ (Layer::Tcp | Layer::Udp | Layer::Netfilter)), _) => l,
        (_, Some(l)) => l,
        (Some(l), None) => l,
        (None, None) => Layer::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_drops_land_in_their_rows() {
        assert_eq!(classify("SOCKET_RCVBUFF", "__udp_queue_rcv_skb"), Layer::Udp);
        assert_eq!(classify("SOCKET_RCVBUFF", "sock_queue_rcv_skb_reason"), Layer::Socket);
        assert_eq!(classify("NO_SOCKET", "__udp4_lib_rcv"), Layer::Udp);
        assert_eq!(classify("NO_SOCKET", "tcp_v4_rcv"), Layer::Tcp);
        assert_eq!(classify("NETFILTER_DROP", "nf_hook_slow"), Layer::Netfilter);
        assert_eq!(classify("TCP_LISTEN_OVERFLOW", "tcp_v4_syn_recv_sock"), Layer::Tcp);
        assert_eq!(classify("CPU_BACKLOG", "enqueue_to_backlog"), Layer::Softnet);
        assert_eq!(classify("QDISC_DROP", "__dev_queue_xmit"), Layer::Device);
        assert_eq!(classify("IP_INADDRERRORS", "ip_rcv_finish_core"), Layer::Ip);
        assert_eq!(classify("NOT_SPECIFIED", "ip6_mc_input"), Layer::Ip);
        assert_eq!(classify("NOT_SPECIFIED", "mystery_fn"), Layer::Other);
        assert_eq!(classify("NOT_SPECIFIED", "virtio_transport_recv_pkt"), Layer::Socket);
        assert_eq!(classify("SOME_FUTURE_REASON", "nft_do_chain"), Layer::Netfilter);
    }
}
