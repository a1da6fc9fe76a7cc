//! netcase's HTML report: one self-contained file (style inline, no script, a
//! Content-Security-Policy that forbids every fetch) with the summary and findings as plain
//! HTML and every graph as hand-drawn SVG.
//!
//! For a capture ([`gather::gather`] then [`capture::render`]): the findings, each linked to
//! the graph and the frames that show its evidence; a timeline of findings; the I/O graph;
//! per TCP stream (those with findings, then the largest) a tcptrace-style time-sequence
//! graph, throughput and goodput, RTT samples and bytes in flight against the window; DNS and
//! HTTP latency histograms per server and a waterfall of transactions.
//!
//! Sizes are bounded: stream graphs keep one record per pixel column (lowest and highest
//! values) plus every flagged frame, the I/O graph at most [`gather::MAX_BINS`] intervals,
//! the waterfall and the timeline a fixed number of rows.
//!
//! Every string that came from the capture is escaped ([`esc::escape`]).

pub mod capture;
pub mod esc;
pub mod gather;
pub mod host;
pub mod page;
pub mod svg;

pub use gather::{gather, CaptureData, Options};
pub use host::HostData;

/// Gathers and renders the report of the capture at `path`.
pub fn capture_report(path: &std::path::Path, opts: &Options) -> Result<(String, CaptureData), gather::GatherError> {
    let d = gather(path, opts)?;
    Ok((capture::render(&d), d))
}
