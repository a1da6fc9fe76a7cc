//! `netcase report FILE`: the capture's analysis as one self-contained HTML file with graphs;
//! `netcase report --check`: the same for the live host (what `netcase check` reads and
//! finds). This module is the adapter: it fills netcase-html's models, which draw the page.

use anyhow::Context;
use netcase_host::{HostEvidence, Proto, TcpState};
use netcase_model::Severity;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `netcase report`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  netcase report trace.pcapng                 writes report.html
  netcase report trace.pcap -o /tmp/t.html
  netcase report trace.pcap -o - > t.html     the page on stdout

The file is self-contained: styles inline, graphs as SVG, no script, and a policy that forbids
the browser to fetch anything, so it can be mailed or attached to a ticket and opened offline.
  netcase report --check                      the live host (as `netcase check`), report.html
  netcase report --check --all-netns -o host.html

The file is self-contained: styles inline, graphs as SVG, no script, and a policy that forbids
the browser to fetch anything, so it can be mailed or attached to a ticket and opened offline.
Exit codes as for `netcase pcap` (or `netcase check` with --check): 1 when a finding is at
least --fail-on.")]
pub struct Args {
    /// The capture: pcap or pcapng, optionally gzip-compressed (not with --check).
    #[arg(required_unless_present = "check", conflicts_with = "check")]
    pub file: Option<PathBuf>,
    /// Report on the live host instead of a capture: what `netcase check` reads (sockets,
    /// accept queues, counters as rates, drops by layer, netfilter) and finds. Read-only.
    #[arg(long)]
    pub check: bool,
    /// With --check: the named network namespace (`ip netns` name).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["file", "pid", "all_netns"])]
    pub netns: Option<String>,
    /// With --check: the network namespace of process P.
    #[arg(long, value_name = "P", conflicts_with_all = ["file", "all_netns"])]
    pub pid: Option<u32>,
    /// With --check: every network namespace.
    #[arg(long, conflicts_with = "file")]
    pub all_netns: bool,
    /// With --check: read resolver files from this root filesystem instead of /.
    #[arg(long, value_name = "DIR", conflicts_with = "file")]
    pub root: Option<PathBuf>,
    /// With --check: seconds between the two samples that give rates (0: totals only).
    #[arg(long, value_name = "S", default_value_t = 1.0, conflicts_with = "file", allow_negative_numbers = true)]
    pub interval: f64,
    /// Where to write the page (`-` for stdout).
    #[arg(short, long, default_value = "report.html", value_name = "FILE")]
    pub output: PathBuf,
    /// How many of the largest TCP streams get graphs besides those with findings.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub top: usize,
    /// Exit 1 when a finding is at least this severe (info, warning, error).
    #[arg(long, default_value = "warning")]
    pub fail_on: Severity,
    /// Analyse frames captured more than once as separate packets (see `netcase pcap`).
    #[arg(long)]
    pub keep_duplicates: bool,
}

/// Runs `netcase report`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(file) = args.file.clone() else {
        return run_host(&args);
    };
    if file.as_os_str() == "-" {
        anyhow::bail!("report reads the capture twice: give a file, not stdin");
    }
    netcase_analysis::tune_allocator();
    let opts = netcase_html::Options { top: args.top, keep_duplicates: args.keep_duplicates, ..Default::default() };
    let t = std::time::Instant::now();
    let (html, data) = netcase_html::capture_report(&file, &opts).with_context(|| format!("{}", file.display()))?;
    if netcase_analysis::profiling() {
        eprintln!(
            "profile: report pass 1 {:.3} s, pass 2 {:.3} s, total with rendering {:.3} s, {} bytes",
            data.pass_secs[0],
            data.pass_secs[1],
            t.elapsed().as_secs_f64(),
            html.len()
        );
    }
    if data.analysis.info.frames == 0 && data.analysis.damage.is_some() {
        if let Some(d) = &data.analysis.damage {
            eprintln!("netcase: {}: {d}", file.display());
        }
        return Ok(ExitCode::from(crate::EXIT_ERROR));
    }
    let what = format!("{} findings, {} TCP streams drawn", data.analysis.findings.len(), data.traces.len());
    write_page(&args.output, &html, &what)?;
    Ok(ExitCode::from(netcase_report::exit_code_for(&data.analysis.findings, args.fail_on)))
}

fn write_page(output: &std::path::Path, html: &str, what: &str) -> anyhow::Result<()> {
    if output.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(html.as_bytes())?;
        out.flush()?;
    } else {
        std::fs::write(output, html.as_bytes()).with_context(|| format!("cannot write {}", output.display()))?;
        eprintln!("netcase: wrote {} ({}): {what}", output.display(), netcase_report::human_bytes(html.len() as u64));
    }
    Ok(())
}

/// `netcase report --check`: `netcase check`'s evidence and findings as a page.
fn run_host(args: &Args) -> anyhow::Result<ExitCode> {
    let check_args = super::check::Args {
        netns: args.netns.clone(),
        pid: args.pid,
        all_netns: args.all_netns,
        root: args.root.clone(),
        interval: args.interval,
        json: false,
        fail_on: args.fail_on,
    };
    let outcome = super::check::analyse(&check_args)?;
    let data = host_data(&outcome);
    let html = netcase_html::host::render(&data);
    let what = format!("{} findings, {} network namespaces", data.findings.len(), data.namespaces.len());
    write_page(&args.output, &html, &what)?;
    Ok(ExitCode::from(netcase_report::exit_code_for(&outcome.findings, args.fail_on)))
}

fn state_name(proto: Proto, s: TcpState) -> &'static str {
    match (proto, s) {
        (Proto::Udp, TcpState::Close) => "UNCONN",
        (_, TcpState::Established) => "ESTABLISHED",
        (_, TcpState::SynSent) => "SYN-SENT",
        (_, TcpState::SynRecv) => "SYN-RECV",
        (_, TcpState::FinWait1) => "FIN-WAIT-1",
        (_, TcpState::FinWait2) => "FIN-WAIT-2",
        (_, TcpState::TimeWait) => "TIME-WAIT",
        (_, TcpState::Close) => "CLOSE",
        (_, TcpState::CloseWait) => "CLOSE-WAIT",
        (_, TcpState::LastAck) => "LAST-ACK",
        (_, TcpState::Listen) => "LISTEN",
        (_, TcpState::Closing) => "CLOSING",
        (_, TcpState::Unknown) => "UNKNOWN",
    }
}

/// Drops by layer, as the packet-drop-layers rule counts them: per second with two samples,
/// totals otherwise.
fn drop_layers(ev: &HostEvidence) -> Vec<netcase_html::host::DropLayer> {
    netcase_rules::host::drop_layers(ev)
        .into_iter()
        .map(|l| netcase_html::host::DropLayer { layer: l.layer.to_owned(), value: l.value, from: l.source })
        .collect()
}

/// Fills the page's model from `netcase check`'s outcome.
pub fn host_data(o: &super::check::Outcome) -> netcase_html::HostData {
    use netcase_html::host::{CounterRow, ListenerRow, NsData, RuleRow, StateCount};
    let mut namespaces = Vec::new();
    for ev in &o.evidence {
        let mut states: Vec<StateCount> = Vec::new();
        for s in &ev.sockets {
            let (proto, state) = (s.proto.as_str(), state_name(s.proto, s.state));
            match states.iter_mut().find(|c| c.proto == proto && c.state == state) {
                Some(c) => c.count += 1,
                None => states.push(StateCount { proto: proto.to_owned(), state: state.to_owned(), count: 1 }),
            }
        }
        states.sort_by(|a, b| b.count.cmp(&a.count).then(a.proto.cmp(&b.proto)).then(a.state.cmp(&b.state)));
        let listeners = ev
            .sockets
            .iter()
            .filter(|s| s.proto == Proto::Tcp && s.state == TcpState::Listen)
            .map(|s| ListenerRow {
                local: s.local,
                queued: s.recv_q,
                backlog: s.send_q,
                owner: s.owner().map(|(p, c)| format!("{c} (pid {p})")),
            })
            .collect();
        let mut counters: Vec<CounterRow> = ev
            .counters
            .iter()
            .map(|(k, v)| CounterRow { name: k.clone(), value: *v, per_s: ev.counter_rates.get(k).copied() })
            .collect();
        if let Some(ct) = &ev.conntrack {
            counters.extend(ct.totals.iter().map(|(k, v)| CounterRow {
                name: format!("conntrack.{k}"),
                value: *v,
                per_s: ct.per_s.get(k).copied(),
            }));
        }
        let nat_rules = ev
            .netfilter
            .as_ref()
            .map(|r| {
                r.rules
                    .iter()
                    .filter(|r| r.table == "nat")
                    .map(|r| RuleRow {
                        family: r.family.to_owned(),
                        chain: r.chain.clone(),
                        text: r.text.clone(),
                        target: r.target.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        namespaces.push(NsData {
            label: ev.netns.label(),
            name: ev.netns.label().unwrap_or_else(|| format!("own (ino:{})", ev.netns.inode)),
            states,
            listeners,
            counters,
            drops: drop_layers(ev),
            nat_rules,
            netfilter_read: ev.netfilter.is_some(),
        });
    }
    let mut unavailable: Vec<(String, String)> = Vec::new();
    for u in o.evidence.iter().flat_map(|e| e.unavailable.iter()) {
        let u = (u.what.clone(), u.why.clone());
        if !unavailable.contains(&u) {
            unavailable.push(u);
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    netcase_html::HostData {
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_default(),
        kernel: o.evidence.first().map(|e| e.kernel.clone()).unwrap_or_default(),
        interval_s: o.evidence.first().map_or(0.0, |e| e.interval_s),
        privileged: netcase_host::privileged(),
        taken: format!("{} UTC", netcase_html::capture::utc(now)),
        namespaces,
        findings: o.findings.clone(),
        unavailable,
    }
}
