//! One shard of the embedded store: its entries, their expiry wheel and their cookie shapes,
//! under one reader-writer lock.
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

use super::expiry::{bucket_of, Place, Wheel, BACK, NEW};
use super::policy::{self, Caps, Need, Room, Written, NEW_SHARE, NO_VICTIM};
use super::shape::Shapes;
use super::slab::{Entry, KeyCopy, New, Slab};
use crate::error::StoreError;
use crate::record::{Changes, CookieRecord, Data, Record};
use crate::store::Applied;

use super::durable::wal::Wal;
use super::durable::{Op, OpRef};
use crate::sync::{AtomicU64, Ordering, RwLock, WriteGuard};

/// Bytes charged per entry on top of its id and data, for the memory cap.
const ENTRY_OVERHEAD: usize = 160;

/// The most entries a snapshot copies under one hold of the read lock.
pub(crate) const SLICE: usize = 128;

fn charge(key_len: usize, data: &Data) -> usize {
    ENTRY_OVERHEAD + key_len + data.len()
}

impl Entry {
    fn deadline(&self) -> i64 {
        self.deadline.load(Ordering::Acquire)
    }

    fn live_at(&self, now_ms: i64) -> bool {
        self.deadline() > now_ms
    }

    fn place(&self) -> Place {
        Place {
            lane: self.lane,
            bucket: self.bucket,
            slot: self.slot,
        }
    }

    /// Notes that the session came back (a read, touch or change after it was stored). Only
    /// the first time writes to the entry.
    fn came_back(&self) {
        if !self.returned.load(Ordering::Relaxed) {
            self.returned.store(true, Ordering::Relaxed);
        }
    }

    fn record(&self, shapes: &Shapes) -> Record {
        Record {
            cookie: shapes.cookie(self.shape, self.deadline()),
            data: self.data.clone(),
        }
    }
}

/// The store's expiry settings, as each shard applies them (the caps are in [`Caps`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The idle lifetime of a session whose cookie has no expiry.
    pub(crate) default_ttl_ms: i64,
    /// A touch is logged only when it moves the logged deadline by more than this, or by
    /// more than 1 % of the cookie's `originalMaxAge` if that is larger.
    pub(crate) touch_log_ms: i64,
}

impl Limits {
    pub(crate) fn deadline(&self, cookie: &CookieRecord, now_ms: i64) -> i64 {
        cookie
            .expires
            .unwrap_or_else(|| now_ms.saturating_add(self.default_ttl_ms))
    }
}

struct Inner {
    slab: Slab,
    wheel: Wheel,
    shapes: Shapes,
    bytes: usize,
    /// The (entries, bytes) last added to the store's [`Caps`].
    recorded: (usize, usize),
    /// Snapshot copies in progress (taken under the read lock); the slab is not compacted
    /// while there is one.
    copying: AtomicU64,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            slab: Slab::default(),
            wheel: Wheel::default(),
            shapes: Shapes::default(),
            bytes: 0,
            recorded: (0, 0),
            copying: AtomicU64::new(0),
        }
    }
}

pub(crate) struct Shard {
    inner: RwLock<Inner>,
    /// The store's caps, shared by its shards (`None`: no caps).
    caps: Option<Arc<Caps>>,
    /// The rank of this shard's best victim for eviction ([`policy::rank`]), kept up to date
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
    g: WriteGuard<'a, Inner>,
    shard: &'a Shard,
}

impl std::ops::Deref for Writing<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.g
    }
}

impl std::ops::DerefMut for Writing<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.g
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let Some(caps) = &self.shard.caps else {
            return;
        };
        let holds = (self.g.slab.len(), self.g.bytes);
        caps.moved(self.g.recorded, holds);
        self.g.recorded = holds;
        let rank = self.g.victim().map_or(NO_VICTIM, |(_, r)| r);
        self.shard.rank.store(rank, Ordering::Release);
    }
}

impl Inner {
    /// The bytes charged for the entry at `pos`.
    fn charge_at(&self, pos: u32) -> usize {
        self.slab
            .get(pos)
            .map_or(0, |e| charge(self.slab.key_len(pos), &e.data))
    }

    /// Removes the entry at `pos` from the slab, the wheel and the shapes.
    fn remove_at(&mut self, pos: u32) -> Option<Entry> {
        let key_len = self.slab.key_len(pos);
        let entry = self.slab.remove(pos)?;
        self.bytes = self.bytes.saturating_sub(charge(key_len, &entry.data));
        if let Some(moved) = self.wheel.remove(entry.place()) {
            if let Some(m) = self.slab.get_mut(moved) {
                m.slot = entry.slot;
            }
        }
        self.shapes.release(entry.shape);
        Some(entry)
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let pos = self.slab.find(key)?;
        self.remove_at(pos)
    }

    fn insert(&mut self, key: &str, record: &Record, deadline: i64) {
        let bytes = charge(key.len(), &record.data);
        let shape = self.shapes.intern(&record.cookie);
        let new = New {
            data: record.data.clone(),
            deadline,
            bucket: 0,
            slot: 0,
            shape,
        };
        let Some(pos) = self.slab.insert(key, new) else {
            // The shard holds 2^32 entries: nothing more fits.
            self.shapes.release(shape);
            return;
        };
        self.place(pos, deadline);
        self.bytes += bytes;
    }

    /// Drops every entry (and their memory).
    fn clear(&mut self) {
        self.slab.clear();
        self.wheel.clear();
        self.shapes.clear();
        self.bytes = 0;
    }

    /// Replaces the data, cookie and deadline of the entry at `pos` in place (no new id, no
    /// wheel change unless the deadline's bucket gets earlier).
    fn replace(&mut self, pos: u32, data: Data, cookie: &CookieRecord, deadline: i64) {
        let key_len = self.slab.key_len(pos);
        let Some(e) = self.slab.get_mut(pos) else {
            return;
        };
        self.bytes = self
            .bytes
            .saturating_sub(charge(key_len, &e.data))
            .saturating_add(charge(key_len, &data));
        self.shapes.reshape(&mut e.shape, cookie);
        e.data = data;
        e.deadline.store(deadline, Ordering::Release);
        e.logged.store(deadline, Ordering::Release);
        self.rebucket_if_earlier(pos, deadline);
    }

    /// Replaces the record under `key` in place when there is one (which then came back if
    /// `back`), or inserts it.
    fn upsert(&mut self, key: &str, record: &Record, deadline: i64, back: bool) {
        match self.slab.find(key) {
            Some(pos) => {
                if let (Some(e), true) = (self.slab.get(pos), back) {
                    e.came_back();
                }
                self.replace(pos, record.data.clone(), &record.cookie, deadline);
            }
            None => self.insert(key, record, deadline),
        }
    }

    /// Moves an entry whose deadline is now earlier than its bucket, so the sweeper frees it
    /// on time.
    fn rebucket_if_earlier(&mut self, pos: u32, deadline: i64) {
        let Some(e) = self.slab.get(pos) else {
            return;
        };
        if bucket_of(deadline) >= e.bucket {
            return;
        }
        self.unplace(pos);
        self.place(pos, deadline);
    }

    /// Puts the entry at `pos` (not in the wheel) in the bucket of `deadline`, in the lane
    /// of the sessions that came back if it did.
    fn place(&mut self, pos: u32, deadline: i64) {
        let lane = match self.slab.get(pos) {
            Some(e) if e.returned.load(Ordering::Relaxed) => BACK,
            Some(_) => NEW,
            None => return,
        };
        let place = self.wheel.insert(pos, deadline, lane);
        if let Some(e) = self.slab.get_mut(pos) {
            e.lane = place.lane;
            e.bucket = place.bucket;
            e.slot = place.slot;
        }
    }

    /// Takes the entry at `pos` out of the wheel (fixing the entry moved into its slot).
    fn unplace(&mut self, pos: u32) {
        let Some(place) = self.slab.get(pos).map(Entry::place) else {
            return;
        };
        if let Some(moved) = self.wheel.remove(place) {
            if let Some(m) = self.slab.get_mut(moved) {
                m.slot = place.slot;
            }
        }
    }

    /// Frees expired entries of due buckets, at most `budget` entries looked at.
    fn sweep(&mut self, now_ms: i64, mut budget: usize) -> usize {
        let mut freed = 0;
        while budget > 0 {
            let Some((lane, bucket)) = self.wheel.due(now_ms) else {
                break;
            };
            let taken = self.wheel.take(lane, bucket, budget);
            budget -= taken.len();
            for pos in taken {
                let Some(e) = self.slab.get(pos) else {
                    continue;
                };
                if e.bucket != bucket || e.lane != lane {
                    continue;
                }
                let deadline = e.deadline();
                if deadline <= now_ms {
                    // `take` already removed it from the wheel.
                    let key_len = self.slab.key_len(pos);
                    if let Some(e) = self.slab.remove(pos) {
                        self.bytes = self.bytes.saturating_sub(charge(key_len, &e.data));
                        self.shapes.release(e.shape);
                        freed += 1;
                    }
                } else {
                    self.place(pos, deadline);
                }
            }
        }
        if freed > 0 {
            self.compact_if_sparse();
        }
        freed
    }

    /// Gives memory back once most of the shard is gone: packs the slab (fixing the wheel
    /// for every moved entry) and shrinks the index. Not while a snapshot copies the shard.
    fn compact_if_sparse(&mut self) {
        if !self.slab.sparse() || self.copying.load(Ordering::Acquire) > 0 {
            return;
        }
        let Inner { slab, wheel, .. } = self;
        slab.compact(|e, to| wheel.set(e.place(), to));
    }

    /// This shard's best victim for eviction: its lane and its rank (see `policy.rs`).
    fn victim(&self) -> Option<(u8, u64)> {
        let new = self.wheel.earliest(NEW);
        let back = self.wheel.earliest(BACK);
        let flooded = self.wheel.lane_len(NEW) * NEW_SHARE > self.slab.len();
        match (new, back) {
            (Some(n), _) if flooded => Some((NEW, policy::rank(true, n))),
            (Some(n), Some(b)) if n <= b => Some((NEW, policy::rank(false, n))),
            (_, Some(b)) => Some((BACK, policy::rank(false, b))),
            (Some(n), None) => Some((NEW, policy::rank(false, n))),
            (None, None) => None,
        }
    }

    /// Evicts this shard's best victim, never the entry at `spare`. An entry found out of
    /// place (it came back, or expires later than its bucket says) is moved to its place
    /// instead. In a durable store the eviction is logged first; if the log refuses, the
    /// entry is kept and the error returned.
    fn evict_one(
        &mut self,
        spare: Option<u32>,
        now_ms: i64,
        log: Option<&Wal>,
    ) -> Result<Evicted, StoreError> {
        let Some((first, _)) = self.victim() else {
            return Ok(Evicted::Nothing);
        };
        for lane in [first, first ^ 1] {
            let Some((bucket, pos)) = self.wheel.oldest(lane).find(|&(_, p)| Some(p) != spare)
            else {
                continue;
            };
            let Some(e) = self.slab.get(pos) else {
                continue;
            };
            let deadline = e.deadline();
            if bucket_of(deadline) > bucket || (lane == NEW && e.returned.load(Ordering::Relaxed)) {
                // Touched or changed since it was placed, or it came back: move it to its
                // own bucket and lane rather than evict it.
                self.unplace(pos);
                self.place(pos, deadline);
                return Ok(Evicted::Moved);
            }
            if deadline > now_ms {
                if let Some(w) = log {
                    w.append(OpRef::Destroy {
                        sid: self.slab.key(pos),
                    })?;
                }
            }
            // An expired entry is only freed early: recovery drops it too.
            self.remove_at(pos);
            return Ok(Evicted::One);
        }
        Ok(Evicted::Nothing)
    }

    /// Makes room in the store for `need` by evicting from this shard, as long as it holds
    /// the store's best victim (compared with `room`'s other shards), never the entry at
    /// `spare`. Returns false when the best victim is elsewhere (nothing was evicted for the
    /// rest of the need; the caller evicts there without this lock and tries again).
    fn make_room(
        &mut self,
        caps: &Caps,
        room: &Room<'_>,
        need: Need,
        spare: Option<u32>,
        now_ms: i64,
        log: Option<&Wal>,
    ) -> Result<bool, StoreError> {
        // No sweep here: it could compact the slab and move `spare`. Expired entries are in
        // the earliest buckets, so they are the first victims anyway.
        loop {
            if caps.fits(need, self.recorded, (self.slab.len(), self.bytes)) {
                return Ok(true);
            }
            let mine = self.victim().map_or(NO_VICTIM, |(_, r)| r);
            if !room.insist && room.best_elsewhere() < mine {
                return Ok(false);
            }
            match self.evict_one(spare, now_ms, log)? {
                Evicted::One | Evicted::Moved => {}
                Evicted::Nothing => {
                    return Ok(room.insist || room.best_elsewhere() == NO_VICTIM);
                }
            }
        }
    }
}

/// What [`Inner::evict_one`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Evicted {
    One,
    Moved,
    Nothing,
}

/// Logs `op` when there is a log; returns its sequence number.
fn append(log: Option<&Wal>, op: OpRef<'_>) -> Result<Option<u64>, StoreError> {
    log.map(|w| w.append(op)).transpose()
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
    pub(crate) fn evict_one(&self, now_ms: i64, log: Option<&Wal>) -> Result<Evicted, StoreError> {
        self.write().evict_one(None, now_ms, log)
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
    /// borrowed. With caps, room is made first (see `policy.rs`); a session larger than the
    /// whole cap is refused with [`StoreError::Full`].
    pub(crate) fn set(
        &self,
        key: &str,
        record: &Record,
        deadline: i64,
        now_ms: i64,
        log: Option<&Wal>,
        room: &Room<'_>,
    ) -> Result<Written<Option<u64>>, StoreError> {
        let mut g = self.write();
        if log.is_some() {
            // The log's work below hides the index's cache miss.
            g.slab.prefetch(key);
        }
        g.sweep(now_ms, 8);
        if let (Some(caps), true) = (self.caps(), deadline > now_ms) {
            let bytes = charge(key.len(), &record.data);
            caps.admit(bytes)?;
            let old = g.slab.find(key);
            let need = Need {
                entries: i64::from(old.is_none()),
                bytes: bytes as i64 - old.map_or(0, |p| g.charge_at(p)) as i64,
            };
            if !g.make_room(caps, room, need, old, now_ms, log)? {
                return Ok(Written::Short(need));
            }
        }
        let seq = append(
            log,
            OpRef::Set {
                sid: key,
                record,
                deadline,
            },
        )?;
        if deadline > now_ms {
            g.upsert(key, record, deadline, true);
        } else {
            // Already expired: storing it would only keep garbage.
            g.remove(key);
        }
        Ok(Written::Done(seq))
    }

    pub(crate) fn apply(
        &self,
        key: &str,
        changes: &Changes,
        deadline: i64,
        now_ms: i64,
        log: Option<&Wal>,
        room: &Room<'_>,
    ) -> Result<Written<(Applied, Option<u64>)>, StoreError> {
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
            if !g.make_room(caps, room, need, Some(pos), now_ms, log)? {
                return Ok(Written::Short(need));
            }
        }
        // Making room moves no entry of the slab: `pos` is still the session's.
        let seq = append(
            log,
            OpRef::Apply {
                sid: key,
                changes,
                deadline,
            },
        )?;
        if deadline <= now_ms {
            g.remove_at(pos);
            return Ok(Written::Done((Applied::Applied, seq)));
        }
        g.replace(pos, data, &changes.cookie, deadline);
        Ok(Written::Done((Applied::Applied, seq)))
    }

    /// Stores a new cookie and deadline for a live record. A touch that only moves the
    /// deadline forward takes the read lock and is logged only when it moves the logged
    /// deadline by more than the coalescing window.
    pub(crate) fn touch(
        &self,
        key: &str,
        cookie: &CookieRecord,
        deadline: i64,
        limits: &Limits,
        now_ms: i64,
        log: Option<&Wal>,
    ) -> Result<Option<u64>, StoreError> {
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
                let Some(log) = log else {
                    return Ok(None);
                };
                let window = limits
                    .touch_log_ms
                    .max(cookie.original_max_age.unwrap_or(0) / 100);
                if deadline - e.logged.load(Ordering::Acquire) <= window {
                    return Ok(None);
                }
                let seq = log.append(OpRef::Touch {
                    sid: key,
                    cookie,
                    deadline,
                })?;
                e.logged.fetch_max(deadline, Ordering::AcqRel);
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
        let seq = append(
            log,
            OpRef::Touch {
                sid: key,
                cookie,
                deadline,
            },
        )?;
        if deadline <= now_ms {
            g.remove_at(pos);
            return Ok(seq);
        }
        g.replace(pos, data, cookie, deadline);
        Ok(seq)
    }

    pub(crate) fn destroy(&self, key: &str, log: Option<&Wal>) -> Result<Option<u64>, StoreError> {
        let mut g = self.write();
        let Some(pos) = g.slab.find(key) else {
            return Ok(None);
        };
        let seq = append(log, OpRef::Destroy { sid: key })?;
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
                g.replace(pos, data, &changes.cookie, *deadline);
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
                g.replace(pos, data, cookie, *deadline);
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
        {
            let g = self.inner.read();
            if g.wheel.due(now_ms).is_none() {
                return 0;
            }
        }
        self.write().sweep(now_ms, budget)
    }

    /// Whether a bucket whose second has passed waits to be swept.
    pub(crate) fn has_due(&self, now_ms: i64) -> bool {
        self.inner.read().wheel.due(now_ms).is_some()
    }

    /// Frees the expired entries of the bucket of `now_ms`, the second that is not over
    /// yet and that sweeps leave alone (an entry's bucket is never later than its deadline's,
    /// so this and the due buckets hold every expired entry). Scans that one bucket.
    pub(crate) fn purge_current(&self, now_ms: i64) -> usize {
        let mut g = self.write();
        let expired: Vec<u32> = g
            .wheel
            .keys(bucket_of(now_ms))
            .iter()
            .copied()
            .filter(|&p| g.slab.get(p).is_some_and(|e| !e.live_at(now_ms)))
            .collect();
        for &pos in &expired {
            g.remove_at(pos);
        }
        if !expired.is_empty() {
            g.compact_if_sparse();
        }
        expired.len()
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
        let g = self.inner.read();
        (g.slab.len(), g.bytes)
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

#[cfg(all(test, not(sessile_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    const NOW: i64 = 1_000_000;

    fn limits() -> Limits {
        Limits {
            default_ttl_ms: 60_000,
            touch_log_ms: 1_000,
        }
    }

    fn record(n: u32) -> Record {
        Record {
            cookie: CookieRecord {
                expires: Some(0),
                original_max_age: Some(60_000),
                ..CookieRecord::default()
            },
            data: Data::from_trusted(&format!("{{\"n\":{n}}}")),
        }
    }

    fn set_record(s: &Shard, key: &str, r: &Record, deadline: i64) {
        let written = s
            .set(key, r, deadline, NOW, None, &Room::single(s))
            .unwrap();
        assert!(matches!(written, Written::Done(_)));
    }

    fn set(s: &Shard, key: &str, n: u32, deadline: i64) {
        set_record(s, key, &record(n), deadline);
    }

    /// Every entry is in the wheel exactly once, at the place it remembers.
    fn check_wheel(s: &Shard) {
        let g = s.inner.read();
        let mut seen = 0;
        for pos in 0..g.slab.end() {
            if let Some(e) = g.slab.get(pos) {
                assert_eq!(g.wheel.at(e.place()), Some(pos));
                seen += 1;
            }
        }
        assert_eq!(seen, g.slab.len());
        assert_eq!(g.wheel.len(), g.slab.len());
    }

    #[test]
    fn destroys_and_sweeps_keep_the_wheel_right() {
        let s = Shard::default();
        for i in 0..3_000u32 {
            // Three buckets, several entries in each.
            set(
                &s,
                &format!("id{i}"),
                i,
                NOW + 1_000 + i64::from(i % 3) * 1_000,
            );
        }
        check_wheel(&s);
        for i in (0..3_000u32).step_by(7) {
            s.destroy(&format!("id{i}"), None).unwrap();
        }
        check_wheel(&s);
        // An earlier deadline moves the entry to an earlier bucket.
        set(&s, "id1", 1, NOW + 500);
        check_wheel(&s);
        // The first bucket (and id1) expire.
        let freed = s.sweep(NOW + 2_000, usize::MAX);
        assert!(freed > 800, "{freed}");
        assert!(s.get("id1", NOW + 2_000).is_none());
        assert!(s.get("id2", NOW + 2_000).is_some());
        check_wheel(&s);
        // The rest expire: memory is given back.
        s.sweep(NOW + 10_000, usize::MAX);
        assert_eq!(s.usage(), (0, 0));
        assert!(s.inner.read().slab.capacity() <= super::super::slab::CHUNK);
    }

    #[test]
    fn compaction_keeps_every_live_entry_findable() {
        let s = Shard::default();
        let long = "L".repeat(100);
        set(&s, &long, 7, NOW + 60_000);
        for i in 0..5_000u32 {
            let d = if i % 20 == 0 {
                NOW + 60_000
            } else {
                NOW + 1_000
            };
            set(&s, &format!("{i:032}"), i, d);
        }
        let cap = s.inner.read().slab.capacity();
        s.sweep(NOW + 5_000, usize::MAX);
        assert!(s.inner.read().slab.capacity() < cap);
        check_wheel(&s);
        for i in 0..5_000u32 {
            let got = s.get(&format!("{i:032}"), NOW + 5_000);
            assert_eq!(got.is_some(), i % 20 == 0, "{i}");
            if let Some(r) = got {
                assert_eq!(r.data.as_str(), format!("{{\"n\":{i}}}"));
                assert_eq!(r.cookie.expires, Some(NOW + 60_000));
            }
        }
        assert_eq!(s.get(&long, NOW).unwrap().data.as_str(), "{\"n\":7}");
        // Touch and set still work on moved entries.
        s.touch(&long, &record(0).cookie, NOW + 90_000, &limits(), NOW, None)
            .unwrap();
        assert_eq!(
            s.get(&long, NOW).unwrap().cookie.expires,
            Some(NOW + 90_000)
        );
        check_wheel(&s);
    }

    #[test]
    fn snapshot_slices_resume_and_pin_the_slab() {
        let s = Shard::default();
        s.reserve(2_500, true);
        for i in 0..2_500u32 {
            set(
                &s,
                &format!("k{i}"),
                i,
                NOW + 1_000 + i64::from(i % 4 == 0) * 60_000,
            );
        }
        let mut out = Vec::new();
        let mut next = Some(0);
        let mut slices = 0;
        while let Some(from) = next {
            let before = out.len();
            next = s.live_slice(NOW, from, 100, &mut out);
            assert!(out.len() - before <= 100);
            slices += 1;
        }
        assert_eq!(out.len(), 2_500);
        assert!(slices >= 25);
        // A copy in progress: a quarter stay live, the others expire and are swept,
        // but the slab is not compacted under the copy, so no live entry is missed.
        let mut copy = s.live_copy(NOW + 2_000);
        let first = copy.next().unwrap();
        assert_eq!(s.inner.read().copying.load(Ordering::Acquire), 1);
        let cap = s.inner.read().slab.capacity();
        s.sweep(NOW + 2_000, usize::MAX);
        assert_eq!(s.inner.read().slab.capacity(), cap);
        let mut keys: Vec<String> = std::iter::once(first)
            .chain(copy)
            .map(|e| e.0.as_ref().to_owned())
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 625);
        // The copy held off compaction; once dropped, it is unpinned.
        assert!(s.inner.read().slab.sparse());
        assert_eq!(s.inner.read().copying.load(Ordering::Acquire), 0);
    }

    #[test]
    fn shapes_follow_the_entries() {
        let s = Shard::default();
        let mut other = record(1);
        other.cookie.path = Arc::from("/app");
        set(&s, "a", 0, NOW + 10_000);
        set_record(&s, "b", &other, NOW + 10_000);
        assert_eq!(&*s.get("b", NOW).unwrap().cookie.path, "/app");
        // A touch with another shape takes the write path and changes the cookie.
        s.touch("a", &other.cookie, NOW + 20_000, &limits(), NOW, None)
            .unwrap();
        assert_eq!(&*s.get("a", NOW).unwrap().cookie.path, "/app");
        assert_eq!(s.inner.read().shapes.len(), 1);
        s.destroy("a", None).unwrap();
        s.destroy("b", None).unwrap();
        assert_eq!(s.inner.read().shapes.len(), 0);
    }
}
