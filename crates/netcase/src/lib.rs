//! netcase: diagnoses Linux network failures from captures, the live host and kernel
//! tracepoints, and names each one after a case of the catalogue.
//!
//! The library only wires the crates together: sources → evidence → rules → findings →
//! renderers. Each subcommand lives in [`cmd`].

pub mod cmd;

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
    /// Write a self-contained HTML report with graphs of a capture.
    Report(cmd::report::Args),
    /// Check the live host (or a network namespace): sockets, counters, sysctls, rules.
    Check(cmd::check::Args),
    /// Count kernel packet drops by reason and location (skb:kfree_skb).
    Drops(cmd::drops::Args),
    /// Trace TCP retransmits, resets and state changes from kernel tracepoints.
    Trace(cmd::trace::Args),
    /// Measure latency: TCP connect (like hping3 -S), HTTP phases (curl -w), DNS, the TCP path.
    Probe(cmd::probe::Args),
    /// Reproduce a case in network namespaces and check that netcase names it.
    Lab(cmd::lab::Args),
    /// List the case catalogue.
    Cases(cmd::cases::CasesArgs),
    /// Explain one case: what it is, how netcase detects it, and the fix.
    Explain(cmd::cases::ExplainArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Example: netcase completions bash > /etc/bash_completion.d/netcase")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) of netcase, or of one command.
    #[command(after_help = "Examples:\n  netcase man > netcase.1 && man ./netcase.1\n  netcase man pcap | man -l -")]
    Man {
        /// The command (pcap, check, drops, trace, probe, lab, cases, explain); netcase itself without.
        command: Option<String>,
    },
}

/// Parses the command line, runs the subcommand and maps the outcome to an exit code.
/// A closed stdout (`| head`) is not an error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pcap(a) => cmd::pcap::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Drops(a) => cmd::drops::run(a),
        Command::Trace(a) => cmd::trace::run(a),
        Command::Probe(a) => cmd::probe::run(a),
        Command::Lab(a) => cmd::lab::run(a),
        Command::Cases(a) => cmd::cases::run_cases(a),
        Command::Explain(a) => cmd::cases::run_explain(a),
        Command::Completions { shell } => completions(shell),
        Command::Man { command } => man(command.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::from(EXIT_OK);
            }
            eprintln!("netcase: {}", error_text(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `netcase completions SHELL`.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "netcase", &mut std::io::stdout());
    Ok(ExitCode::from(EXIT_OK))
}

/// `netcase man [COMMAND]`: the manual page of netcase or of one command.
fn man(command: Option<&str>) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let page = match command {
        None => cmd,
        Some(name) => {
            let Some(sub) = cmd.get_subcommands().find(|s| s.get_name() == name && !s.is_hide_set()) else {
                let names: Vec<&str> =
                    cmd.get_subcommands().filter(|s| !s.is_hide_set()).map(|s| s.get_name()).collect();
                anyhow::bail!("no command '{name}': one of {}", names.join(", "));
            };
            let full = format!("netcase-{}", sub.get_name());
            sub.clone().name(full)
        }
    };
    clap_mangen::Man::new(page).render(&mut std::io::stdout().lock())?;
    Ok(ExitCode::from(EXIT_OK))
}

/// An error and its causes on one line, each cause once (a message that already quotes its
/// cause does not get it appended again).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.is_empty() {
            text = c;
        } else if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

/// Whether an error chain ends in a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_are_printed_once() {
        let io = std::io::Error::from_raw_os_error(1);
        let e = anyhow::Error::new(io).context("cannot enter netns x: Operation not permitted (os error 1)");
        assert_eq!(super::error_text(&e), "cannot enter netns x: Operation not permitted (os error 1)");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(super::error_text(&e), "outer: inner");
    }
}
