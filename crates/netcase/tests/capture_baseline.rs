//! Golden baseline of the capture rules over the shared corpus.
//!
//! Every capture in `shared/corpus` runs through capture → wire → FlowTracker (with the
//! protocol tracker beside it) → `CaptureRules`; the findings are listed one per line (case,
//! severity, subject, measures) in `tests/data/baseline/capture-findings.txt` and compared.
//! `NETCASE_UPDATE_BASELINE=1 cargo test -p netcase --test capture_baseline` rewrites the file;
//! read the diff line by line before committing it.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use netcase_capture::CaptureReader;
use netcase_flow::{ConnSummary, FlowConfig, FlowSink, FlowTracker, FrameAnalysis, UdpDatagram, UdpSummary};
use netcase_model::{Evidence, Finding};
use netcase_proto::{ProtoOutput, ProtoTracker};
use netcase_rules::capture::CaptureRules;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
const BASELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/baseline/capture-findings.txt");

struct Fan {
    proto: ProtoTracker,
    rules: CaptureRules,
}

impl FlowSink for Fan {
    fn frame(&mut self, f: &FrameAnalysis<'_>) {
        if !f.icmp_error {
            self.proto.tcp(
                f.frame,
                f.ts_ns,
                SocketAddr::new(f.src.addr, f.src.port),
                SocketAddr::new(f.dst.addr, f.dst.port),
                f.seq_raw,
                f.ack_raw,
                f.tcp_flags,
                f.payload,
                f.len,
                Some(u64::from(f.stream)),
            );
        }
        self.rules.frame(f);
    }
    fn closed(&mut self, c: &ConnSummary) {
        self.rules.closed(c);
    }
    fn udp(&mut self, d: &UdpDatagram<'_>) {
        if !d.icmp_error {
            self.proto.udp(
                d.frame,
                d.ts_ns,
                SocketAddr::new(d.src.addr, d.src.port),
                SocketAddr::new(d.dst.addr, d.dst.port),
                d.payload,
                d.len,
            );
        }
        self.rules.udp(d);
    }
    fn udp_closed(&mut self, u: &UdpSummary) {
        self.rules.udp_closed(u);
    }
}

/// Runs one capture through the stages in one thread; returns the capture rules' findings and
/// the protocol transactions.
fn analyse_inline(path: &Path) -> (Vec<Finding>, ProtoOutput) {
    let mut r = CaptureReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut tracker = FlowTracker::new(FlowConfig::default());
    let mut fan = Fan { proto: ProtoTracker::new(), rules: CaptureRules::new() };
    let mut art = netcase_artefact::Artefacts::new();
    let mut reasm = netcase_frag::Reassembler::default();
    let mut dns_whole = 0u64;
    while let Some(f) = r.next_frame() {
        let mut pkt = netcase_wire::decode(f.link, f.data);
        let meta = netcase_artefact::FrameMeta { number: f.number, ts_ns: f.ts_ns, interface: f.interface };
        if art.frame(&meta, f.data, &mut pkt).is_some() {
            continue;
        }
        if let Some(ip) = pkt.ip.filter(|ip| ip.fragment.is_some()) {
            dns_whole += netcase::pipeline::fragment(&mut reasm, &mut tracker, &mut fan, &f, &pkt, ip);
        }
        tracker.packet(f.number, f.ts_ns, f.orig_len, f.data, &pkt, &mut fan);
        fan.rules.packet(f.number, f.ts_ns, &pkt);
    }
    tracker.finish(&mut fan);
    let Fan { proto, mut rules } = fan;
    let frag = reasm.finish();
    rules.set_capture_facts(netcase_rules::capture::CaptureFacts {
        frames: r.info().frames,
        artefacts: art.report(),
        frag: netcase::pipeline::frag_facts(&frag, dns_whole),
    });
    let p = proto.finish();
    (rules.finish(&p.http, &p.dns), p)
}

/// The capture rules' findings for one capture.
fn analyse(path: &Path) -> Vec<Finding> {
    analyse_inline(path).0
}

fn num(v: f64) -> String {
    // Whole numbers and large values without decimals; small fractions to two places.
    if (v.fract() == 0.0 && v.abs() < 1e15) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn line(f: &Finding) -> String {
    let mut s = format!("  {} {} [{}]", f.case.as_str(), f.severity, f.subject);
    for e in &f.evidence {
        match e {
            Evidence::Measure { key, value, .. } => {
                let _ = write!(s, " {key}={}", num(*value));
            }
            Evidence::Text { key, value } if matches!(key.as_str(), "side" | "sender" | "closer" | "receiver") => {
                let _ = write!(s, " {key}={value}");
            }
            _ => {}
        }
    }
    s
}

fn captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(CORPUS).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    v.retain(|p| p.is_file() && p.extension().is_some_and(|x| x == "pcap" || x == "pcapng" || x == "gz"));
    v.sort();
    v
}

#[test]
fn capture_findings_match_baseline() {
    let caps = captures();
    if caps.is_empty() {
        eprintln!("corpus not found at {CORPUS}: skipped");
        return;
    }
    let mut out = String::from(
        "# Capture-rule findings over shared/corpus (one block per capture; measures rounded).\n\
         # Regenerate: NETCASE_UPDATE_BASELINE=1 cargo test -p netcase --test capture_baseline\n",
    );
    for p in &caps {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let findings = analyse(p);
        let _ = writeln!(out, "{name}: {} finding(s)", findings.len());
        for f in &findings {
            out.push_str(&line(f));
            out.push('\n');
        }
    }
    if std::env::var("NETCASE_UPDATE_BASELINE").is_ok_and(|v| v == "1") {
        if let Some(dir) = Path::new(BASELINE).parent() {
            std::fs::create_dir_all(dir).expect("create baseline dir");
        }
        std::fs::write(BASELINE, &out).expect("write baseline");
        eprintln!("baseline written: {BASELINE}");
        return;
    }
    let want = std::fs::read_to_string(BASELINE).unwrap_or_default();
    if want != out {
        let mut diff = String::new();
        let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), out.lines().collect());
        for l in &w {
            if !g.contains(l) {
                let _ = writeln!(diff, "- {l}");
            }
        }
        for l in &g {
            if !w.contains(l) {
                let _ = writeln!(diff, "+ {l}");
            }
        }
        panic!("capture findings differ from {BASELINE} (NETCASE_UPDATE_BASELINE=1 to accept after review):\n{diff}");
    }
}

struct Drop;
impl netcase::pipeline::FlowRecords for Drop {
    fn tcp(&mut self, _c: &ConnSummary) {}
    fn udp(&mut self, _u: &UdpSummary) {}
}

/// The production pipeline (file read ahead on its own thread, the rules on a side thread fed
/// compact frames and packet notes, DNS/HTTP on a third) finds exactly what the plain
/// single-threaded pass above finds, capture by capture, protocol rules included.
#[test]
fn threaded_pipeline_finds_the_same() {
    let caps = captures();
    if caps.is_empty() {
        eprintln!("corpus not found at {CORPUS}: skipped");
        return;
    }
    for p in &caps {
        let (mut want, out) = analyse_inline(p);
        want.extend(netcase_rules::proto::check(&out.dns, &out.http, &out.conns));
        Finding::sort(&mut want);

        let opts = netcase::pipeline::Options { events: false, proto: true, rules: true, keep_duplicates: false };
        let a = netcase::pipeline::analyse_file::<std::io::Sink, _>(p, opts, None, &mut Drop, &mut |_, _| {})
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let got: Vec<String> = a.findings.iter().map(line).collect();
        let want: Vec<String> = want.iter().map(line).collect();
        assert_eq!(got, want, "{}", p.display());
    }
}
