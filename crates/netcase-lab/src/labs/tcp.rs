//! Labs about the TCP connection lifecycle and listener queues, on a plain veth pair.

use crate::apps::{
    self, accept_timeout, connect, connect_with, listen, read_head, read_response, send_get, send_response,
};
use crate::ns::{self, TcpState};
use crate::pkt::{self, flags};
use crate::topo::{clients, join_ok, serve_each, serve_one, End, TcpLab, ACCEPT_WAIT};
use crate::{Ctx, Src, Tol};
use anyhow::Result;
use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

const PORT: u16 = 8080;

/// The errno behind an error, when it is an I/O error.
pub(crate) fn errno(e: &anyhow::Error) -> Option<i32> {
    e.chain().find_map(|c| c.downcast_ref::<std::io::Error>()).and_then(std::io::Error::raw_os_error)
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// SYN answered by RST,ACK: nothing listens on the port (the control listens).
pub fn port_unreachable(ctx: &mut Ctx<'_>) -> Result<()> {
    let p = ctx.pair()?;
    let to = SocketAddrV4::new(p.s_ip, PORT);
    let server = if ctx.control {
        let l = listen(&p.s, to, 16)?;
        Some(serve_each(l, 5, |mut s| {
            let mut b = [0u8; 16];
            let _ = s.read(&mut b);
        }))
    } else {
        None
    };
    ctx.capture(&p.c, Some("eth0"))?;
    let (mut refused, mut ok) = (0, 0);
    for _ in 0..5 {
        match connect(&p.c, to, Duration::from_secs(1)) {
            Ok(s) => {
                ok += 1;
                drop(s);
            }
            Err(e) if errno(&e) == Some(libc::ECONNREFUSED) => refused += 1,
            Err(_) => {}
        }
    }
    if let Some(h) = server {
        let _ = h.join();
    }
    let frames = ctx.stop_capture()?;
    // Refusals: SYNs answered by RST without a SYN/ACK (a RST closing an accepted connection
    // under load is not this case).
    let rsts = pkt::refused_connections(frames, PORT);
    if ctx.control {
        ctx.fact(format!("{ok} of 5 connects to {to} accepted, {rsts} refused by RST"), ok == 5 && rsts == 0);
    } else {
        ctx.fact(
            format!("{refused} of 5 connects to {to} refused; capture shows {rsts} RST,ACK"),
            refused == 5 && rsts == 5,
        );
    }
    ctx.expect(Src::Capture, "refused_connections", 5.0, "count", Tol::Abs(0.0));
    Ok(())
}

/// The server aborts with SO_LINGER 0 while data is still unsent (control: normal close).
pub fn linger_zero_rst(ctx: &mut Ctx<'_>) -> Result<()> {
    const N: usize = 5;
    let control = ctx.control;
    let TcpLab { p, to, l } = ctx.tcp_lab(PORT).listen_opts(|s| s.set_send_buffer_size(32 * 1024)).build()?;
    let server = serve_each(l, N, move |mut s| {
        let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
        let chunk = [b'x'; 4096];
        let mut written = 0usize;
        for _ in 0..64 {
            match s.write(&chunk) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        if !control {
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        }
        drop(s);
        written
    });
    let clients = clients(&p.c, N, move |c| {
        let mut s = connect_with(c, to, Duration::from_secs(2), |s| s.set_recv_buffer_size(4096))?;
        std::thread::sleep(Duration::from_millis(500));
        let mut got = 0usize;
        let mut buf = [0u8; 8192];
        let mut reset = false;
        for _ in 0..10_000 {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => {
                    reset = e.raw_os_error() == Some(libc::ECONNRESET);
                    break;
                }
            }
        }
        Ok((got, reset))
    });
    let results: Vec<(usize, bool)> = join_ok(clients);
    let written = server.join().unwrap_or_default();
    let frames = ctx.stop_capture()?;
    let rsts = pkt::reset_connections(frames, PORT, false);
    // Connections the server closed with a FIN (a FIN retransmitted under load counts once).
    let fins = pkt::tcp_segments(frames)
        .iter()
        .filter(|(_, _, _, t)| t.sport == PORT && t.flags & flags::FIN != 0)
        .map(|(_, _, _, t)| t.dport)
        .collect::<std::collections::HashSet<u16>>()
        .len();
    let sent: usize = written.iter().sum();
    let got: usize = results.iter().map(|r| r.0).sum();
    let resets = results.iter().filter(|r| r.1).count();
    if ctx.control {
        ctx.fact(
            format!("{} connections closed with FIN, {got} of {sent} bytes delivered, {rsts} RST", fins),
            fins == N && got == sent && rsts == 0,
        );
    } else {
        ctx.fact(
            format!(
                "{rsts} connections aborted by the server with RST (no FIN: {fins}); {resets} clients saw ECONNRESET; \
                 {got} of {sent} bytes written were delivered, {} discarded",
                sent.saturating_sub(got)
            ),
            rsts == N && fins == 0 && got < sent,
        );
    }
    ctx.expect(Src::Capture, "aborted_connections", N as f64, "count", Tol::Abs(0.0));
    Ok(())
}

/// Keep-alive probes of a client socket in a connection's sender-side sequence space: a
/// zero-length segment one below what the client already sent (`snd_una - 1`), no SYN/FIN/RST.
/// Returns the timestamps (ns) of the client's probes.
fn keepalive_probes(frames: &[crate::capture::Frame], server_port: u16) -> Vec<u64> {
    let mut next: Option<u32> = None;
    let mut probes = Vec::new();
    for (ts, _, _, t) in pkt::tcp_segments(frames) {
        if t.dport != server_port {
            continue;
        }
        let ctl = u32::from(t.flags & (flags::SYN | flags::FIN) != 0);
        if t.len == 0 && ctl == 0 && t.flags & flags::RST == 0 && next.is_some_and(|n| t.seq == n.wrapping_sub(1)) {
            probes.push(ts);
            continue;
        }
        let end = t.seq.wrapping_add(t.len as u32).wrapping_add(ctl);
        if next.is_none_or(|n| (end.wrapping_sub(n) as i32) > 0) {
            next = Some(end);
        }
    }
    probes
}

/// One connection goes idle for 4.5 s; the client set SO_KEEPALIVE with TCP_KEEPIDLE 1 s and
/// TCP_KEEPINTVL 1 s, so the capture holds a probe every second (control: no keep-alive, the
/// same idle time, no probe).
pub fn keepalive_settings(ctx: &mut Ctx<'_>) -> Result<()> {
    const PERIOD: f64 = 1.0;
    const IDLE: Duration = Duration::from_millis(4500);
    let control = ctx.control;
    let TcpLab { p, to, l } = ctx.tcp_lab(PORT).build()?;
    let server = serve_one(l, move |mut s| {
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut answered = 0;
        for _ in 0..4 {
            match read_head(&mut s) {
                Ok(h) if !h.is_empty() => {
                    send_response(&mut s, "200 OK", "Connection: keep-alive\r\n", b"ok\n")?;
                    answered += 1;
                }
                _ => break,
            }
        }
        Ok(answered)
    });
    let mut s = connect_with(&p.c, to, Duration::from_secs(2), |s| {
        if control {
            return Ok(());
        }
        s.set_keepalive(true)?;
        let period = Duration::from_secs_f64(PERIOD);
        s.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(period).with_interval(period))
    })?;
    send_get(&mut s, "db", "/first")?;
    read_response(&mut s)?;
    std::thread::sleep(IDLE);
    // The connection is still usable after the idle time (the peer is up; no middlebox here).
    send_get(&mut s, "db", "/second")?;
    read_response(&mut s)?;
    drop(s);
    let answered = ns::join(server)?;
    let frames = ctx.stop_capture()?;
    let probes = keepalive_probes(frames, PORT);
    let mut gaps: Vec<f64> = probes.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9).collect();
    gaps.sort_by(f64::total_cmp);
    let period = gaps.get(gaps.len() / 2).copied();
    let idle = IDLE.as_secs_f64();
    if control {
        ctx.fact(
            format!(
                "no keep-alive: the connection idled {idle} s with {} probes; {answered} of 2 requests answered",
                probes.len()
            ),
            probes.is_empty() && answered == 2,
        );
    } else {
        ctx.fact(
            format!(
                "SO_KEEPALIVE, TCP_KEEPIDLE {PERIOD} s, TCP_KEEPINTVL {PERIOD} s: {} probes in {idle} s idle, {:.3} s apart \
                 (median); {answered} of 2 requests answered",
                probes.len(),
                period.unwrap_or(0.0)
            ),
            probes.len() >= 3 && period.is_some_and(|p| (p - PERIOD).abs() < 0.2) && answered == 2,
        );
    }
    ctx.expect(Src::Capture, "interval_s", PERIOD, "s", Tol::Abs(0.2));
    ctx.expect(Src::Capture, "probes", 3.0, "count", Tol::AtLeast);
    Ok(())
}

/// A client with a 2.0 s read timeout gives up on a server that answers after 4.0 s.
pub fn client_timeout_fin_wait2(ctx: &mut Ctx<'_>) -> Result<()> {
    const N: usize = 4;
    const TIMEOUT: f64 = 2.0;
    let delay = if ctx.control { 0.5 } else { 4.0 };
    let TcpLab { p, to, l } = ctx.tcp_lab(PORT).build()?;
    let server = serve_each(l, N, move |mut s| {
        if read_head(&mut s).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_secs_f64(delay));
        let _ = send_response(&mut s, "200 OK", "", b"slow answer\n");
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut b = [0u8; 256];
        let _ = s.read(&mut b);
    });
    let t0 = Instant::now();
    let clients = clients(&p.c, N, move |c| {
        let mut s = connect(c, to, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs_f64(TIMEOUT)))?;
        send_get(&mut s, "backend", "/slow")?;
        match read_response(&mut s) {
            Ok(_) => Ok(false),
            Err(e) if is_timeout(&e) => Ok(true), // give up; dropping the socket sends FIN
            Err(e) => Err(e.into()),
        }
    });
    std::thread::sleep(Duration::from_secs_f64(TIMEOUT + 0.4).saturating_sub(t0.elapsed()));
    let fw2 = ns::count_state(&p.c, TcpState::FinWait2, 0)?;
    let cw = ns::count_state(&p.s, TcpState::CloseWait, PORT)?;
    ctx.snapshot(&p.c);
    let timed_out = join_ok(clients).into_iter().filter(|t| *t).count();
    server.join().ok();
    let frames = ctx.stop_capture()?;
    let rsts = pkt::reset_connections(frames, PORT, true);
    if ctx.control {
        ctx.fact(
            format!("answers after {delay} s, within the {TIMEOUT} s timeout; FIN_WAIT2 {fw2}, RST {rsts}"),
            fw2 == 0 && rsts == 0 && timed_out == 0,
        );
    } else {
        ctx.fact(
            format!(
                "{timed_out} of {N} clients gave up after {TIMEOUT} s: {fw2} FIN_WAIT2 on the client, {cw} CLOSE_WAIT on the server; \
                 the answers after {delay} s drew {rsts} RST"
            ),
            fw2 == N && cw == N && rsts == N && timed_out == N,
        );
    }
    ctx.expect(Src::Capture, "timeout_s", TIMEOUT, "s", Tol::Abs(0.2));
    ctx.expect(Src::Capture, "late_response_delay_s", 4.0, "s", Tol::Abs(0.3));
    ctx.expect(Src::Capture, "connections", N as f64, "count", Tol::Abs(0.0));
    ctx.expect(p.src(End::Client), "count", N as f64, "count", Tol::Abs(0.0));
    Ok(())
}

/// The backend closes idle keep-alive connections after 1.0 s; the client reuses them after
/// 1.3 s (control: after 0.5 s) and its requests are answered by RST.
pub fn keepalive_race_502(ctx: &mut Ctx<'_>) -> Result<()> {
    const N: usize = 5;
    const IDLE: f64 = 1.0;
    let wait = if ctx.control { 0.5 } else { 1.3 };
    let TcpLab { p, to, l } = ctx.tcp_lab(PORT).build()?;
    let server = serve_each(l, N, |mut s| {
        let _ = s.set_read_timeout(Some(Duration::from_secs_f64(IDLE)));
        for _ in 0..10 {
            match read_head(&mut s) {
                Ok(h) if !h.is_empty() => {
                    let _ = send_response(&mut s, "200 OK", "Connection: keep-alive\r\n", b"ok\n");
                }
                _ => break, // idle timeout or EOF: close
            }
        }
    });
    let clients = clients(&p.c, N, move |c| {
        let mut s = connect(c, to, Duration::from_secs(2))?;
        send_get(&mut s, "backend", "/first")?;
        read_response(&mut s)?;
        std::thread::sleep(Duration::from_secs_f64(wait));
        // A pool that does not look for the peer's FIN before reusing the connection.
        let lost = send_get(&mut s, "backend", "/second").is_err() || read_response(&mut s).is_err();
        Ok(lost)
    });
    let results: Vec<bool> = join_ok(clients);
    let _ = server.join();
    let frames = ctx.stop_capture()?;
    let lost = results.iter().filter(|l| **l).count();
    let rsts = pkt::reset_connections(frames, PORT, false);
    if ctx.control {
        ctx.fact(
            format!("{} of {N} reused connections answered; {rsts} RST", results.len() - lost),
            lost == 0 && results.len() == N && rsts == 0,
        );
    } else {
        ctx.fact(
            format!("{lost} of {N} requests sent into the backend's idle close ({IDLE} s) were lost (502); {rsts} RST from the backend"),
            lost == N && rsts == N,
        );
    }
    ctx.expect(Src::Capture, "idle_timeout_s", IDLE, "s", Tol::Abs(0.15));
    ctx.expect(Src::Capture, "requests_lost", N as f64, "count", Tol::Abs(0.0));
    Ok(())
}

/// The receiver stops reading for 2.0 s: zero window, persist probes (control: reads at once).
pub fn zero_window(ctx: &mut Ctx<'_>) -> Result<()> {
    const STALL: f64 = 2.0;
    const TOTAL: usize = 512 * 1024;
    let control = ctx.control;
    let TcpLab { p, to, l } = ctx.tcp_lab(PORT).listen_opts(|s| s.set_recv_buffer_size(8192)).build()?;
    let server = serve_one(l, move |mut s| {
        if !control {
            std::thread::sleep(Duration::from_secs_f64(STALL));
        }
        let mut got = 0;
        let mut b = [0u8; 16384];
        for _ in 0..100_000 {
            match s.read(&mut b) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        Ok(got)
    });
    let mut s = connect(&p.c, to, Duration::from_secs(2))?;
    s.set_write_timeout(Some(Duration::from_secs(8)))?;
    let chunk = vec![b'z'; 16384];
    let mut sent = 0;
    while sent < TOTAL {
        s.write_all(&chunk)?;
        sent += chunk.len();
    }
    drop(s);
    let got = ns::join(server)?;
    let frames = ctx.stop_capture()?;
    let segs = pkt::tcp_segments(frames);
    let zero: Vec<u64> = segs
        .iter()
        .filter(|(_, _, _, t)| t.sport == PORT && t.win == 0 && t.flags & flags::RST == 0)
        .map(|s| s.0)
        .collect();
    let stall = zero.first().and_then(|first| {
        segs.iter()
            .find(|(ts, _, _, t)| ts > first && t.sport == PORT && t.win > 0)
            .map(|(ts, _, _, _)| (ts - first) as f64 / 1e9)
    });
    if control {
        ctx.fact(
            format!("{got} bytes read at once; {} zero-window segments", zero.len()),
            zero.is_empty() && got == TOTAL,
        );
    } else {
        ctx.fact(
            format!(
                "receiver stopped reading for {STALL} s: {} zero-window segments, window reopened after {:.2} s; {got} bytes delivered",
                zero.len(),
                stall.unwrap_or(0.0)
            ),
            zero.len() >= 2 && stall.is_some_and(|s| (s - STALL).abs() < 0.3) && got == TOTAL,
        );
    }
    // `stall_s` is how long the sender was held by the closed window (first zero-window
    // advertisement to the reopening), what a user of the capture can act on. The reader's pause
    // (STALL) is that plus the few ms the buffer took to fill, so the fact above compares with
    // STALL loosely and the verdict compares with the zero-window time on the wire tightly.
    ctx.expect(Src::Capture, "stall_s", stall.unwrap_or(STALL), "s", Tol::Abs(0.05));
    Ok(())
}

/// The server never closes after the client's FIN: CLOSE_WAIT held by the process.
pub fn close_wait_leak(ctx: &mut Ctx<'_>) -> Result<()> {
    const N: usize = 8;
    let control = ctx.control;
    let TcpLab { p, to, l } = ctx.tcp_lab(PORT).build()?;
    let server = std::thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..N {
            let Ok((mut s, _)) = accept_timeout(&l, ACCEPT_WAIT) else { break };
            let mut b = [0u8; 64];
            for _ in 0..8 {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            if !control {
                held.push(s); // the leak: never closed
            }
        }
        held
    });
    for _ in 0..N {
        let mut s = connect(&p.c, to, Duration::from_secs(2))?;
        s.write_all(b"GET /pool HTTP/1.1\r\n\r\n")?;
    }
    let held = server.join().unwrap_or_default();
    std::thread::sleep(Duration::from_millis(300));
    let cw = ns::count_state(&p.s, TcpState::CloseWait, PORT)?;
    ctx.snapshot(&p.s);
    // Held long enough for the capture to show it (a process closes within milliseconds of
    // end-of-file; the capture rule counts a FIN left unanswered for a second or more).
    std::thread::sleep(Duration::from_millis(1200));
    drop(held);
    if control {
        ctx.fact(format!("server closed every connection; CLOSE_WAIT {cw}"), cw == 0);
    } else {
        ctx.fact(
            format!("{cw} CLOSE_WAIT sockets held open by the server process (pid {})", std::process::id()),
            cw == N,
        );
    }
    ctx.expect(p.src(End::Server), "count", N as f64, "count", Tol::Abs(0.0));
    // The capture: every client FIN acknowledged, the server's FIN only when the process let go.
    ctx.expect(Src::Capture, "count", N as f64, "count", Tol::Abs(0.0));
    Ok(())
}

/// A listener that never accepts: clients connect and leave; their sockets sit in CLOSE_WAIT
/// in the accept queue, owned by no process.
pub fn close_wait_in_accept_queue(ctx: &mut Ctx<'_>) -> Result<()> {
    const BACKLOG: i32 = 8;
    const N: usize = 9; // the queue is full at backlog + 1
    let control = ctx.control;
    let TcpLab { p, to, l } = ctx.tcp_lab(PORT).backlog(BACKLOG).build()?;
    for _ in 0..N {
        let s = connect(&p.c, to, Duration::from_secs(2))?;
        drop(s);
    }
    if control {
        for _ in 0..N {
            if let Ok((s, _)) = accept_timeout(&l, Duration::from_secs(1)) {
                drop(s);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let socks = ns::tcp_sockets(&p.s)?;
    let queue = socks.iter().find(|s| s.state == TcpState::Listen && s.local.port() == PORT).map_or(0, |s| s.rx_queue);
    let orphan_cw =
        socks.iter().filter(|s| s.state == TcpState::CloseWait && s.local.port() == PORT && s.inode == 0).count();
    ctx.snapshot(&p.s);
    if control {
        ctx.fact(
            format!("listener accepts: queue {queue}, CLOSE_WAIT without owner {orphan_cw}"),
            queue == 0 && orphan_cw == 0,
        );
    } else {
        ctx.fact(
            format!("listener backlog {BACKLOG}: accept queue {queue}, {orphan_cw} CLOSE_WAIT sockets with no owner"),
            queue == N as u32 && orphan_cw == N,
        );
    }
    drop(l);
    let s = p.src(End::Server);
    ctx.expect(s.clone(), "count", N as f64, "count", Tol::Abs(0.0));
    ctx.expect(s.clone(), "accept_queue", N as f64, "count", Tol::Abs(0.0));
    ctx.expect(s, "backlog", f64::from(BACKLOG), "count", Tol::Abs(0.0));
    Ok(())
}

/// A listener with backlog 4 that does not accept; 12 clients connect: the accept queue
/// overflows (tcp_abort_on_overflow=0: final ACKs dropped, clients retransmit).
pub fn accept_queue_overflow(ctx: &mut Ctx<'_>) -> Result<()> {
    const BACKLOG: i32 = 4;
    const N: usize = 12;
    let control = ctx.control;
    let TcpLab { p, to, l } =
        ctx.tcp_lab(PORT).sysctl(End::Server, "net.ipv4.tcp_abort_on_overflow", "0").backlog(BACKLOG).build()?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acceptor = if control {
        let stop = stop.clone();
        Some(std::thread::spawn(move || {
            let mut held = Vec::new();
            let end = Instant::now() + Duration::from_secs(5);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < end && held.len() < N {
                if let Ok((s, _)) = accept_timeout(&l, Duration::from_millis(50)) {
                    held.push(s);
                }
            }
            held
        }))
    } else {
        None
    };
    let mut socks = Vec::new();
    for _ in 0..N {
        socks.push(apps::connect_nonblocking(&p.c, to, None)?);
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let counters = ns::counters(&p.s)?;
    let overflows = counters.get("TcpExt.ListenOverflows").copied().unwrap_or(0);
    let queue = ns::tcp_sockets(&p.s)?
        .iter()
        .find(|s| s.state == TcpState::Listen && s.local.port() == PORT)
        .map_or(0, |s| s.rx_queue);
    ctx.snapshot(&p.s);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(a) = acceptor {
        let _ = a.join();
    }
    drop(socks);
    if control {
        ctx.fact(
            format!("server accepts: ListenOverflows {overflows}, accept queue {queue}"),
            overflows == 0 && queue == 0,
        );
    } else {
        ctx.fact(
            format!("{N} clients, backlog {BACKLOG}: accept queue {queue}, ListenOverflows {overflows}"),
            overflows > 0 && queue == BACKLOG as u32 + 1,
        );
    }
    let s = p.src(End::Server);
    ctx.expect(s.clone(), "backlog", f64::from(BACKLOG), "count", Tol::Abs(0.0));
    ctx.expect(s.clone(), "accept_queue", f64::from(BACKLOG + 1), "count", Tol::Abs(0.0));
    ctx.expect(s, "listen_overflows", 1.0, "count", Tol::AtLeast);
    Ok(())
}

/// HTTP with `Connection: close`: the server closes first and holds TIME_WAIT for every
/// request (control: one keep-alive connection, the client closes).
pub fn time_wait_pileup(ctx: &mut Ctx<'_>) -> Result<()> {
    const N: usize = 50;
    const BUCKETS: usize = 64;
    let control = ctx.control;
    // A small per-namespace TIME_WAIT limit makes the pile-up a real headroom problem.
    let TcpLab { p, to, l } = ctx
        .tcp_lab(PORT)
        .sysctl(End::Server, "net.ipv4.tcp_max_tw_buckets", BUCKETS.to_string())
        .backlog(64)
        .build()?;
    let server = std::thread::spawn(move || {
        let conns = if control { 1 } else { N };
        for _ in 0..conns {
            let Ok((mut s, _)) = accept_timeout(&l, ACCEPT_WAIT) else { break };
            for _ in 0..=N {
                match read_head(&mut s) {
                    Ok(h) if !h.is_empty() => {}
                    _ => break,
                }
                let extra = if control { "" } else { "Connection: close\r\n" };
                let _ = send_response(&mut s, "200 OK", extra, b"ok\n");
                if !control {
                    break; // close first
                }
            }
        }
    });
    let mut ok = 0;
    if control {
        let mut s = connect(&p.c, to, Duration::from_secs(2))?;
        for _ in 0..N {
            send_get(&mut s, "api", "/")?;
            read_response(&mut s)?;
            ok += 1;
        }
    } else {
        for _ in 0..N {
            let mut s = connect(&p.c, to, Duration::from_secs(2))?;
            send_get(&mut s, "api", "/")?;
            read_response(&mut s)?;
            let mut b = [0u8; 16];
            let _ = s.read(&mut b); // wait for the server's FIN
            ok += 1;
        }
    }
    let _ = server.join();
    std::thread::sleep(Duration::from_millis(200));
    let tw = ns::count_state(&p.s, TcpState::TimeWait, PORT)?;
    ctx.snapshot(&p.s);
    if control {
        ctx.fact(format!("{ok} requests on one keep-alive connection; server TIME_WAIT {tw}"), tw == 0 && ok == N);
    } else {
        ctx.fact(
            format!("{ok} requests, one per connection, server closes first: {tw} TIME_WAIT on the server (tcp_max_tw_buckets {BUCKETS})"),
            tw == N,
        );
    }
    ctx.expect(p.src(End::Server), "count", N as f64, "count", Tol::Abs(2.0));
    ctx.expect(p.src(End::Server), "tcp_max_tw_buckets", BUCKETS as f64, "count", Tol::Abs(0.0));
    Ok(())
}
