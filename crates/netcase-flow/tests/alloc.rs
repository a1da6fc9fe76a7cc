//! The per-packet path allocates nothing once a connection exists, and memory is bounded by
//! concurrent connections.

mod common;
use common::*;

use netcase_testkit::counting::{allocations, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn steady_state_allocates_nothing_and_evicts_idle_flows() {
    let mut t = netcase_flow::FlowTracker::default();
    let mut sink = ();
    // Pre-build the frames of one long connection: handshake, then data/ack pairs with
    // a retransmission and dup ACKs now and then.
    let mut segs = vec![
        Seg { wscale: Some(7), ..seg(true, 0, 0, SYN, 0, 0) },
        Seg { wscale: Some(7), ..seg(false, 0, 1, SYN | ACK, 0, 100) },
        seg(true, 1, 1, ACK, 0, 200),
    ];
    let mut seq = 1u32;
    for i in 0..4000i64 {
        segs.push(seg(true, seq, 1, ACK, 1000, 1000 + i * 10));
        segs.push(seg(true, seq.wrapping_add(1000), 1, ACK, 1000, 1002 + i * 10));
        if i % 50 == 0 {
            segs.push(seg(true, seq, 1, ACK, 1000, 1004 + i * 10));
            segs.push(seg(false, 1, seq, ACK, 0, 1005 + i * 10));
        }
        seq = seq.wrapping_add(2000);
        segs.push(seg(false, 1, seq, ACK, 0, 1008 + i * 10));
    }
    let frames: Vec<Vec<u8>> = segs.iter().map(|s| frame_bytes(s, 40000, 80)).collect();
    let ts = |s: &Seg| s.t_us * 1000;
    // Warm-up: the first quarter grows the buffers.
    let warm = frames.len() / 4;
    for (i, (f, s)) in frames.iter().zip(&segs).enumerate().take(warm) {
        t.frame(i as u64 + 1, ts(s), f.len() as u32, netcase_wire::LinkType::Ethernet, f, &mut sink);
    }
    let before = allocations();
    for (i, (f, s)) in frames.iter().zip(&segs).enumerate().skip(warm) {
        t.frame(i as u64 + 1, ts(s), f.len() as u32, netcase_wire::LinkType::Ethernet, f, &mut sink);
    }
    let after = allocations();
    assert_eq!(after - before, 0, "allocations on the hot path");

    // Many short connections spread over an hour of capture time: held connections stay
    // bounded; a late frame of an evicted connection keeps its stream number.
    let mut t = netcase_flow::FlowTracker::default();
    let mut rec = Rec::default();
    let mut n = 0u64;
    for c in 0..3000u32 {
        let port = 1024 + (c as u16);
        let base = i64::from(c) * 1_200_000; // 1.2 s apart
        for s in [
            seg(true, 0, 0, SYN, 0, base),
            seg(false, 0, 1, SYN | ACK, 0, base + 100),
            seg(true, 1, 1, ACK | FIN, 0, base + 200),
            seg(false, 1, 2, ACK | FIN, 0, base + 300),
            seg(true, 2, 2, ACK, 0, base + 400),
        ] {
            n += 1;
            let b = frame_bytes(&s, port, 80);
            t.frame(n, s.t_us * 1000, b.len() as u32, netcase_wire::LinkType::Ethernet, &b, &mut rec);
        }
        assert!(t.active_tcp() < 400, "held connections {}", t.active_tcp());
    }
    let late = seg(true, 2, 2, ACK, 0, 3000 * 1_200_000);
    let b = frame_bytes(&late, 1024, 80);
    t.frame(n + 1, late.t_us * 1000, b.len() as u32, netcase_wire::LinkType::Ethernet, &b, &mut rec);
    assert_eq!(rec.frames.last().map(|f| (f.stream, f.seq)), Some((0, 2)));
    t.finish(&mut rec);
    let st = t.stats();
    assert_eq!(st.tcp_streams, 3000);
    assert!(st.tcp_evicted > 2500);
    assert_eq!(st.tcp_resumed, 1);
    assert!(rec.conns.len() >= 3000);
}
