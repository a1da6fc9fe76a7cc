//! `netcase report --check`: the live host's page, opened in headless Chromium — the host
//! this test runs on, and a network namespace the test makes with a listener that never
//! accepts (its accept queue full). No console error, no request, every chart inked, every
//! finding's link landing on what shows it (the full listener's bar for the full queue).
//!
//! Without a `chromium` binary the tests print why and pass; the namespace test needs root.

#[path = "../../netcase-html/tests/support/chromium.rs"]
mod chromium;

use chromium::{chromium, decode_png, Browser};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn netcase() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netcase"))
}

const PROBE: &str = r#"(() => {
  const charts = [...document.querySelectorAll('svg.chart')].map(s => {
    const r = s.getBoundingClientRect();
    return {id: s.id, kind: s.dataset.kind || '', x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height,
            elements: s.querySelectorAll('*').length};
  });
  const links = [...document.querySelectorAll('a.graph-link')].map(a => {
    const id = decodeURIComponent(a.getAttribute('href').slice(1));
    const t = document.getElementById(id);
    return {id, exists: !!t, inSvg: !!(t && (t.tagName === 'svg' || t.closest('svg.chart'))),
            tag: t ? t.tagName : '', cls: t ? (t.getAttribute('class') || '') : '',
            full: !!(t && t.querySelector('rect.q-full'))};
  });
  const fig = document.getElementById('ns0-queues');
  const r = fig ? fig.getBoundingClientRect() : {bottom: 0};
  return {charts, links, findings: [...document.querySelectorAll('article.finding code')].map(c => c.textContent),
          scripts: document.scripts.length, title: document.title, queuesBottom: r.bottom + scrollY};
})()"#;

/// Opens the page and checks what a person would see; returns the probe's answer.
fn check_page(br: &mut Browser, page: &Path) -> Value {
    let url = format!("file://{}", page.display());
    br.open(&url);
    let v = br.eval(PROBE);
    let name = page.display().to_string();
    assert!(br.errors().is_empty(), "{name}: console errors: {:?}", br.errors());
    let reqs = br.requests();
    if std::env::var_os("NETCASE_DEBUG_EVENTS").is_some() {
        for e in br.events().iter().filter(|e| e["method"] == "Network.requestWillBeSent") {
            let mut e = e.clone();
            e["params"]["request"]["url"] =
                Value::String(e["params"]["request"]["url"].as_str().unwrap_or("").chars().take(60).collect());
            eprintln!("{e}");
        }
    }
    assert!(reqs.iter().all(|u| *u == url), "{name}: requests left the file: {reqs:?}");
    assert_eq!(v["scripts"], 0, "{name}: the page runs no script");
    let charts = v["charts"].as_array().expect("charts");
    for kind in ["states", "drops", "queues"] {
        assert!(charts.iter().any(|c| c["kind"] == kind), "{name}: no {kind} chart");
    }
    for c in charts {
        let id = c["id"].as_str().unwrap_or("");
        let (x, y, w, h) =
            (c["x"].as_f64().unwrap(), c["y"].as_f64().unwrap(), c["w"].as_f64().unwrap(), c["h"].as_f64().unwrap());
        assert!(w > 100.0 && h > 50.0, "{name}: chart {id} has no size ({w}x{h})");
        let (px, _) = decode_png(&br.shot(x, y, w, h));
        let inked = px.iter().filter(|p| p.iter().any(|c| *c < 235)).count();
        assert!(inked > 400, "{name}: chart {id} looks blank ({inked} inked pixels)");
    }
    let links = v["links"].as_array().unwrap();
    for l in links {
        assert!(l["exists"] == true, "{name}: link to #{} has no target", l["id"]);
        assert!(
            l["inSvg"] == true || l["tag"] == "TR" || l["tag"] == "TABLE" || l["tag"] == "H3",
            "{name}: link to #{} lands on neither a chart nor a table ({})",
            l["id"],
            l["tag"]
        );
    }
    assert!(links.len() >= v["findings"].as_array().unwrap().len(), "{name}: each finding links somewhere");
    v
}

fn out_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netcase-report-host-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn host_report_of_this_machine_renders_cleanly_offline() {
    let Some(exe) = chromium() else {
        eprintln!("no chromium: skipped");
        return;
    };
    let dir = out_dir("own");
    let page = dir.join("host.html");
    let r = netcase().args(["report", "--check", "--interval", "0.3", "-o"]).arg(&page).output().unwrap();
    assert!(matches!(r.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&r.stderr));
    let mut br = Browser::launch(&exe);
    let v = check_page(&mut br, &page);
    assert!(v["title"].as_str().unwrap_or("").starts_with("netcase host report"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A network namespace deleted when dropped.
struct Netns(String);
impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn full_accept_queue_links_to_its_listener_bar() {
    let Some(exe) = chromium() else {
        eprintln!("no chromium: skipped");
        return;
    };
    if !netcase_host::privileged()
        || !Path::new("/var/run/netns").exists() && std::fs::create_dir_all("/var/run/netns").is_err()
    {
        eprintln!("needs root for a network namespace: skipped");
        return;
    }
    let ns = Netns(format!("nchtml{}", std::process::id()));
    netcase_lab::ns::ip(&["netns", "add", &ns.0]).expect("ip netns add");
    netcase_lab::ns::ip(&["-n", &ns.0, "link", "set", "lo", "up"]).expect("lo up");
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8090);
    // Backlog 1: the kernel queues two connections, then drops further handshakes.
    let listener = netcase_lab::apps::listen(&ns.0, addr, 1).expect("listener");
    let clients: Vec<_> =
        (0..4).filter_map(|_| netcase_lab::apps::connect_nonblocking(&ns.0, addr, None).ok()).collect();
    // More clients keep knocking while the report samples, so the overflow counters move.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let knocker = {
        let (ns, stop) = (ns.0.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && held.len() < 200 {
                if let Ok(s) = netcase_lab::apps::connect_nonblocking(&ns, addr, None) {
                    held.push(s);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            held
        })
    };
    std::thread::sleep(Duration::from_millis(400));
    let dir = out_dir("netns");
    let page = dir.join("ns.html");
    let r =
        netcase().args(["report", "--check", "--netns", &ns.0, "--interval", "0.5", "-o"]).arg(&page).output().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let knocked = knocker.join().unwrap_or_default();
    assert_eq!(r.status.code(), Some(1), "a full accept queue is a finding: {}", String::from_utf8_lossy(&r.stderr));
    let mut br = Browser::launch(&exe);
    let v = check_page(&mut br, &page);
    let findings: Vec<&str> = v["findings"].as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert!(findings.contains(&"accept-queue-overflow"), "findings: {findings:?}");
    let to_bar: Vec<&Value> = v["links"].as_array().unwrap().iter().filter(|l| l["full"] == true).collect();
    assert!(!to_bar.is_empty(), "the accept-queue finding links to the full listener's bar: {:?}", v["links"]);
    assert!(to_bar.iter().all(|l| l["inSvg"] == true));
    if let Some(docs) = std::env::var_os("NETCASE_DOCS_SHOTS") {
        let bottom = v["queuesBottom"].as_f64().unwrap_or(1200.0).min(2400.0);
        let png = br.shot(0.0, 0.0, 1040.0, bottom + 12.0);
        let to = Path::new(&docs).join("report-host.png");
        std::fs::write(&to, png).unwrap();
        eprintln!("wrote {}", to.display());
    }
    drop((clients, knocked, listener));
    let _ = std::fs::remove_dir_all(&dir);
}
