//! `netcase trace` (being built).

use std::process::ExitCode;

/// Arguments of `netcase trace`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `netcase trace`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'netcase trace' is not built yet")
}
