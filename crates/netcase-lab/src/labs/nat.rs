//! Labs about clients behind a NAT: several client kernels masqueraded to one address.

use crate::apps::{accept_timeout, connect, listen, read_head, read_response, send_get, send_response};
use crate::ns;
use crate::pkt::{self, flags};
use crate::relay::{DropRule, Relay, RelayCfg};
use crate::{Ctx, Src, Tol};
use anyhow::Result;
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
    // The run's /24 split in two: outside (NAT address, server) and inside (clients).
    let (nat_ip, s_ip, gw_ip) = (ctx.ip(1), ctx.ip(2), ctx.ip(254));
    let clients = [ctx.ip(129), ctx.ip(130)];
    let c1 = ctx.netns("c1")?;
    let c2 = ctx.netns("c2")?;
    let n = ctx.netns("nat")?;
    let m = ctx.netns("m")?;
    let s = ctx.netns("s")?;
    ns::ip(&["-n", &n, "link", "add", "br0", "type", "bridge"])?;
    ns::ip(&["-n", &n, "link", "set", "br0", "up"])?;
    for (c, port, ip) in [(&c1, "i1", clients[0]), (&c2, "i2", clients[1])] {
        ctx.link(c, "eth0", &n, port)?;
        ns::ip(&["-n", &n, "link", "set", port, "master", "br0"])?;
        ctx.addr_len(c, "eth0", ip, 25)?;
        ns::ip(&["-n", c, "route", "add", "default", "via", &gw_ip.to_string()])?;
    }
    ctx.addr_len(&n, "br0", gw_ip, 25)?;
    ctx.link(&n, "o0", &m, "c0")?;
    ctx.link(&m, "s0", &s, "eth0")?;
    ctx.addr_len(&n, "o0", nat_ip, 25)?;
    ctx.addr_len(&s, "eth0", s_ip, 25)?;
    ns::sysctl(&n, "net.ipv4.ip_forward", "1")?;
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
