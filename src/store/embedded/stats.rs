//! What [`EmbeddedStore::stats`](super::EmbeddedStore::stats) reports.

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
