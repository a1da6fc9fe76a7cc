//! Flow keys: an address/port pair in canonical order, and a small fast hasher for them.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// One side of a flow: an IP address and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    /// The address.
    pub addr: IpAddr,
    /// The TCP or UDP port.
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// An address packed into 16 bytes plus a family bit, cheap to compare and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PackedAddr {
    v6: bool,
    bytes: [u8; 16],
}

impl PackedAddr {
    #[inline]
    pub(crate) fn new(a: IpAddr) -> Self {
        match a {
            IpAddr::V4(v4) => PackedAddr { v6: false, bytes: u128::from(u32::from(v4)).to_be_bytes() },
            IpAddr::V6(v6) => PackedAddr { v6: true, bytes: v6.octets() },
        }
    }

    /// The order of the derived `Ord`, as integers (cheaper than comparing byte arrays).
    #[inline]
    fn rank(&self) -> (bool, u128) {
        (self.v6, u128::from_be_bytes(self.bytes))
    }

    pub(crate) fn addr(&self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.bytes))
        } else {
            IpAddr::V4(Ipv4Addr::new(self.bytes[12], self.bytes[13], self.bytes[14], self.bytes[15]))
        }
    }

    #[inline]
    fn words(&self) -> (u64, u64) {
        let v = u128::from_ne_bytes(self.bytes);
        (v as u64, (v >> 64) as u64)
    }
}

/// A flow key independent of direction: the two (address, port) ends in canonical order.
///
/// Like Wireshark's conversations, the key ignores VLAN tags, interfaces and the link layer:
/// the same 4-tuple seen on two VLANs is one flow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlowKey {
    lo: PackedAddr,
    hi: PackedAddr,
    lo_port: u16,
    hi_port: u16,
}

impl FlowKey {
    /// The key of a packet from `src` to `dst`, and whether `src` is the canonical low end.
    #[inline]
    pub(crate) fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> (Self, bool) {
        let s = PackedAddr::new(src);
        let d = PackedAddr::new(dst);
        if (s.rank(), sport) <= (d.rank(), dport) {
            (FlowKey { lo: s, hi: d, lo_port: sport, hi_port: dport }, true)
        } else {
            (FlowKey { lo: d, hi: s, lo_port: dport, hi_port: sport }, false)
        }
    }

    /// The canonical low end.
    pub(crate) fn lo(&self) -> Endpoint {
        Endpoint { addr: self.lo.addr(), port: self.lo_port }
    }

    /// The canonical high end.
    pub(crate) fn hi(&self) -> Endpoint {
        Endpoint { addr: self.hi.addr(), port: self.hi_port }
    }
}

impl PartialEq for FlowKey {
    /// Field by field as the derived one would, but on whole words.
    #[inline]
    fn eq(&self, o: &Self) -> bool {
        (self.lo.words(), self.hi.words(), self.lo.v6, self.hi.v6, self.lo_port, self.hi_port)
            == (o.lo.words(), o.hi.words(), o.lo.v6, o.hi.v6, o.lo_port, o.hi_port)
    }
}

impl Eq for FlowKey {}

impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (a, b) = self.lo.words();
        let (c, d) = self.hi.words();
        state.write_u64(a);
        state.write_u64(b ^ u64::from(self.lo.v6));
        state.write_u64(c);
        state.write_u64(d ^ (u64::from(self.hi.v6) << 1));
        state.write_u64(u64::from(self.lo_port) | (u64::from(self.hi_port) << 16));
    }
}

/// A multiply-rotate hasher (the "Fx" construction used by rustc), fast for fixed-size keys.
/// Flow keys come from untrusted packets, but a flow table keyed by them holds at most what the
/// capture holds; worst-case collisions cost time, never correctness.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // Final avalanche so that hashbrown's top-7-bit control bytes vary.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            if let Some(dst) = w.get_mut(..chunk.len()) {
                dst.copy_from_slice(chunk);
            }
            self.add(u64::from_ne_bytes(w));
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

/// Builds [`FxHasher`]s.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxBuild;

impl BuildHasher for FxBuild {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher::default()
    }
}

/// A hash map with the fast hasher.
pub(crate) type FxMap<K, V> = std::collections::HashMap<K, V, FxBuild>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_direction_independent() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let (k1, lo1) = FlowKey::new(a, 1000, b, 80);
        let (k2, lo2) = FlowKey::new(b, 80, a, 1000);
        assert_eq!(k1, k2);
        assert_ne!(lo1, lo2);
        assert_eq!(k1.lo(), Endpoint { addr: a, port: 1000 });
    }

    #[test]
    fn same_address_orders_by_port() {
        let a: IpAddr = "::1".parse().unwrap();
        let (k, lo) = FlowKey::new(a, 5000, a, 80);
        assert!(!lo);
        assert_eq!(k.lo().port, 80);
    }
}
