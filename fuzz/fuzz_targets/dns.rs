//! Any bytes as a DNS message (the decoder alone, a UDP datagram to port 53 and to 5353) and
//! as a DNS-over-TCP conversation on port 53 (see `common`: segments, directions, losses,
//! reordering; the 2-byte length prefixes are the fuzzer's to find): nothing panics, and what
//! comes out is bounded by what went in (records by the header counts and the bytes, names by
//! the decoder's 1 KiB cap plus one label, transactions by the messages).
#![no_main]
use libfuzzer_sys::fuzz_target;
use netcase_proto::dns::{parse_message, RData};
use netcase_proto::ProtoTracker;

mod common;

/// Longest name text: the cap is checked after each label, and a label of 63 bytes escapes
/// to at most 252 characters plus its dot.
const MAX_NAME: usize = 1024 + 253;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_message(data) {
        let [_, an, ns, ar] = m.counts.map(usize::from);
        assert!(m.answers.len() <= an);
        assert!(m.all_ttls.len() <= an + ns + ar);
        // A record takes at least 11 bytes (a 1-byte root name and 10 of fixed fields).
        assert!(m.all_ttls.len() * 11 <= data.len());
        assert!(m.qname.as_deref().is_none_or(|n| n.len() <= MAX_NAME));
        for r in &m.answers {
            assert!(r.name.len() <= MAX_NAME);
            if let RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) | RData::Mx(_, n) = &r.data {
                assert!(n.len() <= MAX_NAME);
            }
        }
    }
    let mut t = ProtoTracker::new();
    let c = "10.0.0.1:40000".parse().unwrap();
    t.udp(1, 1_000, c, "10.0.0.53:53".parse().unwrap(), data, data.len() as u32);
    t.udp(2, 2_000, "10.0.0.53:53".parse().unwrap(), c, data, data.len() as u32);
    t.udp(3, 3_000, c, "224.0.0.251:5353".parse().unwrap(), data, data.len() as u32);
    let played = common::play(&mut t, data, 53);
    let out = t.finish();
    assert_eq!(out.stats.packets, played.packets + 3);
    assert!(out.http.is_empty() && out.conns.is_empty());
    // Over TCP a message takes at least its 2-byte length prefix.
    assert!(out.stats.dns_messages <= 3 + played.payload / 2);
    assert!(out.dns.len() as u64 <= out.stats.dns_messages);
    assert!(out.stats.dns_malformed <= out.stats.dns_messages);
    for d in &out.dns {
        assert!(d.query_frames.len() as u64 <= out.stats.dns_messages);
        assert!(d.answers.len() * 11 <= data.len());
    }
});
