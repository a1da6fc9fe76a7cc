//! Raw IPv4 sockets for the probes that send their own SYNs (`probe tcp` as root, like
//! `hping3 -S`; `probe path`, like `traceroute --tcp`): building a SYN, reading SYN-ACKs,
//! RSTs and ICMP errors back with checked reads.
//!
//! A SYN sent this way has no socket behind it in the local kernel: when the SYN-ACK comes,
//! the kernel answers it with a RST itself. That is expected (hping3 behaves so) and is what
//! keeps the server from holding a half-open connection; the probe only reads the SYN-ACK's
//! arrival time. Each probe's source port is reserved by a bound, never connected TCP socket
//! ([`reserve_port`]) so that no real connection of this host shares it.

use crate::error::{Error, Result};
use netcase_wire::checksum::{fold, ones_sum};
use netcase_wire::Reader;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// TCP flag bits.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// A raw IPv4 socket of one protocol (`IPPROTO_TCP` or `IPPROTO_ICMP`); the kernel builds
/// the IP header of what is sent, and what is read starts with the IP header.
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
}

impl RawSocket {
    /// Opens a raw socket for `proto` (`libc::IPPROTO_TCP`, `libc::IPPROTO_ICMP`). Needs root
    /// (CAP_NET_RAW).
    pub fn open(proto: libc::c_int) -> Result<RawSocket> {
        // SAFETY: socket(2) with constant arguments; the descriptor is owned below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EPERM) {
                return Err(Error::NeedsRoot("a raw socket"));
            }
            return Err(Error::io("raw socket", e));
        }
        // SAFETY: fd is a new descriptor nobody else owns.
        Ok(RawSocket { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Sets the TTL of the packets sent from now on.
    pub fn set_ttl(&self, ttl: u8) -> Result<()> {
        let v: libc::c_int = libc::c_int::from(ttl);
        // SAFETY: IP_TTL takes an int; the pointer and length describe `v`.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_TTL,
                std::ptr::addr_of!(v).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(Error::io("set IP_TTL", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Sends `payload` (the transport header and data) to `dst`.
    pub fn send_to(&self, payload: &[u8], dst: Ipv4Addr) -> Result<()> {
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr { s_addr: u32::from(dst).to_be() },
            sin_zero: [0; 8],
        };
        // SAFETY: payload is readable for its length; sa is a valid sockaddr_in.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                payload.as_ptr().cast(),
                payload.len(),
                0,
                std::ptr::addr_of!(sa).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(Error::io(format!("send to {dst}"), std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Waits at most `wait` for a packet and reads it into `buf`; returns its length and when
    /// it was read, or `None` when nothing came.
    pub fn recv(&self, buf: &mut [u8], wait: Duration) -> Option<(usize, Instant)> {
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = wait.as_millis().min(60_000) as libc::c_int;
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r <= 0 {
            return None;
        }
        self.try_recv(buf)
    }

    /// Reads one packet if one is queued, without waiting.
    pub fn try_recv(&self, buf: &mut [u8]) -> Option<(usize, Instant)> {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        let at = Instant::now();
        (n > 0).then_some((n as usize, at))
    }

    /// The descriptor, for polling several sockets at once.
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

/// Waits at most `wait` until one of `socks` is readable; returns which (indexes).
pub fn poll_any(socks: &[&RawSocket], wait: Duration) -> Vec<usize> {
    let mut pfds: Vec<libc::pollfd> =
        socks.iter().map(|s| libc::pollfd { fd: s.raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    let ms = wait.as_millis().min(60_000) as libc::c_int;
    // SAFETY: pfds is a valid array of pfds.len() pollfds.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if r <= 0 {
        return Vec::new();
    }
    pfds.iter().enumerate().filter(|(_, p)| p.revents & libc::POLLIN != 0).map(|(i, _)| i).collect()
}

/// The source address this host uses towards `dst` (a connected UDP socket's local address;
/// nothing is sent).
pub fn source_for(dst: Ipv4Addr) -> Result<Ipv4Addr> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| Error::io("udp socket", e))?;
    s.connect((dst, 9)).map_err(|e| Error::io(format!("route to {dst}"), e))?;
    match s.local_addr().map_err(|e| Error::io("local address", e))? {
        std::net::SocketAddr::V4(a) => Ok(*a.ip()),
        std::net::SocketAddr::V6(_) => Err(Error::Usage(format!("no IPv4 source towards {dst}"))),
    }
}

/// Reserves a source port on `src`: a TCP socket bound to an ephemeral port and never
/// connected nor listening (a SYN-ACK to it draws the kernel's RST, and no real connection of
/// this host can take the port while the socket lives).
pub fn reserve_port(src: Ipv4Addr) -> Result<(socket2::Socket, u16)> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).map_err(|e| Error::io("tcp socket", e))?;
    s.bind(&SockAddr::from(SocketAddrV4::new(src, 0))).map_err(|e| Error::io(format!("bind {src}:0"), e))?;
    let port = s
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket_ipv4())
        .map(|a| a.port())
        .ok_or_else(|| Error::Usage("no local port".into()))?;
    Ok((s, port))
}

/// A SYN from `src:sport` to `dst:dport` with sequence number `seq` and an MSS option of
/// 1460 (24 bytes, checksum filled in).
pub fn syn(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, seq: u32) -> [u8; 24] {
    let mut t = [0u8; 24];
    let mut put = |at: usize, b: &[u8]| {
        if let Some(d) = t.get_mut(at..at + b.len()) {
            d.copy_from_slice(b);
        }
    };
    put(0, &sport.to_be_bytes());
    put(2, &dport.to_be_bytes());
    put(4, &seq.to_be_bytes());
    put(12, &[6 << 4, flags::SYN]);
    put(14, &64240u16.to_be_bytes());
    put(20, &[2, 4]);
    put(22, &1460u16.to_be_bytes());
    let mut acc = ones_sum(0, &src.octets());
    acc = ones_sum(acc, &dst.octets());
    acc = ones_sum(acc, &[0, libc::IPPROTO_TCP as u8]);
    acc = ones_sum(acc, &(t.len() as u16).to_be_bytes());
    acc = ones_sum(acc, &t);
    let c = !fold(acc);
    if let Some(d) = t.get_mut(16..18) {
        d.copy_from_slice(&c.to_be_bytes());
    }
    t
}

/// A TCP segment's addresses and flags, read from an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSeen {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flag bits (see [`flags`]).
    pub flags: u8,
    /// The IP header's TTL (hints at the hop count of the answer).
    pub ttl: u8,
}

/// Reads an IPv4 header: (protocol, ttl, src, dst) and leaves `r` at the payload.
fn ip_header(r: &mut Reader<'_>) -> Option<(u8, u8, Ipv4Addr, Ipv4Addr)> {
    let vihl = r.u8()?;
    if vihl >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    r.skip(7)?;
    let ttl = r.u8()?;
    let proto = r.u8()?;
    r.skip(2)?;
    let src = Ipv4Addr::from(r.array::<4>()?);
    let dst = Ipv4Addr::from(r.array::<4>()?);
    r.skip(ihl - 20)?;
    Some((proto, ttl, src, dst))
}

/// Reads a TCP segment from an IPv4 packet (as a raw `IPPROTO_TCP` socket delivers it).
pub fn parse_tcp(pkt: &[u8]) -> Option<TcpSeen> {
    let mut r = Reader::new(pkt);
    let (proto, ttl, src, dst) = ip_header(&mut r)?;
    if i32::from(proto) != libc::IPPROTO_TCP {
        return None;
    }
    let sport = r.u16_be()?;
    let dport = r.u16_be()?;
    let _seq = r.u32_be()?;
    let ack = r.u32_be()?;
    let _off = r.u8()?;
    let flags = r.u8()?;
    Some(TcpSeen { src, dst, sport, dport, ack, flags, ttl })
}

/// An ICMP error about a TCP segment this host sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpSeen {
    /// Who sent the ICMP message (the router, or the target).
    pub from: Ipv4Addr,
    /// ICMP type (11 time exceeded, 3 destination unreachable).
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// The quoted segment's destination address.
    pub inner_dst: Ipv4Addr,
    /// The quoted segment's source port.
    pub inner_sport: u16,
    /// The quoted segment's destination port.
    pub inner_dport: u16,
    /// The quoted segment's sequence number.
    pub inner_seq: u32,
}

/// ICMP type: destination unreachable.
pub const ICMP_UNREACHABLE: u8 = 3;
/// ICMP type: time exceeded.
pub const ICMP_TIME_EXCEEDED: u8 = 11;

/// Reads an ICMP time-exceeded or destination-unreachable message that quotes a TCP segment
/// (as a raw `IPPROTO_ICMP` socket delivers it, IP header first).
pub fn parse_icmp(pkt: &[u8]) -> Option<IcmpSeen> {
    let mut r = Reader::new(pkt);
    let (proto, _, from, _) = ip_header(&mut r)?;
    if i32::from(proto) != libc::IPPROTO_ICMP {
        return None;
    }
    let icmp_type = r.u8()?;
    let code = r.u8()?;
    if icmp_type != ICMP_TIME_EXCEEDED && icmp_type != ICMP_UNREACHABLE {
        return None;
    }
    r.skip(6)?;
    let (inner_proto, _, _, inner_dst) = ip_header(&mut r)?;
    if i32::from(inner_proto) != libc::IPPROTO_TCP {
        return None;
    }
    let inner_sport = r.u16_be()?;
    let inner_dport = r.u16_be()?;
    let inner_seq = r.u32_be()?;
    Some(IcmpSeen { from, icmp_type, code, inner_dst, inner_sport, inner_dport, inner_seq })
}

/// A sequence number for a probe: different per run and probe, so that answers of an earlier
/// run are not taken for this one's.
pub fn isn(seed: u64, n: u32) -> u32 {
    let x = seed ^ (u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let x = (x ^ (x >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x ^ (x >> 29)) as u32
}

/// A seed from the clock and the pid.
pub fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_checksum_verifies() {
        let (s, d) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let t = syn(s, 40000, d, 80, 12345);
        let mut acc = ones_sum(0, &s.octets());
        acc = ones_sum(acc, &d.octets());
        acc = ones_sum(acc, &[0, 6, 0, 24]);
        acc = ones_sum(acc, &t);
        assert_eq!(fold(acc), 0xffff);
        assert_eq!(t[13], flags::SYN);
    }

    fn ip(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn reads_a_syn_ack_and_an_icmp_quote() {
        let seg = syn(Ipv4Addr::new(10, 0, 0, 2), 80, Ipv4Addr::new(10, 0, 0, 1), 40000, 7);
        let p = ip(6, [10, 0, 0, 2], [10, 0, 0, 1], &seg);
        let t = parse_tcp(&p).unwrap();
        assert_eq!((t.sport, t.dport, t.flags, t.ttl), (80, 40000, flags::SYN, 64));
        let mut icmp = vec![11, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&ip(6, [10, 0, 0, 1], [10, 9, 9, 9], seg.get(..8).unwrap()));
        let p = ip(1, [10, 0, 1, 254], [10, 0, 0, 1], &icmp);
        let i = parse_icmp(&p).unwrap();
        assert_eq!(
            (i.from, i.icmp_type, i.inner_dst, i.inner_sport, i.inner_seq),
            (Ipv4Addr::new(10, 0, 1, 254), 11, Ipv4Addr::new(10, 9, 9, 9), 80, 7)
        );
        // Truncated anywhere: no panic, no answer.
        for n in 0..p.len() {
            let _ = parse_icmp(p.get(..n).unwrap());
            let _ = parse_tcp(p.get(..n).unwrap());
        }
        assert!(parse_icmp(p.get(..30).unwrap()).is_none());
    }
}
