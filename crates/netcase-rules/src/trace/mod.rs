//! Rules over trace evidence ([`netcase_trace::DropReport`], [`netcase_trace::TcpReport`]).
//!
//! * kernel-drop-trace: the reasons and locations that dominate the kernel's drops, each
//!   pointing at the case it suggests (SOCKET_RCVBUFF in UDP → udp-rcvbuf-drops,
//!   TCP_LISTEN_OVERFLOW → accept-queue-overflow, NETFILTER_DROP → a rule or conntrack).
//! * packet-drop-layers: the drops as a table by layer, the same rows `netcase check` fills
//!   from counters.
//! * From TCP events: connections refused by RST (port-unreachable), aborts on close or
//!   linger 0 (linger-zero-rst), retransmission stalls (retrans-hol-blocking).
//!
//! Reasons are matched by the names the running kernel gives them, never by number.

mod drops;
mod tcp;

pub use drops::{points_to, DropThresholds};
pub use tcp::check_tcp;

use netcase_model::Finding;
use netcase_trace::DropReport;

/// Every rule over a drop trace, with the default thresholds; findings sorted.
pub fn check(ev: &DropReport) -> Vec<Finding> {
    let mut out = drops::check(ev, &DropThresholds::default());
    Finding::settle(&mut out);
    out
}
