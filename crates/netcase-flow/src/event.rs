//! The `--events` JSON line of a frame.

use std::io::{self, Write};

use crate::types::FrameAnalysis;

/// Writes `{"frame": N, "stream": S, "flags": ["retransmission", ...]}` and a newline, flags
/// in tshark's order. Call it only for frames with at least one flag.
pub fn write_event_json<W: Write + ?Sized>(w: &mut W, f: &FrameAnalysis<'_>) -> io::Result<()> {
    write!(w, "{{\"frame\": {}, \"stream\": {}, \"flags\": [", f.frame, f.stream)?;
    for (i, name) in f.flags.names().enumerate() {
        if i > 0 {
            w.write_all(b", ")?;
        }
        write!(w, "\"{name}\"")?;
    }
    w.write_all(b"]}\n")
}
