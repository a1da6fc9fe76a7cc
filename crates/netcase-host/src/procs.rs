//! Socket owners: which process holds which socket inode, from `/proc/*/fd` (like `ss -p`).

use std::collections::HashMap;

/// Parses a `/proc/P/fd/N` link target: `socket:[12345]` → 12345.
pub fn parse_socket_link(target: &[u8]) -> Option<u64> {
    let s = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Socket inode → owning processes (pid, comm).
#[derive(Debug, Default)]
pub struct OwnerIndex {
    /// The map.
    pub by_inode: HashMap<u64, Vec<(u32, String)>>,
    /// Processes whose descriptors could not be read (another user without privilege).
    pub unreadable: usize,
}

impl OwnerIndex {
    /// Scans every process's descriptors.
    pub fn scan() -> Self {
        use std::os::unix::ffi::OsStrExt;
        let mut idx = OwnerIndex::default();
        let Ok(rd) = std::fs::read_dir("/proc") else { return idx };
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                idx.unreadable += 1;
                continue;
            };
            let mut comm: Option<String> = None;
            for fd in fds.flatten() {
                let Ok(t) = std::fs::read_link(fd.path()) else { continue };
                if let Some(ino) = parse_socket_link(t.as_os_str().as_bytes()) {
                    let c = comm.get_or_insert_with(|| crate::netns::read_comm(pid)).clone();
                    let v = idx.by_inode.entry(ino).or_default();
                    if !v.iter().any(|(p, _)| *p == pid) {
                        v.push((pid, c));
                    }
                }
            }
        }
        idx
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn socket_links() {
        assert_eq!(super::parse_socket_link(b"socket:[4711]"), Some(4711));
        assert_eq!(super::parse_socket_link(b"pipe:[4711]"), None);
        assert_eq!(super::parse_socket_link(b"socket:[x]"), None);
    }
}
