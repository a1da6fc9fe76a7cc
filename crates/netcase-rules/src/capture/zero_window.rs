//! zero-window: a receiver that stops reading fills its buffer and advertises a zero window;
//! the sender stops and probes until the window opens. Which side, how long, how many probes.

use std::collections::BTreeMap;

use netcase_flow::{AnalysisFlags as AF, Endpoint};
use netcase_model::{CaseId, Evidence, Finding, Severity};
use netcase_wire::tcp_flags::{RST, SYN};

use super::util::{millis, pl, round, FlowGroup, FrameSample, Samples, NS_PER_MS};
use super::RuleFrame;
use super::{Common, Role};

/// A stall at least this long (longest episode) makes the finding a warning: users notice a
/// second; shorter episodes are flow control doing its job.
const WARN_LONGEST_NS: i64 = 1_000 * NS_PER_MS;

#[derive(Debug, Default, Clone, Copy)]
struct Dir {
    start: Option<(i64, u64)>,
    episodes: u32,
    total: i64,
    longest: i64,
    frames: u32,
    probes: u32,
    first_frame: u64,
}

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    /// Indexed by the side that advertised the zero window.
    dirs: [Dir; 2],
}

impl Dir {
    fn end(&mut self, ts: i64) {
        if let Some((s, _)) = self.start.take() {
            let d = (ts - s).max(0);
            self.episodes += 1;
            self.total += d;
            self.longest = self.longest.max(d);
        }
    }
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, c: &Common, f: &RuleFrame) {
        // Wireshark's probe is one byte at the next sequence number; Linux probes with an empty
        // segment one below it, which Wireshark calls a keep-alive: count both while the
        // peer's window is closed.
        let peer = &mut self.dirs[f.side.other().index()];
        if f.flags.intersects(AF::ZERO_WINDOW_PROBE) || f.flags.intersects(AF::KEEP_ALIVE) && peer.start.is_some() {
            peer.probes += 1;
        }
        if f.tcp_flags & (SYN | RST) != 0 {
            return;
        }
        // After both FINs nothing more is to be received: a zero window on the last ACK is a
        // socket being torn down, not a receiver that stopped reading.
        if c.fin.iter().all(Option::is_some) {
            return;
        }
        let d = &mut self.dirs[f.side.index()];
        if f.flags.intersects(AF::ZERO_WINDOW) {
            d.frames += 1;
            if d.start.is_none() {
                d.start = Some((f.ts_ns, f.frame));
                if d.first_frame == 0 {
                    d.first_frame = f.frame;
                }
            }
        } else if f.window > 0 {
            d.end(f.ts_ns);
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    group: FlowGroup,
    episodes: u64,
    total_ms: f64,
    longest_ms: Samples,
    frames_n: u64,
    probes: u64,
    frames: FrameSample,
    /// What limited the sender the zero window held (the peer of the advertiser).
    limits: super::limits::Limits,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    by: BTreeMap<(Endpoint, Role), Entry>,
}

impl Agg {
    pub(super) fn closed(&mut self, st: &State, c: &Common, lm: &super::limits::State) {
        for side in [c.client, c.client.other()] {
            let mut d = st.dirs[side.index()];
            d.end(c.last_ts);
            if d.episodes == 0 {
                continue;
            }
            let e = self.by.entry((c.server(), c.role(side))).or_default();
            e.group.add(c.stream, c.client_ep(), c.server());
            e.episodes += u64::from(d.episodes);
            e.total_ms += millis(d.total);
            e.longest_ms.push(millis(d.longest));
            e.frames_n += u64::from(d.frames);
            e.limits.add(&lm.of(side.other()));
            e.probes += u64::from(d.probes);
            e.frames.push(d.first_frame);
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for ((server, side), e) in self.by {
            let longest = e.longest_ms.max().unwrap_or(0.0);
            // A warning for a long stall that the classification of the transfer's time shows as
            // a limit (the zero window held a material share of it).
            let sev = if longest >= millis(WARN_LONGEST_NS) && e.limits.material(e.limits.zero) {
                Severity::Warning
            } else {
                Severity::Info
            };
            let mut f = Finding::new(
                CaseId::ZeroWindow,
                sev,
                e.group.subject("tcp", server),
                format!(
                    "The {} advertised a zero receive window {} ({} frames), stalling its peer for {:.0} ms in all \
                     (longest {longest:.0} ms) with {}: the receiving application did not read fast enough.",
                    side.as_str(),
                    pl(e.episodes, "time", "times"),
                    e.frames_n,
                    e.total_ms,
                    pl(e.probes, "zero-window probe", "zero-window probes"),
                ),
            )
            .with_measure("count", e.episodes as f64, "count")
            .with_measure("zero_window_frames", e.frames_n as f64, "count")
            .with_measure("stall_s", round(longest / 1e3, 3), "s")
            .with_measure("longest_stall_ms", round(longest, 1), "ms")
            .with_measure("total_stall_ms", round(e.total_ms, 1), "ms")
            .with_measure("probes", e.probes as f64, "count")
            .with_measure("flows", e.group.flows as f64, "count")
            .with(Evidence::text("side", side.as_str()));
            if let Some(ev) = e.frames.evidence("first_zero_window_frames") {
                f = f.with(ev);
            }
            f = e.limits.annotate(f, "zero_window_time_pct", e.limits.zero);
            out.push(f.with_fix(format!(
                "Make the {} read its socket faster (no blocking work between reads, more workers), or give it a \
                 larger receive buffer (SO_RCVBUF, net.ipv4.tcp_rmem) if the bursts are short.",
                side.as_str()
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    fn run(stall: bool) -> Vec<netcase_model::Finding> {
        let mut s = Script::new();
        let mut c = s.conn(51000, 8080);
        c.handshake(0.0);
        c.client_data(0.01, 100);
        c.server_data(0.02, 1460);
        if stall {
            c.client_window(0.0202, 0);
            c.server_zw_probe(0.25);
            c.client_window(0.2502, 0);
            c.server_zw_probe(0.7);
            c.client_window(0.7002, 0);
            c.client_window(2.5, 502);
        } else {
            c.client_window(0.0202, 300);
            c.client_window(0.5, 502);
        }
        c.server_data(2.6, 1460);
        c.client_ack(2.6002);
        s.run()
    }

    #[test]
    fn client_stops_reading() {
        let f = one(&run(true), CaseId::ZeroWindow);
        assert_eq!(f.text("side"), Some("client"));
        let l = f.measure("longest_stall_ms").unwrap();
        assert!((2470.0..=2490.0).contains(&l), "{l}");
        assert_eq!(f.measure("probes"), Some(2.0));
        assert_eq!(f.measure("count"), Some(1.0));
    }

    #[test]
    fn small_window_is_not_zero() {
        none(&run(false), CaseId::ZeroWindow);
    }
}
