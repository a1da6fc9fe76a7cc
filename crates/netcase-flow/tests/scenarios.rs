//! Behaviour of the analysis on small synthetic connections.

mod common;
use common::*;

const C: bool = true;
const S: bool = false;

fn handshake(isn_c: u32, isn_s: u32) -> Vec<Seg> {
    vec![
        Seg { wscale: Some(7), ..seg(C, isn_c, 0, SYN, 0, 0) },
        Seg { wscale: Some(8), ..seg(S, isn_s, isn_c.wrapping_add(1), SYN | ACK, 0, 10_000) },
        seg(C, isn_c.wrapping_add(1), isn_s.wrapping_add(1), ACK, 0, 20_000),
    ]
}

#[test]
fn handshake_data_and_ack_give_relative_numbers_rtt_and_scaling() {
    let mut s = handshake(1000, 5000);
    s.push(seg(C, 1001, 5001, ACK | PSH, 100, 30_000));
    s.push(seg(S, 5001, 1101, ACK, 0, 40_000));
    let r = run(&s);
    assert_eq!(r.frames.len(), 5);
    assert!(r.frames.iter().all(|f| f.flags.is_empty() && f.stream == 0));
    assert_eq!(r.frames[1].acks_frame, Some(1));
    assert_eq!(r.frames[3].seq, 1);
    assert_eq!(r.frames[3].bif, Some(100));
    assert_eq!(r.frames[4].acks_frame, Some(4));
    assert_eq!(r.frames[4].ack, 101);
    // client window 1000 << 7, server 1000 << 8
    assert_eq!(r.frames[3].calc_window, 128_000);
    assert_eq!(r.frames[4].calc_window, 256_000);
    let c = &r.conns[0];
    assert_eq!(c.irtt_ns, Some(20_000_000));
    assert_eq!(c.syn.unwrap().wscale, Some(7));
    assert_eq!(c.synack.unwrap().frame, 2);
    assert_eq!(c.ab.scalefactor, Some(128));
    assert_eq!(c.rtt.unwrap().samples, 3);
}

#[test]
fn dup_acks_then_fast_retransmission() {
    let mut s = handshake(0, 0);
    s.push(seg(C, 1, 1, ACK, 100, 30_000)); // 4
    s.push(seg(C, 101, 1, ACK, 100, 30_100)); // 5: lost in the network
    s.push(seg(C, 201, 1, ACK, 100, 30_200)); // 6
    s.push(seg(S, 1, 101, ACK, 0, 31_000)); // 7 ack of 4
    s.push(seg(S, 1, 101, ACK, 0, 31_100)); // 8 dup 1
    s.push(seg(S, 1, 101, ACK, 0, 31_200)); // 9 dup 2
    s.push(seg(C, 101, 1, ACK, 100, 31_300)); // 10 fast retransmission
    let r = run(&s);
    assert_eq!(r.frames[7].flags, ["duplicate_ack"]);
    assert_eq!((r.frames[7].dupack_num, r.frames[7].dupack_frame), (1, 7));
    assert_eq!(r.frames[8].dupack_num, 2);
    assert_eq!(r.frames[9].flags, ["retransmission", "fast_retransmission"]);
}

#[test]
fn late_resend_is_a_retransmission_and_acked_data_is_spurious() {
    let mut s = handshake(0, 0);
    s.push(seg(C, 1, 1, ACK, 100, 30_000)); // 4
    s.push(seg(C, 1, 1, ACK, 100, 300_000)); // 5: RTO resend
    s.push(seg(S, 1, 101, ACK, 0, 310_000)); // 6
    s.push(seg(C, 1, 1, ACK, 100, 600_000)); // 7: already acked
    let r = run(&s);
    assert_eq!(r.frames[4].flags, ["retransmission"]);
    assert_eq!(r.frames[6].flags, ["retransmission", "spurious_retransmission"]);
    assert_eq!(r.conns[0].retransmitted_bytes, 200);
}

#[test]
fn quick_reordering_is_out_of_order() {
    let mut s = handshake(0, 0);
    s.push(seg(C, 101, 1, ACK, 100, 30_000)); // 4: lost_segment (hole)
    s.push(seg(C, 1, 1, ACK, 100, 30_500)); // 5: arrives 0.5 ms later
    let r = run(&s);
    assert_eq!(r.frames[3].flags, ["lost_segment"]);
    assert_eq!(r.frames[4].flags, ["out_of_order"]);
}

#[test]
fn zero_window_and_update() {
    let mut s = handshake(0, 0);
    s.push(seg(C, 1, 1, ACK, 100, 30_000));
    s.push(Seg { win: 0, ..seg(S, 1, 101, ACK, 0, 40_000) });
    s.push(Seg { win: 500, ..seg(S, 1, 101, ACK, 0, 1_040_000) });
    let r = run(&s);
    assert_eq!(r.frames[4].flags, ["zero_window"]);
    assert_eq!(r.frames[5].flags, ["window_update"]);
    assert_eq!(r.conns[0].ba.zero_window_ns, 1_000_000_000);
}

#[test]
fn keep_alive_and_its_ack() {
    let mut s = handshake(0, 0);
    s.push(seg(C, 0, 1, ACK, 0, 10_000_000));
    s.push(seg(S, 1, 1, ACK, 0, 10_001_000));
    let r = run(&s);
    assert_eq!(r.frames[3].flags, ["keep_alive"]);
    assert_eq!(r.frames[4].flags, ["keep_alive_ack"]);
}

#[test]
fn a_port_reused_long_after_its_state_was_forgotten_is_still_flagged() {
    // Connections are evicted at once and one 4-tuple's state is kept: the first port's is
    // forgotten when the second closes, yet a new SYN on it with another ISN is a reused port.
    let cfg = netcase_flow::FlowConfig { max_closed_held: 0, max_remembered: 1, ..Default::default() };
    let close = |isn: u32, t: i64| {
        let mut s = handshake(isn, 5000);
        for x in &mut s {
            x.t_us += t;
        }
        s.push(seg(C, isn + 1, 5001, FIN | ACK, 0, t + 30_000));
        s.push(seg(S, 5001, isn + 2, FIN | ACK, 0, t + 31_000));
        s.push(seg(C, isn + 2, 5002, ACK, 0, t + 32_000));
        s
    };
    let mut segs: Vec<(Seg, u16)> = close(1000, 0).into_iter().map(|s| (s, 40000)).collect();
    segs.extend(close(3000, 100_000).into_iter().map(|s| (s, 40001)));
    segs.push((seg(C, 90_000, 0, SYN, 0, 200_000), 40000));
    let r = run_ports_with(cfg, &segs);
    let last = r.frames.last().unwrap();
    assert_eq!(last.flags, ["reused_ports"]);
    assert_eq!(last.stream, 2);
}

#[test]
fn new_syn_on_same_ports_starts_a_new_stream() {
    let mut s = handshake(1000, 5000);
    s.push(seg(C, 1001, 5001, FIN | ACK, 0, 30_000));
    s.push(seg(S, 5001, 1002, FIN | ACK, 0, 31_000));
    s.push(seg(C, 1002, 5002, ACK, 0, 32_000));
    s.push(seg(C, 90_000, 0, SYN, 0, 100_000));
    s.push(seg(C, 90_000, 0, SYN, 0, 1_100_000)); // its retransmission
    let r = run(&s);
    assert_eq!(r.frames[6].stream, 1);
    assert_eq!(r.frames[6].flags, ["reused_ports"]);
    assert_eq!(r.frames[7].stream, 1);
    assert_eq!(r.frames[7].flags, ["retransmission"]);
    assert_eq!(r.conns.len(), 2);
    assert_eq!(r.conns[0].end, netcase_flow::ConnEnd::Closed { initiator: netcase_flow::Side::A });
}

#[test]
fn streams_are_numbered_in_order_of_first_appearance() {
    let a = seg(C, 10, 0, SYN, 0, 0);
    let r = run_ports(&[(a, 1), (a, 2), (Seg { t_us: 5, ..a }, 1), (a, 3)]);
    let streams: Vec<u32> = r.frames.iter().map(|f| f.stream).collect();
    assert_eq!(streams, [0, 1, 0, 2]);
}

#[test]
fn sequence_wraparound_is_handled() {
    let isn = u32::MAX - 150;
    let mut s = handshake(isn, 7);
    let mut seq = isn.wrapping_add(1);
    for i in 0..5 {
        s.push(seg(C, seq, 8, ACK, 100, 30_000 + i * 100));
        seq = seq.wrapping_add(100);
        s.push(seg(S, 8, seq, ACK, 0, 30_050 + i * 100));
    }
    let r = run(&s);
    for f in &r.frames {
        assert!(f.flags.is_empty(), "frame {} flagged {:?}", f.frame, f.flags);
    }
    assert_eq!(r.frames[3 + 2 * 2].seq, 201);
}

#[test]
fn missing_handshake_and_absurd_values_do_not_panic() {
    let mut s = Vec::new();
    for i in 0..50u32 {
        let v = i.wrapping_mul(0x9E37_79B9);
        s.push(Seg {
            win: (v >> 16) as u16,
            wscale: Some((v % 40) as u8),
            sack: Some((v, v.wrapping_sub(7))),
            ..seg(i % 3 == 0, v, v.rotate_left(7), (v & 0x1ff) as u16, v % 2000, i64::from(v % 1000) - 500)
        });
    }
    let r = run(&s);
    assert_eq!(r.frames.len(), 50);
    assert!(!r.conns.is_empty());
}

#[test]
fn unknown_scale_without_handshake() {
    let s = [seg(C, 500, 900, ACK, 10, 0), seg(S, 900, 510, ACK, 0, 1000)];
    let r = run(&s);
    assert_eq!(r.frames[0].seq, 1);
    assert_eq!(r.frames[0].calc_window, 1000);
    assert_eq!(r.conns[0].ab.scalefactor, Some(-1));
    assert_eq!(r.frames[1].acks_frame, Some(1));
}

#[test]
fn event_json_lists_flags_in_order() {
    let mut s = handshake(0, 0);
    s.push(seg(C, 1, 1, ACK, 100, 30_000));
    s.push(seg(C, 1, 1, ACK, 100, 300_000));
    let mut t = netcase_flow::FlowTracker::default();
    struct J(Vec<u8>);
    impl netcase_flow::FlowSink for J {
        fn frame(&mut self, f: &netcase_flow::FrameAnalysis<'_>) {
            if !f.flags.is_empty() {
                netcase_flow::write_event_json(&mut self.0, f).unwrap();
            }
        }
    }
    let mut j = J(Vec::new());
    for (i, sg) in s.iter().enumerate() {
        let b = frame_bytes(sg, 40000, 80);
        t.frame(i as u64 + 1, sg.t_us * 1000, b.len() as u32, netcase_wire::LinkType::Ethernet, &b, &mut j);
    }
    assert_eq!(String::from_utf8(j.0).unwrap(), "{\"frame\": 5, \"stream\": 0, \"flags\": [\"retransmission\"]}\n");
}

/// Capture loss (Zeek's missed_bytes): bytes the receiver acknowledged that the capture never
/// showed. A hole filled by a retransmission is the network's loss, seen; a hole the receiver
/// ACKs without the data ever appearing is the capture's; so is an ACK beyond all data seen.
#[test]
fn capture_gaps_acked_unseen_are_missed_bytes() {
    // Hole [101, 201) never captured, ACKed past: 100 bytes missed.
    let mut s = handshake(0, 0);
    s.push(seg(C, 1, 1, ACK, 100, 30_000));
    s.push(seg(C, 201, 1, ACK, 100, 30_200)); // previous segment not captured
    s.push(seg(S, 1, 301, ACK, 0, 31_000)); // the receiver had it all
    let r = run(&s);
    assert_eq!((r.conns[0].ab.missed_bytes, r.conns[0].ab.missed_gaps), (100, 1));

    // The same hole repaired by a retransmission the capture saw: nothing missed.
    let mut s = handshake(0, 0);
    s.push(seg(C, 1, 1, ACK, 100, 30_000));
    s.push(seg(C, 201, 1, ACK, 100, 30_200));
    s.push(seg(S, 1, 101, ACK, 0, 31_000));
    s.push(seg(C, 101, 1, ACK, 100, 31_100));
    s.push(seg(S, 1, 301, ACK, 0, 32_000));
    let r = run(&s);
    assert_eq!(r.conns[0].ab.missed_bytes, 0);

    // An ACK for 50 bytes beyond everything seen, the data never shown: 50 missed.
    let mut s = handshake(0, 0);
    s.push(seg(C, 1, 1, ACK, 100, 30_000));
    s.push(seg(S, 1, 151, ACK, 0, 31_000));
    let r = run(&s);
    assert_eq!(r.conns[0].ab.missed_bytes, 50);

    // The ACK ahead of its data in the file (two interfaces, reordered timestamps), the data
    // right after: nothing missed.
    let mut s = handshake(0, 0);
    s.push(seg(S, 1, 101, ACK, 0, 30_000));
    s.push(seg(C, 1, 1, ACK, 100, 30_001));
    let r = run(&s);
    assert_eq!(r.conns[0].ab.missed_bytes, 0);
}
