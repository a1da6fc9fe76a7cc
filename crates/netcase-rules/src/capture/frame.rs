//! [`RuleFrame`]: what the capture rules read of a TCP frame.

use netcase_flow::{AnalysisFlags, Endpoint, FrameAnalysis, Side};

/// The TCP options the rules read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleOptions {
    /// Timestamps (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
    /// Maximum segment size.
    pub mss: Option<u16>,
    /// Number of SACK blocks.
    pub sack_count: u8,
    /// SACK blocks (left, right); the first `sack_count` are valid.
    pub sack: [(u32, u32); 4],
}

impl RuleOptions {
    /// The valid SACK blocks.
    pub fn sack_blocks(&self) -> &[(u32, u32)] {
        self.sack.get(..usize::from(self.sack_count)).unwrap_or(&[])
    }
}

/// The part of a [`FrameAnalysis`] the capture rules read, with the same field names: owned,
/// and two thirds the size, so a caller can hand frames to the thread running the rules
/// cheaply. The rules take only this type, so the compiler holds them to these fields.
#[derive(Debug, Clone, Copy)]
pub struct RuleFrame {
    /// Frame number (1-based).
    pub frame: u64,
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// `tcp.analysis.ack_rtt` in ns.
    pub ack_rtt_ns: Option<i64>,
    /// Source.
    pub src: Endpoint,
    /// Destination.
    pub dst: Endpoint,
    /// `tcp.stream`.
    pub stream: u32,
    /// Relative sequence number.
    pub seq: u32,
    /// Relative ack number when the ACK flag is set, else the raw field.
    pub ack: u32,
    /// Raw acknowledgement number.
    pub ack_raw: u32,
    /// Raw sequence number.
    pub seq_raw: u32,
    /// Segment length (`tcp.len`).
    pub len: u32,
    /// Window after scaling.
    pub calc_window: u32,
    /// `tcp.analysis.duplicate_ack_num` (0 = not a duplicate ACK).
    pub dupack_num: u32,
    /// `tcp.analysis.bytes_in_flight`.
    pub bytes_in_flight: Option<u32>,
    /// `tcp.analysis.*` flags.
    pub flags: AnalysisFlags,
    /// TCP header flags.
    pub tcp_flags: u16,
    /// Raw window field.
    pub window: u16,
    /// Which end sent it.
    pub side: Side,
    /// TCP options.
    pub options: RuleOptions,
}

impl RuleFrame {
    /// The rules' view of `f`; `None` for an ICMP error quoting a TCP header (the rules read
    /// ICMP through [`PacketNote`](super::PacketNote)).
    #[inline]
    pub fn of(f: &FrameAnalysis<'_>) -> Option<RuleFrame> {
        if f.icmp_error {
            return None;
        }
        Some(RuleFrame {
            frame: f.frame,
            ts_ns: f.ts_ns,
            ack_rtt_ns: f.ack_rtt_ns,
            src: f.src,
            dst: f.dst,
            stream: f.stream,
            seq: f.seq,
            ack: f.ack,
            ack_raw: f.ack_raw,
            seq_raw: f.seq_raw,
            len: f.len,
            calc_window: f.calc_window,
            dupack_num: f.dupack_num,
            bytes_in_flight: f.bytes_in_flight,
            flags: f.flags,
            tcp_flags: f.tcp_flags,
            window: f.window,
            side: f.side,
            options: RuleOptions {
                timestamp: f.options.timestamp,
                mss: f.options.mss,
                sack_count: f.options.sack_count,
                sack: f.options.sack,
            },
        })
    }
}
