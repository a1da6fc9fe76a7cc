//! The binary's contract: exit codes, JSON envelope, `--events` lines, damaged files, closed
//! pipes, the catalogue commands.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netcase"))
}

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    p.is_dir().then_some(p).or_else(|| {
        eprintln!("skipping: shared corpus not found");
        None
    })
}

fn repo_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data").join(name)
}

#[test]
fn json_envelope_states_the_packet_count() {
    let out = bin().args(["pcap", "--json"]).arg(repo_data("zeek-206_example_b.pcap")).output().unwrap();
    assert!(out.status.code().unwrap() <= 1, "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["netcase"]["command"], "pcap");
    assert_eq!(v["netcase"]["schema"], netcase_model::SCHEMA_VERSION);
    assert_eq!(v["capture"]["packets"], 1556);
    assert_eq!(v["capture"]["tcp_streams"], 2);
    let flows = v["flows"].as_array().unwrap();
    assert_eq!(flows.iter().filter(|f| f["proto"] == "tcp").count(), 2);
    assert!(v["findings"].is_array());
    assert!(v["http"].is_array() && v["dns"].is_array());
}

#[test]
fn events_match_tshark_frames_tsv() {
    let Some(dir) = corpus() else { return };
    for name in ["packets-tcp_dupack.pcapng", "zeek-tcp-reassembly.pcap", "ndpi-ocsp.pcapng"] {
        let out = bin().args(["pcap", "--events"]).arg(dir.join(name)).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let mut ours = Vec::new();
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        // The first line is the envelope.
        let head: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(head["netcase"]["command"], "pcap-events");
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let flags: Vec<&str> = v["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
            ours.push((v["frame"].as_u64().unwrap(), v["stream"].as_u64().unwrap(), flags.join(",")));
        }
        let truth = std::fs::read_to_string(dir.join(format!("{name}.truth/frames.tsv"))).unwrap();
        let mut theirs = Vec::new();
        for line in truth.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            if !cols[2].is_empty() {
                theirs.push((cols[0].parse::<u64>().unwrap(), cols[1].parse::<u64>().unwrap(), cols[2].to_string()));
            }
        }
        assert_eq!(ours, theirs, "{name}");
    }
}

#[test]
fn damaged_file_keeps_its_prefix_and_names_the_offset() {
    let Some(dir) = corpus() else { return };
    let out = bin().args(["pcap", "--json"]).arg(dir.join("damaged/trunc-mid-record.pcap")).output().unwrap();
    assert!(out.status.code().unwrap() <= 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["capture"]["packets"], 20);
    assert_eq!(v["capture"]["damage"]["offset"], 12469);
    assert_eq!(v["capture"]["damage"]["frame"], 21);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("offset 12469") && err.contains("frame 21"), "{err}");

    // Nothing readable at all: exit 2 with the offset.
    let out = bin().args(["pcap"]).arg(dir.join("damaged/trunc-global-header.pcap")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("offset 0"));
    let out = bin().args(["pcap"]).arg(dir.join("damaged/empty.pcap")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn not_a_capture_is_an_error_with_exit_2() {
    let out = bin().args(["pcap"]).arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli.rs")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pcap or pcapng file"));
    let out = bin().args(["pcap", "/nonexistent/file.pcap"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn stdin_and_gzip_are_read() {
    let path = repo_data("packets-arppoison.pcapng");
    let mut child = bin()
        .args(["pcap", "--json", "-"])
        .stdin(std::fs::File::open(&path).unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut s = String::new();
    child.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    child.wait().unwrap();
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["capture"]["packets"], 165);
}

#[test]
fn closed_stdout_is_not_an_error() {
    let Some(dir) = corpus() else { return };
    // `netcase pcap --events big | head -1`: the reader of the pipe goes away early.
    let mut child = bin()
        .args(["pcap", "--events"])
        .arg(dir.join("ndpi-fix2.pcap"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut one = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut one).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn explain_knows_every_case_and_suggests_near_ids() {
    let out = bin().args(["cases", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<String> =
        v["cases"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 46);
    for id in &ids {
        let out = bin().args(["explain", id]).output().unwrap();
        assert!(out.status.success(), "{id}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Fix:"));
    }
    let out = bin().args(["explain", "close-wiat-leak"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("close-wait-leak"));
}

/// A capture whose frames netcase cannot decode at all (rewritten to link type 105, 802.11,
/// as `editcap -T ieee-802-11` does) is an error with the reason, never "no findings" and 0.
#[test]
fn nothing_analysable_exits_2_with_the_reason() {
    let mut bytes = std::fs::read(repo_data("zeek-206_example_b.pcap")).unwrap();
    // Classic pcap: the link type is the header's last 4 bytes (offset 20), in file byte order.
    let le = bytes[0] == 0xd4;
    let lt = if le { 105u32.to_le_bytes() } else { 105u32.to_be_bytes() };
    bytes[20..24].copy_from_slice(&lt);
    let dir = std::env::temp_dir().join(format!("netcase-80211-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("wifi.pcap");
    std::fs::write(&f, &bytes).unwrap();
    let out = bin().arg("pcap").arg(&f).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("none of the 1556 frames could be analysed"), "{err}");
    assert!(err.contains("link type 105"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("no findings"));
}

#[test]
fn completions_and_manual_pages() {
    let out = bin().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("_netcase()"));
    let out = bin().args(["man"]).output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(page.contains(".TH") && page.contains("pcap"), "{page}");
    let out = bin().args(["man", "pcap"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("\\-\\-fail\\-on"));
    let out = bin().args(["man", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_values_are_refused_before_any_work() {
    // A negative interval is a value, not an unknown flag.
    let out = bin().args(["check", "--interval", "-1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--interval must be"));
    // A sort key the table does not know, before the capture is read.
    let out = bin().args(["pcap", "/nonexistent.pcap", "--dns", "--sort", "bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'--sort'") && err.contains("rtt"), "{err}");
}
