//! close-wait-leak, from a capture: one side closed (FIN), the other acknowledged the FIN —
//! so its socket is in CLOSE_WAIT — and then neither sent data nor closed for a long time.
//! A half-close in use (the peer still sending after the FIN) is not a leak; a capture that
//! ends right after the FIN says nothing. From the capture alone a socket the process holds
//! and never closes cannot be told from one that was never accepted (close-wait-in-accept-
//! queue) unless it sent data (then the process had it): the finding says so.

use std::collections::BTreeMap;

use netcase_flow::Endpoint;
use netcase_model::{CaseId, Confidence, Evidence, Finding, Severity};
use netcase_wire::tcp_flags::{ACK, FIN, RST};

use super::util::{pl, round, secs, seq_gt, FlowGroup, FrameSample, Samples};
use super::{Common, Role, RuleFrame};

/// A FIN left unanswered at least this long (to the late FIN or the capture's end) counts.
/// A process closes within milliseconds of reading end-of-file; a second is a leak or a stuck
/// handler for that long.
const MIN_HELD_NS: i64 = 1_000_000_000;
/// Held this long, one connection is a warning on its own.
const LONG_HELD_NS: i64 = 30_000_000_000;
/// Or this many connections held at least [`MIN_HELD_NS`].
const WARN_CONNECTIONS: u64 = 3;
/// A client holding the sockets (the server closed first) is a warning only from this many
/// connections on: client pools often notice a closed connection only at the next checkout,
/// which is harmless until stale connections pile up.
const WARN_CLIENT_CONNECTIONS: u64 = 10;

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    /// The first FIN, before the other side closed: (side that closed, ts, frame, relative
    /// sequence number just after the FIN).
    fin: Option<(netcase_flow::Side, i64, u64, u32)>,
    /// The other side acknowledged the FIN: it is in CLOSE_WAIT.
    acked: bool,
    /// The other side sent data after the FIN (a half-close in use).
    data_after: bool,
    /// The other side ended it (FIN or RST): ts.
    ended: Option<i64>,
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, c: &Common, f: &RuleFrame) {
        let Some((closer, _, _, end)) = self.fin else {
            if f.tcp_flags & FIN != 0 && f.tcp_flags & RST == 0 && !c.closing() {
                let after = f.seq.wrapping_add(f.len).wrapping_add(1);
                self.fin = Some((f.side, f.ts_ns, f.frame, after));
            }
            return;
        };
        if f.side == closer || self.ended.is_some() {
            return;
        }
        if f.tcp_flags & (FIN | RST) != 0 {
            self.ended = Some(f.ts_ns);
            return;
        }
        if f.len > 0 {
            self.data_after = true;
        }
        if f.tcp_flags & ACK != 0 && !seq_gt(end, f.ack) {
            self.acked = true;
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    group: FlowGroup,
    held_s: Samples,
    /// Held until the capture ended (never closed while it ran).
    open_at_end: u64,
    /// The holder had sent data on the connection (the process had accepted it).
    spoke: u64,
    frames: FrameSample,
}

/// A connection left in CLOSE_WAIT (judged at the end, against the capture's last timestamp).
#[derive(Debug, Clone, Copy)]
struct Cand {
    holder_ep: Endpoint,
    holder: Role,
    stream: u32,
    peer: Endpoint,
    fin_ts: i64,
    /// The holder's late FIN or RST.
    ended: Option<i64>,
    frame: u64,
    /// The holder sent data on the connection.
    spoke: bool,
}

/// Candidates are judged at the end, against the capture's last timestamp.
#[derive(Debug, Default)]
pub(super) struct Agg {
    cands: Vec<Cand>,
    last_ts: i64,
}

impl Agg {
    pub(super) fn closed(&mut self, st: &State, c: &Common) {
        self.last_ts = self.last_ts.max(c.last_ts);
        let Some((closer, fin_ts, fin_frame, _)) = st.fin else { return };
        if !st.acked || st.data_after {
            return;
        }
        let holder_side = closer.other();
        let holder = c.role(holder_side);
        let holder_ep = c.ep[holder_side.index()];
        let peer = c.ep[closer.index()];
        let spoke = c.sent_data[holder_side.index()];
        // A capture that starts mid-connection may have missed the holder's own FIN (then the
        // "FIN" seen is the answer to it and the ACK is the last of a normal close): judged
        // only when the handshake was seen or the holder sent data in the capture (its FIN
        // would then come after that data).
        if c.syn.is_none() && c.synack.is_none() && !spoke {
            return;
        }
        self.cands.push(Cand {
            holder_ep,
            holder,
            stream: c.stream,
            peer,
            fin_ts,
            ended: st.ended,
            frame: fin_frame,
            spoke,
        });
    }

    /// `clock_broken`: the capture's timestamps jump or step back (merged files), so the time
    /// from a FIN to the capture's end means nothing; only FINs answered later are judged.
    pub(super) fn finish(self, clock_broken: bool, out: &mut Vec<Finding>) {
        let mut by: BTreeMap<(Endpoint, Role), Entry> = BTreeMap::new();
        for Cand { holder_ep, holder, stream, peer, fin_ts, ended, frame, spoke } in self.cands {
            if ended.is_none() && clock_broken {
                continue;
            }
            let until = ended.unwrap_or(self.last_ts);
            let held = until.saturating_sub(fin_ts);
            if held < MIN_HELD_NS {
                continue;
            }
            // Grouped by the holder's listening endpoint (server) or, for a client, by the
            // server it keeps connections to (a pool).
            let key = if holder == Role::Server { holder_ep } else { peer };
            let e = by.entry((key, holder)).or_default();
            let (client, server) = if holder == Role::Server { (peer, holder_ep) } else { (holder_ep, peer) };
            e.group.add(stream, client, server);
            e.held_s.push(secs(held));
            if ended.is_none() {
                e.open_at_end += 1;
            }
            if spoke {
                e.spoke += 1;
            }
            e.frames.push(frame);
        }
        for ((key, holder), e) in by {
            let n = e.group.flows;
            let longest = e.held_s.max().unwrap_or(0.0);
            let median = e.held_s.median().unwrap_or(0.0);
            let severity = match holder {
                Role::Server if n >= WARN_CONNECTIONS || longest >= secs(LONG_HELD_NS) => Severity::Warning,
                Role::Client if n >= WARN_CLIENT_CONNECTIONS => Severity::Warning,
                _ => Severity::Info,
            };
            let who = match holder {
                Role::Server => format!("{key}"),
                Role::Client => format!("clients of {key}"),
            };
            let open = if e.open_at_end > 0 {
                format!(" ({} still open when the capture ended)", e.open_at_end)
            } else {
                String::new()
            };
            // Data from the holder proves the process had the socket; without it the socket
            // may never have been accepted.
            let (confidence, alternatives, owner): (_, &[CaseId], _) = if e.spoke == n {
                (Confidence::Likely, &[], "The process had these sockets (it sent data on them).")
            } else {
                (
                    Confidence::Possible,
                    &[CaseId::CloseWaitInAcceptQueue],
                    "The capture cannot tell a socket the process holds from one it never accepted \
                     (close-wait-in-accept-queue): `ss -tanp state close-wait` shows the owner, or `netcase check`.",
                )
            };
            let f = Finding::new(
                CaseId::CloseWaitLeak,
                severity,
                e.group.subject("tcp", key),
                format!(
                    "{who} acknowledged the peer's FIN on {} and then neither sent nor closed for {:.1} s \
                     (median; longest {:.1} s){open}: in CLOSE_WAIT all that time, the application had not \
                     called close(). {owner}",
                    pl(n, "connection", "connections"),
                    median,
                    longest,
                ),
            )
            .with_confidence(confidence, alternatives)
            .with_measure("count", n as f64, "count")
            .with_measure("held_s", round(median, 3), "s")
            .with_measure("max_held_s", round(longest, 3), "s")
            .with_measure("open_at_end", e.open_at_end as f64, "count")
            .with(Evidence::text("holder", holder.as_str()));
            let f = match e.frames.evidence("fin_frames") {
                Some(ev) => f.with(ev),
                None => f,
            };
            out.push(f.with_fix(
                "Close the socket when read() returns 0 (end of file) on every path, including errors; give pools \
                 and handlers timeouts (pool checkout, idle, transaction) so a stuck request cannot hold its \
                 connection forever.",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::{CaseId, Severity};

    fn conn(s: &mut Script, port: u16, t: f64, server_close_after: Option<f64>) {
        let mut c = s.conn(port, 6379);
        c.handshake(t);
        c.client_data(t + 0.01, 50);
        c.server_ack(t + 0.011);
        c.client_fin(t + 0.02);
        c.server_ack(t + 0.021);
        if let Some(d) = server_close_after {
            c.server_fin(t + 0.02 + d);
            c.client_ack(t + 0.0201 + d);
        }
    }

    #[test]
    fn fins_left_unanswered_are_close_wait() {
        let mut s = Script::new();
        for i in 0..4u16 {
            conn(&mut s, 40_000 + i, f64::from(i) * 0.1, Some(2.0));
        }
        let f = s.run();
        let f = one(&f, CaseId::CloseWaitLeak);
        assert_eq!(f.measure("count"), Some(4.0));
        assert!((f.measure("held_s").unwrap() - 2.0).abs() < 0.01);
        assert_eq!(f.severity, Severity::Warning);
        // The server never sent data: it may never have accepted them.
        assert_eq!(f.alternatives, vec![CaseId::CloseWaitInAcceptQueue]);
    }

    #[test]
    fn a_prompt_close_or_a_half_close_in_use_is_healthy() {
        let mut s = Script::new();
        for i in 0..4u16 {
            conn(&mut s, 40_000 + i, f64::from(i) * 0.1, Some(0.001));
        }
        // Half-close: the server answers after the client's FIN, then closes.
        let mut c = s.conn(41_000, 80);
        c.handshake(1.0);
        c.client_data(1.01, 50);
        c.client_fin(1.02);
        c.server_data(3.0, 500);
        c.server_fin(3.01);
        none(&s.run(), CaseId::CloseWaitLeak);
    }
}
