//! Drives a `ProtoTracker` over a capture file.
#![allow(dead_code)]

use netcase_capture::Frame;
use netcase_proto::{ProtoOutput, ProtoTracker};
use netcase_wire::{decode, Transport};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

/// Turns capture frames into tracker calls. Every frame of every test capture goes through
/// [`Feeder::frame`]: IP reassembly (netcase-frag) belongs there once the pipeline has it.
#[derive(Default)]
pub struct Feeder {
    /// The tracker fed.
    pub tracker: ProtoTracker,
    /// Frames read.
    pub frames: u64,
    /// Frames that carried an IP fragment (first, middle or last). Until reassembly is wired
    /// in, only first fragments reach the tracker (cut short), so what arrived in fragments
    /// is not seen whole.
    pub fragments: BTreeSet<u64>,
    /// Frames netcase-wire found no IP packet in (link types it does not decode, ARP, ...).
    pub undecoded: BTreeSet<u64>,
}

impl Feeder {
    /// One frame, decoded and handed to the tracker.
    pub fn frame(&mut self, f: &Frame<'_>) {
        self.frames += 1;
        let pkt = decode(f.link, f.data);
        let Some(ip) = pkt.ip else {
            self.undecoded.insert(f.number);
            return;
        };
        if let Some(fr) = ip.fragment {
            self.fragments.insert(f.number);
            if fr.offset > 0 {
                // Reassembly goes here: the frame completing a datagram would hand the whole
                // UDP/TCP payload to the tracker under its own frame number, as tshark does.
                return;
            }
        }
        match pkt.transport {
            Some(Transport::Udp(u)) => {
                let s = SocketAddr::new(ip.src, u.src_port);
                let d = SocketAddr::new(ip.dst, u.dst_port);
                self.tracker.udp(f.number, f.ts_ns, s, d, u.payload, u.len);
            }
            Some(Transport::Tcp(tc)) => {
                let s = SocketAddr::new(ip.src, tc.src_port);
                let d = SocketAddr::new(ip.dst, tc.dst_port);
                self.tracker.tcp(f.number, f.ts_ns, s, d, tc.seq, tc.ack, tc.flags, tc.payload, tc.len, None);
            }
            _ => {}
        }
    }
}

/// What a capture gave.
pub struct Fed {
    /// The tracker's output.
    pub out: ProtoOutput,
    /// Frames read.
    pub frames: u64,
    /// Frames that carried IP fragments.
    pub fragments: BTreeSet<u64>,
    /// Frames without an IP packet netcase-wire could decode.
    pub undecoded: BTreeSet<u64>,
}

/// Feeds every frame of `path` through a [`Feeder`].
pub fn run_full(path: &Path) -> Fed {
    let mut r = netcase_capture::CaptureReader::open(path).expect("open capture");
    let mut f = Feeder::default();
    while let Some(fr) = r.next_frame() {
        f.frame(&fr);
    }
    Fed { out: f.tracker.finish(), frames: f.frames, fragments: f.fragments, undecoded: f.undecoded }
}

/// Feeds every frame of `path` to a tracker; returns its output and the frame count.
pub fn run(path: &Path) -> (ProtoOutput, u64) {
    let fed = run_full(path);
    (fed.out, fed.frames)
}
