//! The DNS and HTTP transaction tables of `netcase pcap --dns/--http`.

use crate::cmd::pcap::Args;
use netcase_proto::query::{filter_dns, filter_http, sort_dns, sort_http, DnsFilter, DnsSort, HttpFilter, HttpSort};
use netcase_proto::{DnsTxn, HttpTxn};
use netcase_report::utc_time;
use std::io::Write;

fn ms(ns: Option<i64>) -> String {
    ns.map_or_else(|| "-".into(), |n| format!("{:.3}", n as f64 / 1e6))
}

/// Writes the DNS table, filtered by `--name/--server/--slow` and sorted by `--sort`.
pub fn write_dns<W: Write>(out: &mut W, txns: &[DnsTxn], args: &Args) -> anyhow::Result<()> {
    let f = DnsFilter { name: args.name.clone(), server: args.server, slow_ms: args.slow, ..DnsFilter::default() };
    let mut rows = filter_dns(txns, &f);
    let key = match args.sort.as_str() {
        "duration" => DnsSort::ResponseTime,
        "id" => DnsSort::Time,
        s => s.parse::<DnsSort>().map_err(anyhow::Error::msg)?,
    };
    sort_dns(&mut rows, key, args.desc);
    if args.sort == "id" {
        rows.sort_by_key(|t| t.id);
        if args.desc {
            rows.reverse();
        }
    }
    writeln!(out, "\nDNS transactions ({} of {}):", rows.len(), txns.len())?;
    writeln!(
        out,
        "  {:<26}  {:<22} {:<22} {:>6}  {:<5} {:<34} {:<9} {:>9} {:>3}  {:>7} {:>7}  answers",
        "time", "client", "server", "id", "type", "name", "rcode", "rt ms", "try", "q frame", "r frame"
    )?;
    for t in rows {
        let answers: Vec<String> = t.answers.iter().map(|a| format!("{} (ttl {})", a.data, a.ttl)).collect();
        writeln!(
            out,
            "  {:<26}  {:<22} {:<22} 0x{:04x}  {:<5} {:<34} {:<9} {:>9} {:>3}  {:>7} {:>7}  {}",
            utc_time(t.ts_ns),
            t.client.to_string(),
            t.server.to_string(),
            t.id,
            t.qtype_name(),
            t.name.as_deref().unwrap_or("-"),
            if t.unanswered() { "UNANSWERED" } else { t.rcode_name().unwrap_or("-") },
            ms(t.response_time_ns),
            t.attempts(),
            t.query_frame().map_or_else(|| "-".into(), |f| f.to_string()),
            t.response_frame.map_or_else(|| "-".into(), |f| f.to_string()),
            answers.join(", ")
        )?;
    }
    Ok(())
}

/// Writes the HTTP table, filtered by `--name` (Host) `--server/--slow`, sorted by `--sort`.
pub fn write_http<W: Write>(out: &mut W, txns: &[HttpTxn], args: &Args) -> anyhow::Result<()> {
    let f = HttpFilter { host: args.name.clone(), server: args.server, slow_ms: args.slow, ..HttpFilter::default() };
    let mut rows = filter_http(txns, &f);
    let key = match args.sort.as_str() {
        "duration" => HttpSort::Total,
        s => s.parse::<HttpSort>().map_err(anyhow::Error::msg)?,
    };
    sort_http(&mut rows, key, args.desc);
    writeln!(out, "\nHTTP transactions ({} of {}):", rows.len(), txns.len())?;
    writeln!(
        out,
        "  {:<26}  {:>6} {:<22} {:<7} {:<40} {:>6} {:>9} {:>9} {:>9} {:>3}  {:>7} {:>7}",
        "time",
        "stream",
        "server",
        "method",
        "host + uri",
        "status",
        "resp B",
        "ttfb ms",
        "total ms",
        "#",
        "req fr",
        "resp fr"
    )?;
    for t in rows {
        let uri = format!("{}{}", t.host.as_deref().unwrap_or(""), t.uri.as_deref().unwrap_or("-"));
        // Whole in --json; a person reads the start of a long URL.
        let uri = netcase_report::cut(&uri, 100);
        writeln!(
            out,
            "  {:<26}  {:>6} {:<22} {:<7} {:<40} {:>6} {:>9} {:>9} {:>9} {:>3}  {:>7} {:>7}",
            t.request_ts_ns.or(t.response_ts_ns).map_or_else(|| "-".into(), utc_time),
            t.stream.map_or_else(|| "-".into(), |s| s.to_string()),
            t.server.map_or_else(|| "-".into(), |s| s.to_string()),
            t.method.as_deref().unwrap_or("-"),
            uri,
            t.status.map_or_else(|| "-".into(), |s| s.to_string()),
            t.resp_body_bytes,
            ms(t.ttfb_ns),
            ms(t.total_ns),
            t.seq_on_conn,
            t.request_frame.map_or_else(|| "-".into(), |f| f.to_string()),
            t.response_frame.map_or_else(|| "-".into(), |f| f.to_string()),
        )?;
    }
    Ok(())
}
