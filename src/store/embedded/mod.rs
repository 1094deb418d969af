//! The embedded store, the default: sessions in this process's memory, lock-sharded.
//!
//! - **Shards.** Ids hash (ahash) to one of N shards, each a map under its own
//!   reader-writer lock, so requests of different sessions rarely meet on a lock.
//! - **Expiry.** Every entry carries its deadline as an atomic, checked on every read: an
//!   expired session is never returned. A touch that only moves the deadline takes the read
//!   lock. A per-shard wheel of one-second buckets finds expired entries without scanning
//!   (`expiry`); a background thread sweeps due buckets in small budgets, and writes sweep a
//!   little as they pass. Memory is given back as sessions expire.
//! - **Idle expiry for browser-session cookies.** A session whose cookie has no `expires`
//!   (express's `maxAge: null`) would live forever in express's MemoryStore. Here it expires
//!   after [`EmbeddedStoreBuilder::default_ttl`] without a request (default one day, as
//!   connect-redis does), so the store never leaks.
//! - **Caps.** Optional limits on sessions and bytes, for the whole store; past them the
//!   sessions that never came back go first, then those closest to expiry (`policy.rs`).
//!
//! Every mutation passes through one method per kind (`set`, `apply`, `touch`, `destroy`,
//! `clear`) so that a write-ahead log can record them in one place.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock;
use crate::error::StoreError;
use crate::record::{Changes, CookieRecord, Record};
use crate::store::{Applied, SessionStore};
use std::sync::Arc;

pub(crate) mod durable;
mod expiry;
mod index;
mod policy;
mod shape;
mod shard;
mod slab;

pub use durable::recovery::RecoveryReport;
pub use durable::FsyncPolicy;
use durable::{Durable, DurableOptions, Op, OpRef};
use shard::{Limits, Shard};

/// How many keys one sweep of one shard may look at while holding its write lock.
const SWEEP_BUDGET: usize = 256;

/// The default store: in memory, sharded, with idle expiry and optional caps.
///
/// Cloning gives another handle to the same sessions.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), sessile::StoreError> {
/// use sessile::{EmbeddedStore, Record, SessionStore};
///
/// let store = EmbeddedStore::new();
/// store.set("sid", &Record::default()).await?;
/// assert!(store.get("sid").await?.is_some());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EmbeddedStore {
    core: Arc<Core>,
}

struct Core {
    shards: Box<[Shard]>,
    hasher: ahash::RandomState,
    limits: Limits,
    durable: Option<Durable>,
    /// What opening found (durable stores only).
    recovery: Option<RecoveryReport>,
}

impl Default for EmbeddedStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (entries, bytes) = self.usage();
        f.debug_struct("EmbeddedStore")
            .field("shards", &self.core.shards.len())
            .field("entries", &entries)
            .field("bytes", &bytes)
            .finish()
    }
}

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
        #[cfg(not(sessile_loom))]
        {
            if let Some(every) = self.sweep_interval {
                spawn_sweeper(&core, every);
            }
            if core.durable.is_some() {
                spawn_snapshotter(&core, self.durable.snapshot_interval);
            }
        }
        EmbeddedStore { core }
    }

    /// The shards, sharing the caps if there are any.
    fn new_shards(&self) -> Box<[Shard]> {
        let caps = policy::Caps::new(self.max_sessions, self.max_bytes).map(Arc::new);
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
    pub fn open(self, dir: impl AsRef<std::path::Path>) -> Result<EmbeddedStore, StoreError> {
        self.open_with(Arc::new(durable::fs::DiskStorage), dir.as_ref(), true)
    }

    pub(crate) fn open_with(
        self,
        storage: Arc<dyn durable::fs::Storage>,
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
fn routing_hasher() -> ahash::RandomState {
    #[cfg(sessile_loom)]
    return ahash::RandomState::with_seeds(1, 2, 3, 4);
    #[cfg(not(sessile_loom))]
    ahash::RandomState::new()
}

/// The shards being filled by recovery, routed as the store will route.
struct Recovering<'a> {
    shards: &'a [Shard],
    hasher: &'a ahash::RandomState,
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

#[cfg(not(sessile_loom))]
fn spawn_sweeper(core: &Arc<Core>, every: Duration) {
    let weak = Arc::downgrade(core);
    let spawned = std::thread::Builder::new()
        .name("sessile-sweeper".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let Some(core) = weak.upgrade() else { return };
            core.purge_expired(clock::now_ms());
        });
    // Without a thread, writes still sweep and reads still never see expired sessions.
    drop(spawned);
}

#[cfg(not(sessile_loom))]
fn spawn_snapshotter(core: &Arc<Core>, interval: Option<Duration>) {
    let weak = Arc::downgrade(core);
    let spawned = std::thread::Builder::new()
        .name("sessile-snapshot".into())
        .spawn(move || {
            // The clock and the bytes count from the newest snapshot on disk, not from this
            // open: a store restarted more often than the thresholds still snapshots (at the
            // first check after an open that finds the log since it long).
            let mut last = std::time::Instant::now();
            let mut head_start = weak
                .upgrade()
                .and_then(|c| c.durable.as_ref().and_then(Durable::age_at_open))
                .unwrap_or_default();
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let Some(core) = weak.upgrade() else { return };
                let Some(d) = &core.durable else { return };
                let grown = d.bytes_since_snapshot();
                let by_size = grown >= d.opts.snapshot_bytes;
                let age = head_start + last.elapsed();
                let by_age = interval.is_some_and(|i| age >= i) && grown > 0;
                if by_size || by_age {
                    // A failed snapshot leaves the previous one and the log in place; the
                    // next attempt comes with the next check.
                    let _ = core.snapshot();
                    last = std::time::Instant::now();
                    head_start = Duration::ZERO;
                }
            }
        });
    drop(spawned);
}

impl Core {
    fn shard(&self, sid: &str) -> &Shard {
        let h = self.hasher.hash_one(sid) as usize;
        &self.shards[h & (self.shards.len() - 1)]
    }

    fn log(&self) -> Option<&durable::wal::Wal> {
        self.durable.as_ref().map(|d| &*d.wal)
    }

    async fn durable(&self, seq: Option<u64>) -> Result<(), StoreError> {
        match (seq, &self.durable) {
            (Some(seq), Some(d)) => d.wal.wait_durable(seq).await,
            _ => Ok(()),
        }
    }

    fn snapshot(&self) -> Result<Option<u64>, StoreError> {
        let Some(d) = &self.durable else {
            return Ok(None);
        };
        let cut = d.snapshot(|| {
            let now = clock::now_ms();
            // Each shard is copied a slice at a time, so no lock is held for long.
            self.shards.iter().flat_map(move |s| s.live_copy(now))
        })?;
        Ok(Some(cut))
    }

    /// The sweeper's pass: due buckets only (loom models have no sweeper).
    #[cfg_attr(sessile_loom, allow(dead_code))]
    fn purge_expired(&self, now_ms: i64) -> usize {
        let mut freed = 0;
        for shard in self.shards.iter() {
            loop {
                freed += shard.sweep(now_ms, SWEEP_BUDGET);
                // A sweep that only moved touched sessions to later buckets frees nothing,
                // yet expired sessions may wait behind them: go on while a bucket is due.
                if !shard.has_due(now_ms) {
                    break;
                }
            }
        }
        freed
    }
}

/// Frees every expired session of `shards` now ([`EmbeddedStore::purge_expired`], and
/// recovery's purge before the store starts); returns how many were freed.
fn purge_shards(shards: &[Shard], now: i64) -> usize {
    let mut freed = 0;
    for shard in shards {
        loop {
            freed += shard.sweep(now, SWEEP_BUDGET);
            // A sweep that only moved touched sessions to later buckets frees nothing, yet
            // expired sessions may wait behind them: go on while a bucket is due.
            if !shard.has_due(now) {
                break;
            }
        }
        // The sweeps free whole seconds once they have passed; the current one is scanned.
        freed += shard.purge_current(now);
    }
    freed
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
    pub fn open(dir: impl AsRef<std::path::Path>) -> Result<Self, StoreError> {
        Self::builder().open(dir)
    }

    /// Options for a new store.
    pub fn builder() -> EmbeddedStoreBuilder {
        EmbeddedStoreBuilder::default()
    }

    /// The live record under `sid` (synchronous form of [`SessionStore::get`]).
    pub fn get_now(&self, sid: &str) -> Option<Record> {
        self.core.shard(sid).get(sid, clock::now_ms())
    }

    /// Insert or replace (synchronous form of [`SessionStore::set`]). On a durable store
    /// the record is in the log when this returns; under [`FsyncPolicy::Always`] use the
    /// async trait method to also wait for the sync.
    ///
    /// # Errors
    /// Only a durable store fails: the log refused the write (disk full, poisoned by an
    /// fsync error); the store is then unchanged.
    pub fn set_now(&self, sid: &str, record: &Record) -> Result<(), StoreError> {
        self.set_inner(sid, record).map(|_| ())
    }

    /// Apply field changes (synchronous form of [`SessionStore::apply`]).
    pub fn apply_now(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError> {
        self.apply_inner(sid, changes).map(|(a, _)| a)
    }

    /// Store a new cookie/expiry (synchronous form of [`SessionStore::touch`]).
    pub fn touch_now(&self, sid: &str, cookie: &CookieRecord) -> Result<(), StoreError> {
        self.touch_inner(sid, cookie).map(|_| ())
    }

    /// Remove (synchronous form of [`SessionStore::destroy`]).
    pub fn destroy_now(&self, sid: &str) -> Result<(), StoreError> {
        self.core
            .shard(sid)
            .destroy(sid, self.core.log())
            .map(|_| ())
    }

    fn set_inner(&self, sid: &str, record: &Record) -> Result<Option<u64>, StoreError> {
        let now = clock::now_ms();
        let deadline = self.core.limits.deadline(&record.cookie, now);
        let (shard, log) = (self.core.shard(sid), self.core.log());
        policy::with_room(&self.core.shards, shard, now, log, |room| {
            shard.set(sid, record, deadline, now, log, room)
        })
    }

    fn apply_inner(
        &self,
        sid: &str,
        changes: &Changes,
    ) -> Result<(Applied, Option<u64>), StoreError> {
        let now = clock::now_ms();
        let deadline = self.core.limits.deadline(&changes.cookie, now);
        let (shard, log) = (self.core.shard(sid), self.core.log());
        policy::with_room(&self.core.shards, shard, now, log, |room| {
            shard.apply(sid, changes, deadline, now, log, room)
        })
    }

    fn touch_inner(&self, sid: &str, cookie: &CookieRecord) -> Result<Option<u64>, StoreError> {
        let now = clock::now_ms();
        let deadline = self.core.limits.deadline(cookie, now);
        self.core.shard(sid).touch(
            sid,
            cookie,
            deadline,
            &self.core.limits,
            now,
            self.core.log(),
        )
    }

    fn clear_inner(&self) -> Result<Option<u64>, StoreError> {
        let mut guards: Vec<_> = self.core.shards.iter().map(Shard::lock_for_clear).collect();
        let seq = match self.core.log() {
            Some(w) => Some(w.append(OpRef::Clear)?),
            None => None,
        };
        guards.iter_mut().for_each(|g| g.clear());
        Ok(seq)
    }

    /// Takes a snapshot now (durable stores only; returns the log cut it covers). Snapshots
    /// are also taken automatically by size and age. When nothing was logged since the
    /// newest snapshot, nothing is written and its cut is returned.
    pub fn snapshot(&self) -> Result<Option<u64>, StoreError> {
        self.core.snapshot()
    }

    /// Syncs the log now, whatever the fsync policy (durable stores only).
    pub fn flush(&self) -> Result<(), StoreError> {
        match &self.core.durable {
            Some(d) => d.flush(),
            None => Ok(()),
        }
    }

    /// What opening the store's directory found and did: the snapshot used, records
    /// replayed, a torn tail cut (and where its bytes were moved), segments salvaged,
    /// sessions restored and expired, the time it took. `None` for a store in memory.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("sessile-doc-report-{}", std::process::id()));
    /// let store = sessile::EmbeddedStore::open(&dir)?;
    /// let report = store.recovery_report().expect("a durable store");
    /// assert_eq!((report.replayed, report.torn_bytes), (0, 0));
    /// assert!(sessile::EmbeddedStore::new().recovery_report().is_none());
    /// # drop(store);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), sessile::StoreError>(())
    /// ```
    pub fn recovery_report(&self) -> Option<&RecoveryReport> {
        self.core.recovery.as_ref()
    }

    /// Whether the store logs to a directory.
    pub fn is_durable(&self) -> bool {
        self.core.durable.is_some()
    }

    /// Frees every expired session now; returns how many were freed.
    pub fn purge_expired(&self) -> usize {
        purge_shards(&self.core.shards, clock::now_ms())
    }

    /// Entries held (including expired ones not yet freed) and bytes charged against
    /// [`EmbeddedStoreBuilder::max_bytes`].
    pub fn usage(&self) -> (usize, usize) {
        self.core
            .shards
            .iter()
            .map(Shard::usage)
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
    }
}

#[async_trait]
impl SessionStore for EmbeddedStore {
    async fn get(&self, sid: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.get_now(sid))
    }

    async fn set(&self, sid: &str, record: &Record) -> Result<(), StoreError> {
        let seq = self.set_inner(sid, record)?;
        self.core.durable(seq).await
    }

    async fn apply(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError> {
        let (applied, seq) = self.apply_inner(sid, changes)?;
        self.core.durable(seq).await?;
        Ok(applied)
    }

    async fn destroy(&self, sid: &str) -> Result<(), StoreError> {
        let seq = self.core.shard(sid).destroy(sid, self.core.log())?;
        self.core.durable(seq).await
    }

    async fn touch(&self, sid: &str, cookie: &CookieRecord) -> Result<(), StoreError> {
        let seq = self.touch_inner(sid, cookie)?;
        self.core.durable(seq).await
    }

    async fn all(&self) -> Result<BTreeMap<String, Record>, StoreError> {
        let now = clock::now_ms();
        let mut out = BTreeMap::new();
        for shard in self.core.shards.iter() {
            shard.for_each_live(now, |k, r| {
                out.insert(k.to_owned(), r);
            });
        }
        Ok(out)
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let seq = self.clear_inner()?;
        self.core.durable(seq).await
    }

    async fn len(&self) -> Result<usize, StoreError> {
        let now = clock::now_ms();
        Ok(self.core.shards.iter().map(|s| s.count_live(now)).sum())
    }
}

/// Entry points for the fuzz targets in `fuzz/`; not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    use super::durable::{format, snapshot};

    /// Decodes log records from `bytes` as recovery does; returns how many were valid.
    pub fn decode_log(bytes: &[u8]) -> usize {
        let mut at = 0;
        let mut n = 0;
        while at < bytes.len() {
            match format::decode(&bytes[at..]) {
                format::Decoded::Record { len, .. } => {
                    n += 1;
                    at += len;
                }
                _ => break,
            }
        }
        n
    }

    /// Encodes a record for `sid` and `data`, so a fuzz target can check that what is
    /// written decodes back.
    pub fn encode_set(sid: &str, data: &str, seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let op = format::Op::Set {
            sid: sid.to_owned(),
            record: crate::record::Record {
                cookie: crate::record::CookieRecord::default(),
                data: crate::record::Data::from_trusted(data),
            },
            deadline: seq as i64,
        };
        format::encode(op.as_ref(), seq, seq.saturating_sub(1), &mut out);
        out
    }

    /// Gives the record at the start of `bytes` a correct checksum (when it has a whole
    /// header and payload), so a fuzzer reaches the payload decoder; then decodes.
    pub fn decode_log_with_valid_crc(bytes: &[u8]) -> usize {
        let mut b = bytes.to_vec();
        if b.len() >= format::HEADER {
            let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
            if len <= b.len() - format::HEADER {
                let crc = format::record_crc(&b[..24], &b[format::HEADER..format::HEADER + len]);
                b[24..28].copy_from_slice(&crc.to_le_bytes());
            }
        }
        decode_log(&b)
    }

    /// Frames arbitrary chunk bodies, each with the entry count its chunk header is to give,
    /// as a snapshot with valid header, chunk and footer checksums, so a fuzzer reaches the
    /// archive validation.
    pub fn frame_snapshot(seq: u64, chunks: &[(u32, &[u8])]) -> Vec<u8> {
        snapshot::frame(seq, chunks)
    }

    /// A chunk archive that rkyv's validation accepts, with columns, shapes, lengths and text
    /// taken from arbitrary bytes (not necessarily consistent), and the entry count to frame
    /// it with: so a fuzzer reaches the snapshot's own checks of the columns.
    pub fn arbitrary_snapshot_chunk(bytes: &[u8]) -> (u32, Vec<u8>) {
        snapshot::arbitrary_chunk(bytes)
    }

    /// Loads a snapshot from `bytes` as recovery does; returns the number of sessions.
    pub fn load_snapshot(bytes: &[u8]) -> Result<usize, crate::StoreError> {
        let mut n = 0;
        snapshot::load("fuzz", bytes, |_, _, _| n += 1)?;
        Ok(n)
    }

    /// `Data::field`: the scan `Session::get` runs on the stored text before it parses the
    /// fields into a map.
    pub fn data_field<T: serde::de::DeserializeOwned>(
        data: &crate::record::Data,
        key: &str,
    ) -> serde_json::Result<Option<T>> {
        data.field(key)
    }

    /// Data holding `text` unchecked, as it is read from a checksummed log record or a
    /// snapshot.
    pub fn data_from_disk(text: &str) -> crate::record::Data {
        crate::record::Data::from_trusted(text)
    }
}
