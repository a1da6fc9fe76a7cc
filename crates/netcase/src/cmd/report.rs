//! `netcase report FILE`: the capture's analysis as one self-contained HTML file with graphs.

use anyhow::Context;
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
Exit codes as for `netcase pcap`: 1 when a finding is at least --fail-on.")]
pub struct Args {
    /// The capture: pcap or pcapng, optionally gzip-compressed.
    pub file: PathBuf,
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
    if args.file.as_os_str() == "-" {
        anyhow::bail!("report reads the capture twice: give a file, not stdin");
    }
    netcase_analysis::tune_allocator();
    let opts = netcase_html::Options { top: args.top, keep_duplicates: args.keep_duplicates, ..Default::default() };
    let t = std::time::Instant::now();
    let (html, data) =
        netcase_html::capture_report(&args.file, &opts).with_context(|| format!("{}", args.file.display()))?;
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
            eprintln!("netcase: {}: {d}", args.file.display());
        }
        return Ok(ExitCode::from(crate::EXIT_ERROR));
    }
    if args.output.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(html.as_bytes())?;
        out.flush()?;
    } else {
        std::fs::write(&args.output, html.as_bytes())
            .with_context(|| format!("cannot write {}", args.output.display()))?;
        eprintln!(
            "netcase: wrote {} ({}): {} findings, {} TCP streams drawn",
            args.output.display(),
            netcase_report::human_bytes(html.len() as u64),
            data.analysis.findings.len(),
            data.traces.len()
        );
    }
    Ok(ExitCode::from(netcase_report::exit_code_for(&data.analysis.findings, args.fail_on)))
}
