//! Renderers: findings to text for people and to JSON for scripts.
//!
//! Renderers get findings (already sorted, see [`Finding::sort`]) and a writer; they know
//! nothing of where the evidence came from.

pub mod cases;
pub mod check;
pub mod json;
pub mod pcap;
pub mod probe;
pub mod sorted;
pub mod trace;

use netcase_model::{Finding, Severity};
use serde::Serialize;
use std::io::{self, Write};

/// What every JSON document netcase prints starts with: `"netcase": {"version": "0.1.0",
/// "schema": 2, "command": "pcap"}` — the program's version, the document schema's version
/// ([`netcase_model::SCHEMA_VERSION`], the files in `schema/`), and the command that made it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Envelope {
    /// netcase's version.
    pub version: &'static str,
    /// The JSON schema version.
    pub schema: u32,
    /// The command (`pcap`, `pcap-events`, `check`, `drops`, `trace`, `cases`, `explain`,
    /// `lab-run`, `lab-list`).
    pub command: &'static str,
}

/// The envelope for `command`.
pub fn envelope(command: &'static str) -> Envelope {
    Envelope { version: env!("CARGO_PKG_VERSION"), schema: netcase_model::SCHEMA_VERSION, command }
}

/// A document: the envelope, then the body's fields (`{"netcase": {..}, ...body}`).
#[derive(Debug, Serialize)]
pub struct Document<'a, T: Serialize> {
    /// The envelope.
    pub netcase: Envelope,
    /// The body, its fields beside the envelope.
    #[serde(flatten)]
    pub body: &'a T,
}

/// Writes `body` as one JSON document of `command` (pretty when `pretty`), then a newline.
pub fn write_json<W: Write, T: Serialize>(w: &mut W, command: &'static str, body: &T, pretty: bool) -> io::Result<()> {
    let doc = Document { netcase: envelope(command), body };
    if pretty {
        serde_json::to_writer_pretty(&mut *w, &doc)?;
    } else {
        serde_json::to_writer(&mut *w, &doc)?;
    }
    writeln!(w)
}

/// Exit status: analysed, nothing at or above the failure severity.
pub const EXIT_OK: u8 = 0;
/// Exit status: findings at or above the failure severity (`--fail-on`, default warning).
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status: error (bad usage, nothing readable, no privilege for what was asked).
pub const EXIT_ERROR: u8 = 2;

/// Writes findings as text, grouped by severity (worst first), each with its evidence and fix.
pub fn write_findings_text<W: Write + ?Sized>(w: &mut W, findings: &[Finding]) -> io::Result<()> {
    if findings.is_empty() {
        writeln!(w, "no findings")?;
        return Ok(());
    }
    for sev in [Severity::Error, Severity::Warning, Severity::Info] {
        let group: Vec<&Finding> = findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        writeln!(w, "{} ({}):", sev.to_string().to_uppercase(), group.len())?;
        for f in group {
            writeln!(w, "  [{}] {}", f.case, f.subject)?;
            writeln!(w, "    {}", f.summary)?;
            if f.confidence == netcase_model::Confidence::Possible || !f.alternatives.is_empty() {
                let alt: Vec<&str> = f.alternatives.iter().map(|c| c.as_str()).collect();
                if alt.is_empty() {
                    writeln!(w, "    how sure: {}", f.confidence)?;
                } else {
                    writeln!(w, "    how sure: {}; not excluded: {}", f.confidence, alt.join(", "))?;
                }
            }
            for e in &f.evidence {
                writeln!(w, "      - {}", cut(&e.to_string(), TEXT_EVIDENCE_MAX))?;
            }
            if !f.fix.is_empty() {
                writeln!(w, "    fix: {}", f.fix)?;
            }
        }
    }
    Ok(())
}

/// The exit code policy of every command that reports findings: [`EXIT_FINDINGS`] when any
/// finding is at or above `fail_on`, else [`EXIT_OK`].
pub fn exit_code_for(findings: &[Finding], fail_on: Severity) -> u8 {
    if findings.iter().any(|f| f.severity >= fail_on) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

/// `s` cut for a person to read: at most `max` characters, the rest replaced by
/// `… (+N bytes)` (the JSON output keeps values whole).
pub fn cut(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(s),
        Some((at, _)) => std::borrow::Cow::Owned(format!("{}… (+{} bytes)", &s[..at], s.len() - at)),
    }
}

/// Text evidence lines longer than this are cut in the text report (a 1 KB URL, a long list).
pub const TEXT_EVIDENCE_MAX: usize = 200;

/// `n` things, in the right number: `1 frame`, `2 frames`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Formats a byte count with binary units (`1.5 MiB`), as the findings' units do.
pub fn human_bytes(n: u64) -> String {
    netcase_model::human_bytes(n as f64)
}

/// Formats nanoseconds since the epoch as UTC `YYYY-MM-DD HH:MM:SS.ffffff`.
pub fn utc_time(ns: i64) -> String {
    netcase_model::utc_time(ns)
}

/// Standard output as a plain file (a duplicate of descriptor 1), for documents of many
/// megabytes: `std::io::Stdout` is line-buffered and scans every write for a newline, which
/// over the 100 MB of a large `pcap --json` was 5 % of the instructions. Wrap it in a
/// `BufWriter`. Falls back to `None` where the descriptor cannot be duplicated.
pub fn raw_stdout() -> Option<std::fs::File> {
    use std::os::fd::AsFd;
    io::stdout().as_fd().try_clone_to_owned().ok().map(std::fs::File::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcase_model::{CaseId, Subject};

    #[test]
    fn text_groups_by_severity() {
        let mut v = vec![
            Finding::new(CaseId::ZeroWindow, Severity::Info, Subject::Capture, "a"),
            Finding::new(CaseId::CloseWaitLeak, Severity::Error, Subject::Host, "b")
                .with_measure("count", 3.0, "count"),
        ];
        Finding::sort(&mut v);
        let mut out = Vec::new();
        write_findings_text(&mut out, &v).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.find("ERROR").unwrap() < s.find("INFO").unwrap());
        assert!(s.contains("count = 3"));
        assert_eq!(exit_code_for(&v, Severity::Warning), 1);
        assert_eq!(exit_code_for(&v[1..], Severity::Warning), 0);
    }

    #[test]
    fn documents_start_with_the_envelope() {
        let mut out = Vec::new();
        write_json(&mut out, "cases", &serde_json::json!({"cases": []}), false).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["netcase"]["command"], "cases");
        assert_eq!(v["netcase"]["schema"], netcase_model::SCHEMA_VERSION);
        assert!(v["cases"].is_array());
        assert!(String::from_utf8(out).unwrap().starts_with("{\"netcase\":{"));
    }

    #[test]
    fn long_values_are_cut_for_people() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("abcdef", 3), "abc… (+3 bytes)");
        // At a character boundary: é is two bytes.
        assert_eq!(cut("ééé", 1), "é… (+4 bytes)");
        assert_eq!(cut(&"x".repeat(1000), TEXT_EVIDENCE_MAX).chars().count(), TEXT_EVIDENCE_MAX + 14);
    }

    #[test]
    fn formats_time_and_bytes() {
        assert_eq!(utc_time(1_385_482_078_892_062_000), "2013-11-26 16:07:58.892062");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
