//! The text reports of `netcase probe` (the command holds the options and the wiring).

use netcase_probe::stats::{Bucket, Percentiles};
use std::io::{self, Write};

/// The text of `netcase probe tcp`: percentiles, the histogram, the summary line.
pub fn write_tcp_text(w: &mut dyn Write, r: &netcase_probe::tcp::TcpReport) -> io::Result<()> {
    writeln!(
        w,
        "probe tcp {} ({}, {} probes, concurrency {}, interval {:.0} ms)",
        r.target,
        r.method.as_str(),
        r.count,
        r.concurrency,
        r.interval_ms
    )?;
    if let Some(l) = &r.latency {
        write_percentiles(w, "latency", l)?;
    }
    if let (Some(rtt), true) = (&r.rtt, r.retried > 0) {
        write_percentiles(w, "first-SYN rtt", rtt)?;
    }
    write_histogram(w, &r.histogram)?;
    let p = r.latency.as_ref().map_or_else(
        || "no answer".to_owned(),
        |l| format!("p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms", l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms),
    );
    writeln!(
        w,
        "summary: tcp {}: {}/{} answered ({} open, {} reset), {}; {} timeouts, {} retried SYNs",
        r.target,
        r.open + r.reset,
        r.sent,
        r.open,
        r.reset,
        p,
        r.timeouts,
        r.retried
    )
}

/// The text of `netcase probe dns`: per server and mode, the resolver order, the summary line.
pub fn write_dns_text(w: &mut dyn Write, r: &netcase_probe::dns::DnsReport) -> io::Result<()> {
    writeln!(w, "probe dns {} (A + AAAA; resend after {:.0} ms, {} sends at most)", r.name, r.timeout_ms, r.attempts)?;
    writeln!(
        w,
        "  {:<22} {:<22} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "server", "mode", "lookups", "answered", "stalled", "p50 ms", "p90 ms", "max ms"
    )?;
    for s in &r.servers {
        let [p50, p90, max] = s.latency.map_or_else(
            || ["-".to_owned(), "-".to_owned(), "-".to_owned()],
            |l| [l.p50_ms, l.p90_ms, l.max_ms].map(|v| format!("{v:.1}")),
        );
        writeln!(
            w,
            "  {:<22} {:<22} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9}",
            s.server.to_string(),
            s.mode.as_str(),
            s.lookups,
            s.answered,
            s.stalled,
            p50,
            p90,
            max
        )?;
    }
    let o = &r.resolver;
    let hosts: Vec<String> = o.hosts_file.iter().map(ToString::to_string).collect();
    writeln!(
        w,
        "  resolver order: hosts: {}{}; {} in the hosts file: {}",
        o.order.join(" "),
        if o.nsswitch_present { "" } else { " (no nsswitch.conf: glibc's default)" },
        r.name,
        if hosts.is_empty() { "no".to_owned() } else { hosts.join(", ") }
    )?;
    let answered: u64 = r.servers.iter().map(|s| s.answered).sum();
    let lookups: u64 = r.servers.iter().map(|s| s.lookups).sum();
    let stalled: u64 = r.servers.iter().map(|s| s.stalled).sum();
    let worst = r.servers.iter().filter_map(|s| s.latency.map(|l| l.max_ms)).fold(0.0, f64::max);
    writeln!(
            w,
            "summary: dns {}: {answered}/{lookups} lookups answered, {stalled} stalled, slowest {worst:.1} ms, resolver order {}",
            r.name,
            o.order.join(" ")
        )
}

/// The text of `netcase probe path`: per hop, where delay and loss start, the summary line.
pub fn write_path_text(w: &mut dyn Write, r: &netcase_probe::path::PathReport, queries: u32) -> io::Result<()> {
    writeln!(w, "probe path {} (TCP SYN, {} per hop)", r.target, queries)?;
    writeln!(w, "  {:>3}  {:<16} {:>6} {:>9} {:>9} {:>9}", "ttl", "address", "loss", "min ms", "p50 ms", "max ms")?;
    for h in &r.hops {
        let addr = h.addr.map_or_else(|| "*".to_owned(), |a| a.to_string());
        let [min, p50, max] = h.rtt.map_or_else(
            || ["*".to_owned(), "*".to_owned(), "*".to_owned()],
            |p| [p.min_ms, p.p50_ms, p.max_ms].map(|v| format!("{v:.2}")),
        );
        let unreachable = h.unreachable.map(|c| format!("  !unreachable (ICMP code {c})"));
        let mark = match (h.target, r.delay_hop == Some(h.ttl), r.loss_hop == Some(h.ttl)) {
            _ if unreachable.is_some() => unreachable.as_deref().unwrap_or(""),
            (_, true, _) => "  <- delay starts here",
            (_, _, true) => "  <- loss starts here",
            (true, _, _) => "  (target)",
            _ => "",
        };
        writeln!(w, "  {:>3}  {:<16} {:>5.0}% {:>9} {:>9} {:>9}{mark}", h.ttl, addr, h.loss_pct, min, p50, max)?;
    }
    let delay = match (r.delay_hop, r.delay_added_ms) {
        (Some(t), Some(ms)) => format!("delay starts at hop {t} (+{ms:.1} ms)"),
        _ => "no hop adds a marked delay".to_owned(),
    };
    let loss = r.loss_hop.map_or_else(|| "no persistent loss".to_owned(), |t| format!("loss from hop {t}"));
    writeln!(
        w,
        "summary: path {}: {} hops, target {}, {delay}, {loss}",
        r.target,
        r.hops.len(),
        if r.reached { "reached" } else { "not reached" }
    )
}

/// The text of `netcase probe http`: phases, the distribution, the histogram, the summary line.
pub fn write_http_text(w: &mut dyn Write, r: &netcase_probe::http::HttpReport) -> io::Result<()> {
    {
        writeln!(
            w,
            "probe http {} ({}; {} requests, concurrency {}, {} connections)",
            r.url,
            if r.keepalive { "keep-alive" } else { "new connection each" },
            r.count,
            r.concurrency,
            r.connections
        )?;
        writeln!(w, "  {:<10} {:>9} {:>9} {:>9} {:>9} {:>9}", "phase ms", "min", "p50", "p90", "p99", "max")?;
        for (name, p) in [
            ("dns", &r.phases.dns),
            ("connect", &r.phases.connect),
            ("tls", &r.phases.tls),
            ("ttfb", &r.phases.ttfb),
            ("transfer", &r.phases.transfer),
            ("total", &r.phases.total),
        ] {
            if let Some(p) = p {
                writeln!(
                    w,
                    "  {name:<10} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    p.min_ms, p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms
                )?;
            }
        }
        if let Some(t) = &r.phases.total {
            writeln!(
                w,
                "  latency distribution  50% {:.2} ms  75% {:.2} ms  90% {:.2} ms  99% {:.2} ms",
                t.p50_ms, t.p75_ms, t.p90_ms, t.p99_ms
            )?;
        }
        write_histogram(w, &r.histogram)?;
        let statuses: Vec<String> = r.statuses.iter().map(|(c, n)| format!("{n}x{c}")).collect();
        let total = r.phases.total.as_ref().map_or_else(
            || "no response".to_owned(),
            |t| format!("total p50 {:.1} ms p99 {:.1} ms", t.p50_ms, t.p99_ms),
        );
        writeln!(
            w,
            "summary: http {}: {}/{} ok ({}), {}, slowest phase {}, {:.1} requests/s",
            r.url,
            r.ok,
            r.count,
            if statuses.is_empty() { "no status".to_owned() } else { statuses.join(" ") },
            total,
            r.slow_phase.as_deref().unwrap_or("-"),
            r.requests_per_s
        )
    }
}

/// One line of percentiles.
fn write_percentiles(w: &mut dyn Write, what: &str, p: &Percentiles) -> io::Result<()> {
    writeln!(
        w,
        "  {what:<14} min {:.2}  p50 {:.2}  p75 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2} ms  (mean {:.2}, stdev {:.2}, n {})",
        p.min_ms, p.p50_ms, p.p75_ms, p.p90_ms, p.p99_ms, p.max_ms, p.mean_ms, p.stdev_ms, p.n
    )
}

/// A histogram of latencies, wrk-style.
fn write_histogram(w: &mut dyn Write, h: &[Bucket]) -> io::Result<()> {
    let total: u64 = h.iter().map(|b| b.count).sum();
    if total == 0 {
        return Ok(());
    }
    writeln!(w, "  histogram")?;
    for b in h {
        let label = b.le_ms.map_or_else(|| "> 10 s".to_owned(), |le| format!("<= {le} ms"));
        let bar = "#".repeat(((b.count * 40).div_ceil(total)) as usize);
        writeln!(w, "    {label:>12} {:>6}  {bar}", b.count)?;
    }
    Ok(())
}
