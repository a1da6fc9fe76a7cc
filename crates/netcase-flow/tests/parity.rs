//! Parity with tshark 4.0.17 over every capture of the shared corpus.
//!
//! Compares per-frame `tcp.analysis.*` flags, `tcp.stream`, `acks_frame`, `bytes_in_flight`
//! and the calculated window with `NAME.truth/frames.tsv`, and per-stream facts with
//! `streams.tsv`. Prints a table; fails when exact per-frame flag agreement (over frames
//! flagged by either side) is below 99.5 % or when stream numbering or handshake facts differ.
//! `PARITY_DEBUG=1` lists the differing frames.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use netcase_flow::{AnalysisFlags, ConnSummary, FlowConfig, FlowSink, FlowTracker, FrameAnalysis};
use netcase_testkit::CORPUS;

#[derive(Debug, Clone, Default)]
struct Mine {
    stream: Option<u32>,
    flags: u16,
    acks: Option<u64>,
    bif: Option<u32>,
    calc_win: Option<u32>,
    icmp: bool,
}

#[derive(Default)]
struct Collect {
    frames: HashMap<u64, Mine>,
    conns: BTreeMap<u32, ConnSummary>,
    udp: HashMap<u64, u32>,
}

impl FlowSink for Collect {
    fn frame(&mut self, f: &FrameAnalysis<'_>) {
        // The first TCP header of a frame counts, as in the truth.
        self.frames.entry(f.frame).or_insert(Mine {
            stream: Some(f.stream),
            flags: f.flags.0,
            acks: f.acks_frame,
            bif: f.bytes_in_flight,
            calc_win: Some(f.calc_window),
            icmp: f.icmp_error,
        });
    }
    fn closed(&mut self, c: &ConnSummary) {
        self.conns.insert(c.stream, c.clone());
    }
    fn udp(&mut self, d: &netcase_flow::UdpDatagram<'_>) {
        self.udp.entry(d.frame).or_insert(d.stream);
    }
}

struct Truth {
    frame: u64,
    stream: Option<u32>,
    flags: u16,
    acks: Option<u64>,
    bif: Option<u32>,
    calc_win: Option<u32>,
}

fn read_tsv(p: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let mut lines = text.lines();
    let Some(head) = lines.next() else { return Vec::new() };
    let cols: Vec<&str> = head.split('\t').collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| cols.iter().zip(l.split('\t')).map(|(c, v)| (c.to_string(), v.to_string())).collect())
        .collect()
}

fn truth_frames(dir: &Path) -> Vec<Truth> {
    read_tsv(&dir.join("frames.tsv"))
        .into_iter()
        .map(|r| {
            let mut flags = 0u16;
            for (i, n) in AnalysisFlags::NAMES.iter().enumerate() {
                if r.get(*n).map(String::as_str) == Some("1") {
                    flags |= 1 << i;
                }
            }
            Truth {
                frame: r["frame"].parse().unwrap(),
                stream: r["stream"].parse().ok(),
                flags,
                acks: r["acks_frame"].parse().ok(),
                bif: r["bytes_in_flight"].parse().ok(),
                calc_win: r["calc_win"].parse().ok(),
            }
        })
        .collect()
}

fn captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(CORPUS).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    v.retain(|p| {
        let mut t = p.clone().into_os_string();
        t.push(".truth");
        p.is_file() && Path::new(&t).is_dir()
    });
    v.sort();
    v
}

fn run(path: &Path) -> Collect {
    let mut r = netcase_capture::CaptureReader::open(path).expect("open capture");
    let mut t = FlowTracker::new(FlowConfig::default());
    let mut sink = Collect::default();
    while let Some(f) = r.next_frame() {
        let pkt = netcase_wire::decode(f.link, f.data);
        t.packet(f.number, f.ts_ns, f.orig_len, f.data, &pkt, &mut sink);
    }
    t.finish(&mut sink);
    sink
}

#[derive(Default, Clone, Copy)]
struct Pr {
    tp: u64,
    fp: u64,
    fn_: u64,
}

#[derive(Default)]
struct Agree {
    ok: u64,
    n: u64,
}
impl Agree {
    fn add(&mut self, ok: bool) {
        self.n += 1;
        self.ok += u64::from(ok);
    }
    fn pct(&self) -> f64 {
        if self.n == 0 {
            100.0
        } else {
            100.0 * self.ok as f64 / self.n as f64
        }
    }
}

fn fmt_secs(ns: i64) -> String {
    format!("{}.{:09}", ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000))
}

fn opt_str<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

#[test]
fn parity_with_tshark() {
    let caps = captures();
    if caps.is_empty() {
        eprintln!("corpus not found at {CORPUS}: parity test skipped");
        return;
    }
    let debug = std::env::var_os("PARITY_DEBUG").is_some();
    let mut per_flag = [Pr::default(); 15];
    let mut exact = Agree::default();
    let mut stream = Agree::default();
    let mut acks = Agree::default();
    let mut bif = Agree::default();
    let mut win = Agree::default();
    let mut st_count = Agree::default();
    let mut st_facts = Agree::default();
    let mut st_hs = Agree::default();
    let mut st_irtt = Agree::default();
    let mut st_stats = Agree::default();
    let mut udp_stream = Agree::default();
    let mut bad_numbering: Vec<String> = Vec::new();
    for cap in &caps {
        let name = cap.file_name().unwrap().to_string_lossy().to_string();
        let tdir = PathBuf::from(format!("{}.truth", cap.display()));
        let mine = run(cap);
        let truth = truth_frames(&tdir);
        let mut file_stream_ok = true;
        let mut shown = 0;
        for t in &truth {
            let m = mine.frames.get(&t.frame).cloned().unwrap_or_default();
            for (i, pf) in per_flag.iter_mut().enumerate() {
                let (a, b) = (m.flags & (1 << i) != 0, t.flags & (1 << i) != 0);
                match (a, b) {
                    (true, true) => pf.tp += 1,
                    (true, false) => pf.fp += 1,
                    (false, true) => pf.fn_ += 1,
                    _ => {}
                }
            }
            if m.flags != 0 || t.flags != 0 {
                exact.add(m.flags == t.flags);
            }
            let s_ok = m.stream == t.stream;
            stream.add(s_ok);
            file_stream_ok &= s_ok;
            if !m.icmp {
                acks.add(m.acks == t.acks);
                bif.add(m.bif == t.bif);
                if t.calc_win.is_some() {
                    win.add(m.calc_win == t.calc_win);
                }
            }
            let differs = m.flags != t.flags || !s_ok || m.acks != t.acks || m.bif != t.bif;
            if debug && differs && shown < 25 {
                shown += 1;
                eprintln!(
                    "{name} frame {}: stream {:?}/{:?} flags {:?} vs truth {:?} acks {:?}/{:?} bif {:?}/{:?} win {:?}/{:?}",
                    t.frame,
                    m.stream,
                    t.stream,
                    AnalysisFlags(m.flags).names().collect::<Vec<_>>(),
                    AnalysisFlags(t.flags).names().collect::<Vec<_>>(),
                    m.acks,
                    t.acks,
                    m.bif,
                    t.bif,
                    m.calc_win,
                    t.calc_win
                );
            }
        }
        // streams.tsv
        let ts = read_tsv(&tdir.join("streams.tsv"));
        st_count.add(ts.len() == mine.conns.len());
        if ts.len() != mine.conns.len() {
            file_stream_ok = false;
            if debug {
                eprintln!("{name}: {} streams vs truth {}", mine.conns.len(), ts.len());
            }
        }
        for r in &ts {
            let sid: u32 = r["stream"].parse().unwrap();
            let Some(c) = mine.conns.get(&sid) else {
                st_facts.add(false);
                st_hs.add(false);
                st_irtt.add(false);
                st_stats.add(false);
                continue;
            };
            let facts = c.a.addr.to_string() == r["a"]
                && c.a.port.to_string() == r["a_port"]
                && c.b.addr.to_string() == r["b"]
                && c.b.port.to_string() == r["b_port"];
            st_facts.add(facts);
            file_stream_ok &= facts;
            let hs_mine = [
                opt_str(c.syn.map(|s| s.frame)),
                opt_str(c.synack.map(|s| s.frame)),
                opt_str(c.syn.and_then(|s| s.mss)),
                opt_str(c.syn.and_then(|s| s.wscale)),
                c.syn.map_or("0", |s| if s.sack_perm { "1" } else { "0" }).to_string(),
                c.syn.map_or("0", |s| if s.timestamps { "1" } else { "0" }).to_string(),
                opt_str(c.synack.and_then(|s| s.mss)),
                opt_str(c.synack.and_then(|s| s.wscale)),
                c.synack.map_or("0", |s| if s.sack_perm { "1" } else { "0" }).to_string(),
                c.synack.map_or("0", |s| if s.timestamps { "1" } else { "0" }).to_string(),
            ];
            let hs_truth = [
                "syn_frame",
                "synack_frame",
                "syn_mss",
                "syn_wscale",
                "syn_sack_perm",
                "syn_ts",
                "synack_mss",
                "synack_wscale",
                "synack_sack_perm",
                "synack_ts",
            ]
            .map(|k| r[k].clone());
            let hs_ok = hs_mine == hs_truth;
            st_hs.add(hs_ok);
            let irtt_ok = opt_str(c.irtt_ns.map(fmt_secs)) == r["irtt"];
            st_irtt.add(irtt_ok);
            let stats_ok = c.ab.frames.to_string() == r["frames_ab"]
                && c.ab.bytes.to_string() == r["bytes_ab"]
                && c.ba.frames.to_string() == r["frames_ba"]
                && c.ba.bytes.to_string() == r["bytes_ba"]
                && (c.ab.fin + c.ba.fin).to_string() == r["fin"]
                && (c.ab.rst + c.ba.rst).to_string() == r["rst"]
                && opt_str(c.ab.scalefactor) == r["scalefactor_ab"]
                && opt_str(c.ba.scalefactor) == r["scalefactor_ba"];
            st_stats.add(stats_ok);
            if debug && !(facts && hs_ok && irtt_ok && stats_ok) {
                eprintln!(
                    "{name} stream {sid}: facts {facts} hs {hs_ok} {hs_mine:?} vs {hs_truth:?} irtt {:?} vs {} stats {stats_ok} ({} {} {} {} sf {:?} {:?})",
                    c.irtt_ns.map(fmt_secs),
                    r["irtt"],
                    c.ab.frames,
                    c.ab.bytes,
                    c.ba.frames,
                    c.ba.bytes,
                    c.ab.scalefactor,
                    c.ba.scalefactor
                );
            }
        }
        // udp.stream of DNS frames (dns.tsv)
        for r in read_tsv(&tdir.join("dns.tsv")) {
            if r["transport"] == "udp" {
                let f: u64 = r["frame"].parse().unwrap();
                let ok = mine.udp.get(&f).map(|s| s.to_string()) == Some(r["stream"].clone());
                if debug && !ok {
                    eprintln!("{name} frame {f}: udp.stream {:?} vs truth {}", mine.udp.get(&f), r["stream"]);
                }
                udp_stream.add(ok);
            }
        }
        if !file_stream_ok {
            bad_numbering.push(name.clone());
        }
    }

    println!("\nparity with tshark 4.0.17 over {} captures", caps.len());
    println!("{:<26} {:>6} {:>6} {:>6} {:>9} {:>9}", "flag", "tp", "fp", "fn", "precision", "recall");
    for (i, pf) in per_flag.iter().enumerate() {
        let p = if pf.tp + pf.fp == 0 { 100.0 } else { 100.0 * pf.tp as f64 / (pf.tp + pf.fp) as f64 };
        let r = if pf.tp + pf.fn_ == 0 { 100.0 } else { 100.0 * pf.tp as f64 / (pf.tp + pf.fn_) as f64 };
        println!("{:<26} {:>6} {:>6} {:>6} {:>8.2}% {:>8.2}%", AnalysisFlags::NAMES[i], pf.tp, pf.fp, pf.fn_, p, r);
    }
    let line = |n: &str, a: &Agree| println!("{:<44} {:>7}/{:<7} {:>7.3}%", n, a.ok, a.n, a.pct());
    line("exact flag set, frames flagged by either", &exact);
    line("tcp.stream per frame", &stream);
    line("acks_frame per frame", &acks);
    line("bytes_in_flight per frame", &bif);
    line("calc_win per frame", &win);
    line("udp.stream per DNS-over-UDP frame (dns.tsv)", &udp_stream);
    line("streams.tsv: stream count per file", &st_count);
    line("streams.tsv: endpoints (a, b)", &st_facts);
    line("streams.tsv: syn/synack frames + options", &st_hs);
    line("streams.tsv: irtt", &st_irtt);
    line("streams.tsv: frames/bytes/fin/rst/scalefactor", &st_stats);
    if !bad_numbering.is_empty() {
        println!("files with stream numbering/endpoint differences: {bad_numbering:?}");
    }
    assert!(exact.pct() >= 99.5, "exact per-frame flag agreement {:.3}% < 99.5%", exact.pct());
    assert_eq!(stream.ok, stream.n, "tcp.stream differs on some frames");
    assert_eq!(st_count.ok, st_count.n, "stream counts differ");
    assert_eq!(st_facts.ok, st_facts.n, "stream endpoints differ");
    assert_eq!(st_hs.ok, st_hs.n, "handshake facts differ");
}
