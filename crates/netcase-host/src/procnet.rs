//! Parsers for `/proc/net` counter files: `snmp`, `netstat`, `snmp6`, `softnet_stat`, `dev`,
//! `stat/nf_conntrack`, and the text of `conntrack -S`. Each takes the file body.
//!
//! Counter names follow `nstat`'s spelling with a dot: `TcpExt.ListenOverflows`,
//! `Udp.RcvbufErrors`, `Udp6.RcvbufErrors`.

use serde::Serialize;
use std::collections::BTreeMap;

/// Named counters, e.g. `TcpExt.ListenOverflows → 12`.
pub type CounterMap = BTreeMap<String, u64>;

/// Parses `/proc/net/snmp` or `/proc/net/netstat`: pairs of lines, names then values, both
/// prefixed with `Group:`. Negative values (Tcp MaxConn -1) are skipped. Returns the number of
/// lines that did not pair up.
pub fn parse_snmp_pairs(text: &str, out: &mut CounterMap) -> usize {
    let mut bad = 0;
    let mut lines = text.lines();
    while let Some(names) = lines.next() {
        let Some(values) = lines.next() else {
            bad += 1;
            break;
        };
        let (Some((g1, n)), Some((g2, v))) = (names.split_once(':'), values.split_once(':')) else {
            bad += 1;
            continue;
        };
        if g1 != g2 {
            bad += 1;
            continue;
        }
        for (name, value) in n.split_whitespace().zip(v.split_whitespace()) {
            if let Ok(x) = value.parse::<u64>() {
                out.insert(format!("{g1}.{name}"), x);
            }
        }
    }
    bad
}

/// Parses `/proc/net/snmp6` (`Udp6RcvbufErrors  3`) into `Udp6.RcvbufErrors`.
pub fn parse_snmp6(text: &str, out: &mut CounterMap) {
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(name), Some(value)) = (it.next(), it.next()) else { continue };
        let Ok(v) = value.parse::<u64>() else { continue };
        let key = match name.find('6') {
            Some(i) => format!("{}.{}", name.get(..=i).unwrap_or(name), name.get(i + 1..).unwrap_or("")),
            None => name.to_owned(),
        };
        out.insert(key, v);
    }
}

/// One CPU's line of `/proc/net/softnet_stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SoftnetCpu {
    /// CPU number (from the last column on new kernels, else the line index).
    pub cpu: u32,
    /// Packets processed by the receive softirq.
    pub processed: u64,
    /// Packets dropped because the backlog queue was full (netdev_max_backlog).
    pub dropped: u64,
    /// Times the softirq ran out of budget or time with work left.
    pub time_squeeze: u64,
    /// RPS inter-processor interrupts received.
    pub received_rps: u64,
    /// Flow-limit drops.
    pub flow_limit: u64,
}

/// Parses `/proc/net/softnet_stat` (hex columns, one line per online CPU).
pub fn parse_softnet(text: &str) -> Vec<SoftnetCpu> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<u64> = line.split_whitespace().map(|c| u64::from_str_radix(c, 16).unwrap_or(0)).collect();
        if cols.len() < 3 {
            continue;
        }
        let col = |k: usize| cols.get(k).copied().unwrap_or(0);
        let cpu = if cols.len() >= 13 { col(12) as u32 } else { i as u32 };
        out.push(SoftnetCpu {
            cpu,
            processed: col(0),
            dropped: col(1),
            time_squeeze: col(2),
            received_rps: col(9),
            flow_limit: col(10),
        });
    }
    out
}

/// One interface's line of `/proc/net/dev`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct DevStats {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errs: u64,
    pub rx_drop: u64,
    pub rx_fifo: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errs: u64,
    pub tx_drop: u64,
}

/// Parses `/proc/net/dev`.
pub fn parse_dev(text: &str) -> Vec<DevStats> {
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else { continue };
        let c: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
        let col = |k: usize| c.get(k).copied().unwrap_or(0);
        out.push(DevStats {
            name: name.trim().to_owned(),
            rx_bytes: col(0),
            rx_packets: col(1),
            rx_errs: col(2),
            rx_drop: col(3),
            rx_fifo: col(4),
            tx_bytes: col(8),
            tx_packets: col(9),
            tx_errs: col(10),
            tx_drop: col(11),
        });
    }
    out
}

/// Per-CPU conntrack statistics, column name → value (`insert_failed`, `drop`, ...).
pub type ConntrackCpu = BTreeMap<String, u64>;

/// Parses `/proc/net/stat/nf_conntrack`: a header of names, one hex line per CPU.
pub fn parse_nf_conntrack_stat(text: &str) -> Vec<ConntrackCpu> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Vec::new() };
    let names: Vec<&str> = header.split_whitespace().collect();
    lines
        .map(|l| {
            names
                .iter()
                .zip(l.split_whitespace())
                .filter(|(n, _)| **n != "entries")
                .filter_map(|(n, v)| u64::from_str_radix(v, 16).ok().map(|x| ((*n).to_owned(), x)))
                .collect()
        })
        .collect()
}

/// Parses `conntrack -S` (`cpu=0 found=0 insert_failed=3 drop=1 ...`).
pub fn parse_conntrack_s(text: &str) -> Vec<ConntrackCpu> {
    text.lines()
        .filter(|l| l.trim_start().starts_with("cpu="))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .filter(|(k, _)| *k != "cpu")
                .filter_map(|(k, v)| v.parse().ok().map(|x| (k.to_owned(), x)))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snmp_pairs() {
        let t = "Tcp: RtoAlgorithm MaxConn ActiveOpens\nTcp: 1 -1 5\nUdp: InDatagrams RcvbufErrors\nUdp: 10 3\n";
        let mut m = CounterMap::new();
        assert_eq!(parse_snmp_pairs(t, &mut m), 0);
        assert_eq!(m.get("Tcp.ActiveOpens"), Some(&5));
        assert_eq!(m.get("Udp.RcvbufErrors"), Some(&3));
        assert!(!m.contains_key("Tcp.MaxConn"));
        assert_eq!(parse_snmp_pairs("Tcp: A\n", &mut m), 1);
    }

    #[test]
    fn snmp6_names() {
        let mut m = CounterMap::new();
        parse_snmp6("Udp6RcvbufErrors \t 4\nIcmp6InMsgs 2\ngarbage\n", &mut m);
        assert_eq!(m.get("Udp6.RcvbufErrors"), Some(&4));
        assert_eq!(m.get("Icmp6.InMsgs"), Some(&2));
    }

    #[test]
    fn softnet_and_dev() {
        let s = parse_softnet("000321d8 00000002 00000001 0 0 0 0 0 0 00000005 0 0 00000001\n");
        assert_eq!(s[0].processed, 0x321d8);
        assert_eq!(s[0].dropped, 2);
        assert_eq!(s[0].received_rps, 5);
        assert_eq!(s[0].cpu, 1);
        let d = parse_dev("h1\nh2\n  lo: 10 2 0 1 0 0 0 0 10 2 0 0 0 0 0 0\n");
        assert_eq!(d[0].name, "lo");
        assert_eq!(d[0].rx_drop, 1);
    }

    #[test]
    fn conntrack_stats() {
        let p = parse_nf_conntrack_stat(
            "entries insert_failed drop\n0000000a 00000003 00000001\n0000000a 00000000 00000002\n",
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[0]["insert_failed"], 3);
        assert_eq!(p[1]["drop"], 2);
        let s = parse_conntrack_s("cpu=0   \tfound=0 insert_failed=4 drop=0\ncpu=1 insert_failed=1\n");
        assert_eq!(s[0]["insert_failed"], 4);
        assert_eq!(s[1]["insert_failed"], 1);
    }
}
