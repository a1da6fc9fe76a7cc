//! The catalogue for people and for scripts: `netcase cases` and `netcase explain ID`.

use netcase_model::CaseId;
use netcase_rules::catalogue::CaseDoc;
use std::io::{self, Write};

/// The evidence sources of `c`, or `know-how`.
fn sources(c: CaseId) -> String {
    let s: Vec<String> = c.sources().iter().map(|s| format!("{s:?}").to_lowercase()).collect();
    if s.is_empty() {
        "know-how".into()
    } else {
        s.join(",")
    }
}

/// `netcase cases`: one line per case (id, sources, title).
pub fn write_cases_text<W: Write>(out: &mut W) -> io::Result<()> {
    let w = CaseId::ALL.iter().map(|c| c.as_str().len()).max().unwrap_or(0);
    for c in CaseId::ALL {
        writeln!(out, "{:w$}  {:<22}  {}", c.as_str(), sources(*c), c.title())?;
    }
    Ok(())
}

/// `netcase cases --json`.
pub fn write_cases_json<W: Write>(out: &mut W) -> io::Result<()> {
    let v: Vec<_> = CaseId::ALL
        .iter()
        .map(|c| serde_json::json!({"id": c.as_str(), "title": c.title(), "sources": c.sources()}))
        .collect();
    crate::write_json(out, "cases", &serde_json::json!({ "cases": v }), true)
}

/// `netcase explain ID --json`: the registry entry; `lab`: the case has a lab.
pub fn write_explain_json<W: Write>(out: &mut W, d: &CaseDoc, lab: bool) -> io::Result<()> {
    let case = d.case;
    let v = serde_json::json!({
        "id": case.as_str(), "title": case.title(), "sources": case.sources(),
        "what": d.what, "detect": d.detect, "fix": d.fix,
        "rules": d.rules.iter().map(|f| format!("crates/netcase-rules/src/{f}")).collect::<Vec<_>>(),
        "without_rule": d.without_rule,
        "lab": lab.then(|| format!("netcase lab run {case}")),
        "fixtures": d.fixtures,
    });
    crate::write_json(out, "explain", &serde_json::json!({ "case": v }), true)
}

/// `netcase explain ID`: what happens, how netcase detects it, the fix, and where the case
/// lives (its rules, its lab, the real captures that show it).
pub fn write_explain_text<W: Write>(out: &mut W, d: &CaseDoc, lab: bool) -> io::Result<()> {
    let case = d.case;
    writeln!(out, "{} — {}\nevidence: {}\n", case, case.title(), sources(case))?;
    for (head, text) in [("What happens", d.what), ("How netcase detects it", d.detect), ("Fix", d.fix)] {
        writeln!(out, "{head}:")?;
        for line in wrap(text, 88) {
            writeln!(out, "  {line}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Where it lives:")?;
    for f in d.rules {
        writeln!(out, "  rule     crates/netcase-rules/src/{f}")?;
    }
    if let Some(w) = d.without_rule {
        for (i, line) in wrap(w, 79).into_iter().enumerate() {
            writeln!(out, "  {}  {line}", if i == 0 { "no rule" } else { "       " })?;
        }
    }
    if lab {
        writeln!(out, "  lab      netcase lab run {case}")?;
    }
    for f in d.fixtures {
        writeln!(out, "  capture  {f}")?;
    }
    Ok(())
}

/// Greedy word wrap.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}
