//! Every capture of the shared corpus is read with capinfos' packet count and tshark's first
//! and last timestamps; every damaged file yields its valid prefix and names the damage with
//! the offset and frame number from `damaged.json`.

use netcase_capture::CaptureReader;
use std::path::{Path, PathBuf};

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: {} not found", p.display());
        None
    }
}

fn epoch(ns: i64) -> String {
    format!("{}.{:09}", ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000))
}

#[test]
fn corpus_packet_counts_and_timestamps_match_capinfos() {
    let Some(dir) = corpus() else { return };
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let truth = dir.join(format!("{name}.truth/summary.json"));
        let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(truth).unwrap()).unwrap();
        let mut r = CaptureReader::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut n = 0u64;
        let mut first = None;
        let mut last = 0;
        while let Some(f) = r.next_frame() {
            n += 1;
            assert_eq!(f.number, n);
            first.get_or_insert(f.ts_ns);
            last = f.ts_ns;
        }
        assert!(r.damage().is_none(), "{name}: {:?}", r.damage());
        assert_eq!(n, truth["capinfos_packets"].as_u64().unwrap(), "{name}: packet count");
        assert_eq!(epoch(first.unwrap()), truth["first_epoch"].as_str().unwrap(), "{name}: first timestamp");
        assert_eq!(epoch(last), truth["last_epoch"].as_str().unwrap(), "{name}: last timestamp");
        let ifaces = truth["interfaces"].as_array().unwrap().len();
        assert_eq!(r.info().interfaces.len(), ifaces, "{name}: interfaces");
        checked += 1;
    }
    assert!(checked >= 31, "only {checked} captures found");
}

#[test]
fn damaged_files_give_their_valid_prefix_and_the_offset() {
    let Some(dir) = corpus() else { return };
    let dir = dir.join("damaged");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("damaged.json")).unwrap()).unwrap();
    for d in spec.as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        let valid = d["valid_packets_before_damage"].as_u64().unwrap();
        let offset = d["damage_offset"].as_u64().unwrap();
        let path = dir.join(name);
        match CaptureReader::open(&path) {
            Err(e) => {
                // Only files with nothing readable may fail to open.
                assert_eq!(valid, 0, "{name}: {e}");
                assert_eq!(offset, 0, "{name}");
                let msg = e.to_string();
                assert!(msg.contains("offset 0"), "{name}: message names no offset: {msg}");
            }
            Ok(mut r) => {
                let mut n = 0;
                while r.next_frame().is_some() {
                    n += 1;
                }
                if name == "unknown-block.pcapng" {
                    assert!(r.damage().is_none(), "{name}: {:?}", r.damage());
                    assert_eq!(n, 134, "{name}");
                    assert_eq!(r.info().skipped_blocks, 1);
                    assert_eq!(r.skipped()[0].offset, offset);
                    continue;
                }
                assert_eq!(n, valid, "{name}: frames before the damage");
                let dmg = r.damage().unwrap_or_else(|| panic!("{name}: damage not reported"));
                assert_eq!(dmg.offset, offset, "{name}: {dmg}");
                assert_eq!(dmg.frame, valid + 1, "{name}: {dmg}");
                eprintln!("{name}: {n} frames, then {dmg}");
            }
        }
    }
}
