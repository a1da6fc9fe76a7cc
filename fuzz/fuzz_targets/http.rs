//! Any bytes as one HTTP connection (see `common` for how the input is cut into segments,
//! directions, losses, reorderings, retransmissions and closes) through the tracker's
//! reassembly and HTTP/1.x parser, and as one SSDP datagram: nothing panics, and what comes out is bounded by what went
//! in (transactions by payload bytes, heads by 64 KiB, bodies by the bytes on the wire).
#![no_main]
use libfuzzer_sys::fuzz_target;
use netcase_proto::{http::MAX_HEAD, ProtoTracker};

mod common;

fuzz_target!(|data: &[u8]| {
    let mut t = ProtoTracker::new();
    // The bytes as they are in one SSDP datagram (HTTP over UDP), then as a conversation.
    let ssdp = ("10.0.0.1:1900".parse().unwrap(), "239.255.255.250:1900".parse().unwrap());
    t.udp(1, 1_000, ssdp.0, ssdp.1, data, data.len() as u32);
    let played = common::play(&mut t, data, 80);
    assert!(played.max_live as u64 <= played.conns);
    let out = t.finish();
    assert_eq!(out.stats.packets, played.packets + 1);
    assert!(out.dns.is_empty());
    assert!(out.conns.len() as u64 <= played.conns);
    assert!(out.http.iter().filter(|h| h.ssdp).count() <= 1);
    // A transaction needs a head, and a head at least two bytes (plus the SSDP one).
    assert!(
        out.http.len() as u64 <= played.payload / 2 + 2,
        "{} transactions from {} bytes",
        out.http.len(),
        played.payload
    );
    for h in &out.http {
        assert!(h.req_header_bytes as usize <= MAX_HEAD && h.resp_header_bytes as usize <= MAX_HEAD);
        assert!(h.req_body_bytes <= played.wire_bytes && h.resp_body_bytes <= played.wire_bytes);
        assert!(h.resp_body_uncaptured <= h.resp_body_bytes);
        assert!(h.interim.len() as u64 <= played.payload / 2);
        assert!(h.conn.is_none_or(|c| (c as usize) < out.conns.len()));
    }
});
