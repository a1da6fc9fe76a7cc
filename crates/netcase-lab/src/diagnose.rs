//! How a lab asks netcase for its diagnosis, without depending on the diagnosis crates.
//!
//! [`ExeDiagnose`] runs a netcase executable (`pcap FILE --json`, `check --netns NAME
//! --interval 0 --json`) and reads the `findings` array of its JSON report.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A finding as the lab reads it from netcase's JSON report. In the lab's own JSON report it is
/// written back as netcase printed it (the `netcase_model::Finding` shape of `schema/defs.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct DiagFinding {
    /// The case id.
    pub case: String,
    /// Its severity.
    pub severity: String,
    /// The subject, rendered compactly.
    pub subject: String,
    /// The summary sentence.
    pub summary: String,
    /// Numbers: measures by key, counters and numeric sysctls by name.
    pub values: Vec<(String, f64)>,
    /// Text facts by key.
    pub texts: Vec<(String, String)>,
    /// The finding as netcase printed it (`null` when made by hand).
    pub raw: serde_json::Value,
}

impl Serialize for DiagFinding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.raw.is_object() {
            return self.raw.serialize(s);
        }
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("case", &self.case)?;
        m.serialize_entry("severity", &self.severity)?;
        m.serialize_entry("summary", &self.summary)?;
        m.end()
    }
}

impl DiagFinding {
    /// The number named `key` (a measure key, counter name or numeric sysctl name).
    pub fn value(&self, key: &str) -> Option<f64> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Reads one finding from its JSON form (the shape of `netcase_model::Finding`).
    pub fn from_json(v: &serde_json::Value) -> Option<DiagFinding> {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_owned();
        let mut values = Vec::new();
        let mut texts = Vec::new();
        for e in v.get("evidence").and_then(|e| e.as_array()).into_iter().flatten() {
            let ty = e.get("type").and_then(|t| t.as_str()).unwrap_or_default();
            let key = e.get("key").or_else(|| e.get("name")).and_then(|k| k.as_str()).unwrap_or_default().to_owned();
            let val = e.get("value");
            match ty {
                "measure" | "counter" => {
                    if let Some(n) = val.and_then(serde_json::Value::as_f64) {
                        values.push((key, n));
                    }
                }
                "sysctl" | "text" => {
                    let t = val.and_then(|x| x.as_str()).unwrap_or_default().to_owned();
                    if let Ok(n) = t.trim().parse::<f64>() {
                        values.push((key.clone(), n));
                    }
                    texts.push((key, t));
                }
                _ => {}
            }
        }
        Some(DiagFinding {
            case: v.get("case")?.as_str()?.to_owned(),
            severity: s("severity"),
            subject: v.get("subject").map(|x| x.to_string()).unwrap_or_default(),
            summary: s("summary"),
            values,
            texts,
            raw: v.clone(),
        })
    }

    /// Reads the `findings` array of a netcase JSON report.
    pub fn parse_report(text: &str) -> Result<Vec<DiagFinding>> {
        let v: serde_json::Value = serde_json::from_str(text).context("netcase's JSON report does not parse")?;
        let Some(arr) = v.get("findings").and_then(|f| f.as_array()) else {
            bail!("netcase's JSON report has no findings array");
        };
        Ok(arr.iter().filter_map(DiagFinding::from_json).collect())
    }
}

/// netcase's diagnosis as a lab sees it.
pub trait Diagnose: Sync {
    /// Findings from a capture file.
    fn capture(&self, pcap: &Path) -> Result<Vec<DiagFinding>>;
    /// Findings from a live network namespace.
    fn netns(&self, ns: &str) -> Result<Vec<DiagFinding>>;
}

/// No diagnosis available: every call fails (the verdict then does not hold).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDiagnosis;

impl Diagnose for NoDiagnosis {
    fn capture(&self, _: &Path) -> Result<Vec<DiagFinding>> {
        bail!("no diagnosis configured")
    }
    fn netns(&self, _: &str) -> Result<Vec<DiagFinding>> {
        bail!("no diagnosis configured")
    }
}

/// Runs a netcase executable for the diagnosis.
#[derive(Debug, Clone)]
pub struct ExeDiagnose {
    /// The executable.
    pub exe: PathBuf,
}

impl ExeDiagnose {
    fn run(&self, args: &[&str]) -> Result<Vec<DiagFinding>> {
        let out = Command::new(&self.exe)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.exe.display()))?;
        // 0: no finding at the failure severity, 1: findings; both print a report.
        match out.status.code() {
            Some(0 | 1) => DiagFinding::parse_report(&String::from_utf8_lossy(&out.stdout)),
            _ => {
                let err = String::from_utf8_lossy(&out.stderr);
                bail!("netcase {} failed: {}", args.first().copied().unwrap_or_default(), err.trim())
            }
        }
    }
}

impl Diagnose for ExeDiagnose {
    fn capture(&self, pcap: &Path) -> Result<Vec<DiagFinding>> {
        let p = pcap.to_string_lossy();
        self.run(&["pcap", &p, "--json"])
    }
    fn netns(&self, ns: &str) -> Result<Vec<DiagFinding>> {
        self.run(&["check", "--netns", ns, "--interval", "0", "--json"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_findings_with_measures_counters_and_texts() {
        let j = r#"{"schema":"netcase.report","version":1,"findings":[{"case":"close-wait-leak","severity":"warning",
            "subject":{"kind":"host"},"summary":"8 sockets","evidence":[{"type":"measure","key":"close_wait_sockets","value":8,"unit":"count"},
            {"type":"counter","name":"TcpExt.ListenOverflows","value":3,"per_s":null},{"type":"text","key":"side","value":"server"},
            {"type":"sysctl","name":"net.core.somaxconn","value":"4096"}],"fix":"close"}]}"#;
        let f = DiagFinding::parse_report(j).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].value("close_wait_sockets"), Some(8.0));
        assert_eq!(f[0].value("TcpExt.ListenOverflows"), Some(3.0));
        assert_eq!(f[0].value("net.core.somaxconn"), Some(4096.0));
        assert!(DiagFinding::parse_report("{}").is_err());
    }
}
