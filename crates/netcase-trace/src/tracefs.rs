//! Finding tracefs, where the kernel publishes each tracepoint's id and format.
//!
//! netcase only reads it. When no tracefs is mounted, it mounts one on a private directory
//! under `/run`, reads what it needs, and unmounts it when the [`Tracefs`] value drops (the
//! events themselves do not need tracefs once opened); [`Tracefs::note`] says so.

use crate::error::{Error, Result};
use crate::format::EventFormat;
use std::path::{Path, PathBuf};

/// A readable tracefs.
#[derive(Debug)]
pub struct Tracefs {
    root: PathBuf,
    mounted_here: bool,
}

/// Mount points of tracefs in a `/proc/self/mounts` text (sans-I/O).
pub fn tracefs_mounts(mounts: &str) -> Vec<PathBuf> {
    mounts
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (_dev, dir, fstype) = (it.next()?, it.next()?, it.next()?);
            // Mount points escape spaces as \040.
            (fstype == "tracefs").then(|| PathBuf::from(dir.replace("\\040", " ")))
        })
        .collect()
}

impl Tracefs {
    /// Finds a mounted tracefs (or the old debugfs path), mounting one if there is none.
    pub fn open() -> Result<Self> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mounted = tracefs_mounts(&mounts);
        let mut candidates = mounted.clone();
        candidates.push(PathBuf::from("/sys/kernel/debug/tracing"));
        if let Some(root) = candidates.into_iter().find(|p| p.join("events").is_dir()) {
            return Ok(Tracefs { root, mounted_here: false });
        }
        // Mounted, but closed to this user: say so rather than try (and fail) to mount it.
        if let Some(root) = mounted
            .into_iter()
            .find(|p| std::fs::read_dir(p).is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied))
        {
            return Err(Error::NoPrivilege(format!("tracefs at {} is not readable by this user", root.display())));
        }
        let base = if Path::new("/run").is_dir() { PathBuf::from("/run") } else { std::env::temp_dir() };
        let root = base.join(format!("netcase-tracefs-{}", std::process::id()));
        if let Err(e) = std::fs::create_dir_all(&root) {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                return Err(Error::NoPrivilege("tracefs is not mounted and only root can mount it".into()));
            }
            return Err(Error::NoTracefs(e));
        }
        if let Err(e) = crate::sys::mount_tracefs(&root) {
            let _ = std::fs::remove_dir(&root);
            if e.kind() == std::io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(1) {
                return Err(Error::NoPrivilege("tracefs is not mounted and only root can mount it".into()));
            }
            return Err(Error::NoTracefs(e));
        }
        Ok(Tracefs { root, mounted_here: true })
    }

    /// Uses a tracefs (or a directory laid out like one) at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Tracefs { root: root.into(), mounted_here: false }
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether netcase mounted it (and will unmount it).
    pub fn mounted_here(&self) -> bool {
        self.mounted_here
    }

    /// A sentence for the report when netcase had to mount tracefs.
    pub fn note(&self) -> Option<String> {
        self.mounted_here.then(|| {
            format!(
                "tracefs was not mounted: netcase mounted it at {} to read tracepoint formats and unmounted it",
                self.root.display()
            )
        })
    }

    /// Reads and parses `events/<system>/<name>/format`.
    pub fn format(&self, system: &str, name: &str) -> Result<EventFormat> {
        let event = format!("{system}/{name}");
        let path = self.root.join("events").join(system).join(name).join("format");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NoTracepoint(event)),
            Err(source) => return Err(Error::Read { path, source }),
        };
        EventFormat::parse(&event, &text)
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        if self.mounted_here {
            let _ = crate::sys::unmount(&self.root);
            let _ = std::fs::remove_dir(&self.root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tracefs_in_mounts() {
        let m = "sysfs /sys sysfs rw 0 0\ntracefs /sys/kernel/tracing tracefs rw,nosuid 0 0\n\
                 tracefs /my\\040dir tracefs rw 0 0\nbad\n";
        assert_eq!(tracefs_mounts(m), vec![PathBuf::from("/sys/kernel/tracing"), PathBuf::from("/my dir")]);
        assert!(tracefs_mounts("").is_empty());
    }

    #[test]
    fn missing_tracepoint_is_named() {
        let t = Tracefs::at("/nonexistent-netcase");
        assert!(matches!(t.format("skb", "kfree_skb"), Err(Error::NoTracepoint(e)) if e == "skb/kfree_skb"));
    }
}
