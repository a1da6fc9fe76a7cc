//! Network namespaces: creating them with `ip`, entering them from a thread with `setns`,
//! sysctls and counters read from inside them.
//!
//! Everything here acts on a named namespace under `/var/run/netns`; nothing acts on the
//! namespace the process started in.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

/// Runs `ip ARGS…` and fails with its stderr when it fails.
pub fn ip(args: &[&str]) -> Result<()> {
    run("ip", args)
}

/// Runs a program with arguments, failing with its stderr when it fails.
pub fn run(prog: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {prog} (is it installed?)"))?;
    if !out.status.success() {
        bail!("{prog} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Runs `PROG ARGS…` inside namespace `ns` (via `ip netns exec`) and returns its stdout.
pub fn exec(ns: &str, prog: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, prog])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {prog} in {ns}"))?;
    if !out.status.success() {
        bail!("{prog} {} in {ns} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Names of the namespaces under `/var/run/netns`.
pub fn list() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/var/run/netns")
        .map(|d| d.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Moves the calling thread into namespace `ns`. Only this thread changes namespace.
pub fn enter(ns: &str) -> Result<()> {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}")).with_context(|| format!("netns {ns}"))?;
    // SAFETY: setns on a valid descriptor we own; it changes only this thread's namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("setns into {ns}"));
    }
    Ok(())
}

/// Runs `f` on a new thread inside namespace `ns` and returns its result. Sockets created in
/// `f` stay in `ns` wherever they are used afterwards.
pub fn within<T: Send>(ns: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(ns)?;
            f()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("a thread in {ns} panicked"))?
    })
}

/// Spawns a thread inside namespace `ns` running `f`.
pub fn spawn<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> std::thread::JoinHandle<Result<T>> {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        enter(&ns)?;
        f()
    })
}

/// Joins a thread spawned by [`spawn`], turning a panic into an error.
pub fn join<T>(h: std::thread::JoinHandle<Result<T>>) -> Result<T> {
    h.join().map_err(|_| anyhow::anyhow!("a lab thread panicked"))?
}

/// Sets a sysctl inside `ns` (`key` dotted, e.g. `net.ipv4.tcp_syncookies`).
pub fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    within(ns, || std::fs::write(&path, value).with_context(|| format!("set {key}={value} in {ns}")))
}

/// Reads a sysctl inside `ns`.
pub fn sysctl_get(ns: &str, key: &str) -> Result<String> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    within(ns, || Ok(std::fs::read_to_string(&path).with_context(|| format!("read {key} in {ns}"))?.trim().to_owned()))
}

/// The kernel counters of `ns` (`/proc/net/netstat` and `/proc/net/snmp`), keyed like nstat
/// without the prefix join: `TcpExt.ListenOverflows`, `Udp.RcvbufErrors`, `Tcp.RetransSegs`.
pub fn counters(ns: &str) -> Result<BTreeMap<String, u64>> {
    within(ns, || {
        let mut out = BTreeMap::new();
        for file in ["/proc/thread-self/net/netstat", "/proc/thread-self/net/snmp"] {
            let text = std::fs::read_to_string(file).with_context(|| format!("read {file}"))?;
            parse_counters(&text, &mut out);
        }
        Ok(out)
    })
}

/// The conntrack statistics of `ns` (`/proc/net/stat/nf_conntrack`, what `conntrack -S`
/// shows), summed over CPUs: `insert_failed`, `drop`, `early_drop`, ... Fails when conntrack
/// is not active in the namespace.
pub fn conntrack_stats(ns: &str) -> Result<BTreeMap<String, u64>> {
    within(ns, || {
        let text = std::fs::read_to_string("/proc/thread-self/net/stat/nf_conntrack")
            .context("read /proc/net/stat/nf_conntrack (is conntrack active in the namespace?)")?;
        Ok(parse_conntrack_stat(&text))
    })
}

/// Parses `/proc/net/stat/nf_conntrack`: a header of column names, then one line of hex
/// values per CPU; returns each column summed over CPUs (`entries` is the table size, the same
/// on every line, and is kept from the first line).
pub fn parse_conntrack_stat(text: &str) -> BTreeMap<String, u64> {
    let mut lines = text.lines();
    let Some(head) = lines.next() else { return BTreeMap::new() };
    let names: Vec<&str> = head.split_whitespace().collect();
    let mut out = BTreeMap::new();
    for (i, l) in lines.enumerate() {
        for (name, v) in names.iter().zip(l.split_whitespace()) {
            let Ok(n) = u64::from_str_radix(v, 16) else { continue };
            let e = out.entry((*name).to_owned()).or_insert(0u64);
            if *name == "entries" {
                if i == 0 {
                    *e = n;
                }
            } else {
                *e += n;
            }
        }
    }
    out
}

/// Parses the header/value line pairs of `/proc/net/netstat` or `/proc/net/snmp`.
pub fn parse_counters(text: &str, out: &mut BTreeMap<String, u64>) {
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let [head, vals] = pair else { continue };
        let mut h = head.split_whitespace();
        let mut v = vals.split_whitespace();
        let (Some(hp), Some(_)) = (h.next(), v.next()) else { continue };
        let prefix = hp.trim_end_matches(':');
        for (name, val) in h.zip(v) {
            if let Ok(n) = val.parse::<u64>() {
                out.insert(format!("{prefix}.{name}"), n);
            }
        }
    }
}

/// TCP socket states as the kernel numbers them (`/proc/net/tcp`, sock_diag): the host
/// doctor's type.
pub use netcase_host::TcpState;

/// One line of `/proc/net/tcp`.
#[derive(Debug, Clone)]
pub struct TcpSock {
    /// Local address.
    pub local: SocketAddrV4,
    /// Remote address.
    pub remote: SocketAddrV4,
    /// State.
    pub state: TcpState,
    /// Send queue (for listeners: the backlog).
    pub tx_queue: u32,
    /// Receive queue (for listeners: the accept queue length).
    pub rx_queue: u32,
    /// Socket inode (0 for sockets no file refers to).
    pub inode: u64,
}

/// The IPv4 TCP sockets of `ns`.
pub fn tcp_sockets(ns: &str) -> Result<Vec<TcpSock>> {
    within(ns, || {
        let text = std::fs::read_to_string("/proc/thread-self/net/tcp").context("read /proc/net/tcp")?;
        Ok(parse_proc_tcp(&text))
    })
}

fn parse_addr(s: &str) -> Option<SocketAddrV4> {
    let (a, p) = s.split_once(':')?;
    let a = u32::from_str_radix(a, 16).ok()?;
    let p = u16::from_str_radix(p, 16).ok()?;
    Some(SocketAddrV4::new(Ipv4Addr::from(u32::from_be(a)), p))
}

/// Parses the body of `/proc/net/tcp`; lines that do not parse are skipped.
pub fn parse_proc_tcp(text: &str) -> Vec<TcpSock> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local = parse_addr(f.get(1)?)?;
            let remote = parse_addr(f.get(2)?)?;
            let state = TcpState::from_u8(u8::from_str_radix(f.get(3)?, 16).ok()?);
            let (tx, rx) = f.get(4)?.split_once(':')?;
            let inode = f.get(9)?.parse().ok()?;
            Some(TcpSock {
                local,
                remote,
                state,
                tx_queue: u32::from_str_radix(tx, 16).ok()?,
                rx_queue: u32::from_str_radix(rx, 16).ok()?,
                inode,
            })
        })
        .collect()
}

/// Counts sockets of `ns` in `state` whose local port is `port` (any port when 0).
pub fn count_state(ns: &str, state: TcpState, port: u16) -> Result<usize> {
    Ok(tcp_sockets(ns)?.iter().filter(|s| s.state == state && (port == 0 || s.local.port() == port)).count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_conntrack_stats_over_cpus() {
        let t = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop\n\
                 00000010  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000003 00000003 00000000\n\
                 00000010  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 0000000a 0000000b 00000001\n";
        let m = parse_conntrack_stat(t);
        assert_eq!(m.get("insert_failed"), Some(&13));
        assert_eq!(m.get("drop"), Some(&14));
        assert_eq!(m.get("early_drop"), Some(&1));
        assert_eq!(m.get("entries"), Some(&16));
    }

    #[test]
    fn parses_netstat_pairs() {
        let t = "TcpExt: SyncookiesSent ListenOverflows\nTcpExt: 0 7\nIpExt: InNoRoutes\nIpExt: 3\n";
        let mut m = BTreeMap::new();
        parse_counters(t, &mut m);
        assert_eq!(m.get("TcpExt.ListenOverflows"), Some(&7));
        assert_eq!(m.get("IpExt.InNoRoutes"), Some(&3));
    }

    #[test]
    fn parses_proc_tcp_line() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0200CB0A:1F90 00000000:0000 0A 00000008:00000009 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n";
        let v = parse_proc_tcp(t);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].local, "10.203.0.2:8080".parse().unwrap());
        assert_eq!(v[0].state, TcpState::Listen);
        assert_eq!((v[0].tx_queue, v[0].rx_queue), (8, 9));
    }
}
