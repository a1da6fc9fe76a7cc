//! Small servers and clients the labs use: sockets made inside a namespace, a minimal
//! HTTP/1.1 exchange, a minimal DNS message codec. Every read and connect has a timeout.

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

/// A TCP listener on `addr` inside `ns` with the given backlog.
pub fn listen(ns: &str, addr: SocketAddrV4, backlog: i32) -> Result<TcpListener> {
    listen_with(ns, addr, backlog, |_| Ok(()))
}

/// Like [`listen`], with socket options set before `listen(2)`.
pub fn listen_with(
    ns: &str,
    addr: SocketAddrV4,
    backlog: i32,
    opts: impl FnOnce(&Socket) -> std::io::Result<()> + Send,
) -> Result<TcpListener> {
    crate::ns::within(ns, || {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        opts(&s)?;
        s.bind(&SockAddr::from(addr)).with_context(|| format!("bind {addr}"))?;
        s.listen(backlog)?;
        Ok(s.into())
    })
}

/// A TCP connection from inside `ns` to `to`, with socket options set before connecting.
pub fn connect_with(
    ns: &str,
    to: SocketAddrV4,
    timeout: Duration,
    opts: impl FnOnce(&Socket) -> std::io::Result<()> + Send,
) -> Result<TcpStream> {
    crate::ns::within(ns, || {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        opts(&s)?;
        s.connect_timeout(&SockAddr::from(to), timeout)?;
        let t: TcpStream = s.into();
        t.set_read_timeout(Some(Duration::from_secs(5)))?;
        t.set_write_timeout(Some(Duration::from_secs(5)))?;
        Ok(t)
    })
}

/// A TCP connection from inside `ns` to `to`.
pub fn connect(ns: &str, to: SocketAddrV4, timeout: Duration) -> Result<TcpStream> {
    connect_with(ns, to, timeout, |_| Ok(()))
}

/// Starts a non-blocking connect from inside `ns` (the handshake completes or not in the
/// background); optionally binds a source address first.
pub fn connect_nonblocking(ns: &str, to: SocketAddrV4, from: Option<Ipv4Addr>) -> Result<Socket> {
    crate::ns::within(ns, || {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        if let Some(ip) = from {
            s.bind(&SockAddr::from(SocketAddrV4::new(ip, 0)))?;
        }
        s.set_nonblocking(true)?;
        match s.connect(&SockAddr::from(to)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(s)
    })
}

/// A UDP socket bound to `addr` inside `ns`, with options set before binding.
pub fn udp_with(
    ns: &str,
    addr: SocketAddrV4,
    opts: impl FnOnce(&Socket) -> std::io::Result<()> + Send,
) -> Result<UdpSocket> {
    crate::ns::within(ns, || {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        opts(&s)?;
        s.bind(&SockAddr::from(addr)).with_context(|| format!("bind udp {addr}"))?;
        let u: UdpSocket = s.into();
        u.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(u)
    })
}

/// A UDP socket bound to `addr` inside `ns` (no options).
pub fn udp(ns: &str, addr: SocketAddrV4) -> Result<UdpSocket> {
    udp_with(ns, addr, |_| Ok(()))
}

/// Receives datagrams on `s` until `max` have come or a receive fails (its read timeout ends
/// the wait); returns how many came.
pub fn recv_count(s: &UdpSocket, max: usize) -> usize {
    let mut b = [0u8; 2048];
    let mut n = 0;
    while n < max && s.recv(&mut b).is_ok() {
        n += 1;
    }
    n
}

/// Accepts one connection, waiting at most `timeout` (a blocking accept bounded by
/// SO_RCVTIMEO, so it wakes as soon as a connection is queued).
pub fn accept_timeout(l: &TcpListener, timeout: Duration) -> Result<(TcpStream, SocketAddr)> {
    l.set_nonblocking(false)?;
    socket2::SockRef::from(l).set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
    let (s, a) = l.accept().with_context(|| format!("no connection within {} ms", timeout.as_millis()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok((s, a))
}

/// Reads an HTTP/1.1 message head (up to the blank line, at most 16 KiB).
pub fn read_head(s: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while head.len() < 16 * 1024 {
        match s.read(&mut b)? {
            0 => break,
            _ => head.push(b[0]),
        }
        if head.ends_with(b"\r\n\r\n") {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The value of header `name` in an HTTP head (case-insensitive).
pub fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Sends a GET request.
pub fn send_get(s: &mut TcpStream, host: &str, path: &str) -> std::io::Result<()> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: netcase-lab\r\n\r\n").as_bytes())
}

/// Sends a response with a body and `Content-Length`, head and body in one write (two writes
/// of a small response on a keep-alive connection are the write-write-read pattern that Nagle
/// and the peer's delayed ACK stall by 40 ms: the nagle-delayed-ack case, not a healthy server).
pub fn send_response(s: &mut TcpStream, status: &str, extra: &str, body: &[u8]) -> std::io::Result<()> {
    let mut msg = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}\r\n", body.len()).into_bytes();
    msg.extend_from_slice(body);
    s.write_all(&msg)
}

/// Reads a response head and a body of `Content-Length` bytes; returns (status, body).
pub fn read_response(s: &mut TcpStream) -> std::io::Result<(u16, Vec<u8>)> {
    let head = read_head(s)?;
    if head.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed before a response"));
    }
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let len: usize = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0).min(16 << 20);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok((status, body))
}

/// DNS query/answer codec for the labs' DNS server and clients.
pub mod dns {
    /// Record type A.
    pub const A: u16 = 1;
    /// Record type AAAA.
    pub const AAAA: u16 = 28;

    /// Builds a query for `name` of type `qtype` with id `id`.
    pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut m = Vec::with_capacity(64);
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.trim_end_matches('.').split('.') {
            m.push(label.len().min(63) as u8);
            m.extend_from_slice(label.as_bytes().get(..label.len().min(63)).unwrap_or_default());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m
    }

    /// A parsed question: (id, name, qtype, end offset of the question).
    pub fn parse_query(m: &[u8]) -> Option<(u16, String, u16, usize)> {
        let id = u16::from_be_bytes([*m.first()?, *m.get(1)?]);
        let mut at = 12;
        let mut name = Vec::new();
        for _ in 0..64 {
            let len = usize::from(*m.get(at)?);
            at += 1;
            if len == 0 {
                break;
            }
            if len > 63 {
                return None;
            }
            name.push(String::from_utf8_lossy(m.get(at..at + len)?).into_owned());
            at += len;
        }
        let qtype = u16::from_be_bytes([*m.get(at)?, *m.get(at + 1)?]);
        Some((id, name.join("."), qtype, at + 4))
    }

    /// An answer to query `q` with one A record (`v4`) or, for AAAA, none (NOERROR, no data).
    pub fn answer(q: &[u8], v4: Option<std::net::Ipv4Addr>) -> Option<Vec<u8>> {
        let (_, _, qtype, end) = parse_query(q)?;
        let mut m = q.get(..end)?.to_vec();
        *m.get_mut(2)? = 0x81;
        *m.get_mut(3)? = 0x80;
        let with = qtype == A && v4.is_some();
        *m.get_mut(7)? = u8::from(with);
        *m.get_mut(9)? = 0;
        *m.get_mut(11)? = 0;
        m.truncate(end);
        if let (true, Some(ip)) = (with, v4) {
            m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            m.extend_from_slice(&ip.octets());
        }
        Some(m)
    }

    /// The id of a DNS message.
    pub fn id(m: &[u8]) -> Option<u16> {
        Some(u16::from_be_bytes([*m.first()?, *m.get(1)?]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_round_trip() {
        let q = dns::query(0x1234, "db.lab.internal", dns::A);
        let (id, name, t, _) = dns::parse_query(&q).unwrap();
        assert_eq!((id, name.as_str(), t), (0x1234, "db.lab.internal", dns::A));
        let a = dns::answer(&q, Some(Ipv4Addr::new(10, 203, 0, 66))).unwrap();
        assert_eq!(dns::id(&a), Some(0x1234));
        assert_eq!(&a[a.len() - 4..], &[10, 203, 0, 66]);
        assert!(dns::parse_query(&[1, 2, 3]).is_none());
    }

    #[test]
    fn header_lookup_ignores_case() {
        let h = "HTTP/1.1 204 No Content\r\ncontent-length: 10\r\n\r\n";
        assert_eq!(header(h, "Content-Length"), Some("10"));
    }
}
