//! pmtu-blackhole: segments above the path MTU vanish while smaller packets pass, because the
//! ICMP "fragmentation needed" (IPv4 type 3 code 4) or "packet too big" (ICMPv6 type 2) that
//! should tell the sender to shrink them is blocked or ignored. The connection hangs at its
//! first full-size segment (or, with `tcp_mtu_probing`, crawls on after many timeouts).
//!
//! Evidence, per connection and direction, read at the sender's side of the black hole:
//! - a *stuck segment*: a data segment of at least [`MIN_STUCK_LEN`] bytes, larger than every
//!   segment of the same sender that was acknowledged before it, sent again at (at least) the
//!   same size [`MIN_RESENDS`] times or more without the receiver's cumulative ACK passing it;
//! - how it ended: never acknowledged (a hang), acknowledged only after the sender resent it
//!   smaller (the size was the problem: PMTU discovery or MTU probing finally worked), or
//!   acknowledged after a resend of the same size (ordinary loss: not this case);
//! - ICMP fragmentation-needed / packet-too-big quoting the flow, with the next-hop MTU;
//! - whether the receiver was alive meanwhile (it sent anything a round trip or more after the
//!   second resend, without acknowledging it: that copy was lost while the receiver was
//!   there), and whether it acknowledged later data meanwhile (duplicate ACKs or SACK: the
//!   path carried the segments after the stuck one, so their size was not the problem).
//!
//! Healthy PMTU discovery (an ICMP arrives and the sender resends smaller at once) has no
//! stuck segment and gives no finding.

use std::collections::BTreeMap;
use std::net::IpAddr;

use netcase_flow::{AnalysisFlags as AF, ConnSummary, Endpoint};
use netcase_model::{CaseId, Confidence, Evidence, Finding, Severity};
use netcase_wire::tcp_flags::{ACK, RST, SYN};
use netcase_wire::{Packet, Quoted, Transport};

use super::util::{pl, round, secs, seq_gt, FlowGroup, FrameSample, Samples};
use super::RuleFrame;
use super::{Common, Role};

/// A lost segment smaller than this is never a path-MTU problem: every path carries IPv4
/// packets of 1064 bytes and more in practice (IPv6 guarantees 1280; PPPoE, VPNs and tunnels
/// take between 8 and about 100 bytes off 1500).
const MIN_STUCK_LEN: u32 = 1024;
/// Resends at the stuck size (after the first transmission) that must vanish: one lost copy
/// is ordinary loss, three copies lost in a row at one size while nothing of that size was
/// ever delivered is what a black hole does.
const MIN_RESENDS: u32 = 2;
/// ICMP errors remembered (distinct quoted flows); beyond this the capture is an ICMP flood and
/// further ones are ignored.
const MAX_ICMP_FLOWS: usize = 4096;

/// The ICMP fragmentation-needed (IPv4 3/4) or packet-too-big (ICMPv6 2/0) in `pkt` that quotes
/// a TCP segment: the quoted header and the next-hop MTU it announces (0 when the router did
/// not say, as pre-RFC 1191 routers do).
#[inline]
pub(super) fn frag_needed(pkt: &Packet<'_>) -> Option<(Quoted, u32)> {
    let Some(Transport::Icmp(icmp)) = pkt.transport else { return None };
    let mtu = if icmp.v6 {
        if icmp.icmp_type != 2 {
            return None;
        }
        let b = icmp.body.get(..4)?;
        u32::from_be_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?])
    } else {
        if icmp.icmp_type != 3 || icmp.code != 4 {
            return None;
        }
        // The 4 bytes after the ICMP header: unused (2), next-hop MTU (2).
        u32::from(u16::from_be_bytes([*icmp.body.get(2)?, *icmp.body.get(3)?]))
    };
    let q = icmp.quoted?;
    (q.proto == 6).then_some((q, mtu))
}

/// The largest not-yet-acknowledged first transmission of a size above anything delivered.
#[derive(Debug, Clone, Copy)]
struct Cand {
    seq: u32,
    end: u32,
    len: u32,
    ts: i64,
    frame: u64,
    /// Resent before it was acknowledged: the ACK may be for the resend.
    resent: bool,
}

/// A segment sent again and again without being acknowledged.
#[derive(Debug, Clone, Copy, Default)]
struct Stuck {
    seq: u32,
    /// The largest size it was sent at.
    len: u32,
    /// Its first transmission (or first resend when the first was not captured).
    start_ts: i64,
    start_frame: u64,
    last_ts: i64,
    /// Resends at `len` or more.
    resends: u32,
    /// Size of the last resend.
    last_len: u32,
    /// Smallest resend below `len` (0 = none).
    shrunk: u32,
    /// When the [`MIN_RESENDS`]th resend went (0 = not yet).
    armed_ts: i64,
    /// The receiver sent something a round trip or more after that resend (without
    /// acknowledging the segment: that resend was lost too, while the receiver was there).
    peer_alive: bool,
    /// The receiver acknowledged later data meanwhile (duplicate ACKs, SACK).
    later_delivered: bool,
    /// A SACK block at least `len` long: a segment of that size got through.
    big_sacked: bool,
}

/// What one direction's stuck segments came to.
#[derive(Debug, Clone, Copy, Default)]
struct Outcome {
    episodes: u32,
    resends: u32,
    /// Largest stuck size.
    len: u32,
    /// Smallest size that got a stuck segment through (0 = none).
    shrunk: u32,
    /// Longest time a segment was stuck, ns.
    longest: i64,
    /// Still stuck at the end of the connection (or the capture).
    hung: bool,
    /// Stuck segments that went through once resent smaller.
    recovered: u32,
    peer_alive: bool,
    later_delivered: bool,
    first_frame: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Dir {
    /// Largest payload of this sender acknowledged without having been resent.
    delivered_max: u32,
    cand: Option<Cand>,
    stuck: Option<Stuck>,
    out: Outcome,
}

impl Dir {
    /// Ends the stuck episode: `acked_at` is when the receiver's ACK passed it; when it never
    /// did, the segment was stuck until `end` (the connection's last frame).
    fn settle(&mut self, acked_at: Option<i64>, end: i64) {
        let Some(s) = self.stuck.take() else { return };
        if s.resends < MIN_RESENDS || s.big_sacked {
            return;
        }
        // Acknowledged after a resend of the full size: the size passes, it was loss.
        let recovered = match acked_at {
            Some(_) if s.last_len >= s.len => return,
            Some(_) => true,
            None => false,
        };
        let o = &mut self.out;
        o.episodes += 1;
        o.resends += s.resends;
        o.len = o.len.max(s.len);
        if s.shrunk > 0 && recovered {
            o.shrunk = if o.shrunk == 0 { s.shrunk } else { o.shrunk.min(s.shrunk) };
        }
        o.longest = o.longest.max(acked_at.unwrap_or(end.max(s.last_ts)) - s.start_ts);
        o.hung |= !recovered;
        o.recovered += u32::from(recovered);
        o.peer_alive |= s.peer_alive;
        o.later_delivered |= s.later_delivered;
        if o.first_frame == 0 {
            o.first_frame = s.start_frame;
        }
    }
}

#[derive(Debug, Default, Clone)]
pub(super) struct State {
    dirs: [Dir; 2],
}

impl State {
    #[inline]
    pub(super) fn frame(&mut self, c: &Common, f: &RuleFrame) {
        let fl = f.tcp_flags;
        if fl & SYN != 0 {
            return;
        }
        // This frame as the receiver of the other direction's data.
        if fl & ACK != 0 {
            let d = &mut self.dirs[f.side.other().index()];
            if let Some(cd) = d.cand {
                if !seq_gt(cd.end, f.ack) {
                    if !cd.resent {
                        d.delivered_max = d.delivered_max.max(cd.len);
                    }
                    d.cand = None;
                }
            }
            if let Some(s) = d.stuck.as_mut() {
                s.peer_alive |= s.armed_ts > 0 && f.ts_ns >= s.armed_ts + c.rtt();
                // SACK blocks are absolute; the ACK is relative to the same base.
                let base = f.ack_raw.wrapping_sub(f.ack);
                for &(l, r) in f.options.sack_blocks() {
                    let (l, r) = (l.wrapping_sub(base), r.wrapping_sub(base));
                    if seq_gt(r, l) && seq_gt(l, f.ack) {
                        s.later_delivered = true;
                        if r.wrapping_sub(l) >= s.len {
                            s.big_sacked = true;
                        }
                    }
                }
                if f.flags.intersects(AF::DUPLICATE_ACK) {
                    s.later_delivered = true;
                }
                if seq_gt(f.ack, s.seq) {
                    d.settle(Some(f.ts_ns), f.ts_ns);
                }
            }
        } else if let Some(s) = self.dirs[f.side.other().index()].stuck.as_mut() {
            s.peer_alive |= s.armed_ts > 0 && f.ts_ns >= s.armed_ts + c.rtt();
        }
        if f.len == 0 || fl & RST != 0 {
            return;
        }
        // This frame as data of its own direction.
        let x = f.side.index();
        let y = f.side.other().index();
        let d = &mut self.dirs[x];
        let end = f.seq.wrapping_add(f.len);
        if !f.flags.intersects(AF::RETRANSMISSION) {
            if f.len > d.delivered_max && d.cand.is_none_or(|cd| f.len > cd.len) {
                d.cand = Some(Cand { seq: f.seq, end, len: f.len, ts: f.ts_ns, frame: f.frame, resent: false });
            }
            return;
        }
        if f.flags.intersects(AF::SPURIOUS_RETRANSMISSION) || (c.acked[y] && seq_gt(c.ack[y], f.seq)) {
            return;
        }
        if let Some(cd) = d.cand.as_mut() {
            if !seq_gt(f.seq, cd.seq) && seq_gt(end, cd.seq) {
                cd.resent = true;
            }
        }
        match d.stuck.as_mut() {
            Some(s) if s.seq == f.seq => {
                if f.len >= s.len {
                    s.resends += 1;
                    s.len = f.len;
                    if s.resends == MIN_RESENDS {
                        s.armed_ts = f.ts_ns;
                    }
                } else {
                    s.shrunk = if s.shrunk == 0 { f.len } else { s.shrunk.min(f.len) };
                }
                s.last_len = f.len;
                s.last_ts = f.ts_ns;
            }
            // A later segment resent while one is stuck (a tail loss probe): the same episode.
            Some(s) if seq_gt(f.seq, s.seq) => {}
            // An earlier one (the tail probe came first, then the timeout resent the head):
            // the head is what holds the stream.
            Some(_) | None if f.len >= MIN_STUCK_LEN && f.len > d.delivered_max => {
                let (start_ts, start_frame) =
                    d.cand.filter(|cd| cd.seq == f.seq).map_or((f.ts_ns, f.frame), |cd| (cd.ts, cd.frame));
                d.stuck = Some(Stuck {
                    seq: f.seq,
                    len: f.len,
                    start_ts,
                    start_frame,
                    last_ts: f.ts_ns,
                    resends: 1,
                    last_len: f.len,
                    ..Stuck::default()
                });
            }
            _ => {}
        }
    }
}

/// ICMP fragmentation-needed seen for one quoted flow (sender → receiver).
#[derive(Debug, Clone, Copy)]
struct Icmp {
    count: u32,
    /// Smallest non-zero next-hop MTU (0 = none announced).
    mtu: u32,
    frame: u64,
    /// The router that sent it.
    from: IpAddr,
}

#[derive(Debug, Default)]
struct Entry {
    group: FlowGroup,
    episodes: u64,
    resends: u64,
    len: u32,
    shrunk: u32,
    delivered: Samples,
    mss: u32,
    longest_ns: i64,
    hung: u64,
    recovered: u64,
    icmp: u64,
    mtu: u32,
    routers: Vec<IpAddr>,
    confidence: Option<Confidence>,
    receivers: Vec<IpAddr>,
    frames: FrameSample,
}

#[derive(Debug, Default)]
pub(super) struct Agg {
    /// ICMP errors by the quoted flow (source, destination): the source is the sender told to
    /// shrink its packets.
    icmp: BTreeMap<(Endpoint, Endpoint), Icmp>,
    by: BTreeMap<(Endpoint, Role), Entry>,
}

impl Agg {
    /// An ICMP fragmentation-needed / packet-too-big from `from` quoting `q` (see [`frag_needed`]).
    pub(super) fn frag_needed(&mut self, frame: u64, from: IpAddr, q: &Quoted, mtu: u32) {
        let key = (Endpoint { addr: q.src, port: q.src_port }, Endpoint { addr: q.dst, port: q.dst_port });
        if self.icmp.len() >= MAX_ICMP_FLOWS && !self.icmp.contains_key(&key) {
            return;
        }
        let e = self.icmp.entry(key).or_insert(Icmp { count: 0, mtu: 0, frame, from });
        e.count += 1;
        if mtu > 0 && (e.mtu == 0 || mtu < e.mtu) {
            e.mtu = mtu;
        }
    }

    pub(super) fn closed(&mut self, st: &State, c: &Common, _s: Option<&ConnSummary>) {
        for side in [c.client, c.client.other()] {
            let mut d = st.dirs[side.index()];
            d.settle(None, c.last_ts);
            let o = d.out;
            if o.episodes == 0 {
                continue;
            }
            let sender = c.ep[side.index()];
            let receiver = c.ep[side.other().index()];
            let icmp = self.icmp.get(&(sender, receiver)).copied();
            // Certain: a router said the packets were too big, or the size was shown (copies at
            // one size vanished, a smaller copy went through at once). Likely: a black hole
            // pattern with the receiver alive and nothing of that size delivered after the stuck
            // segment. Otherwise the receiver may have gone away, or the path lose everything.
            let confidence = if icmp.is_some() || o.recovered > 0 {
                Confidence::Certain
            } else if o.peer_alive && !o.later_delivered {
                Confidence::Likely
            } else {
                Confidence::Possible
            };
            let e = self.by.entry((c.server(), c.role(side))).or_default();
            e.group.add(c.stream, c.client_ep(), c.server());
            e.episodes += u64::from(o.episodes);
            e.resends += u64::from(o.resends);
            e.len = e.len.max(o.len);
            if o.shrunk > 0 {
                e.shrunk = if e.shrunk == 0 { o.shrunk } else { e.shrunk.min(o.shrunk) };
            }
            e.delivered.push(f64::from(d.delivered_max));
            e.mss = if e.mss == 0 { c.mss } else { e.mss.min(c.mss) };
            e.longest_ns = e.longest_ns.max(o.longest);
            e.hung += u64::from(o.hung);
            e.recovered += u64::from(o.recovered > 0);
            if let Some(i) = icmp {
                e.icmp += u64::from(i.count);
                if i.mtu > 0 && (e.mtu == 0 || i.mtu < e.mtu) {
                    e.mtu = i.mtu;
                }
                if !e.routers.contains(&i.from) && e.routers.len() < 4 {
                    e.routers.push(i.from);
                }
                e.frames.push(i.frame);
            }
            // The aggregate is as sure as its least sure connection.
            e.confidence = Some(e.confidence.map_or(confidence, |x| x.max(confidence)));
            if !e.receivers.contains(&receiver.addr) && e.receivers.len() < 4 {
                e.receivers.push(receiver.addr);
            }
            e.frames.push(o.first_frame);
        }
    }

    pub(super) fn finish(self, out: &mut Vec<Finding>) {
        for ((server, sender), e) in self.by {
            let confidence = e.confidence.unwrap_or(Confidence::Possible);
            let severity = match confidence {
                Confidence::Certain if e.hung > 0 => Severity::Error,
                Confidence::Certain | Confidence::Likely => Severity::Warning,
                Confidence::Possible => Severity::Info,
            };
            let delivered = e.delivered.max().unwrap_or(0.0) as u32;
            let receivers = e.receivers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            let routers = e.routers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            let path = if e.icmp > 0 && e.mtu > 0 {
                format!(
                    "{routers} announced a path MTU of {} bytes in {}",
                    e.mtu,
                    pl(e.icmp, "ICMP error", "ICMP errors")
                )
            } else if e.icmp > 0 {
                format!(
                    "{routers} sent {} without a next-hop MTU",
                    pl(e.icmp, "ICMP fragmentation-needed", "ICMP fragmentation-needed")
                )
            } else if e.shrunk > 0 {
                format!(
                    "no ICMP fragmentation-needed reached the capture; a resend of {} bytes went through at once",
                    e.shrunk
                )
            } else if delivered > 0 {
                format!("no ICMP fragmentation-needed reached the capture; the largest segment delivered carried {delivered} bytes")
            } else {
                "no ICMP fragmentation-needed reached the capture; only the handshake's small packets went through"
                    .to_owned()
            };
            let outcome = match (e.hung, e.recovered) {
                (0, _) => format!(
                    "the stack got through only by shrinking the segments, after {:.1} s (MTU probing or late PMTU discovery)",
                    secs(e.longest_ns)
                ),
                (h, 0) => format!(
                    "{} hung ({:.1} s from the first full-size segment to the last frame)",
                    pl(h, "connection", "connections"),
                    secs(e.longest_ns)
                ),
                (h, r) => format!("{} hung and {r} recovered by shrinking the segments", pl(h, "connection", "connections")),
            };
            let why = match confidence {
                Confidence::Certain | Confidence::Likely => "segments above the path MTU are dropped and the ICMP that should shrink them is blocked or ignored",
                Confidence::Possible => "the size fits a path-MTU black hole, but the receiver was not seen alive meanwhile (or acknowledged later data), so the path may simply be losing everything",
            };
            let mut f = Finding::new(
                CaseId::PmtuBlackhole,
                severity,
                e.group.subject("tcp", server),
                format!(
                    "{} of {} bytes (MSS {}) from the {} to {receivers} resent {} in all and never acknowledged, \
                     while smaller packets passed ({path}); {outcome}: {why}.",
                    pl(e.episodes, "segment", "segments"),
                    e.len,
                    e.mss,
                    sender.as_str(),
                    pl(e.resends, "time", "times"),
                ),
            )
            .with_measure("count", e.episodes as f64, "count")
            .with_measure("stuck_segments", e.episodes as f64, "count")
            .with_measure("segment_bytes", f64::from(e.len), "bytes")
            .with_measure("largest_delivered_bytes", f64::from(delivered), "bytes")
            .with_measure("resends", e.resends as f64, "count")
            .with_measure("stall_s", round(secs(e.longest_ns), 3), "s")
            .with_measure("mss", f64::from(e.mss), "bytes")
            .with_measure("hung_connections", e.hung as f64, "count")
            .with_measure("recovered_connections", e.recovered as f64, "count")
            .with_measure("icmp_frag_needed", e.icmp as f64, "count")
            .with_measure("flows", e.group.flows as f64, "count");
            if e.mtu > 0 {
                f = f.with_measure("path_mtu_bytes", f64::from(e.mtu), "bytes");
            }
            if e.shrunk > 0 {
                f = f.with_measure("delivered_resend_bytes", f64::from(e.shrunk), "bytes");
            }
            f = f.with(Evidence::text("sender", sender.as_str())).with(Evidence::text("receivers", receivers));
            if !routers.is_empty() {
                f = f.with(Evidence::text("icmp_from", routers));
            }
            if let Some(ev) = e.frames.evidence("frames") {
                f = f.with(ev);
            }
            let alternatives: &[CaseId] = match confidence {
                Confidence::Possible => &[CaseId::RetransHolBlocking],
                _ => &[],
            };
            out.push(f.with_fix(FIX).with_confidence(confidence, alternatives));
        }
    }
}

const FIX: &str =
    "Clamp the MSS where the path narrows (`iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN \
                   -j TCPMSS --clamp-mss-to-pmtu`), let ICMP type 3 code 4 (ICMPv6 type 2) through every firewall on \
                   the path back to the sender, or set net.ipv4.tcp_mtu_probing=1 on the sender so it finds the \
                   MTU without ICMP.";

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use netcase_model::{CaseId, Confidence, Severity};

    /// The server sends a 100-byte header (delivered), then full-size segments that vanish
    /// (resent by RTO at 0.2, 0.6, 1.4 s); the client gives up with FIN at 2.5 s.
    fn hang(icmp: Option<u16>) -> Vec<netcase_model::Finding> {
        let mut s = Script::new();
        let mut c = s.conn(41000, 8080);
        c.handshake(0.0);
        c.client_data(0.01, 80);
        c.server_ack(0.0102);
        c.server_data(0.02, 100);
        c.client_ack(0.0202);
        let first = c.sv.nxt.wrapping_sub(c.sv.isn);
        c.server_data(0.1, 1448);
        for _ in 0..9 {
            c.server_data_lost(1448);
        }
        if let Some(mtu) = icmp {
            c.server_icmp_frag_needed(0.1001, [10, 0, 0, 254], first, mtu);
        }
        for t in [0.3, 0.7, 1.5] {
            c.server_retrans(t, first, 1448);
        }
        c.client_fin_at(2.5, first);
        c.server_ack(2.5001);
        c.server_retrans(3.1, first, 1448);
        s.run()
    }

    #[test]
    fn full_size_segments_vanish_while_small_pass() {
        let f = one(&hang(None), CaseId::PmtuBlackhole);
        assert_eq!(f.measure("stuck_segments"), Some(1.0));
        assert_eq!(f.measure("segment_bytes"), Some(1448.0));
        assert_eq!(f.measure("largest_delivered_bytes"), Some(100.0));
        assert_eq!(f.measure("resends"), Some(4.0));
        assert_eq!(f.measure("hung_connections"), Some(1.0));
        assert_eq!(f.measure("path_mtu_bytes"), None);
        assert_eq!(f.text("sender"), Some("server"));
        assert_eq!(f.confidence, Confidence::Likely);
        assert_eq!(f.severity, Severity::Warning);
        // From the first full-size segment (0.1 s) to the last frame (3.1 s).
        let st = f.measure("stall_s").unwrap();
        assert!((2.99..=3.01).contains(&st), "{st}");
    }

    #[test]
    fn icmp_frag_needed_names_the_path_mtu_and_makes_it_certain() {
        let f = one(&hang(Some(1400)), CaseId::PmtuBlackhole);
        assert_eq!(f.measure("path_mtu_bytes"), Some(1400.0));
        assert_eq!(f.measure("icmp_frag_needed"), Some(1.0));
        assert_eq!(f.text("icmp_from"), Some("10.0.0.254"));
        assert_eq!(f.confidence, Confidence::Certain);
        assert_eq!(f.severity, Severity::Error);
    }

    /// A tail loss probe resends the last segment of the flight before the timeouts resend
    /// the first: the first is the stuck one.
    #[test]
    fn tail_probe_before_the_timeouts_counts_the_head() {
        let mut s = Script::new();
        let mut c = s.conn(41000, 8080);
        c.handshake(0.0);
        c.client_data(0.01, 80);
        c.server_ack(0.0102);
        let first = c.sv.nxt.wrapping_sub(c.sv.isn);
        for i in 0..4 {
            c.server_data(0.02 + f64::from(i) * 0.0001, 1448);
        }
        c.server_retrans(0.05, first + 3 * 1448, 1448);
        for t in [0.25, 0.65, 1.45] {
            c.server_retrans(t, first, 1448);
        }
        c.client_fin_at(2.0, first);
        let f = one(&s.run(), CaseId::PmtuBlackhole);
        assert_eq!(f.measure("resends"), Some(3.0));
        assert_eq!(f.confidence, Confidence::Likely);
        let st = f.measure("stall_s").unwrap();
        assert!((1.97..=1.99).contains(&st), "{st}");
    }

    /// PMTU discovery working: the ICMP arrives and the sender resends smaller at once.
    #[test]
    fn working_pmtu_discovery_is_healthy() {
        let mut s = Script::new();
        let mut c = s.conn(41000, 8080);
        c.handshake(0.0);
        c.client_data(0.01, 80);
        c.server_ack(0.0102);
        let first = c.sv.nxt.wrapping_sub(c.sv.isn);
        c.server_data(0.02, 1448);
        c.server_data_lost(1448);
        c.server_icmp_frag_needed(0.0201, [10, 0, 0, 254], first, 1400);
        c.server_retrans(0.0202, first, 1348);
        c.server_retrans(0.0203, first + 1348, 1348);
        c.server_retrans(0.0204, first + 2696, 200);
        c.client_ack(0.0206);
        for i in 0..20 {
            c.server_data(0.03 + f64::from(i) * 0.001, 1348);
            c.client_ack(0.0305 + f64::from(i) * 0.001);
        }
        c.client_fin(0.1);
        c.server_fin(0.1001);
        c.client_ack(0.1002);
        none(&s.run(), CaseId::PmtuBlackhole);
    }

    /// Ordinary loss: a full-size segment lost twice, delivered by the third copy of the same
    /// size (and full-size segments had been delivered before).
    #[test]
    fn repeated_loss_of_a_size_that_passes_is_not_a_black_hole() {
        let mut s = Script::new();
        let mut c = s.conn(41000, 8080);
        c.handshake(0.0);
        for i in 0..5 {
            c.server_data(0.01 + f64::from(i) * 0.001, 1448);
        }
        c.client_ack(0.02);
        let lost = c.sv.nxt.wrapping_sub(c.sv.isn);
        c.server_data(0.03, 1448);
        for t in [0.3, 0.7, 1.5] {
            c.server_retrans(t, lost, 1448);
        }
        c.client_ack(1.5002);
        none(&s.run(), CaseId::PmtuBlackhole);
    }

    /// The sender gave up on full size (MTU probing) and a smaller resend went through at once.
    #[test]
    fn recovery_by_smaller_resend_is_certain_but_not_a_hang() {
        let mut s = Script::new();
        let mut c = s.conn(41000, 8080);
        c.handshake(0.0);
        c.client_data(0.01, 80);
        c.server_ack(0.0102);
        let first = c.sv.nxt.wrapping_sub(c.sv.isn);
        c.server_data(0.02, 1448);
        for t in [0.25, 0.65, 1.45] {
            c.server_retrans(t, first, 1448);
        }
        c.server_retrans(3.05, first, 1012);
        c.client_ack(3.0502);
        let f = one(&s.run(), CaseId::PmtuBlackhole);
        assert_eq!(f.confidence, Confidence::Certain);
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.measure("recovered_connections"), Some(1.0));
        assert_eq!(f.measure("hung_connections"), Some(0.0));
        assert_eq!(f.measure("delivered_resend_bytes"), Some(1012.0));
    }

    /// A silent receiver (gone): the same resends, nothing back. Possible, info.
    #[test]
    fn silent_receiver_is_only_possible() {
        let mut s = Script::new();
        let mut c = s.conn(41000, 8080);
        c.handshake(0.0);
        c.client_data(0.01, 80);
        c.server_ack(0.0102);
        let first = c.sv.nxt.wrapping_sub(c.sv.isn);
        c.server_data(0.02, 1448);
        for t in [0.25, 0.65, 1.45, 3.05] {
            c.server_retrans(t, first, 1448);
        }
        let f = one(&s.run(), CaseId::PmtuBlackhole);
        assert_eq!(f.confidence, Confidence::Possible);
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(f.alternatives, vec![CaseId::RetransHolBlocking]);
    }

    /// The receiver speaks only within a round trip of the second resend: no proof that the
    /// copies after it were lost while it was there.
    #[test]
    fn receiver_heard_too_soon_after_the_resend_proves_nothing() {
        let mut s = Script::new();
        let mut c = s.conn(41000, 8080);
        c.syn(0.0);
        c.synack(0.0001);
        c.client_ack(0.05);
        c.client_data(0.0501, 80);
        c.server_ack(0.0502);
        let first = c.sv.nxt.wrapping_sub(c.sv.isn);
        c.server_data(0.06, 1448);
        for t in [0.3, 0.7, 1.5] {
            c.server_retrans(t, first, 1448);
        }
        c.client_fin_at(0.72, first);
        let f = one(&s.run(), CaseId::PmtuBlackhole);
        assert_eq!(f.confidence, Confidence::Possible);
        assert_eq!(f.severity, Severity::Info);
    }

    /// Small segments lost the same way are not an MTU problem.
    #[test]
    fn small_segments_resent_are_not_an_mtu_problem() {
        let mut s = Script::new();
        let mut c = s.conn(41000, 8080);
        c.handshake(0.0);
        c.client_data(0.01, 80);
        c.server_ack(0.0102);
        let first = c.sv.nxt.wrapping_sub(c.sv.isn);
        c.server_data(0.02, 300);
        for t in [0.25, 0.65, 1.45] {
            c.server_retrans(t, first, 300);
        }
        c.client_fin_at(2.0, first);
        none(&s.run(), CaseId::PmtuBlackhole);
    }
}
