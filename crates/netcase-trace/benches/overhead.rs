//! Overhead of `netcase drops` (root; needs iperf3 and iproute2):
//!
//! 1. TCP throughput over loopback in a namespace of our own (iperf3, 5 s), without and with
//!    the kfree_skb tracer attached. Few packets are dropped, so this is the cost of an
//!    attached, mostly idle tracepoint.
//! 2. Worst case: UDP datagrams to a closed port (every one a kfree_skb sample), 2 s each,
//!    without and with the tracer.
//!
//! `cargo bench -p netcase-trace --bench overhead`

use netcase_trace::{in_netns, DropTraceOptions, DropTracer};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        // Kill by our own child's pid only.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("spawn");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const ADDR: &str = "10.202.216.1";

fn iperf(ns: &str, secs: u32) -> f64 {
    let server = Command::new("ip")
        .args(["netns", "exec", ns, "iperf3", "-s", "-1", "-B", ADDR, "-p", "5299"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    let _server = Reaper(server);
    std::thread::sleep(Duration::from_millis(300));
    let json = sh(&["ip", "netns", "exec", ns, "iperf3", "-c", ADDR, "-p", "5299", "-t", &secs.to_string(), "-J"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("iperf3 json");
    v["end"]["sum_received"]["bits_per_second"].as_f64().expect("bits_per_second")
}

fn udp_rate(ns: &str, secs: u64) -> f64 {
    in_netns(ns, || {
        let addr: std::net::Ipv4Addr = ADDR.parse().expect("addr");
        let s = UdpSocket::bind(SocketAddr::from((addr, 0))).expect("bind");
        let to = SocketAddr::from((addr, 5399));
        let buf = [0u8; 64];
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(secs) {
            for _ in 0..256 {
                let _ = s.send_to(&buf, to);
            }
            n += 256;
        }
        n as f64 / start.elapsed().as_secs_f64()
    })
    .expect("netns")
}

/// Runs `f` with the drop tracer attached; returns f's result and the tracer's totals.
fn with_tracer<T: Send>(f: impl FnOnce() -> T + Send) -> (T, u64, u64) {
    let mut t = DropTracer::open(DropTraceOptions::default()).expect("attach");
    t.start().expect("start");
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let h = s.spawn(|| t.run(Some(Duration::from_secs(60)), &|| stop.load(Ordering::SeqCst)));
        let out = f();
        stop.store(true, Ordering::SeqCst);
        let r = h.join().expect("tracer").expect("trace");
        (out, r.total, r.session.lost)
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let ns = Netns(format!("nct-bench-{}", std::process::id()));
    sh(&["ip", "netns", "add", &ns.0]);
    sh(&["ip", "-n", &ns.0, "link", "set", "lo", "up"]);
    sh(&["ip", "-n", &ns.0, "addr", "add", &format!("{ADDR}/32"), "dev", "lo"]);

    // The machine may be shared: interleave runs without and with the tracer, report medians.
    let rounds: usize = std::env::var("NETCASE_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let (mut base, mut traced, mut drops, mut lost) = (Vec::new(), Vec::new(), 0, 0);
    for _ in 0..rounds {
        base.push(iperf(&ns.0, 5));
        let (t, d, l) = with_tracer(|| iperf(&ns.0, 5));
        traced.push(t);
        drops += d;
        lost += l;
    }
    let (b, t) = (median(&mut base), median(&mut traced));
    println!(
        "tcp loopback (iperf3 5 s, median of {rounds}): without {:.2} Gbit/s, with netcase drops {:.2} Gbit/s ({:+.1}%); {drops} drops traced, {lost} lost",
        b / 1e9,
        t / 1e9,
        100.0 * (t - b) / b
    );
    println!("  runs without: {:?} Gbit/s, with: {:?} Gbit/s", gbit(&base), gbit(&traced));

    let (mut base, mut traced, mut drops, mut lost) = (Vec::new(), Vec::new(), 0, 0);
    for _ in 0..rounds {
        base.push(udp_rate(&ns.0, 2));
        let (t, d, l) = with_tracer(|| udp_rate(&ns.0, 2));
        traced.push(t);
        drops += d;
        lost += l;
    }
    let (b, t) = (median(&mut base), median(&mut traced));
    println!(
        "udp to a closed port (every datagram a traced drop, 2 s, median of {rounds}): without {b:.0}/s, with {t:.0}/s ({:+.1}%); {drops} drops traced, {lost} lost",
        100.0 * (t - b) / b
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn gbit(v: &[f64]) -> Vec<String> {
    v.iter().map(|x| format!("{:.1}", x / 1e9)).collect()
}
