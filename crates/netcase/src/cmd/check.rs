//! `netcase check`: read the live host (or network namespaces) and name the cases.
//!
//! Wiring only: [`netcase_host::collect`] reads the evidence, [`netcase_rules::host`] turns it
//! into findings, and a small renderer prints text or JSON (to move into netcase-report).

use anyhow::Context;
use netcase_host::{Options, Target};
use netcase_model::Severity;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `netcase check`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Check the named network namespace (`ip netns` name, from /var/run/netns). The interface
    /// addresses (only those) of every other namespace are read too, to find an address it
    /// holds or talks to that two namespaces hold.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["pid", "all_netns"])]
    pub netns: Option<String>,
    /// Check the network namespace (and root filesystem) of process P.
    #[arg(long, value_name = "P", conflicts_with = "all_netns")]
    pub pid: Option<u32>,
    /// Check every distinct network namespace (processes and /var/run/netns), plus
    /// cross-namespace checks (the same address held twice).
    #[arg(long)]
    pub all_netns: bool,
    /// Read resolver files (resolv.conf, nsswitch.conf, hosts) and the libc from this root
    /// filesystem (a container's) instead of /.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Seconds between the two samples that give rates; 0 reads absolute values only.
    #[arg(long, value_name = "S", default_value_t = 1.0, allow_negative_numbers = true)]
    pub interval: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Lowest severity that makes the exit status 1 (info, warning, error).
    #[arg(long, default_value = "warning", value_name = "SEVERITY")]
    pub fail_on: Severity,
}

impl Args {
    fn options(&self) -> anyhow::Result<Options> {
        if !self.interval.is_finite() || self.interval < 0.0 || self.interval > 3600.0 {
            anyhow::bail!("--interval must be between 0 and 3600 seconds, got {}", self.interval);
        }
        let target = match (&self.netns, self.pid, self.all_netns) {
            (Some(n), _, _) => Target::Netns(n.clone()),
            (None, Some(p), _) => Target::Pid(p),
            (None, None, true) => Target::AllNetns,
            (None, None, false) => Target::Current,
        };
        if let Some(r) = &self.root {
            if !r.is_dir() {
                anyhow::bail!("--root {}: not a directory", r.display());
            }
        }
        Ok(Options { target, root: self.root.clone(), interval: Duration::from_secs_f64(self.interval) })
    }
}

pub use netcase_report::check::Outcome;

/// Collects evidence and runs the host rules (no output).
pub fn analyse(args: &Args) -> anyhow::Result<Outcome> {
    let opts = args.options()?;
    let evidence = netcase_host::collect(&opts).context("reading host evidence")?;
    let findings = netcase_rules::host::check_all(&evidence);
    Ok(Outcome { evidence, findings })
}

/// Runs `netcase check`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let outcome = analyse(&args)?;
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    if args.json {
        netcase_report::check::render_json(&outcome, &mut w)?;
    } else {
        netcase_report::check::render_text(&outcome, &mut w)?;
    }
    w.flush()?;
    Ok(ExitCode::from(netcase_report::exit_code_for(&outcome.findings, args.fail_on)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Args {
        Args {
            netns: None,
            pid: None,
            all_netns: false,
            root: None,
            interval: 0.0,
            json: false,
            fail_on: Severity::Warning,
        }
    }

    #[test]
    fn bad_interval_is_an_error() {
        let a = Args { interval: -1.0, ..args() };
        assert!(a.options().is_err());
    }

    #[test]
    fn missing_netns_is_an_error() {
        let a = Args { netns: Some("nch-does-not-exist-0".into()), ..args() };
        assert!(analyse(&a).is_err());
    }

    #[test]
    fn own_namespace_renders_both_formats() {
        let o = analyse(&args()).expect("check of the own namespace");
        let mut text = Vec::new();
        netcase_report::check::render_text(&o, &mut text).unwrap();
        assert!(String::from_utf8_lossy(&text).starts_with("netcase check: kernel"));
        let mut json = Vec::new();
        netcase_report::check::render_json(&o, &mut json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["netcase"]["schema"], netcase_model::SCHEMA_VERSION);
        assert_eq!(v["netcase"]["command"], "check");
        assert!(v["findings"].is_array());
        assert!(v["evidence"]["namespaces"].is_array());
    }
}
