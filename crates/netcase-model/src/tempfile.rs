//! Scratch files that vanish with the process.

use std::fs::File;

/// A new temporary file in [`std::env::temp_dir`], unlinked at once: its data lives as long
/// as the handle, so nothing is left behind even when the process is killed.
pub fn unlinked() -> std::io::Result<File> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for _ in 0..16 {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".netcase-spill-{}-{nanos}-{n}", std::process::id()));
        match std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path) {
            Ok(f) => {
                // Unlinked at once: the data lives as long as the handle.
                let _ = std::fs::remove_file(&path);
                return Ok(f);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary file")))
}
