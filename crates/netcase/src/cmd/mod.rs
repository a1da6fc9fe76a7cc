//! One module per subcommand. Each has an `Args` (clap) and a `run` returning the exit code.

pub mod cases;
pub mod check;
pub mod drops;
pub mod lab;
pub mod pcap;
pub mod trace;

/// Tells on stderr how long a tracing command will run (`netcase drops`, `netcase trace`).
pub(crate) fn announce_tracing(what: &str, duration: Option<std::time::Duration>) {
    let how = duration.map_or_else(|| "until Ctrl-C".to_owned(), |d| format!("for {:.1} s", d.as_secs_f64()));
    eprintln!("netcase: tracing {what} {how}...");
}

/// Writes the JSON document of a tracing command: {"netcase", "command", "report", "findings"}.
pub(crate) fn write_trace_json<W: std::io::Write, R: serde::Serialize>(
    out: &mut W,
    command: &str,
    report: &R,
    findings: &[netcase_model::Finding],
) -> anyhow::Result<()> {
    let doc = serde_json::json!({
        "netcase": netcase_model::SCHEMA_VERSION,
        "command": command,
        "report": report,
        "findings": findings,
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(())
}
