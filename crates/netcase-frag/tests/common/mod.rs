//! Hand-built IPv4 and IPv6 fragments of UDP datagrams.
#![allow(dead_code, clippy::indexing_slicing, clippy::unwrap_used)]

use netcase_frag::{Reassembled, Reassembler};
use netcase_wire::{decode, LinkType, Transport};

pub const SRC4: [u8; 4] = [192, 0, 2, 1];
pub const DST4: [u8; 4] = [198, 51, 100, 7];
pub const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53];

/// Deterministic xorshift64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// A payload of `n` recognisable bytes.
pub fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn sum16(data: &[u8], mut sum: u32) -> u32 {
    for c in data.chunks(2) {
        let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], 0]) };
        sum += u32::from(w);
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// A UDP header + payload with the checksum set over the pseudo-header.
pub fn udp(src: &[u8], dst: &[u8], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let len = 8 + data.len();
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let mut s = sum16(src, 0);
    s = sum16(dst, s);
    s += 17 + len as u32;
    s = sum16(&u, s);
    let c = match fold(s) {
        0 => 0xFFFF,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// One IPv4 fragment: `bytes` at byte offset `off` of the datagram payload.
pub fn v4_frag(id: u16, proto: u8, off: usize, more: bool, bytes: &[u8]) -> Vec<u8> {
    let total = 20 + bytes.len();
    let fo = (off / 8) as u16 | if more { 0x2000 } else { 0 };
    let mut h = vec![0x45, 0, (total >> 8) as u8, total as u8];
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&fo.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&SRC4);
    h.extend_from_slice(&DST4);
    let c = fold(sum16(&h, 0));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(bytes);
    h
}

/// One IPv6 fragment (fixed header + Fragment header), `bytes` at offset `off`.
pub fn v6_frag(id: u32, next: u8, off: usize, more: bool, bytes: &[u8]) -> Vec<u8> {
    let plen = 8 + bytes.len();
    let mut h = vec![0x60, 0, 0, 0, (plen >> 8) as u8, plen as u8, 44, 64];
    h.extend_from_slice(&SRC6);
    h.extend_from_slice(&DST6);
    let fo = (off as u16 & 0xFFF8) | u16::from(more);
    h.extend_from_slice(&[next, 0]);
    h.extend_from_slice(&fo.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(bytes);
    h
}

/// Splits an upper-layer datagram into IPv4 fragments of `n` bytes (n a multiple of 8).
pub fn split_v4(id: u16, proto: u8, dgram: &[u8], n: usize) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = dgram.chunks(n).collect();
    let last = chunks.len() - 1;
    chunks.iter().enumerate().map(|(i, c)| v4_frag(id, proto, i * n, i != last, c)).collect()
}

/// Splits an upper-layer datagram into IPv6 fragments of `n` bytes (n a multiple of 8).
pub fn split_v6(id: u32, next: u8, dgram: &[u8], n: usize) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = dgram.chunks(n).collect();
    let last = chunks.len() - 1;
    chunks.iter().enumerate().map(|(i, c)| v6_frag(id, next, i * n, i != last, c)).collect()
}

/// A UDP datagram over IPv4 for tests: (udp bytes, its payload).
pub fn udp4(n: usize, seed: u8) -> (Vec<u8>, Vec<u8>) {
    let p = payload(n, seed);
    (udp(&SRC4, &DST4, 5353, 53, &p), p)
}

/// A UDP datagram over IPv6 for tests: (udp bytes, its payload).
pub fn udp6(n: usize, seed: u8) -> (Vec<u8>, Vec<u8>) {
    let p = payload(n, seed);
    (udp(&SRC6, &DST6, 5353, 53, &p), p)
}

/// What a completed datagram gave: its bytes and metadata.
#[derive(Debug, Clone)]
pub struct Done {
    pub bytes: Vec<u8>,
    pub first_frame: u64,
    pub last_frame: u64,
    pub fragments: u32,
    pub version: u8,
}

impl From<Reassembled<'_>> for Done {
    fn from(r: Reassembled<'_>) -> Self {
        Done {
            bytes: r.bytes.to_vec(),
            first_frame: r.first_frame,
            last_frame: r.last_frame,
            fragments: r.fragments,
            version: r.version,
        }
    }
}

/// Feeds raw IP packets (frame numbers from 1, timestamps given) and collects what completes.
pub fn feed(r: &mut Reassembler, frames: &[(i64, &[u8])]) -> Vec<Done> {
    let mut out = Vec::new();
    for (i, (ts, f)) in frames.iter().enumerate() {
        let pkt = decode(LinkType::Raw, f);
        assert!(pkt.ip.is_some_and(|ip| ip.fragment.is_some()), "not a fragment: {pkt:?}");
        if let Some(d) = r.push(i as u64 + 1, *ts, &pkt) {
            out.push(d.into());
        }
    }
    out
}

/// Feeds frames 1 ms apart.
pub fn feed_all(r: &mut Reassembler, frames: &[Vec<u8>]) -> Vec<Done> {
    let v: Vec<(i64, &[u8])> = frames.iter().enumerate().map(|(i, f)| (i as i64 * 1_000_000, f.as_slice())).collect();
    feed(r, &v)
}

/// Decodes a reassembled datagram and returns its UDP (ports, payload), checking the IP layer.
pub fn udp_of(bytes: &[u8]) -> (u16, u16, Vec<u8>) {
    let pkt = decode(LinkType::Raw, bytes);
    assert_eq!(pkt.error, None, "{pkt:?}");
    let ip = pkt.ip.expect("ip");
    assert_eq!(ip.fragment, None);
    assert_eq!(ip.payload_len as usize, pkt.ip_payload.len());
    let Some(Transport::Udp(u)) = pkt.transport else { panic!("not udp: {pkt:?}") };
    assert_eq!(usize::from(u.length), 8 + u.payload.len());
    (u.src_port, u.dst_port, u.payload.to_vec())
}
