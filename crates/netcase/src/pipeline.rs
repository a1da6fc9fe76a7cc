//! The capture pipeline: capture → wire → flow tracker → (events, flow records, protocol
//! transactions, capture rules) → findings.
//!
//! One pass over the file, streaming: frames are lent by the reader, decoded in place, and
//! every consumer sees them through one [`FlowSink`] fan-out. Flow records are handed to a
//! caller-supplied callback as connections finish, so memory is bounded by open flows.

use netcase_capture::{CaptureInfo, CaptureReader, Damage, Skipped};
use netcase_flow::{
    ConnSummary, FlowConfig, FlowSink, FlowTracker, FrameAnalysis, TrackerStats, UdpDatagram, UdpSummary,
};
use netcase_model::Finding;
use netcase_proto::{ProtoOutput, ProtoTracker};
use netcase_rules::capture::CaptureRules;
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
}

/// Receives flow records as they finish.
pub trait FlowRecords {
    /// A TCP connection finished.
    fn tcp(&mut self, c: &ConnSummary);
    /// A UDP flow finished.
    fn udp(&mut self, u: &UdpSummary);
    /// The protocol transactions, once the pass is over (while the rules run on another
    /// thread). Called at most once, after every flow record.
    fn proto(&mut self, _p: &ProtoOutput) {}
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
    records: &'a mut R,
    proto: Option<ProtoFeed>,
    rules: Option<CaptureRules>,
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
                        frame: f.frame,
                        ts_ns: f.ts_ns,
                        src: SocketAddr::new(f.src.addr, f.src.port),
                        dst: SocketAddr::new(f.dst.addr, f.dst.port),
                        seq: f.seq_raw,
                        ack: f.ack_raw,
                        flags: f.tcp_flags,
                        wire_len: f.len,
                        stream: Some(f.stream),
                        off: 0,
                        len: 0,
                    },
                    f.payload,
                );
            }
        }
        if let Some(r) = self.rules.as_mut() {
            r.frame(f);
        }
    }

    fn closed(&mut self, c: &ConnSummary) {
        self.records.tcp(c);
        if let Some(r) = self.rules.as_mut() {
            r.closed(c);
        }
    }

    #[inline]
    fn udp(&mut self, d: &UdpDatagram<'_>) {
        if let Some(p) = self.proto.as_mut() {
            if !d.icmp_error {
                p.push(
                    Seg {
                        frame: d.frame,
                        ts_ns: d.ts_ns,
                        src: SocketAddr::new(d.src.addr, d.src.port),
                        dst: SocketAddr::new(d.dst.addr, d.dst.port),
                        seq: 0,
                        ack: 0,
                        flags: 0,
                        wire_len: d.len,
                        stream: None,
                        off: 0,
                        len: 0,
                    },
                    d.payload,
                );
            }
        }
        if let Some(r) = self.rules.as_mut() {
            r.udp(d);
        }
    }

    fn udp_closed(&mut self, u: &UdpSummary) {
        self.records.udp(u);
        if let Some(r) = self.rules.as_mut() {
            r.udp_closed(u);
        }
    }
}

/// One segment or datagram handed to the protocol thread; its payload sits in the batch's
/// byte arena at `off..off + len`.
#[derive(Debug, Clone, Copy)]
struct Seg {
    frame: u64,
    ts_ns: i64,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u16,
    wire_len: u32,
    /// `Some` for TCP (the tcp.stream), `None` for UDP.
    stream: Option<u32>,
    off: u32,
    len: u32,
}

#[derive(Default)]
struct Batch {
    segs: Vec<Seg>,
    bytes: Vec<u8>,
}

const BATCH_SEGS: usize = 1024;
const BATCH_BYTES: usize = 256 << 10;
/// Batches in flight: bounds memory and lets the two threads run side by side.
const BATCHES: usize = 4;

/// Runs the DNS/HTTP/TLS tracker on its own thread: the flow thread copies segments into
/// recycled batches, so the two halves of the analysis use both cores without allocating per
/// packet.
struct ProtoFeed {
    cur: Batch,
    full: Option<std::sync::mpsc::SyncSender<Batch>>,
    empty: std::sync::mpsc::Receiver<Batch>,
    worker: Option<std::thread::JoinHandle<ProtoOutput>>,
}

impl ProtoFeed {
    fn spawn() -> Self {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Batch>(BATCHES);
        let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Batch>(BATCHES + 1);
        for _ in 0..BATCHES {
            let _ = empty_tx
                .send(Batch { segs: Vec::with_capacity(BATCH_SEGS), bytes: Vec::with_capacity(BATCH_BYTES + 65_536) });
        }
        let worker = std::thread::Builder::new()
            .name("netcase-proto".into())
            .spawn(move || {
                let mut t = ProtoTracker::with_config(netcase_proto::Config { spill_http: true, ..Default::default() });
                while let Ok(mut b) = full_rx.recv() {
                    for s in &b.segs {
                        let payload = b.bytes.get(s.off as usize..(s.off + s.len) as usize).unwrap_or(&[]);
                        match s.stream {
                            Some(st) => t.tcp(
                                s.frame,
                                s.ts_ns,
                                s.src,
                                s.dst,
                                s.seq,
                                s.ack,
                                s.flags,
                                payload,
                                s.wire_len,
                                Some(u64::from(st)),
                            ),
                            None => t.udp(s.frame, s.ts_ns, s.src, s.dst, payload, s.wire_len),
                        }
                    }
                    b.segs.clear();
                    b.bytes.clear();
                    // The feeder may be gone at the end; then the batch is simply dropped.
                    let _ = empty_tx.send(b);
                }
                t.finish()
            })
            .ok();
        let cur = empty_rx.recv().unwrap_or_default();
        ProtoFeed { cur, full: Some(full_tx), empty: empty_rx, worker }
    }

    #[inline]
    fn push(&mut self, mut seg: Seg, payload: &[u8]) {
        seg.off = self.cur.bytes.len() as u32;
        seg.len = payload.len() as u32;
        self.cur.bytes.extend_from_slice(payload);
        self.cur.segs.push(seg);
        if self.cur.segs.len() >= BATCH_SEGS || self.cur.bytes.len() >= BATCH_BYTES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.cur.segs.is_empty() {
            return;
        }
        let next = self.empty.recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.cur, next);
        if let Some(tx) = &self.full {
            let _ = tx.send(full);
        }
    }

    fn finish(mut self) -> ProtoOutput {
        self.flush();
        // Close both channels and free the batches (the worker drops the ones it would return)
        // before the tracker's final pass allocates the results.
        let ProtoFeed { cur, full, empty, worker } = self;
        drop((cur, full, empty));
        match worker.map(std::thread::JoinHandle::join) {
            Some(Ok(out)) => out,
            // The worker panicked or never started: no transactions rather than no analysis.
            _ => ProtoTracker::new().finish(),
        }
    }
}

/// Opens `path` (`-` for stdin) and analyses it in one pass.
pub fn analyse_file<W: Write, R: FlowRecords>(
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
pub fn analyse<W: Write, R: FlowRecords>(
    mut reader: CaptureReader,
    opts: Options,
    events_out: Option<&mut W>,
    records: &mut R,
    progress: &mut dyn FnMut(&CaptureInfo, u64),
) -> Analysis {
    let mut tracker = FlowTracker::new(FlowConfig::default());
    let mut fan = Fanout {
        events: if opts.events { events_out } else { None },
        events_error: None,
        records,
        proto: opts.proto.then(ProtoFeed::spawn),
        rules: opts.rules.then(CaptureRules::new),
    };
    let mut decode_errors = 0u64;
    let mut ip_fragments = 0u64;
    let mut non_ip_frames = 0u64;
    let mut first_decode_error = None;
    let mut n = 0u64;
    while let Some(f) = reader.next_frame() {
        let pkt = netcase_wire::decode(f.link, f.data);
        if let Some(e) = pkt.error {
            decode_errors += 1;
            if first_decode_error.is_none() {
                first_decode_error = Some((f.number, e.to_string()));
            }
        }
        match pkt.ip {
            Some(ip) if ip.fragment.is_some() => ip_fragments += 1,
            Some(_) => {}
            None => non_ip_frames += 1,
        }
        tracker.packet(f.number, f.ts_ns, f.orig_len, f.data, &pkt, &mut fan);
        if let Some(r) = fan.rules.as_mut() {
            r.packet(f.number, f.ts_ns, &pkt);
        }
        n += 1;
        if n & 0x3FFFF == 0 {
            progress(reader.info(), reader.offset());
            if fan.events_error.is_some() {
                break;
            }
        }
    }
    let t_loop = std::time::Instant::now();
    tracker.finish(&mut fan);
    // Free the flow tables and the read buffer before the protocol transactions come back.
    let tracker_stats = tracker.stats();
    drop(tracker);
    let info = reader.info().clone();
    let damage = reader.damage().cloned();
    let skipped = reader.skipped().to_vec();
    drop(reader);
    let t_fin = t_loop.elapsed();
    let proto = fan.proto.take().map(ProtoFeed::finish);
    let t_proto = t_loop.elapsed();
    let rules = fan.rules.take();
    let run_rules = |rules: Option<CaptureRules>, proto: Option<&ProtoOutput>| {
        let mut findings = match rules {
            Some(r) => match proto {
                Some(p) => r.finish(&p.http, &p.dns),
                None => r.finish(&[], &[]),
            },
            None => Vec::new(),
        };
        if let Some(p) = proto {
            findings.extend(netcase_rules::proto::check(&p.dns, &p.http, &p.conns));
        }
        findings
    };
    // The rules and the caller's use of the transactions (e.g. writing them out) side by side.
    let mut findings = match proto.as_ref() {
        Some(p) => {
            let rules_cell = std::sync::Mutex::new(rules);
            let taken = || rules_cell.lock().ok().and_then(|mut g| g.take());
            std::thread::scope(|s| {
                match std::thread::Builder::new()
                    .name("netcase-rules".into())
                    .spawn_scoped(s, || run_rules(taken(), Some(p)))
                {
                    Ok(h) => {
                        fan.records.proto(p);
                        h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
                    }
                    Err(_) => {
                        fan.records.proto(p);
                        run_rules(taken(), Some(p))
                    }
                }
            })
        }
        None => run_rules(rules, None),
    };
    Finding::sort(&mut findings);
    if std::env::var_os("NETCASE_PROFILE").is_some() {
        eprintln!("profile: tracker.finish {t_fin:?}, proto joined {t_proto:?}, rules done {:?}", t_loop.elapsed());
    }
    Analysis {
        info,
        damage,
        skipped,
        decode_errors,
        ip_fragments,
        non_ip_frames,
        first_decode_error,
        tracker: tracker_stats,
        proto,
        findings,
        events_error: fan.events_error,
    }
}
