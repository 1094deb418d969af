//! The expiry index of one shard: a wheel of one-second buckets.
//!
//! Every entry sits in exactly one bucket, the second of the deadline it had when it was
//! placed. Touches move a deadline forward without touching the wheel (the deadline is an
//! atomic beside the entry); when the sweeper reaches a bucket it frees the entries whose
//! deadline has really passed and moves the others to the bucket of their current deadline.
//! So a session is re-bucketed at most once per lifetime, and expired sessions are found
//! without scanning the map.
//!
//! The wheel holds the entries' slab positions (`u32`, see `slab.rs`), not their ids. Each
//! entry remembers its bucket and its slot in that bucket, so removing a destroyed session
//! from the wheel is O(1) (from the front, or `swap_remove` and one slot fix-up).
//!
//! The buckets are kept in two lanes, the sessions that never came back and those that did,
//! and a bucket keeps the order in which entries were placed: so the caps can evict the
//! sessions that never came back first, oldest first (see `policy/`).

use std::collections::{BTreeMap, VecDeque};

/// The bucket of a deadline in milliseconds: its second, clamped to `u32` (deadlines before
/// 1970 share bucket 0, which is always due; those after 2106 share the last one, so a
/// bucket is never later than its entries' deadlines).
pub(crate) fn bucket_of(deadline_ms: i64) -> u32 {
    deadline_ms.div_euclid(1000).clamp(0, u32::MAX as i64) as u32
}

/// The lane of the sessions that have not come back since they were stored.
pub(crate) const NEW: u8 = 0;
/// The lane of the sessions that came back (were read, touched or changed) at least once.
pub(crate) const BACK: u8 = 1;

/// Where an entry sits in the wheel: its lane, its bucket, and its slot there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) lane: u8,
    pub(crate) bucket: u32,
    pub(crate) slot: u32,
}

/// One bucket: positions in the order they were placed (the front is the oldest, give or
/// take the holes a removal from the middle fills with the newest). A slot number is the
/// position's index plus `base`, so taking from the front leaves the others' slots valid.
#[derive(Debug, Default)]
struct Bucket {
    base: u32,
    keys: VecDeque<u32>,
}

impl Bucket {
    fn index(&self, slot: u32) -> usize {
        slot.wrapping_sub(self.base) as usize
    }
}

/// Two lanes of buckets: the sessions that never came back ([`NEW`]) and the others
/// ([`BACK`]), so that eviction can prefer the first (see `policy/`).
#[derive(Debug, Default)]
pub(crate) struct Wheel {
    lanes: [BTreeMap<u32, Bucket>; 2],
    len: [usize; 2],
}

impl Wheel {
    fn lane(&mut self, lane: u8) -> (&mut BTreeMap<u32, Bucket>, &mut usize) {
        let i = usize::from(lane.min(BACK));
        (&mut self.lanes[i], &mut self.len[i])
    }

    /// Puts the entry at slab position `key` in `lane`, in the bucket of `deadline_ms`, and
    /// returns its place.
    pub(crate) fn insert(&mut self, key: u32, deadline_ms: i64, lane: u8) -> Place {
        let bucket = bucket_of(deadline_ms);
        let (buckets, len) = self.lane(lane);
        let b = buckets.entry(bucket).or_default();
        let slot = b.base.wrapping_add(b.keys.len() as u32);
        b.keys.push_back(key);
        *len += 1;
        Place {
            lane: lane.min(BACK),
            bucket,
            slot,
        }
    }

    /// Removes the key at `place`. Returns the key that moved into that slot (whose place
    /// must now be `place`), if any.
    pub(crate) fn remove(&mut self, place: Place) -> Option<u32> {
        let (buckets, len) = self.lane(place.lane);
        let b = buckets.get_mut(&place.bucket)?;
        let i = b.index(place.slot);
        if i >= b.keys.len() {
            return None;
        }
        let moved = if i == 0 {
            // The front: no other key moves, and the order is kept.
            b.keys.pop_front();
            b.base = b.base.wrapping_add(1);
            None
        } else {
            b.keys.swap_remove_back(i);
            b.keys.get(i).copied()
        };
        *len -= 1;
        if b.keys.is_empty() {
            buckets.remove(&place.bucket);
        }
        moved
    }

    /// The earliest bucket (and its lane) whose second has fully passed at `now_ms`, if any.
    pub(crate) fn due(&self, now_ms: i64) -> Option<(u8, u32)> {
        let now = bucket_of(now_ms);
        [NEW, BACK]
            .into_iter()
            .filter_map(|lane| Some((lane, self.earliest(lane)?)))
            .filter(|&(_, b)| b < now)
            .min_by_key(|&(_, b)| b)
    }

    /// Takes up to `budget` keys from the front of `bucket` of `lane` (the remaining slots
    /// stay valid).
    pub(crate) fn take(&mut self, lane: u8, bucket: u32, budget: usize) -> Vec<u32> {
        let (buckets, len) = self.lane(lane);
        let Some(b) = buckets.get_mut(&bucket) else {
            return Vec::new();
        };
        let n = budget.min(b.keys.len());
        let out: Vec<u32> = b.keys.drain(..n).collect();
        b.base = b.base.wrapping_add(n as u32);
        *len -= n;
        if b.keys.is_empty() {
            buckets.remove(&bucket);
        }
        out
    }

    /// The keys in `bucket` of either lane.
    pub(crate) fn keys(&self, bucket: u32) -> Vec<u32> {
        self.lanes
            .iter()
            .filter_map(|l| l.get(&bucket))
            .flat_map(|b| b.keys.iter().copied())
            .collect()
    }

    /// The key at `place`.
    #[cfg(all(test, not(sessile_loom)))]
    pub(crate) fn at(&self, place: Place) -> Option<u32> {
        let b = self.lanes[usize::from(place.lane)].get(&place.bucket)?;
        b.keys.get(b.index(place.slot)).copied()
    }

    /// Records that the entry at `place` now has slab position `key` (it was moved).
    pub(crate) fn set(&mut self, place: Place, key: u32) {
        let (buckets, _) = self.lane(place.lane);
        if let Some(b) = buckets.get_mut(&place.bucket) {
            let i = b.index(place.slot);
            if let Some(k) = b.keys.get_mut(i) {
                *k = key;
            }
        }
    }

    /// The earliest bucket of `lane`, for eviction when a cap is reached.
    pub(crate) fn earliest(&self, lane: u8) -> Option<u32> {
        self.lanes[usize::from(lane.min(BACK))]
            .first_key_value()
            .map(|(&b, _)| b)
    }

    /// The keys of `lane` from its earliest bucket on, each with its bucket, oldest first
    /// within a bucket.
    pub(crate) fn oldest(&self, lane: u8) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.lanes[usize::from(lane.min(BACK))]
            .iter()
            .flat_map(|(&bucket, b)| b.keys.iter().map(move |&k| (bucket, k)))
    }

    /// How many entries `lane` holds.
    pub(crate) fn lane_len(&self, lane: u8) -> usize {
        self.len[usize::from(lane.min(BACK))]
    }

    pub(crate) fn clear(&mut self) {
        self.lanes.iter_mut().for_each(BTreeMap::clear);
        self.len = [0; 2];
    }

    #[cfg(all(test, not(sessile_loom)))]
    pub(crate) fn len(&self) -> usize {
        self.len[0] + self.len[1]
    }
}

#[cfg(all(test, not(sessile_loom)))]
mod tests {
    use super::*;

    #[test]
    fn remove_fixes_up_the_moved_slot() {
        let mut w = Wheel::default();
        let a = w.insert(10, 1500, NEW);
        let b = w.insert(11, 1200, NEW);
        let c = w.insert(12, 1999, NEW);
        assert_eq!((a.bucket, a.slot, b.slot, c.slot), (1, 0, 1, 2));
        // From the middle: the last key fills the hole.
        assert_eq!(w.remove(b), Some(12));
        w.set(b, 13);
        assert_eq!(w.keys(1), &[10, 13]);
        // From the front: nothing moves, the other slots stay valid.
        assert_eq!(w.remove(a), None);
        assert_eq!(w.at(b), Some(13));
        assert_eq!(w.len(), 1);
        assert_eq!(w.due(2000), Some((NEW, 1)));
        assert_eq!(w.due(1999), None);
        let taken = w.take(NEW, 1, 10);
        assert_eq!(taken, vec![13]);
        assert_eq!(w.len(), 0);
        assert_eq!(w.earliest(NEW), None);
    }

    #[test]
    fn lanes_keep_their_order_and_take_from_the_front() {
        let mut w = Wheel::default();
        let places: Vec<Place> = (0..5).map(|k| w.insert(k, 1_000, NEW)).collect();
        let back = w.insert(9, 500, BACK);
        assert_eq!((w.lane_len(NEW), w.lane_len(BACK)), (5, 1));
        assert_eq!(w.due(5_000), Some((BACK, 0)));
        let order: Vec<u32> = w.oldest(NEW).map(|(_, k)| k).collect();
        assert_eq!(order, [0, 1, 2, 3, 4]);
        assert_eq!(w.take(NEW, 1, 2), vec![0, 1]);
        // The slots left behind still address their keys.
        assert_eq!(w.at(places[3]), Some(3));
        assert_eq!(w.remove(places[2]), None);
        assert_eq!(w.remove(places[3]), None);
        assert_eq!(w.at(places[4]), Some(4));
        assert_eq!(w.remove(back), None);
        assert_eq!(w.earliest(BACK), None);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn buckets_clamp_to_u32() {
        assert_eq!(bucket_of(-1), 0);
        assert_eq!(bucket_of(i64::MIN), 0);
        assert_eq!(bucket_of(1999), 1);
        assert_eq!(bucket_of(i64::MAX), u32::MAX);
        let mut w = Wheel::default();
        w.insert(1, -5_000, NEW);
        assert_eq!(w.due(1_000), Some((NEW, 0)));
        w.insert(2, i64::MAX, BACK);
        assert_eq!(w.take(NEW, 0, 9), vec![1]);
        assert_eq!(w.due(i64::MAX), None);
        assert_eq!(w.earliest(BACK), Some(u32::MAX));
    }
}
