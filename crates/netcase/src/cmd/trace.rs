//! `netcase trace`: TCP retransmits, resets and state changes with addresses, from kernel
//! tracepoints (perf_event_open, no BPF), as a timeline and per socket.

use anyhow::Context;
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
        netcase_report::trace::write_tcp_text(&mut out, &report, &findings, args.events)?;
    }
    out.flush()?;
    Ok(args.common.exit_code(&findings))
}
