//! The capture report: summary, findings (linked to their graph and frames), a timeline of
//! findings, the I/O graph, per-stream graphs (tcptrace-style time-sequence, throughput and
//! goodput, RTT, bytes in flight against the window) and DNS/HTTP latency histograms and a
//! waterfall.

use crate::esc::{escape, Esc};
use crate::gather::{CaptureData, Col, MarkKind, StreamTrace, COLS};
use crate::page::{self, FindingLinks};
use crate::svg::{self, Axis, Chart, Fmt, Glyph};
use netcase_model::{Evidence, Finding, Subject};
use std::fmt::Write;

/// Findings drawn as rows of the timeline (the others link to the I/O graph).
const TIMELINE_ROWS: usize = 80;
/// Evidence frames drawn per finding on the timeline.
const TIMELINE_FRAMES: usize = 60;
/// Transactions drawn in the waterfall.
const WATERFALL_ROWS: usize = 150;
/// Servers with a latency histogram (per protocol).
const HIST_SERVERS: usize = 6;
/// Columns per hover strip on stream graphs.
const GROUP: usize = 5;

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// Renders the capture report.
pub fn render(d: &CaptureData) -> String {
    let mut out = String::with_capacity(1 << 20);
    let name = d.path.rsplit('/').next().unwrap_or(&d.path);
    page::head(&mut out, &format!("netcase report — {name}"));
    let a = &d.analysis;
    let _ = write!(out, "<header><h1>netcase report: <span class=\"mono\">{}</span></h1>", Esc(name));
    let _ = write!(out, "<p class=\"sub\">{}</p>", Esc(&d.path));
    out.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#findings\">Findings</a><a href=\"#timeline\">Timeline</a><a href=\"#io\">I/O graph</a><a href=\"#streams\">TCP streams</a>");
    if has_app(d) {
        out.push_str("<a href=\"#app\">DNS and HTTP</a>");
    }
    out.push_str("<a href=\"#legend\">How to read</a></nav></header>\n");

    summary(&mut out, d);

    // Findings.
    let _ = write!(out, "<section id=\"findings\"><h2>Findings ({})</h2>", a.findings.len());
    if a.findings.is_empty() {
        out.push_str("<p>No findings: nothing in this capture matched a case of the catalogue.</p>");
    }
    for (i, f) in a.findings.iter().enumerate() {
        let links = finding_links(d, i + 1, f);
        page::finding(&mut out, i + 1, f, &links);
    }
    out.push_str("</section>\n");

    timeline(&mut out, d);
    io_graph(&mut out, d);
    streams(&mut out, d);
    if has_app(d) {
        app(&mut out, d);
    }
    legend_text(&mut out);
    page::foot(&mut out);
    out
}

fn has_app(d: &CaptureData) -> bool {
    d.analysis.proto.as_ref().is_some_and(|p| !p.dns.is_empty() || !p.http.is_empty() || !p.conns.is_empty())
}

fn summary(out: &mut String, d: &CaptureData) {
    let a = &d.analysis;
    let i = &a.info;
    out.push_str("<section id=\"summary\"><h2>Summary</h2><table>");
    let mut row = |k: &str, v: String| {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", Esc(k), Esc(&v));
    };
    row(
        "capture",
        format!(
            "{}{}, {} frames, {}",
            i.format,
            if i.gzip { " (gzip)" } else { "" },
            i.frames,
            netcase_model::human_bytes(i.wire_bytes as f64)
        ),
    );
    if let (Some(f), Some(l)) = (i.first_ts_ns, i.last_ts_ns) {
        row("time", format!("{} → {} UTC ({:.3} s)", utc(f), utc(l), secs(l.saturating_sub(f))));
    }
    row("flows", format!("{} TCP streams, {} UDP flows", d.tcp_streams, d.udp_flows));
    if let Some(p) = &a.proto {
        let un = p.dns.iter().filter(|t| t.unanswered()).count();
        row(
            "applications",
            format!(
                "{} DNS transactions ({un} unanswered), {} HTTP transactions, {} TLS connections",
                p.dns.len(),
                p.http.len(),
                p.conns.iter().filter(|c| c.tls.is_some()).count()
            ),
        );
    }
    let count = |s| a.findings.iter().filter(|f| f.severity == s).count();
    row(
        "findings",
        format!(
            "{} error, {} warning, {} info",
            count(netcase_model::Severity::Error),
            count(netcase_model::Severity::Warning),
            count(netcase_model::Severity::Info)
        ),
    );
    if let Some(dm) = &a.damage {
        row("damage", dm.to_string());
    }
    if a.decode_errors > 0 {
        row("undecodable frames", a.decode_errors.to_string());
    }
    if a.artefacts.dups.copies > 0 {
        row("copies left out", format!("{} frames captured twice", a.artefacts.dups.copies));
    }
    out.push_str("</table>");
    // Largest streams.
    if !d.top.is_empty() {
        out.push_str("<table><tr><th>stream</th><th>client → server</th><th>frames</th><th>bytes</th><th>duration</th><th>retransmissions</th><th>graphs</th></tr>");
        for s in &d.top {
            let g = if d.trace(s.stream).is_some() {
                format!("<a href=\"#stream-{}\">graphs</a>", s.stream)
            } else {
                String::new()
            };
            let _ = write!(
                out,
                "<tr><td class=\"n\">{}</td><td class=\"mono\">{} → {}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.3} s</td><td class=\"n\">{}</td><td>{g}</td></tr>",
                s.stream,
                Esc(&s.a.to_string()),
                Esc(&s.b.to_string()),
                s.frames,
                netcase_model::human_bytes(s.bytes as f64),
                secs(s.last_ts_ns - s.first_ts_ns),
                s.retransmissions
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>\n");
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` (UTC) of a time in nanoseconds since the epoch.
pub fn utc(ns: i64) -> String {
    netcase_model::utc_time(ns)
}

/// The stream a finding is about, when it is a TCP stream.
fn finding_stream(f: &Finding) -> Option<u32> {
    match f.subject {
        Subject::Flow { proto: "tcp", stream: Some(s), .. } => u32::try_from(s).ok(),
        _ => None,
    }
}

fn evidence_frames(f: &Finding) -> impl Iterator<Item = u64> + '_ {
    f.evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::Frames { frames, .. } => Some(frames.iter().copied()),
            _ => None,
        })
        .flatten()
}

/// The id of a stream mark drawn for `frame`, if one is.
fn stream_mark_id(t: &StreamTrace, frame: u64) -> Option<String> {
    t.marks.iter().any(|m| m.frame == frame && m.evidence).then(|| format!("s{}-fr{frame}", t.info.stream))
}

fn is_dns_case(f: &Finding) -> bool {
    f.case.as_str().starts_with("dns") || matches!(f.subject, Subject::Name { .. })
}

fn is_http_case(f: &Finding) -> bool {
    let c = f.case.as_str();
    c.contains("http") || c.contains("keepalive") || c.contains("tls")
}

fn finding_links(d: &CaptureData, n: usize, f: &Finding) -> FindingLinks {
    let stream = finding_stream(f).and_then(|s| d.trace(s));
    let on_timeline = n <= TIMELINE_ROWS;
    let graph = if let Some(t) = stream {
        (format!("stream-{}-tseq", t.info.stream), format!("time-sequence graph of stream {}", t.info.stream))
    } else if has_app(d) && (is_dns_case(f) || is_http_case(f)) {
        ("app-waterfall".to_owned(), "DNS/HTTP waterfall".to_owned())
    } else if on_timeline {
        (format!("tl-f{n}"), "timeline of findings".to_owned())
    } else {
        ("io-traffic".to_owned(), "I/O graph".to_owned())
    };
    let frames = evidence_frames(f)
        .map(|fr| {
            let id = stream.and_then(|t| stream_mark_id(t, fr)).or_else(|| {
                let pos = evidence_frames(f).position(|x| x == fr).unwrap_or(usize::MAX);
                (on_timeline && pos < TIMELINE_FRAMES && d.evidence_ts(fr).is_some()).then(|| format!("tl-f{n}-fr{fr}"))
            });
            (fr, id)
        })
        .collect();
    FindingLinks { graph, frames, extra: Vec::new() }
}

/// The time axis of the whole capture.
fn capture_axis(d: &CaptureData) -> Axis {
    Axis::new(0.0, secs(d.t1_ns - d.t0_ns), Fmt::Seconds, "time since the capture's first frame (s)")
}

fn timeline(out: &mut String, d: &CaptureData) {
    let fs = &d.analysis.findings;
    out.push_str("<section id=\"timeline\"><h2>Timeline of findings</h2>");
    let rows = fs.len().min(TIMELINE_ROWS);
    let h = 30.0 + 44.0 + 18.0 * rows.max(1) as f64;
    let mut c = Chart::new(
        "timeline-chart",
        "timeline of findings",
        capture_axis(d),
        Axis::new(0.0, rows.max(1) as f64, Fmt::Count, ""),
        h,
    )
    .with_left(200.0);
    c.hide_y_ticks();
    c.legend("tl-sev-error", "error", Glyph::Box);
    c.legend("tl-sev-warning", "warning", Glyph::Box);
    c.legend("tl-sev-info", "info", Glyph::Box);
    c.legend("tl-span", "first to last evidence frame (or the stream's life)", Glyph::Line);
    for (i, f) in fs.iter().take(rows).enumerate() {
        let n = i + 1;
        let y = c.top() + 18.0 * i as f64 + 9.0;
        let label = format!("{n}. {}", f.case.as_str());
        let lx = c.left() - 6.0;
        let _ = write!(
            c.over(),
            "<a href=\"#finding-{n}\"><text x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text></a>",
            y + 4.0,
            Esc(&label)
        );
        let mut times: Vec<(u64, i64)> =
            evidence_frames(f).take(TIMELINE_FRAMES).filter_map(|fr| Some((fr, d.evidence_ts(fr)?))).collect();
        times.sort_by_key(|t| t.1);
        let span = match (times.first(), times.last()) {
            (Some(a), Some(b)) => Some((a.1, b.1)),
            _ => finding_stream(f).and_then(|s| d.stream_info(s)).map(|s| (s.first_ts_ns, s.last_ts_ns)),
        };
        let sev = page::sev_class(f.severity);
        let _ = write!(
            c.over(),
            "<g id=\"tl-f{n}\" class=\"tl-row\"><title>{}: {}</title>",
            Esc(f.case.as_str()),
            Esc(&f.summary)
        );
        if let Some((a, b)) = span {
            let (x0, x1) = (c.px(secs(a - d.t0_ns)), c.px(secs(b - d.t0_ns)));
            let _ = write!(c.over(), "<path class=\"tl-span\" d=\"M{x0:.1} {y:.1}H{:.1}\"/>", x1.max(x0 + 1.0));
        }
        let _ = write!(c.over(), "</g>");
        for (fr, ts) in &times {
            let x = c.px(secs(ts - d.t0_ns));
            let _ = write!(
                c.over(),
                "<g id=\"tl-f{n}-fr{fr}\" class=\"tl-{sev}\"><title>finding {n} ({}): frame {fr} at {:.6} s</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"4\" height=\"10\"/></g>",
                Esc(f.case.as_str()),
                secs(ts - d.t0_ns),
                x - 2.0,
                y - 5.0
            );
        }
    }
    if fs.is_empty() {
        let (x, y) = (c.left() + 10.0, c.top() + 14.0);
        let _ = write!(c.over(), "<text x=\"{x}\" y=\"{y}\">no findings</text>");
    }
    page::figure(out, "Each finding on the capture's time axis: a box per evidence frame (hover for the frame), a grey line from the first to the last.", &c.finish());
    if fs.len() > rows {
        let _ = write!(
            out,
            "<p class=\"note\">{} more findings are not drawn here; their links go to the I/O graph.</p>",
            fs.len() - rows
        );
    }
    out.push_str("</section>\n");
}

fn io_graph(out: &mut String, d: &CaptureData) {
    let io = &d.io;
    let bin_s = io.bin_ns as f64 / 1e9;
    let interval = interval_text(io.bin_ns);
    let _ = write!(out, "<section id=\"io\"><h2>I/O graph</h2><p class=\"note\">Per {interval} interval, every frame of the capture.</p>");
    let max_p = io.bins.iter().map(|b| b.packets).max().unwrap_or(0) as f64;
    let max_b = io.bins.iter().map(|b| b.bytes).max().unwrap_or(0) as f64;
    let xa = capture_axis(d);
    let mut c = Chart::new(
        "io-traffic",
        "packets and bytes per interval",
        xa.clone(),
        Axis::zero_to(max_p, Fmt::Count, format!("packets per {interval}")),
        300.0,
    )
    .with_y2(Axis::zero_to(max_b, Fmt::Bytes, format!("bytes per {interval}")));
    c.legend("iobytes", "bytes (right axis)", Glyph::Box);
    c.legend("iopkts", "packets (left axis)", Glyph::Line);
    let base = c.py2(0.0);
    let mut area = String::new();
    let mut line = String::new();
    let mut hover = Vec::new();
    for (i, b) in io.bins.iter().enumerate() {
        let t0 = i as f64 * bin_s;
        let (x0, x1) = (c.px(t0), c.px(t0 + bin_s).min(c.left() + c.plot_w()));
        if b.bytes > 0 {
            let _ = write!(area, "M{x0:.1} {base:.1}V{:.1}H{x1:.1}V{base:.1}Z", c.py2(b.bytes as f64));
        }
        let y = c.py(f64::from(b.packets));
        let _ = write!(line, "{}{x0:.1} {y:.1}H{x1:.1}", if i == 0 { "M" } else { "L" });
        hover.push((x0, x1, format!(
            "{:.6}–{:.6} s\n{} packets, {}\nretransmissions {}, dup ACKs {}, zero windows {}, RSTs {}\nDNS {}, HTTP {}",
            t0, t0 + bin_s, b.packets, svg::value(Fmt::Bytes, b.bytes as f64), b.retrans, b.dupack, b.zero_window, b.rst, b.dns, b.http
        )));
    }
    let _ = write!(c.body(), "<path class=\"iobytes\" d=\"{area}\"/><path class=\"iopkts\" d=\"{line}\"/>");
    for (x0, x1, t) in &hover {
        c.hover(*x0, *x1, t);
    }
    page::figure(out, &format!("Packets (line, left axis) and bytes (area, right axis) per {interval}."), &c.finish());

    // Events per interval.
    let series: [Series; 6] = [
        ("e-retrans", "retransmissions", |b| b.retrans),
        ("e-dupack", "duplicate ACKs", |b| b.dupack),
        ("e-zwin", "zero windows", |b| b.zero_window),
        ("e-rst", "RSTs", |b| b.rst),
        ("e-dns", "DNS transactions", |b| b.dns),
        ("e-http", "HTTP transactions", |b| b.http),
    ];
    let max_e = io.bins.iter().flat_map(|b| series.iter().map(move |s| (s.2)(b))).max().unwrap_or(0) as f64;
    let mut c = Chart::new(
        "io-events",
        "events per interval",
        xa,
        Axis::zero_to(max_e.max(1.0), Fmt::Count, format!("events per {interval}")),
        240.0,
    );
    let base = c.py(0.0);
    for (k, (class, label, get)) in series.iter().enumerate() {
        let total: u64 = io.bins.iter().map(|b| u64::from(get(b))).sum();
        c.legend(class, &format!("{label} ({total})"), Glyph::Line);
        let mut p = String::new();
        for (i, b) in io.bins.iter().enumerate() {
            let v = get(b);
            if v > 0 {
                let x = c.px(i as f64 * bin_s) + 0.8 + k as f64 * 1.6;
                let _ = write!(p, "M{x:.1} {base:.1}V{:.1}", c.py(f64::from(v)).min(base - 2.0));
            }
        }
        if !p.is_empty() {
            let _ = write!(c.body(), "<path class=\"{class}\" d=\"{p}\"/>");
        }
    }
    for (x0, x1, t) in &hover {
        c.hover(*x0, *x1, t);
    }
    page::figure(out, &format!("Retransmissions, duplicate ACKs, zero windows, RSTs and DNS/HTTP transactions per {interval} (totals in the legend)."), &c.finish());
    out.push_str("</section>\n");
}

/// An event series of the I/O graph: class, label, value of a bin.
type Series = (&'static str, &'static str, fn(&crate::gather::IoBin) -> u32);

fn interval_text(ns: i64) -> String {
    if ns >= 1_000_000_000 {
        format!("{} s", ns / 1_000_000_000)
    } else if ns >= 1_000_000 {
        format!("{} ms", ns / 1_000_000)
    } else {
        format!("{} µs", ns / 1000)
    }
}

fn streams(out: &mut String, d: &CaptureData) {
    out.push_str("<section id=\"streams\"><h2>TCP streams</h2>");
    if d.traces.is_empty() {
        out.push_str("<p>No TCP stream in this capture.</p>");
    } else {
        out.push_str("<p class=\"note\">The streams findings are about, then the largest by bytes. Time is counted from the capture's first frame, as in the I/O graph; sequence numbers are relative to the sender's first.</p>");
    }
    // The streams' graphs are independent: half of them on a second thread when there is one.
    let render = |ts: &[StreamTrace]| {
        let mut s = String::with_capacity(ts.len() << 17);
        for t in ts {
            stream(&mut s, d, t);
        }
        s
    };
    let two = d.traces.len() > 1 && std::thread::available_parallelism().map_or(1, usize::from) > 1;
    let (first, second) = d.traces.split_at(if two { d.traces.len() / 2 } else { d.traces.len() });
    let (a, b) = std::thread::scope(|sc| {
        let other = if second.is_empty() {
            None
        } else {
            std::thread::Builder::new().name("report-render".into()).spawn_scoped(sc, || render(second)).ok()
        };
        let a = render(first);
        let b = match other {
            Some(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            None => render(second),
        };
        (a, b)
    });
    out.push_str(&a);
    out.push_str(&b);
    out.push_str("</section>\n");
}

/// The time (capture-relative seconds) of the middle of column `c`.
fn col_secs(d: &CaptureData, t: &StreamTrace, c: f64) -> f64 {
    secs(t.info.first_ts_ns - d.t0_ns) + c / COLS as f64 * secs(t.span_ns())
}

fn stream(out: &mut String, d: &CaptureData, t: &StreamTrace) {
    let s = t.info.stream;
    let (snd, rcv) = match t.data_side {
        netcase_flow::Side::A => (t.info.a, t.info.b),
        netcase_flow::Side::B => (t.info.b, t.info.a),
    };
    let _ = write!(
        out,
        "<section class=\"stream\" id=\"stream-{s}\"><h3>Stream {s}: {} → {}</h3><p class=\"note\">Data from {} ({} of payload; {} the other way), {} frames, {:.3} s, {} retransmissions{}.</p>",
        Esc(&t.info.a.to_string()),
        Esc(&t.info.b.to_string()),
        Esc(&snd.to_string()),
        netcase_model::human_bytes(t.info.payload_ab.max(t.info.payload_ba) as f64),
        netcase_model::human_bytes(t.info.payload_ab.min(t.info.payload_ba) as f64),
        t.info.frames,
        secs(t.span_ns()),
        t.info.retransmissions,
        t.info.irtt_ns.map(|r| format!(", handshake RTT {:.3} ms", r as f64 / 1e6)).unwrap_or_default()
    );
    if t.marks_dropped > 0 {
        let _ = write!(out, "<p class=\"note\">{} further flagged frames are counted in their pixel column but not marked one by one.</p>", t.marks_dropped);
    }
    let xa = Axis::new(
        col_secs(d, t, 0.0),
        col_secs(d, t, COLS as f64),
        Fmt::Seconds,
        "time since the capture's first frame (s)",
    );
    let whole = View { cols: &t.cols, first_ns: t.info.first_ts_ns, span_ns: t.span_ns(), zoom: false };
    let zoom_note = t.zoom.as_ref().map(|z| {
        format!(
            " 99 % of the data is sent by {:.3} s, within the first {:.0} % of the stream's {:.3} s: the graph after this one zooms on it.",
            secs(z.data_end_ns - d.t0_ns),
            (secs(z.data_end_ns - t.info.first_ts_ns) / secs(t.span_ns()) * 100.0).ceil(),
            secs(t.span_ns()),
        )
    });
    page::figure(
        out,
        &format!(
            "Time-sequence (tcptrace): data from {snd} to {rcv}, the ACK and receive-window lines of {rcv}.{}",
            zoom_note.as_deref().unwrap_or("")
        ),
        &tseq(d, t, xa.clone(), &whole),
    );
    if let Some(z) = &t.zoom {
        let za = Axis::new(
            secs(z.first_ns - d.t0_ns),
            secs(z.first_ns + z.span_ns - d.t0_ns),
            Fmt::Seconds,
            "time since the capture's first frame (s)",
        );
        let z_end = z.first_ns + z.span_ns;
        let after = t.info.last_ts_ns.saturating_sub(z_end);
        let later = t.marks.iter().filter(|m| m.ts_ns > z_end).count();
        page::figure(
            out,
            &format!(
                "Zoom on the data: {:.3}–{:.3} s. The stream goes on {:.3} s after it{}; the graph above and those below cover the whole stream.",
                za.min,
                za.max,
                secs(after),
                if later > 0 {
                    format!(" with {later} flagged frames (resent segments, probes, resets), marked on the graph above")
                } else {
                    format!(" with no new data from {snd}")
                }
            ),
            &tseq(d, t, za, &View { cols: &z.cols, first_ns: z.first_ns, span_ns: z.span_ns, zoom: true }),
        );
    }
    page::figure(
        out,
        "Throughput and goodput of the data direction (goodput leaves out retransmitted bytes).",
        &tput(t, xa.clone()),
    );
    page::figure(
        out,
        "Round-trip time samples (ACK time minus the time of the segment it acknowledges exactly).",
        &rtt(t, xa.clone()),
    );
    page::figure(out, &format!("Bytes in flight from {snd} against the receive window {rcv} advertised."), &wnd(t, xa));
    out.push_str("</section>\n");
}

/// Pixel x of column `i` (the plot is [`COLS`] px wide).
fn colx(c: &Chart, i: usize) -> f64 {
    c.left() + i as f64 + 0.5
}

/// Hover strips over groups of columns, titled by `text` (None: nothing in the group).
fn col_hover(c: &mut Chart, d_t0: f64, span: f64, cols: &[Col], text: impl Fn(&[Col]) -> Option<String>) {
    for (g, chunk) in cols.chunks(GROUP).enumerate() {
        if let Some(body) = text(chunk) {
            let a = g * GROUP;
            let t0 = d_t0 + a as f64 / COLS as f64 * span;
            let t1 = d_t0 + (a + chunk.len()) as f64 / COLS as f64 * span;
            let x0 = c.left() + a as f64;
            c.hover(x0, x0 + chunk.len() as f64, &format!("{t0:.6}–{t1:.6} s\n{body}"));
        }
    }
}

/// The columns a time-sequence graph draws: the whole stream, or its zoomed data part.
struct View<'a> {
    cols: &'a [Col],
    /// Start of the first column, ns.
    first_ns: i64,
    /// Time the columns cover, ns.
    span_ns: i64,
    /// The zoomed view (its marks carry no link ids: those are on the main graph).
    zoom: bool,
}

fn tseq(d: &CaptureData, t: &StreamTrace, xa: Axis, v: &View<'_>) -> String {
    let s = t.info.stream;
    let seq_hi = v.cols.iter().map(|c| c.seq_hi).max().unwrap_or(0);
    let ack_hi = v.cols.iter().map(|c| c.ack_hi).max().unwrap_or(0);
    let edge_hi = v.cols.iter().map(|c| c.edge_hi).max().unwrap_or(0);
    let data_top = seq_hi.max(ack_hi).max(1) as f64;
    // The window edge is drawn in full unless it would squash the data (then it is clipped).
    let top = if (edge_hi as f64) < data_top * 2.5 { data_top.max(edge_hi as f64) } else { data_top * 1.25 };
    let in_view = |ts: i64| !v.zoom || (ts >= v.first_ns && ts <= v.first_ns.saturating_add(v.span_ns));
    let marks: Vec<&crate::gather::Mark> = t.marks.iter().filter(|m| in_view(m.ts_ns)).collect();
    let mut c = Chart::new(
        if v.zoom { format!("stream-{s}-tseq-zoom") } else { format!("stream-{s}-tseq") },
        if v.zoom {
            format!("time-sequence graph of stream {s}, zoomed on its data")
        } else {
            format!("time-sequence graph of stream {s}")
        },
        xa,
        Axis::zero_to(top, Fmt::Bytes, "relative sequence number (bytes)"),
        380.0,
    );
    c.attr("data-stream", &s.to_string());
    c.attr("data-kind", if v.zoom { "tseq-zoom" } else { "tseq" });
    c.legend("seg", "data", Glyph::Line);
    c.legend("ack", "ACK", Glyph::Line);
    c.legend("win", "ACK + window", Glyph::Line);
    if t.sack_seen {
        c.legend("sack", "SACK", Glyph::Line);
    }
    let present = |k: MarkKind| marks.iter().any(|m| m.kind == k);
    for (k, class, letter, label) in [
        (MarkKind::Retrans, "m-R", "R", "retransmit"),
        (MarkKind::OutOfOrder, "m-O", "O", "out of order"),
        (MarkKind::Probe, "m-P", "P", "probe"),
        (MarkKind::ZeroWindow, "m-Z", "Z", "zero window"),
        (MarkKind::TripleDup, "m-3", "3", "3rd dup ACK"),
        (MarkKind::Rst, "m-RST", "RST", ""),
    ] {
        if present(k) {
            c.legend(&format!("mark-key {class}"), label, Glyph::Letter(letter));
        }
    }
    if marks.iter().any(|m| m.evidence) {
        c.legend("mark-key m-E", "quoted by a finding", Glyph::Dot);
    }
    let (mut seg, mut ack, mut win, mut sack, mut rtx) =
        (String::new(), String::new(), String::new(), String::new(), String::new());
    let mut ack_started = false;
    for (i, col) in v.cols.iter().enumerate() {
        let x = colx(&c, i);
        if col.segs > 0 {
            let (y0, mut y1) = (c.py(col.seq_lo as f64), c.py(col.seq_hi as f64));
            if y0 - y1 < 1.5 {
                y1 = y0 - 1.5;
            }
            let _ = write!(seg, "M{x:.1} {y0:.1}V{y1:.1}");
        }
        if col.acks > 0 {
            let (lo, hi, last) = (c.py(col.ack_lo as f64), c.py(col.ack_hi as f64), c.py(col.ack_last as f64));
            let (elo, ehi, elast) = (c.py(col.edge_lo as f64), c.py(col.edge_hi as f64), c.py(col.edge_last as f64));
            if ack_started {
                let _ = write!(ack, "H{x:.1}V{lo:.1}V{hi:.1}V{last:.1}");
                let _ = write!(win, "H{x:.1}V{elo:.1}V{ehi:.1}V{elast:.1}");
            } else {
                let _ = write!(ack, "M{x:.1} {lo:.1}V{hi:.1}V{last:.1}");
                let _ = write!(win, "M{x:.1} {elo:.1}V{ehi:.1}V{elast:.1}");
                ack_started = true;
            }
        }
        if col.sack_lo < col.sack_hi {
            let _ = write!(sack, "M{x:.1} {:.1}V{:.1}", c.py(col.sack_lo as f64), c.py(col.sack_hi as f64));
        }
    }
    if ack_started {
        let xe = c.left() + c.plot_w();
        let _ = write!(ack, "H{xe:.1}");
        let _ = write!(win, "H{xe:.1}");
    }
    let t0 = d.t0_ns;
    for m in &marks {
        if m.kind == MarkKind::Retrans {
            let x = c.px(secs(m.ts_ns - t0));
            let _ =
                write!(rtx, "M{x:.1} {:.1}V{:.1}", c.py(m.lo as f64), c.py(m.hi as f64).min(c.py(m.lo as f64) - 2.0));
        }
    }
    let _ = write!(
        c.body(),
        "<path class=\"win\" d=\"{win}\"/><path class=\"ack\" d=\"{ack}\"/><path class=\"sack\" d=\"{sack}\"/><path class=\"seg\" d=\"{seg}\"/><path class=\"rtx\" d=\"{rtx}\"/>"
    );
    let span = secs(v.span_ns);
    let first = secs(v.first_ns - t0);
    col_hover(&mut c, first, span, v.cols, |g| {
        let segs: u32 = g.iter().map(|c| c.segs).sum();
        let acks: u32 = g.iter().map(|c| c.acks).sum();
        if segs == 0 && acks == 0 {
            return None;
        }
        let mut s = String::new();
        if segs > 0 {
            let lo = g.iter().map(|c| c.seq_lo).min().unwrap_or(0);
            let hi = g.iter().map(|c| c.seq_hi).max().unwrap_or(0);
            let bytes: u64 = g.iter().map(|c| c.bytes).sum();
            let _ = writeln!(s, "{segs} data segments, {bytes} bytes, seq {lo}–{hi}");
        }
        if acks > 0 {
            let lo = g.iter().filter(|c| c.acks > 0).map(|c| c.ack_lo).min().unwrap_or(0);
            let hi = g.iter().map(|c| c.ack_hi).max().unwrap_or(0);
            let win = g.iter().map(|c| c.win_lo).min().unwrap_or(0);
            let dup: u32 = g.iter().map(|c| c.dupacks).sum();
            let _ = write!(s, "{acks} ACKs, ack {lo}–{hi}, smallest window {win} bytes");
            if dup > 0 {
                let _ = write!(s, ", {dup} duplicate ACKs");
            }
            let sl = g.iter().map(|c| c.sack_lo).min().unwrap_or(u64::MAX);
            if sl != u64::MAX {
                let _ = write!(s, "\nSACK blocks from {sl} to {}", g.iter().map(|c| c.sack_hi).max().unwrap_or(0));
            }
        }
        Some(s)
    });
    for m in &marks {
        let x = c.px(secs(m.ts_ns - t0));
        let rel = secs(m.ts_ns - t0);
        let id = (m.evidence && !v.zoom).then(|| format!("s{s}-fr{}", m.frame));
        let flags: Vec<&str> = m.flags.names().collect();
        let what = if flags.is_empty() { String::new() } else { format!(" [{}]", flags.join(", ")) };
        let data = format!(" data-t=\"{rel:.6}\" data-frame=\"{}\"", m.frame);
        let ev = if m.evidence { " (quoted by a finding)" } else { "" };
        let (class, letter, y, title) = match m.kind {
            MarkKind::Retrans => (
                "m-R",
                "R",
                c.py(m.hi as f64) - 4.0,
                format!(
                    "frame {}: retransmission of seq {}–{} ({} bytes) at {rel:.6} s{what}{ev}",
                    m.frame,
                    m.lo,
                    m.hi,
                    m.hi - m.lo
                ),
            ),
            MarkKind::OutOfOrder => (
                "m-O",
                "O",
                c.py(m.hi as f64) - 4.0,
                format!("frame {}: out-of-order segment seq {}–{} at {rel:.6} s{what}{ev}", m.frame, m.lo, m.hi),
            ),
            MarkKind::Probe => (
                "m-P",
                "P",
                c.py(m.hi as f64) - 4.0,
                format!("frame {}: zero-window probe at seq {} at {rel:.6} s{what}{ev}", m.frame, m.lo),
            ),
            MarkKind::ZeroWindow => (
                "m-Z",
                "Z",
                c.py(m.lo as f64) + 13.0,
                format!("frame {}: zero window advertised at ack {} at {rel:.6} s{what}{ev}", m.frame, m.lo),
            ),
            MarkKind::TripleDup => (
                "m-3",
                "3",
                c.py(m.lo as f64) + 13.0,
                format!("frame {}: third duplicate ACK of {} at {rel:.6} s{what}{ev}", m.frame, m.lo),
            ),
            MarkKind::Rst => (
                "m-RST",
                "RST",
                c.py(m.lo as f64) - 4.0,
                format!(
                    "frame {}: RST from the {} at {rel:.6} s{ev}",
                    m.frame,
                    if m.from_sender { "sender" } else { "receiver" }
                ),
            ),
            MarkKind::Evidence => {
                let y = c.py(if m.from_sender { m.hi } else { m.lo } as f64);
                let _ = write!(
                    c.over(),
                    "<g class=\"mark m-E ev\"{}{data}><title>frame {}{what} at {rel:.6} s, quoted by a finding</title><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"6\"/></g>",
                    id.as_deref().map(|i| format!(" id=\"{i}\"")).unwrap_or_default(),
                    m.frame
                );
                continue;
            }
        };
        let class = if m.evidence { format!("{class} ev") } else { class.to_owned() };
        c.letter(x, y.max(c.top() + 9.0).min(c.bottom_px() - 2.0), &class, letter, &title, id.as_deref(), &data);
    }
    c.finish()
}

fn tput(t: &StreamTrace, xa: Axis) -> String {
    let s = t.info.stream;
    let span = secs(t.span_ns());
    // A moving average over a 40th of the stream (at least one hover group), drawn per group.
    let win = (COLS / 40).max(GROUP);
    let wdur = span * win as f64 / COLS as f64;
    let gdur = span * GROUP as f64 / COLS as f64;
    let rates: Vec<(f64, f64)> = (0..COLS.div_ceil(GROUP))
        .map(|g| {
            let mid = g * GROUP + GROUP / 2;
            let a = mid.saturating_sub(win / 2);
            let cols = t.cols.get(a..(a + win).min(COLS)).unwrap_or(&[]);
            let b: u64 = cols.iter().map(|c| c.bytes).sum();
            let r: u64 = cols.iter().map(|c| c.retrans_bytes).sum();
            let dur = wdur * cols.len() as f64 / win as f64;
            (b as f64 / dur, (b - r.min(b)) as f64 / dur)
        })
        .collect();
    let max = rates.iter().map(|r| r.0).fold(0.0, f64::max);
    let mut c = Chart::new(
        format!("stream-{s}-tput"),
        format!("throughput of stream {s}"),
        xa.clone(),
        Axis::zero_to(max, Fmt::BytesPerS, "payload rate (bytes/s)"),
        240.0,
    );
    c.attr("data-kind", "tput");
    c.legend("tput", &format!("throughput (moving average over {:.3} s)", wdur), Glyph::Line);
    c.legend("good", "goodput", Glyph::Line);
    let (mut p1, mut p2) = (String::new(), String::new());
    for (i, (a, g)) in rates.iter().enumerate() {
        let x0 = c.left() + (i * GROUP) as f64;
        let x1 = (x0 + GROUP as f64).min(c.left() + c.plot_w());
        let cmd = if i == 0 { "M" } else { "L" };
        let _ = write!(p1, "{cmd}{x0:.1} {:.1}H{x1:.1}", c.py(*a));
        let _ = write!(p2, "{cmd}{x0:.1} {:.1}H{x1:.1}", c.py(*g));
    }
    let _ = write!(c.body(), "<path class=\"tput\" d=\"{p1}\"/><path class=\"good\" d=\"{p2}\"/>");
    let first = xa.min;
    col_hover(&mut c, first, span, &t.cols, |g| {
        let b: u64 = g.iter().map(|c| c.bytes).sum();
        let r: u64 = g.iter().map(|c| c.retrans_bytes).sum();
        (b > 0).then(|| {
            format!(
                "in this slice: {b} bytes, {r} of them retransmitted ({} over the slice)",
                svg::value(Fmt::BytesPerS, b as f64 / gdur)
            )
        })
    });
    c.finish()
}

fn rtt(t: &StreamTrace, xa: Axis) -> String {
    let s = t.info.stream;
    let max = t.cols.iter().filter(|c| c.rtt_n > 0).map(|c| c.rtt_hi).max().unwrap_or(0) as f64 / 1e6;
    let mut c = Chart::new(
        format!("stream-{s}-rtt"),
        format!("round-trip times of stream {s}"),
        xa.clone(),
        Axis::zero_to(max.max(0.001), Fmt::Millis, "RTT (ms)"),
        220.0,
    );
    c.attr("data-kind", "rtt");
    c.legend(
        "rtt",
        &format!(
            "RTT samples ({}; a bar spans the lowest to highest in a pixel column, the dot is their mean)",
            t.rtt_samples
        ),
        Glyph::Dot,
    );
    let mut p = String::new();
    let mut dots = String::new();
    for (i, col) in t.cols.iter().enumerate() {
        if col.rtt_n == 0 {
            continue;
        }
        let x = colx(&c, i);
        let (lo, hi) = (c.py(col.rtt_lo as f64 / 1e6), c.py(col.rtt_hi as f64 / 1e6));
        if lo - hi >= 1.0 {
            let _ = write!(p, "M{x:.1} {lo:.1}V{hi:.1}");
        }
        let mean = col.rtt_sum as f64 / f64::from(col.rtt_n) / 1e6;
        let _ = write!(dots, "M{:.1} {:.1}h4", x - 2.0, c.py(mean));
    }
    let _ = write!(c.body(), "<path class=\"rtt\" d=\"{p}\"/><path class=\"rtt\" stroke-width=\"4\" d=\"{dots}\"/>");
    if t.rtt_samples == 0 {
        let (x, y) = (c.left() + 10.0, c.top() + 16.0);
        let _ = write!(
            c.over(),
            "<text x=\"{x}\" y=\"{y}\">no RTT sample: no ACK acknowledged a data segment exactly</text>"
        );
    }
    let span = secs(t.span_ns());
    col_hover(&mut c, xa.min, span, &t.cols, |g| {
        let n: u32 = g.iter().map(|c| c.rtt_n).sum();
        (n > 0).then(|| {
            let lo = g.iter().filter(|c| c.rtt_n > 0).map(|c| c.rtt_lo).min().unwrap_or(0) as f64 / 1e6;
            let hi = g.iter().map(|c| c.rtt_hi).max().unwrap_or(0) as f64 / 1e6;
            let sum: i64 = g.iter().map(|c| c.rtt_sum).sum();
            format!("{n} RTT samples: min {lo:.3} ms, mean {:.3} ms, max {hi:.3} ms", sum as f64 / f64::from(n) / 1e6)
        })
    });
    c.finish()
}

fn wnd(t: &StreamTrace, xa: Axis) -> String {
    let s = t.info.stream;
    let fl = t.cols.iter().map(|c| c.inflight).max().unwrap_or(0);
    let win = t.cols.iter().filter(|c| c.acks > 0).map(|c| c.win_lo).max().unwrap_or(0);
    let top = f64::from(fl.max(win).max(1));
    let mut c = Chart::new(
        format!("stream-{s}-wnd"),
        format!("bytes in flight and window of stream {s}"),
        xa.clone(),
        Axis::zero_to(top, Fmt::Bytes, "bytes"),
        240.0,
    );
    c.attr("data-kind", "wnd");
    c.legend("inflight", "bytes in flight (largest per pixel column)", Glyph::Line);
    c.legend("rwin", "receive window (smallest per pixel column)", Glyph::Line);
    let (mut pf, mut pw) = (String::new(), String::new());
    for (i, col) in t.cols.iter().enumerate() {
        let x = colx(&c, i);
        if col.inflight > 0 {
            let _ = write!(pf, "{}{x:.1} {:.1}", if pf.is_empty() { "M" } else { "L" }, c.py(f64::from(col.inflight)));
        }
        if col.acks > 0 {
            let y = c.py(f64::from(col.win_lo));
            if pw.is_empty() {
                let _ = write!(pw, "M{x:.1} {y:.1}");
            } else {
                let _ = write!(pw, "H{x:.1}V{y:.1}");
            }
        }
    }
    if !pw.is_empty() {
        let _ = write!(pw, "H{:.1}", c.left() + c.plot_w());
    }
    let _ = write!(c.body(), "<path class=\"rwin\" d=\"{pw}\"/><path class=\"inflight\" d=\"{pf}\"/>");
    let span = secs(t.span_ns());
    col_hover(&mut c, xa.min, span, &t.cols, |g| {
        let f = g.iter().map(|c| c.inflight).max().unwrap_or(0);
        let w = g.iter().filter(|c| c.acks > 0).map(|c| c.win_lo).min();
        if f == 0 && w.is_none() {
            return None;
        }
        Some(format!(
            "bytes in flight up to {}\nreceive window down to {}",
            svg::value(Fmt::Bytes, f64::from(f)),
            w.map(|w| svg::value(Fmt::Bytes, f64::from(w))).unwrap_or_else(|| "(no ACK)".into())
        ))
    });
    c.finish()
}

/// Log-spaced latency bins, ms (upper edges); the last bin is open.
const BINS_MS: [f64; 13] =
    [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, f64::INFINITY];

fn bin_label(i: usize) -> String {
    let lo = if i == 0 { 0.0 } else { BINS_MS.get(i - 1).copied().unwrap_or(0.0) };
    let f = |v: f64| if v >= 1000.0 { format!("{}s", v / 1000.0) } else { format!("{v}") };
    match BINS_MS.get(i) {
        Some(hi) if hi.is_finite() => format!("{}–{}", f(lo), f(*hi)),
        _ => format!("≥{}", f(lo)),
    }
}

/// One histogram: latencies (ms) of one server plus the unanswered count.
fn histogram(id: &str, title: &str, what: &str, lat: &[f64], unanswered: usize) -> String {
    let mut counts = [0u32; BINS_MS.len()];
    for v in lat {
        let i = BINS_MS.iter().position(|e| v < e).unwrap_or(BINS_MS.len() - 1);
        if let Some(c) = counts.get_mut(i) {
            *c += 1;
        }
    }
    let nb = BINS_MS.len() + 1;
    let max = counts.iter().copied().max().unwrap_or(0).max(u32::try_from(unanswered).unwrap_or(u32::MAX));
    let mut c = Chart::new(
        id,
        title,
        Axis::new(0.0, nb as f64, Fmt::Count, format!("{what} (ms, log-spaced bins)")),
        Axis::zero_to(f64::from(max.max(1)), Fmt::Count, "transactions"),
        262.0,
    )
    .with_width(475.0)
    .with_left(58.0)
    // Room for the slanted bin labels between the axis and its title.
    .with_bottom(76.0);
    c.hide_x_ticks();
    c.legend("hist", "answered", Glyph::Box);
    c.legend("hist-un", &format!("no answer ({unanswered})"), Glyph::Box);
    let base = c.py(0.0);
    for i in 0..nb {
        let (x0, x1) = (c.px(i as f64) + 1.0, c.px(i as f64 + 1.0) - 1.0);
        let (n, class, label) = if i < BINS_MS.len() {
            (counts.get(i).copied().unwrap_or(0), "hist", bin_label(i))
        } else {
            (u32::try_from(unanswered).unwrap_or(u32::MAX), "hist-un", "none".to_owned())
        };
        let y = c.py(f64::from(n));
        let _ = write!(
            c.body(),
            "<rect class=\"{class}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
            x1 - x0,
            base - y
        );
        let cx = (x0 + x1) / 2.0;
        let ly = c.bottom_px() + 8.0;
        let _ = write!(c.over(), "<text x=\"{cx:.1}\" y=\"{ly:.1}\" text-anchor=\"end\" transform=\"rotate(-45 {cx:.1} {ly:.1})\" font-size=\"9\">{}</text>", Esc(&label));
        c.hover(x0 - 1.0, x1 + 1.0, &format!("{label} ms: {n} transactions"));
    }
    c.finish()
}

fn app(out: &mut String, d: &CaptureData) {
    let Some(p) = &d.analysis.proto else { return };
    out.push_str("<section id=\"app\"><h2>DNS and HTTP</h2>");
    // Histograms per server.
    let mut dns_servers: Vec<(std::net::SocketAddr, Vec<f64>, usize)> = Vec::new();
    let mut at: std::collections::HashMap<std::net::SocketAddr, usize> = std::collections::HashMap::new();
    for t in &p.dns {
        let i = *at.entry(t.server).or_insert_with(|| {
            dns_servers.push((t.server, Vec::new(), 0));
            dns_servers.len() - 1
        });
        let e = dns_servers.get_mut(i);
        if let Some(e) = e {
            match t.response_time_ms() {
                Some(ms) => e.1.push(ms),
                None if t.unanswered() => e.2 += 1,
                None => {}
            }
        }
    }
    dns_servers.sort_by(|a, b| (b.1.len() + b.2).cmp(&(a.1.len() + a.2)).then(a.0.cmp(&b.0)));
    let mut http_servers: Vec<(std::net::SocketAddr, Vec<f64>, usize)> = Vec::new();
    at.clear();
    for h in p.http.iter().filter(|h| h.has_request() && !h.ssdp) {
        let Some(server) = h.server else { continue };
        let i = *at.entry(server).or_insert_with(|| {
            http_servers.push((server, Vec::new(), 0));
            http_servers.len() - 1
        });
        let e = http_servers.get_mut(i);
        if let Some(e) = e {
            match h.ttfb_ns {
                Some(ns) => e.1.push(ns as f64 / 1e6),
                None if h.unanswered() => e.2 += 1,
                None => {}
            }
        }
    }
    http_servers.sort_by(|a, b| (b.1.len() + b.2).cmp(&(a.1.len() + a.2)).then(a.0.cmp(&b.0)));
    if !dns_servers.is_empty() || !http_servers.is_empty() {
        out.push_str("<h3 id=\"app-hist\">Latency per server</h3><div class=\"row\">");
        for (i, (srv, lat, un)) in dns_servers.iter().take(HIST_SERVERS).enumerate() {
            let svg = histogram(
                &format!("dns-hist-{i}"),
                &format!("DNS response times from {srv}"),
                "DNS response time",
                lat,
                *un,
            );
            page::figure(out, &format!("DNS server {srv}: {} answered, {un} unanswered", lat.len()), &svg);
        }
        for (i, (srv, lat, un)) in http_servers.iter().take(HIST_SERVERS).enumerate() {
            let svg = histogram(
                &format!("http-hist-{i}"),
                &format!("HTTP time to first byte from {srv}"),
                "HTTP time to first byte",
                lat,
                *un,
            );
            page::figure(out, &format!("HTTP server {srv}: {} answered, {un} unanswered", lat.len()), &svg);
        }
        out.push_str("</div>");
        let more = dns_servers.len().saturating_sub(HIST_SERVERS) + http_servers.len().saturating_sub(HIST_SERVERS);
        if more > 0 {
            let _ = write!(out, "<p class=\"note\">{more} servers with fewer transactions are not drawn.</p>");
        }
    }
    waterfall(out, d, p);
    out.push_str("</section>\n");
}

/// One row of the waterfall: label, tooltip, phases as (class, start ns, end ns).
struct Row {
    start: i64,
    label: String,
    title: String,
    phases: Vec<(&'static str, i64, i64)>,
}

/// When an HTTP transaction's row starts (its DNS lookup, connect or request).
fn http_start(h: &netcase_proto::HttpTxn, p: &netcase_proto::ProtoOutput) -> Option<i64> {
    let rs = h.request_start_ts_ns.or(h.request_ts_ns)?;
    if h.seq_on_conn == 1 {
        let conn = h.conn.and_then(|i| p.conns.get(i as usize));
        if let Some((syn, _)) = conn.and_then(|c| Some((c.syn?.ts_ns, c.synack?.ts_ns))) {
            return Some(h.dns_ns.map_or(syn, |dns| syn - dns));
        }
    }
    Some(rs)
}

/// When a TLS connection's row starts.
fn tls_start(c: &netcase_proto::AppConn) -> i64 {
    match (c.syn, c.synack) {
        (Some(s), Some(_)) => s.ts_ns,
        _ => c.first_ts_ns,
    }
}

fn waterfall(out: &mut String, d: &CaptureData, p: &netcase_proto::ProtoOutput) {
    // The first WATERFALL_ROWS rows by start (ties in DNS, HTTP, TLS order) are picked before
    // any label is formatted: a capture may hold a hundred thousand transactions.
    let mut picks: Vec<(i64, u8, usize)> = Vec::new();
    picks.extend(p.dns.iter().enumerate().map(|(i, t)| (t.query_ts_ns.first().copied().unwrap_or(t.ts_ns), 0, i)));
    picks.extend(
        p.http
            .iter()
            .enumerate()
            .filter(|(_, h)| h.has_request() && !h.ssdp)
            .filter_map(|(i, h)| Some((http_start(h, p)?, 1, i))),
    );
    picks.extend(p.conns.iter().enumerate().filter(|(_, c)| c.tls.is_some()).map(|(i, c)| (tls_start(c), 2, i)));
    let total = picks.len();
    if picks.len() > WATERFALL_ROWS {
        picks.select_nth_unstable(WATERFALL_ROWS - 1);
        picks.truncate(WATERFALL_ROWS);
    }
    let picked: std::collections::HashSet<(u8, usize)> = picks.iter().map(|&(_, k, i)| (k, i)).collect();
    let chosen = |kind: u8, i: usize| picked.contains(&(kind, i));
    let mut rows: Vec<Row> = Vec::new();
    let end_of_capture = d.t1_ns;
    for t in p.dns.iter().enumerate().filter(|(i, _)| chosen(0, *i)).map(|(_, t)| t) {
        let name = t.name.as_deref().unwrap_or("(no question)");
        let q = t.query_ts_ns.first().copied().unwrap_or(t.ts_ns);
        let mut phases = Vec::new();
        let outcome = match (t.response_ts_ns, t.unanswered()) {
            (Some(r), _) => {
                phases.push(("w-dns", q, r));
                format!("answered in {:.3} ms", (r - q) as f64 / 1e6)
            }
            (None, true) => {
                phases.push((
                    "w-none",
                    q,
                    t.last_attempt_time_ns().unwrap_or(q).max(q + 1).max(end_of_capture.min(q + 5_000_000_000)),
                ));
                format!("no answer ({} attempts)", t.attempts())
            }
            _ => "response only".to_owned(),
        };
        rows.push(Row {
            start: q,
            label: format!("DNS {} {name}", t.qtype_name()),
            title: format!("DNS {} {name} → {}: {outcome}", t.qtype_name(), t.server),
            phases,
        });
    }
    for h in p.http.iter().enumerate().filter(|(i, h)| h.has_request() && !h.ssdp && chosen(1, *i)).map(|(_, h)| h) {
        let Some(rs) = h.request_start_ts_ns.or(h.request_ts_ns) else { continue };
        let mut phases = Vec::new();
        let conn = h.conn.and_then(|i| p.conns.get(i as usize));
        let mut start = rs;
        if h.seq_on_conn == 1 {
            if let Some((syn, synack)) = conn.and_then(|c| Some((c.syn?.ts_ns, c.synack?.ts_ns))) {
                if let Some(dns) = h.dns_ns {
                    phases.push(("w-dns", syn - dns, syn));
                    start = syn - dns;
                } else {
                    start = syn;
                }
                phases.push(("w-connect", syn, synack));
            }
        }
        if let Some(rq) = h.request_ts_ns {
            if rq > rs {
                phases.push(("w-req", rs, rq));
            }
            match h.response_start_ts_ns {
                Some(r0) => {
                    phases.push(("w-ttfb", rq, r0));
                    if let Some(r1) = h.response_ts_ns {
                        phases.push(("w-transfer", r0, r1.max(r0)));
                    }
                }
                None => phases.push(("w-none", rq, end_of_capture.max(rq + 1))),
            }
        }
        let host = h.host.as_deref().unwrap_or("");
        let uri = h.uri.as_deref().unwrap_or("");
        let method = h.method.as_deref().unwrap_or("");
        let status = h.status.map(|s| s.to_string()).unwrap_or_else(|| "no response".into());
        let timing = h.timing().map(|t| {
            t.phases()
                .iter()
                .filter_map(|(n, v)| Some(format!("{n} {:.3} ms", (*v)? as f64 / 1e6)))
                .collect::<Vec<_>>()
                .join(", ")
        });
        rows.push(Row {
            start,
            label: format!("{method} {host}{uri}"),
            title: format!(
                "{method} http://{host}{uri} → {status} (stream {})\n{}",
                h.stream.map(|s| s.to_string()).unwrap_or_default(),
                timing.unwrap_or_default()
            ),
            phases,
        });
    }
    for c in p.conns.iter().enumerate().filter(|(i, c)| c.tls.is_some() && chosen(2, *i)).map(|(_, c)| c) {
        let Some(tls) = c.tls.as_deref() else { continue };
        let mut phases = Vec::new();
        let mut start = c.first_ts_ns;
        if let (Some(s), Some(sa)) = (c.syn, c.synack) {
            phases.push(("w-connect", s.ts_ns, sa.ts_ns));
            start = s.ts_ns;
        }
        if let (Some(h), Some(a)) = (tls.client_hello_ts_ns, tls.client_app_data_ts_ns) {
            phases.push(("w-tls", h, a));
            if let Some(sd) = tls.server_app_data_ts_ns {
                phases.push(("w-ttfb", a, sd));
                phases.push(("w-transfer", sd, c.last_ts_ns.max(sd)));
            }
        } else if let Some(h) = tls.client_hello_ts_ns {
            phases.push(("w-none", h, c.last_ts_ns.max(h + 1)));
        }
        let sni = tls.sni.as_deref().unwrap_or("(no SNI)");
        rows.push(Row {
            start,
            label: format!("TLS {sni}"),
            title: format!("TLS {sni} → {} (stream {})", c.server, c.stream.map(|s| s.to_string()).unwrap_or_default()),
            phases,
        });
    }
    if rows.is_empty() {
        return;
    }
    rows.sort_by_key(|r| r.start);
    let lo = rows
        .iter()
        .flat_map(|r| r.phases.iter().map(|p| p.1))
        .chain(rows.iter().map(|r| r.start))
        .min()
        .unwrap_or(d.t0_ns);
    let hi = rows.iter().flat_map(|r| r.phases.iter().map(|p| p.2)).max().unwrap_or(lo).max(lo + 1);
    let n = rows.len();
    let h = 30.0 + 44.0 + 14.0 * n as f64;
    let xa =
        Axis::new(secs(lo - d.t0_ns), secs(hi - d.t0_ns), Fmt::Seconds, "time since the capture's first frame (s)");
    let mut c = Chart::new(
        "app-waterfall",
        "waterfall of DNS, HTTP and TLS transactions",
        xa,
        Axis::new(0.0, n as f64, Fmt::Count, ""),
        h,
    )
    .with_left(300.0);
    c.hide_y_ticks();
    for (class, label) in [
        ("w-dns", "DNS"),
        ("w-connect", "connect"),
        ("w-tls", "TLS"),
        ("w-req", "request"),
        ("w-ttfb", "first byte"),
        ("w-transfer", "transfer"),
        ("w-none", "no answer"),
    ] {
        c.legend(class, label, Glyph::Box);
    }
    for (i, r) in rows.iter().enumerate() {
        let y = c.top() + 14.0 * i as f64;
        let label: String = if r.label.chars().count() > 46 {
            r.label.chars().take(45).chain(std::iter::once('…')).collect()
        } else {
            r.label.clone()
        };
        let lx = c.left() - 6.0;
        let _ = write!(
            c.over(),
            "<text x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"end\"><title>{}</title>{}</text>",
            y + 10.5,
            escape(&r.title),
            Esc(&label)
        );
        let mut g = String::new();
        for (class, a, b) in &r.phases {
            let (x0, x1) = (c.px(secs(a - d.t0_ns)), c.px(secs(b - d.t0_ns)));
            let _ = write!(
                g,
                "<rect class=\"{class}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\"><title>{}: {} ({:.3} ms)</title></rect>",
                y + 2.0,
                (x1 - x0).max(1.5),
                Esc(&r.label),
                &class[2..],
                (b - a) as f64 / 1e6
            );
        }
        c.body().push_str(&g);
    }
    out.push_str("<h3 id=\"app-wf\">Waterfall</h3>");
    page::figure(out, "Each DNS query, HTTP request and TLS connection: lookup, connect, TLS handshake, waiting for the first byte, transfer. Hover a bar for its duration, a label for the whole name.", &c.finish());
    if total > n {
        let _ = write!(out, "<p class=\"note\">The first {n} of {total} transactions by start time are drawn.</p>");
    }
}

fn legend_text(out: &mut String) {
    out.push_str(
        "<section id=\"legend\"><h2>How to read the graphs</h2><ul>\
<li><b>Time-sequence (tcptrace style)</b>: x is time, y the relative sequence number of the data direction. Blue vertical strokes are data segments (one per pixel column, from the lowest to the highest byte sent in it); the green line is the receiver's ACK, the yellow line the ACK plus the advertised window (what the sender may send up to); purple strokes are SACK blocks. Letters mark single frames as tcptrace does: <b>R</b> retransmission, <b>O</b> out-of-order, <b>P</b> zero-window probe, <b>Z</b> zero window, <b>3</b> third duplicate ACK, <b>RST</b> a reset; a red ring is a frame a finding quotes. Hover a letter for its frame number.</li>\
<li><b>Throughput and goodput</b>: payload bytes per time slice of 5 pixel columns; goodput leaves out bytes sent again.</li>\
<li><b>RTT</b>: one sample per ACK that acknowledges a data segment exactly (as Wireshark's tcp.analysis.ack_rtt), so an ACK covering many segments gives one sample, not one per segment.</li>\
<li><b>Bytes in flight vs window</b>: data sent and not yet acknowledged (Wireshark's tcp.analysis.bytes_in_flight, which ignores SACK) against the receiver's advertised window; in flight touching the window means the receiver limited the sender.</li>\
<li><b>I/O graph</b>: every frame of the capture per interval; the second panel counts events per interval.</li>\
<li><b>Waterfall</b>: DNS lookups, TCP connects, TLS handshakes, waiting for the first byte and transfers per transaction.</li></ul></section>\n",
    );
}
