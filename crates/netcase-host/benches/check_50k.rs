//! Benchmark: `check` on a namespace holding 50,000 TCP sockets, beside `ss -tanpoei`.
//!
//! A generator (this binary re-executed with `NCH_BENCH_GEN=k`, four processes, inside its own
//! namespace `nch-bench-<pid>`) opens 25,000 loopback connections (50,000 sockets) and holds
//! them.
//! Then, five runs each, median reported:
//! - netcase-host collect + host rules (interval 0: one sample, no wait),
//! - `ss -tanpoei` in the namespace (the same dump with owners, timers, tcp_info),
//! - the netcase binary (`check --netns NAME --interval 0 --json`) when `NETCASE_BIN` names it.
//!
//! Run as root: `cargo bench -p netcase-host --bench check_50k`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONNS: usize = 25_000;
/// Generators: each holds CONNS / GENERATORS connections (both ends), so 12,500 descriptors,
/// below common hard RLIMIT_NOFILE limits (20,000 here).
const GENERATORS: usize = 4;
const RUNS: usize = 5;

fn generator(k: u16) {
    let per = CONNS / GENERATORS;
    // Soft descriptor limit up to the hard one.
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    let addr = format!("127.0.0.1:{}", 9000 + k);
    let l = TcpListener::bind(&addr).expect("bind");
    let acceptor = std::thread::spawn(move || {
        let mut v = Vec::with_capacity(per);
        while v.len() < per {
            match l.accept() {
                Ok((s, _)) => v.push(s),
                Err(_) => break,
            }
        }
        (l, v)
    });
    let mut clients = Vec::with_capacity(per);
    for _ in 0..per {
        clients.push(TcpStream::connect(&addr).expect("connect"));
    }
    let (_l, servers) = acceptor.join().expect("acceptor");
    println!("NCH-READY {} {}", clients.len(), servers.len());
    std::io::stdout().flush().ok();
    std::thread::sleep(Duration::from_secs(300)); // bounded; the bench kills us by pid
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(mut f: impl FnMut()) -> Duration {
    let mut v = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        f();
        v.push(t.elapsed());
    }
    median(v)
}

struct Cleanup {
    ns: String,
    children: Vec<std::process::Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

fn main() {
    if let Ok(k) = std::env::var("NCH_BENCH_GEN") {
        generator(k.parse().unwrap_or(0));
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !netcase_host::privileged() {
        eprintln!("skipping: the 50k-socket benchmark needs root (network namespaces)");
        return;
    }
    let ns = format!("nch-bench-{}", std::process::id());
    let mut guard = Cleanup { ns: ns.clone(), children: Vec::new() };
    let ok = |args: &[&str]| Command::new(args[0]).args(&args[1..]).status().is_ok_and(|s| s.success());
    assert!(ok(&["ip", "netns", "add", &ns]));
    assert!(ok(&["ip", "-n", &ns, "link", "set", "lo", "up"]));
    assert!(ok(&["ip", "netns", "exec", &ns, "sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 65000"]));
    let t = Instant::now();
    for k in 0..GENERATORS {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns])
            .arg(std::env::current_exe().expect("exe"))
            .env("NCH_BENCH_GEN", k.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn generator");
        let out = child.stdout.take().expect("stdout");
        guard.children.push(child);
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).expect("generator output");
        assert!(line.starts_with("NCH-READY"), "generator {k} failed: {line:?}");
    }
    println!("generators: {CONNS} connections ({} sockets) in {:.1} s", 2 * CONNS, t.elapsed().as_secs_f64());

    let opts =
        netcase_host::Options { target: netcase_host::Target::Netns(ns.clone()), root: None, interval: Duration::ZERO };
    let mut sockets = 0;
    let mut findings = Vec::new();
    let lib = time(|| {
        let ev = netcase_host::collect(&opts).expect("collect");
        findings = netcase_rules::host::check_all(&ev).iter().map(|f| f.case.as_str()).collect();
        sockets = ev.iter().map(|e| e.sockets.len()).sum();
    });
    println!(
        "netcase-host collect + rules: {:>8.1} ms  ({sockets} sockets, findings {findings:?})",
        lib.as_secs_f64() * 1e3
    );
    // Where the time goes.
    let nsref = netcase_host::NetnsRef::named(&ns).expect("netns");
    let dump = time(|| {
        let _ = netcase_host::netns::run_in(&nsref, netcase_host::sockdiag::dump);
    });
    let owners = time(|| {
        let _ = netcase_host::procs::OwnerIndex::scan();
    });
    let save = time(|| {
        let _ = netcase_host::netns::run_in(&nsref, || {
            netcase_host::run_tool("iptables-save", &[], Duration::from_secs(10))
        });
    });
    println!(
        "  of which: sock_diag dump {:.1} ms, /proc fd scan {:.1} ms, iptables-save {:.1} ms",
        dump.as_secs_f64() * 1e3,
        owners.as_secs_f64() * 1e3,
        save.as_secs_f64() * 1e3
    );

    let ss = time(|| {
        let o = Command::new("ip").args(["netns", "exec", &ns, "ss", "-tanpoei"]).output().expect("ss");
        assert!(o.status.success());
    });
    println!("ss -tanpoei:                  {:>8.1} ms", ss.as_secs_f64() * 1e3);
    if let Ok(bin) = std::env::var("NETCASE_BIN") {
        let b = time(|| {
            let _ = Command::new(&bin)
                .args(["check", "--netns", &ns, "--interval", "0", "--json"])
                .stdout(Stdio::null())
                .status();
        });
        println!("netcase check --json:         {:>8.1} ms", b.as_secs_f64() * 1e3);
    }
    println!("ratio collect+rules / ss:     {:>8.2}", lib.as_secs_f64() / ss.as_secs_f64());
}
