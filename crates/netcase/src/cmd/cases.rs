//! `netcase cases` and `netcase explain ID`: the catalogue, for people and for scripts.

use netcase_model::CaseId;
use netcase_rules::catalogue;
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `netcase cases`.
#[derive(Debug, clap::Args)]
pub struct CasesArgs {
    /// Print JSON: an array of {id, title, sources}.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `netcase explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The case id, e.g. close-wait-leak (`netcase cases` lists them).
    pub id: String,
    /// Print JSON: {id, title, sources, what, detect, fix}.
    #[arg(long)]
    pub json: bool,
}

fn sources(c: CaseId) -> String {
    let s: Vec<String> = c.sources().iter().map(|s| format!("{s:?}").to_lowercase()).collect();
    if s.is_empty() {
        "know-how".into()
    } else {
        s.join(",")
    }
}

/// Runs `netcase cases`.
pub fn run_cases(a: CasesArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<_> = CaseId::ALL
            .iter()
            .map(|c| serde_json::json!({"id": c.as_str(), "title": c.title(), "sources": c.sources()}))
            .collect();
        netcase_report::write_json(&mut out, "cases", &serde_json::json!({ "cases": v }), true)?;
    } else {
        let w = CaseId::ALL.iter().map(|c| c.as_str().len()).max().unwrap_or(0);
        for c in CaseId::ALL {
            writeln!(out, "{:w$}  {:<22}  {}", c.as_str(), sources(*c), c.title())?;
        }
    }
    Ok(ExitCode::from(crate::EXIT_OK))
}

/// Runs `netcase explain`. An unknown id exits 2 and names the closest ids.
pub fn run_explain(a: ExplainArgs) -> anyhow::Result<ExitCode> {
    let case: CaseId = match a.id.parse() {
        Ok(c) => c,
        Err(e) => {
            let near: Vec<&str> = CaseId::closest(&a.id, 3).iter().map(|c| c.as_str()).collect();
            eprintln!("netcase: {e}; closest: {} (netcase cases lists all)", near.join(", "));
            return Ok(ExitCode::from(crate::EXIT_ERROR));
        }
    };
    let d = catalogue::doc(case);
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = serde_json::json!({
            "id": case.as_str(), "title": case.title(), "sources": case.sources(),
            "what": d.what, "detect": d.detect, "fix": d.fix,
            "rules": d.rules.iter().map(|f| format!("crates/netcase-rules/src/{f}")).collect::<Vec<_>>(),
            "without_rule": d.without_rule,
            "lab": netcase_lab::find(case.as_str()).map(|_| format!("netcase lab run {case}")),
            "fixtures": d.fixtures,
        });
        netcase_report::write_json(&mut out, "explain", &serde_json::json!({ "case": v }), true)?;
    } else {
        writeln!(out, "{} — {}\nevidence: {}\n", case, case.title(), sources(case))?;
        for (head, text) in [("What happens", d.what), ("How netcase detects it", d.detect), ("Fix", d.fix)] {
            writeln!(out, "{head}:")?;
            for line in wrap(text, 88) {
                writeln!(out, "  {line}")?;
            }
            writeln!(out)?;
        }
        // Where the case lives: its rules, its lab, the real captures that show it.
        writeln!(out, "Where it lives:")?;
        for f in d.rules {
            writeln!(out, "  rule     crates/netcase-rules/src/{f}")?;
        }
        if let Some(w) = d.without_rule {
            for (i, line) in wrap(w, 79).into_iter().enumerate() {
                writeln!(out, "  {}  {line}", if i == 0 { "no rule" } else { "       " })?;
            }
        }
        if netcase_lab::find(case.as_str()).is_some() {
            writeln!(out, "  lab      netcase lab run {case}")?;
        }
        for f in d.fixtures {
            writeln!(out, "  capture  {f}")?;
        }
    }
    Ok(ExitCode::from(crate::EXIT_OK))
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
