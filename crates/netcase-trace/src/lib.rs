//! Kernel evidence from tracepoints, read through `perf_event_open(2)` without a BPF
//! toolchain: where the stack drops packets (`skb:kfree_skb`, with the reason and the
//! function) and what TCP does on the wire (retransmits, resets, state changes, with
//! addresses).
//!
//! Layout, from the bytes up:
//! * [`format`]: tracepoint format files — field offsets and the enum names the running
//!   kernel prints (drop reasons, TCP states). Nothing is compiled in: numbers move between
//!   kernels, names do not.
//! * [`record`], [`perf_record`], [`kallsyms`], [`counters`]: sans-I/O parsers of sample
//!   bytes, ring records, `/proc/kallsyms` and `/proc/net/snmp`.
//! * [`session`]: one perf event per tracepoint and CPU, one fixed-size ring per CPU. The
//!   only `unsafe` code is in the private `sys` module.
//! * [`drops`] and [`tcp`]: decoders, bounded aggregations and the reports the `netcase drops`
//!   and `netcase trace` commands print.
//!
//! Tracing changes nothing on the host but attaching the events; closing them (on return,
//! panic unwinding, or process exit) detaches.

pub mod counters;
pub mod drops;
mod error;
pub mod format;
pub mod kallsyms;
pub mod layer;
pub mod perf_record;
pub mod record;
pub mod session;
mod sys;
pub mod tcp;
pub mod tracefs;

pub use drops::{DropReport, DropTraceOptions, DropTracer};
pub use error::{Error, Result};
pub use layer::Layer;
pub use session::{SessionOptions, SessionStats};
pub use sys::{in_netns, StopOnSignals};
pub use tcp::{TcpFilter, TcpReport, TcpTracer};
