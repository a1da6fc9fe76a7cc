//! Every warning and error netcase gives on the reviewed corpus must have a CORRECT verdict.
//!
//! The corpus is `shared/corpus` (31 captures) and `corpus/wild` (88 captures from public
//! test suites, see `corpus/wild/SOURCES.md`). An independent reviewer, briefed to disprove
//! each finding with tshark, wrote one verdict per finding in `corpus/review/verdicts.tsv`
//! (capture, case, subject, severity → CORRECT / WRONG / DISPUTABLE + evidence). A finding of
//! severity warning or error that has no CORRECT verdict for the same capture, case, subject
//! and severity fails this test: either the rule is fixed, or the finding is reviewed.
//!
//! The test prints the precision table: findings now, how many have a CORRECT verdict, and the
//! verdicts of the last review.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use netcase_flow::{ConnSummary, UdpSummary};
use netcase_model::Severity;

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
const WILD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpus/wild");
const VERDICTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpus/review/verdicts.tsv");

struct Drop;
impl netcase_analysis::FlowRecords for Drop {
    fn tcp(&mut self, _c: &ConnSummary) {}
    fn udp(&mut self, _u: &UdpSummary) {}
}

fn captures(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    v.retain(|p| p.is_file() && p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"));
    v.sort();
    v
}

/// (capture, case, subject JSON, severity) → (verdict, evidence).
fn verdicts() -> HashMap<(String, String, String, String), (String, String)> {
    let text = std::fs::read_to_string(VERDICTS).unwrap_or_else(|e| panic!("{VERDICTS}: {e}"));
    let mut m = HashMap::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        if c.len() < 5 {
            continue;
        }
        m.insert(
            (c[0].to_owned(), c[1].to_owned(), c[2].to_owned(), c[3].to_owned()),
            (c[4].trim().to_owned(), c.get(5).copied().unwrap_or("").to_owned()),
        );
    }
    m
}

#[test]
fn every_warning_and_error_has_a_correct_verdict() {
    let mut caps = captures(SHARED);
    let shared_n = caps.len();
    caps.extend(captures(WILD));
    if caps.len() == shared_n {
        eprintln!("corpus/wild not found at {WILD}: skipped");
        return;
    }
    let v = verdicts();
    let mut failures = Vec::new();
    let (mut all, mut correct, mut errors, mut errors_wrong) = (0u32, 0u32, 0u32, 0u32);
    for p in &caps {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let opts = netcase_analysis::Options {
            events: false,
            proto: true,
            rules: true,
            keep_duplicates: false,
            single_thread: false,
        };
        let a = netcase_analysis::analyse_file::<std::io::Sink, _>(p, opts, None, &mut Drop, &mut |_, _| {})
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        for f in a.findings.iter().filter(|f| f.severity >= Severity::Warning) {
            all += 1;
            let subject = serde_json::to_string(&f.subject).unwrap_or_default();
            let key = (name.clone(), f.case.as_str().to_owned(), subject.clone(), f.severity.to_string());
            let verdict = v.get(&key).map(|x| x.0.as_str());
            if f.severity == Severity::Error {
                errors += 1;
                if verdict != Some("CORRECT") {
                    errors_wrong += 1;
                }
            }
            if verdict == Some("CORRECT") {
                correct += 1;
            } else {
                failures.push(format!(
                    "{name}\t{}\t{subject}\t{}\t{}\t{}",
                    f.case.as_str(),
                    f.severity,
                    verdict.unwrap_or("UNREVIEWED"),
                    f.summary
                ));
            }
        }
    }
    let mut by_verdict: HashMap<&str, u32> = HashMap::new();
    for (verdict, _) in v.values() {
        *by_verdict.entry(verdict.as_str()).or_default() += 1;
    }
    eprintln!("reviewed corpus: {} captures ({shared_n} shared, {} wild)", caps.len(), caps.len() - shared_n);
    eprintln!(
        "now: {all} warning+error finding(s), {correct} with a CORRECT verdict (precision {:.1}%), {errors} error(s), {errors_wrong} without a CORRECT verdict",
        if all == 0 { 100.0 } else { 100.0 * f64::from(correct) / f64::from(all) }
    );
    eprintln!(
        "last review: {} verdicts: {} CORRECT, {} WRONG, {} DISPUTABLE",
        v.len(),
        by_verdict.get("CORRECT").unwrap_or(&0),
        by_verdict.get("WRONG").unwrap_or(&0),
        by_verdict.get("DISPUTABLE").unwrap_or(&0)
    );
    assert!(
        failures.is_empty(),
        "warnings/errors without a CORRECT verdict in {}:\n{}",
        Path::new(VERDICTS).display(),
        failures.join("\n")
    );
}
