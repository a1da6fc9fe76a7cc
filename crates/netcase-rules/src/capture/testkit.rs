//! Test helper: builds Ethernet/IPv4 frames (TCP with real options, UDP, ICMP, ARP), runs them
//! through `netcase_wire::decode` → `FlowTracker` → [`CaptureRules`] exactly as the pipeline
//! does, so the `tcp.analysis` flags the rules see are the engine's own.

#![allow(dead_code)]

use netcase_flow::{FlowConfig, FlowTracker};
use netcase_model::{CaseId, Finding};
use netcase_wire::LinkType;

use super::CaptureRules;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// Frames to run, in any order (sorted by time, stably, before running).
#[derive(Default)]
pub struct Script {
    frames: Vec<(i64, Vec<u8>)>,
    seq_base: u32,
}

/// One side of a scripted connection.
#[derive(Clone, Copy)]
pub struct End {
    pub ip: [u8; 4],
    pub port: u16,
    pub mac: [u8; 6],
    /// Initial sequence number.
    pub isn: u32,
    /// Next sequence number to send (absolute).
    pub nxt: u32,
    /// Raw window field sent.
    pub win: u16,
    /// Window scale offered in the SYN (None = option absent).
    pub wscale: Option<u8>,
    /// TSval clock offset (ms); None = no timestamps.
    pub ts_base: Option<u32>,
    pub mss: u16,
}

/// A scripted TCP connection; every segment carries the current seq and acks all the peer sent.
pub struct Conn<'a> {
    s: &'a mut Script,
    pub c: End,
    pub sv: End,
    /// SACK block the next ACK carries (absolute), set by tests.
    pub sack: Option<(u32, u32)>,
}

/// Script time 0 is this capture time (a real epoch: the flow engine treats 0 as unset).
const EPOCH_NS: i64 = 1_700_000_000_000_000_000;

fn ns(t: f64) -> i64 {
    EPOCH_NS + (t * 1e9).round() as i64
}

impl Script {
    pub fn new() -> Self {
        Script { frames: Vec::new(), seq_base: 1_000_000 }
    }

    /// A connection from 10.0.0.1:`cport` to 10.0.0.2:`sport`.
    pub fn conn(&mut self, cport: u16, sport: u16) -> Conn<'_> {
        self.conn_ips([10, 0, 0, 1], cport, [10, 0, 0, 2], sport)
    }

    pub fn conn_ips(&mut self, cip: [u8; 4], cport: u16, sip: [u8; 4], sport: u16) -> Conn<'_> {
        self.seq_base = self.seq_base.wrapping_add(7_777_777);
        let cisn = self.seq_base;
        let sisn = self.seq_base.wrapping_mul(3).wrapping_add(12345);
        let c = End {
            ip: cip,
            port: cport,
            mac: [2, 0, cip[1], cip[2], cip[3], 1],
            isn: cisn,
            nxt: cisn,
            win: 502,
            wscale: Some(7),
            ts_base: Some(1_000),
            mss: 1460,
        };
        let sv = End {
            ip: sip,
            port: sport,
            mac: [2, 0, sip[1], sip[2], sip[3], 2],
            isn: sisn,
            nxt: sisn,
            win: 509,
            wscale: Some(7),
            ts_base: Some(500_000),
            mss: 1460,
        };
        Conn { s: self, c, sv, sack: None }
    }

    pub fn push(&mut self, t: f64, frame: Vec<u8>) {
        self.frames.push((ns(t), frame));
    }

    /// A UDP datagram with `len` payload bytes.
    pub fn udp(&mut self, t: f64, src: ([u8; 4], u16), dst: ([u8; 4], u16), len: usize) {
        let mut l4 = Vec::with_capacity(8 + len);
        l4.extend_from_slice(&src.1.to_be_bytes());
        l4.extend_from_slice(&dst.1.to_be_bytes());
        l4.extend_from_slice(&((8 + len) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        l4.resize(8 + len, 0x61);
        let f = eth_ip([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 8], src.0, dst.0, 17, &l4);
        self.push(t, f);
    }

    /// An ICMP port unreachable from `dst` quoting a UDP datagram `src` → `dst`.
    pub fn icmp_port_unreachable(&mut self, t: f64, src: ([u8; 4], u16), dst: ([u8; 4], u16)) {
        let mut quoted = eth_ip([0; 6], [0; 6], src.0, dst.0, 17, &{
            let mut u = Vec::new();
            u.extend_from_slice(&src.1.to_be_bytes());
            u.extend_from_slice(&dst.1.to_be_bytes());
            u.extend_from_slice(&[0, 20, 0, 0]);
            u.resize(20, 0);
            u
        });
        let quoted: Vec<u8> = quoted.split_off(14);
        let mut l4 = vec![3, 3, 0, 0, 0, 0, 0, 0];
        l4.extend_from_slice(&quoted);
        let f = eth_ip([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 8], dst.0, src.0, 1, &l4);
        self.push(t, f);
    }

    /// An ICMP fragmentation-needed (type 3 code 4) from `router` announcing `mtu`, quoting a
    /// 1500-byte TCP segment `src` → `dst` with absolute sequence number `seq` (to `src`).
    pub fn icmp_frag_needed(
        &mut self,
        t: f64,
        router: [u8; 4],
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        mtu: u16,
    ) {
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&src.1.to_be_bytes());
        tcp.extend_from_slice(&dst.1.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0, 0x50, ACK, 0x01, 0xf5, 0, 0, 0, 0]);
        let mut quoted = eth_ip([0; 6], [0; 6], src.0, dst.0, 6, &tcp).split_off(14);
        // The quoted header keeps the original packet's length: 1500 bytes.
        if let Some(l) = quoted.get_mut(2..4) {
            l.copy_from_slice(&1500u16.to_be_bytes());
        }
        let mut l4 = vec![3, 4, 0, 0, 0, 0];
        l4.extend_from_slice(&mtu.to_be_bytes());
        l4.extend_from_slice(&quoted);
        let f = eth_ip([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 8], router, src.0, 1, &l4);
        self.push(t, f);
    }

    /// An ARP reply: `ip` is at `mac`.
    pub fn arp_reply(&mut self, t: f64, ip: [u8; 4], mac: [u8; 6]) {
        let mut f = Vec::new();
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&mac);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2]);
        f.extend_from_slice(&mac);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&[10, 0, 0, 1]);
        self.push(t, f);
    }

    /// Runs the frames through decode → FlowTracker → CaptureRules; returns the findings.
    pub fn run(self) -> Vec<Finding> {
        self.run_with(&[])
    }

    pub fn run_with(mut self, http: &[netcase_proto::HttpTxn]) -> Vec<Finding> {
        self.frames.sort_by_key(|(t, _)| *t);
        let mut tracker = FlowTracker::new(FlowConfig::default());
        let mut rules = CaptureRules::new();
        for (i, (t, data)) in self.frames.iter().enumerate() {
            let n = i as u64 + 1;
            let pkt = netcase_wire::decode(LinkType::Ethernet, data);
            assert!(pkt.error.is_none(), "frame {n}: {:?}", pkt.error);
            tracker.packet(n, *t, data.len() as u32, data, &pkt, &mut rules);
            rules.packet(n, *t, &pkt);
        }
        tracker.finish(&mut rules);
        rules.finish(&super::StreamRequests::of(http))
    }
}

/// 2 MB from the server at 50 ms RTT, always 64 KB in flight: a window-limited transfer,
/// with window scaling or without (and then 65,535-byte windows on both sides).
pub fn window_limited_bulk(wscale: bool) -> Vec<Finding> {
    let mut s = Script::new();
    let mut c = s.conn(50000, 8080);
    if !wscale {
        c.c.wscale = None;
        c.c.win = 65535;
        c.sv.win = 65535;
    }
    c.syn(0.0);
    c.synack(0.025);
    c.client_ack(0.05);
    c.client_data(0.051, 100);
    let mut t = 0.076;
    // 32 round trips of 44 full segments (64,240 bytes in flight).
    for _ in 0..32 {
        for k in 0..44 {
            c.server_data(t + f64::from(k) * 0.0001, 1460);
        }
        c.client_ack(t + 0.05);
        t += 0.05;
    }
    s.run()
}

/// The one finding of `case`; panics (listing all findings) otherwise.
pub fn one(f: &[Finding], case: CaseId) -> Finding {
    let v: Vec<&Finding> = f.iter().filter(|x| x.case == case).collect();
    assert_eq!(v.len(), 1, "expected one {case} finding, got: {:#?}", f);
    v[0].clone()
}

/// Asserts no finding of `case`.
pub fn none(f: &[Finding], case: CaseId) {
    assert!(f.iter().all(|x| x.case != case), "unexpected {case}: {:#?}", f);
}

impl Conn<'_> {
    fn seg(&mut self, t: f64, from_client: bool, flags: u8, len: usize, seq: Option<u32>) {
        let (me, peer) = if from_client { (self.c, self.sv) } else { (self.sv, self.c) };
        let seq = seq.unwrap_or(me.nxt);
        let ack = if flags & ACK != 0 { peer.nxt } else { 0 };
        let mut opts: Vec<u8> = Vec::new();
        if flags & SYN != 0 {
            opts.extend_from_slice(&[2, 4]);
            opts.extend_from_slice(&me.mss.to_be_bytes());
            opts.extend_from_slice(&[4, 2]);
        }
        if let Some(b) = me.ts_base {
            let tsval = b.wrapping_add((t * 1000.0) as u32);
            let tsecr =
                if flags & ACK != 0 { peer.ts_base.map_or(0, |p| p.wrapping_add((t * 1000.0) as u32)) } else { 0 };
            opts.extend_from_slice(&[1, 1, 8, 10]);
            opts.extend_from_slice(&tsval.to_be_bytes());
            opts.extend_from_slice(&tsecr.to_be_bytes());
        }
        if flags & SYN != 0 {
            if let Some(w) = me.wscale {
                opts.extend_from_slice(&[1, 3, 3, w]);
            }
        }
        if flags & SYN == 0 && len == 0 {
            if let Some((l, r)) = self.sack {
                opts.extend_from_slice(&[1, 1, 5, 10]);
                opts.extend_from_slice(&l.to_be_bytes());
                opts.extend_from_slice(&r.to_be_bytes());
            }
        }
        while opts.len() & 3 != 0 {
            opts.push(1);
        }
        let win = if flags & SYN != 0 { 64240 } else { me.win };
        let mut l4 = Vec::with_capacity(20 + opts.len() + len);
        l4.extend_from_slice(&me.port.to_be_bytes());
        l4.extend_from_slice(&peer.port.to_be_bytes());
        l4.extend_from_slice(&seq.to_be_bytes());
        l4.extend_from_slice(&ack.to_be_bytes());
        l4.push((((20 + opts.len()) / 4) as u8) << 4);
        l4.push(flags);
        l4.extend_from_slice(&win.to_be_bytes());
        l4.extend_from_slice(&[0, 0, 0, 0]);
        l4.extend_from_slice(&opts);
        l4.resize(l4.len() + len, 0x42);
        let f = eth_ip(peer.mac, me.mac, me.ip, peer.ip, 6, &l4);
        self.s.push(t, f);
        let adv = len as u32 + u32::from(flags & (SYN | FIN) != 0);
        let end = seq.wrapping_add(adv);
        let me = if from_client { &mut self.c } else { &mut self.sv };
        if (end.wrapping_sub(me.nxt) as i32) > 0 {
            me.nxt = end;
        }
    }

    /// SYN at `t`, SYN/ACK at `t + 0.5 ms`, ACK at `t + 1 ms`.
    pub fn handshake(&mut self, t: f64) {
        self.syn(t);
        self.synack(t + 0.0005);
        self.client_ack(t + 0.001);
    }
    /// A whole healthy request/response at `t`: handshake, 100 bytes each way, the client
    /// closes first; over 32 ms.
    pub fn exchange(&mut self, t: f64) {
        self.handshake(t);
        self.client_data(t + 0.01, 100);
        self.server_data(t + 0.02, 100);
        self.client_fin(t + 0.03);
        self.server_fin(t + 0.031);
        self.client_ack(t + 0.032);
    }
    pub fn syn(&mut self, t: f64) {
        let isn = self.c.isn;
        self.seg(t, true, SYN, 0, Some(isn));
    }
    pub fn synack(&mut self, t: f64) {
        let isn = self.sv.isn;
        self.seg(t, false, SYN | ACK, 0, Some(isn));
    }
    pub fn client_data(&mut self, t: f64, len: usize) {
        self.seg(t, true, ACK | PSH, len, None);
    }
    pub fn server_data(&mut self, t: f64, len: usize) {
        self.seg(t, false, ACK | PSH, len, None);
    }
    /// Re-sends `len` bytes of client data from relative sequence `rel` (1 = first byte).
    pub fn client_retrans(&mut self, t: f64, rel: u32, len: usize) {
        let seq = self.c.isn.wrapping_add(rel);
        self.seg(t, true, ACK | PSH, len, Some(seq));
    }
    pub fn server_retrans(&mut self, t: f64, rel: u32, len: usize) {
        let seq = self.sv.isn.wrapping_add(rel);
        self.seg(t, false, ACK | PSH, len, Some(seq));
    }
    /// Sends server data but marks it lost: the sequence advances, no frame is captured.
    pub fn server_data_lost(&mut self, len: usize) {
        self.sv.nxt = self.sv.nxt.wrapping_add(len as u32);
    }
    pub fn client_data_lost(&mut self, len: usize) {
        self.c.nxt = self.c.nxt.wrapping_add(len as u32);
    }
    pub fn client_ack(&mut self, t: f64) {
        self.seg(t, true, ACK, 0, None);
    }
    /// A client ACK for server bytes up to relative sequence `rel` (a duplicate ACK when repeated).
    pub fn client_ack_at(&mut self, t: f64, rel: u32) {
        let saved = self.sv.nxt;
        self.sv.nxt = self.sv.isn.wrapping_add(rel);
        self.seg(t, true, ACK, 0, None);
        self.sv.nxt = saved;
    }
    pub fn server_ack(&mut self, t: f64) {
        self.seg(t, false, ACK, 0, None);
    }
    pub fn server_ack_at(&mut self, t: f64, rel: u32) {
        let saved = self.c.nxt;
        self.c.nxt = self.c.isn.wrapping_add(rel);
        self.seg(t, false, ACK, 0, None);
        self.c.nxt = saved;
    }
    pub fn client_fin(&mut self, t: f64) {
        self.seg(t, true, FIN | ACK, 0, None);
    }
    pub fn server_fin(&mut self, t: f64) {
        self.seg(t, false, FIN | ACK, 0, None);
    }
    pub fn client_rst(&mut self, t: f64) {
        self.seg(t, true, RST | ACK, 0, None);
    }
    pub fn server_rst(&mut self, t: f64) {
        self.seg(t, false, RST | ACK, 0, None);
    }
    /// A client keep-alive probe: one byte below the next sequence number, no data.
    pub fn client_keepalive(&mut self, t: f64) {
        let seq = self.c.nxt.wrapping_sub(1);
        self.seg(t, true, ACK, 0, Some(seq));
    }
    /// A client segment with a raw window value.
    pub fn client_window(&mut self, t: f64, win: u16) {
        self.c.win = win;
        self.seg(t, true, ACK, 0, None);
    }
    /// An ICMP fragmentation-needed from `router` announcing `mtu`, quoting the server's segment at
    /// relative sequence `rel`.
    pub fn server_icmp_frag_needed(&mut self, t: f64, router: [u8; 4], rel: u32, mtu: u16) {
        let seq = self.sv.isn.wrapping_add(rel);
        let (sv, c) = (self.sv, self.c);
        self.s.icmp_frag_needed(t, router, (sv.ip, sv.port), (c.ip, c.port), seq, mtu);
    }
    /// A client FIN acknowledging server bytes up to relative sequence `rel` only.
    pub fn client_fin_at(&mut self, t: f64, rel: u32) {
        let saved = self.sv.nxt;
        self.sv.nxt = self.sv.isn.wrapping_add(rel);
        self.seg(t, true, FIN | ACK, 0, None);
        self.sv.nxt = saved;
    }
    /// A zero-window probe from the server (one byte at the next sequence number).
    pub fn server_zw_probe(&mut self, t: f64) {
        let seq = self.sv.nxt;
        self.seg(t, false, ACK, 1, Some(seq));
        self.sv.nxt = seq;
    }
}

fn eth_ip(dst_mac: [u8; 6], src_mac: [u8; 6], src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + l4.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + l4.len();
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(l4);
    f
}
