//! Any bytes as one HTTP connection (see `common` for how the input is cut into segments,
//! directions, losses, reorderings, retransmissions and closes) through the tracker's
//! reassembly and HTTP/1.x parser: nothing panics, and what comes out is bounded by what went
//! in (transactions by payload bytes, heads by 64 KiB, bodies by the bytes on the wire).
#![no_main]
use libfuzzer_sys::fuzz_target;
use netcase_proto::{http::MAX_HEAD, ProtoTracker};

mod common;

fuzz_target!(|data: &[u8]| {
    let mut t = ProtoTracker::new();
    let played = common::play(&mut t, data, 80);
    assert!(played.max_live as u64 <= played.conns);
    let out = t.finish();
    assert_eq!(out.stats.packets, played.packets);
    assert!(out.dns.is_empty());
    assert!(out.conns.len() as u64 <= played.conns);
    // A transaction needs a head, and a head at least two bytes.
    assert!(
        out.http.len() as u64 <= played.payload / 2 + 1,
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
