//! Streaming, panic-free reading of capture files.
//!
//! [`CaptureReader`] reads classic pcap (both byte orders, microsecond and nanosecond
//! timestamps) and pcapng (several sections and interfaces, per-interface link type and
//! timestamp resolution, Enhanced/Simple/obsolete Packet Blocks; unknown blocks are skipped and
//! counted), plain or gzip-compressed, from a file or stdin (`-`).
//!
//! It lends one [`Frame`] at a time from its buffer: no allocation per packet, memory bounded
//! by the largest record. [`CaptureReader::open`] reads the file (and inflates gzip) ahead on a
//! thread of its own, into a few recycled chunks that become the buffer in turn. On damaged input (a truncated record or block, an
//! absurd length, a length mismatch, garbage) it stops, and [`CaptureReader::damage`] says
//! what was wrong, at which file offset and at which frame number; every frame before it has
//! been returned. Lengths are checked before anything is allocated for them.

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::unwrap_used))]

mod reader;

pub use reader::{
    background_thread, CaptureError, CaptureFormat, CaptureInfo, CaptureReader, Damage, DamageKind, Frame, Interface,
    Skipped, MAX_BLOCK_LEN, MAX_CAPLEN,
};
