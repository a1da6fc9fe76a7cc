//! netcase: diagnoses Linux network failures from captures, the live host and kernel
//! tracepoints, and names each one after a case of the catalogue.
//!
//! The library only wires the crates together: sources → evidence → rules → findings →
//! renderers. Each subcommand lives in [`cmd`].

pub mod cmd;
pub mod tables;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub use netcase_report::{EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};

/// netcase — diagnose Linux network failures and name the case.
#[derive(Debug, Parser)]
#[command(name = "netcase", version, about, long_about = None, propagate_version = true)]
#[command(after_help = "Every finding names a case from the catalogue: `netcase cases` lists them, \
`netcase explain ID` explains one.\n\nExit codes: 0 no finding of severity warning or worse, \
1 such findings, 2 error.")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Analyse a capture file (pcap, pcapng, gzip-compressed, or - for stdin).
    Pcap(cmd::pcap::Args),
    /// Check the live host (or a network namespace): sockets, counters, sysctls, rules.
    Check(cmd::check::Args),
    /// Count kernel packet drops by reason and location (skb:kfree_skb).
    Drops(cmd::drops::Args),
    /// Trace TCP retransmits, resets and state changes from kernel tracepoints.
    Trace(cmd::trace::Args),
    /// Reproduce a case in network namespaces and check that netcase names it.
    Lab(cmd::lab::Args),
    /// List the case catalogue.
    Cases(cmd::cases::CasesArgs),
    /// Explain one case: what it is, how netcase detects it, and the fix.
    Explain(cmd::cases::ExplainArgs),
}

/// Parses the command line, runs the subcommand and maps the outcome to an exit code.
/// A closed stdout (`| head`) is not an error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pcap(a) => cmd::pcap::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Drops(a) => cmd::drops::run(a),
        Command::Trace(a) => cmd::trace::run(a),
        Command::Lab(a) => cmd::lab::run(a),
        Command::Cases(a) => cmd::cases::run_cases(a),
        Command::Explain(a) => cmd::cases::run_explain(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::from(EXIT_OK);
            }
            eprintln!("netcase: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Whether an error chain ends in a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
