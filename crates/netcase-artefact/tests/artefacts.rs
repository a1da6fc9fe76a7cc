//! Capture artefacts on synthetic frames (each rule in isolation) and on real captures whose
//! artefacts were checked with tshark (commands in the comments).

use netcase_artefact::{strip_padding, Artefacts, Checksums, Dedup, DupCause, FrameMeta, TimeCheck};
use netcase_wire::{decode, LinkType, Transport};
use std::path::{Path, PathBuf};

/// Ethernet + IPv4 + TCP, checksums right. `vlan`: one 802.1Q tag. `pad_to`: Ethernet padding.
#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    id: u16,
    ttl: u8,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
    vlan: Option<u16>,
    ip_len_extra: u16,
) -> Vec<u8> {
    let mut f = vec![0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb];
    if let Some(v) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 40 + payload.len() as u16 + ip_len_extra;
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, ttl, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&64000u16.to_be_bytes());
    tcp.extend_from_slice(payload);
    tcp.extend(std::iter::repeat_n(0u8, usize::from(ip_len_extra)));
    let src = "10.0.0.1".parse().unwrap();
    let dst = "10.0.0.2".parse().unwrap();
    let c = !netcase_artefact::transport_checksum(src, dst, 6, &tcp);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    while f.len() < 60 {
        f.push(0);
    }
    f
}

fn meta(n: u64, ts_ms: i64) -> FrameMeta {
    FrameMeta { number: n, ts_ns: ts_ms * 1_000_000, interface: 0 }
}

#[test]
fn a_copy_with_the_same_ip_id_is_a_duplicate_a_resend_with_a_new_id_is_not() {
    let mut d = Dedup::new();
    let a = tcp_frame(100, 64, 1000, 1, 0x18, b"hello", None, 0);
    let resend = tcp_frame(101, 64, 1000, 1, 0x18, b"hello", None, 0);
    assert_eq!(d.check(&meta(1, 0), &a, &decode(LinkType::Ethernet, &a)), None);
    assert_eq!(d.check(&meta(2, 0), &a, &decode(LinkType::Ethernet, &a)), Some(1));
    // The retransmission: same TCP segment, new IPv4 ID.
    assert_eq!(d.check(&meta(3, 300), &resend, &decode(LinkType::Ethernet, &resend)), None);
    // A copy arriving after the window is not merged.
    assert_eq!(d.check(&meta(4, 2000), &a, &decode(LinkType::Ethernet, &a)), None);
    let s = d.stats();
    assert_eq!((s.copies, s.proven, s.tcp_copies), (1, 1, 1));
    assert_eq!(s.main_cause(), Some(DupCause::SameInterface));
    assert_eq!(s.examples, vec![(2, 1, 0)]);
}

#[test]
fn the_cause_is_read_from_what_differs_between_copies() {
    let mut d = Dedup::new();
    let v10 = tcp_frame(7, 64, 5, 1, 0x10, b"", Some(10), 0);
    let v20 = tcp_frame(7, 64, 5, 1, 0x10, b"", Some(20), 0);
    assert_eq!(d.check(&meta(1, 0), &v10, &decode(LinkType::Ethernet, &v10)), None);
    assert_eq!(d.check(&meta(2, 0), &v20, &decode(LinkType::Ethernet, &v20)), Some(1));
    let hop1 = tcp_frame(8, 64, 6, 1, 0x10, b"", None, 0);
    let hop2 = tcp_frame(8, 63, 6, 1, 0x10, b"", None, 0);
    assert_eq!(d.check(&meta(3, 1), &hop1, &decode(LinkType::Ethernet, &hop1)), None);
    assert_eq!(d.check(&meta(4, 1), &hop2, &decode(LinkType::Ethernet, &hop2)), Some(3));
    let two_if = FrameMeta { number: 6, ts_ns: 2_000_000, interface: 1 };
    let x = tcp_frame(9, 64, 7, 1, 0x10, b"", None, 0);
    assert_eq!(d.check(&meta(5, 2), &x, &decode(LinkType::Ethernet, &x)), None);
    assert_eq!(d.check(&two_if, &x, &decode(LinkType::Ethernet, &x)), Some(5));
    let s = d.stats();
    assert_eq!(s.count(DupCause::TwoVlans), 1);
    assert_eq!(s.count(DupCause::RouterHop), 1);
    assert_eq!(s.count(DupCause::TwoInterfaces), 1);
}

#[test]
fn without_an_ip_id_identical_frames_are_kept_until_something_proves_copies() {
    // IPv4 ID 0: a quick retransmission or duplicate ACK looks exactly like a copy.
    let mut d = Dedup::new();
    let ack = tcp_frame(0, 64, 9, 1, 0x10, b"", None, 0);
    assert_eq!(d.check(&meta(1, 0), &ack, &decode(LinkType::Ethernet, &ack)), None);
    assert_eq!(d.check(&meta(2, 1), &ack, &decode(LinkType::Ethernet, &ack)), None);
    assert_eq!(d.stats().unproven_kept, 1);
    // Once the capture has shown proven copies (>= 8 and >= 10% of provable frames), the
    // same look-alikes are copies too.
    let mut n = 10;
    for id in 1..=10u16 {
        let f = tcp_frame(id, 64, 100 + u32::from(id), 1, 0x10, b"", None, 0);
        n += 2;
        assert_eq!(d.check(&meta(n, 10), &f, &decode(LinkType::Ethernet, &f)), None);
        assert!(d.check(&meta(n + 1, 10), &f, &decode(LinkType::Ethernet, &f)).is_some());
    }
    assert_eq!(d.check(&meta(100, 500), &ack, &decode(LinkType::Ethernet, &ack)), None);
    assert_eq!(d.check(&meta(101, 500), &ack, &decode(LinkType::Ethernet, &ack)), Some(100));
}

#[test]
fn time_steps_back_and_jumps_are_counted_and_left_out_of_the_span() {
    let mut t = TimeCheck::default();
    let s = 1_000_000_000i64;
    for (n, ts) in
        [(1, 100 * s), (2, 101 * s), (3, 99 * s), (4, 100 * s), (5, 100 * s + 7200 * s), (6, 100 * s + 7201 * s)]
    {
        t.frame(n, ts);
    }
    let st = &t.stats();
    assert_eq!(st.backwards, 1);
    assert_eq!(st.backwards_notable, 1);
    assert_eq!(st.max_backwards_ns, 2 * s);
    assert_eq!(st.jumps, 1);
    assert_eq!(st.span_ns, 3 * s);
    assert_eq!(st.examples, vec![(3, -2 * s), (5, 7200 * s)]);
    assert!(st.distorted());
}

#[test]
fn checksums_are_verified_per_sender() {
    let mut c = Checksums::default();
    let good = tcp_frame(1, 64, 1, 1, 0x18, b"data", None, 0);
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 30] ^= 0xff; // inside the TCP header's checksum-covered bytes
    c.frame(1, &decode(LinkType::Ethernet, &good));
    c.frame(2, &decode(LinkType::Ethernet, &bad));
    let s = c.stats();
    assert_eq!((s.checked, s.bad), (2, 1));
    assert_eq!(s.hosts.len(), 1);
    assert_eq!(s.hosts[0].first_bad, 2);
}

#[test]
fn zero_padding_inside_a_minimum_ip_length_is_not_data() {
    // IP total length 46: the 6 bytes of Ethernet padding counted into the IP packet.
    let padded = tcp_frame(5, 64, 1, 1, 0x10, b"", None, 6);
    let mut p = decode(LinkType::Ethernet, &padded);
    assert!(matches!(p.transport, Some(Transport::Tcp(t)) if t.len == 6));
    assert!(strip_padding(&mut p));
    assert!(matches!(p.transport, Some(Transport::Tcp(t)) if t.len == 0 && t.payload.is_empty()));
    // Six real bytes with PSH, or non-zero bytes, are data.
    let data = tcp_frame(5, 64, 1, 1, 0x18, &[0; 6], None, 0);
    assert!(!strip_padding(&mut decode(LinkType::Ethernet, &data)));
    let nonzero = tcp_frame(5, 64, 1, 1, 0x10, b"abcdef", None, 0);
    assert!(!strip_padding(&mut decode(LinkType::Ethernet, &nonzero)));
}

fn shared(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus").join(name);
    p.exists().then_some(p)
}

fn wild(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/wild").join(name)
}

fn run(path: &Path) -> netcase_artefact::ArtefactReport {
    let mut r = netcase_capture::CaptureReader::open(path).expect("open");
    let mut a = Artefacts::new();
    while let Some(f) = r.next_frame() {
        let mut p = decode(f.link, f.data);
        a.frame(&FrameMeta { number: f.number, ts_ns: f.ts_ns, interface: f.interface }, f.data, &mut p);
    }
    a.report()
}

/// zeek m57-long: every frame of the connection captured twice, 1 µs apart (tshark shows
/// frames 1/2, 3/4, 6/7... with the same ip.id, and flags every second one as a retransmission
/// or duplicate ACK: `tshark -r F -T fields -e frame.number -e ip.id -e tcp.seq -e tcp.analysis.flags`).
#[test]
fn real_capture_every_frame_twice() {
    let Some(p) = shared("zeek-m57-long-49583-80.pcap") else { return };
    let r = run(&p);
    assert_eq!(r.dups.copies, 113);
    assert_eq!(r.dups.proven, 113);
    assert_eq!(r.dups.main_cause(), Some(DupCause::SameInterface));
    assert_eq!(r.dups.examples.first(), Some(&(2, 1, 1000)));
}

/// zeek vlan-collisions: the same packets on two VLANs (`tshark -T fields -e vlan.id -e ip.id`).
#[test]
fn real_capture_two_vlans() {
    let Some(p) = shared("zeek-vlan-collisions.pcap") else { return };
    let r = run(&p);
    assert_eq!(r.dups.main_cause(), Some(DupCause::TwoVlans));
    assert_eq!(r.dups.copies, 28);
}

/// nDPI fix2: copies with the TTL one lower (128/127) and another MAC: seen on both sides of
/// a router (`tshark -T fields -e ip.id -e ip.ttl -e eth.src`). Over tshark's fields (ip
/// src/dst/id, tcp seq/ack/len/flags/window/options, within 0.5 s, ID not 0) 889 frames repeat
/// an earlier one; the 2 more are non-TCP repeats that nothing proves to be copies.
#[test]
fn real_capture_router_hop() {
    let Some(p) = shared("ndpi-fix2.pcap") else { return };
    let r = run(&p);
    assert_eq!(r.dups.main_cause(), Some(DupCause::RouterHop));
    assert_eq!(r.dups.copies, 887);
}

/// tcpdump pptp: 8 of the server's packets captured twice about 100 µs apart.
#[test]
fn real_capture_pptp_copies() {
    let r = run(&wild("tcpdump-pptp.pcap"));
    assert_eq!(r.dups.copies, 8);
}

/// packetnet test_stream: stitched from captures 60 days apart, the clock steps back.
/// (`tshark -r F -T fields -e frame.number -e frame.time_delta` shows the negative delta.)
#[test]
fn real_capture_time_steps_back() {
    let r = run(&wild("packetnet-test_stream.pcap"));
    assert!(r.time.backwards_notable >= 1, "{:?}", r.time);
    assert!(r.time.max_backwards_ns > 50 * 86_400 * 1_000_000_000, "{:?}", r.time);
}

/// simple_http_sll2: loopback traffic with checksums never filled in (offload): tshark with
/// `-o tcp.check_checksum:TRUE` marks all 24 TCP checksums bad.
#[test]
fn real_capture_loopback_checksums() {
    let Some(p) = shared("filesamples-simple_http_sll2.pcap") else { return };
    let r = run(&p);
    assert_eq!((r.checksums.checked, r.checksums.bad), (24, 24));
}

/// A clean capture has no artefact at all (zeek wikipedia: no copies, no time steps; tshark
/// agrees every checksum is right).
#[test]
fn real_capture_clean() {
    let Some(p) = shared("zeek-wikipedia.pcap") else { return };
    let r = run(&p);
    assert_eq!(r.dups.copies, 0);
    assert!(!r.time.distorted());
    assert_eq!(r.padded_acks, 0);
}

/// After a long clean stretch the detector samples (see `CLEAN_FRAMES`): copies that land next
/// to their original are still all caught; copies that come many frames later are caught once
/// a sampled one shows, after which every frame is checked again.
#[test]
fn after_a_clean_stretch_copies_are_still_found() {
    let clean = netcase_artefact::CLEAN_FRAMES as u32 + 1000;
    let mut d = Dedup::new();
    let mut n = 0u64;
    let mut feed = |d: &mut Dedup, f: &[u8]| {
        n += 1;
        d.check(&meta(n, n as i64 / 100), f, &decode(LinkType::Ethernet, f))
    };
    for i in 0..clean {
        let f = tcp_frame((i % 65_000) as u16 + 1, 64, 1000 + i * 10, 1, 0x18, b"0123456789", None, 0);
        assert_eq!(feed(&mut d, &f), None, "clean frame {i} taken for a copy");
    }
    // Copies right behind their originals (capture on `any`): every one is found.
    for i in 0..200u32 {
        let f = tcp_frame(30_000 + i as u16, 64, 900_000 + i * 10, 1, 0x18, b"0123456789", None, 0);
        assert_eq!(feed(&mut d, &f), None);
        assert!(feed(&mut d, &f).is_some(), "adjacent copy {i} missed while sampling");
    }
    assert_eq!(d.stats().copies, 200);

    // A fresh detector, clean again, then copies 50 frames behind (two capture buffers).
    let mut d = Dedup::new();
    for i in 0..clean {
        let f = tcp_frame((i % 65_000) as u16 + 1, 64, 1000 + i * 10, 1, 0x18, b"0123456789", None, 0);
        assert_eq!(feed(&mut d, &f), None);
    }
    let far: Vec<Vec<u8>> = (0..2000u32)
        .map(|i| tcp_frame(40_000 + i as u16, 64, 2_000_000 + i * 10, 1, 0x18, b"0123456789", None, 0))
        .collect();
    let mut missed = 0;
    for (i, f) in far.iter().enumerate() {
        feed(&mut d, f);
        if i >= 50 && feed(&mut d, &far[i - 50]).is_none() {
            missed += 1;
        }
    }
    // Sampled one in sixteen: the first copy found turns full checking on; the odds that 100
    // copies in a row are all unsampled are (15/16)^100 < 0.2%, and the keys are fixed here.
    eprintln!("far copies missed while sampling: {missed}");
    assert!(missed < 100, "{missed} far copies missed");
    assert_eq!(d.stats().copies, 1950 - missed);
}
