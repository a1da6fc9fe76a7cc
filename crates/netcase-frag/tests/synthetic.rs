//! Reassembly of hand-built fragment sequences.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

mod common;

use common::*;
use netcase_frag::{Config, IncompleteReason, Reassembler};
use netcase_wire::{decode, LinkType};

const SEC: i64 = 1_000_000_000;

fn check_v4_ip_header(bytes: &[u8], udp_len: usize) {
    // Version/IHL, total length, flags/offset cleared, checksum valid.
    assert_eq!(bytes[0], 0x45);
    assert_eq!(usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 20 + udp_len);
    assert_eq!(bytes.len(), 20 + udp_len);
    assert_eq!(&bytes[6..8], &[0, 0]);
    let mut s = 0u32;
    for c in bytes[..20].chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while s > 0xFFFF {
        s = (s & 0xFFFF) + (s >> 16);
    }
    assert_eq!(s, 0xFFFF, "header checksum");
    assert_eq!(&bytes[12..16], &SRC4);
    assert_eq!(&bytes[16..20], &DST4);
}

#[test]
fn v4_in_order() {
    let (u, p) = udp4(3000, 1);
    let frags = split_v4(0x1234, 17, &u, 1480);
    assert_eq!(frags.len(), 3);
    let mut r = Reassembler::new(Config::default());
    let done = feed_all(&mut r, &frags);
    assert_eq!(done.len(), 1);
    let d = &done[0];
    assert_eq!((d.first_frame, d.last_frame, d.fragments, d.version), (1, 3, 3, 4));
    check_v4_ip_header(&d.bytes, u.len());
    assert_eq!(udp_of(&d.bytes), (5353, 53, p));
    let s = r.stats();
    assert_eq!((s.fragments, s.fragments_v4, s.reassembled, s.reassembled_v4), (3, 3, 1, 1));
    assert_eq!(s.bytes_held, 0);
    assert_eq!(s.peak_bytes, u.len());
    let rep = r.finish();
    assert!(rep.incomplete.is_empty());
    assert_eq!(rep.incomplete_total, 0);
}

#[test]
fn v4_reversed_and_shuffled() {
    let (u, p) = udp4(4000, 2);
    let mut frags = split_v4(7, 17, &u, 256);
    frags.reverse();
    let mut r = Reassembler::new(Config::default());
    let done = feed_all(&mut r, &frags);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].fragments as usize, frags.len());
    assert_eq!(udp_of(&done[0].bytes).2, p);

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..50u16 {
        let mut frags = split_v4(round, 17, &u, 8 * (1 + rng.below(200) as usize));
        rng.shuffle(&mut frags);
        let done = feed_all(&mut r, &frags);
        assert_eq!(done.len(), 1, "round {round}");
        assert_eq!(udp_of(&done[0].bytes).2, p);
        assert_eq!(done[0].last_frame, frags.len() as u64);
    }
    let rep = r.finish();
    assert_eq!(rep.stats.reassembled, 51);
    assert_eq!(rep.incomplete_total, 0);
    assert_eq!(rep.stats.bytes_held, 0);
}

#[test]
fn duplicate_fragment_is_not_an_error() {
    let (u, p) = udp4(2000, 3);
    let f = split_v4(9, 17, &u, 512);
    let seq = vec![f[0].clone(), f[1].clone(), f[1].clone(), f[0].clone(), f[3].clone(), f[2].clone()];
    let mut r = Reassembler::new(Config::default());
    let done = feed_all(&mut r, &seq);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].fragments, 6);
    assert_eq!(udp_of(&done[0].bytes).2, p);
    let s = r.stats();
    assert_eq!((s.duplicates, s.overlap_same, s.overlap_inconsistent), (2, 0, 0));
}

#[test]
fn overlap_with_same_bytes() {
    let (u, p) = udp4(100, 4);
    // [0,48) [32,80) [80,108): the second overlaps 16 bytes of the first, identically.
    let seq = vec![
        v4_frag(5, 17, 0, true, &u[0..48]),
        v4_frag(5, 17, 32, true, &u[32..80]),
        v4_frag(5, 17, 80, false, &u[80..]),
    ];
    let mut r = Reassembler::new(Config::default());
    let done = feed_all(&mut r, &seq);
    assert_eq!(done.len(), 1);
    assert_eq!(udp_of(&done[0].bytes).2, p);
    let s = r.stats();
    assert_eq!((s.duplicates, s.overlap_same, s.overlap_inconsistent), (0, 1, 0));
}

#[test]
fn overlap_with_different_bytes_keeps_the_first() {
    let (u, p) = udp4(100, 5);
    let mut forged = u[32..80].to_vec();
    for b in &mut forged[..16] {
        *b ^= 0xFF;
    }
    let seq = vec![
        v4_frag(6, 17, 0, true, &u[0..48]),
        v4_frag(6, 17, 32, true, &forged),
        v4_frag(6, 17, 80, false, &u[80..]),
    ];
    let mut r = Reassembler::new(Config::default());
    let done = feed_all(&mut r, &seq);
    assert_eq!(done.len(), 1);
    assert_eq!(udp_of(&done[0].bytes).2, p, "first bytes win");
    let s = r.stats();
    assert_eq!((s.duplicates, s.overlap_same, s.overlap_inconsistent), (0, 0, 1));

    // Forged bytes arriving first win instead.
    let seq = vec![
        v4_frag(6, 17, 32, true, &forged),
        v4_frag(6, 17, 0, true, &u[0..48]),
        v4_frag(6, 17, 80, false, &u[80..]),
    ];
    let done = feed_all(&mut r, &seq);
    assert_eq!(done.len(), 1);
    let got = done[0].bytes[20..].to_vec();
    assert_eq!(&got[32..48], &forged[..16]);
    assert_eq!(r.stats().overlap_inconsistent, 2);
}

#[test]
fn missing_middle_is_incomplete_at_finish() {
    let (u, _) = udp4(3000, 6);
    let f = split_v4(0xBEEF, 17, &u, 1000);
    let seq = [f[0].clone(), f[2].clone(), f[3].clone()];
    let mut r = Reassembler::new(Config::default());
    let v: Vec<(i64, &[u8])> = vec![(10, &seq[0]), (20, &seq[1]), (30, &seq[2])];
    assert!(feed(&mut r, &v).is_empty());
    assert_eq!(r.in_progress(), 1);
    let rep = r.finish();
    assert_eq!(rep.stats.incomplete_at_end, 1);
    assert_eq!(rep.incomplete_total, 1);
    let i = &rep.incomplete[0];
    assert_eq!(i.reason, IncompleteReason::EndOfCapture);
    assert_eq!((i.first_frame, i.last_frame, i.first_ts_ns, i.last_ts_ns), (1, 3, 10, 30));
    assert_eq!((i.id, i.proto, i.version, i.fragments), (0xBEEF, 17, 4, 3));
    assert_eq!(i.total_len, Some(u.len() as u32));
    assert_eq!(i.bytes_held, (u.len() - 1000) as u32);
    assert!(i.first_seen);
    assert_eq!(i.ports, Some((5353, 53)));
    assert_eq!(i.src.to_string(), "192.0.2.1");
    assert_eq!(i.dst.to_string(), "198.51.100.7");
}

#[test]
fn timeout_drops_and_the_late_fragment_starts_anew() {
    let (u, _) = udp4(1000, 7);
    let f = split_v4(42, 17, &u, 512);
    assert_eq!(f.len(), 2);
    let mut r = Reassembler::new(Config::default());
    let v: Vec<(i64, &[u8])> = vec![(100 * SEC, &f[0]), (131 * SEC, &f[1])];
    assert!(feed(&mut r, &v).is_empty());
    assert_eq!(r.stats().timed_out, 1);
    let rep = r.finish();
    assert_eq!((rep.stats.timed_out, rep.stats.incomplete_at_end, rep.incomplete_total), (1, 1, 2));
    let (a, b) = (&rep.incomplete[0], &rep.incomplete[1]);
    assert_eq!((a.reason, a.first_frame, a.first_seen, a.total_len), (IncompleteReason::Timeout, 1, true, None));
    assert_eq!((b.reason, b.first_frame, b.first_seen), (IncompleteReason::EndOfCapture, 2, false));
    assert_eq!(b.total_len, Some(u.len() as u32));
    assert_eq!(b.ports, None);

    // Within the timeout (30 s exactly) it completes; timestamps going backwards never expire.
    let mut r = Reassembler::new(Config::default());
    let v: Vec<(i64, &[u8])> = vec![(100 * SEC, &f[0]), (130 * SEC, &f[1])];
    assert_eq!(feed(&mut r, &v).len(), 1);
    let v: Vec<(i64, &[u8])> = vec![(i64::MAX, &f[0]), (i64::MIN, &f[1])];
    assert_eq!(feed(&mut r, &v).len(), 1);
    let v: Vec<(i64, &[u8])> = vec![(i64::MIN, &f[0]), (i64::MAX, &f[1])];
    assert!(feed(&mut r, &v).is_empty());
    assert_eq!(r.stats().timed_out, 1);
}

#[test]
fn memory_bound_drops_the_oldest() {
    let mut r = Reassembler::new(Config { max_datagrams: 2, ..Config::default() });
    let (ua, _) = udp4(1000, 10);
    let (ub, pb) = udp4(1000, 11);
    let (uc, pc) = udp4(1000, 12);
    let a = split_v4(1, 17, &ua, 512);
    let b = split_v4(2, 17, &ub, 512);
    let c = split_v4(3, 17, &uc, 512);
    let seq = vec![a[0].clone(), b[0].clone(), c[0].clone(), b[1].clone(), c[1].clone(), a[1].clone()];
    let done = feed_all(&mut r, &seq);
    assert_eq!(done.len(), 2);
    assert_eq!(udp_of(&done[0].bytes).2, pb);
    assert_eq!(udp_of(&done[1].bytes).2, pc);
    let rep = r.finish();
    assert_eq!(rep.stats.dropped_at_bound, 1);
    assert_eq!(rep.stats.peak_datagrams, 2);
    assert_eq!(rep.incomplete[0].reason, IncompleteReason::DroppedAtBound);
    assert_eq!(rep.incomplete[0].id, 1);
    assert_eq!(rep.incomplete[1].reason, IncompleteReason::EndOfCapture);
    assert_eq!(rep.incomplete[1].first_frame, 6);

    // The byte bound: 1600 bytes, three datagrams of 1008 bytes interleaved.
    let mut r = Reassembler::new(Config { max_bytes: 1600, ..Config::default() });
    let done = feed_all(&mut r, &seq);
    assert!(r.stats().peak_bytes <= 1600, "{:?}", r.stats());
    assert_eq!(done.len(), 2);
    assert_eq!(r.stats().dropped_at_bound, 1);

    // A datagram larger than the bound by itself is dropped at once.
    let mut r = Reassembler::new(Config { max_bytes: 600, ..Config::default() });
    assert!(feed_all(&mut r, &split_v4(4, 17, &ua, 512)).is_empty());
    assert!(r.stats().peak_bytes <= 600);
    let rep = r.finish();
    assert_eq!(rep.stats.dropped_at_bound, 1);
    assert_eq!(rep.stats.ignored, 0);
    assert_eq!(rep.incomplete[0].reason, IncompleteReason::DroppedAtBound);
}

#[test]
fn ipv6_fragments() {
    let (u, p) = udp6(5000, 20);
    let mut frags = split_v6(0xDEAD_BEEF, 17, &u, 1232);
    let mut r = Reassembler::new(Config::default());
    let done = feed_all(&mut r, &frags);
    assert_eq!(done.len(), 1);
    let d = &done[0];
    assert_eq!((d.version, d.fragments, d.first_frame, d.last_frame), (6, 5, 1, 5));
    assert_eq!(d.bytes[0] >> 4, 6);
    assert_eq!(usize::from(u16::from_be_bytes([d.bytes[4], d.bytes[5]])), u.len());
    assert_eq!(d.bytes[6], 17);
    assert_eq!(&d.bytes[8..24], &SRC6);
    assert_eq!(&d.bytes[24..40], &DST6);
    assert_eq!(udp_of(&d.bytes), (5353, 53, p.clone()));

    let mut rng = Rng(12345);
    rng.shuffle(&mut frags);
    frags.insert(1, frags[0].clone());
    let done = feed_all(&mut r, &frags);
    assert_eq!(done.len(), 1);
    assert_eq!(udp_of(&done[0].bytes).2, p);

    // An atomic fragment (offset 0, M clear) is whole at once.
    let (u, p) = udp6(100, 21);
    let done = feed_all(&mut r, &[v6_frag(77, 17, 0, false, &u)]);
    assert_eq!(done.len(), 1);
    assert_eq!(udp_of(&done[0].bytes).2, p);

    // IPv4 and IPv6 with the same identification do not mix.
    let (u4, p4) = udp4(600, 22);
    let (u6, p6) = udp6(600, 23);
    let a = split_v4(99, 17, &u4, 304);
    let b = split_v6(99, 17, &u6, 304);
    let done = feed_all(&mut r, &[a[0].clone(), b[0].clone(), b[1].clone(), a[1].clone()]);
    assert_eq!(done.len(), 2);
    assert_eq!(udp_of(&done[0].bytes).2, p6);
    assert_eq!(udp_of(&done[1].bytes).2, p4);
    let s = r.stats();
    assert_eq!((s.reassembled_v4, s.reassembled_v6, s.duplicates), (1, 4, 1));
    assert_eq!(s.fragments_v6, 5 + 6 + 1 + 2);
}

#[test]
fn absurd_fragments_do_not_panic() {
    let mut r = Reassembler::new(Config::default());
    // Zero-length non-last fragment, zero-length last fragment at offset 0.
    let z = v4_frag(1, 17, 8, true, &[]);
    let z2 = v4_frag(2, 17, 0, false, &[]);
    assert!(decode(LinkType::Raw, &z2).ip.unwrap().fragment.is_none(), "not a fragment at all");
    let z3 = v6_frag(3, 17, 0, false, &[]);
    let done = feed_all(&mut r, &[z.clone(), z3]);
    assert_eq!(done.len(), 1, "an empty atomic IPv6 fragment is an empty datagram");
    assert_eq!(r.stats().tiny, 1);
    // A misaligned non-last fragment is trimmed to a multiple of 8.
    let (u, p) = udp4(60, 1);
    let done = feed_all(&mut r, &[v4_frag(4, 17, 0, true, &u[..13]), v4_frag(4, 17, 8, false, &u[8..])]);
    assert_eq!(done.len(), 1);
    assert_eq!(udp_of(&done[0].bytes).2, p);
    assert_eq!(r.stats().misaligned, 1);
    // Non-fragments offered by mistake are counted and ignored.
    let pkt = decode(LinkType::Raw, &z2);
    assert!(r.push(100, 0, &pkt).is_none());
    let pkt = decode(LinkType::Raw, &[0xFF, 0, 1]);
    assert!(r.push(101, 0, &pkt).is_none());
    assert_eq!(r.stats().not_fragments, 2);

    // Offset + length beyond 65535: dropped and counted; later fragments are ignored.
    let big = v4_frag(5, 17, 65528, false, &[0u8; 100]);
    let first = v4_frag(5, 17, 0, true, &[0u8; 64]);
    assert!(feed_all(&mut r, &[big, first]).is_empty());
    assert_eq!(r.stats().too_large, 1);
    assert_eq!(r.stats().ignored, 1);
    // IPv6: offset 65528 + 16 bytes > 65535.
    assert!(feed_all(&mut r, &[v6_frag(6, 17, 65528, false, &[0u8; 16])]).is_empty());
    assert_eq!(r.stats().too_large, 2);
    // Over the configured maximum only.
    let mut small = Reassembler::new(Config { max_datagram_len: 1000, ..Config::default() });
    let (u, _) = udp4(2000, 2);
    assert!(feed_all(&mut small, &split_v4(7, 17, &u, 512)).is_empty());
    assert_eq!(small.stats().too_large, 1);
    assert_eq!(small.stats().peak_bytes, 512);

    // Inconsistent lengths: two last fragments disagree.
    let (u, _) = udp4(200, 3);
    let seq = [
        v4_frag(8, 17, 0, true, &u[..64]),
        v4_frag(8, 17, 64, false, &u[64..]),
        v4_frag(8, 17, 64, false, &u[64..100]),
    ];
    assert_eq!(feed_all(&mut r, &seq).len(), 1, "completes before the third");
    assert_eq!(r.stats().inconsistent_len, 0);
    let seq = [
        v4_frag(9, 17, 64, false, &u[64..]),
        v4_frag(9, 17, 64, false, &u[64..100]),
        v4_frag(9, 17, 0, true, &u[..64]),
    ];
    let _ = feed_all(&mut r, &seq);
    assert_eq!(r.stats().inconsistent_len, 1);
    // Data beyond a known end.
    let seq = [v4_frag(10, 17, 16, false, &u[..0]), v4_frag(10, 17, 8, true, &u[..64])];
    let _ = feed_all(&mut r, &seq);
    let rep = r.finish();
    assert_eq!(rep.stats.inconsistent_len, 2, "{:?}", rep.stats);
    assert!(rep.incomplete.iter().any(|i| i.reason == IncompleteReason::TooLarge));
    assert!(rep.incomplete.iter().any(|i| i.reason == IncompleteReason::InconsistentLength));
}

#[test]
fn snaplen_cut_fragment_cannot_complete() {
    let (u, _) = udp4(3000, 8);
    let f = split_v4(11, 17, &u, 1480);
    let cut = f[1][..100].to_vec();
    let mut r = Reassembler::new(Config::default());
    assert!(feed_all(&mut r, &[f[0].clone(), cut, f[2].clone()]).is_empty());
    let s = r.stats();
    assert_eq!((s.incompletely_captured, s.ignored, s.bytes_held), (1, 1, 0));
    let rep = r.finish();
    assert_eq!(rep.incomplete_total, 1);
    assert_eq!(rep.incomplete[0].reason, IncompleteReason::NotFullyCaptured);
    assert_eq!(rep.incomplete[0].fragments, 3);
    assert_eq!(rep.stats.incomplete_at_end, 0);
}

#[test]
fn many_datagrams_reuse_buffers_and_report_is_bounded() {
    let mut r = Reassembler::new(Config::default());
    let (u, p) = udp4(1400, 9);
    for id in 0..2000u16 {
        let f = split_v4(id, 17, &u, 504);
        let done = feed_all(&mut r, &f);
        assert_eq!(done.len(), 1);
        assert_eq!(udp_of(&done[0].bytes).2, p);
    }
    // 100 first fragments alone.
    for id in 0..100u16 {
        let f = split_v4(id, 17, &u, 504);
        assert!(feed_all(&mut r, &f[..1]).is_empty());
    }
    let rep = r.finish();
    assert_eq!(rep.stats.reassembled, 2000);
    assert_eq!(rep.incomplete_total, 100);
    assert_eq!(rep.incomplete.len(), netcase_frag::MAX_INCOMPLETE_KEPT);
}
