//! Small helpers shared by the capture rules: bounded samples, subjects, rounding.

use std::collections::BTreeSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};

use netcase_flow::Endpoint;
use netcase_model::{Evidence, Subject};

/// Values kept per aggregate for medians: enough for a stable median, bounded memory.
pub(super) const MAX_SAMPLES: usize = 1024;
/// Frame numbers kept per finding as a sample.
pub(super) const MAX_FRAMES: usize = 10;
/// Distinct peers remembered per aggregate (beyond that only the count grows as "at least").
const MAX_PEERS: usize = 64;

pub(super) const NS_PER_S: f64 = 1e9;
pub(super) const NS_PER_MS: i64 = 1_000_000;

/// A hasher for small integer keys (stream ids, addresses, endpoints): one multiply per
/// integer, no allocation. Not DoS-resistant; never iterate a map using it for output order.
#[derive(Default, Clone, Copy)]
pub(super) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        // The multiply mixes into the high bits; fold them down so the bucket index (low
        // bits) depends on every input bit (IP addresses differ in their high bits).
        self.0 ^ (self.0 >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }
}

/// Build-hasher for [`IntHasher`].
pub(super) type IntBuild = BuildHasherDefault<IntHasher>;

/// A per-subject aggregate map on the per-connection path (hashing is cheaper than ordered
/// lookups); [`sorted`] gives its entries in key order for deterministic findings.
pub(super) type FastMap<K, V> = std::collections::HashMap<K, V, IntBuild>;

/// The entries of `m` in ascending key order (keys are unique).
pub(super) fn sorted<K: Ord, V>(m: FastMap<K, V>) -> Vec<(K, V)> {
    let mut v: Vec<(K, V)> = m.into_iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Which end of a TCP connection or UDP flow, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Role {
    /// The side that opened the connection (sent the SYN; by port when the handshake was not seen).
    Client,
    /// The other side.
    Server,
}

impl Role {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
    pub(super) fn other(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

/// A bounded list of values (the first [`MAX_SAMPLES`]), with the total count.
#[derive(Debug, Default, Clone)]
pub(super) struct Samples {
    v: Vec<f64>,
    n: u64,
}

impl Samples {
    pub(super) fn push(&mut self, x: f64) {
        self.n += 1;
        if self.v.len() < MAX_SAMPLES {
            self.v.push(x);
        }
    }
    /// Adds `o`'s values (as many as fit) and its count.
    pub(super) fn merge(&mut self, o: &Samples) {
        let room = MAX_SAMPLES - self.v.len();
        self.v.extend(o.v.iter().take(room));
        self.n += o.n;
    }
    pub(super) fn len(&self) -> u64 {
        self.n
    }
    pub(super) fn is_empty(&self) -> bool {
        self.n == 0
    }
    pub(super) fn median(&self) -> Option<f64> {
        quantile(&self.v, 0.5)
    }
    pub(super) fn max(&self) -> Option<f64> {
        self.v.iter().copied().reduce(f64::max)
    }
    pub(super) fn values(&self) -> &[f64] {
        &self.v
    }
    pub(super) fn sum(&self) -> f64 {
        self.v.iter().sum()
    }
    /// Share (0..=1) of the kept values within `tol` (absolute) of `center`.
    pub(super) fn share_near(&self, center: f64, tol: f64) -> f64 {
        if self.v.is_empty() {
            return 0.0;
        }
        let near = self.v.iter().filter(|x| (**x - center).abs() <= tol).count();
        near as f64 / self.v.len() as f64
    }
}

/// The `q` quantile (nearest rank, lower) of unsorted values.
pub(super) fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s: Vec<f64> = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((s.len() - 1) as f64 * q).floor() as usize;
    s.get(i).copied()
}

/// A bounded sample of frame numbers.
#[derive(Debug, Default, Clone)]
pub(super) struct FrameSample(Vec<u64>);

impl FrameSample {
    pub(super) fn push(&mut self, frame: u64) {
        if self.0.len() < MAX_FRAMES && !self.0.contains(&frame) {
            self.0.push(frame);
        }
    }
    pub(super) fn merge(&mut self, o: &FrameSample) {
        for &f in &o.0 {
            self.push(f);
        }
    }
    pub(super) fn first(&self) -> Option<u64> {
        self.0.iter().min().copied()
    }
    pub(super) fn evidence(&self, key: &str) -> Option<Evidence> {
        if self.0.is_empty() {
            return None;
        }
        let mut v = self.0.clone();
        v.sort_unstable();
        Some(Evidence::frames(key, v))
    }
}

/// Distinct addresses, bounded.
#[derive(Debug, Default, Clone)]
pub(super) struct PeerSet {
    set: BTreeSet<IpAddr>,
    overflow: bool,
}

impl PeerSet {
    /// The addresses kept.
    pub(super) fn iter(&self) -> impl Iterator<Item = &IpAddr> {
        self.set.iter()
    }
    pub(super) fn insert(&mut self, ip: IpAddr) {
        if self.set.len() < MAX_PEERS {
            self.set.insert(ip);
        } else if !self.set.contains(&ip) {
            self.overflow = true;
        }
    }
    pub(super) fn len(&self) -> usize {
        self.set.len()
    }
    pub(super) fn merge(&mut self, o: &PeerSet) {
        for ip in &o.set {
            self.insert(*ip);
        }
        self.overflow |= o.overflow;
    }
    /// The peers as text, `a, b, c` (`and more` when the set overflowed).
    pub(super) fn text(&self, max: usize) -> String {
        let mut s: Vec<String> = self.set.iter().take(max).map(ToString::to_string).collect();
        if self.set.len() > max || self.overflow {
            s.push("…".to_owned());
        }
        s.join(", ")
    }
}

/// Which flows an aggregate covers: a finding about one flow names the flow; about several,
/// the server port.
#[derive(Debug, Default, Clone)]
pub(super) struct FlowGroup {
    pub(super) flows: u64,
    first: Option<(u32, Endpoint, Endpoint)>,
}

impl FlowGroup {
    pub(super) fn add(&mut self, stream: u32, client: Endpoint, server: Endpoint) {
        self.flows += 1;
        if self.first.is_none() {
            self.first = Some((stream, client, server));
        }
    }
    /// `Flow` when the group holds one flow, else the server port.
    pub(super) fn subject(&self, proto: &'static str, server: Endpoint) -> Subject {
        match self.first {
            Some((stream, client, srv)) if self.flows == 1 => {
                Subject::Flow { proto, stream: Some(u64::from(stream)), client: sa(client), server: sa(srv) }
            }
            _ => server_subject(proto, server),
        }
    }
}

pub(super) fn sa(e: Endpoint) -> SocketAddr {
    SocketAddr::new(e.addr, e.port)
}

pub(super) fn server_subject(proto: &'static str, e: Endpoint) -> Subject {
    Subject::ServerPort { proto, ip: Some(e.addr), port: e.port }
}

/// Rounds to `d` decimals (measures carry what a person reads, not float noise).
pub(super) fn round(x: f64, d: i32) -> f64 {
    let p = 10f64.powi(d);
    (x * p).round() / p
}

pub(super) fn secs(ns: i64) -> f64 {
    ns as f64 / NS_PER_S
}

pub(super) fn millis(ns: i64) -> f64 {
    ns as f64 / 1e6
}

/// `a` is after `b` in sequence space.
pub(super) fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// `a - b` in sequence space when `a` is not before `b`, else 0; absurd gaps (≥ 1 GiB) give 0.
pub(super) fn seq_diff(a: u32, b: u32) -> u32 {
    let d = a.wrapping_sub(b);
    if (d as i32) > 0 && d < (1 << 30) {
        d
    } else {
        0
    }
}

/// Plural helper for summaries.
pub(super) fn pl(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}
