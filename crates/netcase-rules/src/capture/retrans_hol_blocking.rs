//! retrans-hol-blocking: a lost segment holds back everything behind it on the stream until it
//! is retransmitted. A stall is measured per loss episode on the receiver's side: from the
//! first sign of the hole (a segment beyond it, or the first duplicate ACK) until the
//! receiver's cumulative ACK moves past it after a retransmission; a tail loss with nothing
//! behind it stalls from the last new data to its retransmission (the RTO).

use std::collections::BTreeMap;

use netcase_flow::{AnalysisFlags as AF, Endpoint};
use netcase_model::{CaseId, Evidence, Finding, Severity};
use netcase_wire::tcp_flags::{ACK, SYN};

use super::util::{millis, pl, round, seq_gt, FlowGroup, FrameSample, Samples, NS_PER_MS};
use super::RuleFrame;
use super::{Common, Role};

/// A stall counts from 20 ms (below that a message stream does not notice)…
const MIN_STALL_NS: i64 = 20 * NS_PER_MS;
/// …and when it lasts more than two round trips: the data behind the hole waited for a
/// repair, not just for the next flight.
const MIN_STALL_RTTS: i64 = 2;
/// Three stalls or more, or a second of stall (one or in all), make the finding a warning; a
/// single stall of one RTO (Linux's minimum is 200 ms) is information.
const WARN_STALL_NS: i64 = 1_000 * NS_PER_MS;
const WARN_STALLS: u64 = 3;
const WARN_TOTAL_NS: i64 = 1_000 * NS_PER_MS;
/// More subjects than this are reported as one finding about the capture (a lossy link under
/// many connections is one problem).
const MAX_SUBJECTS: usize = 5;

#[derive(Debug, Default, Clone, Copy)]
struct Hole {
    /// The receiver's cumulative ACK at the hole.
    ack: u32,
    start: i64,
    retrans: bool,
}

/// A retransmission with nothing seen behind it (a tail loss): it blocked the stream only if
/// the sender was holding data behind it, which shows as new data right after the repair
/// without the peer having asked for anything meanwhile.
#[derive(Debug, Default, Clone, Copy)]
struct Tail {
    /// Sequence number of the resent segment (counted once however often it is resent).
    seq: u32,
    /// The last new data before the loss: the stall's start.
    start: i64,
    /// The latest resend of it.
    last_resend: i64,
    /// When the receiver's ACK passed it.
    repaired: Option<i64>,
    /// The peer sent data meanwhile: what follows is an answer, not held data.
    peer_spoke: bool,
    /// Data had been sent beyond the lost segment: it waited at the receiver.
    behind: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Dir {
    hole: Option<Hole>,
    /// The last new data segments sent: (relative seq, first transmission ts), to date a hole
    /// from the first transmission of the segment it misses.
    sent: [(u32, i64); SENT_KEPT],
    sent_pos: u8,
    tail: Option<Tail>,
    last_new_ts: i64,
    data_segs: u32,
    /// A stall ended by the receiver's ACK, held for [`DSACK_WAIT_NS`]: a D-SACK in the same
    /// burst of ACKs says the data was never lost. (stall ns, frame, deadline ts)
    pending: Option<(i64, u64, i64)>,
    /// Retransmissions, spurious ones (already ACKed, or D-SACKed) left out.
    retrans_segs: u32,
    stalls: u32,
}

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    dirs: [Dir; 2],
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, agg: &mut Agg, c: &Common, f: &RuleFrame) {
        for (i, side) in [(0, netcase_flow::Side::A), (1, netcase_flow::Side::B)] {
            let d = &mut self.dirs[i];
            if let Some((stall, frame, deadline)) = d.pending {
                if f.ts_ns > deadline {
                    d.pending = None;
                    d.stalls += 1;
                    agg.stall(c, side, stall, frame);
                }
            }
        }
        let x = f.side.index();
        let y = f.side.other().index();
        let rtt = c.rtt();
        if f.len > 0 && f.tcp_flags & SYN == 0 {
            // The other direction's tail: the peer spoke, so later data is an answer.
            if let Some(t) = self.dirs[y].tail.as_mut() {
                t.peer_spoke = true;
            }
            let d = &mut self.dirs[x];
            if f.flags.intersects(AF::RETRANSMISSION) {
                let spurious = f.flags.intersects(AF::SPURIOUS_RETRANSMISSION);
                if !spurious {
                    d.retrans_segs += 1;
                }
                match d.hole.as_mut() {
                    Some(h) => h.retrans |= !spurious,
                    None if !spurious && c.acked[y] && !seq_gt(c.ack[y], f.seq) && d.last_new_ts > 0 => {
                        match d.tail.as_mut() {
                            // The same segment again: one loss, however many resends.
                            Some(t) if t.seq == f.seq => t.last_resend = f.ts_ns,
                            _ => {
                                let behind = c.sent_data[x] && seq_gt(c.nxt[x], f.seq.wrapping_add(f.len));
                                d.tail = Some(Tail {
                                    seq: f.seq,
                                    start: d.last_new_ts,
                                    last_resend: f.ts_ns,
                                    repaired: None,
                                    peer_spoke: false,
                                    behind,
                                })
                            }
                        }
                    }
                    None => {}
                }
            } else {
                d.data_segs += 1;
                if let Some(e) = d.sent.get_mut(usize::from(d.sent_pos) % SENT_KEPT) {
                    *e = (f.seq, f.ts_ns);
                }
                d.sent_pos = d.sent_pos.wrapping_add(1);
                if let Some(t) = d.tail.take() {
                    // New data right after the repair (or the last resend), unprompted: it
                    // was held behind the lost segment.
                    let since = f.ts_ns - t.repaired.unwrap_or(t.last_resend);
                    let prompt = (HELD_RTTS * rtt).max(HELD_MIN_NS);
                    if !t.peer_spoke && since <= prompt {
                        let end = t.repaired.unwrap_or(f.ts_ns);
                        let stall = end - t.start;
                        if long_enough(stall, c, f.side) {
                            d.stalls += 1;
                            agg.stall(c, f.side, stall, f.frame);
                        }
                    }
                }
                if f.flags.intersects(AF::LOST_SEGMENT) && d.hole.is_none() && c.acked[y] {
                    // Seen at the receiver: the stream stopped at the last in-order segment.
                    let start = if d.last_new_ts > 0 { d.last_new_ts } else { f.ts_ns };
                    d.hole = Some(Hole { ack: c.ack[y], start, retrans: false });
                }
                d.last_new_ts = f.ts_ns;
            }
        }
        // This frame as the receiver of the other direction.
        if f.tcp_flags & ACK == 0 {
            return;
        }
        // A D-SACK (RFC 2883: the first SACK block at or below the cumulative ACK) reports a
        // segment received twice: the resend was spurious, the data had not been lost.
        let dsack = f.options.sack_blocks().first().is_some_and(|&(_, r)| !seq_gt(r, f.ack_raw));
        let d = &mut self.dirs[y];
        if dsack && d.pending.is_some() {
            // The repair's own burst of ACKs reports a segment received twice: not lost.
            d.pending = None;
        }
        if let Some(t) = d.tail.as_mut() {
            if dsack {
                d.tail = None;
            } else if t.repaired.is_none() && seq_gt(f.ack, t.seq) {
                t.repaired = Some(f.ts_ns);
                if t.behind {
                    // Segments sent after the lost one waited at the receiver until now.
                    let stall = f.ts_ns - t.start;
                    d.tail = None;
                    if long_enough(stall, c, f.side.other()) {
                        hold(d, agg, c, f.side.other(), stall, f.frame, f.ts_ns);
                    }
                }
            }
        }
        match d.hole {
            Some(ref mut h) if dsack => h.retrans = false,
            None if f.flags.intersects(AF::DUPLICATE_ACK) => {
                // From the first transmission of the missing segment when it was captured
                // (capture at the sender), else from this first duplicate ACK.
                let start = d.sent.iter().find(|(seq, t)| *seq == f.ack && *t > 0).map_or(f.ts_ns, |e| e.1);
                d.hole = Some(Hole { ack: f.ack, start, retrans: false });
            }
            Some(h) if seq_gt(f.ack, h.ack) => {
                d.hole = None;
                d.tail = None;
                let stall = f.ts_ns - h.start;
                if h.retrans && long_enough(stall, c, f.side.other()) {
                    hold(d, agg, c, f.side.other(), stall, f.frame, f.ts_ns);
                }
            }
            _ => {}
        }
    }
}

/// How long (at least; a round trip when longer) a stall ended by an ACK waits for a D-SACK in
/// the same burst of ACKs.
const DSACK_WAIT_NS: i64 = 20 * NS_PER_MS;

/// Holds a stall for [`DSACK_WAIT_NS`] (counting the one held before, if any).
fn hold(d: &mut Dir, agg: &mut Agg, c: &Common, sender: netcase_flow::Side, stall: i64, frame: u64, ts: i64) {
    if let Some((s, fr, _)) = d.pending.take() {
        d.stalls += 1;
        agg.stall(c, sender, s, fr);
    }
    // A delayed ACK can hold the D-SACK back for up to a round trip.
    d.pending = Some((stall, frame, ts + DSACK_WAIT_NS.max(c.rtt())));
}

/// New data segments remembered per direction (their first transmission times).
const SENT_KEPT: usize = 8;

/// New data within this many round trips (at least [`HELD_MIN_NS`]) of a tail loss's repair
/// was waiting behind it.
const HELD_RTTS: i64 = 2;
const HELD_MIN_NS: i64 = 20 * NS_PER_MS;

fn long_enough(stall: i64, c: &Common, sender: netcase_flow::Side) -> bool {
    stall >= MIN_STALL_NS && stall >= MIN_STALL_RTTS * c.rtt_for(sender)
}

#[derive(Debug, Default)]
struct Entry {
    group: FlowGroup,
    stalls_ms: Samples,
    data_segs: u64,
    retrans_segs: u64,
    frames: FrameSample,
    limits: super::limits::Limits,
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

    pub(super) fn closed(&mut self, st: &State, c: &Common, lm: &super::limits::State) {
        for side in [c.client, c.client.other()] {
            let d = &st.dirs[side.index()];
            if let Some((stall, frame, _)) = d.pending {
                self.stall(c, side, stall, frame);
            }
            if d.stalls == 0 && d.pending.is_none() {
                continue;
            }
            if let Some(e) = self.by.get_mut(&(c.server(), c.role(side))) {
                e.group.add(c.stream, c.client_ep(), c.server());
                e.data_segs += u64::from(d.data_segs);
                e.retrans_segs += u64::from(d.retrans_segs);
                e.limits.add(&lm.of(side));
            }
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        let warn = |e: &Entry| {
            e.stalls_ms.len() >= WARN_STALLS
                || e.stalls_ms.sum() >= millis(WARN_TOTAL_NS)
                || e.stalls_ms.max().unwrap_or(0.0) >= millis(WARN_STALL_NS)
        };
        let (mut subjects, minor): (Vec<_>, Vec<_>) =
            self.by.into_iter().filter(|(_, e)| !e.stalls_ms.is_empty()).partition(|(_, e)| warn(e));
        // Single short stalls on several connections are one fact about the capture.
        if minor.len() > 1 {
            let mut f = capture_finding(&minor);
            f.severity = Severity::Info;
            out.push(f);
        } else {
            subjects.extend(minor);
        }
        if subjects.len() > MAX_SUBJECTS {
            out.push(capture_finding(&subjects));
            return;
        }
        for ((server, sender), e) in subjects {
            let n = e.stalls_ms.len();
            let (Some(med), Some(max)) = (e.stalls_ms.median(), e.stalls_ms.max()) else { continue };
            let total = e.stalls_ms.sum();
            let loss = 100.0 * e.retrans_segs as f64 / (e.data_segs + e.retrans_segs).max(1) as f64;
            let warn = n >= WARN_STALLS || total >= millis(WARN_TOTAL_NS) || max >= millis(WARN_STALL_NS);
            let mut f = Finding::new(
                CaseId::RetransHolBlocking,
                if warn { Severity::Warning } else { Severity::Info },
                e.group.subject("tcp", server),
                format!(
                    "Data from the {} stalled {} behind lost segments for more than two round trips (median {med:.0} ms, longest {max:.0} ms, \
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
            f = e.limits.annotate(f, "loss_recovery_time_pct", e.limits.loss);
            out.push(f.with_fix(FIX));
        }
    }
}

const FIX: &str = "Find and remove the loss (interface errors, a congested queue, a policer); latency-sensitive \
                   message streams can spread over several connections or use a transport without head-of-line \
                   blocking (QUIC, SCTP streams); a lower RTO floor (ip route ... rto_min) shortens each stall.";

/// One finding for many subjects: totals, and the worst subjects named.
fn capture_finding(subjects: &[((Endpoint, Role), Entry)]) -> Finding {
    let mut all = Samples::default();
    let (mut data, mut retrans, mut flows) = (0u64, 0u64, 0u64);
    let mut frames = FrameSample::default();
    for (_, e) in subjects {
        for v in e.stalls_ms.values() {
            all.push(*v);
        }
        data += e.data_segs;
        retrans += e.retrans_segs;
        flows += e.group.flows;
        if let Some(f) = e.frames.first() {
            frames.push(f);
        }
    }
    let mut worst: Vec<&((Endpoint, Role), Entry)> = subjects.iter().collect();
    worst.sort_by(|a, b| b.1.stalls_ms.sum().total_cmp(&a.1.stalls_ms.sum()));
    let names: Vec<String> = worst
        .iter()
        .take(3)
        .map(|((s, r), e)| format!("{s} ({}, from the {})", pl(e.stalls_ms.len(), "stall", "stalls"), r.as_str()))
        .collect();
    let n = all.len();
    let med = all.median().unwrap_or(0.0);
    let max = all.max().unwrap_or(0.0);
    let loss = 100.0 * retrans as f64 / (data + retrans).max(1) as f64;
    // Subjects are (server, direction) pairs; a server with stalls both ways is one server.
    let servers = subjects.iter().map(|((s, _), _)| *s).collect::<std::collections::BTreeSet<_>>().len();
    let mut f = Finding::new(
        CaseId::RetransHolBlocking,
        Severity::Warning,
        netcase_model::Subject::Capture,
        format!(
            "Streams to {} servers stalled {} behind lost segments for more than two round trips (median {med:.0} ms, longest {max:.0} ms; \
             stalls of different connections overlap in time, so they are not summed; {loss:.1} % of their \
             segments retransmitted, spurious resends left out); worst (by stall time): {}. Loss on a shared \
             path delays every \
             connection over it.",
            servers,
            pl(n, "time", "times"),
            names.join(", "),
        ),
    )
    .with_measure("count", n as f64, "count")
    .with_measure("stall_ms", round(med, 1), "ms")
    .with_measure("max_stall_ms", round(max, 1), "ms")
    .with_measure("loss_rate_pct", round(loss, 2), "%")
    .with_measure("retransmissions", retrans as f64, "count")
    .with_measure("flows", flows as f64, "count")
    .with_measure("subjects", subjects.len() as f64, "count")
    .with_measure("servers", servers as f64, "count");
    if let Some(ev) = frames.evidence("stall_end_frames") {
        f = f.with(ev);
    }
    f.with_fix(FIX)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    /// A stream of 100-byte messages in three bursts; in each, message 5 is lost and
    /// retransmitted after `rto`.
    fn stream(rto: Option<f64>) -> Vec<netcase_model::Finding> {
        let mut s = Script::new();
        let mut c = s.conn(48000, 7000);
        c.handshake(0.0);
        for burst in 0..3u32 {
            let base = f64::from(burst) * 2.0;
            let mut t = base + 0.01;
            let mut hole = 0;
            for i in 0..10u32 {
                if i == 5 && rto.is_some() {
                    hole = c.sv.nxt.wrapping_sub(c.sv.isn);
                    c.server_data_lost(100);
                } else {
                    c.server_data(t, 100);
                    if i < 5 || rto.is_none() {
                        c.client_ack(t + 0.0002);
                    } else {
                        // Duplicate ACKs (with SACK) for the hole.
                        c.sack = Some((c.sv.isn.wrapping_add(hole + 100), c.sv.nxt));
                        c.client_ack_at(t + 0.0002, hole);
                    }
                }
                t += 0.01;
            }
            c.sack = None;
            if let Some(rto) = rto {
                c.server_retrans(base + 0.1 + rto, hole, 100);
                c.client_ack(base + 0.1 + rto + 0.0002);
            }
        }
        s.run()
    }

    #[test]
    fn lost_segment_stalls_the_stream() {
        let f = one(&stream(Some(0.3)), CaseId::RetransHolBlocking);
        assert_eq!(f.measure("count"), Some(3.0));
        // From the last in-order message (0.05 s) to the repair (0.1 + rto).
        let ms = f.measure("stall_ms").unwrap();
        assert!((345.0..=355.0).contains(&ms), "{ms}");
        assert!(f.measure("loss_rate_pct").unwrap() > 4.0);
    }

    #[test]
    fn fast_recovery_is_a_short_stall() {
        let f = one(&stream(Some(0.02)), CaseId::RetransHolBlocking);
        let ms = f.measure("stall_ms").unwrap();
        assert!((65.0..=75.0).contains(&ms), "{ms}");
        assert!(f.measure("max_stall_ms").unwrap() < 200.0);
    }

    #[test]
    fn stream_without_loss_is_healthy() {
        none(&stream(None), CaseId::RetransHolBlocking);
    }

    /// One reply lost and resent by timeout again and again (nothing sent behind it) is one
    /// loss, and no head-of-line blocking: nothing waited behind it.
    #[test]
    fn a_lone_reply_resent_many_times_is_not_a_stall_per_resend() {
        let mut s = Script::new();
        let mut c = s.conn(45000, 80);
        c.handshake(0.0);
        c.client_data(0.01, 100);
        c.server_ack(0.011);
        c.server_data(0.02, 132);
        for (k, t) in [1.0, 3.0, 7.0, 15.0, 31.0].iter().enumerate() {
            let _ = k;
            c.server_retrans(0.02 + t, 1, 132);
        }
        c.client_ack(31.03);
        let f = s.run();
        none(&f, CaseId::RetransHolBlocking);
    }

    /// A tail loss with data held behind it: new data right after the repair, unprompted.
    #[test]
    fn tail_loss_with_data_held_behind_counts_once() {
        let mut s = Script::new();
        let mut c = s.conn(45000, 80);
        c.handshake(0.0);
        c.server_data(0.01, 100);
        c.client_ack(0.011);
        c.server_data(0.02, 100);
        c.server_retrans(0.4, 101, 100);
        c.server_retrans(1.2, 101, 100);
        c.client_ack(1.201);
        c.server_data(1.202, 100);
        c.client_ack(1.203);
        let f = s.run();
        let f = one(&f, CaseId::RetransHolBlocking);
        assert_eq!(f.measure("count"), Some(1.0));
        let ms = f.measure("stall_ms").unwrap();
        assert!((1180.0..=1182.0).contains(&ms), "{ms}");
    }
}
