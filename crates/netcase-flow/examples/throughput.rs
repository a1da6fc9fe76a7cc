//! Measures the engine's packets per second on a capture (release mode):
//! `cargo run --release -p netcase-flow --example throughput -- CAPTURE [ROUNDS]`.
//!
//! Frames are first loaded into memory; each round decodes every frame with
//! `netcase_wire::decode` and runs it through a fresh `FlowTracker` with a sink that counts
//! flagged frames (what the `--events` output needs). The best round is reported, plus one
//! end-to-end pass that includes reading the file.

use std::time::Instant;

use netcase_flow::{ConnSummary, FlowConfig, FlowSink, FlowTracker, FrameAnalysis};
use netcase_wire::LinkType;

#[derive(Default)]
struct Count {
    frames: u64,
    flagged: u64,
    conns: u64,
    udp: u64,
}

impl FlowSink for Count {
    fn frame(&mut self, f: &FrameAnalysis<'_>) {
        self.frames += 1;
        self.flagged += u64::from(!f.flags.is_empty());
    }
    fn closed(&mut self, _c: &ConnSummary) {
        self.conns += 1;
    }
    fn udp(&mut self, _d: &netcase_flow::UdpDatagram<'_>) {
        self.udp += 1;
    }
}

struct Owned {
    number: u64,
    ts: i64,
    orig_len: u32,
    link: LinkType,
    start: usize,
    end: usize,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: throughput CAPTURE [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let open = |p: &str| match netcase_capture::CaptureReader::open(std::path::Path::new(p)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{p}: {e}");
            std::process::exit(2);
        }
    };
    // Load.
    let mut r = open(&path);
    let mut buf: Vec<u8> = Vec::new();
    let mut frames: Vec<Owned> = Vec::new();
    while let Some(f) = r.next_frame() {
        let start = buf.len();
        buf.extend_from_slice(f.data);
        frames.push(Owned { number: f.number, ts: f.ts_ns, orig_len: f.orig_len, link: f.link, start, end: buf.len() });
    }
    let n = frames.len() as f64;
    let mut best = f64::MAX;
    let mut last = Count::default();
    for _ in 0..rounds {
        let mut t = FlowTracker::new(FlowConfig::default());
        let mut sink = Count::default();
        let t0 = Instant::now();
        for f in &frames {
            let data = buf.get(f.start..f.end).unwrap_or(&[]);
            t.frame(f.number, f.ts, f.orig_len, f.link, data, &mut sink);
        }
        t.finish(&mut sink);
        let dt = t0.elapsed().as_secs_f64();
        best = best.min(dt);
        last = sink;
    }
    println!(
        "{path}: {} frames, {} TCP frames ({} flagged), {} connections, {} UDP datagrams",
        frames.len(),
        last.frames,
        last.flagged,
        last.conns,
        last.udp
    );
    println!("decode + analysis (in memory, best of {rounds}): {:.3} s, {:.2} M packets/s", best, n / best / 1e6);
    // End to end, including the reader.
    let t0 = Instant::now();
    let mut r = open(&path);
    let mut t = FlowTracker::new(FlowConfig::default());
    let mut sink = Count::default();
    while let Some(f) = r.next_frame() {
        t.frame(f.number, f.ts_ns, f.orig_len, f.link, f.data, &mut sink);
    }
    t.finish(&mut sink);
    let dt = t0.elapsed().as_secs_f64();
    println!("read + decode + analysis (end to end): {:.3} s, {:.2} M packets/s", dt, n / dt / 1e6);
}
