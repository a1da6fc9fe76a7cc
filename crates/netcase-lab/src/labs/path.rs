//! Labs about what the path does to a bulk transfer: a link with a smaller MTU whose ICMP
//! fragmentation-needed is dropped (a PMTU black hole), and a receiver whose small receive
//! buffer caps the rate at window / RTT (through the delay relay).

use crate::apps::{connect, connect_with, listen};
use crate::ns;
use crate::pkt::{self, flags};
use crate::relay::RelayCfg;
use crate::topo::{serve_one, End, TcpLab};
use crate::{Ctx, Src, Tol};
use anyhow::Result;
use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PORT: u16 = 8080;

/// Reads from `s` until `want` bytes came, the peer closed, or `wait` passed. Returns the bytes
/// read and when the first and the last of them came.
fn read_for(s: &mut std::net::TcpStream, want: usize, wait: Duration) -> (usize, Option<Instant>, Option<Instant>) {
    let end = Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    let (mut got, mut first, mut last) = (0, None, None);
    while got < want {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                first.get_or_insert_with(Instant::now);
                last = Some(Instant::now());
                got += n;
            }
        }
    }
    (got, first, last)
}

/// The MTU of the link in the middle of the path.
const PATH_MTU: u16 = 1400;

/// A path MTU black hole. Four namespaces in a row, client `c` — router `r1` — router `r2` —
/// server `s`; the r1–r2 link (a tunnel, say) has MTU 1400, every other interface 1500, so
/// both ends offer MSS 1460. The client sends a small request; the server answers with a
/// 100-byte header, then 256 KiB of body in full-size segments (1448 bytes of payload with
/// timestamps: 1500-byte packets with DF). r2 cannot forward them onto the 1400 link and sends
/// ICMP fragmentation-needed (MTU 1400) back to the server, but an iptables rule in r2's OUTPUT
/// chain drops it: the header arrives, the body never does, and the server resends its first
/// full-size segment on every timeout while the client's small packets still reach it. The
/// client gives up after 2.5 s. The capture is at the server's `eth0`, where the resends are.
/// Control: no DROP rule: the ICMP reaches the server, which resends at 1348 bytes at once and
/// the body arrives.
pub fn pmtu_blackhole(ctx: &mut Ctx<'_>) -> Result<()> {
    const HEADER: usize = 100;
    const BODY: usize = 256 * 1024;
    const CLIENT_WAIT: Duration = Duration::from_millis(2500);
    let control = ctx.control;
    // The run's /24 in three /26s: c–r1, r1–r2, r2–s.
    let (c_ip, r1_c) = (ctx.ip(1), ctx.ip(62));
    let (r1_t, r2_t) = (ctx.ip(65), ctx.ip(66));
    let (r2_s, s_ip) = (ctx.ip(129), ctx.ip(130));
    let net = |ip: std::net::Ipv4Addr| {
        let o = ip.octets();
        format!("{}.{}.{}.{}/26", o[0], o[1], o[2], o[3] & 0xc0)
    };
    let c = ctx.netns("c")?;
    let r1 = ctx.netns("r1")?;
    let r2 = ctx.netns("r2")?;
    let s = ctx.netns("s")?;
    ctx.link(&c, "eth0", &r1, "c0")?;
    ctx.link(&r1, "t0", &r2, "t0")?;
    ctx.link(&r2, "s0", &s, "eth0")?;
    for n in [&r1, &r2] {
        ns::ip(&["-n", n, "link", "set", "t0", "mtu", &PATH_MTU.to_string()])?;
    }
    ctx.describe(format!("{r1}:t0 <-> {r2}:t0 MTU {PATH_MTU} (every other interface 1500)"));
    ctx.addr_len(&c, "eth0", c_ip, 26)?;
    ctx.addr_len(&r1, "c0", r1_c, 26)?;
    ctx.addr_len(&r1, "t0", r1_t, 26)?;
    ctx.addr_len(&r2, "t0", r2_t, 26)?;
    ctx.addr_len(&r2, "s0", r2_s, 26)?;
    ctx.addr_len(&s, "eth0", s_ip, 26)?;
    ns::ip(&["-n", &c, "route", "add", "default", "via", &r1_c.to_string()])?;
    ns::ip(&["-n", &s, "route", "add", "default", "via", &r2_s.to_string()])?;
    ns::ip(&["-n", &r1, "route", "add", &net(s_ip), "via", &r2_t.to_string()])?;
    ns::ip(&["-n", &r2, "route", "add", &net(c_ip), "via", &r1_t.to_string()])?;
    for n in [&r1, &r2] {
        ns::sysctl(n, "net.ipv4.ip_forward", "1")?;
    }
    if !control {
        ns::exec(
            &r2,
            "iptables",
            &["-A", "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP"],
        )?;
        ctx.describe(format!("{r2}: iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP"));
    }
    let to = SocketAddrV4::new(s_ip, PORT);
    let l = listen(&s, to, 4)?;
    ctx.capture(&s, Some("eth0"))?;
    // The server's socket, for the main thread to shut down once the client has given up (its
    // writes block on a full send buffer that nothing acknowledges).
    let held: Arc<Mutex<Option<TcpStream>>> = Arc::default();
    let slot = Arc::clone(&held);
    let server = serve_one(l, move |mut s| {
        if let Ok(mut h) = slot.lock() {
            *h = s.try_clone().ok();
        }
        let mut req = [0u8; 16];
        s.read_exact(&mut req)?;
        s.write_all(&[b'h'; HEADER])?;
        // The header goes out (and is acknowledged) on its own, as a response head would.
        std::thread::sleep(Duration::from_millis(100));
        s.set_write_timeout(Some(Duration::from_secs(5)))?;
        let chunk = vec![b'b'; 16384];
        let mut sent = 0;
        while sent < BODY {
            if s.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        Ok(sent)
    });
    let mut cs = connect(&c, to, Duration::from_secs(2))?;
    cs.write_all(b"GET /body HTTP/1")?;
    let (got, _, _) = read_for(&mut cs, HEADER + BODY, CLIENT_WAIT);
    drop(cs);
    if let Some(h) = held.lock().ok().and_then(|mut h| h.take()) {
        let _ = h.shutdown(std::net::Shutdown::Both);
    }
    let _ = ns::join(server);
    let frames = ctx.stop_capture()?;
    let icmp: Vec<u16> = frames.iter().filter_map(|f| pkt::icmp_frag_needed_mtu(&f.data)).collect();
    let segs = pkt::tcp_segments(frames);
    // Data segments from the server too big for the path (above 1400 - 40 bytes of headers):
    // how often each sequence number was sent at the largest such size.
    let data = || segs.iter().filter(|(_, _, _, t)| t.sport == PORT && t.len > usize::from(PATH_MTU) - 40);
    let big = data().map(|(_, _, _, t)| t.len).max().unwrap_or(0);
    let mut sends: std::collections::BTreeMap<u32, usize> = std::collections::BTreeMap::new();
    for (_, _, _, t) in data().filter(|(_, _, _, t)| t.len == big) {
        *sends.entry(t.seq).or_default() += 1;
    }
    let stuck = sends.values().filter(|n| **n >= 3).count();
    let resends = sends.values().map(|n| n - 1).max().unwrap_or(0);
    let dropped = icmp_drops(&r2);
    if control {
        ctx.fact(
            format!(
                "PMTU discovery works: {} ICMP fragmentation-needed (MTU {:?}) reached the server; the client got {got} of {} bytes",
                icmp.len(),
                icmp.first(),
                HEADER + BODY
            ),
            got == HEADER + BODY && icmp.contains(&PATH_MTU) && stuck == 0,
        );
    } else {
        ctx.fact(
            format!(
                "black hole: r2 dropped {dropped} ICMP fragmentation-needed, none reached the server; the client got {got} of {} bytes in {} s; the server sent its first {big}-byte segment {} times",
                HEADER + BODY,
                CLIENT_WAIT.as_secs_f64(),
                resends + 1
            ),
            got == HEADER && dropped >= 1 && icmp.is_empty() && stuck >= 1 && resends >= 2,
        );
    }
    ctx.expect(Src::Capture, "segment_bytes", big as f64, "bytes", Tol::Abs(0.0));
    ctx.expect(Src::Capture, "largest_delivered_bytes", HEADER as f64, "bytes", Tol::Abs(0.0));
    ctx.expect(Src::Capture, "resends", resends as f64, "count", Tol::Abs(0.0));
    ctx.expect(Src::Capture, "hung_connections", 1.0, "count", Tol::Abs(0.0));
    Ok(())
}

/// Packets the DROP rule in `ns`'s OUTPUT chain matched (0 when unreadable).
fn icmp_drops(ns_name: &str) -> u64 {
    let out = ns::exec(ns_name, "iptables", &["-L", "OUTPUT", "-v", "-x", "-n"]).unwrap_or_default();
    out.lines()
        .filter(|l| l.contains("DROP") && l.contains("icmp"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// A receiver with a small receive buffer. Client `c` and server `s` through the delay relay
/// (20 ms each way: RTT 40 ms); the client sets SO_RCVBUF to 16 KiB before connecting (the
/// kernel doubles it and turns autotuning off for the socket), so its window stays near
/// 16 KiB and the server's 1 MiB arrives at about window / RTT (2.3 s). The capture is at the
/// server's `eth0`, where the segments that fill the window are sent (tshark's `window_full`).
/// Control: default buffers (autotuning), the same 1 MiB (0.3 s).
pub fn receive_window_limited(ctx: &mut Ctx<'_>) -> Result<()> {
    const TOTAL: usize = 1024 * 1024;
    const RCVBUF: usize = 16 * 1024;
    const RTT_MS: f64 = 40.0;
    let control = ctx.control;
    let (TcpLab { p, to, l }, relay) = ctx
        .tcp_lab(PORT)
        .capture_at(End::Server)
        .build_relayed(RelayCfg { delay: Duration::from_millis(20), drops: vec![] })?;
    let server = serve_one(l, |mut s| {
        s.set_write_timeout(Some(Duration::from_secs(12)))?;
        let chunk = vec![b'd'; 65536];
        for _ in 0..TOTAL / chunk.len() {
            s.write_all(&chunk)?;
        }
        Ok(())
    });
    let mut s =
        connect_with(
            &p.c,
            to,
            Duration::from_secs(3),
            move |s| {
                if control {
                    Ok(())
                } else {
                    s.set_recv_buffer_size(RCVBUF)
                }
            },
        )?;
    let (got, first, last) = read_for(&mut s, TOTAL, Duration::from_secs(15));
    let secs = match (first, last) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    let rate = if secs > 0.0 { got as f64 / secs } else { 0.0 };
    drop(s);
    let _ = ns::join(server);
    let frames = ctx.stop_capture()?;
    let stats = relay.stop();
    // The client's advertised window (scaled by the shift its SYN offered) on its ACKs.
    let segs = pkt::tcp_segments(frames);
    let shift = segs
        .iter()
        .find(|(_, _, _, t)| t.dport == PORT && t.flags & (flags::SYN | flags::ACK) == flags::SYN)
        .and_then(|(_, _, _, t)| t.wscale_shift)
        .unwrap_or(0);
    let mut wins: Vec<u64> = segs
        .iter()
        .filter(|(_, _, _, t)| t.dport == PORT && t.flags & (flags::SYN | flags::RST) == 0 && t.flags & flags::ACK != 0)
        .map(|(_, _, _, t)| u64::from(t.win) << shift)
        .collect();
    wins.sort_unstable();
    let win_max = wins.last().copied().unwrap_or(0) as f64;
    let cap = win_max / (RTT_MS / 1000.0);
    if control {
        ctx.fact(
            format!(
                "default buffers: {got} bytes at {:.2} MB/s, window up to {win_max:.0} bytes; relay forwarded {}",
                rate / 1e6,
                stats.forwarded
            ),
            got == TOTAL && win_max > 4.0 * RCVBUF as f64,
        );
    } else {
        ctx.fact(
            format!(
                "SO_RCVBUF {RCVBUF}: window at most {win_max:.0} bytes; {got} bytes at {:.0} KB/s vs cap {win_max:.0} B / {RTT_MS} ms = {:.0} KB/s",
                rate / 1e3,
                cap / 1e3
            ),
            got == TOTAL && win_max <= 2.0 * RCVBUF as f64 && rate < 1.15 * cap && rate > 0.6 * cap,
        );
    }
    ctx.expect(Src::Capture, "window_max_bytes", win_max, "bytes", Tol::Abs(0.0));
    ctx.expect(Src::Capture, "rtt_ms", RTT_MS, "ms", Tol::Abs(5.0));
    ctx.expect(Src::Capture, "cap_bytes_per_s", cap, "bytes/s", Tol::Rel(0.1));
    ctx.expect(Src::Capture, "throughput_bytes_per_s", rate, "bytes/s", Tol::Rel(0.15));
    Ok(())
}
