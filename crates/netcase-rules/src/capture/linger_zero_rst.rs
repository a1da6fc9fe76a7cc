//! linger-zero-rst: an established connection ended by RST from a side that never sent FIN
//! (SO_LINGER with a zero timeout, or close() with unread data), possibly discarding data:
//! bytes the aborting side sent that were not yet acknowledged, bytes it had received but not
//! acknowledged, or data the peer sent after the RST.

use std::collections::BTreeMap;

use netcase_flow::Endpoint;
use netcase_model::{CaseId, Evidence, Finding, Severity};
use netcase_wire::tcp_flags::{ACK, RST};

use super::util::{pl, seq_diff, FlowGroup, FrameSample};
use super::RuleFrame;
use super::{Common, Role};

#[derive(Debug, Clone, Copy)]
struct Abort {
    by: Role,
    frame: u64,
    /// Bytes the aborting side had sent that the peer had not acknowledged.
    unacked: u32,
    /// Bytes the peer had sent that the aborting side had not acknowledged.
    unread: u32,
    /// The RST ended a run of unanswered retransmissions: the stack gave up on a silent peer
    /// (tcp_retries2), which is not SO_LINGER.
    gave_up: bool,
}

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    abort: Option<Abort>,
    /// Peer data frames after the RST (discarded by the aborted socket).
    after_frames: u32,
    after_bytes: u64,
    /// Retransmissions per side since the peer's ACK last moved.
    retrans_run: [u32; 2],
    peer_ack: [u32; 2],
}

/// A RST after this many retransmissions the peer never acknowledged is a stack giving up.
const GAVE_UP_RETRANSMISSIONS: u32 = 3;

impl State {
    #[inline]
    pub(super) fn frame(&mut self, c: &Common, f: &RuleFrame) {
        if let Some(a) = self.abort {
            if f.len > 0 && c.role(f.side) != a.by {
                self.after_frames += 1;
                self.after_bytes += u64::from(f.len);
            }
            return;
        }
        let me = f.side.index();
        if f.flags.intersects(netcase_flow::AnalysisFlags::RETRANSMISSION) && f.len > 0 {
            if let Some(r) = self.retrans_run.get_mut(me) {
                *r = r.saturating_add(1);
            }
        }
        if f.tcp_flags & ACK != 0 {
            let peer = f.side.other().index();
            if self.peer_ack.get(me).is_some_and(|a| *a != f.ack) {
                // This side's ACK moved: the peer's retransmissions were answered.
                if let Some(r) = self.retrans_run.get_mut(peer) {
                    *r = 0;
                }
            }
            if let Some(a) = self.peer_ack.get_mut(me) {
                *a = f.ack;
            }
        }
        if f.tcp_flags & RST == 0 || c.rst.iter().any(Option::is_some) {
            return;
        }
        // A RST with SYN or FIN beside it is not a socket closing (corrupt or crafted header).
        if f.tcp_flags & (netcase_wire::tcp_flags::SYN | netcase_wire::tcp_flags::FIN) != 0 {
            return;
        }
        let x = f.side.index();
        let y = f.side.other().index();
        if c.fin[x].is_some() {
            return;
        }
        // Established: the handshake completed, or (handshake not seen) both sides spoke.
        let established = match c.synack {
            Some(_) => c.hs_ack.is_some() || c.sent_data[0] || c.sent_data[1],
            None => c.syn.is_none() && c.sent_data[0] && c.sent_data[1],
        };
        if !established {
            return;
        }
        // Bounded by what was really sent (odd sequence numbers must not invent data).
        let cap = |side: usize| u32::try_from(c.bytes[side]).unwrap_or(u32::MAX);
        let unacked = if c.sent_data[x] && c.acked[y] { seq_diff(c.nxt[x], c.ack[y]).min(cap(x)) } else { 0 };
        let my_ack = if f.tcp_flags & ACK != 0 { Some(f.ack) } else { c.acked[x].then_some(c.ack[x]) };
        let unread = match my_ack {
            Some(a) if c.sent_data[y] => seq_diff(c.nxt[y], a).min(cap(y)),
            _ => 0,
        };
        let gave_up = self.retrans_run.get(me).is_some_and(|r| *r >= GAVE_UP_RETRANSMISSIONS);
        self.abort = Some(Abort { by: c.role(f.side), frame: f.frame, unacked, unread, gave_up });
    }
}

#[derive(Debug, Default)]
struct Entry {
    group: FlowGroup,
    count: u64,
    with_loss: u64,
    unacked: u64,
    unread: u64,
    after_frames: u64,
    after_fin: u64,
    gave_up: u64,
    frames: FrameSample,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    by: BTreeMap<(Endpoint, Role), Entry>,
}

impl Agg {
    /// `accept_rst`: the queue rule explained this RST (abort_on_overflow), not linger.
    pub(super) fn closed(&mut self, st: &State, c: &Common, accept_rst: bool) {
        let Some(a) = st.abort else { return };
        if accept_rst {
            return;
        }
        let e = self.by.entry((c.server(), a.by)).or_default();
        e.group.add(c.stream, c.client_ep(), c.server());
        e.count += 1;
        let lost = a.unacked > 0 || a.unread > 0 || st.after_frames > 0;
        let peer_closed_first = c.fin[c.side(a.by.other()).index()].is_some();
        // Data lost to an abort is SO_LINGER's signature only when the peer was still there:
        // not after the peer's own FIN (its close came first), not after the aborting stack
        // retransmitted in vain (it gave up on a silent peer).
        if lost && !peer_closed_first && !a.gave_up {
            e.with_loss += 1;
        }
        if a.gave_up {
            e.gave_up += 1;
        }
        e.unacked += u64::from(a.unacked);
        e.unread += u64::from(a.unread);
        e.after_frames += u64::from(st.after_frames);
        if c.fin[c.side(a.by.other()).index()].is_some() {
            e.after_fin += 1;
        }
        e.frames.push(a.frame);
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for ((server, by), e) in self.by {
            let sev = if e.with_loss > 0 { Severity::Warning } else { Severity::Info };
            let loss = if e.with_loss > 0 {
                format!(
                    "; {} discarded data ({} bytes unacknowledged, {} bytes received but not acknowledged, {} after the reset)",
                    pl(e.with_loss, "abort", "aborts"),
                    e.unacked,
                    e.unread,
                    pl(e.after_frames, "frame", "frames")
                )
            } else if e.gave_up > 0 {
                format!(
                    "; {} came after unanswered retransmissions: the stack gave up on a silent peer \
                     (tcp_retries2), not SO_LINGER",
                    pl(e.gave_up, "abort", "aborts")
                )
            } else if e.after_fin > 0 {
                "; it came after the peer's own FIN (the peer closed first): data sent into a closing connection, \
                 not SO_LINGER"
                    .to_owned()
            } else {
                "; no data was in flight".to_owned()
            };
            let mut f = Finding::new(
                CaseId::LingerZeroRst,
                sev,
                e.group.subject("tcp", server),
                format!(
                    "The {} aborted {} with {server} by RST without sending FIN{loss}.",
                    by.as_str(),
                    pl(e.count, "connection", "connections"),
                ),
            )
            .with_measure("count", e.count as f64, "count")
            .with_measure("aborted_connections", e.count as f64, "count")
            .with_measure("with_data_loss", e.with_loss as f64, "count")
            .with_measure("unacked_bytes", e.unacked as f64, "bytes")
            .with_measure("unread_bytes", e.unread as f64, "bytes")
            .with_measure("frames_after_rst", e.after_frames as f64, "count")
            .with_measure("after_peer_fin", e.after_fin as f64, "count")
            .with_measure("gave_up_after_retransmissions", e.gave_up as f64, "count")
            .with(Evidence::text("side", by.as_str()));
            if let Some(ev) = e.frames.evidence("rst_frames") {
                f = f.with(ev);
            }
            out.push(f.with_fix(format!(
                "If the {} sets SO_LINGER with a zero timeout (Go SetLinger(0)), close normally instead; read all \
                 pending input before close() (unread data also turns close into RST); use shutdown(SHUT_WR) and \
                 wait for the peer's FIN when the last bytes matter.",
                by.as_str()
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    #[test]
    fn server_abort_with_data_in_flight() {
        let mut s = Script::new();
        let mut c = s.conn(42000, 9000);
        c.handshake(0.0);
        c.client_data(0.01, 100);
        c.server_ack(0.011);
        c.server_data(0.02, 1000);
        c.server_rst(0.021);
        c.client_data(0.03, 50);
        let f = s.run();
        let f = one(&f, CaseId::LingerZeroRst);
        assert_eq!(f.text("side"), Some("server"));
        assert_eq!(f.measure("unacked_bytes"), Some(1000.0));
        assert_eq!(f.measure("frames_after_rst"), Some(1.0));
        assert_eq!(f.severity, netcase_model::Severity::Warning);
    }

    #[test]
    fn fin_close_and_refused_syn_are_not_aborts() {
        let mut s = Script::new();
        let mut c = s.conn(42000, 9000);
        c.handshake(0.0);
        c.client_data(0.01, 100);
        c.server_data(0.02, 1000);
        c.client_fin(0.03);
        c.server_fin(0.031);
        c.client_ack(0.032);
        let mut r = s.conn(42001, 9001);
        r.syn(1.0);
        r.server_rst(1.0001);
        none(&s.run(), CaseId::LingerZeroRst);
    }

    /// A RST after unanswered retransmissions is the stack giving up on a silent peer.
    #[test]
    fn rst_after_unanswered_retransmissions_is_not_linger() {
        let mut s = Script::new();
        let mut c = s.conn(45000, 80);
        c.handshake(0.0);
        c.client_data(0.01, 100);
        c.server_ack(0.011);
        c.server_data(0.02, 5000);
        for t in [0.3, 0.9, 2.1, 4.5] {
            c.server_retrans(t, 1, 5000);
        }
        c.server_rst(9.0);
        let f = one(&s.run(), CaseId::LingerZeroRst);
        assert_eq!(f.severity, netcase_model::Severity::Info);
        assert_eq!(f.measure("gave_up_after_retransmissions"), Some(1.0));
        assert!(f.summary.contains("gave up"), "{}", f.summary);
    }

    /// Data that reaches a peer that already closed draws a RST: not the sender's SO_LINGER.
    #[test]
    fn rst_after_the_peers_fin_is_not_linger() {
        let mut s = Script::new();
        let mut c = s.conn(45000, 80);
        c.handshake(0.0);
        c.server_fin(0.01);
        c.client_ack(0.011);
        c.client_data(0.02, 64);
        c.client_rst(0.03);
        let f = one(&s.run(), CaseId::LingerZeroRst);
        assert_eq!(f.severity, netcase_model::Severity::Info);
    }
}
