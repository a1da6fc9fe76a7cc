//! Plays fuzz input as one TCP conversation through a `ProtoTracker` (shared by the `http`,
//! `dns` and `tls` targets; not a target itself).
//!
//! The first byte sets the scene (bits): 0 handshake first, 1 the caller numbers streams,
//! 2 sequence numbers start just below the 2^32 wrap, 3 the server has the lower address,
//! 4 IPv6, 5 data segments carry no ACK. The rest is payload, cut into segments by control
//! sequences: byte `0xFF` followed by `0xFF` is a literal `0xFF`; followed by any other byte
//! `c` it is command `c % 10` (parameter `c / 10`, 0 to 25):
//!
//! | c % 10 | what happens |
//! |---|---|
//! | 0 / 1 | the segment ends; the next one goes client → server / server → client |
//! | 2 | the segment is held back and sent after the next one (out of order) |
//! | 3 | the segment is sent twice (retransmission) |
//! | 4 | the segment is lost before the capture point (its bytes are acknowledged later) |
//! | 5 / 6 | the segment carries FIN / RST |
//! | 7 | the segment was cut by the snap length: the wire carried `(param + 1) * 64` more bytes |
//! | 8 | the segment ends and the clock jumps `param + 1` seconds |
//! | 9 | the segment ends; the client opens a new connection on the same addresses |
//!
//! Commands 2 to 7 end the segment too; the next one keeps its direction. Every segment
//! acknowledges everything the peer has sent (lost bytes included: the loss is before the
//! capture point, the peer did get them).

use netcase_proto::tcp_flags::{ACK, FIN, RST, SYN};
use netcase_proto::ProtoTracker;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What was played (for the targets' bounds).
#[derive(Debug, Default)]
pub struct Played {
    /// Packets handed to the tracker.
    pub packets: u64,
    /// Most connections the tracker can tell apart: the first, one per command 9, and one
    /// after each FIN or RST (once the closed one is forgotten, `linger_ns` later, further
    /// data starts a new one).
    pub conns: u64,
    /// Payload bytes of the script (each delivered at most once per connection).
    pub payload: u64,
    /// Payload bytes plus uncaptured bytes: the most any body can count.
    pub wire_bytes: u64,
    /// Most connections the tracker held live at any point.
    pub max_live: usize,
}

#[derive(Debug, Default)]
struct Seg {
    from_client: bool,
    data: Vec<u8>,
    uncaptured: u32,
    fin: bool,
    rst: bool,
    hold: bool,
    dup: bool,
    lose: bool,
    /// Before this segment: clock jump (ns) and a new connection.
    pause_ns: i64,
    new_conn: bool,
}

impl Seg {
    fn is_noop(&self) -> bool {
        self.data.is_empty() && self.uncaptured == 0 && !self.fin && !self.rst
    }
}

fn parse(script: &[u8]) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut cur = Seg { from_client: true, ..Seg::default() };
    let mut it = script.iter().copied();
    while let Some(b) = it.next() {
        if b != 0xFF {
            cur.data.push(b);
            continue;
        }
        let Some(c) = it.next() else { break };
        if c == 0xFF {
            cur.data.push(0xFF);
            continue;
        }
        let (cmd, param) = (c % 10, c / 10);
        let dir = cur.from_client;
        match cmd {
            2 => cur.hold = true,
            3 => cur.dup = true,
            4 => cur.lose = true,
            5 => cur.fin = true,
            6 => cur.rst = true,
            7 => cur.uncaptured = (u32::from(param) + 1) * 64,
            _ => {}
        }
        let mut next = Seg { from_client: dir, ..Seg::default() };
        match cmd {
            0 => next.from_client = true,
            1 => next.from_client = false,
            8 => next.pause_ns = (i64::from(param) + 1) * 1_000_000_000,
            9 => {
                next.from_client = true;
                next.new_conn = true;
            }
            _ => {}
        }
        segs.push(std::mem::replace(&mut cur, next));
    }
    segs.push(cur);
    segs
}

struct Pkt {
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: u16,
    data: Vec<u8>,
    tcp_len: u32,
}

/// Plays `input` (mode byte + script) against a server on `server_port`.
pub fn play(t: &mut ProtoTracker, input: &[u8], server_port: u16) -> Played {
    let Some((&mode, script)) = input.split_first() else { return Played::default() };
    let handshake = mode & 1 != 0;
    let numbered = mode & 2 != 0;
    let near_wrap = mode & 4 != 0;
    let server_low = mode & 8 != 0;
    let v6 = mode & 16 != 0;
    let no_ack = mode & 32 != 0;
    let (lo, hi): (IpAddr, IpAddr) = if v6 {
        (Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).into(), Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2).into())
    } else {
        (Ipv4Addr::new(10, 0, 0, 1).into(), Ipv4Addr::new(10, 0, 0, 2).into())
    };
    let (ci, si) = if server_low { (hi, lo) } else { (lo, hi) };
    let client = SocketAddr::new(ci, 50_000);
    let server = SocketAddr::new(si, server_port);
    let base = if near_wrap { u32::MAX - 40 } else { 1_000 };
    let mut out = Played { conns: 1, ..Played::default() };
    let mut frame = 0u64;
    let mut ts: i64 = 1_600_000_000_000_000_000;
    let mut stream = 0u64;
    // Next sequence number of the client and of the server.
    let mut next = [base, base.wrapping_add(70_000)];
    let mut send = |t: &mut ProtoTracker, p: &Pkt, ts: i64, stream: u64, out: &mut Played| {
        frame += 1;
        let (src, dst) = if p.from_client { (client, server) } else { (server, client) };
        let s = numbered.then_some(stream);
        t.tcp(frame, ts, src, dst, p.seq, p.ack, p.flags, &p.data, p.tcp_len, s);
        out.packets += 1;
        out.max_live = out.max_live.max(t.live_connections());
    };
    let mut held: Vec<Pkt> = Vec::new();
    let mut first = true;
    for seg in parse(script) {
        ts = ts.saturating_add(seg.pause_ns);
        if seg.new_conn {
            out.conns += 1;
            stream += 1;
            next = [next[0].wrapping_add(1_000_003), next[1].wrapping_add(2_000_003)];
        }
        if (first && handshake) || seg.new_conn {
            let syn = Pkt { from_client: true, seq: next[0], ack: 0, flags: SYN, data: Vec::new(), tcp_len: 0 };
            next[0] = next[0].wrapping_add(1);
            let synack =
                Pkt { from_client: false, seq: next[1], ack: next[0], flags: SYN | ACK, data: Vec::new(), tcp_len: 0 };
            next[1] = next[1].wrapping_add(1);
            for p in [syn, synack] {
                ts += 1_000_000;
                send(t, &p, ts, stream, &mut out);
            }
        }
        first = false;
        if seg.is_noop() {
            continue;
        }
        out.conns += u64::from(seg.fin || seg.rst);
        let d = usize::from(!seg.from_client);
        let len = u32::try_from(seg.data.len()).unwrap_or(u32::MAX);
        let tcp_len = len.saturating_add(seg.uncaptured);
        out.payload += u64::from(len);
        out.wire_bytes += u64::from(tcp_len);
        let seq = next[d];
        next[d] = seq.wrapping_add(tcp_len).wrapping_add(u32::from(seg.fin));
        let mut flags = if no_ack { 0 } else { ACK };
        if seg.fin {
            flags |= FIN;
        }
        if seg.rst {
            flags |= RST;
        }
        let ack = if no_ack { 0 } else { next[d ^ 1] };
        let p = Pkt { from_client: seg.from_client, seq, ack, flags, data: seg.data, tcp_len };
        if seg.lose {
            continue;
        }
        if seg.hold {
            held.push(p);
            continue;
        }
        ts += 1_000_000;
        send(t, &p, ts, stream, &mut out);
        if seg.dup {
            ts += 1_000_000;
            send(t, &p, ts, stream, &mut out);
        }
        for h in held.drain(..) {
            ts += 1_000_000;
            send(t, &h, ts, stream, &mut out);
        }
    }
    for h in held.drain(..) {
        ts += 1_000_000;
        send(t, &h, ts, stream, &mut out);
    }
    out
}
