//! The capture artefacts through the whole pipeline, on real captures: the finding is named,
//! its numbers are right, and the analysis is corrected for it.

use netcase_testkit::pcap;
use std::path::{Path, PathBuf};

use netcase_flow::{ConnSummary, UdpSummary};
use netcase_model::{CaseId, Finding, Severity};

struct Keep(Vec<ConnSummary>);
impl netcase_analysis::FlowRecords for Keep {
    fn tcp(&mut self, c: &ConnSummary) {
        self.0.push(c.clone());
    }
    fn udp(&mut self, _u: &UdpSummary) {}
}

fn shared(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus").join(name);
    p.exists().then_some(p)
}

fn wild(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/wild").join(name)
}

fn analyse(p: &Path, keep_duplicates: bool) -> (netcase_analysis::Analysis, Vec<ConnSummary>) {
    let opts =
        netcase_analysis::Options { events: false, proto: true, rules: true, keep_duplicates, single_thread: false };
    let mut k = Keep(Vec::new());
    let a = netcase_analysis::analyse_file::<std::io::Sink, _>(p, opts, None, &mut k, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (a, k.0)
}

fn of(a: &netcase_analysis::Analysis, case: CaseId) -> Vec<&Finding> {
    a.findings.iter().filter(|f| f.case == case).collect()
}

/// m57-long: every frame twice. Read naively (tshark, or `--keep-duplicates`) the copies are
/// 83 retransmissions and the stream gets head-of-line warnings; with the copies left out
/// there is not one retransmission.
#[test]
fn duplicated_frames_are_not_retransmissions() {
    let Some(p) = shared("zeek-m57-long-49583-80.pcap") else { return };
    let (a, conns) = analyse(&p, false);
    let d = of(&a, CaseId::CaptureDuplicates);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].measure("copies"), Some(113.0));
    assert_eq!(d[0].text("cause"), Some("same_interface"));
    assert_eq!(conns[0].flag_counts.get(netcase_flow::AnalysisFlags::RETRANSMISSION), 0);
    assert!(of(&a, CaseId::RetransHolBlocking).is_empty());
    let (naive, conns) = analyse(&p, true);
    assert!(conns[0].flag_counts.get(netcase_flow::AnalysisFlags::RETRANSMISSION) >= 80);
    assert_eq!(naive.artefacts.dups.copies, 113, "still counted with --keep-duplicates");
}

/// tcp-reassembly (Zeek's test trace): the receiver ACKs data the capture never showed; the
/// loss findings on that connection are withheld (info) and say why.
#[test]
fn capture_loss_withholds_loss_findings() {
    let Some(p) = shared("zeek-tcp-reassembly.pcap") else { return };
    let (a, conns) = analyse(&p, false);
    let l = of(&a, CaseId::CaptureLoss);
    assert_eq!(l.len(), 1);
    let missed: u64 = conns.iter().map(|c| c.ab.missed_bytes + c.ba.missed_bytes).sum();
    assert_eq!(l[0].measure("missed_bytes"), Some(missed as f64));
    assert!(missed > 0);
    for f in a.findings.iter().filter(|f| matches!(f.case, CaseId::RetransHolBlocking | CaseId::DupackNoFastRetransmit))
    {
        assert_eq!(f.severity, Severity::Info, "{f:?}");
        assert!(f.summary.starts_with("Withheld"), "{}", f.summary);
    }
    assert!(l[0].text("withheld").is_some());
}

/// AFS over UDP in IP fragments: tshark reassembles 51 datagrams from 200 fragments
/// (`tshark -r F -Y ip.reassembled_in` / `-Y "ip.fragment.count"`); so does the pipeline,
/// and the UDP flows see whole datagrams.
#[test]
fn fragments_are_reassembled() {
    let (a, _) = analyse(&wild("tcpdump-afs.pcap"), false);
    assert_eq!(a.frag.stats.fragments, 200);
    assert_eq!(a.frag.stats.reassembled, 51);
    assert_eq!(a.frag.incomplete_total, 0);
    let f = of(&a, CaseId::IpFragments);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].measure("reassembled"), Some(51.0));
}

/// PCAPdroid's damaged capture: DNS answers whose later fragments are missing (and the first
/// cut by the snap length): incomplete datagrams reported with who they belonged to.
#[test]
fn incomplete_fragments_are_named() {
    let (a, _) = analyse(&wild("pcapdroid-invalid_or_unsupported.pcap"), false);
    assert!(a.frag.incomplete_total > 0);
    let f = of(&a, CaseId::IpFragments);
    assert_eq!(f.len(), 1);
    assert!(f[0].summary.contains("never completed"), "{}", f[0].summary);
}

/// The checksums of the capturing host's own packets (loopback here) are never errors.
#[test]
fn checksum_offload_is_info() {
    let Some(p) = shared("filesamples-simple_http_sll2.pcap") else { return };
    let (a, _) = analyse(&p, false);
    let f = of(&a, CaseId::CaptureOffload);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Info);
    assert_eq!(f[0].measure("bad_checksums"), Some(24.0));
}

/// Big TCP (80,000-byte segments) from tcpdump's tests: segments above the MSS, noted once.
#[test]
fn super_segments_are_offload() {
    let (a, _) = analyse(&wild("tcpdump-bigtcp-ipv4.pcap"), false);
    let f = of(&a, CaseId::CaptureOffload);
    assert_eq!(f.len(), 1, "{:#?}", a.findings);
    assert!(f[0].measure("max_segment").unwrap_or(0.0) > 60_000.0, "{:?}", f[0]);
}

/// A capture stitched from files 60 days apart: the step is reported and the duration given
/// without it.
#[test]
fn time_steps_are_reported() {
    let (a, _) = analyse(&wild("packetnet-test_stream.pcap"), false);
    let f = of(&a, CaseId::CaptureTime);
    assert_eq!(f.len(), 1);
    assert!(f[0].measure("active_span_s").unwrap() < f[0].measure("file_span_s").unwrap().abs());
}

/// Ethernet/IPv4 frame with `ip_payload` (a UDP datagram or a fragment of one).
fn ipv4_frame(src: [u8; 4], dst: [u8; 4], id: u16, frag_field: u16, ip_payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00];
    let total = (20 + ip_payload.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&id.to_be_bytes());
    ip.extend_from_slice(&frag_field.to_be_bytes());
    ip.extend_from_slice(&[64, 17, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    f.extend_from_slice(&ip);
    f.extend_from_slice(ip_payload);
    f
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]); // no checksum
    u.extend_from_slice(payload);
    u
}

/// A DNS answer too big for one packet arrives in two IPv4 fragments (as DNSSEC and large
/// EDNS0 answers do): the query is paired with the reassembled answer on the frame that
/// completes it, with all 120 records; without the last fragment it stays unanswered and the
/// incomplete datagram is named.
#[test]
fn fragmented_dns_answer_is_paired() {
    let (client, server) = ([10, 0, 0, 1], [10, 0, 0, 53]);
    let qname = [7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0];
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    query.extend_from_slice(&qname);
    query.extend_from_slice(&[0, 1, 0, 1]);
    let mut resp = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 120, 0, 0, 0, 0];
    resp.extend_from_slice(&qname);
    resp.extend_from_slice(&[0, 1, 0, 1]);
    for i in 0..120u8 {
        resp.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, i]);
    }
    let whole = udp(53, 40000, &resp); // 8 + 12 + 17 + 120 * 16 = 1957 bytes
    let (first, rest) = whole.split_at(1480);
    let frames = [
        (1_000_000, ipv4_frame(client, server, 1, 0x4000, &udp(40000, 53, &query))),
        (1_020_000, ipv4_frame(server, client, 77, 0x2000, first)),
        (1_020_100, ipv4_frame(server, client, 77, 1480 / 8, rest)),
    ];
    let dir = std::env::temp_dir().join(format!("netcase-fragdns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let whole_file = dir.join("frag-dns.pcap");
    std::fs::write(&whole_file, pcap(&frames)).unwrap();
    let cut_file = dir.join("frag-dns-lost.pcap");
    std::fs::write(&cut_file, pcap(&frames[..2])).unwrap();

    let (a, _) = analyse(&whole_file, false);
    let (cut, _) = analyse(&cut_file, false);
    let _ = std::fs::remove_dir_all(&dir);

    let dns = &a.proto.as_ref().unwrap().dns;
    assert_eq!(dns.len(), 1, "{dns:#?}");
    assert_eq!(dns[0].response_frame, Some(3));
    assert_eq!(dns[0].answers.len(), 120);
    assert_eq!(dns[0].response_time_ns, Some(20_100_000));
    assert_eq!(a.frag.stats.reassembled, 1);
    assert_eq!(of(&a, CaseId::IpFragments)[0].measure("reassembled_dns"), Some(1.0));

    let dns = &cut.proto.as_ref().unwrap().dns;
    assert_eq!(dns.len(), 1);
    assert_eq!(dns[0].response_frame, None);
    let f = of(&cut, CaseId::IpFragments);
    assert_eq!(f[0].measure("incomplete"), Some(1.0));
    assert!(f[0].summary.contains("10.0.0.53 -> 10.0.0.1 proto 17 ports 53->40000"), "{}", f[0].summary);
}
