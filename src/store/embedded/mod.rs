//! The embedded store, the default: sessions in this process's memory, lock-sharded.
//!
//! - **Shards.** Ids hash (ahash) to one of N shards, each a map under its own
//!   reader-writer lock, so requests of different sessions rarely meet on a lock.
//! - **Expiry.** Every entry carries its deadline as an atomic, checked on every read: an
//!   expired session is never returned. A touch that only moves the deadline takes the read
//!   lock. A per-shard wheel of one-second buckets finds expired entries without scanning
//!   ([`expiry`]); a background thread sweeps due buckets in small budgets, and writes sweep a
//!   little as they pass. Memory is given back as sessions expire.
//! - **Idle expiry for browser-session cookies.** A session whose cookie has no `expires`
//!   (express's `maxAge: null`) would live forever in express's MemoryStore. Here it expires
//!   after [`EmbeddedStoreBuilder::default_ttl`] without a request (default one day, as
//!   connect-redis does), so the store never leaks.
//! - **Caps.** Optional limits on sessions and bytes; past them the sessions closest to
//!   expiry are evicted.
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

mod expiry;
mod shard;

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
}

impl Default for EmbeddedStoreBuilder {
    fn default() -> Self {
        EmbeddedStoreBuilder {
            shards: 64,
            max_sessions: None,
            max_bytes: None,
            default_ttl: Duration::from_secs(86_400),
            sweep_interval: Some(Duration::from_millis(250)),
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

    /// At most this many sessions; past it the sessions closest to expiry are evicted.
    /// The cap is kept per shard (`n / shards`), so it is approximate for small `n`.
    ///
    /// ```
    /// let store = sessile::EmbeddedStore::builder().max_sessions(1_000_000).build();
    /// ```
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = Some(n);
        self
    }

    /// At most about this many bytes of sessions (ids, data and a fixed per-entry charge);
    /// past it the sessions closest to expiry are evicted.
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

    /// Builds the store (and starts its sweeper thread, if any).
    pub fn build(self) -> EmbeddedStore {
        let n = self.shards;
        let per = |total: Option<usize>| total.map_or(usize::MAX, |t| t.div_ceil(n).max(1));
        let core = Arc::new(Core {
            shards: (0..n).map(|_| Shard::default()).collect(),
            hasher: ahash::RandomState::new(),
            limits: Limits {
                max_entries: per(self.max_sessions),
                max_bytes: per(self.max_bytes),
                default_ttl_ms: self.default_ttl.as_millis().min(i64::MAX as u128) as i64,
            },
        });
        #[cfg(not(loom))]
        if let Some(every) = self.sweep_interval {
            spawn_sweeper(&core, every);
        }
        EmbeddedStore { core }
    }
}

#[cfg(not(loom))]
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

impl Core {
    fn shard(&self, sid: &str) -> &Shard {
        let h = self.hasher.hash_one(sid) as usize;
        &self.shards[h & (self.shards.len() - 1)]
    }

    fn purge_expired(&self, now_ms: i64) -> usize {
        let mut freed = 0;
        for shard in self.shards.iter() {
            loop {
                let n = shard.sweep(now_ms, SWEEP_BUDGET);
                freed += n;
                if n == 0 {
                    break;
                }
            }
        }
        freed
    }
}

impl EmbeddedStore {
    /// An in-memory store with the default options.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Options for a new store.
    pub fn builder() -> EmbeddedStoreBuilder {
        EmbeddedStoreBuilder::default()
    }

    /// The live record under `sid` (synchronous form of [`SessionStore::get`]).
    pub fn get_now(&self, sid: &str) -> Option<Record> {
        self.core.shard(sid).get(sid, clock::now_ms())
    }

    /// Insert or replace (synchronous form of [`SessionStore::set`]).
    pub fn set_now(&self, sid: &str, record: &Record) {
        let now = clock::now_ms();
        self.core
            .shard(sid)
            .set(sid, record.clone(), &self.core.limits, now);
    }

    /// Apply field changes (synchronous form of [`SessionStore::apply`]).
    pub fn apply_now(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError> {
        let now = clock::now_ms();
        self.core
            .shard(sid)
            .apply(sid, changes, &self.core.limits, now)
    }

    /// Store a new cookie/expiry (synchronous form of [`SessionStore::touch`]).
    pub fn touch_now(&self, sid: &str, cookie: &CookieRecord) {
        let now = clock::now_ms();
        self.core
            .shard(sid)
            .touch(sid, cookie, &self.core.limits, now);
    }

    /// Remove (synchronous form of [`SessionStore::destroy`]).
    pub fn destroy_now(&self, sid: &str) {
        self.core.shard(sid).destroy(sid);
    }

    /// Frees every expired session now; returns how many were freed.
    pub fn purge_expired(&self) -> usize {
        self.core.purge_expired(clock::now_ms())
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
        self.set_now(sid, record);
        Ok(())
    }

    async fn apply(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError> {
        self.apply_now(sid, changes)
    }

    async fn destroy(&self, sid: &str) -> Result<(), StoreError> {
        self.destroy_now(sid);
        Ok(())
    }

    async fn touch(&self, sid: &str, cookie: &CookieRecord) -> Result<(), StoreError> {
        self.touch_now(sid, cookie);
        Ok(())
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
        for shard in self.core.shards.iter() {
            shard.clear();
        }
        Ok(())
    }

    async fn len(&self) -> Result<usize, StoreError> {
        let now = clock::now_ms();
        Ok(self.core.shards.iter().map(|s| s.count_live(now)).sum())
    }
}
