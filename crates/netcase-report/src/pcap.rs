//! The report of `netcase pcap`: the text summary, the `--json` document (written as the flows
//! finish), the conversation table and the DNS/HTTP transaction tables. The command holds the
//! command line and the wiring; everything it prints is made here.

use crate::json::Record;
use crate::sorted::SortedSpill;
use crate::{count, human_bytes, utc_time, write_findings_text};
use netcase_analysis::TxnSink;
use netcase_analysis::{Analysis, FlowRecords};
use netcase_flow::{ConnEnd, ConnSummary, Side, UdpSummary};
use netcase_proto::query::{filter_dns, filter_http, sort_dns, sort_http, DnsFilter, DnsSort, HttpFilter, HttpSort};
use netcase_proto::{DnsTxn, HttpTxn};
use std::io::{self, Write};
use std::path::Path;

/// What the report shows, from the command line.
#[derive(Debug, Clone)]
pub struct View<'a> {
    /// The capture, as named on the command line.
    pub file: &'a Path,
    /// Print the DNS transactions table.
    pub dns: bool,
    /// Print the HTTP transactions table.
    pub http: bool,
    /// Which transactions the tables show, and in which order.
    pub table: TableQuery,
}

/// The DNS/HTTP tables' filter and order (`--name`, `--server`, `--slow`, `--sort`, `--desc`).
#[derive(Debug, Clone, Default)]
pub struct TableQuery {
    /// Names (DNS) or Host headers (HTTP) matching this pattern.
    pub name: Option<String>,
    /// Only this server.
    pub server: Option<std::net::IpAddr>,
    /// Only transactions slower than this many ms (or unanswered).
    pub slow: Option<f64>,
    /// The sort key.
    pub sort: String,
    /// Descending.
    pub desc: bool,
}

/// Flow records nobody keeps (`--events`).
pub struct NoRecords;
impl FlowRecords for NoRecords {
    fn tcp(&mut self, _c: &ConnSummary) {}
    fn udp(&mut self, _u: &UdpSummary) {}
}

/// Writes the flow records of `pcap --json` as they finish (then the transactions).
pub struct JsonRecords<'a, W: Write> {
    /// Where the document goes.
    pub out: &'a mut W,
    first: bool,
    /// The first write error (the pass goes on; the caller reports it).
    pub err: Option<io::Error>,
    scratch: Vec<u8>,
    /// The flows array was closed and `dns`, `http`, `proto_stats` written (while the rules ran).
    pub proto_written: bool,
    /// The HTTP transactions, written to a sorted spill on the protocol thread as they
    /// finished, back after the pass.
    http: Option<HttpJson>,
}

/// Memory for HTTP transactions waiting to be written in order (the rest goes to a file).
const HTTP_SPILL_BUDGET: usize = 2 << 20;

/// The HTTP transactions of `pcap --json` as they finish: each one's JSON goes to a
/// [`SortedSpill`] under the key the document lists them by (start time, then frame), so the
/// array comes out in order with memory flat in the number of transactions.
struct HttpJson {
    spill: SortedSpill,
    scratch: Vec<u8>,
}

impl TxnSink for HttpJson {
    fn http(&mut self, t: &HttpTxn) {
        self.scratch.clear();
        crate::json::http_txn(&mut self.scratch, t);
        // An exact-size copy: the heap's budget counts what it really holds.
        self.spill.push(t.order_key(), self.scratch.clone());
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl<'a, W: Write> JsonRecords<'a, W> {
    /// Records written to `out`, right after the caller's `"flows":[`.
    pub fn new(out: &'a mut W) -> Self {
        JsonRecords { out, first: true, err: None, scratch: Vec::with_capacity(1024), proto_written: false, http: None }
    }

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
        crate::json::tcp_record(&mut self.scratch, c);
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
        if let Err(e) = write_proto_json(&mut *self.out, p, self.http.take()) {
            self.err = Some(e);
        }
        self.proto_written = true;
    }
    fn txn_sink(&mut self) -> Option<Box<dyn TxnSink>> {
        Some(Box::new(HttpJson { spill: SortedSpill::new(HTTP_SPILL_BUDGET), scratch: Vec::with_capacity(4096) }))
    }
    fn streamed(&mut self, sink: Box<dyn std::any::Any>) {
        if let Ok(h) = sink.downcast::<HttpJson>() {
            self.http = Some(*h);
        }
    }
}

/// `],"dns":[...],"http":[...],"proto_stats":{...}`: the end of the flows array and the
/// transactions (written after the flows, before `capture` and `findings`). The HTTP
/// transactions come from `http` when they were streamed there, else from `p`.
fn write_proto_json<W: Write>(out: &mut W, p: &netcase_proto::ProtoOutput, http: Option<HttpJson>) -> io::Result<()> {
    write!(out, "],\"dns\":")?;
    write_json_array(out, &p.dns)?;
    write!(out, ",\"http\":")?;
    match http {
        Some(h) => {
            out.write_all(b"[")?;
            h.spill.write_to(&mut *out, b",")?;
            out.write_all(b"]")?;
        }
        None => write_json_array(out, &p.http)?,
    }
    write!(out, ",\"proto_stats\":")?;
    serde_json::to_writer(&mut *out, &p.stats)?;
    Ok(())
}

/// Items per piece of a JSON array serialised at a time.
const JSON_CHUNK: usize = 1024;

/// Writes `items` as a JSON array, serialising on two threads: a helper turns every other
/// piece of `JSON_CHUNK` items into bytes while this thread does the rest and writes all in
/// order. Two pieces at most wait, so memory stays small however long the array.
pub fn write_json_array<W: Write, T: Record + Sync>(out: &mut W, items: &[T]) -> io::Result<()> {
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

/// What the text report keeps of the flows: the top ones by bytes, all of them for `--conv`.
pub struct TextRecords {
    top: Vec<ConnSummary>,
    n_top: usize,
    all: Option<Vec<ConnSummary>>,
    open: u64,
    udp: u64,
}

impl TextRecords {
    /// Keeps the `top` largest flows, and every flow when `conv`.
    pub fn new(top: usize, conv: bool) -> Self {
        TextRecords { top: Vec::new(), n_top: top, all: conv.then(Vec::new), open: 0, udp: 0 }
    }
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

fn capture_json(view: &View<'_>, a: &Analysis) -> serde_json::Value {
    let links: Vec<String> = {
        let mut v: Vec<String> = a.info.interfaces.iter().map(|i| i.link.to_string()).collect();
        v.dedup();
        v
    };
    serde_json::json!({
        "file": view.file.display().to_string(),
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
pub fn not_analysed_text(a: &Analysis) -> Option<String> {
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

/// The end of the `pcap --json` document: `capture` and `findings`.
pub fn write_json_tail<W: Write>(out: &mut W, view: &View<'_>, a: &Analysis) -> io::Result<()> {
    // `dns`, `http` and `proto_stats` were written before, right after the flows
    // ([`JsonRecords::proto`]); JSON object members have no order.
    write!(out, ",\"capture\":")?;
    serde_json::to_writer(&mut *out, &capture_json(view, a))?;
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

/// The text report of `netcase pcap` (or the conversation table alone for `--conv`).
pub fn write_text<W: Write>(out: &mut W, view: &View<'_>, a: &Analysis, rec: &mut TextRecords) -> io::Result<()> {
    if let Some(all) = rec.all.as_mut() {
        return write_conv(out, a, all);
    }
    let i = &a.info;
    let mut links: Vec<String> = i.interfaces.iter().map(|x| x.link.to_string()).collect();
    links.dedup();
    writeln!(
        out,
        "capture  {} ({}{}, {}), {}, {}",
        view.file.display(),
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
        if view.dns {
            write_dns(out, &p.dns, &view.table)?;
        }
        if view.http {
            write_http(out, &p.http, &view.table)?;
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
fn write_conv<W: Write>(out: &mut W, a: &Analysis, all: &mut [ConnSummary]) -> io::Result<()> {
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

fn ms(ns: Option<i64>) -> String {
    ns.map_or_else(|| "-".into(), |n| format!("{:.3}", n as f64 / 1e6))
}

/// Writes the DNS table, filtered by `--name/--server/--slow` and sorted by `--sort`.
pub fn write_dns<W: Write>(out: &mut W, txns: &[DnsTxn], q: &TableQuery) -> io::Result<()> {
    let f = DnsFilter { name: q.name.clone(), server: q.server, slow_ms: q.slow, ..DnsFilter::default() };
    let mut rows = filter_dns(txns, &f);
    let key = match q.sort.as_str() {
        "duration" => DnsSort::ResponseTime,
        "id" => DnsSort::Time,
        s => s.parse::<DnsSort>().map_err(io::Error::other)?,
    };
    sort_dns(&mut rows, key, q.desc);
    if q.sort == "id" {
        rows.sort_by_key(|t| t.id);
        if q.desc {
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
pub fn write_http<W: Write>(out: &mut W, txns: &[HttpTxn], q: &TableQuery) -> io::Result<()> {
    let f = HttpFilter { host: q.name.clone(), server: q.server, slow_ms: q.slow, ..HttpFilter::default() };
    let mut rows = filter_http(txns, &f);
    let key = match q.sort.as_str() {
        "duration" => HttpSort::Total,
        s => s.parse::<HttpSort>().map_err(io::Error::other)?,
    };
    sort_http(&mut rows, key, q.desc);
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
        let uri = crate::cut(&uri, 100);
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

#[cfg(test)]
mod tests {
    use crate::json::Record;

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
