//! Baselines of `netcase report` per input, Zeek-btest style: for every capture of
//! `../shared/corpus`, a structural outline of its HTML page — the sections, each finding's
//! link targets, and per graph its id, kind, marks by kind, bars by class and drawn series —
//! is kept in `tests/data/baseline/<capture>/report-html.txt` and compared; a difference fails
//! with a unified diff. `NETCASE_UPDATE_BASELINE=1` rewrites them (read the diff before
//! committing). Not the raw page: it is large, and a changed coordinate says nothing.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::process::Command;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/baseline");

/// The value of attribute `name` in a tag's text.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let rest = tag.get(at..)?;
    rest.get(..rest.find('"')?)
}

/// One graph's outline.
#[derive(Default)]
struct Chart {
    id: String,
    kind: String,
    marks: BTreeMap<String, usize>,
    bars: BTreeMap<String, usize>,
    series: BTreeMap<String, usize>,
}

impl Chart {
    fn line(&self) -> String {
        let list =
            |m: &BTreeMap<String, usize>| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        let mut s = format!("  graph #{}", self.id);
        if !self.kind.is_empty() {
            let _ = write!(s, " ({})", self.kind);
        }
        for (what, m) in [("marks", &self.marks), ("bars", &self.bars), ("series", &self.series)] {
            if !m.is_empty() {
                let _ = write!(s, "; {what}: {}", list(m));
            }
        }
        s
    }
}

/// The page's outline: one line per section, heading, finding and graph, in page order.
fn outline(html: &str) -> String {
    let mut out = String::new();
    let mut chart: Option<Chart> = None;
    let mut finding: Option<(String, Vec<String>)> = None;
    let mut legend = 0usize;
    let mut i = 0;
    while let Some(lt) = html.get(i..).and_then(|r| r.find('<')) {
        let start = i + lt;
        let Some(len) = html.get(start..).and_then(|r| r.find('>')) else { break };
        let tag = &html[start + 1..start + len];
        i = start + len + 1;
        if let Some(name) = tag.strip_prefix('/') {
            match name {
                "svg" => {
                    if let Some(c) = chart.take() {
                        out.push_str(&c.line());
                        out.push('\n');
                    }
                }
                "article" => {
                    if let Some((id, links)) = finding.take() {
                        let _ = writeln!(out, "  {id} -> {}", links.join(" "));
                    }
                }
                "g" if legend > 0 => legend -= 1,
                _ => {}
            }
            continue;
        }
        if tag.starts_with('!') {
            continue;
        }
        let name = tag.split([' ', '/']).next().unwrap_or("");
        let class = attr(tag, "class").unwrap_or("");
        match name {
            "section" => {
                let _ = writeln!(out, "section #{}", attr(tag, "id").unwrap_or("?"));
            }
            "h2" => {
                let text = html.get(i..).and_then(|r| r.get(..r.find('<')?)).unwrap_or("");
                let _ = writeln!(out, "  h2 {text}");
            }
            "svg" if class.split(' ').any(|c| c == "chart") => {
                chart = Some(Chart {
                    id: attr(tag, "id").unwrap_or("?").to_owned(),
                    kind: attr(tag, "data-kind").unwrap_or("").to_owned(),
                    ..Chart::default()
                });
            }
            "article" if class.starts_with("finding") => {
                finding = Some((attr(tag, "id").unwrap_or("?").to_owned(), Vec::new()));
            }
            "a" => {
                if let (Some((_, links)), Some(h)) = (finding.as_mut(), attr(tag, "href")) {
                    links.push(h.to_owned());
                }
            }
            _ => {}
        }
        let Some(c) = chart.as_mut() else { continue };
        match name {
            "g" if class == "legend" => legend = 1,
            "g" if legend > 0 && !tag.ends_with('/') => legend += 1,
            "g" if class.starts_with("mark ") => {
                let kind = class.split(' ').nth(1).unwrap_or("?").to_owned();
                *c.marks.entry(kind).or_default() += 1;
            }
            "rect" if legend == 0 && !class.is_empty() && class != "hs" && class != "plot" => {
                *c.bars.entry(class.to_owned()).or_default() += 1;
            }
            "path"
                if legend == 0
                    && !class.is_empty()
                    && class != "frame"
                    && attr(tag, "d").is_some_and(|d| !d.is_empty()) =>
            {
                *c.series.entry(class.to_owned()).or_default() += 1;
            }
            _ => {}
        }
    }
    out
}

#[test]
fn report_outlines_match_their_baselines() {
    let update = std::env::var("NETCASE_UPDATE_BASELINE").is_ok_and(|v| v == "1");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let caps = netcase_testkit::corpus_captures();
    let mut failures = Vec::new();
    for p in &caps {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let rel = format!("../shared/corpus/{name}");
        let out = Command::new(env!("CARGO_BIN_EXE_netcase"))
            .args(["report", &rel, "-o", "-"])
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(out.status.code().is_some_and(|c| c <= 1), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let got = outline(&String::from_utf8(out.stdout).unwrap());
        let path = Path::new(DIR).join(&name).join("report-html.txt");
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("no baseline {} (NETCASE_UPDATE_BASELINE=1 writes it)", path.display()));
        if want != got {
            failures.push(
                similar::TextDiff::from_lines(&want, &got)
                    .unified_diff()
                    .context_radius(2)
                    .header(&format!("baseline/{name}/report-html.txt"), "now")
                    .to_string(),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} report outline(s) differ (NETCASE_UPDATE_BASELINE=1 to accept after reading the diff):\n{}",
        failures.len(),
        failures.join("\n")
    );
    if !update {
        eprintln!("{} captures, {} report outlines compared", caps.len(), caps.len());
    }
}

#[test]
fn outline_reads_sections_findings_and_marks() {
    let html = r##"<section id="findings"><h2>Findings (1)</h2><article class="finding sev-warning" id="finding-1"><p>x</p><a class="graph-link" href="#stream-0-tseq">g</a>, <a class="frame-link" href="#s0-fr3">3</a></article></section><section id="streams"><svg class="chart" id="stream-0-tseq" data-kind="tseq"><g class="legend"><g class="seg"><path d="M0 0h18"/></g></g><path class="seg" d="M1 2V3"/><path class="sack" d=""/><rect class="hs" x="1"/><g class="mark m-R"><title>t</title></g><g class="mark m-R ev" id="s0-fr3"></g></svg></section>"##;
    assert_eq!(
        outline(html),
        "section #findings\n  h2 Findings (1)\n  finding-1 -> #stream-0-tseq #s0-fr3\nsection #streams\n  graph #stream-0-tseq (tseq); marks: m-R=2; series: seg=1\n"
    );
}
