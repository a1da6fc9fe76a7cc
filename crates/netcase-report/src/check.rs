//! The report of `netcase check`: text for people, the JSON document (schema/check.json).

use netcase_host::{HostEvidence, Unavailable};
use netcase_model::Finding;
use std::io::{self, Write};

/// The outcome of a check, before rendering.
#[derive(Debug)]
pub struct Outcome {
    /// Evidence per namespace.
    pub evidence: Vec<HostEvidence>,
    /// Findings, sorted.
    pub findings: Vec<Finding>,
}

fn ns_name(ev: &HostEvidence) -> String {
    ev.netns.label().unwrap_or_else(|| format!("own (ino:{})", ev.netns.inode))
}

fn unavailable(o: &Outcome) -> Vec<&Unavailable> {
    let mut v: Vec<&Unavailable> = Vec::new();
    for u in o.evidence.iter().flat_map(|e| e.unavailable.iter()) {
        if !v.contains(&u) {
            v.push(u);
        }
    }
    v
}

/// Renders the JSON document (schema/check.json):
/// `{"netcase": {..}, "host": {..}, "findings": [..], "evidence": {..}, "unavailable": [..]}`.
pub fn render_json(o: &Outcome, w: &mut impl Write) -> io::Result<()> {
    let kernel = o.evidence.first().map(|e| e.kernel.clone()).unwrap_or_default();
    let doc = serde_json::json!({
        "host": {
            "kernel": kernel,
            "netns": o.evidence.iter().map(ns_name).collect::<Vec<_>>(),
            "interval_s": o.evidence.first().map_or(0.0, |e| e.interval_s),
            "privileged": netcase_host::privileged(),
        },
        "findings": o.findings,
        "evidence": { "namespaces": o.evidence },
        "unavailable": unavailable(o),
    });
    crate::write_json(w, "check", &doc, false)?;
    Ok(())
}

/// Renders text: findings grouped by severity (worst first) with their evidence and fix.
pub fn render_text(o: &Outcome, w: &mut impl Write) -> io::Result<()> {
    let kernel = o.evidence.first().map(|e| e.kernel.as_str()).unwrap_or("?");
    let sockets: usize = o.evidence.iter().map(|e| e.sockets.len()).sum();
    let interval = o.evidence.first().map_or(0.0, |e| e.interval_s);
    writeln!(
        w,
        "netcase check: kernel {kernel}, {} [{}], {}, {}",
        crate::count(o.evidence.len() as u64, "network namespace", "network namespaces"),
        o.evidence.iter().map(ns_name).collect::<Vec<_>>().join(", "),
        crate::count(sockets as u64, "socket", "sockets"),
        if interval > 0.0 { format!("rates over {interval:.1} s") } else { "absolute values only".to_owned() }
    )?;
    writeln!(w)?;
    crate::write_findings_text(w, &o.findings)?;
    let un = unavailable(o);
    if !un.is_empty() {
        writeln!(w, "\nunavailable evidence:")?;
        for u in un {
            writeln!(w, "  - {}: {}", u.what, u.why)?;
        }
    }
    Ok(())
}
