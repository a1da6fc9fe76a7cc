//! UDP flows (`udp.stream`): numbered by 4-tuple in order of first appearance.

use crate::key::FlowKey;
use crate::stats::SizeHistogram;
use crate::types::{Side, UdpDirTotals, UdpSummary};

/// One UDP flow.
#[derive(Debug, Clone)]
pub(crate) struct UdpFlow {
    pub key: FlowKey,
    pub a_is_lo: bool,
    pub stream: u32,
    pub first_frame: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub dirs: [UdpDirTotals; 2],
    pub sizes: SizeHistogram,
}

impl UdpFlow {
    pub(crate) fn new(key: FlowKey, a_is_lo: bool, stream: u32, frame: u64, ts: i64) -> Self {
        UdpFlow {
            key,
            a_is_lo,
            stream,
            first_frame: frame,
            first_ts: ts,
            last_ts: ts,
            dirs: [UdpDirTotals::default(); 2],
            sizes: SizeHistogram::default(),
        }
    }

    /// Counts a datagram (or an ICMP error quoting one) and returns its side.
    pub(crate) fn add(&mut self, src_is_lo: bool, ts: i64, orig_len: u32, len: u32, icmp: bool) -> Side {
        let side = if src_is_lo == self.a_is_lo { Side::A } else { Side::B };
        self.last_ts = ts;
        if let Some(d) = self.dirs.get_mut(side.index()) {
            if icmp {
                d.icmp_errors = d.icmp_errors.saturating_add(1);
            } else {
                d.packets += 1;
                d.bytes += u64::from(orig_len);
                d.payload_bytes += u64::from(len);
                d.max_payload = d.max_payload.max(len);
                self.sizes.add(len);
            }
        }
        side
    }

    pub(crate) fn summary(&self) -> UdpSummary {
        let (a, b) = if self.a_is_lo { (self.key.lo(), self.key.hi()) } else { (self.key.hi(), self.key.lo()) };
        UdpSummary {
            stream: self.stream,
            a,
            b,
            ab: self.dirs[0],
            ba: self.dirs[1],
            first_frame: self.first_frame,
            first_ts_ns: self.first_ts,
            last_ts_ns: self.last_ts,
            sizes: self.sizes,
        }
    }
}
