//! accept-queue-overflow and syn-queue-overflow, from the handshake.
//!
//! * Accept queue full, `tcp_abort_on_overflow=0`: the server drops the client's final ACK,
//!   stays in SYN_RECV and retransmits its SYN/ACK *after* the client's ACK; the client's first
//!   data is retransmitted before the server acknowledges any of it. With `=1` the server
//!   answers the final ACK with RST at once.
//! * SYN queue full (or SYNs dropped while the accept queue is full): the client's SYN goes
//!   unanswered and is retransmitted (1 s, then 2 s, 4 s… on Linux) while the same server port
//!   answers other SYNs, so it is listening and alive.

use netcase_flow::{AnalysisFlags as AF, Endpoint, FrameAnalysis};
use netcase_model::{CaseId, Evidence, Finding, Severity};
use netcase_wire::tcp_flags::{ACK, FIN, RST, SYN};

use super::util::{pl, round, secs, server_subject, sorted, FastMap, FrameSample, PeerSet, Samples};
use super::{Common, Role};

/// Connections with dropped SYNs needed on a server port that answers other SYNs: one or two
/// SYN retransmissions can be plain loss on the path; queue drops come in bursts.
const SYNQ_MIN_CONNS: u64 = 3;
/// A server RST this soon after the client's handshake ACK (and no server data) is the
/// abort_on_overflow answer: at the server it is immediate; at the client it follows one
/// round trip, so the bound is 2 × RTT with a floor of 10 ms for scheduling noise.
const RST_AFTER_ACK_FLOOR_NS: i64 = 10_000_000;
/// Connections with an accept-queue sign needed on one server port: a lost handshake ACK or a
/// lost first data segment on a lossy path looks the same once or twice; overflow drops come
/// in bursts.
const ACCEPT_MIN_CONNS: u64 = 3;
/// A SYN/ACK repeated sooner than this after the previous one is a duplicate in the capture
/// (two capture points, VLAN copies), not the server's SYN/ACK timer (1 s on Linux).
const SYNACK_RETRY_MIN_NS: i64 = 200_000_000;
/// Share of a port's connections affected above which the finding is an error.
const ERROR_SHARE: f64 = 0.10;

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    syns: u16,
    first_syn_ts: i64,
    first_retry_ns: Option<i64>,
    syn_retry_frame: Option<u64>,
    synacks: u16,
    last_synack_ts: i64,
    /// SYN/ACK retransmitted after the client's ACK (the ACK was dropped).
    synack_after_ack: Option<u64>,
    /// Client data retransmitted before the server acknowledged any client data.
    client_retrans: Option<u64>,
    /// Server RST right after the handshake ACK, no server data.
    pub(super) rst_after_ack: Option<u64>,
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, c: &Common, f: &FrameAnalysis<'_>) {
        let fl = f.tcp_flags;
        let from_client = f.side == c.client;
        if fl & SYN != 0 {
            if fl & ACK == 0 && from_client {
                self.syns = self.syns.saturating_add(1);
                if self.syns == 1 {
                    self.first_syn_ts = f.ts_ns;
                } else if self.syns == 2 && c.synack.is_none() {
                    self.first_retry_ns = Some(f.ts_ns - self.first_syn_ts);
                    self.syn_retry_frame = Some(f.frame);
                }
            } else if fl & ACK != 0 && !from_client {
                self.synacks = self.synacks.saturating_add(1);
                if c.hs_ack.is_some()
                    && self.synack_after_ack.is_none()
                    && !c.sent_data[f.side.index()]
                    && f.ts_ns - self.last_synack_ts >= SYNACK_RETRY_MIN_NS
                {
                    self.synack_after_ack = Some(f.frame);
                }
                self.last_synack_ts = f.ts_ns;
            }
            return;
        }
        if from_client {
            let si = f.side.other().index();
            let server_acked_data = c.acked[si] && c.ack[si] > 1;
            if f.len > 0
                && f.flags.intersects(AF::RETRANSMISSION)
                && c.synack.is_some()
                && !server_acked_data
                && !c.sent_data[si]
                && self.client_retrans.is_none()
            {
                self.client_retrans = Some(f.frame);
            }
        } else if fl & RST != 0 && self.rst_after_ack.is_none() && !c.closing() && !c.sent_data[f.side.index()] {
            if let Some(a) = c.hs_ack {
                let bound = (2 * c.rtt()).max(RST_AFTER_ACK_FLOOR_NS);
                if f.ts_ns - a <= bound && fl & FIN == 0 {
                    self.rst_after_ack = Some(f.frame);
                }
            }
        }
    }

    /// The server's own sign (a repeated SYN/ACK after the client's ACK, or a RST right after
    /// it); client data retransmitted before the server's ACK alone is ordinary loss.
    fn accept_sign(&self) -> bool {
        self.synack_after_ack.is_some() || self.rst_after_ack.is_some()
    }
}

#[derive(Debug, Default)]
struct Entry {
    conns: u64,
    answered: u64,
    // SYN queue.
    syn_dropped_conns: u64,
    dropped_syns: u64,
    unanswered: u64,
    retry_s: Samples,
    syn_frames: FrameSample,
    // Accept queue.
    accept_conns: u64,
    synack_after_ack: u64,
    client_retrans: u64,
    rst_after_ack: u64,
    accept_frames: FrameSample,
    clients: PeerSet,
    first_ts: i64,
    last_ts: i64,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    by_server: FastMap<Endpoint, Entry>,
}

impl Agg {
    pub(super) fn closed(&mut self, st: &State, c: &Common) {
        if st.syns == 0 {
            return; // handshake not seen
        }
        let e = self.by_server.entry(c.server()).or_insert_with(|| Entry { first_ts: c.first_ts, ..Entry::default() });
        e.conns += 1;
        e.first_ts = e.first_ts.min(c.first_ts);
        e.last_ts = e.last_ts.max(c.last_ts);
        if c.synack.is_some() {
            e.answered += 1;
        }
        if st.syns >= 2 || c.synack.is_none() {
            e.syn_dropped_conns += u64::from(st.syns >= 2);
            e.dropped_syns += u64::from(if c.synack.is_some() { st.syns - 1 } else { st.syns });
            if c.synack.is_none() {
                e.unanswered += 1;
            }
            if let Some(r) = st.first_retry_ns {
                e.retry_s.push(secs(r));
            }
            if let Some(fr) = st.syn_retry_frame {
                e.syn_frames.push(fr);
            }
        }
        if st.accept_sign() {
            e.accept_conns += 1;
            e.clients.insert(c.endpoint(Role::Client).addr);
            for (n, fr) in [
                (&mut e.synack_after_ack, st.synack_after_ack),
                (&mut e.client_retrans, st.client_retrans),
                (&mut e.rst_after_ack, st.rst_after_ack),
            ] {
                if let Some(fr) = fr {
                    *n += 1;
                    e.accept_frames.push(fr);
                }
            }
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for (server, e) in sorted(self.by_server) {
            let span = secs(e.last_ts - e.first_ts).max(1.0);
            if e.accept_conns >= ACCEPT_MIN_CONNS {
                let share = e.accept_conns as f64 / e.conns.max(1) as f64;
                let sev = if share >= ERROR_SHARE { Severity::Error } else { Severity::Warning };
                let mode = if e.rst_after_ack > 0 && e.synack_after_ack == 0 && e.client_retrans == 0 {
                    "the server reset connections right after the handshake (tcp_abort_on_overflow=1)"
                } else {
                    "the server dropped the clients' handshake ACKs and retransmitted its SYN/ACK \
                     (tcp_abort_on_overflow=0)"
                };
                let mut f = Finding::new(
                    CaseId::AcceptQueueOverflow,
                    sev,
                    server_subject("tcp", server),
                    format!(
                        "{} of {} connections to {server} completed the handshake but were not accepted in time: \
                         {mode}; {} of the SYNs were dropped too.",
                        e.accept_conns, e.conns, e.dropped_syns,
                    ),
                )
                .with_measure("count", e.accept_conns as f64, "count")
                .with_measure("conns", e.conns as f64, "count")
                .with_measure("affected_pct", round(share * 100.0, 1), "%")
                .with_measure("synack_retrans_after_ack", e.synack_after_ack as f64, "count")
                .with_measure("client_retrans_before_ack", e.client_retrans as f64, "count")
                .with_measure("rst_after_ack", e.rst_after_ack as f64, "count")
                .with_measure("dropped_syns", e.dropped_syns as f64, "count")
                .with_measure("drops_per_s", round(e.accept_conns as f64 / span, 2), "per_s")
                .with(Evidence::text("clients", e.clients.text(8)));
                if let Some(ev) = e.accept_frames.evidence("frames") {
                    f = f.with(ev);
                }
                out.push(f.with_fix(
                    "Accept faster (more workers, no blocking in the accept loop) and raise the accept queue: \
                     net.core.somaxconn and the listen() backlog (the queue is the smaller of the two); \
                     tcp_abort_on_overflow=1 makes clients fail fast instead of hanging.",
                ));
                continue;
            }
            if e.answered > 0 && e.syn_dropped_conns + e.unanswered >= SYNQ_MIN_CONNS && e.dropped_syns > 0 {
                let affected = e.syn_dropped_conns.max(e.unanswered);
                let share = affected as f64 / e.conns.max(1) as f64;
                let sev = if share >= ERROR_SHARE || e.unanswered > 0 { Severity::Error } else { Severity::Warning };
                let retry = e.retry_s.median();
                let mut f = Finding::new(
                    CaseId::SynQueueOverflow,
                    sev,
                    server_subject("tcp", server),
                    format!(
                        "{server} answered {} connections but dropped {} from {} ({} never answered){}: \
                         the listener's SYN queue is overflowing.",
                        e.answered,
                        pl(e.dropped_syns, "SYN", "SYNs"),
                        pl(affected, "connection", "connections"),
                        e.unanswered,
                        retry.map_or_else(String::new, |r| format!("; clients retried after {r:.1} s")),
                    ),
                )
                .with_measure("count", affected as f64, "count")
                .with_measure("dropped_syns", e.dropped_syns as f64, "count")
                .with_measure("unanswered", e.unanswered as f64, "count")
                .with_measure("conns", e.conns as f64, "count")
                .with_measure("affected_pct", round(share * 100.0, 1), "%")
                .with_measure("drops_per_s", round(e.dropped_syns as f64 / span, 2), "per_s");
                if let Some(r) = retry {
                    f = f.with_measure("retry_delay_s", round(r, 3), "s");
                }
                if let Some(ev) = e.syn_frames.evidence("retransmitted_syns") {
                    f = f.with(ev);
                }
                out.push(f.with_fix(
                    "Enable net.ipv4.tcp_syncookies=1, raise net.ipv4.tcp_max_syn_backlog and the listen() backlog; \
                     check that the accept queue is not full too (ss -ltn: Recv-Q against Send-Q).",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    #[test]
    fn synack_retransmitted_after_final_ack() {
        let mut s = Script::new();
        for i in 0..3u16 {
            let t0 = f64::from(i);
            let mut c = s.conn(45000 + i, 8000);
            c.syn(t0);
            c.synack(t0 + 0.0002);
            c.client_ack(t0 + 0.0003);
            c.client_data(t0 + 0.0004, 100);
            // The server dropped the ACK: SYN/ACK again after 1 s, client data again.
            c.synack(t0 + 1.0002);
            c.client_retrans(t0 + 1.0003, 1, 100);
            c.server_ack(t0 + 1.0004);
        }
        let f = one(&s.run(), CaseId::AcceptQueueOverflow);
        assert_eq!(f.measure("count"), Some(3.0));
        assert_eq!(f.measure("synack_retrans_after_ack"), Some(3.0));
    }

    #[test]
    fn rst_after_handshake_is_abort_on_overflow() {
        let mut s = Script::new();
        for i in 0..3u16 {
            let mut c = s.conn(45000 + i, 8000);
            c.handshake(f64::from(i));
            c.server_rst(f64::from(i) + 0.0012);
        }
        let all = s.run();
        let f = one(&all, CaseId::AcceptQueueOverflow);
        assert_eq!(f.measure("rst_after_ack"), Some(3.0));
        none(&all, CaseId::LingerZeroRst);
    }

    #[test]
    fn one_lost_handshake_ack_is_not_overflow() {
        let mut s = Script::new();
        let mut c = s.conn(45000, 8000);
        c.syn(0.0);
        c.synack(0.0002);
        c.client_ack(0.0003);
        c.synack(1.0002);
        c.client_ack(1.0003);
        none(&s.run(), CaseId::AcceptQueueOverflow);
    }

    #[test]
    fn dropped_syns_retried_after_one_second() {
        let mut s = Script::new();
        for i in 0..6u16 {
            let t0 = f64::from(i) * 5.0;
            let mut c = s.conn(45000 + i, 8000);
            c.syn(t0);
            if i % 2 == 0 {
                c.syn(t0 + 1.0);
                c.synack(t0 + 1.0002);
            } else {
                c.synack(t0 + 0.0002);
            }
            c.client_ack(t0 + 1.0003);
        }
        let f = s.run();
        none(&f, CaseId::AcceptQueueOverflow);
        let f = one(&f, CaseId::SynQueueOverflow);
        assert_eq!(f.measure("count"), Some(3.0));
        assert!((f.measure("retry_delay_s").unwrap() - 1.0).abs() < 0.01);
    }

    #[test]
    fn clean_handshakes_are_healthy() {
        let mut s = Script::new();
        for i in 0..4u16 {
            let mut c = s.conn(45000 + i, 8000);
            c.handshake(f64::from(i));
            c.client_data(f64::from(i) + 0.01, 100);
            c.server_data(f64::from(i) + 0.02, 100);
        }
        let f = s.run();
        none(&f, CaseId::AcceptQueueOverflow);
        none(&f, CaseId::SynQueueOverflow);
    }
}
