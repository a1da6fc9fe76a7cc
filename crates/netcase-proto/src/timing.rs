//! Phase breakdown of a transaction, like curl's `-w` timers: DNS lookup (when it is in the
//! capture), TCP connect, TLS handshake, time to first byte, transfer.
//!
//! For an HTTP transaction the lookup and the connect belong to the first request of a
//! connection only; later requests reuse both. The DNS phase is the most recent answered
//! lookup, before the connection opened, of the request's host (TLS: the SNI) that returned
//! the server's address.

use crate::text::FxMap;
use serde::Serialize;

use crate::conn::{AppConn, AppKind};
use crate::dns::{DnsFlavor, DnsTxn};
use crate::http::HttpTxn;

/// Durations of each phase, ns (`None`: not in the capture or not applicable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Timing {
    /// Name lookup.
    pub dns_ns: Option<i64>,
    /// SYN to SYN/ACK.
    pub connect_ns: Option<i64>,
    /// TLS handshake (ClientHello to the client's first encrypted record).
    pub tls_ns: Option<i64>,
    /// Request sent to the first response byte.
    pub ttfb_ns: Option<i64>,
    /// First to last response byte.
    pub transfer_ns: Option<i64>,
}

impl Timing {
    /// The phases with their names, in order.
    pub fn phases(&self) -> [(&'static str, Option<i64>); 5] {
        [
            ("dns", self.dns_ns),
            ("connect", self.connect_ns),
            ("tls", self.tls_ns),
            ("first_byte", self.ttfb_ns),
            ("transfer", self.transfer_ns),
        ]
    }
    /// The sum of the known phases, ns.
    pub fn total_ns(&self) -> i64 {
        self.phases().iter().filter_map(|p| p.1).sum()
    }
    /// The longest phase.
    pub fn slowest(&self) -> Option<(&'static str, i64)> {
        self.phases().into_iter().filter_map(|(n, v)| Some((n, v?))).max_by_key(|p| p.1)
    }
}

fn host_only(h: &str) -> String {
    let h = h.trim();
    let h = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if h.matches(':').count() == 1 {
        h.split(':').next().unwrap_or(h)
    } else {
        h
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// Fills `timing` on HTTP transactions and TLS connections.
pub(crate) fn fill(http: &mut [HttpTxn], conns: &mut [AppConn], dns: &[DnsTxn]) {
    let mut by_name: FxMap<String, Vec<&DnsTxn>> = FxMap::default();
    for t in dns {
        if t.flavor == DnsFlavor::Dns && t.response_frame.is_some() && !t.query_frames.is_empty() {
            if let Some(n) = &t.name {
                by_name.entry(n.trim_end_matches('.').to_ascii_lowercase()).or_default().push(t);
            }
        }
    }
    let lookup = |name: &str, c: &AppConn| -> Option<i64> {
        let start = c.syn.map_or(c.first_ts_ns, |s| s.ts_ns);
        let ip = c.server.ip();
        by_name
            .get(&host_only(name))?
            .iter()
            .filter(|t| t.response_ts_ns.is_some_and(|r| r <= start) && t.addresses().any(|a| a == ip))
            .max_by_key(|t| t.response_ts_ns)
            .and_then(|t| t.response_time_ns)
    };
    for t in http.iter_mut() {
        let Some(c) = t.conn.and_then(|i| conns.get(i as usize)) else { continue };
        if t.seq_on_conn == 1 {
            t.connect_ns = c.connect_ns();
            t.dns_ns = t.host.as_deref().and_then(|h| lookup(h, c));
        }
    }
    for c in conns.iter_mut() {
        if c.kind != AppKind::Tls {
            continue;
        }
        let Some(tls) = &c.tls else { continue };
        let tm = Timing {
            dns_ns: tls.sni.as_deref().and_then(|s| lookup(s, c)),
            connect_ns: c.connect_ns(),
            tls_ns: tls.handshake_ns(),
            ttfb_ns: match (tls.client_app_data_ts_ns, tls.server_app_data_ts_ns) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            },
            transfer_ns: None,
        };
        c.timing = Some(Box::new(tm));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_without_port() {
        assert_eq!(host_only("Example.com:8080"), "example.com");
        assert_eq!(host_only("[::1]:80"), "::1");
        assert_eq!(host_only("a.b."), "a.b");
    }

    #[test]
    fn slowest_phase() {
        let t = Timing { dns_ns: Some(5), connect_ns: Some(2), ttfb_ns: Some(9), ..Timing::default() };
        assert_eq!(t.slowest(), Some(("first_byte", 9)));
        assert_eq!(t.total_ns(), 16);
    }
}
