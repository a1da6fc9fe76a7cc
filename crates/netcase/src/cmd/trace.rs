//! `netcase trace`: TCP retransmits, resets and state changes with addresses, from kernel
//! tracepoints (perf_event_open, no BPF), as a timeline and per socket.

use anyhow::Context;
use netcase_trace::tcp::{TcpEventKind, TcpReport};
use netcase_trace::{SessionOptions, StopOnSignals, TcpFilter, TcpTracer};
use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Tracepoints read: tcp:tcp_retransmit_skb, tcp:tcp_send_reset, tcp:tcp_receive_reset and
sock:inet_sock_set_state (state changes with old and new state). Each carries the socket's
addresses, so --host and --port filter exactly. Addresses are this host's view: 'local' is the
socket's own end. State and reset-reason names come from the running kernel's format files.
The trace covers every network namespace of the host.
Tail loss probes that resend a segment do not fire tcp:tcp_retransmit_skb: compare the
retransmit count with Tcp.RetransSegs minus TcpExt.TCPLossProbes (nstat). On 6.18, perf was
seen to miss retransmit-timer hits on otherwise idle CPUs: treat counts as lower bounds. Ctrl-C stops early and prints what was
gathered; the events detach when netcase exits. Needs root.";

/// Arguments of `netcase trace`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// Only connections with this address at either end.
    #[arg(long, value_name = "IP")]
    pub host: Option<IpAddr>,
    /// Only connections with this port at either end.
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Timeline events printed at most (the JSON has all that were kept).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub events: usize,
    /// Duration, output and exit-status options.
    #[command(flatten)]
    pub common: super::TracingArgs,
}

/// Runs `netcase trace`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let duration = args.common.duration()?;
    let stop = StopOnSignals::install().context("installing the Ctrl-C handler")?;
    let filter = TcpFilter { host: args.host, port: args.port };
    let opts = SessionOptions { ring_pages: args.common.ring_pages, ..SessionOptions::default() };
    let tracer = TcpTracer::open(filter, opts).context("attaching to the TCP tracepoints")?;
    if !args.common.json {
        super::announce_tracing("TCP events", duration);
    }
    let report = tracer.run(duration, &|| stop.requested()).context("tracing TCP events")?;
    drop(stop);
    let findings = netcase_rules::trace::check_tcp(&report);
    let mut out = std::io::stdout().lock();
    if args.common.json {
        super::write_trace_json(&mut out, "trace", &report, &findings)?;
    } else {
        render_text(&mut out, &report, args.events)?;
        super::drops::write_findings(&mut out, &findings)?;
    }
    out.flush()?;
    Ok(args.common.exit_code(&findings))
}

fn render_text(w: &mut dyn Write, r: &TcpReport, max_events: usize) -> std::io::Result<()> {
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
    Ok(())
}
