//! What the capture report draws, gathered in two passes over the file.
//!
//! Pass 1 is netcase's normal analysis ([`netcase_analysis::analyse_file`]): findings, flow
//! summaries, DNS/HTTP/TLS transactions. From it the report picks the TCP streams to draw: the
//! ones a finding is about, then the largest by bytes. Pass 2 reads the file again through the
//! same reader and decoder, and sends the frames of the chosen streams through the same
//! duplicate filter and flow tracker (so the `tcp.analysis` flags are the ones the findings
//! quote); it keeps, in bounded memory:
//!
//! * the I/O graph: packets and bytes per interval for every frame, with retransmissions,
//!   duplicate ACKs and zero windows (pass 1's per-frame analysis flags, taken from its
//!   `--events` stream) and RSTs per interval;
//! * for each chosen stream, one record per pixel column of its graphs (lowest and highest
//!   sequence number, ACK and window edge, SACK span, RTT min/max/mean, bytes in flight, ...)
//!   and every flagged segment as its own mark, at its exact time;
//! * the time of every frame a finding quotes as evidence.

use netcase_analysis::{Analysis, FlowRecords, Options as PassOptions};
use netcase_capture::CaptureReader;
use netcase_flow::{
    AnalysisFlags, ConnEnd, ConnSummary, Endpoint, FlowConfig, FlowSink, FlowTracker, FrameAnalysis, Side, UdpSummary,
};
use netcase_model::{Evidence, Subject};
use std::collections::HashMap;
use std::path::Path;

/// Pixel columns of a stream's graphs (the plot width of a full-width chart).
pub const COLS: usize = 860;
/// Fine columns per pixel column while gathering: the zoomed time-sequence graph of a stream
/// whose data moves in a small part of its span is drawn from them.
pub const ZOOM: usize = 16;
/// A zoomed graph is drawn when the data moves in less than this part of the stream's span.
pub const ZOOM_BELOW: f64 = 0.25;
/// Marks kept per stream; beyond this flagged segments are only counted in their column.
pub const MAX_MARKS: usize = 20_000;
/// Most I/O-graph intervals.
pub const MAX_BINS: usize = 430;

/// What to draw.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The largest streams by bytes to draw besides those with findings.
    pub top: usize,
    /// At most this many streams with findings get graphs (the worst findings first).
    pub max_finding_streams: usize,
    /// Analyse copies of frames as separate packets (as `netcase pcap --keep-duplicates`).
    pub keep_duplicates: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { top: 5, max_finding_streams: 10, keep_duplicates: false }
    }
}

/// A failure to read the capture.
#[derive(Debug)]
pub struct GatherError(pub netcase_capture::CaptureError);

impl std::fmt::Display for GatherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for GatherError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// One TCP stream as pass 1 summarised it.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// `tcp.stream`.
    pub stream: u32,
    /// The sender of the first frame (the client when the handshake was seen).
    pub a: Endpoint,
    /// The other end.
    pub b: Endpoint,
    /// First frame time, ns.
    pub first_ts_ns: i64,
    /// Last frame time, ns.
    pub last_ts_ns: i64,
    /// Frames both ways.
    pub frames: u64,
    /// Bytes on the wire both ways.
    pub bytes: u64,
    /// Payload bytes a → b.
    pub payload_ab: u64,
    /// Payload bytes b → a.
    pub payload_ba: u64,
    /// Frames flagged as retransmissions.
    pub retransmissions: u32,
    /// How it ended.
    pub end: ConnEnd,
    /// Handshake round trip, ns.
    pub irtt_ns: Option<i64>,
}

impl StreamInfo {
    fn of(c: &ConnSummary) -> Self {
        StreamInfo {
            stream: c.stream,
            a: c.a,
            b: c.b,
            first_ts_ns: c.first_ts_ns,
            last_ts_ns: c.last_ts_ns,
            frames: c.ab.frames + c.ba.frames,
            bytes: c.ab.bytes + c.ba.bytes,
            payload_ab: c.ab.payload_bytes,
            payload_ba: c.ba.payload_bytes,
            retransmissions: c.flag_counts.get(AnalysisFlags::RETRANSMISSION),
            end: c.end,
            irtt_ns: c.irtt_ns,
        }
    }

    /// A connection seen in two pieces (its state was evicted and rebuilt): one record.
    fn merge(&mut self, o: &StreamInfo) {
        self.first_ts_ns = self.first_ts_ns.min(o.first_ts_ns);
        self.last_ts_ns = self.last_ts_ns.max(o.last_ts_ns);
        self.frames += o.frames;
        self.bytes += o.bytes;
        self.payload_ab += o.payload_ab;
        self.payload_ba += o.payload_ba;
        self.retransmissions = self.retransmissions.saturating_add(o.retransmissions);
        self.end = o.end;
        self.irtt_ns = self.irtt_ns.or(o.irtt_ns);
    }

    /// The side that sent more payload: the one whose data the time-sequence graph follows.
    pub fn data_side(&self) -> Side {
        if self.payload_ab >= self.payload_ba {
            Side::A
        } else {
            Side::B
        }
    }
}

/// Pass 1's flow records: one small record per TCP stream.
#[derive(Default)]
struct Records {
    streams: HashMap<u32, StreamInfo>,
    udp: u64,
}

impl FlowRecords for Records {
    fn tcp(&mut self, c: &ConnSummary) {
        let s = StreamInfo::of(c);
        match self.streams.get_mut(&c.stream) {
            Some(e) => e.merge(&s),
            None => {
                self.streams.insert(c.stream, s);
            }
        }
    }
    fn udp(&mut self, _u: &UdpSummary) {
        self.udp += 1;
    }
}

/// Everything the capture report shows.
#[derive(Debug)]
pub struct CaptureData {
    /// The file as given.
    pub path: String,
    /// Pass 1's result: findings, capture facts, transactions.
    pub analysis: Analysis,
    /// TCP streams in the capture.
    pub tcp_streams: u64,
    /// UDP flows in the capture.
    pub udp_flows: u64,
    /// Time of the first frame, ns (the graphs' time zero).
    pub t0_ns: i64,
    /// Time of the last frame, ns.
    pub t1_ns: i64,
    /// The I/O graph.
    pub io: IoGraph,
    /// The streams drawn, those with findings first.
    pub traces: Vec<StreamTrace>,
    /// Frames quoted as evidence, sorted, with their time (`None`: not in the file).
    pub evidence: Vec<(u64, Option<i64>)>,
    /// The largest streams by bytes (for the summary table), largest first.
    pub top: Vec<StreamInfo>,
    /// Per stream with a finding (not necessarily drawn): its record, for the timeline.
    pub finding_streams: Vec<StreamInfo>,
    /// Seconds spent in each pass (for `NETCASE_PROFILE`).
    pub pass_secs: [f64; 2],
}

impl CaptureData {
    /// The drawn stream `stream`, if drawn.
    pub fn trace(&self, stream: u32) -> Option<&StreamTrace> {
        self.traces.iter().find(|t| t.info.stream == stream)
    }
    /// The time of evidence frame `frame`.
    pub fn evidence_ts(&self, frame: u64) -> Option<i64> {
        self.evidence.binary_search_by_key(&frame, |e| e.0).ok().and_then(|i| self.evidence.get(i)).and_then(|e| e.1)
    }
    /// The record of stream `s` among those with findings or the top ones.
    pub fn stream_info(&self, s: u32) -> Option<&StreamInfo> {
        self.finding_streams.iter().chain(self.top.iter()).find(|i| i.stream == s)
    }
}

/// Reads `path` twice and gathers what the report draws.
pub fn gather(path: &Path, opts: &Options) -> Result<CaptureData, GatherError> {
    let t = std::time::Instant::now();
    let mut rec = Records::default();
    let mut events = EventLog::default();
    let pass_opts = PassOptions {
        events: true,
        proto: true,
        rules: true,
        keep_duplicates: opts.keep_duplicates,
        single_thread: false,
    };
    let analysis = netcase_analysis::analyse_file(path, pass_opts, Some(&mut events), &mut rec, &mut |_, _| {})
        .map_err(GatherError)?;
    events.flush_line();
    let pass1 = t.elapsed().as_secs_f64();

    // Streams with findings (worst first), then the largest.
    let mut finding_streams: Vec<u32> = Vec::new();
    for f in &analysis.findings {
        if let Subject::Flow { proto: "tcp", stream: Some(s), .. } = f.subject {
            if let Ok(s) = u32::try_from(s) {
                if rec.streams.contains_key(&s) && !finding_streams.contains(&s) {
                    finding_streams.push(s);
                }
            }
        }
    }
    let mut by_bytes: Vec<&StreamInfo> = rec.streams.values().collect();
    by_bytes.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.stream.cmp(&b.stream)));
    let top: Vec<StreamInfo> = by_bytes.iter().take(opts.top.max(10)).map(|s| (*s).clone()).collect();
    let mut chosen: Vec<u32> = finding_streams.iter().copied().take(opts.max_finding_streams).collect();
    for s in by_bytes.iter().take(opts.top) {
        if !chosen.contains(&s.stream) {
            chosen.push(s.stream);
        }
    }
    let finding_infos: Vec<StreamInfo> = finding_streams.iter().filter_map(|s| rec.streams.get(s).cloned()).collect();

    let mut evidence: Vec<u64> = analysis
        .findings
        .iter()
        .flat_map(|f| f.evidence.iter())
        .filter_map(|e| match e {
            Evidence::Frames { frames, .. } => Some(frames.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    evidence.sort_unstable();
    evidence.dedup();

    let t0 = analysis.info.first_ts_ns.unwrap_or(0);
    let t1 = analysis.info.last_ts_ns.unwrap_or(t0).max(t0);
    let traces: Vec<StreamTrace> =
        chosen.iter().filter_map(|s| rec.streams.get(s)).map(|i| StreamTrace::new(i.clone())).collect();
    let tcp_streams = u64::from(analysis.tracker.tcp_streams);
    let udp_flows = rec.udp.max(u64::from(analysis.tracker.udp_streams));
    drop(rec);

    let t = std::time::Instant::now();
    let mut col = Collector::new(IoGraph::new(t0, t1), traces, &evidence, &events.flagged);
    // The duplicate filter changes what the tracker sees only where pass 1 found copies or
    // padded frames; without either it is skipped (the same result, less work).
    let filter = analysis.artefacts.dups.copies > 0 || analysis.artefacts.padded_acks > 0;
    pass2(path, opts, filter, &mut col)?;
    let pass2 = t.elapsed().as_secs_f64();
    let Collector { mut io, sink, ev_ts, .. } = col;
    let mut traces = sink.traces;
    for t in &mut traces {
        t.finish();
    }
    if let Some(p) = &analysis.proto {
        for d in &p.dns {
            io.count_app(d.ts_ns, true);
        }
        for h in &p.http {
            if let Some(ts) = h.request_start_ts_ns.or(h.request_ts_ns).or(h.response_ts_ns) {
                io.count_app(ts, false);
            }
        }
    }
    let evidence = evidence.into_iter().zip(ev_ts).collect();
    Ok(CaptureData {
        path: path.display().to_string(),
        analysis,
        tcp_streams,
        udp_flows,
        t0_ns: t0,
        t1_ns: t1,
        io,
        traces,
        evidence,
        top,
        finding_streams: finding_infos,
        pass_secs: [pass1, pass2],
    })
}

/// Pass 2: every frame counts in the I/O graph (its analysis flags come from pass 1's
/// events); the frames of the drawn streams (by 4-tuple, within the stream's time span) go
/// through the same duplicate filter and flow tracker as in pass 1 — TCP analysis is per
/// connection, so a tracker that sees only these connections flags their frames alike.
///
/// Two threads when the machine has two processors: this one reads, decodes and fills the
/// I/O graph, and hands the drawn streams' frames (copied, in recycled batches) to a second
/// that runs the duplicate filter, the tracker and the stream records.
fn pass2(path: &Path, opts: &Options, filter: bool, col: &mut Collector<'_>) -> Result<(), GatherError> {
    let mut reader = CaptureReader::open(path).map_err(GatherError)?;
    let two = std::thread::available_parallelism().map_or(1, usize::from) > 1 && !col.sink.traces.is_empty();
    if !two {
        pass2_serial(&mut reader, opts, filter, col);
        return Ok(());
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(4);
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Batch>();
    // The sink goes to the second thread through this slot, so that it is still here when
    // that thread cannot be started.
    let slot = std::sync::Mutex::new(Some(TraceSink {
        traces: std::mem::take(&mut col.sink.traces),
        evidence: col.sink.evidence,
    }));
    let slot_ref = &slot;
    let keep_duplicates = opts.keep_duplicates;
    let spawned = std::thread::scope(|s| {
        let worker = std::thread::Builder::new().name("report-pass2".into()).spawn_scoped(s, move || {
            let Some(mut sink) = slot_ref.lock().ok().and_then(|mut g| g.take()) else { return Vec::new() };
            let mut tracker = FlowTracker::new(FlowConfig::default());
            let mut artefacts = netcase_artefact::Artefacts::new();
            for batch in rx {
                for m in &batch.frames {
                    let Some(data) = batch.data.get(m.start..m.end) else { continue };
                    let mut pkt = netcase_wire::decode(m.link, data);
                    let meta = netcase_artefact::FrameMeta { number: m.number, ts_ns: m.ts_ns, interface: m.interface };
                    if filter && artefacts.frame(&meta, data, &mut pkt).is_some() && !keep_duplicates {
                        continue;
                    }
                    tracker.packet(m.number, m.ts_ns, m.orig_len, data, &pkt, &mut sink);
                }
                // The reader may have stopped taking batches back; then this one is dropped.
                let _ = back_tx.send(batch);
            }
            tracker.finish(&mut sink);
            sink.traces
        });
        let Ok(worker) = worker else { return false };
        let mut batch = Batch::default();
        while let Some(f) = reader.next_frame() {
            col.io.frame(f.ts_ns, f.orig_len);
            col.evidence_frame(f.number, f.ts_ns);
            col.flagged_frame(f.number, f.ts_ns);
            let pkt = netcase_wire::decode(f.link, f.data);
            let (Some(ip), Some(netcase_wire::Transport::Tcp(t))) = (pkt.ip, pkt.transport) else { continue };
            if t.flags & 0x04 != 0 {
                col.io.rst(f.ts_ns);
            }
            if ip.fragment.is_some() || !col.keys.drawn(ip.src, t.src_port, ip.dst, t.dst_port, f.ts_ns) {
                continue;
            }
            let start = batch.data.len();
            batch.data.extend_from_slice(f.data);
            batch.frames.push(BatchFrame {
                number: f.number,
                ts_ns: f.ts_ns,
                orig_len: f.orig_len,
                interface: f.interface,
                link: f.link,
                start,
                end: batch.data.len(),
            });
            if batch.frames.len() >= BATCH_FRAMES || batch.data.len() >= BATCH_BYTES {
                let next = back_rx.try_recv().map(Batch::cleared).unwrap_or_default();
                if tx.send(std::mem::replace(&mut batch, next)).is_err() {
                    break;
                }
            }
        }
        if !batch.frames.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        match worker.join() {
            Ok(traces) => col.sink.traces = traces,
            Err(e) => std::panic::resume_unwind(e),
        }
        true
    });
    if !spawned {
        if let Some(sink) = slot.into_inner().ok().flatten() {
            col.sink = sink;
        }
        pass2_serial(&mut reader, opts, filter, col);
    }
    Ok(())
}

/// Frames per batch handed to pass 2's tracking thread.
const BATCH_FRAMES: usize = 2048;
/// Bytes per batch.
const BATCH_BYTES: usize = 2 << 20;

/// One frame of a batch: its record and where its bytes are in the batch.
struct BatchFrame {
    number: u64,
    ts_ns: i64,
    orig_len: u32,
    interface: u32,
    link: netcase_wire::LinkType,
    start: usize,
    end: usize,
}

/// Frames of the drawn streams, copied.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    frames: Vec<BatchFrame>,
}

impl Batch {
    fn cleared(mut self) -> Self {
        self.data.clear();
        self.frames.clear();
        self
    }
}

/// Pass 2 on one thread.
fn pass2_serial(reader: &mut CaptureReader, opts: &Options, filter: bool, col: &mut Collector<'_>) {
    let mut tracker = FlowTracker::new(FlowConfig::default());
    let mut artefacts = netcase_artefact::Artefacts::new();
    while let Some(f) = reader.next_frame() {
        col.io.frame(f.ts_ns, f.orig_len);
        col.evidence_frame(f.number, f.ts_ns);
        col.flagged_frame(f.number, f.ts_ns);
        let mut pkt = netcase_wire::decode(f.link, f.data);
        let (Some(ip), Some(netcase_wire::Transport::Tcp(t))) = (pkt.ip, pkt.transport) else { continue };
        if t.flags & 0x04 != 0 {
            col.io.rst(f.ts_ns);
        }
        if ip.fragment.is_some() || !col.keys.drawn(ip.src, t.src_port, ip.dst, t.dst_port, f.ts_ns) {
            continue;
        }
        let meta = netcase_artefact::FrameMeta { number: f.number, ts_ns: f.ts_ns, interface: f.interface };
        if filter && artefacts.frame(&meta, f.data, &mut pkt).is_some() && !opts.keep_duplicates {
            continue;
        }
        tracker.packet(f.number, f.ts_ns, f.orig_len, f.data, &pkt, &mut col.sink);
    }
    tracker.finish(&mut col.sink);
}

/// Pass 1's `--events` lines, kept as (frame, flags): the I/O graph's overlays for every
/// stream without a second flow analysis of all of them.
#[derive(Default)]
struct EventLog {
    line: Vec<u8>,
    flagged: Vec<(u64, AnalysisFlags)>,
}

impl EventLog {
    /// Parses `{"frame": N, "stream": S, "flags": ["a", "b"]}`.
    fn flush_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        if let Some(e) = parse_event(&line) {
            self.flagged.push(e);
        }
        self.line = line;
        self.line.clear();
    }
}

fn parse_event(line: &[u8]) -> Option<(u64, AnalysisFlags)> {
    let s = std::str::from_utf8(line).ok()?;
    let rest = s.split_once("\"frame\": ")?.1;
    let frame: u64 = rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
    let list = s.split_once("\"flags\": [")?.1.split(']').next()?;
    let mut flags = AnalysisFlags::empty();
    for name in list.split(',') {
        if let Some(f) = AnalysisFlags::from_name(name.trim().trim_matches('"')) {
            flags.insert(f);
        }
    }
    Some((frame, flags))
}

impl std::io::Write for EventLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            if b == b'\n' {
                self.flush_line();
            } else {
                self.line.push(b);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The drawn streams' 4-tuples and time spans (pass 2's filter).
struct Keys(Vec<(Endpoint, Endpoint, i64, i64)>);

impl Keys {
    fn of(traces: &[StreamTrace]) -> Self {
        Keys(traces.iter().map(|t| (t.info.a, t.info.b, t.info.first_ts_ns, t.info.last_ts_ns)).collect())
    }

    #[inline]
    fn drawn(&self, src: std::net::IpAddr, sp: u16, dst: std::net::IpAddr, dp: u16, ts: i64) -> bool {
        let (s, d) = (Endpoint { addr: src, port: sp }, Endpoint { addr: dst, port: dp });
        self.0.iter().any(|&(a, b, t0, t1)| ((a == s && b == d) || (a == d && b == s)) && ts >= t0 && ts <= t1)
    }
}

/// Pass 2's flow sink: the drawn streams' records.
struct TraceSink<'e> {
    traces: Vec<StreamTrace>,
    evidence: &'e [u64],
}

impl TraceSink<'_> {
    /// The drawn stream of a segment between these sockets at `ts`.
    #[inline]
    fn find(&self, src: std::net::IpAddr, sp: u16, dst: std::net::IpAddr, dp: u16, ts: i64) -> Option<usize> {
        let (s, d) = (Endpoint { addr: src, port: sp }, Endpoint { addr: dst, port: dp });
        self.traces.iter().position(|t| {
            ((t.info.a == s && t.info.b == d) || (t.info.a == d && t.info.b == s))
                && ts >= t.info.first_ts_ns
                && ts <= t.info.last_ts_ns
        })
    }
}

/// Pass 2's state.
struct Collector<'e> {
    io: IoGraph,
    keys: Keys,
    sink: TraceSink<'e>,
    evidence: &'e [u64],
    ev_ts: Vec<Option<i64>>,
    ev_next: usize,
    flagged: &'e [(u64, AnalysisFlags)],
    fl_next: usize,
}

impl<'e> Collector<'e> {
    fn new(io: IoGraph, traces: Vec<StreamTrace>, evidence: &'e [u64], flagged: &'e [(u64, AnalysisFlags)]) -> Self {
        Collector {
            io,
            keys: Keys::of(&traces),
            sink: TraceSink { traces, evidence },
            evidence,
            ev_ts: vec![None; evidence.len()],
            ev_next: 0,
            flagged,
            fl_next: 0,
        }
    }

    /// Pass 1's flags of frame `n`, into the I/O graph (one cursor, frames in order).
    #[inline]
    fn flagged_frame(&mut self, n: u64, ts: i64) {
        while let Some(&(fr, flags)) = self.flagged.get(self.fl_next) {
            if fr > n {
                break;
            }
            if fr == n {
                self.io.flags(ts, flags);
            }
            self.fl_next += 1;
        }
    }

    /// Frames come in increasing number: one cursor over the sorted evidence list.
    #[inline]
    fn evidence_frame(&mut self, n: u64, ts: i64) {
        while let Some(&e) = self.evidence.get(self.ev_next) {
            if e > n {
                break;
            }
            if e == n {
                if let Some(slot) = self.ev_ts.get_mut(self.ev_next) {
                    *slot = Some(ts);
                }
            }
            self.ev_next += 1;
        }
    }
}

impl FlowSink for TraceSink<'_> {
    #[inline]
    fn frame(&mut self, f: &FrameAnalysis<'_>) {
        if f.icmp_error {
            return;
        }
        if let Some(i) = self.find(f.src.addr, f.src.port, f.dst.addr, f.dst.port, f.ts_ns) {
            let ev = self.evidence.binary_search(&f.frame).is_ok();
            if let Some(t) = self.traces.get_mut(i) {
                t.frame(f, ev);
            }
        }
    }
}

/// One I/O-graph interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct IoBin {
    /// Frames.
    pub packets: u32,
    /// Bytes on the wire.
    pub bytes: u64,
    /// TCP retransmissions.
    pub retrans: u32,
    /// Duplicate ACKs.
    pub dupack: u32,
    /// Zero-window segments.
    pub zero_window: u32,
    /// RST segments.
    pub rst: u32,
    /// DNS transactions started.
    pub dns: u32,
    /// HTTP transactions started.
    pub http: u32,
}

/// Per-interval sums over the whole capture.
#[derive(Debug, Clone)]
pub struct IoGraph {
    /// Start of the first interval, ns.
    pub t0_ns: i64,
    /// Interval length, ns (a round number).
    pub bin_ns: i64,
    /// The intervals.
    pub bins: Vec<IoBin>,
}

/// Round interval lengths, ns.
const STEPS_NS: [i64; 22] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
    10_000_000_000,
    60_000_000_000,
    600_000_000_000,
];

impl IoGraph {
    fn new(t0: i64, t1: i64) -> Self {
        let span = t1.saturating_sub(t0).max(1);
        let bin_ns =
            STEPS_NS.iter().copied().find(|s| span / s < MAX_BINS as i64).unwrap_or_else(|| span / MAX_BINS as i64 + 1);
        let n = usize::try_from(span / bin_ns + 1).unwrap_or(MAX_BINS).min(MAX_BINS + 1);
        IoGraph { t0_ns: t0, bin_ns, bins: vec![IoBin::default(); n] }
    }

    #[inline]
    fn bin(&mut self, ts: i64) -> Option<&mut IoBin> {
        let i = ts.saturating_sub(self.t0_ns) / self.bin_ns;
        let last = self.bins.len().saturating_sub(1);
        self.bins.get_mut(usize::try_from(i).unwrap_or(0).min(last))
    }

    #[inline]
    fn frame(&mut self, ts: i64, len: u32) {
        if let Some(b) = self.bin(ts) {
            b.packets += 1;
            b.bytes += u64::from(len);
        }
    }

    fn flags(&mut self, ts: i64, flags: AnalysisFlags) {
        if let Some(b) = self.bin(ts) {
            if flags.intersects(AnalysisFlags::RETRANSMISSION) {
                b.retrans += 1;
            }
            if flags.intersects(AnalysisFlags::DUPLICATE_ACK) {
                b.dupack += 1;
            }
            if flags.intersects(AnalysisFlags::ZERO_WINDOW) {
                b.zero_window += 1;
            }
        }
    }

    fn rst(&mut self, ts: i64) {
        if let Some(b) = self.bin(ts) {
            b.rst += 1;
        }
    }

    fn count_app(&mut self, ts: i64, dns: bool) {
        if let Some(b) = self.bin(ts) {
            if dns {
                b.dns += 1;
            } else {
                b.http += 1;
            }
        }
    }
}

/// The kind of a mark on the time-sequence graph (tcptrace's letters where it has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// A retransmitted segment (R).
    Retrans,
    /// An out-of-order segment (O).
    OutOfOrder,
    /// A zero-window probe (P).
    Probe,
    /// A zero window advertised by the receiver (Z).
    ZeroWindow,
    /// The third duplicate ACK (3).
    TripleDup,
    /// A reset, either side.
    Rst,
    /// A frame a finding quotes, with no other mark.
    Evidence,
}

/// One flagged frame of a drawn stream, at its exact time.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    /// Frame number.
    pub frame: u64,
    /// Time, ns.
    pub ts_ns: i64,
    /// What it is.
    pub kind: MarkKind,
    /// Sequence number (data) or ACK number (receiver's marks), relative.
    pub lo: u64,
    /// End of the segment (data) or window edge (receiver's marks).
    pub hi: u64,
    /// The frame's `tcp.analysis` flags.
    pub flags: AnalysisFlags,
    /// Duplicate-ACK number, if any.
    pub dupack_num: u32,
    /// A finding quotes this frame.
    pub evidence: bool,
    /// Sent by the data sender.
    pub from_sender: bool,
}

/// One pixel column of a stream's graphs.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    /// Data segments (payload or SYN/FIN) from the sender.
    pub segs: u32,
    /// Lowest sequence number sent.
    pub seq_lo: u64,
    /// Highest end of a segment sent.
    pub seq_hi: u64,
    /// Payload bytes sent.
    pub bytes: u64,
    /// Payload bytes in segments flagged as retransmissions.
    pub retrans_bytes: u64,
    /// Largest bytes in flight.
    pub inflight: u32,
    /// ACKs from the receiver.
    pub acks: u32,
    /// Lowest ACK number.
    pub ack_lo: u64,
    /// Highest ACK number.
    pub ack_hi: u64,
    /// The last ACK number.
    pub ack_last: u64,
    /// Lowest window edge (ACK + window).
    pub edge_lo: u64,
    /// Highest window edge.
    pub edge_hi: u64,
    /// The last window edge.
    pub edge_last: u64,
    /// Smallest advertised window (scaled).
    pub win_lo: u32,
    /// Lowest SACK block start (`u64::MAX`: none).
    pub sack_lo: u64,
    /// Highest SACK block end.
    pub sack_hi: u64,
    /// Duplicate ACKs.
    pub dupacks: u32,
    /// RTT samples.
    pub rtt_n: u32,
    /// Smallest RTT sample, ns.
    pub rtt_lo: i64,
    /// Largest RTT sample, ns.
    pub rtt_hi: i64,
    /// Sum of the RTT samples, ns.
    pub rtt_sum: i64,
}

impl Col {
    /// Adds `o` (a later column) to this one.
    #[inline]
    fn absorb(&mut self, o: &Col) {
        self.segs += o.segs;
        self.seq_lo = self.seq_lo.min(o.seq_lo);
        self.seq_hi = self.seq_hi.max(o.seq_hi);
        self.bytes += o.bytes;
        self.retrans_bytes += o.retrans_bytes;
        self.inflight = self.inflight.max(o.inflight);
        if o.acks > 0 {
            self.acks += o.acks;
            self.ack_lo = self.ack_lo.min(o.ack_lo);
            self.ack_hi = self.ack_hi.max(o.ack_hi);
            self.ack_last = o.ack_last;
            self.edge_lo = self.edge_lo.min(o.edge_lo);
            self.edge_hi = self.edge_hi.max(o.edge_hi);
            self.edge_last = o.edge_last;
            self.win_lo = self.win_lo.min(o.win_lo);
        }
        self.sack_lo = self.sack_lo.min(o.sack_lo);
        self.sack_hi = self.sack_hi.max(o.sack_hi);
        self.dupacks += o.dupacks;
        self.rtt_n += o.rtt_n;
        self.rtt_lo = self.rtt_lo.min(o.rtt_lo);
        self.rtt_hi = self.rtt_hi.max(o.rtt_hi);
        self.rtt_sum = self.rtt_sum.saturating_add(o.rtt_sum);
    }
}

/// A zoomed view of a stream: [`COLS`] columns over the part of its span where data moves.
#[derive(Debug, Clone)]
pub struct Zoom {
    /// Start of the view, ns.
    pub first_ns: i64,
    /// Its length, ns.
    pub span_ns: i64,
    /// The columns (some empty when the view is finer than the gathered columns).
    pub cols: Vec<Col>,
    /// When 99 % of the sequence space had been sent, ns (the end of the fine column).
    pub data_end_ns: i64,
}

impl Default for Col {
    fn default() -> Self {
        Col {
            segs: 0,
            seq_lo: u64::MAX,
            seq_hi: 0,
            bytes: 0,
            retrans_bytes: 0,
            inflight: 0,
            acks: 0,
            ack_lo: u64::MAX,
            ack_hi: 0,
            ack_last: 0,
            edge_lo: u64::MAX,
            edge_hi: 0,
            edge_last: 0,
            win_lo: u32::MAX,
            sack_lo: u64::MAX,
            sack_hi: 0,
            dupacks: 0,
            rtt_n: 0,
            rtt_lo: i64::MAX,
            rtt_hi: 0,
            rtt_sum: 0,
        }
    }
}

/// Unwraps a 32-bit relative sequence number into 64 bits, following its last value.
#[derive(Debug, Clone, Copy, Default)]
struct Unwrap(Option<u64>);

impl Unwrap {
    #[inline]
    fn next(&mut self, v: u32) -> u64 {
        let out = match self.0 {
            None => u64::from(v),
            Some(last) => {
                let d = i64::from(v.wrapping_sub(last as u32) as i32);
                (last as i64).saturating_add(d).max(0) as u64
            }
        };
        self.0 = Some(out);
        out
    }
}

/// What pass 2 kept of one drawn stream.
#[derive(Debug, Clone)]
pub struct StreamTrace {
    /// Pass 1's record.
    pub info: StreamInfo,
    /// Whose data is followed.
    pub data_side: Side,
    /// The column records, [`COLS`] of them over `info.first_ts_ns..=info.last_ts_ns`.
    pub cols: Vec<Col>,
    /// A zoomed view of the data, when it moves in less than [`ZOOM_BELOW`] of the span.
    pub zoom: Option<Zoom>,
    /// [`ZOOM`] times finer columns while gathering (empty afterwards).
    fine: Vec<Col>,
    /// Flagged and quoted frames, in frame order.
    pub marks: Vec<Mark>,
    /// Flagged frames beyond [`MAX_MARKS`], counted only.
    pub marks_dropped: u64,
    /// SACK blocks were seen.
    pub sack_seen: bool,
    /// RTT samples.
    pub rtt_samples: u64,
    seq: Unwrap,
    ack: Unwrap,
}

impl StreamTrace {
    fn new(info: StreamInfo) -> Self {
        StreamTrace {
            data_side: info.data_side(),
            info,
            cols: Vec::new(),
            zoom: None,
            fine: vec![Col::default(); COLS * ZOOM],
            marks: Vec::new(),
            marks_dropped: 0,
            sack_seen: false,
            rtt_samples: 0,
            seq: Unwrap::default(),
            ack: Unwrap::default(),
        }
    }

    /// Duration first to last frame, ns (at least 1).
    pub fn span_ns(&self) -> i64 {
        self.info.last_ts_ns.saturating_sub(self.info.first_ts_ns).max(1)
    }

    /// The column of time `ts`.
    #[inline]
    pub fn col_of(&self, ts: i64) -> usize {
        let d = i128::from(ts.saturating_sub(self.info.first_ts_ns)).max(0);
        let c = d * COLS as i128 / i128::from(self.span_ns());
        usize::try_from(c).unwrap_or(COLS - 1).min(COLS - 1)
    }

    /// The fine column of time `ts`.
    #[inline]
    fn fine_of(&self, ts: i64) -> usize {
        const N: usize = COLS * ZOOM;
        let d = i128::from(ts.saturating_sub(self.info.first_ts_ns)).max(0);
        let c = d * N as i128 / i128::from(self.span_ns());
        usize::try_from(c).unwrap_or(N - 1).min(N - 1)
    }

    /// Merges the fine columns into the pixel columns and, when the data moves in a small
    /// part of the span, into a zoomed view of that part.
    fn finish(&mut self) {
        let fine = std::mem::take(&mut self.fine);
        if fine.is_empty() {
            return;
        }
        self.cols = fine
            .chunks(ZOOM)
            .map(|ch| {
                let mut c = Col::default();
                for f in ch {
                    c.absorb(f);
                }
                c
            })
            .collect();
        // Where the data moves: from the first data byte sent to the column where the
        // sequence space sent reaches 99 % of its end (resent segments and probes after it are
        // the tail, not the transfer).
        let top = fine.iter().filter(|c| c.segs > 0).map(|c| c.seq_hi).max().unwrap_or(0);
        if top < 2 {
            return;
        }
        let Some(a) = fine.iter().position(|c| c.segs > 0 && c.seq_hi > 1) else { return };
        let goal = top - top / 100;
        let mut reach = 0u64;
        let Some(b) = fine.iter().position(|c| {
            if c.segs > 0 {
                reach = reach.max(c.seq_hi);
            }
            reach >= goal
        }) else {
            return;
        };
        let b = b.max(a);
        let n = fine.len();
        let active = b + 1 - a;
        if active as f64 >= n as f64 * ZOOM_BELOW {
            return;
        }
        // A margin of a tenth of the active part on each side (at least one fine column).
        let pad = (active / 10).max(1);
        let (a, b) = (a.saturating_sub(pad), (b + pad).min(n - 1));
        let width = b + 1 - a;
        let span = self.span_ns();
        let at = |k: usize| self.info.first_ts_ns + (i128::from(span) * k as i128 / n as i128) as i64;
        let mut cols = vec![Col::default(); COLS];
        for (k, f) in fine.iter().enumerate().take(b + 1).skip(a) {
            // The zoomed column holding the fine column's middle.
            let j = ((2 * (k - a) + 1) * COLS / (2 * width)).min(COLS - 1);
            if let Some(c) = cols.get_mut(j) {
                c.absorb(f);
            }
        }
        let data_end = at((b + 1 - pad).max(a + 1));
        self.zoom = Some(Zoom { first_ns: at(a), span_ns: (at(b + 1) - at(a)).max(1), cols, data_end_ns: data_end });
    }

    fn mark(&mut self, m: Mark) {
        if self.marks.len() < MAX_MARKS {
            self.marks.push(m);
        } else {
            self.marks_dropped += 1;
        }
    }

    fn frame(&mut self, f: &FrameAnalysis<'_>, evidence: bool) {
        let c = self.fine_of(f.ts_ns);
        let rst = f.tcp_flags & 0x04 != 0;
        // Which end sent it, by pass 1's numbering (A sent the stream's first frame).
        let side = if f.src == self.info.a { Side::A } else { Side::B };
        let syn_fin = f.tcp_flags & 0x03 != 0;
        let mut kind = None;
        let (lo, hi);
        if side == self.data_side {
            let s = self.seq.next(f.seq);
            let end = s + u64::from(f.len) + u64::from(syn_fin);
            lo = s;
            hi = end;
            let retrans = f.flags.intersects(AnalysisFlags::RETRANSMISSION);
            if let Some(col) = self.fine.get_mut(c) {
                if f.len > 0 || syn_fin {
                    col.segs += 1;
                    col.seq_lo = col.seq_lo.min(s);
                    col.seq_hi = col.seq_hi.max(end);
                    col.bytes += u64::from(f.len);
                    if retrans {
                        col.retrans_bytes += u64::from(f.len);
                    }
                }
                if let Some(b) = f.bytes_in_flight {
                    col.inflight = col.inflight.max(b);
                }
            }
            if retrans {
                kind = Some(MarkKind::Retrans);
            } else if f.flags.intersects(AnalysisFlags::OUT_OF_ORDER) {
                kind = Some(MarkKind::OutOfOrder);
            } else if f.flags.intersects(AnalysisFlags::ZERO_WINDOW_PROBE) {
                kind = Some(MarkKind::Probe);
            }
        } else {
            let acked = f.tcp_flags & 0x10 != 0;
            let a = if acked { self.ack.next(f.ack) } else { self.ack.0.unwrap_or(0) };
            let edge = a + u64::from(f.calc_window);
            lo = a;
            hi = edge;
            if acked {
                if let Some(col) = self.fine.get_mut(c) {
                    col.acks += 1;
                    col.ack_lo = col.ack_lo.min(a);
                    col.ack_hi = col.ack_hi.max(a);
                    col.ack_last = a;
                    col.edge_lo = col.edge_lo.min(edge);
                    col.edge_hi = col.edge_hi.max(edge);
                    col.edge_last = edge;
                    col.win_lo = col.win_lo.min(f.calc_window);
                    if f.flags.intersects(AnalysisFlags::DUPLICATE_ACK) {
                        col.dupacks += 1;
                    }
                    if let Some(r) = f.ack_rtt_ns {
                        col.rtt_n += 1;
                        col.rtt_lo = col.rtt_lo.min(r);
                        col.rtt_hi = col.rtt_hi.max(r);
                        col.rtt_sum = col.rtt_sum.saturating_add(r);
                        self.rtt_samples += 1;
                    }
                    for &(l, r) in f.options.sack_blocks() {
                        let sl = a as i64 + i64::from(l.wrapping_sub(f.ack_raw) as i32);
                        let sr = a as i64 + i64::from(r.wrapping_sub(f.ack_raw) as i32);
                        if sl >= 0 && sr > sl {
                            col.sack_lo = col.sack_lo.min(sl as u64);
                            col.sack_hi = col.sack_hi.max(sr as u64);
                            self.sack_seen = true;
                        }
                    }
                }
            }
            if f.flags.intersects(AnalysisFlags::ZERO_WINDOW) {
                kind = Some(MarkKind::ZeroWindow);
            } else if f.flags.intersects(AnalysisFlags::DUPLICATE_ACK) && f.dupack_num == 3 {
                kind = Some(MarkKind::TripleDup);
            }
        }
        if rst {
            kind = Some(MarkKind::Rst);
        }
        if kind.is_none() && evidence {
            kind = Some(MarkKind::Evidence);
        }
        if let Some(kind) = kind {
            self.mark(Mark {
                frame: f.frame,
                ts_ns: f.ts_ns,
                kind,
                lo,
                hi,
                flags: f.flags,
                dupack_num: f.dupack_num,
                evidence,
                from_sender: side == self.data_side,
            });
        }
    }
}
