//! time-wait-pileup: the side that sends the first FIN keeps TIME_WAIT for 2MSL (60 s on
//! Linux). Per server port: who closes first, how fast connections churn, how many requests
//! each carried (a fixed cap such as exactly 100 is a server limit like nginx
//! keepalive_requests), `Connection: close`.

use std::collections::{BTreeMap, HashMap};

use netcase_flow::{ConnEnd, ConnSummary, Endpoint};
use netcase_model::{CaseId, Evidence, Finding, Severity};
use netcase_proto::HttpTxn;

use super::util::{quantile, round, secs, server_subject, sorted, FastMap, Samples};
use super::{Common, Role};

/// Requests and whether one asked for `Connection: close`, per TCP stream, folded from the
/// HTTP transactions as they finish: what time-wait-pileup reads of them.
#[derive(Debug, Default, Clone)]
pub struct StreamRequests(HashMap<u64, (u32, bool)>);

impl StreamRequests {
    /// One finished HTTP transaction.
    pub fn add(&mut self, t: &HttpTxn) {
        if let (true, Some(s)) = (t.has_request(), t.stream) {
            let e = self.0.entry(s).or_default();
            e.0 += 1;
            e.1 |= t.connection_close();
        }
    }

    /// Folded from a list.
    pub fn of(txns: &[HttpTxn]) -> Self {
        let mut r = StreamRequests::default();
        for t in txns {
            r.add(t);
        }
        r
    }
}

/// Linux holds TIME_WAIT for 60 s (TCP_TIMEWAIT_LEN, not tunable).
const TIME_WAIT_S: f64 = 60.0;
/// Connections closed first by one side that make a pile-up worth reporting on their own: at
/// 100 closes the capture shows a pattern, not an accident.
const MIN_CLOSES: u64 = 100;
/// Or fewer closes (≥ 20) at a churn of at least 5 per second (300 TIME_WAIT sockets at
/// steady state).
const MIN_CLOSES_CHURN: u64 = 20;
const MIN_CHURN_PER_S: f64 = 5.0;
/// A per-connection request cap: at least this many server-closed connections carrying the
/// same number of requests (≥ 2), making up 80 % of them.
const CAP_MIN_CONNS: usize = 5;
const CAP_SHARE: f64 = 0.8;
/// TIME_WAIT sockets (steady-state estimate) on a client that make the finding a warning: a
/// quarter of the default ephemeral range (32768–60999, 28,232 ports) per destination.
const CLIENT_TW_WARN: f64 = 7_000.0;
/// On a server (tcp_max_tw_buckets defaults to 262,144 on most machines; above that the
/// kernel destroys TIME_WAIT sockets early and logs it).
const SERVER_TW_WARN: f64 = 65_536.0;
/// Streams remembered per server port for the request-count lookup.
const MAX_STREAMS: usize = 4096;

#[derive(Debug, Default)]
struct Entry {
    conns: u64,
    by_client: u64,
    by_server: u64,
    resets: u64,
    first_ts: i64,
    last_ts: i64,
    server_closed: Vec<u32>,
    idle_s: Samples,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    by_server: FastMap<Endpoint, Entry>,
}

impl Agg {
    pub(super) fn closed(&mut self, c: &Common, s: Option<&ConnSummary>) {
        let closer = match s.map(|s| s.end) {
            Some(ConnEnd::Closed { initiator: side }) | Some(ConnEnd::HalfClosed { by: side }) => Some(c.role(side)),
            Some(ConnEnd::Reset { after_fin: true, .. }) | None => {
                // The first FIN decides who holds TIME_WAIT.
                match (c.fin[c.client.index()], c.fin[c.client.other().index()]) {
                    (Some(a), Some(b)) => Some(if a.0 <= b.0 { Role::Client } else { Role::Server }),
                    (Some(_), None) => Some(Role::Client),
                    (None, Some(_)) => Some(Role::Server),
                    (None, None) => None,
                }
            }
            _ => None,
        };
        // Only connections that carried something (a scan's SYNs are not churn).
        if c.synack.is_none() && !(c.sent_data[0] && c.sent_data[1]) {
            return;
        }
        let e = self.by_server.entry(c.server()).or_insert_with(|| Entry { first_ts: c.first_ts, ..Entry::default() });
        e.conns += 1;
        e.first_ts = e.first_ts.min(c.first_ts);
        e.last_ts = e.last_ts.max(c.last_ts);
        match closer {
            Some(Role::Client) => e.by_client += 1,
            Some(Role::Server) => {
                e.by_server += 1;
                if e.server_closed.len() < MAX_STREAMS {
                    e.server_closed.push(c.stream);
                }
                let fin = c.fin[c.side(Role::Server).index()].map_or(0, |x| x.0);
                let last = c.last_data_ts[0].max(c.last_data_ts[1]);
                if fin > 0 && last > 0 && fin >= last {
                    e.idle_s.push(secs(fin - last));
                }
            }
            None => {
                if c.rst.iter().any(Option::is_some) {
                    e.resets += 1;
                }
            }
        }
    }

    pub(super) fn finish(self, requests: &StreamRequests, out: &mut Vec<Finding>) {
        if self.by_server.is_empty() {
            return;
        }
        let per_stream = &requests.0;
        for (server, e) in sorted(self.by_server) {
            let (closer, n) =
                if e.by_server >= e.by_client { (Role::Server, e.by_server) } else { (Role::Client, e.by_client) };
            let span = secs(e.last_ts - e.first_ts).max(1.0);
            let churn = n as f64 / span;
            // Requests per server-closed connection.
            let reqs: Vec<f64> =
                e.server_closed.iter().filter_map(|s| per_stream.get(&u64::from(*s)).map(|x| f64::from(x.0))).collect();
            let closes_hdr =
                e.server_closed.iter().filter(|s| per_stream.get(&u64::from(**s)).is_some_and(|x| x.1)).count();
            let cap = request_cap(&reqs);
            let big = n >= MIN_CLOSES || (n >= MIN_CLOSES_CHURN && churn >= MIN_CHURN_PER_S);
            if !big && cap.is_none() {
                continue;
            }
            // What the capture shows: the closes of the last 60 s (all of them when the capture
            // is shorter) are in TIME_WAIT at its end; for a longer capture, the average number
            // of closes per 60 s. A steady state (closes/s × 60 s) is a projection, said as one.
            let tw = churn * TIME_WAIT_S;
            let observed = if span <= TIME_WAIT_S { n as f64 } else { tw };
            let warn = match closer {
                Role::Client => observed >= CLIENT_TW_WARN,
                Role::Server => observed >= SERVER_TW_WARN,
            };
            let sev = if warn { Severity::Warning } else { Severity::Info };
            let server_pct = 100.0 * e.by_server as f64 / e.conns.max(1) as f64;
            let why = if let Some(k) = cap {
                format!("the server ends each connection after exactly {k} requests (a per-connection request cap)")
            } else if !reqs.is_empty() && closes_hdr * 2 >= reqs.len() {
                "responses carry `Connection: close`".to_owned()
            } else if let Some(i) = e.idle_s.median().filter(|i| *i >= 0.5 && closer == Role::Server) {
                format!("the server closes connections idle for {i:.1} s")
            } else {
                "connections are not reused".to_owned()
            };
            let mut f = Finding::new(
                CaseId::TimeWaitPileup,
                sev,
                server_subject("tcp", server),
                format!(
                    "The {} closes first on {:.0} % of {} connections to {server}: {n} active closes in {:.1} s, so \
                     {} {:.0} sockets in TIME_WAIT on the {} (each stays {TIME_WAIT_S:.0} s){}: {why}.",
                    closer.as_str(),
                    100.0 * n as f64 / e.conns.max(1) as f64,
                    e.conns,
                    secs(e.last_ts - e.first_ts),
                    if span <= TIME_WAIT_S { "at the end of the capture" } else { "on average" },
                    observed,
                    closer.as_str(),
                    if tw > 1.5 * observed {
                        format!(
                            "; a projection, not an observation: sustained at {churn:.1} closes/s × {TIME_WAIT_S:.0} s \
                             the rate would hold about {tw:.0}"
                        )
                    } else {
                        String::new()
                    }
                ),
            )
            .with_measure("conns", e.conns as f64, "count")
            .with_measure("closed_by_server_pct", round(server_pct, 1), "%")
            .with_measure("closes_per_s", round(churn, 2), "per_s")
            .with_measure("time_wait_observed", observed.round(), "count")
            .with_measure("time_wait_projection", tw.round(), "count")
            .with(Evidence::text("closer", closer.as_str()));
            if let Some(m) = quantile(&reqs, 0.5) {
                f = f.with_measure("requests_per_conn", m, "count");
            }
            if let Some(k) = cap {
                f = f.with_measure("request_cap", f64::from(k), "count");
            }
            if !reqs.is_empty() {
                f = f.with_measure(
                    "connection_close_pct",
                    round(100.0 * closes_hdr as f64 / reqs.len() as f64, 1),
                    "%",
                );
            }
            let fix = match (closer, cap) {
                (Role::Server, Some(k)) => format!(
                    "Raise the server's per-connection request limit (nginx keepalive_requests, now {k}) or accept the \
                     churn; keep-alive on the client side avoids new connections per request."
                ),
                (Role::Server, None) => {
                    "Keep connections alive (no `Connection: close`, longer keep-alive timeout) so \
                                         the server does not close after each exchange; TIME_WAIT on a server costs \
                                         memory only, up to net.ipv4.tcp_max_tw_buckets."
                        .to_owned()
                }
                (Role::Client, _) => "Reuse connections (HTTP keep-alive, a connection pool); if churn must stay, \
                                      enable net.ipv4.tcp_tw_reuse=1 (with timestamps) and widen \
                                      net.ipv4.ip_local_port_range."
                    .to_owned(),
            };
            out.push(f.with_fix(fix));
        }
    }
}

/// The per-connection request cap, when most connections carried exactly the same number.
fn request_cap(reqs: &[f64]) -> Option<u32> {
    if reqs.len() < CAP_MIN_CONNS {
        return None;
    }
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for r in reqs {
        *counts.entry(*r as u32).or_default() += 1;
    }
    let (k, n) = counts.iter().max_by_key(|(k, n)| (**n, **k))?;
    (*k >= 2 && *n as f64 >= CAP_SHARE * reqs.len() as f64).then_some(*k)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    fn http_txn(stream: u64, close: bool) -> netcase_proto::HttpTxn {
        netcase_proto::HttpTxn {
            stream: Some(stream),
            method: Some("GET".into()),
            resp_connection: close.then(|| "close".into()),
            ..Default::default()
        }
    }

    #[test]
    fn server_closing_after_fixed_request_count() {
        let mut s = Script::new();
        let mut http = Vec::new();
        for i in 0..30u16 {
            let t0 = f64::from(i) * 0.1;
            let mut c = s.conn(43000 + i, 80);
            c.handshake(t0);
            for k in 0..4 {
                let t = t0 + 0.002 + f64::from(k) * 0.004;
                c.client_data(t, 100);
                c.server_data(t + 0.001, 400);
                c.client_ack(t + 0.0015);
                http.push(http_txn(u64::from(i), false));
            }
            c.server_fin(t0 + 0.05);
            c.client_fin(t0 + 0.0505);
            c.server_ack(t0 + 0.051);
        }
        let f = s.run_with(&http);
        let f = one(&f, CaseId::TimeWaitPileup);
        assert_eq!(f.text("closer"), Some("server"));
        assert_eq!(f.measure("request_cap"), Some(4.0));
        assert_eq!(f.measure("closed_by_server_pct"), Some(100.0));
        assert!(f.measure("closes_per_s").unwrap() > 5.0);
    }

    #[test]
    fn few_reused_connections_are_healthy() {
        let mut s = Script::new();
        for i in 0..3u16 {
            let t0 = f64::from(i) * 5.0;
            let mut c = s.conn(43000 + i, 80);
            c.handshake(t0);
            c.client_data(t0 + 0.01, 100);
            c.server_data(t0 + 0.02, 400);
            c.client_fin(t0 + 1.0);
            c.server_fin(t0 + 1.001);
            c.client_ack(t0 + 1.002);
        }
        none(&s.run(), CaseId::TimeWaitPileup);
    }
}
