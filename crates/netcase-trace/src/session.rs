//! A tracing session: some tracepoints, one perf event per tracepoint and CPU, one fixed-size
//! ring per CPU that all of that CPU's events write into.
//!
//! Cost is bounded: the rings are allocated once (`ring_pages` pages per CPU); when userspace
//! falls behind the kernel drops samples and counts them, and [`SessionStats::lost`] reports
//! the count. Dropping the session disables and closes every event.

use crate::error::{Error, Result};
use crate::format::EventFormat;
use crate::perf_record::{self, PerfRecord};
use crate::sys::{self, PerfRing};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

/// Knobs of a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Data pages per CPU ring (a power of two). 64 pages = 256 KiB per CPU.
    pub ring_pages: usize,
    /// How often the loop wakes to check the clock and the stop flag.
    pub tick: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { ring_pages: 64, tick: Duration::from_millis(100) }
    }
}

/// Counters of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SessionStats {
    /// CPUs traced.
    pub cpus: usize,
    /// Samples read.
    pub samples: u64,
    /// Samples the kernel dropped because a ring was full.
    pub lost: u64,
    /// Records that did not decode, or ring states that made no sense (skipped).
    pub malformed: u64,
}

/// One tracepoint hit.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// CLOCK_MONOTONIC time of the event, ns.
    pub time_ns: u64,
    /// The CPU.
    pub cpu: u32,
    /// The tracepoint record (decode it with the event's format).
    pub raw: &'a [u8],
}

/// Parses a sysfs CPU list (`0-3,6,8-9`).
pub fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                    // Bounded: no more than 65,536 CPUs from one range.
                    cpus.extend((a..=b).take(65_536));
                }
            }
            None => {
                if let Ok(c) = part.trim().parse::<u32>() {
                    cpus.push(c);
                }
            }
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// The online CPUs.
pub fn online_cpus() -> Result<Vec<u32>> {
    let path = "/sys/devices/system/cpu/online";
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
    Ok(parse_cpu_list(&text))
}

/// An attached set of tracepoints.
pub struct Session {
    rings: Vec<PerfRing>,
    others: Vec<OwnedFd>,
    scratch: Vec<u8>,
    opts: SessionOptions,
    stats: SessionStats,
    enabled: bool,
    started: Option<Instant>,
}

impl Session {
    /// Opens `events` on every online CPU, disabled. Fails when any cannot be opened (not
    /// root, perf_event_paranoid, a kernel without perf events).
    pub fn open(events: &[&EventFormat], opts: SessionOptions) -> Result<Self> {
        let cpus = online_cpus()?;
        let ring_bytes = opts.ring_pages.saturating_mul(4096);
        let wakeup = u32::try_from(ring_bytes / 2).unwrap_or(u32::MAX);
        let mut rings = Vec::with_capacity(cpus.len());
        let mut others = Vec::new();
        for &cpu in &cpus {
            let mut ring: Option<PerfRing> = None;
            for ev in events {
                let fd = sys::open_tracepoint(ev.id, cpu, wakeup)
                    .map_err(|e| Error::sys(format!("perf_event_open {} (id {}) on cpu {cpu}", ev.name, ev.id), e))?;
                match &ring {
                    None => {
                        ring = Some(
                            PerfRing::map(fd, opts.ring_pages)
                                .map_err(|e| Error::sys(format!("mmap perf ring of cpu {cpu}"), e))?,
                        );
                    }
                    Some(r) => {
                        sys::set_output(&fd, r.fd())
                            .map_err(|e| Error::sys(format!("PERF_EVENT_IOC_SET_OUTPUT {} cpu {cpu}", ev.name), e))?;
                        others.push(fd);
                    }
                }
            }
            rings.extend(ring);
        }
        let stats = SessionStats { cpus: cpus.len(), ..SessionStats::default() };
        Ok(Session { rings, others, scratch: Vec::with_capacity(4096), opts, stats, enabled: false, started: None })
    }

    /// Counters so far.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    fn set_enabled(&mut self, on: bool) -> Result<()> {
        let f = if on { sys::enable } else { sys::disable };
        for fd in self.rings.iter().map(PerfRing::fd).chain(self.others.iter()) {
            f(fd).map_err(|e| Error::sys(if on { "PERF_EVENT_IOC_ENABLE" } else { "PERF_EVENT_IOC_DISABLE" }, e))?;
        }
        self.enabled = on;
        Ok(())
    }

    fn drain(&mut self, f: &mut dyn FnMut(Sample<'_>)) {
        let stats = &mut self.stats;
        let scratch = &mut self.scratch;
        for ring in &mut self.rings {
            let d = ring.drain(scratch, |rec| match perf_record::parse(rec) {
                Ok(PerfRecord::Sample { time_ns, cpu, raw }) => {
                    stats.samples += 1;
                    f(Sample { time_ns, cpu, raw });
                }
                Ok(PerfRecord::Lost { lost }) => stats.lost += lost,
                Ok(PerfRecord::Other(_)) => {}
                Err(_) => stats.malformed += 1,
            });
            stats.malformed += d.corrupt;
        }
    }

    /// Enables the events: samples collect in the rings from now on. [`Session::run`] calls
    /// it when the caller has not.
    pub fn start(&mut self) -> Result<()> {
        if self.started.is_none() {
            self.set_enabled(true)?;
            self.started = Some(Instant::now());
        }
        Ok(())
    }

    /// Hands every sample to `f` until `duration` has passed since [`Session::start`] (forever
    /// when `None`) or `stop()` returns true; then disables the events and drains what is
    /// left. Returns the time traced.
    pub fn run(
        &mut self,
        duration: Option<Duration>,
        stop: &dyn Fn() -> bool,
        f: &mut dyn FnMut(Sample<'_>),
    ) -> Result<Duration> {
        self.start()?;
        let start = self.started.unwrap_or_else(Instant::now);
        loop {
            let elapsed = start.elapsed();
            let remaining = duration.map(|d| d.saturating_sub(elapsed));
            if stop() || remaining == Some(Duration::ZERO) {
                break;
            }
            let wait = remaining.map_or(self.opts.tick, |r| r.min(self.opts.tick));
            let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX).max(1);
            let fds: Vec<&OwnedFd> = self.rings.iter().map(PerfRing::fd).collect();
            sys::poll_readable(&fds, ms).map_err(|e| Error::sys("poll", e))?;
            self.drain(f);
        }
        self.set_enabled(false)?;
        let elapsed = start.elapsed();
        self.drain(f);
        Ok(elapsed)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.enabled {
            let _ = self.set_enabled(false);
        }
        // The rings unmap and every descriptor closes as the fields drop: detached.
    }
}

/// Reads the running kernel's release (`uname -r`), for reports.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), vec![0, 1]);
        assert_eq!(parse_cpu_list("0,2-3,5"), vec![0, 2, 3, 5]);
        assert_eq!(parse_cpu_list(""), Vec::<u32>::new());
        assert_eq!(parse_cpu_list("x,3-a,7"), vec![7]);
        assert_eq!(parse_cpu_list("0-4294967295").len(), 65_536);
    }
}
