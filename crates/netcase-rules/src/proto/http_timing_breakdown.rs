//! http-timing-breakdown: for slow HTTP transactions (and TLS connections), which phase took
//! the time — DNS lookup, TCP connect, TLS handshake, time to first byte, transfer — grouped
//! by server and slowest phase.

use super::{ms, ProtoEvidence, ProtoRules};
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use netcase_proto::{AppKind, Timing};
use std::collections::BTreeMap;
use std::net::SocketAddr;

struct Slow {
    total_ms: f64,
    phase_ms: f64,
    frame: Option<u64>,
    what: String,
    timing: Timing,
    /// A TLS connection whose requests are not visible (the phases then include the client's
    /// own pauses: a capture cannot tell server time from think time inside TLS).
    tls_only: bool,
}

/// A transaction this rule reads: one with a server and phases that add up to `slow_ms`.
pub(crate) fn slow_http(cfg: &ProtoRules, t: &netcase_proto::HttpTxn) -> bool {
    t.server.is_some() && t.timing().is_some_and(|tm| ms(tm.total_ns()) >= cfg.slow_ms)
}

/// A TLS connection this rule reads: phases that add up to `slow_ms`.
pub(crate) fn slow_tls(cfg: &ProtoRules, c: &netcase_proto::AppConn) -> bool {
    c.kind == AppKind::Tls && c.timing.as_deref().is_some_and(|tm| ms(tm.total_ns()) >= cfg.slow_ms)
}

pub(crate) fn check(cfg: &ProtoRules, ev: &ProtoEvidence<'_>, out: &mut Vec<Finding>) {
    let mut groups: BTreeMap<(SocketAddr, &'static str), Vec<Slow>> = BTreeMap::new();
    // `what` is only built for the slow ones.
    let mut add =
        |server: SocketAddr, timing: Timing, frame: Option<u64>, tls_only: bool, what: &dyn Fn() -> String| {
            let total = ms(timing.total_ns());
            if total < cfg.slow_ms {
                return;
            }
            let Some((phase, v)) = timing.slowest() else { return };
            groups.entry((server, phase)).or_default().push(Slow {
                total_ms: total,
                phase_ms: ms(v),
                frame,
                what: what(),
                timing,
                tls_only,
            });
        };
    for t in ev.http {
        let (Some(server), Some(timing)) = (t.server, t.timing()) else { continue };
        let what = || {
            format!(
                "{} {}{}",
                t.method.as_deref().unwrap_or("?"),
                t.host.as_deref().unwrap_or(""),
                t.uri.as_deref().unwrap_or("")
            )
        };
        add(server, timing, t.request_frame, false, &what);
    }
    for c in ev.conns.iter().filter(|c| c.kind == AppKind::Tls) {
        let Some(timing) = c.timing.as_deref().copied() else { continue };
        let what = || format!("TLS {}", c.tls.as_ref().and_then(|t| t.sni.as_deref()).unwrap_or_default());
        add(c.server, timing, c.tls.as_ref().and_then(|t| t.client_hello_frame), true, &what);
    }
    for ((server, phase), list) in groups {
        let mut phases: Vec<f64> = list.iter().map(|s| s.phase_ms).collect();
        phases.sort_by(f64::total_cmp);
        let median = phases.get(phases.len() / 2).copied().unwrap_or(0.0);
        let Some(worst) = list.iter().max_by(|a, b| a.total_ms.total_cmp(&b.total_ms)) else { continue };
        // Only phases a capture attributes soundly make a warning: the lookup, the handshake and
        // the wait between a whole request and its response's first byte. Inside TLS the
        // requests are invisible, so "first byte" and "handshake" include the client's own
        // pauses; a long transfer may be a streamed or long-poll response (the TCP findings
        // say whether the network limited it).
        let attributable = matches!(phase, "dns" | "connect" | "first_byte") && list.iter().any(|s| !s.tls_only);
        let sev = if worst.total_ms >= 5.0 * cfg.slow_ms && attributable { Severity::Warning } else { Severity::Info };
        let mut f = Finding::new(
            CaseId::HttpTimingBreakdown,
            sev,
            Subject::ServerPort { proto: "tcp", ip: Some(server.ip()), port: server.port() },
            format!(
                "{} slow transaction(s) to {server}: most time in {phase} (median {median:.0} ms); slowest {} took {:.0} ms",
                list.len(),
                worst.what,
                worst.total_ms
            ),
        )
        .with_measure("slow_transactions", list.len() as f64, "count")
        .with(Evidence::text(
            "attribution",
            if attributable {
                "request seen whole: the wait is the server's"
            } else if phase == "transfer" {
                "a long transfer can be a streamed or long-poll response: not necessarily slow"
            } else {
                "TLS without visible requests: client pauses and server time cannot be told apart"
            },
        ))
        .with(Evidence::text("slowest_phase", phase))
        .with_measure("phase_median_ms", median, "ms")
        .with_measure("slowest_total_ms", worst.total_ms, "ms")
        .with(Evidence::frames("requests", list.iter().filter_map(|s| s.frame).take(20).collect()));
        for (name, v) in worst.timing.phases() {
            if let Some(v) = v {
                f = f.with_measure(&format!("{name}_ms"), ms(v), "ms");
            }
        }
        let fix = match phase {
            "dns" => "name resolution is the slow part: check the resolver (see the DNS table, --slow), cache lookups",
            "connect" => {
                "TCP connect is slow: network path or an overloaded listener (accept/SYN queue); reuse connections"
            }
            "tls" => "the TLS handshake is slow: enable session resumption/TLS 1.3, keep connections alive",
            "first_byte" => "the server is slow to answer: look at the server/backend, not the network",
            _ => "the transfer is slow: bandwidth, loss or window limits (see the TCP findings)",
        };
        out.push(f.with_fix(fix));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{check_with, ProtoEvidence, ProtoRules};
    use netcase_model::CaseId;
    use netcase_proto::HttpTxn;

    const MS: i64 = 1_000_000;

    fn txn(ttfb_ms: i64) -> HttpTxn {
        HttpTxn {
            conn: Some(0),
            seq_on_conn: 1,
            server: Some("10.0.0.9:80".parse().unwrap()),
            method: Some("GET".into()),
            uri: Some("/x".into()),
            request_frame: Some(4),
            dns_ns: Some(2 * MS),
            connect_ns: Some(MS),
            ttfb_ns: Some(ttfb_ms * MS),
            response_start_ts_ns: Some(10 * MS),
            response_ts_ns: Some(13 * MS),
            ..HttpTxn::default()
        }
    }

    fn run(http: &[HttpTxn]) -> Vec<netcase_model::Finding> {
        check_with(&ProtoRules::default(), &ProtoEvidence { http, ..ProtoEvidence::default() })
            .into_iter()
            .filter(|f| f.case == CaseId::HttpTimingBreakdown)
            .collect()
    }

    #[test]
    fn slow_first_byte_is_named() {
        let f = run(&[txn(2_500)]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].text("slowest_phase"), Some("first_byte"));
        assert_eq!(f[0].measure("first_byte_ms"), Some(2500.0));
        assert_eq!(f[0].measure("dns_ms"), Some(2.0));
    }

    #[test]
    fn fast_transactions_are_silent() {
        assert!(run(&[txn(40)]).is_empty());
    }
}
