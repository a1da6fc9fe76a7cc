//! Opens reports of real captures in headless Chromium and checks what a person would see:
//! no console error, no request leaving the file, every graph drawn (its pixels, not its
//! markup), every finding's link landing on a graph, and on a lab capture with one lost
//! segment exactly one retransmission mark, drawn at the retransmission's time.
//!
//! Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
//! messages ending in NUL on file descriptors 3 and 4), with host resolution switched off.
//! Without a `chromium` binary the tests print why and pass (CI installs it, see `.ci/run`).

#[path = "support/chromium.rs"]
mod chromium;

use chromium::{chromium, decode_png, Browser};
use serde_json::Value;
use std::path::{Path, PathBuf};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
const REPO_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data");
const OWN_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// Writes the report of `capture` and returns its path.
fn write_report(capture: &Path, dir: &Path) -> (PathBuf, netcase_html::CaptureData) {
    let (html, d) = netcase_html::capture_report(capture, &netcase_html::Options::default()).expect("report");
    let name = capture.file_name().unwrap().to_string_lossy().replace('.', "_");
    let out = dir.join(format!("{name}.html"));
    std::fs::write(&out, html).unwrap();
    (out, d)
}

const PROBE: &str = r#"(() => {
  const charts = [...document.querySelectorAll('svg.chart')].map(s => {
    const r = s.getBoundingClientRect();
    const vb = s.viewBox.baseVal;
    return {id: s.id, kind: s.dataset.kind || '', x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height,
            scale: r.width / vb.width, plot: (s.dataset.plot || '').split(' ').map(Number),
            x0: Number(s.dataset.x0), x1: Number(s.dataset.x1), elements: s.querySelectorAll('*').length};
  });
  const links = [...document.querySelectorAll('a.graph-link, a.frame-link')].map(a => {
    const id = decodeURIComponent(a.getAttribute('href').slice(1));
    const t = document.getElementById(id);
    return {cls: a.className, id, exists: !!t, inSvg: !!(t && (t.tagName === 'svg' || t.closest('svg.chart')))};
  });
  const marks = [...document.querySelectorAll('svg.chart[data-kind="tseq"] .mark.m-R')].map(g => {
    const r = g.querySelector('text').getBoundingClientRect();
    return {svg: g.closest('svg').id, t: Number(g.dataset.t), frame: Number(g.dataset.frame), cx: r.left + r.width / 2 + scrollX};
  });
  return {charts, links, marks, findings: document.querySelectorAll('article.finding').length,
          scripts: document.scripts.length, title: document.title};
})()"#;

/// Opens the report, checks it and returns the probe's answer.
fn check_report(br: &mut Browser, report: &Path, d: &netcase_html::CaptureData) -> Value {
    let url = format!("file://{}", report.display());
    br.open(&url);
    let v = br.eval(PROBE);
    let name = report.display().to_string();
    assert!(br.errors().is_empty(), "{name}: console errors: {:?}", br.errors());
    let reqs = br.requests();
    assert!(reqs.iter().all(|u| *u == url), "{name}: requests left the file: {reqs:?}");
    assert_eq!(v["scripts"], 0, "{name}: the report runs no script");
    assert_eq!(v["findings"].as_u64(), Some(d.analysis.findings.len() as u64), "{name}: every finding is on the page");
    let charts = v["charts"].as_array().expect("charts");
    assert!(charts.len() >= 3, "{name}: timeline and two I/O charts at least");
    assert_eq!(
        charts.iter().filter(|c| c["kind"] == "tseq").count(),
        d.traces.len(),
        "{name}: one time-sequence graph per drawn stream"
    );
    for c in charts {
        let id = c["id"].as_str().unwrap_or("");
        let (x, y, w, h) =
            (c["x"].as_f64().unwrap(), c["y"].as_f64().unwrap(), c["w"].as_f64().unwrap(), c["h"].as_f64().unwrap());
        assert!(w > 100.0 && h > 50.0, "{name}: chart {id} has no size ({w}x{h})");
        assert!(c["elements"].as_u64().unwrap_or(0) > 10, "{name}: chart {id} is empty");
        let png = br.shot(x, y, w, h);
        let (px, width) = decode_png(&png);
        let inked = px.iter().filter(|p| p.iter().any(|c| *c < 235)).count();
        assert!(inked > 400, "{name}: chart {id} looks blank ({inked} inked pixels)");
        // Series are drawn in colour, axes and grid in grey: a drawn series leaves coloured
        // pixels inside the plot area.
        let plot: Vec<f64> = c["plot"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let s = c["scale"].as_f64().unwrap_or(1.0);
        let (pl, pt, pw, ph) = (plot[0] * s, plot[1] * s, plot[2] * s, plot[3] * s);
        let coloured = px
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                let (xx, yy) = ((*i as u32 % width) as f64, (*i as u32 / width) as f64);
                xx >= pl && xx < pl + pw && yy >= pt && yy < pt + ph && {
                    let mx = *p.iter().max().unwrap() as i32;
                    let mn = *p.iter().min().unwrap() as i32;
                    mx - mn > 50
                }
            })
            .count();
        let kind = c["kind"].as_str().unwrap_or("");
        if kind == "tseq" || id == "io-traffic" {
            assert!(coloured > 20, "{name}: chart {id} has no series drawn in its plot ({coloured} coloured pixels)");
        }
    }
    for l in v["links"].as_array().unwrap() {
        assert!(l["exists"] == true, "{name}: link to #{} has no target", l["id"]);
        assert!(l["inSvg"] == true, "{name}: link to #{} does not land on a graph", l["id"]);
    }
    let graph_links = v["links"].as_array().unwrap().iter().filter(|l| l["cls"] == "graph-link").count();
    assert_eq!(graph_links, d.analysis.findings.len(), "{name}: each finding links to a graph");
    v
}

fn corpus_file(name: &str) -> Option<PathBuf> {
    let p = Path::new(CORPUS).join(name);
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("NETCASE_SKIP_CORPUS").is_some() {
        eprintln!("corpus capture {name} not found: skipped (NETCASE_SKIP_CORPUS)");
        return None;
    }
    panic!("corpus capture {} not found (NETCASE_SKIP_CORPUS=1 skips it on purpose)", p.display());
}

fn out_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netcase-html-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn one_lost_segment_shows_one_retransmission_mark_at_its_time() {
    let Some(exe) = chromium() else {
        eprintln!("chromium not installed: browser test skipped (CI installs it)");
        return;
    };
    let dir = out_dir("one-loss");
    // A lab capture (netcase lab run retrans-hol-blocking --capture): the relay dropped one
    // segment; tshark shows its retransmission as frame 28, 0.262589237 s into the capture.
    let (report, d) = write_report(&Path::new(OWN_DATA).join("retrans-hol.pcap"), &dir);
    let mut br = Browser::launch(&exe);
    let v = check_report(&mut br, &report, &d);
    let marks = v["marks"].as_array().unwrap();
    assert_eq!(marks.len(), 1, "exactly one R mark: {marks:?}");
    let m = &marks[0];
    assert_eq!(m["frame"], 28);
    assert!((m["t"].as_f64().unwrap() - 0.262589).abs() < 1e-6, "mark time {}", m["t"]);
    // Drawn where the time axis puts 0.262589 s.
    let chart = v["charts"].as_array().unwrap().iter().find(|c| c["id"] == m["svg"]).unwrap();
    let plot: Vec<f64> = chart["plot"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let (x0, x1, s) = (chart["x0"].as_f64().unwrap(), chart["x1"].as_f64().unwrap(), chart["scale"].as_f64().unwrap());
    let want = chart["x"].as_f64().unwrap() + (plot[0] + (0.262589 - x0) / (x1 - x0) * plot[2]) * s;
    let got = m["cx"].as_f64().unwrap();
    assert!((got - want).abs() < 2.0, "R drawn at x={got}, the axis puts 0.262589 s at {want}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn reports_of_real_captures_render_cleanly_offline() {
    let Some(exe) = chromium() else {
        eprintln!("chromium not installed: browser test skipped (CI installs it)");
        return;
    };
    let dir = out_dir("corpus");
    let mut files: Vec<PathBuf> = vec![
        Path::new(REPO_DATA).join("zeek-206_example_b.pcap"),
        Path::new(REPO_DATA).join("packets-arppoison.pcapng"),
    ];
    for n in [
        "packets-tcp_dupack.pcapng",
        "packets-tcp_zerowindowrecovery.pcapng",
        "packets-dns_query_nonexistent.pcapng",
        "dpkt-http.pcap",
        "arkime-dns-tcp.pcap",
        "ndpi-sites.pcapng",
        "packets-synscan.pcapng",
    ] {
        files.extend(corpus_file(n));
    }
    let mut br = Browser::launch(&exe);
    for f in &files {
        let (report, d) = write_report(f, &dir);
        check_report(&mut br, &report, &d);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A pcap (Ethernet) of `frames` (µs after 2023-11-14 22:13:20 UTC, bytes).
fn pcap(frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let at: Vec<(i64, Vec<u8>)> = frames.iter().map(|(t, f)| (1_700_000_000_000_000 + t, f.clone())).collect();
    netcase_testkit::pcap(&at)
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let total = 20 + l4.len();
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(l4);
    f
}

fn udp(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sp.to_be_bytes());
    u.extend_from_slice(&dp.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    ipv4(src, dst, 17, &u)
}

fn tcp(from_client: bool, seq: u32, ack: u32, flags: u16, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sp, dp) = if from_client { (C, S, 40000u16, 80u16) } else { (S, C, 80, 40000) };
    let mut t = Vec::new();
    t.extend_from_slice(&sp.to_be_bytes());
    t.extend_from_slice(&dp.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&((5u16 << 12) | flags).to_be_bytes());
    t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    ipv4(src, dst, 6, &t)
}

const C: [u8; 4] = [10, 0, 0, 1];
const S: [u8; 4] = [10, 0, 0, 2];

/// A DNS query and answer for a name, and an HTTP exchange whose URI and Host header, all
/// written to break out of HTML.
fn hostile_capture() -> Vec<u8> {
    let label = b"<script>alert(1)</script>";
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.push(label.len() as u8);
    q.extend_from_slice(label);
    q.extend_from_slice(&[3, b'c', b'o', b'm', 0, 0, 1, 0, 1]);
    let mut r = q.clone();
    r[2] = 0x81;
    r[3] = 0x83; // NXDOMAIN
    let req = b"GET /\"><script>alert(2)</script> HTTP/1.1\r\nHost: <img src=x onerror=alert(3)>'\"&\r\nUser-Agent: x\r\n\r\n";
    let resp = b"HTTP/1.1 404 <b>Not</b> Found\r\nContent-Length: 0\r\n\r\n";
    let (syn, ack, psh) = (0x02, 0x10, 0x08);
    pcap(&[
        (0, udp(C, S, 5353, 53, &q)),
        (2_000, udp(S, C, 53, 5353, &r)),
        (10_000, tcp(true, 100, 0, syn, &[])),
        (11_000, tcp(false, 500, 101, syn | ack, &[])),
        (12_000, tcp(true, 101, 501, ack, &[])),
        (13_000, tcp(true, 101, 501, ack | psh, req)),
        (20_000, tcp(false, 501, 101 + req.len() as u32, ack | psh, resp)),
        (21_000, tcp(true, 101 + req.len() as u32, 501 + resp.len() as u32, ack, &[])),
    ])
}

#[test]
fn strings_from_the_capture_stay_text() {
    let dir = out_dir("hostile");
    let cap = dir.join("hostile.pcap");
    std::fs::write(&cap, hostile_capture()).unwrap();
    let (report, d) = write_report(&cap, &dir);
    let html = std::fs::read_to_string(&report).unwrap();
    let p = d.analysis.proto.as_ref().expect("transactions");
    assert_eq!((p.dns.len(), p.http.len()), (1, 1), "the capture carries one DNS and one HTTP transaction");
    let lower = html.to_ascii_lowercase();
    for bad in ["<script", "<img", "<b>not"] {
        assert!(!lower.contains(bad), "{bad} reached the page unescaped");
    }
    assert!(html.contains("&lt;script&gt;alert(1)"), "the DNS name is shown, escaped");
    assert!(html.contains("&lt;img src=x onerror=alert(3)&gt;"), "the Host header is shown, escaped");
    if let Some(exe) = chromium() {
        let mut br = Browser::launch(&exe);
        check_report(&mut br, &report, &d);
        let n = br.eval("document.querySelectorAll('script, img').length + [...document.querySelectorAll('b')].filter(b => b.textContent === 'Not').length");
        assert_eq!(n, 0, "no element was made from the capture's strings");
    } else {
        eprintln!("chromium not installed: the browser half of this test skipped");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Pass 2 tracks only the drawn streams; its flags must be pass 1's: per drawn stream, as many
/// retransmission marks as pass 1 counted retransmissions.
#[test]
fn drawn_streams_carry_pass_one_flags() {
    let mut files =
        vec![Path::new(REPO_DATA).join("zeek-206_example_b.pcap"), Path::new(OWN_DATA).join("retrans-hol.pcap")];
    for n in
        ["packets-tcp_dupack.pcapng", "packets-tcp_zerowindowrecovery.pcapng", "ndpi-sites.pcapng", "ndpi-weibo.pcap"]
    {
        files.extend(corpus_file(n));
    }
    for f in &files {
        let d = netcase_html::gather(f, &netcase_html::Options::default()).expect("gather");
        assert!(!d.traces.is_empty(), "{}: a stream is drawn", f.display());
        for t in &d.traces {
            let marked =
                t.marks.iter().filter(|m| m.flags.intersects(netcase_flow::AnalysisFlags::RETRANSMISSION)).count();
            assert_eq!(
                marked as u64 + t.marks_dropped,
                u64::from(t.info.retransmissions),
                "{}: stream {} retransmission marks vs pass 1",
                f.display(),
                t.info.stream
            );
        }
        let packets: u64 = d.io.bins.iter().map(|b| u64::from(b.packets)).sum();
        assert_eq!(packets, d.analysis.info.frames, "{}: the I/O graph counts every frame", f.display());
        let io_retrans: u64 = d.io.bins.iter().map(|b| u64::from(b.retrans)).sum();
        let drawn: u64 = d.traces.iter().map(|t| u64::from(t.info.retransmissions)).sum();
        assert!(io_retrans >= drawn, "{}: the I/O graph has every drawn stream's retransmissions", f.display());
    }
}

/// Writes the README's screenshots when `NETCASE_DOCS_SHOTS` names a folder (otherwise does
/// nothing): `NETCASE_DOCS_SHOTS=docs cargo test -p netcase-html --test browser docs_screenshots`.
#[test]
fn docs_screenshots() {
    let Some(dest) = std::env::var_os("NETCASE_DOCS_SHOTS").map(PathBuf::from) else { return };
    let exe = chromium().expect("chromium for the screenshots");
    let dir = out_dir("docs");
    let mut br = Browser::launch(&exe);
    let shots = [
        (Path::new(REPO_DATA).join("zeek-206_example_b.pcap"), "#stream-0", 1460.0, "report-lossy-transfer.png"),
        (Path::new(CORPUS).join("ndpi-weibo.pcap"), "#app", 1400.0, "report-dns-http.png"),
    ];
    for (cap, sel, max_h, name) in shots {
        let (report, _) = write_report(&cap, &dir);
        br.open(&format!("file://{}", report.display()));
        let r = br.eval(&format!(
            "(() => {{ const r = document.querySelector('{sel}').getBoundingClientRect(); return [r.left + scrollX - 10, r.top + scrollY - 10, r.width + 20, r.height + 20]; }})()"
        ));
        let v: Vec<f64> = r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let png = br.shot(v[0], v[1], v[2], v[3].min(max_h));
        std::fs::write(dest.join(name), png).unwrap();
    }
    let _ = std::fs::remove_dir_all(dir);
}
