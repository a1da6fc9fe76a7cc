//! Hand-written JSON for the one record netcase writes by the hundred thousand: the TCP flow
//! record of `netcase pcap --json` (`{"proto":"tcp", ...ConnSummary}`).
//!
//! Why by hand: serde_json checks every byte of every key for escapes and writes each piece
//! through `io::Write`; on a capture of 100,000 short connections that was 15 % of the
//! instructions of `pcap --json --no-proto`. Here the keys are constants written in one copy,
//! numbers go through `itoa`, and the record holds no free text (addresses, ports, counts,
//! static names), so nothing needs escaping. The serde derive on
//! [`ConnSummary`] stays the specification: `tests/json_equivalence.rs` compares the bytes of
//! both for every connection of the shared corpus, so a field added there and not here fails.

use netcase_flow::{ConnEnd, ConnSummary, DirTotals, Endpoint, HandshakeOptions, RttSummary, Side};
use std::io::Write;
use std::net::IpAddr;

/// Appends an integer.
#[inline]
fn int<I: itoa::Integer>(o: &mut Vec<u8>, v: I) {
    let mut b = itoa::Buffer::new();
    o.extend_from_slice(b.format(v).as_bytes());
}

/// Appends `true` or `false`.
#[inline]
fn boolean(o: &mut Vec<u8>, v: bool) {
    o.extend_from_slice(if v { b"true" } else { b"false" });
}

/// Appends an optional integer (`null` when absent, as serde writes `Option::None`).
#[inline]
fn opt_int<I: itoa::Integer>(o: &mut Vec<u8>, v: Option<I>) {
    match v {
        Some(v) => int(o, v),
        None => o.extend_from_slice(b"null"),
    }
}

/// Appends an address as a JSON string, formatted as `std` (and so serde) formats it.
fn addr(o: &mut Vec<u8>, a: IpAddr) {
    o.push(b'"');
    match a {
        IpAddr::V4(v4) => {
            let [w, x, y, z] = v4.octets();
            int(o, w);
            o.push(b'.');
            int(o, x);
            o.push(b'.');
            int(o, y);
            o.push(b'.');
            int(o, z);
        }
        // IPv6 text has only hex digits, ':' and '.', nothing to escape.
        IpAddr::V6(v6) => {
            let _ = write!(o, "{v6}");
        }
    }
    o.push(b'"');
}

fn endpoint(o: &mut Vec<u8>, e: &Endpoint) {
    o.extend_from_slice(b"{\"addr\":");
    addr(o, e.addr);
    o.extend_from_slice(b",\"port\":");
    int(o, e.port);
    o.push(b'}');
}

fn side(o: &mut Vec<u8>, s: Side) {
    o.extend_from_slice(match s {
        Side::A => b"\"a\"",
        Side::B => b"\"b\"",
    });
}

fn dir(o: &mut Vec<u8>, d: &DirTotals) {
    o.extend_from_slice(b"{\"frames\":");
    int(o, d.frames);
    o.extend_from_slice(b",\"bytes\":");
    int(o, d.bytes);
    o.extend_from_slice(b",\"payload_bytes\":");
    int(o, d.payload_bytes);
    o.extend_from_slice(b",\"fin\":");
    int(o, d.fin);
    o.extend_from_slice(b",\"rst\":");
    int(o, d.rst);
    if let Some(s) = d.scalefactor {
        o.extend_from_slice(b",\"scalefactor\":");
        int(o, s);
    }
    if let Some(w) = d.window {
        o.extend_from_slice(b",\"window\":{\"min\":");
        int(o, w.min);
        o.extend_from_slice(b",\"max\":");
        int(o, w.max);
        o.push(b'}');
    }
    o.extend_from_slice(b",\"zero_window_ns\":");
    int(o, d.zero_window_ns);
    o.extend_from_slice(b",\"max_segment\":");
    int(o, d.max_segment);
    if d.missed_bytes != 0 {
        o.extend_from_slice(b",\"missed_bytes\":");
        int(o, d.missed_bytes);
    }
    if d.missed_gaps != 0 {
        o.extend_from_slice(b",\"missed_gaps\":");
        int(o, d.missed_gaps);
    }
    o.push(b'}');
}

fn handshake(o: &mut Vec<u8>, h: &HandshakeOptions) {
    o.extend_from_slice(b"{\"frame\":");
    int(o, h.frame);
    o.extend_from_slice(b",\"mss\":");
    opt_int(o, h.mss);
    o.extend_from_slice(b",\"wscale\":");
    opt_int(o, h.wscale);
    o.extend_from_slice(b",\"sack_perm\":");
    boolean(o, h.sack_perm);
    o.extend_from_slice(b",\"timestamps\":");
    boolean(o, h.timestamps);
    o.push(b'}');
}

fn end(o: &mut Vec<u8>, e: &ConnEnd) {
    match *e {
        ConnEnd::Open => o.extend_from_slice(b"{\"kind\":\"open\"}"),
        ConnEnd::HalfClosed { by } => {
            o.extend_from_slice(b"{\"kind\":\"half_closed\",\"by\":");
            side(o, by);
            o.push(b'}');
        }
        ConnEnd::Closed { initiator } => {
            o.extend_from_slice(b"{\"kind\":\"closed\",\"initiator\":");
            side(o, initiator);
            o.push(b'}');
        }
        ConnEnd::Reset { by, after_fin } => {
            o.extend_from_slice(b"{\"kind\":\"reset\",\"by\":");
            side(o, by);
            o.extend_from_slice(b",\"after_fin\":");
            boolean(o, after_fin);
            o.push(b'}');
        }
    }
}

fn rtt(o: &mut Vec<u8>, r: &RttSummary) {
    o.extend_from_slice(b"{\"samples\":");
    int(o, r.samples);
    o.extend_from_slice(b",\"min_us\":");
    int(o, r.min_us);
    o.extend_from_slice(b",\"median_us\":");
    int(o, r.median_us);
    o.extend_from_slice(b",\"p99_us\":");
    int(o, r.p99_us);
    o.extend_from_slice(b",\"max_us\":");
    int(o, r.max_us);
    o.push(b'}');
}

/// Appends the fields of `c` as serde would write them, without the braces.
fn conn_fields(o: &mut Vec<u8>, c: &ConnSummary) {
    o.extend_from_slice(b"\"stream\":");
    int(o, c.stream);
    o.extend_from_slice(b",\"a\":");
    endpoint(o, &c.a);
    o.extend_from_slice(b",\"b\":");
    endpoint(o, &c.b);
    o.extend_from_slice(b",\"ab\":");
    dir(o, &c.ab);
    o.extend_from_slice(b",\"ba\":");
    dir(o, &c.ba);
    o.extend_from_slice(b",\"first_frame\":");
    int(o, c.first_frame);
    o.extend_from_slice(b",\"first_ts_ns\":");
    int(o, c.first_ts_ns);
    o.extend_from_slice(b",\"last_ts_ns\":");
    int(o, c.last_ts_ns);
    if let Some(h) = &c.syn {
        o.extend_from_slice(b",\"syn\":");
        handshake(o, h);
    }
    if let Some(h) = &c.synack {
        o.extend_from_slice(b",\"synack\":");
        handshake(o, h);
    }
    if let Some(v) = c.irtt_ns {
        o.extend_from_slice(b",\"irtt_ns\":");
        int(o, v);
    }
    o.extend_from_slice(b",\"end\":");
    end(o, &c.end);
    o.extend_from_slice(b",\"flag_counts\":{");
    for (i, (name, n)) in c.flag_counts.nonzero().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        // The names are the fixed snake_case identifiers of `AnalysisFlags::NAMES`.
        o.push(b'"');
        o.extend_from_slice(name.as_bytes());
        o.extend_from_slice(b"\":");
        int(o, n);
    }
    o.push(b'}');
    if let Some(r) = &c.rtt {
        o.extend_from_slice(b",\"rtt\":");
        rtt(o, r);
    }
    o.extend_from_slice(b",\"max_bytes_in_flight\":");
    int(o, c.max_bytes_in_flight);
    o.extend_from_slice(b",\"retransmitted_bytes\":");
    int(o, c.retransmitted_bytes);
    o.extend_from_slice(b",\"longest_stall_ns\":");
    int(o, c.longest_stall_ns);
    if let Some(f) = c.longest_stall_frame {
        o.extend_from_slice(b",\"longest_stall_frame\":");
        int(o, f);
    }
    if c.resumed {
        o.extend_from_slice(b",\"resumed\":true");
    }
}

/// Appends `c` as one JSON object, byte for byte what `serde_json::to_vec(c)` writes.
pub fn conn_summary(o: &mut Vec<u8>, c: &ConnSummary) {
    o.push(b'{');
    conn_fields(o, c);
    o.push(b'}');
}

/// Appends the flow record of `pcap --json`: `{"proto":"tcp",` then the fields of `c`.
pub fn tcp_record(o: &mut Vec<u8>, c: &ConnSummary) {
    o.extend_from_slice(b"{\"proto\":\"tcp\",");
    conn_fields(o, c);
    o.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcase_flow::{FlagCounts, WindowRange};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn sample(v6: bool) -> ConnSummary {
        let ip = |n: u8| {
            if v6 {
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n)))
            } else {
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
            }
        };
        let mut flags = FlagCounts::default();
        flags.0[0] = 3;
        flags.0[6] = 7;
        ConnSummary {
            stream: 42,
            a: Endpoint { addr: ip(1), port: 40000 },
            b: Endpoint { addr: ip(255), port: 443 },
            ab: DirTotals {
                frames: 10,
                bytes: 1500,
                payload_bytes: 1000,
                fin: 1,
                rst: 0,
                scalefactor: Some(-1),
                window: Some(WindowRange { min: 0, max: 65535 }),
                zero_window_ns: -5,
                max_segment: 1448,
                missed_bytes: 9,
                missed_gaps: 1,
            },
            ba: DirTotals::default(),
            first_frame: 1,
            first_ts_ns: -1_000,
            last_ts_ns: i64::MAX,
            syn: Some(HandshakeOptions { frame: 1, mss: Some(1460), wscale: None, sack_perm: true, timestamps: false }),
            synack: None,
            irtt_ns: Some(123),
            end: ConnEnd::Reset { by: Side::B, after_fin: true },
            flag_counts: flags,
            rtt: Some(RttSummary { samples: 1, min_us: 2, median_us: 3, p99_us: 4, max_us: 5 }),
            max_bytes_in_flight: u32::MAX,
            retransmitted_bytes: 0,
            longest_stall_ns: 0,
            longest_stall_frame: Some(9),
            resumed: true,
        }
    }

    #[test]
    fn matches_serde_on_every_shape() {
        let ends = [
            ConnEnd::Open,
            ConnEnd::HalfClosed { by: Side::A },
            ConnEnd::Closed { initiator: Side::B },
            ConnEnd::Reset { by: Side::A, after_fin: false },
        ];
        for v6 in [false, true] {
            for e in ends {
                let mut c = sample(v6);
                c.end = e;
                let mut mine = Vec::new();
                conn_summary(&mut mine, &c);
                assert_eq!(String::from_utf8_lossy(&mine), serde_json::to_string(&c).unwrap());
                // And with every optional part absent.
                c.syn = None;
                c.irtt_ns = None;
                c.rtt = None;
                c.longest_stall_frame = None;
                c.resumed = false;
                c.ab = DirTotals::default();
                c.flag_counts = FlagCounts::default();
                mine.clear();
                conn_summary(&mut mine, &c);
                assert_eq!(String::from_utf8_lossy(&mine), serde_json::to_string(&c).unwrap());
            }
        }
    }

    #[test]
    fn tcp_record_is_the_summary_with_proto_first() {
        let c = sample(false);
        let mut rec = Vec::new();
        tcp_record(&mut rec, &c);
        let v: serde_json::Value = serde_json::from_slice(&rec).unwrap();
        let mut want = serde_json::to_value(&c).unwrap();
        want.as_object_mut().unwrap().insert("proto".into(), "tcp".into());
        assert_eq!(v, want);
        assert!(rec.starts_with(b"{\"proto\":\"tcp\",\"stream\":42,"));
    }
}
