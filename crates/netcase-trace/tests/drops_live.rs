//! Live kfree_skb tests (root): cause known drops inside a namespace of our own and check that
//! the traced reason counts match the kernel's own counters for the same interval (±5%).
//!
//! kfree_skb is host-wide and carries no namespace, so each test counts only the reason it
//! provokes, in the layer and protocol it provokes it (SOCKET_RCVBUFF in UDP over IPv4, ...),
//! and sends 2,000 datagrams so that background drops on the host stay well under 5%.

mod common;

use common::{can_trace, within, Netns, SERIAL};
use netcase_trace::drops::DropReport;
use netcase_trace::{in_netns, DropTraceOptions, DropTracer, Layer};
use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const DATAGRAMS: usize = 2000;

/// Starts the tracer, runs `traffic`, waits a little for the tail, stops, reports.
fn trace_while(ns: &Netns, traffic: impl FnOnce() + Send) -> DropReport {
    let mut tracer = DropTracer::open(DropTraceOptions { netns: Some(ns.name.clone()), ..Default::default() })
        .expect("attach kfree_skb");
    tracer.start().expect("start");
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let h = s.spawn(|| tracer.run(Some(Duration::from_secs(30)), &|| stop.load(Ordering::SeqCst)));
        traffic();
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::SeqCst);
        h.join().expect("tracer thread").expect("trace")
    })
}

/// Sends `n` datagrams of 512 bytes from an unconnected socket, paced so the rings keep up.
fn blast(from: SocketAddr, to: SocketAddr, n: usize) {
    let s = UdpSocket::bind(from).expect("bind sender");
    let buf = [0x5au8; 512];
    for i in 0..n {
        s.send_to(&buf, to).expect("send");
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn ipv4_udp(r: &DropReport, reason: &str, layer: Layer) -> u64 {
    r.entries.iter().filter(|e| e.reason == reason && e.layer == layer && e.protocol == "IPv4").map(|e| e.count).sum()
}

fn show(r: &DropReport) {
    eprintln!(
        "total {} lost {} entries {:?} counters {:?} notes {:?}",
        r.total,
        r.session.lost,
        r.entries.iter().take(6).map(|e| (&e.reason, &e.location, &e.protocol, e.count)).collect::<Vec<_>>(),
        r.counters,
        r.notes
    );
}

#[test]
fn udp_full_receive_buffer_is_socket_rcvbuff() {
    if !can_trace() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let ns = Netns::new("rcvbuf", 211);
    let addr = ns.addr;
    let report = trace_while(&ns, || {
        in_netns(&ns.name, move || {
            let rx = Socket::new(Domain::IPV4, Type::DGRAM, None).expect("socket");
            rx.set_recv_buffer_size(1).expect("SO_RCVBUF"); // the kernel rounds up to its minimum
            rx.bind(&SocketAddr::from((addr, 7001)).into()).expect("bind receiver");
            blast(SocketAddr::from((addr, 0)), SocketAddr::from((addr, 7001)), DATAGRAMS);
            drop(rx);
        })
        .expect("netns");
    });
    show(&report);
    let traced = ipv4_udp(&report, "SOCKET_RCVBUFF", Layer::Udp);
    let counted = report.counter("Udp.RcvbufErrors");
    assert!(counted >= 1500, "the kernel counted only {counted} RcvbufErrors");
    assert!(within(traced, counted, 5.0), "traced {traced} SOCKET_RCVBUFF vs Udp.RcvbufErrors {counted}");
    assert_eq!(report.session.lost, 0);
    let row = report.by_reason.iter().find(|r| r.reason == "SOCKET_RCVBUFF").expect("reason row");
    assert!(row.top_location.starts_with("udp") || row.top_location.starts_with("__udp"), "{}", row.top_location);
}

#[test]
fn closed_udp_port_is_no_socket() {
    if !can_trace() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let ns = Netns::new("noport", 212);
    let addr = ns.addr;
    let report = trace_while(&ns, || {
        in_netns(&ns.name, move || blast(SocketAddr::from((addr, 0)), SocketAddr::from((addr, 7002)), DATAGRAMS))
            .expect("netns");
    });
    show(&report);
    let traced = ipv4_udp(&report, "NO_SOCKET", Layer::Udp);
    let counted = report.counter("Udp.NoPorts");
    assert!(counted >= DATAGRAMS as u64, "the kernel counted only {counted} NoPorts");
    assert!(within(traced, counted, 5.0), "traced {traced} NO_SOCKET vs Udp.NoPorts {counted}");
}

#[test]
fn netfilter_drop_rule_is_netfilter_drop() {
    if !can_trace() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let ns = Netns::new("nfdrop", 213);
    ns.exec(&["iptables", "-A", "INPUT", "-p", "udp", "--dport", "7003", "-j", "DROP"]);
    let addr = ns.addr;
    let report = trace_while(&ns, || {
        in_netns(&ns.name, move || blast(SocketAddr::from((addr, 0)), SocketAddr::from((addr, 7003)), DATAGRAMS))
            .expect("netns");
    });
    show(&report);
    let traced = ipv4_udp(&report, "NETFILTER_DROP", Layer::Netfilter);
    let counted = ns.rule_packets("INPUT");
    assert_eq!(counted, DATAGRAMS as u64);
    assert!(within(traced, counted, 5.0), "traced {traced} NETFILTER_DROP vs the rule's {counted} packets");
    // Nothing reached UDP: the namespace counted no NoPorts.
    assert_eq!(report.counter("Udp.NoPorts"), 0);
}
