//! Latency statistics: nearest-rank percentiles and a wrk-like histogram.

use serde::Serialize;

/// Percentiles of a set of latencies, in milliseconds (nearest rank: p50 of 1..=10 is 5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// How many samples.
    pub n: u64,
    /// The smallest.
    pub min_ms: f64,
    /// The median.
    pub p50_ms: f64,
    /// 75th percentile.
    pub p75_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// The largest.
    pub max_ms: f64,
    /// The mean.
    pub mean_ms: f64,
    /// The standard deviation (population).
    pub stdev_ms: f64,
}

impl Percentiles {
    /// The percentiles of `samples` (milliseconds); `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Percentiles> {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let rank = |p: f64| -> f64 {
            let i = ((p / 100.0) * n as f64).ceil() as usize;
            v.get(i.saturating_sub(1).min(n - 1)).copied().unwrap_or(0.0)
        };
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        Some(Percentiles {
            n: n as u64,
            min_ms: v.first().copied().unwrap_or(0.0),
            p50_ms: rank(50.0),
            p75_ms: rank(75.0),
            p90_ms: rank(90.0),
            p99_ms: rank(99.0),
            max_ms: v.last().copied().unwrap_or(0.0),
            mean_ms: mean,
            stdev_ms: var.sqrt(),
        })
    }
}

/// One bar of a latency histogram: the samples above the previous bound and at most `le_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    /// Upper bound in milliseconds (inclusive); the last bucket has no bound (`null`).
    pub le_ms: Option<f64>,
    /// Samples in it.
    pub count: u64,
}

/// The bucket bounds, in milliseconds: 1-2-5 steps from 0.1 ms to 10 s.
const BOUNDS: [f64; 16] =
    [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0];

/// A histogram of `samples` (milliseconds) over fixed 1-2-5 buckets, trimmed to the range
/// that holds samples (empty when there are none).
pub fn histogram(samples: &[f64]) -> Vec<Bucket> {
    let mut counts = [0u64; BOUNDS.len() + 1];
    for &s in samples.iter().filter(|x| x.is_finite()) {
        let i = BOUNDS.iter().position(|b| s <= *b).unwrap_or(BOUNDS.len());
        if let Some(c) = counts.get_mut(i) {
            *c += 1;
        }
    }
    let first = counts.iter().position(|c| *c > 0);
    let last = counts.iter().rposition(|c| *c > 0);
    let (Some(first), Some(last)) = (first, last) else { return Vec::new() };
    (first..=last)
        .map(|i| Bucket { le_ms: BOUNDS.get(i).copied(), count: counts.get(i).copied().unwrap_or(0) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let p = Percentiles::of(&v).unwrap();
        assert_eq!((p.n, p.min_ms, p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms), (10, 1.0, 5.0, 9.0, 10.0, 10.0));
        assert!((p.mean_ms - 5.5).abs() < 1e-9);
        assert!(Percentiles::of(&[]).is_none());
        let one = Percentiles::of(&[3.0]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms), (3.0, 3.0));
    }

    #[test]
    fn histogram_is_trimmed_to_the_samples() {
        let h = histogram(&[0.05, 3.0, 4.0, 20000.0]);
        assert_eq!(h.first(), Some(&Bucket { le_ms: Some(0.1), count: 1 }));
        assert_eq!(h.iter().map(|b| b.count).sum::<u64>(), 4);
        assert_eq!(h.last(), Some(&Bucket { le_ms: None, count: 1 }));
        assert!(histogram(&[]).is_empty());
    }
}
