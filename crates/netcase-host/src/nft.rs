//! Native nftables rules from `nft -j list ruleset`, mapped onto the iptables-shaped
//! [`Ruleset`] so that the same walk answers "where does a packet to ip:port go".
//!
//! Mapping: a base chain `type T hook H` becomes a chain `nft:FAMILY:TABLE:CHAIN` of table
//! `T` (`nat`, `filter`, `mangle` for `route`), entered from the built-in chain `H`
//! (`OUTPUT`, `PREROUTING`, ...) by a synthetic jump, ordered by priority after the
//! iptables rules of that hook; a base chain with policy drop ends in a synthetic DROP. Regular
//! chains take the table of every base chain that reaches them. Rules carrying an `xt`
//! expression are iptables-nft's own and already come from `iptables-save`; so do whole tables
//! that `iptables-save` listed under the same family and name.
//!
//! Evaluated matches: `ip/ip6 daddr` (address, prefix), `ip/ip6 saddr`, `tcp/udp dport`
//! (value, set, range), `meta l4proto`; anything else (`ct`, `meta skuid`, interfaces, maps)
//! is recorded as unevaluated, as for iptables matches the walk cannot judge.

use crate::netfilter::{Chain, Net, Rule, Ruleset};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Nesting a ruleset may not exceed while assigning chains to tables (loops, pathologies).
const MAX_JUMP_DEPTH: usize = 16;

#[derive(Debug, Clone)]
struct NftChain {
    family: String,
    table: String,
    name: String,
    /// (type, hook, prio, policy) for base chains.
    base: Option<(String, String, i64, String)>,
}

#[derive(Debug, Clone)]
struct NftRule {
    family: String,
    table: String,
    chain: String,
    expr: Vec<Value>,
}

fn families(f: &str) -> &'static [&'static str] {
    match f {
        "ip" => &["ipv4"],
        "ip6" => &["ipv6"],
        "inet" => &["ipv4", "ipv6"],
        _ => &[],
    }
}

fn chain_id(family: &str, table: &str, chain: &str) -> String {
    format!("nft:{family}:{table}:{chain}")
}

fn port(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|x| u16::try_from(x).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn ports(v: &Value) -> Option<Vec<(u16, u16)>> {
    if let Some(p) = port(v) {
        return Some(vec![(p, p)]);
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        return Some(vec![(port(r.first()?)?, port(r.get(1)?)?)]);
    }
    if let Some(set) = v.get("set").and_then(Value::as_array) {
        return set.iter().map(|e| ports(e).and_then(|p| p.first().copied())).collect();
    }
    None
}

fn net(v: &Value, negated: bool) -> Option<Net> {
    if let Some(s) = v.as_str() {
        let addr: IpAddr = s.parse().ok()?;
        return Some(Net { addr, prefix: if addr.is_ipv4() { 32 } else { 128 }, negated });
    }
    let p = v.get("prefix")?;
    let addr: IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
    let prefix = u8::try_from(p.get("len")?.as_u64()?).ok()?;
    Some(Net { addr, prefix, negated })
}

/// A short, readable form of a match's left side (`tcp dport`, `meta skuid`, `ct state`).
fn describe(left: &Value) -> String {
    if let Some(p) = left.get("payload") {
        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("?");
        let field = p.get("field").and_then(Value::as_str).unwrap_or("?");
        return format!("{proto} {field}");
    }
    if let Some(o) = left.as_object() {
        if let Some((k, v)) = o.iter().next() {
            let key = v.get("key").and_then(Value::as_str).unwrap_or("");
            return format!("{k} {key}").trim().to_owned();
        }
    }
    left.to_string()
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => v.to_string(),
    }
}

/// Converts one nft rule into a [`Rule`] for `family`; `jump_to` maps nft chain names of the
/// same table to their ids. `None` when the rule does not apply to `family`.
fn convert(
    r: &NftRule,
    family: &'static str,
    table: &str,
    chain: &str,
    jump_to: &BTreeMap<String, String>,
) -> Option<Rule> {
    let mut rule = Rule::new(family, table, chain, String::new());
    let mut text = Vec::new();
    for e in &r.expr {
        let Some((kind, body)) = e.as_object().and_then(|o| o.iter().next()) else { continue };
        match kind.as_str() {
            "match" => {
                let op = body.get("op").and_then(Value::as_str).unwrap_or("==");
                let left = body.get("left").unwrap_or(&Value::Null);
                let right = body.get("right").unwrap_or(&Value::Null);
                let what = describe(left);
                let negated = op == "!=";
                text.push(format!("{what}{} {}", if negated { " !=" } else { "" }, value_text(right)));
                let proto = left.get("payload").and_then(|p| p.get("protocol")).and_then(Value::as_str);
                let field = left.get("payload").and_then(|p| p.get("field")).and_then(Value::as_str);
                match (proto, field, op) {
                    (Some("ip"), Some(f @ ("daddr" | "saddr")), "==" | "!=") if family == "ipv4" => {
                        match net(right, negated) {
                            Some(n) if f == "daddr" => rule.dst = Some(n),
                            Some(n) => rule.src = Some(n),
                            None => rule.unevaluated.push(what),
                        }
                    }
                    (Some("ip6"), Some(f @ ("daddr" | "saddr")), "==" | "!=") if family == "ipv6" => {
                        match net(right, negated) {
                            Some(n) if f == "daddr" => rule.dst = Some(n),
                            Some(n) => rule.src = Some(n),
                            None => rule.unevaluated.push(what),
                        }
                    }
                    // An ip match in an inet table rules the other family out.
                    (Some("ip"), _, _) if family == "ipv6" => return None,
                    (Some("ip6"), _, _) if family == "ipv4" => return None,
                    (Some(p @ ("tcp" | "udp")), Some("dport"), "==") => {
                        rule.proto = Some(p.to_owned());
                        match ports(right) {
                            Some(v) => rule.dports = v,
                            None => rule.unevaluated.push(what),
                        }
                    }
                    (Some(p @ ("tcp" | "udp")), _, _) => {
                        rule.proto = Some(p.to_owned());
                        rule.unevaluated.push(what);
                    }
                    _ if left.get("meta").and_then(|m| m.get("key")).and_then(Value::as_str) == Some("l4proto")
                        && op == "==" =>
                    {
                        match right.as_str() {
                            Some(p) => rule.proto = Some(p.to_owned()),
                            None => rule.unevaluated.push(what),
                        }
                    }
                    _ => rule.unevaluated.push(what),
                }
            }
            "redirect" => {
                rule.target = Some("REDIRECT".into());
                rule.to_port = body.get("port").and_then(port);
                text.push(format!("redirect to :{}", rule.to_port.map_or_else(|| "?".into(), |p| p.to_string())));
            }
            "dnat" | "snat" => {
                rule.target = Some(kind.to_ascii_uppercase());
                rule.to_addr = body.get("addr").map(value_text);
                rule.to_port = body.get("port").and_then(port);
                text.push(format!(
                    "{kind} to {}{}",
                    rule.to_addr.as_deref().unwrap_or("?"),
                    rule.to_port.map(|p| format!(":{p}")).unwrap_or_default()
                ));
            }
            "masquerade" => {
                rule.target = Some("MASQUERADE".into());
                rule.random_fully = body.to_string().contains("fully-random");
                text.push("masquerade".into());
            }
            "reject" => {
                rule.target = Some("REJECT".into());
                text.push("reject".into());
            }
            "accept" | "drop" | "return" => {
                rule.target = Some(kind.to_ascii_uppercase());
                text.push(kind.clone());
            }
            "jump" | "goto" => {
                let t = body.get("target").and_then(Value::as_str).unwrap_or("");
                text.push(format!("{kind} {t}"));
                match jump_to.get(t) {
                    Some(id) => rule.target = Some(id.clone()),
                    None => rule.unevaluated.push(format!("{kind} {t}")),
                }
            }
            "counter" | "log" | "comment" | "limit" => {}
            "vmap" | "map" | "lookup" | "set" => {
                text.push(kind.clone());
                rule.unevaluated.push(kind.clone());
            }
            other => {
                text.push(other.to_owned());
                rule.unevaluated.push(other.to_owned());
            }
        }
    }
    rule.text = format!("[nft {} {} {}] {}", r.family, r.table, r.chain, text.join(" "));
    Some(rule)
}

/// The iptables table name of an nft base chain type.
fn table_of(ty: &str) -> &str {
    match ty {
        "route" => "mangle",
        t => t,
    }
}

/// Parses `nft -j list ruleset` into `rs`. `iptables_tables` are the (family, table) pairs
/// `iptables-save` already gave (`("ipv4", "nat")`): those nft tables are skipped. Returns the
/// nft tables seen (`"ip nat"`), or why the text did not parse.
pub fn parse_nft_json(
    text: &str,
    iptables_tables: &BTreeSet<(String, String)>,
    rs: &mut Ruleset,
) -> Result<Vec<String>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("nft -j: {e}"))?;
    let items = doc.get("nftables").and_then(Value::as_array).ok_or("nft -j: no \"nftables\" array")?;
    let mut tables = Vec::new();
    let mut chains: Vec<NftChain> = Vec::new();
    let mut rules: Vec<NftRule> = Vec::new();
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    for it in items {
        if let Some(t) = it.get("table") {
            if let (Some(f), Some(n)) = (s(t, "family"), s(t, "name")) {
                tables.push(format!("{f} {n}"));
            }
        } else if let Some(c) = it.get("chain") {
            let (Some(family), Some(table), Some(name)) = (s(c, "family"), s(c, "table"), s(c, "name")) else {
                continue;
            };
            let base = match (s(c, "type"), s(c, "hook")) {
                (Some(ty), Some(hook)) => Some((
                    ty,
                    hook,
                    c.get("prio").and_then(Value::as_i64).unwrap_or(0),
                    s(c, "policy").unwrap_or_else(|| "accept".into()),
                )),
                _ => None,
            };
            chains.push(NftChain { family, table, name, base });
        } else if let Some(r) = it.get("rule") {
            let (Some(family), Some(table), Some(chain)) = (s(r, "family"), s(r, "table"), s(r, "chain")) else {
                continue;
            };
            let expr = r.get("expr").and_then(Value::as_array).cloned().unwrap_or_default();
            if expr.iter().any(|e| e.get("xt").is_some()) {
                continue; // iptables-nft's own rule: read through iptables-save
            }
            rules.push(NftRule { family, table, chain, expr });
        }
    }
    let covered = |family: &str, table: &str| {
        families(family).iter().any(|f| iptables_tables.contains(&((*f).to_owned(), table.to_owned())))
    };
    // Which iptables-style tables each nft chain serves: every base chain's type, spread
    // along its jumps (bounded depth).
    let mut served: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    let jumps = |c: &NftChain| -> Vec<String> {
        rules
            .iter()
            .filter(|r| r.family == c.family && r.table == c.table && r.chain == c.name)
            .flat_map(|r| r.expr.iter())
            .filter_map(|e| e.get("jump").or_else(|| e.get("goto")))
            .filter_map(|j| j.get("target").and_then(Value::as_str).map(str::to_owned))
            .collect()
    };
    for b in chains.iter().filter(|c| c.base.is_some() && !covered(&c.family, &c.table)) {
        let Some((ty, ..)) = &b.base else { continue };
        let mut frontier = vec![b.name.clone()];
        for _ in 0..MAX_JUMP_DEPTH {
            let mut next = Vec::new();
            for name in frontier {
                let e = served.entry((b.family.clone(), b.table.clone(), name.clone())).or_default();
                if !e.insert(table_of(ty).to_owned()) {
                    continue;
                }
                if let Some(c) = chains.iter().find(|c| c.family == b.family && c.table == b.table && c.name == name) {
                    next.extend(jumps(c));
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
    }
    // Chains, then the synthetic hook jumps (by priority), then the rules.
    let mut bases: Vec<&NftChain> = chains.iter().filter(|c| c.base.is_some()).collect();
    bases.sort_by_key(|c| c.base.as_ref().map_or(0, |b| b.2));
    for c in &chains {
        let Some(ts) = served.get(&(c.family.clone(), c.table.clone(), c.name.clone())) else { continue };
        for &fam in families(&c.family) {
            for t in ts {
                rs.chains.push(Chain {
                    family: fam,
                    table: t.clone(),
                    name: chain_id(&c.family, &c.table, &c.name),
                    policy: "-".into(),
                });
            }
        }
    }
    for b in &bases {
        let Some((ty, hook, prio, _)) = &b.base else { continue };
        if !served.contains_key(&(b.family.clone(), b.table.clone(), b.name.clone())) {
            continue;
        }
        let (table, builtin) = (table_of(ty).to_owned(), hook.to_ascii_uppercase());
        for &fam in families(&b.family) {
            if !rs.chains.iter().any(|c| c.family == fam && c.table == table && c.name == builtin) {
                rs.chains.push(Chain {
                    family: fam,
                    table: table.clone(),
                    name: builtin.clone(),
                    policy: "ACCEPT".into(),
                });
            }
            let mut r = Rule::new(
                fam,
                &table,
                &builtin,
                format!("[nft {} {}] base chain {} (type {ty} hook {hook} priority {prio})", b.family, b.table, b.name),
            );
            r.target = Some(chain_id(&b.family, &b.table, &b.name));
            rs.rules.push(r);
        }
    }
    for c in &chains {
        let Some(ts) = served.get(&(c.family.clone(), c.table.clone(), c.name.clone())) else { continue };
        let jump_to: BTreeMap<String, String> = chains
            .iter()
            .filter(|o| o.family == c.family && o.table == c.table)
            .map(|o| (o.name.clone(), chain_id(&o.family, &o.table, &o.name)))
            .collect();
        let id = chain_id(&c.family, &c.table, &c.name);
        for &fam in families(&c.family) {
            for t in ts {
                for r in rules.iter().filter(|r| r.family == c.family && r.table == c.table && r.chain == c.name) {
                    if let Some(rule) = convert(r, fam, t, &id, &jump_to) {
                        rs.rules.push(rule);
                    }
                }
                if let Some((_, _, _, policy)) = &c.base {
                    if policy == "drop" {
                        let mut r =
                            Rule::new(fam, t, &id, format!("[nft {} {} {}] policy drop", c.family, c.table, c.name));
                        r.target = Some("DROP".into());
                        rs.rules.push(r);
                    }
                }
            }
        }
    }
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netfilter::Packet;

    /// `nft -j list ruleset` of a namespace (nft 1.0.6): a native table with a nat output chain
    /// (redirect, DNAT, a jump), a filter chain with reject, and iptables-nft's `ip nat`.
    const RULESET: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
      {"table": {"family": "ip", "name": "t", "handle": 1}},
      {"chain": {"family": "ip", "table": "t", "name": "out", "handle": 1, "type": "nat", "hook": "output", "prio": -100, "policy": "accept"}},
      {"chain": {"family": "ip", "table": "t", "name": "fil", "handle": 4, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}},
      {"chain": {"family": "ip", "table": "t", "name": "sub", "handle": 6}},
      {"rule": {"family": "ip", "table": "t", "chain": "out", "handle": 8, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}}}, {"return": null}]}},
      {"rule": {"family": "ip", "table": "t", "chain": "out", "handle": 7, "expr": [{"jump": {"target": "sub"}}]}},
      {"rule": {"family": "ip", "table": "t", "chain": "out", "handle": 3, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "192.0.2.1"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 443}}, {"dnat": {"addr": "10.1.1.1", "port": 8443}}]}},
      {"rule": {"family": "ip", "table": "t", "chain": "sub", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [80, 8080]}}}, {"counter": {"packets": 0, "bytes": 0}}, {"redirect": {"port": 15001}}]}},
      {"rule": {"family": "ip", "table": "t", "chain": "fil", "handle": 5, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"match": {"op": "==", "left": {"meta": {"key": "skuid"}}, "right": 0}}, {"reject": {"type": "tcp reset"}}]}},
      {"table": {"family": "ip", "name": "nat", "handle": 2}},
      {"chain": {"family": "ip", "table": "nat", "name": "OUTPUT", "handle": 1, "type": "nat", "hook": "output", "prio": -100, "policy": "accept"}},
      {"rule": {"family": "ip", "table": "nat", "chain": "OUTPUT", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 81}}, {"xt": {"type": "target", "name": "REDIRECT"}}]}}
    ]}"#;

    fn parsed() -> (Ruleset, Vec<String>) {
        let mut rs = Ruleset::default();
        let ipt: BTreeSet<(String, String)> = [("ipv4".to_owned(), "nat".to_owned())].into_iter().collect();
        let tables = parse_nft_json(RULESET, &ipt, &mut rs).expect("parses");
        (rs, tables)
    }

    #[test]
    fn native_rules_map_onto_the_walk() {
        let (rs, tables) = parsed();
        assert_eq!(tables, vec!["ip t".to_owned(), "ip nat".to_owned()]);
        // 1 hook jump + 3 rules (out) + 1 (sub) in nat; 1 hook jump + 1 rule in filter.
        assert_eq!(rs.rules.iter().filter(|r| r.table == "nat").count(), 5);
        assert_eq!(rs.rules.iter().filter(|r| r.table == "filter").count(), 2);
        assert!(rs.rules.iter().all(|r| !r.text.contains("81")), "iptables-nft's xt rule is skipped");
        let p = Packet { proto: "tcp", dst: "203.0.113.10".parse().unwrap(), dport: 8080 };
        let v = rs.walk("nat", "OUTPUT", &p);
        assert_eq!(v.target, "REDIRECT");
        assert_eq!(v.rule.as_ref().and_then(|r| r.to_port), Some(15001));
        assert_eq!(v.path.len(), 3, "{:?}", v.path);
        assert!(rs.reachable_from("nat", "OUTPUT", "nft:ip:t:sub"));
        let d = rs.walk("nat", "OUTPUT", &Packet { proto: "tcp", dst: "192.0.2.1".parse().unwrap(), dport: 443 });
        assert_eq!(d.target, "DNAT");
        assert_eq!(d.rule.as_ref().and_then(|r| r.to_addr.clone()).as_deref(), Some("10.1.1.1"));
        let local = rs.walk("nat", "OUTPUT", &Packet { proto: "tcp", dst: "127.0.0.1".parse().unwrap(), dport: 80 });
        assert_eq!(local.target, "ACCEPT", "loopback returns before the sidecar jump");
        let r = rs.walk("filter", "OUTPUT", &Packet { proto: "tcp", dst: "198.51.100.1".parse().unwrap(), dport: 22 });
        assert_eq!(r.target, "REJECT");
        assert!(r.conditional, "meta skuid is not evaluated");
        assert_eq!(r.rule.map(|r| r.unevaluated), Some(vec!["meta skuid".to_owned()]));
    }

    #[test]
    fn inet_tables_serve_both_families_and_drop_policy_ends_the_chain() {
        let text = r#"{"nftables": [
          {"chain": {"family": "inet", "table": "f", "name": "in", "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
          {"rule": {"family": "inet", "table": "f", "chain": "in", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"range": [8000, 8099]}}}, {"accept": null}]}}
        ]}"#;
        let mut rs = Ruleset::default();
        parse_nft_json(text, &BTreeSet::new(), &mut rs).expect("parses");
        for dst in ["192.0.2.1", "2001:db8::1"] {
            let ok = rs.walk("filter", "INPUT", &Packet { proto: "tcp", dst: dst.parse().unwrap(), dport: 8050 });
            assert_eq!(ok.target, "ACCEPT", "{dst}");
            let no = rs.walk("filter", "INPUT", &Packet { proto: "tcp", dst: dst.parse().unwrap(), dport: 9000 });
            assert_eq!(no.target, "DROP", "{dst}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        let mut rs = Ruleset::default();
        assert!(parse_nft_json("not json", &BTreeSet::new(), &mut rs).is_err());
        assert!(parse_nft_json("{\"x\": 1}", &BTreeSet::new(), &mut rs).is_err());
        assert!(rs.rules.is_empty());
    }
}
