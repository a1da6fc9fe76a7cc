//! Removing what a lab made, on every exit path.
//!
//! Each run registers its namespaces, `/etc/netns` directories, child processes and host
//! values to restore in a process-wide registry. A run's guard removes them when it ends
//! (also when unwinding from a panic); a signal handler removes every run's on Ctrl-C or
//! SIGTERM; a watchdog removes them when a run overstays its deadline. Leftovers of a
//! crashed earlier run are found by name prefix ([`PREFIX`]) and the owner pid in the name.

use anyhow::Result;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Every namespace and `/etc/netns` directory a lab makes starts with this.
pub const PREFIX: &str = "ncl-";
/// Where markers of kept namespaces and pending host restores live.
pub const STATE_DIR: &str = "/run/netcase-lab";

#[derive(Default)]
struct RunRes {
    namespaces: Vec<String>,
    dirs: Vec<PathBuf>,
    pids: Vec<u32>,
    restores: Vec<(PathBuf, String, PathBuf)>,
    keep: bool,
}

fn registry() -> &'static Mutex<BTreeMap<u64, RunRes>> {
    static REG: OnceLock<Mutex<BTreeMap<u64, RunRes>>> = OnceLock::new();
    REG.get_or_init(|| Mutex::new(BTreeMap::new()))
}

fn with_run(run: u64, f: impl FnOnce(&mut RunRes)) {
    let mut reg = registry().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    f(reg.entry(run).or_default());
}

/// Records a namespace made by run `run`.
pub fn add_ns(run: u64, name: &str) {
    with_run(run, |r| r.namespaces.push(name.to_owned()));
}

/// Records a directory (`/etc/netns/NAME`) made by run `run`.
pub fn add_dir(run: u64, dir: &Path) {
    with_run(run, |r| r.dirs.push(dir.to_owned()));
}

/// Records a child process of run `run`, killed at cleanup.
pub fn add_pid(run: u64, pid: u32) {
    with_run(run, |r| r.pids.push(pid));
}

/// Forgets a child process that has been reaped.
pub fn remove_pid(run: u64, pid: u32) {
    with_run(run, |r| r.pids.retain(|p| *p != pid));
}

/// Marks run `run` as kept: its namespaces survive cleanup.
pub fn set_keep(run: u64, keep: bool) {
    with_run(run, |r| r.keep = keep);
}

/// Changes a host file (a global sysctl) for run `run`, recording the old value in memory
/// and on disk so that any exit path, or a later run after a crash, restores it.
pub fn change_host_value(run: u64, path: &Path, value: &str) -> Result<String> {
    let old = std::fs::read_to_string(path)?.trim().to_owned();
    std::fs::create_dir_all(STATE_DIR)?;
    let marker = PathBuf::from(format!("{STATE_DIR}/restore-{}-{run}", std::process::id()));
    std::fs::write(&marker, format!("{}\n{old}\n", path.display()))?;
    with_run(run, |r| r.restores.push((path.to_owned(), old.clone(), marker.clone())));
    std::fs::write(path, value)?;
    Ok(old)
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn del_ns(name: &str) {
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

fn restore(path: &Path, old: &str, marker: &Path) {
    match std::fs::write(path, old) {
        Ok(()) => {
            let _ = std::fs::remove_file(marker);
        }
        Err(e) => eprintln!("netcase lab: cannot restore {} to {old}: {e}", path.display()),
    }
}

/// Removes what run `run` made (namespaces only when not kept) and restores host values.
pub fn cleanup_run(run: u64) {
    let res = {
        let mut reg = registry().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        reg.remove(&run)
    };
    let Some(res) = res else { return };
    for pid in &res.pids {
        // SAFETY: kill on a pid we spawned and have not reaped.
        unsafe {
            libc::kill(*pid as libc::pid_t, libc::SIGKILL);
        }
    }
    for (path, old, marker) in res.restores.iter().rev() {
        restore(path, old, marker);
    }
    if res.keep {
        let _ = std::fs::create_dir_all(STATE_DIR);
        for ns in &res.namespaces {
            let _ = std::fs::write(format!("{STATE_DIR}/keep-{ns}"), "");
        }
        return;
    }
    for ns in &res.namespaces {
        del_ns(ns);
    }
    for d in &res.dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Cleans up every run of this process (signal handler, watchdog).
pub fn cleanup_all() {
    let runs: Vec<u64> = {
        let reg = registry().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        reg.keys().copied().collect()
    };
    for r in runs {
        cleanup_run(r);
    }
}

/// Splits a lab namespace name `ncl-LAB-PID-SEQ-ROLE` into (lab, pid).
pub fn parse_name(name: &str) -> Option<(&str, u32)> {
    let rest = name.strip_prefix(PREFIX)?;
    let mut it = rest.rsplitn(4, '-');
    let _role = it.next()?;
    let _seq: u64 = it.next()?.parse().ok()?;
    let pid: u32 = it.next()?.parse().ok()?;
    let lab = it.next()?;
    Some((lab, pid))
}

/// Removes leftovers of earlier runs whose process is gone (and that were not kept):
/// namespaces, `/etc/netns` directories, and host values still waiting to be restored.
/// Returns what was removed or restored.
pub fn cleanup_leftovers() -> Vec<String> {
    let mut done = Vec::new();
    for ns in crate::ns::list() {
        let Some((_, pid)) = parse_name(&ns) else { continue };
        if pid_alive(pid) || Path::new(&format!("{STATE_DIR}/keep-{ns}")).exists() {
            continue;
        }
        del_ns(&ns);
        done.push(format!("removed netns {ns}"));
    }
    if let Ok(d) = std::fs::read_dir("/etc/netns") {
        for e in d.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((_, pid)) = parse_name(&name) else { continue };
            if !pid_alive(pid) && !Path::new(&format!("/var/run/netns/{name}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
                done.push(format!("removed /etc/netns/{name}"));
            }
        }
    }
    if let Ok(d) = std::fs::read_dir(STATE_DIR) {
        for e in d.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("restore-") else { continue };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
            if pid_alive(pid) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(e.path()) else { continue };
            let mut l = text.lines();
            if let (Some(path), Some(old)) = (l.next(), l.next()) {
                restore(Path::new(path), old, &e.path());
                done.push(format!("restored {path} to {old}"));
            }
        }
    }
    done
}

/// Removes the namespaces (kept or not) of lab `lab`, or of every lab when `None`, whose
/// process is gone, and every leftover. Returns what was done, one line each.
pub fn down(lab: Option<&str>) -> Vec<String> {
    let mut done = Vec::new();
    for ns in crate::ns::list() {
        let Some((l, pid)) = parse_name(&ns) else { continue };
        if lab.is_some_and(|want| want != l) || (pid_alive(pid) && pid != std::process::id()) {
            continue;
        }
        del_ns(&ns);
        let _ = std::fs::remove_file(format!("{STATE_DIR}/keep-{ns}"));
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
        done.push(format!("removed netns {ns}"));
    }
    done.extend(cleanup_leftovers());
    done
}

static PIPE_W: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_W.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a local byte.
        unsafe {
            libc::write(fd, std::ptr::addr_of!(b).cast(), 1);
        }
    }
}

/// Installs SIGINT/SIGTERM/SIGHUP handlers (once per process) that clean up every run and
/// exit with 128 + the signal number. The handler only writes to a pipe; a thread does the
/// work.
pub fn install_signal_handlers() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills the two-element array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return;
        }
        PIPE_W.store(fds[1], std::sync::atomic::Ordering::Relaxed);
        let rfd = fds[0];
        std::thread::spawn(move || {
            let mut b = 0u8;
            // SAFETY: reading one byte into a local from the pipe we created.
            let n = unsafe { libc::read(rfd, std::ptr::addr_of_mut!(b).cast(), 1) };
            if n == 1 {
                eprintln!("netcase lab: interrupted, removing the lab's namespaces");
                cleanup_all();
                std::process::exit(128 + i32::from(b));
            }
        });
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: installing a handler that only calls write(2).
            unsafe {
                libc::signal(sig, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
            }
        }
    });
}

/// Starts a watchdog for a run: if the returned sender is not dropped within `limit`, every
/// run's resources are removed (the stuck run cannot be stopped alone) and the process exits
/// with status 3.
pub fn watchdog(lab: &str, limit: std::time::Duration) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let lab = lab.to_owned();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("netcase lab: {lab} overran its {} s limit; cleaning up and exiting", limit.as_secs());
            cleanup_all();
            std::process::exit(3);
        }
    });
    tx
}

/// Takes an exclusive lock on `/run/netcase-lab/NAME.lock` (waiting at most `wait`), so that
/// runs that depend on one host-wide value (in this process or another) do not overlap. The
/// lock lasts as long as the returned file.
pub fn host_lock(name: &str, wait: std::time::Duration) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(STATE_DIR)?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(format!("{STATE_DIR}/{name}.lock"))?;
    let end = std::time::Instant::now() + wait;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(f);
        }
        if std::time::Instant::now() > end {
            anyhow::bail!("another lab holds {STATE_DIR}/{name}.lock");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_from_the_end() {
        assert_eq!(parse_name("ncl-dns-conntrack-race-5s-1234-0-c"), Some(("dns-conntrack-race-5s", 1234)));
        assert_eq!(parse_name("ncl-zero-window-77-3-s"), Some(("zero-window", 77)));
        assert_eq!(parse_name("other-ns"), None);
        assert_eq!(parse_name("ncl-x"), None);
    }
}
