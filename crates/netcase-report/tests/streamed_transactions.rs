//! `pcap --json` streams HTTP transactions out as they finish (a sorted spill on the protocol
//! thread) instead of gathering them: the `http` array and the findings must be exactly those
//! of the gathered analysis, in the same order, on every capture of the corpora.

use netcase_analysis::{analyse_file, Analysis, FlowRecords, Options};
use netcase_flow::{ConnSummary, UdpSummary};
use netcase_report::pcap::JsonRecords;

/// Gathers the transactions (no sink): the analysis keeps them in `Analysis::proto`.
struct Gather;
impl FlowRecords for Gather {
    fn tcp(&mut self, _c: &ConnSummary) {}
    fn udp(&mut self, _u: &UdpSummary) {}
}

fn findings(a: &Analysis) -> Vec<String> {
    a.findings.iter().map(|f| format!("{:?} {:?} {}", f.case, f.severity, f.summary)).collect()
}

#[test]
fn streamed_http_array_and_findings_equal_the_gathered_ones() {
    let mut caps = netcase_testkit::corpus_captures();
    // And the reviewed captures from the wild kept in the repository (IPv6, odd links).
    caps.extend(netcase_testkit::wild_captures());
    let opts = Options { rules: true, proto: true, ..Options::default() };
    let mut http_total = 0;
    for p in &caps {
        let gathered = analyse_file::<std::io::Sink, _>(p, opts, None, &mut Gather, &mut |_, _| {}).expect("open");
        let want: Vec<serde_json::Value> = gathered
            .proto
            .as_ref()
            .map(|o| o.http.iter().map(|t| serde_json::to_value(t).expect("serialise")).collect())
            .unwrap_or_default();
        let mut doc = b"{\"flows\":[".to_vec();
        let streamed = {
            let mut rec = JsonRecords::new(&mut doc);
            let a = analyse_file::<std::io::Sink, _>(p, opts, None, &mut rec, &mut |_, _| {}).expect("open");
            assert!(rec.err.is_none(), "{}: {:?}", p.display(), rec.err);
            assert!(rec.proto_written);
            a
        };
        assert!(streamed.proto.as_ref().is_some_and(|o| o.http.is_empty()), "{}: HTTP kept in memory", p.display());
        doc.extend_from_slice(b"}");
        let v: serde_json::Value = serde_json::from_slice(&doc).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let got = v["http"].as_array().cloned().unwrap_or_default();
        assert_eq!(got.len(), want.len(), "{}", p.display());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{}: HTTP transaction {i}", p.display());
        }
        assert_eq!(findings(&streamed), findings(&gathered), "{}", p.display());
        http_total += got.len();
    }
    assert!(caps.is_empty() || http_total > 1000, "only {http_total} HTTP transactions compared");
    eprintln!("{http_total} HTTP transactions of {} captures: streamed = gathered", caps.len());
}
