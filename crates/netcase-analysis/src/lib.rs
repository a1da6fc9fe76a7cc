//! netcase's capture analysis as a library: capture → artefact checks and IP reassembly →
//! wire → flow tracker → (events, flow records, protocol transactions, capture rules) →
//! findings, in one call ([`analyse_file`], [`analyse`]).
//!
//! One pass over the file, streaming: frames are lent by the reader, decoded in place, and
//! every consumer sees them through one [`FlowSink`] fan-out. Flow records are handed to a
//! caller-supplied [`FlowRecords`] as connections finish, so memory is bounded by open flows.
//! Threads and memory policy live here: the capture rules and the flow records run on a side
//! thread, the DNS/HTTP/TLS tracker on another, both fed recycled batches;
//! [`Options::single_thread`] runs everything on the calling thread instead (the same
//! results — the tests compare the two).

use netcase_capture::{CaptureInfo, CaptureReader, Damage, Skipped};
use netcase_flow::{
    ConnSummary, FlowConfig, FlowSink, FlowTracker, FrameAnalysis, TrackerStats, UdpDatagram, UdpSummary,
};
use netcase_model::Finding;
use netcase_proto::{ProtoOutput, ProtoTracker, Segment};
use netcase_rules::capture::{CaptureRules, PacketNote, RuleFrame, StreamRequests};
use netcase_rules::proto::{ProtoCheck, ProtoRules};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

/// What the caller wants computed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Write one JSON line per TCP frame that has an analysis flag.
    pub events: bool,
    /// Track DNS, HTTP and TLS transactions.
    pub proto: bool,
    /// Run the capture rules.
    pub rules: bool,
    /// Analyse copies of frames too (tshark's view; by default a frame captured twice is
    /// analysed once).
    pub keep_duplicates: bool,
    /// Everything on the calling thread (no side or protocol thread): slower, the same
    /// results; for tests and for callers that manage their own threads.
    pub single_thread: bool,
}

/// Receives flow records as they finish.
pub trait FlowRecords {
    /// A TCP connection finished.
    fn tcp(&mut self, c: &ConnSummary);
    /// A UDP flow finished.
    fn udp(&mut self, u: &UdpSummary);
    /// The protocol transactions, once the pass is over (while the rules run on another
    /// thread). Called at most once, after every flow record. With a [`TxnSink`] the HTTP
    /// transactions went to it instead, and `p.http` and `p.conns` are empty.
    fn proto(&mut self, _p: &ProtoOutput) {}
    /// A sink for the HTTP transactions, to be fed on the protocol thread as they finish
    /// (memory flat in their number); asked for once, before the pass.
    fn txn_sink(&mut self) -> Option<Box<dyn TxnSink>> {
        None
    }
    /// The sink from [`txn_sink`](Self::txn_sink), back after the pass, before
    /// [`proto`](Self::proto).
    fn streamed(&mut self, _sink: Box<dyn std::any::Any>) {}
}

/// Takes HTTP transactions as they finish, on the protocol thread.
pub trait TxnSink: Send {
    /// One finished transaction (in the order they finish, not the order they started).
    fn http(&mut self, t: &netcase_proto::HttpTxn);
    /// The sink itself, to hand it back to its owner after the pass.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any>;
}

/// What the protocol thread folds as transactions finish: the proto rules, the per-stream
/// requests the capture rules read, and the caller's sink.
struct Folds {
    check: ProtoCheck,
    requests: StreamRequests,
    sink: Option<Box<dyn TxnSink>>,
}

impl Folds {
    fn new(sink: Option<Box<dyn TxnSink>>) -> Self {
        Folds { check: ProtoCheck::new(ProtoRules::default()), requests: StreamRequests::default(), sink }
    }

    fn http(&mut self, t: &netcase_proto::HttpTxn) {
        self.check.http(t);
        self.requests.add(t);
        if let Some(s) = self.sink.as_mut() {
            s.http(t);
        }
    }

    /// Takes what the tracker finished (streaming).
    fn drain(&mut self, t: &mut ProtoTracker) {
        for x in t.drain_http() {
            self.http(&x);
        }
        for c in t.drain_conns() {
            self.check.conn(&c);
        }
    }

    /// The tracker's end: what it still held (everything, without streaming). The
    /// transactions the sink took are not kept.
    fn finish(&mut self, t: ProtoTracker) -> ProtoOutput {
        let mut out = t.finish();
        for x in &out.http {
            self.http(x);
        }
        for c in &out.conns {
            self.check.conn(c);
        }
        if self.sink.is_some() {
            out.http.clear();
            out.conns.clear();
        }
        out
    }
}

/// The result of a pass.
#[derive(Debug)]
pub struct Analysis {
    /// Capture facts.
    pub info: CaptureInfo,
    /// Where reading stopped early, if it did.
    pub damage: Option<Damage>,
    /// Blocks skipped (first few).
    pub skipped: Vec<Skipped>,
    /// Frames that could not be decoded to the transport layer for a reason other than being
    /// non-IP (truncated or malformed headers).
    pub decode_errors: u64,
    /// IP fragments seen (TCP/UDP inside fragments is counted, not reassembled).
    pub ip_fragments: u64,
    /// Frames without an IP header (ARP, LLDP, other link protocols).
    pub non_ip_frames: u64,
    /// First frame with a decode error, for the message.
    pub first_decode_error: Option<(u64, String)>,
    /// Frames of link types netcase does not decode: (link type, frames), first types seen.
    pub unknown_links: Vec<(netcase_wire::LinkType, u64)>,
    /// Non-IP frames by EtherType (first types seen).
    pub non_ip_types: Vec<(u16, u64)>,
    /// Frames the analysis could use: IP (any transport) or ARP, copies left out.
    pub analysable_frames: u64,
    /// Duplicated frames, time steps, checksums, link padding.
    pub artefacts: netcase_artefact::ArtefactReport,
    /// IP fragment reassembly.
    pub frag: netcase_frag::FragReport,
    /// Flow tracker counters.
    pub tracker: TrackerStats,
    /// Protocol transactions, when asked for.
    pub proto: Option<ProtoOutput>,
    /// Findings from the capture rules (sorted).
    pub findings: Vec<Finding>,
    /// Error writing events, if any (e.g. a closed pipe).
    pub events_error: Option<std::io::Error>,
}

struct Fanout<'a, W: Write, R: FlowRecords> {
    events: Option<&'a mut W>,
    events_error: Option<std::io::Error>,
    /// Flow records go here directly when no side thread runs (events only).
    direct: Option<&'a mut R>,
    proto: Option<ProtoSink>,
    /// The capture rules and the flow records, on their own thread.
    side: Option<Pipe<SideBatch>>,
    /// The capture rules on this thread (when the side thread could not start).
    rules: Option<CaptureRules>,
}

impl<W: Write, R: FlowRecords> Fanout<'_, W, R> {
    #[inline]
    fn side_push(&mut self, m: Msg) {
        if let Some(p) = self.side.as_mut() {
            p.cur.msgs.push(m);
            if p.cur.msgs.len() >= SIDE_MSGS {
                p.flush();
            }
        }
    }
}

impl<W: Write, R: FlowRecords> FlowSink for Fanout<'_, W, R> {
    #[inline]
    fn frame(&mut self, f: &FrameAnalysis<'_>) {
        if let Some(w) = self.events.as_deref_mut() {
            if !f.flags.is_empty() && self.events_error.is_none() {
                if let Err(e) = netcase_flow::write_event_json(w, f) {
                    self.events_error = Some(e);
                }
            }
        }
        if let Some(p) = self.proto.as_mut() {
            if !f.icmp_error {
                p.push(
                    Seg {
                        meta: Segment {
                            frame: f.frame,
                            ts_ns: f.ts_ns,
                            src: SocketAddr::new(f.src.addr, f.src.port),
                            dst: SocketAddr::new(f.dst.addr, f.dst.port),
                            seq: f.seq_raw,
                            ack: f.ack_raw,
                            flags: f.tcp_flags,
                            tcp_len: f.len,
                            stream: Some(u64::from(f.stream)),
                        },
                        udp: false,
                        off: 0,
                        len: 0,
                    },
                    f.payload,
                );
            }
        }
        if let Some(r) = self.rules.as_mut() {
            r.frame(f);
        } else if self.side.is_some() {
            if let Some(rf) = RuleFrame::of(f) {
                self.side_push(Msg::Frame(rf));
            }
        }
    }

    fn closed(&mut self, c: &ConnSummary) {
        if let Some(p) = self.side.as_mut() {
            p.cur.conns.push(c.clone());
            p.cur.msgs.push(Msg::Closed);
            if p.cur.msgs.len() >= SIDE_MSGS || p.cur.conns.len() >= SIDE_RECORDS {
                p.flush();
            }
        } else {
            if let Some(r) = self.direct.as_deref_mut() {
                r.tcp(c);
            }
            if let Some(r) = self.rules.as_mut() {
                r.closed(c);
            }
        }
    }

    #[inline]
    fn udp(&mut self, d: &UdpDatagram<'_>) {
        if let Some(p) = self.proto.as_mut() {
            if !d.icmp_error {
                p.push(
                    Seg {
                        meta: Segment {
                            frame: d.frame,
                            ts_ns: d.ts_ns,
                            src: SocketAddr::new(d.src.addr, d.src.port),
                            dst: SocketAddr::new(d.dst.addr, d.dst.port),
                            seq: 0,
                            ack: 0,
                            flags: 0,
                            tcp_len: d.len,
                            stream: None,
                        },
                        udp: true,
                        off: 0,
                        len: 0,
                    },
                    d.payload,
                );
            }
        }
        if let Some(r) = self.rules.as_mut() {
            r.udp(d);
        } else if self.side.is_some() {
            self.side_push(Msg::Udp(d.without_payload()));
        }
    }

    fn udp_closed(&mut self, u: &UdpSummary) {
        if let Some(p) = self.side.as_mut() {
            p.cur.udps.push(u.clone());
            p.cur.msgs.push(Msg::UdpClosed);
            if p.cur.msgs.len() >= SIDE_MSGS || p.cur.udps.len() >= SIDE_RECORDS {
                p.flush();
            }
        } else {
            if let Some(r) = self.direct.as_deref_mut() {
                r.udp(u);
            }
            if let Some(r) = self.rules.as_mut() {
                r.udp_closed(u);
            }
        }
    }
}

/// What the side thread (capture rules and flow records) receives, in frame order. Closed
/// flows' summaries sit in the batch's own vectors, in the same order as their messages.
enum Msg {
    Frame(RuleFrame),
    Udp(UdpDatagram<'static>),
    Note(u64, i64, PacketNote),
    Closed,
    UdpClosed,
}

#[derive(Default)]
struct SideBatch {
    msgs: Vec<Msg>,
    conns: Vec<ConnSummary>,
    udps: Vec<UdpSummary>,
}

impl Buf for SideBatch {
    fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }
    fn clear(&mut self) {
        self.msgs.clear();
        self.conns.clear();
        self.udps.clear();
    }
}

const SIDE_MSGS: usize = 1024;
const _: () = assert!(std::mem::size_of::<Msg>() <= 176, "side messages grew: keep them small");
const SIDE_RECORDS: usize = 256;

/// Runs on the side thread: the capture rules see every message, the flow records writer
/// (JSON or the text tables) every closed flow. Returns the rules for their final pass.
fn side_worker<R: FlowRecords>(
    rx: &std::sync::mpsc::Receiver<SideBatch>,
    back: &std::sync::mpsc::SyncSender<SideBatch>,
    records: &mut R,
) -> CaptureRules {
    netcase_capture::background_thread();
    let mut rules = CaptureRules::new();
    while let Ok(mut b) = rx.recv() {
        let mut conns = b.conns.iter();
        let mut udps = b.udps.iter();
        for m in &b.msgs {
            match m {
                Msg::Frame(f) => rules.rule_frame(f),
                Msg::Udp(d) => rules.udp(d),
                Msg::Note(frame, ts, n) => rules.note(*frame, *ts, n),
                Msg::Closed => {
                    if let Some(c) = conns.next() {
                        records.tcp(c);
                        rules.closed(c);
                    }
                }
                Msg::UdpClosed => {
                    if let Some(u) = udps.next() {
                        records.udp(u);
                        rules.udp_closed(u);
                    }
                }
            }
        }
        b.clear();
        // The feeder may be gone at the end; then the batch is simply dropped.
        let _ = back.send(b);
    }
    rules
}

/// A batch that can be recycled.
trait Buf: Default {
    fn is_empty(&self) -> bool;
    fn clear(&mut self);
}

/// Batches to a worker thread and back: the producer fills `cur`, sends it when full and takes
/// an emptied one back, so `BATCHES` batches circulate and nothing is allocated per packet.
struct Pipe<B: Buf> {
    cur: B,
    /// Time spent waiting for the worker to hand a batch back, and how often (for profiles).
    waited: std::time::Duration,
    waits: u64,
    full: std::sync::mpsc::SyncSender<B>,
    empty: std::sync::mpsc::Receiver<B>,
}

/// The worker's ends of a [`Pipe`]: full batches in, emptied batches back.
type PipeEnds<B> = (std::sync::mpsc::Receiver<B>, std::sync::mpsc::SyncSender<B>);

impl<B: Buf> Pipe<B> {
    fn new(make: impl Fn() -> B) -> (Self, PipeEnds<B>) {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<B>(BATCHES);
        let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<B>(BATCHES + 1);
        for _ in 0..BATCHES {
            let _ = empty_tx.send(make());
        }
        let cur = empty_rx.recv().unwrap_or_default();
        (Pipe { cur, waited: Default::default(), waits: 0, full: full_tx, empty: empty_rx }, (full_rx, empty_tx))
    }

    fn flush(&mut self) {
        if self.cur.is_empty() {
            return;
        }
        let next = match self.empty.try_recv() {
            Ok(b) => b,
            Err(_) => {
                let t = std::time::Instant::now();
                let b = self.empty.recv().unwrap_or_default();
                self.waited += t.elapsed();
                self.waits += 1;
                b
            }
        };
        let full = std::mem::replace(&mut self.cur, next);
        let _ = self.full.send(full);
    }

    /// Sends what is left and closes the channel: the worker's loop ends.
    fn close(mut self, name: &str) {
        self.flush();
        if profiling() {
            eprintln!("profile: {name}: waited {:?} in {} waits for the worker", self.waited, self.waits);
        }
        let Pipe { cur, full, empty, .. } = self;
        drop((cur, full, empty));
    }
}

/// One segment or datagram handed to the protocol thread: the tracker's own description of a
/// segment (a UDP datagram uses its addresses, time and length), and where its payload sits in
/// the batch's byte arena (`off..off + len`).
#[derive(Debug, Clone, Copy)]
struct Seg {
    meta: Segment,
    udp: bool,
    off: u32,
    len: u32,
}

#[derive(Default)]
struct Batch {
    segs: Vec<Seg>,
    bytes: Vec<u8>,
}

impl Buf for Batch {
    fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }
    fn clear(&mut self) {
        self.segs.clear();
        self.bytes.clear();
    }
}

const BATCH_SEGS: usize = 1024;
const BATCH_BYTES: usize = 256 << 10;
/// Batches in flight: bounds memory and lets the threads run side by side.
const BATCHES: usize = 4;

/// Runs the DNS/HTTP/TLS tracker on its own thread: the flow thread copies segments into
/// recycled batches, so the two halves of the analysis use both cores without allocating per
/// packet.
struct ProtoFeed {
    pipe: Pipe<Batch>,
    worker: Option<std::thread::JoinHandle<(ProtoOutput, Folds)>>,
}

/// The protocol tracker on its thread, or on the calling one.
enum ProtoSink {
    Thread(ProtoFeed),
    Inline(Box<ProtoTracker>, Box<Folds>),
}

fn tracker_config(stream: bool) -> netcase_proto::Config {
    netcase_proto::Config { spill_http: !stream, stream, ..Default::default() }
}

impl ProtoSink {
    fn new(single_thread: bool, sink: Option<Box<dyn TxnSink>>) -> Self {
        let cfg = tracker_config(sink.is_some());
        if single_thread {
            ProtoSink::Inline(Box::new(ProtoTracker::with_config(cfg)), Box::new(Folds::new(sink)))
        } else {
            ProtoSink::Thread(ProtoFeed::spawn(cfg, Folds::new(sink)))
        }
    }

    #[inline]
    fn push(&mut self, seg: Seg, payload: &[u8]) {
        match self {
            ProtoSink::Thread(p) => p.push(seg, payload),
            ProtoSink::Inline(t, folds) => {
                feed(t, &seg, payload);
                folds.drain(t);
            }
        }
    }

    fn finish(self) -> (ProtoOutput, Folds) {
        match self {
            ProtoSink::Thread(p) => p.finish(),
            ProtoSink::Inline(t, mut folds) => {
                let out = folds.finish(*t);
                (out, *folds)
            }
        }
    }
}

/// Hands one segment or datagram to the tracker.
#[inline]
fn feed(t: &mut ProtoTracker, s: &Seg, payload: &[u8]) {
    let m = &s.meta;
    if s.udp {
        t.udp(m.frame, m.ts_ns, m.src, m.dst, payload, m.tcp_len);
    } else {
        t.segment(m, payload);
    }
}

impl ProtoFeed {
    fn spawn(cfg: netcase_proto::Config, folds: Folds) -> Self {
        let (pipe, (full_rx, empty_tx)) = Pipe::new(|| Batch {
            segs: Vec::with_capacity(BATCH_SEGS),
            bytes: Vec::with_capacity(BATCH_BYTES + 65_536),
        });
        let worker = std::thread::Builder::new()
            .name("netcase-proto".into())
            .spawn(move || {
                let mut t = ProtoTracker::with_config(cfg);
                let mut folds = folds;
                while let Ok(mut b) = full_rx.recv() {
                    for s in &b.segs {
                        let payload = b.bytes.get(s.off as usize..(s.off + s.len) as usize).unwrap_or(&[]);
                        feed(&mut t, s, payload);
                    }
                    b.clear();
                    // The feeder may be gone at the end; then the batch is simply dropped.
                    let _ = empty_tx.send(b);
                    folds.drain(&mut t);
                }
                let out = folds.finish(t);
                (out, folds)
            })
            .ok();
        ProtoFeed { pipe, worker }
    }

    #[inline]
    fn push(&mut self, mut seg: Seg, payload: &[u8]) {
        let cur = &mut self.pipe.cur;
        seg.off = cur.bytes.len() as u32;
        seg.len = payload.len() as u32;
        cur.bytes.extend_from_slice(payload);
        cur.segs.push(seg);
        if cur.segs.len() >= BATCH_SEGS || cur.bytes.len() >= BATCH_BYTES {
            self.pipe.flush();
        }
    }

    fn finish(self) -> (ProtoOutput, Folds) {
        // Close the channel and free the batches (the worker drops the ones it would return)
        // before the tracker's final pass allocates the results.
        let ProtoFeed { pipe, worker } = self;
        pipe.close("proto");
        match worker.map(std::thread::JoinHandle::join) {
            Some(Ok(out)) => out,
            // The worker panicked or never started: no transactions rather than no analysis.
            _ => (ProtoTracker::new().finish(), Folds::new(None)),
        }
    }
}

/// Opens `path` (`-` for stdin) and analyses it in one pass.
pub fn analyse_file<W: Write, R: FlowRecords + Send>(
    path: &Path,
    opts: Options,
    events_out: Option<&mut W>,
    records: &mut R,
    progress: &mut dyn FnMut(&CaptureInfo, u64),
) -> Result<Analysis, netcase_capture::CaptureError> {
    let reader = CaptureReader::open(path)?;
    Ok(analyse(reader, opts, events_out, records, progress))
}

/// Analyses an open capture in one pass.
///
/// Threads: this one reads, decodes and runs the flow engine (and writes `--events`); with
/// the rules on, a side thread runs the capture rules and hands finished flows to `records`;
/// with `proto` on, another tracks DNS/HTTP/TLS. Both are fed recycled batches.
pub fn analyse<W: Write, R: FlowRecords + Send>(
    mut reader: CaptureReader,
    opts: Options,
    events_out: Option<&mut W>,
    records: &mut R,
    progress: &mut dyn FnMut(&CaptureInfo, u64),
) -> Analysis {
    let txn_sink = if opts.proto { records.txn_sink() } else { None };
    // Whoever runs the flow records takes them from here: the side thread, or this one when
    // there is no side thread (or it could not start).
    let records_cell = std::sync::Mutex::new(Some(records));
    let take_records = || records_cell.lock().ok().and_then(|mut g| g.take());
    std::thread::scope(|s| {
        let mut side = None;
        let mut side_handle = None;
        if opts.rules && !opts.single_thread {
            let (pipe, (rx, back)) = Pipe::new(|| SideBatch {
                msgs: Vec::with_capacity(SIDE_MSGS),
                conns: Vec::with_capacity(SIDE_RECORDS),
                udps: Vec::with_capacity(SIDE_RECORDS),
            });
            let spawned = std::thread::Builder::new().name("netcase-rules".into()).spawn_scoped(s, move || {
                let recs = take_records()?;
                let rules = side_worker(&rx, &back, &mut *recs);
                Some((rules, recs))
            });
            if let Ok(h) = spawned {
                side = Some(pipe);
                side_handle = Some(h);
            }
        }
        let inline = side_handle.is_none();
        let t_start = std::time::Instant::now();
        let mut tracker = FlowTracker::new(FlowConfig::default());
        let mut fan = Fanout {
            events: if opts.events { events_out } else { None },
            events_error: None,
            direct: if inline { take_records() } else { None },
            proto: opts.proto.then(|| ProtoSink::new(opts.single_thread, txn_sink)),
            side,
            rules: (inline && opts.rules).then(CaptureRules::new),
        };
        let mut decode_errors = 0u64;
        let mut ip_fragments = 0u64;
        let mut non_ip_frames = 0u64;
        let mut first_decode_error = None;
        let mut unknown_links: Vec<(netcase_wire::LinkType, u64)> = Vec::new();
        let mut non_ip_types: Vec<(u16, u64)> = Vec::new();
        let mut analysable_frames = 0u64;
        let mut artefacts = netcase_artefact::Artefacts::new();
        let mut reasm = netcase_frag::Reassembler::new(netcase_frag::Config::default());
        let mut reassembled_dns = 0u64;
        let mut n = 0u64;
        while let Some(f) = reader.next_frame() {
            n += 1;
            'frame: {
                let mut pkt = netcase_wire::decode(f.link, f.data);
                let meta = netcase_artefact::FrameMeta { number: f.number, ts_ns: f.ts_ns, interface: f.interface };
                if artefacts.frame(&meta, f.data, &mut pkt).is_some() && !opts.keep_duplicates {
                    // A copy of an earlier frame: the analysis uses the first copy.
                    break 'frame;
                }
                if let Some(e) = pkt.error {
                    decode_errors += 1;
                    if first_decode_error.is_none() {
                        first_decode_error = Some((f.number, e.to_string()));
                    }
                }
                if pkt.ip.is_some() || pkt.arp.is_some() {
                    analysable_frames += 1;
                }
                match pkt.ip {
                    Some(ip) if ip.fragment.is_some() => {
                        ip_fragments += 1;
                        // The fragment itself carries no whole transport datagram; the one
                        // that completes a datagram hands the whole of it to the analysis (as
                        // tshark shows it on the last fragment's frame).
                        reassembled_dns += fragment(&mut reasm, &mut tracker, &mut fan, &f, &pkt, ip);
                    }
                    Some(_) => {}
                    None => {
                        non_ip_frames += 1;
                        if let netcase_wire::LinkType::Other(_) = f.link {
                            bump(&mut unknown_links, f.link);
                        } else if pkt.error.is_none() {
                            bump(&mut non_ip_types, pkt.link.ethertype);
                        }
                    }
                }
                tracker.packet(f.number, f.ts_ns, f.orig_len, f.data, &pkt, &mut fan);
                if let Some(r) = fan.rules.as_mut() {
                    r.packet(f.number, f.ts_ns, &pkt);
                } else if fan.side.is_some() {
                    if let Some(note) = PacketNote::of(&pkt) {
                        fan.side_push(Msg::Note(f.number, f.ts_ns, note));
                    }
                }
            }
            if n & 0x3FFFF == 0 {
                progress(reader.info(), reader.offset());
                if fan.events_error.is_some() {
                    break;
                }
            }
        }
        let t_loop = std::time::Instant::now();
        let hwm_loop = if profiling() {
            eprintln!("profile: pass {:?} wall, this thread's CPU time {:?}", t_start.elapsed(), thread_cpu());
            peak_rss_kib()
        } else {
            0
        };
        tracker.finish(&mut fan);
        // Free the flow tables and the read buffer before the protocol transactions come back.
        let tracker_stats = tracker.stats();
        drop(tracker);
        let info = reader.info().clone();
        let damage = reader.damage().cloned();
        let skipped = reader.skipped().to_vec();
        drop(reader);
        let t_fin = t_loop.elapsed();
        // The side thread ends when its channel closes; it hands back the rules and records.
        let (rules, records) = match (fan.side.take(), side_handle) {
            (Some(pipe), Some(h)) => {
                pipe.close("side");
                match h.join() {
                    Ok(Some((rules, recs))) => (Some(rules), Some(recs)),
                    Ok(None) => (None, None),
                    Err(e) => std::panic::resume_unwind(e),
                }
            }
            _ => (fan.rules.take(), fan.direct.take()),
        };
        let artefacts = artefacts.report();
        let frag = reasm.finish();
        let frag_facts = frag_facts(&frag, reassembled_dns);
        let rules = rules.map(|mut r| {
            r.set_capture_facts(netcase_rules::capture::CaptureFacts {
                frames: info.frames,
                artefacts: artefacts.clone(),
                frag: frag_facts.clone(),
            });
            r
        });
        // What the flow tables, the read buffers and the batches held is free now, spread over
        // the threads' malloc arenas; give it back before the transactions are gathered (on
        // the protocol thread, whose arena would not reuse it), so the peak stays lower.
        release_free_memory();
        let t_side = t_loop.elapsed();
        if profiling() {
            eprintln!("profile: RSS after the side thread {} KiB (peak {} KiB)", status_kib("VmRSS:"), peak_rss_kib());
        }
        let (proto, folds) = match fan.proto.take().map(ProtoSink::finish) {
            Some((p, f)) => (Some(p), Some(f)),
            None => (None, None),
        };
        let t_proto = t_loop.elapsed();
        if profiling() {
            eprintln!("profile: RSS after the proto thread {} KiB (peak {} KiB)", status_kib("VmRSS:"), peak_rss_kib());
        }
        let (check, requests, sink) = match folds {
            Some(f) => (Some(f.check), f.requests, f.sink),
            None => (None, StreamRequests::default(), None),
        };
        let run_rules = |rules: Option<CaptureRules>, proto: Option<&ProtoOutput>, check: Option<ProtoCheck>| {
            let mut findings = match rules {
                Some(r) => r.finish(&requests),
                None => Vec::new(),
            };
            if let (Some(p), Some(c)) = (proto, check) {
                findings.extend(c.finish(&p.dns));
            }
            findings
        };
        let mut records = records;
        if let (Some(recs), Some(sink)) = (records.as_mut(), sink) {
            recs.streamed(sink.into_any());
        }
        // The rules' final pass and the caller's use of the transactions (e.g. writing them
        // out) side by side.
        let rules_cell = std::sync::Mutex::new((rules, check));
        let taken = || rules_cell.lock().ok().map(|mut g| (g.0.take(), g.1.take())).unwrap_or((None, None));
        let mut findings = match (proto.as_ref(), records) {
            (Some(p), Some(recs)) if opts.single_thread => {
                recs.proto(p);
                let (r, c) = taken();
                run_rules(r, Some(p), c)
            }
            (Some(p), Some(recs)) => std::thread::scope(|s2| {
                match std::thread::Builder::new().name("netcase-rules".into()).spawn_scoped(s2, || {
                    let t = std::time::Instant::now();
                    let (r, c) = taken();
                    let f = run_rules(r, Some(p), c);
                    if profiling() {
                        eprintln!("profile: rules' final pass {:?}", t.elapsed());
                    }
                    f
                }) {
                    Ok(h) => {
                        let t = std::time::Instant::now();
                        recs.proto(p);
                        if profiling() {
                            eprintln!("profile: transactions written {:?}", t.elapsed());
                        }
                        h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
                    }
                    Err(_) => {
                        recs.proto(p);
                        let (r, c) = taken();
                        run_rules(r, Some(p), c)
                    }
                }
            }),
            (p, _) => {
                let (r, c) = taken();
                run_rules(r, p, c)
            }
        };
        Finding::settle(&mut findings);
        if profiling() {
            eprintln!(
                "profile: tracker.finish {t_fin:?}, side joined {t_side:?}, proto joined {t_proto:?}, rules done {:?}; peak RSS at loop end {hwm_loop} KiB, at the end {} KiB",
                t_loop.elapsed(),
                peak_rss_kib()
            );
        }
        Analysis {
            info,
            damage,
            skipped,
            decode_errors,
            ip_fragments,
            non_ip_frames,
            first_decode_error,
            unknown_links,
            non_ip_types,
            analysable_frames,
            artefacts,
            frag,
            tracker: tracker_stats,
            proto,
            findings,
            events_error: fan.events_error,
        }
    })
}

/// An IP fragment: the frame that completes a datagram hands the whole of it to the flow
/// tracker (as tshark shows it on the last fragment's frame); a first fragment cut short by the
/// snap length, which can never complete, is analysed as it is (as tshark does). Returns 1 when
/// a DNS datagram was made whole. Kept out of line: the common path calls the tracker once.
/// Public for the single-threaded oracle of the capture tests, which feeds fragments the same
/// way.
#[cold]
#[inline(never)]
pub fn fragment<S: FlowSink>(
    reasm: &mut netcase_frag::Reassembler,
    tracker: &mut FlowTracker,
    sink: &mut S,
    f: &netcase_capture::Frame<'_>,
    pkt: &netcase_wire::Packet<'_>,
    ip: netcase_wire::IpInfo,
) -> u64 {
    let mut dns = 0;
    if let Some(d) = reasm.push(f.number, f.ts_ns, pkt) {
        let whole = netcase_wire::decode(netcase_wire::LinkType::Raw, d.bytes);
        if let Some(netcase_wire::Transport::Udp(u)) = whole.transport {
            if u.src_port == 53 || u.dst_port == 53 {
                dns = 1;
            }
        }
        let len = u32::try_from(d.bytes.len()).unwrap_or(u32::MAX);
        tracker.packet(f.number, f.ts_ns, len, d.bytes, &whole, sink);
    } else if ip.fragment.is_some_and(|fr| fr.offset == 0) && (pkt.ip_payload.len() as u64) < u64::from(ip.payload_len)
    {
        let mut cut = *pkt;
        cut.ip = Some(netcase_wire::IpInfo { fragment: None, ..ip });
        tracker.packet(f.number, f.ts_ns, f.orig_len, f.data, &cut, sink);
    }
    dns
}

/// What the rules need of the reassembly report.
pub fn frag_facts(r: &netcase_frag::FragReport, reassembled_dns: u64) -> netcase_rules::capture::FragFacts {
    netcase_rules::capture::FragFacts {
        fragments: r.stats.fragments,
        reassembled: r.stats.reassembled,
        reassembled_dns,
        incomplete: r.incomplete_total,
        incomplete_list: r
            .incomplete
            .iter()
            .map(|d| netcase_rules::capture::IncompleteDatagram {
                src: d.src,
                dst: d.dst,
                proto: d.proto,
                ports: d.ports,
                first_frame: d.first_frame,
                bytes_held: u64::from(d.bytes_held),
                total_len: d.total_len,
                reason: d.reason.as_str(),
            })
            .collect(),
        overlaps_inconsistent: r.stats.overlap_inconsistent,
        dropped_at_bound: r.stats.dropped_at_bound,
    }
}

/// Counts one more of `key` in a short list (at most 16 keys kept; later ones are only in the
/// totals).
fn bump<K: PartialEq + Copy>(v: &mut Vec<(K, u64)>, key: K) {
    if let Some(e) = v.iter_mut().find(|e| e.0 == key) {
        e.1 += 1;
    } else if v.len() < 16 {
        v.push((key, 1));
    }
}

/// `NETCASE_PROFILE` is set: print phase timings and memory on stderr (read once).
pub fn profiling() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("NETCASE_PROFILE").is_some())
}

/// The process's peak resident set (VmHWM), for `NETCASE_PROFILE`.
fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// A figure in KiB from /proc/self/status.
fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Makes glibc serve every allocation of 128 KiB or more with its own mapping, returned to the
/// system when freed. glibc's default raises that threshold as large blocks are freed, after
/// which the read-ahead chunks and batches of each thread stay in per-thread arenas that the
/// later phases (on other threads) cannot reuse: 6 MB more peak RSS on many-flows.pcap.
/// Call before the threads start.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Returns freed heap memory of every malloc arena to the system (glibc's `malloc_trim`).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; no pointers are passed.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// CPU time used by the calling thread so far (for `NETCASE_PROFILE`).
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}
