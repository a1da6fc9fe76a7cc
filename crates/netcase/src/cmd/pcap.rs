//! `netcase pcap` (being built).

use std::process::ExitCode;

/// Arguments of `netcase pcap`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `netcase pcap`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'netcase pcap' is not built yet")
}
