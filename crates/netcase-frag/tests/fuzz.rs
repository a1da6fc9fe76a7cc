//! Deterministic pseudo-random fragment sequences: no panic, memory within the bound.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

mod common;

use common::*;
use netcase_frag::{Config, Reassembler};
use netcase_wire::{decode, LinkType};

/// Random fragments of a few datagrams (random offsets, lengths, flags, ids, timestamps that
/// jump and go backwards), plus random byte damage to whole frames.
#[test]
fn random_fragment_sequences() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut reassembled = 0u64;
    let mut fragments = 0u64;
    for round in 0..3000u64 {
        let cfg = Config {
            timeout_ns: 1 + rng.below(5_000_000_000) as i64,
            max_bytes: rng.below(40_000) as usize,
            max_datagrams: rng.below(6) as usize,
            max_datagram_len: 20 + rng.below(70_000) as usize,
        };
        let mut r = Reassembler::new(cfg);
        let mut ts: i64 = match round % 4 {
            0 => i64::MIN + rng.below(1000) as i64,
            1 => i64::MAX - rng.below(1000) as i64,
            _ => rng.below(1 << 40) as i64,
        };
        let n = 1 + rng.below(40);
        for frame in 0..n {
            let id = rng.below(3) as u16;
            let more = rng.below(3) != 0;
            let off = match rng.below(4) {
                0 => 0,
                1 => 65528 - 8 * rng.below(4) as usize,
                _ => 8 * rng.below(300) as usize,
            };
            let len = match rng.below(4) {
                0 => rng.below(16) as usize,
                1 => 1480,
                _ => rng.below(3000) as usize,
            };
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let mut f = if rng.below(5) == 0 {
                v6_frag(u32::from(id), 17, off, more, &bytes)
            } else {
                v4_frag(id, if rng.below(4) == 0 { 6 } else { 17 }, off, more, &bytes)
            };
            match rng.below(8) {
                0 => f.truncate(rng.below(f.len() as u64 + 1) as usize),
                1 => {
                    for _ in 0..1 + rng.below(4) {
                        let i = rng.below(f.len() as u64) as usize;
                        f[i] = rng.next() as u8;
                    }
                }
                _ => {}
            }
            ts = match rng.below(10) {
                0 => ts.wrapping_sub(rng.below(10_000_000_000) as i64),
                1 => ts.wrapping_add(rng.below(60_000_000_000) as i64),
                _ => ts.saturating_add(rng.below(1_000_000) as i64),
            };
            let pkt = decode(LinkType::Raw, &f);
            if pkt.ip.is_some_and(|ip| ip.fragment.is_some()) {
                fragments += 1;
            }
            if let Some(d) = r.push(frame, ts, &pkt) {
                reassembled += 1;
                assert!(d.bytes.len() <= cfg.max_datagram_len, "{} > {}", d.bytes.len(), cfg.max_datagram_len);
                let whole = decode(LinkType::Raw, d.bytes);
                let ip = whole.ip.expect("reassembled datagram decodes");
                assert_eq!(ip.fragment, None);
                assert_eq!(ip.payload_len as usize, whole.ip_payload.len());
                assert!(d.first_frame <= d.last_frame && d.last_frame == frame);
            }
            let s = r.stats();
            assert!(s.bytes_held <= cfg.max_bytes, "held {} > {}", s.bytes_held, cfg.max_bytes);
            assert!(s.peak_bytes <= cfg.max_bytes);
            assert!(r.in_progress() <= cfg.max_datagrams.max(1));
        }
        let rep = r.finish();
        let s = &rep.stats;
        assert_eq!(s.bytes_held, 0);
        assert!(rep.incomplete.len() <= netcase_frag::MAX_INCOMPLETE_KEPT);
        // Every datagram given up is counted under exactly one reason.
        let by_reason = s.timed_out
            + s.dropped_at_bound
            + s.incomplete_at_end
            + s.too_large
            + s.inconsistent_len
            + s.incompletely_captured;
        assert_eq!(rep.incomplete_total, by_reason, "{s:?}");
    }
    // The generator does produce completions and fragments (the test is not vacuous).
    assert!(fragments > 30_000, "{fragments}");
    assert!(reassembled > 100, "{reassembled}");
}

/// Random sequences with the default limits that do complete: random splits of random
/// datagrams, shuffled, with duplicates, interleaved with other datagrams.
#[test]
fn random_splits_reassemble_exactly() {
    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    let mut r = Reassembler::new(Config::default());
    for round in 0..2000u32 {
        let size = rng.below(9000) as usize;
        let v6 = round % 3 == 0;
        let (u, p) = if v6 { udp6(size, round as u8) } else { udp4(size, round as u8) };
        // Random cut points, multiples of 8.
        let mut cuts = vec![0usize];
        while let Some(&last) = cuts.last() {
            let next = last + 8 * (1 + rng.below(200) as usize);
            if next >= u.len() {
                break;
            }
            cuts.push(next);
        }
        cuts.push(u.len());
        let mut frags: Vec<Vec<u8>> = cuts
            .windows(2)
            .map(|w| {
                let more = w[1] != u.len();
                if v6 {
                    v6_frag(round, 17, w[0], more, &u[w[0]..w[1]])
                } else {
                    v4_frag(round as u16, 17, w[0], more, &u[w[0]..w[1]])
                }
            })
            .collect();
        if frags.len() == 1 && !v6 {
            continue; // offset 0 without MF is not a fragment
        }
        rng.shuffle(&mut frags);
        if frags.len() >= 2 && rng.below(2) == 0 {
            // A duplicate of a fragment, seen again before the datagram completes.
            let last = frags.len() - 1;
            let i = rng.below(last as u64) as usize;
            let at = i + 1 + rng.below((last - i) as u64) as usize;
            let dup = frags[i].clone();
            frags.insert(at, dup);
        }
        let done = feed_all(&mut r, &frags);
        assert_eq!(done.len(), 1, "round {round}");
        assert_eq!(udp_of(&done[0].bytes).2, p);
    }
    let rep = r.finish();
    assert_eq!(rep.incomplete_total, 0, "{:?}", rep.incomplete.first());
    assert_eq!(rep.stats.overlap_inconsistent, 0);
}
