//! The hand-written records of `netcase_report::json` are byte for byte what serde writes from
//! `ConnSummary`, `DnsTxn` and `HttpTxn`, for every connection and transaction of every capture
//! of the shared corpus and of `corpus/wild`.

use netcase_analysis::{analyse_file, FlowRecords, Options};
use netcase_flow::{ConnSummary, UdpSummary};

#[derive(Default)]
struct Compare {
    conns: u64,
    dns: u64,
    http: u64,
    mismatches: Vec<String>,
}

fn compare<T: serde::Serialize>(what: &str, t: &T, mine: impl Fn(&mut Vec<u8>), out: &mut Vec<String>) {
    let mut m = Vec::new();
    mine(&mut m);
    let serde = serde_json::to_vec(t).expect("serialise");
    if m != serde && out.len() < 5 {
        out.push(format!(
            "{what}:\n  hand:  {}\n  serde: {}",
            String::from_utf8_lossy(&m),
            String::from_utf8_lossy(&serde)
        ));
    }
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
    fn proto(&mut self, p: &netcase_proto::ProtoOutput) {
        for t in &p.dns {
            self.dns += 1;
            compare("dns", t, |o| netcase_report::json::dns_txn(o, t), &mut self.mismatches);
        }
        for t in &p.http {
            self.http += 1;
            compare("http", t, |o| netcase_report::json::http_txn(o, t), &mut self.mismatches);
        }
    }
}

#[test]
fn flow_records_match_serde_on_the_corpus() {
    let mut caps = netcase_testkit::corpus_captures();
    // And the reviewed captures from the wild kept in the repository (IPv6, odd links).
    caps.extend(netcase_testkit::wild_captures());
    let (mut total, mut dns, mut http) = (0, 0, 0);
    for p in &caps {
        let mut cmp = Compare::default();
        let opts = Options { rules: true, proto: true, ..Options::default() };
        analyse_file::<std::io::Sink, _>(p, opts, None, &mut cmp, &mut |_, _| {}).expect("open capture");
        assert!(cmp.mismatches.is_empty(), "{}: {}", p.display(), cmp.mismatches.join("\n"));
        total += cmp.conns;
        dns += cmp.dns;
        http += cmp.http;
    }
    assert!(caps.is_empty() || (total > 1000 && dns > 100 && http > 100), "only {total}/{dns}/{http} compared");
    eprintln!("{total} connections, {dns} DNS and {http} HTTP transactions of {} captures: identical", caps.len());
}
