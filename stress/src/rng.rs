//! The storms' random choices, from a seed: the run's seed is printed so
//! the choices (not the timing) of a run can be repeated. A thin layer over
//! `fastrand` with the few shapes the storms use.

#![forbid(unsafe_code)]

use std::time::Duration;

/// A seeded generator.
#[derive(Debug, Clone)]
pub struct Rng(fastrand::Rng);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(fastrand::Rng::with_seed(seed))
    }

    /// Uniform in `lo..=hi` (`lo` if the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        self.0.u64(lo..=hi)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.0.u64(0..100) < percent
    }

    /// An index below `n` (0 if `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.usize(0..n.max(1))
    }

    /// A duration uniform in `lo..=hi` microseconds.
    pub fn micros(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_micros(self.range(lo, hi))
    }

    /// Picks an index with the given weights (not all zero).
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.0.u64(0..total.max(1));
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

/// A seed when none is given (fastrand seeds itself from the clock, the
/// thread and the process).
pub fn fresh_seed() -> u64 {
    fastrand::u64(..)
}
