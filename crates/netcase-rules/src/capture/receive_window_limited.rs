//! receive-window-limited: the receiver advertises a small (non-zero) window, so the sender
//! fills it, waits a round trip for it to open, fills it again: the transfer runs at window /
//! RTT whatever the path could carry.
//!
//! Per connection and direction: a data segment is *window-limited* when, counting it, the
//! bytes in flight leave no room for another full-size segment in the receiver's advertised
//! window (tshark's `window_full` is the exact case of this); from such a segment until the
//! sender's next new segment (at most two round trips) the sender waits for window. That gap
//! is one round trip at either end of the path: at the sender it waits for the ACK, at the
//! receiver the next data arrives a round trip after its ACK left. Reported when a
//! transfer of real size ([`MIN_BYTES`], [`MIN_DURATION_NS`]) spent most of its time waiting
//! so ([`MIN_LIMITED_SHARE`]), hit the window again and again ([`MIN_WAITS_PER_RTT`]), and ran
//! close to window / RTT ([`MIN_ACHIEVED_SHARE`]): then the window, not the path or the sender,
//! set the rate.
//!
//! Left to other cases: connections where scaling was not negotiated and the window sat near
//! its 64 KiB ceiling (`no-window-scale`), and receivers whose window was zero for a real part
//! of the transfer (`zero-window`: a reader that stopped).

use std::collections::BTreeMap;

use netcase_flow::{AnalysisFlags as AF, ConnSummary, Endpoint, Side};
use netcase_model::{CaseId, Confidence, Evidence, Finding, Severity};
use netcase_wire::tcp_flags::{ACK, RST, SYN};

use super::util::{round, secs, seq_gt, FlowGroup, FrameSample, Samples, NS_PER_MS};
use super::RuleFrame;
use super::{Common, Role};

/// A transfer this large (one direction, new data) is bulk: interactive exchanges and small
/// objects end before a window matters.
const MIN_BYTES: u64 = 256 * 1024;
/// …and this long (first to last new data segment): a shorter one is over before anyone
/// notices its rate, and slow start would dominate it.
const MIN_DURATION_NS: i64 = 1_000 * NS_PER_MS;
/// A wait counts at most two round trips, and never less than this (round-trip estimates of a
/// LAN are a fraction of a millisecond, the sender's own scheduling is not).
const MIN_WAIT_CAP_NS: i64 = 10 * NS_PER_MS;
/// A capture point this close to the sender (its handshake reply gap) is at the sender.
const MIN_LAG_NS: i64 = NS_PER_MS;
/// The sender waited for window at least half of the transfer's time.
const MIN_LIMITED_SHARE: f64 = 0.5;
/// The window was filled at least every other round trip (a share of the segments would
/// depend on how the receiver spaces its ACKs: one ACK per flight leaves only the flight's
/// last segment without room).
const MIN_WAITS_PER_RTT: f64 = 0.5;
/// The rate achieved is at least half of window / RTT: the window explains it (a rate far below
/// the cap has another cause: loss, the sender's application, a slower link).
const MIN_ACHIEVED_SHARE: f64 = 0.5;
/// A receiver whose window was zero for this share of the transfer or more stopped reading:
/// that is `zero-window`.
const MAX_ZERO_WINDOW_SHARE: f64 = 0.1;
/// Without window scaling a window from this size up is the 64 KiB ceiling at work:
/// `no-window-scale` (the same threshold as that rule's "fully open" window).
const UNSCALED_OPEN_WINDOW: u32 = 49_152;
/// A window at the limited segments below this share of the largest one the receiver
/// advertised was shrinking: the reader falls behind, the buffer is not (only) small.
const SHRUNK_SHARE: f64 = 0.5;
/// A slow reader: the window filled and the receiver reopened it only after more than two
/// round trips, so the sender sat idle with data to send. A transfer this large…
const SLOW_READER_MIN_BYTES: u64 = 64 * 1024;
/// …held shut this many times (one late window update can be a scheduling hiccup)…
const SLOW_READER_MIN_STALLS: u32 = 3;
/// …for at least this share of its time (first to last new data segment) is paced by the
/// receiving application, not by the path or the buffer size.
const SLOW_READER_SHARE: f64 = 0.5;

/// Time buckets of right edges kept per direction: a round trip's worth of
/// [`BUCKETS_PER_LAG`], plus two.
const BUCKETS: usize = 10;
/// Buckets per capture-to-sender round trip: the window read at the receiver is late by at
/// most this fraction of a round trip's ACKs.
const BUCKETS_PER_LAG: i64 = 8;

/// The receiver's right edges (ack + window) by time, for a capture away from the sender. At
/// the sender an ACK counts at once; at the receiver, data sent because of an ACK arrives a
/// round trip after it left, so a data segment is compared with the edge advertised that long
/// before it. Edges are kept per time bucket (an eighth of that round trip), the last of each
/// bucket: the edge read is the one at the end of the bucket, up to an eighth of a round trip
/// later than wanted, so the window looks larger than it was by at most an eighth of what was
/// acknowledged in a round trip (an eighth of the window when the window is the limit), never
/// smaller. Memory is fixed however many ACKs a round trip carries.
#[derive(Debug, Default, Clone, Copy)]
struct Edges {
    /// (bucket index, right edge, window), oldest first from `head`. Indices are compared in
    /// wrapping arithmetic (the ring spans a few buckets, far from 2^31).
    b: [(u32, u32, u32); BUCKETS],
    head: u8,
    len: u8,
    /// Bucket width, ns: 0 until the direction's first data segment, then -1 when the capture
    /// is at the sender (no buckets), else an eighth of `lag`.
    width: i64,
    /// The capture point's round trip to the sender (the receiver's reply gap), ns.
    lag: i64,
}

impl Edges {
    fn at(&self, i: usize) -> Option<&(u32, u32, u32)> {
        self.b.get((usize::from(self.head) + i) % BUCKETS)
    }

    /// Decides, at the direction's first data segment, whether buckets are needed: `lag` is
    /// the capture point's round trip to the sender.
    fn start(&mut self, lag: i64) {
        if lag >= MIN_LAG_NS {
            self.width = (lag / BUCKETS_PER_LAG).max(1);
            self.lag = lag;
        } else {
            self.width = -1;
        }
    }

    /// An edge advertised at `ts`.
    #[inline]
    fn push(&mut self, ts: i64, edge: u32, win: u32) {
        if self.width <= 0 {
            return;
        }
        let idx = (ts / self.width) as u32;
        let n = usize::from(self.len);
        if let Some(last) = n.checked_sub(1).and_then(|i| self.b.get_mut((usize::from(self.head) + i) % BUCKETS)) {
            if last.0 == idx {
                *last = (idx, edge, win);
                return;
            }
        }
        if n == BUCKETS {
            self.head = ((usize::from(self.head) + 1) % BUCKETS) as u8;
            self.len -= 1;
        }
        if let Some(slot) = self.b.get_mut((usize::from(self.head) + usize::from(self.len)) % BUCKETS) {
            *slot = (idx, edge, win);
        }
        self.len += 1;
    }

    /// The (edge, window) of the last bucket that began at or before `t`, and how far beyond
    /// the edge wanted it may be (the bucket's share of the window).
    fn known(&self, t: i64) -> Option<(u32, u32, u32)> {
        if self.width <= 0 {
            return None;
        }
        let idx = (t / self.width) as u32;
        (0..usize::from(self.len))
            .rev()
            .filter_map(|i| self.at(i))
            .find(|e| idx.wrapping_sub(e.0) as i32 >= 0)
            .map(|e| (e.1, e.2, (u64::from(e.2) / BUCKETS_PER_LAG as u64) as u32))
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Dir {
    data_frames: u32,
    bytes: u64,
    first_ts: i64,
    last_ts: i64,
    /// Largest segment sent (a full-size segment).
    max_len: u32,
    /// Segments that left no room for another full one.
    pinned: u32,
    /// Segments tshark flags `window_full`.
    full: u32,
    /// Sum of the receiver's window at the pinned segments.
    win_sum: u64,
    /// Waiting for window since this time (the last window-limited segment; 0 = not waiting).
    wait: i64,
    limited_ns: i64,
    /// Largest window the receiver advertised during the transfer.
    rwin_max: u32,
    first_pinned: u64,
    edges: Edges,
    /// A running median of the ACK RTTs of this direction's data, ns (0 = no sample).
    ack_rtt: i64,
    /// The receiver's right edge (ack + window) and when it last moved forward.
    edge: u32,
    open_ts: i64,
    /// Waits that ended only when the receiver reopened its window late (more than two round
    /// trips after the wait began): their total, ns, their count and the longest.
    reader_stall_ns: i64,
    reader_stalls: u32,
    reader_stall_max_ns: i64,
}

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    dirs: [Dir; 2],
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, c: &Common, f: &RuleFrame) {
        if f.tcp_flags & (SYN | RST) != 0 {
            return;
        }
        // This frame as the receiver of the other direction's data.
        if f.tcp_flags & ACK != 0 {
            let d = &mut self.dirs[f.side.other().index()];
            if d.data_frames > 0 {
                d.rwin_max = d.rwin_max.max(f.calc_window);
                let edge = f.ack.wrapping_add(f.calc_window);
                if d.open_ts == 0 || seq_gt(edge, d.edge) {
                    d.edge = edge;
                    d.open_ts = f.ts_ns;
                }
                d.edges.push(f.ts_ns, edge, f.calc_window);
                if let Some(r) = f.ack_rtt_ns.filter(|r| *r > 0) {
                    // Frugal streaming median: one step of 1/64 towards each sample (±1.5 %
                    // once it has settled; a stray sample moves it one step, not to itself).
                    d.ack_rtt = match d.ack_rtt {
                        0 => r,
                        m if r > m => m + (m / 64).max(1),
                        m if r < m => m - (m / 64).max(1),
                        m => m,
                    };
                }
            }
        }
        if f.len == 0 || f.flags.intersects(AF::RETRANSMISSION) {
            return;
        }
        let d = &mut self.dirs[f.side.index()];
        let t0 = std::mem::take(&mut d.wait);
        if t0 != 0 {
            // A longer gap had another cause too (the application, a timeout): one round trip
            // of it is the window's, two at most.
            let most = (2 * c.rtt()).max(MIN_WAIT_CAP_NS);
            d.limited_ns += (f.ts_ns - t0).clamp(0, most);
            // The wait ended right after the receiver moved its window forward, and that came
            // long after the wait began: the receiver held the window shut (a slow reader).
            let held = d.open_ts - t0;
            if held > most && f.ts_ns - d.open_ts <= most {
                d.reader_stall_ns += held;
                d.reader_stalls += 1;
                d.reader_stall_max_ns = d.reader_stall_max_ns.max(held);
            }
        }
        if d.data_frames == 0 {
            d.first_ts = f.ts_ns;
            // From the capture point to the sender and back: the receiver's SYN → the
            // sender's SYN/ACK (or the other way round), final once data flows.
            d.edges.start(c.reply_gap(f.side.other()));
        }
        d.data_frames += 1;
        d.bytes += u64::from(f.len);
        d.last_ts = f.ts_ns;
        d.max_len = d.max_len.max(f.len);
        let full = f.flags.intersects(AF::WINDOW_FULL);
        if full {
            d.full += 1;
        }
        // Away from the sender, the edge the sender knew: from a round trip (capture point to
        // sender and back) before. The handshake ran on an empty path, and queues only add to
        // the real delay, so this picks an edge no older than the one the sender acted on. At
        // the sender (a reply gap under a millisecond: its own stack's), and in the first
        // round trip elsewhere, the current edge (larger, if anything).
        let y = f.side.other().index();
        let (edge, w, slack) = match d.edges.known(f.ts_ns - d.edges.lag) {
            Some(k) => k,
            None if c.acked[y] => (c.ack[y].wrapping_add(c.win[y]), c.win[y], 0),
            None => return,
        };
        if w == 0 {
            return;
        }
        let end = f.seq.wrapping_add(f.len);
        if full || seq_gt(end.wrapping_add(d.max_len).wrapping_add(slack), edge) {
            d.pinned += 1;
            d.win_sum += u64::from(w);
            if d.first_pinned == 0 {
                d.first_pinned = f.frame;
            }
            d.wait = f.ts_ns;
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    group: FlowGroup,
    window: Samples,
    window_max: u32,
    cap: Samples,
    achieved: Samples,
    rtt_ms: Samples,
    bytes: u64,
    duration_s: f64,
    limited_s: f64,
    limited_pct: Samples,
    pinned_pct: Samples,
    full: u64,
    shrinking: bool,
    frames: FrameSample,
    limits: super::limits::Limits,
}

/// Transfers paced by a slow reader (see [`SLOW_READER_SHARE`]), per server and sender.
#[derive(Debug, Default)]
struct SlowEntry {
    group: FlowGroup,
    window: Samples,
    window_max: u32,
    bytes: u64,
    duration_s: f64,
    stall_s: f64,
    stalls: u64,
    stall_max_s: f64,
    stall_mean_s: Samples,
    frames: FrameSample,
    limits: super::limits::Limits,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    by: BTreeMap<(Endpoint, Role), Entry>,
    slow: BTreeMap<(Endpoint, Role), SlowEntry>,
}

impl Agg {
    pub(super) fn closed(&mut self, st: &State, c: &Common, s: Option<&ConnSummary>, lm: &super::limits::State) {
        // The window scale must be known from the handshake: without it windows cannot be read.
        let Some(s) = s else { return };
        let (Some(syn), Some(synack)) = (s.syn, s.synack) else { return };
        let scaled = syn.wscale.is_some() && synack.wscale.is_some();
        for side in [c.client, c.client.other()] {
            let d = st.dirs[side.index()];
            let dur = d.last_ts - d.first_ts;
            if d.pinned == 0 || dur < MIN_DURATION_NS || (!scaled && d.rwin_max >= UNSCALED_OPEN_WINDOW) {
                continue;
            }
            let recv = if side == Side::A { s.ba } else { s.ab };
            if recv.zero_window_ns as f64 >= MAX_ZERO_WINDOW_SHARE * dur as f64 {
                continue;
            }
            let window = (d.win_sum / u64::from(d.pinned)) as u32;
            if d.bytes >= SLOW_READER_MIN_BYTES
                && d.reader_stalls >= SLOW_READER_MIN_STALLS
                && d.reader_stall_ns as f64 >= SLOW_READER_SHARE * dur as f64
            {
                let e = self.slow.entry((c.server(), c.role(side))).or_default();
                e.group.add(c.stream, c.client_ep(), c.server());
                e.window.push(f64::from(window));
                e.window_max = e.window_max.max(d.rwin_max);
                e.bytes += d.bytes;
                e.duration_s += secs(dur);
                e.stall_s += secs(d.reader_stall_ns);
                e.stalls += u64::from(d.reader_stalls);
                e.stall_max_s = e.stall_max_s.max(secs(d.reader_stall_max_ns));
                e.stall_mean_s.push(secs(d.reader_stall_ns) / f64::from(d.reader_stalls));
                e.frames.push(d.first_pinned);
                e.limits.add(&lm.of(side));
                continue;
            }
            if d.bytes < MIN_BYTES {
                continue;
            }
            // At the sender the ACKs of the data give the round trip the transfer really had
            // (queues, the receiver's ACK pacing), as a median: one early or late ACK does not
            // move it. Elsewhere an ACK's round trip spans only part of the path, so the
            // handshake's (SYN → ACK, the same from any capture point) is the estimate.
            let hs = c.rtt();
            let rtt = if d.ack_rtt > 0 && d.ack_rtt * 2 >= hs { d.ack_rtt } else { hs };
            if rtt <= 0 || window == 0 {
                continue;
            }
            let limited = (d.limited_ns.min(dur) as f64) / dur as f64;
            let pinned = f64::from(d.pinned) / f64::from(d.data_frames);
            let cap = f64::from(window) / secs(rtt);
            let achieved = d.bytes as f64 / secs(dur);
            let rtts = dur as f64 / rtt as f64;
            if limited < MIN_LIMITED_SHARE
                || f64::from(d.pinned) < MIN_WAITS_PER_RTT * rtts
                || achieved < MIN_ACHIEVED_SHARE * cap
            {
                continue;
            }
            let e = self.by.entry((c.server(), c.role(side))).or_default();
            e.group.add(c.stream, c.client_ep(), c.server());
            e.window.push(f64::from(window));
            e.window_max = e.window_max.max(d.rwin_max);
            e.cap.push(cap);
            e.achieved.push(achieved);
            e.rtt_ms.push(secs(rtt) * 1e3);
            e.bytes += d.bytes;
            e.duration_s += secs(dur);
            e.limited_s += secs(d.limited_ns.min(dur));
            e.limited_pct.push(limited * 100.0);
            e.pinned_pct.push(pinned * 100.0);
            e.full += u64::from(d.full);
            e.shrinking |= f64::from(window) < SHRUNK_SHARE * f64::from(d.rwin_max);
            e.frames.push(d.first_pinned);
            e.limits.add(&lm.of(side));
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for ((server, sender), e) in self.slow {
            let receiver = sender.other();
            let (Some(win), Some(mean)) = (e.window.median(), e.stall_mean_s.median()) else { continue };
            let sev = if e.limits.material(e.limits.rwnd) { Severity::Warning } else { Severity::Info };
            let mut f = Finding::new(
                CaseId::ReceiveWindowLimited,
                sev,
                e.group.subject("tcp", server),
                format!(
                    "The {r} read slowly and held data from the {s} back: its window (about {win:.0} bytes when full, \
                     at most {max} offered) filled and was reopened only after {mean:.1} s on average ({n} times, \
                     longest {long:.1} s), {stall:.1} s of the {dur:.1} s transfer; {kb:.0} KB at {rate:.1} KB/s. The \
                     {s} had more to send: the {r}'s application, not the network, set the pace.",
                    r = receiver.as_str(),
                    s = sender.as_str(),
                    max = e.window_max,
                    n = e.stalls,
                    long = e.stall_max_s,
                    stall = e.stall_s,
                    dur = e.duration_s,
                    kb = e.bytes as f64 / 1e3,
                    rate = e.bytes as f64 / 1e3 / e.duration_s.max(1e-9),
                ),
            )
            .with_measure("count", e.group.flows as f64, "count")
            .with_measure("window_bytes", win.round(), "bytes")
            .with_measure("window_max_bytes", f64::from(e.window_max), "bytes")
            .with_measure("reader_stalls", e.stalls as f64, "count")
            .with_measure("reader_stall_s", round(e.stall_s, 3), "s")
            .with_measure("reader_stall_mean_s", round(mean, 3), "s")
            .with_measure("reader_stall_max_s", round(e.stall_max_s, 3), "s")
            .with_measure("bytes", e.bytes as f64, "bytes")
            .with_measure("duration_s", round(e.duration_s, 3), "s")
            .with_measure("throughput_bytes_per_s", (e.bytes as f64 / e.duration_s.max(1e-9)).round(), "bytes/s")
            .with_measure("flows", e.group.flows as f64, "count")
            .with(Evidence::text("receiver", receiver.as_str()))
            .with(Evidence::text("sender", sender.as_str()));
            if let Some(ev) = e.frames.evidence("first_limited_frames") {
                f = f.with(ev);
            }
            f = e.limits.annotate(f, "receive_window_limited_time_pct", e.limits.rwnd);
            out.push(f.with_confidence(Confidence::Likely, &[CaseId::ZeroWindow]).with_fix(format!(
                "Look at the {r}'s application, not the network: it reads its socket slowly (blocking work between \
                     reads, a slow device such as a printer or a disk). Make it read sooner or in a separate thread; \
                     a larger receive buffer only delays the stall.",
                r = receiver.as_str()
            )));
        }
        for ((server, sender), e) in self.by {
            let (Some(win), Some(cap), Some(ach), Some(rtt)) =
                (e.window.median(), e.cap.median(), e.achieved.median(), e.rtt_ms.median())
            else {
                continue;
            };
            let receiver = sender.other();
            let limited = e.limited_pct.median().unwrap_or(0.0);
            let pinned = e.pinned_pct.median().unwrap_or(0.0);
            let why = if e.shrinking {
                format!(
                    "the window shrank well below the {} bytes it had offered: the {} reads more slowly than the data arrives",
                    e.window_max,
                    receiver.as_str()
                )
            } else {
                format!("its receive buffer is that small (largest window offered: {} bytes)", e.window_max)
            };
            let sev = if e.limits.material(e.limits.rwnd) { Severity::Warning } else { Severity::Info };
            let mut f = Finding::new(
                CaseId::ReceiveWindowLimited,
                sev,
                e.group.subject("tcp", server),
                format!(
                    "The {}'s receive window of {win:.0} bytes capped data from the {}: {:.0} KB/s achieved against a \
                     cap of {:.0} KB/s (window / {rtt:.1} ms round trip); the {} waited for window {limited:.0} % of \
                     the {:.1} s transfer ({:.1} s, {pinned:.0} % of segments sent into a full window): {why}.",
                    receiver.as_str(),
                    sender.as_str(),
                    ach / 1e3,
                    cap / 1e3,
                    sender.as_str(),
                    e.duration_s,
                    e.limited_s,
                ),
            )
            .with_measure("count", e.group.flows as f64, "count")
            .with_measure("window_bytes", win.round(), "bytes")
            .with_measure("window_max_bytes", f64::from(e.window_max), "bytes")
            .with_measure("rtt_ms", round(rtt, 2), "ms")
            .with_measure("cap_bytes_per_s", cap.round(), "bytes/s")
            .with_measure("throughput_bytes_per_s", ach.round(), "bytes/s")
            .with_measure("bytes", e.bytes as f64, "bytes")
            .with_measure("duration_s", round(e.duration_s, 3), "s")
            .with_measure("window_limited_s", round(e.limited_s, 3), "s")
            .with_measure("window_limited_pct", round(limited, 1), "%")
            .with_measure("pinned_pct", round(pinned, 1), "%")
            .with_measure("window_full_frames", e.full as f64, "count")
            .with_measure("flows", e.group.flows as f64, "count")
            .with(Evidence::text("receiver", receiver.as_str()))
            .with(Evidence::text("sender", sender.as_str()));
            if let Some(ev) = e.frames.evidence("first_limited_frames") {
                f = f.with(ev);
            }
            f = e.limits.annotate(f, "receive_window_limited_time_pct", e.limits.rwnd);
            let fix = if e.shrinking {
                format!(
                    "Make the {r} read its socket faster (no blocking work between reads), and give it room: do not set \
                     SO_RCVBUF (a fixed buffer turns autotuning off), keep net.ipv4.tcp_moderate_rcvbuf=1 and a \
                     net.ipv4.tcp_rmem maximum above the bandwidth-delay product.",
                    r = receiver.as_str()
                )
            } else {
                format!(
                    "Let the {r}'s receive buffer grow: do not set SO_RCVBUF small (a fixed buffer turns autotuning \
                     off), keep net.ipv4.tcp_moderate_rcvbuf=1 and a net.ipv4.tcp_rmem maximum above the \
                     bandwidth-delay product (at {rtt:.0} ms, {:.0} bytes of window per MB/s wanted).",
                    rtt * 1e3,
                    r = receiver.as_str(),
                )
            };
            let f = if e.shrinking {
                f.with_confidence(Confidence::Possible, &[CaseId::ZeroWindow])
            } else {
                f.with_confidence(Confidence::Likely, &[])
            };
            out.push(f.with_fix(fix));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::{CaseId, Confidence};

    /// The server sends `rounds` flights of `per_rtt` segments to the client over a 40 ms round
    /// trip, captured at the client, which acknowledges every second segment at once. The
    /// client advertises `window` raw (scale 7: × 128), or a 3 MB window.
    fn transfer(window: Option<u16>, rounds: u32, per_rtt: u32) -> Vec<netcase_model::Finding> {
        let mut s = Script::new();
        let mut c = s.conn(50000, 8080);
        c.c.win = window.unwrap_or(24_000);
        c.syn(0.0);
        c.synack(0.04);
        c.client_ack(0.0401);
        c.client_data(0.0402, 100);
        let mut t = 0.08;
        for _ in 0..rounds {
            for k in 0..per_rtt {
                c.server_data(t + f64::from(k) * 0.0001, 1448);
                if k % 2 == 1 || k + 1 == per_rtt {
                    c.client_ack(t + f64::from(k) * 0.0001 + 0.00002);
                }
            }
            t += 0.04;
        }
        c.server_fin(t);
        c.client_fin(t + 0.04);
        c.server_ack(t + 0.08);
        s.run()
    }

    #[test]
    fn small_window_caps_the_transfer() {
        // 128 × 128 = 16,384 bytes: 11 segments of 1448 fit (15,928), a 12th does not.
        let f = one(&transfer(Some(128), 40, 11), CaseId::ReceiveWindowLimited);
        assert_eq!(f.severity, netcase_model::Severity::Warning);
        assert!(f.measure("receive_window_limited_time_pct").unwrap() >= 25.0, "{f:?}");
        assert_eq!(f.text("receiver"), Some("client"));
        assert_eq!(f.measure("window_bytes"), Some(16384.0));
        let rtt = f.measure("rtt_ms").unwrap();
        assert!((39.9..=40.2).contains(&rtt), "{rtt}");
        let cap = f.measure("cap_bytes_per_s").unwrap();
        assert!((cap - 16384.0 / 0.04).abs() / cap < 0.05, "{cap}");
        let ach = f.measure("throughput_bytes_per_s").unwrap();
        assert!(ach > 0.8 * cap && ach <= 1.05 * cap, "{ach} vs {cap}");
        assert!(f.measure("window_limited_pct").unwrap() > 90.0);
        assert_eq!(f.confidence, Confidence::Likely);
    }

    /// Captured at the sender: ACK-clocked, every ACK (one per two segments, 40 ms after them)
    /// lets two more segments into the 16,384-byte window.
    #[test]
    fn small_window_seen_at_the_sender() {
        let mut s = Script::new();
        let mut c = s.conn(50000, 8080);
        c.c.win = 128;
        c.syn(0.0);
        c.synack(0.0001);
        c.client_ack(0.04);
        c.client_data(0.0401, 100);
        c.server_ack(0.0402);
        let n = 800usize;
        let mut sent: Vec<f64> = Vec::with_capacity(n);
        for i in 0..n {
            let mut t = sent.last().map_or(0.05, |p| p + 0.0001);
            if i >= 11 {
                t = t.max(sent[(i - 11) | 1] + 0.04 + 0.00001);
            }
            c.server_data(t, 1448);
            sent.push(t);
            if i % 2 == 1 {
                c.client_ack_at(t + 0.04, 1 + 1448 * (i as u32 + 1));
            }
        }
        let f = one(&s.run(), CaseId::ReceiveWindowLimited);
        assert_eq!(f.measure("window_bytes"), Some(16384.0));
        let rtt = f.measure("rtt_ms").unwrap();
        assert!((39.9..=40.2).contains(&rtt), "{rtt}");
        let ach = f.measure("throughput_bytes_per_s").unwrap();
        let cap = f.measure("cap_bytes_per_s").unwrap();
        assert!(ach > 0.85 * cap && ach <= 1.05 * cap, "{ach} vs {cap}");
        let p = f.measure("pinned_pct").unwrap();
        assert!((45.0..=55.0).contains(&p), "{p}");
    }

    /// At the receiver with 23 ACKs per round trip (more than the edges kept): still seen.
    #[test]
    fn larger_window_at_the_receiver() {
        // 512 × 128 = 65,536 bytes: 45 segments.
        let f = one(&transfer(Some(512), 40, 45), CaseId::ReceiveWindowLimited);
        assert_eq!(f.measure("window_bytes"), Some(65536.0));
    }

    /// At the receiver, flights that use half the window (the sender's pace): not the window.
    #[test]
    fn half_used_window_at_the_receiver_is_not_the_limit() {
        // 256 × 128 = 32,768 bytes; 11 segments (15,928 bytes) a round trip.
        none(&transfer(Some(256), 40, 11), CaseId::ReceiveWindowLimited);
    }

    /// The client reads slowly: its 4,096-byte window fills with two segments, and each time it
    /// acknowledges them (and reopens the window) only `stall` s later; 50 rounds, 145 KB.
    fn slow_reader(stall: f64, fill: bool) -> Vec<netcase_model::Finding> {
        let mut s = Script::new();
        let mut c = s.conn(50000, 9100);
        c.c.win = 32; // × 128
        c.syn(0.0);
        c.synack(0.001);
        c.client_ack(0.002);
        c.client_data(0.0021, 100);
        let mut t = 0.01;
        let mut acked = 1u32;
        for _ in 0..50 {
            c.server_data(t, 1448);
            if fill {
                c.server_data(t + 0.0001, 1448);
                acked += 2 * 1448;
            } else {
                acked += 1448;
            }
            c.client_ack_at(t + stall, acked);
            // The next data reaches the client a round trip (1 ms) after its ACK left.
            t += stall + 0.0015;
        }
        c.server_fin(t);
        c.client_fin(t + 0.001);
        c.server_ack(t + 0.002);
        s.run()
    }

    #[test]
    fn slow_reader_paces_the_transfer() {
        let f = one(&slow_reader(0.3, true), CaseId::ReceiveWindowLimited);
        // The one classification of the transfer's time gives the waits to the window (a
        // window-full flight, then a pause until it reopens), so the finding is a warning.
        assert_eq!(f.severity, netcase_model::Severity::Warning);
        assert!(f.measure("receive_window_limited_time_pct").unwrap() > 90.0, "{f:?}");
        assert_eq!(f.text("receiver"), Some("client"));
        // Every round but the last, which the FIN ends.
        assert_eq!(f.measure("reader_stalls"), Some(49.0));
        let mean = f.measure("reader_stall_mean_s").unwrap();
        assert!((0.29..=0.31).contains(&mean), "{mean}");
        assert!(f.measure("reader_stall_s").unwrap() > 14.0);
        assert_eq!(f.confidence, Confidence::Likely);
    }

    /// The same pauses with room left in the window: the sender had nothing more to send (its
    /// own application's pace), not the reader's.
    #[test]
    fn pauses_with_room_in_the_window_are_not_a_slow_reader() {
        none(&slow_reader(0.3, false), CaseId::ReceiveWindowLimited);
    }

    /// A window reopened within two round trips is ACK clocking, not a stall.
    #[test]
    fn prompt_window_updates_are_not_a_slow_reader() {
        none(&slow_reader(0.002, true), CaseId::ReceiveWindowLimited);
    }

    #[test]
    fn large_window_is_not_the_limit() {
        // The same flights into a 3 MB window: the sender's pace, not the window.
        none(&transfer(None, 40, 11), CaseId::ReceiveWindowLimited);
    }

    #[test]
    fn short_transfer_is_left_alone() {
        // 10 round trips (0.4 s, 160 KB): interactive-sized.
        none(&transfer(Some(128), 10, 11), CaseId::ReceiveWindowLimited);
    }

    /// Window scaling off and a 64 KiB window: no-window-scale's, not this case.
    #[test]
    fn unscaled_64k_window_is_left_to_no_window_scale() {
        let f = window_limited_bulk(false);
        none(&f, CaseId::ReceiveWindowLimited);
        one(&f, CaseId::NoWindowScale);
    }
}
