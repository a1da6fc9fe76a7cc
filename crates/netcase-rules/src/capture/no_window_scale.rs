//! no-window-scale: one SYN lacked the window scale option, so no window can exceed 65,535
//! bytes and a bulk transfer runs at most 64 KiB per round trip. Reported when a transfer is
//! really held by that cap: bytes in flight pinned at a fully open window, or the achieved
//! rate close to window / RTT.

use std::collections::BTreeMap;

use netcase_flow::{AnalysisFlags as AF, ConnSummary, Endpoint};
use netcase_model::{CaseId, Evidence, Finding, Severity};

use super::util::{round, secs, FlowGroup, FrameSample, Samples};
use super::RuleFrame;
use super::{Common, Role};

/// A transfer this large (per direction) is a bulk transfer whose rate matters; smaller
/// ones end before the window matters.
const MIN_BULK_BYTES: u64 = 512 * 1024;
/// The receiver's window counts as fully open at 75 % of the 65,535-byte cap (a little is
/// always unread).
const OPEN_WINDOW: u32 = 49_152;
/// A frame is window-limited when bytes in flight reach 80 % of that open window.
const PINNED_SHARE: f64 = 0.8;
/// The transfer is held by the window when a fifth of its data frames were pinned…
const MIN_PINNED_FRAMES_SHARE: f64 = 0.2;
/// …or it achieved at least 60 % of window/RTT.
const MIN_ACHIEVED_SHARE: f64 = 0.6;
/// Largest window without scaling.
const MAX_UNSCALED: f64 = 65_535.0;

#[derive(Debug, Default, Clone, Copy)]
struct Dir {
    data_frames: u32,
    pinned: u32,
    bytes: u64,
    first_ts: i64,
    last_ts: i64,
    first_pinned: u64,
}

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    dirs: [Dir; 2],
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, c: &Common, f: &RuleFrame) {
        if f.len == 0 || f.flags.intersects(AF::RETRANSMISSION) {
            return;
        }
        let d = &mut self.dirs[f.side.index()];
        if d.data_frames == 0 {
            d.first_ts = f.ts_ns;
        }
        d.data_frames += 1;
        d.bytes += u64::from(f.len);
        d.last_ts = f.ts_ns;
        let w = c.win[f.side.other().index()];
        if let Some(bif) = f.bytes_in_flight {
            if w >= OPEN_WINDOW && f64::from(bif) >= PINNED_SHARE * f64::from(w) {
                d.pinned += 1;
                if d.first_pinned == 0 {
                    d.first_pinned = f.frame;
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    group: FlowGroup,
    cap: Samples,
    achieved: Samples,
    window: u32,
    rtt_ms: Samples,
    bytes: u64,
    pinned_pct: Samples,
    missing: &'static str,
    frames: FrameSample,
    limits: super::limits::Limits,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    by: BTreeMap<(Endpoint, Role), Entry>,
}

impl Agg {
    pub(super) fn closed(&mut self, st: &State, c: &Common, s: Option<&ConnSummary>, lm: &super::limits::State) {
        let Some(s) = s else { return };
        let (Some(syn), Some(synack)) = (s.syn, s.synack) else { return };
        let missing = match (syn.wscale.is_some(), synack.wscale.is_some()) {
            (true, true) => return,
            (false, true) => "client",
            (true, false) => "server",
            (false, false) => "both",
        };
        // The SYN is sent by the client; the flow engine's `a` is the first sender.
        let rtt = s.irtt_ns.filter(|r| *r > 0).or_else(|| s.rtt.map(|r| (r.median_us * 1000) as i64)).unwrap_or(0);
        if rtt <= 0 {
            return;
        }
        for side in [c.client, c.client.other()] {
            let d = st.dirs[side.index()];
            if d.bytes < MIN_BULK_BYTES || d.last_ts <= d.first_ts {
                continue;
            }
            // The receiver's largest advertised window.
            let recv = if side == netcase_flow::Side::A { s.ba } else { s.ab };
            let win = recv.window.map_or(0, |w| w.max).min(MAX_UNSCALED as u32);
            if win == 0 {
                continue;
            }
            let cap = f64::from(win) / secs(rtt);
            let achieved = d.bytes as f64 / secs(d.last_ts - d.first_ts);
            let pinned = f64::from(d.pinned) / f64::from(d.data_frames.max(1));
            if pinned < MIN_PINNED_FRAMES_SHARE && achieved < MIN_ACHIEVED_SHARE * cap {
                continue;
            }
            let e = self.by.entry((c.server(), c.role(side))).or_default();
            e.group.add(c.stream, c.client_ep(), c.server());
            e.cap.push(cap);
            e.achieved.push(achieved);
            e.window = e.window.max(win);
            e.rtt_ms.push(secs(rtt) * 1e3);
            e.bytes += d.bytes;
            e.limits.add(&lm.of(side));
            e.pinned_pct.push(pinned * 100.0);
            e.missing = missing;
            if d.first_pinned > 0 {
                e.frames.push(d.first_pinned);
            }
            e.frames.push(syn.frame);
            e.frames.push(synack.frame);
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for ((server, sender), e) in self.by {
            let (Some(cap), Some(ach), Some(rtt)) = (e.cap.median(), e.achieved.median(), e.rtt_ms.median()) else {
                continue;
            };
            let pinned = e.pinned_pct.median().unwrap_or(0.0);
            let who = match e.missing {
                "both" => "neither SYN offered window scaling".to_owned(),
                m => format!("the {m}'s SYN offered no window scaling"),
            };
            // A warning when the one classification of the transfer's time shows the window as a
            // limit; otherwise the missing option was seen but something else set the pace.
            let sev = if e.limits.material(e.limits.rwnd) { Severity::Warning } else { Severity::Info };
            let mut f = Finding::new(
                CaseId::NoWindowScale,
                sev,
                e.group.subject("tcp", server),
                format!(
                    "Data from the {} ran at {:.0} kB/s against a cap of {:.0} kB/s ({} bytes of window per {rtt:.1} ms \
                     round trip; {pinned:.0} % of segments sent with the window full): {who}.",
                    sender.as_str(),
                    ach / 1e3,
                    cap / 1e3,
                    e.window,
                ),
            )
            .with_measure("cap_bytes_per_s", cap.round(), "bytes/s")
            .with_measure("throughput_bytes_per_s", ach.round(), "bytes/s")
            .with_measure("window_bytes", f64::from(e.window), "bytes")
            .with_measure("rtt_ms", round(rtt, 2), "ms")
            .with_measure("bytes", e.bytes as f64, "bytes")
            .with_measure("window_limited_pct", round(pinned, 1), "%")
            .with_measure("flows", e.group.flows as f64, "count")
            .with(Evidence::text("missing_wscale", e.missing))
            .with(Evidence::text("sender", sender.as_str()));
            if let Some(ev) = e.frames.evidence("frames") {
                f = f.with(ev);
            }
            f = e.limits.annotate(f, "receive_window_limited_time_pct", e.limits.rwnd);
            out.push(f.with_fix(format!(
                "Enable net.ipv4.tcp_window_scaling=1 on the {} side and check that no middlebox strips the option \
                 from SYNs; with scaling the window can grow past 64 KiB and the rate past {:.0} kB/s.",
                if e.missing == "both" { "client and server" } else { e.missing },
                cap / 1e3
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::CaseId;

    #[test]
    fn window_caps_bulk_transfer() {
        let f = one(&window_limited_bulk(false), CaseId::NoWindowScale);
        let cap = f.measure("cap_bytes_per_s").unwrap();
        assert!((cap - 65535.0 / 0.05).abs() / cap < 0.05, "{cap}");
        let ach = f.measure("throughput_bytes_per_s").unwrap();
        assert!(ach > 0.8 * cap && ach < 1.2 * cap, "{ach} vs {cap}");
        assert_eq!(f.text("missing_wscale"), Some("client"));
        // The flight classification agrees: the window held the sender most of the time.
        let held = f.measure("receive_window_limited_time_pct").unwrap();
        assert!(held >= 80.0, "{held}");
        assert!(f.text("limited_by").unwrap().starts_with("receive window"), "{:?}", f.text("limited_by"));
    }

    #[test]
    fn scaled_window_is_healthy() {
        none(&window_limited_bulk(true), CaseId::NoWindowScale);
    }
}
