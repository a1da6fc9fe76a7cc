//! Builds Ethernet/IPv4/TCP frames and runs them through a tracker.
#![allow(dead_code)]

use netcase_flow::{ConnSummary, FlowConfig, FlowSink, FlowTracker, FrameAnalysis, UdpDatagram, UdpSummary};
use netcase_wire::LinkType;

pub const SYN: u16 = 0x002;
pub const ACK: u16 = 0x010;
pub const FIN: u16 = 0x001;
pub const RST: u16 = 0x004;
pub const PSH: u16 = 0x008;

#[derive(Clone, Copy)]
pub struct Seg {
    pub from_client: bool,
    pub seq: u32,
    pub ack: u32,
    pub flags: u16,
    pub win: u16,
    pub len: u32,
    pub wscale: Option<u8>,
    pub sack: Option<(u32, u32)>,
    pub t_us: i64,
}

pub fn seg(from_client: bool, seq: u32, ack: u32, flags: u16, len: u32, t_us: i64) -> Seg {
    Seg { from_client, seq, ack, flags, win: 1000, len, wscale: None, sack: None, t_us }
}

pub const CLIENT: [u8; 4] = [10, 0, 0, 1];
pub const SERVER: [u8; 4] = [10, 0, 0, 2];

pub fn frame_bytes(s: &Seg, cport: u16, sport: u16) -> Vec<u8> {
    let mut opts = Vec::new();
    if let Some(ws) = s.wscale {
        opts.extend_from_slice(&[1, 3, 3, ws]);
    }
    if let Some((l, r)) = s.sack {
        opts.extend_from_slice(&[1, 1, 5, 10]);
        opts.extend_from_slice(&l.to_be_bytes());
        opts.extend_from_slice(&r.to_be_bytes());
    }
    while opts.len() % 4 != 0 {
        opts.push(0);
    }
    let thl = 20 + opts.len();
    let total = 20 + thl + s.len as usize;
    let (src, dst, sp, dp) =
        if s.from_client { (CLIENT, SERVER, cport, sport) } else { (SERVER, CLIENT, sport, cport) };
    let mut f = vec![0u8; 14];
    f[12] = 0x08;
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sp.to_be_bytes());
    f.extend_from_slice(&dp.to_be_bytes());
    f.extend_from_slice(&s.seq.to_be_bytes());
    f.extend_from_slice(&s.ack.to_be_bytes());
    f.extend_from_slice(&((((thl / 4) as u16) << 12) | s.flags).to_be_bytes());
    f.extend_from_slice(&s.win.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(&opts);
    f.resize(f.len() + s.len as usize, 0x61);
    f
}

#[derive(Default)]
pub struct Rec {
    pub frames: Vec<Out>,
    pub conns: Vec<ConnSummary>,
    pub udp: Vec<u32>,
    pub udp_closed: Vec<UdpSummary>,
}

#[derive(Debug, Clone)]
pub struct Out {
    pub frame: u64,
    pub stream: u32,
    pub flags: Vec<&'static str>,
    pub seq: u32,
    pub ack: u32,
    pub acks_frame: Option<u64>,
    pub bif: Option<u32>,
    pub calc_window: u32,
    pub dupack_num: u32,
    pub dupack_frame: u64,
    pub irtt: Option<i64>,
}

impl FlowSink for Rec {
    fn frame(&mut self, f: &FrameAnalysis<'_>) {
        self.frames.push(Out {
            frame: f.frame,
            stream: f.stream,
            flags: f.flags.names().collect(),
            seq: f.seq,
            ack: f.ack,
            acks_frame: f.acks_frame,
            bif: f.bytes_in_flight,
            calc_window: f.calc_window,
            dupack_num: f.dupack_num,
            dupack_frame: f.dupack_frame,
            irtt: f.initial_rtt_ns,
        });
    }
    fn closed(&mut self, c: &ConnSummary) {
        self.conns.push(c.clone());
    }
    fn udp(&mut self, d: &UdpDatagram<'_>) {
        self.udp.push(d.stream);
    }
    fn udp_closed(&mut self, u: &UdpSummary) {
        self.udp_closed.push(u.clone());
    }
}

/// Runs segments (client port 40000, server port 80) and returns what the sink saw.
pub fn run(segs: &[Seg]) -> Rec {
    run_ports(segs.iter().map(|s| (*s, 40000u16)).collect::<Vec<_>>().as_slice())
}

pub fn run_ports(segs: &[(Seg, u16)]) -> Rec {
    let mut t = FlowTracker::new(FlowConfig::default());
    let mut rec = Rec::default();
    for (i, (s, cport)) in segs.iter().enumerate() {
        let b = frame_bytes(s, *cport, 80);
        t.frame(
            i as u64 + 1,
            1_600_000_000_000_000_000 + s.t_us * 1000,
            b.len() as u32,
            LinkType::Ethernet,
            &b,
            &mut rec,
        );
    }
    t.finish(&mut rec);
    rec
}
