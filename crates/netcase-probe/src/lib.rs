//! netcase-probe: active latency measurements, the way the notes teach them.
//!
//! - [`tcp`]: connect latency, SYN → SYN-ACK (raw SYNs like `hping3 -S` as root, `connect()`
//!   timing otherwise), percentiles, retried SYNs, resets.
//! - [`http`]: the phases of each request as `curl -w` names them (DNS, connect, TLS, time to
//!   first byte, transfer, total), keep-alive or a new connection each time, concurrency with
//!   a latency histogram like wrk's; TLS through rustls.
//! - [`dns`]: A and AAAA from one socket at once as glibc sends them, or as
//!   `single-request` / `single-request-reopen` do, per server; the 5 s stall; the resolver
//!   order of this host for the name.
//! - [`path`]: TCP traceroute: TTL-limited SYNs, per-hop latency, the hop where delay or
//!   loss starts.
//!
//! Each module returns its results as data and turns them into [`netcase_model::Finding`]s;
//! nothing here prints. Probes are polite by default: a bounded count, starts paced by one
//! [`Pacer`] (10 per second unless asked otherwise), every wait bounded.

pub mod dns;
pub mod error;
pub mod http;
pub mod path;
pub mod raw;
pub mod stats;
pub mod tcp;

pub use error::{Error, Result};

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The default gap between probe starts: 10 probes per second.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// Whether the process runs as root (raw sockets).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Spaces the starts of probes made by several threads: each [`Pacer::wait`] returns at
/// least `interval` after the previous one returned.
#[derive(Debug)]
pub struct Pacer {
    next: Mutex<Option<Instant>>,
    interval: Duration,
}

impl Pacer {
    /// A pacer with this gap between starts.
    pub fn new(interval: Duration) -> Pacer {
        Pacer { next: Mutex::new(None), interval }
    }

    /// Waits for the next start slot.
    pub fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
    }
}

/// Runs probe `seq` for each `seq` in `0..count` on up to `concurrency` threads, their starts
/// spaced by one [`Pacer`] of `interval`. Each thread has its own state, `init(thread)` (a
/// kept-alive connection, say); a thread stops early when `work` returns `None` (an error it
/// kept). The results come in the order the probes finished.
pub(crate) fn paced<S, T: Send>(
    count: u32,
    concurrency: u32,
    interval: Duration,
    init: impl Fn(u32) -> S + Sync,
    work: impl Fn(u32, &mut S) -> Option<T> + Sync,
) -> Vec<T> {
    use std::sync::atomic::{AtomicU32, Ordering};
    let next = AtomicU32::new(0);
    let pacer = Pacer::new(interval);
    let out = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..concurrency.min(count) {
            let (next, pacer, out, init, work) = (&next, &pacer, &out, &init, &work);
            s.spawn(move || {
                let mut state = init(w);
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= count {
                        break;
                    }
                    pacer.wait();
                    let Some(r) = work(seq, &mut state) else { break };
                    if let Ok(mut v) = out.lock() {
                        v.push(r);
                    }
                }
            });
        }
    });
    out.into_inner().unwrap_or_default()
}

/// Moves the calling thread into network namespace `name` (`/var/run/netns/NAME`); threads
/// it starts afterwards are in it too. For `--netns`.
pub fn enter_netns(name: &str) -> Result<()> {
    use std::os::fd::AsRawFd;
    let path = format!("/var/run/netns/{name}");
    let f = std::fs::File::open(&path).map_err(|e| Error::io(format!("open {path}"), e))?;
    // SAFETY: setns on a valid descriptor we own; it changes only this thread's namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(Error::io(format!("cannot enter netns {name}"), std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Resolves `HOST:PORT` (or `[V6]:PORT`; `HOST` alone takes `default_port` when given),
/// preferring an IPv4 address.
pub fn resolve_target(target: &str, default_port: Option<u16>) -> Result<std::net::SocketAddr> {
    use std::net::{SocketAddr, ToSocketAddrs};
    let bad = |reason: String| Error::Target { target: target.to_owned(), reason };
    if let Ok(a) = target.parse::<SocketAddr>() {
        return Ok(a);
    }
    let with_port = match (target.rsplit_once(':'), default_port) {
        (Some((_, p)), _) if p.parse::<u16>().is_ok() && !target.ends_with(']') => target.to_owned(),
        (_, Some(p)) if target.parse::<std::net::Ipv6Addr>().is_ok() => format!("[{target}]:{p}"),
        (_, Some(p)) => format!("{target}:{p}"),
        _ => return Err(bad("expected HOST:PORT".into())),
    };
    let addrs: Vec<SocketAddr> = with_port.to_socket_addrs().map_err(|e| bad(e.to_string()))?.collect();
    addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).copied().ok_or_else(|| bad("no address".into()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn targets_parse() {
        assert_eq!(resolve_target("127.0.0.1:80", None).unwrap(), "127.0.0.1:80".parse().unwrap());
        assert_eq!(resolve_target("[::1]:80", None).unwrap(), "[::1]:80".parse().unwrap());
        assert_eq!(resolve_target("127.0.0.1", Some(443)).unwrap(), "127.0.0.1:443".parse().unwrap());
        assert!(resolve_target("127.0.0.1", None).is_err());
    }

    use super::*;

    #[test]
    fn pacer_spaces_starts() {
        let p = Pacer::new(Duration::from_millis(20));
        let t = Instant::now();
        for _ in 0..4 {
            p.wait();
        }
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(60) && took < Duration::from_millis(500), "{took:?}");
    }
}
