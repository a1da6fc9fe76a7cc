//! The text reports of the kernel-tracing commands (`netcase drops`, `netcase trace`); their
//! findings print as every command's do ([`write_findings_text`]).

use crate::write_findings_text;
use netcase_model::Finding;
use netcase_trace::drops::DropReport;
use netcase_trace::tcp::{TcpEventKind, TcpReport};
use std::io::{self, Write};

/// The text report of `netcase drops`: drops by layer, reason, location and protocol, the
/// counters that grew, notes, then the findings.
pub fn write_drops_text(w: &mut dyn Write, r: &DropReport, findings: &[Finding], top: usize) -> io::Result<()> {
    writeln!(
        w,
        "kernel drops: {} in {:.1} s ({:.1}/s) on {} CPUs, kernel {}; {} samples lost",
        r.total, r.duration_s, r.per_s, r.session.cpus, r.kernel, r.session.lost
    )?;
    if r.total > 0 {
        writeln!(w, "\nby layer")?;
        writeln!(w, "  {:<10} {:>10} {:>10}", "layer", "drops", "per s")?;
        for l in &r.by_layer {
            writeln!(w, "  {:<10} {:>10} {:>10.1}", l.layer.as_str(), l.count, l.per_s)?;
        }
        writeln!(w, "\ntop reasons")?;
        writeln!(w, "  {:<26} {:>10} {:>10}  {:<9} where most", "reason", "drops", "per s", "layer")?;
        for x in r.by_reason.iter().take(top) {
            writeln!(
                w,
                "  {:<26} {:>10} {:>10.1}  {:<9} {}",
                x.reason,
                x.count,
                x.per_s,
                x.layer.as_str(),
                x.top_location
            )?;
        }
        writeln!(w, "\ntop locations")?;
        writeln!(w, "  {:<40} {:>10} {:>10}  {:<9} reason most", "location", "drops", "per s", "layer")?;
        for x in r.by_location.iter().take(top) {
            writeln!(
                w,
                "  {:<40} {:>10} {:>10.1}  {:<9} {}",
                x.location,
                x.count,
                x.per_s,
                x.layer.as_str(),
                x.top_reason
            )?;
        }
        let protos: Vec<String> = r.by_protocol.iter().map(|p| format!("{} {}", p.protocol, p.count)).collect();
        writeln!(w, "\nby protocol: {}", protos.join(", "))?;
    }
    let ns = r.netns.as_deref().map_or_else(|| "this namespace".to_owned(), |n| format!("netns {n}"));
    if r.counters.is_empty() {
        writeln!(w, "\ncounters of {ns}: no drop or error counter grew")?;
    } else {
        writeln!(w, "\ncounters of {ns} that grew meanwhile")?;
        for c in r.counters.iter().take(top.max(10)) {
            writeln!(w, "  {:<34} {:>10}", c.name, c.delta)?;
        }
    }
    for n in &r.notes {
        writeln!(w, "\nnote: {n}")?;
    }
    writeln!(w)?;
    write_findings_text(w, findings)
}

/// The text report of `netcase trace`: the timeline (at most `max_events`), per-socket
/// counts, notes, then the findings.
pub fn write_tcp_text(w: &mut dyn Write, r: &TcpReport, findings: &[Finding], max_events: usize) -> io::Result<()> {
    let t = &r.totals;
    writeln!(
        w,
        "TCP events: {:.1} s on {} CPUs, kernel {}: {} retransmits, {} resets sent, {} received, {} state changes; {} samples lost",
        r.duration_s, r.session.cpus, r.kernel, t.retransmits, t.resets_sent, t.resets_received, t.state_changes, r.session.lost
    )?;
    if !r.events.is_empty() {
        writeln!(w, "\ntimeline")?;
        writeln!(w, "  {:>10}  {:<12} {:<28} {:<28} detail", "ms", "event", "local", "remote")?;
        for e in r.events.iter().take(max_events) {
            let (name, detail) = match e.kind {
                TcpEventKind::Retransmit => ("retransmit", e.state.clone().unwrap_or_default()),
                TcpEventKind::SendReset => {
                    ("rst sent", format!("{} {}", e.state.as_deref().unwrap_or("-"), e.reason.as_deref().unwrap_or("")))
                }
                TcpEventKind::ReceiveReset => ("rst recv", String::new()),
                TcpEventKind::StateChange => (
                    "state",
                    format!("{} > {}", e.state.as_deref().unwrap_or("?"), e.new_state.as_deref().unwrap_or("?")),
                ),
            };
            writeln!(
                w,
                "  {:>10.3}  {:<12} {:<28} {:<28} {}",
                e.t_ms,
                name,
                e.local.to_string(),
                e.remote.to_string(),
                detail.trim()
            )?;
        }
        if r.events.len() > max_events {
            writeln!(w, "  ... {} more (--events N, or --json)", r.events.len() - max_events)?;
        }
    }
    if !r.flows.is_empty() {
        writeln!(w, "\nper socket")?;
        writeln!(
            w,
            "  {:<28} {:<28} {:>7} {:>7} {:>7}  states (ms)",
            "local", "remote", "retrans", "rst out", "rst in"
        )?;
        for f in &r.flows {
            let states: Vec<String> =
                f.time_in_state.iter().map(|s| format!("{} {:.1}", s.state.trim_start_matches("TCP_"), s.ms)).collect();
            writeln!(
                w,
                "  {:<28} {:<28} {:>7} {:>7} {:>7}  {}",
                f.local.to_string(),
                f.remote.to_string(),
                f.retransmits,
                f.resets_sent,
                f.resets_received,
                states.join(", ")
            )?;
        }
    }
    for n in &r.notes {
        writeln!(w, "\nnote: {n}")?;
    }
    writeln!(w)?;
    write_findings_text(w, findings)
}
