//! `netcase check` (being built).

use std::process::ExitCode;

/// Arguments of `netcase check`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `netcase check`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'netcase check' is not built yet")
}
