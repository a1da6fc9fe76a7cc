//! Namespaces to try `netcase probe` on (the README's examples were made with it): client
//! `ncl-probedemo-PID-0-c` (10.77.0.1) and server `…-s` (10.77.0.2) through the labs' delay
//! relay (`DELAY_MS` each way, default 25: a 50 ms round trip). The server listens on 8080
//! (TCP), 8000 (HTTP, first byte after 300 ms), 8001 (HTTP, at once) and 53 (DNS, with the
//! second packet of each UDP flow dropped as in the dns-conntrack-race-5s lab). Runs for
//! `SECONDS` (default 60, at most 300), then removes everything; needs root.
//!
//! ```sh
//! sudo cargo run -p netcase-probe --example probe_demo -- 25 120 &
//! sudo netcase probe tcp 10.77.0.2:8080 --netns ncl-probedemo-PID-0-c
//! ```

use netcase_lab::relay::{Relay, RelayCfg};
use netcase_lab::{apps, ns};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::time::{Duration, Instant};

fn http(l: TcpListener, delay: Duration, end: Instant) {
    std::thread::spawn(move || {
        l.set_nonblocking(true).unwrap();
        while Instant::now() < end {
            let Ok((mut s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            std::thread::spawn(move || {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                for _ in 0..1000 {
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
                        match s.read(&mut b) {
                            Ok(1) => head.push(b[0]),
                            _ => return,
                        }
                    }
                    std::thread::sleep(delay);
                    let body = [b'x'; 1024];
                    let mut m = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                    m.extend_from_slice(&body);
                    if s.write_all(&m).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let delay = Duration::from_millis(args.first().copied().unwrap_or(25));
    let secs = args.get(1).copied().unwrap_or(60).min(300);
    let name = |r: &str| format!("ncl-probedemo-{}-0-{r}", std::process::id());
    let (c, m, s) = (name("c"), name("m"), name("s"));
    let cleanup = || {
        for n in [&c, &m, &s] {
            let _ = ns::ip(&["netns", "del", n]);
        }
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{c}"));
    };
    let run = || -> anyhow::Result<()> {
        for n in [&c, &m, &s] {
            ns::ip(&["netns", "add", n])?;
            ns::ip(&["-n", n, "link", "set", "lo", "up"])?;
            ns::sysctl(n, "net.ipv6.conf.all.disable_ipv6", "1")?;
        }
        for (a, ai, b, bi) in [(&c, "eth0", &m, "c0"), (&m, "s0", &s, "eth0")] {
            ns::ip(&["-n", a, "link", "add", ai, "type", "veth", "peer", "name", bi, "netns", b])?;
            for (n, i) in [(a, ai), (b, bi)] {
                ns::exec(n, "ethtool", &["-K", i, "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off"])?;
                ns::ip(&["-n", n, "link", "set", i, "up"])?;
            }
        }
        ns::ip(&["-n", &c, "addr", "add", "10.77.0.1/24", "dev", "eth0"])?;
        ns::ip(&["-n", &s, "addr", "add", "10.77.0.2/24", "dev", "eth0"])?;
        std::fs::create_dir_all(format!("/etc/netns/{c}"))?;
        std::fs::write(format!("/etc/netns/{c}/resolv.conf"), "nameserver 10.77.0.2\n")?;
        // A relay stops by itself after a lab's time limit (60 s): restart it every 50 s.
        let mut relay = Relay::start(&m, "c0", "s0", RelayCfg { delay, drops: vec![] })?;
        let mut relay_started = Instant::now();
        let end = Instant::now() + Duration::from_secs(secs);
        let ip = Ipv4Addr::new(10, 77, 0, 2);
        let tcp = apps::listen(&s, SocketAddrV4::new(ip, 8080), 512)?;
        http(tcp, Duration::ZERO, end);
        http(apps::listen(&s, SocketAddrV4::new(ip, 8000), 64)?, Duration::from_millis(300), end);
        http(apps::listen(&s, SocketAddrV4::new(ip, 8001), 64)?, Duration::ZERO, end);
        ns::exec(&s, "nft", &["add", "table", "ip", "demo"])?;
        ns::exec(&s, "nft", &["add", "chain", "ip", "demo", "in", "{ type filter hook input priority 0; }"])?;
        ns::exec(
            &s,
            "nft",
            &["add", "rule", "ip", "demo", "in", "udp", "dport", "53", "ct", "original", "packets", "2", "drop"],
        )?;
        let u = apps::udp(&s, SocketAddrV4::new(ip, 53))?;
        u.set_read_timeout(Some(Duration::from_millis(100)))?;
        println!("client netns: {c} (10.77.0.1); server 10.77.0.2; one-way delay {} ms; {secs} s", delay.as_millis());
        let mut buf = [0u8; 1500];
        while Instant::now() < end {
            if relay_started.elapsed() > Duration::from_secs(50) {
                let _ = relay.stop();
                relay = Relay::start(&m, "c0", "s0", RelayCfg { delay, drops: vec![] })?;
                relay_started = Instant::now();
            }
            let Ok((n, from)) = u.recv_from(&mut buf) else { continue };
            if let Some(a) = apps::dns::answer(buf.get(..n).unwrap_or_default(), Some(Ipv4Addr::new(10, 77, 9, 9))) {
                let _ = u.send_to(&a, from);
            }
        }
        let _ = relay.stop();
        Ok(())
    };
    let r = run();
    cleanup();
    r
}
