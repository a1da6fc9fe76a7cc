//! `netcase drops`: where the kernel drops packets, by reason, location, protocol and layer
//! (skb:kfree_skb through perf_event_open, no BPF).

use anyhow::Context;
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
        netcase_report::trace::write_drops_text(&mut out, &report, &findings, args.top)?;
    }
    out.flush()?;
    Ok(args.common.exit_code(&findings))
}
