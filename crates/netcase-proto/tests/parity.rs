//! Parity with tshark on the shared corpus (`NAME.truth/dns.tsv`, `NAME.truth/http.tsv`).
//!
//! DNS (proto `dns` only; mDNS/LLMNR are printed but not scored): every query row must have
//! the same `dns.response_in` (none for unanswered queries), every response row the same
//! `dns.response_to` and `dns.time` within 1 µs. HTTP: every request row the same
//! `http.response_in`, every response row the same `http.request_in` and `http.time` within
//! 1 µs. Transactions netcase reports that tshark does not count against the score.

mod common;

use netcase_proto::ProtoOutput;
use std::collections::HashMap;
use std::path::Path;

fn ns(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    let mut frac = f.to_string();
    frac.truncate(9);
    while frac.len() < 9 {
        frac.push('0');
    }
    Some(i.parse::<i64>().ok()? * 1_000_000_000 + frac.parse::<i64>().ok()?)
}

fn num(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

struct Tsv {
    cols: HashMap<String, usize>,
    rows: Vec<Vec<String>>,
}

impl Tsv {
    fn read(p: &Path) -> Option<Tsv> {
        let text = std::fs::read_to_string(p).ok()?;
        let mut lines = text.lines();
        let cols = lines.next()?.split('\t').enumerate().map(|(i, c)| (c.to_string(), i)).collect();
        let rows = lines.map(|l| l.split('\t').map(str::to_string).collect()).collect();
        Some(Tsv { cols, rows })
    }
    fn get<'a>(&self, row: &'a [String], col: &str) -> &'a str {
        self.cols.get(col).and_then(|&i| row.get(i)).map_or("", String::as_str)
    }
}

#[derive(Default, Debug, Clone, Copy)]
struct Score {
    ok: u64,
    total: u64,
    extra: u64,
}

impl Score {
    fn add(&mut self, o: Score) {
        self.ok += o.ok;
        self.total += o.total;
        self.extra += o.extra;
    }
    fn pct(&self) -> f64 {
        let d = self.total + self.extra;
        if d == 0 {
            100.0
        } else {
            100.0 * self.ok as f64 / d as f64
        }
    }
}

/// Whether netcase's (matched frame, time) of a response is tshark's `want` frame and
/// `want_t` time, within 1 µs (or both without a time).
fn same_response(got: &(Option<u64>, Option<i64>), want: Option<u64>, want_t: Option<i64>) -> bool {
    got.0 == want
        && match (got.1, want_t) {
            (Some(a), Some(b)) => (a - b).abs() <= 1_000,
            (None, None) => true,
            _ => false,
        }
}

fn dns_score(out: &ProtoOutput, tsv: &Tsv, proto: &str, diffs: &mut Vec<String>) -> Score {
    let mut by_query: HashMap<u64, (Option<u64>, Option<i64>)> = HashMap::new();
    let mut by_resp: HashMap<u64, (Option<u64>, Option<i64>)> = HashMap::new();
    for t in &out.dns {
        if t.flavor.as_str() != proto {
            continue;
        }
        for &q in &t.query_frames {
            by_query.insert(q, (t.response_frame, t.response_time_ns));
        }
        if let Some(r) = t.response_frame {
            by_resp.insert(r, (t.query_frame(), t.response_time_ns));
        }
        for &r in &t.duplicate_frames {
            by_resp.entry(r).or_insert((None, None));
        }
    }
    let mut s = Score::default();
    let mut seen = std::collections::HashSet::new();
    for row in &tsv.rows {
        if tsv.get(row, "proto") != proto || tsv.get(row, "response").contains(',') {
            continue;
        }
        let frame = num(tsv.get(row, "frame")).unwrap_or(0);
        seen.insert(frame);
        s.total += 1;
        if tsv.get(row, "response") == "0" {
            let want = num(tsv.get(row, "response_in"));
            match by_query.get(&frame) {
                Some((got, _)) if *got == want => s.ok += 1,
                other => diffs.push(format!("dns query {frame}: tshark response_in {want:?}, netcase {other:?}")),
            }
        } else {
            let want = num(tsv.get(row, "response_to"));
            let want_t = ns(tsv.get(row, "time"));
            match by_resp.get(&frame) {
                Some(got) if same_response(got, want, want_t) => s.ok += 1,
                other => diffs.push(format!(
                    "dns response {frame}: tshark response_to {want:?} time {want_t:?}, netcase {other:?}"
                )),
            }
        }
    }
    for f in by_query.keys().chain(by_resp.keys()) {
        if !seen.contains(f) {
            s.extra += 1;
            diffs.push(format!("dns frame {f}: netcase only"));
        }
    }
    s
}

fn http_score(out: &ProtoOutput, tsv: &Tsv, diffs: &mut Vec<String>) -> Score {
    let mut by_req: HashMap<u64, Option<u64>> = HashMap::new();
    let mut by_resp: HashMap<u64, (Option<u64>, Option<i64>)> = HashMap::new();
    for t in &out.http {
        if let Some(q) = t.request_frame {
            by_req.insert(q, t.response_frame);
        }
        if let Some(r) = t.response_frame {
            by_resp.insert(r, (t.request_frame, t.http_time_ns()));
        }
    }
    let mut s = Score::default();
    let mut seen_req = std::collections::HashSet::new();
    let mut seen_resp = std::collections::HashSet::new();
    for row in &tsv.rows {
        let kind = tsv.get(row, "kind");
        if kind.contains(',') {
            continue;
        }
        let frame = num(tsv.get(row, "frame")).unwrap_or(0);
        s.total += 1;
        if kind == "request" {
            seen_req.insert(frame);
            let want = num(tsv.get(row, "response_in"));
            match by_req.get(&frame) {
                Some(got) if *got == want => s.ok += 1,
                other => diffs.push(format!(
                    "http request {frame} {}: tshark response_in {want:?}, netcase {other:?}",
                    tsv.get(row, "uri")
                )),
            }
        } else {
            seen_resp.insert(frame);
            let want = num(tsv.get(row, "request_in"));
            let want_t = ns(tsv.get(row, "time"));
            match by_resp.get(&frame) {
                Some(got) if same_response(got, want, want_t) => s.ok += 1,
                other => diffs.push(format!(
                    "http response {frame} {}: tshark request_in {want:?} time {want_t:?}, netcase {other:?}",
                    tsv.get(row, "code")
                )),
            }
        }
    }
    for f in by_req.keys() {
        if !seen_req.contains(f) {
            s.extra += 1;
            diffs.push(format!("http request frame {f}: netcase only"));
        }
    }
    for f in by_resp.keys() {
        if !seen_resp.contains(f) {
            s.extra += 1;
            diffs.push(format!("http response frame {f}: netcase only"));
        }
    }
    s
}

#[test]
fn parity_with_tshark() {
    let Some(dir) = netcase_testkit::corpus() else {
        eprintln!("corpus not found; skipped");
        return;
    };
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("read corpus")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".truth"))
        .collect();
    names.sort();
    let (mut dns, mut mdns, mut http) = (Score::default(), Score::default(), Score::default());
    let verbose = std::env::var_os("PARITY_VERBOSE").is_some();
    println!("{:<48} {:>14} {:>14} {:>14}", "capture", "dns", "mdns/llmnr", "http");
    for n in names {
        let cap = dir.join(n.trim_end_matches(".truth"));
        let truth = dir.join(&n);
        let (Some(dt), Some(ht)) = (Tsv::read(&truth.join("dns.tsv")), Tsv::read(&truth.join("http.tsv"))) else {
            continue;
        };
        let (out, _) = common::run(&cap);
        for t in &out.http {
            if let Some(i) = t.conn {
                let c = &out.conns[i as usize];
                assert_eq!((Some(c.client), Some(c.server), c.stream), (t.client, t.server, t.stream), "conn index");
            }
        }
        let mut diffs = Vec::new();
        let d = dns_score(&out, &dt, "dns", &mut diffs);
        let mut m = dns_score(&out, &dt, "mdns", &mut Vec::new());
        m.add(dns_score(&out, &dt, "llmnr", &mut Vec::new()));
        let h = http_score(&out, &ht, &mut diffs);
        let cell = |s: Score| {
            format!("{}/{}{}", s.ok, s.total, if s.extra > 0 { format!("+{}", s.extra) } else { String::new() })
        };
        println!("{:<48} {:>14} {:>14} {:>14}", cap.file_name().unwrap().to_string_lossy(), cell(d), cell(m), cell(h));
        let limit = if verbose { usize::MAX } else { 5 };
        for line in diffs.iter().take(limit) {
            println!("    {line}");
        }
        dns.add(d);
        mdns.add(m);
        http.add(h);
    }
    println!("DNS  agreement {:.2}% ({} of {} tshark rows, {} netcase-only)", dns.pct(), dns.ok, dns.total, dns.extra);
    println!(
        "mDNS/LLMNR agreement {:.2}% ({} of {}, {} netcase-only; not scored)",
        mdns.pct(),
        mdns.ok,
        mdns.total,
        mdns.extra
    );
    println!(
        "HTTP agreement {:.2}% ({} of {} tshark rows, {} netcase-only)",
        http.pct(),
        http.ok,
        http.total,
        http.extra
    );
    assert!(dns.pct() >= 99.0, "dns parity below 99%");
    assert!(http.pct() >= 99.0, "http parity below 99%");
}
