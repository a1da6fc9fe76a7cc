//! `netcase pcap FILE`: analyse a capture and name what went wrong.

use anyhow::Context;
use netcase_analysis::{self as pipeline, Analysis, FlowRecords, Options};
use netcase_flow::{ConnEnd, ConnSummary, Side, UdpSummary};
use netcase_model::Severity;
use netcase_report::count;
use netcase_report::json::Record;
use netcase_report::{human_bytes, utc_time, write_findings_text};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `netcase pcap`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  netcase pcap trace.pcapng                 summary, top flows and findings
  netcase pcap trace.pcap --json | jq .findings
  netcase pcap trace.pcap --events          one JSON line per TCP frame with analysis flags
  netcase pcap trace.pcap --conv            conversation table (like tshark -z conv,tcp)
  netcase pcap trace.pcap --dns --slow 100  DNS transactions slower than 100 ms
  netcase pcap trace.pcap --dns --name '*.example.com' --sort ttl
  netcase pcap trace.pcap --http            HTTP transactions with timings
  tcpdump -w - -i eth0 | netcase pcap -     read from stdin

Damaged files: the readable part is analysed and the damage is reported with its file offset
and frame number; the exit code is 2 only when nothing at all could be read.")]
pub struct Args {
    /// The capture: pcap or pcapng, optionally gzip-compressed; `-` reads stdin.
    pub file: PathBuf,
    /// Print one JSON document: {"netcase", "capture", "flows", "findings", "dns", "http"}.
    #[arg(long, conflicts_with_all = ["events", "conv"])]
    pub json: bool,
    /// Print JSON lines, one per TCP frame with at least one tcp.analysis flag:
    /// {"frame": N, "stream": S, "flags": [...]}.
    #[arg(long)]
    pub events: bool,
    /// Print only the TCP conversation table (like `tshark -q -z conv,tcp`).
    #[arg(long)]
    pub conv: bool,
    /// Print the DNS transactions table.
    #[arg(long)]
    pub dns: bool,
    /// Print the HTTP transactions table.
    #[arg(long)]
    pub http: bool,
    /// DNS: only names matching PATTERN: `google.com` matches it and its subdomains, `*` is a
    /// wildcard (`*google*`); case-insensitive. HTTP: the same on the Host header.
    #[arg(long, value_name = "PATTERN")]
    pub name: Option<String>,
    /// DNS/HTTP: only this server address.
    #[arg(long, value_name = "IP")]
    pub server: Option<std::net::IpAddr>,
    /// DNS/HTTP: only transactions slower than MS milliseconds (or unanswered).
    #[arg(long, value_name = "MS")]
    pub slow: Option<f64>,
    /// DNS/HTTP: sort key. Both: time (default), duration. DNS: rtt, ttl, answers, name, id,
    /// attempts. HTTP: total, ttfb, size, status.
    #[arg(long, value_name = "KEY", default_value = "time")]
    pub sort: String,
    /// Sort descending.
    #[arg(long)]
    pub desc: bool,
    /// How many flows the text summary lists.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Exit 1 when a finding is at least this severe (info, warning, error).
    #[arg(long, default_value = "warning")]
    pub fail_on: Severity,
    /// Skip DNS/HTTP/TLS transactions (faster).
    #[arg(long)]
    pub no_proto: bool,
    /// Analyse frames captured more than once as separate packets, as tshark does. By default
    /// a copy of an earlier frame (same IP ID, TCP seq/ack/flags/length, payload, within a
    /// short window) is counted and left out, so it does not read as a retransmission.
    #[arg(long)]
    pub keep_duplicates: bool,
}

/// The `--sort` keys each table takes, checked before the capture is read.
fn check_sort(args: &Args) -> anyhow::Result<()> {
    const DNS: &[&str] =
        &["time", "duration", "rtt", "response-time", "slow", "ttl", "answers", "name", "id", "attempts"];
    const HTTP: &[&str] = &["time", "duration", "total", "slow", "ttfb", "first-byte", "size", "status"];
    let k = args.sort.as_str();
    let bad = |table: &str, keys: &[&str]| {
        anyhow::anyhow!("invalid value '{k}' for '--sort' with --{table}: one of {}", keys.join(", "))
    };
    if args.dns && !DNS.contains(&k) {
        return Err(bad("dns", DNS));
    }
    if args.http && !HTTP.contains(&k) {
        return Err(bad("http", HTTP));
    }
    if !args.dns && !args.http && !DNS.contains(&k) && !HTTP.contains(&k) {
        anyhow::bail!("invalid value '{k}' for '--sort' (it orders the --dns and --http tables)");
    }
    Ok(())
}

/// Runs `netcase pcap`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    check_sort(&args)?;
    pipeline::tune_allocator();
    // Not locked: the flow records are written from the side thread. Standard output as a
    // plain file where it can be: std's line buffering would scan every byte for a newline.
    let sink: Box<dyn Write + Send> = match netcase_report::raw_stdout() {
        Some(f) => Box::new(f),
        None => Box::new(io::stdout()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    let want_proto = !args.no_proto && !args.events;
    let opts = Options {
        events: args.events,
        proto: want_proto,
        rules: !args.events,
        keep_duplicates: args.keep_duplicates,
        single_thread: false,
    };
    let show_progress = io::stderr().is_terminal() && !args.events;
    if show_progress {
        super::clear_progress_on_interrupt();
    }
    // The file's size, for a percentage (not for stdin; for gzip the offset counts inflated
    // bytes, so no percentage either).
    let gz = args.file.extension().is_some_and(|e| e == "gz");
    let total = (args.file.as_os_str() != "-" && !gz)
        .then(|| std::fs::metadata(&args.file).ok().map(|m| m.len()))
        .flatten()
        .filter(|n| *n > 0);
    let mut progress = |info: &netcase_capture::CaptureInfo, offset: u64| {
        if show_progress {
            match total {
                Some(t) => eprint!(
                    "\r\x1b[K{:.0}% of {}: {} frames read ",
                    (offset as f64 * 100.0 / t as f64).min(100.0),
                    human_bytes(t),
                    info.frames
                ),
                None => eprint!("\r\x1b[K{} frames, {} read ", info.frames, human_bytes(offset)),
            }
        }
    };

    let analysis;
    if args.json {
        let mut rec = JsonRecords {
            out: &mut out,
            first: true,
            err: None,
            scratch: Vec::with_capacity(1024),
            proto_written: false,
        };
        write!(rec.out, "{{\"netcase\":")?;
        serde_json::to_writer(&mut *rec.out, &netcase_report::envelope("pcap"))?;
        write!(rec.out, ",\"flows\":[")?;
        analysis = pipeline::analyse_file::<io::Sink, _>(&args.file, opts, None, &mut rec, &mut progress)
            .with_context(|| format!("{}", args.file.display()))?;
        if let Some(e) = rec.err.take() {
            return Err(e.into());
        }
        if !rec.proto_written {
            write!(out, "]")?;
        }
        let t = std::time::Instant::now();
        write_json_tail(&mut out, &args, &analysis)?;
        if pipeline::profiling() {
            eprintln!("profile: json tail {:?}", t.elapsed());
        }
    } else if args.events {
        // JSON lines: the envelope first, then one line per flagged frame.
        write!(out, "{{\"netcase\":")?;
        serde_json::to_writer(&mut out, &netcase_report::envelope("pcap-events"))?;
        writeln!(out, "}}")?;
        let mut rec = NoRecords;
        analysis = pipeline::analyse_file(&args.file, opts, Some(&mut out), &mut rec, &mut progress)
            .with_context(|| format!("{}", args.file.display()))?;
        if let Some(e) = analysis.events_error {
            return Err(e.into());
        }
    } else {
        let mut rec = TextRecords { top: Vec::new(), n_top: args.top, all: args.conv.then(Vec::new), open: 0, udp: 0 };
        analysis = pipeline::analyse_file::<io::Sink, _>(&args.file, opts, None, &mut rec, &mut progress)
            .with_context(|| format!("{}", args.file.display()))?;
        if show_progress {
            eprint!("\r\x1b[K");
        }
        write_text(&mut out, &args, &analysis, &mut rec)?;
    }
    if show_progress && args.json {
        eprint!("\r\x1b[K");
    }
    out.flush()?;
    report_damage(&args, &analysis);
    if analysis.info.frames == 0 && analysis.damage.is_some() {
        return Ok(ExitCode::from(crate::EXIT_ERROR));
    }
    if analysis.info.frames > 0 && analysis.analysable_frames == 0 {
        // Nothing netcase reads (IP or ARP) was in the file: "no findings" would be a lie.
        eprintln!(
            "netcase: {}: none of the {} could be analysed: {}",
            args.file.display(),
            count(analysis.info.frames, "frame", "frames"),
            not_analysed_text(&analysis).unwrap_or_else(|| "no IP or ARP frames".into())
        );
        return Ok(ExitCode::from(crate::EXIT_ERROR));
    }
    Ok(ExitCode::from(netcase_report::exit_code_for(&analysis.findings, args.fail_on)))
}

fn report_damage(args: &Args, a: &Analysis) {
    if let Some(d) = &a.damage {
        eprintln!(
            "netcase: {}: {d}; the {} before it analysed, the rest of the file skipped",
            args.file.display(),
            count(a.info.frames, "frame", "frames")
        );
    }
}

struct NoRecords;
impl FlowRecords for NoRecords {
    fn tcp(&mut self, _c: &ConnSummary) {}
    fn udp(&mut self, _u: &UdpSummary) {}
}

struct JsonRecords<'a, W: Write> {
    out: &'a mut W,
    first: bool,
    err: Option<io::Error>,
    scratch: Vec<u8>,
    /// The flows array was closed and `dns`, `http`, `proto_stats` written (while the rules ran).
    proto_written: bool,
}

impl<W: Write> JsonRecords<'_, W> {
    fn write<T: serde::Serialize>(&mut self, proto: &str, v: &T) {
        if self.err.is_some() {
            return;
        }
        self.scratch.clear();
        if let Err(e) = serde_json::to_writer(&mut self.scratch, v) {
            self.err = Some(io::Error::other(e));
            return;
        }
        let body = self.scratch.get(1..).unwrap_or(&[]);
        let sep = if self.first { "" } else { "," };
        self.first = false;
        let r = write!(self.out, "{sep}{{\"proto\":\"{proto}\",").and_then(|()| self.out.write_all(body));
        if let Err(e) = r {
            self.err = Some(e);
        }
    }
}

impl<W: Write> FlowRecords for JsonRecords<'_, W> {
    fn tcp(&mut self, c: &ConnSummary) {
        if self.err.is_some() {
            return;
        }
        self.scratch.clear();
        if !self.first {
            self.scratch.push(b',');
        }
        self.first = false;
        netcase_report::json::tcp_record(&mut self.scratch, c);
        if let Err(e) = self.out.write_all(&self.scratch) {
            self.err = Some(e);
        }
    }
    fn udp(&mut self, u: &UdpSummary) {
        self.write("udp", u);
    }
    fn proto(&mut self, p: &netcase_proto::ProtoOutput) {
        if self.err.is_some() {
            return;
        }
        if let Err(e) = write_proto_json(&mut *self.out, p) {
            self.err = Some(e);
        }
        self.proto_written = true;
    }
}

/// `],"dns":[...],"http":[...],"proto_stats":{...}`: the end of the flows array and the
/// transactions (written after the flows, before `capture` and `findings`).
fn write_proto_json<W: Write>(out: &mut W, p: &netcase_proto::ProtoOutput) -> io::Result<()> {
    write!(out, "],\"dns\":")?;
    write_json_array(out, &p.dns)?;
    write!(out, ",\"http\":")?;
    write_json_array(out, &p.http)?;
    write!(out, ",\"proto_stats\":")?;
    serde_json::to_writer(&mut *out, &p.stats)?;
    Ok(())
}

/// Items per piece of a JSON array serialised at a time.
const JSON_CHUNK: usize = 1024;

/// Writes `items` as a JSON array, serialising on two threads: a helper turns every other
/// piece of `JSON_CHUNK` items into bytes while this thread does the rest and writes all in
/// order. Two pieces at most wait, so memory stays small however long the array.
fn write_json_array<W: Write, T: Record + Sync>(out: &mut W, items: &[T]) -> io::Result<()> {
    fn piece<T: Record>(buf: &mut Vec<u8>, items: &[T]) -> io::Result<()> {
        buf.clear();
        for (i, t) in items.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            t.write_json(buf);
        }
        Ok(())
    }
    let chunks: Vec<&[T]> = items.chunks(JSON_CHUNK).collect();
    out.write_all(b"[")?;
    if chunks.len() < 4 {
        let mut buf = Vec::new();
        for (k, c) in chunks.iter().enumerate() {
            piece(&mut buf, c)?;
            if k > 0 {
                out.write_all(b",")?;
            }
            out.write_all(&buf)?;
        }
        return out.write_all(b"]");
    }
    std::thread::scope(|s| {
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(1);
        let (free_tx, free_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let _ = free_tx.send(Vec::new());
        let _ = free_tx.send(Vec::new());
        let odd: Vec<&[T]> = chunks.iter().skip(1).step_by(2).copied().collect();
        s.spawn(move || {
            for c in odd {
                let Ok(mut buf) = free_rx.recv() else { return };
                let r = piece(&mut buf, c).map(|()| buf);
                if done_tx.send(r).is_err() {
                    return;
                }
            }
        });
        let mut mine = Vec::new();
        for (k, c) in chunks.iter().enumerate() {
            if k > 0 {
                out.write_all(b",")?;
            }
            if k % 2 == 0 {
                piece(&mut mine, c)?;
                out.write_all(&mine)?;
            } else {
                let buf = done_rx.recv().map_err(|_| io::Error::other("JSON writer thread ended early"))??;
                out.write_all(&buf)?;
                let _ = free_tx.send(buf);
            }
        }
        out.write_all(b"]")
    })
}

struct TextRecords {
    top: Vec<ConnSummary>,
    n_top: usize,
    all: Option<Vec<ConnSummary>>,
    open: u64,
    udp: u64,
}

impl FlowRecords for TextRecords {
    fn tcp(&mut self, c: &ConnSummary) {
        if matches!(c.end, ConnEnd::Open) {
            self.open += 1;
        }
        if let Some(all) = self.all.as_mut() {
            all.push(c.clone());
        }
        if self.n_top == 0 {
            return;
        }
        let bytes = c.ab.bytes + c.ba.bytes;
        if self.top.len() < self.n_top {
            self.top.push(c.clone());
        } else if let Some((i, min)) =
            self.top.iter().enumerate().min_by_key(|(_, t)| (t.ab.bytes + t.ba.bytes, std::cmp::Reverse(t.stream)))
        {
            if bytes > min.ab.bytes + min.ba.bytes {
                if let Some(slot) = self.top.get_mut(i) {
                    *slot = c.clone();
                }
            }
        }
    }
    fn udp(&mut self, _u: &UdpSummary) {
        self.udp += 1;
    }
}

fn capture_json(args: &Args, a: &Analysis) -> serde_json::Value {
    let links: Vec<String> = {
        let mut v: Vec<String> = a.info.interfaces.iter().map(|i| i.link.to_string()).collect();
        v.dedup();
        v
    };
    serde_json::json!({
        "file": args.file.display().to_string(),
        "format": a.info.format.to_string(),
        "gzip": a.info.gzip,
        "link_types": links,
        "interfaces": a.info.interfaces.len(),
        "packets": a.info.frames,
        "captured_bytes": a.info.captured_bytes,
        "wire_bytes": a.info.wire_bytes,
        "sliced_frames": a.info.sliced_frames,
        "first_ts": a.info.first_ts_ns.map(|t| t as f64 / 1e9),
        "last_ts": a.info.last_ts_ns.map(|t| t as f64 / 1e9),
        "duration_s": duration_s(a),
        "tcp_frames": a.tracker.tcp_frames,
        "udp_frames": a.tracker.udp_frames,
        "tcp_streams": a.tracker.tcp_streams,
        "udp_streams": a.tracker.udp_streams,
        "decode_errors": a.decode_errors,
        "ip_fragments": a.ip_fragments,
        "non_ip_frames": a.non_ip_frames,
        "analysable_frames": a.analysable_frames,
        "unknown_link_types": a.unknown_links.iter().map(|(l, n)| serde_json::json!({"link_type": l.as_u32(), "frames": n})).collect::<Vec<_>>(),
        "non_ip_types": a.non_ip_types.iter().map(|(t, n)| serde_json::json!({"ethertype": t, "frames": n})).collect::<Vec<_>>(),
        "duplicate_frames": a.artefacts.dups.copies,
        "padded_acks": a.artefacts.padded_acks,
        "ip_reassembled": a.frag.stats.reassembled,
        "ip_incomplete": a.frag.incomplete_total,
        "time_steps_back": a.artefacts.time.backwards_notable,
        "time_jumps": a.artefacts.time.jumps,
        "active_span_s": a.artefacts.time.span_ns as f64 / 1e9,
        "skipped_blocks": a.info.skipped_blocks,
        "damage": a.damage.as_ref().map(|d| serde_json::json!({
            "kind": d.kind.as_str(), "offset": d.offset, "frame": d.frame, "message": d.message,
        })),
    })
}

/// What could not be analysed, for the text summary and the error: link types not decoded and
/// non-IP frames by EtherType.
fn not_analysed_text(a: &Analysis) -> Option<String> {
    let mut parts = Vec::new();
    for (link, n) in &a.unknown_links {
        parts.push(format!("{} of link type {} (not decoded)", count(*n, "frame", "frames"), link.as_u32()));
    }
    let non_ip: u64 = a.non_ip_types.iter().map(|e| e.1).sum();
    if non_ip > 0 {
        let types: Vec<String> = a.non_ip_types.iter().map(|(t, n)| format!("{} ×{n}", ethertype_name(*t))).collect();
        parts.push(format!("{} ({})", count(non_ip, "non-IP frame", "non-IP frames"), types.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn ethertype_name(t: u16) -> String {
    match t {
        0x0806 => "ARP".into(),
        0x88CC => "LLDP".into(),
        0x8863 | 0x8864 => "PPPoE".into(),
        0x8847 | 0x8848 => "MPLS".into(),
        0x88E5 => "MACsec".into(),
        0x8035 => "RARP".into(),
        0x0000..=0x05DC => "802.3/LLC".into(),
        t => format!("EtherType 0x{t:04x}"),
    }
}

fn duration_s(a: &Analysis) -> f64 {
    match (a.info.first_ts_ns, a.info.last_ts_ns) {
        (Some(f), Some(l)) => (l - f) as f64 / 1e9,
        _ => 0.0,
    }
}

fn write_json_tail<W: Write>(out: &mut W, args: &Args, a: &Analysis) -> anyhow::Result<()> {
    // `dns`, `http` and `proto_stats` were written before, right after the flows
    // ([`JsonRecords::proto`]); JSON object members have no order.
    write!(out, ",\"capture\":")?;
    serde_json::to_writer(&mut *out, &capture_json(args, a))?;
    write!(out, ",\"findings\":")?;
    serde_json::to_writer(&mut *out, &a.findings)?;
    writeln!(out, "}}")?;
    Ok(())
}

fn end_text(c: &ConnSummary) -> String {
    let side = |s: Side| if s == Side::A { "client" } else { "server" };
    match c.end {
        ConnEnd::Open => "open".into(),
        ConnEnd::HalfClosed { by } => format!("FIN by {} only", side(by)),
        ConnEnd::Closed { initiator } => format!("closed by {}", side(initiator)),
        ConnEnd::Reset { by, .. } => format!("RST by {}", side(by)),
    }
}

fn write_text<W: Write>(out: &mut W, args: &Args, a: &Analysis, rec: &mut TextRecords) -> anyhow::Result<()> {
    if let Some(all) = rec.all.as_mut() {
        return write_conv(out, a, all);
    }
    let i = &a.info;
    let mut links: Vec<String> = i.interfaces.iter().map(|x| x.link.to_string()).collect();
    links.dedup();
    writeln!(
        out,
        "capture  {} ({}{}, {}), {}, {}",
        args.file.display(),
        i.format,
        if i.gzip { ", gzip" } else { "" },
        links.join("+"),
        count(i.frames, "frame", "frames"),
        human_bytes(i.wire_bytes)
    )?;
    if let (Some(f), Some(l)) = (i.first_ts_ns, i.last_ts_ns) {
        writeln!(out, "time     {} → {} UTC ({:.3} s)", utc_time(f), utc_time(l), duration_s(a))?;
    }
    writeln!(
        out,
        "flows    {} ({} still open at the end), {}",
        count(u64::from(a.tracker.tcp_streams), "TCP stream", "TCP streams"),
        rec.open,
        count(u64::from(a.tracker.udp_streams), "UDP flow", "UDP flows")
    )?;
    if let Some(d) = &a.damage {
        writeln!(out, "damaged  {d}; the {} before it analysed", count(i.frames, "frame", "frames"))?;
    }
    if a.decode_errors > 0 {
        if let Some((f, e)) = &a.first_decode_error {
            writeln!(
                out,
                "skipped  {} not decodable to their transport header (first: frame {f}, {e})",
                count(a.decode_errors, "frame", "frames")
            )?;
        }
    }
    if i.skipped_blocks > 0 {
        writeln!(
            out,
            "skipped  {} of unknown or unused type",
            count(i.skipped_blocks, "pcapng block", "pcapng blocks")
        )?;
    }
    if let Some(t) = not_analysed_text(a) {
        writeln!(out, "skipped  {t}")?;
    }
    let ar = &a.artefacts;
    if ar.dups.copies > 0 {
        writeln!(
            out,
            "copies   {} of earlier frames left out of the analysis (capture-duplicates)",
            count(ar.dups.copies, "copy", "copies")
        )?;
    }
    if ar.padded_acks > 0 {
        writeln!(
            out,
            "padding  {} carried link padding inside their IP length (first: frame {}); read as ACKs, not data",
            count(ar.padded_acks, "pure ACK", "pure ACKs"),
            ar.first_padded_ack.unwrap_or(0)
        )?;
    }
    if a.frag.stats.fragments > 0 {
        writeln!(
            out,
            "frags    {}: {} reassembled, {} incomplete (ip-fragments)",
            count(a.frag.stats.fragments, "IP fragment", "IP fragments"),
            count(a.frag.stats.reassembled, "datagram", "datagrams"),
            a.frag.incomplete_total
        )?;
    }
    if ar.time.distorted() {
        writeln!(
            out,
            "clock    timestamps step back or jump {}: {:.3} s of capture without the steps (capture-time)",
            count(ar.time.backwards_notable + ar.time.jumps, "time", "times"),
            ar.time.span_ns as f64 / 1e9
        )?;
    }
    if let Some(p) = &a.proto {
        let unanswered = p.dns.iter().filter(|t| t.unanswered()).count();
        writeln!(
            out,
            "app      {} DNS transactions ({} unanswered), {} HTTP transactions",
            p.dns.len(),
            unanswered,
            p.http.len()
        )?;
    }
    if !rec.top.is_empty() {
        rec.top.sort_by_key(|c| (std::cmp::Reverse(c.ab.bytes + c.ba.bytes), c.stream));
        writeln!(out, "\ntop TCP streams by bytes:")?;
        // The address column as wide as its longest entry (IPv6 stays aligned), at least 45.
        let pairs: Vec<String> = rec.top.iter().map(|c| format!("{} -> {}", c.a, c.b)).collect();
        let w = pairs.iter().map(String::len).max().unwrap_or(0).max(45);
        writeln!(
            out,
            "  {:>6}  {:<w$}  {:>7}  {:>10}  {:>9}  {:<18}  flags",
            "stream", "client -> server", "frames", "bytes", "duration", "end"
        )?;
        for (c, pair) in rec.top.iter().zip(&pairs) {
            let flags: Vec<String> = c.flag_counts.nonzero().map(|(n, k)| format!("{n}={k}")).collect();
            writeln!(
                out,
                "  {:>6}  {:<w$}  {:>7}  {:>10}  {:>8.3}s  {:<18}  {}",
                c.stream,
                pair,
                c.ab.frames + c.ba.frames,
                human_bytes(c.ab.bytes + c.ba.bytes),
                c.duration_ns() as f64 / 1e9,
                end_text(c),
                flags.join(" ")
            )?;
        }
    }
    if let Some(p) = &a.proto {
        if args.dns {
            crate::tables::write_dns(out, &p.dns, args)?;
        }
        if args.http {
            crate::tables::write_http(out, &p.http, args)?;
        }
    }
    writeln!(out)?;
    if a.analysable_frames == 0 && i.frames > 0 {
        writeln!(out, "nothing analysable: no IP or ARP frame in the file")?;
        return Ok(());
    }
    write_findings_text(out, &a.findings)?;
    Ok(())
}

/// The TCP conversation table alone (`--conv`, like `tshark -q -z conv,tcp`); the address
/// column is as wide as its longest entry, so IPv6 conversations stay aligned.
fn write_conv<W: Write>(out: &mut W, a: &Analysis, all: &mut [ConnSummary]) -> anyhow::Result<()> {
    all.sort_by_key(|c| c.stream);
    let pairs: Vec<String> = all.iter().map(|c| format!("{} <-> {}", c.a, c.b)).collect();
    let w = pairs.iter().map(String::len).max().unwrap_or(0).max("A <-> B".len());
    writeln!(out, "TCP conversations ({}):", all.len())?;
    writeln!(
        out,
        "  {:<w$}  {:>7} {:>10}  {:>7} {:>10}  {:>7} {:>10}  {:>12}  {:>9}",
        "A <-> B", "A->B fr", "bytes", "B->A fr", "bytes", "total", "bytes", "rel start", "duration"
    )?;
    let t0 = a.info.first_ts_ns.unwrap_or(0);
    for (c, pair) in all.iter().zip(&pairs) {
        writeln!(
            out,
            "  {:<w$}  {:>7} {:>10}  {:>7} {:>10}  {:>7} {:>10}  {:>12.6}  {:>9.4}",
            pair,
            c.ab.frames,
            c.ab.bytes,
            c.ba.frames,
            c.ba.bytes,
            c.ab.frames + c.ba.frames,
            c.ab.bytes + c.ba.bytes,
            (c.first_ts_ns - t0) as f64 / 1e9,
            c.duration_ns() as f64 / 1e9
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use netcase_report::json::Record;

    #[derive(serde::Serialize)]
    struct Item(u64, String);

    impl Record for Item {
        fn write_json(&self, o: &mut Vec<u8>) {
            serde_json::to_writer(o, self).unwrap();
        }
    }

    #[test]
    fn two_thread_json_array_is_serde_json_array() {
        for n in [0usize, 1, 2, 1023, 1024, 1025, 3 * 1024, 4 * 1024 + 7, 9000] {
            let items: Vec<Item> = (0..n as u64).map(|i| Item(i, format!("item \"{i}\""))).collect();
            let mut got = Vec::new();
            super::write_json_array(&mut got, &items).unwrap();
            assert_eq!(got, serde_json::to_vec(&items).unwrap(), "{n} items");
        }
    }
}
