//! Rules over DNS/HTTP/TLS transactions from a capture ([`netcase_proto`]): one module per
//! case. Inputs are the plain transaction records, so tests and lab reproductions can build
//! them directly (`DnsTxn::new(..).answered(..)`, `HttpTxn { .. }`).

use netcase_model::Finding;
use netcase_proto::{AppConn, DnsTxn, HttpTxn};
use std::collections::BTreeMap;
use std::net::SocketAddr;

mod dns_conntrack_race_5s;
mod dns_id_collision;
mod dns_server_unresponsive;
mod http_204_content_length;
mod http_timing_breakdown;
mod resolver_order;

/// Thresholds of the proto rules.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtoRules {
    /// A and AAAA sent within this many ms of each other count as sent together.
    pub race_pair_window_ms: f64,
    /// A lookup this late (ms) is a resolver timeout, not a slow server.
    pub race_min_delay_ms: f64,
    /// Names that belong in /etc/hosts (besides `localhost`); the host collector fills it.
    pub hosts_names: Vec<String>,
    /// A transaction slower than this (ms, all phases) gets a timing breakdown.
    pub slow_ms: f64,
    /// A client idle this long (ms) after a 204/304 with a length is stalled.
    pub stall_ms: f64,
}

impl Default for ProtoRules {
    fn default() -> Self {
        ProtoRules {
            race_pair_window_ms: 10.0,
            race_min_delay_ms: 4_500.0,
            hosts_names: Vec::new(),
            slow_ms: 1_000.0,
            stall_ms: 1_000.0,
        }
    }
}

/// What the rules read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProtoEvidence<'a> {
    /// DNS transactions.
    pub dns: &'a [DnsTxn],
    /// HTTP transactions.
    pub http: &'a [HttpTxn],
    /// HTTP/TLS connections (`HttpTxn::conn` indexes them).
    pub conns: &'a [AppConn],
}

/// Every proto rule with default thresholds; findings sorted.
pub fn check(dns: &[DnsTxn], http: &[HttpTxn], conns: &[AppConn]) -> Vec<Finding> {
    check_with(&ProtoRules::default(), &ProtoEvidence { dns, http, conns })
}

/// Every proto rule with `cfg`; findings sorted.
pub fn check_with(cfg: &ProtoRules, ev: &ProtoEvidence<'_>) -> Vec<Finding> {
    let mut c = ProtoCheck::new(cfg.clone());
    for t in ev.http {
        c.http(t);
    }
    for a in ev.conns {
        c.conn(a);
    }
    c.finish(ev.dns)
}

/// Which connection a transaction belongs to: its stream, client and server.
type ConnKey = (Option<u64>, Option<SocketAddr>, Option<SocketAddr>);

/// The proto rules fed one transaction at a time, as they finish (the HTTP side), keeping only
/// what a rule can use: 204/304 responses that carry a length or a body (and, until their
/// connection ends, the client's next move after them) and slow transactions and TLS
/// connections. Memory follows those, not the number of transactions. The DNS rules read the
/// lookups at the end ([`ProtoCheck::finish`]).
#[derive(Debug)]
pub struct ProtoCheck {
    cfg: ProtoRules,
    /// Bodyless responses with a length or body, with the client's next move after each.
    bodyless: Vec<http_204_content_length::Bodyless>,
    /// Open connections with such responses → their indices in `bodyless`.
    waiting: BTreeMap<ConnKey, Vec<usize>>,
    slow_http: Vec<HttpTxn>,
    slow_tls: Vec<AppConn>,
}

impl ProtoCheck {
    /// A fold with thresholds `cfg`.
    pub fn new(cfg: ProtoRules) -> Self {
        ProtoCheck { cfg, bodyless: Vec::new(), waiting: BTreeMap::new(), slow_http: Vec::new(), slow_tls: Vec::new() }
    }

    /// One finished HTTP transaction (those of a connection in their order on it).
    pub fn http(&mut self, t: &HttpTxn) {
        let key = (t.stream, t.client, t.server);
        if let Some(list) = self.waiting.get(&key) {
            for &i in list {
                if let Some(b) = self.bodyless.get_mut(i) {
                    b.next_request(t);
                }
            }
        }
        if http_204_content_length::bodyless_with_length(t) {
            self.waiting.entry(key).or_default().push(self.bodyless.len());
            self.bodyless.push(http_204_content_length::Bodyless::new(t));
        }
        if http_timing_breakdown::slow_http(&self.cfg, t) {
            self.slow_http.push(t.clone());
        }
    }

    /// One finished HTTP or TLS connection (after its transactions).
    pub fn conn(&mut self, c: &AppConn) {
        if let Some(list) = self.waiting.remove(&(c.stream, Some(c.client), Some(c.server))) {
            for i in list {
                if let Some(b) = self.bodyless.get_mut(i) {
                    b.closed(c);
                }
            }
        }
        if http_timing_breakdown::slow_tls(&self.cfg, c) {
            self.slow_tls.push(c.clone());
        }
    }

    /// The findings, with the DNS lookups of the whole capture; sorted.
    pub fn finish(mut self, dns: &[DnsTxn]) -> Vec<Finding> {
        let cfg = &self.cfg;
        // In the order the transactions started, as the collected list is.
        self.bodyless.sort_by_key(|b| b.txn.order_key());
        self.slow_http.sort_by_key(HttpTxn::order_key);
        let ev = ProtoEvidence { dns, http: &self.slow_http, conns: &self.slow_tls };
        let mut out = Vec::new();
        dns_conntrack_race_5s::check(cfg, &ev, &mut out);
        dns_id_collision::check(cfg, &ev, &mut out);
        dns_server_unresponsive::check(cfg, &ev, &mut out);
        resolver_order::check(cfg, &ev, &mut out);
        http_204_content_length::check(cfg, &self.bodyless, &mut out);
        http_timing_breakdown::check(cfg, &ev, &mut out);
        Finding::settle(&mut out);
        out
    }
}

/// Nanoseconds to milliseconds.
pub(crate) fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

/// Up to `n` items of a list, for evidence samples.
pub(crate) fn sample<T: Clone>(v: &[T], n: usize) -> Vec<T> {
    v.iter().take(n).cloned().collect()
}

#[cfg(test)]
pub(crate) mod testutil {
    use netcase_proto::DnsTxn;
    use std::net::SocketAddr;

    pub(crate) fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }
    pub(crate) const MS: i64 = 1_000_000;
    pub(crate) fn q(port: u16, id: u16, name: &str, qtype: u16, frame: u64, t_ms: i64) -> DnsTxn {
        DnsTxn::new(sa(&format!("10.0.0.2:{port}")), sa("10.96.0.10:53"), id, name, qtype, frame, t_ms * MS)
    }
}
