//! Builds each failure inside network namespaces this test creates (`nch-<case>-<pid>`, private
//! addresses, loopback inside the namespace), runs the host check on that namespace and
//! asserts the case and its numbers. Needs root (namespaces, iptables); skips otherwise.

use netcase_host::{collect, netns, HostEvidence, NetnsRef, Options, Target};
use netcase_model::{CaseId, Evidence, Finding};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Harness: namespaces and child processes that clean up after themselves.

fn can_run() -> bool {
    if !netcase_host::privileged() {
        eprintln!("skipping: needs root to create network namespaces (CI runs these as root)");
        return false;
    }
    if netcase_host::which("ip").is_none() {
        eprintln!("skipping: iproute2 'ip' not installed");
        return false;
    }
    true
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("run command");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A network namespace deleted on drop.
struct Ns {
    name: String,
}

impl Ns {
    fn new(tag: &str) -> Ns {
        let name = format!("nch-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh(&["ip", "netns", "add", &name]);
        let ns = Ns { name };
        sh(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    fn r#ref(&self) -> NetnsRef {
        NetnsRef::named(&self.name).expect("netns exists")
    }

    /// Runs `f` on a thread inside the namespace; sockets it returns stay in the namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        netns::run_in(&self.r#ref(), f).expect("enter netns")
    }

    fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", self.name.as_str()];
        full.extend_from_slice(args);
        let out = Command::new("ip").args(&full[1..]).output().expect("ip netns exec");
        assert!(out.status.success(), "{full:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn evidence(&self, interval: f64, root: Option<PathBuf>) -> HostEvidence {
        let opts =
            Options { target: Target::Netns(self.name.clone()), root, interval: Duration::from_secs_f64(interval) };
        let mut v = collect(&opts).expect("collect");
        assert_eq!(v.len(), 1);
        v.remove(0)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// A helper process (this test binary re-executed in a namespace), killed by pid on drop.
struct Helper {
    child: Child,
}

impl Helper {
    fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ROLE: &str = "NCH_HELPER_ROLE";

/// Starts `role` in `ns` and waits (at most 20 s) for it to print `NCH-READY`.
fn helper(ns: &Ns, role: &str) -> Helper {
    let exe = std::env::current_exe().expect("test exe");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(exe)
        .args(["--exact", "helper_process", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn helper");
    let out = child.stdout.take().expect("stdout");
    let h = Helper { child };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains("NCH-READY") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20)).expect("helper did not get ready within 20 s");
    h
}

/// The entry point of helper processes; a no-op in a normal test run.
#[test]
fn helper_process() {
    let Ok(role) = std::env::var(ROLE) else { return };
    let mut keep: Vec<TcpStream> = Vec::new();
    match role.as_str() {
        // A server that never closes connections its clients closed: 12 CLOSE_WAIT.
        "closewait" => {
            let l = TcpListener::bind("127.0.0.1:7001").expect("bind");
            for _ in 0..12 {
                let c = TcpStream::connect("127.0.0.1:7001").expect("connect");
                let (s, _) = l.accept().expect("accept");
                drop(c);
                keep.push(s);
            }
        }
        other => panic!("unknown helper role {other}"),
    }
    println!("NCH-READY");
    std::io::stdout().flush().ok();
    // Bounded: the parent kills us; never outlive it by more than a minute.
    std::thread::sleep(Duration::from_secs(60));
    drop(keep);
}

/// A TCP listener with an explicit backlog (std always passes 128).
fn listen(addr: &str, backlog: i32) -> TcpListener {
    let a: SocketAddr = addr.parse().unwrap();
    let SocketAddr::V4(v4) = a else { panic!("v4 only") };
    // SAFETY: plain socket calls on a fresh descriptor we own.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
            sin_zero: [0; 8],
        };
        let rc = libc::bind(fd, std::ptr::addr_of!(sin).cast(), std::mem::size_of::<libc::sockaddr_in>() as u32);
        assert_eq!(rc, 0, "bind {addr}");
        assert_eq!(libc::listen(fd, backlog), 0);
        TcpListener::from_raw_fd(fd)
    }
}

fn find(fs: &[Finding], case: CaseId) -> Vec<&Finding> {
    fs.iter().filter(|f| f.case == case).collect()
}

fn show(fs: &[Finding]) -> String {
    fs.iter().map(|f| format!("{} {} {}", f.case, f.subject, f.summary)).collect::<Vec<_>>().join("\n")
}

// ---------------------------------------------------------------------------------------
// Cases.

#[test]
fn close_wait_leak_names_pid_and_count() {
    if !can_run() {
        return;
    }
    let ns = Ns::new("cwl");
    let h = helper(&ns, "closewait");
    let ev = ns.evidence(0.0, None);
    let fs = netcase_rules::host::check(&ev);
    let cw = find(&fs, CaseId::CloseWaitLeak);
    assert_eq!(cw.len(), 1, "{}", show(&fs));
    assert_eq!(cw[0].measure("pid"), Some(f64::from(h.id())));
    assert_eq!(cw[0].measure("count"), Some(12.0));
    assert_eq!(cw[0].measure("top_local_port"), Some(7001.0));
}

#[test]
fn close_wait_in_accept_queue_counts_unaccepted() {
    if !can_run() {
        return;
    }
    let ns = Ns::new("cwaq");
    let l = ns.run(|| {
        let l = listen("127.0.0.1:7002", 16);
        for _ in 0..5 {
            let c = TcpStream::connect("127.0.0.1:7002").expect("connect");
            drop(c);
        }
        l
    });
    std::thread::sleep(Duration::from_millis(100));
    let ev = ns.evidence(0.0, None);
    let fs = netcase_rules::host::check(&ev);
    let f = find(&fs, CaseId::CloseWaitInAcceptQueue);
    assert_eq!(f.len(), 1, "{}", show(&fs));
    assert_eq!(f[0].measure("count"), Some(5.0));
    assert_eq!(f[0].measure("accept_queue"), Some(5.0));
    assert_eq!(f[0].measure("backlog"), Some(16.0));
    assert!(find(&fs, CaseId::CloseWaitLeak).is_empty(), "unaccepted sockets are not a leak");
    drop(l);
}

#[test]
fn accept_queue_overflow_reports_backlog_and_drops() {
    if !can_run() {
        return;
    }
    let ns = Ns::new("aqo");
    let (l, clients) = ns.run(|| {
        let l = listen("127.0.0.1:7003", 4);
        let handles: Vec<_> = (0..12)
            .map(|_| {
                std::thread::spawn(|| {
                    TcpStream::connect_timeout(&"127.0.0.1:7003".parse().unwrap(), Duration::from_millis(300)).ok()
                })
            })
            .collect();
        let clients: Vec<TcpStream> = handles.into_iter().filter_map(|h| h.join().ok().flatten()).collect();
        (l, clients)
    });
    let ev = ns.evidence(0.3, None);
    let fs = netcase_rules::host::check(&ev);
    let f = find(&fs, CaseId::AcceptQueueOverflow);
    assert_eq!(f.len(), 1, "{}", show(&fs));
    assert_eq!(f[0].measure("backlog"), Some(4.0));
    // Full at backlog + 1; connects racing the kernel's fullness check can add one more, so
    // the figure is checked against the listener's Recv-Q as `ss` shows it.
    let ss = ns.exec(&["ss", "-Hltn", "sport", "= :7003"]);
    let recv_q: f64 = ss.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("ss Recv-Q");
    assert!((5.0..=6.0).contains(&recv_q), "ss: {ss}");
    assert_eq!(f[0].measure("accept_queue"), Some(recv_q), "the listener's own Recv-Q");
    let overflows = ev.counters.get("TcpExt.ListenOverflows").copied().unwrap_or(0);
    assert!(overflows > 0, "ListenOverflows = {overflows}");
    assert!(f[0].evidence.iter().any(|e| matches!(e, Evidence::Counter { name, value, .. } if name == "TcpExt.ListenOverflows" && *value == overflows)));
    drop((l, clients));
}

#[test]
fn udp_rcvbuf_drops_per_socket_match_the_counter() {
    if !can_run() {
        return;
    }
    let ns = Ns::new("udp");
    let (rx, sent) = ns.run(|| {
        let rx = UdpSocket::bind("127.0.0.1:7004").expect("bind");
        let small: libc::c_int = 4096;
        // SAFETY: setsockopt with a valid int option on our socket.
        unsafe {
            libc::setsockopt(rx.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, std::ptr::addr_of!(small).cast(), 4);
        }
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let buf = [0x55u8; 1000];
        let mut sent = 0;
        for _ in 0..300 {
            if tx.send_to(&buf, "127.0.0.1:7004").is_ok() {
                sent += 1;
            }
        }
        (rx, sent)
    });
    let ev = ns.evidence(0.0, None);
    let fs = netcase_rules::host::check(&ev);
    let f: Vec<_> = find(&fs, CaseId::UdpRcvbufDrops).into_iter().filter(|f| f.measure("drops").is_some()).collect();
    assert_eq!(f.len(), 1, "{}", show(&fs));
    let drops = f[0].measure("drops").unwrap();
    let counter = ev.counters.get("Udp.RcvbufErrors").copied().unwrap_or(0) as f64;
    assert_eq!(drops, counter, "per-socket drops equal Udp.RcvbufErrors in a fresh namespace");
    assert!(drops >= 200.0 && drops < f64::from(sent), "drops {drops} of {sent}");
    assert_eq!(f[0].measure("rcvbuf_bytes"), Some(8192.0), "SO_RCVBUF 4096 is doubled by the kernel");
    drop(rx);
}

#[test]
fn time_wait_pileup_vs_port_range() {
    if !can_run() {
        return;
    }
    let ns = Ns::new("tw");
    ns.exec(&["sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40999"]);
    // The default tcp_tw_reuse=2 lets loopback connects reuse TIME_WAIT ports: off here so
    // the count is exact.
    ns.exec(&["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=0"]);
    const N: usize = 400;
    let done = ns.run(|| {
        let l = listen("127.0.0.1:7005", 512);
        let server = std::thread::spawn(move || {
            let mut n = 0;
            let deadline = Instant::now() + Duration::from_secs(20);
            while n < N && Instant::now() < deadline {
                if let Ok((mut s, _)) = l.accept() {
                    let mut b = [0u8; 16];
                    let _ = s.read(&mut b); // wait for the client's FIN, then close second
                    n += 1;
                }
            }
            n
        });
        for _ in 0..N {
            let c = TcpStream::connect("127.0.0.1:7005").expect("connect");
            drop(c); // the client closes first: TIME_WAIT lands here
        }
        server.join().unwrap_or(0)
    });
    assert_eq!(done, N);
    std::thread::sleep(Duration::from_millis(200));
    let ev = ns.evidence(0.0, None);
    let fs = netcase_rules::host::check(&ev);
    let f = find(&fs, CaseId::TimeWaitPileup);
    assert_eq!(f.len(), 1, "{}", show(&fs));
    // The kernel may recycle a few loopback TIME_WAIT ports under pressure; netcase must
    // count exactly what it holds (as `ss` does) and relate it to the range.
    let ss = ns.exec(&["ss", "-tanH", "state", "time-wait"]).lines().count() as f64;
    let count = f[0].measure("count").unwrap();
    assert_eq!(count, ss, "netcase and ss disagree");
    assert!(count >= 300.0, "{count} TIME_WAIT of {N} connections");
    assert_eq!(f[0].measure("port_range_size"), Some(1000.0));
    let share = f[0].measure("share_of_port_range_pct").unwrap();
    assert!((share - count / 10.0).abs() < 1e-9, "share {share}");
}

#[test]
fn iptables_redirect_hijack_names_rule_and_path() {
    if !can_run() {
        return;
    }
    if netcase_host::which("iptables").is_none() {
        eprintln!("skipping: iptables not installed (apt-get install iptables)");
        return;
    }
    let ns = Ns::new("redir");
    ns.exec(&["iptables", "-t", "nat", "-N", "NCH-SIDECAR"]);
    ns.exec(&["iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-j", "NCH-SIDECAR"]);
    ns.exec(&[
        "iptables",
        "-t",
        "nat",
        "-A",
        "NCH-SIDECAR",
        "-p",
        "tcp",
        "--dport",
        "80",
        "-j",
        "REDIRECT",
        "--to-ports",
        "15001",
    ]);
    let l = ns.run(|| listen("127.0.0.1:15001", 16));
    let ev = ns.evidence(0.0, None);
    let fs = netcase_rules::host::check(&ev);
    let f = find(&fs, CaseId::IptablesRedirectHijack);
    assert_eq!(f.len(), 1, "{}", show(&fs));
    assert_eq!(f[0].measure("to_port"), Some(15001.0));
    assert_eq!(f[0].measure("listener_pid"), Some(f64::from(std::process::id())));
    let path = f[0].text("path").unwrap();
    assert!(path.contains("nat/OUTPUT") && path.contains("nat/NCH-SIDECAR") && path.contains("REDIRECT"), "{path}");
    // The walk answers "where does a packet to ip:port go".
    let rs = ev.netfilter.as_ref().unwrap();
    let p = netcase_host::netfilter::Packet { proto: "tcp", dst: "192.0.2.80".parse().unwrap(), dport: 80 };
    assert_eq!(rs.walk("nat", "OUTPUT", &p).target, "REDIRECT");
    let p443 = netcase_host::netfilter::Packet { dport: 443, ..p };
    assert_eq!(rs.walk("nat", "OUTPUT", &p443).target, "ACCEPT");
    drop(l);
}

#[test]
fn nft_native_redirect_is_walked() {
    if !can_run() {
        return;
    }
    if netcase_host::which("nft").is_none() {
        eprintln!("skipping: nft not installed (apt-get install nftables)");
        return;
    }
    let ns = Ns::new("nft");
    ns.exec(&["nft", "add", "table", "ip", "nchmesh"]);
    ns.exec(&["nft", "add", "chain", "ip", "nchmesh", "out", "{ type nat hook output priority -100; }"]);
    ns.exec(&["nft", "add", "chain", "ip", "nchmesh", "sidecar"]);
    ns.exec(&["nft", "add", "rule", "ip", "nchmesh", "out", "ip", "daddr", "127.0.0.0/8", "return"]);
    ns.exec(&["nft", "add", "rule", "ip", "nchmesh", "out", "jump", "sidecar"]);
    ns.exec(&["nft", "add", "rule", "ip", "nchmesh", "sidecar", "tcp", "dport", "80", "redirect", "to", ":15001"]);
    let l = ns.run(|| listen("127.0.0.1:15001", 16));
    let ev = ns.evidence(0.0, None);
    assert_eq!(ev.nft_tables, vec!["ip nchmesh".to_owned()]);
    let fs = netcase_rules::host::check(&ev);
    let f = find(&fs, CaseId::IptablesRedirectHijack);
    assert_eq!(f.len(), 1, "{}", show(&fs));
    assert_eq!(f[0].measure("to_port"), Some(15001.0));
    let rs = ev.netfilter.as_ref().expect("rules read");
    let p = netcase_host::netfilter::Packet { proto: "tcp", dst: "192.0.2.80".parse().unwrap(), dport: 80 };
    let v = rs.walk("nat", "OUTPUT", &p);
    assert_eq!(v.target, "REDIRECT");
    assert_eq!(v.path.len(), 3, "{:?}", v.path);
    let local = netcase_host::netfilter::Packet { dst: "127.0.0.1".parse().unwrap(), ..p };
    assert_eq!(rs.walk("nat", "OUTPUT", &local).target, "ACCEPT");
    drop(l);
}

fn temp_root(tag: &str, nsswitch: Option<&str>) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nch-root-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("etc")).unwrap();
    std::fs::write(d.join("etc/hosts"), "127.0.0.1 localhost\n10.201.9.9 db.internal\n").unwrap();
    std::fs::write(d.join("etc/resolv.conf"), "nameserver 192.0.2.53\noptions ndots:5\n").unwrap();
    if let Some(n) = nsswitch {
        std::fs::write(d.join("etc/nsswitch.conf"), n).unwrap();
    }
    d
}

#[test]
fn resolver_order_with_root() {
    if !can_run() {
        return;
    }
    let ns = Ns::new("res");
    let bad = temp_root("bad", None);
    let good = temp_root("good", Some("hosts: files dns\n"));
    let ev = ns.evidence(0.0, Some(bad.clone()));
    let fs = netcase_rules::host::check(&ev);
    let f = find(&fs, CaseId::ResolverOrder);
    assert_eq!(f.len(), 1, "{}", show(&fs));
    assert_eq!(f[0].measure("nsswitch_present"), Some(0.0));
    assert_eq!(f[0].measure("hosts_names"), Some(2.0));
    assert_eq!(f[0].text("nameservers"), Some("192.0.2.53"));
    let ev = ns.evidence(0.0, Some(good.clone()));
    assert!(find(&netcase_rules::host::check(&ev), CaseId::ResolverOrder).is_empty());
    let _ = std::fs::remove_dir_all(bad);
    let _ = std::fs::remove_dir_all(good);
}

#[test]
fn ip_conflict_across_two_namespaces() {
    if !can_run() {
        return;
    }
    let a = Ns::new("ipa");
    let b = Ns::new("ipb");
    sh(&["ip", "-n", &a.name, "link", "add", "nch-va", "type", "veth", "peer", "name", "nch-vb", "netns", &b.name]);
    for (ns, ifn) in [(&a, "nch-va"), (&b, "nch-vb")] {
        sh(&["ip", "-n", &ns.name, "addr", "add", "10.201.7.1/24", "dev", ifn]);
        sh(&["ip", "-n", &ns.name, "link", "set", ifn, "up"]);
    }
    let evs = vec![a.evidence(0.0, None), b.evidence(0.0, None)];
    let fs = netcase_rules::host::check_all(&evs);
    let f = find(&fs, CaseId::IpConflict);
    assert_eq!(f.len(), 1, "{}", show(&fs));
    assert_eq!(f[0].subject, netcase_model::Subject::Peer { ip: "10.201.7.1".parse().unwrap() });
    assert_eq!(f[0].measure("holders"), Some(2.0));
    let holders = f[0].text("netns").unwrap();
    assert!(holders.contains(&a.name) && holders.contains(&b.name), "{holders}");
}

#[test]
fn healthy_namespace_with_traffic_is_silent() {
    if !can_run() {
        return;
    }
    let ns = Ns::new("ok");
    let (l, server) = ns.run(|| {
        let l = listen("127.0.0.1:7006", 128);
        let l2 = l.try_clone().unwrap();
        let server = std::thread::spawn(move || {
            // A well-behaved server: answers and closes after the client's FIN.
            for _ in 0..50 {
                let Ok((mut s, _)) = l2.accept() else { break };
                let mut b = [0u8; 64];
                while let Ok(n) = s.read(&mut b) {
                    if n == 0 {
                        break;
                    }
                    let _ = s.write_all(&b[..n]);
                }
            }
        });
        for i in 0..50u8 {
            let mut c = TcpStream::connect("127.0.0.1:7006").unwrap();
            c.write_all(&[i; 32]).unwrap();
            let mut b = [0u8; 32];
            c.read_exact(&mut b).unwrap();
        }
        (l, server)
    });
    let _ = server.join();
    let ev = ns.evidence(0.3, None);
    assert!(ev.sockets.len() >= 50, "traffic left sockets to look at: {}", ev.sockets.len());
    let fs = netcase_rules::host::check(&ev);
    assert!(fs.is_empty(), "healthy namespace gave findings:\n{}", show(&fs));
    drop(l);
}

#[test]
fn ip_conflict_seen_from_one_namespace() {
    if !can_run() {
        return;
    }
    // c talks to 10.201.6.2, which s1 and s2 both hold; only c is checked.
    let c = Ns::new("ipc");
    let s1 = Ns::new("ips1");
    let s2 = Ns::new("ips2");
    sh(&["ip", "-n", &c.name, "link", "add", "nch-c1", "type", "veth", "peer", "name", "nch-p1", "netns", &s1.name]);
    sh(&["ip", "-n", &c.name, "link", "add", "nch-c2", "type", "veth", "peer", "name", "nch-p2", "netns", &s2.name]);
    sh(&["ip", "-n", &c.name, "addr", "add", "10.201.6.1/24", "dev", "nch-c1"]);
    sh(&["ip", "-n", &c.name, "link", "set", "nch-c1", "up"]);
    for (ns, ifn) in [(&s1, "nch-p1"), (&s2, "nch-p2")] {
        sh(&["ip", "-n", &ns.name, "addr", "add", "10.201.6.2/24", "dev", ifn]);
        sh(&["ip", "-n", &ns.name, "link", "set", ifn, "up"]);
    }
    let l = s1.run(|| listen("10.201.6.2:7020", 16));
    let conn = c.run(|| TcpStream::connect_timeout(&"10.201.6.2:7020".parse().unwrap(), Duration::from_secs(2)));
    let conn = conn.expect("connect to s1");
    let ev = c.evidence(0.0, None);
    let names: Vec<&str> = ev.other_netns.iter().map(|o| o.netns.as_str()).collect();
    assert!(names.contains(&s1.name.as_str()) && names.contains(&s2.name.as_str()), "{names:?}");
    let fs = netcase_rules::host::check_all(std::slice::from_ref(&ev));
    let f = find(&fs, CaseId::IpConflict);
    assert_eq!(f.len(), 1, "{}", show(&fs));
    assert_eq!(f[0].subject, netcase_model::Subject::Peer { ip: "10.201.6.2".parse().unwrap() });
    assert_eq!(f[0].measure("holders"), Some(2.0));
    let holders = f[0].text("netns").unwrap();
    assert!(holders.contains(&s1.name) && holders.contains(&s2.name) && !holders.contains(&c.name), "{holders}");
    assert_eq!(f[0].text("macs").map(|m| m.split(',').count()), Some(2));
    assert!(f[0].text("relation").is_some_and(|r| r.contains("1 socket")), "{:?}", f[0].text("relation"));
    drop((conn, l));
}

#[test]
fn all_netns_sees_both_namespaces() {
    if !can_run() {
        return;
    }
    let a = Ns::new("alla");
    let b = Ns::new("allb");
    sh(&["ip", "-n", &a.name, "link", "add", "nch-aa", "type", "veth", "peer", "name", "nch-ab", "netns", &b.name]);
    for (ns, ifn) in [(&a, "nch-aa"), (&b, "nch-ab")] {
        sh(&["ip", "-n", &ns.name, "addr", "add", "10.201.8.1/24", "dev", ifn]);
        sh(&["ip", "-n", &ns.name, "link", "set", ifn, "up"]);
    }
    let opts = Options { target: Target::AllNetns, root: None, interval: Duration::ZERO };
    let evs = collect(&opts).expect("collect --all-netns");
    let ours: Vec<&HostEvidence> =
        evs.iter().filter(|e| e.netns.name.as_deref().is_some_and(|n| n == a.name || n == b.name)).collect();
    assert_eq!(ours.len(), 2, "both namespaces checked once");
    for e in &ours {
        assert!(e.addresses.iter().any(|x| x.addr == "10.201.8.1".parse::<std::net::IpAddr>().unwrap()));
        assert!(e.other_netns.is_empty(), "--all-netns checks every namespace in full");
    }
    let own = NetnsRef::current().expect("own netns").inode;
    assert!(evs.iter().any(|e| e.netns.inode == own), "the caller's namespace is included");
    let fs = netcase_rules::host::check_all(&evs);
    let ip: std::net::IpAddr = "10.201.8.1".parse().unwrap();
    let f: Vec<_> = find(&fs, CaseId::IpConflict)
        .into_iter()
        .filter(|f| f.subject == netcase_model::Subject::Peer { ip })
        .collect();
    assert_eq!(f.len(), 1, "{}", show(&fs));
    assert_eq!(f[0].measure("holders"), Some(2.0));
    let holders = f[0].text("netns").unwrap();
    assert!(holders.contains(&a.name) && holders.contains(&b.name), "{holders}");
}

#[test]
fn syn_queue_overflow_counts_half_open() {
    if !can_run() {
        return;
    }
    if netcase_host::which("iptables").is_none() {
        eprintln!("skipping: iptables not installed (apt-get install iptables)");
        return;
    }
    const BACKLOG: i32 = 16;
    const CLIENTS: usize = 24;
    let ns = Ns::new("synq");
    ns.exec(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=0"]);
    // The handshakes never complete: the listener's SYN/ACKs are dropped on the way out.
    ns.exec(&[
        "iptables",
        "-A",
        "OUTPUT",
        "-p",
        "tcp",
        "--sport",
        "7010",
        "--tcp-flags",
        "SYN,ACK",
        "SYN,ACK",
        "-j",
        "DROP",
    ]);
    let max_syn: u64 = ns.exec(&["sysctl", "-n", "net.ipv4.tcp_max_syn_backlog"]).trim().parse().expect("number");
    assert!(max_syn * 3 / 4 > BACKLOG as u64, "the listen backlog must be the limit here");
    let l = ns.run(|| {
        let l = listen("127.0.0.1:7010", BACKLOG);
        let hs: Vec<_> = (0..CLIENTS)
            .map(|_| {
                std::thread::spawn(|| {
                    TcpStream::connect_timeout(&"127.0.0.1:7010".parse().unwrap(), Duration::from_millis(300)).is_ok()
                })
            })
            .collect();
        let connected = hs.into_iter().filter_map(|h| h.join().ok()).filter(|ok| *ok).count();
        assert_eq!(connected, 0, "no handshake may complete");
        l
    });
    let ev = ns.evidence(0.0, None);
    let fs = netcase_rules::host::check(&ev);
    let f = find(&fs, CaseId::SynQueueOverflow);
    assert_eq!(f.len(), 1, "{}", show(&fs));
    // The queue is full at backlog + 1; concurrent SYNs can race the kernel's fullness check
    // and leave one more, so the count is checked against what `ss` sees in the namespace.
    let seen = ns.exec(&["ss", "-Htn", "state", "syn-recv", "sport", "= :7010"]).lines().count();
    assert!((BACKLOG as usize + 1..=BACKLOG as usize + 2).contains(&seen), "ss shows {seen} SYN_RECV");
    assert_eq!(f[0].measure("syn_recv"), Some(seen as f64), "the kernel's own count");
    assert_eq!(f[0].measure("backlog"), Some(f64::from(BACKLOG)));
    assert_eq!(f[0].measure("limit"), Some(f64::from(BACKLOG)));
    let dropped = ev.counters.get("TcpExt.TCPReqQFullDrop").copied().unwrap_or(0);
    assert!(dropped >= (CLIENTS - seen) as u64, "TCPReqQFullDrop = {dropped}");
    assert!(f[0].evidence.iter().any(
        |e| matches!(e, Evidence::Counter { name, value, .. } if name == "TcpExt.TCPReqQFullDrop" && *value == dropped)
    ));
    drop(l);
}

#[test]
fn keepalive_settings_finds_idle_connection_without_keepalive() {
    if !can_run() {
        return;
    }
    /// Short idle threshold for the test (the rule's default is 300 s).
    const IDLE_MS: u32 = 800;
    let ns = Ns::new("ka");
    let (l, pairs) = ns.run(|| {
        let l = listen("127.0.0.1:7011", 16);
        let mut pairs = Vec::new();
        for keepalive in [false, true] {
            let mut c = TcpStream::connect("127.0.0.1:7011").expect("connect");
            let (mut s, _) = l.accept().expect("accept");
            if keepalive {
                let on: libc::c_int = 1;
                for fd in [c.as_raw_fd(), s.as_raw_fd()] {
                    // SAFETY: setsockopt with a valid int option on our socket.
                    let rc = unsafe {
                        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, std::ptr::addr_of!(on).cast(), 4)
                    };
                    assert_eq!(rc, 0);
                }
            }
            c.write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
            s.write_all(b"pong").unwrap();
            c.read_exact(&mut b).unwrap();
            pairs.push((c, s));
        }
        (l, pairs)
    });
    std::thread::sleep(Duration::from_millis(u64::from(IDLE_MS) + 400));
    let ev = ns.evidence(0.0, None);
    assert!(
        find(&netcase_rules::host::check(&ev), CaseId::KeepaliveSettings).is_empty(),
        "1.2 s idle is far below the default threshold"
    );
    let fs = netcase_rules::host::keepalive_findings(&ev, IDLE_MS);
    assert_eq!(fs.len(), 1, "{}", show(&fs));
    assert_eq!(fs[0].measure("count"), Some(2.0), "both ends of the connection without SO_KEEPALIVE");
    let idle = fs[0].measure("max_idle_s").unwrap();
    assert!((1.0..5.0).contains(&idle), "idle {idle} s");
    let ka = ns.exec(&["sysctl", "-n", "net.ipv4.tcp_keepalive_time"]).trim().parse::<f64>().unwrap();
    assert_eq!(fs[0].measure("tcp_keepalive_time_s"), Some(ka));
    drop((l, pairs));
}

// ---------------------------------------------------------------------------------------
// Read-only.

fn sysctl_snapshot(ns: &Ns) -> Vec<(String, String)> {
    ns.run(|| {
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::from("/proc/sys/net")];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(v) = std::fs::read_to_string(&p) {
                    out.push((p.display().to_string(), v));
                }
            }
        }
        // Counters that move on their own are not settings.
        out.retain(|(p, _)| !p.ends_with("nf_conntrack_count") && !p.contains("flush") && !p.contains("stable_secret"));
        out.sort();
        out
    })
}

#[test]
fn check_is_read_only() {
    if !can_run() {
        return;
    }
    let ns = Ns::new("ro");
    let have_ipt = netcase_host::which("iptables").is_some();
    if have_ipt {
        ns.exec(&["iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.201.0.0/16", "-j", "MASQUERADE"]);
        ns.exec(&["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "7007", "-j", "REJECT"]);
    }
    let rules = |ns: &Ns| {
        if have_ipt {
            ns.exec(&["iptables-save"]).lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect::<Vec<_>>()
        } else {
            vec![]
        }
    };
    let table = |ns: &Ns| {
        if netcase_host::which("conntrack").is_some() {
            ns.exec(&["conntrack", "-L", "-o", "id"]).lines().count()
        } else {
            0
        }
    };
    let before = (sysctl_snapshot(&ns), rules(&ns), table(&ns));
    let ev = ns.evidence(0.2, None);
    let _ = netcase_rules::host::check(&ev);
    let after = (sysctl_snapshot(&ns), rules(&ns), table(&ns));
    assert!(!before.0.is_empty());
    assert_eq!(before.0, after.0, "sysctls changed");
    assert_eq!(before.1, after.1, "rules changed");
    assert_eq!(before.2, after.2, "conntrack table changed");
}
