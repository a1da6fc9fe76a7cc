//! Tracker throughput over a real capture (release build, no harness):
//!
//! ```text
//! cargo bench -p netcase-proto --bench throughput [-- PATH]
//! ```
//! PATH defaults to `$NETCASE_BENCH_CAPTURE` or `/var/tmp/netcase-bench/small/many-flows.pcap`
//! (made by `shared/bench/make_captures.sh`). Frames are decoded once into memory and given
//! stream numbers (as the pipeline's flow tracker does: a new one per SYN with a new ISN),
//! then the tracker alone is timed (best of 3), then read + decode + track end to end.

use netcase_proto::ProtoTracker;
use netcase_wire::{decode, Transport};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

enum Kind {
    Udp,
    Tcp { seq: u32, ack: u32, flags: u16, len: u32, stream: u64 },
}

struct Pkt {
    frame: u64,
    ts: i64,
    src: SocketAddr,
    dst: SocketAddr,
    kind: Kind,
    range: (usize, usize),
}

fn feed(t: &mut ProtoTracker, frame: u64, ts: i64, pkt: &netcase_wire::Packet<'_>) {
    let Some(ip) = pkt.ip else { return };
    match pkt.transport {
        Some(Transport::Udp(u)) => {
            t.udp(frame, ts, SocketAddr::new(ip.src, u.src_port), SocketAddr::new(ip.dst, u.dst_port), u.payload, u.len)
        }
        Some(Transport::Tcp(c)) => t.tcp(
            frame,
            ts,
            SocketAddr::new(ip.src, c.src_port),
            SocketAddr::new(ip.dst, c.dst_port),
            c.seq,
            c.ack,
            c.flags,
            c.payload,
            c.len,
            None,
        ),
        _ => {}
    }
}

fn main() {
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("NETCASE_BENCH_CAPTURE").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/tmp/netcase-bench/small/many-flows.pcap"));
    if !path.exists() {
        eprintln!("no capture at {} (run shared/bench/make_captures.sh); skipped", path.display());
        return;
    }
    // Decode once into memory.
    let mut r = netcase_capture::CaptureReader::open(&path).expect("open capture");
    let mut buf = Vec::new();
    let mut pkts = Vec::new();
    let mut frames = 0u64;
    let mut next_stream = 0u64;
    let mut streams: std::collections::HashMap<(SocketAddr, SocketAddr), (u64, u32)> = Default::default();
    while let Some(f) = r.next_frame() {
        frames += 1;
        let p = decode(f.link, f.data);
        let Some(ip) = p.ip else { continue };
        let (kind, sp, dp, payload) = match p.transport {
            Some(Transport::Udp(u)) => (Kind::Udp, u.src_port, u.dst_port, u.payload),
            Some(Transport::Tcp(c)) => {
                let (s, d) = (SocketAddr::new(ip.src, c.src_port), SocketAddr::new(ip.dst, c.dst_port));
                let k = if s <= d { (s, d) } else { (d, s) };
                let n = next_stream;
                let syn_only = c.flags & 0x12 == 0x02;
                let e = streams.entry(k).or_insert((n, c.seq));
                if e.0 == n {
                    next_stream += 1;
                } else if syn_only && e.1 != c.seq {
                    *e = (n, c.seq);
                    next_stream += 1;
                }
                let stream = e.0;
                (
                    Kind::Tcp { seq: c.seq, ack: c.ack, flags: c.flags, len: c.len, stream },
                    c.src_port,
                    c.dst_port,
                    c.payload,
                )
            }
            _ => continue,
        };
        let start = buf.len();
        buf.extend_from_slice(payload);
        pkts.push(Pkt {
            frame: f.number,
            ts: f.ts_ns,
            src: SocketAddr::new(ip.src, sp),
            dst: SocketAddr::new(ip.dst, dp),
            kind,
            range: (start, buf.len()),
        });
    }
    let kb = |field: &str| -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    };
    let rss0 = kb("VmRSS:");
    let mut best = f64::MAX;
    let mut summary = String::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let mut t = ProtoTracker::new();
        let mut peak = 0;
        for (i, p) in pkts.iter().enumerate() {
            let payload = buf.get(p.range.0..p.range.1).unwrap_or(&[]);
            match p.kind {
                Kind::Udp => t.udp(p.frame, p.ts, p.src, p.dst, payload, payload.len() as u32),
                Kind::Tcp { seq, ack, flags, len, stream } => {
                    t.tcp(p.frame, p.ts, p.src, p.dst, seq, ack, flags, payload, len, Some(stream))
                }
            }
            if i % 4096 == 0 {
                peak = peak.max(t.live_connections());
            }
        }
        let out = t.finish();
        let s = t0.elapsed().as_secs_f64();
        best = best.min(s);
        if summary.is_empty() {
            println!(
                "memory: RSS {:.1} MB before, peak {:.1} MB, {:.1} MB with the output held (Linux)",
                rss0 as f64 / 1e3,
                kb("VmHWM:") as f64 / 1e3,
                kb("VmRSS:") as f64 / 1e3
            );
        }
        summary = format!(
            "{} dns txns ({} unanswered), {} http txns, {} conns, peak live conns {}",
            out.dns.len(),
            out.dns.iter().filter(|d| d.unanswered()).count(),
            out.http.len(),
            out.conns.len(),
            peak
        );
    }
    let n = pkts.len() as f64;
    println!(
        "capture: {} ({frames} frames, {} TCP/UDP packets, {:.1} MB payload)",
        path.display(),
        pkts.len(),
        buf.len() as f64 / 1e6
    );
    println!("result: {summary}");
    println!(
        "tracker only: {:.3} s, {:.0} packets/s, {:.0} MB/s of payload",
        best,
        n / best,
        buf.len() as f64 / 1e6 / best
    );
    // End to end: read + decode + track.
    let t0 = Instant::now();
    let mut r = netcase_capture::CaptureReader::open(&path).expect("open capture");
    let mut t = ProtoTracker::new();
    while let Some(f) = r.next_frame() {
        let p = decode(f.link, f.data);
        feed(&mut t, f.number, f.ts_ns, &p);
    }
    let out = t.finish();
    let s = t0.elapsed().as_secs_f64();
    println!("(end to end, no stream numbers: {} dns txns, {} http txns)", out.dns.len(), out.http.len());
    println!("read+decode+track: {:.3} s, {:.0} frames/s", s, frames as f64 / s);
}
