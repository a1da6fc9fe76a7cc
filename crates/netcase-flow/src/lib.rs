//! TCP and UDP flow tracking for netcase, with Wireshark-compatible TCP analysis.
//!
//! [`FlowTracker`] takes decoded packets ([`netcase_wire::Packet`]) in frame order and pushes
//! records into a [`FlowSink`]:
//!
//! * one [`FrameAnalysis`] per TCP frame: `tcp.stream`, direction, relative sequence
//!   numbers, window after scaling, and the `tcp.analysis.*` results with the meaning and
//!   frame attribution of Wireshark 4.0 (retransmission, fast/spurious retransmission,
//!   out-of-order, lost segment, ACKed unseen segment, duplicate ACK, zero window and probes,
//!   window full/update, keep-alive, reused ports, `acks_frame`, `ack_rtt`,
//!   `bytes_in_flight`, `initial_rtt`);
//! * one [`ConnSummary`] per connection when it is finished (idle, replaced by a new SYN on
//!   the same 4-tuple, or at the end), with handshake options, counts, RTT summary, stalls;
//! * one [`UdpDatagram`] per UDP datagram with its `udp.stream`, and a [`UdpSummary`] per flow.
//!
//! Numbering follows tshark: streams are numbered in order of first appearance by 4-tuple
//! (VLANs and interfaces ignored); a SYN with a new initial sequence number on a known 4-tuple
//! starts a new stream; an ICMP error quoting a TCP header carries the quoted connection's
//! stream and no analysis.
//!
//! Where tshark's two-pass dissection shows final per-connection state on every frame (window
//! scale, initial RTT), this single-pass engine shows the state as known at the frame; the
//! flags, `acks_frame` and `bytes_in_flight` are first-pass results in tshark too. Remaining
//! differences are listed in `PARITY.md`.
//!
//! Memory is bounded by concurrent flows: idle or closed flows are summarised and freed; a
//! bounded record of evicted 4-tuples keeps stream numbers right for late frames. The per-packet
//! path allocates nothing once a flow exists.
//!
//! ```
//! use netcase_flow::{FlowTracker, FlowConfig, FlowSink, FrameAnalysis};
//!
//! struct Events(Vec<String>);
//! impl FlowSink for Events {
//!     fn frame(&mut self, f: &FrameAnalysis<'_>) {
//!         if !f.flags.is_empty() {
//!             let mut line = Vec::new();
//!             netcase_flow::write_event_json(&mut line, f).unwrap();
//!             self.0.push(String::from_utf8(line).unwrap());
//!         }
//!     }
//! }
//! let mut tracker = FlowTracker::new(FlowConfig::default());
//! let mut sink = Events(Vec::new());
//! // for each frame: tracker.frame(f.number, f.ts_ns, f.orig_len, f.link, f.data, &mut sink);
//! tracker.finish(&mut sink);
//! ```

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::unwrap_used))]

mod event;
mod flags;
mod key;
mod stats;
mod tcp;
mod tracker;
mod types;
mod udp;

pub use event::write_event_json;
pub use flags::{AnalysisFlags, FlagCounts};
pub use key::Endpoint;
pub use stats::{LogHistogram, RttSummary, SizeHistogram};
pub use tracker::{FlowConfig, FlowTracker, TrackerStats};
pub use types::*;
