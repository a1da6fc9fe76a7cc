//! `netcase drops`: where the kernel drops packets, by reason, location, protocol and layer
//! (skb:kfree_skb through perf_event_open, no BPF).

use anyhow::Context;
use netcase_model::Finding;
use netcase_trace::drops::DropReport;
use netcase_trace::{DropTraceOptions, DropTracer, SessionOptions, StopOnSignals};
use std::io::Write;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
How it works: netcase attaches to the skb:kfree_skb tracepoint with perf_event_open (one event
and one fixed-size ring per CPU), reads the samples, and names each drop with the reason the
running kernel gives it (from the tracepoint's format file) and the function that dropped it
(/proc/kallsyms). If tracefs is not mounted, netcase mounts it on a private directory to read
the format and unmounts it. Ctrl-C stops early and prints what was gathered; the events
detach when netcase exits.

What this aggregate view cannot tell: kfree_skb samples carry no packet headers and no network
namespace, so drops cannot be filtered by address, port or flow, and the counts are for the
whole host (every namespace). Reading headers needs a BPF program, which netcase does not load.
To attribute drops, compare with the kernel counters shown for the same interval (--netns NAME
reads that namespace's: Udp.RcvbufErrors against SOCKET_RCVBUFF, Udp.NoPorts against NO_SOCKET,
TcpExt.ListenOverflows against TCP_LISTEN_OVERFLOW), with the rule counters of
`iptables-save -c` for NETFILTER_DROP, or capture the flow. Reasons need kernel 5.17 or later;
older kernels show locations only.

Needs root (or CAP_PERFMON with CAP_SYS_ADMIN to mount tracefs).";

/// Arguments of `netcase drops`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// Read this network namespace's drop counters beside the trace (the trace is host-wide).
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Rows per table.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// Duration, output and exit-status options.
    #[command(flatten)]
    pub common: super::TracingArgs,
}

/// Runs `netcase drops`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let duration = args.common.duration()?;
    let stop = StopOnSignals::install().context("installing the Ctrl-C handler")?;
    let opts = DropTraceOptions {
        netns: args.netns.clone(),
        session: SessionOptions { ring_pages: args.common.ring_pages, ..SessionOptions::default() },
        capacity: 0,
    };
    let tracer = DropTracer::open(opts).context("attaching to skb:kfree_skb")?;
    if !args.common.json {
        super::announce_tracing("kernel drops", duration);
    }
    let report = tracer.run(duration, &|| stop.requested()).context("tracing skb:kfree_skb")?;
    drop(stop);
    let findings = netcase_rules::trace::check(&report);
    let mut out = std::io::stdout().lock();
    if args.common.json {
        super::write_trace_json(&mut out, "drops", &report, &findings)?;
    } else {
        render_text(&mut out, &report, &findings, args.top)?;
    }
    out.flush()?;
    Ok(args.common.exit_code(&findings))
}

fn render_text(w: &mut dyn Write, r: &DropReport, findings: &[Finding], top: usize) -> std::io::Result<()> {
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
    write_findings(w, findings)
}

/// Prints findings as text (shared with `netcase trace`).
pub(crate) fn write_findings(w: &mut dyn Write, findings: &[Finding]) -> std::io::Result<()> {
    if findings.is_empty() {
        return writeln!(w, "\nno findings");
    }
    writeln!(w, "\nfindings")?;
    for f in findings {
        writeln!(w, "  [{}] {} — {}: {}", f.severity, f.case, f.subject, f.summary)?;
        for e in &f.evidence {
            writeln!(w, "      {e}")?;
        }
        if !f.fix.is_empty() {
            writeln!(w, "      fix: {}", f.fix)?;
        }
    }
    Ok(())
}
