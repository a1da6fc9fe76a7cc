//! The case registry (`netcase_rules::catalogue::CATALOGUE`) against the code: a case is found
//! in one hop — its entry names the rule files that build its findings, what serves it when no
//! rule does, its lab (the `Lab` source) and the real captures that show it — and this test
//! keeps that true.

use netcase_model::{CaseId, Source};
use netcase_rules::catalogue::{doc, CATALOGUE};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../netcase-rules/src");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const VERDICTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpus/review/verdicts.tsv");

/// Modules that hold an evidence model shared by several cases, or helpers, rather than one
/// case's rule; a rule module is otherwise named after its case.
const SHARED: &[&str] = &[
    "capture/mod.rs",
    "capture/util.rs",
    "capture/frame.rs",
    "capture/testkit.rs",
    "capture/handshake.rs",
    "capture/limits.rs",
    "capture/artefacts.rs",
    "host/mod.rs",
    "proto/mod.rs",
    "trace/mod.rs",
    "trace/drops.rs",
    "trace/tcp.rs",
];

/// The source of `file` without its `#[cfg(test)]` module.
fn code(file: &Path) -> String {
    let s = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    match s.find("#[cfg(test)]\nmod tests") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

fn variant(c: CaseId) -> String {
    format!("{c:?}")
}

fn rule_files() -> Vec<String> {
    let mut v = Vec::new();
    for dir in ["capture", "host", "proto", "trace"] {
        for e in std::fs::read_dir(Path::new(RULES).join(dir)).expect("rules dir").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".rs") {
                v.push(format!("{dir}/{name}"));
            }
        }
    }
    v.sort();
    v
}

#[test]
fn every_case_has_one_complete_entry() {
    assert_eq!(CATALOGUE.len(), CaseId::ALL.len(), "one registry entry per case");
    for &c in CaseId::ALL {
        let d = doc(c);
        assert_eq!(d.case, c);
        assert!(d.what.len() > 40 && d.detect.len() > 40 && d.fix.len() > 20, "{c}: catalogue text");
        assert!(
            d.rules.is_empty() != d.without_rule.is_none(),
            "{c}: either rule files or what serves it without a rule (know-how, a table, a probe), not both"
        );
    }
}

#[test]
fn listed_rule_files_exist_and_build_their_case() {
    for d in CATALOGUE {
        for f in d.rules {
            let p = Path::new(RULES).join(f);
            assert!(p.is_file(), "{}: {f} does not exist", d.case);
            // An evidence model shared by several cases names none of them itself.
            if ["capture/handshake.rs", "capture/limits.rs"].contains(f) {
                continue;
            }
            assert!(
                code(&p).contains(&format!("CaseId::{}", variant(d.case))),
                "{}: {f} never names CaseId::{}",
                d.case,
                variant(d.case)
            );
        }
    }
}

#[test]
fn every_rule_module_is_registered_and_named_after_its_case() {
    let listed: BTreeSet<&str> = CATALOGUE.iter().flat_map(|d| d.rules.iter().copied()).collect();
    let mut emitted: BTreeMap<String, BTreeSet<CaseId>> = BTreeMap::new();
    for f in rule_files() {
        let src = code(&Path::new(RULES).join(&f));
        if !src.contains("Finding::new(") {
            continue;
        }
        for &c in CaseId::ALL {
            let v = variant(c);
            // Built here: `Finding::new(CaseId::X` or `Finding::new(\n    CaseId::X`.
            let direct = src
                .match_indices("Finding::new(")
                .any(|(i, _)| src[i + "Finding::new(".len()..].trim_start().starts_with(&format!("CaseId::{v},")));
            if direct {
                emitted.entry(f.clone()).or_default().insert(c);
            }
        }
        assert!(listed.contains(f.as_str()), "{f} builds findings but no registry entry lists it");
    }
    for (f, cases) in &emitted {
        for c in cases {
            assert!(doc(*c).rules.contains(&f.as_str()), "{f} builds {c} findings but {c}'s entry does not list it");
        }
        if SHARED.contains(&f.as_str()) {
            continue;
        }
        let stem = f.rsplit('/').next().unwrap_or(f).trim_end_matches(".rs");
        assert_eq!(cases.len(), 1, "{f} builds findings of {cases:?}: one case per rule module");
        let c = cases.iter().next().unwrap();
        assert_eq!(stem, c.as_str().replace('-', "_"), "{f}: a rule module is named after its case");
    }
}

#[test]
fn sources_match_rules_and_labs() {
    let labs: BTreeSet<CaseId> = netcase_lab::catalogue().iter().map(|l| l.case).collect();
    let mut wrong = Vec::new();
    for &c in CaseId::ALL {
        let d = doc(c);
        let src = c.sources();
        let has = |dir: &str| d.rules.iter().any(|f| f.starts_with(dir));
        if src.contains(&Source::Host) && !has("host/") {
            wrong.push(format!("{c}: claims host evidence but lists no host rule"));
        }
        if src.contains(&Source::Trace) && !has("trace/") {
            wrong.push(format!("{c}: claims kernel-trace evidence but lists no trace rule"));
        }
        if !src.contains(&Source::Trace) && has("trace/") {
            wrong.push(format!("{c}: has a trace rule but does not claim kernel-trace evidence"));
        }
        if !src.contains(&Source::Host) && has("host/") {
            wrong.push(format!("{c}: has a host rule but does not claim host evidence"));
        }
        if src.contains(&Source::Pcap) && !(has("capture/") || has("proto/") || d.without_rule.is_some()) {
            wrong.push(format!("{c}: claims capture evidence but lists no capture or protocol rule"));
        }
        if src.contains(&Source::Lab) != labs.contains(&c) {
            wrong.push(format!("{c}: the Lab source and netcase-lab's table disagree"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn fixtures_exist_and_cover_the_reviewed_findings() {
    for d in CATALOGUE {
        for f in d.fixtures {
            let p: PathBuf = Path::new(ROOT).join(f);
            assert!(p.is_file() || f.starts_with("../shared/"), "{}: fixture {f} missing", d.case);
        }
    }
    let text = std::fs::read_to_string(VERDICTS).expect("verdicts.tsv");
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        let (Some(cap), Some(case), Some(verdict)) = (c.first(), c.get(1), c.get(4)) else { continue };
        if *verdict != "CORRECT" {
            continue;
        }
        let id: CaseId = case.parse().expect("case id in verdicts.tsv");
        assert!(
            doc(id).fixtures.iter().any(|f| f.ends_with(&format!("/{cap}"))),
            "{id}: reviewed CORRECT on {cap}, which its registry entry does not list as a fixture"
        );
    }
}
