//! keepalive-race-502: the server closes an idle keep-alive connection (FIN) just as the
//! client (a proxy) sends a new request on it; the request crosses the FIN, the server answers
//! RST and the proxy reports 502. The server's idle-close intervals show its keep-alive timeout.

use netcase_flow::{AnalysisFlags as AF, Endpoint};
use netcase_model::{CaseId, Evidence, Finding, Severity};
use netcase_wire::tcp_flags::{ACK, FIN, RST};

use super::util::{pl, round, secs, seq_gt, sorted, FastMap, FlowGroup, FrameSample, Samples};
use super::RuleFrame;
use super::{Common, Role};

/// A request counts as sent on an idle connection when the connection was quiet this long
/// before it: keep-alive timeouts are seconds (nginx 75 s, Node 5 s, Go 90 s); a request
/// inside a busy exchange is not racing an idle close.
const MIN_IDLE_NS: i64 = 500_000_000;
/// Lost requests at which the finding is an error rather than a warning.
const ERROR_LOST: u64 = 10;
/// Idle-close intervals within 10 % (at least 100 ms) of the median count as one timeout.
const CLUSTER_REL: f64 = 0.10;
const CLUSTER_ABS_S: f64 = 0.1;

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    /// Start of the client's latest data burst after an idle gap: (frame, rel seq, time of
    /// the last data before it).
    burst: Option<(u64, u32, i64)>,
    /// The server's FIN came first: (ts, frame).
    server_fin: Option<(i64, u64)>,
    /// Server FIN to last data before it.
    idle_close_ns: Option<i64>,
    /// The client request that crossed the FIN: frame.
    race: Option<u64>,
    /// The server's RST after it: frame.
    lost: Option<u64>,
    /// The server closed by RST, not FIN.
    by_rst: bool,
}

impl State {
    /// The server reset an idle connection while a request was on its way (this case, not an
    /// SO_LINGER abort).
    pub(super) fn idle_reset_race(&self) -> bool {
        self.by_rst && self.lost.is_some()
    }

    #[inline]
    pub(super) fn frame(&mut self, c: &Common, f: &RuleFrame) {
        let from_client = f.side == c.client;
        if from_client {
            if f.len > 0 && !f.flags.intersects(AF::RETRANSMISSION | AF::KEEP_ALIVE) {
                if f.ts_ns - c.last_ts >= MIN_IDLE_NS {
                    self.burst = Some((f.frame, f.seq, c.last_data_ts[0].max(c.last_data_ts[1])));
                }
                if let Some((fin_ts, _)) = self.server_fin {
                    // Sent after the server's FIN was on the wire.
                    if f.ts_ns >= fin_ts && self.race.is_none() {
                        self.race = Some(f.frame);
                    }
                }
            }
            return;
        }
        // The server's close of an idle connection: a FIN, or a RST (an idle timer that
        // aborts, SO_LINGER 0, a middlebox's session timeout) — the same race for a request.
        let rst_close = f.tcp_flags & RST != 0 && self.server_fin.is_none() && !c.closing();
        if (f.tcp_flags & FIN != 0 || rst_close) && !c.closing() {
            self.server_fin = Some((f.ts_ns, f.frame));
            self.by_rst = rst_close;
            let mut last = c.last_data_ts[0].max(c.last_data_ts[1]);
            // A request in flight that the FIN does not acknowledge crossed it; the server was
            // idle since the data before that request.
            let ci = c.client.index();
            let si = c.client.other().index();
            if let Some((fr, seq, before)) = self.burst {
                // Not acknowledged by the close (a RST without ACK acknowledges nothing: then
                // the request is unanswered when the server sent nothing since it came).
                let unacked = if f.tcp_flags & ACK != 0 {
                    seq_gt(c.nxt[ci], f.ack) && !seq_gt(f.ack, seq)
                } else {
                    rst_close && c.last_data_ts[si] <= before
                };
                if c.sent_data[ci] && unacked {
                    self.race = Some(fr);
                    last = before;
                }
            }
            if c.sent_data.iter().any(|x| *x) && last > 0 {
                self.idle_close_ns = Some(f.ts_ns - last);
            }
            if rst_close && self.race.is_some() {
                // The reset itself killed the request in flight.
                self.lost = Some(f.frame);
            }
            return;
        }
        if f.tcp_flags & RST != 0 && self.race.is_some() && self.lost.is_none() && self.server_fin.is_some() {
            self.lost = Some(f.frame);
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    group: FlowGroup,
    idle_s: Samples,
    races: u64,
    lost: u64,
    /// Closes by RST rather than FIN.
    rst_closes: u64,
    frames: FrameSample,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    by_server: FastMap<Endpoint, Entry>,
}

impl Agg {
    pub(super) fn closed(&mut self, st: &State, c: &Common) {
        if st.server_fin.is_none() {
            return;
        }
        let e = self.by_server.entry(c.server()).or_default();
        if let Some(i) = st.idle_close_ns {
            e.idle_s.push(secs(i.max(0)));
        }
        if st.by_rst {
            e.rst_closes += 1;
        }
        // A race is with an *idle* close: a server that closes right after speaking (a
        // protocol-level goodbye) is not timing out idle connections.
        let idle_close = st.idle_close_ns.is_some_and(|i| i >= MIN_IDLE_NS);
        if let (Some(fr), true) = (st.race, idle_close) {
            e.group.add(c.stream, c.endpoint(Role::Client), c.server());
            e.races += 1;
            e.frames.push(fr);
            if let Some(r) = st.lost {
                e.lost += 1;
                e.frames.push(r);
            }
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for (server, e) in sorted(self.by_server) {
            if e.lost == 0 {
                continue;
            }
            let sev = if e.lost >= ERROR_LOST { Severity::Error } else { Severity::Warning };
            let idle = e.idle_s.median();
            let how = if e.rst_closes > 0 { format!(", {} of them by RST", e.rst_closes) } else { String::new() };
            let idle_txt = idle.map_or_else(String::new, |i| {
                format!(" It closes idle connections after {i:.2} s ({} closes seen{how}).", e.idle_s.len())
            });
            let mut f = Finding::new(
                CaseId::KeepaliveRace502,
                sev,
                e.group.subject("tcp", server),
                format!(
                    "{server} closed keep-alive connections while requests were on their way: {} crossed its close \
                     (FIN or RST) and {} answered by RST (lost; a proxy reports 502).{idle_txt}",
                    pl(e.races, "request", "requests"),
                    pl(e.lost, "was", "were"),
                ),
            )
            .with_measure("count", e.lost as f64, "count")
            .with_measure("requests_lost", e.lost as f64, "count")
            .with_measure("races", e.races as f64, "count")
            .with_measure("server_closes", e.idle_s.len() as f64, "count")
            .with_measure("server_resets", e.rst_closes as f64, "count");
            if let Some(i) = idle {
                let share = e.idle_s.share_near(i, (i * CLUSTER_REL).max(CLUSTER_ABS_S));
                f = f.with_measure("idle_timeout_s", round(i, 3), "s").with_measure(
                    "clustered_pct",
                    round(share * 100.0, 1),
                    "%",
                );
            }
            f = f.with(Evidence::text("closer", "server"));
            if let Some(ev) = e.frames.evidence("frames") {
                f = f.with(ev);
            }
            let fix = match idle {
                Some(i) => format!(
                    "Make the server's keep-alive timeout ({i:.0} s) longer than the client's or proxy's idle timeout \
                     (e.g. proxy 60 s, server 65 s) so the client always closes first; or let the client retry \
                     idempotent requests that fail this way."
                ),
                None => "Make the server's keep-alive timeout longer than the client's or proxy's idle timeout \
                         (e.g. proxy 60 s, server 65 s) so the client always closes first."
                    .to_owned(),
            };
            // What the capture shows happened (requests answered after the client gave up, or
            // lost to an idle close): observed, not inferred.
            out.push(f.with_confidence(netcase_model::Confidence::Certain, &[]).with_fix(fix));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    fn keepalive_conn(s: &mut Script, port: u16, t0: f64, race: bool) {
        let mut c = s.conn(port, 8080);
        c.handshake(t0);
        c.client_data(t0 + 0.01, 200);
        c.server_data(t0 + 0.02, 500);
        c.client_ack(t0 + 0.0205);
        if race {
            // The request leaves just before the server's idle FIN arrives: it crosses it.
            c.client_data(t0 + 5.0199, 200);
            let saved = c.c.nxt;
            c.c.nxt = c.c.nxt.wrapping_sub(200);
            c.server_fin(t0 + 5.02);
            c.c.nxt = saved;
            c.server_rst(t0 + 5.0201);
        } else {
            c.server_fin(t0 + 5.02);
            c.client_fin(t0 + 5.0205);
            c.server_ack(t0 + 5.021);
        }
    }

    #[test]
    fn request_crossing_idle_fin_is_reset() {
        let mut s = Script::new();
        for i in 0..6 {
            keepalive_conn(&mut s, 41000 + i, f64::from(i) * 10.0, i % 2 == 0);
        }
        let f = s.run();
        let f = one(&f, CaseId::KeepaliveRace502);
        assert_eq!(f.measure("requests_lost"), Some(3.0));
        assert!((f.measure("idle_timeout_s").unwrap() - 5.0).abs() < 0.01);
        assert_eq!(f.measure("server_closes"), Some(6.0));
    }

    /// A server (or a middlebox in front of it) that resets connections idle for 5 s: the
    /// requests sent just before the reset die with it.
    #[test]
    fn idle_reset_that_kills_requests_is_the_race() {
        let mut s = Script::new();
        for i in 0..6u16 {
            let t0 = f64::from(i) * 10.0;
            let mut c = s.conn(42000 + i, 8080);
            c.handshake(t0);
            c.client_data(t0 + 0.01, 200);
            c.server_data(t0 + 0.02, 500);
            c.client_ack(t0 + 0.0205);
            if i % 2 == 0 {
                c.client_data(t0 + 5.0199, 200);
                let saved = c.c.nxt;
                c.c.nxt = c.c.nxt.wrapping_sub(200);
                c.server_rst(t0 + 5.02);
                c.c.nxt = saved;
            } else {
                c.server_rst(t0 + 5.02);
            }
        }
        let all = s.run();
        let f = one(&all, CaseId::KeepaliveRace502);
        assert_eq!(f.measure("requests_lost"), Some(3.0));
        assert_eq!(f.measure("server_resets"), Some(6.0));
        assert!((f.measure("idle_timeout_s").unwrap() - 5.0).abs() < 0.01);
        assert_eq!(f.severity, netcase_model::Severity::Warning);
        // The resets that killed requests are this race, not SO_LINGER aborts; the other three
        // (nothing in flight) stay an info.
        let l = one(&all, CaseId::LingerZeroRst);
        assert_eq!(l.measure("count"), Some(3.0));
        assert_eq!(l.severity, netcase_model::Severity::Info);
    }

    #[test]
    fn idle_close_without_request_is_healthy() {
        let mut s = Script::new();
        for i in 0..6 {
            keepalive_conn(&mut s, 41000 + i, f64::from(i) * 10.0, false);
        }
        none(&s.run(), CaseId::KeepaliveRace502);
    }
}
