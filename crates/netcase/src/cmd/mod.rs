//! One module per subcommand. Each has an `Args` (clap) and a `run` returning the exit code.

pub mod cases;
pub mod check;
pub mod drops;
pub mod lab;
pub mod pcap;
pub mod probe;
pub mod report;
pub mod trace;

/// The options `netcase drops` and `netcase trace` share.
#[derive(Debug, clap::Args)]
pub struct TracingArgs {
    /// Seconds to trace; 0 traces until Ctrl-C.
    #[arg(long, default_value_t = 5.0, value_name = "S", allow_negative_numbers = true)]
    pub duration: f64,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Ring-buffer pages per CPU (a power of two); more pages lose fewer samples under bursts.
    #[arg(long, default_value_t = 64, value_name = "PAGES")]
    pub ring_pages: usize,
    /// Lowest severity that makes the exit status 1.
    #[arg(long, default_value = "warning", value_name = "SEVERITY")]
    pub fail_on: netcase_model::Severity,
}

impl TracingArgs {
    /// Checks the values; returns how long to trace (`None`: until Ctrl-C).
    pub(crate) fn duration(&self) -> anyhow::Result<Option<std::time::Duration>> {
        if !self.duration.is_finite() || self.duration < 0.0 {
            anyhow::bail!("--duration must be a number of seconds, 0 or more");
        }
        if !self.ring_pages.is_power_of_two() {
            anyhow::bail!("--ring-pages must be a power of two (got {})", self.ring_pages);
        }
        Ok((self.duration > 0.0).then(|| std::time::Duration::from_secs_f64(self.duration)))
    }

    /// The exit code for these findings under `--fail-on`.
    pub(crate) fn exit_code(&self, findings: &[netcase_model::Finding]) -> std::process::ExitCode {
        std::process::ExitCode::from(netcase_report::exit_code_for(findings, self.fail_on))
    }
}

/// Tells on stderr how long a tracing command will run (`netcase drops`, `netcase trace`).
pub(crate) fn announce_tracing(what: &str, duration: Option<std::time::Duration>) {
    let how = duration.map_or_else(|| "until Ctrl-C".to_owned(), |d| format!("for {:.1} s", d.as_secs_f64()));
    eprintln!("netcase: tracing {what} {how}...");
}

/// Writes the JSON document of a tracing command: {"netcase", "report", "findings"}.
pub(crate) fn write_trace_json<W: std::io::Write, R: serde::Serialize>(
    out: &mut W,
    command: &'static str,
    report: &R,
    findings: &[netcase_model::Finding],
) -> anyhow::Result<()> {
    let doc = serde_json::json!({ "report": report, "findings": findings });
    netcase_report::write_json(out, command, &doc, true)?;
    Ok(())
}

/// While a progress line is shown on the terminal (stderr), Ctrl-C clears it before the
/// process ends, so the shell prompt does not land on a half-written line; the exit status
/// stays the usual one of a process killed by SIGINT.
pub(crate) fn clear_progress_on_interrupt() {
    extern "C" fn on_sigint(_: libc::c_int) {
        const CLEAR: &[u8] = b"\r\x1b[K";
        // SAFETY: write(2), signal(2) and raise(3) are async-signal-safe; CLEAR is a static
        // buffer of CLEAR.len() bytes.
        unsafe {
            libc::write(2, CLEAR.as_ptr().cast(), CLEAR.len());
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::raise(libc::SIGINT);
        }
    }
    // SAFETY: installs a handler that only calls async-signal-safe functions.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
}
