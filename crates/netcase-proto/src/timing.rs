//! Phase breakdown of a transaction, like curl's `-w` timers: DNS lookup (when it is in the
//! capture), TCP connect, TLS handshake, time to first byte, transfer.
//!
//! For an HTTP transaction the lookup and the connect belong to the first request of a
//! connection only; later requests reuse both. The DNS phase is the most recent answered
//! lookup, before the connection opened, of the request's host (TLS: the SNI) that returned
//! the server's address.

use serde::Serialize;

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

/// A Host header or SNI as a lookup name: no port, no brackets, no trailing dot, lower case.
pub(crate) fn host_only(h: &str) -> String {
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
