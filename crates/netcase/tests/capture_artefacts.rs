//! The capture artefacts through the whole pipeline, on real captures: the finding is named,
//! its numbers are right, and the analysis is corrected for it.

use std::path::{Path, PathBuf};

use netcase_flow::{ConnSummary, UdpSummary};
use netcase_model::{CaseId, Finding, Severity};

struct Keep(Vec<ConnSummary>);
impl netcase::pipeline::FlowRecords for Keep {
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

fn analyse(p: &Path, keep_duplicates: bool) -> (netcase::pipeline::Analysis, Vec<ConnSummary>) {
    let opts = netcase::pipeline::Options { events: false, proto: true, rules: true, keep_duplicates };
    let mut k = Keep(Vec::new());
    let a = netcase::pipeline::analyse_file::<std::io::Sink, _>(p, opts, None, &mut k, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (a, k.0)
}

fn of(a: &netcase::pipeline::Analysis, case: CaseId) -> Vec<&Finding> {
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
