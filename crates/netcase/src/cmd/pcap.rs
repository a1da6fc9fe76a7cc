//! `netcase pcap FILE`: analyse a capture and name what went wrong.

use anyhow::Context;
use netcase_analysis::{self as pipeline, Analysis, Options};
use netcase_model::Severity;
use netcase_report::pcap::{JsonRecords, NoRecords, TableQuery, TextRecords, View};
use netcase_report::{count, human_bytes};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `netcase pcap`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  netcase pcap trace.pcapng                 summary, top flows and findings
  netcase pcap trace.pcap --json | jq .findings
  netcase pcap trace.pcap --events          one JSON line per TCP frame with analysis flags
  netcase pcap trace.pcap --conv            conversation table (like tshark -z conv,tcp)
  netcase pcap trace.pcap --dns --slow 100  DNS transactions slower than 100 ms
  netcase pcap trace.pcap --dns --name '*.example.com' --sort ttl
  netcase pcap trace.pcap --http            HTTP transactions with timings
  tcpdump -w - -i eth0 | netcase pcap -     read from stdin

Damaged files: the readable part is analysed and the damage is reported with its file offset
and frame number; the exit code is 2 only when nothing at all could be read.")]
pub struct Args {
    /// The capture: pcap or pcapng, optionally gzip-compressed; `-` reads stdin.
    pub file: PathBuf,
    /// Print one JSON document: {"netcase", "capture", "flows", "findings", "dns", "http"}.
    #[arg(long, conflicts_with_all = ["events", "conv"])]
    pub json: bool,
    /// Print JSON lines, one per TCP frame with at least one tcp.analysis flag:
    /// {"frame": N, "stream": S, "flags": [...]}.
    #[arg(long)]
    pub events: bool,
    /// Print only the TCP conversation table (like `tshark -q -z conv,tcp`).
    #[arg(long)]
    pub conv: bool,
    /// Print the DNS transactions table.
    #[arg(long)]
    pub dns: bool,
    /// Print the HTTP transactions table.
    #[arg(long)]
    pub http: bool,
    /// DNS: only names matching PATTERN: `google.com` matches it and its subdomains, `*` is a
    /// wildcard (`*google*`); case-insensitive. HTTP: the same on the Host header.
    #[arg(long, value_name = "PATTERN")]
    pub name: Option<String>,
    /// DNS/HTTP: only this server address.
    #[arg(long, value_name = "IP")]
    pub server: Option<std::net::IpAddr>,
    /// DNS/HTTP: only transactions slower than MS milliseconds (or unanswered).
    #[arg(long, value_name = "MS")]
    pub slow: Option<f64>,
    /// DNS/HTTP: sort key. Both: time (default), duration. DNS: rtt, ttl, answers, name, id,
    /// attempts. HTTP: total, ttfb, size, status.
    #[arg(long, value_name = "KEY", default_value = "time")]
    pub sort: String,
    /// Sort descending.
    #[arg(long)]
    pub desc: bool,
    /// How many flows the text summary lists.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Exit 1 when a finding is at least this severe (info, warning, error).
    #[arg(long, default_value = "warning")]
    pub fail_on: Severity,
    /// Skip DNS/HTTP/TLS transactions (faster).
    #[arg(long)]
    pub no_proto: bool,
    /// Analyse frames captured more than once as separate packets, as tshark does. By default
    /// a copy of an earlier frame (same IP ID, TCP seq/ack/flags/length, payload, within a
    /// short window) is counted and left out, so it does not read as a retransmission.
    #[arg(long)]
    pub keep_duplicates: bool,
}

/// The `--sort` keys each table takes, checked before the capture is read.
fn check_sort(args: &Args) -> anyhow::Result<()> {
    const DNS: &[&str] =
        &["time", "duration", "rtt", "response-time", "slow", "ttl", "answers", "name", "id", "attempts"];
    const HTTP: &[&str] = &["time", "duration", "total", "slow", "ttfb", "first-byte", "size", "status"];
    let k = args.sort.as_str();
    let bad = |table: &str, keys: &[&str]| {
        anyhow::anyhow!("invalid value '{k}' for '--sort' with --{table}: one of {}", keys.join(", "))
    };
    if args.dns && !DNS.contains(&k) {
        return Err(bad("dns", DNS));
    }
    if args.http && !HTTP.contains(&k) {
        return Err(bad("http", HTTP));
    }
    if !args.dns && !args.http && !DNS.contains(&k) && !HTTP.contains(&k) {
        anyhow::bail!("invalid value '{k}' for '--sort' (it orders the --dns and --http tables)");
    }
    Ok(())
}

/// Runs `netcase pcap`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    check_sort(&args)?;
    pipeline::tune_allocator();
    // Not locked: the flow records are written from the side thread. Standard output as a
    // plain file where it can be: std's line buffering would scan every byte for a newline.
    let sink: Box<dyn Write + Send> = match netcase_report::raw_stdout() {
        Some(f) => Box::new(f),
        None => Box::new(io::stdout()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    let want_proto = !args.no_proto && !args.events;
    let view = View {
        file: &args.file,
        dns: args.dns,
        http: args.http,
        table: TableQuery {
            name: args.name.clone(),
            server: args.server,
            slow: args.slow,
            sort: args.sort.clone(),
            desc: args.desc,
        },
    };
    let opts = Options {
        events: args.events,
        proto: want_proto,
        rules: !args.events,
        keep_duplicates: args.keep_duplicates,
        single_thread: false,
    };
    let show_progress = io::stderr().is_terminal() && !args.events;
    if show_progress {
        super::clear_progress_on_interrupt();
    }
    // The file's size, for a percentage (not for stdin; for gzip the offset counts inflated
    // bytes, so no percentage either).
    let gz = args.file.extension().is_some_and(|e| e == "gz");
    let total = (args.file.as_os_str() != "-" && !gz)
        .then(|| std::fs::metadata(&args.file).ok().map(|m| m.len()))
        .flatten()
        .filter(|n| *n > 0);
    let mut progress = |info: &netcase_capture::CaptureInfo, offset: u64| {
        if show_progress {
            match total {
                Some(t) => eprint!(
                    "\r\x1b[K{:.0}% of {}: {} frames read ",
                    (offset as f64 * 100.0 / t as f64).min(100.0),
                    human_bytes(t),
                    info.frames
                ),
                None => eprint!("\r\x1b[K{} frames, {} read ", info.frames, human_bytes(offset)),
            }
        }
    };

    let analysis;
    if args.json {
        let mut rec = JsonRecords::new(&mut out);
        write!(rec.out, "{{\"netcase\":")?;
        serde_json::to_writer(&mut *rec.out, &netcase_report::envelope("pcap"))?;
        write!(rec.out, ",\"flows\":[")?;
        analysis = pipeline::analyse_file::<io::Sink, _>(&args.file, opts, None, &mut rec, &mut progress)
            .with_context(|| format!("{}", args.file.display()))?;
        if let Some(e) = rec.err.take() {
            return Err(e.into());
        }
        if !rec.proto_written {
            write!(out, "]")?;
        }
        let t = std::time::Instant::now();
        netcase_report::pcap::write_json_tail(&mut out, &view, &analysis)?;
        if pipeline::profiling() {
            eprintln!("profile: json tail {:?}", t.elapsed());
        }
    } else if args.events {
        // JSON lines: the envelope first, then one line per flagged frame.
        write!(out, "{{\"netcase\":")?;
        serde_json::to_writer(&mut out, &netcase_report::envelope("pcap-events"))?;
        writeln!(out, "}}")?;
        let mut rec = NoRecords;
        analysis = pipeline::analyse_file(&args.file, opts, Some(&mut out), &mut rec, &mut progress)
            .with_context(|| format!("{}", args.file.display()))?;
        if let Some(e) = analysis.events_error {
            return Err(e.into());
        }
    } else {
        let mut rec = TextRecords::new(args.top, args.conv);
        analysis = pipeline::analyse_file::<io::Sink, _>(&args.file, opts, None, &mut rec, &mut progress)
            .with_context(|| format!("{}", args.file.display()))?;
        if show_progress {
            eprint!("\r\x1b[K");
        }
        netcase_report::pcap::write_text(&mut out, &view, &analysis, &mut rec)?;
    }
    if show_progress && args.json {
        eprint!("\r\x1b[K");
    }
    out.flush()?;
    report_damage(&args, &analysis);
    if analysis.info.frames == 0 && analysis.damage.is_some() {
        return Ok(ExitCode::from(crate::EXIT_ERROR));
    }
    if analysis.info.frames > 0 && analysis.analysable_frames == 0 {
        // Nothing netcase reads (IP or ARP) was in the file: "no findings" would be a lie.
        eprintln!(
            "netcase: {}: none of the {} could be analysed: {}",
            args.file.display(),
            count(analysis.info.frames, "frame", "frames"),
            netcase_report::pcap::not_analysed_text(&analysis).unwrap_or_else(|| "no IP or ARP frames".into())
        );
        return Ok(ExitCode::from(crate::EXIT_ERROR));
    }
    Ok(ExitCode::from(netcase_report::exit_code_for(&analysis.findings, args.fail_on)))
}

fn report_damage(args: &Args, a: &Analysis) {
    if let Some(d) = &a.damage {
        eprintln!(
            "netcase: {}: {d}; the {} before it analysed, the rest of the file skipped",
            args.file.display(),
            count(a.info.frames, "frame", "frames")
        );
    }
}
