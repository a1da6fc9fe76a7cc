//! Helpers shared by the tests of several netcase crates; a dev-dependency only, never
//! published.
//!
//! - [`counting`]: a global allocator that counts allocations, to prove that a per-packet
//!   path allocates nothing.
//! - [`tcp`]: Ethernet/IPv4/TCP frames built from short segment descriptions.
//! - [`corpus`], [`corpus_captures`], [`wild_captures`]: where the capture corpora live.
//! - [`pcap`]: a classic pcap file of Ethernet frames.

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

/// The captures of the shared corpus (`.pcap`, `.pcapng`, `.gz`), sorted. A missing or empty
/// corpus fails the calling test loudly, unless `NETCASE_SKIP_CORPUS` is set, which skips on
/// purpose (an empty list and a line on stderr).
pub fn corpus_captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(CORPUS) {
        Ok(d) => d.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    v.retain(|p| p.is_file() && p.extension().is_some_and(|x| x == "pcap" || x == "pcapng" || x == "gz"));
    v.sort();
    if v.is_empty() {
        assert!(
            std::env::var_os("NETCASE_SKIP_CORPUS").is_some(),
            "the test corpus is missing at {CORPUS}; NETCASE_SKIP_CORPUS=1 skips on purpose"
        );
        eprintln!("corpus not found at {CORPUS}: skipped (NETCASE_SKIP_CORPUS)");
    }
    v
}

/// The reviewed captures from the wild kept in this repository, relative to a crate folder.
pub const WILD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpus/wild");

/// The captures of `corpus/wild` (`.pcap`, `.pcapng`), sorted. They are part of the
/// repository: a missing folder fails the calling test.
pub fn wild_captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(WILD)
        .unwrap_or_else(|e| panic!("corpus/wild at {WILD}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.retain(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"));
    v.sort();
    v
}

/// A classic pcap file (microsecond timestamps, Ethernet, snap length 65,535) of `frames`:
/// (time in µs since the epoch, the frame's bytes).
pub fn pcap(frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (us, f) in frames {
        out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}
