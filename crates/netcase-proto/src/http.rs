//! HTTP/1.x messages over one reassembled TCP direction.
//!
//! Framing follows RFC 9112: a head ends at the first empty line; a body is delimited by
//! `Transfer-Encoding: chunked`, else `Content-Length`, else (responses only) the end of the
//! connection. Responses to HEAD, 1xx, 204 and 304 have no body whatever their headers say
//! (the bytes a broken server sends anyway are counted as `unexpected_body_bytes`). A message
//! is reported on the frame that carried its last byte, as tshark does with
//! `http.desegment_headers`/`http.desegment_body` on. A 101 response or a successful
//! CONNECT hands the connection to another protocol; netcase stops reading it there.
//!
//! Pairing is HTTP/1.1's: responses answer requests in order (pipelining); interim 1xx
//! responses are kept with the request they precede the final response of
//! ([`HttpTxn::interim`]); a response that starts while its request is still being sent is
//! that request's ([`HttpTxn::early_response`]). tshark 4.0 differs on these: it pairs a
//! response with the last request completed before it, if still unanswered.

use serde::Serialize;
use std::net::SocketAddr;

use crate::text::{List, Text};

/// Largest head kept (request or status line plus headers).
pub const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;

/// Which end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The side that opened the connection (sent the SYN, or the requests).
    Client,
    /// The other side.
    Server,
}

/// An HTTP/1.x version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HttpVersion {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

impl HttpVersion {
    /// As written on the wire (`HTTP/1.1`).
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
        }
    }
}

impl std::ops::Deref for HttpVersion {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for HttpVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An interim (1xx other than 101) response: it belongs to the request it precedes the final
/// response of, and has no body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Interim {
    /// Status code (100 Continue, 102 Processing, 103 Early Hints, ...).
    pub status: u16,
    /// Frame that completed it.
    pub frame: u64,
    /// Its time, ns since the epoch.
    pub ts_ns: i64,
}

/// One HTTP request and its response (either may be missing). Kept compact: strings are
/// inline [`Text`], derived durations are methods (serialized as fields all the same).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpTxn {
    /// Index of the connection in [`crate::ProtoOutput::conns`] (`None` for HTTP over UDP).
    pub conn: Option<u32>,
    /// The caller's stream number (tcp.stream), when given.
    pub stream: Option<u64>,
    /// Client socket.
    pub client: Option<SocketAddr>,
    /// Server socket.
    pub server: Option<SocketAddr>,
    /// 1-based position of this request on its connection.
    pub seq_on_conn: u32,
    /// Request method.
    pub method: Option<Text>,
    /// Request target as sent.
    pub uri: Option<Text>,
    /// Request version (`HTTP/1.1`).
    pub version: Option<HttpVersion>,
    /// Host header.
    pub host: Option<Text>,
    /// The request's Connection header.
    pub req_connection: Option<Text>,
    /// The request's Content-Length.
    pub req_content_length: Option<u64>,
    /// Frame that completed the request (tshark's frame for `http.request`).
    pub request_frame: Option<u64>,
    /// Its time, ns since the epoch.
    pub request_ts_ns: Option<i64>,
    /// Time of the request's first byte.
    pub request_start_ts_ns: Option<i64>,
    /// Frame of the request's first byte.
    pub request_start_frame: Option<u64>,
    /// Request head bytes.
    pub req_header_bytes: u32,
    /// Request body bytes (as on the wire).
    pub req_body_bytes: u64,
    /// Status code.
    pub status: Option<u16>,
    /// Reason phrase.
    pub reason: Option<Text>,
    /// The response's Connection header.
    pub resp_connection: Option<Text>,
    /// The response's Content-Length, parsed.
    pub resp_content_length: Option<u64>,
    /// The Content-Length header exactly as sent (present even where it is forbidden).
    pub resp_content_length_header: Option<Text>,
    /// The response's Transfer-Encoding header.
    pub resp_transfer_encoding: Option<Text>,
    /// Interim (1xx other than 101) responses before the final one, in order. The final
    /// response (`status`, `response_frame`, timing) is the transaction's response.
    pub interim: List<Interim>,
    /// Frame that completed the response (tshark's frame for `http.response`).
    pub response_frame: Option<u64>,
    /// Its time.
    pub response_ts_ns: Option<i64>,
    /// Frame and time of the response's first byte.
    pub response_start_frame: Option<u64>,
    /// Time of the response's first byte.
    pub response_start_ts_ns: Option<i64>,
    /// Response head bytes.
    pub resp_header_bytes: u32,
    /// Response body bytes (as on the wire, chunk framing included).
    pub resp_body_bytes: u64,
    /// Body bytes the capture did not keep (snap length).
    pub resp_body_uncaptured: u64,
    /// Bytes a 204/304/HEAD response carried after its head although it may have no body.
    pub unexpected_body_bytes: u64,
    /// The final response started before the request was complete (the server answered
    /// early, e.g. 413 or 401 while the client was still sending the body): it is this
    /// request's response all the same; `http_time_ns` is then negative.
    pub early_response: bool,
    /// HTTP over UDP (SSDP, port 1900: M-SEARCH/NOTIFY multicast discovery). Never paired,
    /// never unanswered: no answer is normal.
    pub ssdp: bool,
    /// The response was lost in a hole of the capture (a later response answered a later
    /// request on the same connection).
    pub response_lost: bool,
    /// The response head was seen but its body did not complete (gap, capture end, reset).
    pub response_incomplete: bool,
    /// Request complete to the response's first byte, ns (from the request's first byte
    /// when `early_response`).
    pub ttfb_ns: Option<i64>,
    /// Request first byte to response last byte, ns.
    pub total_ns: Option<i64>,
    /// The request was sent after the server had sent its FIN (keep-alive race).
    pub after_server_fin: bool,
    /// No response arrived before the client closed (FIN) the connection.
    pub unanswered_at_client_fin: bool,
    /// Request complete to the client's FIN, when the client closed before any response.
    pub client_fin_after_ns: Option<i64>,
    /// The response arrived after the client's FIN (late response).
    pub response_after_client_fin: bool,
    /// Name lookup before the connection, for the first request of a connection (filled by
    /// [`crate::ProtoTracker::finish`]; see [`HttpTxn::timing`]).
    pub dns_ns: Option<i64>,
    /// SYN to SYN/ACK, for the first request of a connection (filled by `finish`).
    pub connect_ns: Option<i64>,
}

impl HttpTxn {
    /// tshark's `http.time`: response frame time minus request frame time, ns.
    pub fn http_time_ns(&self) -> Option<i64> {
        Some(self.response_ts_ns? - self.request_ts_ns?)
    }
    /// Response first byte to its last byte, ns.
    pub fn transfer_ns(&self) -> Option<i64> {
        Some(self.response_ts_ns? - self.response_start_ts_ns?)
    }
    /// Phase breakdown (`None` for HTTP over UDP).
    pub fn timing(&self) -> Option<crate::timing::Timing> {
        self.conn?;
        Some(crate::timing::Timing {
            dns_ns: self.dns_ns,
            connect_ns: self.connect_ns,
            tls_ns: None,
            ttfb_ns: self.ttfb_ns,
            transfer_ns: self.transfer_ns(),
        })
    }
    /// Where the transaction stands in a list: the time of the request's first byte (the
    /// response's when no request was seen), then its frame. [`crate::ProtoOutput::http`] and
    /// netcase's JSON list transactions in this order.
    pub fn order_key(&self) -> (i64, u64) {
        let f = self.request_frame.or(self.response_start_frame).or(self.response_frame).unwrap_or(u64::MAX);
        (self.request_start_ts_ns.or(self.response_start_ts_ns).unwrap_or(i64::MAX), f)
    }
    /// A request was seen.
    pub fn has_request(&self) -> bool {
        self.method.is_some()
    }
    /// The request got no (complete) final response. Never true for SSDP.
    pub fn unanswered(&self) -> bool {
        self.has_request() && self.response_frame.is_none() && !self.ssdp
    }
    /// Interim responses before the final one.
    pub fn interim_responses(&self) -> u16 {
        u16::try_from(self.interim.len()).unwrap_or(u16::MAX)
    }
    /// Whether either side asked to close the connection.
    pub fn connection_close(&self) -> bool {
        let c = |h: &Option<Text>| h.as_deref().is_some_and(|v| says_close(v.as_bytes()));
        c(&self.req_connection) || c(&self.resp_connection)
    }
}

/// The JSON object: every field, derived ones included; absent optional fields and false flags
/// are left out to keep large outputs small.
impl Serialize for HttpTxn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("HttpTxn", 46)?;
        // `conn` indexes the tracker's list of connections, which no JSON document holds.
        st.skip_field("conn")?;
        match &self.stream {
            Some(v) => st.serialize_field("stream", v)?,
            None => st.skip_field("stream")?,
        }
        match &self.client {
            Some(v) => st.serialize_field("client", v)?,
            None => st.skip_field("client")?,
        }
        match &self.server {
            Some(v) => st.serialize_field("server", v)?,
            None => st.skip_field("server")?,
        }
        st.serialize_field("seq_on_conn", &self.seq_on_conn)?;
        match &self.method {
            Some(v) => st.serialize_field("method", v)?,
            None => st.skip_field("method")?,
        }
        match &self.uri {
            Some(v) => st.serialize_field("uri", v)?,
            None => st.skip_field("uri")?,
        }
        match &self.version {
            Some(v) => st.serialize_field("version", v)?,
            None => st.skip_field("version")?,
        }
        match &self.host {
            Some(v) => st.serialize_field("host", v)?,
            None => st.skip_field("host")?,
        }
        match &self.req_connection {
            Some(v) => st.serialize_field("req_connection", v)?,
            None => st.skip_field("req_connection")?,
        }
        match &self.req_content_length {
            Some(v) => st.serialize_field("req_content_length", v)?,
            None => st.skip_field("req_content_length")?,
        }
        match &self.request_frame {
            Some(v) => st.serialize_field("request_frame", v)?,
            None => st.skip_field("request_frame")?,
        }
        match &self.request_ts_ns {
            Some(v) => st.serialize_field("request_ts_ns", v)?,
            None => st.skip_field("request_ts_ns")?,
        }
        match &self.request_start_ts_ns {
            Some(v) => st.serialize_field("request_start_ts_ns", v)?,
            None => st.skip_field("request_start_ts_ns")?,
        }
        match &self.request_start_frame {
            Some(v) => st.serialize_field("request_start_frame", v)?,
            None => st.skip_field("request_start_frame")?,
        }
        st.serialize_field("req_header_bytes", &self.req_header_bytes)?;
        st.serialize_field("req_body_bytes", &self.req_body_bytes)?;
        match &self.status {
            Some(v) => st.serialize_field("status", v)?,
            None => st.skip_field("status")?,
        }
        match &self.reason {
            Some(v) => st.serialize_field("reason", v)?,
            None => st.skip_field("reason")?,
        }
        match &self.resp_connection {
            Some(v) => st.serialize_field("resp_connection", v)?,
            None => st.skip_field("resp_connection")?,
        }
        match &self.resp_content_length {
            Some(v) => st.serialize_field("resp_content_length", v)?,
            None => st.skip_field("resp_content_length")?,
        }
        match &self.resp_content_length_header {
            Some(v) => st.serialize_field("resp_content_length_header", v)?,
            None => st.skip_field("resp_content_length_header")?,
        }
        match &self.resp_transfer_encoding {
            Some(v) => st.serialize_field("resp_transfer_encoding", v)?,
            None => st.skip_field("resp_transfer_encoding")?,
        }
        st.serialize_field("interim_responses", &self.interim_responses())?;
        if self.interim.is_empty() {
            st.skip_field("interim")?
        } else {
            st.serialize_field("interim", &self.interim)?
        }
        match &self.response_frame {
            Some(v) => st.serialize_field("response_frame", v)?,
            None => st.skip_field("response_frame")?,
        }
        match &self.response_ts_ns {
            Some(v) => st.serialize_field("response_ts_ns", v)?,
            None => st.skip_field("response_ts_ns")?,
        }
        match &self.response_start_frame {
            Some(v) => st.serialize_field("response_start_frame", v)?,
            None => st.skip_field("response_start_frame")?,
        }
        match &self.response_start_ts_ns {
            Some(v) => st.serialize_field("response_start_ts_ns", v)?,
            None => st.skip_field("response_start_ts_ns")?,
        }
        st.serialize_field("resp_header_bytes", &self.resp_header_bytes)?;
        st.serialize_field("resp_body_bytes", &self.resp_body_bytes)?;
        st.serialize_field("resp_body_uncaptured", &self.resp_body_uncaptured)?;
        st.serialize_field("unexpected_body_bytes", &self.unexpected_body_bytes)?;
        if self.early_response {
            st.serialize_field("early_response", &true)?
        } else {
            st.skip_field("early_response")?
        }
        if self.ssdp {
            st.serialize_field("ssdp", &true)?
        } else {
            st.skip_field("ssdp")?
        }
        if self.response_lost {
            st.serialize_field("response_lost", &true)?
        } else {
            st.skip_field("response_lost")?
        }
        if self.response_incomplete {
            st.serialize_field("response_incomplete", &true)?
        } else {
            st.skip_field("response_incomplete")?
        }
        st.serialize_field("http_time_ns", &self.http_time_ns())?;
        match &self.ttfb_ns {
            Some(v) => st.serialize_field("ttfb_ns", v)?,
            None => st.skip_field("ttfb_ns")?,
        }
        st.serialize_field("transfer_ns", &self.transfer_ns())?;
        match &self.total_ns {
            Some(v) => st.serialize_field("total_ns", v)?,
            None => st.skip_field("total_ns")?,
        }
        if self.after_server_fin {
            st.serialize_field("after_server_fin", &true)?
        } else {
            st.skip_field("after_server_fin")?
        }
        if self.unanswered_at_client_fin {
            st.serialize_field("unanswered_at_client_fin", &true)?
        } else {
            st.skip_field("unanswered_at_client_fin")?
        }
        match &self.client_fin_after_ns {
            Some(v) => st.serialize_field("client_fin_after_ns", v)?,
            None => st.skip_field("client_fin_after_ns")?,
        }
        if self.response_after_client_fin {
            st.serialize_field("response_after_client_fin", &true)?
        } else {
            st.skip_field("response_after_client_fin")?
        }
        st.serialize_field("timing", &self.timing())?;
        st.end()
    }
}

/// The kind of body that follows a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Facts read from a head (borrowed from it).
#[derive(Debug, Default)]
pub(crate) struct Head<'a> {
    pub(crate) method: Option<&'a str>,
    pub(crate) uri: Option<&'a str>,
    pub(crate) version: u8,
    pub(crate) status: u16,
    pub(crate) reason: Option<&'a str>,
    pub(crate) host: Option<&'a [u8]>,
    pub(crate) connection: Option<&'a [u8]>,
    pub(crate) content_length: Option<u64>,
    pub(crate) content_length_header: Option<&'a [u8]>,
    pub(crate) transfer_encoding: Option<&'a [u8]>,
    pub(crate) chunked: bool,
    pub(crate) len: usize,
}

/// The version as tshark prints it.
pub(crate) fn version_text(v: u8) -> HttpVersion {
    if v == 0 {
        HttpVersion::Http10
    } else {
        HttpVersion::Http11
    }
}

/// Whether a Connection value asks to close.
pub(crate) fn says_close(v: &[u8]) -> bool {
    v.windows(5).any(|w| w.eq_ignore_ascii_case(b"close"))
}

const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"PROPFIND ",
    b"PROPPATCH ",
    b"MKCOL ",
    b"COPY ",
    b"MOVE ",
    b"LOCK ",
    b"UNLOCK ",
    b"SEARCH ",
    b"REPORT ",
    b"NOTIFY ",
    b"SUBSCRIBE ",
    b"UNSUBSCRIBE ",
    b"M-SEARCH ",
    b"PURGE ",
];

/// Does `b` start an HTTP request?
pub(crate) fn looks_like_request(b: &[u8]) -> bool {
    METHODS.iter().any(|m| b.starts_with(m) || (b.len() < m.len() && m.starts_with(b) && !b.is_empty()))
}

/// Does `b` start an HTTP response?
pub(crate) fn looks_like_response(b: &[u8]) -> bool {
    let p = b"HTTP/1.";
    if b.len() >= p.len() {
        b.starts_with(p)
    } else {
        !b.is_empty() && p.starts_with(b)
    }
}

/// Finds the end of a head in `buf` (index after the empty line), scanning from `from`.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + off;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => {}
        }
        i = nl + 1;
    }
    None
}

fn trim(v: &[u8]) -> &[u8] {
    let v = match v.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) => v.get(i..).unwrap_or(&[]),
        None => return &[],
    };
    match v.iter().rposition(|b| !b.is_ascii_whitespace()) {
        Some(i) => v.get(..=i).unwrap_or(v),
        None => &[],
    }
}

fn parse_with<'b, const N: usize>(buf: &'b [u8], request: bool) -> Result<Option<Head<'b>>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; N];
    let mut h = Head::default();
    let hdrs: &[httparse::Header<'_>] = if request {
        let mut req = httparse::Request::new(&mut headers);
        let n = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Err(httparse::Error::TooManyHeaders) => return Err(()),
            _ => return Ok(None),
        };
        h.len = n;
        h.method = req.method;
        h.uri = req.path;
        h.version = req.version.unwrap_or(1);
        req.headers
    } else {
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Err(httparse::Error::TooManyHeaders) => return Err(()),
            _ => return Ok(None),
        };
        h.len = n;
        h.status = resp.code.unwrap_or(0);
        h.reason = resp.reason;
        h.version = resp.version.unwrap_or(1);
        resp.headers
    };
    for hd in hdrs {
        let name = hd.name;
        if name.eq_ignore_ascii_case("host") {
            h.host.get_or_insert_with(|| trim(hd.value));
        } else if name.eq_ignore_ascii_case("connection") {
            h.connection.get_or_insert_with(|| trim(hd.value));
        } else if name.eq_ignore_ascii_case("content-length") {
            let v = trim(hd.value);
            if h.content_length.is_none() {
                h.content_length = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
            }
            h.content_length_header.get_or_insert(v);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let v = trim(hd.value);
            if v.windows(7).any(|w| w.eq_ignore_ascii_case(b"chunked")) {
                h.chunked = true;
            }
            h.transfer_encoding.get_or_insert(v);
        }
    }
    Ok(Some(h))
}

/// Parses a complete head. `None` when it is not HTTP. Tries a small header array first
/// and a large one only for heads with many headers.
pub(crate) fn parse_head(buf: &[u8], request: bool) -> Option<Head<'_>> {
    match parse_with::<24>(buf, request) {
        Ok(h) => h,
        Err(()) => parse_with::<MAX_HEADERS>(buf, request).ok().flatten(),
    }
}

/// Where a direction's parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for a segment that starts a message.
    Sync,
    /// Collecting a head.
    Head,
    /// In a body.
    Body(Body),
    /// Chunked body: reading a size line / crlf after data / trailer.
    ChunkLine(ChunkLine),
    /// Chunked body: `n` data bytes left.
    ChunkData(u64),
    /// Another protocol took over (101, CONNECT); stop.
    Opaque,
}

/// Which line of a chunked body is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkLine {
    Size,
    AfterData,
    Trailer,
}

/// Parses a chunk-size line (`1a;ext=1`).
pub(crate) fn chunk_size(line: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(line).ok()?;
    let s = s.split(';').next()?.trim();
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// One HTTP message in a UDP datagram (SSDP): reported alone, never paired, as tshark does.
pub(crate) fn udp_message(frame: u64, ts_ns: i64, src: SocketAddr, dst: SocketAddr, b: &[u8]) -> Option<HttpTxn> {
    let request = looks_like_request(b);
    if !request && !looks_like_response(b) {
        return None;
    }
    let h = parse_head(b, request)?;
    let at = (Some(frame), Some(ts_ns));
    let mut t = HttpTxn { req_header_bytes: h.len as u32, ssdp: true, ..HttpTxn::default() };
    if request {
        t.client = Some(src);
        t.server = Some(dst);
        t.method = h.method.map(Text::new);
        t.uri = h.uri.map(Text::new);
        t.version = Some(version_text(h.version));
        t.host = h.host.map(Text::from_wire);
        (t.request_frame, t.request_ts_ns) = at;
        (t.request_start_frame, t.request_start_ts_ns) = at;
    } else {
        t.client = Some(dst);
        t.server = Some(src);
        t.status = Some(h.status);
        t.reason = h.reason.map(Text::new);
        t.resp_header_bytes = h.len as u32;
        t.req_header_bytes = 0;
        (t.response_frame, t.response_ts_ns) = at;
        (t.response_start_frame, t.response_start_ts_ns) = at;
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_accepts_crlf_and_lf() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nxyz", 0), Some(27));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\n\nx", 0), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
    }

    #[test]
    fn parses_heads() {
        let h = parse_head(b"HTTP/1.1 204 No Content\r\nContent-Length: 12\r\n\r\n", false).unwrap();
        assert_eq!(h.status, 204);
        assert_eq!(h.content_length, Some(12));
        assert_eq!(h.content_length_header, Some(&b"12"[..]));
        assert!(parse_head(b"\x16\x03\x01\r\n\r\n", true).is_none());
        assert_eq!(chunk_size(b"1a;x=y"), Some(26));
        assert_eq!(chunk_size(b"zz"), None);
        assert!(looks_like_request(b"GE"));
        assert!(!looks_like_request(b"GX"));
        assert!(looks_like_response(b"HTTP/1.0 200"));
    }
}
