//! A lock-free histogram of call latencies, for the stores' stats (the durable log's syncs,
//! the Redis store's calls).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Power-of-two buckets of microseconds: bucket `i` counts latencies below `2^i` µs (the
/// last one, everything longer).
const BUCKETS: usize = 32;

/// A lock-free histogram of latencies (statistics only: plain std atomics, outside
/// what the loom models explore).
#[derive(Debug)]
pub(crate) struct Latencies([AtomicU64; BUCKETS]);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Latencies {
    pub(crate) fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = (u64::BITS - us.leading_zeros()) as usize;
        self.0[bucket.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// (count, p50, p99, max), the percentiles as their bucket's upper bound in µs.
    pub(crate) fn summary(&self) -> (u64, u64, u64, u64) {
        let counts: Vec<u64> = self.0.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let n: u64 = counts.iter().sum();
        let upper = |i: usize| 1u64 << i;
        let at = |q: f64| {
            let rank = ((n as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return upper(i);
                }
            }
            0
        };
        if n == 0 {
            return (0, 0, 0, 0);
        }
        let max = counts.iter().rposition(|&c| c > 0).map_or(0, upper);
        (n, at(0.5), at(0.99), max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_the_upper_bounds_of_their_buckets() {
        let l = Latencies::default();
        assert_eq!(l.summary(), (0, 0, 0, 0));
        for _ in 0..98 {
            l.record(Duration::from_micros(100)); // below 128
        }
        l.record(Duration::from_millis(3)); // below 4096
        l.record(Duration::from_secs(2)); // below 2^21
        let (n, p50, p99, max) = l.summary();
        assert_eq!(n, 100);
        assert_eq!(p50, 128);
        assert_eq!(p99, 4096);
        assert_eq!(max, 1 << 21);
    }
}
