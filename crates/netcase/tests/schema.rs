//! Every command's `--json` output, from real runs, validates against the JSON Schema files in
//! `schema/` (loaded into one registry, so `defs.json` references resolve offline).

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netcase"))
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

fn schema(name: &str) -> serde_json::Value {
    let p = repo(&format!("schema/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file of schema/ in one registry, by its `$id`.
fn registry() -> jsonschema::Registry<'static> {
    let mut resources = Vec::new();
    for e in std::fs::read_dir(repo("schema")).expect("schema/ exists") {
        let p = e.expect("dir entry").path();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let id = v["$id"].as_str().unwrap_or_else(|| panic!("{}: no $id", p.display())).to_owned();
        resources.push((id, jsonschema::Resource::from_contents(v)));
    }
    let mut r = jsonschema::Registry::new();
    for (id, res) in resources {
        r = r.add(id, res).expect("add schema");
    }
    r.prepare().expect("registry")
}

/// Validates `doc` against `schema/<name>.json`, listing every error.
fn check(reg: &jsonschema::Registry<'static>, name: &str, doc: &serde_json::Value) {
    let s = schema(name);
    let v = jsonschema::options().with_registry(reg).build(&s).unwrap_or_else(|e| panic!("schema {name}: {e}"));
    let errors: Vec<String> = v.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{name}: {} error(s):\n{}", errors.len(), errors.join("\n"));
    assert_eq!(doc["netcase"]["schema"], netcase_model::SCHEMA_VERSION, "{name}");
}

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = bin().args(args).output().unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn every_command_validates_against_its_schema() {
    let reg = registry();
    let cap = repo("tests/data/zeek-206_example_b.pcap");
    let cap = cap.to_str().unwrap();
    let pcap = run_json(&["pcap", cap, "--json"]);
    check(&reg, "pcap", &pcap);
    // The schemas do reject: a finding with an unknown severity, a document without envelope.
    let mut bad = pcap.clone();
    bad["findings"][0]["severity"] = serde_json::json!("fatal");
    let s = schema("pcap");
    let v = jsonschema::options().with_registry(&reg).build(&s).unwrap();
    assert!(!v.is_valid(&bad));
    let mut bad = pcap.clone();
    bad.as_object_mut().unwrap().remove("netcase");
    assert!(!v.is_valid(&bad));
    check(&reg, "cases", &run_json(&["cases", "--json"]));
    check(&reg, "explain", &run_json(&["explain", "zero-window", "--json"]));
    check(&reg, "lab-list", &run_json(&["lab", "list", "--json"]));
    check(&reg, "check", &run_json(&["check", "--interval", "0", "--json"]));
    // probe: against loopback servers this test starts (connect() timing needs no root).
    let (tcp, udp) = loopback_servers();
    let (tcp, udp) = (tcp.to_string(), udp.to_string());
    check(&reg, "probe", &run_json(&["probe", "tcp", &tcp, "-c", "3", "--method", "connect", "--json"]));
    let url = format!("http://{tcp}/");
    check(&reg, "probe", &run_json(&["probe", "http", &url, "-c", "3", "-i", "10ms", "--json"]));
    check(&reg, "probe", &run_json(&["probe", "http", &url, "-c", "2", "--no-keepalive", "--json"]));
    let both = run_json(&["probe", "http", &url, "-c", "2", "--compare", "--json"]);
    assert!(both["new_connections"]["requests"].is_array());
    check(&reg, "probe", &both);
    check(&reg, "probe", &run_json(&["probe", "dns", "probe.test", "--server", &udp, "-c", "2", "--json"]));

    // --events: JSON lines, each one valid.
    let out = bin().args(["pcap", cap, "--events"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let s = schema("pcap-events");
    let v = jsonschema::options().with_registry(&reg).build(&s).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
        n += 1;
    }
    assert!(n > 1, "the envelope and at least one event");
}

/// The kernel tracing commands and the labs need root (and tracefs); run where they can.
#[test]
fn privileged_commands_validate_against_their_schemas() {
    if euid() != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let reg = registry();
    for (cmd, name) in [("drops", "drops"), ("trace", "trace")] {
        let out = bin().args([cmd, "--duration", "0.3", "--json"]).output().unwrap();
        if out.status.code() == Some(2) {
            eprintln!("{cmd} unavailable here: {}", String::from_utf8_lossy(&out.stderr));
            continue;
        }
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        check(&reg, name, &doc);
    }
    let (tcp, _) = loopback_servers();
    let tcp = tcp.to_string();
    check(&reg, "probe", &run_json(&["probe", "tcp", &tcp, "-c", "3", "--json"]));
    check(&reg, "probe", &run_json(&["probe", "path", &tcp, "--max-hops", "3", "--json"]));
    let out = bin().args(["lab", "run", "port-unreachable", "--json"]).output().unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&out.stderr));
    check(&reg, "lab-run", &serde_json::from_slice(&out.stdout).unwrap());
}

/// A keep-alive HTTP/1.1 server and a DNS responder on loopback for the probe documents; both
/// stop by themselves after 20 s (every loop bounded in count and time).
fn loopback_servers() -> (std::net::SocketAddr, std::net::SocketAddr) {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(20);
        let mut served = 0;
        while Instant::now() < end && served < 100 {
            let Ok((mut c, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            served += 1;
            std::thread::spawn(move || {
                let _ = c.set_nonblocking(false);
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = Vec::new();
                let mut b = [0u8; 512];
                for _ in 0..1000 {
                    let Ok(n) = c.read(&mut b) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&b[..n]);
                    while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..i + 4);
                        if c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = u.local_addr().unwrap();
    u.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(20);
        let mut b = [0u8; 512];
        while Instant::now() < end {
            let Ok((n, from)) = u.recv_from(&mut b) else { continue };
            if n > 12 {
                b[2] |= 0x80;
                let _ = u.send_to(&b[..n], from);
            }
        }
    });
    (tcp, udp)
}

fn euid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Uid:").map(|v| v.split_whitespace().nth(1).map(str::to_owned)))
        })
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX)
}
