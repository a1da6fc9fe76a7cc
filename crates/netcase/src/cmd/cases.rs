//! `netcase cases` and `netcase explain ID`: the catalogue, for people and for scripts.

use netcase_model::CaseId;
use netcase_rules::catalogue;
use std::process::ExitCode;

/// Arguments of `netcase cases`.
#[derive(Debug, clap::Args)]
pub struct CasesArgs {
    /// Print JSON: an array of {id, title, sources}.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `netcase explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The case id, e.g. close-wait-leak (`netcase cases` lists them).
    pub id: String,
    /// Print JSON: {id, title, sources, what, detect, fix}.
    #[arg(long)]
    pub json: bool,
}

/// Runs `netcase cases`.
pub fn run_cases(a: CasesArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if a.json {
        netcase_report::cases::write_cases_json(&mut out)?;
    } else {
        netcase_report::cases::write_cases_text(&mut out)?;
    }
    Ok(ExitCode::from(crate::EXIT_OK))
}

/// Runs `netcase explain`. An unknown id exits 2 and names the closest ids.
pub fn run_explain(a: ExplainArgs) -> anyhow::Result<ExitCode> {
    let case: CaseId = match a.id.parse() {
        Ok(c) => c,
        Err(e) => {
            let near: Vec<&str> = CaseId::closest(&a.id, 3).iter().map(|c| c.as_str()).collect();
            eprintln!("netcase: {e}; closest: {} (netcase cases lists all)", near.join(", "));
            return Ok(ExitCode::from(crate::EXIT_ERROR));
        }
    };
    let d = catalogue::doc(case);
    let lab = netcase_lab::find(case.as_str()).is_some();
    let mut out = std::io::stdout().lock();
    if a.json {
        netcase_report::cases::write_explain_json(&mut out, &d, lab)?;
    } else {
        netcase_report::cases::write_explain_text(&mut out, &d, lab)?;
    }
    Ok(ExitCode::from(crate::EXIT_OK))
}
