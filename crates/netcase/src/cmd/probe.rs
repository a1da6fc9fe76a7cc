//! `netcase probe`: active latency measurements (TCP connect, HTTP phases, DNS, TCP path);
//! wires clap to `netcase-probe` and renders its reports.

use anyhow::Context;
use netcase_model::{Finding, Severity};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

const AFTER_HELP: &str = "\
Polite by default: a bounded count, at most 10 probe starts per second (--interval 100ms), one
probe in flight (--concurrency 1), every wait bounded (--timeout). Findings name cases of the
catalogue: latency-methodology (the percentiles), syn-unanswered (retried SYNs: a 1 s or 3 s
jump is a dropped SYN, not latency), http-timing-breakdown (the slow phase),
dns-conntrack-race-5s, resolver-order.

`probe tcp` as root sends raw SYNs (like hping3 -S) and times the SYN-ACK; the local kernel
answers that SYN-ACK with a RST itself, since no socket owns the half-open connection, which is
expected. Without root it times connect(). `probe path` needs root.";

/// Arguments of `netcase probe`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// What to probe.
    #[command(subcommand)]
    pub what: What,
}

/// The probes.
#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// TCP connect latency, SYN → SYN-ACK (raw SYNs as root, like hping3 -S; connect() otherwise).
    Tcp(TcpArgs),
    /// HTTP request phases like curl -w (DNS, connect, TLS, first byte, transfer), keep-alive or not.
    Http(HttpArgs),
    /// DNS lookups as glibc sends them (A and AAAA at once from one socket), per server; the 5 s stall; the resolver order.
    Dns(DnsArgs),
    /// TCP traceroute (root): TTL-limited SYNs, per-hop latency, the hop where delay or loss starts.
    Path(PathArgs),
}

/// Options every probe has.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Probes to send.
    #[arg(short = 'c', long, value_name = "N")]
    pub count: Option<u32>,
    /// Gap between probe starts, over all concurrent probes (`100ms`, `1s`, `0.5`).
    #[arg(short = 'i', long, default_value = "100ms", value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Duration,
    /// Probes in flight at once.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub concurrency: u32,
    /// Run inside this network namespace (`ip netns` name).
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Lowest severity that makes the exit status 1.
    #[arg(long, default_value = "warning", value_name = "SEVERITY")]
    pub fail_on: Severity,
}

/// Arguments of `netcase probe tcp`.
#[derive(Debug, clap::Args)]
pub struct TcpArgs {
    /// The target, HOST:PORT.
    pub target: String,
    /// How long a probe waits for an answer, SYN retries (at 1 s and 3 s) included.
    #[arg(long, default_value = "4s", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
    /// `syn` (raw SYNs, root, IPv4) or `connect`; by default `syn` as root, else `connect`.
    #[arg(long, value_name = "METHOD", value_parser = ["syn", "connect"])]
    pub method: Option<String>,
    /// Count, pacing, namespace and output options (default count 10).
    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `netcase probe http`.
#[derive(Debug, clap::Args)]
pub struct HttpArgs {
    /// The URL (http:// or https://).
    pub url: String,
    /// A new connection for each request (default: HTTP/1.1 keep-alive, one connection per
    /// --concurrency slot).
    #[arg(long)]
    pub no_keepalive: bool,
    /// Run the requests both ways, keep-alive and a new connection each time, and compare.
    #[arg(long, conflicts_with = "no_keepalive")]
    pub compare: bool,
    /// Send HEAD instead of GET.
    #[arg(long)]
    pub head: bool,
    /// Do not verify the server's certificate.
    #[arg(short = 'k', long, conflicts_with = "cacert")]
    pub insecure: bool,
    /// Verify the server against the certificates in this PEM file (default: the system's).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// Each connect, read and write waits at most this long.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
    /// A phase whose median reaches this is a warning.
    #[arg(long, default_value = "200ms", value_name = "DURATION", value_parser = parse_duration)]
    pub slow: Duration,
    /// Count, pacing, namespace and output options (default count 10).
    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `netcase probe dns`.
#[derive(Debug, clap::Args)]
pub struct DnsArgs {
    /// The name to look up.
    pub name: String,
    /// A server to ask (IP or IP:PORT; repeatable); default: resolv.conf's nameservers.
    #[arg(long, value_name = "IP")]
    pub server: Vec<String>,
    /// How A and AAAA are sent: parallel (one socket, glibc's default), single-request,
    /// single-request-reopen (repeatable); default: what resolv.conf's options select.
    #[arg(long, value_name = "MODE", value_parser = ["parallel", "single-request", "single-request-reopen"])]
    pub mode: Vec<String>,
    /// Wait before an unanswered query is sent again (default: resolv.conf's timeout, 5 s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Sends of a query at most (default: resolv.conf's attempts, 2).
    #[arg(long, value_name = "N")]
    pub attempts: Option<u32>,
    /// Do not follow stalled parallel lookups with single-request-reopen ones.
    #[arg(long)]
    pub no_compare: bool,
    /// Count, pacing, namespace and output options (default count 3 lookups per server and mode).
    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `netcase probe path`.
#[derive(Debug, clap::Args)]
pub struct PathArgs {
    /// The target, HOST:PORT (IPv4).
    pub target: String,
    /// The last TTL tried.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub max_hops: u8,
    /// SYNs per hop (-c sets the same).
    #[arg(short = 'q', long, value_name = "N")]
    pub queries: Option<u32>,
    /// Wait for each SYN's answer.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
    /// A round-trip step at least this large (and half the path's) names the hop where the delay starts.
    #[arg(long, default_value = "10ms", value_name = "DURATION", value_parser = parse_duration)]
    pub min_step: Duration,
    /// Count, pacing, namespace and output options (--concurrency is not used: one SYN at a time).
    #[command(flatten)]
    pub common: Common,
}

/// `100ms`, `1.5s`, `2` (seconds).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("'{s}' is not a duration (100ms, 1s, 0.5)"))?;
    if !v.is_finite() || v < 0.0 || v * scale > 3600.0 {
        return Err(format!("'{s}' is out of range (0 to 3600 s)"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// Runs `netcase probe`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Tcp(a) => run_tcp(a),
        What::Http(a) => run_http(a),
        What::Dns(a) => run_dns(a),
        What::Path(a) => run_path(a),
    }
}

fn setup(c: &Common) -> anyhow::Result<()> {
    if c.concurrency == 0 || c.concurrency > 1000 {
        anyhow::bail!("--concurrency must be from 1 to 1000");
    }
    if let Some(ns) = &c.netns {
        netcase_probe::enter_netns(ns)?;
    }
    Ok(())
}

/// Writes the JSON document or the text, then the summary line; returns the exit code.
fn finish<R: serde::Serialize>(
    c: &Common,
    kind: &'static str,
    report: &R,
    findings: &[Finding],
    text: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if c.json {
        let doc = serde_json::json!({ "probe": kind, "report": report, "findings": findings });
        netcase_report::write_json(&mut out, "probe", &doc, true)?;
    } else {
        text(&mut out)?;
        writeln!(out)?;
        netcase_report::write_findings_text(&mut out, findings)?;
    }
    out.flush()?;
    Ok(ExitCode::from(netcase_report::exit_code_for(findings, c.fail_on)))
}

fn run_tcp(a: TcpArgs) -> anyhow::Result<ExitCode> {
    setup(&a.common)?;
    let target = netcase_probe::resolve_target(&a.target, None)?;
    let method = match a.method.as_deref() {
        Some("syn") => Some(netcase_probe::tcp::Method::Syn),
        Some("connect") => Some(netcase_probe::tcp::Method::Connect),
        _ => None,
    };
    let opts = netcase_probe::tcp::TcpOptions {
        target,
        count: a.common.count.unwrap_or(10),
        interval: a.common.interval,
        concurrency: a.common.concurrency,
        timeout: a.timeout,
        method,
    };
    let r = netcase_probe::tcp::run(&opts).with_context(|| format!("probe tcp {target}"))?;
    let f = netcase_probe::tcp::findings(&r);
    finish(&a.common, "tcp", &r, &f, |w| netcase_report::probe::write_tcp_text(w, &r))
}

fn run_http(a: HttpArgs) -> anyhow::Result<ExitCode> {
    use netcase_probe::http::{self, HttpOptions, Url, Verify};
    setup(&a.common)?;
    let url = Url::parse(&a.url)?;
    let verify = match (a.insecure, a.cacert) {
        (true, _) => Verify::Insecure,
        (false, Some(p)) => Verify::CaFile(p),
        (false, None) => Verify::System,
    };
    let opts = HttpOptions {
        url,
        count: a.common.count.unwrap_or(10),
        interval: a.common.interval,
        concurrency: a.common.concurrency,
        timeout: a.timeout,
        keepalive: !a.no_keepalive,
        verify,
        head: a.head,
        slow: a.slow,
    };
    let r = http::run(&opts).with_context(|| format!("probe http {}", a.url))?;
    let mut f = http::findings(&r, a.slow);
    let fresh = if a.compare {
        let o = HttpOptions { keepalive: false, ..opts.clone() };
        let fresh = http::run(&o).with_context(|| format!("probe http {} (new connections)", a.url))?;
        f.extend(http::compare_findings(&r, &fresh));
        Finding::settle(&mut f);
        Some(fresh)
    } else {
        None
    };
    if a.common.json {
        if let Some(fresh) = &fresh {
            let mut out = std::io::stdout().lock();
            let doc = serde_json::json!({ "probe": "http", "report": &r, "new_connections": fresh, "findings": &f });
            netcase_report::write_json(&mut out, "probe", &doc, true)?;
            out.flush()?;
            return Ok(ExitCode::from(netcase_report::exit_code_for(&f, a.common.fail_on)));
        }
    }
    finish(&a.common, "http", &r, &f, |w| {
        netcase_report::probe::write_http_text(w, &r)?;
        if let Some(fresh) = &fresh {
            writeln!(w)?;
            netcase_report::probe::write_http_text(w, fresh)?;
        }
        Ok(())
    })
}

fn run_dns(a: DnsArgs) -> anyhow::Result<ExitCode> {
    use netcase_probe::dns::{self, DnsOptions, Mode};
    setup(&a.common)?;
    let servers = if a.server.is_empty() {
        None
    } else {
        let mut v = Vec::new();
        for s in &a.server {
            v.push(netcase_probe::resolve_target(s, Some(53))?);
        }
        Some(v)
    };
    let modes = if a.mode.is_empty() { None } else { Some(a.mode.iter().filter_map(|m| Mode::parse(m)).collect()) };
    let opts = DnsOptions {
        name: a.name.clone(),
        servers,
        count: a.common.count.unwrap_or(3),
        interval: a.common.interval,
        concurrency: a.common.concurrency,
        timeout: a.timeout,
        attempts: a.attempts,
        modes,
        compare: !a.no_compare,
        netns: a.common.netns.clone(),
    };
    let r = dns::run(&opts).with_context(|| format!("probe dns {}", a.name))?;
    let f = dns::findings(&r);
    finish(&a.common, "dns", &r, &f, |w| netcase_report::probe::write_dns_text(w, &r))
}

fn run_path(a: PathArgs) -> anyhow::Result<ExitCode> {
    use netcase_probe::path::{self, PathOptions};
    setup(&a.common)?;
    let target = match netcase_probe::resolve_target(&a.target, None)? {
        std::net::SocketAddr::V4(t) => t,
        std::net::SocketAddr::V6(_) => anyhow::bail!("probe path is IPv4 only"),
    };
    let opts = PathOptions {
        target,
        max_hops: a.max_hops,
        queries: a.queries.or(a.common.count).unwrap_or(3),
        interval: a.common.interval,
        timeout: a.timeout,
        min_step: a.min_step,
    };
    let r = path::run(&opts).with_context(|| format!("probe path {target}"))?;
    let f = path::findings(&r);
    finish(&a.common, "path", &r, &f, |w| netcase_report::probe::write_path_text(w, &r, opts.queries))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("2h").is_err());
    }
}
