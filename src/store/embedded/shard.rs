//! One shard of the embedded store: a map from id to entry and its expiry wheel, under one
//! reader-writer lock.
//!
//! Reads (`get`) and plain touches take the read lock: an entry's deadline is an atomic, so a
//! touch that only moves the expiry needs no exclusive lock. Everything that changes the map
//! or the wheel takes the write lock.

use std::collections::HashMap;

use super::expiry::{bucket_of, Place, Wheel};
use super::shape::Shapes;
use crate::error::StoreError;
use crate::record::{Changes, CookieRecord, Data, Record};
use crate::store::Applied;
use std::sync::Arc;

use super::durable::wal::Wal;
use super::durable::Op;
use crate::sync::{AtomicI64, Ordering, RwLock, WriteGuard};

/// Bytes charged per entry on top of its id and data, for the memory cap.
const ENTRY_OVERHEAD: usize = 160;

pub(crate) struct Entry {
    /// When the entry expires, in ms since the epoch (the cookie's `expires`, or the idle
    /// deadline of a browser-session cookie).
    deadline: AtomicI64,
    /// The application's fields.
    data: Data,
    /// The cookie's shape in the shard's [`Shapes`] (all but `expires`, which is `deadline`).
    shape: u32,
    place: Place,
    bytes: usize,
    /// The deadline last written to the log (touches that move it less are not logged).
    logged: AtomicI64,
}

impl Entry {
    fn deadline(&self) -> i64 {
        self.deadline.load(Ordering::Acquire)
    }

    fn live_at(&self, now_ms: i64) -> bool {
        self.deadline() > now_ms
    }

    fn record(&self, shapes: &Shapes) -> Record {
        Record {
            cookie: shapes.cookie(self.shape, self.deadline()),
            data: self.data.clone(),
        }
    }
}

/// The shard's limits (the store's caps divided by the number of shards).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_entries: usize,
    pub(crate) max_bytes: usize,
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

type Map = HashMap<Arc<str>, Entry, ahash::RandomState>;

#[derive(Default)]
struct Inner {
    map: Map,
    wheel: Wheel,
    shapes: Shapes,
    bytes: usize,
}

#[derive(Default)]
pub(crate) struct Shard {
    inner: RwLock<Inner>,
}

impl Inner {
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        self.bytes -= entry.bytes;
        self.shapes.release(entry.shape);
        if let Some(moved) = self.wheel.remove(entry.place) {
            if let Some(e) = self.map.get_mut(&moved) {
                e.place = entry.place;
            }
        }
        Some(entry)
    }

    fn insert(&mut self, key: Arc<str>, record: Record, deadline: i64) {
        let bytes = ENTRY_OVERHEAD + key.len() + record.data.len();
        let place = self.wheel.insert(key.clone(), deadline);
        self.bytes += bytes;
        let shape = self.shapes.intern(&record.cookie);
        self.map.insert(
            key,
            Entry {
                deadline: AtomicI64::new(deadline),
                data: record.data,
                shape,
                place,
                bytes,
                logged: AtomicI64::new(deadline),
            },
        );
    }

    /// Drops every entry (and the memory of the map).
    fn clear(&mut self) {
        self.map = Map::default();
        self.wheel.clear();
        self.shapes.clear();
        self.bytes = 0;
    }

    /// Replaces the record under `key` in place when there is one (no new key, no wheel
    /// change unless the deadline's bucket gets earlier), or inserts it.
    fn upsert(&mut self, key: &str, record: Record, deadline: i64) {
        if let Some(e) = self.map.get_mut(key) {
            let bytes = ENTRY_OVERHEAD + key.len() + record.data.len();
            let delta = bytes as isize - e.bytes as isize;
            self.shapes.reshape(&mut e.shape, &record.cookie);
            e.data = record.data;
            e.bytes = bytes;
            e.deadline.store(deadline, Ordering::Release);
            e.logged.store(deadline, Ordering::Release);
            self.bytes = (self.bytes as isize + delta) as usize;
            self.rebucket_if_earlier(key, deadline);
            return;
        }
        self.insert(Arc::from(key), record, deadline);
    }

    /// Moves an entry whose deadline is now earlier than its bucket, so the sweeper frees it
    /// on time.
    fn rebucket_if_earlier(&mut self, key: &str, deadline: i64) {
        let Some((k, e)) = self.map.get_key_value(key) else {
            return;
        };
        if bucket_of(deadline) >= e.place.bucket {
            return;
        }
        let (k, old) = (k.clone(), e.place);
        if let Some(moved) = self.wheel.remove(old) {
            if let Some(m) = self.map.get_mut(&moved) {
                m.place = old;
            }
        }
        let place = self.wheel.insert(k, deadline);
        if let Some(e) = self.map.get_mut(key) {
            e.place = place;
        }
    }

    /// Frees expired entries of due buckets, at most `budget` keys looked at.
    fn sweep(&mut self, now_ms: i64, mut budget: usize) -> usize {
        let mut freed = 0;
        while budget > 0 {
            let Some(bucket) = self.wheel.due(now_ms) else {
                break;
            };
            let keys = self.wheel.take(bucket, budget);
            budget -= keys.len();
            for key in keys {
                let Some(e) = self.map.get(&key) else {
                    continue;
                };
                if e.place.bucket != bucket {
                    continue;
                }
                let deadline = e.deadline();
                if deadline <= now_ms {
                    // `take` already removed it from the wheel.
                    if let Some(e) = self.map.remove(&key) {
                        self.bytes -= e.bytes;
                        self.shapes.release(e.shape);
                        freed += 1;
                    }
                } else {
                    let place = self.wheel.insert(key.clone(), deadline);
                    if let Some(e) = self.map.get_mut(&key) {
                        e.place = place;
                    }
                }
            }
        }
        if freed > 0 && self.map.capacity() > 64 && self.map.len() * 4 < self.map.capacity() {
            // Give memory back once most of the shard has expired.
            let target = self.map.len() * 2;
            self.map.shrink_to(target);
        }
        freed
    }

    /// Evicts the entries closest to expiry until the limits hold. Evictions are logged so a
    /// restart does not bring them back.
    fn enforce(&mut self, limits: &Limits, now_ms: i64, log: Option<&Wal>) {
        let over = |s: &Self| s.map.len() > limits.max_entries || s.bytes > limits.max_bytes;
        if !over(self) {
            return;
        }
        self.sweep(now_ms, 64);
        while over(self) {
            let Some(bucket) = self.wheel.earliest() else {
                break;
            };
            let keys = self.wheel.take(bucket, 1);
            for key in keys {
                if let Some(e) = self.map.get(&key) {
                    let deadline = e.deadline();
                    if e.place.bucket == bucket && bucket_of(deadline) > bucket {
                        // Touched or changed since it was placed: it expires later than its
                        // bucket says. Move it to its own bucket rather than evict it.
                        let place = self.wheel.insert(key.clone(), deadline);
                        if let Some(e) = self.map.get_mut(&key) {
                            e.place = place;
                        }
                        continue;
                    }
                    if e.place.bucket == bucket {
                        if let Some(w) = log {
                            // Best effort: if the log refuses, the eviction still frees memory.
                            let _ = w.append(&Op::Destroy {
                                sid: key.to_string(),
                            });
                        }
                        if let Some(e) = self.map.remove(&key) {
                            self.bytes -= e.bytes;
                            self.shapes.release(e.shape);
                        }
                    }
                }
            }
        }
    }
}

fn append(log: Option<&Wal>, op: impl FnOnce() -> Op) -> Result<Option<u64>, StoreError> {
    match log {
        Some(w) => w.append(&op()).map(Some),
        None => Ok(None),
    }
}

impl Shard {
    pub(crate) fn get(&self, key: &str, now_ms: i64) -> Option<Record> {
        let g = self.inner.read();
        let e = g.map.get(key)?;
        e.live_at(now_ms).then(|| e.record(&g.shapes))
    }

    /// Stores a whole record. With a log, the record is logged first (while the lock is held,
    /// so the log's order for this id is the memory's); a refused log write changes nothing.
    pub(crate) fn set(
        &self,
        key: &str,
        record: Record,
        deadline: i64,
        limits: &Limits,
        now_ms: i64,
        log: Option<&Wal>,
    ) -> Result<Option<u64>, StoreError> {
        let mut g = self.inner.write();
        let seq = append(log, || Op::Set {
            sid: key.to_owned(),
            record: record.clone(),
            deadline,
        })?;
        g.sweep(now_ms, 8);
        if deadline > now_ms {
            g.upsert(key, record, deadline);
            g.enforce(limits, now_ms, log);
        } else {
            // Already expired: storing it would only keep garbage.
            g.remove(key);
        }
        Ok(seq)
    }

    pub(crate) fn apply(
        &self,
        key: &str,
        changes: &Changes,
        deadline: i64,
        limits: &Limits,
        now_ms: i64,
        log: Option<&Wal>,
    ) -> Result<(Applied, Option<u64>), StoreError> {
        let mut g = self.inner.write();
        g.sweep(now_ms, 8);
        let g = &mut *g;
        let Some(e) = g.map.get_mut(key) else {
            return Ok((Applied::Missing, None));
        };
        if !e.live_at(now_ms) {
            return Ok((Applied::Missing, None));
        }
        let data = changes.apply_to_data(&e.data)?;
        let seq = append(log, || Op::Apply {
            sid: key.to_owned(),
            changes: changes.clone(),
            deadline,
        })?;
        if deadline <= now_ms {
            g.remove(key);
            return Ok((Applied::Applied, seq));
        }
        let bytes = ENTRY_OVERHEAD + key.len() + data.len();
        let delta = bytes as isize - e.bytes as isize;
        g.shapes.reshape(&mut e.shape, &changes.cookie);
        e.data = data;
        e.bytes = bytes;
        e.deadline.store(deadline, Ordering::Release);
        e.logged.store(deadline, Ordering::Release);
        g.bytes = (g.bytes as isize + delta) as usize;
        g.rebucket_if_earlier(key, deadline);
        g.enforce(limits, now_ms, log);
        Ok((Applied::Applied, seq))
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
            let Some(e) = g.map.get(key) else {
                return Ok(None);
            };
            if !e.live_at(now_ms) {
                return Ok(None);
            }
            if g.shapes.matches(e.shape, cookie) && deadline >= e.deadline() {
                // A racing touch may have moved it further; keep the later one.
                let deadline = e
                    .deadline
                    .fetch_max(deadline, Ordering::AcqRel)
                    .max(deadline);
                let window = limits
                    .touch_log_ms
                    .max(cookie.original_max_age.unwrap_or(0) / 100);
                if log.is_none() || deadline - e.logged.load(Ordering::Acquire) <= window {
                    return Ok(None);
                }
                let seq = append(log, || Op::Touch {
                    sid: key.to_owned(),
                    cookie: cookie.clone(),
                    deadline,
                })?;
                e.logged.fetch_max(deadline, Ordering::AcqRel);
                return Ok(seq);
            }
        }
        let mut g = self.inner.write();
        let g = &mut *g;
        let Some(e) = g.map.get_mut(key) else {
            return Ok(None);
        };
        if !e.live_at(now_ms) {
            return Ok(None);
        }
        let seq = append(log, || Op::Touch {
            sid: key.to_owned(),
            cookie: cookie.clone(),
            deadline,
        })?;
        if deadline <= now_ms {
            g.remove(key);
            return Ok(seq);
        }
        g.shapes.reshape(&mut e.shape, cookie);
        e.deadline.store(deadline, Ordering::Release);
        e.logged.store(deadline, Ordering::Release);
        g.rebucket_if_earlier(key, deadline);
        Ok(seq)
    }

    pub(crate) fn destroy(&self, key: &str, log: Option<&Wal>) -> Result<Option<u64>, StoreError> {
        let mut g = self.inner.write();
        if !g.map.contains_key(key) {
            return Ok(None);
        }
        let seq = append(log, || Op::Destroy {
            sid: key.to_owned(),
        })?;
        g.remove(key);
        Ok(seq)
    }

    /// Applies a recovered log record: no log, no expiry checks (expired sessions are purged
    /// after the whole log is replayed), no caps.
    pub(crate) fn replay(&self, op: Op) {
        let mut g = self.inner.write();
        let g = &mut *g;
        match op {
            Op::Set {
                sid,
                record,
                deadline,
            } => {
                g.upsert(&sid, record, deadline);
            }
            Op::Apply {
                sid,
                changes,
                deadline,
            } => {
                let Some(e) = g.map.get_mut(sid.as_str()) else {
                    return;
                };
                // A record whose data cannot be parsed keeps its data; the cookie still moves.
                if let Ok(data) = changes.apply_to_data(&e.data) {
                    let bytes = ENTRY_OVERHEAD + sid.len() + data.len();
                    let delta = bytes as isize - e.bytes as isize;
                    e.data = data;
                    e.bytes = bytes;
                    g.bytes = (g.bytes as isize + delta) as usize;
                }
                g.shapes.reshape(&mut e.shape, &changes.cookie);
                e.deadline.store(deadline, Ordering::Release);
                e.logged.store(deadline, Ordering::Release);
                g.rebucket_if_earlier(&sid, deadline);
            }
            Op::Touch {
                sid,
                cookie,
                deadline,
            } => {
                let Some(e) = g.map.get_mut(sid.as_str()) else {
                    return;
                };
                g.shapes.reshape(&mut e.shape, &cookie);
                e.deadline.store(deadline, Ordering::Release);
                e.logged.store(deadline, Ordering::Release);
                g.rebucket_if_earlier(&sid, deadline);
            }
            Op::Destroy { sid } => {
                g.remove(&sid);
            }
            Op::Clear => g.clear(),
        }
    }

    pub(crate) fn sweep(&self, now_ms: i64, budget: usize) -> usize {
        {
            let g = self.inner.read();
            if g.wheel.due(now_ms).is_none() {
                return 0;
            }
        }
        self.inner.write().sweep(now_ms, budget)
    }

    /// Whether a bucket whose second has passed waits to be swept.
    pub(crate) fn has_due(&self, now_ms: i64) -> bool {
        self.inner.read().wheel.due(now_ms).is_some()
    }

    /// Frees the expired entries of the bucket of `now_ms`, the second that is not over
    /// yet and that sweeps leave alone (an entry's bucket is never later than its deadline's,
    /// so this and the due buckets hold every expired entry). Scans that one bucket.
    pub(crate) fn purge_current(&self, now_ms: i64) -> usize {
        let mut g = self.inner.write();
        let expired: Vec<Arc<str>> = g
            .wheel
            .keys(bucket_of(now_ms))
            .iter()
            .filter(|k| g.map.get(&***k).is_some_and(|e| !e.live_at(now_ms)))
            .cloned()
            .collect();
        for key in &expired {
            g.remove(key);
        }
        expired.len()
    }

    pub(crate) fn for_each_live(&self, now_ms: i64, mut f: impl FnMut(&str, Record)) {
        let g = self.inner.read();
        for (k, e) in &g.map {
            if e.live_at(now_ms) {
                f(k, e.record(&g.shapes));
            }
        }
    }

    /// The live entries with their deadlines (for a snapshot). Only reference counts are
    /// taken under the lock; the copying happens after it.
    pub(crate) fn live_entries(&self, now_ms: i64) -> Vec<(Arc<str>, Record, i64)> {
        let g = self.inner.read();
        g.map
            .iter()
            .filter(|(_, e)| e.live_at(now_ms))
            .map(|(k, e)| (k.clone(), e.record(&g.shapes), e.deadline()))
            .collect()
    }

    pub(crate) fn count_live(&self, now_ms: i64) -> usize {
        let g = self.inner.read();
        g.map.values().filter(|e| e.live_at(now_ms)).count()
    }

    /// Takes the write lock for `clear` (all shards are locked, in order, before the clear is
    /// logged).
    pub(crate) fn lock_for_clear(&self) -> ClearGuard<'_> {
        ClearGuard(self.inner.write())
    }

    /// Entries held (live or not yet swept) and bytes charged.
    pub(crate) fn usage(&self) -> (usize, usize) {
        let g = self.inner.read();
        (g.map.len(), g.bytes)
    }
}

/// A shard locked for `clear`.
pub(crate) struct ClearGuard<'a>(WriteGuard<'a, Inner>);

impl ClearGuard<'_> {
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}
