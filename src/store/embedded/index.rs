//! The id index of one shard: an open-addressing table of slab positions whose slots carry
//! their own hash tag.
//!
//! A slot is 5 bytes: a tag (8 bits of the id's hash; 0 marks an empty slot, 1 a removed
//! one) and the entry's `u32` slab position. A lookup reads slots from the id's home slot
//! on (linear probing) and looks at an entry only when the tag matches (1 in 254 for a
//! wrong entry), so a lookup costs one cache line of the index and then the entry itself.
//! (`hashbrown`'s tables keep the tags and the values in two arrays: a lookup of a `u32`
//! there reads two lines of the index before the entry.)
//!
//! Removed slots stay as tombstones until the table is rebuilt (when slots in use, live or
//! removed, pass 7/8 of the table); a rebuild sizes the table to at most half full, so it
//! costs 10-20 bytes a session at 5 bytes a slot. The table is rebuilt from the ids (the
//! caller gives each position's hash), like any hash table's growth.

/// Tag of an empty slot.
const EMPTY: u8 = 0;
/// Tag of a removed slot (probing goes on past it).
const TOMB: u8 = 1;

type Slot = [u8; 5];

fn tag(hash: u64) -> u8 {
    // 2..=255 from the top bits (the low bits pick the home slot).
    2 + ((hash >> 56) % 254) as u8
}

fn pos_of(s: Slot) -> u32 {
    u32::from_le_bytes([s[1], s[2], s[3], s[4]])
}

fn slot(tag: u8, pos: u32) -> Slot {
    let p = pos.to_le_bytes();
    [tag, p[0], p[1], p[2], p[3]]
}

/// Asks the CPU to load the cache line of `p` (a no-op where there is no stable prefetch
/// instruction).
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and writes nothing, whatever the
    // address (and this one is a live reference); it needs SSE, which every x86_64 CPU has.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((p as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[derive(Default)]
pub(crate) struct Index {
    slots: Vec<Slot>,
    live: usize,
    /// Live and removed slots.
    used: usize,
}

impl Index {
    #[cfg(all(test, not(sessile_loom)))]
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Starts loading the home slot of `hash` into the CPU's cache, for a [`Index::find`]
    /// that comes after other work: the work then hides the cache miss.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        if let Some(s) = self.slots.get(hash as usize & self.mask()) {
            prefetch(s);
        }
    }

    /// The position whose tag matches `hash` and for which `eq` holds.
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.mask();
        let t = tag(hash);
        let mut i = hash as usize & mask;
        for _ in 0..self.slots.len() {
            let s = *self.slots.get(i)?;
            if s[0] == EMPTY {
                return None;
            }
            if s[0] == t && eq(pos_of(s)) {
                return Some(pos_of(s));
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// The slot holding `pos` (whose id hashes to `hash`).
    fn slot_of(&self, hash: u64, pos: u32) -> Option<usize> {
        let mask = self.mask();
        let want = slot(tag(hash), pos);
        let mut i = hash as usize & mask;
        for _ in 0..self.slots.len() {
            let s = *self.slots.get(i)?;
            if s[0] == EMPTY {
                return None;
            }
            if s == want {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Adds `pos` (not present) for an id hashing to `hash`. `rehash` gives the hash of any
    /// position already in the table, for a rebuild.
    pub(crate) fn insert(&mut self, hash: u64, pos: u32, rehash: impl Fn(u32) -> u64) {
        if (self.used + 1) * 8 > self.slots.len() * 7 {
            self.rebuild((self.live + 1) * 2, &rehash);
        }
        self.place(hash, pos);
    }

    /// Puts `pos` in the first free slot from its home (the table has one).
    fn place(&mut self, hash: u64, pos: u32) {
        let mask = self.mask();
        let mut i = hash as usize & mask;
        for _ in 0..self.slots.len() {
            let Some(s) = self.slots.get_mut(i) else {
                return;
            };
            if s[0] == EMPTY || s[0] == TOMB {
                if s[0] == EMPTY {
                    self.used += 1;
                }
                *s = slot(tag(hash), pos);
                self.live += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Removes `pos` (whose id hashes to `hash`).
    pub(crate) fn remove(&mut self, hash: u64, pos: u32) {
        let Some(i) = self.slot_of(hash, pos) else {
            return;
        };
        let next_empty = self
            .slots
            .get((i + 1) & self.mask())
            .is_some_and(|s| s[0] == EMPTY);
        if let Some(s) = self.slots.get_mut(i) {
            // No probe goes past an empty slot: one followed by one needs no tombstone.
            if next_empty {
                s[0] = EMPTY;
                self.used -= 1;
            } else {
                s[0] = TOMB;
            }
            self.live -= 1;
        }
    }

    /// Records that the entry at `from` (whose id hashes to `hash`) moved to `to`.
    pub(crate) fn moved(&mut self, hash: u64, from: u32, to: u32) {
        if let Some(i) = self.slot_of(hash, from) {
            if let Some(s) = self.slots.get_mut(i) {
                *s = slot(tag(hash), to);
            }
        }
    }

    /// Makes room for `additional` more positions without a rebuild on the way.
    pub(crate) fn reserve(&mut self, additional: usize, rehash: impl Fn(u32) -> u64) {
        let want = self.used.saturating_add(additional);
        if want.saturating_mul(8) > self.slots.len().saturating_mul(7) {
            self.rebuild(
                self.live.saturating_add(additional).saturating_mul(8) / 7 + 1,
                &rehash,
            );
        }
    }

    /// Rebuilds the table at a size for the live positions if that is smaller.
    pub(crate) fn shrink(&mut self, rehash: impl Fn(u32) -> u64) {
        let target = (self.live * 2).max(8).next_power_of_two();
        if target < self.slots.len() {
            self.rebuild(self.live * 2, &rehash);
        }
    }

    /// Rebuilds the table with at least `min_slots` slots (a power of two, at least 8),
    /// without tombstones.
    fn rebuild(&mut self, min_slots: usize, rehash: &impl Fn(u32) -> u64) {
        let n = min_slots.max(8).next_power_of_two();
        let old = std::mem::replace(&mut self.slots, vec![[EMPTY; 5]; n]);
        self.live = 0;
        self.used = 0;
        for s in old {
            if s[0] > TOMB {
                let p = pos_of(s);
                self.place(rehash(p), p);
            }
        }
    }

    /// Slots allocated.
    #[cfg(all(test, not(sessile_loom)))]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(all(test, not(sessile_loom)))]
mod tests {
    use super::*;

    /// A weak hash so that probes collide: home from the low bits, tags often equal.
    fn h(p: u32) -> u64 {
        (u64::from(p % 7) << 56) | u64::from(p % 13)
    }

    #[test]
    fn insert_find_remove_with_collisions() {
        let mut ix = Index::default();
        for p in 0..1_000 {
            ix.insert(h(p), p, h);
        }
        assert_eq!(ix.len(), 1_000);
        for p in 0..1_000 {
            assert_eq!(ix.find(h(p), |q| q == p), Some(p));
        }
        assert_eq!(ix.find(h(5_000), |q| q == 5_000), None);
        for p in (0..1_000).step_by(3) {
            ix.remove(h(p), p);
        }
        for p in 0..1_000 {
            let want = (p % 3 != 0).then_some(p);
            assert_eq!(ix.find(h(p), |q| q == p), want, "{p}");
        }
        // Removing twice or something absent changes nothing.
        ix.remove(h(0), 0);
        ix.remove(h(7), 123_456);
        assert_eq!(ix.len(), 666);
        ix.moved(h(1), 1, 77_777);
        assert_eq!(ix.find(h(1), |q| q == 77_777), Some(77_777));
        assert_eq!(ix.find(h(1), |q| q == 1), None);
    }

    #[test]
    fn churn_reuses_tombstones_and_stays_bounded() {
        let mut ix = Index::default();
        let hash = |p: u32| u64::from(p).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for p in 0..100 {
            ix.insert(hash(p), p, hash);
        }
        for round in 0..10_000u32 {
            let old = round;
            let new = round + 100;
            ix.remove(hash(old), old);
            ix.insert(hash(new), new, hash);
            assert_eq!(ix.find(hash(new), |q| q == new), Some(new));
        }
        assert_eq!(ix.len(), 100);
        assert!(ix.capacity() <= 256, "{}", ix.capacity());
        for p in 10_000..10_100 {
            assert_eq!(ix.find(hash(p), |q| q == p), Some(p));
        }
    }

    #[test]
    fn shrink_and_reserve() {
        let mut ix = Index::default();
        let hash = |p: u32| u64::from(p).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ix.reserve(1_000, hash);
        let cap = ix.capacity();
        assert!(cap * 7 >= 1_000 * 8);
        for p in 0..1_000 {
            ix.insert(hash(p), p, hash);
        }
        assert_eq!(ix.capacity(), cap);
        for p in 10..1_000 {
            ix.remove(hash(p), p);
        }
        ix.shrink(hash);
        assert!(ix.capacity() <= 32);
        for p in 0..10 {
            assert_eq!(ix.find(hash(p), |q| q == p), Some(p));
        }
    }
}
