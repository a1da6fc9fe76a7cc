//! Baselines per input, Zeek-btest style: for every capture of `../shared/corpus`, the text
//! report of `netcase pcap FILE` and the findings of `netcase pcap FILE --json` are kept in
//! `tests/data/baseline/<capture>/` (`report.txt`, `findings.json`) and compared; a difference
//! fails with a unified diff. `NETCASE_UPDATE_BASELINE=1` rewrites them (read the diff before
//! committing). A missing corpus fails loudly (`NETCASE_SKIP_CORPUS=1` to skip on purpose).

use std::path::{Path, PathBuf};
use std::process::Command;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/baseline");

fn captures() -> Vec<PathBuf> {
    netcase_testkit::corpus_captures()
}

/// The report as a user runs it, from the repository root (paths print as `../shared/...`).
fn run(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_netcase")).args(args).current_dir(root).output().unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn reports_match_their_baselines() {
    let update = std::env::var("NETCASE_UPDATE_BASELINE").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let caps = captures();
    for p in &caps {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let rel = format!("../shared/corpus/{name}");
        let text = run(&["pcap", &rel]);
        let json: serde_json::Value = serde_json::from_str(&run(&["pcap", &rel, "--json"])).unwrap();
        let findings = serde_json::to_string_pretty(&json["findings"]).unwrap() + "\n";
        let dir = Path::new(DIR).join(&name);
        for (file, got) in [("report.txt", &text), ("findings.json", &findings)] {
            let path = dir.join(file);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|_| panic!("no baseline {} (NETCASE_UPDATE_BASELINE=1 writes it)", path.display()));
            if &want != got {
                let diff = similar::TextDiff::from_lines(&want, got)
                    .unified_diff()
                    .context_radius(2)
                    .header(&format!("baseline/{name}/{file}"), "now")
                    .to_string();
                failures.push(diff);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} baseline file(s) differ (NETCASE_UPDATE_BASELINE=1 to accept after reading the diff):\n{}",
        failures.len(),
        failures.join("\n")
    );
    if !update {
        eprintln!("{} captures, {} baseline files compared", caps.len(), caps.len() * 2);
    }
}
