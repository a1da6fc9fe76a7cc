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
    /// IP reassembly, as the pipeline does it.
    pub reasm: netcase_frag::Reassembler,
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
        if ip.fragment.is_some() {
            self.fragments.insert(f.number);
            // The frame completing a datagram hands the whole of it to the tracker under its
            // own frame number, as tshark does (and as the pipeline does).
            let Some(d) = self.reasm.push(f.number, f.ts_ns, &pkt) else {
                // A first fragment cut short by the snap length can never be completed: its
                // start is analysed as it is (tshark does the same).
                if ip.fragment.is_some_and(|fr| fr.offset == 0)
                    && (pkt.ip_payload.len() as u64) < u64::from(ip.payload_len)
                {
                    let cut = netcase_wire::IpInfo { fragment: None, ..ip };
                    Self::feed(&mut self.tracker, f, cut, pkt.transport);
                }
                return;
            };
            let whole = decode(netcase_wire::LinkType::Raw, d.bytes);
            if let Some(wip) = whole.ip {
                Self::feed(&mut self.tracker, f, wip, whole.transport);
            }
            return;
        }
        Self::feed(&mut self.tracker, f, ip, pkt.transport);
    }

    fn feed(tracker: &mut ProtoTracker, f: &Frame<'_>, ip: netcase_wire::IpInfo, t: Option<Transport<'_>>) {
        let tr = tracker;
        match t {
            Some(Transport::Udp(u)) => {
                let s = SocketAddr::new(ip.src, u.src_port);
                let d = SocketAddr::new(ip.dst, u.dst_port);
                tr.udp(f.number, f.ts_ns, s, d, u.payload, u.len);
            }
            Some(Transport::Tcp(tc)) => {
                let s = SocketAddr::new(ip.src, tc.src_port);
                let d = SocketAddr::new(ip.dst, tc.dst_port);
                tr.tcp(f.number, f.ts_ns, s, d, tc.seq, tc.ack, tc.flags, tc.payload, tc.len, None);
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
