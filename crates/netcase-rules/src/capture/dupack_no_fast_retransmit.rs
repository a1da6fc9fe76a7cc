//! dupack-no-fast-retransmit: the receiver sends three or more duplicate ACKs (usually with
//! SACK blocks) for one hole, but the sender does not fast-retransmit; the hole is filled
//! only by the RTO, or never. Fast retransmit fires on the third duplicate ACK, so at the
//! capture point the retransmission follows it within about one round trip.

use std::collections::BTreeMap;

use netcase_flow::{AnalysisFlags as AF, Endpoint, Side};
use netcase_model::{CaseId, Evidence, Finding, Severity};

use super::util::{millis, pl, round, seq_gt, FlowGroup, FrameSample, Samples, NS_PER_MS};
use super::RuleFrame;
use super::{Common, Role};

/// Duplicate ACKs that trigger fast retransmit (tcp_reordering default 3).
const DUPACKS: u32 = 3;
/// A retransmission later than this after the third duplicate ACK was not a fast retransmit:
/// at least the 200 ms RTO floor…
const MIN_WAIT_NS: i64 = 200 * NS_PER_MS;
/// …and more than three round trips (a fast retransmit shows up within about one).
const MIN_WAIT_RTTS: i64 = 3;

#[derive(Debug, Clone, Copy)]
struct Dup {
    ack: u32,
    t3: i64,
    f3: u64,
    n: u32,
    sack: bool,
    /// Bytes SACKed beyond the hole's left edge when first seen (the hole's size).
    hole_bytes: u32,
    /// The sender had already retransmitted at this sequence before the third dup ACK.
    prior: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Dir {
    dup: Option<Dup>,
    last_retrans_seq: Option<u32>,
    events: u32,
}

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    dirs: [Dir; 2],
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, agg: &mut Agg, c: &Common, f: &RuleFrame) {
        let x = f.side.index();
        // A resend tshark calls out-of-order (it came soon after the highest segment) repairs
        // the hole just as well.
        if f.len > 0 && f.flags.intersects(AF::RETRANSMISSION | AF::OUT_OF_ORDER) {
            let d = &mut self.dirs[x];
            d.last_retrans_seq = Some(f.seq);
            if let Some(h) = d.dup {
                let end = f.seq.wrapping_add(f.len);
                if !seq_gt(f.seq, h.ack) && seq_gt(end, h.ack) {
                    d.dup = None;
                    let wait = f.ts_ns - h.t3;
                    if !h.prior && too_late(wait, c) {
                        d.events += 1;
                        agg.event(c, f.side, &h, wait, Some(f.frame));
                    }
                }
            }
        }
        if f.len > 0 || f.flags.intersects(AF::KEEP_ALIVE | AF::ZERO_WINDOW_PROBE_ACK | AF::WINDOW_UPDATE) {
            return;
        }
        // This frame as the receiver of the other direction.
        let d = &mut self.dirs[f.side.other().index()];
        if f.flags.intersects(AF::DUPLICATE_ACK) && f.dupack_num >= DUPACKS {
            match d.dup.as_mut() {
                Some(h) if h.ack == f.ack => {
                    h.n = h.n.max(f.dupack_num);
                    h.sack |= f.options.sack_count > 0;
                }
                _ => {
                    let blocks = f.options.sack_blocks();
                    let hole_bytes = blocks.first().map_or(0, |(l, _)| l.wrapping_sub(f.ack_raw)).min(1 << 30);
                    d.dup = Some(Dup {
                        ack: f.ack,
                        t3: f.ts_ns,
                        f3: f.frame,
                        n: f.dupack_num,
                        sack: !blocks.is_empty(),
                        hole_bytes,
                        prior: d.last_retrans_seq == Some(f.ack),
                    });
                }
            }
        } else if let Some(h) = d.dup {
            if seq_gt(f.ack, h.ack) {
                d.dup = None; // filled without a retransmission we saw (reordering)
            }
        }
    }
}

fn too_late(wait: i64, c: &Common) -> bool {
    wait >= MIN_WAIT_NS && wait >= MIN_WAIT_RTTS * c.rtt()
}

#[derive(Debug, Default)]
struct Entry {
    group: FlowGroup,
    waits_ms: Samples,
    never: u64,
    max_dupacks: u32,
    sack: bool,
    hole: Option<(u32, u32)>,
    frames: FrameSample,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    by: BTreeMap<(Endpoint, Role), Entry>,
}

impl Agg {
    fn event(&mut self, c: &Common, sender: Side, h: &Dup, wait: i64, retrans: Option<u64>) {
        let e = self.by.entry((c.server(), c.role(sender))).or_default();
        e.waits_ms.push(millis(wait));
        e.max_dupacks = e.max_dupacks.max(h.n);
        e.sack |= h.sack;
        if e.hole.is_none() {
            e.hole = Some((h.ack, h.hole_bytes));
        }
        e.frames.push(h.f3);
        match retrans {
            Some(fr) => e.frames.push(fr),
            None => e.never += 1,
        }
    }

    pub(super) fn closed(&mut self, st: &State, c: &Common) {
        for side in [c.client, c.client.other()] {
            let d = &st.dirs[side.index()];
            let mut events = d.events;
            if let Some(h) = d.dup {
                // Never retransmitted: only a finding if the sender kept sending new data well
                // after the third duplicate ACK (alive, yet not repairing the hole); a sender
                // that went silent lost its path, which is another story.
                let wait = c.last_ts - h.t3;
                let alive = c.last_data_ts[side.index()] - h.t3 >= MIN_WAIT_NS;
                if !h.prior && alive && too_late(wait, c) {
                    events += 1;
                    self.event(c, side, &h, wait, None);
                }
            }
            if events > 0 {
                if let Some(e) = self.by.get_mut(&(c.server(), c.role(side))) {
                    e.group.add(c.stream, c.client_ep(), c.server());
                }
            }
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for ((server, sender), e) in self.by {
            let n = e.waits_ms.len();
            let (Some(med), Some(max)) = (e.waits_ms.median(), e.waits_ms.max()) else { continue };
            let (hole, hole_bytes) = e.hole.unwrap_or((0, 0));
            let mut f = Finding::new(
                CaseId::DupackNoFastRetransmit,
                // Without SACK, a lost resend is repaired only by the retransmission timer
                // (NewReno): waiting is normal, not the stalled fast retransmit of this case.
                if e.sack { Severity::Warning } else { Severity::Info },
                e.group.subject("tcp", server),
                format!(
                    "The {} got {} duplicate ACKs{} for a hole and did not fast-retransmit: it waited {med:.0} ms \
                     (median; longest {max:.0} ms) after the third, {} ({} never retransmitted in the capture).",
                    sender.as_str(),
                    e.max_dupacks,
                    if e.sack { " with SACK" } else { "" },
                    pl(n, "time", "times"),
                    e.never,
                ),
            )
            .with_measure("count", n as f64, "count")
            .with_measure("wait_ms", round(med, 1), "ms")
            .with_measure("max_wait_ms", round(max, 1), "ms")
            .with_measure("dup_acks", f64::from(e.max_dupacks), "count")
            .with_measure("never_retransmitted", e.never as f64, "count")
            .with_measure("sack", if e.sack { 1.0 } else { 0.0 }, "bool")
            .with_measure("hole_seq", f64::from(hole), "seq")
            .with(Evidence::text("sender", sender.as_str()));
            if hole_bytes > 0 {
                f = f.with_measure("hole_bytes", f64::from(hole_bytes), "bytes");
            }
            if let Some(ev) = e.frames.evidence("frames") {
                f = f.with(ev);
            }
            // The capture cannot see the sender's kernel: the fix says what to look at there.
            let fix = if e.sack {
                format!(
                    "Look at the {} host: `nstat -az TcpExtTCPWqueueTooBig` growing means it refuses to split its \
                     retransmit queue (the 2019 SACK-panic mitigation; on CentOS 7 3.10.0-957 it stops fast \
                     retransmits, fixed in 3.10.0-1062.1.1); a raised net.ipv4.tcp_reordering makes it wait for \
                     more duplicate ACKs; a middlebox that strips SACK options or a non-Linux stack behaves \
                     otherwise. `netcase check` on that host reads the counter.",
                    sender.as_str()
                )
            } else {
                "Without SACK a sender repairs a second loss in one window only by its retransmission timer \
                 (NewReno): enable SACK on both ends (net.ipv4.tcp_sack=1) and check that no middlebox strips the \
                 SACK-permitted option."
                    .to_owned()
            };
            out.push(f.with_fix(fix));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    fn run(wait: f64) -> Vec<netcase_model::Finding> {
        let mut s = Script::new();
        let mut c = s.conn(49000, 7000);
        c.handshake(0.0);
        c.server_data(0.01, 1000);
        c.client_ack(0.0102);
        c.server_data_lost(1000);
        let mut t = 0.02;
        for _ in 0..5 {
            c.server_data(t, 1000);
            c.sack = Some((c.sv.isn.wrapping_add(2001), c.sv.nxt));
            c.client_ack_at(t + 0.0002, 1001);
            t += 0.001;
        }
        c.sack = None;
        c.server_retrans(0.025 + wait, 1001, 1000);
        c.client_ack(0.025 + wait + 0.0002);
        s.run()
    }

    #[test]
    fn dupacks_then_rto_only() {
        let f = one(&run(0.4), CaseId::DupackNoFastRetransmit);
        assert!(f.measure("dup_acks").unwrap() >= 3.0);
        assert_eq!(f.measure("sack"), Some(1.0));
        let w = f.measure("wait_ms").unwrap();
        assert!((395.0..=405.0).contains(&w), "{w}");
        assert_eq!(f.measure("hole_bytes"), Some(1000.0));
    }

    #[test]
    fn fast_retransmit_is_healthy() {
        none(&run(0.001), CaseId::DupackNoFastRetransmit);
    }
}
