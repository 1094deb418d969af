//! One shard of the embedded store: its map (`map.rs`: entries, expiry wheel, cookie shapes)
//! under one reader-writer lock, and the order in which each call locks, checks, logs and
//! changes it. What to sweep or evict is the policy's (`policy/`); the log is an
//! [`OpLog`](super::log::OpLog) the call brings in its [`Ctx`].
//!
//! Layout (see each module):
//! - [`Slab`](super::slab): the entries, fixed-size (80 bytes) in chunks of slots addressed by
//!   a `u32` position, ids of up to 32 bytes inline, freed positions on a free list, and a
//!   table from id to position whose slots keep a hash tag beside the position ([`Index`](super::index));
//! - [`Wheel`](super::expiry): one-second buckets of positions;
//! - [`Shapes`](super::shape): the cookies' fixed fields, interned per shard, so an entry
//!   keeps a 4-byte shape id and only its deadline (`expires`) of its own.
//!
//! Reads (`get`) and plain touches take the read lock: an entry's deadline is an atomic, so a
//! touch that only moves the expiry needs no exclusive lock. Everything that changes the
//! slab or the wheel takes the write lock. A snapshot copies the live entries in slices of
//! [`SLICE`] under the read lock ([`Shard::live_copy`]); while it runs, the slab is not
//! compacted, so entries keep their positions and the copy misses none.

use std::sync::Arc;

use super::context::Ctx;
use super::durable::{Op, OpRef};
use super::log::{self, Log};
use super::map::{charge, Map};
use super::owners::Owners;
use super::policy::{Caps, Elsewhere, Evicted, Need, Written, NO_VICTIM};
use super::slab::KeyCopy;
use crate::error::StoreError;
use crate::record::{Changes, CookieRecord, Record};
use crate::store::{Applied, Created, OwnedSession};
use crate::sync::{AtomicU64, Ordering, RwLock, WriteGuard};

#[cfg(all(test, not(sessile_loom)))]
mod tests;

/// The most entries a snapshot copies under one hold of the read lock.
pub(crate) const SLICE: usize = 128;

pub(crate) struct Shard {
    inner: RwLock<Map>,
    /// The store's caps, shared by its shards (`None`: no caps).
    caps: Option<Arc<Caps>>,
    /// The rank of this shard's best victim for eviction (see `policy/`), kept up to date
    /// by every write when there are caps, so a writer elsewhere can pick the shard to evict
    /// from without taking locks.
    rank: AtomicU64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::new(None)
    }
}

/// A shard's write lock: when it is let go, the shard's counts go to the store's caps and
/// its victim's rank is published.
struct Writing<'a> {
    g: WriteGuard<'a, Map>,
    shard: &'a Shard,
}

impl std::ops::Deref for Writing<'_> {
    type Target = Map;
    fn deref(&self) -> &Map {
        &self.g
    }
}

impl std::ops::DerefMut for Writing<'_> {
    fn deref_mut(&mut self) -> &mut Map {
        &mut self.g
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let Some(caps) = &self.shard.caps else {
            return;
        };
        let holds = self.g.holds();
        caps.moved(self.g.recorded, holds);
        self.g.recorded = holds;
        self.shard
            .rank
            .store(self.g.victim_rank(), Ordering::Release);
    }
}

impl Shard {
    pub(crate) fn new(caps: Option<Arc<Caps>>) -> Self {
        Shard {
            inner: RwLock::default(),
            caps,
            rank: AtomicU64::new(NO_VICTIM),
        }
    }

    fn write(&self) -> Writing<'_> {
        Writing {
            g: self.inner.write(),
            shard: self,
        }
    }

    /// The store's caps, if any.
    pub(crate) fn caps(&self) -> Option<&Caps> {
        self.caps.as_deref()
    }

    /// The rank of this shard's best victim, as last published.
    pub(crate) fn rank(&self) -> u64 {
        self.rank.load(Ordering::Acquire)
    }

    /// Evicts this shard's best victim (or moves one found out of place), for a writer in
    /// another shard that needs room.
    pub(crate) fn evict_one(&self, ctx: &Ctx<'_>) -> Result<Evicted, StoreError> {
        self.write().evict_one(None, ctx)
    }

    /// Sessions (evicted, expired) freed by this shard since the store opened.
    pub(crate) fn freed(&self) -> (u64, u64) {
        let g = self.inner.read();
        (g.evicted, g.expired)
    }

    pub(crate) fn get(&self, key: &str, now_ms: i64) -> Option<Record> {
        let g = self.inner.read();
        let e = g.slab.get(g.slab.find(key)?)?;
        if !e.live_at(now_ms) {
            return None;
        }
        e.came_back();
        Some(e.record(&g.shapes))
    }

    /// Stores a whole record. With a log, the record is logged first (while the lock is held,
    /// so the log's order for this id is the memory's); a refused log write changes nothing.
    /// In memory only the data's reference count is taken: the caller's cookie (whose `path`
    /// every request shares) is compared or interned, never cloned; a durable store logs it
    /// borrowed. With caps, room is made first (see `policy/`), taking from `others` too; a
    /// session larger than the whole cap is refused with [`StoreError::Full`].
    pub(crate) fn set(
        &self,
        key: &str,
        record: &Record,
        ctx: &Ctx<'_>,
        others: &dyn Elsewhere,
    ) -> Result<Written<Option<u64>>, StoreError> {
        Ok(match self.write_whole(key, record, ctx, others, false)? {
            Written::Done((_, seq)) => Written::Done(seq),
            Written::Short(need) => Written::Short(need),
        })
    }

    /// Stores a whole record only if no live record is under `key` (the check and the write
    /// under one hold of the write lock, so of racing creates of one id exactly one wins);
    /// logged as a [`set`](Self::set). An expired entry not yet swept counts as absent.
    pub(crate) fn create(
        &self,
        key: &str,
        record: &Record,
        ctx: &Ctx<'_>,
        others: &dyn Elsewhere,
    ) -> Result<Written<(Created, Option<u64>)>, StoreError> {
        self.write_whole(key, record, ctx, others, true)
    }

    /// [`set`](Self::set), or with `if_absent` [`create`](Self::create).
    fn write_whole(
        &self,
        key: &str,
        record: &Record,
        ctx: &Ctx<'_>,
        others: &dyn Elsewhere,
        if_absent: bool,
    ) -> Result<Written<(Created, Option<u64>)>, StoreError> {
        let (now_ms, deadline) = (ctx.now_ms, ctx.deadline(&record.cookie));
        let mut g = self.write();
        if ctx.log.is_some() {
            // The log's work below hides the index's cache miss.
            g.slab.prefetch(key);
        }
        g.sweep(now_ms, 8);
        if if_absent {
            let live = g
                .slab
                .find(key)
                .and_then(|p| g.slab.get(p))
                .is_some_and(|e| e.live_at(now_ms));
            if live {
                return Ok(Written::Done((Created::Exists, None)));
            }
        }
        if let (Some(caps), true) = (self.caps(), deadline > now_ms) {
            let bytes = charge(key.len(), &record.data);
            caps.admit(bytes)?;
            let old = g.slab.find(key);
            let need = Need {
                entries: i64::from(old.is_none()),
                bytes: bytes as i64 - old.map_or(0, |p| g.charge_at(p)) as i64,
            };
            if !g.make_room(caps, others, need, old, ctx)? {
                return Ok(Written::Short(need));
            }
        }
        let seq = ctx.append(OpRef::Set {
            sid: key,
            record,
            deadline,
        })?;
        if deadline > now_ms {
            g.upsert(key, record, deadline, true);
        } else {
            // Already expired: storing it would only keep garbage.
            g.remove(key);
        }
        Ok(Written::Done((Created::Created, seq)))
    }

    /// Applies field changes to a live record (see [`set`](Self::set) for the log and the
    /// caps).
    pub(crate) fn apply(
        &self,
        key: &str,
        changes: &Changes,
        ctx: &Ctx<'_>,
        others: &dyn Elsewhere,
    ) -> Result<Written<(Applied, Option<u64>)>, StoreError> {
        let (now_ms, deadline) = (ctx.now_ms, ctx.deadline(&changes.cookie));
        let mut g = self.write();
        g.sweep(now_ms, 8);
        let Some(pos) = g.slab.find(key) else {
            return Ok(Written::Done((Applied::Missing, None)));
        };
        let Some(e) = g.slab.get(pos) else {
            return Ok(Written::Done((Applied::Missing, None)));
        };
        if !e.live_at(now_ms) {
            return Ok(Written::Done((Applied::Missing, None)));
        }
        e.came_back();
        let data = changes.apply_to_data(&e.data)?;
        if let (Some(caps), true) = (self.caps(), deadline > now_ms) {
            let bytes = charge(key.len(), &data);
            caps.admit(bytes)?;
            let need = Need {
                entries: 0,
                bytes: bytes as i64 - g.charge_at(pos) as i64,
            };
            if !g.make_room(caps, others, need, Some(pos), ctx)? {
                return Ok(Written::Short(need));
            }
        }
        // Making room moves no entry of the slab: `pos` is still the session's.
        let seq = ctx.append(OpRef::Apply {
            sid: key,
            changes,
            deadline,
        })?;
        if deadline <= now_ms {
            g.remove_at(pos);
            return Ok(Written::Done((Applied::Applied, seq)));
        }
        g.replace(
            pos,
            data,
            &changes.cookie,
            deadline,
            Owners::may_change(changes),
        );
        Ok(Written::Done((Applied::Applied, seq)))
    }

    /// Stores a new cookie and deadline for a live record. A touch that only moves the
    /// deadline forward takes the read lock and is logged only when it moves the logged
    /// deadline by more than the coalescing window.
    pub(crate) fn touch(
        &self,
        key: &str,
        cookie: &CookieRecord,
        ctx: &Ctx<'_>,
    ) -> Result<Option<u64>, StoreError> {
        let (now_ms, deadline) = (ctx.now_ms, ctx.deadline(cookie));
        {
            let g = self.inner.read();
            let Some(e) = g.slab.find(key).and_then(|p| g.slab.get(p)) else {
                return Ok(None);
            };
            let current = e.deadline();
            if current <= now_ms {
                return Ok(None);
            }
            e.came_back();
            if deadline >= current && g.shapes.matches(e.shape, cookie) {
                // A racing touch may have moved it further; keep the later one.
                let deadline = e
                    .deadline
                    .fetch_max(deadline, Ordering::AcqRel)
                    .max(deadline);
                let Some(log) = ctx.log else {
                    return Ok(None);
                };
                if !e
                    .logged
                    .is_behind(deadline, ctx.limits.touch_window(cookie))
                {
                    return Ok(None);
                }
                let seq = log.append(OpRef::Touch {
                    sid: key,
                    cookie,
                    deadline,
                })?;
                e.logged.touched(deadline);
                return Ok(Some(seq));
            }
        }
        let mut g = self.write();
        let Some(pos) = g.slab.find(key) else {
            return Ok(None);
        };
        let Some(e) = g.slab.get(pos) else {
            return Ok(None);
        };
        if !e.live_at(now_ms) {
            return Ok(None);
        }
        e.came_back();
        let data = e.data.clone();
        let seq = ctx.append(OpRef::Touch {
            sid: key,
            cookie,
            deadline,
        })?;
        if deadline <= now_ms {
            g.remove_at(pos);
            return Ok(seq);
        }
        g.replace(pos, data, cookie, deadline, false);
        Ok(seq)
    }

    pub(crate) fn destroy(&self, key: &str, log: Log<'_>) -> Result<Option<u64>, StoreError> {
        let mut g = self.write();
        let Some(pos) = g.slab.find(key) else {
            return Ok(None);
        };
        let seq = log::append(log, OpRef::Destroy { sid: key })?;
        g.remove_at(pos);
        Ok(seq)
    }

    /// Applies a recovered log record: no log, no expiry checks (expired sessions are purged
    /// after the whole log is replayed), no caps.
    pub(crate) fn replay(&self, op: &Op) {
        let mut g = self.write();
        match op {
            Op::Set {
                sid,
                record,
                deadline,
            } => {
                g.upsert(sid, record, *deadline, false);
            }
            Op::Apply {
                sid,
                changes,
                deadline,
            } => {
                let Some(pos) = g.slab.find(sid) else {
                    return;
                };
                let Some(e) = g.slab.get(pos) else {
                    return;
                };
                // A record whose data cannot be parsed keeps its data; the cookie still moves.
                let data = changes
                    .apply_to_data(&e.data)
                    .unwrap_or_else(|_| e.data.clone());
                g.replace(
                    pos,
                    data,
                    &changes.cookie,
                    *deadline,
                    Owners::may_change(changes),
                );
            }
            Op::Touch {
                sid,
                cookie,
                deadline,
            } => {
                let Some(pos) = g.slab.find(sid) else {
                    return;
                };
                let Some(data) = g.slab.get(pos).map(|e| e.data.clone()) else {
                    return;
                };
                g.replace(pos, data, cookie, *deadline, false);
            }
            Op::Destroy { sid } => {
                g.remove(sid);
            }
            Op::Clear => g.clear(),
        }
    }

    /// Makes room for `additional` more entries so that loading them does not grow the
    /// tables step by step: the index, and with `slab` the slab too. For recovery, once it
    /// knows (from a snapshot) or estimates (from the log) how many sessions are coming.
    pub(crate) fn reserve(&self, additional: usize, slab: bool) {
        let mut g = self.write();
        if slab {
            g.slab.reserve(additional);
        } else {
            g.slab.reserve_index(additional);
        }
    }

    pub(crate) fn sweep(&self, now_ms: i64, budget: usize) -> usize {
        if !self.has_due(now_ms) {
            return 0;
        }
        self.write().sweep(now_ms, budget)
    }

    /// Sweeps until no bucket is due, taking the write lock for `budget` entries at a time.
    pub(crate) fn sweep_due(&self, now_ms: i64, budget: usize) -> usize {
        let mut freed = 0;
        loop {
            freed += self.sweep(now_ms, budget);
            // A sweep that only moved touched sessions to later buckets frees nothing, yet
            // expired sessions may wait behind them: go on while a bucket is due.
            if !self.has_due(now_ms) {
                return freed;
            }
        }
    }

    /// Whether a bucket whose second has passed waits to be swept.
    pub(crate) fn has_due(&self, now_ms: i64) -> bool {
        self.inner.read().wheel.due(now_ms).is_some()
    }

    /// Frees the expired entries of the bucket of `now_ms`, which sweeps leave alone (see
    /// [`Map::purge_current`]).
    pub(crate) fn purge_current(&self, now_ms: i64) -> usize {
        self.write().purge_current(now_ms)
    }

    pub(crate) fn for_each_live(&self, now_ms: i64, mut f: impl FnMut(&str, Record)) {
        let g = self.inner.read();
        for pos in 0..g.slab.end() {
            if let Some(e) = g.slab.get(pos) {
                if e.live_at(now_ms) {
                    f(g.slab.key(pos), e.record(&g.shapes));
                }
            }
        }
    }

    /// Copies the live entries at slab positions `from..` into `out`, at most `max` of them
    /// (and at most `4 * max` positions looked at) under one hold of the read lock. Returns
    /// the position to go on from, or `None` when the slab's end was reached.
    pub(crate) fn live_slice(
        &self,
        now_ms: i64,
        from: u32,
        max: usize,
        out: &mut Vec<(KeyCopy, Record, i64)>,
    ) -> Option<u32> {
        let g = self.inner.read();
        let end = g.slab.end();
        let mut pos = from;
        let (mut taken, mut looked) = (0, 0);
        while pos < end && taken < max && looked < max.saturating_mul(4) {
            if let Some(e) = g.slab.get(pos) {
                let deadline = e.deadline();
                if deadline > now_ms {
                    out.push((g.slab.key_copy(pos), e.record(&g.shapes), deadline));
                    taken += 1;
                }
            }
            pos += 1;
            looked += 1;
        }
        (pos < end).then_some(pos)
    }

    /// The live entries with their deadlines, for a snapshot: copied [`SLICE`] at a time
    /// under the read lock, as the iterator is pulled. Entries keep their positions while
    /// the iterator lives (no compaction), so every entry that is live from the iterator's
    /// start to its end is yielded, once; one changed meanwhile is yielded as it is when its
    /// slice is copied (or not at all if destroyed or moved out by a `clear`).
    pub(crate) fn live_copy(
        &self,
        now_ms: i64,
    ) -> impl Iterator<Item = (KeyCopy, Record, i64)> + '_ {
        let pin = Pin::new(self);
        let mut next = Some(0);
        let mut buf = Vec::new().into_iter();
        std::iter::from_fn(move || loop {
            if let Some(item) = buf.next() {
                return Some(item);
            }
            let from = next?;
            let mut out = Vec::with_capacity(SLICE);
            // A method of `pin`, so the closure owns the whole pin (not a copy of its field).
            next = pin.shard().live_slice(now_ms, from, SLICE, &mut out);
            buf = out.into_iter();
        })
    }

    /// Calls `f` with each live entry's bytes (id and data) and deadline, building no
    /// record: what the read-only inspection counts (`durable/inspect.rs`).
    #[cfg(unix)]
    pub(crate) fn for_each_live_size(&self, now_ms: i64, mut f: impl FnMut(usize, i64)) {
        let g = self.inner.read();
        for pos in 0..g.slab.end() {
            if let Some(e) = g.slab.get(pos) {
                let deadline = e.deadline();
                if deadline > now_ms {
                    f(g.slab.key_len(pos) + e.data.len(), deadline);
                }
            }
        }
    }

    /// The live sessions of `owner` in this shard, from the owner index.
    pub(crate) fn sessions_of(&self, owner: &str, now_ms: i64, out: &mut Vec<OwnedSession>) {
        let g = self.inner.read();
        for sid in g.owners.sessions_of(owner) {
            let Some(e) = g.slab.find(sid).and_then(|p| g.slab.get(p)) else {
                continue;
            };
            if e.live_at(now_ms) {
                out.push(OwnedSession {
                    id: sid.to_string(),
                    record: e.record(&g.shapes),
                });
            }
        }
    }

    pub(crate) fn count_live(&self, now_ms: i64) -> usize {
        let g = self.inner.read();
        (0..g.slab.end())
            .filter(|&p| g.slab.get(p).is_some_and(|e| e.live_at(now_ms)))
            .count()
    }

    /// Takes the write lock for `clear` (all shards are locked, in order, before the clear is
    /// logged).
    pub(crate) fn lock_for_clear(&self) -> ClearGuard<'_> {
        ClearGuard(self.write())
    }

    /// Entries held (live or not yet swept) and bytes charged.
    pub(crate) fn usage(&self) -> (usize, usize) {
        self.inner.read().holds()
    }
}

/// A snapshot copy in progress on a shard: no compaction until it is dropped.
struct Pin<'a>(&'a Shard);

impl<'a> Pin<'a> {
    fn new(shard: &'a Shard) -> Self {
        shard.inner.read().copying.fetch_add(1, Ordering::AcqRel);
        Pin(shard)
    }

    fn shard(&self) -> &'a Shard {
        self.0
    }
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        self.0.inner.read().copying.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A shard locked for `clear`.
pub(crate) struct ClearGuard<'a>(Writing<'a>);

impl ClearGuard<'_> {
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}
