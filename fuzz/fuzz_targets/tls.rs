//! Any bytes as a TLS ClientHello and ServerHello handshake message (the parsers alone, on
//! the bytes as they are and after a 5-byte record header), and as a TLS conversation on
//! port 443 through the tracker's record walker (see `common` for the segments): nothing
//! panics, and what comes out is bounded by what went in (names and ALPN lists by the bytes).
#![no_main]
use libfuzzer_sys::fuzz_target;
use netcase_proto::tls::{read_client_hello, read_server_hello};
use netcase_proto::{ProtoTracker, TlsInfo};

mod common;

fn check(info: &TlsInfo, len: usize) {
    // Lossy UTF-8 may turn one byte into three.
    assert!(info.sni.as_ref().is_none_or(|s| s.len() <= 3 * len));
    assert!(info.alpn.len() <= len);
    assert!(info.alpn.iter().map(String::len).sum::<usize>() <= 3 * len);
    assert!(info.server_alpn.as_ref().is_none_or(|s| s.len() <= 3 * len));
}

fuzz_target!(|data: &[u8]| {
    for msg in [data, data.get(5..).unwrap_or(&[])] {
        let mut info = TlsInfo::default();
        let _ = read_client_hello(msg, &mut info);
        assert!(info.version.is_none() && info.server_alpn.is_none());
        check(&info, msg.len());
        let mut info = TlsInfo::default();
        let _ = read_server_hello(msg, &mut info);
        assert!(info.sni.is_none() && info.alpn.is_empty());
        check(&info, msg.len());
    }
    let mut t = ProtoTracker::new();
    let played = common::play(&mut t, data, 443);
    let out = t.finish();
    assert_eq!(out.stats.packets, played.packets);
    assert!(out.conns.len() as u64 <= played.conns);
    for c in &out.conns {
        if let Some(i) = &c.tls {
            check(i, data.len());
            assert!(i.alerts as usize <= data.len());
        }
    }
});
