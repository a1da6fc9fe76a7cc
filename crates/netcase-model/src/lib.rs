//! netcase's shared vocabulary.
//!
//! Every source (captures, the live host, kernel tracepoints) produces evidence; rules turn
//! evidence into [`Finding`]s; renderers print findings. This crate holds the types they all
//! agree on and nothing else: no I/O, no decoding, no diagnosis.
//!
//! A [`CaseId`] is API: its string form is the id used in `../shared/CASES.md`, in JSON output,
//! by `netcase explain ID` and by `netcase lab ID`.

mod case;
mod finding;

pub use case::{CaseId, CaseIdError, Source};
pub use finding::{Confidence, Evidence, Finding, Severity, Subject};

/// Version of the JSON documents netcase prints (`"netcase": N` in every report).
///
/// New fields keep the version; renaming or removing a field, or changing a unit or a
/// meaning, bumps it.
pub const SCHEMA_VERSION: u32 = 1;
