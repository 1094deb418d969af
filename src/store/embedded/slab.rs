//! The entries of one shard: a slab of fixed-size entries and a hash index of slab positions.
//!
//! - **Slab.** Entries live in chunks of [`CHUNK`] slots, addressed by a `u32` position
//!   (`chunk * CHUNK + offset`). Growing adds one chunk, so it never copies the entries nor
//!   stalls on a doubling, and the slack is under one chunk. An entry never moves while it
//!   lives, except when [`Slab::compact`] packs a mostly empty slab (and then the caller is
//!   told, to fix the wheel, and a running snapshot copy prevents it; see `policy/sweep.rs`).
//! - **Free list.** A removed entry's position goes on a free list and is reused by the next
//!   insert.
//! - **Ids.** An id of up to [`INLINE`] bytes (express's uid-safe ids are 32 characters) is
//!   stored inline in its entry, so a lookup compares it without another memory access;
//!   a longer id (any id a custom `genid` makes) is kept boxed in a side table.
//! - **Index.** An open-addressing table of positions ([`Index`]): 5-byte slots holding a
//!   hash tag and the position side by side, so a lookup reads one line of the index and
//!   then the entry. Hashed by id with this shard's own seed (the routing hash picked the
//!   shard, so its low bits are all equal here).

use std::collections::HashMap;

use super::index::Index;
use super::log::Logged;

use crate::record::Data;
use crate::sync::{AtomicBool, AtomicI64};

/// Slots in one slab chunk.
pub(crate) const CHUNK: usize = 512;
/// Ids up to this many bytes are stored inline.
pub(crate) const INLINE: usize = 32;
/// `key_len` of an entry whose id is in the side table.
const LONG: u8 = u8::MAX;

/// One session (80 bytes).
///
/// `repr(C)` keeps what a `get` reads (data, deadline, id, shape, whether it came back: the
/// first 62 bytes) together, ahead of what only writes and the wheel use, so a read touches
/// as few cache lines as the entry's position allows.
#[repr(C)]
pub(crate) struct Entry {
    /// The application's fields.
    pub(crate) data: Data,
    /// When the entry expires, in ms since the epoch (the cookie's `expires`, or the idle
    /// deadline of a browser-session cookie).
    pub(crate) deadline: AtomicI64,
    key: [u8; INLINE],
    /// The cookie's shape (see `shape.rs`).
    pub(crate) shape: u32,
    key_len: u8,
    /// Whether the session came back (was read, touched or changed) since it was stored.
    pub(crate) returned: AtomicBool,
    /// The wheel lane the entry sits in (see `expiry.rs`).
    pub(crate) lane: u8,
    /// The deadline last written to the log (touches that move it less are not logged).
    pub(crate) logged: Logged,
    /// The wheel bucket the entry sits in, and its slot there.
    pub(crate) bucket: u32,
    pub(crate) slot: u32,
}

/// What an insert stores besides the id.
pub(crate) struct New {
    pub(crate) data: Data,
    pub(crate) deadline: i64,
    pub(crate) bucket: u32,
    pub(crate) slot: u32,
    pub(crate) shape: u32,
}

#[derive(Default)]
pub(crate) struct Slab {
    chunks: Vec<Box<[Option<Entry>]>>,
    free: Vec<u32>,
    /// Positions below this have been handed out at least once since the last compaction.
    end: u32,
    len: usize,
    long: HashMap<u32, Box<str>, ahash::RandomState>,
    index: Index,
    hasher: ahash::RandomState,
}

fn chunk() -> Box<[Option<Entry>]> {
    (0..CHUNK).map(|_| None).collect()
}

fn split(pos: u32) -> (usize, usize) {
    (pos as usize / CHUNK, pos as usize % CHUNK)
}

/// The slot at `pos`.
fn slot(chunks: &[Box<[Option<Entry>]>], pos: u32) -> Option<&Entry> {
    let (c, o) = split(pos);
    chunks.get(c)?.get(o)?.as_ref()
}

/// The id of the entry at `pos`, as bytes.
fn key_of<'a>(
    chunks: &'a [Box<[Option<Entry>]>],
    long: &'a HashMap<u32, Box<str>, ahash::RandomState>,
    pos: u32,
) -> &'a [u8] {
    match slot(chunks, pos) {
        Some(e) if e.key_len == LONG => long.get(&pos).map_or(&[], |k| k.as_bytes()),
        Some(e) => e.key.get(..e.key_len as usize).unwrap_or(&[]),
        None => &[],
    }
}

impl Slab {
    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Live entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Slots allocated (live, free or never used).
    pub(crate) fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    /// Positions below this may hold an entry (the end of a scan).
    pub(crate) fn end(&self) -> u32 {
        self.end
    }

    /// Starts loading the index line where `key` is looked up, for a lookup after other work
    /// (see [`Index::prefetch`]).
    #[inline]
    pub(crate) fn prefetch(&self, key: &str) {
        self.index.prefetch(self.hash(key.as_bytes()));
    }

    /// The position of `key`'s entry.
    pub(crate) fn find(&self, key: &str) -> Option<u32> {
        let (chunks, long) = (&self.chunks, &self.long);
        self.index.find(self.hash(key.as_bytes()), |p| {
            key_of(chunks, long, p) == key.as_bytes()
        })
    }

    pub(crate) fn get(&self, pos: u32) -> Option<&Entry> {
        slot(&self.chunks, pos)
    }

    pub(crate) fn get_mut(&mut self, pos: u32) -> Option<&mut Entry> {
        let (c, o) = split(pos);
        self.chunks.get_mut(c)?.get_mut(o)?.as_mut()
    }

    /// The id of the entry at `pos` (empty if there is none).
    pub(crate) fn key(&self, pos: u32) -> &str {
        std::str::from_utf8(key_of(&self.chunks, &self.long, pos)).unwrap_or_default()
    }

    /// A copy of the id of the entry at `pos`, made without allocating when it is inline.
    pub(crate) fn key_copy(&self, pos: u32) -> KeyCopy {
        KeyCopy::new(self.key(pos))
    }

    /// The length of the id of the entry at `pos` (0 if there is none).
    pub(crate) fn key_len(&self, pos: u32) -> usize {
        key_of(&self.chunks, &self.long, pos).len()
    }

    /// Stores a new entry for `key` (which must not be present) and returns its position,
    /// or `None` when the shard holds `u32::MAX` entries already.
    pub(crate) fn insert(&mut self, key: &str, new: New) -> Option<u32> {
        let pos = match self.free.pop() {
            Some(p) => p,
            None => {
                if self.end as usize == self.capacity() {
                    if self.capacity() >= u32::MAX as usize - CHUNK {
                        return None;
                    }
                    self.chunks.push(chunk());
                }
                self.end += 1;
                self.end - 1
            }
        };
        let mut inline = [0u8; INLINE];
        let key_len = if key.len() <= INLINE {
            inline[..key.len()].copy_from_slice(key.as_bytes());
            key.len() as u8
        } else {
            self.long.insert(pos, Box::from(key));
            LONG
        };
        let (c, o) = split(pos);
        let cell = self.chunks.get_mut(c).and_then(|ch| ch.get_mut(o))?;
        *cell = Some(Entry {
            data: new.data,
            deadline: AtomicI64::new(new.deadline),
            logged: Logged::new(new.deadline),
            key: inline,
            bucket: new.bucket,
            slot: new.slot,
            shape: new.shape,
            key_len,
            returned: AtomicBool::new(false),
            lane: 0,
        });
        self.len += 1;
        let hash = self.hash(key.as_bytes());
        let (chunks, long, hasher) = (&self.chunks, &self.long, &self.hasher);
        self.index
            .insert(hash, pos, |p| hasher.hash_one(key_of(chunks, long, p)));
        Some(pos)
    }

    /// Removes the entry at `pos`.
    pub(crate) fn remove(&mut self, pos: u32) -> Option<Entry> {
        let hash = self.hash(key_of(&self.chunks, &self.long, pos));
        self.index.remove(hash, pos);
        let (c, o) = split(pos);
        let entry = self.chunks.get_mut(c)?.get_mut(o)?.take()?;
        if entry.key_len == LONG {
            self.long.remove(&pos);
        }
        self.len -= 1;
        self.free.push(pos);
        Some(entry)
    }

    /// Makes room for `additional` more entries without growing on the way.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let want = self
            .len
            .saturating_add(additional)
            .min(u32::MAX as usize / 2);
        while self.capacity() < want {
            self.chunks.push(chunk());
        }
        let (chunks, long, hasher) = (&self.chunks, &self.long, &self.hasher);
        self.index
            .reserve(additional.min(u32::MAX as usize / 2), |p| {
                hasher.hash_one(key_of(chunks, long, p))
            });
    }

    /// Makes room in the index (only) for `additional` more entries.
    pub(crate) fn reserve_index(&mut self, additional: usize) {
        let (chunks, long, hasher) = (&self.chunks, &self.long, &self.hasher);
        self.index
            .reserve(additional.min(u32::MAX as usize / 2), |p| {
                hasher.hash_one(key_of(chunks, long, p))
            });
    }

    /// Whether most of the slab is empty, so [`compact`](Self::compact) would give memory
    /// back.
    pub(crate) fn sparse(&self) -> bool {
        self.capacity() > 2 * CHUNK && self.len * 4 < self.capacity()
    }

    /// Packs the entries into the first `ceil(len / CHUNK)` chunks and frees the others,
    /// and shrinks the index. `moved(entry, to)` is called for every entry that moved (it
    /// is already at `to`), so the caller can fix the wheel.
    pub(crate) fn compact(&mut self, mut moved: impl FnMut(&Entry, u32)) {
        let keep = self.len.div_ceil(CHUNK);
        let limit = (keep * CHUNK) as u32;
        let mut holes: Vec<u32> = self.free.iter().copied().filter(|&p| p < limit).collect();
        holes.sort_unstable_by(|a, b| b.cmp(a));
        for from in limit..self.end {
            if self.get(from).is_none() {
                continue;
            }
            let Some(to) = holes.pop() else { break };
            let hash = self.hash(key_of(&self.chunks, &self.long, from));
            let Some(entry) = ({
                let (c, o) = split(from);
                self.chunks
                    .get_mut(c)
                    .and_then(|ch| ch.get_mut(o))
                    .and_then(Option::take)
            }) else {
                continue;
            };
            if entry.key_len == LONG {
                if let Some(k) = self.long.remove(&from) {
                    self.long.insert(to, k);
                }
            }
            self.index.moved(hash, from, to);
            let (c, o) = split(to);
            if let Some(cell) = self.chunks.get_mut(c).and_then(|ch| ch.get_mut(o)) {
                moved(&entry, to);
                *cell = Some(entry);
            }
        }
        self.chunks.truncate(keep);
        self.chunks.shrink_to_fit();
        self.free = holes;
        self.free.shrink_to_fit();
        self.end = self.end.min(limit);
        let (chunks, long, hasher) = (&self.chunks, &self.long, &self.hasher);
        self.index
            .shrink(|p| hasher.hash_one(key_of(chunks, long, p)));
        self.long.shrink_to_fit();
    }

    /// Drops every entry and the memory they took.
    pub(crate) fn clear(&mut self) {
        let hasher = self.hasher.clone();
        *self = Slab {
            hasher,
            ..Slab::default()
        };
    }
}

/// An id copied out of the slab (for a snapshot): inline up to [`INLINE`] bytes, as the slab
/// keeps it, so copying one allocates nothing; longer ids are boxed.
#[derive(Debug, Clone)]
pub(crate) enum KeyCopy {
    Inline { len: u8, bytes: [u8; INLINE] },
    Long(Box<str>),
}

impl KeyCopy {
    fn new(key: &str) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..key.len()].copy_from_slice(key.as_bytes());
            KeyCopy::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            KeyCopy::Long(key.into())
        }
    }
}

impl AsRef<str> for KeyCopy {
    fn as_ref(&self) -> &str {
        match self {
            // The bytes were copied from a `&str` up to `len`: always valid.
            KeyCopy::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            KeyCopy::Long(s) => s,
        }
    }
}

#[cfg(all(test, not(sessile_loom)))]
mod tests {
    use super::*;

    fn new(shape: u32) -> New {
        New {
            data: Data::from_trusted("{}"),
            deadline: 5,
            bucket: 0,
            slot: shape,
            shape,
        }
    }

    #[test]
    fn entries_stay_small() {
        assert!(std::mem::size_of::<Option<Entry>>() <= 80);
    }

    #[test]
    fn insert_find_remove_and_reuse() {
        let mut s = Slab::default();
        let a = s.insert("a", new(1)).unwrap();
        let b = s.insert("b", new(2)).unwrap();
        assert_ne!(a, b);
        assert_eq!(s.find("a"), Some(a));
        assert_eq!(s.find("b"), Some(b));
        assert_eq!(s.find("c"), None);
        assert_eq!(s.key(b), "b");
        assert_eq!(s.get(b).map(|e| e.shape), Some(2));
        assert_eq!(s.remove(a).map(|e| e.shape), Some(1));
        assert_eq!(s.find("a"), None);
        assert!(s.remove(a).is_none());
        assert_eq!(s.len(), 1);
        // The freed position is the next one handed out.
        let c = s.insert("c", new(3)).unwrap();
        assert_eq!(c, a);
        assert_eq!(s.find("c"), Some(c));
        assert_eq!(s.find("b"), Some(b));
        assert_eq!(s.capacity(), CHUNK);
    }

    #[test]
    fn long_ids_and_prefixes() {
        let mut s = Slab::default();
        let long = "x".repeat(INLINE + 1);
        let exact = "y".repeat(INLINE);
        let p = s.insert(&long, new(1)).unwrap();
        let q = s.insert(&exact, new(2)).unwrap();
        let r = s.insert("", new(3)).unwrap();
        assert_eq!(s.find(&long), Some(p));
        assert_eq!(s.find(&exact), Some(q));
        assert_eq!(s.find(""), Some(r));
        assert_eq!(s.find(&long[..INLINE]), None);
        assert_eq!(s.key(p), long);
        // Copies out: inline up to INLINE bytes (the empty id too), boxed past it.
        assert!(matches!(s.key_copy(q), KeyCopy::Inline { .. }));
        assert!(matches!(s.key_copy(p), KeyCopy::Long(_)));
        for (pos, key) in [(p, &long), (q, &exact), (r, &String::new())] {
            assert_eq!(s.key_copy(pos).as_ref(), key.as_str());
        }
        s.remove(p);
        assert_eq!(s.find(&long), None);
        assert!(s.long.is_empty());
        // A long id reusing the position of a short one.
        let t = s.insert(&"z".repeat(300), new(4)).unwrap();
        assert_eq!(t, p);
        assert_eq!(s.find(&"z".repeat(300)), Some(t));
    }

    #[test]
    fn compact_moves_entries_down_and_gives_memory_back() {
        let mut s = Slab::default();
        let n = CHUNK * 8;
        let keys: Vec<String> = (0..n).map(|i| format!("{i:040}")).collect();
        for (i, k) in keys.iter().enumerate() {
            s.insert(k, new(i as u32)).unwrap();
        }
        assert_eq!(s.capacity(), n);
        // Keep every 10th entry: mostly empty.
        for (i, k) in keys.iter().enumerate() {
            if i % 10 != 0 {
                let p = s.find(k).unwrap();
                s.remove(p).unwrap();
            }
        }
        assert!(s.sparse());
        let mut moves = Vec::new();
        s.compact(|e, to| moves.push((e.shape, to)));
        assert!(!moves.is_empty());
        assert_eq!(s.capacity(), s.len().div_ceil(CHUNK) * CHUNK);
        for (i, k) in keys.iter().enumerate() {
            let found = s.find(k);
            if i % 10 == 0 {
                let p = found.expect("kept entry");
                assert!((p as usize) < s.capacity());
                assert_eq!(s.get(p).unwrap().shape, i as u32);
                assert_eq!(s.key(p), k);
            } else {
                assert_eq!(found, None);
            }
        }
        for (shape, to) in moves {
            assert_eq!(s.get(to).unwrap().shape, shape);
        }
        // Inserting after a compaction uses the holes and then grows again.
        for k in keys.iter().skip(1).step_by(10) {
            s.insert(k, new(0)).unwrap();
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(s.find(k).is_some(), i % 10 <= 1, "{i}");
        }
    }

    #[test]
    fn reserve_and_clear() {
        let mut s = Slab::default();
        s.reserve(CHUNK * 3 + 1);
        assert_eq!(s.capacity(), CHUNK * 4);
        let p = s.insert("a", new(0)).unwrap();
        assert_eq!(p, 0);
        s.clear();
        assert_eq!((s.len(), s.capacity(), s.find("a")), (0, 0, None));
    }
}
