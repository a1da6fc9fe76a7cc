//! The capture pipeline: capture → wire → flow tracker → (events, flow records, protocol
//! transactions, capture rules) → findings.
//!
//! One pass over the file, streaming: frames are lent by the reader, decoded in place, and
//! every consumer sees them through one [`FlowSink`] fan-out. Flow records are handed to a
//! caller-supplied callback as connections finish, so memory is bounded by open flows.

use netcase_capture::{CaptureInfo, CaptureReader, Damage, Skipped};
use netcase_flow::{ConnSummary, FlowConfig, FlowSink, FlowTracker, FrameAnalysis, TrackerStats, UdpDatagram, UdpSummary};
use netcase_model::Finding;
use netcase_proto::{ProtoOutput, ProtoTracker};
use rules_stub::CaptureRules;
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
    proto: Option<ProtoTracker>,
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
                p.tcp(
                    f.frame,
                    f.ts_ns,
                    SocketAddr::new(f.src.addr, f.src.port),
                    SocketAddr::new(f.dst.addr, f.dst.port),
                    f.seq_raw,
                    f.ack_raw,
                    f.tcp_flags,
                    f.payload,
                    f.len,
                    Some(u64::from(f.stream)),
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
                p.udp(
                    d.frame,
                    d.ts_ns,
                    SocketAddr::new(d.src.addr, d.src.port),
                    SocketAddr::new(d.dst.addr, d.dst.port),
                    d.payload,
                    d.len,
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
        proto: opts.proto.then(ProtoTracker::new),
        rules: opts.rules.then(CaptureRules::new),
    };
    let mut decode_errors = 0u64;
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
    tracker.finish(&mut fan);
    let proto = fan.proto.take().map(ProtoTracker::finish);
    let mut findings = match fan.rules.take() {
        Some(r) => match proto.as_ref() {
            Some(p) => r.finish(&p.http, &p.dns),
            None => r.finish(&[], &[]),
        },
        None => Vec::new(),
    };
    if let Some(p) = proto.as_ref() {
        findings.extend(netcase_rules::proto::check(&p.dns, &p.http, &p.conns));
    }
    Finding::sort(&mut findings);
    Analysis {
        info: reader.info().clone(),
        damage: reader.damage().cloned(),
        skipped: reader.skipped().to_vec(),
        decode_errors,
        first_decode_error,
        tracker: tracker.stats(),
        proto,
        findings,
        events_error: fan.events_error,
    }
}

/// Temporary stand-in until the capture rules land (same shape).
mod rules_stub {
    use netcase_flow::{FlowSink, FrameAnalysis};
    use netcase_model::Finding;
    pub struct CaptureRules;
    impl CaptureRules {
        pub fn new() -> Self {
            CaptureRules
        }
        pub fn packet(&mut self, _f: u64, _t: i64, _p: &netcase_wire::Packet<'_>) {}
        pub fn finish(self, _h: &[netcase_proto::HttpTxn], _d: &[netcase_proto::DnsTxn]) -> Vec<Finding> {
            Vec::new()
        }
    }
    impl FlowSink for CaptureRules {
        fn frame(&mut self, _f: &FrameAnalysis<'_>) {}
    }
}
