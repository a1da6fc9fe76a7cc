//! Small fixed-size summaries: a log-scale histogram for RTT samples and datagram sizes.

use serde::Serialize;

/// Sub-buckets per power of two: quantiles are exact to within about ±9 %.
const SUB: u32 = 4;
/// Buckets: 1 µs .. 2^40 µs in quarter-octaves, plus one for 0.
const BUCKETS: usize = (40 * SUB + 1) as usize;

/// A log-scale histogram of durations in microseconds, with exact min and max.
/// It is boxed and created on the first sample, so flows without samples cost nothing.
#[derive(Debug, Clone)]
pub struct LogHistogram {
    counts: Box<[u32; BUCKETS]>,
    n: u64,
    min: u64,
    max: u64,
}

impl Default for LogHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LogHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        LogHistogram { counts: Box::new([0; BUCKETS]), n: 0, min: u64::MAX, max: 0 }
    }

    fn bucket(v: u64) -> usize {
        if v == 0 {
            return 0;
        }
        let lz = 63 - v.leading_zeros(); // floor(log2 v)
        let frac = if lz >= 2 { (v >> (lz - 2)) & 3 } else { (v << (2 - lz)) & 3 };
        let b = 1 + lz * SUB + frac as u32;
        (b as usize).min(BUCKETS - 1)
    }

    fn lower_bound(b: usize) -> u64 {
        if b == 0 {
            return 0;
        }
        let b = (b - 1) as u32;
        let oct = b / SUB;
        let frac = u64::from(b % SUB);
        if oct >= 2 {
            (4 + frac) << (oct - 2)
        } else {
            ((4 + frac) << oct) >> 2
        }
    }

    /// Adds one sample.
    pub fn add(&mut self, v: u64) {
        if let Some(c) = self.counts.get_mut(Self::bucket(v)) {
            *c = c.saturating_add(1);
        }
        self.n += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// No samples.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The `q` quantile (0..=1), approximated by the middle of its bucket and clamped to
    /// the exact min/max.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.n as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (b, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                let lo = Self::lower_bound(b);
                let hi = Self::lower_bound(b + 1).max(lo);
                let mid = lo + (hi - lo) / 2;
                return Some(mid.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// min / median / p99 / max.
    pub fn summary(&self) -> Option<RttSummary> {
        Some(RttSummary {
            samples: self.n,
            min_us: self.min,
            median_us: self.quantile(0.5)?,
            p99_us: self.quantile(0.99)?,
            max_us: self.max,
        })
    }
}

/// A summary of RTT samples (`tcp.analysis.ack_rtt`), in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RttSummary {
    /// Number of samples.
    pub samples: u64,
    /// Smallest sample (exact).
    pub min_us: u64,
    /// Median (±9 %).
    pub median_us: u64,
    /// 99th percentile (±9 %).
    pub p99_us: u64,
    /// Largest sample (exact).
    pub max_us: u64,
}

/// Datagram payload sizes in power-of-two buckets: bucket `i` counts sizes in
/// `[2^(i-1), 2^i)` (bucket 0 counts empty datagrams; the last bucket is 32768..=65535+).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SizeHistogram(pub [u32; 18]);

impl SizeHistogram {
    /// Adds one size.
    pub fn add(&mut self, len: u32) {
        let b = (32 - len.leading_zeros()) as usize;
        let b = b.min(self.0.len() - 1);
        if let Some(c) = self.0.get_mut(b) {
            *c = c.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_close() {
        let mut h = LogHistogram::new();
        for v in 1..=1000u64 {
            h.add(v * 100);
        }
        let s = h.summary().unwrap();
        assert_eq!(s.min_us, 100);
        assert_eq!(s.max_us, 100_000);
        assert!((45_000..=55_000).contains(&s.median_us), "{s:?}");
        assert!((90_000..=100_000).contains(&s.p99_us), "{s:?}");
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for v in 0..100_000u64 {
            let b = LogHistogram::bucket(v);
            assert!(b >= last);
            assert!(LogHistogram::lower_bound(b) <= v, "{v} {b}");
            last = b;
        }
        let _ = LogHistogram::bucket(u64::MAX);
    }

    #[test]
    fn sizes() {
        let mut s = SizeHistogram::default();
        s.add(0);
        s.add(1);
        s.add(512);
        s.add(70_000);
        assert_eq!(s.0[0], 1);
        assert_eq!(s.0[1], 1);
        assert_eq!(s.0[10], 1);
        assert_eq!(s.0[17], 1);
    }
}
