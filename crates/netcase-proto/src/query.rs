//! Filters, sorts and summaries over transaction tables, so that questions such as "which
//! addresses did this name get", "the largest TTL", "the response with the most answers",
//! "the slowest response", "the CDN behind a CNAME chain" are one call each.
//!
//! ```
//! # use netcase_proto::query::*;
//! # let txns: Vec<netcase_proto::DnsTxn> = Vec::new();
//! let f = DnsFilter { name: Some("example.com".into()), slow_ms: Some(100.0), ..DnsFilter::default() };
//! let mut rows = filter_dns(&txns, &f);
//! sort_dns(&mut rows, DnsSort::ResponseTime, true);
//! ```

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::dns::{DnsFlavor, DnsTxn};
use crate::http::HttpTxn;

/// Which DNS transactions to keep. Every set field must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsFilter {
    /// The question name equals this or ends with `.this` (case-insensitive); a leading `*`
    /// matches any substring instead (`*cdn`).
    pub name: Option<String>,
    /// The server's (or the client's) address.
    pub server: Option<IpAddr>,
    /// Response time at least this many ms, or unanswered.
    pub slow_ms: Option<f64>,
    /// Only unanswered queries.
    pub unanswered: bool,
    /// Only this response code.
    pub rcode: Option<u8>,
    /// Only this question type.
    pub qtype: Option<u16>,
    /// Include mDNS and LLMNR (default: unicast DNS only).
    pub multicast: bool,
}

/// Does `name` match the pattern (see [`DnsFilter::name`])?
pub fn name_matches(name: &str, pattern: &str) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    let p = pattern.trim_end_matches('.').to_ascii_lowercase();
    if p.contains('*') {
        return glob(n.as_bytes(), p.as_bytes());
    }
    n == p || n.ends_with(&format!(".{p}"))
}

/// `*` matches any run of characters (including none); everything else matches itself.
fn glob(name: &[u8], pat: &[u8]) -> bool {
    let (mut n, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if Some(c) == name.get(n) => {
                n += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat.get(p..).is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

impl DnsFilter {
    /// Whether `t` passes.
    pub fn matches(&self, t: &DnsTxn) -> bool {
        if !self.multicast && t.flavor != DnsFlavor::Dns {
            return false;
        }
        if let Some(p) = &self.name {
            if !t.name.as_deref().is_some_and(|n| name_matches(n, p)) {
                return false;
            }
        }
        if let Some(s) = self.server {
            if t.server.ip() != s && t.client.ip() != s {
                return false;
            }
        }
        if let Some(ms) = self.slow_ms {
            let slow = t.unanswered() || t.response_time_ms().is_some_and(|r| r >= ms);
            if !slow {
                return false;
            }
        }
        if self.unanswered && !t.unanswered() {
            return false;
        }
        if self.rcode.is_some() && t.rcode != self.rcode {
            return false;
        }
        if self.qtype.is_some_and(|q| q != t.qtype) {
            return false;
        }
        true
    }
}

/// Keeps the transactions that pass `f`, in their order.
pub fn filter_dns<'a>(txns: &'a [DnsTxn], f: &DnsFilter) -> Vec<&'a DnsTxn> {
    txns.iter().filter(|t| f.matches(t)).collect()
}

/// Sort keys for DNS rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsSort {
    /// First query time.
    Time,
    /// Response time (unanswered last in ascending order, first in descending).
    ResponseTime,
    /// Number of answer records.
    Answers,
    /// Largest answer TTL.
    MaxTtl,
    /// Question name.
    Name,
    /// Query attempts.
    Attempts,
}

impl std::str::FromStr for DnsSort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "time" => DnsSort::Time,
            "rtt" | "response-time" | "slow" => DnsSort::ResponseTime,
            "answers" => DnsSort::Answers,
            "ttl" => DnsSort::MaxTtl,
            "name" => DnsSort::Name,
            "attempts" => DnsSort::Attempts,
            _ => return Err(format!("unknown dns sort key '{s}' (time, rtt, answers, ttl, name, attempts)")),
        })
    }
}

/// Sorts rows by `key` (stable; ties keep time order).
pub fn sort_dns(rows: &mut [&DnsTxn], key: DnsSort, descending: bool) {
    rows.sort_by(|a, b| {
        let o = match key {
            DnsSort::Time => a.ts_ns.cmp(&b.ts_ns),
            DnsSort::ResponseTime => {
                let k = |t: &DnsTxn| t.response_time_ns.unwrap_or(if t.unanswered() { i64::MAX } else { -1 });
                k(a).cmp(&k(b))
            }
            DnsSort::Answers => a.answers.len().cmp(&b.answers.len()),
            DnsSort::MaxTtl => a.max_ttl().cmp(&b.max_ttl()),
            DnsSort::Name => a.name.cmp(&b.name),
            DnsSort::Attempts => a.attempts().cmp(&b.attempts()),
        };
        if descending {
            o.reverse()
        } else {
            o
        }
    });
}

/// Every address each name received, over all its answered transactions.
pub fn addresses_by_name(txns: &[DnsTxn]) -> BTreeMap<String, Vec<IpAddr>> {
    let mut m: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    for t in txns {
        let Some(n) = &t.name else { continue };
        let e = m.entry(n.to_ascii_lowercase()).or_default();
        for a in t.addresses() {
            if !e.contains(&a) {
                e.push(a);
            }
        }
    }
    m.retain(|_, v| !v.is_empty());
    m
}

/// Per-server DNS statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerStats {
    /// Server address.
    pub server: Option<IpAddr>,
    /// Transactions (queries seen).
    pub queries: u32,
    /// Answered.
    pub answered: u32,
    /// Unanswered.
    pub unanswered: u32,
    /// Transactions that needed more than one attempt.
    pub retried: u32,
    /// SERVFAIL answers.
    pub servfail: u32,
    /// NXDOMAIN answers.
    pub nxdomain: u32,
    /// Response-time percentiles, ms (p50, p90, p99, max).
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Slowest.
    pub max_ms: Option<f64>,
}

impl ServerStats {
    /// Share of SERVFAIL among answers.
    pub fn servfail_rate(&self) -> f64 {
        f64::from(self.servfail) / f64::from(self.answered.max(1))
    }
    /// Share of NXDOMAIN among answers.
    pub fn nxdomain_rate(&self) -> f64 {
        f64::from(self.nxdomain) / f64::from(self.answered.max(1))
    }
    /// Share of unanswered queries.
    pub fn unanswered_rate(&self) -> f64 {
        f64::from(self.unanswered) / f64::from(self.queries.max(1))
    }
}

/// The `p`-quantile (0..=1) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Statistics per unicast DNS server, by address.
pub fn dns_server_stats(txns: &[DnsTxn]) -> Vec<ServerStats> {
    let mut m: BTreeMap<IpAddr, (ServerStats, Vec<f64>)> = BTreeMap::new();
    for t in txns.iter().filter(|t| t.flavor == DnsFlavor::Dns && !t.query_frames.is_empty()) {
        let (s, rtts) = m.entry(t.server.ip()).or_default();
        s.server = Some(t.server.ip());
        s.queries += 1;
        if t.unanswered() {
            s.unanswered += 1;
        } else {
            s.answered += 1;
        }
        s.retried += u32::from(t.attempts() > 1);
        s.servfail += u32::from(t.rcode == Some(2));
        s.nxdomain += u32::from(t.rcode == Some(3));
        if let Some(ms) = t.response_time_ms() {
            rtts.push(ms);
        }
    }
    m.into_values()
        .map(|(mut s, mut r)| {
            r.sort_by(f64::total_cmp);
            s.p50_ms = percentile(&r, 0.5);
            s.p90_ms = percentile(&r, 0.9);
            s.p99_ms = percentile(&r, 0.99);
            s.max_ms = r.last().copied();
            s
        })
        .collect()
}

/// Which HTTP transactions to keep.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpFilter {
    /// Host header matches (as [`name_matches`]).
    pub host: Option<String>,
    /// Server (or client) address.
    pub server: Option<IpAddr>,
    /// Total time at least this many ms, or no response.
    pub slow_ms: Option<f64>,
    /// Status code.
    pub status: Option<u16>,
    /// URI contains this.
    pub uri: Option<String>,
}

impl HttpFilter {
    /// Whether `t` passes.
    pub fn matches(&self, t: &HttpTxn) -> bool {
        if let Some(h) = &self.host {
            if !t.host.as_deref().is_some_and(|v| name_matches(v.split(':').next().unwrap_or(v), h)) {
                return false;
            }
        }
        if let Some(s) = self.server {
            let hit = t.server.is_some_and(|a| a.ip() == s) || t.client.is_some_and(|a| a.ip() == s);
            if !hit {
                return false;
            }
        }
        if let Some(ms) = self.slow_ms {
            let slow = t.unanswered() || t.total_ns.is_some_and(|n| n as f64 / 1e6 >= ms);
            if !slow {
                return false;
            }
        }
        if self.status.is_some() && t.status != self.status {
            return false;
        }
        if let Some(u) = &self.uri {
            if !t.uri.as_deref().is_some_and(|v| v.contains(u.as_str())) {
                return false;
            }
        }
        true
    }
}

/// Keeps the HTTP transactions that pass `f`.
pub fn filter_http<'a>(txns: &'a [HttpTxn], f: &HttpFilter) -> Vec<&'a HttpTxn> {
    txns.iter().filter(|t| f.matches(t)).collect()
}

/// Sort keys for HTTP rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpSort {
    /// Request time.
    Time,
    /// Total time.
    Total,
    /// Time to first byte.
    FirstByte,
    /// Response body size.
    Size,
    /// Status.
    Status,
}

impl std::str::FromStr for HttpSort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "time" => HttpSort::Time,
            "total" | "slow" => HttpSort::Total,
            "ttfb" | "first-byte" => HttpSort::FirstByte,
            "size" => HttpSort::Size,
            "status" => HttpSort::Status,
            _ => return Err(format!("unknown http sort key '{s}' (time, total, ttfb, size, status)")),
        })
    }
}

/// Sorts HTTP rows by `key` (stable).
pub fn sort_http(rows: &mut [&HttpTxn], key: HttpSort, descending: bool) {
    rows.sort_by(|a, b| {
        let o = match key {
            HttpSort::Time => a.request_start_ts_ns.cmp(&b.request_start_ts_ns),
            HttpSort::Total => a.total_ns.cmp(&b.total_ns),
            HttpSort::FirstByte => a.ttfb_ns.cmp(&b.ttfb_ns),
            HttpSort::Size => a.resp_body_bytes.cmp(&b.resp_body_bytes),
            HttpSort::Status => a.status.cmp(&b.status),
        };
        if descending {
            o.reverse()
        } else {
            o
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob_patterns() {
        use super::name_matches;
        assert!(name_matches("video.google.com", "*google*"));
        assert!(name_matches("video.google.com", "*.google.com"));
        assert!(name_matches("video.google.com", "google.com"));
        assert!(!name_matches("video.google.com", "*yahoo*"));
        assert!(name_matches("a.b.c", "a*c"));
        assert!(!name_matches("a.b.c", "a*d"));
    }

    use super::*;

    #[test]
    fn names_and_percentiles() {
        assert!(name_matches("www.Example.com.", "example.com"));
        assert!(!name_matches("badexample.com", "example.com"));
        assert!(name_matches("a.cdn.net", "*cdn*"));
        assert!(!name_matches("a.cdn.net", "*cdn"));
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), Some(2.0));
        assert_eq!(percentile(&v, 0.99), Some(4.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
