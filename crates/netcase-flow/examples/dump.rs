//! Prints one line per TCP frame in the column order of the corpus `frames.tsv`, for diffing
//! against tshark: `cargo run -p netcase-flow --example dump -- CAPTURE` (`DBG=N` also prints
//! the decoded packet of frame N on stderr).

use netcase_flow::{FlowConfig, FlowSink, FlowTracker, FrameAnalysis};

struct Dump;

fn secs(ns: i64) -> String {
    format!("{}.{:09}", ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000))
}

impl FlowSink for Dump {
    fn frame(&mut self, f: &FrameAnalysis<'_>) {
        let names: Vec<&str> = f.flags.names().collect();
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t0x{:04x}\t{}\t{}\t{}",
            f.frame,
            f.stream,
            names.join(","),
            if f.dupack_num > 0 { f.dupack_num.to_string() } else { String::new() },
            if f.dupack_num > 0 { f.dupack_frame.to_string() } else { String::new() },
            f.acks_frame.map(|x| x.to_string()).unwrap_or_default(),
            f.ack_rtt_ns.map(secs).unwrap_or_default(),
            f.bytes_in_flight.map(|x| x.to_string()).unwrap_or_default(),
            f.initial_rtt_ns.map(secs).unwrap_or_default(),
            f.seq,
            f.ack,
            f.len,
            f.tcp_flags,
            f.window,
            f.calc_window,
            f.window_scale.map(|w| w.tshark_value().to_string()).unwrap_or_default(),
        );
    }
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: dump CAPTURE");
        std::process::exit(2);
    };
    let mut r = match netcase_capture::CaptureReader::open(std::path::Path::new(&path)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    let mut t = FlowTracker::new(FlowConfig::default());
    let mut sink = Dump;
    while let Some(f) = r.next_frame() {
        let pkt = netcase_wire::decode(f.link, f.data);
        if std::env::var("DBG").ok().and_then(|v| v.parse::<u64>().ok()) == Some(f.number) {
            debug_frame(f.data, f.link);
        }
        t.packet(f.number, f.ts_ns, f.orig_len, f.data, &pkt, &mut sink);
    }
    t.finish(&mut sink);
}

#[allow(dead_code)]
fn debug_frame(data: &[u8], link: netcase_wire::LinkType) {
    let p = netcase_wire::decode(link, data);
    eprintln!("{:?}", p);
    if let Some(netcase_wire::Transport::Icmp(i)) = p.transport {
        eprintln!("quoted decode: {:?}", i.body.get(4..).map(|b| netcase_wire::decode(netcase_wire::LinkType::Raw, b)));
    }
}
