//! Behaviour of the tracker on small synthetic packet sequences.

use netcase_proto::tcp_flags::{ACK, FIN, RST, SYN};
use netcase_proto::{ConnEnd, ProtoOutput, ProtoTracker};
use std::net::SocketAddr;

const MS: i64 = 1_000_000;

/// A scripted TCP connection between a client and a server.
struct Conv {
    t: ProtoTracker,
    c: SocketAddr,
    s: SocketAddr,
    cseq: u32,
    sseq: u32,
    frame: u64,
}

impl Conv {
    fn new() -> Self {
        Conv {
            t: ProtoTracker::new(),
            c: "10.0.0.2:50000".parse().unwrap(),
            s: "10.0.0.9:80".parse().unwrap(),
            cseq: 1000,
            sseq: 5000,
            frame: 0,
        }
    }
    fn handshake(&mut self, t_ms: i64) -> &mut Self {
        self.pkt(true, t_ms, SYN, b"");
        self.pkt(false, t_ms + 1, SYN | ACK, b"");
        self.pkt(true, t_ms + 2, ACK, b"")
    }
    fn pkt(&mut self, from_client: bool, t_ms: i64, flags: u16, data: &[u8]) -> &mut Self {
        self.frame += 1;
        let (src, dst, seq, ack) =
            if from_client { (self.c, self.s, self.cseq, self.sseq) } else { (self.s, self.c, self.sseq, self.cseq) };
        self.t.tcp(self.frame, t_ms * MS, src, dst, seq, ack, flags, data, data.len() as u32, None);
        let adv = data.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        if from_client {
            self.cseq = self.cseq.wrapping_add(adv);
        } else {
            self.sseq = self.sseq.wrapping_add(adv);
        }
        self
    }
    fn client(&mut self, t_ms: i64, data: &[u8]) -> &mut Self {
        self.pkt(true, t_ms, ACK, data)
    }
    fn server(&mut self, t_ms: i64, data: &[u8]) -> &mut Self {
        self.pkt(false, t_ms, ACK, data)
    }
    fn finish(self) -> ProtoOutput {
        self.t.finish()
    }
}

#[test]
fn pipelined_requests_pair_in_order_with_split_heads() {
    let mut c = Conv::new();
    c.handshake(0);
    c.client(10, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HT");
    c.client(11, b"TP/1.1\r\nHost: x\r\n\r\n");
    c.server(20, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab");
    c.server(21, b"cHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let out = c.finish();
    assert_eq!(out.http.len(), 2);
    let (a, b) = (&out.http[0], &out.http[1]);
    assert_eq!(
        (a.uri.as_deref(), a.request_frame, a.status, a.response_frame),
        (Some("/a"), Some(4), Some(200), Some(7))
    );
    assert_eq!(
        (b.uri.as_deref(), b.request_frame, b.status, b.response_frame),
        (Some("/b"), Some(5), Some(404), Some(7))
    );
    assert_eq!(a.http_time_ns(), Some(11 * MS));
    assert_eq!(a.ttfb_ns, Some(10 * MS));
    assert_eq!(a.resp_body_bytes, 3);
    assert_eq!(b.seq_on_conn, 2);
    let t = a.timing().unwrap();
    assert_eq!(t.connect_ns, Some(MS));
}

#[test]
fn chunked_head_and_bodyless_responses() {
    let mut c = Conv::new();
    c.handshake(0);
    c.client(10, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.server(11, b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n");
    c.client(12, b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    c.server(13, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n");
    c.server(14, b"5;ext=1\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n");
    c.client(15, b"GET /n HTTP/1.1\r\nHost: x\r\n\r\n");
    c.server(16, b"HTTP/1.1 304 Not Modified\r\n\r\n");
    let out = c.finish();
    let s: Vec<_> = out.http.iter().map(|t| (t.status, t.response_frame)).collect();
    assert_eq!(s, vec![(Some(200), Some(5)), (Some(200), Some(8)), (Some(304), Some(10))]);
    assert!(out.http.iter().all(|t| !t.response_incomplete));
}

#[test]
fn no_content_with_length_counts_stray_body_and_client_stall() {
    let mut c = Conv::new();
    c.handshake(0);
    c.client(10, b"POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    c.server(12, b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello");
    c.pkt(true, 50_012, FIN | ACK, b"");
    let out = c.finish();
    let t = &out.http[0];
    assert_eq!(t.status, Some(204));
    assert_eq!(t.resp_content_length, Some(5));
    assert_eq!(t.unexpected_body_bytes, 5);
    assert_eq!(t.req_body_bytes, 2);
    assert_eq!(out.conns[0].end, ConnEnd::ClientFin);
}

#[test]
fn body_until_close_ends_at_fin() {
    let mut c = Conv::new();
    c.handshake(0);
    c.client(10, b"GET / HTTP/1.0\r\n\r\n");
    c.server(11, b"HTTP/1.0 200 OK\r\n\r\nsome");
    c.server(12, b" body");
    c.pkt(false, 13, FIN | ACK, b"");
    let out = c.finish();
    assert_eq!(out.http[0].response_frame, Some(7));
    assert_eq!(out.http[0].resp_body_bytes, 9);
    assert_eq!(out.conns[0].end, ConnEnd::ServerFin);
}

#[test]
fn out_of_order_and_retransmitted_segments() {
    let mut c = Conv::new();
    c.handshake(0);
    c.client(10, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    // server head then body, but the head segment arrives after the body
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
    let base = c.sseq;
    c.sseq = base + head.len() as u32;
    c.server(11, b"body"); // frame 5: out of order
    c.sseq = base;
    c.server(12, head); // frame 6: fills the hole
    c.sseq = base;
    c.server(13, head); // frame 7: retransmission, ignored
    let out = c.finish();
    assert_eq!(out.http.len(), 1);
    assert_eq!(out.http[0].response_frame, Some(6));
    assert_eq!(out.http[0].response_start_frame, Some(6));
    assert!(out.stats.tcp_dup_segments >= 1);
}

#[test]
fn request_into_server_fin_and_reset() {
    let mut c = Conv::new();
    c.handshake(0);
    c.client(10, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
    c.server(11, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    c.pkt(false, 5_011, FIN | ACK, b""); // idle close after 5 s
    c.client(5_012, b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
    c.pkt(false, 5_013, RST, b"");
    let out = c.finish();
    assert_eq!(out.http.len(), 2);
    assert!(out.http[1].after_server_fin);
    assert!(out.http[1].unanswered());
    let conn = &out.conns[0];
    assert_eq!(conn.requests_after_server_fin, 1);
    assert_eq!(conn.end, ConnEnd::ServerFin);
    assert_eq!(conn.idle_before_close_ns, Some(5_000 * MS));
}

#[test]
fn client_timeout_then_late_response() {
    let mut c = Conv::new();
    c.handshake(0);
    c.client(10, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    c.pkt(true, 3_010, FIN | ACK, b"");
    c.server(7_000, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    c.pkt(true, 7_001, RST, b"");
    let out = c.finish();
    let t = &out.http[0];
    assert!(t.unanswered_at_client_fin);
    assert_eq!(t.client_fin_after_ns, Some(3_000 * MS));
    assert!(t.response_after_client_fin);
    assert_eq!(out.conns[0].unanswered_at_client_fin, 1);
}

#[test]
fn tls_client_hello_sni_and_alpn() {
    let mut c = Conv::new();
    c.s = "10.0.0.9:443".parse().unwrap();
    c.handshake(0);
    let mut ext = Vec::new();
    let name = b"api.example.com";
    let mut sni = vec![0u8, 0, name.len() as u8];
    sni.extend_from_slice(name);
    ext.extend_from_slice(&[0, 0, 0, (sni.len() + 2) as u8, 0, sni.len() as u8]);
    ext.extend_from_slice(&sni);
    ext.extend_from_slice(&[0, 16, 0, 5, 0, 3, 2, b'h', b'2']);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 1, 1, 0, 0, ext.len() as u8]);
    body.extend_from_slice(&ext);
    let mut rec = vec![0x16, 3, 1, 0, (body.len() + 4) as u8, 1, 0, 0, body.len() as u8];
    rec.extend_from_slice(&body);
    c.client(10, &rec);
    c.server(30, &[0x16, 3, 3, 0, 2, 2, 0]);
    c.client(40, &[0x17, 3, 3, 0, 1, 0]);
    c.server(90, &[0x17, 3, 3, 0, 1, 0]);
    let out = c.finish();
    let conn = &out.conns[0];
    let tls = conn.tls.as_ref().unwrap();
    assert_eq!(tls.sni.as_deref(), Some("api.example.com"));
    assert_eq!(tls.alpn, vec!["h2"]);
    let tm = conn.timing.as_deref().copied().unwrap();
    assert_eq!(tm.connect_ns, Some(MS));
    assert_eq!(tm.tls_ns, Some(30 * MS));
    assert_eq!(tm.ttfb_ns, Some(50 * MS));
}

fn dns_msg(id: u16, response: bool, name: &str, qtype: u16, answer: Option<[u8; 4]>) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&[if response { 0x81 } else { 1 }, if response { 0x80 } else { 0 }, 0, 1, 0]);
    v.push(u8::from(answer.is_some()));
    v.extend_from_slice(&[0, 0, 0, 0]);
    for l in name.split('.') {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v.extend_from_slice(&qtype.to_be_bytes());
    v.extend_from_slice(&[0, 1]);
    if let Some(a) = answer {
        v.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
        v.extend_from_slice(&a);
    }
    v
}

#[test]
fn dns_udp_attempts_unanswered_and_timing_link() {
    let mut t = ProtoTracker::new();
    let c: SocketAddr = "10.0.0.2:40000".parse().unwrap();
    let s: SocketAddr = "10.0.0.53:53".parse().unwrap();
    let q = dns_msg(7, false, "web.example", 1, None);
    let q6 = dns_msg(8, false, "web.example", 28, None);
    t.udp(1, 0, c, s, &q, q.len() as u32);
    t.udp(2, MS, c, s, &q6, q6.len() as u32);
    t.udp(3, 5_000 * MS, c, s, &q, q.len() as u32);
    let r = dns_msg(7, true, "web.example", 1, Some([10, 0, 0, 9]));
    t.udp(4, 5_004 * MS, s, c, &r, r.len() as u32);
    // then an HTTP connection to the answered address
    let hc: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    let hs: SocketAddr = "10.0.0.9:80".parse().unwrap();
    t.tcp(5, 5_010 * MS, hc, hs, 1, 0, SYN, b"", 0, None);
    t.tcp(6, 5_011 * MS, hs, hc, 9, 2, SYN | ACK, b"", 0, None);
    let req = b"GET / HTTP/1.1\r\nHost: web.example\r\n\r\n";
    t.tcp(7, 5_012 * MS, hc, hs, 2, 10, ACK, req, req.len() as u32, None);
    let out = t.finish();
    assert_eq!(out.dns.len(), 2);
    let a = &out.dns[0];
    assert_eq!(a.attempts(), 2);
    assert_eq!(a.response_frame, Some(4));
    assert_eq!(a.response_time_ns, Some(5_004 * MS));
    assert_eq!(a.addresses().collect::<Vec<_>>(), vec!["10.0.0.9".parse::<std::net::IpAddr>().unwrap()]);
    assert!(out.dns[1].unanswered());
    let tm = out.http[0].timing().unwrap();
    assert_eq!(tm.dns_ns, Some(5_004 * MS));
}

#[test]
fn dns_over_tcp_two_messages_in_one_segment_and_split() {
    let mut t = ProtoTracker::new();
    let c: SocketAddr = "10.0.0.2:40000".parse().unwrap();
    let s: SocketAddr = "10.0.0.53:53".parse().unwrap();
    let mut seg = Vec::new();
    for id in [1u16, 2] {
        let m = dns_msg(id, false, "a.example", 1, None);
        seg.extend_from_slice(&(m.len() as u16).to_be_bytes());
        seg.extend_from_slice(&m);
    }
    t.tcp(1, 0, c, s, 100, 0, SYN, b"", 0, None);
    t.tcp(2, MS, c, s, 101, 0, ACK, &seg, seg.len() as u32, None);
    let mut resp = Vec::new();
    for id in [2u16, 1] {
        let m = dns_msg(id, true, "a.example", 1, Some([1, 2, 3, 4]));
        resp.extend_from_slice(&(m.len() as u16).to_be_bytes());
        resp.extend_from_slice(&m);
    }
    let (x, y) = resp.split_at(10);
    t.tcp(3, 2 * MS, s, c, 500, 0, ACK, x, x.len() as u32, None);
    t.tcp(4, 3 * MS, s, c, 500 + x.len() as u32, 0, ACK, y, y.len() as u32, None);
    let out = t.finish();
    assert_eq!(out.dns.len(), 2);
    assert!(out.dns.iter().all(|d| d.response_frame == Some(4) && d.transport == netcase_proto::Transport::Tcp));
}

#[test]
fn random_bytes_never_panic() {
    // xorshift: deterministic garbage in every parser, as UDP and as TCP streams.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut t = ProtoTracker::new();
    let ports = [53u16, 5353, 80, 443, 8080, 1900, 12345];
    let prefixes: [&[u8]; 5] = [
        b"",
        b"GET / HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"\x16\x03\x01",
        b"\x00\x20",
    ];
    for i in 0..20_000u64 {
        let len = (next() % 300) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 3 == 0 {
            let p = prefixes[(next() % prefixes.len() as u64) as usize];
            data.splice(0..0, p.iter().copied());
        }
        let sp = ports[(next() % ports.len() as u64) as usize];
        let dp = ports[(next() % ports.len() as u64) as usize];
        let src: SocketAddr = format!("10.0.0.{}:{sp}", next() % 3).parse().unwrap();
        let dst: SocketAddr = format!("10.0.1.{}:{dp}", next() % 3).parse().unwrap();
        let r = next();
        if r % 2 == 0 {
            t.udp(i, i as i64, src, dst, &data, data.len() as u32);
        } else {
            let seq = (next() % 4096) as u32;
            let flags = (next() % 0x20) as u16;
            let tcp_len = data.len() as u32 + (next() % 3 == 0) as u32 * (next() % 2000) as u32;
            t.tcp(i, i as i64, src, dst, seq, next() as u32, flags, &data, tcp_len, None);
        }
        let _ = netcase_proto::dns::parse_message(&data);
    }
    let out = t.finish();
    assert!(out.stats.packets == 20_000);
}

#[test]
fn closed_connection_is_freed_at_once_and_late_segments_ignored() {
    let mut c = Conv::new();
    c.handshake(0);
    let req: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let req_seq = c.cseq;
    c.client(10, req);
    c.server(11, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    c.pkt(false, 12, FIN | ACK, b"");
    assert_eq!(c.t.live_connections(), 1);
    c.pkt(true, 13, FIN | ACK, b"");
    assert_eq!(c.t.live_connections(), 0, "closed both ways: freed");
    c.pkt(false, 14, ACK, b"");
    // A late retransmission of the request must not start a new transaction.
    let now = c.cseq;
    c.cseq = req_seq;
    c.client(15, req);
    c.cseq = now;
    assert_eq!(c.t.live_connections(), 0);
    let out = c.finish();
    assert_eq!(out.http.len(), 1);
    assert_eq!(out.conns.len(), 1);
    assert_eq!(out.http[0].conn, Some(0));
    assert_eq!(out.conns[0].requests, 1);
}

#[test]
fn reset_frees_and_an_acknowledged_hole_does_not_hold() {
    let mut c = Conv::new();
    c.handshake(0);
    c.client(10, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.pkt(false, 11, RST | ACK, b"");
    assert_eq!(c.t.live_connections(), 0);
    // A hole in the server's data that the client acknowledged is a gap at once (lost
    // before the capture point): nothing waits for it, the FINs free the connection.
    let mut d = Conv::new();
    d.handshake(0);
    d.client(10, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    d.sseq += 5; // five bytes never captured
    d.server(11, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    d.pkt(false, 12, FIN | ACK, b"");
    d.pkt(true, 13, FIN | ACK, b"");
    assert_eq!(d.t.live_connections(), 0);
    let out = d.finish();
    assert_eq!(out.stats.tcp_gaps, 1);
    assert_eq!(out.http[0].status, Some(200));
}

#[test]
fn stream_numbers_tell_connections_apart() {
    let mut t = ProtoTracker::new();
    let c: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    let s: SocketAddr = "10.0.0.9:80".parse().unwrap();
    let req: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let resp: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";
    for (i, stream) in [7u64, 9].into_iter().enumerate() {
        let f = 10 * i as u64;
        t.tcp(f + 1, 0, c, s, 100, 0, SYN, b"", 0, Some(stream));
        t.tcp(f + 2, 0, s, c, 500, 101, SYN | ACK, b"", 0, Some(stream));
        t.tcp(f + 3, 0, c, s, 101, 501, ACK, req, req.len() as u32, Some(stream));
        t.tcp(f + 4, 0, s, c, 501, 101 + req.len() as u32, ACK, resp, resp.len() as u32, Some(stream));
    }
    let out = t.finish();
    let streams: Vec<_> = out.http.iter().map(|h| (h.stream, h.status, h.seq_on_conn)).collect();
    assert_eq!(streams, vec![(Some(7), Some(204), 1), (Some(9), Some(204), 1)]);
}

#[test]
fn not_http_after_the_first_bytes() {
    let mut c = Conv::new();
    c.handshake(0);
    c.client(10, b"\x00\x01binary protocol");
    c.client(11, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let out = c.finish();
    assert!(out.http.is_empty());
    assert!(out.conns.is_empty());
}

#[test]
fn keep_alive_transactions_leave_the_connection_as_they_complete() {
    let mut c = Conv::new();
    c.handshake(0);
    for i in 0..50 {
        c.client(10 + 2 * i, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        c.server(11 + 2 * i, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
    }
    let out = c.finish();
    assert_eq!(out.http.len(), 50);
    assert_eq!(out.http[49].seq_on_conn, 50);
    assert!(out.http.iter().all(|t| t.conn == Some(0) && t.response_frame.is_some()));
    assert_eq!(out.conns[0].requests, 50);
    assert_eq!(out.conns[0].responses, 50);
}

#[test]
fn continue_then_final_response() {
    let mut c = Conv::new();
    c.handshake(0);
    c.client(10, b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"); // 4
    c.server(11, b"HTTP/1.1 100 Continue\r\n\r\n"); // 5
    c.client(12, b"hello"); // 6
    c.server(20, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); // 7
    c.client(30, b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"); // 8
    c.server(31, b"HTTP/1.1 204 No Content\r\n\r\n"); // 9
    let out = c.finish();
    assert_eq!(out.http.len(), 2);
    let (a, b) = (&out.http[0], &out.http[1]);
    assert_eq!((a.request_frame, a.status, a.response_frame), (Some(6), Some(200), Some(7)));
    assert_eq!(a.interim.as_slice(), &[netcase_proto::Interim { status: 100, frame: 5, ts_ns: 11 * MS }]);
    assert_eq!(a.interim_responses(), 1);
    assert!(!a.unanswered() && !a.early_response);
    // Timing is the final response's.
    assert_eq!(a.http_time_ns(), Some(8 * MS));
    assert_eq!(a.ttfb_ns, Some(8 * MS));
    assert_eq!((b.request_frame, b.status, b.response_frame), (Some(8), Some(204), Some(9)));
    assert!(b.interim.is_empty());
    assert_eq!((out.conns[0].requests, out.conns[0].responses), (2, 2));
}

#[test]
fn two_interim_responses_and_final_in_one_segment() {
    let mut c = Conv::new();
    c.handshake(0);
    c.client(10, b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"); // 4
    c.server(11, b"HTTP/1.1 100 Continue\r\n\r\n"); // 5
    c.server(12, b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"); // 6
    c.client(13, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"); // 7
    c.server(14, b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"); // 8
    c.server(15, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"); // 9
    let out = c.finish();
    assert_eq!(out.http.len(), 2);
    let (a, b) = (&out.http[0], &out.http[1]);
    let st = |t: &netcase_proto::HttpTxn| t.interim.iter().map(|i| (i.status, i.frame)).collect::<Vec<_>>();
    assert_eq!((a.request_frame, a.status, a.response_frame), (Some(4), Some(201), Some(6)));
    assert_eq!(st(a), vec![(100, 5), (102, 6)]);
    assert_eq!((b.request_frame, b.status, b.response_frame), (Some(7), Some(200), Some(9)));
    assert_eq!(st(b), vec![(103, 8)]);
}

#[test]
fn three_pipelined_requests_pair_fifo() {
    let mut c = Conv::new();
    c.handshake(0);
    for u in ["/a", "/b", "/c"] {
        c.client(10, format!("GET {u} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        // 4, 5, 6
    }
    for body in ["1", "22", "333"] {
        c.server(20, format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    }
    let out = c.finish();
    let got: Vec<_> = out
        .http
        .iter()
        .map(|t| (t.uri.as_deref().unwrap().to_string(), t.request_frame, t.response_frame, t.resp_body_bytes))
        .collect();
    assert_eq!(
        got,
        vec![
            ("/a".to_string(), Some(4), Some(7), 1),
            ("/b".to_string(), Some(5), Some(8), 2),
            ("/c".to_string(), Some(6), Some(9), 3)
        ]
    );
    assert!(out.http.iter().all(|t| !t.unanswered() && !t.early_response));
}

#[test]
fn early_response_pairs_with_the_request_still_uploading() {
    let mut c = Conv::new();
    c.handshake(0);
    c.client(10, b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n0123456789"); // 4
    c.server(11, b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n"); // 5
    c.client(12, b"0123456789"); // 6
    c.client(13, b"0123456789"); // 7
    c.client(14, b"GET /n HTTP/1.1\r\nHost: x\r\n\r\n"); // 8
    c.server(15, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); // 9
    let out = c.finish();
    assert_eq!(out.http.len(), 2);
    let (a, b) = (&out.http[0], &out.http[1]);
    assert_eq!((a.request_frame, a.status, a.response_frame), (Some(7), Some(413), Some(5)));
    assert!(a.early_response && !a.unanswered());
    assert_eq!(a.req_body_bytes, 30);
    // First-byte time counts from the request's first byte, never negative.
    assert_eq!(a.ttfb_ns, Some(MS));
    assert_eq!(a.http_time_ns(), Some(-2 * MS));
    assert_eq!((b.request_frame, b.status, b.response_frame), (Some(8), Some(200), Some(9)));
    assert!(!b.early_response);
}

#[test]
fn switching_protocols_ends_http() {
    let mut c = Conv::new();
    c.handshake(0);
    c.client(10, b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    c.server(11, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi");
    c.client(12, b"\x81\x85abcdGET / HTTP/1.1\r\n\r\n");
    c.server(13, b"\x81\x05HTTP/1.1 200 OK\r\n\r\n");
    c.client(14, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.server(15, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let out = c.finish();
    assert_eq!(out.http.len(), 1);
    let t = &out.http[0];
    assert_eq!((t.status, t.request_frame, t.response_frame), (Some(101), Some(4), Some(5)));
    assert!(t.interim.is_empty());
    assert!(out.conns[0].upgraded);
    assert_eq!((out.conns[0].requests, out.conns[0].responses), (1, 1));
    assert_eq!(out.stats.http_desync, 0);
}

#[test]
fn multicast_discovery_is_never_unanswered() {
    let mut t = ProtoTracker::new();
    let c: SocketAddr = "10.0.0.2:5353".parse().unwrap();
    let mdns: SocketAddr = "224.0.0.251:5353".parse().unwrap();
    let q = dns_msg(0, false, "printer.local", 1, None);
    t.udp(1, 0, c, mdns, &q, q.len() as u32);
    let lc: SocketAddr = "10.0.0.2:50001".parse().unwrap();
    let llmnr: SocketAddr = "224.0.0.252:5355".parse().unwrap();
    let q = dns_msg(9, false, "fileserver", 1, None);
    t.udp(2, MS, lc, llmnr, &q, q.len() as u32);
    let sc: SocketAddr = "10.0.0.2:50002".parse().unwrap();
    let ssdp: SocketAddr = "239.255.255.250:1900".parse().unwrap();
    let m =
        b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n";
    t.udp(3, 2 * MS, sc, ssdp, m, m.len() as u32);
    let n = b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n\r\n";
    t.udp(4, 3 * MS, "10.0.0.7:1900".parse().unwrap(), ssdp, n, n.len() as u32);
    // A unicast DNS query without an answer still is unanswered.
    let q = dns_msg(5, false, "example.com", 1, None);
    t.udp(5, 4 * MS, sc, "10.0.0.53:53".parse().unwrap(), &q, q.len() as u32);
    let out = t.finish();
    let flavors: Vec<_> = out.dns.iter().map(|d| (d.flavor, d.unanswered(), d.no_response())).collect();
    use netcase_proto::DnsFlavor::*;
    assert_eq!(flavors, vec![(Mdns, false, true), (Llmnr, false, true), (Dns, true, true)]);
    assert!(out.dns.iter().all(|d| d.flavor.is_multicast() == (d.flavor != Dns)));
    assert_eq!(out.http.len(), 2);
    assert!(out.http.iter().all(|h| h.ssdp && h.has_request() && !h.unanswered() && h.conn.is_none()));
    assert_eq!(out.http[0].method.as_deref(), Some("M-SEARCH"));
    let unanswered_dns = netcase_proto::query::filter_dns(
        &out.dns,
        &netcase_proto::query::DnsFilter { unanswered: true, multicast: true, ..Default::default() },
    );
    assert_eq!(unanswered_dns.len(), 1);
}

#[test]
fn interim_without_a_captured_request_keeps_the_final_response() {
    let mut c = Conv::new();
    // The capture starts after the request went out.
    c.server(10, b"HTTP/1.1 100 Continue\r\n\r\n"); // 1
    c.server(11, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); // 2
    c.client(12, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"); // 3
    c.server(13, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); // 4
    let out = c.finish();
    let got: Vec<_> =
        out.http.iter().map(|t| (t.request_frame, t.response_frame, t.interim.len(), t.seq_on_conn)).collect();
    assert_eq!(got, vec![(None, Some(2), 1, 0), (Some(3), Some(4), 0, 2)]);
}
