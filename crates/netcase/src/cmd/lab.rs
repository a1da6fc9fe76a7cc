//! `netcase lab`: reproduce a case in network namespaces and check that netcase names it.
//!
//! The diagnosis is netcase's own, run as a subprocess of this executable (`pcap FILE --json`
//! and `check --netns NAME --interval 0 --json`), so a lab checks exactly what a user runs.

use anyhow::Context;
use clap::Subcommand;
use netcase_lab::{ExeDiagnose, RunOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `netcase lab`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Labs need root. Each lab makes its own network namespaces (named ncl-LAB-PID-…), \
uses addresses that exist only inside them (10.200.0.0 to 10.249.255.255), and removes them when it ends, even on \
Ctrl-C.\n\nExit codes of `run`: 0 the verdict holds, 1 it does not, 2 error (not root, bad usage, \
setup failed).")]
pub struct Args {
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Debug, Subcommand)]
enum LabCommand {
    /// List the reproducible cases, one line each.
    List(ListArgs),
    /// Build the lab, make the failure happen, capture it, diagnose it, print the verdict.
    Run(RunArgs),
    /// Remove a lab's namespaces (kept with --keep, or left by a crashed run).
    Down(DownArgs),
    /// Internal: resolve a name with getaddrinfo (run inside a lab namespace).
    #[command(name = "__resolve", hide = true)]
    Resolve(ResolveArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The lab (a case id; see `netcase lab list`).
    id: String,
    /// Run the healthy twin: same topology and traffic without the fault; the verdict is then
    /// "no finding".
    #[arg(long)]
    control: bool,
    /// Leave the namespaces up and print how to enter them.
    #[arg(long)]
    keep: bool,
    /// Write the lab's capture (pcap) to FILE.
    #[arg(long, value_name = "FILE")]
    capture: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Allow labs that must change a host-wide value (conntrack-table-full lowers the global
    /// nf_conntrack_max for a few seconds and restores it on every exit path).
    #[arg(long)]
    allow_host_changes: bool,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct DownArgs {
    /// The lab whose namespaces to remove.
    #[arg(required_unless_present = "all")]
    id: Option<String>,
    /// Remove the namespaces of every lab.
    #[arg(long, conflicts_with = "id")]
    all: bool,
}

#[derive(Debug, clap::Args)]
struct ResolveArgs {
    /// The name to resolve.
    name: String,
}

/// Runs `netcase lab`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        LabCommand::List(a) => list(&a),
        LabCommand::Run(a) => run_lab(a),
        LabCommand::Down(a) => down(a),
        LabCommand::Resolve(a) => resolve(&a.name),
    }
}

fn list(a: &ListArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if a.json {
        let labs: Vec<_> = netcase_lab::catalogue()
            .iter()
            .map(|l| {
                serde_json::json!({
                    "id": l.id(), "summary": l.summary, "host_changes": l.host_changes, "note": l.note,
                })
            })
            .collect();
        netcase_report::write_json(&mut out, "lab-list", &serde_json::json!({ "labs": labs }), true)?;
        return Ok(ExitCode::SUCCESS);
    }
    for l in netcase_lab::catalogue() {
        let mut extra = String::new();
        if l.host_changes {
            extra.push_str(" [needs --allow-host-changes]");
        }
        if l.note.is_some() {
            extra.push_str(" [partial on this kernel]");
        }
        writeln!(out, "{:<28} {}{extra}", l.id(), l.summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_lab(a: RunArgs) -> anyhow::Result<ExitCode> {
    let Some(spec) = netcase_lab::find(&a.id) else {
        let near: Vec<&str> = netcase_model::CaseId::closest(&a.id, 3).iter().map(|c| c.as_str()).collect();
        eprintln!("netcase: no lab '{}' (did you mean {}?); `netcase lab list` shows them", a.id, near.join(", "));
        return Ok(ExitCode::from(crate::EXIT_ERROR));
    };
    if !netcase_lab::is_root() {
        eprintln!("netcase: labs create network namespaces and need root (run with sudo)");
        return Ok(ExitCode::from(crate::EXIT_ERROR));
    }
    if spec.host_changes && !a.control && !a.allow_host_changes {
        eprintln!("netcase: {}", netcase_lab::host_change_refusal(spec));
        return Ok(ExitCode::from(crate::EXIT_ERROR));
    }
    let exe = std::env::current_exe().context("cannot find the netcase executable")?;
    let opts = RunOptions {
        control: a.control,
        keep: a.keep,
        capture: a.capture,
        allow_host_changes: a.allow_host_changes,
        exe: Some(exe.clone()),
    };
    let report = netcase_lab::run(&a.id, &opts, &ExeDiagnose { exe })?;
    let mut out = std::io::stdout().lock();
    if a.json {
        netcase_report::write_json(&mut out, "lab-run", &report, true)?;
    } else {
        out.write_all(report.render_text().as_bytes())?;
    }
    Ok(if report.verdict.holds { ExitCode::SUCCESS } else { ExitCode::from(crate::EXIT_FINDINGS) })
}

fn down(a: DownArgs) -> anyhow::Result<ExitCode> {
    let id = if a.all { None } else { a.id.as_deref() };
    let removed = netcase_lab::down(id)?;
    let mut out = std::io::stdout().lock();
    if removed.is_empty() {
        writeln!(out, "nothing to remove")?;
    }
    for r in removed {
        writeln!(out, "{r}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn resolve(name: &str) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let addrs = netcase_lab::labs::getaddrinfo(name);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut out = std::io::stdout().lock();
    match addrs {
        Ok(a) => writeln!(out, "{{\"name\":{:?},\"ms\":{ms:.1},\"addrs\":{:?}}}", name, a)?,
        Err(e) => writeln!(out, "{{\"name\":{:?},\"ms\":{ms:.1},\"error\":{:?}}}", name, e.to_string())?,
    }
    Ok(ExitCode::SUCCESS)
}
