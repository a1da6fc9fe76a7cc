//! The capture rules allocate nothing per packet once a connection exists, and what they add
//! to the flow engine can be measured in-process (`rules_cost`, ignored by default).

use std::time::{Duration, Instant};

use netcase_flow::{FlowConfig, FlowTracker};
use netcase_rules::capture::CaptureRules;
use netcase_testkit::counting::{allocations, serial, CountingAlloc};
use netcase_testkit::tcp::{frame_bytes_with_macs, seg, Seg, ACK, PSH, SYN};
use netcase_wire::LinkType;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// One long connection (10.0.0.1:40000 ↔ 10.0.0.2:80): handshake with window scale 7 on
/// the SYNs, then bulk data/ACK rounds with a small request/response exchange every 20 rounds
/// and, with `loss`, a lost-and-retransmitted segment (duplicate ACKs, repaired 40 ms later)
/// every 50 rounds.
fn long_flow(rounds: i64, loss: bool) -> Vec<Seg> {
    let mut segs = vec![
        Seg { wscale: Some(7), ..seg(true, 0, 0, SYN, 0, 0) },
        Seg { wscale: Some(7), ..seg(false, 0, 1, SYN | ACK, 0, 100) },
        seg(true, 1, 1, ACK, 0, 200),
    ];
    let (mut seq, mut sseq) = (1u32, 1u32);
    for i in 0..rounds {
        let t = 1000 + i * 50_000;
        if loss && i % 50 == 25 {
            // Segment `seq` lost: the next one arrives, the receiver repeats its ACK, the
            // sender repairs the hole 40 ms later.
            let next = seq.wrapping_add(1000);
            segs.push(seg(true, next, sseq, ACK, 1000, t));
            segs.push(seg(false, sseq, seq, ACK, 0, t + 10));
            segs.push(seg(true, next.wrapping_add(1000), sseq, ACK, 1000, t + 20));
            segs.push(seg(false, sseq, seq, ACK, 0, t + 30));
            segs.push(seg(true, seq, sseq, ACK, 1000, t + 40_000));
            seq = seq.wrapping_add(3000);
            segs.push(seg(false, sseq, seq, ACK, 0, t + 40_010));
            continue;
        }
        if i % 20 == 10 {
            segs.push(seg(true, seq, sseq, ACK | PSH, 40, t));
            segs.push(seg(false, sseq, seq.wrapping_add(40), ACK | PSH, 60, t + 200));
            seq = seq.wrapping_add(40);
            sseq = sseq.wrapping_add(60);
            segs.push(seg(true, seq, sseq, ACK, 0, t + 400));
            continue;
        }
        segs.push(seg(true, seq, sseq, ACK, 1000, t));
        segs.push(seg(true, seq.wrapping_add(1000), sseq, ACK, 1000, t + 2));
        seq = seq.wrapping_add(2000);
        segs.push(seg(false, sseq, seq, ACK, 0, t + 8));
    }
    segs
}

/// Runs frames `range` of `frames` through the tracker and the rules, like the pipeline does.
fn feed(t: &mut FlowTracker, rules: &mut CaptureRules, frames: &[(i64, Vec<u8>)], range: std::ops::Range<usize>) {
    for i in range {
        let (ts, data) = &frames[i];
        let pkt = netcase_wire::decode(LinkType::Ethernet, data);
        t.packet(i as u64 + 1, *ts, data.len() as u32, data, &pkt, rules);
        rules.packet(i as u64 + 1, *ts, &pkt);
    }
}

fn frames_of(segs: &[Seg]) -> Vec<(i64, Vec<u8>)> {
    segs.iter().map(|s| (1_600_000_000_000_000_000 + s.t_us * 1000, frame_bytes_with_macs(s, 40000, 80))).collect()
}

/// Allocations while the last three quarters of `frames` go through tracker and rules (the
/// first quarter makes the connection and grows the buffers), and the findings.
/// The caller holds [`serial`].
fn steady_allocs(frames: &[(i64, Vec<u8>)]) -> (u64, Vec<netcase_model::Finding>) {
    let mut t = FlowTracker::new(FlowConfig::default());
    let mut rules = CaptureRules::new();
    let warm = frames.len() / 4;
    feed(&mut t, &mut rules, frames, 0..warm);
    assert_eq!(rules.open_flows(), 1);
    let before = allocations();
    feed(&mut t, &mut rules, frames, warm..frames.len());
    let n = allocations() - before;
    assert_eq!(rules.open_flows(), 1);
    t.finish(&mut rules);
    assert_eq!(rules.open_flows(), 0);
    (n, rules.finish(&Default::default()))
}

#[test]
fn steady_state_allocates_nothing_per_packet() {
    let _one = serial();
    let frames = frames_of(&long_flow(8000, false));
    assert!(frames.len() > 24_000, "{}", frames.len());
    // The counter is process-wide: the test harness's own threads can allocate once in a while.
    // A per-packet allocation shows in every pass, a stray one in at most one of three.
    let n = (0..3).map(|_| steady_allocs(&frames).0).min().unwrap_or(0);
    assert_eq!(n, 0, "allocations on the per-packet path over {} frames", frames.len() * 3 / 4);
}

#[test]
fn loss_episodes_allocate_only_to_grow_bounded_samples() {
    // 160 loss episodes, 120 of them after the warm-up: each stall goes into a sample list
    // bounded at 1024 values, which grows by doubling (at most 10 times in its life), so the
    // allocations do not follow the number of packets or of episodes.
    let _one = serial();
    let frames = frames_of(&long_flow(8000, true));
    let (n, findings) = steady_allocs(&frames);
    assert!(n <= 10, "{n} allocations over {} frames", frames.len() * 3 / 4);
    let hol = findings.iter().find(|f| f.case.as_str() == "retrans-hol-blocking");
    let hol = hol.unwrap_or_else(|| panic!("{:?}", findings.iter().map(|f| f.case.as_str()).collect::<Vec<_>>()));
    assert_eq!(hol.measure("count"), Some(160.0));
    // From the last in-order data (the previous round, 50 ms before the loss) to the repair.
    assert_eq!(hol.measure("stall_ms"), Some(90.0));
}

/// Reads a classic pcap (µs or ns timestamps, either byte order) into (ts_ns, frame) pairs.
fn read_pcap(path: &str) -> (LinkType, Vec<(i64, Vec<u8>)>) {
    let b = std::fs::read(path).expect("read the capture");
    assert!(b.len() >= 24, "not a pcap file");
    let magic = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let (le, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        m => panic!("not a classic pcap (magic {m:#x}); pcapng is not read here"),
    };
    let u32_at = |o: usize| {
        let w = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let link = LinkType::from_u32(u32_at(20));
    let mut out = Vec::new();
    let mut o = 24;
    while o + 16 <= b.len() {
        let (sec, frac, incl) = (i64::from(u32_at(o)), i64::from(u32_at(o + 4)), u32_at(o + 8) as usize);
        let data = o + 16;
        if data + incl > b.len() {
            break;
        }
        let ts = sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        out.push((ts, b[data..data + incl].to_vec()));
        o = data + incl;
    }
    (link, out)
}

/// What the capture rules add to the flow engine on a real capture: best of 5 runs of the
/// tracker alone and of the tracker feeding `CaptureRules`, alternating. Run with
/// `NETCASE_BENCH_PCAP=FILE cargo test --release -p netcase-rules --test capture_alloc -- --ignored --nocapture`.
#[test]
#[ignore = "timing; needs NETCASE_BENCH_PCAP"]
fn rules_cost() {
    let Ok(path) = std::env::var("NETCASE_BENCH_PCAP") else {
        eprintln!("set NETCASE_BENCH_PCAP to a classic pcap file");
        return;
    };
    let (link, frames) = read_pcap(&path);
    let decode_all = |sink_rules: bool| -> Duration {
        let start = Instant::now();
        let mut t = FlowTracker::new(FlowConfig::default());
        let mut rules = CaptureRules::new();
        for (i, (ts, data)) in frames.iter().enumerate() {
            let pkt = netcase_wire::decode(link, data);
            if sink_rules {
                t.packet(i as u64 + 1, *ts, data.len() as u32, data, &pkt, &mut rules);
                rules.packet(i as u64 + 1, *ts, &pkt);
            } else {
                t.packet(i as u64 + 1, *ts, data.len() as u32, data, &pkt, &mut ());
            }
        }
        if sink_rules {
            t.finish(&mut rules);
            std::hint::black_box(rules.finish(&Default::default()));
        } else {
            t.finish(&mut ());
        }
        start.elapsed()
    };
    let (mut base, mut with) = (Duration::MAX, Duration::MAX);
    for _ in 0..5 {
        base = base.min(decode_all(false));
        with = with.min(decode_all(true));
    }
    let extra = with.as_secs_f64() / base.as_secs_f64() - 1.0;
    eprintln!(
        "{path}: {} frames; decode+tracker {:.1} ms, + rules {:.1} ms ({:+.1} %)",
        frames.len(),
        base.as_secs_f64() * 1e3,
        with.as_secs_f64() * 1e3,
        extra * 100.0
    );
    assert!(with >= base / 2, "timing nonsense");
}
