//! The store itself: its shards, routing, log and recovery report ([`Core`]), and the
//! [`SessionStore`] calls, each passed to one shard with the call's [`Ctx`].

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::background::Background;
use super::context::{Ctx, Limits};
use super::durable::recovery::RecoveryReport;
use super::durable::{Durable, OpRef};
use super::log::{Log, OpLog};
use super::room::with_room;
use super::shard::Shard;
use crate::clock;
use crate::error::StoreError;
use crate::record::{Changes, CookieRecord, Record};
use crate::store::{Applied, Created, OwnedSession, SessionStore};

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
    /// The background threads, stopped and joined when the last handle is dropped. Declared
    /// (so dropped) before `core`: the store's shutdown (`Durable`'s drop) then runs here.
    pub(super) background: Arc<Background>,
    pub(super) core: Arc<Core>,
}

/// What the handles of one store share.
pub(super) struct Core {
    pub(super) shards: Box<[Shard]>,
    /// Routes ids to shards (recovery routed with it too).
    pub(super) hasher: ahash::RandomState,
    pub(super) limits: Limits,
    pub(super) durable: Option<Durable>,
    /// What opening found (durable stores only).
    pub(super) recovery: Option<RecoveryReport>,
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

impl Core {
    #[inline]
    pub(super) fn shard(&self, sid: &str) -> &Shard {
        let h = self.hasher.hash_one(sid) as usize;
        &self.shards[h & (self.shards.len() - 1)]
    }

    #[inline]
    fn log(&self) -> Log<'_> {
        self.durable.as_ref().map(|d| &*d.wal as &dyn OpLog)
    }

    /// The context of a call made now.
    #[inline]
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            now_ms: clock::now_ms(),
            limits: &self.limits,
            log: self.log(),
        }
    }

    async fn durable(&self, seq: Option<u64>) -> Result<(), StoreError> {
        match (seq, &self.durable) {
            (Some(seq), Some(d)) => d.wal.wait_durable(seq).await,
            _ => Ok(()),
        }
    }

    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(super) fn snapshot(&self) -> Result<Option<u64>, StoreError> {
        let Some(d) = &self.durable else {
            return Ok(None);
        };
        let started = std::time::Instant::now();
        crate::events::event!(debug, dir = %d.dir.display(), "snapshot started");
        let sessions = std::cell::Cell::new(0u64);
        let taken = d.snapshot(|| {
            let now = clock::now_ms();
            // Each shard is copied a slice at a time, so no lock is held for long.
            self.shards
                .iter()
                .flat_map(move |s| s.live_copy(now))
                .inspect(|_| sessions.set(sessions.get() + 1))
        });
        match &taken {
            Ok((cut, bytes)) => {
                let last = crate::SnapshotStats {
                    cut: *cut,
                    at_ms: clock::now_ms(),
                    sessions: sessions.get(),
                    bytes: *bytes,
                    took_ms: started.elapsed().as_millis() as u64,
                };
                crate::events::event!(
                    info,
                    dir = %d.dir.display(),
                    cut,
                    sessions = last.sessions,
                    bytes,
                    ms = last.took_ms,
                    "snapshot taken"
                );
                *d.last_snapshot.lock() = Some(last);
            }
            Err(e) => crate::events::event!(
                error,
                dir = %d.dir.display(),
                error = %e,
                "snapshot failed: the previous snapshot and the log are kept"
            ),
        }
        Ok(Some(taken?.0))
    }

    /// The sweeper's pass: due buckets only (loom models have no sweeper).
    #[cfg_attr(sessile_loom, allow(dead_code))]
    pub(super) fn purge_expired(&self, now_ms: i64) -> usize {
        self.shards
            .iter()
            .map(|s| s.sweep_due(now_ms, SWEEP_BUDGET))
            .sum()
    }
}

/// Frees every expired session of `shards` now ([`EmbeddedStore::purge_expired`], and
/// recovery's purge before the store starts); returns how many were freed.
pub(super) fn purge_shards(shards: &[Shard], now: i64) -> usize {
    let mut freed = 0;
    for shard in shards {
        freed += shard.sweep_due(now, SWEEP_BUDGET);
        // The sweeps free whole seconds once they have passed; the current one is scanned.
        freed += shard.purge_current(now);
    }
    freed
}

impl EmbeddedStore {
    /// The live record under `sid` (synchronous form of [`SessionStore::get`]).
    pub fn get_now(&self, sid: &str) -> Option<Record> {
        self.core.shard(sid).get(sid, clock::now_ms())
    }

    /// The live sessions of `owner`, oldest owner first (synchronous form of
    /// [`SessionStore::sessions_of`]), from the owner index each shard keeps.
    ///
    /// ```
    /// use sessile::{EmbeddedStore, Record};
    ///
    /// let store = EmbeddedStore::new();
    /// store.set_now("sid", &Record::from_json(r#"{"cookie":{},"__sessile_owner":"alice"}"#)?)?;
    /// assert_eq!(store.sessions_of_now("alice")[0].id, "sid");
    /// # Ok::<(), sessile::StoreError>(())
    /// ```
    pub fn sessions_of_now(&self, owner: &str) -> Vec<OwnedSession> {
        let now = clock::now_ms();
        let mut out = Vec::new();
        for shard in self.core.shards.iter() {
            shard.sessions_of(owner, now, &mut out);
        }
        OwnedSession::sort(&mut out);
        out
    }

    /// Insert or replace (synchronous form of [`SessionStore::set`]). On a durable store
    /// the record is in the log when this returns; under [`FsyncPolicy::Always`](crate::FsyncPolicy::Always) use the
    /// async trait method to also wait for the sync.
    ///
    /// # Errors
    /// Only a durable store fails: the log refused the write (disk full, poisoned by an
    /// fsync error); the store is then unchanged.
    pub fn set_now(&self, sid: &str, record: &Record) -> Result<(), StoreError> {
        self.set_inner(sid, record).map(|_| ())
    }

    /// Insert if no live record is under `sid` (synchronous form of
    /// [`SessionStore::create`]); on a durable store the record is in the log when this
    /// returns, as with [`set_now`](Self::set_now).
    ///
    /// ```
    /// use sessile::{Created, EmbeddedStore, Record};
    ///
    /// let store = EmbeddedStore::new();
    /// assert_eq!(store.create_now("sid", &Record::default())?, Created::Created);
    /// assert_eq!(store.create_now("sid", &Record::default())?, Created::Exists);
    /// # Ok::<(), sessile::StoreError>(())
    /// ```
    ///
    /// # Errors
    /// As [`set_now`](Self::set_now).
    pub fn create_now(&self, sid: &str, record: &Record) -> Result<Created, StoreError> {
        self.create_inner(sid, record).map(|(c, _)| c)
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
        let (shard, ctx) = (self.core.shard(sid), self.core.ctx());
        with_room(&self.core.shards, shard, &ctx, |room| {
            shard.set(sid, record, &ctx, room)
        })
    }

    fn create_inner(
        &self,
        sid: &str,
        record: &Record,
    ) -> Result<(Created, Option<u64>), StoreError> {
        let (shard, ctx) = (self.core.shard(sid), self.core.ctx());
        with_room(&self.core.shards, shard, &ctx, |room| {
            shard.create(sid, record, &ctx, room)
        })
    }

    fn apply_inner(
        &self,
        sid: &str,
        changes: &Changes,
    ) -> Result<(Applied, Option<u64>), StoreError> {
        let (shard, ctx) = (self.core.shard(sid), self.core.ctx());
        with_room(&self.core.shards, shard, &ctx, |room| {
            shard.apply(sid, changes, &ctx, room)
        })
    }

    fn touch_inner(&self, sid: &str, cookie: &CookieRecord) -> Result<Option<u64>, StoreError> {
        self.core.shard(sid).touch(sid, cookie, &self.core.ctx())
    }

    fn clear_inner(&self) -> Result<Option<u64>, StoreError> {
        let mut guards: Vec<_> = self.core.shards.iter().map(Shard::lock_for_clear).collect();
        let seq = super::log::append(self.core.log(), OpRef::Clear)?;
        guards.iter_mut().for_each(|g| g.clear());
        Ok(seq)
    }

    /// Takes a snapshot now (durable stores only; returns the log cut it covers). Snapshots
    /// are also taken automatically by size and age. When nothing was logged since the
    /// newest snapshot, nothing is written and its cut is returned.
    pub fn snapshot(&self) -> Result<Option<u64>, StoreError> {
        self.core.snapshot()
    }

    /// Shuts the store down now, whichever handles of it still exist: stops its background
    /// threads (waiting for a snapshot under way), and for a durable store syncs the log
    /// (under every [`FsyncPolicy`](crate::FsyncPolicy)), removes the prepared segment and
    /// releases the directory's lock, so another process (or this one) can open it.
    /// Afterwards a durable store refuses writes and snapshots with
    /// [`StoreError::Closed`] and still serves reads; a store in memory keeps serving,
    /// without its sweeper. Later calls do nothing more.
    ///
    /// Dropping the last handle does the same; `close` is for when a handle may outlive
    /// the server (a worker thread of a framework that is torn down at exit, a clone kept
    /// in a static): call it after the server has stopped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{EmbeddedStore, Record, SessionStore, StoreError};
    ///
    /// let dir = std::env::temp_dir().join(format!("sessile-doc-close-{}", std::process::id()));
    /// let store = EmbeddedStore::open(&dir)?;
    /// let kept = store.clone(); // say, in a worker that has not exited yet
    /// store.set("sid", &Record::default()).await?;
    /// store.close()?;
    /// assert!(matches!(kept.set("other", &Record::default()).await, Err(StoreError::Closed)));
    /// assert!(kept.get("sid").await?.is_some());
    /// // The directory is free again.
    /// let reopened = EmbeddedStore::open(&dir)?;
    /// assert!(reopened.get("sid").await?.is_some());
    /// # drop((store, kept, reopened));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The final sync failed ([`StoreError::Poisoned`]): writes acknowledged under
    /// `EverySec` or `Never` since the last sync may not be on disk.
    pub fn close(&self) -> Result<(), StoreError> {
        self.background.stop();
        match &self.core.durable {
            Some(d) => d.close(),
            None => Ok(()),
        }
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

    /// The store's figures now: sessions and bytes held against the caps, evictions and
    /// expiries since it opened, and for a durable store its log (segments, bytes since the
    /// snapshot, the last snapshot, syncs and their latency, writes waiting, poisoning). See
    /// README's "Operating it" for wiring them to a metrics system.
    ///
    /// ```
    /// use sessile::{EmbeddedStore, Record};
    ///
    /// let store = EmbeddedStore::builder().max_bytes(1 << 20).build();
    /// store.set_now("sid", &Record::default())?;
    /// let stats = store.stats();
    /// assert_eq!(stats.sessions, 1);
    /// assert!(stats.bytes > 0);
    /// assert_eq!(stats.max_bytes, Some(1 << 20));
    /// println!("{}", serde_json::to_string(&stats).unwrap());
    /// # Ok::<(), sessile::StoreError>(())
    /// ```
    pub fn stats(&self) -> crate::Stats {
        let (sessions, bytes) = self.usage();
        let (evicted, expired) = self
            .core
            .shards
            .iter()
            .map(Shard::freed)
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
        let (max_sessions, max_bytes) = self.core.shards[0]
            .caps()
            .map_or((None, None), |c| c.limits());
        let log = self.core.durable.as_ref().map(|d| {
            let mut log = d.wal.stats();
            log.bytes_since_snapshot = d.bytes_since_snapshot();
            log.last_snapshot = d.last_snapshot.lock().clone();
            log
        });
        crate::Stats {
            sessions,
            bytes,
            max_sessions,
            max_bytes,
            evicted,
            expired,
            log,
        }
    }

    /// Entries held (including expired ones not yet freed) and bytes charged against
    /// [`EmbeddedStoreBuilder::max_bytes`](crate::EmbeddedStoreBuilder::max_bytes).
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

    async fn create(&self, sid: &str, record: &Record) -> Result<Created, StoreError> {
        let (created, seq) = self.create_inner(sid, record)?;
        self.core.durable(seq).await?;
        Ok(created)
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

    /// From the owner index each shard keeps in memory (no walk of the store).
    async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError> {
        Ok(self.sessions_of_now(owner))
    }

    async fn destroy_all_of(&self, owner: &str, except: Option<&str>) -> Result<usize, StoreError> {
        let mut destroyed = 0;
        let mut seq = None;
        for s in self.sessions_of_now(owner) {
            if Some(s.id.as_str()) != except {
                seq = self
                    .core
                    .shard(&s.id)
                    .destroy(&s.id, self.core.log())?
                    .or(seq);
                destroyed += 1;
            }
        }
        self.core.durable(seq).await?;
        Ok(destroyed)
    }
}
