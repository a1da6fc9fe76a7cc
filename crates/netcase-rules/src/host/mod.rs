//! Rules over host evidence ([`netcase_host::HostEvidence`]): one module per case.
//!
//! [`check`] runs every per-namespace rule on one namespace; [`check_all`] runs them on each
//! namespace and adds the cross-namespace ones (ip-conflict).

use netcase_host::netfilter::Rule;
use netcase_host::{Conntrack, HostEvidence};
use netcase_model::{Evidence, Finding, Subject};

mod accept_queue_overflow;
mod client_timeout_fin_wait2;
mod close_wait_in_accept_queue;
mod close_wait_leak;
mod conntrack_table_full;
mod dns_conntrack_race_5s;
mod dupack_no_fast_retransmit;
mod ephemeral_port_odd_even;
mod ip_conflict;
mod iptables_redirect_hijack;
mod keepalive_settings;
mod nat_timestamp_paws;
mod packet_drop_layers;

pub use packet_drop_layers::{drop_layers, DropLayer};
mod resolver_order;
mod reuseport_balance;
mod rss_rps_imbalance;
mod snat_port_collision;
mod syn_queue_overflow;
mod time_wait_pileup;
mod udp_rcvbuf_drops;

/// Every per-namespace rule over one namespace's evidence; findings sorted.
pub fn check(ev: &HostEvidence) -> Vec<Finding> {
    let mut out = Vec::new();
    client_timeout_fin_wait2::check(ev, &mut out);
    close_wait_leak::check(ev, &mut out);
    close_wait_in_accept_queue::check(ev, &mut out);
    time_wait_pileup::check(ev, &mut out);
    accept_queue_overflow::check(ev, &mut out);
    syn_queue_overflow::check(ev, &mut out);
    udp_rcvbuf_drops::check(ev, &mut out);
    conntrack_table_full::check(ev, &mut out);
    snat_port_collision::check(ev, &mut out);
    nat_timestamp_paws::check(ev, &mut out);
    iptables_redirect_hijack::check(ev, &mut out);
    resolver_order::check(ev, &mut out);
    dns_conntrack_race_5s::check(ev, &mut out);
    keepalive_settings::check(ev, &mut out);
    reuseport_balance::check(ev, &mut out);
    rss_rps_imbalance::check(ev, &mut out);
    ephemeral_port_odd_even::check(ev, &mut out);
    dupack_no_fast_retransmit::check(ev, &mut out);
    packet_drop_layers::check(ev, &mut out);
    Finding::settle(&mut out);
    out
}

/// [`check`] on every namespace plus the cross-namespace rules; findings sorted.
pub fn check_all(evs: &[HostEvidence]) -> Vec<Finding> {
    let mut out: Vec<Finding> = evs.iter().flat_map(check).collect();
    ip_conflict::check(evs, &mut out);
    Finding::settle(&mut out);
    out
}

/// keepalive-settings alone with another idle threshold (ms; the rule's own is
/// [`KEEPALIVE_IDLE_MS`]): established connections idle at least that long without a
/// keepalive timer. For tests and for callers with a known middlebox timeout.
pub fn keepalive_findings(ev: &HostEvidence, idle_ms: u32) -> Vec<Finding> {
    let mut out = Vec::new();
    keepalive_settings::check_idle(ev, idle_ms, &mut out);
    out
}

/// The idle time (ms) after which keepalive-settings reports a connection without keepalive.
pub const KEEPALIVE_IDLE_MS: u32 = keepalive_settings::IDLE_MS;

/// The namespace label used in subjects.
pub(crate) fn ns(ev: &HostEvidence) -> Option<String> {
    ev.netns.label()
}

/// A counter as evidence, if present.
pub(crate) fn counter(ev: &HostEvidence, name: &str) -> Option<Evidence> {
    ev.counter(name).map(|(value, per_s)| Evidence::Counter { name: name.to_owned(), value, per_s })
}

/// A sysctl as evidence, if present.
pub(crate) fn sysctl(ev: &HostEvidence, name: &str) -> Option<Evidence> {
    ev.sysctls.get(name).map(|v| Evidence::Sysctl { name: name.to_owned(), value: v.clone() })
}

/// How active a counter is: its rate when two samples were taken, else `None`.
/// `Some(0.0)` means "sampled and not moving".
pub(crate) fn rate(ev: &HostEvidence, name: &str) -> Option<f64> {
    ev.counter_rates.get(name).copied()
}

/// Whether the counter moved between samples, or (one sample) is non-zero at all.
pub(crate) fn moving_or_set(ev: &HostEvidence, name: &str) -> (bool, bool) {
    match (ev.counter(name), rate(ev, name)) {
        (Some(_), Some(r)) => (r > 0.0, r > 0.0),
        (Some((v, _)), None) => (false, v > 0),
        _ => (false, false),
    }
}

/// A conntrack statistic (`insert_failed`, `drop`, `early_drop`): its total over CPUs and,
/// when two samples were taken, its growth per second.
pub(crate) fn ct_stat(ct: &Conntrack, key: &str) -> (u64, Option<f64>) {
    (ct.totals.get(key).copied().unwrap_or(0), ct.per_s.get(key).copied())
}

/// Whether a conntrack statistic shows the event happening: growing between the samples, or
/// (one sample) non-zero at all.
pub(crate) fn ct_active(ct: &Conntrack, key: &str) -> bool {
    match ct_stat(ct, key) {
        (_, Some(r)) => r > 0.0,
        (total, None) => total > 0,
    }
}

/// The source-NAT rules (MASQUERADE, SNAT) without `--random-fully`: they keep a connection's
/// source port when no confirmed connection uses it yet, so concurrent connections can be
/// translated to the same port (snat-port-collision).
pub(crate) fn snat_without_random_fully(ev: &HostEvidence) -> Vec<&Rule> {
    ev.netfilter
        .as_ref()
        .map(|rs| rs.with_target("nat", &["MASQUERADE", "SNAT"]).filter(|r| !r.random_fully).collect())
        .unwrap_or_default()
}

/// What shows DNS traffic in a namespace: its own sockets to or from port 53 (lookups in
/// flight, a DNS server or stub listening), and nat rules for port 53 (DNS of other
/// namespaces translated here, as kube-proxy's rules for the cluster DNS service).
#[derive(Debug, Default)]
pub(crate) struct DnsTraffic {
    /// Sockets with local or remote port 53.
    pub sockets: usize,
    /// The nat rules matching destination port 53, as printed.
    pub nat_rules: Vec<String>,
}

impl DnsTraffic {
    /// Any DNS traffic at all.
    pub fn any(&self) -> bool {
        self.sockets > 0 || !self.nat_rules.is_empty()
    }
}

/// The DNS traffic evidence of `ev`.
pub(crate) fn dns_traffic(ev: &HostEvidence) -> DnsTraffic {
    let sockets = ev.sockets.iter().filter(|s| s.local.port() == 53 || s.remote.port() == 53).count();
    let nat_rules = ev
        .netfilter
        .as_ref()
        .map(|rs| {
            rs.rules
                .iter()
                .filter(|r| r.table == "nat" && r.dports.iter().any(|&(lo, hi)| (lo..=hi).contains(&53)))
                .map(|r| r.text.clone())
                .collect()
        })
        .unwrap_or_default();
    DnsTraffic { sockets, nat_rules }
}

/// Appends optional evidence.
pub(crate) fn push_opt(f: &mut Finding, e: Option<Evidence>) {
    if let Some(e) = e {
        f.evidence.push(e);
    }
}

/// Subject for a process, or for the server port when the owner is unknown.
pub(crate) fn owner_subject(ev: &HostEvidence, owner: Option<(u32, &str)>, local: std::net::SocketAddr) -> Subject {
    match owner {
        Some((pid, comm)) => Subject::Process { pid, comm: comm.to_owned(), netns: ns(ev) },
        None => Subject::ServerPort { proto: "tcp", ip: Some(local.ip()), port: local.port() },
    }
}

#[cfg(test)]
pub(crate) mod fixture {
    //! Synthetic evidence for rule unit tests.
    use netcase_host::netfilter::{parse_iptables_save, Ruleset};
    use netcase_host::resolver::{Libc, Resolver};
    use netcase_host::sockdiag::{Proto, Socket, TcpState};
    use netcase_host::{Conntrack, HostEvidence, NetnsRef};
    use std::collections::BTreeMap;

    pub fn empty() -> HostEvidence {
        HostEvidence {
            netns: NetnsRef { name: Some("t".into()), path: None, inode: 1, named: Some("t".into()), pids: vec![] },
            kernel: "6.18.0".into(),
            interval_s: 0.0,
            sockets: vec![],
            earlier_sockets: vec![],
            counters: BTreeMap::new(),
            counter_rates: BTreeMap::new(),
            softnet: vec![],
            softnet_rates: vec![],
            devices: vec![],
            device_drop_rates: BTreeMap::new(),
            conntrack: None,
            sysctls: [
                ("net.core.somaxconn", "4096"),
                ("net.ipv4.ip_local_port_range", "32768 60999"),
                ("net.ipv4.tcp_max_tw_buckets", "262144"),
                ("net.ipv4.tcp_max_syn_backlog", "1024"),
                ("net.ipv4.tcp_syncookies", "1"),
                ("net.core.rmem_default", "212992"),
                ("net.core.rmem_max", "212992"),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect(),
            netfilter: None,
            nft_tables: vec![],
            addresses: vec![],
            neighbours: vec![],
            other_netns: vec![],
            resolver: Resolver {
                root: "/".into(),
                resolv_conf: None,
                nsswitch_present: true,
                nsswitch_hosts: Some(vec!["files".into(), "dns".into()]),
                hosts: vec![],
                libc: Libc::Glibc,
                files: vec![],
            },
            unavailable: vec![],
            decode_errors: 0,
        }
    }

    /// Conntrack state: `count` of `max` entries, statistics totals and (when `rates` is not
    /// empty, as with two samples) their growth per second.
    pub fn conntrack(count: u64, max: u64, totals: &[(&str, u64)], rates: &[(&str, f64)]) -> Conntrack {
        Conntrack {
            count: Some(count),
            max: Some(max),
            per_cpu: vec![],
            totals: totals.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            per_s: rates.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            source: "/proc/net/stat/nf_conntrack".into(),
        }
    }

    /// A ruleset from iptables-save text (IPv4).
    pub fn rules(save: &str) -> Ruleset {
        let mut rs = Ruleset::default();
        parse_iptables_save(save, "ipv4", &mut rs);
        rs
    }

    /// `-A POSTROUTING -o eth0 -j MASQUERADE` (with `--random-fully` when asked).
    pub fn masquerade(random_fully: bool) -> Ruleset {
        rules(&format!(
            "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth0 -j MASQUERADE{}\nCOMMIT\n",
            if random_fully { " --random-fully" } else { "" }
        ))
    }

    pub fn udp(local: &str, remote: &str) -> Socket {
        Socket { proto: Proto::Udp, ..tcp(TcpState::Close, local, remote) }
    }

    pub fn tcp(state: TcpState, local: &str, remote: &str) -> Socket {
        Socket {
            proto: Proto::Tcp,
            state,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            timer: None,
            recv_q: 0,
            send_q: 0,
            uid: 0,
            inode: 1,
            cookie: 0,
            tcp: None,
            mem: None,
            shutdown: None,
            owners: vec![],
        }
    }
}
