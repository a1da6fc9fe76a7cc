//! A sequence of raw IP packets (each: 2-byte length, 1-byte time step, bytes) through the
//! artefact checks and IP reassembly: nothing panics, reassembly never holds more than its
//! bound, and every datagram it returns decodes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netcase_artefact::{Artefacts, FrameMeta};
use netcase_frag::{Config, Reassembler};
use netcase_wire::{decode, LinkType};

fuzz_target!(|data: &[u8]| {
    let cfg = Config { max_bytes: 64 * 1024, max_datagrams: 8, ..Config::default() };
    let mut reasm = Reassembler::new(cfg);
    let mut art = Artefacts::new();
    let mut rest = data;
    let mut ts: i64 = 0;
    let mut n = 0u64;
    while let [a, b, step, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (frame, next) = tail.split_at(len);
        rest = next;
        n += 1;
        // Steps back as well as forward, some of them huge.
        ts = ts.wrapping_add((i64::from(*step as i8)) * 7_919_000_000);
        let mut pkt = decode(LinkType::Raw, frame);
        let meta = FrameMeta { number: n, ts_ns: ts, interface: u32::from(*step & 1) };
        if art.frame(&meta, frame, &mut pkt).is_some() {
            continue;
        }
        if pkt.ip.is_some_and(|ip| ip.fragment.is_some()) {
            if let Some(d) = reasm.push(n, ts, &pkt) {
                let whole = decode(LinkType::Raw, d.bytes);
                assert!(whole.ip.is_some(), "a reassembled datagram must decode");
            }
            assert!(reasm.stats().bytes_held <= 64 * 1024);
        }
    }
    let report = reasm.finish();
    assert!(report.incomplete.len() <= 64);
    let _ = art.report();
});
