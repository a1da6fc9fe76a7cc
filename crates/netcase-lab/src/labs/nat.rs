//! Labs about clients behind a NAT: several client kernels masqueraded to one address.

use crate::apps::{accept_timeout, connect, listen, read_head, read_response, send_get, send_response};
use crate::ns;
use crate::pkt::{self, flags};
use crate::relay::{DropRule, Relay, RelayCfg};
use crate::{Ctx, Src, Tol};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PORT: u16 = 8080;

/// Connections each client makes.
const PER_CLIENT: usize = 15;
/// Time between one client's connection attempts (the other client's fall half-way between).
/// Not a divisor of 1 s, so a SYN retransmitted after 1 s does not coincide with another
/// client's new SYN.
const PACE: Duration = Duration::from_millis(230);
/// A client's connect timeout: the first SYN and one retransmission (the kernel retries an
/// unanswered SYN after 1 s), then it gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1300);

/// What one connection attempt of a client did.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    /// The client namespace's number (1 or 2).
    client: u8,
    /// The request was answered.
    ok: bool,
    /// The connect took longer than the first SYN's round trip (the retransmitted SYN got
    /// through).
    late: bool,
}

/// One connection as the capture saw it: the first SYN's TSval and whether the server
/// answered it.
#[derive(Debug, Clone, Copy)]
struct SeenConn {
    first_ts_ns: u64,
    tsval: Option<u32>,
    syns: usize,
    answered: bool,
}

/// The connections to the server in `frames`, by (source IP, source port), in the order
/// of their first SYN.
fn connections(frames: &[crate::capture::Frame], server: Ipv4Addr) -> Vec<((Ipv4Addr, u16), SeenConn)> {
    let mut by: BTreeMap<(Ipv4Addr, u16), SeenConn> = BTreeMap::new();
    let mut synacks: HashSet<(Ipv4Addr, u16)> = HashSet::new();
    for (ts, src, dst, t) in pkt::tcp_segments(frames) {
        let syn = t.flags & (flags::SYN | flags::ACK);
        if dst == server && t.dport == PORT && syn == flags::SYN {
            let c = by.entry((src, t.sport)).or_insert(SeenConn {
                first_ts_ns: ts,
                tsval: t.tsval,
                syns: 0,
                answered: false,
            });
            c.syns += 1;
        } else if src == server && t.sport == PORT && syn == flags::SYN | flags::ACK {
            synacks.insert((dst, t.dport));
        }
    }
    let mut v: Vec<((Ipv4Addr, u16), SeenConn)> = by
        .into_iter()
        .map(|(k, mut c)| {
            c.answered = synacks.contains(&k);
            (k, c)
        })
        .collect();
    v.sort_by_key(|(_, c)| c.first_ts_ns);
    v
}

/// Two clients behind a NAT router, the topology of the NAT labs: the run's /24 split in two,
/// outside (the NAT address .1, the server .2) and inside (clients .129 and .130 in their own
/// namespaces, bridged on the router's br0 with the gateway .254). The router forwards; the
/// caller links its outside interface `o0` and writes the NAT rule.
struct NatLan {
    clients: [Ipv4Addr; 2],
    c1: String,
    c2: String,
    /// The router's namespace.
    n: String,
    nat_ip: Ipv4Addr,
    s_ip: Ipv4Addr,
}

fn nat_lan(ctx: &mut Ctx<'_>) -> Result<NatLan> {
    let (nat_ip, s_ip, gw_ip) = (ctx.ip(1), ctx.ip(2), ctx.ip(254));
    let clients = [ctx.ip(129), ctx.ip(130)];
    let c1 = ctx.netns("c1")?;
    let c2 = ctx.netns("c2")?;
    let n = ctx.netns("nat")?;
    ns::ip(&["-n", &n, "link", "add", "br0", "type", "bridge"])?;
    ns::ip(&["-n", &n, "link", "set", "br0", "up"])?;
    for (c, port, ip) in [(&c1, "i1", clients[0]), (&c2, "i2", clients[1])] {
        ctx.link(c, "eth0", &n, port)?;
        ns::ip(&["-n", &n, "link", "set", port, "master", "br0"])?;
        ctx.addr_len(c, "eth0", ip, 25)?;
        ns::ip(&["-n", c, "route", "add", "default", "via", &gw_ip.to_string()])?;
    }
    ctx.addr_len(&n, "br0", gw_ip, 25)?;
    ns::sysctl(&n, "net.ipv4.ip_forward", "1")?;
    Ok(NatLan { clients, c1, c2, n, nat_ip, s_ip })
}

/// Two client namespaces behind one NAT namespace that masquerades them to one address
/// (nftables, in the NAT namespace only), a relay namespace, and the server. The client
/// kernels give each connection a random TCP timestamp offset, so the TSvals the server sees
/// from the one NAT address jump back and forth across connections (as those of hosts with
/// different clocks behind one NAT did).
///
/// Fault: the relay in front of the server makes the per-peer PAWS check of
/// `tcp_tw_recycle` ([`DropRule::TwRecyclePaws`]; the sysctl is gone since Linux 4.12, so
/// this kernel will not drop the SYNs itself): a SYN whose TSval is older than the last one
/// that passed from the NAT address is dropped (about half of them); the client retransmits
/// it after 1 s (it gets through when another connection has moved the remembered TSval
/// back in between) and gives up after 1.3 s. The capture is taken on the relay's NAT-facing
/// interface, where the server's NIC would see the SYNs before its kernel drops them.
/// Control: the relay forwards everything (tcp_tw_recycle off): the same backwards
/// timestamps, every SYN answered.
pub fn nat_timestamp_paws(ctx: &mut Ctx<'_>) -> Result<()> {
    let control = ctx.control;
    let NatLan { clients, c1, c2, n, nat_ip, s_ip } = nat_lan(ctx)?;
    let m = ctx.netns("m")?;
    let s = ctx.netns("s")?;
    ctx.link(&n, "o0", &m, "c0")?;
    ctx.link(&m, "s0", &s, "eth0")?;
    ctx.addr_len(&n, "o0", nat_ip, 25)?;
    ctx.addr_len(&s, "eth0", s_ip, 25)?;
    ns::exec(&n, "nft", &["add", "table", "ip", "ncl"])?;
    ns::exec(&n, "nft", &["add", "chain", "ip", "ncl", "post", "{ type nat hook postrouting priority 100; }"])?;
    ns::exec(&n, "nft", &["add", "rule", "ip", "ncl", "post", "oifname", "o0", "masquerade"])?;
    ctx.describe(format!("{n}: nftables masquerade of {} and {} to {nat_ip} on o0", clients[0], clients[1]));
    let drops = if control { vec![] } else { vec![DropRule::TwRecyclePaws { dport: PORT }] };
    ctx.describe(format!(
        "relay in {m}: c0 <-> s0, {}",
        if control {
            "plain forwarding (tcp_tw_recycle off)"
        } else {
            "drops SYNs whose TSval is older than the last one from that IP (tcp_tw_recycle's PAWS check)"
        }
    ));
    let relay = Relay::start(&m, "c0", "s0", RelayCfg { delay: Duration::ZERO, drops })?;

    let to = SocketAddrV4::new(s_ip, PORT);
    let l = listen(&s, to, 64)?;
    ctx.capture(&m, Some("c0"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let server = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(12);
        let mut handlers = Vec::new();
        while !stop2.load(Ordering::Relaxed) && Instant::now() < end && handlers.len() < 2 * PER_CLIENT {
            let Ok((mut c, _)) = accept_timeout(&l, Duration::from_millis(100)) else { continue };
            handlers.push(std::thread::spawn(move || {
                if read_head(&mut c).is_err() || send_response(&mut c, "200 OK", "", b"ok").is_err() {
                    return;
                }
                // Wait for the client to close first: no TIME_WAIT on the server.
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut b = [0u8; 64];
                let _ = c.read(&mut b);
            }));
        }
        let n = handlers.len();
        for h in handlers {
            let _ = h.join();
        }
        n
    });

    // Each client connects every PACE, the second one PACE/2 after the first, so the
    // connections from the NAT address alternate between the two client kernels.
    let started = Instant::now();
    let mut attempts = Vec::new();
    for i in 0..PER_CLIENT {
        for (k, c) in [&c1, &c2].into_iter().enumerate() {
            let due = PACE * i as u32 + PACE / 2 * k as u32;
            std::thread::sleep(due.saturating_sub(started.elapsed()));
            let c = c.clone();
            attempts.push(std::thread::spawn(move || {
                let t = Instant::now();
                let ok = connect(&c, to, CONNECT_TIMEOUT).and_then(|mut s| {
                    let late = t.elapsed() > Duration::from_millis(500);
                    send_get(&mut s, "api", "/")?;
                    let (status, _) = read_response(&mut s)?;
                    Ok((status == 200, late))
                });
                let (ok, late) = ok.unwrap_or((false, false));
                Attempt { client: k as u8 + 1, ok, late }
            }));
        }
    }
    let results: Vec<Attempt> = attempts.into_iter().filter_map(|h| h.join().ok()).collect();
    stop.store(true, Ordering::Relaxed);
    let accepted = server.join().unwrap_or(0);
    let frames = ctx.stop_capture()?;
    let stats = relay.stop();

    let conns = connections(frames, s_ip);
    let from_nat = conns.iter().filter(|((ip, _), _)| *ip == nat_ip).count();
    let unanswered = conns.iter().filter(|(_, c)| !c.answered).count();
    let syns: usize = conns.iter().map(|(_, c)| c.syns).sum();
    // Connections whose first SYN carries a TSval older than the previous connection's.
    let backwards = conns
        .windows(2)
        .filter(|w| match (w[0].1.tsval, w[1].1.tsval) {
            (Some(a), Some(b)) => (a.wrapping_sub(b) as i32) > 0,
            _ => false,
        })
        .count();
    let ok = results.iter().filter(|a| a.ok).count();
    let late = results.iter().filter(|a| a.late).count();
    let failed_by = |k: u8| results.iter().filter(|a| a.client == k && !a.ok).count();
    let (failed1, failed2) = (failed_by(1), failed_by(2));
    let total = 2 * PER_CLIENT;
    ctx.fact(
        format!(
            "NAT: {from_nat} of {} connections in the capture came from {nat_ip} ({} and {} masqueraded); \
             {backwards} first SYNs carried a TSval older than the connection's before",
            conns.len(),
            clients[0],
            clients[1]
        ),
        from_nat == conns.len() && conns.len() == total && backwards >= 3,
    );
    if control {
        ctx.fact(
            format!(
                "relay forwarded everything ({} frames, {} dropped): {ok} of {total} requests answered, \
                 {accepted} accepted, {unanswered} connections unanswered",
                stats.forwarded, stats.dropped
            ),
            ok == total && stats.dropped == 0 && unanswered == 0 && late == 0,
        );
    } else {
        let dropped = stats.paws_connections as usize;
        ctx.fact(
            format!(
                "relay (PAWS check) dropped {} SYNs; {dropped} connections never got through (first SYN up to {} \
                 ticks behind), {late} got through on the retransmitted SYN; clients failed {failed1} + {failed2} of \
                 {total}; the capture shows {unanswered} connections unanswered ({syns} SYNs in all)",
                stats.paws_syns, stats.paws_max_backwards
            ),
            dropped >= 1 && dropped == unanswered && dropped == failed1 + failed2 && ok + dropped == total,
        );
    }
    ctx.expect_subject(Src::Capture, nat_ip.to_string());
    ctx.expect(Src::Capture, "count", stats.paws_connections as f64, "count", Tol::Abs(1.0));
    ctx.expect(Src::Capture, "max_tsval_backwards", f64::from(stats.paws_max_backwards), "ticks", Tol::Abs(20.0));
    Ok(())
}

/// Rounds of simultaneous connects in snat-port-collision: each round both clients connect
/// from the same source port (a new one each round) at the same instant.
const SNAT_ROUNDS: u16 = 200;
/// The source port of round 0 (round r uses `SNAT_BASE_PORT + r`).
const SNAT_BASE_PORT: u16 = 20000;
/// How long a client waits at the round barrier for the other before giving up on the run.
const BARRIER_WAIT: Duration = Duration::from_millis(500);
/// A connect that took longer than this was answered only on a retransmitted SYN (the first
/// SYN's round trip inside one machine is well under a millisecond; the retry comes after 1 s).
const LATE_CONNECT: Duration = Duration::from_millis(500);

/// Two threads meeting once per round: each spins until the other has arrived, so both leave
/// within a few hundred nanoseconds of each other (a futex barrier would add tens of µs of
/// wake-up skew).
struct SpinBarrier {
    arrived: std::sync::atomic::AtomicU64,
    /// Set when one side gave up: the other stops waiting at once.
    broken: AtomicBool,
}

impl SpinBarrier {
    /// Waits for round `r` (0-based); false when the other side did not come in time.
    fn wait(&self, r: u64) -> bool {
        let want = 2 * (r + 1);
        self.arrived.fetch_add(1, Ordering::AcqRel);
        let until = Instant::now() + BARRIER_WAIT;
        let mut spins = 0u32;
        while self.arrived.load(Ordering::Acquire) < want {
            if self.broken.load(Ordering::Relaxed) {
                return false;
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins & 4095 == 0 && Instant::now() > until {
                self.broken.store(true, Ordering::Relaxed);
                return false;
            }
        }
        true
    }
}

/// Pins the calling thread to one CPU.
fn pin_to_cpu(cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity (pid 0 = this
    // thread) only read and write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| format!("pin a lab thread to CPU {cpu}"));
        }
    }
    Ok(())
}

/// What one client thread of snat-port-collision saw.
#[derive(Debug, Default, Clone, Copy)]
struct RoundStats {
    /// Connects started.
    started: usize,
    /// Connections established.
    ok: usize,
    /// Established only after LATE_CONNECT (on a retransmitted SYN).
    late: usize,
    /// Failed (refused, or not established by the deadline).
    failed: usize,
    /// The slowest connect that succeeded.
    slowest: Duration,
}

/// A connect in flight: the socket and when it started.
struct Pending {
    sock: socket2::Socket,
    at: Instant,
}

/// Polls the pending connects once (waiting at most `wait_ms`), closes the ones that finished
/// and counts them.
fn reap(pending: &mut Vec<Pending>, st: &mut RoundStats, wait_ms: i32) {
    use std::os::fd::AsRawFd;
    if pending.is_empty() {
        return;
    }
    let mut fds: Vec<libc::pollfd> =
        pending.iter().map(|p| libc::pollfd { fd: p.sock.as_raw_fd(), events: libc::POLLOUT, revents: 0 }).collect();
    // SAFETY: fds is a valid array of pollfd of the given length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
    if n <= 0 {
        return;
    }
    let mut keep = Vec::with_capacity(pending.len());
    for (p, fd) in pending.drain(..).zip(fds) {
        if fd.revents == 0 {
            keep.push(p);
            continue;
        }
        let took = p.at.elapsed();
        match p.sock.take_error() {
            Ok(None) => {
                st.ok += 1;
                st.slowest = st.slowest.max(took);
                if took > LATE_CONNECT {
                    st.late += 1;
                }
            }
            _ => st.failed += 1,
        }
        // Dropping the socket closes it: the client closes first, the server sees EOF.
    }
    *pending = keep;
}

/// One client of snat-port-collision: pinned to `cpu`, `rounds` connects from `ip` to `to`,
/// round r from source port `SNAT_BASE_PORT + r`, each started right after the barrier.
fn snat_client(
    cpu: usize,
    ip: Ipv4Addr,
    to: SocketAddrV4,
    rounds: u16,
    barrier: &SpinBarrier,
    deadline: Instant,
) -> Result<RoundStats> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    pin_to_cpu(cpu)?;
    let mut st = RoundStats::default();
    let mut pending: Vec<Pending> = Vec::new();
    for r in 0..rounds {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        s.set_nonblocking(true)?;
        s.bind(&SockAddr::from(SocketAddrV4::new(ip, SNAT_BASE_PORT + r)))
            .with_context(|| format!("bind {ip}:{}", SNAT_BASE_PORT + r))?;
        if !barrier.wait(u64::from(r)) {
            break;
        }
        let at = Instant::now();
        match s.connect(&SockAddr::from(to)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e).context("connect"),
        }
        st.started += 1;
        pending.push(Pending { sock: s, at });
        reap(&mut pending, &mut st, 0);
        // Leave the CPU to the server and capture threads between rounds.
        std::thread::sleep(Duration::from_micros(200));
    }
    // A SYN lost to the race is retransmitted after 1 s: wait for those.
    while !pending.is_empty() && Instant::now() < deadline {
        reap(&mut pending, &mut st, 10);
    }
    st.failed += pending.len();
    Ok(st)
}

/// Accepts connections on `l` until `stop`, closing each once the client has closed.
fn snat_server(l: std::net::TcpListener, stop: &AtomicBool, deadline: Instant) -> usize {
    let _ = l.set_nonblocking(true);
    let mut held: Vec<std::net::TcpStream> = Vec::new();
    let mut accepted = 0;
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let mut idle = true;
        while let Ok((c, _)) = l.accept() {
            let _ = c.set_nonblocking(true);
            held.push(c);
            accepted += 1;
            idle = false;
        }
        // Keep a connection until its client's FIN (read returns 0), then close it.
        held.retain_mut(|c| matches!(c.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock));
        if idle {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    accepted
}

/// Two client namespaces behind one NAT namespace that masquerades both to one address with
/// iptables (`-j MASQUERADE`, no `--random-fully`), and a server namespace. Each round, two
/// threads pinned to CPU 0 and CPU 1, one per client namespace, leave a spin barrier together
/// and connect to the server from the same source port. MASQUERADE keeps a source port that no
/// confirmed connection uses yet, so both SYNs are translated to the same NAT address and
/// port; the kernel confirms a new connection's conntrack entry only at the end of
/// POSTROUTING, and the second to get there finds the first's reply tuple taken: insert_failed
/// and drop grow, the SYN is dropped, and the client retransmits it after 1 s (then NAT picks
/// another port). The capture is taken on the NAT namespace's inside bridge, where the SYNs
/// of both clients and their retransmissions are seen before translation.
///
/// Control: the same rounds with `-j MASQUERADE --random-fully`: every connection gets a
/// random port, no two collide (a repeat of one random port among the 2 × 200 in the same
/// instant has odds of about 1 in 320), no insert fails.
pub fn snat_port_collision(ctx: &mut Ctx<'_>) -> Result<()> {
    let control = ctx.control;
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if cpus < 2 {
        anyhow::bail!(
            "snat-port-collision needs two CPUs (the insert race is between two CPUs); this machine has {cpus}"
        );
    }
    let NatLan { clients, c1, c2, n, nat_ip, s_ip } = nat_lan(ctx)?;
    let s = ctx.netns("s")?;
    ctx.link(&n, "o0", &s, "eth0")?;
    ctx.addr_len(&n, "o0", nat_ip, 25)?;
    ctx.addr_len(&s, "eth0", s_ip, 25)?;
    let mut rule = vec!["-t", "nat", "-A", "POSTROUTING", "-o", "o0", "-j", "MASQUERADE"];
    if control {
        rule.push("--random-fully");
    }
    ns::exec(&n, "iptables", &rule)?;
    ctx.describe(format!("{n}: iptables {}", rule.join(" ")));
    ctx.describe(format!(
        "{SNAT_ROUNDS} rounds: {} (CPU 0) and {} (CPU 1) connect to {s_ip}:{PORT} at once from one source port, \
         {SNAT_BASE_PORT}+round",
        clients[0], clients[1]
    ));
    let before = ns::conntrack_stats(&n)?;

    let to = SocketAddrV4::new(s_ip, PORT);
    let l = listen(&s, to, 4096)?;
    ctx.capture(&n, Some("br0"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + ctx.left().saturating_sub(Duration::from_secs(8)).min(Duration::from_secs(15));
    let server = {
        let stop = stop.clone();
        ns::spawn(&s, move || Ok(snat_server(l, &stop, deadline)))
    };
    let barrier =
        Arc::new(SpinBarrier { arrived: std::sync::atomic::AtomicU64::new(0), broken: AtomicBool::new(false) });
    let threads: Vec<_> = [(&c1, clients[0], 0usize), (&c2, clients[1], 1usize)]
        .into_iter()
        .map(|(c, ip, cpu)| {
            let b = barrier.clone();
            ns::spawn(c, move || snat_client(cpu, ip, to, SNAT_ROUNDS, &b, deadline))
        })
        .collect();
    let mut stats = Vec::new();
    for t in threads {
        stats.push(ns::join(t)?);
    }
    // The server sees the last clients' FINs shortly after they close.
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let accepted = ns::join(server)?;
    let frames = ctx.stop_capture()?;
    let after = ns::conntrack_stats(&n)?;
    let delta = |k: &str| after.get(k).copied().unwrap_or(0).saturating_sub(before.get(k).copied().unwrap_or(0));
    let (insert_failed, drop) = (delta("insert_failed"), delta("drop"));

    // The capture, inside the NAT: connections by (client, port), SYNs sent and answered.
    let conns = snat_connections(frames, s_ip, &clients);
    let retried: Vec<&SeenConn> = conns.values().filter(|c| c.syns >= 2).collect();
    let lost_syns: usize = conns.values().map(|c| if c.answered { c.syns - 1 } else { c.syns }).sum();
    let unanswered = conns.values().filter(|c| !c.answered).count();
    let same_port_pairs =
        (0..SNAT_ROUNDS).filter(|r| clients.iter().all(|ip| conns.contains_key(&(*ip, SNAT_BASE_PORT + r)))).count();
    let started: usize = stats.iter().map(|s| s.started).sum();
    let ok: usize = stats.iter().map(|s| s.ok).sum();
    let late: usize = stats.iter().map(|s| s.late).sum();
    let failed: usize = stats.iter().map(|s| s.failed).sum();
    let slowest = stats.iter().map(|s| s.slowest).max().unwrap_or_default();
    let total = 2 * usize::from(SNAT_ROUNDS);
    ctx.fact(
        format!(
            "{started} connects in {SNAT_ROUNDS} rounds; the capture inside the NAT shows {} connections, {same_port_pairs} \
             rounds with both clients on one source port; {ok} established ({late} only after 1 s, slowest {} ms), \
             {failed} failed; the server accepted {accepted}",
            conns.len(),
            slowest.as_millis()
        ),
        started == total && ok == total && conns.len() == total && same_port_pairs == usize::from(SNAT_ROUNDS),
    );
    let ct_line = format!(
        "conntrack in {n}: insert_failed +{insert_failed}, drop +{drop} (before {} / {}); the capture shows {} \
         connections whose SYN was retransmitted ({lost_syns} SYNs lost, {unanswered} never answered)",
        before.get("insert_failed").copied().unwrap_or(0),
        before.get("drop").copied().unwrap_or(0),
        retried.len()
    );
    if control {
        ctx.fact(ct_line, insert_failed == 0 && lost_syns == 0 && late == 0);
    } else {
        ctx.fact(
            ct_line,
            insert_failed >= 1 && drop >= insert_failed && lost_syns as u64 == insert_failed && late >= 1,
        );
    }
    ctx.snapshot(&n);
    let src = Src::Netns(n.clone());
    ctx.expect_subject(src.clone(), "POSTROUTING");
    ctx.expect(src, "insert_failed", insert_failed as f64, "count", Tol::Abs(0.0));
    Ok(())
}

/// The connections from `clients` to `server`:PORT in `frames`, by (client, source port):
/// SYNs sent and whether a SYN/ACK came back.
fn snat_connections(
    frames: &[crate::capture::Frame],
    server: Ipv4Addr,
    clients: &[Ipv4Addr],
) -> BTreeMap<(Ipv4Addr, u16), SeenConn> {
    let mut by: BTreeMap<(Ipv4Addr, u16), SeenConn> = BTreeMap::new();
    let mut synacks: HashSet<(Ipv4Addr, u16)> = HashSet::new();
    for (ts, src, dst, t) in pkt::tcp_segments(frames) {
        let syn = t.flags & (flags::SYN | flags::ACK);
        if dst == server && t.dport == PORT && syn == flags::SYN && clients.contains(&src) {
            by.entry((src, t.sport))
                .or_insert(SeenConn { first_ts_ns: ts, tsval: t.tsval, syns: 0, answered: false })
                .syns += 1;
        } else if src == server && t.sport == PORT && syn == flags::SYN | flags::ACK {
            synacks.insert((dst, t.dport));
        }
    }
    for (k, c) in &mut by {
        c.answered = synacks.contains(k);
    }
    by
}
