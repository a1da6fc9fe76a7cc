//! Finished HTTP transactions parked on disk while the capture is read.
//!
//! A large capture holds tens of thousands of transactions of ~500 bytes each; kept in memory
//! for the whole pass they dominate the peak RSS. With [`crate::Config::spill_http`] the
//! tracker encodes each finished transaction into a compact binary record (~100 bytes) in an
//! unlinked temporary file and reads them back, in the same order, in
//! [`crate::ProtoTracker::finish`], after the per-connection state has been freed.
//!
//! The file is created in [`std::env::temp_dir`] and unlinked at once, so nothing is left
//! behind even when the process is killed. Any I/O error disables spilling: the
//! transactions then stay in memory (the output is the same, only the memory differs).

use crate::http::{HttpTxn, HttpVersion, Interim};
use crate::text::{List, Text};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Bytes buffered before a write to the file.
const FLUSH_AT: usize = 256 << 10;

/// The spill file and its write buffer.
#[derive(Debug)]
pub(crate) struct Spill {
    file: File,
    buf: Vec<u8>,
    /// Transactions written (buffered or in the file).
    count: usize,
}

impl Spill {
    /// A new, empty spill file (`None` when none can be created).
    pub(crate) fn new() -> Option<Self> {
        let file = netcase_model::tempfile::unlinked().ok()?;
        Some(Spill { file, buf: Vec::with_capacity(FLUSH_AT + 4096), count: 0 })
    }

    /// Appends `txns` (emptying it). On a write error the transactions stay in `txns` and
    /// `false` is returned: the caller stops spilling.
    pub(crate) fn push(&mut self, txns: &mut Vec<HttpTxn>) -> bool {
        let mark = self.buf.len();
        for t in txns.iter() {
            encode(&mut self.buf, t);
        }
        if self.buf.len() >= FLUSH_AT {
            if self.file.write_all(&self.buf).is_err() {
                self.buf.truncate(mark);
                return false;
            }
            self.buf.clear();
        }
        self.count += txns.len();
        txns.clear();
        true
    }

    /// Reads every transaction back, in order, followed by `rest` (kept in memory).
    pub(crate) fn read_back(mut self, rest: Vec<HttpTxn>) -> Vec<HttpTxn> {
        let mut out = Vec::with_capacity(self.count + rest.len());
        let ok = self.file.write_all(&self.buf).is_ok() && self.file.seek(SeekFrom::Start(0)).is_ok();
        self.buf = Vec::new();
        if ok {
            let mut r = Reader::new(&mut self.file);
            for _ in 0..self.count {
                let t = decode(&mut r);
                if r.failed {
                    break;
                }
                out.push(t);
            }
        }
        out.extend(rest);
        out
    }
}

fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_opt_u64(b: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => {
            b.push(1);
            put_u64(b, v);
        }
        None => b.push(0),
    }
}

fn put_opt_i64(b: &mut Vec<u8>, v: Option<i64>) {
    put_opt_u64(b, v.map(|v| v as u64));
}

fn put_text(b: &mut Vec<u8>, v: &Option<Text>) {
    match v {
        Some(t) => {
            let s = t.as_str().as_bytes();
            b.push(1);
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s);
        }
        None => b.push(0),
    }
}

fn put_addr(b: &mut Vec<u8>, v: Option<SocketAddr>) {
    match v {
        None => b.push(0),
        Some(SocketAddr::V4(a)) => {
            b.push(4);
            b.extend_from_slice(&a.ip().octets());
            b.extend_from_slice(&a.port().to_le_bytes());
        }
        Some(SocketAddr::V6(a)) => {
            b.push(6);
            b.extend_from_slice(&a.ip().octets());
            b.extend_from_slice(&a.port().to_le_bytes());
            b.extend_from_slice(&a.flowinfo().to_le_bytes());
            b.extend_from_slice(&a.scope_id().to_le_bytes());
        }
    }
}

/// Every field, in declaration order.
fn encode(b: &mut Vec<u8>, t: &HttpTxn) {
    put_opt_u64(b, t.conn.map(u64::from));
    put_opt_u64(b, t.stream);
    put_addr(b, t.client);
    put_addr(b, t.server);
    b.extend_from_slice(&t.seq_on_conn.to_le_bytes());
    put_text(b, &t.method);
    put_text(b, &t.uri);
    b.push(match t.version {
        None => 0,
        Some(HttpVersion::Http10) => 1,
        Some(HttpVersion::Http11) => 2,
    });
    put_text(b, &t.host);
    put_text(b, &t.req_connection);
    put_opt_u64(b, t.req_content_length);
    put_opt_u64(b, t.request_frame);
    put_opt_i64(b, t.request_ts_ns);
    put_opt_i64(b, t.request_start_ts_ns);
    put_opt_u64(b, t.request_start_frame);
    b.extend_from_slice(&t.req_header_bytes.to_le_bytes());
    put_u64(b, t.req_body_bytes);
    put_opt_u64(b, t.status.map(u64::from));
    put_text(b, &t.reason);
    put_text(b, &t.resp_connection);
    put_opt_u64(b, t.resp_content_length);
    put_text(b, &t.resp_content_length_header);
    put_text(b, &t.resp_transfer_encoding);
    b.extend_from_slice(&t.interim_responses().to_le_bytes());
    for i in &t.interim {
        b.extend_from_slice(&i.status.to_le_bytes());
        put_u64(b, i.frame);
        put_u64(b, i.ts_ns as u64);
    }
    put_opt_u64(b, t.response_frame);
    put_opt_i64(b, t.response_ts_ns);
    put_opt_u64(b, t.response_start_frame);
    put_opt_i64(b, t.response_start_ts_ns);
    b.extend_from_slice(&t.resp_header_bytes.to_le_bytes());
    put_u64(b, t.resp_body_bytes);
    put_u64(b, t.resp_body_uncaptured);
    put_u64(b, t.unexpected_body_bytes);
    let flags = u8::from(t.response_lost)
        | u8::from(t.response_incomplete) << 1
        | u8::from(t.after_server_fin) << 2
        | u8::from(t.unanswered_at_client_fin) << 3
        | u8::from(t.response_after_client_fin) << 4
        | u8::from(t.early_response) << 5
        | u8::from(t.ssdp) << 6;
    b.push(flags);
    put_opt_i64(b, t.ttfb_ns);
    put_opt_i64(b, t.total_ns);
    put_opt_i64(b, t.client_fin_after_ns);
    put_opt_i64(b, t.dns_ns);
    put_opt_i64(b, t.connect_ns);
}

/// Reads records; a short read sets `failed` and yields zeros from then on. Reads the file in
/// large chunks and takes fields from the chunk in memory (a `read_exact` per field through a
/// `BufReader` cost more than decoding: 4 million calls on a capture of 60,000 transactions).
struct Reader<R: Read> {
    inner: R,
    failed: bool,
    /// The current chunk: unread bytes are `buf[pos..len]`.
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl<R: Read> Reader<R> {
    fn new(inner: R) -> Self {
        Reader { inner, failed: false, buf: vec![0; 256 << 10], pos: 0, len: 0 }
    }

    /// Makes `n` bytes available in the chunk (moving the unread rest to its front and
    /// reading more); false at the end of the file.
    #[cold]
    fn refill(&mut self, n: usize) -> bool {
        self.buf.copy_within(self.pos..self.len, 0);
        self.len -= self.pos;
        self.pos = 0;
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
        while self.len < n {
            let Some(dst) = self.buf.get_mut(self.len..) else { return false };
            match self.inner.read(dst) {
                Ok(0) | Err(_) => return false,
                Ok(k) => self.len += k,
            }
        }
        true
    }

    /// The next `n` bytes, or `None` (and `failed`) at the end of the file.
    #[inline]
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.failed || (self.len - self.pos < n && !self.refill(n)) {
            self.failed = true;
            return None;
        }
        let at = self.pos;
        self.pos += n;
        self.buf.get(at..at + n)
    }

    #[inline]
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        self.take(N).and_then(|b| b.try_into().ok()).unwrap_or([0u8; N])
    }
    fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
    fn opt_u64(&mut self) -> Option<u64> {
        (self.u8() != 0).then(|| self.u64())
    }
    fn opt_i64(&mut self) -> Option<i64> {
        self.opt_u64().map(|v| v as i64)
    }
    fn text(&mut self) -> Option<Text> {
        if self.u8() == 0 {
            return None;
        }
        let n = self.u32() as usize;
        if self.failed {
            return None;
        }
        let b = self.take(n)?;
        // Written from a `&str`: valid UTF-8 unless the file was damaged.
        match std::str::from_utf8(b) {
            Ok(s) => Some(Text::new(s)),
            Err(_) => Some(Text::new(&String::from_utf8_lossy(b))),
        }
    }
    fn addr(&mut self) -> Option<SocketAddr> {
        match self.u8() {
            4 => {
                let ip = Ipv4Addr::from(self.bytes::<4>());
                Some(SocketAddr::V4(SocketAddrV4::new(ip, self.u16())))
            }
            6 => {
                let ip = Ipv6Addr::from(self.bytes::<16>());
                let port = self.u16();
                let flow = self.u32();
                Some(SocketAddr::V6(SocketAddrV6::new(ip, port, flow, self.u32())))
            }
            _ => None,
        }
    }
}

fn decode<R: Read>(r: &mut Reader<R>) -> HttpTxn {
    let conn = r.opt_u64().map(|v| v as u32);
    let stream = r.opt_u64();
    let client = r.addr();
    let server = r.addr();
    let seq_on_conn = r.u32();
    let method = r.text();
    let uri = r.text();
    let version = match r.u8() {
        1 => Some(HttpVersion::Http10),
        2 => Some(HttpVersion::Http11),
        _ => None,
    };
    let host = r.text();
    let req_connection = r.text();
    let req_content_length = r.opt_u64();
    let request_frame = r.opt_u64();
    let request_ts_ns = r.opt_i64();
    let request_start_ts_ns = r.opt_i64();
    let request_start_frame = r.opt_u64();
    let req_header_bytes = r.u32();
    let req_body_bytes = r.u64();
    let status = r.opt_u64().map(|v| v as u16);
    let reason = r.text();
    let resp_connection = r.text();
    let resp_content_length = r.opt_u64();
    let resp_content_length_header = r.text();
    let resp_transfer_encoding = r.text();
    let n_interim = r.u16();
    let mut interim = List::new();
    for _ in 0..n_interim {
        if r.failed {
            break;
        }
        interim.push(Interim { status: r.u16(), frame: r.u64(), ts_ns: r.u64() as i64 });
    }
    let response_frame = r.opt_u64();
    let response_ts_ns = r.opt_i64();
    let response_start_frame = r.opt_u64();
    let response_start_ts_ns = r.opt_i64();
    let resp_header_bytes = r.u32();
    let resp_body_bytes = r.u64();
    let resp_body_uncaptured = r.u64();
    let unexpected_body_bytes = r.u64();
    let flags = r.u8();
    HttpTxn {
        conn,
        stream,
        client,
        server,
        seq_on_conn,
        method,
        uri,
        version,
        host,
        req_connection,
        req_content_length,
        request_frame,
        request_ts_ns,
        request_start_ts_ns,
        request_start_frame,
        req_header_bytes,
        req_body_bytes,
        status,
        reason,
        resp_connection,
        resp_content_length,
        resp_content_length_header,
        resp_transfer_encoding,
        interim,
        response_frame,
        response_ts_ns,
        response_start_frame,
        response_start_ts_ns,
        resp_header_bytes,
        resp_body_bytes,
        resp_body_uncaptured,
        unexpected_body_bytes,
        response_lost: flags & 1 != 0,
        response_incomplete: flags & 2 != 0,
        after_server_fin: flags & 4 != 0,
        unanswered_at_client_fin: flags & 8 != 0,
        response_after_client_fin: flags & 16 != 0,
        early_response: flags & 32 != 0,
        ssdp: flags & 64 != 0,
        ttfb_ns: r.opt_i64(),
        total_ns: r.opt_i64(),
        client_fin_after_ns: r.opt_i64(),
        dns_ns: r.opt_i64(),
        connect_ns: r.opt_i64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = HttpTxn {
            conn: Some(3),
            stream: Some(7),
            client: Some("10.0.0.1:40000".parse().unwrap()),
            server: Some("[fe80::1%2]:80".parse().unwrap()),
            seq_on_conn: 2,
            method: Some(Text::new("GET")),
            uri: Some(Text::new(&"/x".repeat(100))),
            version: Some(HttpVersion::Http11),
            status: Some(204),
            resp_content_length: Some(5),
            response_ts_ns: Some(-5),
            response_incomplete: true,
            response_after_client_fin: true,
            early_response: true,
            interim: [Interim { status: 100, frame: 4, ts_ns: 40 }, Interim { status: 103, frame: 5, ts_ns: -50 }]
                .into_iter()
                .collect(),
            connect_ns: Some(9),
            ..HttpTxn::default()
        };
        let b = HttpTxn {
            method: None,
            conn: None,
            ssdp: true,
            interim: List::one(Interim { status: 102, frame: 1, ts_ns: 2 }),
            ..a.clone()
        };
        let mut s = Spill::new().unwrap();
        let mut v = vec![a.clone(), b.clone()];
        assert!(s.push(&mut v));
        assert!(v.is_empty());
        let out = s.read_back(vec![a.clone()]);
        assert_eq!(out, vec![a.clone(), b, a]);
    }
}
