//! Findings: what a rule concludes, with the numbers behind it and a fix.

use crate::CaseId;
use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; not a failure by itself.
    Info,
    /// A failure or a risk that costs users something.
    Warning,
    /// A failure that breaks connections or loses data now.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            _ => Err(format!("unknown severity '{s}' (info, warning, error)")),
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// A TCP stream or UDP flow in a capture (`stream` is tshark's tcp.stream when known).
    Flow {
        /// Transport protocol, `"tcp"` or `"udp"`.
        proto: &'static str,
        /// tcp.stream / udp.stream index.
        stream: Option<u64>,
        /// The side that sent first (the client when the handshake was seen).
        client: SocketAddr,
        /// The other side.
        server: SocketAddr,
    },
    /// A server port (all connections to it), optionally on one address.
    ServerPort {
        /// Transport protocol.
        proto: &'static str,
        /// The server address, when the finding is about one address.
        ip: Option<IpAddr>,
        /// The port.
        port: u16,
    },
    /// One peer address.
    Peer {
        /// The address.
        ip: IpAddr,
    },
    /// A live socket.
    Socket {
        /// Transport protocol.
        proto: &'static str,
        /// Local address.
        local: SocketAddr,
        /// Remote address (unspecified for listeners).
        remote: SocketAddr,
        /// Network namespace name or `ino:N`.
        netns: Option<String>,
    },
    /// A listening socket.
    Listener {
        /// Local address.
        local: SocketAddr,
        /// Network namespace name or `ino:N`.
        netns: Option<String>,
    },
    /// A process.
    Process {
        /// Process id.
        pid: u32,
        /// Process name.
        comm: String,
        /// Network namespace name or `ino:N`.
        netns: Option<String>,
    },
    /// A network namespace.
    Netns {
        /// Its name (`/var/run/netns` name, or `ino:N`).
        name: String,
    },
    /// A netfilter rule.
    Rule {
        /// Table (`nat`, `filter`, ...).
        table: String,
        /// Chain.
        chain: String,
        /// The rule as iptables-save prints it.
        rule: String,
    },
    /// A network interface.
    Interface {
        /// Its name.
        name: String,
    },
    /// A DNS name.
    Name {
        /// The name.
        name: String,
    },
    /// The whole host (or namespace) under check.
    Host,
    /// The whole capture.
    Capture,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Flow { proto, stream, client, server } => {
                write!(f, "{proto} {client} -> {server}")?;
                if let Some(s) = stream {
                    write!(f, " (stream {s})")?;
                }
                Ok(())
            }
            Subject::ServerPort { proto, ip: Some(ip), port } => {
                write!(f, "{proto} server {}", SocketAddr::new(*ip, *port))
            }
            Subject::ServerPort { proto, ip: None, port } => write!(f, "{proto} server port {port}"),
            Subject::Peer { ip } => write!(f, "peer {ip}"),
            Subject::Socket { proto, local, remote, netns } => {
                write!(f, "{proto} socket {local} -> {remote}")?;
                if let Some(n) = netns {
                    write!(f, " [netns {n}]")?;
                }
                Ok(())
            }
            Subject::Listener { local, netns } => {
                write!(f, "listener {local}")?;
                if let Some(n) = netns {
                    write!(f, " [netns {n}]")?;
                }
                Ok(())
            }
            Subject::Process { pid, comm, netns } => {
                write!(f, "process {comm} (pid {pid})")?;
                if let Some(n) = netns {
                    write!(f, " [netns {n}]")?;
                }
                Ok(())
            }
            Subject::Netns { name } => write!(f, "netns {name}"),
            Subject::Rule { table, chain, rule } => write!(f, "rule [{table}/{chain}] {rule}"),
            Subject::Interface { name } => write!(f, "interface {name}"),
            Subject::Name { name } => write!(f, "name {name}"),
            Subject::Host => f.write_str("host"),
            Subject::Capture => f.write_str("capture"),
        }
    }
}

/// The unit of a measure: a closed set, so each renderer formats a unit in one place (text
/// shows `stall = 6063.4 ms`, never `stall_ms = 6063.400 ms`). Serialized as its short name
/// (`"ms"`, `"bytes"`, …), which is the JSON contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// A count of things (connections, frames, SYNs…).
    Count,
    /// Bytes.
    Bytes,
    /// Bytes per second.
    BytesPerS,
    /// Events per second (a counter's rate).
    PerS,
    /// Percent (0–100).
    Percent,
    /// Seconds.
    Seconds,
    /// Milliseconds.
    Millis,
    /// A TCP/UDP port number.
    Port,
    /// A process id.
    Pid,
    /// A CPU number.
    Cpu,
    /// A dimensionless ratio.
    Ratio,
    /// Yes (1) or no (0).
    Flag,
    /// TCP timestamp ticks.
    Ticks,
    /// A TCP sequence number (relative).
    Seq,
}

impl Unit {
    /// Every unit.
    pub const ALL: [Unit; 14] = [
        Unit::Count,
        Unit::Bytes,
        Unit::BytesPerS,
        Unit::PerS,
        Unit::Percent,
        Unit::Seconds,
        Unit::Millis,
        Unit::Port,
        Unit::Pid,
        Unit::Cpu,
        Unit::Ratio,
        Unit::Flag,
        Unit::Ticks,
        Unit::Seq,
    ];

    /// The short name (the JSON value).
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Bytes => "bytes",
            Unit::BytesPerS => "bytes/s",
            Unit::PerS => "per_s",
            Unit::Percent => "%",
            Unit::Seconds => "s",
            Unit::Millis => "ms",
            Unit::Port => "port",
            Unit::Pid => "pid",
            Unit::Cpu => "cpu",
            Unit::Ratio => "ratio",
            Unit::Flag => "bool",
            Unit::Ticks => "ticks",
            Unit::Seq => "seq",
        }
    }

    /// The unit named `s` (its short name; `"sockets"`, `"datagrams"`… and an empty name are
    /// counts).
    pub fn parse(s: &str) -> Unit {
        Unit::ALL.iter().copied().find(|u| u.as_str() == s).unwrap_or(Unit::Count)
    }

    /// The key suffixes that repeat this unit (`stall_ms` with unit ms): the text drops them.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Unit::Millis => &["_ms"],
            Unit::Seconds => &["_s"],
            Unit::Percent => &["_pct"],
            Unit::Bytes => &["_bytes"],
            Unit::BytesPerS => &["_bytes_per_s"],
            Unit::PerS => &["_per_s"],
            _ => &[],
        }
    }

    /// `key` without a suffix that repeats the unit.
    pub fn bare_key(self, key: &str) -> &str {
        self.suffixes().iter().find_map(|suf| key.strip_suffix(suf)).filter(|k| !k.is_empty()).unwrap_or(key)
    }

    /// `value` as a person reads it, with the unit once: `6063.4 ms`, `1.0 MiB`, `yes`.
    pub fn format(self, value: f64) -> String {
        let num = |v: f64, max_dec: usize| {
            if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{v:.0}")
            } else {
                let s = format!("{v:.max_dec$}");
                let s = s.trim_end_matches('0').trim_end_matches('.');
                s.to_owned()
            }
        };
        match self {
            Unit::Count | Unit::Port | Unit::Pid | Unit::Seq => num(value, 2),
            Unit::Cpu => format!("cpu {}", num(value, 0)),
            Unit::Ratio => num(value, 3),
            Unit::Flag => (if value != 0.0 { "yes" } else { "no" }).to_owned(),
            Unit::Percent => format!("{} %", num(value, 1)),
            Unit::Seconds => format!("{} s", num(value, 3)),
            Unit::Millis => format!("{} ms", num(value, 1)),
            Unit::Ticks => format!("{} ticks", num(value, 0)),
            Unit::PerS => format!("{}/s", num(value, 1)),
            Unit::Bytes => {
                if value.abs() < 10_000.0 {
                    format!("{} bytes", num(value, 0))
                } else {
                    format!("{} ({} bytes)", human_bytes(value), num(value, 0))
                }
            }
            Unit::BytesPerS => format!("{}/s", decimal(value)),
        }
    }
}

/// `905.7 kB` (rates are decimal, as link speeds are).
fn decimal(v: f64) -> String {
    scaled(v, 1000.0, ["B", "kB", "MB", "GB", "TB"])
}

/// `1.5 MiB`: a size in binary units, one decimal above bytes (what every netcase text prints
/// for sizes).
pub fn human_bytes(v: f64) -> String {
    scaled(v, 1024.0, ["B", "KiB", "MiB", "GiB", "TiB"])
}

/// `v` divided by `base` until it is under it, with the matching unit name.
fn scaled(v: f64, base: f64, units: [&str; 5]) -> String {
    let mut x = v;
    let mut u = 0;
    while x.abs() >= base && u + 1 < units.len() {
        x /= base;
        u += 1;
    }
    let name = units.get(u).copied().unwrap_or("B");
    if u == 0 {
        format!("{x:.0} {name}")
    } else {
        format!("{x:.1} {name}")
    }
}

impl Serialize for Unit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn units_are_written_once() {
        let e = Evidence::measure("stall_ms", 6063.4, "ms");
        assert_eq!(e.to_string(), "stall = 6063.4 ms");
        assert_eq!(Evidence::measure("sack", 0.0, "bool").to_string(), "sack = no");
        assert_eq!(Evidence::measure("hole_seq", 145.0, "seq").to_string(), "hole_seq = 145");
        assert_eq!(Evidence::measure("loss_rate_pct", 33.333, "%").to_string(), "loss_rate = 33.3 %");
        assert_eq!(Evidence::measure("bytes", 1_094_108.0, "bytes").to_string(), "bytes = 1.0 MiB (1094108 bytes)");
        assert_eq!(Evidence::measure("s", 2.0, "s").to_string(), "s = 2 s");
        // JSON keeps the key and the unit's short name.
        let j = serde_json::to_value(Evidence::measure("stall_ms", 1.5, "ms")).unwrap();
        assert_eq!(j["key"], "stall_ms");
        assert_eq!(j["unit"], "ms");
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of evidence behind a finding. Units sit in the data, keys are snake_case.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Evidence {
    /// A measured number with its unit.
    Measure {
        /// What was measured.
        key: String,
        /// The value.
        value: f64,
        /// Its unit.
        unit: Unit,
    },
    /// Frame numbers (1-based, as tshark counts them) that show the problem; a sample.
    Frames {
        /// What the frames show.
        key: String,
        /// The frame numbers.
        frames: Vec<u64>,
    },
    /// A sysctl and its value.
    Sysctl {
        /// Its name, dotted (`net.core.somaxconn`).
        name: String,
        /// Its value as read.
        value: String,
    },
    /// A kernel counter, with its rate when two samples were taken.
    Counter {
        /// Its name (`TcpExt.ListenOverflows`).
        name: String,
        /// Absolute value at the last sample.
        value: u64,
        /// Growth per second between samples, when known.
        per_s: Option<f64>,
    },
    /// A fact that is not a number.
    Text {
        /// What it is.
        key: String,
        /// Its value.
        value: String,
    },
}

impl Evidence {
    /// A measure.
    pub fn measure(key: &str, value: f64, unit: &str) -> Self {
        debug_assert!(Unit::ALL.iter().any(|u| u.as_str() == unit), "unknown unit {unit:?} for {key}");
        Evidence::Measure { key: key.to_owned(), value, unit: Unit::parse(unit) }
    }
    /// A text fact.
    pub fn text(key: &str, value: impl Into<String>) -> Self {
        Evidence::Text { key: key.to_owned(), value: value.into() }
    }
    /// A sample of frames.
    pub fn frames(key: &str, frames: Vec<u64>) -> Self {
        Evidence::Frames { key: key.to_owned(), frames }
    }
    /// The key (or name) of this evidence.
    pub fn key(&self) -> &str {
        match self {
            Evidence::Measure { key, .. } | Evidence::Frames { key, .. } | Evidence::Text { key, .. } => key,
            Evidence::Sysctl { name, .. } | Evidence::Counter { name, .. } => name,
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::Measure { key, value, unit } => {
                write!(f, "{} = {}", unit.bare_key(key), unit.format(*value))
            }
            Evidence::Frames { key, frames } => {
                write!(f, "{key}: frames ")?;
                for (i, n) in frames.iter().take(10).enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{n}")?;
                }
                if frames.len() > 10 {
                    write!(f, ",… ({} in all)", frames.len())?;
                }
                Ok(())
            }
            Evidence::Sysctl { name, value } => write!(f, "{name} = {value}"),
            Evidence::Counter { name, value, per_s: Some(r) } => write!(f, "{name} = {value} ({r:.1}/s)"),
            Evidence::Counter { name, value, per_s: None } => write!(f, "{name} = {value}"),
            Evidence::Text { key, value } => write!(f, "{key}: {value}"),
        }
    }
}

/// How sure a finding is of its diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// The evidence shows it directly (a counter, a refused handshake, a copied frame).
    Certain,
    /// The evidence fits this case and not the others the rule knows of.
    Likely,
    /// The evidence fits this case and others: see [`Finding::alternatives`].
    Possible,
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Confidence::Certain => "certain",
            Confidence::Likely => "likely",
            Confidence::Possible => "possible",
        })
    }
}

/// A diagnosis: a case, about a subject, with numbers and a fix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Which case of the catalogue.
    pub case: CaseId,
    /// How bad.
    pub severity: Severity,
    /// What it is about.
    pub subject: Subject,
    /// One sentence with the numbers.
    pub summary: String,
    /// The evidence behind it.
    pub evidence: Vec<Evidence>,
    /// What to change.
    pub fix: String,
    /// How sure the diagnosis is (`likely` unless the rule says otherwise).
    pub confidence: Confidence,
    /// Other cases the evidence does not exclude.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<CaseId>,
}

impl Finding {
    /// A finding with no evidence yet.
    pub fn new(case: CaseId, severity: Severity, subject: Subject, summary: impl Into<String>) -> Self {
        Finding {
            case,
            severity,
            subject,
            summary: summary.into(),
            evidence: Vec::new(),
            fix: String::new(),
            confidence: Confidence::Likely,
            alternatives: Vec::new(),
        }
    }

    /// Sets how sure the finding is and the cases it does not exclude (builder style).
    #[must_use]
    pub fn with_confidence(mut self, confidence: Confidence, alternatives: &[CaseId]) -> Self {
        self.confidence = confidence;
        self.alternatives = alternatives.to_vec();
        self
    }

    /// Adds a measure (builder style).
    #[must_use]
    pub fn with_measure(mut self, key: &str, value: f64, unit: &str) -> Self {
        self.evidence.push(Evidence::measure(key, value, unit));
        self
    }

    /// Adds any evidence (builder style).
    #[must_use]
    pub fn with(mut self, e: Evidence) -> Self {
        self.evidence.push(e);
        self
    }

    /// Sets the fix (builder style).
    #[must_use]
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = fix.into();
        self
    }

    /// The value of the measure named `key`, if any (for tests and rules).
    pub fn measure(&self, key: &str) -> Option<f64> {
        self.evidence.iter().find_map(|e| match e {
            Evidence::Measure { key: k, value, .. } if k == key => Some(*value),
            _ => None,
        })
    }

    /// The text fact named `key`, if any.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.evidence.iter().find_map(|e| match e {
            Evidence::Text { key: k, value } if k == key => Some(value.as_str()),
            _ => None,
        })
    }

    /// The severity policy, then [`Finding::sort`]: an error is for a finding whose cause is
    /// certain ([`Confidence::Certain`]); one that is only likely or possible is a warning,
    /// however large its numbers (the alternatives it did not exclude may be the cause). Every
    /// rule set ends with this.
    pub fn settle(findings: &mut [Finding]) {
        for f in findings.iter_mut() {
            if f.severity == Severity::Error && f.confidence != Confidence::Certain {
                f.severity = Severity::Warning;
            }
        }
        Self::sort(findings);
    }

    /// Sorts findings deterministically: severity (worst first), case, subject, summary.
    pub fn sort(findings: &mut [Finding]) {
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.case.cmp(&b.case))
                .then_with(|| a.subject.cmp(&b.subject))
                .then_with(|| a.summary.cmp(&b.summary))
        });
    }
}

/// Formats nanoseconds since the epoch as UTC `YYYY-MM-DD HH:MM:SS.ffffff`.
pub fn utc_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let micros = ns.rem_euclid(1_000_000_000) / 1000;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{micros:06}", sod / 3600, (sod / 60) % 60, sod % 60)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
