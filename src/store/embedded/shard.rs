//! One shard of the embedded store: a map from id to entry and its expiry wheel, under one
//! reader-writer lock.
//!
//! Reads (`get`) and plain touches take the read lock: an entry's deadline is an atomic, so a
//! touch that only moves the expiry needs no exclusive lock. Everything that changes the map
//! or the wheel takes the write lock.

use std::collections::HashMap;

use super::expiry::{bucket_of, Place, Wheel};
use crate::error::StoreError;
use crate::record::{Changes, CookieRecord, Record};
use crate::store::Applied;
use std::sync::Arc;

use crate::sync::{AtomicI64, Ordering, RwLock};

/// Bytes charged per entry on top of its id and data, for the memory cap.
const ENTRY_OVERHEAD: usize = 160;

pub(crate) struct Entry {
    /// When the entry expires, in ms since the epoch (the cookie's `expires`, or the idle
    /// deadline of a browser-session cookie).
    deadline: AtomicI64,
    /// The record; its `cookie.expires` is refreshed from `deadline` when read.
    record: Record,
    place: Place,
    bytes: usize,
}

impl Entry {
    fn deadline(&self) -> i64 {
        self.deadline.load(Ordering::Acquire)
    }

    fn live_at(&self, now_ms: i64) -> bool {
        self.deadline() > now_ms
    }

    fn record(&self) -> Record {
        let mut r = self.record.clone();
        if r.cookie.expires.is_some() {
            r.cookie.expires = Some(self.deadline());
        }
        r
    }
}

/// The shard's limits (the store's caps divided by the number of shards).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_entries: usize,
    pub(crate) max_bytes: usize,
    /// The idle lifetime of a session whose cookie has no expiry.
    pub(crate) default_ttl_ms: i64,
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
    bytes: usize,
}

#[derive(Default)]
pub(crate) struct Shard {
    inner: RwLock<Inner>,
}

/// Two cookies that differ at most in `expires` (a touch that only moves the expiry).
fn same_shape(a: &CookieRecord, b: &CookieRecord) -> bool {
    a.expires.is_some() == b.expires.is_some()
        && a.original_max_age == b.original_max_age
        && a.secure == b.secure
        && a.http_only == b.http_only
        && a.domain == b.domain
        && a.path == b.path
        && a.same_site == b.same_site
        && a.partitioned == b.partitioned
        && a.priority == b.priority
}

impl Inner {
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        self.bytes -= entry.bytes;
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
        self.map.insert(
            key,
            Entry {
                deadline: AtomicI64::new(deadline),
                record,
                place,
                bytes,
            },
        );
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

    /// Evicts the entries closest to expiry until the limits hold.
    fn enforce(&mut self, limits: &Limits, now_ms: i64) {
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
                    if e.place.bucket == bucket {
                        if let Some(e) = self.map.remove(&key) {
                            self.bytes -= e.bytes;
                        }
                    }
                }
            }
        }
    }
}

impl Shard {
    pub(crate) fn get(&self, key: &str, now_ms: i64) -> Option<Record> {
        let g = self.inner.read();
        let e = g.map.get(key)?;
        e.live_at(now_ms).then(|| e.record())
    }

    pub(crate) fn set(&self, key: &str, record: Record, limits: &Limits, now_ms: i64) {
        let deadline = limits.deadline(&record.cookie, now_ms);
        let mut g = self.inner.write();
        g.sweep(now_ms, 8);
        g.remove(key);
        if deadline <= now_ms {
            // Already expired: storing it would only keep garbage.
            return;
        }
        g.insert(Arc::from(key), record, deadline);
        g.enforce(limits, now_ms);
    }

    pub(crate) fn apply(
        &self,
        key: &str,
        changes: &Changes,
        limits: &Limits,
        now_ms: i64,
    ) -> Result<Applied, StoreError> {
        let deadline = limits.deadline(&changes.cookie, now_ms);
        let mut g = self.inner.write();
        g.sweep(now_ms, 8);
        let Some(e) = g.map.get_mut(key) else {
            return Ok(Applied::Missing);
        };
        if !e.live_at(now_ms) {
            g.remove(key);
            return Ok(Applied::Missing);
        }
        if deadline <= now_ms {
            g.remove(key);
            return Ok(Applied::Applied);
        }
        let data = changes.apply_to_data(&e.record.data)?;
        let bytes = ENTRY_OVERHEAD + key.len() + data.len();
        let delta = bytes as isize - e.bytes as isize;
        e.record = Record {
            cookie: changes.cookie.clone(),
            data,
        };
        e.bytes = bytes;
        e.deadline.store(deadline, Ordering::Release);
        g.bytes = (g.bytes as isize + delta) as usize;
        g.rebucket_if_earlier(key, deadline);
        g.enforce(limits, now_ms);
        Ok(Applied::Applied)
    }

    pub(crate) fn touch(&self, key: &str, cookie: &CookieRecord, limits: &Limits, now_ms: i64) {
        let deadline = limits.deadline(cookie, now_ms);
        {
            let g = self.inner.read();
            let Some(e) = g.map.get(key) else { return };
            if !e.live_at(now_ms) {
                return;
            }
            let current = e.deadline();
            if same_shape(&e.record.cookie, cookie) && deadline >= current {
                // Moving the deadline forward is all a plain touch does. A racing touch may
                // have moved it further; keep the later one.
                e.deadline.fetch_max(deadline, Ordering::AcqRel);
                return;
            }
        }
        let mut g = self.inner.write();
        let Some(e) = g.map.get_mut(key) else { return };
        if !e.live_at(now_ms) {
            return;
        }
        if deadline <= now_ms {
            g.remove(key);
            return;
        }
        e.record.cookie = cookie.clone();
        e.deadline.store(deadline, Ordering::Release);
        g.rebucket_if_earlier(key, deadline);
    }

    pub(crate) fn destroy(&self, key: &str) {
        let mut g = self.inner.write();
        g.remove(key);
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

    pub(crate) fn for_each_live(&self, now_ms: i64, mut f: impl FnMut(&str, Record)) {
        let g = self.inner.read();
        for (k, e) in &g.map {
            if e.live_at(now_ms) {
                f(k, e.record());
            }
        }
    }

    pub(crate) fn count_live(&self, now_ms: i64) -> usize {
        let g = self.inner.read();
        g.map.values().filter(|e| e.live_at(now_ms)).count()
    }

    pub(crate) fn clear(&self) {
        let mut g = self.inner.write();
        g.map = Map::default();
        g.wheel.clear();
        g.bytes = 0;
    }

    /// Entries held (live or not yet swept) and bytes charged.
    pub(crate) fn usage(&self) -> (usize, usize) {
        let g = self.inner.read();
        (g.map.len(), g.bytes)
    }
}
