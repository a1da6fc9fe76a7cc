//! Helpers shared by the tests of several netcase crates; a dev-dependency only, never
//! published.
//!
//! - [`counting`]: a global allocator that counts allocations, to prove that a per-packet
//!   path allocates nothing.
//! - [`tcp`]: Ethernet/IPv4/TCP frames built from short segment descriptions.
//! - [`corpus`]: where the shared capture corpus lives.

pub mod counting;
pub mod tcp;

use std::path::PathBuf;

/// The shared capture corpus (`NAME` captures with `NAME.truth/` folders), relative to a
/// crate folder of this workspace.
pub const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

/// The shared corpus folder, if present.
pub fn corpus() -> Option<PathBuf> {
    let p = PathBuf::from(CORPUS);
    p.is_dir().then_some(p)
}
