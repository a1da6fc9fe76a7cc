//! http-204-content-length: a 204 (or 304) response that carries a non-zero Content-Length or
//! actual body bytes. Such responses have no body by rule; a client that believes the header
//! waits for bytes that never come until its timeout, then closes. netcase reports the
//! server, the header, and how long the client sat idle after the response.

use super::{ms, ProtoRules};
use netcase_model::{CaseId, Evidence, Finding, Severity, Subject};
use netcase_proto::{AppConn, HttpTxn};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A 204 with a non-zero Content-Length, or a 204/304 with body bytes.
pub(crate) fn bodyless_with_length(t: &HttpTxn) -> bool {
    match t.status {
        Some(204) => t.resp_content_length.unwrap_or(0) > 0 || t.unexpected_body_bytes > 0,
        Some(304) => t.unexpected_body_bytes > 0,
        _ => false,
    }
}

/// Such a response and the client's next move on its connection after it: its next request
/// or its FIN/RST.
#[derive(Debug, Clone)]
pub(crate) struct Bodyless {
    pub(crate) txn: HttpTxn,
    next_request: Option<i64>,
    close: Option<i64>,
}

impl Bodyless {
    pub(crate) fn new(t: &HttpTxn) -> Self {
        Bodyless { txn: t.clone(), next_request: None, close: None }
    }

    /// A later transaction on the same connection.
    pub(crate) fn next_request(&mut self, o: &HttpTxn) {
        if o.seq_on_conn > self.txn.seq_on_conn {
            if let Some(r) = o.request_start_ts_ns {
                self.next_request = Some(self.next_request.map_or(r, |n| n.min(r)));
            }
        }
    }

    /// The connection ended.
    pub(crate) fn closed(&mut self, c: &AppConn) {
        let Some(end) = self.txn.response_ts_ns else { return };
        self.close = [c.client_fin, c.client_rst].into_iter().flatten().map(|f| f.ts_ns).filter(|&x| x >= end).min();
    }

    /// ns from the end of the response to the client's next move.
    fn stall(&self) -> Option<i64> {
        let end = self.txn.response_ts_ns?;
        let next = match (self.next_request, self.close) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(next - end)
    }
}

pub(crate) fn check(cfg: &ProtoRules, found: &[Bodyless], out: &mut Vec<Finding>) {
    let mut by_server: BTreeMap<SocketAddr, Vec<(&HttpTxn, Option<i64>)>> = BTreeMap::new();
    for b in found {
        let Some(server) = b.txn.server else { continue };
        by_server.entry(server).or_default().push((&b.txn, b.stall()));
    }
    for (server, list) in by_server {
        let stalls: Vec<f64> = list.iter().filter_map(|x| x.1.map(ms)).collect();
        let max_stall = stalls.iter().copied().fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let stalled = max_stall.is_some_and(|s| s >= cfg.stall_ms);
        let first = list.first().map(|x| x.0);
        let header = first.and_then(|t| t.resp_content_length_header.as_deref()).unwrap_or("-").to_owned();
        let status = first.and_then(|t| t.status).unwrap_or(204);
        let body: u64 = list.iter().map(|x| x.0.unexpected_body_bytes).sum();
        let mut summary = format!(
            "{} {status} response(s) from {server} carried Content-Length: {header}{}",
            list.len(),
            if body > 0 { format!(" and {body} body bytes") } else { String::new() }
        );
        if let Some(s) = max_stall {
            summary.push_str(&format!("; the client then sat idle up to {:.1} s", s / 1e3));
        }
        let mut f = Finding::new(
            CaseId::Http204ContentLength,
            if stalled { Severity::Warning } else { Severity::Info },
            Subject::ServerPort { proto: "tcp", ip: Some(server.ip()), port: server.port() },
            summary,
        )
        .with_measure("responses", list.len() as f64, "count")
        .with(Evidence::text("content_length_header", header))
        .with_measure("unexpected_body_bytes", body as f64, "bytes")
        .with(Evidence::frames("responses", list.iter().filter_map(|x| x.0.response_frame).take(20).collect()));
        if let Some(s) = max_stall {
            f = f.with_measure("stall_ms", s, "ms");
        }
        if let Some(h) = first.and_then(|t| t.host.as_deref().map(str::to_owned)) {
            f = f.with(Evidence::text("host", h));
        }
        out.push(f.with_fix(
            "the server must send 204/304 without Content-Length (or with 0) and without a body; until it is fixed, \
             give the client a short read timeout for these calls",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{check_with, ProtoEvidence, ProtoRules};
    use netcase_model::{CaseId, Severity};
    use netcase_proto::{AppConn, AppKind, ConnEnd, FrameTs, HttpTxn};

    const MS: i64 = 1_000_000;

    fn txn(status: u16, cl: Option<u64>) -> HttpTxn {
        HttpTxn {
            conn: Some(0),
            seq_on_conn: 1,
            server: Some("10.0.0.9:80".parse().unwrap()),
            client: Some("10.0.0.2:50000".parse().unwrap()),
            method: Some("POST".into()),
            status: Some(status),
            resp_content_length: cl,
            resp_content_length_header: cl.map(|c| c.to_string().into()),
            request_start_ts_ns: Some(0),
            request_ts_ns: Some(0),
            response_frame: Some(5),
            response_ts_ns: Some(10 * MS),
            ..HttpTxn::default()
        }
    }

    fn conn(fin_ms: i64) -> AppConn {
        AppConn {
            kind: AppKind::Http,
            stream: None,
            client: "10.0.0.2:50000".parse().unwrap(),
            server: "10.0.0.9:80".parse().unwrap(),
            syn: None,
            synack: None,
            first_ts_ns: 0,
            last_ts_ns: fin_ms * MS,
            requests: 1,
            responses: 1,
            close_header_from: None,
            client_fin: Some(FrameTs { frame: 9, ts_ns: fin_ms * MS }),
            server_fin: None,
            client_rst: None,
            server_rst: None,
            end: ConnEnd::ClientFin,
            idle_before_close_ns: None,
            requests_after_server_fin: 0,
            unanswered_at_client_fin: 0,
            gaps: 0,
            upgraded: false,
            tls: None,
            timing: None,
        }
    }

    fn run(http: &[HttpTxn], conns: &[AppConn]) -> Vec<netcase_model::Finding> {
        check_with(&ProtoRules::default(), &ProtoEvidence { http, conns, ..ProtoEvidence::default() })
            .into_iter()
            .filter(|f| f.case == CaseId::Http204ContentLength)
            .collect()
    }

    #[test]
    fn no_content_with_length_and_client_stall() {
        let f = run(&[txn(204, Some(20))], &[conn(50_010)]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].measure("stall_ms"), Some(50_000.0));
        assert_eq!(f[0].text("content_length_header"), Some("20"));
    }

    #[test]
    fn clean_204_and_304_are_silent() {
        let mut not_modified = txn(304, Some(1234));
        not_modified.seq_on_conn = 2;
        let f = run(&[txn(204, None), txn(204, Some(0)), not_modified], &[conn(20)]);
        assert!(f.is_empty());
    }
}
