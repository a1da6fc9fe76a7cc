//! Drives a `ProtoTracker` over a capture file.
#![allow(dead_code)]

use netcase_proto::{ProtoOutput, ProtoTracker};
use netcase_wire::{decode, Transport};
use std::net::SocketAddr;
use std::path::Path;

/// Feeds every frame of `path` to a tracker; returns its output and the frame count.
pub fn run(path: &Path) -> (ProtoOutput, u64) {
    let mut r = netcase_capture::CaptureReader::open(path).expect("open capture");
    let mut t = ProtoTracker::new();
    let mut n = 0;
    while let Some(f) = r.next_frame() {
        n += 1;
        let pkt = decode(f.link, f.data);
        let Some(ip) = pkt.ip else { continue };
        if ip.fragment.is_some_and(|fr| fr.offset > 0) {
            continue;
        }
        match pkt.transport {
            Some(Transport::Udp(u)) => {
                let s = SocketAddr::new(ip.src, u.src_port);
                let d = SocketAddr::new(ip.dst, u.dst_port);
                t.udp(f.number, f.ts_ns, s, d, u.payload, u.len);
            }
            Some(Transport::Tcp(tc)) => {
                let s = SocketAddr::new(ip.src, tc.src_port);
                let d = SocketAddr::new(ip.dst, tc.dst_port);
                t.tcp(f.number, f.ts_ns, s, d, tc.seq, tc.ack, tc.flags, tc.payload, tc.len, None);
            }
            _ => {}
        }
    }
    (t.finish(), n)
}
