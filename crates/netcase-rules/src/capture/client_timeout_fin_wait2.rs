//! client-timeout-fin-wait2: the client sends a request, hears nothing for T, closes (FIN);
//! the server's late answer then reaches a closed socket and draws the client's RST. The
//! waits T of many connections cluster at the client's configured timeout.

use std::collections::BTreeMap;

use netcase_flow::{AnalysisFlags as AF, Endpoint};
use netcase_model::{CaseId, Finding, Severity};
use netcase_wire::tcp_flags::{FIN, RST};

use super::util::{pl, round, secs, seq_gt, FlowGroup, FrameSample, PeerSet, Samples};
use super::Common;
use super::RuleFrame;

/// Shortest wait counted as a timeout: client timeouts are set in hundreds of ms or more,
/// while a client that sends a last message and closes at once (`QUIT`, a one-way push) waits
/// a few ms at most.
const MIN_TIMEOUT_NS: i64 = 200_000_000;
/// Without a late answer, this many timed-out connections with clustered waits are needed:
/// one closed-before-answer connection alone can be a client that simply gave up.
const MIN_CLUSTERED: u64 = 3;
/// Share of waits within the tolerance of the median for them to count as one timeout value.
const CLUSTER_SHARE: f64 = 0.6;
/// Server data this soon after the client's FIN (2 round trips, at least 20 ms) is the server
/// reacting to the FIN (a TLS close_notify, an HTTP/2 GOAWAY), not a late answer.
const REACTION_RTTS: i64 = 2;
const REACTION_MIN_NS: i64 = 20_000_000;
/// Tolerance around the median: 10 % (timer granularity, scheduling) but at least 50 ms.
const CLUSTER_REL: f64 = 0.10;
const CLUSTER_ABS_S: f64 = 0.05;

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    /// The client's unanswered request: (first byte ts, frame).
    pending: Option<(i64, u64)>,
    /// The client's FIN while a request was pending: (wait ns, FIN frame, request ts).
    timed_out: Option<(i64, u64, i64)>,
    /// The FIN's time, and whether the server had acknowledged the pending request by then.
    fin_ts: i64,
    request_acked: bool,
    /// Server data after that FIN: (delay from the request, frame).
    late: Option<(i64, u64)>,
    /// The client answered the late data with RST.
    rst: Option<u64>,
    /// The pending request was retransmitted: the server got it late through loss, so a
    /// "late" answer measures the loss, not the server.
    request_retransmitted: bool,
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, c: &Common, f: &RuleFrame) {
        let from_client = f.side == c.client;
        let client_i = c.client.index();
        if from_client {
            if f.len > 0 && c.fin[client_i].is_none() && self.pending.is_none() {
                self.pending = Some((f.ts_ns, f.frame));
                self.request_retransmitted = false;
            }
            if f.len > 0 && self.pending.is_some() && f.flags.intersects(AF::RETRANSMISSION) {
                self.request_retransmitted = true;
            }
            if f.tcp_flags & FIN != 0 && !c.closing() {
                if let Some((t0, _)) = self.pending {
                    self.timed_out = Some((f.ts_ns - t0, f.frame, t0));
                    self.fin_ts = f.ts_ns;
                    let si = c.client.other().index();
                    self.request_acked = c.acked[si] && !seq_gt(c.nxt[client_i], c.ack[si]);
                }
            }
            if f.tcp_flags & RST != 0 && self.late.is_some() && self.rst.is_none() {
                self.rst = Some(f.frame);
            }
        } else if f.len > 0 && !f.flags.intersects(AF::KEEP_ALIVE) {
            match self.timed_out {
                Some((_, _, t0)) => {
                    let reaction = (REACTION_RTTS * c.rtt()).max(REACTION_MIN_NS);
                    if self.late.is_none() && f.ts_ns - self.fin_ts > reaction {
                        self.late = Some((f.ts_ns - t0, f.frame));
                    }
                }
                None => self.pending = None,
            }
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    group: FlowGroup,
    waits_s: Samples,
    /// Waits of timed-out requests the server had acknowledged (alive, just slow).
    acked_waits: u64,
    late_s: Samples,
    rst: u64,
    clients: PeerSet,
    frames: FrameSample,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    by_server: BTreeMap<Endpoint, Entry>,
}

impl Agg {
    pub(super) fn closed(&mut self, st: &State, c: &Common) {
        let Some((wait, fin_frame, _)) = st.timed_out else { return };
        if wait < MIN_TIMEOUT_NS {
            return;
        }
        let e = self.by_server.entry(c.server()).or_default();
        e.group.add(c.stream, c.client_ep(), c.server());
        e.waits_s.push(secs(wait));
        e.acked_waits += u64::from(st.request_acked);
        e.clients.insert(c.client_ep().addr);
        e.frames.push(fin_frame);
        if let Some((d, fr)) = st.late.filter(|_| !st.request_retransmitted) {
            e.late_s.push(secs(d));
            e.frames.push(fr);
        }
        if let Some(fr) = st.rst.filter(|_| !st.request_retransmitted) {
            e.rst += 1;
            e.frames.push(fr);
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for (server, e) in self.by_server {
            let n = e.waits_s.len();
            let Some(t) = e.waits_s.median() else { continue };
            let tol = (t * CLUSTER_REL).max(CLUSTER_ABS_S);
            let share = e.waits_s.share_near(t, tol);
            let late = e.late_s.len();
            if late == 0 && (n < MIN_CLUSTERED || share < CLUSTER_SHARE || e.acked_waits < MIN_CLUSTERED) {
                continue;
            }
            // Without the server's late answer the capture shows only that the client closed
            // after a wait: a client that simply closes on a timer (a health check, a test
            // harness) looks the same. Only late answers prove a slow server, and an error
            // needs many of them.
            let sev = if late >= 10 {
                Severity::Error
            } else if late > 0 {
                Severity::Warning
            } else {
                Severity::Info
            };
            let late_txt = match e.late_s.median() {
                Some(d) => format!(
                    "; the server answered {} late (median {:.2} s after the request){}",
                    pl(late, "time", "times"),
                    d,
                    if e.rst > 0 { " and the client answered with RST" } else { "" }
                ),
                None => String::new(),
            };
            let mut f = Finding::new(
                CaseId::ClientTimeoutFinWait2,
                sev,
                e.group.subject("tcp", server),
                format!(
                    "{} from {} to {server} closed after waiting {:.2} s for an answer (the client's timeout){late_txt}.",
                    pl(n, "client connection", "client connections"),
                    pl(e.clients.len() as u64, "peer", "peers"),
                    t
                ),
            )
            .with_measure("count", n as f64, "count")
            .with_measure("connections", n as f64, "count")
            .with_measure("timeout_s", round(t, 3), "s")
            .with_measure("clustered_pct", round(share * 100.0, 1), "%")
            .with_measure("late_responses", late as f64, "count")
            .with_measure("rst", e.rst as f64, "count")
            .with_measure("peers", e.clients.len() as f64, "count");
            if let Some(d) = e.late_s.median() {
                f = f.with_measure("late_response_delay_s", round(d, 3), "s");
            }
            f = f.with(netcase_model::Evidence::text("peers", e.clients.text(8)));
            if let Some(ev) = e.frames.evidence("frames") {
                f = f.with(ev);
            }
            // What the capture shows happened (requests answered after the client gave up, or
            // lost to an idle close): observed, not inferred.
            out.push(f.with_confidence(netcase_model::Confidence::Certain, &[]).with_fix(match e.late_s.max() {
                Some(m) => format!(
                    "Raise the client's timeout above the server's real latency (the server answered after up to \
                     {m:.2} s), or make the server answer within {t:.1} s; the client holds FIN_WAIT2 and the server \
                     CLOSE_WAIT until then."
                ),
                None => format!(
                    "Check whether the client closes on a {t:.1} s timer by design (a health check, a test harness) \
                     or gives up on a slow server: the server's answer, which would tell, is not in the capture."
                ),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    /// Request at 0, no answer, client FIN at `timeout`, late answer at `answer`, RST.
    fn timed_out_conn(s: &mut Script, port: u16, t0: f64, timeout: f64, answer: f64) {
        let mut c = s.conn(port, 8080);
        c.handshake(t0);
        c.client_data(t0 + 0.01, 120);
        c.server_ack(t0 + 0.0105);
        c.client_fin(t0 + 0.01 + timeout);
        c.server_ack(t0 + 0.0105 + timeout);
        c.server_data(t0 + 0.01 + answer, 300);
        c.client_rst(t0 + 0.0105 + answer);
    }

    #[test]
    fn late_response_after_fin_draws_rst() {
        let mut s = Script::new();
        for i in 0..5 {
            timed_out_conn(&mut s, 40000 + i, f64::from(i) * 10.0, 2.0, 3.2);
        }
        let f = s.run();
        let f = one(&f, CaseId::ClientTimeoutFinWait2);
        assert_eq!(f.measure("count"), Some(5.0));
        assert!((f.measure("timeout_s").unwrap() - 2.0).abs() < 0.01);
        assert!((f.measure("late_response_delay_s").unwrap() - 3.2).abs() < 0.01);
        assert_eq!(f.measure("connections"), Some(5.0));
        assert_eq!(f.measure("rst"), Some(5.0));
    }

    #[test]
    fn answered_requests_are_healthy() {
        let mut s = Script::new();
        for i in 0..5 {
            let t0 = f64::from(i) * 10.0;
            let mut c = s.conn(40000 + i, 8080);
            c.handshake(t0);
            c.client_data(t0 + 0.01, 120);
            c.server_data(t0 + 3.2, 300);
            c.client_ack(t0 + 3.2005);
            c.client_fin(t0 + 3.3);
            c.server_fin(t0 + 3.3005);
            c.client_ack(t0 + 3.301);
        }
        let f = s.run();
        none(&f, CaseId::ClientTimeoutFinWait2);
    }
}
