//! Hand-written JSON for the records netcase writes by the hundred thousand: the TCP flow
//! record of `netcase pcap --json` (`{"proto":"tcp", ...ConnSummary}`) and the DNS and HTTP
//! transactions ([`Record`]).
//!
//! Why by hand: serde_json checks every byte of every key for escapes, formats addresses
//! through `fmt`, and writes each piece through `io::Write`; on a capture of 100,000 short
//! connections that was 15 % of the instructions of `pcap --json --no-proto`, and a third of
//! the main thread's with the transactions. Here the keys are constants written in one copy,
//! numbers go through `itoa`, IPv4 addresses are written digit by digit, and only free text
//! (names, URIs, header values) is scanned for escapes. The serde implementations stay the
//! specification: `tests/json_equivalence.rs` compares the bytes of both for every connection
//! and transaction of the corpora, so a field added there and not here fails.

use netcase_flow::{ConnEnd, ConnSummary, DirTotals, Endpoint, HandshakeOptions, RttSummary, Side};
use netcase_proto::{DnsRecord, DnsTxn, HttpTxn, RData, Transport};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

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

/// A record that writes itself as one JSON object, byte for byte what its serde
/// implementation writes.
pub trait Record {
    /// Appends the object to `o`.
    fn write_json(&self, o: &mut Vec<u8>);
}

impl Record for DnsTxn {
    fn write_json(&self, o: &mut Vec<u8>) {
        dns_txn(o, self);
    }
}

impl Record for HttpTxn {
    fn write_json(&self, o: &mut Vec<u8>) {
        http_txn(o, self);
    }
}

impl Record for ConnSummary {
    fn write_json(&self, o: &mut Vec<u8>) {
        conn_summary(o, self);
    }
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it (`\"`, `\\`, the short
/// forms of `\b \f \n \r \t`, `\u00xx` for the other control bytes; everything else as is).
pub fn string(o: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    o.push(b'"');
    let b = s.as_bytes();
    let mut from = 0;
    for (i, &c) in b.iter().enumerate() {
        if c >= 0x20 && c != b'"' && c != b'\\' {
            continue;
        }
        o.extend_from_slice(b.get(from..i).unwrap_or_default());
        from = i + 1;
        match c {
            b'"' => o.extend_from_slice(b"\\\""),
            b'\\' => o.extend_from_slice(b"\\\\"),
            0x08 => o.extend_from_slice(b"\\b"),
            0x0c => o.extend_from_slice(b"\\f"),
            b'\n' => o.extend_from_slice(b"\\n"),
            b'\r' => o.extend_from_slice(b"\\r"),
            b'\t' => o.extend_from_slice(b"\\t"),
            _ => {
                o.extend_from_slice(b"\\u00");
                o.push(HEX[usize::from(c >> 4)]);
                o.push(HEX[usize::from(c & 0xf)]);
            }
        }
    }
    o.extend_from_slice(b.get(from..).unwrap_or_default());
    o.push(b'"');
}

/// Appends a socket address as a JSON string, formatted as `std` (and so serde) formats it.
fn sockaddr(o: &mut Vec<u8>, a: &SocketAddr) {
    match a {
        SocketAddr::V4(v4) => {
            o.push(b'"');
            let [w, x, y, z] = v4.ip().octets();
            int(o, w);
            o.push(b'.');
            int(o, x);
            o.push(b'.');
            int(o, y);
            o.push(b'.');
            int(o, z);
            o.push(b':');
            int(o, v4.port());
            o.push(b'"');
        }
        // IPv6 text (with a scope, if any) has nothing to escape.
        SocketAddr::V6(v6) => {
            let _ = write!(o, "\"{v6}\"");
        }
    }
}

/// An object under construction: keys are static identifiers (nothing to escape); the comma
/// before each member but the first.
struct Obj<'a> {
    o: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn open(o: &'a mut Vec<u8>) -> Self {
        o.push(b'{');
        Obj { o, first: true }
    }
    #[inline]
    fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.o.push(b',');
        }
        self.first = false;
        self.o.push(b'"');
        self.o.extend_from_slice(k.as_bytes());
        self.o.extend_from_slice(b"\":");
        self.o
    }
    fn int<I: itoa::Integer>(&mut self, k: &str, v: I) {
        let o = self.key(k);
        int(o, v);
    }
    /// `null` when absent.
    fn null_int<I: itoa::Integer>(&mut self, k: &str, v: Option<I>) {
        let o = self.key(k);
        opt_int(o, v);
    }
    /// Left out when absent.
    fn some_int<I: itoa::Integer>(&mut self, k: &str, v: Option<I>) {
        if let Some(v) = v {
            self.int(k, v);
        }
    }
    fn boolean(&mut self, k: &str, v: bool) {
        let o = self.key(k);
        boolean(o, v);
    }
    /// Written only when true.
    fn flag(&mut self, k: &str, v: bool) {
        if v {
            self.boolean(k, true);
        }
    }
    fn str(&mut self, k: &str, v: &str) {
        let o = self.key(k);
        string(o, v);
    }
    /// Left out when absent.
    fn some_str(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }
    fn ints<I: itoa::Integer + Copy>(&mut self, k: &str, v: &[I]) {
        let o = self.key(k);
        o.push(b'[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            int(o, *x);
        }
        o.push(b']');
    }
    fn close(self) {
        self.o.push(b'}');
    }
}

fn dns_record(o: &mut Vec<u8>, r: &DnsRecord) {
    let mut j = Obj::open(o);
    j.str("name", r.name.as_str());
    j.int("rtype", r.rtype);
    j.int("ttl", r.ttl);
    let o = j.key("data");
    match &r.data {
        RData::A(a) => {
            o.extend_from_slice(b"{\"kind\":\"a\",\"value\":");
            addr(o, IpAddr::V4(*a));
        }
        RData::Aaaa(a) => {
            o.extend_from_slice(b"{\"kind\":\"aaaa\",\"value\":");
            addr(o, IpAddr::V6(*a));
        }
        RData::Cname(n) => {
            o.extend_from_slice(b"{\"kind\":\"cname\",\"value\":");
            string(o, n);
        }
        RData::Ns(n) => {
            o.extend_from_slice(b"{\"kind\":\"ns\",\"value\":");
            string(o, n);
        }
        RData::Ptr(n) => {
            o.extend_from_slice(b"{\"kind\":\"ptr\",\"value\":");
            string(o, n);
        }
        RData::Mx(p, n) => {
            o.extend_from_slice(b"{\"kind\":\"mx\",\"value\":[");
            int(o, *p);
            o.push(b',');
            string(o, n);
            o.push(b']');
        }
        RData::Other(len) => {
            o.extend_from_slice(b"{\"kind\":\"other\",\"value\":");
            int(o, *len);
        }
    }
    o.push(b'}');
    j.close();
}

/// Appends `t` as one JSON object, byte for byte what `serde_json::to_vec(t)` writes.
pub fn dns_txn(o: &mut Vec<u8>, t: &DnsTxn) {
    let mut j = Obj::open(o);
    j.int("ts_ns", t.ts_ns);
    j.str("flavor", t.flavor.as_str());
    j.str(
        "transport",
        match t.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        },
    );
    sockaddr(j.key("client"), &t.client);
    sockaddr(j.key("server"), &t.server);
    j.int("id", t.id);
    j.int("opcode", t.opcode);
    match &t.name {
        Some(n) => j.str("name", n.as_str()),
        None => j.key("name").extend_from_slice(b"null"),
    }
    j.int("qtype", t.qtype);
    j.null_int("rcode", t.rcode);
    j.boolean("truncated", t.truncated);
    let o = j.key("answers");
    o.push(b'[');
    for (i, r) in t.answers.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        dns_record(o, r);
    }
    o.push(b']');
    j.ints("response_counts", &t.response_counts);
    j.ints("response_ttls", &t.response_ttls);
    j.ints("query_frames", &t.query_frames);
    j.ints("query_ts_ns", &t.query_ts_ns);
    j.null_int("response_frame", t.response_frame);
    j.null_int("response_ts_ns", t.response_ts_ns);
    j.null_int("response_time_ns", t.response_time_ns);
    j.boolean("response_partial", t.response_partial);
    j.int("duplicate_responses", t.duplicate_responses);
    j.ints("duplicate_frames", &t.duplicate_frames);
    j.close();
}

/// Appends `t` as one JSON object, byte for byte what `serde_json::to_vec(t)` writes.
pub fn http_txn(o: &mut Vec<u8>, t: &HttpTxn) {
    let mut j = Obj::open(o);
    j.some_int("stream", t.stream);
    if let Some(a) = &t.client {
        sockaddr(j.key("client"), a);
    }
    if let Some(a) = &t.server {
        sockaddr(j.key("server"), a);
    }
    j.int("seq_on_conn", t.seq_on_conn);
    j.some_str("method", t.method.as_deref());
    j.some_str("uri", t.uri.as_deref());
    j.some_str("version", t.version.map(|v| v.as_str()));
    j.some_str("host", t.host.as_deref());
    j.some_str("req_connection", t.req_connection.as_deref());
    j.some_int("req_content_length", t.req_content_length);
    j.some_int("request_frame", t.request_frame);
    j.some_int("request_ts_ns", t.request_ts_ns);
    j.some_int("request_start_ts_ns", t.request_start_ts_ns);
    j.some_int("request_start_frame", t.request_start_frame);
    j.int("req_header_bytes", t.req_header_bytes);
    j.int("req_body_bytes", t.req_body_bytes);
    j.some_int("status", t.status);
    j.some_str("reason", t.reason.as_deref());
    j.some_str("resp_connection", t.resp_connection.as_deref());
    j.some_int("resp_content_length", t.resp_content_length);
    j.some_str("resp_content_length_header", t.resp_content_length_header.as_deref());
    j.some_str("resp_transfer_encoding", t.resp_transfer_encoding.as_deref());
    j.int("interim_responses", t.interim_responses());
    if !t.interim.is_empty() {
        let o = j.key("interim");
        o.push(b'[');
        for (i, x) in t.interim.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            let mut k = Obj::open(o);
            k.int("status", x.status);
            k.int("frame", x.frame);
            k.int("ts_ns", x.ts_ns);
            k.close();
        }
        o.push(b']');
    }
    j.some_int("response_frame", t.response_frame);
    j.some_int("response_ts_ns", t.response_ts_ns);
    j.some_int("response_start_frame", t.response_start_frame);
    j.some_int("response_start_ts_ns", t.response_start_ts_ns);
    j.int("resp_header_bytes", t.resp_header_bytes);
    j.int("resp_body_bytes", t.resp_body_bytes);
    j.int("resp_body_uncaptured", t.resp_body_uncaptured);
    j.int("unexpected_body_bytes", t.unexpected_body_bytes);
    j.flag("early_response", t.early_response);
    j.flag("ssdp", t.ssdp);
    j.flag("response_lost", t.response_lost);
    j.flag("response_incomplete", t.response_incomplete);
    j.null_int("http_time_ns", t.http_time_ns());
    j.some_int("ttfb_ns", t.ttfb_ns);
    j.null_int("transfer_ns", t.transfer_ns());
    j.some_int("total_ns", t.total_ns);
    j.flag("after_server_fin", t.after_server_fin);
    j.flag("unanswered_at_client_fin", t.unanswered_at_client_fin);
    j.some_int("client_fin_after_ns", t.client_fin_after_ns);
    j.flag("response_after_client_fin", t.response_after_client_fin);
    match t.timing() {
        None => j.key("timing").extend_from_slice(b"null"),
        Some(tm) => {
            let o = j.key("timing");
            let mut k = Obj::open(o);
            k.null_int("dns_ns", tm.dns_ns);
            k.null_int("connect_ns", tm.connect_ns);
            k.null_int("tls_ns", tm.tls_ns);
            k.null_int("ttfb_ns", tm.ttfb_ns);
            k.null_int("transfer_ns", tm.transfer_ns);
            k.close();
        }
    }
    j.close();
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
    fn strings_are_escaped_as_serde_escapes_them() {
        let all: String = (0u8..=0x7f).map(char::from).chain("é€😀\u{2028}".chars()).collect();
        for s in [all.as_str(), "", "plain", "\"", "a\\b", "\u{7f}"] {
            let mut mine = Vec::new();
            string(&mut mine, s);
            assert_eq!(String::from_utf8_lossy(&mine), serde_json::to_string(s).unwrap());
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
