//! nagle-delayed-ack: Nagle's algorithm holds a small segment while an earlier small one is
//! unacknowledged; the peer delays its ACK (about 40 ms on Linux, up to 200 ms elsewhere);
//! the held segment leaves right after that late ACK. Repeated, every write-write-read
//! exchange stalls by the delayed-ACK time.
//!
//! Seen at the capture point: a small segment from S, a pure ACK from R covering exactly all
//! of S's data after a delay well above the round trip, and S's next small segment right
//! after that ACK (within the round trip as seen from the capture point, plus a few ms).

use std::collections::BTreeMap;

use netcase_flow::{AnalysisFlags as AF, Endpoint, Side};
use netcase_model::{CaseId, Evidence, Finding, Severity};
use netcase_wire::tcp_flags::{FIN, RST, SYN};

use super::util::{millis, pl, round, FlowGroup, FrameSample, Samples, NS_PER_MS};
use super::RuleFrame;
use super::{Common, Role};

/// The ACK delay that counts as a delayed ACK, after removing the round trip: Linux's
/// minimum delayed-ACK timer is 40 ms (measured 43 ms; a little less at the sender's clock),
/// other stacks use up to 200 ms and the RFC allows 500 ms.
const DELACK_MIN_NS: i64 = 20 * NS_PER_MS;
const DELACK_MAX_NS: i64 = 520 * NS_PER_MS;
/// The held segment leaves within this much (plus the capture-point round trip) after the
/// ACK that releases it: scheduling noise only.
const HOLD_GRACE_NS: i64 = 5 * NS_PER_MS;
/// Stalls needed for a finding: "repeated", not one coincidence.
const MIN_EVENTS: u64 = 3;

#[derive(Debug, Default, Clone, Copy)]
struct Dir {
    /// The sender's last new data segment: (ts, len, relative end).
    last: Option<(i64, u32, u32)>,
    /// A pure ACK from the peer that covered all of it: (ts, delay since the data).
    pending: Option<(i64, i64)>,
    events: u32,
}

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    /// Indexed by the data sender.
    dirs: [Dir; 2],
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, agg: &mut Agg, c: &Common, f: &RuleFrame) {
        let fl = f.tcp_flags;
        if fl & (SYN | RST | FIN) != 0 {
            return;
        }
        let s = f.side;
        if f.len > 0 {
            if f.flags.intersects(AF::RETRANSMISSION | AF::KEEP_ALIVE | AF::ZERO_WINDOW_PROBE) {
                return;
            }
            let d = &mut self.dirs[s.index()];
            if let Some((ack_ts, delay)) = d.pending.take() {
                let small = f.len < c.mss;
                let gap = f.ts_ns - ack_ts;
                let grace = c.reply_gap(s.other()) + HOLD_GRACE_NS;
                let delack = delay - c.reply_gap(s);
                if small && gap >= 0 && gap <= grace && (DELACK_MIN_NS..=DELACK_MAX_NS).contains(&delack) {
                    d.events += 1;
                    agg.event(c, s, delack, f.frame);
                }
            }
            d.last = Some((f.ts_ns, f.len, f.seq.wrapping_add(f.len)));
            // Data from this side means the peer's pending ACK was not what released it.
            self.dirs[s.other().index()].pending = None;
            return;
        }
        if f.flags.intersects(AF::DUPLICATE_ACK | AF::WINDOW_UPDATE | AF::KEEP_ALIVE | AF::KEEP_ALIVE_ACK) {
            return;
        }
        // A pure ACK: does it release the other side's small segment?
        let d = &mut self.dirs[s.other().index()];
        if let Some((ts, len, end)) = d.last {
            if len < c.mss && f.ack == end && d.pending.is_none() {
                d.pending = Some((f.ts_ns, f.ts_ns - ts));
            }
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    group: FlowGroup,
    delays_ms: Samples,
    frames: FrameSample,
    limits: super::limits::Limits,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    by: BTreeMap<(Endpoint, Role), Entry>,
}

impl Agg {
    fn event(&mut self, c: &Common, sender: Side, delack: i64, frame: u64) {
        let e = self.by.entry((c.server(), c.role(sender))).or_default();
        e.delays_ms.push(millis(delack));
        e.frames.push(frame);
    }

    pub(super) fn closed(&mut self, st: &State, c: &Common, lm: &super::limits::State) {
        for side in [c.client, c.client.other()] {
            if st.dirs[side.index()].events > 0 {
                if let Some(e) = self.by.get_mut(&(c.server(), c.role(side))) {
                    e.group.add(c.stream, c.client_ep(), c.server());
                    e.limits.add(&lm.of(side));
                }
            }
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for ((server, sender), e) in self.by {
            let n = e.delays_ms.len();
            if n < MIN_EVENTS {
                continue;
            }
            let Some(d) = e.delays_ms.median() else { continue };
            let receiver = sender.other();
            let mut f = Finding::new(
                CaseId::NagleDelayedAck,
                Severity::Warning,
                e.group.subject("tcp", server),
                format!(
                    "The {} held a small segment until the {}'s delayed ACK {} (median delay {d:.0} ms, {:.0} ms \
                     lost in all): Nagle's algorithm meeting delayed ACKs in a write-write-read exchange.",
                    sender.as_str(),
                    receiver.as_str(),
                    pl(n, "time", "times"),
                    e.delays_ms.sum(),
                ),
            )
            .with_measure("count", n as f64, "count")
            .with_measure("stalls", n as f64, "count")
            .with_measure("delay_ms", round(d, 1), "ms")
            .with_measure("stall_ms", round(d, 1), "ms")
            .with_measure("total_delay_ms", round(e.delays_ms.sum(), 1), "ms")
            .with_measure("flows", e.group.flows as f64, "count")
            .with(Evidence::text("sender", sender.as_str()));
            if let Some(ev) = e.frames.evidence("held_segments") {
                f = f.with(ev);
            }
            // A latency case: the held segments wait in the transport (data outstanding, the
            // ACK delayed), which the classification counts as transport-limited time.
            f = e.limits.annotate(f, "transport_limited_time_pct", e.limits.transport);
            out.push(f.with_fix(format!(
                "On the {s} (sender): set TCP_NODELAY, or write each message with one call (writev/buffering) so no \
                 small segment waits; on the {r} (receiver): TCP_QUICKACK after reads avoids the delayed ACK. Framing \
                 stays the application's job either way.",
                s = sender.as_str(),
                r = receiver.as_str()
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    /// Write-write-read: the client sends a 40-byte header, the server's ACK comes `delack`
    /// later, then the 60-byte body, then the server's answer.
    fn run(delack: f64, n: u32) -> Vec<netcase_model::Finding> {
        let mut s = Script::new();
        let mut c = s.conn(52000, 6379);
        c.handshake(0.0);
        let mut t = 0.01;
        for _ in 0..n {
            c.client_data(t, 40);
            c.server_ack(t + delack);
            c.client_data(t + delack + 0.0001, 60);
            c.server_data(t + delack + 0.0003, 20);
            c.client_ack(t + delack + 0.0004);
            t += 0.2;
        }
        s.run()
    }

    #[test]
    fn small_writes_wait_for_delayed_ack() {
        let f = one(&run(0.041, 10), CaseId::NagleDelayedAck);
        assert_eq!(f.measure("count"), Some(10.0));
        let d = f.measure("delay_ms").unwrap();
        assert!((39.0..=42.0).contains(&d), "{d}");
        assert_eq!(f.text("sender"), Some("client"));
    }

    #[test]
    fn quick_acks_are_healthy() {
        none(&run(0.0002, 10), CaseId::NagleDelayedAck);
    }
}
