//! A userspace Ethernet relay for labs that need delay or chosen loss (the kernel has no
//! netem): it sits in a middle namespace, reads every frame arriving on one veth with an
//! AF_PACKET socket and writes it to the other after a fixed delay, or drops it when a drop
//! rule says so. Both directions run on their own thread; both stop on a flag, and each
//! forwards at most [`MAX_FRAMES`] frames.

use crate::capture::packet_socket;
use crate::pkt;
use anyhow::Result;
use std::collections::{HashSet, VecDeque};
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
}

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
}

/// A running relay.
pub struct Relay {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Result<()>>>,
    forwarded: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

impl Drop for Relay {
    /// A relay dropped without [`Relay::stop`] (a lab that failed) stops its threads.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct DropState {
    rules: Vec<DropRule>,
    data_seen: u32,
    dropped_seq: HashSet<u32>,
    first_drop: Option<Instant>,
}

impl DropState {
    fn should_drop(&mut self, frame: &[u8]) -> bool {
        let Some(t) = pkt::parse(frame).and_then(|p| p.tcp) else { return false };
        if t.len == 0 {
            return false;
        }
        for r in &self.rules {
            let (dport, n, hold) = match *r {
                DropRule::NthData { dport, n } => (dport, n, None),
                DropRule::NthDataFor { dport, n, hold } => (dport, n, Some(hold)),
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
            let mut st =
                DropState { rules: cfg.drops.clone(), data_seen: 0, dropped_seq: HashSet::new(), first_drop: None };
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
                Ok(())
            }));
        }
        Ok(Relay { stop, threads, forwarded, dropped })
    }

    /// Stops the relay and returns its counts.
    pub fn stop(mut self) -> RelayStats {
        self.stop.store(true, Ordering::Relaxed);
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
        RelayStats { forwarded: self.forwarded.load(Ordering::Relaxed), dropped: self.dropped.load(Ordering::Relaxed) }
    }
}
