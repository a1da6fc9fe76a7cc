//! End to end: every lab and its control, in parallel, as root.
//!
//! For each run the test asserts the lab's own ground truth (the fault happened; the control
//! stayed healthy), checks a few captures with tshark, and asserts the verdict for the labs
//! whose diagnosis rules exist (`VERDICT_READY`, or `NETCASE_LAB_VERDICT=all|id,id`). On every
//! control run, a finding of severity warning or error of any case, from any source the lab
//! diagnosed (its capture, its namespaces), fails the test.
//!
//! Environment:
//! - `NETCASE_BIN`: the netcase executable for the diagnosis (default `target/debug/netcase`;
//!   build it first with `cargo build -p netcase`). Without it verdicts are not asserted.
//! - `NETCASE_LABS=id,id`: only these labs. `NETCASE_LAB_RUNS=N`: run each N times.
//! - `NETCASE_LAB_JOBS=N`: labs in parallel (default 4).
//! - `NETCASE_LAB_ALLOW_HOST_CHANGES=1`: include conntrack-table-full.
//! - `NETCASE_LAB_E2E=0`: skip.

use netcase_lab::{Diagnose, ExeDiagnose, NoDiagnosis, Report, RunOptions};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// Labs whose verdict (netcase names the case with the lab's numbers) is asserted: every lab
/// (a new lab joins when its rule lands; `every_lab_is_verdict_ready` lists the missing ones).
const VERDICT_READY: &[&str] = &[
    "accept-queue-overflow",
    "client-timeout-fin-wait2",
    "close-wait-in-accept-queue",
    "close-wait-leak",
    "conntrack-table-full",
    "dns-conntrack-race-5s",
    "dns-id-collision",
    "dupack-no-fast-retransmit",
    "http-204-content-length",
    "ip-conflict",
    "iptables-redirect-hijack",
    "keepalive-race-502",
    "keepalive-settings",
    "linger-zero-rst",
    "nagle-delayed-ack",
    "nat-timestamp-paws",
    "no-window-scale",
    "pmtu-blackhole",
    "port-unreachable",
    "receive-window-limited",
    "resolver-order",
    "retrans-hol-blocking",
    "snat-port-collision",
    "syn-queue-overflow",
    "time-wait-pileup",
    "udp-rcvbuf-drops",
    "udp-truncation",
    "zero-window",
];

/// tshark display filters that must match at least `min` frames in the fault capture and none
/// in the control capture.
const TSHARK: &[(&str, &str, usize)] = &[
    ("port-unreachable", "tcp.flags.reset == 1 && tcp.flags.ack == 1 && tcp.srcport == 8080 && tcp.ack == 1", 5),
    ("linger-zero-rst", "tcp.flags.reset == 1 && tcp.srcport == 8080", 5),
    ("client-timeout-fin-wait2", "tcp.flags.reset == 1 && tcp.dstport == 8080", 4),
    ("keepalive-race-502", "tcp.flags.reset == 1 && tcp.srcport == 8080", 5),
    ("keepalive-settings", "tcp.analysis.keep_alive", 3),
    ("zero-window", "tcp.analysis.zero_window", 2),
    ("no-window-scale", "tcp.flags.syn == 1 && !tcp.options.wscale.shift", 2),
    ("retrans-hol-blocking", "tcp.analysis.retransmission || tcp.analysis.fast_retransmission", 1),
    ("udp-truncation", "udp.length > 1032", 20),
    ("http-204-content-length", "http.response.code == 204 && http.content_length_header", 1),
    ("nat-timestamp-paws", "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.analysis.retransmission", 1),
    ("snat-port-collision", "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.analysis.retransmission", 1),
    // Full-size segments (1448 bytes) resent: in the control the ICMP arrives and the resends
    // are 1348 bytes.
    ("pmtu-blackhole", "tcp.analysis.retransmission && tcp.len > 1400", 2),
    // Captured at the sender: segments that end exactly at the edge of a window under 20 KB
    // (the control's autotuned window can be filled once in slow start, at 64 KB or more).
    ("receive-window-limited", "tcp.analysis.window_full && tcp.analysis.bytes_in_flight <= 20000", 20),
];

fn env_list(name: &str) -> Option<Vec<String>> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
}

fn netcase_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("NETCASE_BIN") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/netcase");
    p.exists().then_some(p)
}

fn tshark_count(file: &std::path::Path, filter: &str) -> Option<usize> {
    let out = Command::new("tshark").args(["-n", "-r"]).arg(file).args(["-Y", filter]).output().ok()?;
    if !out.status.success() {
        eprintln!("tshark failed on {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).lines().count())
}

struct Outcome {
    lab: String,
    control: bool,
    report: Result<Report, String>,
    tshark: Option<(String, Option<usize>)>,
}

#[test]
fn every_lab_reproduces_and_its_control_stays_healthy() {
    if std::env::var("NETCASE_LAB_E2E").as_deref() == Ok("0") {
        eprintln!("skipped: NETCASE_LAB_E2E=0");
        return;
    }
    if !netcase_lab::is_root() {
        eprintln!("skipped: labs need root");
        return;
    }
    let bin = netcase_bin();
    let diag: Box<dyn Diagnose> = match &bin {
        Some(exe) => Box::new(ExeDiagnose { exe: exe.clone() }),
        None => {
            eprintln!("note: no netcase executable (cargo build -p netcase); verdicts and DNS labs are skipped");
            Box::new(NoDiagnosis)
        }
    };
    let only = env_list("NETCASE_LABS");
    let allow_host = std::env::var("NETCASE_LAB_ALLOW_HOST_CHANGES").as_deref() == Ok("1");
    let ready: Vec<String> = match std::env::var("NETCASE_LAB_VERDICT").ok().as_deref() {
        Some("all") => netcase_lab::catalogue().iter().map(|l| l.id().to_owned()).collect(),
        Some(v) if !v.is_empty() => v.split(',').map(str::to_owned).collect(),
        _ => VERDICT_READY.iter().map(|s| (*s).to_owned()).collect(),
    };
    let runs: usize = std::env::var("NETCASE_LAB_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let jobs: usize = std::env::var("NETCASE_LAB_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(4).max(1);
    let dir = std::env::temp_dir().join(format!("netcase-lab-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Labs that change a host-wide value (the global nf_conntrack_max) run after the others,
    // one at a time: the lowered limit would otherwise fill the tables of labs running beside
    // them, including their own healthy twin.
    let mut tasks = Vec::new();
    let mut exclusive = Vec::new();
    for _ in 0..runs {
        for l in netcase_lab::catalogue() {
            if only.as_ref().is_some_and(|o| !o.iter().any(|x| x == l.id())) {
                continue;
            }
            if l.host_changes && !allow_host {
                continue;
            }
            if (l.id().starts_with("dns-conntrack") || l.id() == "resolver-order") && bin.is_none() {
                continue;
            }
            let list = if l.host_changes { &mut exclusive } else { &mut tasks };
            list.push((l.id(), false));
            list.push((l.id(), true));
        }
    }
    let n_parallel = tasks.len();
    let outcomes = Mutex::new(Vec::new());
    for (batch, workers) in [(tasks, jobs), (exclusive, 1)] {
        let tasks = Mutex::new(
            batch
                .into_iter()
                .enumerate()
                .map(|(i, t)| (i + n_parallel * usize::from(workers == 1), t))
                .collect::<Vec<_>>(),
        );
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let Some((i, (lab, control))) = tasks.lock().unwrap().pop() else { break };
                    let cap = dir.join(format!("{lab}-{}-{i}.pcap", if control { "control" } else { "fault" }));
                    let opts = RunOptions {
                        control,
                        capture: Some(cap.clone()),
                        allow_host_changes: allow_host,
                        exe: bin.clone(),
                        ..RunOptions::default()
                    };
                    let report = netcase_lab::run(lab, &opts, diag.as_ref()).map_err(|e| format!("{e:#}"));
                    let tshark = TSHARK
                        .iter()
                        .find(|t| t.0 == lab)
                        .filter(|_| report.is_ok() && cap.exists())
                        .map(|t| (t.1.to_owned(), tshark_count(&cap, t.1)));
                    if let Ok(r) = &report {
                        eprintln!("{}", r.render_text());
                    }
                    outcomes.lock().unwrap().push(Outcome { lab: lab.to_owned(), control, report, tshark });
                });
            }
        });
    }

    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for o in outcomes.into_inner().unwrap() {
        let mode = if o.control { "control" } else { "fault" };
        let r = match &o.report {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{} {mode}: error: {e}", o.lab));
                continue;
            }
        };
        if !r.reproduced {
            let bad: Vec<&str> = r.facts.iter().filter(|f| !f.ok).map(|f| f.what.as_str()).collect();
            failures.push(format!("{} {mode}: ground truth failed: {}", o.lab, bad.join("; ")));
        }
        if let Some((filter, n)) = &o.tshark {
            let min = TSHARK.iter().find(|t| t.0 == o.lab).map_or(1, |t| t.2);
            match n {
                Some(n) if !o.control && *n < min => {
                    failures.push(format!("{} {mode}: tshark `{filter}` matched {n} frames, want >= {min}", o.lab))
                }
                Some(n) if o.control && *n > 0 => {
                    failures.push(format!("{} {mode}: tshark `{filter}` matched {n} frames in the control", o.lab))
                }
                None => failures.push(format!("{} {mode}: tshark could not read the capture", o.lab)),
                _ => {}
            }
        }
        // A healthy twin must draw no warning or error of any case from any source (a
        // finding of another case is as wrong there as one of the lab's own).
        if o.control && bin.is_some() {
            for d in &r.diagnosis {
                for f in d.findings.iter().filter(|f| f.severity == "warning" || f.severity == "error") {
                    failures.push(format!(
                        "{} {mode}: {} [{}] {} on the healthy twin: {}",
                        o.lab, d.source, f.severity, f.case, f.summary
                    ));
                }
            }
        }
        let verdict_on = ready.iter().any(|x| x == &o.lab) && bin.is_some();
        if verdict_on && !r.verdict.holds {
            failures.push(format!("{} {mode}: verdict does not hold: {}", o.lab, r.verdict.lines.join(" | ")));
        }
        summary.push(format!(
            "{:<28} {mode:<7} truth={} verdict={}{} {:.1}s",
            o.lab,
            if r.reproduced { "ok" } else { "BAD" },
            if r.verdict.holds { "holds" } else { "no" },
            if verdict_on { " (asserted)" } else { "" },
            r.seconds
        ));
    }
    summary.sort();
    eprintln!("{}", summary.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_lab_is_verdict_ready() {
    let missing: Vec<&str> =
        netcase_lab::catalogue().iter().map(|l| l.id()).filter(|id| !VERDICT_READY.contains(id)).collect();
    assert!(missing.is_empty(), "labs without an asserted verdict: {missing:?}");
    assert_eq!(VERDICT_READY.len(), netcase_lab::catalogue().len());
}
