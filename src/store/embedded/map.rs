//! The data of one shard, as its lock guards it: the entries ([`Slab`]), their expiry wheel
//! ([`Wheel`]) and their cookie shapes ([`Shapes`]), with the bytes they are charged; and the
//! operations that keep the three in step (insert, replace, remove, place in the wheel).
//!
//! What to sweep, evict or compact is decided by the policy (`policy/`), which works on this
//! map; when it is done under which lock, by the shard (`shard/`).

use super::expiry::{bucket_of, Place, Wheel, BACK, NEW};
use super::owners::Owners;
use super::shape::Shapes;
use super::slab::{Entry, New, Slab};
use crate::record::{CookieRecord, Data, Record};
use crate::sync::{AtomicU64, Ordering};

/// Bytes charged per entry on top of its id and data, for the memory cap.
const ENTRY_OVERHEAD: usize = 160;

/// The bytes charged for an entry with an id of `key_len` bytes and `data`.
pub(crate) fn charge(key_len: usize, data: &Data) -> usize {
    ENTRY_OVERHEAD + key_len + data.len()
}

impl Entry {
    #[inline]
    pub(crate) fn deadline(&self) -> i64 {
        self.deadline.load(Ordering::Acquire)
    }

    #[inline]
    pub(crate) fn live_at(&self, now_ms: i64) -> bool {
        self.deadline() > now_ms
    }

    #[inline]
    pub(crate) fn place(&self) -> Place {
        Place {
            lane: self.lane,
            bucket: self.bucket,
            slot: self.slot,
        }
    }

    /// Whether the session came back since it was stored.
    #[inline]
    pub(crate) fn is_back(&self) -> bool {
        self.returned.load(Ordering::Relaxed)
    }

    /// Notes that the session came back (a read, touch or change after it was stored). Only
    /// the first time writes to the entry.
    #[inline]
    pub(crate) fn came_back(&self) {
        if !self.returned.load(Ordering::Relaxed) {
            self.returned.store(true, Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn record(&self, shapes: &Shapes) -> Record {
        Record {
            cookie: shapes.cookie(self.shape, self.deadline()),
            data: self.data.clone(),
        }
    }
}

/// One shard's entries, wheel and shapes.
pub(crate) struct Map {
    pub(crate) slab: Slab,
    pub(crate) wheel: Wheel,
    pub(crate) shapes: Shapes,
    /// Which entries belong to which owner, kept in step by every insert, replace and
    /// removal here.
    pub(crate) owners: Owners,
    /// Bytes charged for the entries ([`charge`]).
    pub(crate) bytes: usize,
    /// The (entries, bytes) last added to the store's caps.
    pub(crate) recorded: (usize, usize),
    /// Snapshot copies in progress (taken under the read lock); the slab is not compacted
    /// while there is one.
    pub(crate) copying: AtomicU64,
    /// Live sessions evicted to make room, since the store opened (statistics).
    pub(crate) evicted: u64,
    /// Expired sessions freed (by sweeps, and evictions of expired ones) since the store
    /// opened (statistics).
    pub(crate) expired: u64,
}

impl Default for Map {
    fn default() -> Self {
        Map {
            slab: Slab::default(),
            wheel: Wheel::default(),
            shapes: Shapes::default(),
            owners: Owners::default(),
            bytes: 0,
            recorded: (0, 0),
            copying: AtomicU64::new(0),
            evicted: 0,
            expired: 0,
        }
    }
}

impl Map {
    /// Entries held (live or not yet swept) and bytes charged.
    #[inline]
    pub(crate) fn holds(&self) -> (usize, usize) {
        (self.slab.len(), self.bytes)
    }

    /// The bytes charged for the entry at `pos`.
    pub(crate) fn charge_at(&self, pos: u32) -> usize {
        self.slab
            .get(pos)
            .map_or(0, |e| charge(self.slab.key_len(pos), &e.data))
    }

    /// Removes the entry at `pos` from the slab, the wheel and the shapes.
    pub(crate) fn remove_at(&mut self, pos: u32) -> Option<Entry> {
        let key_len = self.slab.key_len(pos);
        self.owners.forget(self.slab.key(pos));
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

    /// Removes the entry at `pos`, already taken out of the wheel, from the slab and the
    /// shapes. Returns whether there was one.
    pub(crate) fn remove_unplaced(&mut self, pos: u32) -> bool {
        let key_len = self.slab.key_len(pos);
        self.owners.forget(self.slab.key(pos));
        let Some(e) = self.slab.remove(pos) else {
            return false;
        };
        self.bytes = self.bytes.saturating_sub(charge(key_len, &e.data));
        self.shapes.release(e.shape);
        true
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<Entry> {
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
        self.owners.note(key, &record.data);
        self.bytes += bytes;
    }

    /// Drops every entry (and their memory).
    pub(crate) fn clear(&mut self) {
        self.slab.clear();
        self.wheel.clear();
        self.shapes.clear();
        self.owners.clear();
        self.bytes = 0;
    }

    /// Replaces the data, cookie and deadline of the entry at `pos` in place (no new id, no
    /// wheel change unless the deadline's bucket gets earlier). The owner index looks at the
    /// new data only when `owner_may_change` (a whole record written, or changes naming the
    /// owner's field: see `Owners::may_change`) and the data is not the same.
    pub(crate) fn replace(
        &mut self,
        pos: u32,
        data: Data,
        cookie: &CookieRecord,
        deadline: i64,
        owner_may_change: bool,
    ) {
        let key_len = self.slab.key_len(pos);
        let Some(e) = self.slab.get(pos) else {
            return;
        };
        if owner_may_change && !e.data.same(&data) {
            self.owners.note(self.slab.key(pos), &data);
        }
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
        e.logged.set(deadline);
        self.rebucket_if_earlier(pos, deadline);
    }

    /// Replaces the record under `key` in place when there is one (which then came back if
    /// `back`), or inserts it.
    pub(crate) fn upsert(&mut self, key: &str, record: &Record, deadline: i64, back: bool) {
        match self.slab.find(key) {
            Some(pos) => {
                if let (Some(e), true) = (self.slab.get(pos), back) {
                    e.came_back();
                }
                self.replace(pos, record.data.clone(), &record.cookie, deadline, true);
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
        self.rebucket(pos, deadline);
    }

    /// Puts the entry at `pos` (not in the wheel) in the bucket of `deadline`, in the lane
    /// of the sessions that came back if it did.
    pub(crate) fn place(&mut self, pos: u32, deadline: i64) {
        let lane = match self.slab.get(pos) {
            Some(e) if e.is_back() => BACK,
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
    pub(crate) fn unplace(&mut self, pos: u32) {
        let Some(place) = self.slab.get(pos).map(Entry::place) else {
            return;
        };
        if let Some(moved) = self.wheel.remove(place) {
            if let Some(m) = self.slab.get_mut(moved) {
                m.slot = place.slot;
            }
        }
    }

    /// Moves the entry at `pos` to the bucket of `deadline`, in the lane it belongs in now.
    pub(crate) fn rebucket(&mut self, pos: u32, deadline: i64) {
        self.unplace(pos);
        self.place(pos, deadline);
    }
}
