//! A userspace Ethernet relay for labs that need delay or chosen loss (the kernel has no
//! netem): it sits in a middle namespace, reads every frame arriving on one veth with an
//! AF_PACKET socket and writes it to the other after a fixed delay, or drops it when a drop
//! rule says so. Both directions run on their own thread; both stop on a flag, and each
//! forwards at most [`MAX_FRAMES`] frames.
//!
//! Besides chosen loss it can stand in for a kernel check this kernel no longer makes:
//! [`DropRule::TwRecyclePaws`] drops SYNs the way `net.ipv4.tcp_tw_recycle` (removed in
//! Linux 4.12) made a server drop them.

use crate::capture::packet_socket;
use crate::pkt;
use anyhow::Result;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames one direction forwards at most.
pub const MAX_FRAMES: u64 = 2_000_000;

/// Which frames to drop.
#[derive(Debug, Clone, Copy)]
pub enum DropRule {
    /// Drop the first transmission of the `n`th (1-based) data-carrying TCP segment sent to
    /// `dport`; its retransmissions pass.
    NthData {
        /// Destination port of the stream.
        dport: u16,
        /// Which data segment.
        n: u32,
    },
    /// Drop every transmission of the `n`th data segment sent to `dport` for `hold` after its
    /// first transmission (the sender's fast retransmit is lost too).
    NthDataFor {
        /// Destination port of the stream.
        dport: u16,
        /// Which data segment.
        n: u32,
        /// How long its copies are dropped.
        hold: Duration,
    },
    /// The per-peer PAWS check of `net.ipv4.tcp_tw_recycle` (Linux before 4.12): remember,
    /// per (source IP, destination IP), the TCP timestamp (TSval) of the last segment to
    /// `dport` that passed, and drop a SYN (without ACK) whose TSval is older — earlier in
    /// 32-bit sequence arithmetic, as the kernel compares them. Segments without the
    /// Timestamps option are neither checked nor remembered. (The kernel forgot a peer's
    /// timestamp after 60 s of silence; a lab is shorter than that.)
    TwRecyclePaws {
        /// Destination port of the server.
        dport: u16,
    },
}

/// The connection a segment belongs to: (source IP, source port, destination IP,
/// destination port).
type Conn = (Ipv4Addr, u16, Ipv4Addr, u16);

/// Relay settings.
#[derive(Debug, Clone, Default)]
pub struct RelayCfg {
    /// One-way delay applied in both directions.
    pub delay: Duration,
    /// Drop rules (applied to the a → b direction and the b → a direction alike).
    pub drops: Vec<DropRule>,
}

/// What the relay did.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RelayStats {
    /// Frames forwarded.
    pub forwarded: u64,
    /// Frames dropped by a rule.
    pub dropped: u64,
    /// [`DropRule::TwRecyclePaws`]: connections whose SYNs were dropped and never passed
    /// (a connection counts once however often its SYN was retransmitted).
    pub paws_connections: u64,
    /// [`DropRule::TwRecyclePaws`]: SYN frames dropped (first transmissions and
    /// retransmissions).
    pub paws_syns: u64,
    /// [`DropRule::TwRecyclePaws`]: over the connections counted in `paws_connections`, the
    /// largest gap, in timestamp ticks, between the TSval remembered for the peer and the
    /// TSval of the connection's first dropped SYN.
    pub paws_max_backwards: u32,
}

/// A running relay.
pub struct Relay {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Result<PawsTally>>>,
    forwarded: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

impl Drop for Relay {
    /// A relay dropped without [`Relay::stop`] (a lab that failed) stops its threads.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Peers remembered by [`DropRule::TwRecyclePaws`] at most (a lab has a handful).
const MAX_PEERS: usize = 4096;

/// What [`DropRule::TwRecyclePaws`] did in one direction of the relay.
#[derive(Debug, Default)]
struct PawsTally {
    /// Last TSval that passed, per (source IP, destination IP).
    last: HashMap<(Ipv4Addr, Ipv4Addr), u32>,
    /// Connections with a dropped SYN and none passed, with how far back their first
    /// dropped SYN was.
    dropped: HashMap<Conn, u32>,
    /// SYN frames dropped.
    syns: u64,
}

impl PawsTally {
    /// Whether a segment to the guarded port must be dropped; remembers the TSval of those
    /// that pass.
    fn check(&mut self, src: Ipv4Addr, dst: Ipv4Addr, t: &pkt::Tcp) -> bool {
        let Some(ts) = t.tsval else { return false };
        let conn = (src, t.sport, dst, t.dport);
        let syn = t.flags & (pkt::flags::SYN | pkt::flags::ACK) == pkt::flags::SYN;
        if syn {
            if let Some(prev) = self.last.get(&(src, dst)) {
                let back = prev.wrapping_sub(ts);
                if (back as i32) > 0 {
                    self.syns += 1;
                    self.dropped.entry(conn).or_insert(back);
                    return true;
                }
            }
            // A SYN that passes (a retransmission whose clock caught up) ends the drop.
            self.dropped.remove(&conn);
        }
        if self.last.len() < MAX_PEERS || self.last.contains_key(&(src, dst)) {
            self.last.insert((src, dst), ts);
        }
        false
    }
}

struct DropState {
    rules: Vec<DropRule>,
    data_seen: u32,
    dropped_seq: HashSet<u32>,
    first_drop: Option<Instant>,
    paws: PawsTally,
}

impl DropState {
    fn should_drop(&mut self, frame: &[u8]) -> bool {
        let Some(p) = pkt::parse(frame) else { return false };
        let Some(t) = p.tcp else { return false };
        for r in &self.rules {
            if let DropRule::TwRecyclePaws { dport } = *r {
                if t.dport == dport && self.paws.check(p.src, p.dst, &t) {
                    return true;
                }
            }
        }
        if t.len == 0 {
            return false;
        }
        for r in &self.rules {
            let (dport, n, hold) = match *r {
                DropRule::NthData { dport, n } => (dport, n, None),
                DropRule::NthDataFor { dport, n, hold } => (dport, n, Some(hold)),
                DropRule::TwRecyclePaws { .. } => continue,
            };
            if t.dport != dport {
                continue;
            }
            if self.dropped_seq.contains(&t.seq) {
                return match (hold, self.first_drop) {
                    (Some(h), Some(at)) => at.elapsed() < h,
                    _ => false,
                };
            }
            self.data_seen += 1;
            if self.data_seen == n {
                self.dropped_seq.insert(t.seq);
                self.first_drop = Some(Instant::now());
                return true;
            }
        }
        false
    }
}

fn ignore_outgoing(fd: i32) {
    let on: libc::c_int = 1;
    // SAFETY: PACKET_IGNORE_OUTGOING (23) takes an int.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            23,
            std::ptr::addr_of!(on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

impl Relay {
    /// Starts relaying between interfaces `a` and `b` of namespace `ns`.
    pub fn start(ns: &str, a: &str, b: &str, cfg: RelayCfg) -> Result<Relay> {
        let stop = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (sa, sb) = crate::ns::within(ns, || {
            let (sa, _) = packet_socket(Some(a))?;
            let (sb, _) = packet_socket(Some(b))?;
            Ok((sa, sb))
        })?;
        ignore_outgoing(sa.as_raw_fd());
        ignore_outgoing(sb.as_raw_fd());
        let sa = Arc::new(sa);
        let sb = Arc::new(sb);
        let mut threads = Vec::new();
        for (from, to) in [(sa.clone(), sb.clone()), (sb, sa)] {
            let stop = stop.clone();
            let fwd = forwarded.clone();
            let drp = dropped.clone();
            let mut st = DropState {
                rules: cfg.drops.clone(),
                data_seen: 0,
                dropped_seq: HashSet::new(),
                first_drop: None,
                paws: PawsTally::default(),
            };
            let delay = cfg.delay;
            threads.push(std::thread::spawn(move || {
                let rfd = from.as_raw_fd();
                let wfd = to.as_raw_fd();
                let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
                let mut buf = vec![0u8; 65536];
                let mut count = 0u64;
                let end = Instant::now() + crate::LAB_LIMIT + Duration::from_secs(30);
                while !stop.load(Ordering::Relaxed) && count < MAX_FRAMES && Instant::now() < end {
                    let now = Instant::now();
                    while let Some((due, _)) = queue.front() {
                        if *due > now {
                            break;
                        }
                        if let Some((_, f)) = queue.pop_front() {
                            // SAFETY: f is a readable buffer of f.len() bytes.
                            unsafe { libc::send(wfd, f.as_ptr().cast(), f.len(), 0) };
                            fwd.fetch_add(1, Ordering::Relaxed);
                            count += 1;
                        }
                    }
                    let wait = queue
                        .front()
                        .map_or(Duration::from_millis(20), |(due, _)| due.saturating_duration_since(now))
                        .clamp(Duration::from_micros(100), Duration::from_millis(20));
                    let mut pfd = libc::pollfd { fd: rfd, events: libc::POLLIN, revents: 0 };
                    // SAFETY: one pollfd.
                    let r = unsafe { libc::poll(&mut pfd, 1, wait.as_millis().max(1) as i32) };
                    if r <= 0 {
                        continue;
                    }
                    // Drain what is ready without blocking.
                    for _ in 0..256 {
                        // SAFETY: buf is writable for its length.
                        let n = unsafe { libc::recv(rfd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
                        if n <= 0 {
                            break;
                        }
                        let f = buf.get(..n as usize).unwrap_or_default();
                        if st.should_drop(f) {
                            drp.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        queue.push_back((Instant::now() + delay, f.to_vec()));
                    }
                }
                Ok(st.paws)
            }));
        }
        Ok(Relay { stop, threads, forwarded, dropped })
    }

    /// Stops the relay and returns its counts.
    pub fn stop(mut self) -> RelayStats {
        self.stop.store(true, Ordering::Relaxed);
        let mut st = RelayStats::default();
        for t in std::mem::take(&mut self.threads) {
            if let Ok(Ok(p)) = t.join() {
                st.paws_connections += p.dropped.len() as u64;
                st.paws_syns += p.syns;
                let back = p.dropped.values().copied().max().unwrap_or(0);
                st.paws_max_backwards = st.paws_max_backwards.max(back);
            }
        }
        st.forwarded = self.forwarded.load(Ordering::Relaxed);
        st.dropped = self.dropped.load(Ordering::Relaxed);
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn(sport: u16, ts: u32, ack: bool) -> pkt::Tcp {
        pkt::Tcp {
            sport,
            dport: 8080,
            seq: 1,
            ack: 0,
            flags: if ack { pkt::flags::ACK } else { pkt::flags::SYN },
            win: 0,
            len: 0,
            wscale: false,
            wscale_shift: None,
            tsval: Some(ts),
        }
    }

    #[test]
    fn paws_drops_syns_older_than_the_peers_last_timestamp() {
        let (nat, srv) = (Ipv4Addr::new(10, 200, 0, 1), Ipv4Addr::new(10, 200, 0, 2));
        let mut p = PawsTally::default();
        // Host A (clock near 9e6) connects and sends an ACK: remembered.
        assert!(!p.check(nat, srv, &syn(1000, 9_000_000, false)));
        assert!(!p.check(nat, srv, &syn(1000, 9_000_005, true)));
        // Host B behind the same address (clock near 1000): its SYN and retransmission drop.
        assert!(p.check(nat, srv, &syn(2000, 1_000, false)));
        assert!(p.check(nat, srv, &syn(2000, 2_000, false)));
        // A again: its clock is ahead, it passes.
        assert!(!p.check(nat, srv, &syn(1001, 9_000_100, false)));
        // A connection just behind A's clock: dropped, then its retransmission passes.
        assert!(p.check(nat, srv, &syn(4000, 9_000_050, false)));
        assert!(!p.check(nat, srv, &syn(4000, 9_001_050, false)));
        assert_eq!((p.dropped.len(), p.syns), (1, 3));
        assert_eq!(p.dropped.values().max(), Some(&8_999_005));
        // Another peer address is not affected; wraparound counts as forwards.
        assert!(!p.check(Ipv4Addr::new(10, 200, 0, 3), srv, &syn(3000, 5, false)));
        assert!(!p.check(nat, srv, &syn(1002, 9_001_050u32.wrapping_add(i32::MAX as u32), false)));
    }
}
