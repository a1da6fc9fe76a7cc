//! The hand-written flow records of `netcase_report::json` are byte for byte what serde writes
//! from `ConnSummary`'s derive, for every connection of every capture of the shared corpus and
//! of `corpus/wild`.

use netcase_analysis::{analyse_file, FlowRecords, Options};
use netcase_flow::{ConnSummary, UdpSummary};

#[derive(Default)]
struct Compare {
    conns: u64,
    mismatches: Vec<String>,
}

impl FlowRecords for Compare {
    fn tcp(&mut self, c: &ConnSummary) {
        self.conns += 1;
        let mut mine = Vec::new();
        netcase_report::json::conn_summary(&mut mine, c);
        let serde = serde_json::to_vec(c).expect("serialise");
        if mine != serde && self.mismatches.len() < 5 {
            self.mismatches.push(format!(
                "stream {}:\n  hand:  {}\n  serde: {}",
                c.stream,
                String::from_utf8_lossy(&mine),
                String::from_utf8_lossy(&serde)
            ));
        }
    }
    fn udp(&mut self, _u: &UdpSummary) {}
}

#[test]
fn flow_records_match_serde_on_the_corpus() {
    let mut caps = netcase_testkit::corpus_captures();
    // And the reviewed captures from the wild kept in the repository (IPv6, odd links).
    let wild = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpus/wild");
    let mut more: Vec<_> =
        std::fs::read_dir(wild).expect("corpus/wild").filter_map(|e| e.ok().map(|e| e.path())).collect();
    more.retain(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"));
    more.sort();
    caps.extend(more);
    let mut total = 0;
    for p in &caps {
        let mut cmp = Compare::default();
        let opts = Options { rules: true, ..Options::default() };
        analyse_file::<std::io::Sink, _>(p, opts, None, &mut cmp, &mut |_, _| {}).expect("open capture");
        assert!(cmp.mismatches.is_empty(), "{}: {}", p.display(), cmp.mismatches.join("\n"));
        total += cmp.conns;
    }
    assert!(caps.is_empty() || total > 1000, "only {total} connections compared");
    eprintln!("{total} connections of {} captures: identical", caps.len());
}
