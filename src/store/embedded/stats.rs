//! What [`EmbeddedStore::stats`](super::EmbeddedStore::stats) reports, and the sync-latency
//! histogram the log keeps for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A store's figures at one moment, from [`EmbeddedStore::stats`](super::EmbeddedStore::stats).
/// Cheap enough to read on every scrape of a metrics endpoint: one read lock per shard, held
/// for a few loads, and no I/O. It serialises to JSON (serde) as it reads here.
///
/// ```
/// let store = sessile::EmbeddedStore::builder().max_sessions(10_000).build();
/// let stats = store.stats();
/// assert_eq!(stats.sessions, 0);
/// assert_eq!(stats.max_sessions, Some(10_000));
/// assert!(stats.log.is_none(), "an in-memory store has no log");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Sessions held, live or expired but not yet freed.
    pub sessions: usize,
    /// Bytes charged for them (ids, data, cookies and the entries themselves), what
    /// `max_bytes` caps.
    pub bytes: usize,
    /// The `max_sessions` cap, if any.
    pub max_sessions: Option<usize>,
    /// The `max_bytes` cap, if any.
    pub max_bytes: Option<usize>,
    /// Live sessions evicted to make room for others since the store opened.
    pub evicted: u64,
    /// Expired sessions freed since the store opened (by the sweeper, by writes, and those
    /// recovery found expired at open).
    pub expired: u64,
    /// The write-ahead log of a durable store; `None` in memory.
    pub log: Option<LogStats>,
}

/// The durable store's log, in [`Stats::log`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct LogStats {
    /// Log segments on disk (each up to `segment_size` bytes).
    pub segments: usize,
    /// Bytes logged since the newest snapshot: what `snapshot_after_bytes` is checked
    /// against, and what the next open replays.
    pub bytes_since_snapshot: u64,
    /// The last snapshot this process took, if any.
    pub last_snapshot: Option<SnapshotStats>,
    /// Syncs of the log (fsync of its data) since the store opened.
    pub syncs: u64,
    /// Sync latency percentiles, in microseconds (each the upper bound of a power-of-two
    /// bucket, so within 2 × of the true value); 0 before the first sync.
    pub sync_p50_us: u64,
    /// See [`sync_p50_us`](Self::sync_p50_us).
    pub sync_p99_us: u64,
    /// The slowest sync's bucket, in microseconds.
    pub sync_max_us: u64,
    /// Writes waiting for a sync (`FsyncPolicy::Always`).
    pub writes_waiting: usize,
    /// Whether the log refuses every write (a failed sync, or the directory gone).
    pub poisoned: bool,
}

/// A snapshot, in [`LogStats::last_snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SnapshotStats {
    /// Its cut: the log's sequence number it covers (`snap-<cut>.rkyv`).
    pub cut: u64,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Sessions written.
    pub sessions: u64,
    /// Its size on disk.
    pub bytes: u64,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
}

/// Power-of-two buckets of microseconds: bucket `i` counts latencies below `2^i` µs (the
/// last one, everything longer).
const BUCKETS: usize = 32;

/// A lock-free histogram of sync latencies (statistics only: plain std atomics, outside
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
