//! Sockets through netlink `sock_diag` (`NETLINK_SOCK_DIAG`, `inet_diag`), the interface `ss`
//! uses: TCP and UDP, IPv4 and IPv6, every state, with `tcp_info`, `skmeminfo` and timers.
//!
//! [`request`] builds a dump request and [`parse_dump`] decodes a buffer of replies; both are
//! pure, so recorded dumps replay in tests. [`dump`] is the thin I/O shell.

use crate::error::{Error, Result};
use crate::reader::{Attrs, Reader};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDR: usize = 16;
const INET_DIAG_MSG_LEN: usize = 72;

const INET_DIAG_MEMINFO: u16 = 1;
const INET_DIAG_INFO: u16 = 2;
const INET_DIAG_SKMEMINFO: u16 = 7;
const INET_DIAG_SHUTDOWN: u16 = 8;

/// Transport protocol of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `"tcp"` or `"udp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
    fn ipproto(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

/// TCP state as the kernel numbers it (`include/net/tcp_states.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TcpState {
    /// 1
    Established,
    /// 2
    SynSent,
    /// 3 (and 12, NEW_SYN_RECV request sockets)
    SynRecv,
    /// 4
    FinWait1,
    /// 5
    FinWait2,
    /// 6
    TimeWait,
    /// 7 (UDP sockets without a peer report this)
    Close,
    /// 8
    CloseWait,
    /// 9
    LastAck,
    /// 10
    Listen,
    /// 11
    Closing,
    /// Anything else.
    Unknown,
}

impl TcpState {
    /// From the kernel's number.
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 | 12 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            _ => TcpState::Unknown,
        }
    }
}

/// Which timer runs on a socket (`idiag_timer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// Retransmit (or SYN-ACK) timer.
    Retransmit,
    /// Keepalive timer.
    Keepalive,
    /// TIME_WAIT timer.
    TimeWait,
    /// Zero-window probe timer.
    ZeroWindowProbe,
    /// Another value.
    Other,
}

/// A running timer with its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timer {
    /// Which timer.
    pub kind: TimerKind,
    /// Milliseconds until it fires.
    pub expires_ms: u32,
    /// Retransmits (or keepalive probes) so far.
    pub retrans: u8,
}

/// The fields of `struct tcp_info` netcase uses; absent ones (older kernels) are 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[allow(missing_docs)]
pub struct TcpInfo {
    pub retransmits: u8,
    pub probes: u8,
    pub backoff: u8,
    pub options: u8,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub rto_us: u32,
    pub snd_mss: u32,
    pub unacked: u32,
    pub lost: u32,
    pub retrans: u32,
    /// ms since the last data segment was sent.
    pub last_data_sent_ms: u32,
    /// ms since the last data segment was received.
    pub last_data_recv_ms: u32,
    /// ms since the last ACK was received.
    pub last_ack_recv_ms: u32,
    pub rtt_us: u32,
    pub rttvar_us: u32,
    pub snd_cwnd: u32,
    pub reordering: u32,
    pub rcv_space: u32,
    pub total_retrans: u32,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub notsent_bytes: u32,
    pub min_rtt_us: u32,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
}

impl TcpInfo {
    /// Decodes as much of `struct tcp_info` as `b` holds.
    pub fn parse(b: &[u8]) -> Self {
        let r = Reader::new(b);
        let u32at = |o| r.u32_ne(o).unwrap_or(0);
        let u64at = |o| r.u64_ne(o).unwrap_or(0);
        let ws = r.u8(6).unwrap_or(0);
        TcpInfo {
            retransmits: r.u8(2).unwrap_or(0),
            probes: r.u8(3).unwrap_or(0),
            backoff: r.u8(4).unwrap_or(0),
            options: r.u8(5).unwrap_or(0),
            snd_wscale: ws & 0x0f,
            rcv_wscale: ws >> 4,
            rto_us: u32at(8),
            snd_mss: u32at(16),
            unacked: u32at(24),
            lost: u32at(32),
            retrans: u32at(36),
            last_data_sent_ms: u32at(44),
            last_data_recv_ms: u32at(52),
            last_ack_recv_ms: u32at(56),
            rtt_us: u32at(68),
            rttvar_us: u32at(72),
            snd_cwnd: u32at(80),
            reordering: u32at(88),
            rcv_space: u32at(96),
            total_retrans: u32at(100),
            bytes_acked: u64at(120),
            bytes_received: u64at(128),
            notsent_bytes: u32at(144),
            min_rtt_us: u32at(148),
            bytes_sent: u64at(200),
            bytes_retrans: u64at(208),
        }
    }
}

/// `SK_MEMINFO_*`: socket memory and the socket's own drop count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct SkMemInfo {
    pub rmem_alloc: u32,
    pub rcvbuf: u32,
    pub wmem_alloc: u32,
    pub sndbuf: u32,
    pub fwd_alloc: u32,
    pub wmem_queued: u32,
    pub optmem: u32,
    pub backlog: u32,
    /// Packets dropped on this socket (`sk_drops`), e.g. receive buffer full.
    pub drops: u32,
}

impl SkMemInfo {
    fn parse(b: &[u8]) -> Self {
        let r = Reader::new(b);
        let f = |i: usize| r.u32_ne(i * 4).unwrap_or(0);
        SkMemInfo {
            rmem_alloc: f(0),
            rcvbuf: f(1),
            wmem_alloc: f(2),
            sndbuf: f(3),
            fwd_alloc: f(4),
            wmem_queued: f(5),
            optmem: f(6),
            backlog: f(7),
            drops: f(8),
        }
    }
}

/// One socket as `sock_diag` reports it, plus its owners (filled from /proc).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Socket {
    /// TCP or UDP.
    pub proto: Proto,
    /// State (UDP: `Close` when unconnected, `Established` when connected).
    pub state: TcpState,
    /// Local address.
    pub local: SocketAddr,
    /// Remote address (unspecified for listeners and unconnected UDP).
    pub remote: SocketAddr,
    /// Running timer, if any.
    pub timer: Option<Timer>,
    /// Receive queue: bytes unread (TCP established), accept queue length (listeners),
    /// bytes queued (UDP).
    pub recv_q: u32,
    /// Send queue: bytes unacknowledged (TCP), the backlog (listeners).
    pub send_q: u32,
    /// Owning uid.
    pub uid: u32,
    /// Socket inode (0 for TIME_WAIT and request sockets).
    pub inode: u64,
    /// Socket cookie (unique per socket).
    pub cookie: u64,
    /// `tcp_info`, for full TCP sockets.
    pub tcp: Option<TcpInfo>,
    /// `skmeminfo`.
    pub mem: Option<SkMemInfo>,
    /// Shutdown bits (1 = receive side shut, 2 = send side shut).
    pub shutdown: Option<u8>,
    /// Processes holding a descriptor on this socket: (pid, comm).
    pub owners: Vec<(u32, String)>,
}

impl Socket {
    /// The first owning process, if known.
    pub fn owner(&self) -> Option<(u32, &str)> {
        self.owners.first().map(|(p, c)| (*p, c.as_str()))
    }
}

/// Builds an `inet_diag_req_v2` dump request for one family (`libc::AF_INET`/`AF_INET6`)
/// and protocol, all states, asking for `tcp_info`, meminfo and skmeminfo.
pub fn request(family: u8, proto: Proto, seq: u32) -> Vec<u8> {
    let ext: u8 = (1 << (INET_DIAG_MEMINFO - 1)) | (1 << (INET_DIAG_INFO - 1)) | (1 << (INET_DIAG_SKMEMINFO - 1));
    let len: u32 = 16 + 56;
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(&len.to_ne_bytes());
    b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.push(family);
    b.push(proto.ipproto());
    b.push(ext);
    b.push(0);
    b.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    b.extend_from_slice(&[0u8; 48]); // inet_diag_sockid: no filter
    b
}

/// What a buffer of dump replies ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpStatus {
    /// More messages follow in the next read.
    More,
    /// `NLMSG_DONE` seen.
    Done,
}

fn addr(r: &Reader<'_>, family: u8, off: usize, port: u16) -> Option<SocketAddr> {
    let ip = if i32::from(family) == libc::AF_INET6 {
        let b: [u8; 16] = r.at(off, 16)?.try_into().ok()?;
        IpAddr::V6(Ipv6Addr::from(b))
    } else {
        let b: [u8; 4] = r.at(off, 4)?.try_into().ok()?;
        IpAddr::V4(Ipv4Addr::from(b))
    };
    Some(SocketAddr::new(ip, port))
}

/// Decodes one `inet_diag_msg` with its attributes.
pub fn parse_msg(proto: Proto, body: &[u8]) -> Result<Socket> {
    let bad = |reason| Error::Malformed { what: "inet_diag_msg", offset: 0, reason };
    let r = Reader::new(body);
    if r.len() < INET_DIAG_MSG_LEN {
        return Err(bad("short message"));
    }
    let family = r.u8(0).ok_or(bad("short"))?;
    let state = r.u8(1).ok_or(bad("short"))?;
    let timer = r.u8(2).ok_or(bad("short"))?;
    let retrans = r.u8(3).ok_or(bad("short"))?;
    let sport = r.u16_be(4).ok_or(bad("short"))?;
    let dport = r.u16_be(6).ok_or(bad("short"))?;
    let local = addr(&r, family, 8, sport).ok_or(bad("short address"))?;
    let remote = addr(&r, family, 24, dport).ok_or(bad("short address"))?;
    let c0 = r.u32_ne(44).ok_or(bad("short"))?;
    let c1 = r.u32_ne(48).ok_or(bad("short"))?;
    let expires = r.u32_ne(52).ok_or(bad("short"))?;
    let recv_q = r.u32_ne(56).ok_or(bad("short"))?;
    let send_q = r.u32_ne(60).ok_or(bad("short"))?;
    let uid = r.u32_ne(64).ok_or(bad("short"))?;
    let inode = r.u32_ne(68).ok_or(bad("short"))?;
    let timer = match timer {
        0 => None,
        k => Some(Timer {
            kind: match k {
                1 => TimerKind::Retransmit,
                2 => TimerKind::Keepalive,
                3 => TimerKind::TimeWait,
                4 => TimerKind::ZeroWindowProbe,
                _ => TimerKind::Other,
            },
            expires_ms: expires,
            retrans,
        }),
    };
    let mut s = Socket {
        proto,
        state: TcpState::from_u8(state),
        local,
        remote,
        timer,
        recv_q,
        send_q,
        uid,
        inode: u64::from(inode),
        cookie: u64::from(c0) | (u64::from(c1) << 32),
        tcp: None,
        mem: None,
        shutdown: None,
        owners: Vec::new(),
    };
    for (ty, payload) in Attrs::new(body.get(INET_DIAG_MSG_LEN..).unwrap_or(&[])) {
        match ty {
            INET_DIAG_INFO if proto == Proto::Tcp => s.tcp = Some(TcpInfo::parse(payload)),
            INET_DIAG_SKMEMINFO => s.mem = Some(SkMemInfo::parse(payload)),
            INET_DIAG_SHUTDOWN => s.shutdown = payload.first().copied(),
            _ => {}
        }
    }
    Ok(s)
}

/// Decodes a buffer of netlink replies (as one `recv` returns them) into `out`.
/// Malformed single messages are counted in `bad` and skipped.
pub fn parse_dump(proto: Proto, buf: &[u8], out: &mut Vec<Socket>, bad: &mut u64) -> Result<DumpStatus> {
    let mut off = 0usize;
    while off + NLMSG_HDR <= buf.len() {
        let r = Reader::new(buf);
        let len = r.u32_ne(off).unwrap_or(0) as usize;
        let ty = r.u16_ne(off + 4).unwrap_or(0);
        if len < NLMSG_HDR || off + len > buf.len() {
            return Err(Error::Malformed { what: "netlink message", offset: off, reason: "bad length" });
        }
        let body = buf.get(off + NLMSG_HDR..off + len).unwrap_or(&[]);
        match ty {
            NLMSG_DONE => return Ok(DumpStatus::Done),
            NLMSG_ERROR => {
                let errno = Reader::new(body).i32_ne(0).unwrap_or(0);
                if errno != 0 {
                    return Err(Error::NetlinkErrno { what: "sock_diag", errno: -errno });
                }
            }
            SOCK_DIAG_BY_FAMILY => match parse_msg(proto, body) {
                Ok(s) => out.push(s),
                Err(_) => *bad += 1,
            },
            _ => {}
        }
        off += (len + 3) & !3;
    }
    Ok(DumpStatus::More)
}

/// Runs one netlink dump request on `proto_nl` and hands every reply buffer to `each`.
pub(crate) fn netlink_dump(
    proto_nl: isize,
    req: &[u8],
    what: &'static str,
    mut each: impl FnMut(&[u8]) -> Result<DumpStatus>,
) -> Result<()> {
    use netlink_sys::{Socket as NlSocket, SocketAddr as NlAddr};
    let nl = |source| Error::Netlink { what, source };
    let mut sock = NlSocket::new(proto_nl).map_err(nl)?;
    sock.bind_auto().map_err(nl)?;
    sock.connect(&NlAddr::new(0, 0)).map_err(nl)?;
    sock.send(req, 0).map_err(nl)?;
    let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
    // Bounded: a dump ends with NLMSG_DONE; a runaway stream is cut after 1M reads.
    for _ in 0..1_000_000 {
        buf.clear();
        let n = sock.recv(&mut buf, 0).map_err(nl)?;
        if n == 0 {
            return Ok(());
        }
        if each(&buf)? == DumpStatus::Done {
            return Ok(());
        }
    }
    Ok(())
}

/// Dumps every TCP and UDP socket (IPv4 and IPv6) of the calling thread's network namespace.
/// Returns the sockets and the number of messages that did not decode.
pub fn dump() -> Result<(Vec<Socket>, u64)> {
    let mut out = Vec::new();
    let mut bad = 0u64;
    let mut seq = 1u32;
    for proto in [Proto::Tcp, Proto::Udp] {
        for family in [libc::AF_INET, libc::AF_INET6] {
            let req = request(family as u8, proto, seq);
            seq += 1;
            netlink_dump(netlink_sys::constants::NETLINK_SOCK_DIAG, &req, "sock_diag", |b| {
                parse_dump(proto, b, &mut out, &mut bad)
            })?;
        }
    }
    Ok((out, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(state: u8, sport: u16, dport: u16, rq: u32, wq: u32, inode: u32) -> Vec<u8> {
        let mut b = vec![0u8; INET_DIAG_MSG_LEN];
        b[0] = libc::AF_INET as u8;
        b[1] = state;
        b[4..6].copy_from_slice(&sport.to_be_bytes());
        b[6..8].copy_from_slice(&dport.to_be_bytes());
        b[8..12].copy_from_slice(&[127, 0, 0, 1]);
        b[24..28].copy_from_slice(&[10, 0, 0, 2]);
        b[56..60].copy_from_slice(&rq.to_ne_bytes());
        b[60..64].copy_from_slice(&wq.to_ne_bytes());
        b[68..72].copy_from_slice(&inode.to_ne_bytes());
        // skmeminfo attribute with drops = 7
        let mut mem = vec![0u8; 36];
        mem[32..36].copy_from_slice(&7u32.to_ne_bytes());
        b.extend_from_slice(&(40u16).to_ne_bytes());
        b.extend_from_slice(&INET_DIAG_SKMEMINFO.to_ne_bytes());
        b.extend_from_slice(&mem);
        b
    }

    fn wrap(ty: u16, body: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        let len = (NLMSG_HDR + body.len()) as u32;
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(&[0u8; 10]);
        b.extend_from_slice(body);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    #[test]
    fn decodes_messages_and_done() {
        let mut buf = wrap(SOCK_DIAG_BY_FAMILY, &msg(8, 80, 5555, 12, 0, 42));
        buf.extend(wrap(SOCK_DIAG_BY_FAMILY, &msg(10, 8080, 0, 3, 128, 43)));
        buf.extend(wrap(NLMSG_DONE, &[0; 4]));
        let mut out = Vec::new();
        let mut bad = 0;
        assert_eq!(parse_dump(Proto::Tcp, &buf, &mut out, &mut bad).unwrap(), DumpStatus::Done);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].state, TcpState::CloseWait);
        assert_eq!(out[0].local, "127.0.0.1:80".parse().unwrap());
        assert_eq!(out[0].remote, "10.0.0.2:5555".parse().unwrap());
        assert_eq!(out[0].recv_q, 12);
        assert_eq!(out[0].mem.unwrap().drops, 7);
        assert_eq!(out[1].state, TcpState::Listen);
        assert_eq!(out[1].send_q, 128);
        assert_eq!(bad, 0);
    }

    #[test]
    fn short_and_garbage_input_does_not_panic() {
        let mut out = Vec::new();
        let mut bad = 0;
        let short = wrap(SOCK_DIAG_BY_FAMILY, &[1, 2, 3]);
        assert!(parse_dump(Proto::Tcp, &short, &mut out, &mut bad).is_ok());
        assert_eq!(bad, 1);
        let mut lying = short.clone();
        lying[0] = 200;
        assert!(parse_dump(Proto::Tcp, &lying, &mut out, &mut bad).is_err());
        for n in 0..64 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 % 251) as u8).collect();
            let _ = parse_dump(Proto::Udp, &junk, &mut out, &mut bad);
        }
    }

    #[test]
    fn tcp_info_tolerates_short_structs() {
        let t = TcpInfo::parse(&[0u8; 10]);
        assert_eq!(t.rtt_us, 0);
        let mut b = vec![0u8; 232];
        b[68..72].copy_from_slice(&1500u32.to_ne_bytes());
        assert_eq!(TcpInfo::parse(&b).rtt_us, 1500);
    }
}
