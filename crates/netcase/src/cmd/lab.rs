//! `netcase lab` (being built).

use std::process::ExitCode;

/// Arguments of `netcase lab`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `netcase lab`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'netcase lab' is not built yet")
}
