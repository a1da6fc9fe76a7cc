//! Runs Ethernet/IPv4/TCP frames (built by `netcase_testkit::tcp`) through a tracker.
#![allow(dead_code)]

use netcase_flow::{ConnSummary, FlowConfig, FlowSink, FlowTracker, FrameAnalysis, UdpDatagram, UdpSummary};
use netcase_wire::LinkType;

pub use netcase_testkit::tcp::*;

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
    run_ports_with(FlowConfig::default(), segs)
}

#[allow(dead_code)]
pub fn run_ports_with(cfg: FlowConfig, segs: &[(Seg, u16)]) -> Rec {
    let mut t = FlowTracker::new(cfg);
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
