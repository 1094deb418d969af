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
//! entry remembers its bucket and its slot in that bucket's vector, so removing a destroyed
//! session from the wheel is O(1) (`swap_remove` and one slot fix-up).

use std::collections::BTreeMap;

/// The bucket of a deadline in milliseconds: its second, clamped to `u32` (deadlines before
/// 1970 share bucket 0, which is always due; those after 2106 share the last one, so a
/// bucket is never later than its entries' deadlines).
pub(crate) fn bucket_of(deadline_ms: i64) -> u32 {
    deadline_ms.div_euclid(1000).clamp(0, u32::MAX as i64) as u32
}

/// Where an entry sits in the wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) bucket: u32,
    pub(crate) slot: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Wheel {
    buckets: BTreeMap<u32, Vec<u32>>,
    len: usize,
}

impl Wheel {
    /// Puts the entry at slab position `key` in the bucket of `deadline_ms` and returns its
    /// place.
    pub(crate) fn insert(&mut self, key: u32, deadline_ms: i64) -> Place {
        let bucket = bucket_of(deadline_ms);
        let v = self.buckets.entry(bucket).or_default();
        v.push(key);
        self.len += 1;
        Place {
            bucket,
            slot: (v.len() - 1) as u32,
        }
    }

    /// Removes the key at `place`. Returns the key that moved into that slot (whose place
    /// must now be `place`), if any.
    pub(crate) fn remove(&mut self, place: Place) -> Option<u32> {
        let v = self.buckets.get_mut(&place.bucket)?;
        let slot = place.slot as usize;
        if slot >= v.len() {
            return None;
        }
        v.swap_remove(slot);
        self.len -= 1;
        let moved = v.get(slot).copied();
        if v.is_empty() {
            self.buckets.remove(&place.bucket);
        }
        moved
    }

    /// The earliest bucket whose second has fully passed at `now_ms`, if any.
    pub(crate) fn due(&self, now_ms: i64) -> Option<u32> {
        let (&b, _) = self.buckets.first_key_value()?;
        (b < bucket_of(now_ms)).then_some(b)
    }

    /// Takes up to `budget` keys from the end of `bucket` (so the remaining slots stay valid).
    pub(crate) fn take(&mut self, bucket: u32, budget: usize) -> Vec<u32> {
        let Some(v) = self.buckets.get_mut(&bucket) else {
            return Vec::new();
        };
        let n = budget.min(v.len());
        let out = v.split_off(v.len() - n);
        self.len -= out.len();
        if v.is_empty() {
            self.buckets.remove(&bucket);
        }
        out
    }

    /// The keys in `bucket`.
    pub(crate) fn keys(&self, bucket: u32) -> &[u32] {
        self.buckets.get(&bucket).map_or(&[], Vec::as_slice)
    }

    /// Records that the entry at `place` now has slab position `key` (it was moved).
    pub(crate) fn set(&mut self, place: Place, key: u32) {
        if let Some(k) = self
            .buckets
            .get_mut(&place.bucket)
            .and_then(|v| v.get_mut(place.slot as usize))
        {
            *k = key;
        }
    }

    /// The earliest bucket, for eviction when a cap is reached.
    pub(crate) fn earliest(&self) -> Option<u32> {
        self.buckets.first_key_value().map(|(&b, _)| b)
    }

    pub(crate) fn clear(&mut self) {
        self.buckets.clear();
        self.len = 0;
    }

    #[cfg(all(test, not(sessile_loom)))]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(all(test, not(sessile_loom)))]
mod tests {
    use super::*;

    #[test]
    fn remove_fixes_up_the_moved_slot() {
        let mut w = Wheel::default();
        let a = w.insert(10, 1500);
        let b = w.insert(11, 1200);
        let c = w.insert(12, 1999);
        assert_eq!((a.bucket, a.slot, b.slot, c.slot), (1, 0, 1, 2));
        assert_eq!(w.remove(a), Some(12));
        w.set(a, 13);
        assert_eq!(w.keys(1), &[13, 11]);
        assert_eq!(w.len(), 2);
        assert_eq!(w.due(2000), Some(1));
        assert_eq!(w.due(1999), None);
        let taken = w.take(1, 10);
        assert_eq!(taken.len(), 2);
        assert_eq!(w.len(), 0);
        assert_eq!(w.earliest(), None);
    }

    #[test]
    fn buckets_clamp_to_u32() {
        assert_eq!(bucket_of(-1), 0);
        assert_eq!(bucket_of(i64::MIN), 0);
        assert_eq!(bucket_of(1999), 1);
        assert_eq!(bucket_of(i64::MAX), u32::MAX);
        let mut w = Wheel::default();
        w.insert(1, -5_000);
        assert_eq!(w.due(1_000), Some(0));
        w.insert(2, i64::MAX);
        assert_eq!(w.take(0, 9), vec![1]);
        assert_eq!(w.due(i64::MAX), None);
        assert_eq!(w.earliest(), Some(u32::MAX));
    }
}
