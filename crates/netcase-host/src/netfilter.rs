//! Netfilter rules from `iptables-save` (parsed by [`parse_iptables_save`]) and a walk of the
//! nat chains: for a packet to `ip:port`, which rules it meets and where it ends up.
//!
//! The walk evaluates protocol, destination/source address, destination port and the jump
//! structure; matches it cannot evaluate (owner, mark, addrtype, ...) make a rule
//! "conditional": the walk assumes they match and says so.

use serde::Serialize;
use std::net::IpAddr;

/// A destination or source network (`10.0.0.0/8`), possibly negated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Net {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// `! -d`.
    pub negated: bool,
}

impl Net {
    fn parse(s: &str, negated: bool) -> Option<Net> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|x| *x <= max)?,
            None => max,
        };
        Some(Net { addr, prefix, negated })
    }

    /// Whether `ip` is in the network (honouring negation).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let inside = match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        };
        inside != self.negated
    }
}

/// One rule (`-A CHAIN ...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
    /// Table (`nat`, `filter`, ...).
    pub table: String,
    /// Chain.
    pub chain: String,
    /// The rule as iptables-save prints it.
    pub text: String,
    /// `-p` (lowercase), if given.
    pub proto: Option<String>,
    /// `-s`.
    pub src: Option<Net>,
    /// `-d`.
    pub dst: Option<Net>,
    /// `--dport` / `--dports` ranges (inclusive); empty = any.
    pub dports: Vec<(u16, u16)>,
    /// `-j` target or `-g` goto.
    pub target: Option<String>,
    /// `--to-ports` (REDIRECT) or the port of `--to-destination` (DNAT).
    pub to_port: Option<u16>,
    /// The address of `--to-destination` / `--to-source`.
    pub to_addr: Option<String>,
    /// `--random-fully` present.
    pub random_fully: bool,
    /// Matches the walk cannot evaluate (owner, mark, addrtype, interfaces, negated ports...).
    pub unevaluated: Vec<String>,
}

/// A chain's declaration (`:NAME POLICY [p:b]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chain {
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
    /// Table.
    pub table: String,
    /// Name.
    pub name: String,
    /// Policy (`ACCEPT`, `DROP`, `-` for user chains).
    pub policy: String,
}

/// A parsed ruleset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ruleset {
    /// Chains.
    pub chains: Vec<Chain>,
    /// Rules in order.
    pub rules: Vec<Rule>,
    /// Lines that did not parse.
    pub bad_lines: usize,
}

fn parse_ports(s: &str) -> Vec<(u16, u16)> {
    s.split(',')
        .filter_map(|p| match p.split_once(':') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => p.parse().ok().map(|x| (x, x)),
        })
        .collect()
}

/// Splits a rule line into words, honouring double quotes (comments).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Parses the output of `iptables-save` (or `ip6tables-save` with `family = "ipv6"`) into `rs`.
pub fn parse_iptables_save(text: &str, family: &'static str, rs: &mut Ruleset) {
    let mut table = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line == "COMMIT" {
            continue;
        }
        if let Some(t) = line.strip_prefix('*') {
            t.clone_into(&mut table);
            continue;
        }
        if let Some(c) = line.strip_prefix(':') {
            let mut it = c.split_whitespace();
            match (it.next(), it.next()) {
                (Some(name), Some(policy)) => rs.chains.push(Chain {
                    family,
                    table: table.clone(),
                    name: name.to_owned(),
                    policy: policy.to_owned(),
                }),
                _ => rs.bad_lines += 1,
            }
            continue;
        }
        let w = words(line);
        if w.first().map(String::as_str) != Some("-A") || w.len() < 2 {
            rs.bad_lines += 1;
            continue;
        }
        let mut r = Rule::new(family, &table, &w[1], line.to_owned());
        let mut i = 2;
        let mut neg = false;
        while i < w.len() {
            let opt = w[i].as_str();
            let val = w.get(i + 1).map(String::as_str);
            let mut used = 1;
            match (opt, val) {
                ("!", _) => {
                    neg = true;
                    i += 1;
                    continue;
                }
                ("-p", Some(v)) => {
                    if neg {
                        r.unevaluated.push(format!("! -p {v}"));
                    } else {
                        r.proto = Some(v.to_ascii_lowercase());
                    }
                    used = 2;
                }
                ("-s", Some(v)) => {
                    r.src = Net::parse(v, neg);
                    if r.src.is_none() {
                        r.unevaluated.push(format!("-s {v}"));
                    }
                    used = 2;
                }
                ("-d", Some(v)) => {
                    r.dst = Net::parse(v, neg);
                    if r.dst.is_none() {
                        r.unevaluated.push(format!("-d {v}"));
                    }
                    used = 2;
                }
                ("--dport" | "--dports" | "--destination-port", Some(v)) => {
                    if neg {
                        r.unevaluated.push(format!("! --dport {v}"));
                    } else {
                        r.dports = parse_ports(v);
                    }
                    used = 2;
                }
                ("-j" | "-g", Some(v)) => {
                    r.target = Some(v.to_owned());
                    used = 2;
                }
                ("--to-ports", Some(v)) => {
                    r.to_port = parse_ports(v).first().map(|p| p.0);
                    used = 2;
                }
                ("--to-destination" | "--to-source" | "--to", Some(v)) => {
                    // 10.0.0.1:8080, [::1]:80, 10.0.0.1-10.0.0.9:1000-2000
                    let (a, p) = match v.rsplit_once(':') {
                        Some((a, p)) if !a.is_empty() && (a.ends_with(']') || !a.contains(':')) => (a, Some(p)),
                        _ => (v, None),
                    };
                    r.to_addr = Some(a.trim_start_matches('[').trim_end_matches(']').to_owned());
                    r.to_port = p.and_then(|p| parse_ports(p).first().map(|x| x.0));
                    used = 2;
                }
                ("--random-fully", _) => r.random_fully = true,
                ("-m", Some(v)) => {
                    if !matches!(v, "tcp" | "udp" | "multiport" | "comment") {
                        r.unevaluated.push(format!("-m {v}"));
                    }
                    used = 2;
                }
                ("--comment", Some(_)) => used = 2,
                ("-i" | "-o", Some(v)) => {
                    r.unevaluated.push(format!("{opt} {v}"));
                    used = 2;
                }
                (o, Some(v)) if o.starts_with('-') && !v.starts_with('-') => used = 2,
                _ => {}
            }
            neg = false;
            i += used;
        }
        rs.rules.push(r);
    }
}

/// A packet description for [`Ruleset::walk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
}

/// Where a walk ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Chains and rule texts met that matched, in order (`nat/OUTPUT: -A OUTPUT ...`).
    pub path: Vec<String>,
    /// The final target (`REDIRECT`, `DNAT`, `ACCEPT`, policy ...).
    pub target: String,
    /// The rule that decided, if any.
    pub rule: Option<Rule>,
    /// Whether a deciding or jumping rule had matches the walk could not evaluate.
    pub conditional: bool,
}

impl Rule {
    /// A rule in `family`/`table`/`chain` printed as `text` that matches everything and has no
    /// target yet; parsers fill in what they read.
    pub fn new(family: &'static str, table: &str, chain: &str, text: String) -> Rule {
        Rule {
            family,
            table: table.to_owned(),
            chain: chain.to_owned(),
            text,
            proto: None,
            src: None,
            dst: None,
            dports: Vec::new(),
            target: None,
            to_port: None,
            to_addr: None,
            random_fully: false,
            unevaluated: Vec::new(),
        }
    }

    /// Whether the rule's evaluable matches accept `p`.
    pub fn matches(&self, p: &Packet) -> bool {
        if let Some(pr) = &self.proto {
            if pr != p.proto && pr != "all" {
                return false;
            }
        }
        if let Some(d) = &self.dst {
            if !d.contains(p.dst) {
                return false;
            }
        }
        if !self.dports.is_empty() && !self.dports.iter().any(|(a, b)| (*a..=*b).contains(&p.dport)) {
            return false;
        }
        true
    }
}

impl Ruleset {
    /// Walks `table`/`chain` for `p` (depth-limited), following jumps, gotos and RETURN.
    pub fn walk(&self, table: &str, chain: &str, p: &Packet) -> Verdict {
        let family = if p.dst.is_ipv4() { "ipv4" } else { "ipv6" };
        let mut v = Verdict { path: Vec::new(), target: String::new(), rule: None, conditional: false };
        if let Some(t) = self.walk_chain(family, table, chain, p, 0, &mut v) {
            v.target = t;
        } else {
            v.target = self
                .chains
                .iter()
                .find(|c| c.family == family && c.table == table && c.name == chain)
                .map_or_else(|| "ACCEPT".to_owned(), |c| c.policy.clone());
        }
        v
    }

    fn walk_chain(
        &self,
        family: &str,
        table: &str,
        chain: &str,
        p: &Packet,
        depth: u32,
        v: &mut Verdict,
    ) -> Option<String> {
        // Deeper nesting than this is a loop or pathological; stop there.
        if depth > 16 {
            return None;
        }
        for r in self.rules.iter().filter(|r| r.family == family && r.table == table && r.chain == chain) {
            if !r.matches(p) {
                continue;
            }
            let Some(target) = r.target.as_deref() else { continue };
            v.path.push(format!("{table}/{chain}: {}", r.text));
            if !r.unevaluated.is_empty() {
                v.conditional = true;
            }
            match target {
                "RETURN" => return None,
                "ACCEPT" | "DROP" | "REJECT" | "REDIRECT" | "DNAT" | "SNAT" | "MASQUERADE" => {
                    v.rule = Some(r.clone());
                    return Some(target.to_owned());
                }
                t if self.chains.iter().any(|c| c.family == family && c.table == table && c.name == t) => {
                    if let Some(res) = self.walk_chain(family, table, t, p, depth + 1, v) {
                        return Some(res);
                    }
                }
                _ => {} // LOG, MARK, CONNMARK...: non-terminating
            }
        }
        None
    }

    /// Rules of `table` whose target is one of `targets`.
    pub fn with_target<'a>(&'a self, table: &'a str, targets: &'a [&'a str]) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| r.table == table && r.target.as_deref().is_some_and(|t| targets.contains(&t)))
    }

    /// Whether `chain` is reachable from the built-in `from` chain of `table` (by jumps).
    pub fn reachable_from(&self, table: &str, from: &str, chain: &str) -> bool {
        let mut seen = vec![from.to_owned()];
        let mut i = 0;
        while let Some(c) = seen.get(i).cloned() {
            if c == chain {
                return true;
            }
            for r in self.rules.iter().filter(|r| r.table == table && r.chain == c) {
                if let Some(t) = &r.target {
                    if !seen.contains(t) && self.chains.iter().any(|ch| ch.table == table && &ch.name == t) {
                        seen.push(t.clone());
                    }
                }
            }
            i += 1;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVE: &str = "# Generated\n*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:SIDECAR - [0:0]\n-A OUTPUT -d 127.0.0.0/8 -j RETURN\n-A OUTPUT -p tcp -j SIDECAR\n-A SIDECAR -p tcp -m tcp --dport 80 -m comment --comment \"mesh out\" -j REDIRECT --to-ports 15001\n-A POSTROUTING -s 10.0.0.0/8 -o eth0 -j MASQUERADE\n-A PREROUTING -d 192.0.2.1/32 -p tcp --dport 443 -j DNAT --to-destination 10.1.1.1:8443\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j REJECT --reject-with tcp-reset\nCOMMIT\n";

    #[test]
    fn walks_nat_output_to_redirect() {
        let mut rs = Ruleset::default();
        parse_iptables_save(SAVE, "ipv4", &mut rs);
        assert_eq!(rs.bad_lines, 0);
        assert_eq!(rs.rules.len(), 6);
        let p = Packet { proto: "tcp", dst: "203.0.113.5".parse().unwrap(), dport: 80 };
        let v = rs.walk("nat", "OUTPUT", &p);
        assert_eq!(v.target, "REDIRECT");
        assert_eq!(v.rule.as_ref().unwrap().to_port, Some(15001));
        assert_eq!(v.path.len(), 2);
        let local = Packet { proto: "tcp", dst: "127.0.0.1".parse().unwrap(), dport: 80 };
        assert_eq!(rs.walk("nat", "OUTPUT", &local).target, "ACCEPT");
        let other = Packet { proto: "tcp", dst: "203.0.113.5".parse().unwrap(), dport: 81 };
        assert_eq!(rs.walk("nat", "OUTPUT", &other).target, "ACCEPT");
        let d = rs.walk("nat", "PREROUTING", &Packet { proto: "tcp", dst: "192.0.2.1".parse().unwrap(), dport: 443 });
        assert_eq!(d.target, "DNAT");
        let r = d.rule.unwrap();
        assert_eq!(r.to_addr.as_deref(), Some("10.1.1.1"));
        assert_eq!(r.to_port, Some(8443));
        let m: Vec<_> = rs.with_target("nat", &["MASQUERADE"]).collect();
        assert_eq!(m.len(), 1);
        assert!(!m[0].random_fully);
        assert!(rs.reachable_from("nat", "OUTPUT", "SIDECAR"));
    }

    #[test]
    fn garbage_is_counted() {
        let mut rs = Ruleset::default();
        parse_iptables_save("*nat\nnonsense\n-A\n:X\n-A OUTPUT -d 999.1.1.1 -j ACCEPT\n", "ipv4", &mut rs);
        assert_eq!(rs.bad_lines, 3);
        assert_eq!(rs.rules.len(), 1);
    }
}
