//! Test scaffolding: a throw-away network namespace, removed on drop, and root detection.

#![allow(dead_code)]

use std::process::Command;
use std::sync::Mutex;

/// kfree_skb and the TCP tracepoints are host-wide: tests in one binary take turns.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// Whether the tests can trace (root). When not, tests print why and pass trivially.
pub fn can_trace() -> bool {
    let uid0 = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false);
    if !uid0 {
        eprintln!("skipped: needs root (perf_event_open, network namespaces)");
    }
    uid0
}

/// Runs a command, failing the test with its stderr when it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    assert!(out.status.success(), "{:?} failed: {}", args, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace `nct-<tag>-<pid>` with loopback up and `10.202.N.1/32` on it.
pub struct Netns {
    pub name: String,
    pub addr: std::net::Ipv4Addr,
}

impl Netns {
    pub fn new(tag: &str, subnet: u8) -> Netns {
        let name = format!("nct-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name, addr: std::net::Ipv4Addr::new(10, 202, subnet, 1) };
        sh(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &ns.name, "addr", "add", &format!("{}/32", ns.addr), "dev", "lo"]);
        ns
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", self.name.as_str()];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// Packet counter of the first rule of `chain` in the filter table (`iptables -L -v -x`).
    pub fn rule_packets(&self, chain: &str) -> u64 {
        let out = self.exec(&["iptables", "-L", chain, "-v", "-x", "-n"]);
        out.lines()
            .nth(2)
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no rule counter in {out}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// |a - b| within `pct` percent of `b`.
pub fn within(a: u64, b: u64, pct: f64) -> bool {
    (a as f64 - b as f64).abs() <= b as f64 * pct / 100.0
}
