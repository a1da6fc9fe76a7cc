//! `netcase cases` and `netcase explain ID` (being built).

use std::process::ExitCode;

/// Arguments of `netcase cases`.
#[derive(Debug, clap::Args)]
pub struct CasesArgs {}

/// Arguments of `netcase explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The case id, e.g. close-wait-leak.
    pub id: String,
}

/// Runs `netcase cases`.
pub fn run_cases(_a: CasesArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}

/// Runs `netcase explain`.
pub fn run_explain(_a: ExplainArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
