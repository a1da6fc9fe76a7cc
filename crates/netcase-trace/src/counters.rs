//! The kernel's own drop counters (`/proc/net/snmp`, `netstat`, `snmp6`) for the interval a
//! trace ran, read in the traced network namespace.
//!
//! kfree_skb samples do not say which namespace a packet was in; the counters do. Putting
//! both side by side tells which of the traced reasons a namespace accounts for (its
//! `Udp.RcvbufErrors` against SOCKET_RCVBUFF, `Udp.NoPorts` against NO_SOCKET in UDP).
//!
//! Sans-I/O: [`parse_snmp`] and [`parse_snmp6`] take file text.

use serde::Serialize;
use std::collections::BTreeMap;

/// Counters by dotted name (`Udp.RcvbufErrors`, `TcpExt.ListenOverflows`, `Udp6.NoPorts`).
pub type Counters = BTreeMap<String, u64>;

/// Parses the `/proc/net/snmp` and `/proc/net/netstat` layout: a header line of names and a
/// line of values, both starting with `Proto:`. Values that do not parse as u64 (negative
/// gauges such as `Tcp.MaxConn`) are skipped.
pub fn parse_snmp(text: &str, out: &mut Counters) {
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let (Some((p1, names)), Some((p2, values))) = (names.split_once(':'), values.split_once(':')) else { continue };
        if p1 != p2 {
            continue;
        }
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = v.parse::<u64>() {
                out.insert(format!("{p1}.{n}"), v);
            }
        }
    }
}

/// Parses the `/proc/net/snmp6` layout (`Udp6RcvbufErrors  12` per line) into `Udp6.RcvbufErrors`.
pub fn parse_snmp6(text: &str, out: &mut Counters) {
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(name), Some(v)) = (it.next(), it.next()) else { continue };
        let Ok(v) = v.parse::<u64>() else { continue };
        let split =
            ["Ip6", "Icmp6", "UdpLite6", "Udp6"].iter().find_map(|p| name.strip_prefix(p).map(|rest| (*p, rest)));
        match split {
            Some((p, rest)) if !rest.is_empty() => out.insert(format!("{p}.{rest}"), v),
            _ => out.insert(name.to_owned(), v),
        };
    }
}

/// Reads the counters of the calling thread's network namespace
/// (`/proc/thread-self/net/...`). Missing files are skipped.
pub fn read_thread_counters() -> Counters {
    let mut c = Counters::new();
    for (file, six) in [("snmp", false), ("netstat", false), ("snmp6", true)] {
        if let Ok(t) = std::fs::read_to_string(format!("/proc/thread-self/net/{file}")) {
            if six {
                parse_snmp6(&t, &mut c);
            } else {
                parse_snmp(&t, &mut c);
            }
        }
    }
    c
}

/// Reads the counters of the named network namespace (`None`: the caller's).
pub fn read_counters(netns: Option<&str>) -> crate::Result<Counters> {
    match netns {
        Some(n) => crate::sys::in_netns(n, read_thread_counters),
        None => Ok(read_thread_counters()),
    }
}

/// Whether a counter counts drops or errors (the ones worth showing beside a drop trace).
pub fn is_drop_counter(name: &str) -> bool {
    let n = name.rsplit('.').next().unwrap_or(name);
    ["Err", "Drop", "Overflow", "NoPorts", "Discard", "NoRoutes", "Fails", "Prune", "Unknown"]
        .iter()
        .any(|k| n.contains(k))
}

/// One counter's growth over the traced interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CounterDelta {
    /// Dotted name.
    pub name: String,
    /// Growth.
    pub delta: u64,
}

/// Drop and error counters that grew between `before` and `after`, largest first.
pub fn drop_deltas(before: &Counters, after: &Counters) -> Vec<CounterDelta> {
    let mut v: Vec<CounterDelta> = after
        .iter()
        .filter(|(n, _)| is_drop_counter(n))
        .filter_map(|(n, a)| {
            let d = a.saturating_sub(before.get(n).copied().unwrap_or(0));
            (d > 0).then(|| CounterDelta { name: n.clone(), delta: d })
        })
        .collect();
    v.sort_by(|a, b| b.delta.cmp(&a.delta).then_with(|| a.name.cmp(&b.name)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = "\
Ip: Forwarding DefaultTTL InReceives InHdrErrors
Ip: 1 64 100 2
Tcp: RtoAlgorithm MaxConn RetransSegs
Tcp: 1 -1 7
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 10 2000 1990 4000 1990 0 0 0 0
";

    #[test]
    fn snmp_pairs() {
        let mut c = Counters::new();
        parse_snmp(SNMP, &mut c);
        assert_eq!(c.get("Udp.NoPorts"), Some(&2000));
        assert_eq!(c.get("Udp.RcvbufErrors"), Some(&1990));
        assert_eq!(c.get("Tcp.RetransSegs"), Some(&7));
        assert_eq!(c.get("Tcp.MaxConn"), None);
        let mut before = Counters::new();
        before.insert("Udp.NoPorts".into(), 1000);
        let d = drop_deltas(&before, &c);
        assert!(d.contains(&CounterDelta { name: "Udp.RcvbufErrors".into(), delta: 1990 }));
        assert_eq!(d.first().map(|x| x.delta), Some(1990));
        assert!(d.iter().any(|x| x.name == "Udp.NoPorts" && x.delta == 1000));
        assert!(!d.iter().any(|x| x.name == "Udp.OutDatagrams"));
    }

    #[test]
    fn snmp6_lines() {
        let mut c = Counters::new();
        parse_snmp6("Ip6InReceives    5\nUdp6NoPorts   3\nUdpLite6InErrors 0\nbad\n", &mut c);
        assert_eq!(c.get("Udp6.NoPorts"), Some(&3));
        assert_eq!(c.get("UdpLite6.InErrors"), Some(&0));
        assert_eq!(c.get("Ip6.InReceives"), Some(&5));
    }

    #[test]
    fn mismatched_lines_are_skipped() {
        let mut c = Counters::new();
        parse_snmp("Ip: A B\nTcp: 1 2\n", &mut c);
        assert!(c.is_empty());
    }
}
