//! retrans-hol-blocking: a lost segment holds back everything behind it on the stream until it
//! is retransmitted. A stall is measured per loss episode on the receiver's side: from the
//! first sign of the hole (a segment beyond it, or the first duplicate ACK) until the
//! receiver's cumulative ACK moves past it after a retransmission; a tail loss with nothing
//! behind it stalls from the last new data to its retransmission (the RTO).

use std::collections::BTreeMap;

use netcase_flow::{AnalysisFlags as AF, Endpoint, FrameAnalysis};
use netcase_model::{CaseId, Evidence, Finding, Severity};
use netcase_wire::tcp_flags::{ACK, SYN};

use super::util::{millis, pl, round, seq_gt, FlowGroup, FrameSample, Samples, NS_PER_MS};
use super::{Common, Role};

/// A stall shorter than this is ordinary loss recovery: Linux's minimum RTO is 200 ms, and a
/// stall "about one RTO" is what blocks the messages behind it.
const MIN_STALL_NS: i64 = 200 * NS_PER_MS;
/// …and it must exceed two round trips, so that fast recovery on a long path is not counted.
const MIN_STALL_RTTS: i64 = 2;
/// Stalls at which (or total stall time above which) the finding is a warning, not info.
const WARN_STALLS: u64 = 3;
const WARN_TOTAL_NS: i64 = 1_000 * NS_PER_MS;

#[derive(Debug, Default, Clone, Copy)]
struct Hole {
    /// The receiver's cumulative ACK at the hole.
    ack: u32,
    start: i64,
    retrans: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Dir {
    hole: Option<Hole>,
    last_new_ts: i64,
    data_segs: u32,
    retrans_segs: u32,
    stalls: u32,
}

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    dirs: [Dir; 2],
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, agg: &mut Agg, c: &Common, f: &FrameAnalysis<'_>) {
        let x = f.side.index();
        let y = f.side.other().index();
        if f.len > 0 && f.tcp_flags & SYN == 0 {
            let d = &mut self.dirs[x];
            if f.flags.intersects(AF::RETRANSMISSION) {
                d.retrans_segs += 1;
                let spurious = f.flags.intersects(AF::SPURIOUS_RETRANSMISSION);
                match d.hole.as_mut() {
                    Some(h) => h.retrans |= !spurious,
                    None if !spurious && c.acked[y] && !seq_gt(c.ack[y], f.seq) && d.last_new_ts > 0 => {
                        // Nothing behind it arrived (no hole seen): the stall ran from the
                        // last new data to this retransmission.
                        let stall = f.ts_ns - d.last_new_ts;
                        if long_enough(stall, c) {
                            d.stalls += 1;
                            agg.stall(c, f.side, stall, f.frame);
                        }
                    }
                    None => {}
                }
            } else {
                d.data_segs += 1;
                d.last_new_ts = f.ts_ns;
                if f.flags.intersects(AF::LOST_SEGMENT) && d.hole.is_none() && c.acked[y] {
                    d.hole = Some(Hole { ack: c.ack[y], start: f.ts_ns, retrans: false });
                }
            }
        }
        // This frame as the receiver of the other direction.
        if f.tcp_flags & ACK == 0 {
            return;
        }
        let d = &mut self.dirs[y];
        match d.hole {
            None if f.flags.intersects(AF::DUPLICATE_ACK) => {
                d.hole = Some(Hole { ack: f.ack, start: f.ts_ns, retrans: false });
            }
            Some(h) if seq_gt(f.ack, h.ack) => {
                d.hole = None;
                let stall = f.ts_ns - h.start;
                if h.retrans && long_enough(stall, c) {
                    d.stalls += 1;
                    agg.stall(c, f.side.other(), stall, f.frame);
                }
            }
            _ => {}
        }
    }
}

fn long_enough(stall: i64, c: &Common) -> bool {
    stall >= MIN_STALL_NS && stall >= MIN_STALL_RTTS * c.rtt()
}

#[derive(Debug, Default)]
struct Entry {
    group: FlowGroup,
    stalls_ms: Samples,
    data_segs: u64,
    retrans_segs: u64,
    frames: FrameSample,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    by: BTreeMap<(Endpoint, Role), Entry>,
}

impl Agg {
    fn stall(&mut self, c: &Common, sender: netcase_flow::Side, stall: i64, frame: u64) {
        let e = self.by.entry((c.server(), c.role(sender))).or_default();
        e.stalls_ms.push(millis(stall));
        e.frames.push(frame);
    }

    pub(super) fn closed(&mut self, st: &State, c: &Common) {
        for side in [c.client, c.client.other()] {
            let d = &st.dirs[side.index()];
            if d.stalls == 0 {
                continue;
            }
            if let Some(e) = self.by.get_mut(&(c.server(), c.role(side))) {
                e.group.add(c.stream, c.client_ep(), c.server());
                e.data_segs += u64::from(d.data_segs);
                e.retrans_segs += u64::from(d.retrans_segs);
            }
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for ((server, sender), e) in self.by {
            let n = e.stalls_ms.len();
            let (Some(med), Some(max)) = (e.stalls_ms.median(), e.stalls_ms.max()) else { continue };
            let total = e.stalls_ms.sum();
            let loss = 100.0 * e.retrans_segs as f64 / (e.data_segs + e.retrans_segs).max(1) as f64;
            let sev = if n >= WARN_STALLS || total >= millis(WARN_TOTAL_NS) { Severity::Warning } else { Severity::Info };
            let mut f = Finding::new(
                CaseId::RetransHolBlocking,
                sev,
                e.group.subject("tcp", server),
                format!(
                    "Data from the {} stalled {} behind lost segments (median {med:.0} ms, longest {max:.0} ms, \
                     {total:.0} ms in all) with {loss:.1} % of segments retransmitted: everything sent after a lost \
                     segment waited for its retransmission.",
                    sender.as_str(),
                    pl(n, "time", "times"),
                ),
            )
            .with_measure("count", n as f64, "count")
            .with_measure("stall_ms", round(med, 1), "ms")
            .with_measure("max_stall_ms", round(max, 1), "ms")
            .with_measure("total_stall_ms", round(total, 1), "ms")
            .with_measure("loss_rate_pct", round(loss, 2), "%")
            .with_measure("retransmissions", e.retrans_segs as f64, "count")
            .with_measure("flows", e.group.flows as f64, "count")
            .with(Evidence::text("sender", sender.as_str()));
            if let Some(ev) = e.frames.evidence("stall_end_frames") {
                f = f.with(ev);
            }
            out.push(f.with_fix(
                "Find and remove the loss (interface errors, a congested queue, a policer); latency-sensitive \
                 message streams can spread over several connections or use a transport without head-of-line \
                 blocking (QUIC, SCTP streams); a lower RTO floor (ip route ... rto_min) shortens each stall.",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    /// A stream of 100-byte messages; message 5 is lost and retransmitted after `rto`.
    fn stream(rto: f64) -> Vec<netcase_model::Finding> {
        let mut s = Script::new();
        let mut c = s.conn(48000, 7000);
        c.handshake(0.0);
        let mut t = 0.01;
        for i in 0..10u32 {
            if i == 5 {
                c.server_data_lost(100);
            } else {
                c.server_data(t, 100);
                if i < 5 {
                    c.client_ack(t + 0.0002);
                } else {
                    // Duplicate ACKs (with SACK) for the hole at byte 501.
                    c.sack = Some((c.sv.isn.wrapping_add(601), c.sv.nxt));
                    c.client_ack_at(t + 0.0002, 501);
                }
            }
            t += 0.01;
        }
        c.sack = None;
        c.server_retrans(0.1 + rto, 501, 100);
        c.client_ack(0.1 + rto + 0.0002);
        s.run()
    }

    #[test]
    fn lost_segment_stalls_the_stream() {
        let f = one(&stream(0.3), CaseId::RetransHolBlocking);
        assert_eq!(f.measure("count"), Some(1.0));
        let ms = f.measure("stall_ms").unwrap();
        assert!((320.0..=340.0).contains(&ms), "{ms}");
        assert!(f.measure("loss_rate_pct").unwrap() > 4.0);
    }

    #[test]
    fn fast_recovery_is_not_a_stall() {
        none(&stream(0.02), CaseId::RetransHolBlocking);
    }
}
