//! What limited each direction of a connection, T-RAT's way (Zhang et al., "On the
//! characteristics and origins of Internet flow rates", SIGCOMM 2002): a sender's data is
//! grouped into flights of one round trip, wherever the capture was taken, and each flight's
//! time goes to what held it — the receiver's window (the flight filled the window it was
//! given, or the window was zero), loss recovery (a retransmission), or the transport itself
//! (congestion window, path); pauses of more than a round trip between flights are the
//! application's (it had nothing to send). Long idle stretches (think time, keep-alive) are
//! left out: they are not part of a transfer.
//!
//! The throughput cases come out of this one classification: no-window-scale and
//! receive-window-limited are warnings only when the receive window held a material share of
//! the time data was moving ([`Limits::material`]), zero-window only when the zero window did;
//! their rules find the mechanism (an option missing from the SYNs, a sender pinned against the
//! edge, a window update that came late), the classification says whether it set the pace, and
//! every finding carries the split (`limited_by`) and its own factor's share. The latency cases
//! (retrans-hol-blocking: messages held behind a lost segment; nagle-delayed-ack: a small
//! segment held for a delayed ACK) are not about a transfer's rate; they carry the split of
//! their connections' time (loss recovery, transport) but are judged by their stalls.

use netcase_flow::{AnalysisFlags as AF, Side};
use netcase_model::{Evidence, Finding};

use super::{Common, RuleFrame};

/// A pause between flights longer than this (and than 10 RTTs) is idle, not an
/// application-limited part of a transfer.
const IDLE_NS: i64 = 1_000_000_000;
/// A flight carrying this share of the receiver's window, or leaving no room in it for another
/// full-size segment: the window holds the sender.
const WINDOW_FULL_SHARE: f64 = 0.8;
/// A factor holding at least this share of the time data was moving is a limit of the
/// transfer: the throughput cases (no-window-scale, receive-window-limited, zero-window) are
/// warnings only when the classification gives their factor this much; below it their
/// mechanism was seen but something else set the pace, and they stay information.
const MATERIAL_SHARE: f64 = 0.25;

/// Time by limiting factor, ns.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    /// Outstanding data filled the receiver's advertised window.
    pub(super) rwnd: i64,
    /// The receiver advertised a zero window.
    pub(super) zero: i64,
    /// Flights that carried a retransmission.
    pub(super) loss: i64,
    /// Pauses that ended with a retransmission: waiting for the retransmission timer.
    pub(super) rto: i64,
    /// Data outstanding, nothing of the above: congestion window or path.
    pub(super) transport: i64,
    /// Nothing outstanding between transmissions: the application had nothing to send.
    pub(super) app: i64,
}

impl Limits {
    /// All classified time.
    pub(super) fn total(&self) -> i64 {
        self.sending() + self.rto + self.app
    }

    /// The time data was moving (or held by the receiver's window): the flights, without the
    /// pauses of the application or of the retransmission timer.
    pub(super) fn sending(&self) -> i64 {
        self.rwnd + self.zero + self.loss + self.transport
    }

    /// A share of the classified time, 0–1.
    pub(super) fn share(&self, part: i64) -> f64 {
        let t = self.total();
        if t <= 0 {
            0.0
        } else {
            part as f64 / t as f64
        }
    }

    /// Adds another direction's time (findings about several connections).
    pub(super) fn add(&mut self, o: &Limits) {
        self.rwnd += o.rwnd;
        self.zero += o.zero;
        self.loss += o.loss;
        self.rto += o.rto;
        self.transport += o.transport;
        self.app += o.app;
    }

    /// Whether `part` held a material share of the time data was moving ([`MATERIAL_SHARE`]).
    pub(super) fn material(&self, part: i64) -> bool {
        let sending = self.sending();
        sending > 0 && part as f64 >= MATERIAL_SHARE * sending as f64
    }

    /// Puts the classification on a finding: the whole split as evidence (`limited_by`) and
    /// the share of the finding's own factor in the time data was moving as a measure (`key`,
    /// percent).
    pub(super) fn annotate(&self, f: Finding, key: &str, part: i64) -> Finding {
        if self.total() <= 0 {
            return f;
        }
        let sending = self.sending();
        let share = if sending > 0 { part as f64 / sending as f64 } else { 0.0 };
        f.with_measure(key, (share.min(1.0) * 1000.0).round() / 10.0, "%")
            .with(Evidence::text("limited_by", self.text()))
    }

    /// The classification as text, largest first: `receive window 82%, transport 11%, …`.
    pub(super) fn text(&self) -> String {
        let mut v = [
            ("receive window", self.rwnd),
            ("zero window", self.zero),
            ("loss recovery", self.loss),
            ("retransmission timer", self.rto),
            ("transport (congestion window, path)", self.transport),
            ("application", self.app),
        ];
        v.sort_by_key(|x| std::cmp::Reverse(x.1));
        v.iter()
            .filter(|(_, t)| *t > 0 && self.share(*t) >= 0.005)
            .map(|(what, t)| format!("{what} {:.0}%", self.share(*t) * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A flight: what one direction sent within one round trip.
#[derive(Debug, Default, Clone, Copy)]
struct Flight {
    start: i64,
    /// New payload bytes sent.
    bytes: u64,
    /// The receiver's window when the flight began (what the sender was allowed).
    window: u32,
    /// A retransmission was part of it.
    lost: bool,
    /// The largest segment of the direction so far (a full-size segment).
    max_len: u32,
}

impl Flight {
    /// The flight filled the window it was given.
    fn window_full(&self) -> bool {
        self.window > 0
            && (self.bytes as f64 >= WINDOW_FULL_SHARE * f64::from(self.window)
                || self.bytes + u64::from(self.max_len) > u64::from(self.window))
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Dir {
    limits: Limits,
    flight: Option<Flight>,
    /// The last payload this side sent (ts).
    last_data: i64,
    /// The receiver advertised a zero window since this side's last payload.
    zero_seen: bool,
}

/// Per connection: the classification of both directions.
#[derive(Debug, Default, Clone)]
pub(super) struct State {
    dirs: [Dir; 2],
}

impl State {
    /// What limited the data `side` sent.
    pub(super) fn of(&self, side: Side) -> Limits {
        let mut d = self.dirs[side.index()];
        if let Some(fl) = d.flight.take() {
            // The last flight, up to its last segment.
            let dur = d.last_data.saturating_sub(fl.start);
            Self::classify(&mut d.limits, &fl, dur, false);
        }
        d.limits
    }

    fn classify(l: &mut Limits, fl: &Flight, dur: i64, zero: bool) {
        if dur <= 0 {
            return;
        }
        if zero {
            l.zero += dur;
        } else if fl.lost {
            l.loss += dur;
        } else if fl.window_full() {
            l.rwnd += dur;
        } else {
            l.transport += dur;
        }
    }

    /// Groups each side's data into flights of one round trip and classifies each flight when
    /// it ends; a pause of more than a round trip between flights is the application's (or
    /// the receiver's, under a zero window; or loss recovery's, when a retransmission ends
    /// it), unless it is long enough to be idle.
    #[inline]
    pub(super) fn frame(&mut self, c: &Common, f: &RuleFrame) {
        if f.flags.intersects(AF::ZERO_WINDOW) {
            // This side's zero window holds the other side's data.
            self.dirs[f.side.other().index()].zero_seen = true;
        }
        if f.len == 0 || f.flags.intersects(AF::KEEP_ALIVE | AF::ZERO_WINDOW_PROBE) {
            return;
        }
        let rtt = c.rtt_for(f.side);
        if rtt <= 0 {
            return;
        }
        let me = f.side.index();
        let peer = f.side.other().index();
        let win = c.win[peer];
        let retrans = f.flags.intersects(AF::RETRANSMISSION);
        let d = &mut self.dirs[me];
        let zero = (win == 0 && c.acked[peer]) || d.zero_seen;
        let gap = f.ts_ns.saturating_sub(d.last_data);
        if let Some(fl) = d.flight {
            if gap > rtt {
                // The flight ended with its last segment; then a pause.
                let dur = d.last_data.saturating_sub(fl.start).max(0) + rtt;
                Self::classify(&mut d.limits, &fl, dur, false);
                let pause = gap - rtt;
                let window_full = fl.window_full();
                if zero {
                    d.limits.zero += pause;
                } else if window_full && !fl.lost && !retrans && pause < IDLE_NS.max(rtt.saturating_mul(10)) {
                    // The flight filled the window it was given and the sender waited for the
                    // receiver to open it again (a slow reader): the window's time, not the
                    // application's.
                    d.limits.rwnd += pause;
                } else if retrans {
                    d.limits.rto += pause;
                } else if pause < IDLE_NS.max(rtt.saturating_mul(10)) {
                    d.limits.app += pause;
                }
                d.flight = None;
            } else if f.ts_ns.saturating_sub(fl.start) >= rtt {
                Self::classify(&mut d.limits, &fl, f.ts_ns - fl.start, zero);
                d.flight = None;
            }
        }
        let fl = d.flight.get_or_insert(Flight { start: f.ts_ns, bytes: 0, window: win, lost: false, max_len: 0 });
        if retrans {
            fl.lost = true;
        } else {
            fl.bytes += u64::from(f.len);
        }
        fl.max_len = fl.max_len.max(f.len);
        d.last_data = f.ts_ns;
        d.zero_seen = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_factor_is_material_from_a_quarter_of_the_sending_time() {
        let l = Limits { rwnd: 25, transport: 75, app: 1000, ..Limits::default() };
        assert!(l.material(l.rwnd));
        let l = Limits { rwnd: 24, transport: 76, app: 1000, ..Limits::default() };
        assert!(!l.material(l.rwnd));
        // Nothing was sending: nothing is a limit.
        assert!(!Limits { app: 10, ..Limits::default() }.material(0));
    }

    #[test]
    fn text_lists_the_largest_share_first() {
        let l = Limits { rwnd: 80, transport: 15, app: 5, ..Default::default() };
        assert_eq!(l.text(), "receive window 80%, transport (congestion window, path) 15%, application 5%");
        assert!((l.share(l.rwnd) - 0.8).abs() < 1e-9);
    }
}
