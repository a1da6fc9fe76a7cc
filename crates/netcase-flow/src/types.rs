//! The records the engine hands to its sink.

use netcase_wire::TcpOptions;
use serde::Serialize;

use crate::flags::{AnalysisFlags, FlagCounts};
use crate::key::Endpoint;
use crate::stats::{RttSummary, SizeHistogram};

/// Which end of a flow sent a frame. `A` is the sender of the flow's first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The sender of the first frame of the flow.
    A,
    /// The other end.
    B,
}

impl Side {
    /// 0 for `A`, 1 for `B`.
    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// Window scaling known for one direction, as tshark's `tcp.window_size_scalefactor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowScale {
    /// The handshake was not seen: the window is shown unscaled (tshark's `-1`).
    Unknown,
    /// The handshake shows no scaling (tshark's `-2`).
    NoScaling,
    /// Scaled by `1 << shift`.
    Shift(u8),
}

impl WindowScale {
    /// tshark's `tcp.window_size_scalefactor` value: -1, -2 or the multiplier.
    pub fn tshark_value(self) -> i32 {
        match self {
            WindowScale::Unknown => -1,
            WindowScale::NoScaling => -2,
            WindowScale::Shift(s) => 1i32 << s.min(14),
        }
    }
    pub(crate) fn from_raw(v: i8) -> Self {
        match v {
            -2 => WindowScale::NoScaling,
            s if s >= 0 => WindowScale::Shift(s as u8),
            _ => WindowScale::Unknown,
        }
    }
}

/// Everything the engine knows about one TCP frame (or one ICMP error quoting a TCP header).
///
/// Borrowed from the frame: valid only during the sink call.
#[derive(Debug, Clone, Copy)]
pub struct FrameAnalysis<'a> {
    /// Frame number (1-based).
    pub frame: u64,
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// Frame length on the wire (`frame.len`).
    pub orig_len: u32,
    /// `tcp.stream`.
    pub stream: u32,
    /// Which end sent it.
    pub side: Side,
    /// Source (for an ICMP error: of the quoted packet).
    pub src: crate::Endpoint,
    /// Destination (for an ICMP error: of the quoted packet).
    pub dst: crate::Endpoint,
    /// This is an ICMP error quoting a TCP header: stream only, no analysis, absolute numbers.
    pub icmp_error: bool,
    /// Relative sequence number (`tcp.seq`); absolute for ICMP errors.
    pub seq: u32,
    /// Relative ack number when the ACK flag is set, else the raw field (`tcp.ack`).
    pub ack: u32,
    /// Raw sequence number.
    pub seq_raw: u32,
    /// Raw acknowledgement number.
    pub ack_raw: u32,
    /// Segment length (`tcp.len`).
    pub len: u32,
    /// TCP header flags (`tcp.flags`).
    pub tcp_flags: u16,
    /// Raw window field.
    pub window: u16,
    /// Window after scaling (`tcp.window_size`).
    pub calc_window: u32,
    /// The scale applied, `None` on SYN segments (never scaled).
    pub window_scale: Option<WindowScale>,
    /// `tcp.analysis.*` flags.
    pub flags: AnalysisFlags,
    /// `tcp.analysis.duplicate_ack_num` (0 = not a duplicate ACK).
    pub dupack_num: u32,
    /// `tcp.analysis.duplicate_ack_frame`: the last non-duplicate ACK.
    pub dupack_frame: u64,
    /// `tcp.analysis.acks_frame`: the segment this frame acknowledges exactly.
    pub acks_frame: Option<u64>,
    /// `tcp.analysis.ack_rtt` in ns (shown only when non-zero, as tshark does).
    pub ack_rtt_ns: Option<i64>,
    /// `tcp.analysis.bytes_in_flight` (shown only when non-zero).
    pub bytes_in_flight: Option<u32>,
    /// The connection's initial RTT (SYN to handshake ACK) as known at this frame.
    pub initial_rtt_ns: Option<i64>,
    /// Decoded TCP options (TSval, SACK blocks, MSS...).
    pub options: TcpOptions,
    /// The captured payload (may be shorter than `len` when the capture was sliced).
    pub payload: &'a [u8],
}

/// Options a SYN or SYN-ACK offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HandshakeOptions {
    /// Frame of the (first) SYN or SYN-ACK.
    pub frame: u64,
    /// MSS option.
    pub mss: Option<u16>,
    /// Window scale shift as sent.
    pub wscale: Option<u8>,
    /// SACK permitted.
    pub sack_perm: bool,
    /// Timestamps option present.
    pub timestamps: bool,
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnEnd {
    /// No FIN or RST seen.
    Open,
    /// One side sent FIN.
    HalfClosed {
        /// Who sent it.
        by: Side,
    },
    /// Both sides sent FIN.
    Closed {
        /// Who sent the first FIN.
        initiator: Side,
    },
    /// A RST was seen.
    Reset {
        /// Who sent the first RST.
        by: Side,
        /// Whether a FIN had been seen before it.
        after_fin: bool,
    },
}

/// Receive window limits one side advertised (scaled as tshark scales them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WindowRange {
    /// Smallest calculated window.
    pub min: u32,
    /// Largest calculated window.
    pub max: u32,
}

/// Per-direction totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DirTotals {
    /// Frames sent (including ICMP errors quoting this direction, as tshark counts them).
    pub frames: u64,
    /// Bytes on the wire (`frame.len`).
    pub bytes: u64,
    /// TCP payload bytes.
    pub payload_bytes: u64,
    /// Frames with FIN.
    pub fin: u32,
    /// Frames with RST.
    pub rst: u32,
    /// Window scale (`tcp.window_size_scalefactor` as of the end), if a non-SYN frame was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scalefactor: Option<i32>,
    /// Calculated window limits on non-SYN frames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowRange>,
    /// Total time this side advertised a zero window, ns.
    pub zero_window_ns: i64,
    /// The largest TCP payload in one frame (above the peer's MSS: segmentation offload).
    pub max_segment: u32,
    /// Payload bytes the peer acknowledged that the capture never showed (capture loss, the
    /// way Zeek's `missed_bytes` counts it: gaps the receiver ACKed). Left out of the JSON
    /// when 0, as are `missed_gaps`.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub missed_bytes: u64,
    /// How many such gaps.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub missed_gaps: u32,
}

/// The summary of one TCP connection (`tcp.stream`), sent when it is closed and evicted or
/// when the capture ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnSummary {
    /// `tcp.stream`.
    pub stream: u32,
    /// Sender of the first frame.
    pub a: Endpoint,
    /// The other end.
    pub b: Endpoint,
    /// Totals for frames sent by `a`.
    pub ab: DirTotals,
    /// Totals for frames sent by `b`.
    pub ba: DirTotals,
    /// First frame number.
    pub first_frame: u64,
    /// Time of the first frame, ns since the epoch.
    pub first_ts_ns: i64,
    /// Time of the last frame, ns since the epoch.
    pub last_ts_ns: i64,
    /// Options of the first SYN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syn: Option<HandshakeOptions>,
    /// Options of the first SYN-ACK.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synack: Option<HandshakeOptions>,
    /// `tcp.analysis.initial_rtt`, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub irtt_ns: Option<i64>,
    /// How it ended.
    pub end: ConnEnd,
    /// Frames per flag.
    pub flag_counts: FlagCounts,
    /// ACK RTT samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt: Option<RttSummary>,
    /// Largest `bytes_in_flight`.
    pub max_bytes_in_flight: u32,
    /// Payload bytes of frames flagged as retransmissions.
    pub retransmitted_bytes: u64,
    /// Longest gap between frames while data was unacknowledged, ns.
    pub longest_stall_ns: i64,
    /// The frame that ended the longest stall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longest_stall_frame: Option<u64>,
    /// The flow's state had been evicted (idle, or finished and beyond the held maximum) and was
    /// rebuilt from its remembered sequence state: the counts here start at that frame.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
}

impl ConnSummary {
    /// Duration first to last frame, ns.
    pub fn duration_ns(&self) -> i64 {
        self.last_ts_ns.saturating_sub(self.first_ts_ns)
    }
}

/// One UDP datagram with its flow (`udp.stream`).
#[derive(Debug, Clone, Copy)]
pub struct UdpDatagram<'a> {
    /// Frame number.
    pub frame: u64,
    /// Capture time, ns.
    pub ts_ns: i64,
    /// `udp.stream`.
    pub stream: u32,
    /// Which end sent it.
    pub side: Side,
    /// Source.
    pub src: Endpoint,
    /// Destination.
    pub dst: Endpoint,
    /// Payload length by the IP header.
    pub len: u32,
    /// The UDP length field.
    pub udp_length: u16,
    /// The captured payload.
    pub payload: &'a [u8],
    /// This is an ICMP error quoting a UDP header (no payload).
    pub icmp_error: bool,
}

impl UdpDatagram<'_> {
    /// The same facts without the payload (`payload` empty, `len` kept).
    #[inline]
    pub fn without_payload(&self) -> UdpDatagram<'static> {
        UdpDatagram {
            frame: self.frame,
            ts_ns: self.ts_ns,
            stream: self.stream,
            side: self.side,
            src: self.src,
            dst: self.dst,
            len: self.len,
            udp_length: self.udp_length,
            payload: &[],
            icmp_error: self.icmp_error,
        }
    }
}

/// Per-direction UDP totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UdpDirTotals {
    /// Datagrams.
    pub packets: u64,
    /// Bytes on the wire.
    pub bytes: u64,
    /// Payload bytes.
    pub payload_bytes: u64,
    /// Largest payload.
    pub max_payload: u32,
    /// ICMP errors quoting datagrams of this direction.
    pub icmp_errors: u32,
}

/// The summary of one UDP flow (`udp.stream`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UdpSummary {
    /// `udp.stream`.
    pub stream: u32,
    /// Sender of the first datagram.
    pub a: Endpoint,
    /// The other end.
    pub b: Endpoint,
    /// Sent by `a`.
    pub ab: UdpDirTotals,
    /// Sent by `b`.
    pub ba: UdpDirTotals,
    /// First frame.
    pub first_frame: u64,
    /// First time, ns.
    pub first_ts_ns: i64,
    /// Last time, ns.
    pub last_ts_ns: i64,
    /// Payload sizes, both directions.
    pub sizes: SizeHistogram,
}

/// Receives the engine's records. Every method but [`FlowSink::frame`] has a no-op default.
pub trait FlowSink {
    /// One TCP frame (or ICMP error quoting a TCP header), in frame order.
    fn frame(&mut self, f: &FrameAnalysis<'_>);
    /// A TCP connection is finished (evicted, replaced by a reused port, or end of capture).
    fn closed(&mut self, _c: &ConnSummary) {}
    /// One UDP datagram.
    fn udp(&mut self, _d: &UdpDatagram<'_>) {}
    /// A UDP flow is finished.
    fn udp_closed(&mut self, _u: &UdpSummary) {}
}

impl FlowSink for () {
    fn frame(&mut self, _f: &FrameAnalysis<'_>) {}
}

impl<S: FlowSink + ?Sized> FlowSink for &mut S {
    fn frame(&mut self, f: &FrameAnalysis<'_>) {
        (**self).frame(f)
    }
    fn closed(&mut self, c: &ConnSummary) {
        (**self).closed(c)
    }
    fn udp(&mut self, d: &UdpDatagram<'_>) {
        (**self).udp(d)
    }
    fn udp_closed(&mut self, u: &UdpSummary) {
        (**self).udp_closed(u)
    }
}

/// For `skip_serializing_if`.
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// For `skip_serializing_if`.
fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
