//! `probe http`: the phases of each request, as `curl -w` names them — DNS
//! (`time_namelookup`), connect (`time_connect`), TLS (`time_appconnect`), time to first byte
//! (`time_starttransfer`), transfer, total — over HTTP/1.1 keep-alive or a new connection for
//! each request, with `concurrency` connections at once and a latency histogram like wrk's.
//!
//! Phases are kept as durations (each phase alone) and as curl's cumulative times. The time to
//! first byte counts from the request written to the first response byte read: the server's
//! time plus one round trip, so it is compared with the connect time (one round trip, the
//! network) to tell a slow server from a slow network. TLS is rustls with the ring provider;
//! roots come from `--cacert` or the system bundle, or verification is off (`--insecure`).

use crate::error::{Error, Result};
use crate::stats::{histogram, Bucket, Percentiles};
use netcase_model::{CaseId, Confidence, Finding, Severity, Subject};
use serde::Serialize;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A response head larger than this is an error.
const MAX_HEAD: usize = 64 * 1024;
/// A response body larger than this is cut short (and counted as an error).
const MAX_BODY: u64 = 1 << 30;
/// The system's CA bundle (Debian's ca-certificates).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Url {
    /// `https`?
    pub tls: bool,
    /// The host as written (no brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// Path and query (`/` at least).
    pub path: String,
}

impl Url {
    /// Parses an `http://` or `https://` URL (no user info).
    pub fn parse(s: &str) -> Result<Url> {
        let bad = |r: &str| Error::Target { target: s.to_owned(), reason: r.to_owned() };
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("expected an http:// or https:// URL"));
        };
        let (auth, path) = match rest.find(['/', '?']) {
            Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_owned() };
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(r) = auth.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("bad port"))?,
                None => default_port,
            };
            (h.to_owned(), port)
        } else {
            match auth.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad("bad port"))?),
                None => (auth.to_owned(), default_port),
            }
        };
        if host.is_empty() || host.contains('@') {
            return Err(bad("no host (or user info, which is not supported)"));
        }
        Ok(Url { tls, host, port, path })
    }

    /// `Host:` header value.
    fn host_header(&self) -> String {
        let h = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == if self.tls { 443 } else { 80 } {
            h
        } else {
            format!("{h}:{}", self.port)
        }
    }
}

/// How TLS servers are verified.
#[derive(Debug, Clone, Default)]
pub enum Verify {
    /// Against the system's CA bundle.
    #[default]
    System,
    /// Against the certificates of this PEM file.
    CaFile(PathBuf),
    /// Not at all (`--insecure`).
    Insecure,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The URL.
    pub url: Url,
    /// Requests to make.
    pub count: u32,
    /// Gap between request starts (over all connections).
    pub interval: Duration,
    /// Connections at once.
    pub concurrency: u32,
    /// Each read, write and connect waits at most this long.
    pub timeout: Duration,
    /// Reuse each connection (HTTP/1.1 keep-alive) rather than a new one per request.
    pub keepalive: bool,
    /// TLS verification.
    pub verify: Verify,
    /// `HEAD` instead of `GET`.
    pub head: bool,
    /// A phase slower than this (median) is a warning.
    pub slow: Duration,
}

/// The phases of one request, each on its own, in milliseconds (0 for a phase that did not
/// happen: DNS for an address, connect and TLS on a reused connection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Phases {
    /// Name resolution.
    pub dns_ms: f64,
    /// TCP handshake.
    pub connect_ms: f64,
    /// TLS handshake.
    pub tls_ms: f64,
    /// Request written → first response byte (server time + one round trip).
    pub ttfb_ms: f64,
    /// First byte → last byte.
    pub transfer_ms: f64,
    /// The whole request.
    pub total_ms: f64,
}

/// curl's cumulative times (`-w`), in seconds from the request's start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CurlTimes {
    /// `time_namelookup`.
    pub time_namelookup: f64,
    /// `time_connect`.
    pub time_connect: f64,
    /// `time_appconnect` (0 without TLS, as curl prints it).
    pub time_appconnect: f64,
    /// `time_starttransfer`.
    pub time_starttransfer: f64,
    /// `time_total`.
    pub time_total: f64,
}

impl Phases {
    /// curl's cumulative view of these phases.
    pub fn curl(&self, tls: bool) -> CurlTimes {
        let s = |ms: f64| ms / 1000.0;
        let lookup = self.dns_ms;
        let connect = lookup + self.connect_ms;
        let app = connect + self.tls_ms;
        let start = app + self.ttfb_ms;
        CurlTimes {
            time_namelookup: s(lookup),
            time_connect: s(connect),
            time_appconnect: if tls { s(app) } else { 0.0 },
            time_starttransfer: s(start),
            time_total: s(self.total_ms),
        }
    }
}

/// One request.
#[derive(Debug, Clone, Serialize)]
pub struct HttpRequest {
    /// Its number (0-based, in start order).
    pub seq: u32,
    /// The connection it went on (0-based, in opening order per worker).
    pub connection: u32,
    /// Whether that connection was reused (keep-alive).
    pub reused: bool,
    /// The response status, when a response came.
    pub status: Option<u16>,
    /// Response body bytes.
    pub bytes: u64,
    /// The phases (up to where the request failed).
    pub phases: Phases,
    /// curl's cumulative times.
    pub curl: CurlTimes,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Percentiles of each phase over the requests that completed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseStats {
    /// DNS (requests that resolved a name).
    pub dns: Option<Percentiles>,
    /// Connect (requests that opened a connection).
    pub connect: Option<Percentiles>,
    /// TLS (requests that made a handshake).
    pub tls: Option<Percentiles>,
    /// Time to first byte.
    pub ttfb: Option<Percentiles>,
    /// Transfer.
    pub transfer: Option<Percentiles>,
    /// Total.
    pub total: Option<Percentiles>,
}

/// The result of `probe http`.
#[derive(Debug, Clone, Serialize)]
pub struct HttpReport {
    /// The URL.
    pub url: String,
    /// The address connected to.
    pub address: Option<SocketAddr>,
    /// Keep-alive (reuse) or a new connection per request.
    pub keepalive: bool,
    /// Requests asked for.
    pub count: u32,
    /// Connections at once.
    pub concurrency: u32,
    /// Requests that got a response.
    pub ok: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Connections opened.
    pub connections: u64,
    /// Responses per status code.
    pub statuses: Vec<(u16, u64)>,
    /// Per-phase percentiles.
    pub phases: PhaseStats,
    /// Histogram of the total times.
    pub histogram: Vec<Bucket>,
    /// The phase with the largest median (`dns`, `connect`, `tls`, `ttfb`, `transfer`).
    pub slow_phase: Option<String>,
    /// Requests per second over the run.
    pub requests_per_s: f64,
    /// Every request.
    pub requests: Vec<HttpRequest>,
    /// How long the run took.
    pub duration_s: f64,
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// An open connection with the bytes read but not yet used.
struct Conn {
    io: Box<dyn Stream>,
    buf: Vec<u8>,
    id: u32,
    used: bool,
}

impl Conn {
    /// Reads more bytes into the buffer; 0 at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut b = [0u8; 16 * 1024];
        let n = self.io.read(&mut b)?;
        self.buf.extend_from_slice(b.get(..n).unwrap_or_default());
        Ok(n)
    }

    /// Reads until `pat` is buffered; returns the bytes up to and including it (removed from
    /// the buffer). Fails past `max` bytes or at end of stream.
    fn until(&mut self, pat: &[u8], max: usize) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(pat.len()).position(|w| w == pat) {
                let end = i + pat.len();
                let rest = self.buf.split_off(end);
                return Ok(std::mem::replace(&mut self.buf, rest));
            }
            if self.buf.len() > max {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "response head or chunk line too long"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-response"));
            }
        }
    }

    /// Reads and discards `n` body bytes.
    fn skip(&mut self, mut n: u64) -> io::Result<u64> {
        let total = n;
        while n > 0 {
            if self.buf.is_empty() && self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-body"));
            }
            let take = (self.buf.len() as u64).min(n) as usize;
            self.buf.drain(..take);
            n -= take as u64;
        }
        Ok(total)
    }

    /// Reads and discards until end of stream (a body without length); returns the bytes.
    fn skip_to_end(&mut self) -> io::Result<u64> {
        let mut n = self.buf.len() as u64;
        self.buf.clear();
        loop {
            let got = self.fill()? as u64;
            if got == 0 || n > MAX_BODY {
                return Ok(n);
            }
            n += got;
            self.buf.clear();
        }
    }
}

/// What the head of a response says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    status: u16,
    length: Option<u64>,
    chunked: bool,
    close: bool,
}

/// Parses a response head (status line and headers); `None` when it is not HTTP/1.x.
fn parse_head(head: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let mut h = Head { status, length: None, chunked: false, close: version == "HTTP/1.0" };
    for l in lines {
        let Some((k, v)) = l.split_once(':') else { continue };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            h.length = v.parse().ok();
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            h.chunked = v.to_ascii_lowercase().split(',').any(|t| t.trim() == "chunked");
        } else if k.eq_ignore_ascii_case("connection") {
            let v = v.to_ascii_lowercase();
            if v.contains("close") {
                h.close = true;
            } else if v.contains("keep-alive") {
                h.close = false;
            }
        }
    }
    Some(h)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// No verification at all (`--insecure`); signatures are still checked to be well-formed by
/// the provider's algorithms.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls client configuration for `verify`.
pub fn tls_config(verify: &Verify) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    // ring rather than aws-lc-rs: it builds with a C compiler alone. Its provider has no
    // post-quantum key exchange (hence the deprecation note); a latency probe does not need it.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let cfg = match verify {
        Verify::Insecure => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider))).with_no_client_auth()
        }
        Verify::System | Verify::CaFile(_) => {
            let path = match verify {
                Verify::CaFile(p) => p.clone(),
                _ => PathBuf::from(SYSTEM_ROOTS),
            };
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(&path)
                .map_err(|e| Error::Tls(format!("cannot read certificates from {}: {e}", path.display())))?;
            for c in certs {
                let c = c.map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
                // A bundle may hold certificates webpki does not take as roots: skip those.
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(Error::Tls(format!("no usable certificate in {}", path.display())));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(cfg))
}

/// Shared by the workers.
struct Run<'a> {
    opts: &'a HttpOptions,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The address of a host given as an address (no DNS phase).
    literal: Option<IpAddr>,
    address: Mutex<Option<SocketAddr>>,
    started: Instant,
}

impl Run<'_> {
    /// Opens a connection: DNS, connect, TLS; fills those phases.
    fn open(&self, id: u32, ph: &mut Phases) -> std::result::Result<Conn, String> {
        let u = &self.opts.url;
        let t = Instant::now();
        let addr = match self.literal {
            Some(ip) => SocketAddr::new(ip, u.port),
            None => {
                let addrs: Vec<SocketAddr> =
                    (u.host.as_str(), u.port).to_socket_addrs().map_err(|e| format!("dns: {e}"))?.collect();
                ph.dns_ms = ms(t.elapsed());
                *addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).ok_or("dns: no address")?
            }
        };
        if let Ok(mut a) = self.address.lock() {
            a.get_or_insert(addr);
        }
        let t = Instant::now();
        let s = TcpStream::connect_timeout(&addr, self.opts.timeout).map_err(|e| format!("connect {addr}: {e}"))?;
        ph.connect_ms = ms(t.elapsed());
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(self.opts.timeout));
        let _ = s.set_write_timeout(Some(self.opts.timeout));
        let io: Box<dyn Stream> = match &self.tls {
            None => Box::new(s),
            Some(cfg) => {
                let t = Instant::now();
                let name = rustls::pki_types::ServerName::try_from(u.host.clone())
                    .map_err(|e| format!("tls: bad server name {}: {e}", u.host))?;
                let conn = rustls::ClientConnection::new(cfg.clone(), name).map_err(|e| format!("tls: {e}"))?;
                let mut st = rustls::StreamOwned::new(conn, s);
                let mut rounds = 0;
                while st.conn.is_handshaking() && rounds < 64 {
                    st.conn.complete_io(&mut st.sock).map_err(|e| format!("tls handshake: {e}"))?;
                    rounds += 1;
                }
                if st.conn.is_handshaking() {
                    return Err("tls handshake did not finish".into());
                }
                ph.tls_ms = ms(t.elapsed());
                Box::new(st)
            }
        };
        Ok(Conn { io, buf: Vec::new(), id, used: false })
    }

    /// One request on `conn` (opened first when `None`); returns the request and the
    /// connection when it can be reused.
    fn request(&self, seq: u32, conn: Option<Conn>, next_id: &mut u32) -> (HttpRequest, Option<Conn>) {
        let t0 = Instant::now();
        let mut ph = Phases::default();
        let fail = |ph: Phases, id: u32, reused: bool, e: String| HttpRequest {
            seq,
            connection: id,
            reused,
            status: None,
            bytes: 0,
            phases: Phases { total_ms: ms(t0.elapsed()), ..ph },
            curl: Phases { total_ms: ms(t0.elapsed()), ..ph }.curl(self.opts.url.tls),
            error: Some(e),
        };
        let mut c = match conn {
            Some(c) => c,
            None => {
                let id = *next_id;
                *next_id += 1;
                match self.open(id, &mut ph) {
                    Ok(c) => c,
                    Err(e) => return (fail(ph, id, false, e), None),
                }
            }
        };
        let reused = c.used;
        c.used = true;
        let u = &self.opts.url;
        let req = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: netcase-probe\r\nAccept: */*\r\n{}\r\n",
            if self.opts.head { "HEAD" } else { "GET" },
            u.path,
            u.host_header(),
            if self.opts.keepalive { "" } else { "Connection: close\r\n" }
        );
        if let Err(e) = c.io.write_all(req.as_bytes()).and_then(|()| c.io.flush()) {
            return (fail(ph, c.id, reused, format!("write request: {e}")), None);
        }
        let t_req = Instant::now();
        let first = if c.buf.is_empty() { c.fill() } else { Ok(c.buf.len()) };
        match first {
            Ok(0) => return (fail(ph, c.id, reused, "connection closed before a response".into()), None),
            Err(e) => return (fail(ph, c.id, reused, format!("waiting for the first byte: {e}")), None),
            Ok(_) => {}
        }
        let t_first = Instant::now();
        ph.ttfb_ms = ms(t_first - t_req);
        let head = match c.until(b"\r\n\r\n", MAX_HEAD).map(|h| parse_head(&h)) {
            Ok(Some(h)) => h,
            Ok(None) => return (fail(ph, c.id, reused, "not an HTTP/1.x response".into()), None),
            Err(e) => return (fail(ph, c.id, reused, format!("response head: {e}")), None),
        };
        let no_body = self.opts.head || head.status == 204 || head.status == 304 || (100..200).contains(&head.status);
        let body = if no_body {
            Ok(0)
        } else if head.chunked {
            read_chunked(&mut c)
        } else if let Some(n) = head.length {
            if n > MAX_BODY {
                Err(io::Error::new(io::ErrorKind::InvalidData, "body larger than 1 GiB"))
            } else {
                c.skip(n)
            }
        } else {
            c.skip_to_end()
        };
        let t_end = Instant::now();
        ph.transfer_ms = ms(t_end - t_first);
        ph.total_ms = ms(t_end - t0);
        let (bytes, error) = match body {
            Ok(n) => (n, None),
            Err(e) => (0, Some(format!("body: {e}"))),
        };
        let framed = no_body || head.chunked || head.length.is_some();
        let keep = self.opts.keepalive && !head.close && framed && error.is_none();
        let r = HttpRequest {
            seq,
            connection: c.id,
            reused,
            status: Some(head.status),
            bytes,
            phases: ph,
            curl: ph.curl(u.tls),
            error,
        };
        (r, keep.then_some(c))
    }
}

/// Reads a chunked body; returns the payload bytes.
fn read_chunked(c: &mut Conn) -> io::Result<u64> {
    let mut total = 0u64;
    for _ in 0..1_000_000 {
        let line = c.until(b"\r\n", 4096)?;
        let text = std::str::from_utf8(&line).unwrap_or("");
        let size = text.trim().split(';').next().unwrap_or("").trim();
        let n =
            u64::from_str_radix(size, 16).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if n == 0 {
            // Trailers, then the blank line.
            for _ in 0..64 {
                if c.until(b"\r\n", 4096)?.len() == 2 {
                    return Ok(total);
                }
            }
            return Err(io::Error::new(io::ErrorKind::InvalidData, "too many trailers"));
        }
        total += c.skip(n)?;
        if total > MAX_BODY {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "body larger than 1 GiB"));
        }
        c.skip(2)?;
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "too many chunks"))
}

/// Measures `opts.count` requests to `opts.url`.
pub fn run(opts: &HttpOptions) -> Result<HttpReport> {
    if opts.count == 0 || opts.concurrency == 0 {
        return Err(Error::Usage("--count and --concurrency must be at least 1".into()));
    }
    let tls = if opts.url.tls { Some(tls_config(&opts.verify)?) } else { None };
    let literal = opts.url.host.parse::<IpAddr>().ok();
    let run = Run { opts, tls, literal, address: Mutex::new(None), started: Instant::now() };
    let conns = AtomicU32::new(0);
    // Per thread: its kept-alive connection and its next connection number.
    let init = |w: u32| (None::<Conn>, w * 1_000_000);
    let mut requests = crate::paced(opts.count, opts.concurrency, opts.interval, init, |seq, (conn, next_id)| {
        let before = *next_id;
        let (r, c) = run.request(seq, conn.take(), next_id);
        conns.fetch_add(*next_id - before, Ordering::Relaxed);
        *conn = c;
        Some(r)
    });
    requests.sort_by_key(|r| r.seq);
    let took = run.started.elapsed();
    let address = run.address.lock().ok().and_then(|a| *a);
    Ok(summarize(opts, requests, address, u64::from(conns.load(Ordering::Relaxed)), took))
}

fn summarize(
    opts: &HttpOptions,
    requests: Vec<HttpRequest>,
    address: Option<SocketAddr>,
    connections: u64,
    took: Duration,
) -> HttpReport {
    let done: Vec<&HttpRequest> = requests.iter().filter(|r| r.error.is_none() && r.status.is_some()).collect();
    let pick = |f: &dyn Fn(&HttpRequest) -> Option<f64>| -> Option<Percentiles> {
        Percentiles::of(&done.iter().filter_map(|r| f(r)).collect::<Vec<f64>>())
    };
    let fresh = |r: &HttpRequest| !r.reused;
    let phases = PhaseStats {
        dns: pick(&|r| (fresh(r) && r.phases.dns_ms > 0.0).then_some(r.phases.dns_ms)),
        connect: pick(&|r| fresh(r).then_some(r.phases.connect_ms)),
        tls: pick(&|r| (fresh(r) && opts.url.tls).then_some(r.phases.tls_ms)),
        ttfb: pick(&|r| Some(r.phases.ttfb_ms)),
        transfer: pick(&|r| Some(r.phases.transfer_ms)),
        total: pick(&|r| Some(r.phases.total_ms)),
    };
    let slow_phase = [
        ("dns", &phases.dns),
        ("connect", &phases.connect),
        ("tls", &phases.tls),
        ("ttfb", &phases.ttfb),
        ("transfer", &phases.transfer),
    ]
    .iter()
    .filter_map(|(n, p)| p.map(|p| (*n, p.p50_ms)))
    .max_by(|a, b| a.1.total_cmp(&b.1))
    .map(|(n, _)| n.to_owned());
    let mut statuses: Vec<(u16, u64)> = Vec::new();
    for r in &done {
        if let Some(s) = r.status {
            match statuses.iter_mut().find(|(c, _)| *c == s) {
                Some(e) => e.1 += 1,
                None => statuses.push((s, 1)),
            }
        }
    }
    statuses.sort();
    let totals: Vec<f64> = done.iter().map(|r| r.phases.total_ms).collect();
    HttpReport {
        url: format!("{}://{}{}", if opts.url.tls { "https" } else { "http" }, opts.url.host_header(), opts.url.path),
        address,
        keepalive: opts.keepalive,
        count: opts.count,
        concurrency: opts.concurrency,
        ok: done.len() as u64,
        errors: (requests.len() - done.len()) as u64,
        connections,
        statuses,
        phases,
        histogram: histogram(&totals),
        slow_phase,
        requests_per_s: if took.as_secs_f64() > 0.0 { done.len() as f64 / took.as_secs_f64() } else { 0.0 },
        requests,
        duration_s: took.as_secs_f64(),
    }
}

/// A phase's name as curl users know it.
pub fn phase_title(p: &str) -> &'static str {
    match p {
        "dns" => "DNS (time_namelookup)",
        "connect" => "connect (time_connect)",
        "tls" => "TLS (time_appconnect)",
        "ttfb" => "time to first byte (time_starttransfer)",
        "transfer" => "transfer",
        _ => "total",
    }
}

/// Findings of a `probe http` run: the breakdown with the slow phase
/// (`http-timing-breakdown`: a warning when its median reaches `slow`), connect time (the
/// network) against time to first byte (the server), failures.
pub fn findings(r: &HttpReport, slow: Duration) -> Vec<Finding> {
    let subject = match r.address {
        Some(a) => Subject::ServerPort { proto: "tcp", ip: Some(a.ip()), port: a.port() },
        None => Subject::Name { name: r.url.clone() },
    };
    let mut out = Vec::new();
    let med = |p: &Option<Percentiles>| p.map(|p| p.p50_ms);
    if let (Some(slow_phase), Some(total)) = (&r.slow_phase, &r.phases.total) {
        let phase_p = match slow_phase.as_str() {
            "dns" => r.phases.dns,
            "connect" => r.phases.connect,
            "tls" => r.phases.tls,
            "ttfb" => r.phases.ttfb,
            _ => r.phases.transfer,
        };
        let slow_ms = med(&phase_p).unwrap_or(0.0);
        let connect = med(&r.phases.connect);
        let ttfb = med(&r.phases.ttfb).unwrap_or(0.0);
        // The first byte needs one round trip beyond the server's time; connect is one round trip.
        let server = connect.map(|c| (ttfb - c).max(0.0));
        let is_slow = slow_ms >= ms(slow);
        let mut text = format!(
            "{} over {} requests: the slowest phase is {} at p50 {:.1} ms of {:.1} ms total",
            r.url,
            total.n,
            phase_title(slow_phase),
            slow_ms,
            total.p50_ms
        );
        if let (Some(c), Some(s)) = (connect, server) {
            text.push_str(&format!(
                "; connect (one round trip, the network) p50 {c:.1} ms vs time to first byte p50 {ttfb:.1} ms: about {s:.1} ms is the server's"
            ));
        }
        let mut f = Finding::new(
            CaseId::HttpTimingBreakdown,
            if is_slow { Severity::Warning } else { Severity::Info },
            subject.clone(),
            text,
        )
        .with(netcase_model::Evidence::text("slow_phase", slow_phase.clone()))
        .with_measure("slow_phase_ms", slow_ms, "ms")
        .with_measure("total_p50_ms", total.p50_ms, "ms")
        .with_measure("total_p99_ms", total.p99_ms, "ms")
        .with_measure("ttfb_p50_ms", ttfb, "ms")
        .with_measure("requests", total.n as f64, "count")
        .with_confidence(Confidence::Certain, &[]);
        for (k, p) in
            [("dns_p50_ms", &r.phases.dns), ("connect_p50_ms", &r.phases.connect), ("tls_p50_ms", &r.phases.tls)]
        {
            if let Some(v) = med(p) {
                f = f.with_measure(k, v, "ms");
            }
        }
        f = f.with_measure("transfer_p50_ms", med(&r.phases.transfer).unwrap_or(0.0), "ms");
        if let Some(s) = server {
            f = f.with_measure("server_ms", s, "ms");
        }
        f.fix = if !is_slow {
            String::new()
        } else {
            match slow_phase.as_str() {
            "dns" => "name resolution is slow: `netcase probe dns NAME` (resolver order, timeouts, the 5 s race)".into(),
            "connect" => "the TCP handshake is slow: `netcase probe tcp HOST:PORT` for the distribution and `netcase probe path` for the hop".into(),
            "tls" => "the TLS handshake is slow: session resumption, keep-alive (fewer handshakes), the certificate chain's size, the server's CPU".into(),
            "ttfb" => "the server is slow to answer (time to first byte well above one round trip): profile the handler and what it waits on; the network is not the cause".into(),
            _ => "the body is slow to arrive: its size against the bandwidth and the receive window (`netcase pcap` on a capture shows window limits)".into(),
        }
        };
        out.push(f);
    }
    if r.errors > 0 {
        let first = r.requests.iter().find_map(|q| q.error.clone()).unwrap_or_default();
        out.push(
            Finding::new(
                CaseId::HttpTimingBreakdown,
                Severity::Warning,
                subject,
                format!("{} of {} requests to {} failed; the first: {first}", r.errors, r.count, r.url),
            )
            .with_measure("failed", r.errors as f64, "count")
            .with_confidence(Confidence::Likely, &[])
            .with_fix(
                "check the failing phase above: connect (`netcase probe tcp`), TLS (--cacert, --insecure), the server",
            ),
        );
    }
    Finding::settle(&mut out);
    out
}

/// Findings comparing the same requests over keep-alive (`keep`) and over a new connection
/// each time (`fresh`): what reuse saves per request (`http-timing-breakdown`, info).
pub fn compare_findings(keep: &HttpReport, fresh: &HttpReport) -> Vec<Finding> {
    let (Some(k), Some(f)) = (keep.phases.total, fresh.phases.total) else { return Vec::new() };
    let subject = match keep.address.or(fresh.address) {
        Some(a) => Subject::ServerPort { proto: "tcp", ip: Some(a.ip()), port: a.port() },
        None => Subject::Name { name: keep.url.clone() },
    };
    let setup = |r: &HttpReport| {
        r.phases.dns.map_or(0.0, |p| p.p50_ms)
            + r.phases.connect.map_or(0.0, |p| p.p50_ms)
            + r.phases.tls.map_or(0.0, |p| p.p50_ms)
    };
    let reused = keep.requests.iter().filter(|q| q.reused && q.error.is_none()).count();
    let saved = f.p50_ms - k.p50_ms;
    let mut out = vec![Finding::new(
        CaseId::HttpTimingBreakdown,
        Severity::Info,
        subject,
        format!(
            "{}: keep-alive total p50 {:.1} ms ({} of {} requests on a reused connection) vs a new connection each time {:.1} ms: reuse saves {:.1} ms a request (connection setup p50 {:.1} ms: DNS, connect, TLS)",
            keep.url,
            k.p50_ms,
            reused,
            keep.requests.len(),
            f.p50_ms,
            saved,
            setup(fresh)
        ),
    )
    .with_measure("keepalive_p50_ms", k.p50_ms, "ms")
    .with_measure("new_connection_p50_ms", f.p50_ms, "ms")
    .with_measure("saved_ms", saved, "ms")
    .with_measure("setup_p50_ms", setup(fresh), "ms")
    .with_measure("reused", reused as f64, "count")
    .with_confidence(Confidence::Certain, &[])];
    if keep.connections >= keep.count as u64 && keep.count > 1 {
        out[0].summary.push_str("; the server closed every connection (no keep-alive)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let u = Url::parse("https://example.org:8443/a?b=1").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port, u.path.as_str()), (true, "example.org", 8443, "/a?b=1"));
        let u = Url::parse("http://[::1]/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.host_header()), ("::1", 80, "[::1]".to_owned()));
        assert_eq!(Url::parse("http://h?x").unwrap().path, "/?x");
        assert!(Url::parse("ftp://h/").is_err());
        assert!(Url::parse("http://:80/").is_err());
    }

    #[test]
    fn heads_parse_without_panic() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n").unwrap();
        assert_eq!(h, Head { status: 200, length: Some(12), chunked: false, close: true });
        let h = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap();
        assert!(h.chunked && !h.close);
        assert!(parse_head(b"SSH-2.0-x\r\n\r\n").is_none());
        assert!(parse_head(&[0xff, 0xfe]).is_none());
        assert!(parse_head(b"HTTP/1.1 abc\r\n\r\n").is_none());
    }

    #[test]
    fn curl_times_are_cumulative() {
        let p = Phases { dns_ms: 1.0, connect_ms: 2.0, tls_ms: 3.0, ttfb_ms: 4.0, transfer_ms: 5.0, total_ms: 15.0 };
        let c = p.curl(true);
        assert!((c.time_appconnect - 0.006).abs() < 1e-12 && (c.time_starttransfer - 0.010).abs() < 1e-12);
        assert_eq!(p.curl(false).time_appconnect, 0.0);
    }
}
