//! How a store is made: its options ([`EmbeddedStoreBuilder`]), in memory or opened on a
//! directory (recovering what a previous process left there), and the store's constructors.

use std::sync::Arc;
use std::time::Duration;

use super::background::Background;
use super::context::Limits;
use super::durable::recovery::RecoveryReport;
use super::durable::FsyncPolicy;
use super::durable::{self, Durable, DurableOptions, Op};
use super::policy::Caps;
use super::shard::Shard;
use super::store::{purge_shards, Core, EmbeddedStore};
use crate::clock;
use crate::error::StoreError;

/// Options of an [`EmbeddedStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct EmbeddedStoreBuilder {
    shards: usize,
    max_sessions: Option<usize>,
    max_bytes: Option<usize>,
    default_ttl: Duration,
    sweep_interval: Option<Duration>,
    durable: DurableOptions,
}

impl Default for EmbeddedStoreBuilder {
    fn default() -> Self {
        EmbeddedStoreBuilder {
            shards: 64,
            max_sessions: None,
            max_bytes: None,
            default_ttl: Duration::from_secs(86_400),
            sweep_interval: Some(Duration::from_millis(250)),
            durable: DurableOptions::default(),
        }
    }
}

impl EmbeddedStoreBuilder {
    /// The number of shards, rounded up to a power of two (default 64).
    ///
    /// ```
    /// let store = sessile::EmbeddedStore::builder().shards(128).build();
    /// ```
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = n.clamp(1, 1 << 16).next_power_of_two();
        self
    }

    /// At most this many sessions (at least 1) in the whole store. A write past it evicts
    /// first the sessions that never came back (while they are more than an eighth of a
    /// shard: a flood of anonymous visitors), oldest first, then the sessions closest to
    /// expiry; never the session being written. Writes racing at the same moment may pass
    /// the cap by what they add, until the next write.
    ///
    /// In a durable store an eviction is logged like a destroy; if the log refuses it, the
    /// session is kept and the write that needed the room fails with the log's error
    /// (sessions evicted and logged before that stay evicted); so an evicted session never
    /// comes back after a restart.
    ///
    /// ```
    /// let store = sessile::EmbeddedStore::builder().max_sessions(1_000_000).build();
    /// ```
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = Some(n);
        self
    }

    /// At most this many bytes of sessions (ids, data and a fixed per-session charge) in the
    /// whole store, evicting as [`max_sessions`](Self::max_sessions) does. A session larger
    /// than the whole cap is refused with [`StoreError::Full`], and nothing is stored.
    ///
    /// ```
    /// let store = sessile::EmbeddedStore::builder().max_bytes(512 << 20).build();
    /// ```
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = Some(n);
        self
    }

    /// How long a session whose cookie has no expiry (a browser-session cookie) lives
    /// without a request (default one day).
    ///
    /// ```
    /// let store = sessile::EmbeddedStore::builder()
    ///     .default_ttl(std::time::Duration::from_secs(3600))
    ///     .build();
    /// ```
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// How often the background sweeper frees expired sessions (default 250 ms); `None`
    /// runs no thread (expired sessions are then freed by writes and
    /// [`EmbeddedStore::purge_expired`], and are never returned either way).
    ///
    /// ```
    /// let store = sessile::EmbeddedStore::builder().sweep_interval(None).build();
    /// ```
    pub fn sweep_interval(mut self, every: Option<Duration>) -> Self {
        self.sweep_interval = every;
        self
    }

    /// The log's fsync policy when opened on a directory (default
    /// [`FsyncPolicy::EverySec`]).
    ///
    /// ```
    /// let builder = sessile::EmbeddedStore::builder().fsync(sessile::FsyncPolicy::Always);
    /// ```
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.durable.fsync = policy;
        self
    }

    /// The size of each log segment file (default 16 MiB). Segments are allocated whole
    /// when created, and the next one is prepared while the current one is written, so two
    /// segments' worth of disk is allocated ahead; a sealed segment is cut to what it holds.
    ///
    /// ```
    /// let builder = sessile::EmbeddedStore::builder().segment_size(16 << 20);
    /// ```
    pub fn segment_size(mut self, bytes: usize) -> Self {
        self.durable.segment_size = bytes.max(4096);
        self
    }

    /// Take a snapshot once this many log bytes were written since the last one (default
    /// 64 MiB), counted from the newest snapshot on disk: the log that earlier processes left
    /// counts, so a store restarted often still snapshots (soon after an open that finds the
    /// log since the snapshot this long).
    ///
    /// ```
    /// let builder = sessile::EmbeddedStore::builder().snapshot_after_bytes(256 << 20);
    /// ```
    pub fn snapshot_after_bytes(mut self, bytes: u64) -> Self {
        self.durable.snapshot_bytes = bytes;
        self
    }

    /// Also take a snapshot when this much time has passed since the last one and the log
    /// has grown (default one hour; `None`: by size only). The time counts from the newest
    /// snapshot on disk (its file's modification time), not from the open.
    ///
    /// ```
    /// let builder = sessile::EmbeddedStore::builder()
    ///     .snapshot_interval(Some(std::time::Duration::from_secs(600)));
    /// ```
    pub fn snapshot_interval(mut self, every: Option<Duration>) -> Self {
        self.durable.snapshot_interval = every;
        self
    }

    /// Touch coalescing: a touch that only moves a session's expiry is logged when it moves
    /// the logged expiry by more than this (default 1 s) or by more than 1 % of the cookie's
    /// `maxAge`, whichever is larger. After a crash, a session's expiry can be that much
    /// earlier than it was in memory; nothing else is lost.
    ///
    /// ```
    /// let builder = sessile::EmbeddedStore::builder()
    ///     .touch_log_interval(std::time::Duration::from_secs(5));
    /// ```
    pub fn touch_log_interval(mut self, window: Duration) -> Self {
        self.durable.touch_interval_ms = window.as_millis().min(i64::MAX as u128) as i64;
        self
    }

    /// Salvage on open: when the log is corrupt (a bad record followed by good ones), keep the
    /// good prefix and every intact record after the bad one (found again by resynchronising
    /// on the next record that checks out, see `docs/FORMAT.md`), move the bad segment files
    /// aside (`*.corrupt`) and take a snapshot, instead of refusing to open (default off).
    /// [`EmbeddedStore::recovery_report`] lists what was kept and set aside.
    ///
    /// ```
    /// let builder = sessile::EmbeddedStore::builder().salvage(true);
    /// ```
    pub fn salvage(mut self, on: bool) -> Self {
        self.durable.salvage = on;
        self
    }

    /// How many snapshots the durable store keeps: 2 (the default) or 1 (any other number is
    /// taken as the nearer of these).
    ///
    /// With 2, the previous snapshot and the log from its cut stay beside the newest one, so
    /// if the newest snapshot is damaged on disk after it was written and checked, opening
    /// falls back to the previous one and loses nothing. With 1, the disk holds about the
    /// live data once less, but a damaged sole snapshot makes opening fail with an error
    /// naming it; [`salvage`](Self::salvage) then opens with what the log after it holds.
    ///
    /// ```
    /// let builder = sessile::EmbeddedStore::builder().keep_snapshots(1);
    /// ```
    pub fn keep_snapshots(mut self, n: usize) -> Self {
        self.durable.keep_snapshots = n.clamp(1, 2);
        self
    }

    fn limits(&self) -> Limits {
        Limits {
            default_ttl_ms: self.default_ttl.as_millis().min(i64::MAX as u128) as i64,
            touch_log_ms: self.durable.touch_interval_ms,
        }
    }

    fn start(
        self,
        shards: Box<[Shard]>,
        hasher: ahash::RandomState,
        durable: Option<(Durable, RecoveryReport)>,
    ) -> EmbeddedStore {
        let (durable, recovery) = durable.unzip();
        let core = Arc::new(Core {
            limits: self.limits(),
            shards,
            hasher,
            durable,
            recovery,
        });
        let mut background = Background::default();
        background.sweeper(&core, self.sweep_interval);
        background.snapshotter(&core, self.durable.snapshot_interval);
        EmbeddedStore {
            background: Arc::new(background),
            core,
        }
    }

    /// The shards, sharing the caps if there are any.
    fn new_shards(&self) -> Box<[Shard]> {
        let caps = Caps::new(self.max_sessions, self.max_bytes).map(Arc::new);
        (0..self.shards).map(|_| Shard::new(caps.clone())).collect()
    }

    /// Builds an in-memory store (and starts its sweeper thread, if any).
    pub fn build(self) -> EmbeddedStore {
        let shards = self.new_shards();
        self.start(shards, routing_hasher(), None)
    }

    /// Opens a durable store on `dir` (created 0700 if missing; an existing one owned by this
    /// user is tightened to 0700): recovers the sessions a previous process left there, then
    /// logs every change. A second process cannot open the same directory (it is locked
    /// itself, not only its `LOCK` file).
    ///
    /// # Errors
    /// The directory is locked by another process, cannot be read or written, or holds a
    /// corrupt log (unless [`salvage`](Self::salvage) is on).
    ///
    /// ```no_run
    /// let store = sessile::EmbeddedStore::builder()
    ///     .fsync(sessile::FsyncPolicy::EverySec)
    ///     .open("/var/lib/myapp/sessions")?;
    /// # Ok::<(), sessile::StoreError>(())
    /// ```
    ///
    /// Unix only: the durable store relies on file modes, `fallocate`, `statvfs` and the
    /// directory's own lock. On other platforms [`build`](Self::build) gives the in-memory
    /// store.
    #[cfg(unix)]
    #[cfg_attr(docsrs, doc(cfg(unix)))]
    pub fn open(self, dir: impl AsRef<std::path::Path>) -> Result<EmbeddedStore, StoreError> {
        self.open_with(Arc::new(durable::fs::DiskStorage), dir.as_ref(), true)
    }

    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn open_with(
        self,
        storage: Arc<dyn durable::storage::Storage>,
        dir: &std::path::Path,
        lock: bool,
    ) -> Result<EmbeddedStore, StoreError> {
        let started = std::time::Instant::now();
        let shards = self.new_shards();
        let hasher = routing_hasher();
        let target = Recovering {
            shards: &shards,
            hasher: &hasher,
        };
        let (durable, mut report) =
            Durable::open(storage, dir, self.durable.clone(), lock, &target)?;
        // Sessions whose expiry passed while the process was down are dropped now.
        let now = clock::now_ms();
        report.expired = purge_shards(&shards, now);
        report.sessions = shards.iter().map(|s| s.count_live(now)).sum();
        let salvaged = !report.salvaged.is_empty();
        report.duration = started.elapsed();
        crate::events::recovered(dir, &report);
        // Recovered entries were routed with `hasher`: the store must keep routing with it.
        let store = self.start(shards, hasher, Some((durable, report)));
        if salvaged {
            // The good records of the segments moved aside live only in memory now: write
            // them to a snapshot before anything else.
            store.snapshot()?;
        }
        Ok(store)
    }
}

/// The hasher that routes ids to shards: randomly seeded, except under loom, whose models
/// must route the same way on every run.
pub(super) fn routing_hasher() -> ahash::RandomState {
    #[cfg(sessile_loom)]
    return ahash::RandomState::with_seeds(1, 2, 3, 4);
    #[cfg(not(sessile_loom))]
    ahash::RandomState::new()
}

/// The shards being filled by recovery, routed as the store will route (and by the read-only
/// inspection's replay, `durable/inspect.rs`).
pub(super) struct Recovering<'a> {
    pub(super) shards: &'a [Shard],
    pub(super) hasher: &'a ahash::RandomState,
}

impl durable::recovery::Replay for Recovering<'_> {
    fn shards(&self) -> usize {
        self.shards.len()
    }

    fn shard_of(&self, sid: &str) -> usize {
        (self.hasher.hash_one(sid) as usize) & (self.shards.len() - 1)
    }

    fn apply(&self, shard: usize, op: &Op) {
        if let Some(s) = self.shards.get(shard) {
            s.replay(op);
        }
    }

    fn expect(&self, shard: usize, sessions: usize, exact: bool) {
        if let Some(s) = self.shards.get(shard) {
            // An exact count sizes the slab too; an estimate only the index (a slot of it
            // costs about 6 bytes, one of the slab 80).
            s.reserve(sessions, exact);
        }
    }

    fn data(&self, shard: usize, sid: &str) -> Option<crate::record::Data> {
        // No deadline is before `i64::MIN`: expired or not, the entry is returned.
        Some(self.shards.get(shard)?.get(sid, i64::MIN)?.data)
    }
}

impl Default for EmbeddedStore {
    fn default() -> Self {
        Self::new()
    }
}

impl EmbeddedStore {
    /// An in-memory store with the default options.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A durable store on `dir` with the default options (fsync every second): see
    /// [`EmbeddedStoreBuilder::open`].
    ///
    /// ```no_run
    /// let store = sessile::EmbeddedStore::open("/var/lib/myapp/sessions")?;
    /// # Ok::<(), sessile::StoreError>(())
    /// ```
    #[cfg(unix)]
    #[cfg_attr(docsrs, doc(cfg(unix)))]
    pub fn open(dir: impl AsRef<std::path::Path>) -> Result<Self, StoreError> {
        Self::builder().open(dir)
    }

    /// Options for a new store.
    pub fn builder() -> EmbeddedStoreBuilder {
        EmbeddedStoreBuilder::default()
    }
}
