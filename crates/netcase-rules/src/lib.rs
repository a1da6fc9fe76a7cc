//! Rules: evidence in, findings out. One module per case, grouped by evidence source.
//!
//! Rules know nothing of output formats; they read the records that the source crates
//! produce (connection summaries, transactions, host snapshots, trace aggregates) and push
//! [`netcase_model::Finding`]s.

pub mod capture;
pub mod catalogue;
pub mod host;
pub mod proto;
pub mod trace;
