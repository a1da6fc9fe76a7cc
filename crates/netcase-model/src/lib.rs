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
pub mod tempfile;

pub use case::{CaseId, CaseIdError, Source};
pub use finding::{human_bytes, utc_time, Confidence, Evidence, Finding, Severity, Subject, Unit};

/// Version of the JSON documents netcase prints (`"schema"` in the `"netcase"` envelope every
/// document starts with; the documents are described in the repository's `schema/`).
///
/// New fields keep the version; renaming or removing a field, or changing a unit or a
/// meaning, bumps it. 2: the envelope `{"netcase": {"version", "schema", "command"}}` on every
/// command (1 had `"netcase": 1` on some).
pub const SCHEMA_VERSION: u32 = 2;
