//! Rules over capture evidence: one module per case, fed by the flow engine's records.
//!
//! [`CaptureRules`] is a [`FlowSink`]: the pipeline forwards every [`FrameAnalysis`],
//! [`ConnSummary`], [`UdpDatagram`] and [`UdpSummary`] to it, and every decoded packet to
//! [`CaptureRules::packet`] (link-layer addresses, ARP, ICMP errors). Per-connection state lives
//! in a map keyed by `tcp.stream` and is folded into per-subject aggregates (a server port, a
//! peer) when the engine closes the connection, so memory follows the number of open
//! connections, not the length of the capture. [`CaptureRules::finish`] turns the aggregates
//! into findings, one per case and subject, with typed measures (keys listed in `KEYS.md`).
//!
//! Thresholds are constants in each module, each with the reason for its value.

use std::collections::HashMap;

use netcase_flow::{ConnSummary, Endpoint, FlowSink, FrameAnalysis, Side, UdpDatagram, UdpSummary};
use netcase_model::Finding;
use netcase_wire::tcp_flags::{ACK, FIN, RST, SYN};
use netcase_wire::Packet;

mod accept_queue_overflow;
mod artefacts;
mod client_timeout_fin_wait2;
mod close_wait_leak;
mod dupack_no_fast_retransmit;
mod frame;
mod handshake;
mod ip_conflict;
mod iptables_redirect_hijack;
mod keepalive_race_502;
mod keepalive_settings;
mod limits;
mod linger_zero_rst;
mod nagle_delayed_ack;
mod nat_timestamp_paws;
mod no_window_scale;
mod pmtu_blackhole;
mod port_unreachable;
mod receive_window_limited;
mod retrans_hol_blocking;
mod syn_queue_overflow;
mod syn_unanswered;
mod time_wait_pileup;
mod udp_truncation;
mod util;
mod zero_window;

#[cfg(test)]
mod testkit;

pub use artefacts::{CaptureFacts, FragFacts, IncompleteDatagram};
pub use frame::{RuleFrame, RuleOptions};
pub use time_wait_pileup::StreamRequests;
use util::{IntBuild, Role};

/// Facts about one TCP connection that several rules share, as of the frame being handled
/// (rules see the state *before* the frame is folded in).
#[derive(Debug, Clone)]
struct Common {
    stream: u32,
    /// Endpoints of side A and side B.
    ep: [Endpoint; 2],
    /// Which side is the client.
    client: Side,
    /// The client was known from the handshake (not guessed from ports).
    client_from_handshake: bool,
    /// First SYN (ts, frame).
    syn: Option<(i64, u64)>,
    /// First SYN/ACK (ts, frame).
    synack: Option<(i64, u64)>,
    /// The client's ACK of the SYN/ACK (ts).
    hs_ack: Option<i64>,
    first_ts: i64,
    last_ts: i64,
    /// Relative sequence number after the highest data sent, per side.
    nxt: [u32; 2],
    sent_data: [bool; 2],
    /// Payload bytes sent per side (new and repeated).
    bytes: [u64; 2],
    /// Highest relative ack sent, per side (valid when `acked[side]`).
    ack: [u32; 2],
    acked: [bool; 2],
    last_data_ts: [i64; 2],
    /// First FIN per side (ts, frame).
    fin: [Option<(i64, u64)>; 2],
    /// First RST per side (ts, frame).
    rst: [Option<(i64, u64)>; 2],
    /// Last window (scaled) advertised per side.
    win: [u32; 2],
    /// Smallest MSS option of the handshake (1460 when none was seen).
    mss: u32,
    /// Smallest `ack_rtt` seen, ns (0 = none).
    min_ack_rtt: i64,
    /// Smallest `ack_rtt` of the ACKs of each side's data, ns (0 = none).
    data_ack_rtt: [i64; 2],
    /// The last SYN before the SYN/ACK (ts): the one the SYN/ACK answered.
    answered_syn: Option<i64>,
}

impl Common {
    fn new(f: &RuleFrame) -> Self {
        let mut ep = [f.src, f.dst];
        if f.side == Side::B {
            ep.swap(0, 1);
        }
        // Without a handshake the lower port is taken as the server's (services listen on
        // low or well-known ports, clients use ephemeral ones).
        let (a, b) = (ep[0].port, ep[1].port);
        let mut client = if a < b { Side::B } else { Side::A };
        let mut from_hs = false;
        if f.tcp_flags & (SYN | ACK) == SYN {
            client = f.side;
            from_hs = true;
        } else if f.tcp_flags & (SYN | ACK) == (SYN | ACK) {
            client = f.side.other();
            from_hs = true;
        }
        Common {
            stream: f.stream,
            ep,
            client,
            client_from_handshake: from_hs,
            syn: None,
            synack: None,
            hs_ack: None,
            first_ts: f.ts_ns,
            last_ts: f.ts_ns,
            nxt: [0; 2],
            sent_data: [false; 2],
            bytes: [0; 2],
            ack: [0; 2],
            acked: [false; 2],
            last_data_ts: [0; 2],
            fin: [None; 2],
            rst: [None; 2],
            win: [0; 2],
            mss: 1460,
            min_ack_rtt: 0,
            data_ack_rtt: [0; 2],
            answered_syn: None,
        }
    }

    /// The role of a side.
    fn role(&self, side: Side) -> Role {
        if side == self.client {
            Role::Client
        } else {
            Role::Server
        }
    }
    /// The side playing `role`.
    fn side(&self, role: Role) -> Side {
        match role {
            Role::Client => self.client,
            Role::Server => self.client.other(),
        }
    }
    fn endpoint(&self, role: Role) -> Endpoint {
        self.ep[self.side(role).index()]
    }
    fn server(&self) -> Endpoint {
        self.endpoint(Role::Server)
    }
    fn client_ep(&self) -> Endpoint {
        self.endpoint(Role::Client)
    }
    /// Any FIN or RST seen yet.
    fn closing(&self) -> bool {
        self.fin.iter().chain(self.rst.iter()).any(Option::is_some)
    }
    /// How long, at the capture point, a packet from `side` takes to draw the peer's answer:
    /// the handshake gap on that side of the capture point (SYN → SYN/ACK for the client,
    /// SYN/ACK → ACK for the server). 0 when the handshake was not seen.
    fn reply_gap(&self, side: Side) -> i64 {
        match (self.role(side), self.syn, self.synack, self.hs_ack) {
            (Role::Client, Some((s, _)), Some((sa, _)), _) => (sa - s).max(0),
            (Role::Server, _, Some((sa, _)), Some(a)) => (a - sa).max(0),
            _ => 0,
        }
    }
    /// A round-trip estimate: the handshake's (SYN → ACK), else the smallest ACK RTT.
    fn rtt(&self) -> i64 {
        match (self.syn, self.hs_ack) {
            // The handshake spans one whole round trip wherever the capture was taken; an ACK
            // RTT does only at the sender (at the receiver it is the receiver's own delay).
            // From the SYN that the SYN/ACK answered: a first SYN lost and retried a second later
            // would add that second.
            (Some((s, _)), Some(a)) if a > s => a - self.answered_syn.filter(|t| *t <= a).unwrap_or(s).max(s),
            _ => self.min_ack_rtt,
        }
    }

    /// The round trip seen by data from `sender`. The handshake spans a whole round trip from
    /// any vantage point but a slow SYN/ACK inflates it; the ACK RTT of `sender`'s data is the
    /// round trip where the capture sits at the sender, and tiny at the receiver (its own ACK
    /// delay). So the smaller of the two, unless the ACK RTT is under a tenth of the handshake's
    /// (then the capture is at the receiver and the handshake is the estimate).
    fn rtt_for(&self, sender: Side) -> i64 {
        let hs = self.rtt();
        let ack = self.data_ack_rtt.get(sender.index()).copied().unwrap_or(0);
        if ack > 0 && hs > 0 && ack * 10 >= hs {
            hs.min(ack)
        } else {
            hs
        }
    }

    /// Folds a frame in (after the rules have seen it).
    #[inline]
    fn update(&mut self, f: &RuleFrame) {
        let i = f.side.index();
        let fl = f.tcp_flags;
        if fl & SYN != 0 {
            if fl & ACK == 0 {
                if self.syn.is_none() {
                    self.syn = Some((f.ts_ns, f.frame));
                }
                if self.synack.is_none() {
                    self.answered_syn = Some(f.ts_ns);
                }
                if !self.client_from_handshake {
                    self.client = f.side;
                    self.client_from_handshake = true;
                }
            } else {
                if self.synack.is_none() {
                    self.synack = Some((f.ts_ns, f.frame));
                }
                if !self.client_from_handshake {
                    self.client = f.side.other();
                    self.client_from_handshake = true;
                }
            }
            if let Some(m) = f.options.mss {
                self.mss = self.mss.min(u32::from(m).max(64));
            }
        } else {
            if fl & ACK != 0 && self.hs_ack.is_none() && self.synack.is_some() && f.side == self.client {
                self.hs_ack = Some(f.ts_ns);
            }
            if fl & RST == 0 {
                self.win[i] = f.calc_window;
            }
        }
        if f.len > 0 {
            let end = f.seq.wrapping_add(f.len);
            if !self.sent_data[i] || util::seq_gt(end, self.nxt[i]) {
                self.nxt[i] = end;
            }
            self.sent_data[i] = true;
            self.bytes[i] += u64::from(f.len);
            self.last_data_ts[i] = f.ts_ns;
        }
        if fl & ACK != 0 && fl & SYN == 0 && (!self.acked[i] || util::seq_gt(f.ack, self.ack[i])) {
            self.ack[i] = f.ack;
            self.acked[i] = true;
        }
        if fl & FIN != 0 && self.fin[i].is_none() {
            self.fin[i] = Some((f.ts_ns, f.frame));
        }
        if fl & RST != 0 && self.rst[i].is_none() {
            self.rst[i] = Some((f.ts_ns, f.frame));
        }
        if let Some(r) = f.ack_rtt_ns {
            if r > 0 && (self.min_ack_rtt == 0 || r < self.min_ack_rtt) {
                self.min_ack_rtt = r;
            }
            // This frame ACKs the other side's data.
            if let Some(m) = self.data_ack_rtt.get_mut(f.side.other().index()) {
                if r > 0 && (*m == 0 || r < *m) {
                    *m = r;
                }
            }
        }
        self.last_ts = f.ts_ns;
    }
}

impl Flow {
    fn new(f: &RuleFrame) -> Self {
        Flow {
            c: Common::new(f),
            ct: Default::default(),
            kr: Default::default(),
            lz: Default::default(),
            pu: Default::default(),
            qo: Default::default(),
            np: Default::default(),
            rh: Default::default(),
            da: Default::default(),
            ws: Default::default(),
            zw: Default::default(),
            ng: Default::default(),
            ks: Default::default(),
            cw: Default::default(),
            lm: Default::default(),
            pm: Default::default(),
            rw: Default::default(),
        }
    }
}

/// Everything kept for one open TCP connection.
#[derive(Debug, Clone)]
struct Flow {
    c: Common,
    ct: client_timeout_fin_wait2::State,
    kr: keepalive_race_502::State,
    lz: linger_zero_rst::State,
    pu: port_unreachable::State,
    qo: handshake::State,
    np: nat_timestamp_paws::State,
    rh: retrans_hol_blocking::State,
    da: dupack_no_fast_retransmit::State,
    ws: no_window_scale::State,
    zw: zero_window::State,
    ng: nagle_delayed_ack::State,
    ks: keepalive_settings::State,
    cw: close_wait_leak::State,
    lm: limits::State,
    pm: pmtu_blackhole::State,
    rw: receive_window_limited::State,
}

/// The capture rules: per-connection state plus per-case aggregates. Feed it as a
/// [`FlowSink`] and through [`CaptureRules::packet`], then call [`CaptureRules::finish`].
pub struct CaptureRules {
    /// Open connections: `tcp.stream` → slot in `slots`. The map holds only indices so a
    /// connection's state (about 2.5 KB) is written once where it lives and never moved by
    /// inserts, removals or rehashing; closed slots are reused.
    flows: HashMap<u32, u32, IntBuild>,
    slots: Vec<Flow>,
    free: Vec<u32>,
    /// The last stream looked up and its slot (consecutive frames are often of one connection).
    last: Option<(u32, u32)>,
    ct: client_timeout_fin_wait2::Agg,
    kr: keepalive_race_502::Agg,
    lz: linger_zero_rst::Agg,
    tw: time_wait_pileup::Agg,
    pu: port_unreachable::Agg,
    qo: handshake::Agg,
    np: nat_timestamp_paws::Agg,
    ic: ip_conflict::Agg,
    rh: retrans_hol_blocking::Agg,
    da: dupack_no_fast_retransmit::Agg,
    ws: no_window_scale::Agg,
    zw: zero_window::Agg,
    ng: nagle_delayed_ack::Agg,
    ut: udp_truncation::Agg,
    ks: keepalive_settings::Agg,
    cw: close_wait_leak::Agg,
    rd: iptables_redirect_hijack::Agg,
    pm: pmtu_blackhole::Agg,
    rw: receive_window_limited::Agg,
    ca: artefacts::Agg,
    facts: Option<CaptureFacts>,
}

impl Default for CaptureRules {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CaptureRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureRules").field("open_flows", &self.flows.len()).finish_non_exhaustive()
    }
}

/// The little the link-layer and ICMP rules keep of a decoded packet: owned and small, so a
/// caller can hand it to the thread that runs the rules. Most frames give none.
#[derive(Debug, Clone, Copy)]
pub enum PacketNote {
    /// Who claims an IP address: an ARP sender, or the source of a SYN/ACK or RST.
    Holder {
        /// The address claimed.
        ip: std::net::IpAddr,
        /// Outer VLAN (0 = none).
        vlan: u16,
        /// The link-layer source address.
        mac: [u8; 6],
        /// What the frame was.
        kind: HolderKind,
        /// IP TTL (0 for ARP).
        ttl: u8,
    },
    /// An ICMP port unreachable quoting a UDP datagram.
    PortUnreachable(netcase_wire::Quoted),
    /// An ICMP fragmentation-needed (ICMPv6 packet-too-big) quoting a TCP segment.
    FragNeeded {
        /// The router that sent it.
        from: std::net::IpAddr,
        /// The quoted segment's header (its source is the sender told to shrink).
        quoted: netcase_wire::Quoted,
        /// The next-hop MTU announced (0 = none).
        mtu: u32,
    },
}

/// What kind of frame claimed an address in [`PacketNote::Holder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderKind {
    /// An ARP sender.
    Arp,
    /// A SYN/ACK.
    SynAck,
    /// A RST.
    Rst,
}

impl PacketNote {
    /// The note the rules take from `pkt`, if any.
    #[inline]
    pub fn of(pkt: &Packet<'_>) -> Option<PacketNote> {
        if let Some(n) = ip_conflict::holder(pkt) {
            return Some(n);
        }
        if let Some(q) = port_unreachable::unreachable_udp(pkt) {
            return Some(PacketNote::PortUnreachable(q));
        }
        let (quoted, mtu) = pmtu_blackhole::frag_needed(pkt)?;
        Some(PacketNote::FragNeeded { from: pkt.ip.as_ref()?.src, quoted, mtu })
    }
}

impl CaptureRules {
    /// Rules with their default thresholds (each a documented constant in its module).
    pub fn new() -> Self {
        CaptureRules {
            flows: HashMap::with_capacity_and_hasher(1024, IntBuild::default()),
            slots: Vec::with_capacity(1024),
            free: Vec::new(),
            last: None,
            ct: Default::default(),
            kr: Default::default(),
            lz: Default::default(),
            tw: Default::default(),
            pu: Default::default(),
            qo: Default::default(),
            np: Default::default(),
            ic: Default::default(),
            rh: Default::default(),
            da: Default::default(),
            ws: Default::default(),
            zw: Default::default(),
            ng: Default::default(),
            ut: Default::default(),
            ks: Default::default(),
            cw: Default::default(),
            rd: Default::default(),
            pm: Default::default(),
            rw: Default::default(),
            ca: Default::default(),
            facts: None,
        }
    }

    /// What the pipeline saw of the capture as a whole (duplicates, time, checksums, IP
    /// fragments), for the capture-artefact findings of [`CaptureRules::finish`].
    pub fn set_capture_facts(&mut self, facts: CaptureFacts) {
        self.facts = Some(facts);
    }

    /// Connections currently held (for memory checks).
    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// Every decoded frame, in order (after the flow engine has seen it): ARP and link-layer
    /// addresses for `ip-conflict`, ICMP port unreachable for UDP for `port-unreachable`, ICMP
    /// fragmentation-needed / packet-too-big for `pmtu-blackhole`.
    /// The same as [`PacketNote::of`] then [`CaptureRules::note`].
    #[inline]
    pub fn packet(&mut self, frame: u64, ts_ns: i64, pkt: &Packet<'_>) {
        if let Some(n) = PacketNote::of(pkt) {
            self.note(frame, ts_ns, &n);
        }
    }

    /// What [`PacketNote::of`] kept of frame `frame` (in frame order with the flow events).
    pub fn note(&mut self, frame: u64, ts_ns: i64, n: &PacketNote) {
        match *n {
            PacketNote::Holder { ip, vlan, mac, kind, ttl } => self.ic.note(ip, vlan, mac, kind, frame, ttl),
            PacketNote::PortUnreachable(q) => self.pu.unreachable(frame, ts_ns, &q),
            PacketNote::FragNeeded { from, quoted, mtu } => self.pm.frag_needed(frame, from, &quoted, mtu),
        }
    }

    /// Ends the analysis: every rule turns its aggregates into findings (sorted). `http` and
    /// `dns` are the protocol transactions of the same capture (empty when not tracked).
    pub fn finish(mut self, requests: &StreamRequests) -> Vec<Finding> {
        // Connections the engine never closed (it closes all at its end; this is a guard for
        // callers that skip `FlowTracker::finish`).
        let mut rest: Vec<(u32, u32)> = self.flows.drain().collect();
        rest.sort_unstable();
        let slots = std::mem::take(&mut self.slots);
        for (_, slot) in rest {
            if let Some(fl) = slots.get(slot as usize) {
                self.fold(fl, None);
            }
        }
        let mut out = Vec::new();
        self.ct.finish(&mut out);
        self.kr.finish(&mut out);
        self.lz.finish(&mut out);
        self.tw.finish(requests, &mut out);
        self.pu.finish(&mut out);
        let np = &self.np;
        self.qo.finish(&mut out, |ip| np.explains(ip));
        self.np.finish(&mut out);
        self.ic.finish(&mut out);
        self.rh.finish(&mut out);
        self.da.finish(&mut out);
        self.ws.finish(&mut out);
        self.zw.finish(&mut out);
        self.ng.finish(&mut out);
        self.ut.finish(&mut out);
        self.ks.finish(&mut out);
        self.cw.finish(self.facts.as_ref().is_some_and(|f| f.artefacts.time.distorted()), &mut out);
        self.rd.finish(&mut out);
        self.pm.finish(&mut out);
        self.rw.finish(&mut out);
        // Last: capture loss qualifies the findings above.
        self.ca.finish(self.facts.as_ref(), &mut out);
        Finding::settle(&mut out);
        out
    }

    /// The slot of `stream`'s connection, made (or a free one reset) on its first frame.
    #[inline]
    fn slot(&mut self, f: &RuleFrame) -> usize {
        if let Some((stream, slot)) = self.last {
            if stream == f.stream {
                return slot as usize;
            }
        }
        let slot = match self.flows.get(&f.stream) {
            Some(&slot) => slot,
            None => {
                let fresh = Flow::new(f);
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.slots[slot as usize] = fresh;
                        slot
                    }
                    None => {
                        self.slots.push(fresh);
                        (self.slots.len() - 1) as u32
                    }
                };
                self.flows.insert(f.stream, slot);
                slot
            }
        };
        self.last = Some((f.stream, slot));
        slot as usize
    }

    fn fold(&mut self, fl: &Flow, s: Option<&ConnSummary>) {
        let c = &fl.c;
        // A RST explained by another case is not an SO_LINGER abort: the accept queue's
        // overflow (abort_on_overflow), or a server's idle reset that a request crossed.
        let accept_rst = fl.qo.rst_after_ack.is_some() || fl.kr.idle_reset_race();
        // SYN drops against TSval direction: PAWS (nat_paws) drops only backwards SYNs.
        let syn_dropped = fl.qo.syn_dropped(c);
        let backwards = fl.np.went_backwards();
        self.ct.closed(&fl.ct, c);
        self.kr.closed(&fl.kr, c);
        self.lz.closed(&fl.lz, c, accept_rst);
        self.tw.closed(c, s);
        self.pu.closed(&fl.pu, c);
        self.qo.closed(&fl.qo, c, backwards);
        self.np.closed(&fl.np, c, syn_dropped);
        self.rh.closed(&fl.rh, c, &fl.lm);
        self.da.closed(&fl.da, c);
        self.ws.closed(&fl.ws, c, s, &fl.lm);
        self.zw.closed(&fl.zw, c, &fl.lm);
        self.ng.closed(&fl.ng, c, &fl.lm);
        self.ks.closed(&fl.ks, c);
        self.cw.closed(&fl.cw, c);
        self.pm.closed(&fl.pm, c, s);
        self.rw.closed(&fl.rw, c, s, &fl.lm);
    }
}

impl CaptureRules {
    /// One TCP frame in the rules' compact form (see [`RuleFrame::of`]), in frame order: what
    /// [`FlowSink::frame`] does, for a caller that made the [`RuleFrame`] elsewhere.
    #[inline]
    pub fn rule_frame(&mut self, f: &RuleFrame) {
        let slot = self.slot(f);
        let fl = &mut self.slots[slot];
        let c = &fl.c;
        fl.ct.frame(c, f);
        fl.kr.frame(c, f);
        fl.lz.frame(c, f);
        fl.pu.frame(c, f);
        fl.qo.frame(c, f);
        fl.np.frame(&mut self.np, c, f);
        fl.rh.frame(&mut self.rh, c, f);
        fl.da.frame(&mut self.da, c, f);
        fl.ws.frame(c, f);
        fl.zw.frame(c, f);
        fl.ng.frame(&mut self.ng, c, f);
        fl.ks.frame(c, f);
        fl.cw.frame(c, f);
        fl.lm.frame(c, f);
        self.rd.frame(f);
        fl.pm.frame(c, f);
        fl.rw.frame(c, f);
        fl.c.update(f);
    }
}

impl FlowSink for CaptureRules {
    #[inline]
    fn frame(&mut self, f: &FrameAnalysis<'_>) {
        if let Some(rf) = RuleFrame::of(f) {
            self.rule_frame(&rf);
        }
    }

    fn closed(&mut self, s: &ConnSummary) {
        self.ca.closed(s);
        let Some(slot) = self.flows.remove(&s.stream) else { return };
        if self.last.is_some_and(|(stream, _)| stream == s.stream) {
            self.last = None;
        }
        // The slot's state is read in place, then the slot is free for the next connection.
        let slots = std::mem::take(&mut self.slots);
        if let Some(fl) = slots.get(slot as usize) {
            self.fold(fl, Some(s));
        }
        self.slots = slots;
        self.free.push(slot);
    }

    #[inline]
    fn udp(&mut self, d: &UdpDatagram<'_>) {
        self.ut.udp(d);
        self.pu.udp(d);
    }

    fn udp_closed(&mut self, u: &UdpSummary) {
        self.ut.udp_closed(u);
    }
}
