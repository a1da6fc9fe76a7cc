//! Golden baseline of the capture rules over the shared corpus.
//!
//! Every capture in `shared/corpus` runs through the analysis library (`netcase-analysis`, on
//! the calling thread); the findings of the capture and protocol rules are listed one per line
//! (case, severity, subject, measures) in `tests/data/baseline/capture-findings.txt` and
//! compared; the threaded pipeline must find exactly the same.
//! `NETCASE_UPDATE_BASELINE=1 cargo test -p netcase --test capture_baseline` rewrites the file;
//! read the diff line by line before committing it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use netcase_flow::{ConnSummary, UdpSummary};
use netcase_model::{Evidence, Finding};

const BASELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/baseline/capture-findings.txt");

struct Drop;
impl netcase_analysis::FlowRecords for Drop {
    fn tcp(&mut self, _c: &ConnSummary) {}
    fn udp(&mut self, _u: &UdpSummary) {}
}

/// One capture through the library, threaded or on the calling thread: every finding
/// (capture rules and protocol rules).
fn run(path: &Path, single_thread: bool) -> Vec<Finding> {
    let opts =
        netcase_analysis::Options { events: false, proto: true, rules: true, keep_duplicates: false, single_thread };
    netcase_analysis::analyse_file::<std::io::Sink, _>(path, opts, None, &mut Drop, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .findings
}

/// The findings for one capture (single-threaded: the reference for the threaded run).
fn analyse(path: &Path) -> Vec<Finding> {
    run(path, true)
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

/// The corpus captures; a missing corpus fails loudly unless `NETCASE_SKIP_CORPUS` is set
/// (then the tests see none and skip).
fn captures() -> Vec<PathBuf> {
    netcase_testkit::corpus_captures()
}

#[test]
fn capture_findings_match_baseline() {
    let caps = captures();
    if caps.is_empty() {
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

/// The production pipeline (the rules on a side thread fed compact frames and packet notes,
/// DNS/HTTP on another) finds exactly what the single-threaded pass finds, capture by capture.
#[test]
fn threaded_pipeline_finds_the_same() {
    let caps = captures();
    if caps.is_empty() {
        return;
    }
    for p in &caps {
        let want: Vec<String> = analyse(p).iter().map(line).collect();
        let got: Vec<String> = run(p, false).iter().map(line).collect();
        assert_eq!(got, want, "{}", p.display());
    }
}

/// The text report of every corpus capture writes each unit once: no `stall_ms = 6063.400 ms`,
/// no `sack = 0 bool`, no `hole_seq = 145 seq` (the renderer formats units in one place).
#[test]
fn text_reports_write_units_once() {
    let caps = captures();
    if caps.is_empty() {
        return;
    }
    let mut bad = Vec::new();
    for p in &caps {
        let mut out = Vec::new();
        netcase_report::write_findings_text(&mut out, &analyse(p)).expect("render");
        for line in String::from_utf8_lossy(&out).lines() {
            let Some(m) = line.trim_start().strip_prefix("- ") else { continue };
            let Some((key, value)) = m.split_once(" = ") else { continue };
            let doubled = [("_ms", " ms"), ("_s", " s"), ("_pct", " %"), ("_bytes", " bytes"), ("_per_s", "/s")]
                .iter()
                .any(|(suf, unit)| key.ends_with(suf) && value.ends_with(unit));
            let invented = [" bool", " seq", " count", " port", " pid"].iter().any(|u| value.ends_with(u));
            if doubled || invented {
                bad.push(format!("{}: {m}", p.display()));
            }
        }
    }
    assert!(bad.is_empty(), "units written twice or invented:\n{}", bad.join("\n"));
}
