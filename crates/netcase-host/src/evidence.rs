//! Collection: one [`HostEvidence`] per network namespace, from two samples `interval` apart.

use crate::error::Result;
use crate::netfilter::{parse_iptables_save, Ruleset};
use crate::netns::{self, NetnsRef};
use crate::procnet::{self, ConntrackCpu, CounterMap, DevStats, SoftnetCpu};
use crate::procs::OwnerIndex;
use crate::resolver::{self, Resolver};
use crate::rtnl::{self, IfAddr, Neighbour};
use crate::sockdiag::{self, Socket};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The sysctls the cases depend on (dotted names). Absent ones (e.g. `tcp_tw_recycle` after
/// 4.12, conntrack without the module) are simply missing from [`HostEvidence::sysctls`].
pub const SYSCTLS: &[&str] = &[
    "net.core.somaxconn",
    "net.core.netdev_max_backlog",
    "net.core.rmem_default",
    "net.core.rmem_max",
    "net.core.wmem_default",
    "net.core.wmem_max",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_abort_on_overflow",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_tw_recycle",
    "net.ipv4.tcp_max_tw_buckets",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.tcp_window_scaling",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.udp_mem",
    "net.ipv4.udp_rmem_min",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_reordering",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_count",
];

/// Which namespaces to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The caller's own network namespace.
    Current,
    /// A `/var/run/netns` name.
    Netns(String),
    /// The namespace (and root) of a process.
    Pid(u32),
    /// Every distinct namespace.
    AllNetns,
}

/// What to collect.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which namespaces.
    pub target: Target,
    /// A root filesystem for the resolver files (a container's), instead of `/`.
    pub root: Option<PathBuf>,
    /// Time between the two samples; zero reads absolute values only.
    pub interval: Duration,
}

/// Evidence that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    /// What (`netfilter`, `socket owners`, ...).
    pub what: String,
    /// Why, and what would help.
    pub why: String,
}

/// Conntrack state of a namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Conntrack {
    /// Entries in this namespace.
    pub count: Option<u64>,
    /// The table limit (global).
    pub max: Option<u64>,
    /// Per-CPU statistics (`insert_failed`, `drop`, `early_drop`, ...).
    pub per_cpu: Vec<ConntrackCpu>,
    /// Sums over CPUs.
    pub totals: CounterMap,
    /// Growth per second of the sums, when two samples were taken.
    pub per_s: BTreeMap<String, f64>,
    /// Where the statistics came from (`/proc/net/stat/nf_conntrack` or `conntrack -S`).
    pub source: String,
}

/// The interface addresses of another network namespace. When one namespace is checked, the
/// others' addresses are read too (addresses only) so that an address it holds or talks to
/// can be found held elsewhere as well (ip-conflict).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetnsAddrs {
    /// Its label: the `/var/run/netns` name, `ino:N` (with a process name when known), or
    /// `host` for the caller's own namespace.
    pub netns: String,
    /// The namespace inode.
    pub inode: u64,
    /// Its interface addresses.
    pub addresses: Vec<IfAddr>,
}

/// Everything read about one network namespace.
#[derive(Debug, Clone, Serialize)]
pub struct HostEvidence {
    /// The namespace (label `None` = the caller's own).
    pub netns: NetnsRef,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Seconds between the samples (0 = one sample, absolute values only).
    pub interval_s: f64,
    /// Sockets at the last sample, with owners.
    pub sockets: Vec<Socket>,
    /// Sockets at the first sample (empty without an interval).
    #[serde(skip)]
    pub earlier_sockets: Vec<Socket>,
    /// Counters from snmp, netstat and snmp6 at the last sample.
    pub counters: CounterMap,
    /// Their growth per second.
    pub counter_rates: BTreeMap<String, f64>,
    /// softnet_stat per CPU (last sample).
    pub softnet: Vec<SoftnetCpu>,
    /// softnet growth per CPU per second (`processed`, `dropped`, `time_squeeze`), by CPU.
    pub softnet_rates: Vec<(u32, f64, f64, f64)>,
    /// Interfaces (`/proc/net/dev`, last sample).
    pub devices: Vec<DevStats>,
    /// Per-interface drop rates: name → (rx_drop/s, tx_drop/s).
    pub device_drop_rates: BTreeMap<String, (f64, f64)>,
    /// Conntrack, when the module is loaded.
    pub conntrack: Option<Conntrack>,
    /// Sysctls by dotted name.
    pub sysctls: BTreeMap<String, String>,
    /// Netfilter rules (iptables-save / ip6tables-save, plus native nftables rules from
    /// `nft -j list ruleset`), when readable.
    pub netfilter: Option<Ruleset>,
    /// nftables tables (`"ip nat"`, `"inet filter"`) that `nft -j list ruleset` lists, including
    /// iptables-nft's own; native rules are part of [`HostEvidence::netfilter`].
    pub nft_tables: Vec<String>,
    /// Interface addresses.
    pub addresses: Vec<IfAddr>,
    /// Neighbour (ARP / NDP) entries.
    pub neighbours: Vec<Neighbour>,
    /// Addresses of every other network namespace, read when a single namespace is checked
    /// (empty with `--all-netns`, where every namespace is checked in full).
    pub other_netns: Vec<NetnsAddrs>,
    /// Resolver configuration that processes of this namespace see.
    pub resolver: Resolver,
    /// Evidence that could not be read.
    pub unavailable: Vec<Unavailable>,
    /// sock_diag messages that did not decode.
    pub decode_errors: u64,
}

impl HostEvidence {
    /// A counter's value and rate (`TcpExt.ListenOverflows`).
    pub fn counter(&self, name: &str) -> Option<(u64, Option<f64>)> {
        self.counters.get(name).map(|v| (*v, self.counter_rates.get(name).copied()))
    }

    /// A sysctl parsed as a number (first field for multi-value ones).
    pub fn sysctl_u64(&self, name: &str) -> Option<u64> {
        self.sysctls.get(name)?.split_whitespace().next()?.parse().ok()
    }

    /// A sysctl's fields as numbers (`ip_local_port_range` → [32768, 60999]).
    pub fn sysctl_list(&self, name: &str) -> Vec<u64> {
        self.sysctls
            .get(name)
            .map(|v| v.split_whitespace().filter_map(|x| x.parse().ok()).collect())
            .unwrap_or_default()
    }
}

/// One sample of the fast-moving evidence.
#[derive(Debug, Default)]
struct Sample {
    at: Option<Instant>,
    counters: CounterMap,
    softnet: Vec<SoftnetCpu>,
    devices: Vec<DevStats>,
    ct: Vec<ConntrackCpu>,
    ct_source: String,
    sockets: Vec<Socket>,
    bad: u64,
    errors: Vec<Unavailable>,
}

fn un(what: &str, why: impl Into<String>) -> Unavailable {
    Unavailable { what: what.to_owned(), why: why.into() }
}

fn proc_net(name: &str) -> PathBuf {
    Path::new("/proc/thread-self/net").join(name)
}

/// Reads one sample in the calling thread's namespace.
fn sample(with_ct_tool: bool) -> Sample {
    let mut s = Sample::default();
    match sockdiag::dump() {
        Ok((v, bad)) => {
            s.sockets = v;
            s.bad = bad;
        }
        Err(e) => s.errors.push(un("sockets", e.to_string())),
    }
    s.at = Some(Instant::now());
    for f in ["snmp", "netstat"] {
        match std::fs::read_to_string(proc_net(f)) {
            Ok(t) => {
                procnet::parse_snmp_pairs(&t, &mut s.counters);
            }
            Err(e) => s.errors.push(un(&format!("/proc/net/{f}"), e.to_string())),
        }
    }
    if let Ok(t) = std::fs::read_to_string(proc_net("snmp6")) {
        procnet::parse_snmp6(&t, &mut s.counters);
    }
    if let Ok(t) = std::fs::read_to_string(proc_net("softnet_stat")) {
        s.softnet = procnet::parse_softnet(&t);
    }
    // Interface counters from /proc/thread-self/net/dev, which follows this thread's setns.
    // Not /sys/class/net/*/statistics: sysfs shows the network namespace it was mounted in
    // (the mount namespace's), so a setns'd thread would read the caller's interfaces.
    if let Ok(t) = std::fs::read_to_string(proc_net("dev")) {
        s.devices = procnet::parse_dev(&t);
    }
    if let Ok(t) = std::fs::read_to_string(proc_net("stat/nf_conntrack")) {
        s.ct = procnet::parse_nf_conntrack_stat(&t);
        s.ct_source = "/proc/net/stat/nf_conntrack".into();
    } else if with_ct_tool {
        if let Ok(Some(t)) = run_tool("conntrack", &["-S"], Duration::from_secs(5)) {
            s.ct = procnet::parse_conntrack_s(&t);
            s.ct_source = "conntrack -S".into();
        }
    }
    s
}

/// Finds an executable on PATH (or the usual sbin directories).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file());
    found
}

/// Runs a read-only tool with a time limit. `Ok(None)`: the tool is not installed.
/// The child is killed by its pid when it overruns.
pub fn run_tool(tool: &str, args: &[&str], limit: Duration) -> std::result::Result<Option<String>, String> {
    let Some(path) = which(tool) else { return Ok(None) };
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{tool}: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{tool} did not finish within {} s", limit.as_secs()));
            }
            Err(e) => return Err(format!("{tool}: {e}")),
        }
    }
    let out = child.wait_with_output().map_err(|e| format!("{tool}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{tool} {}: {}", out.status, err.lines().next().unwrap_or("").trim()));
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The slow-moving evidence, read once after the last sample.
#[derive(Debug, Default)]
struct Static {
    sysctls: BTreeMap<String, String>,
    netfilter: Option<Ruleset>,
    nft_tables: Vec<String>,
    addresses: Vec<IfAddr>,
    neighbours: Vec<Neighbour>,
    ct_count: Option<u64>,
    ct_max: Option<u64>,
    errors: Vec<Unavailable>,
}

fn read_static(privileged: bool) -> Static {
    let mut st = Static::default();
    for name in SYSCTLS {
        let p = Path::new("/proc/sys").join(name.replace('.', "/"));
        if let Ok(v) = std::fs::read_to_string(&p) {
            st.sysctls.insert((*name).to_owned(), v.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    st.ct_count = st.sysctls.get("net.netfilter.nf_conntrack_count").and_then(|v| v.parse().ok());
    st.ct_max = st.sysctls.get("net.netfilter.nf_conntrack_max").and_then(|v| v.parse().ok());
    match rtnl::dump_addrs() {
        Ok(a) => st.addresses = a,
        Err(e) => st.errors.push(un("addresses", e.to_string())),
    }
    match rtnl::dump_neighbours() {
        Ok(n) => st.neighbours = n,
        Err(e) => st.errors.push(un("neighbours", e.to_string())),
    }
    let mut rs = Ruleset::default();
    let mut any = false;
    for (tool, fam) in [("iptables-save", "ipv4"), ("ip6tables-save", "ipv6")] {
        match run_tool(tool, &[], Duration::from_secs(10)) {
            Ok(Some(t)) => {
                parse_iptables_save(&t, fam, &mut rs);
                any = true;
            }
            Ok(None) => st.errors.push(un("netfilter", format!("{tool} is not installed; {fam} rules not read"))),
            Err(e) if !privileged => {
                st.errors.push(un("netfilter", format!("{tool} needs root (CAP_NET_ADMIN): {e}")));
            }
            Err(e) => st.errors.push(un("netfilter", e)),
        }
    }
    // Native nftables rules join the same walk; tables iptables-save showed are skipped.
    let ipt_tables: BTreeSet<(String, String)> =
        rs.chains.iter().map(|c| (c.family.to_owned(), c.table.clone())).collect();
    match run_tool("nft", &["-j", "list", "ruleset"], Duration::from_secs(10)) {
        Ok(Some(t)) => match crate::nft::parse_nft_json(&t, &ipt_tables, &mut rs) {
            Ok(tables) => {
                st.nft_tables = tables;
                any = true;
            }
            Err(e) => st.errors.push(un("nftables", e)),
        },
        Ok(None) => {}
        Err(e) if !privileged => st.errors.push(un("nftables", format!("nft needs root (CAP_NET_ADMIN): {e}"))),
        Err(e) => st.errors.push(un("nftables", e)),
    }
    if any {
        st.netfilter = Some(rs);
    }
    st
}

fn per_s(a: u64, b: u64, dt: f64) -> f64 {
    b.saturating_sub(a) as f64 / dt
}

fn sum_ct(cpus: &[ConntrackCpu]) -> CounterMap {
    let mut m = CounterMap::new();
    for c in cpus {
        for (k, v) in c {
            *m.entry(k.clone()).or_default() += v;
        }
    }
    m
}

/// Whether the process runs with root privileges (effective uid 0).
pub fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Collects evidence for every namespace the options select.
pub fn collect(opts: &Options) -> Result<Vec<HostEvidence>> {
    let privileged = privileged();
    let mut extra = Vec::new();
    let targets = match &opts.target {
        Target::Current => vec![NetnsRef::current()?],
        Target::Netns(n) => vec![NetnsRef::named(n)?],
        Target::Pid(p) => vec![NetnsRef::of_pid(*p)?],
        Target::AllNetns => {
            let (v, unreadable) = netns::list_all()?;
            if unreadable > 0 {
                let why = if privileged { "exited during the scan or hidden" } else { "needs root" };
                extra.push(un("namespaces", format!("{unreadable} processes' namespaces unreadable ({why})")));
            }
            v
        }
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default();
    let ct_tool = privileged && which("conntrack").is_some();

    // First samples, then one wait for all namespaces, then the last samples.
    let mut first: Vec<Option<Sample>> = Vec::new();
    if !opts.interval.is_zero() {
        for ns in &targets {
            first.push(netns::run_in(ns, || sample(ct_tool)).ok());
        }
        std::thread::sleep(opts.interval);
    }
    let mut out = Vec::new();
    let mut raw = Vec::new();
    for (i, ns) in targets.iter().enumerate() {
        let r = netns::run_in(ns, || (sample(ct_tool), read_static(privileged)));
        match r {
            Ok((last, st)) => raw.push((ns.clone(), first.get_mut(i).and_then(Option::take), last, st)),
            Err(e) if opts.target == Target::AllNetns => extra.push(un("netns", e.to_string())),
            Err(e) => return Err(e),
        }
    }
    let others = if opts.target == Target::AllNetns {
        Vec::new()
    } else {
        let skip: Vec<u64> = targets.iter().map(|t| t.inode).collect();
        let (v, failed) = other_addresses(&skip);
        if failed > 0 {
            let why = if privileged { "they vanished during the scan" } else { "entering them needs root" };
            extra.push(un(
                "other namespaces' addresses",
                format!("{failed} namespaces not read ({why}); ip-conflict compares with the rest"),
            ));
        }
        v
    };
    let owners = OwnerIndex::scan();
    for (ns, first, mut last, st) in raw {
        let mut unavailable = extra.clone();
        unavailable.append(&mut last.errors);
        unavailable.extend(st.errors);
        if owners.unreadable > 0 && !privileged {
            unavailable.push(un(
                "socket owners",
                format!(
                    "descriptors of {} processes unreadable: owners of other users' sockets need root",
                    owners.unreadable
                ),
            ));
        }
        let fill = |v: &mut Vec<Socket>| {
            for s in v.iter_mut() {
                if s.inode != 0 {
                    if let Some(o) = owners.by_inode.get(&s.inode) {
                        s.owners.clone_from(o);
                    }
                }
            }
        };
        fill(&mut last.sockets);
        let mut ev = HostEvidence {
            netns: ns.clone(),
            kernel: kernel.clone(),
            interval_s: 0.0,
            sockets: last.sockets,
            earlier_sockets: Vec::new(),
            counters: last.counters,
            counter_rates: BTreeMap::new(),
            softnet: last.softnet,
            softnet_rates: Vec::new(),
            devices: last.devices,
            device_drop_rates: BTreeMap::new(),
            conntrack: None,
            sysctls: st.sysctls,
            netfilter: st.netfilter,
            nft_tables: st.nft_tables,
            addresses: st.addresses,
            neighbours: st.neighbours,
            other_netns: others.clone(),
            resolver: resolver_for(opts, &ns),
            unavailable,
            decode_errors: last.bad,
        };
        if st.ct_count.is_some() || !last.ct.is_empty() {
            ev.conntrack = Some(Conntrack {
                count: st.ct_count,
                max: st.ct_max,
                totals: sum_ct(&last.ct),
                per_cpu: last.ct,
                per_s: BTreeMap::new(),
                source: last.ct_source,
            });
        } else {
            ev.unavailable.push(un("conntrack", "nf_conntrack is not loaded (no table in this namespace)"));
        }
        if let Some(mut f) = first {
            let dt = match (f.at, last.at) {
                (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
                _ => opts.interval.as_secs_f64(),
            }
            .max(1e-3);
            ev.interval_s = dt;
            for (k, v) in &ev.counters {
                if let Some(a) = f.counters.get(k) {
                    ev.counter_rates.insert(k.clone(), per_s(*a, *v, dt));
                }
            }
            for c in &ev.softnet {
                if let Some(a) = f.softnet.iter().find(|x| x.cpu == c.cpu) {
                    ev.softnet_rates.push((
                        c.cpu,
                        per_s(a.processed, c.processed, dt),
                        per_s(a.dropped, c.dropped, dt),
                        per_s(a.time_squeeze, c.time_squeeze, dt),
                    ));
                }
            }
            for d in &ev.devices {
                if let Some(a) = f.devices.iter().find(|x| x.name == d.name) {
                    ev.device_drop_rates
                        .insert(d.name.clone(), (per_s(a.rx_drop, d.rx_drop, dt), per_s(a.tx_drop, d.tx_drop, dt)));
                }
            }
            if let Some(ct) = ev.conntrack.as_mut() {
                let before = sum_ct(&f.ct);
                for (k, v) in &ct.totals {
                    if let Some(a) = before.get(k) {
                        ct.per_s.insert(k.clone(), per_s(*a, *v, dt));
                    }
                }
            }
            fill(&mut f.sockets);
            ev.earlier_sockets = f.sockets;
        }
        out.push(ev);
    }
    Ok(out)
}

/// Reads the interface addresses (only those) of every network namespace except `skip`:
/// `/var/run/netns` and every process's. Returns them and how many could not be read.
fn other_addresses(skip: &[u64]) -> (Vec<NetnsAddrs>, usize) {
    let Ok((all, _)) = netns::list_all() else { return (Vec::new(), 0) };
    let mut out = Vec::new();
    let mut failed = 0;
    for ns in all.iter().filter(|n| !skip.contains(&n.inode)) {
        match netns::run_in(ns, rtnl::dump_addrs) {
            Ok(Ok(addresses)) => {
                let netns = match (&ns.name, ns.named.is_none(), ns.pids.first()) {
                    (None, _, _) => "host".to_owned(),
                    (Some(n), true, Some((_, comm))) => format!("{n} ({comm})"),
                    (Some(n), _, _) => n.clone(),
                };
                out.push(NetnsAddrs { netns, inode: ns.inode, addresses });
            }
            _ => failed += 1,
        }
    }
    (out, failed)
}

fn resolver_for(opts: &Options, ns: &NetnsRef) -> Resolver {
    match (&opts.root, &opts.target) {
        (Some(root), _) => resolver::read(root, None, None),
        (None, Target::Pid(p)) => resolver::read(&PathBuf::from(format!("/proc/{p}/root")), None, Some(*p)),
        (None, _) => match ns.pids.first() {
            // A process's own view (its container root) when the namespace has no name.
            Some((p, _)) if ns.named.is_none() && ns.name.is_some() => {
                resolver::read(&PathBuf::from(format!("/proc/{p}/root")), None, Some(*p))
            }
            _ => resolver::read(Path::new("/"), ns.named.as_deref(), None),
        },
    }
}
