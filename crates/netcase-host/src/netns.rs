//! Network namespaces: which exist (`/var/run/netns`, every process's `/proc/P/ns/net`), and
//! running work inside one on a dedicated thread. The thread calls `setns(2)` and ends with
//! the work, so the process itself never leaves its own namespace.

use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where named namespaces live (`ip netns add`).
pub const NETNS_RUN_DIR: &str = "/var/run/netns";

/// A network namespace to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetnsRef {
    /// Display name: the `/var/run/netns` name, or `ino:N`; `None` for the caller's own.
    pub name: Option<String>,
    /// The file to `setns` on (`None`: stay in the caller's namespace).
    pub path: Option<PathBuf>,
    /// The namespace inode (stable id while it exists).
    pub inode: u64,
    /// The `/var/run/netns` name, if it has one (for `/etc/netns/NAME` overrides).
    pub named: Option<String>,
    /// Some processes in it: (pid, comm), at most [`MAX_PIDS_LISTED`].
    pub pids: Vec<(u32, String)>,
}

/// How many processes are listed per namespace (enough to name the owner of a container).
pub const MAX_PIDS_LISTED: usize = 8;

impl NetnsRef {
    /// The caller's own network namespace.
    pub fn current() -> Result<Self> {
        let inode = ns_inode(Path::new("/proc/thread-self/ns/net"))?;
        Ok(NetnsRef { name: None, path: None, inode, named: None, pids: Vec::new() })
    }

    /// A namespace created by `ip netns add NAME`.
    pub fn named(name: &str) -> Result<Self> {
        if name.contains('/') || name.is_empty() || name == "." || name == ".." {
            return Err(Error::NotFound(format!("invalid netns name '{name}'")));
        }
        let path = Path::new(NETNS_RUN_DIR).join(name);
        let inode = ns_inode(&path).map_err(|_| Error::NotFound(format!("no netns '{name}' in {NETNS_RUN_DIR}")))?;
        Ok(NetnsRef {
            name: Some(name.to_owned()),
            path: Some(path),
            inode,
            named: Some(name.to_owned()),
            pids: Vec::new(),
        })
    }

    /// The namespace of process `pid`.
    pub fn of_pid(pid: u32) -> Result<Self> {
        let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let inode = ns_inode(&path).map_err(|e| Error::NotFound(format!("cannot read netns of pid {pid}: {e}")))?;
        let comm = read_comm(pid);
        Ok(NetnsRef {
            name: Some(format!("pid:{pid}")),
            path: Some(path),
            inode,
            named: named_by_inode().remove(&inode),
            pids: vec![(pid, comm)],
        })
    }

    /// The subject label for findings (`None` for the caller's own namespace).
    pub fn label(&self) -> Option<String> {
        self.name.clone()
    }
}

fn ns_inode(p: &Path) -> Result<u64> {
    std::fs::metadata(p).map(|m| m.ino()).map_err(|source| Error::Read { path: p.to_owned(), source })
}

pub(crate) fn read_comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim_end().to_owned()).unwrap_or_default()
}

fn named_by_inode() -> BTreeMap<u64, String> {
    let mut m = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(NETNS_RUN_DIR) {
        for e in rd.flatten() {
            if let (Ok(md), Some(n)) = (std::fs::metadata(e.path()), e.file_name().to_str()) {
                m.entry(md.ino()).or_insert_with(|| n.to_owned());
            }
        }
    }
    m
}

/// Every distinct network namespace: the caller's, each in `/var/run/netns`, each process's.
/// Processes whose namespace cannot be read (no privilege) are skipped and counted.
pub fn list_all() -> Result<(Vec<NetnsRef>, usize)> {
    let own = NetnsRef::current()?;
    let mut by_ino: BTreeMap<u64, NetnsRef> = BTreeMap::new();
    by_ino.insert(own.inode, own);
    for (ino, name) in named_by_inode() {
        by_ino.entry(ino).or_insert_with(|| NetnsRef {
            name: Some(name.clone()),
            path: Some(Path::new(NETNS_RUN_DIR).join(&name)),
            inode: ino,
            named: Some(name),
            pids: Vec::new(),
        });
    }
    let mut unreadable = 0;
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
            let Ok(md) = std::fs::metadata(&path) else {
                unreadable += 1;
                continue;
            };
            let ns = by_ino.entry(md.ino()).or_insert_with(|| NetnsRef {
                name: Some(format!("ino:{}", md.ino())),
                path: Some(path),
                inode: md.ino(),
                named: None,
                pids: Vec::new(),
            });
            if ns.pids.len() < MAX_PIDS_LISTED {
                ns.pids.push((pid, read_comm(pid)));
            }
        }
    }
    Ok((by_ino.into_values().collect(), unreadable))
}

/// Runs `f` on a new thread that has entered `ns` (or stays in the caller's namespace when
/// `ns.path` is `None`). The thread ends with `f`, taking the foreign namespace with it.
pub fn run_in<T: Send>(ns: &NetnsRef, f: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|s| {
        let h = std::thread::Builder::new()
            .name("netcase-netns".into())
            .spawn_scoped(s, || -> Result<T> {
                if let Some(p) = &ns.path {
                    let file = std::fs::File::open(p).map_err(|source| Error::Setns { name: display(ns), source })?;
                    // SAFETY: setns on a valid, open namespace fd; affects only this thread.
                    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    if rc != 0 {
                        return Err(Error::Setns { name: display(ns), source: std::io::Error::last_os_error() });
                    }
                }
                Ok(f())
            })
            .map_err(|e| Error::Thread(e.to_string()))?;
        h.join().map_err(|_| Error::Thread("worker panicked".into()))?
    })
}

fn display(ns: &NetnsRef) -> String {
    ns.name.clone().unwrap_or_else(|| format!("ino:{}", ns.inode))
}
