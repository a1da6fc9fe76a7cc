//! Live TCP tracepoint tests (root): a connection whose data a DROP rule eats a few times, a
//! refused connect and a linger-0 abort, inside a namespace of our own; the trace must show
//! them with the right addresses and counts.

mod common;

use common::{can_trace, Netns, SERIAL};
use netcase_trace::tcp::{TcpEventKind, TcpReport};
use netcase_trace::{counters, in_netns, SessionOptions, TcpFilter, TcpTracer};
use socket2::{Domain, SockRef, Socket, Type};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn trace_while<T: Send>(host: IpAddr, traffic: impl FnOnce() -> T + Send) -> (TcpReport, T) {
    let mut tracer =
        TcpTracer::open(TcpFilter { host: Some(host), port: None }, SessionOptions::default()).expect("attach");
    tracer.start().expect("start");
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let h = s.spawn(|| tracer.run(Some(Duration::from_secs(30)), &|| stop.load(Ordering::SeqCst)));
        let out = traffic();
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::SeqCst);
        (h.join().expect("tracer thread").expect("trace"), out)
    })
}

fn bound_stream(local: SocketAddr, remote: SocketAddr) -> std::io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&local.into())?;
    s.connect_timeout(&remote.into(), Duration::from_secs(5))?;
    Ok(s.into())
}

#[test]
fn dropped_segments_show_as_retransmits_of_the_flow() {
    if !can_trace() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let ns = Netns::new("retrans", 214);
    let server = SocketAddr::from((ns.addr, 7101));
    let client = SocketAddr::from((ns.addr, 7201));
    let before = counters::read_counters(Some(&ns.name)).expect("counters");
    let (report, ()) = trace_while(ns.addr.into(), || {
        in_netns(&ns.name, || {
            let listener = TcpListener::bind(server).expect("listen");
            let mut c = bound_stream(client, server).expect("connect");
            let (mut srv, _) = listener.accept().expect("accept");
            // Drop the client's next ~3 data segments (152 bytes each with headers).
            ns.exec(&[
                "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "7101", "-m", "quota", "--quota", "500", "-j",
                "DROP",
            ]);
            // Keep every CPU busy while the retransmit timer runs: perf misses tracepoint hits
            // from timer context on an idle CPU (see the tcp module docs).
            let done = AtomicBool::new(false);
            std::thread::scope(|sc| {
                for _ in 0..std::thread::available_parallelism().map_or(2, |n| n.get()) {
                    sc.spawn(|| {
                        let t0 = std::time::Instant::now();
                        while !done.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(20) {
                            std::hint::spin_loop();
                        }
                    });
                }
                c.write_all(&[7u8; 100]).expect("write");
                srv.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
                let mut buf = [0u8; 100];
                let r = srv.read_exact(&mut buf);
                done.store(true, Ordering::Relaxed);
                r.expect("data arrives after retransmits");
            });
        })
        .expect("netns")
    });
    let after = counters::read_counters(Some(&ns.name)).expect("counters");
    let dropped = ns.rule_packets("INPUT");
    let retrans_segs =
        after.get("Tcp.RetransSegs").copied().unwrap_or(0) - before.get("Tcp.RetransSegs").copied().unwrap_or(0);
    let flow =
        report.flow(client, server).unwrap_or_else(|| panic!("no flow {client} -> {server}: {:#?}", report.flows));
    eprintln!("dropped {dropped} retrans {} RetransSegs {retrans_segs} path {:?}", flow.retransmits, flow.path);
    assert!(dropped >= 2, "the rule dropped {dropped}");
    let delta = |n: &str| after.get(n).copied().unwrap_or(0) - before.get(n).copied().unwrap_or(0);
    let probes = delta("TcpExt.TCPLossProbes");
    let ctx =
        format!("dropped {dropped}, RetransSegs {retrans_segs}, TCPLossProbes {probes}, flows {:#?}", report.flows);
    let retrans: Vec<_> =
        report.events.iter().filter(|e| e.kind == TcpEventKind::Retransmit).map(|e| (e.t_ms, e.err)).collect();
    let ctx = format!("{ctx}\nretransmit events {retrans:?}");
    eprintln!("session {:?} totals {:?} probes {probes} events {retrans:?}", report.session, report.totals);
    assert_eq!(retrans_segs, dropped, "each dropped segment is sent again once: {ctx}");
    assert_eq!(flow.retransmits, dropped, "{ctx}");
    assert_eq!(report.totals.retransmits, flow.retransmits, "{ctx}");
    assert!(flow.path.iter().any(|s| s == "TCP_ESTABLISHED"), "{:?}", flow.path);
    let ev = report.events.iter().find(|e| e.kind == TcpEventKind::Retransmit).expect("retransmit event");
    assert_eq!((ev.local, ev.remote), (client, server));
    assert_eq!(ev.state.as_deref(), Some("TCP_ESTABLISHED"));
}

#[test]
fn refused_connect_and_linger_zero_abort_show_as_resets() {
    if !can_trace() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let ns = Netns::new("reset", 215);
    let closed = SocketAddr::from((ns.addr, 7102));
    let refused_client = SocketAddr::from((ns.addr, 7202));
    let server = SocketAddr::from((ns.addr, 7103));
    let client = SocketAddr::from((ns.addr, 7203));
    let (report, (refused, reset)) = trace_while(ns.addr.into(), || {
        in_netns(&ns.name, || {
            let refused = bound_stream(refused_client, closed).map(|_| ()).map_err(|e| e.kind());
            let listener = TcpListener::bind(server).expect("listen");
            let mut c = bound_stream(client, server).expect("connect");
            let (srv, _) = listener.accept().expect("accept");
            SockRef::from(&srv).set_linger(Some(Duration::ZERO)).expect("SO_LINGER 0");
            drop(srv);
            let mut buf = [0u8; 1];
            let reset = c.read(&mut buf).map_err(|e| e.kind());
            (refused, reset)
        })
        .expect("netns")
    });
    assert_eq!(refused, Err(std::io::ErrorKind::ConnectionRefused));
    assert_eq!(reset, Err(std::io::ErrorKind::ConnectionReset));

    // The refused connect: the client's socket received the RST in SYN_SENT.
    let f = report.flow(refused_client, closed).unwrap_or_else(|| panic!("no refused flow: {:#?}", report.flows));
    assert_eq!(f.resets_received, 1);
    assert!(f.path.iter().any(|s| s == "TCP_SYN_SENT"), "{:?}", f.path);
    // The kernel answered for the closed port: a RST from it to the client.
    let sent: Vec<_> = report.events.iter().filter(|e| e.kind == TcpEventKind::SendReset).collect();
    assert!(
        sent.iter().any(|e| e.local == closed && e.remote == refused_client),
        "no RST from {closed} to {refused_client}: {sent:#?}"
    );

    // The linger-0 abort: RST sent by the server's socket, received by the client's.
    let s = report.flow(server, client).unwrap_or_else(|| panic!("no server flow: {:#?}", report.flows));
    assert_eq!(s.resets_sent, 1);
    // Linger 0 closes through tcp_disconnect, which this kernel names TCP_STATE; data left
    // unread would say TCP_ABORT_ON_CLOSE.
    assert_eq!(s.reset_reasons.len(), 1);
    assert!(["TCP_STATE", "TCP_ABORT_ON_LINGER"].contains(&s.reset_reasons[0].as_str()), "{:?}", s.reset_reasons);
    let c = report.flow(client, server).expect("client flow");
    assert_eq!(c.resets_received, 1);
    assert_eq!(report.totals.resets_sent, 2);
    assert_eq!(report.totals.resets_received, 2);
}
