//! `netcase drops` (being built).

use std::process::ExitCode;

/// Arguments of `netcase drops`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `netcase drops`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'netcase drops' is not built yet")
}
