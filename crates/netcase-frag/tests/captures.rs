//! Reassembly of real captures from corpus/wild, checked against tshark's figures.
//!
//! Every expected figure below is what tshark 4.x says for the file, with the command in a
//! comment. tshark lists a reassembled datagram on the frame that completed it
//! (`ip.fragment.count` / `ipv6.fragment.count` present), which is netcase-frag's
//! `Reassembled::last_frame`.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

use netcase_frag::{Config, FragReport, IncompleteReason, Reassembler};
use netcase_wire::{decode, LinkType, Transport};
use std::path::PathBuf;

fn wild(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../corpus/wild").join(name)
}

/// One reassembled datagram: (completing frame, fragment count, first frame, IP payload length,
/// UDP length field when UDP).
type Row = (u64, u32, u64, usize, Option<u16>);

fn run(name: &str) -> (Vec<Row>, FragReport) {
    let path = wild(name);
    let mut rd = netcase_capture::CaptureReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = Reassembler::new(Config::default());
    let mut rows = Vec::new();
    while let Some(f) = rd.next_frame() {
        let pkt = decode(f.link, f.data);
        if pkt.ip.and_then(|ip| ip.fragment).is_none() {
            continue;
        }
        if let Some(d) = r.push(f.number, f.ts_ns, &pkt) {
            let whole = decode(LinkType::Raw, d.bytes);
            assert_eq!(whole.error, None, "{name} frame {}: {whole:?}", f.number);
            let ip = whole.ip.unwrap();
            assert_eq!(ip.fragment, None);
            assert_eq!(ip.payload_len as usize, whole.ip_payload.len());
            let udp_len = match whole.transport {
                Some(Transport::Udp(u)) => {
                    // The UDP length field agrees with the reassembled length.
                    assert_eq!(usize::from(u.length), whole.ip_payload.len());
                    assert_eq!(u.payload.len() + 8, usize::from(u.length));
                    Some(u.length)
                }
                _ => None,
            };
            rows.push((d.last_frame, d.fragments, d.first_frame, whole.ip_payload.len(), udp_len));
        }
    }
    (rows, r.finish())
}

/// AFS (Rx over UDP), IPv4, 200 fragments, 51 datagrams of 3 or 4 fragments.
#[test]
fn tcpdump_afs() {
    // tshark -r corpus/wild/tcpdump-afs.pcap -Y "ip.fragment.count" \
    //     -T fields -e frame.number -e ip.fragment.count -e udp.length
    const TSHARK: [(u64, u32, u16); 51] = [
        (128, 4, 5700),
        (132, 4, 5700),
        (137, 4, 5700),
        (141, 4, 5700),
        (146, 4, 5700),
        (150, 4, 5700),
        (155, 4, 5700),
        (159, 4, 5700),
        (164, 4, 5700),
        (168, 4, 5700),
        (173, 4, 5700),
        (176, 3, 3392),
        (182, 4, 5700),
        (186, 4, 5700),
        (191, 4, 5700),
        (195, 4, 5700),
        (200, 4, 5700),
        (204, 4, 5700),
        (209, 4, 5700),
        (213, 4, 5700),
        (218, 4, 5700),
        (222, 4, 5700),
        (229, 4, 5700),
        (233, 4, 5700),
        (238, 4, 5700),
        (242, 4, 5700),
        (247, 4, 5700),
        (251, 4, 5700),
        (256, 4, 5700),
        (260, 4, 5700),
        (265, 4, 5700),
        (269, 4, 5700),
        (274, 4, 5700),
        (277, 3, 3392),
        (293, 4, 5700),
        (297, 4, 5700),
        (302, 4, 5700),
        (306, 4, 5700),
        (311, 4, 5700),
        (315, 4, 5700),
        (320, 4, 5700),
        (324, 4, 5700),
        (329, 4, 5700),
        (333, 4, 5700),
        (338, 4, 5700),
        (341, 3, 3392),
        (347, 4, 5700),
        (351, 4, 5700),
        (356, 4, 5700),
        (360, 4, 5700),
        (364, 3, 4380),
    ];
    let (rows, rep) = run("tcpdump-afs.pcap");
    let got: Vec<(u64, u32, u16)> = rows.iter().map(|r| (r.0, r.1, r.4.unwrap())).collect();
    assert_eq!(got, TSHARK);
    // The first fragment of the first datagram: tshark -r .. -Y "ip.id==0x023d" → frames 125-128.
    assert_eq!(rows[0].2, 125);
    // tshark -r .. -Y "ip.flags.mf==1 || ip.frag_offset>0" | wc -l → 200
    let s = &rep.stats;
    assert_eq!((s.fragments, s.fragments_v4, s.reassembled, s.reassembled_v4), (200, 200, 51, 51));
    assert_eq!((s.duplicates, s.overlap_same, s.overlap_inconsistent, s.tiny, s.misaligned), (0, 0, 0, 0, 0));
    assert_eq!(rep.incomplete_total, 0);
    assert_eq!(s.bytes_held, 0);
    assert!(s.peak_bytes >= 5700);
}

/// SIP INVITE over UDP in two IPv4 fragments.
#[test]
fn packetnet_udp_ip_fragmented() {
    // tshark -r corpus/wild/packetnet-udp-ip-fragmented.pcap -Y "ip.fragment.count" \
    //     -T fields -e frame.number -e ip.fragment.count -e ip.fragment -e udp.length
    // → 2  2  1,2  1977
    let (rows, rep) = run("packetnet-udp-ip-fragmented.pcap");
    assert_eq!(rows, vec![(2, 2, 1, 1977, Some(1977))]);
    assert_eq!((rep.stats.fragments, rep.stats.reassembled, rep.incomplete_total), (2, 1, 0));
}

/// ICMP echo in IPv4 fragments: two datagrams of three fragments.
#[test]
fn pcap4j_fragmented_echo() {
    // tshark -r corpus/wild/pcap4j-flagmentedEcho.pcap -Y "ip.fragment.count" \
    //     -T fields -e frame.number -e ip.fragment.count -e ip.fragment -e ip.reassembled.length
    // → 3  3  1,2,3  4008
    //   6  3  4,5,6  4008
    let (rows, rep) = run("pcap4j-flagmentedEcho.pcap");
    assert_eq!(rows, vec![(3, 3, 1, 4008, None), (6, 3, 4, 4008, None)]);
    assert_eq!((rep.stats.fragments, rep.stats.reassembled, rep.incomplete_total), (6, 2, 0));
}

/// ICMP in five IPv4 fragments after the unfragmented original.
#[test]
fn pcap4j_ipv4_helper() {
    // tshark -r corpus/wild/pcap4j-IpV4HelperTest.pcap -Y "ip.fragment.count" \
    //     -T fields -e frame.number -e ip.fragment.count -e ip.fragment -e ip.reassembled.length
    // → 6  5  2,3,4,5,6  4008
    let (rows, rep) = run("pcap4j-IpV4HelperTest.pcap");
    assert_eq!(rows, vec![(6, 5, 2, 4008, None)]);
    assert_eq!((rep.stats.fragments, rep.stats.reassembled, rep.incomplete_total), (5, 1, 0));
}

/// UDP in two IPv6 fragments (Fragment extension header).
#[test]
fn pcap4j_ipv6_fragment_header() {
    // tshark -r corpus/wild/pcap4j-IpV6ExtFragmentPacketTest.pcap -Y "ipv6.fragment.count" \
    //     -T fields -e frame.number -e ipv6.fragment.count -e ipv6.fragment -e udp.length
    // → 2  2  1,2  16
    let (rows, rep) = run("pcap4j-IpV6ExtFragmentPacketTest.pcap");
    assert_eq!(rows, vec![(2, 2, 1, 16, Some(16))]);
    let s = &rep.stats;
    assert_eq!((s.fragments, s.fragments_v6, s.reassembled, s.reassembled_v6), (2, 2, 1, 1));
    // Both fragments carry 8 bytes and the first has M set: a tiny fragment.
    assert_eq!(s.tiny, 1);
}

/// A capture cut by its snap length: fragments captured short never
/// complete. tshark reassembles nothing either.
#[test]
fn pcapdroid_snaplen_cut_fragments() {
    // tshark -r corpus/wild/pcapdroid-invalid_or_unsupported.pcap -Y "ip.fragment.count" | wc -l → 0
    // tshark -r .. -T fields -e frame.number -e ip.id -e ip.frag_offset -e ip.flags.mf -e ip.len
    //     -e frame.cap_len -e ip.proto
    // → frames 1-4, 6, 10: first fragments (MF, 1500 bytes) captured in 71/298/361/44/38/108
    //   bytes; frame 5: 30 bytes, the IPv4 header itself is cut (not decodable as a fragment);
    //   frames 8, 9: TCP fragments of 16 bytes at offsets 128 and 144, MF set (tiny).
    let (rows, rep) = run("pcapdroid-invalid_or_unsupported.pcap");
    assert!(rows.is_empty());
    let s = &rep.stats;
    assert_eq!((s.fragments, s.reassembled, s.incompletely_captured, s.tiny), (8, 0, 6, 2));
    // Six datagrams not fully captured, and the TCP one (frames 8, 9) still open at the end.
    assert_eq!(rep.incomplete_total, 7);
    let cut = rep.incomplete.iter().filter(|i| i.reason == IncompleteReason::NotFullyCaptured).count();
    assert_eq!(cut, 6);
    let open: Vec<_> = rep.incomplete.iter().filter(|i| i.reason == IncompleteReason::EndOfCapture).collect();
    assert_eq!(open.len(), 1);
    let o = open[0];
    assert_eq!((o.first_frame, o.last_frame, o.fragments, o.bytes_held, o.first_seen), (8, 9, 2, 32, false));
    assert_eq!((o.proto, o.id, o.total_len, o.ports), (6, 0xa0, None, None));
}
