//! The handshake evidence model: what happened to each connection's SYNs, SYN/ACKs and handshake
//! ACK, gathered per server port, and the decision which case the evidence fits — worded by
//! accept_queue_overflow, syn_queue_overflow and syn_unanswered.
//!
//! * Accept queue full, `tcp_abort_on_overflow=0`: the server drops the client's final ACK,
//!   stays in SYN_RECV and retransmits its SYN/ACK *after* the client's ACK; the client's first
//!   data is retransmitted before the server acknowledges any of it. With `=1` the server
//!   answers the final ACK with RST at once.
//! * SYN queue full (or SYNs dropped while the accept queue is full): the client's SYN goes
//!   unanswered and is retransmitted (1 s, then 2 s, 4 s… on Linux) while the same server port
//!   answers other SYNs, so it is listening and alive.
//!
//! A server doing tcp_tw_recycle's PAWS check drops SYNs the same way, but selectively: only
//! those whose TSval went backwards against the last connection accepted from the same IP
//! (nat-timestamp-paws). A full queue drops regardless of direction. So the drops of
//! connections whose first SYN went backwards are held per (server, client IP) and counted
//! here only when nat_timestamp_paws says that IP's drops do not follow the PAWS pattern.

use std::net::IpAddr;

use netcase_flow::{AnalysisFlags as AF, Endpoint};
use netcase_model::Finding;
use netcase_wire::tcp_flags::{ACK, FIN, RST, SYN};

use super::util::{secs, sorted, FastMap, FrameSample, PeerSet, Samples};
use super::RuleFrame;
use super::{Common, Role};

/// Connections with dropped SYNs needed on a server port that answers other SYNs: one or two
/// SYN retransmissions can be plain loss on the path; queue drops come in bursts.
const SYNQ_MIN_CONNS: u64 = 3;
/// A server RST this soon after the client's handshake ACK (and no server data) is the
/// abort_on_overflow answer: at the server it is immediate; at the client it follows one
/// round trip, so the bound is 2 × RTT with a floor of 10 ms for scheduling noise.
const RST_AFTER_ACK_FLOOR_NS: i64 = 10_000_000;
/// Connections with an accept-queue sign needed on one server port: a lost handshake ACK or a
/// lost first data segment on a lossy path looks the same once or twice; overflow drops come
/// in bursts.
const ACCEPT_MIN_CONNS: u64 = 3;
/// A SYN/ACK repeated sooner than this after the previous one is a duplicate in the capture
/// (two capture points, VLAN copies), not the server's SYN/ACK timer (1 s on Linux).
const SYNACK_RETRY_MIN_NS: i64 = 200_000_000;
/// (server, client IP) pairs whose backwards-SYN drops are held for nat_timestamp_paws' verdict; beyond
/// this, new pairs' drops are counted at once (memory stays bounded).
const MAX_HELD: usize = 65_536;

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    syns: u16,
    first_syn_ts: i64,
    first_retry_ns: Option<i64>,
    syn_retry_frame: Option<u64>,
    synacks: u16,
    last_synack_ts: i64,
    /// SYN/ACK retransmitted after the client's ACK (the ACK was dropped).
    synack_after_ack: Option<u64>,
    /// Client data retransmitted before the server acknowledged any client data.
    client_retrans: Option<u64>,
    /// Server RST right after the handshake ACK, no server data.
    pub(super) rst_after_ack: Option<u64>,
    /// The last SYN's time (to leave out SYNs too close to the end of the capture).
    last_syn_ts: i64,
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, c: &Common, f: &RuleFrame) {
        let fl = f.tcp_flags;
        let from_client = f.side == c.client;
        if fl & SYN != 0 {
            if fl & ACK == 0 && from_client {
                self.syns = self.syns.saturating_add(1);
                self.last_syn_ts = f.ts_ns;
                if self.syns == 1 {
                    self.first_syn_ts = f.ts_ns;
                } else if self.syns == 2 && c.synack.is_none() {
                    self.first_retry_ns = Some(f.ts_ns - self.first_syn_ts);
                    self.syn_retry_frame = Some(f.frame);
                }
            } else if fl & ACK != 0 && !from_client {
                self.synacks = self.synacks.saturating_add(1);
                if c.hs_ack.is_some()
                    && self.synack_after_ack.is_none()
                    && !c.sent_data[f.side.index()]
                    && f.ts_ns - self.last_synack_ts >= SYNACK_RETRY_MIN_NS
                {
                    self.synack_after_ack = Some(f.frame);
                }
                self.last_synack_ts = f.ts_ns;
            }
            return;
        }
        if from_client {
            let si = f.side.other().index();
            let server_acked_data = c.acked[si] && c.ack[si] > 1;
            if f.len > 0
                && f.flags.intersects(AF::RETRANSMISSION)
                && c.synack.is_some()
                && !server_acked_data
                && !c.sent_data[si]
                && self.client_retrans.is_none()
            {
                self.client_retrans = Some(f.frame);
            }
        } else if fl & RST != 0 && self.rst_after_ack.is_none() && !c.closing() && !c.sent_data[f.side.index()] {
            if let Some(a) = c.hs_ack {
                let bound = (2 * c.rtt()).max(RST_AFTER_ACK_FLOOR_NS);
                if f.ts_ns - a <= bound && fl & FIN == 0 {
                    self.rst_after_ack = Some(f.frame);
                }
            }
        }
    }

    /// The server's own sign (a repeated SYN/ACK after the client's ACK, or a RST right after
    /// it); client data retransmitted before the server's ACK alone is ordinary loss.
    fn accept_sign(&self) -> bool {
        self.synack_after_ack.is_some() || self.rst_after_ack.is_some()
    }

    /// A SYN of the connection was dropped: retransmitted, or never answered.
    pub(super) fn syn_dropped(&self, c: &Common) -> bool {
        // A SYN answered by RST was refused (port-unreachable), not dropped.
        let refused = c.synack.is_none() && c.rst[c.client.other().index()].is_some();
        !refused && (self.syns >= 2 || (self.syns >= 1 && c.synack.is_none()))
    }
}

/// SYN drops of a set of connections.
#[derive(Debug, Default)]
pub(super) struct SynDrops {
    /// Connections whose SYN was retransmitted.
    pub(super) retried: u64,
    pub(super) dropped_syns: u64,
    pub(super) unanswered: u64,
    pub(super) retry_s: Samples,
    pub(super) frames: FrameSample,
    /// SYNs sent by the connections never answered.
    pub(super) unanswered_syns: u64,
    /// Connections with a dropped SYN.
    pub(super) conns: u64,
    pub(super) clients: PeerSet,
    /// The first and the last SYN of these connections.
    pub(super) first_ts: i64,
    pub(super) last_syn_ts: i64,
}

impl SynDrops {
    fn add(&mut self, st: &State, c: &Common) {
        self.conns += 1;
        self.clients.insert(c.client_ep().addr);
        if self.first_ts == 0 || st.first_syn_ts < self.first_ts {
            self.first_ts = st.first_syn_ts;
        }
        self.last_syn_ts = self.last_syn_ts.max(st.last_syn_ts);
        if c.synack.is_none() {
            self.unanswered_syns += u64::from(st.syns);
        }
        self.retried += u64::from(st.syns >= 2);
        self.dropped_syns += u64::from(if c.synack.is_some() { st.syns - 1 } else { st.syns });
        if c.synack.is_none() {
            self.unanswered += 1;
        }
        if let Some(r) = st.first_retry_ns {
            self.retry_s.push(secs(r));
        }
        if let Some(fr) = st.syn_retry_frame {
            self.frames.push(fr);
        }
    }

    fn merge(&mut self, o: &SynDrops) {
        self.clients.merge(&o.clients);
        self.conns += o.conns;
        self.unanswered_syns += o.unanswered_syns;
        if self.first_ts == 0 || (o.first_ts != 0 && o.first_ts < self.first_ts) {
            self.first_ts = o.first_ts;
        }
        self.last_syn_ts = self.last_syn_ts.max(o.last_syn_ts);
        self.retried += o.retried;
        self.dropped_syns += o.dropped_syns;
        self.unanswered += o.unanswered;
        self.retry_s.merge(&o.retry_s);
        self.frames.merge(&o.frames);
    }
}

#[derive(Debug, Default)]
pub(super) struct Entry {
    pub(super) conns: u64,
    pub(super) answered: u64,
    // SYN queue.
    pub(super) syn: SynDrops,
    // Accept queue.
    pub(super) accept_conns: u64,
    pub(super) synack_after_ack: u64,
    pub(super) client_retrans: u64,
    pub(super) rst_after_ack: u64,
    pub(super) accept_frames: FrameSample,
    pub(super) clients: PeerSet,
    pub(super) first_ts: i64,
    pub(super) last_ts: i64,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    by_server: FastMap<Endpoint, Entry>,
    /// Hosts that answered anything (a SYN/ACK, a RST, data) on any port.
    heard: std::collections::HashSet<IpAddr>,
    /// The last frame time of any connection (the end of the capture, as far as TCP goes).
    end_ts: i64,
    /// Handshakes seen from the server's side (SYN→SYN/ACK shorter than SYN/ACK→ACK) and from
    /// the client's.
    vantage: [u64; 2],
    /// Drops of connections whose first SYN went backwards, per (server, client IP): counted
    /// at the end unless nat_timestamp_paws explains that IP's drops.
    backwards: FastMap<(Endpoint, IpAddr), SynDrops>,
}

impl Agg {
    /// Folds a closed connection in; `backwards`: its first SYN's TSval was older than the last
    /// one the server accepted from the same IP (nat_timestamp_paws' view).
    pub(super) fn closed(&mut self, st: &State, c: &Common, backwards: bool) {
        self.end_ts = self.end_ts.max(c.last_ts);
        let si = c.client.other().index();
        if (c.synack.is_some() || c.rst[si].is_some() || c.sent_data[si]) && self.heard.len() < MAX_HELD {
            self.heard.insert(c.server().addr);
        }
        // The SYN the SYN/ACK answered is the last one before it (a retried SYN's first copy
        // is a second or more older).
        if let (true, Some((sa, _)), Some(a)) = (st.syns > 0, c.synack, c.hs_ack) {
            let s0 = if st.last_syn_ts <= sa { st.last_syn_ts } else { c.syn.map_or(sa, |x| x.0) };
            let (to_synack, to_ack) = (sa - s0, a - sa);
            if to_synack < to_ack {
                self.vantage[0] += 1;
            } else if to_ack < to_synack {
                self.vantage[1] += 1;
            }
        }
        if st.syns == 0 {
            return; // handshake not seen
        }
        let e = self.by_server.entry(c.server()).or_insert_with(|| Entry { first_ts: c.first_ts, ..Entry::default() });
        e.conns += 1;
        e.first_ts = e.first_ts.min(c.first_ts);
        e.last_ts = e.last_ts.max(c.last_ts);
        if c.synack.is_some() {
            e.answered += 1;
        }
        if st.syn_dropped(c) {
            let key = (c.server(), c.client_ep().addr);
            let held = if backwards && (self.backwards.len() < MAX_HELD || self.backwards.contains_key(&key)) {
                self.backwards.entry(key).or_default()
            } else {
                &mut e.syn
            };
            held.add(st, c);
        }
        if st.accept_sign() {
            e.accept_conns += 1;
            e.clients.insert(c.endpoint(Role::Client).addr);
            for (n, fr) in [
                (&mut e.synack_after_ack, st.synack_after_ack),
                (&mut e.client_retrans, st.client_retrans),
                (&mut e.rst_after_ack, st.rst_after_ack),
            ] {
                if let Some(fr) = fr {
                    *n += 1;
                    e.accept_frames.push(fr);
                }
            }
        }
    }

    /// Findings; `paws(ip)`: nat_timestamp_paws explains the SYN drops from `ip` (its backwards ones are
    /// then not a queue's).
    pub(super) fn finish(self, out: &mut Vec<Finding>, paws: impl Fn(IpAddr) -> bool) {
        let mut by_server = self.by_server;
        for ((server, client), held) in sorted(self.backwards) {
            if let Some(e) = by_server.get_mut(&server).filter(|_| !paws(client)) {
                e.syn.merge(&held);
            }
        }
        let mut unanswered = Vec::new();
        let mut unanswered_detail = Vec::new();
        for (server, e) in sorted(by_server) {
            let span = secs(e.last_ts - e.first_ts).max(1.0);
            if e.accept_conns >= ACCEPT_MIN_CONNS {
                out.push(super::accept_queue_overflow::finding(server, &e, span));
                continue;
            }
            let d = &e.syn;
            if d.dropped_syns == 0 {
                continue;
            }
            // SYNs in the last seconds of the capture may simply not have been answered yet.
            // A SYN needs at least one retransmission timeout (1 s) of capture after it to be
            // unanswered, three when it was never retried; "retries" closer than 200 ms apart
            // are not a TCP stack's (crafted packets, copies).
            let rto_retries = d.retried > 0 && d.retry_s.median().is_some_and(|r| r >= MIN_RETRY_S);
            let left = self.end_ts - d.last_syn_ts;
            let too_recent = left < RTO_NS || (!rto_retries && left < RECENT_NS);
            if too_recent {
                continue;
            }
            // The SYN queue is the cause only when the evidence fits it and not the others:
            // the listener answered other SYNs (alive, listening), drops come from several
            // client addresses (not one NAT address: SNAT collisions, PAWS), in a burst of
            // connections, and the capture shows the SYNs reaching the server (taken at the
            // server: a SYN lost on the way would not appear at all).
            let server_side = self.vantage[0] > self.vantage[1];
            let fits_queue = e.answered > 0 && d.conns >= SYNQ_MIN_CONNS && d.clients.len() >= 2 && server_side;
            if fits_queue {
                out.push(super::syn_queue_overflow::finding(server, &e, span));
            } else {
                unanswered.push((server, e.answered, d.retried, d.unanswered, d.unanswered_syns, d.dropped_syns));
                unanswered_detail.push(super::syn_unanswered::finding(
                    server,
                    &e,
                    self.heard.contains(&server.addr),
                    server_side,
                    self.vantage,
                ));
            }
        }
        // Many ports of one host without an answer: a scan or a host that is gone, once.
        let mut per_host: std::collections::BTreeMap<IpAddr, Vec<Finding>> = Default::default();
        for (f, (server, ..)) in unanswered_detail.into_iter().zip(unanswered.iter()) {
            per_host.entry(server.addr).or_default().push(f);
        }
        for (host, mut list) in per_host {
            if list.len() > MAX_UNANSWERED_PORTS {
                out.push(super::syn_unanswered::many_ports(host, &list, self.heard.contains(&host)));
            } else {
                out.append(&mut list);
            }
        }
    }
}

/// SYNs this close to the end of the capture, never retried, are not counted as unanswered.
const RECENT_NS: i64 = 3_000_000_000;
/// Linux's initial retransmission timeout: a SYN is unanswered only after this much capture.
const RTO_NS: i64 = 1_000_000_000;
/// A SYN repeated sooner than this is not a retransmission by the timer.
const MIN_RETRY_S: f64 = 0.2;
/// More server ports than this without answers on one host are reported as one finding.
const MAX_UNANSWERED_PORTS: usize = 5;

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::{CaseId, Finding};

    #[test]
    fn synack_retransmitted_after_final_ack() {
        let mut s = Script::new();
        for i in 0..3u16 {
            let t0 = f64::from(i);
            let mut c = s.conn(45000 + i, 8000);
            c.syn(t0);
            c.synack(t0 + 0.0002);
            c.client_ack(t0 + 0.0003);
            c.client_data(t0 + 0.0004, 100);
            // The server dropped the ACK: SYN/ACK again after 1 s, client data again.
            c.synack(t0 + 1.0002);
            c.client_retrans(t0 + 1.0003, 1, 100);
            c.server_ack(t0 + 1.0004);
        }
        let f = one(&s.run(), CaseId::AcceptQueueOverflow);
        assert_eq!(f.measure("count"), Some(3.0));
        assert_eq!(f.measure("synack_retrans_after_ack"), Some(3.0));
    }

    #[test]
    fn rst_after_handshake_is_abort_on_overflow() {
        let mut s = Script::new();
        for i in 0..3u16 {
            let mut c = s.conn(45000 + i, 8000);
            c.handshake(f64::from(i));
            c.server_rst(f64::from(i) + 0.0012);
        }
        let all = s.run();
        let f = one(&all, CaseId::AcceptQueueOverflow);
        assert_eq!(f.measure("rst_after_ack"), Some(3.0));
        none(&all, CaseId::LingerZeroRst);
    }

    #[test]
    fn one_lost_handshake_ack_is_not_overflow() {
        let mut s = Script::new();
        let mut c = s.conn(45000, 8000);
        c.syn(0.0);
        c.synack(0.0002);
        c.client_ack(0.0003);
        c.synack(1.0002);
        c.client_ack(1.0003);
        none(&s.run(), CaseId::AcceptQueueOverflow);
    }

    #[test]
    fn dropped_syns_retried_after_one_second() {
        // Captured at the server (its SYN/ACK follows a SYN at once, the client's ACK a round
        // trip later), clients on three addresses.
        let mut s = Script::new();
        for i in 0..6u16 {
            let t0 = f64::from(i) * 5.0;
            let mut c = s.conn_ips([10, 0, 0, 1 + (i % 3) as u8], 45000 + i, [10, 0, 0, 9], 8000);
            c.syn(t0);
            if i % 2 == 0 {
                c.syn(t0 + 1.0);
                c.synack(t0 + 1.0002);
                c.client_ack(t0 + 1.0012);
            } else {
                c.synack(t0 + 0.0002);
                c.client_ack(t0 + 0.0012);
            }
        }
        let f = s.run();
        none(&f, CaseId::AcceptQueueOverflow);
        none(&f, CaseId::SynUnanswered);
        let f = one(&f, CaseId::SynQueueOverflow);
        assert_eq!(f.measure("count"), Some(3.0));
        assert!((f.measure("retry_delay_s").unwrap() - 1.0).abs() < 0.01);
    }

    #[test]
    fn dropped_syns_from_one_address_or_seen_at_the_client_are_syn_unanswered() {
        // The same drops from one client address (a NAT: SNAT collisions and PAWS fit too), and
        // from several addresses but captured at the client (a SYN lost on the way looks the
        // same): the cause is not proven.
        for (one_ip, at_server) in [(true, true), (false, false)] {
            let mut s = Script::new();
            for i in 0..6u16 {
                let t0 = f64::from(i) * 5.0;
                let last = if one_ip { 1 } else { 1 + (i % 3) as u8 };
                let mut c = s.conn_ips([10, 0, 0, last], 45000 + i, [10, 0, 0, 9], 8000);
                let (to_synack, to_ack) = if at_server { (0.0002, 0.001) } else { (0.001, 0.0002) };
                c.syn(t0);
                let t = if i % 2 == 0 {
                    c.syn(t0 + 1.0);
                    t0 + 1.0
                } else {
                    t0
                };
                c.synack(t + to_synack);
                c.client_ack(t + to_synack + to_ack);
            }
            let f = s.run();
            none(&f, CaseId::SynQueueOverflow);
            let f = one(&f, CaseId::SynUnanswered);
            assert_eq!(f.measure("count"), Some(3.0), "one_ip {one_ip}");
            assert_eq!(f.measure("answered_conns"), Some(6.0));
            assert!(f.summary.contains("SNAT"), "{}", f.summary);
            assert!(f.text("check").is_some_and(|c| c.contains("ListenDrops")));
            assert_eq!(f.confidence, netcase_model::Confidence::Possible);
            assert!(
                f.alternatives.contains(&CaseId::SynQueueOverflow)
                    && f.alternatives.contains(&CaseId::SnatPortCollision)
            );
        }
    }

    #[test]
    fn syns_to_a_silent_host_are_syn_unanswered_with_its_candidates() {
        let mut s = Script::new();
        for i in 0..3u16 {
            let t0 = f64::from(i) * 10.0;
            let mut c = s.conn_ips([10, 0, 0, 1], 45000 + i, [10, 0, 0, 77], 8080);
            c.syn(t0);
            c.syn(t0 + 1.0);
            c.syn(t0 + 3.0);
        }
        s.conn_ips([10, 0, 9, 9], 50999, [10, 0, 0, 3], 9000).exchange(40.0);
        let f = s.run();
        let f = one(&f, CaseId::SynUnanswered);
        assert_eq!(f.severity, netcase_model::Severity::Warning);
        assert_eq!(f.measure("unanswered"), Some(3.0));
        assert_eq!(f.measure("syns"), Some(9.0));
        assert!(f.summary.contains("nothing at all came back"), "{}", f.summary);
        assert_eq!(f.confidence, netcase_model::Confidence::Possible);
        assert!(f.alternatives.is_empty(), "a silent host is no queue's doing: {:?}", f.alternatives);
        assert!(f.summary.contains("down or unreachable"), "{}", f.summary);
    }

    /// Connections from 10.0.0.1 to 10.0.0.2:8000, 3 s apart, each with its own random TCP
    /// timestamp offset (as Linux gives them: about half go backwards with no fault). The
    /// server drops every SYN of connection `i` (the first, and the retries after 1 s and 3 s)
    /// when `drop(i, backwards)`, `backwards` being whether its TSval is older than the last one
    /// of the last connection it accepted. Returns the findings and how many dropped
    /// connections went backwards and forward.
    fn one_ip_random_offsets(n: u16, seed: u64, drop: impl Fn(u16, bool) -> bool) -> (Vec<Finding>, u32, u32) {
        let mut s = Script::new();
        let mut x = seed;
        let mut last: Option<u32> = None;
        let (mut back_dropped, mut fwd_dropped) = (0, 0);
        for i in 0..n {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let base = (x >> 33) as u32;
            let t0 = f64::from(i) * 3.0;
            // TSval as testkit computes it.
            let ts = |t: f64| base.wrapping_add((t * 1000.0) as u32);
            let backwards = last.is_some_and(|l| (l.wrapping_sub(ts(t0)) as i32) > 0);
            let mut c = s.conn(45000 + i, 8000);
            c.c.ts_base = Some(base);
            if drop(i, backwards) {
                if backwards {
                    back_dropped += 1;
                } else {
                    fwd_dropped += 1;
                }
                c.syn(t0);
                c.syn(t0 + 1.0);
                c.syn(t0 + 2.5);
            } else {
                c.exchange(t0);
                last = Some(ts(t0 + 0.032));
            }
        }
        // Another host talks on after the last SYN (the capture goes on past the retries).
        let mut tail = s.conn_ips([10, 0, 9, 9], 50999, [10, 0, 0, 3], 9000);
        tail.exchange(f64::from(n) * 3.0 + 10.0);
        (s.run(), back_dropped, fwd_dropped)
    }

    #[test]
    fn paws_drops_of_backwards_syns_are_not_syn_queue_overflow() {
        // tcp_tw_recycle: exactly the SYNs that went backwards are dropped.
        let (all, back, fwd) = one_ip_random_offsets(20, 7, |_, backwards| backwards);
        assert!(back >= 5 && fwd == 0, "{back} backwards, {fwd} forward dropped");
        let f = one(&all, CaseId::NatTimestampPaws);
        assert_eq!(f.measure("count"), Some(f64::from(back)));
        none(&all, CaseId::SynQueueOverflow);
    }

    #[test]
    fn overflow_drops_regardless_of_timestamp_direction() {
        // A full SYN queue drops every third connection whatever its TSval did (most backwards
        // SYNs are answered), then, flooded, two in three (most backwards SYNs are dropped too,
        // as in the syn-queue-overflow lab: only the forward drops tell it from PAWS).
        for (seed, drop) in [(7, 1u16), (11, 2)] {
            let (all, back, fwd) = one_ip_random_offsets(20, seed, |i, _| (i + 2) % 3 < drop);
            assert!(back >= 3 && fwd >= 2, "{back} backwards, {fwd} forward dropped: not a mix");
            // Not PAWS (forward SYNs dropped too); from one address a full queue and an SNAT
            // collision look alike, so the finding names the candidates instead of one cause.
            let f = one(&all, CaseId::SynUnanswered);
            assert_eq!(f.measure("count"), Some(f64::from(back + fwd)));
            assert_eq!(f.measure("unanswered"), Some(f64::from(back + fwd)));
            none(&all, CaseId::NatTimestampPaws);
            none(&all, CaseId::SynQueueOverflow);
        }
    }

    #[test]
    fn overflow_beside_paws_counts_only_the_unexplained_drops() {
        // The NAT address's backwards SYNs dropped by PAWS, and three other clients' SYNs
        // dropped by a full queue on the same port.
        let mut s = Script::new();
        for i in 0..8u16 {
            let t0 = f64::from(i) * 2.0;
            let mut c = s.conn(46000 + i, 8000);
            c.c.ts_base = Some(if i % 2 == 0 { 9_000_000 } else { 1_000 });
            if i % 2 == 1 {
                c.syn(t0);
                c.syn(t0 + 1.0);
            } else {
                c.handshake(t0);
                c.client_fin(t0 + 0.03);
                c.server_fin(t0 + 0.031);
                c.client_ack(t0 + 0.032);
            }
        }
        for k in 0..3u8 {
            let t0 = 20.0 + f64::from(k);
            let mut c = s.conn_ips([10, 0, 1, 10 + k], 50000, [10, 0, 0, 2], 8000);
            c.syn(t0);
            c.syn(t0 + 1.0);
            c.synack(t0 + 1.0002);
            c.client_ack(t0 + 1.0014);
        }
        s.conn_ips([10, 0, 9, 9], 50999, [10, 0, 0, 3], 9000).exchange(40.0);
        let all = s.run();
        assert_eq!(one(&all, CaseId::NatTimestampPaws).measure("count"), Some(4.0));
        let f = one(&all, CaseId::SynQueueOverflow);
        assert_eq!(f.measure("count"), Some(3.0));
        assert_eq!(f.measure("dropped_syns"), Some(3.0));
        assert_eq!(f.measure("unanswered"), Some(0.0));
    }

    #[test]
    fn clean_handshakes_are_healthy() {
        let mut s = Script::new();
        for i in 0..4u16 {
            let mut c = s.conn(45000 + i, 8000);
            c.handshake(f64::from(i));
            c.client_data(f64::from(i) + 0.01, 100);
            c.server_data(f64::from(i) + 0.02, 100);
        }
        let f = s.run();
        none(&f, CaseId::AcceptQueueOverflow);
        none(&f, CaseId::SynQueueOverflow);
    }
}
