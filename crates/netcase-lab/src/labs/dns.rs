//! Labs about name resolution and conntrack: a small DNS server in the server namespace,
//! glibc's getaddrinfo in the client namespace (through `netcase lab __resolve`, run with
//! `ip netns exec` so the namespace's /etc/netns files are in place), and the conntrack table.

use crate::apps::{self, dns};
use crate::topo::End;
use crate::{ns, Ctx, Src, Tol};
use anyhow::{bail, Context, Result};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A query the lab's DNS server received.
#[derive(Debug, Clone)]
struct Seen {
    name: String,
    qtype: u16,
}

struct DnsServer {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    handle: std::thread::JoinHandle<()>,
}

impl DnsServer {
    /// Answers every A query with `answer`, AAAA with no data. With `aaaa_first_delay`, an A
    /// answer is held back that long so that the AAAA answer overtakes it.
    fn start(ns: &str, ip: Ipv4Addr, answer: Ipv4Addr, a_delay: Duration) -> Result<DnsServer> {
        let sock = apps::udp(ns, SocketAddrV4::new(ip, 53))?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let mut held: Vec<(Instant, Vec<u8>, SocketAddr)> = Vec::new();
            let end = Instant::now() + crate::LAB_LIMIT;
            while !stop2.load(Ordering::Relaxed) && Instant::now() < end {
                let now = Instant::now();
                held.retain(|(due, m, to)| {
                    if *due <= now {
                        let _ = sock.send_to(m, to);
                        false
                    } else {
                        true
                    }
                });
                let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
                let q = buf.get(..n).unwrap_or_default();
                let Some((_, name, qtype, _)) = dns::parse_query(q) else { continue };
                if let Ok(mut s) = seen2.lock() {
                    s.push(Seen { name, qtype });
                }
                let Some(a) = dns::answer(q, Some(answer)) else { continue };
                if qtype == dns::A && !a_delay.is_zero() {
                    held.push((Instant::now() + a_delay, a, from));
                } else {
                    let _ = sock.send_to(&a, from);
                }
            }
        });
        Ok(DnsServer { stop, seen, handle })
    }

    fn stop(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Writes `/etc/netns/NS/FILE` (bind-mounted over /etc/FILE by `ip netns exec`).
fn etc_file(ctx: &mut Ctx<'_>, ns: &str, file: &str, text: &str) -> Result<()> {
    let dir = PathBuf::from(format!("/etc/netns/{ns}"));
    if !dir.exists() {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        ctx.own_dir(&dir);
    }
    std::fs::write(dir.join(file), text).with_context(|| format!("write {}/{file}", dir.display()))?;
    Ok(())
}

/// Writes the resolver's files of `ns`: `resolv.conf`, `hosts` and `nsswitch.conf`.
fn resolver_files(ctx: &mut Ctx<'_>, ns: &str, resolv_conf: &str, hosts: &str, nsswitch_conf: &str) -> Result<()> {
    etc_file(ctx, ns, "resolv.conf", resolv_conf)?;
    etc_file(ctx, ns, "hosts", hosts)?;
    etc_file(ctx, ns, "nsswitch.conf", nsswitch_conf)
}

/// Adds nftables table `ip ncl` with a filter chain `in` on the input hook in `ns` (adding
/// them again is harmless).
fn nft_input_chain(ns: &str) -> Result<()> {
    ns::exec(ns, "nft", &["add", "table", "ip", "ncl"])?;
    ns::exec(ns, "nft", &["add", "chain", "ip", "ncl", "in", "{ type filter hook input priority 0; }"])?;
    Ok(())
}

/// Runs `netcase lab __resolve NAME` in `ns`; returns (milliseconds, addresses or error).
fn resolve(ctx: &mut Ctx<'_>, ns: &str, name: &str, limit: Duration) -> Result<(f64, String)> {
    let Some(exe) = ctx.opts.exe.clone() else {
        bail!("this lab runs glibc's resolver in a helper process and needs the netcase executable");
    };
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(&exe)
        .args(["lab", "__resolve", name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("spawn the resolver helper")?;
    let pid = child.id();
    ctx.own_pid(pid);
    let end = Instant::now() + limit;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            ctx.disown_pid(pid);
            bail!("resolver helper did not finish within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    ctx.disown_pid(pid);
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v: serde_json::Value = serde_json::from_str(text.trim()).context("resolver helper output")?;
    let ms = v.get("ms").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    let res =
        v.get("addrs").map_or_else(|| v.get("error").map(|e| e.to_string()).unwrap_or_default(), |a| a.to_string());
    Ok((ms, res))
}

/// `hosts: dns files` (what Go does without nsswitch.conf): DNS is asked before /etc/hosts, and the DNS answer for
/// a name in /etc/hosts wins (control: `hosts: files dns`).
pub fn resolver_order(ctx: &mut Ctx<'_>) -> Result<()> {
    const NAME: &str = "localhost";
    let p = ctx.pair()?;
    let (hosts_ip, dns_ip) = (Ipv4Addr::LOCALHOST, ctx.ip(66));
    let resolv_conf = format!("nameserver {}\noptions timeout:1 attempts:1\n", p.s_ip);
    let hosts = format!("{hosts_ip} localhost\n{} db.lab.internal\n", ctx.ip(9));
    // Go without nsswitch.conf (alpine) asks DNS first; glibc does so with `hosts: dns files`.
    let nss = if ctx.control {
        "passwd: files\ngroup: files\nhosts: files dns\n"
    } else {
        "passwd: files\ngroup: files\nhosts: dns files\n"
    };
    resolver_files(ctx, &p.c, &resolv_conf, &hosts, nss)?;
    let srv = DnsServer::start(&p.s, p.s_ip, dns_ip, Duration::ZERO)?;
    ctx.capture(&p.c, Some("eth0"))?;
    let (ms, addrs) = resolve(ctx, &p.c, NAME, Duration::from_secs(8))?;
    ctx.snapshot(&p.c);
    let seen = srv.stop();
    let asked = seen.iter().filter(|s| s.name == NAME).count();
    if ctx.control {
        ctx.fact(
            format!("{NAME} -> {addrs} from /etc/hosts in {ms:.1} ms; {asked} DNS queries"),
            addrs.contains(&hosts_ip.to_string()) && asked == 0,
        );
    } else {
        ctx.fact(
            format!("nsswitch.conf `hosts: dns files`: {asked} DNS queries for {NAME} (in /etc/hosts as {hosts_ip}); answer {addrs} from DNS"),
            asked > 0 && addrs.contains(&dns_ip.to_string()),
        );
    }
    ctx.expect(Src::Capture, "queries", 1.0, "count", Tol::AtLeast);
    ctx.require(p.src(End::Client));
    Ok(())
}

/// glibc sends A and AAAA from one socket; the second packet of that conntrack flow is lost
/// (an nftables `ct original packets 2` drop stands in for the insert race): the lookup waits
/// the resolver's 5 s timeout (control: no drop).
pub fn dns_conntrack_race_5s(ctx: &mut Ctx<'_>) -> Result<()> {
    const NAME: &str = "api.lab.internal";
    let p = ctx.pair()?;
    let resolv_conf = format!("nameserver {}\n", p.s_ip);
    resolver_files(
        ctx,
        &p.c,
        &resolv_conf,
        "127.0.0.1 localhost\n",
        "passwd: files\ngroup: files\nhosts: files dns\n",
    )?;
    ns::sysctl(&p.s, "net.netfilter.nf_conntrack_acct", "1").or_else(|_| {
        // The sysctl appears once conntrack is loaded: a ct rule loads it.
        nft_input_chain(&p.s)?;
        ns::exec(&p.s, "nft", &["add", "rule", "ip", "ncl", "in", "ct", "state", "new", "counter"])?;
        ns::sysctl(&p.s, "net.netfilter.nf_conntrack_acct", "1")
    })?;
    if !ctx.control {
        let _ = nft_input_chain(&p.s);
        ns::exec(
            &p.s,
            "nft",
            &["add", "rule", "ip", "ncl", "in", "udp", "dport", "53", "ct", "original", "packets", "2", "drop"],
        )?;
    }
    let answer = ctx.ip(80);
    let srv = DnsServer::start(&p.s, p.s_ip, answer, Duration::ZERO)?;
    ctx.capture(&p.c, Some("eth0"))?;
    let (ms, addrs) = resolve(ctx, &p.c, NAME, Duration::from_secs(15))?;
    let seen = srv.stop();
    let frames = ctx.stop_capture()?;
    let queries: Vec<(u64, u16)> = frames
        .iter()
        .filter_map(|f| {
            let p = crate::pkt::parse(&f.data)?;
            let (_, dport, _) = p.udp?;
            (dport == 53).then_some((f.ts_ns, p.udp.map_or(0, |u| u.0)))
        })
        .collect();
    let same_port = queries.len() >= 2 && queries.first().map(|q| q.1) == queries.get(1).map(|q| q.1);
    if ctx.control {
        ctx.fact(
            format!("{NAME} -> {addrs} in {ms:.1} ms ({} queries answered)", seen.len()),
            ms < 1000.0 && addrs.contains(&answer.to_string()),
        );
    } else {
        ctx.fact(
            format!(
                "A and AAAA sent from one source port: {same_port}; server saw {} of {} queries ({} AAAA); lookup took {ms:.0} ms",
                seen.len(),
                queries.len(),
                seen.iter().filter(|s| s.qtype == dns::AAAA).count()
            ),
            same_port && (ms - 5000.0).abs() < 600.0,
        );
    }
    ctx.expect(Src::Capture, "delay_ms", 5000.0, "ms", Tol::Abs(500.0));
    ctx.expect(Src::Capture, "lookups_delayed", 1.0, "count", Tol::Abs(0.0));
    ctx.note("the lost packet is dropped by an nftables rule (`ct original packets 2 drop`) standing in for conntrack's insert race; the race itself needs DNAT to one DNS server and two CPUs inserting at once");
    Ok(())
}

/// A musl-like client sends A and AAAA with the same id from one socket; the server answers
/// AAAA first and the client drops the A answer as a duplicate (control: different ids).
pub fn dns_id_collision(ctx: &mut Ctx<'_>) -> Result<()> {
    const N: usize = 5;
    let p = ctx.pair()?;
    let answer = ctx.ip(80);
    let srv = DnsServer::start(&p.s, p.s_ip, answer, Duration::from_millis(20))?;
    ctx.capture(&p.c, Some("eth0"))?;
    let sock: UdpSocket = apps::udp(&p.c, SocketAddrV4::new(p.c_ip, 0))?;
    sock.set_read_timeout(Some(Duration::from_millis(300)))?;
    let to = SocketAddrV4::new(p.s_ip, 53);
    let mut lost_a = 0;
    for i in 0..N {
        let id = 0x4d00 + i as u16;
        let id6 = if ctx.control { id + 0x100 } else { id };
        let name = format!("svc{i}.lab.internal");
        sock.send_to(&dns::query(id, &name, dns::A), to)?;
        sock.send_to(&dns::query(id6, &name, dns::AAAA), to)?;
        // musl's matching, reduced: the first answer for an id settles it; a second is dropped.
        let mut settled = std::collections::HashSet::new();
        let mut got_a = false;
        let mut buf = [0u8; 1500];
        for _ in 0..2 {
            let Ok(n) = sock.recv(&mut buf) else { break };
            let m = buf.get(..n).unwrap_or_default();
            let (Some(rid), Some((_, _, qtype, _))) = (dns::id(m), dns::parse_query(m)) else { continue };
            if !settled.insert(rid) {
                continue; // duplicate id: discarded
            }
            got_a |= qtype == dns::A;
        }
        if !got_a {
            lost_a += 1;
        }
    }
    let _ = srv.stop();
    if ctx.control {
        ctx.fact(format!("distinct ids: {} of {N} lookups got their A record", N - lost_a), lost_a == 0);
    } else {
        ctx.fact(
            format!("A and AAAA shared an id, AAAA answered first: {lost_a} of {N} A answers discarded"),
            lost_a == N,
        );
    }
    ctx.expect(Src::Capture, "colliding_pairs", N as f64, "count", Tol::Abs(0.0));
    Ok(())
}

/// Fills the lab namespace's conntrack table by lowering the global nf_conntrack_max (the only
/// way on this kernel) to the host's current count + 512, then opening 88 UDP flows more; the
/// value is restored on every exit path (control: the limit is left alone).
pub fn conntrack_table_full(ctx: &mut Ctx<'_>) -> Result<()> {
    // The limit is global: a fault run and a control run must not overlap.
    let _lock = crate::cleanup::host_lock("nf_conntrack_max", Duration::from_secs(15))?;
    let p = ctx.pair()?;
    nft_input_chain(&p.s)?;
    ns::exec(&p.s, "nft", &["add", "rule", "ip", "ncl", "in", "ct", "state", "new", "counter"])?;
    let max_path = std::path::Path::new("/proc/sys/net/netfilter/nf_conntrack_max");
    let host_count: u64 = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let target = host_count + 512;
    if !ctx.control {
        if host_count > 20_000 {
            bail!("the host already tracks {host_count} connections; the lab would need as many flows, refusing");
        }
        let target = target.to_string();
        ctx.change_host_value(max_path, &target)?;
    }
    let rx = apps::udp(&p.s, SocketAddrV4::new(p.s_ip, 9000))?;
    rx.set_read_timeout(Some(Duration::from_millis(300)))?;
    let flows = target + 88;
    let reader = std::thread::spawn(move || apps::recv_count(&rx, flows as usize) as u64);
    ctx.capture(&p.c, Some("eth0"))?;
    let mut sent = 0u64;
    for _ in 0..flows {
        let tx = apps::udp(&p.c, SocketAddrV4::new(p.c_ip, 0))?;
        if tx.send_to(b"flow", SocketAddrV4::new(p.s_ip, 9000)).is_ok() {
            sent += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let count: u64 = ns::sysctl_get(&p.s, "net.netfilter.nf_conntrack_count")?.parse().unwrap_or(0);
    let max: u64 = ns::sysctl_get(&p.s, "net.netfilter.nf_conntrack_max")?.parse().unwrap_or(0);
    ctx.snapshot(&p.s);
    let got = reader.join().unwrap_or(0);
    if ctx.control {
        ctx.fact(format!("{sent} flows, conntrack count {count} of max {max}"), count < max && got == sent);
    } else {
        ctx.fact(
            format!("{sent} flows: conntrack count {count} of max {max} (global limit lowered from the host's value)"),
            count >= max.saturating_sub(1),
        );
    }
    let s = p.src(End::Server);
    ctx.expect(s.clone(), "max", max as f64, "count", Tol::Abs(0.0));
    ctx.expect(s, "count", max as f64, "count", Tol::Abs(2.0));
    Ok(())
}
