//! The cookie shapes of one shard: a session cookie's fields other than `expires`, interned.
//!
//! Nearly every session of an application has the same cookie apart from `expires` (which
//! the entry keeps as its deadline). So an entry stores a 4-byte shape id, and the shard
//! keeps one copy of each distinct shape, with a count of the entries using it. The shape's
//! `path` and `domain` are `Arc<str>`s allocated by this shard: the records a `get` hands
//! out clone them, so a read only writes reference counts that belong to its own shard and
//! never a count shared with the other shards (or with the layer's options), which two
//! cores would otherwise bounce between them on every read.
//!
//! A shape is freed when its last entry goes; its id goes on a free list for reuse.

use std::collections::HashMap;
use std::sync::Arc;

use crate::record::CookieRecord;

/// The fields that make two cookies the same shape (`expires` only by whether it is set).
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    original_max_age: Option<i64>,
    has_expires: bool,
    secure: Option<bool>,
    http_only: bool,
    domain: Option<Arc<str>>,
    path: Arc<str>,
    same_site: Option<u8>,
    partitioned: Option<bool>,
    priority: Option<u8>,
}

impl Key {
    fn of(c: &CookieRecord) -> Self {
        Key {
            original_max_age: c.original_max_age,
            has_expires: c.expires.is_some(),
            secure: c.secure,
            http_only: c.http_only,
            domain: c.domain.clone(),
            path: c.path.clone(),
            same_site: c.same_site.map(|s| s as u8),
            partitioned: c.partitioned,
            priority: c.priority.map(|p| p as u8),
        }
    }
}

struct Slot {
    /// The cookie with `expires` as `Some(0)` or `None` (filled in from the deadline).
    cookie: CookieRecord,
    /// Entries using this shape; 0: free.
    refs: u32,
}

/// The interned cookie shapes of one shard.
#[derive(Default)]
pub(crate) struct Shapes {
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_key: HashMap<Key, u32, ahash::RandomState>,
}

/// Two cookies that differ at most in `expires` (a touch that only moves the expiry).
pub(crate) fn same_shape(a: &CookieRecord, b: &CookieRecord) -> bool {
    a.same_shape(b)
}

impl Shapes {
    /// The id of `cookie`'s shape, with one more reference (a new shape if it has none).
    pub(crate) fn intern(&mut self, cookie: &CookieRecord) -> u32 {
        if let Some(&id) = self.by_key.get(&Key::of(cookie)) {
            if let Some(s) = self.slots.get_mut(id as usize) {
                s.refs = s.refs.saturating_add(1);
                return id;
            }
        }
        // This shard's own allocations, so its readers share counts with no other shard.
        let own = CookieRecord {
            expires: cookie.expires.map(|_| 0),
            domain: cookie.domain.as_deref().map(Arc::from),
            path: Arc::from(&*cookie.path),
            ..cookie.clone()
        };
        let key = Key::of(&own);
        let slot = Slot {
            cookie: own,
            refs: 1,
        };
        let id = match self.free.pop() {
            Some(id) if (id as usize) < self.slots.len() => {
                self.slots[id as usize] = slot;
                id
            }
            _ => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.by_key.insert(key, id);
        id
    }

    /// Drops one reference to shape `id`; the last one frees it.
    pub(crate) fn release(&mut self, id: u32) {
        let Some(s) = self.slots.get_mut(id as usize) else {
            return;
        };
        if s.refs == 0 {
            return;
        }
        s.refs -= 1;
        if s.refs == 0 {
            let cookie = std::mem::take(&mut s.cookie);
            self.by_key.remove(&Key::of(&cookie));
            self.free.push(id);
        }
    }

    /// Moves one reference from shape `*id` to the shape of `cookie` (nothing when it is
    /// already that shape).
    pub(crate) fn reshape(&mut self, id: &mut u32, cookie: &CookieRecord) {
        if self.matches(*id, cookie) {
            return;
        }
        let new = self.intern(cookie);
        self.release(*id);
        *id = new;
    }

    /// Whether `cookie` has shape `id` (it may differ in `expires`' value).
    pub(crate) fn matches(&self, id: u32, cookie: &CookieRecord) -> bool {
        self.slots
            .get(id as usize)
            .is_some_and(|s| s.refs > 0 && same_shape(&s.cookie, cookie))
    }

    /// The cookie of shape `id` with `expires` (when it has one) at `deadline`.
    pub(crate) fn cookie(&self, id: u32, deadline: i64) -> CookieRecord {
        let mut c = self
            .slots
            .get(id as usize)
            .map(|s| s.cookie.clone())
            .unwrap_or_default();
        if c.expires.is_some() {
            c.expires = Some(deadline);
        }
        c
    }

    pub(crate) fn clear(&mut self) {
        *self = Shapes::default();
    }

    /// Shapes in use.
    #[cfg(all(test, not(sessile_loom)))]
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(all(test, not(sessile_loom)))]
mod tests {
    use super::*;

    fn cookie(path: &str, max_age: Option<i64>) -> CookieRecord {
        let mut c = CookieRecord {
            path: Arc::from(path),
            ..CookieRecord::default()
        };
        c.original_max_age = max_age;
        c.expires = max_age.map(|m| 1_000 + m);
        c
    }

    #[test]
    fn equal_shapes_share_one_id_and_own_their_strings() {
        let mut s = Shapes::default();
        let a = cookie("/", Some(60_000));
        let b = cookie("/", Some(60_000));
        let (ia, ib) = (s.intern(&a), s.intern(&b));
        assert_eq!(ia, ib);
        assert_eq!(s.len(), 1);
        let got = s.cookie(ia, 42);
        assert_eq!(got.expires, Some(42));
        assert_eq!(&*got.path, "/");
        // The shard's own allocation, not the caller's.
        assert!(!Arc::ptr_eq(&got.path, &a.path));
        let c = cookie("/", None);
        let ic = s.intern(&c);
        assert_ne!(ic, ia);
        assert_eq!(s.cookie(ic, 42).expires, None);
    }

    #[test]
    fn the_last_release_frees_and_the_id_is_reused() {
        let mut s = Shapes::default();
        let a = cookie("/a", Some(1));
        let id = s.intern(&a);
        s.intern(&a);
        s.release(id);
        assert!(s.matches(id, &a));
        s.release(id);
        assert!(!s.matches(id, &a));
        assert_eq!(s.len(), 0);
        // Releasing a free or unknown id changes nothing.
        s.release(id);
        s.release(99);
        let b = cookie("/b", Some(1));
        assert_eq!(s.intern(&b), id);
        assert_eq!(&*s.cookie(id, 0).path, "/b");
    }

    #[test]
    fn reshape_moves_one_reference() {
        let mut s = Shapes::default();
        let a = cookie("/", Some(1));
        let b = cookie("/", Some(2));
        let mut id = s.intern(&a);
        let keep = s.intern(&a);
        s.reshape(&mut id, &b);
        assert_ne!(id, keep);
        assert!(s.matches(keep, &a) && s.matches(id, &b));
        s.reshape(&mut id, &b);
        assert_eq!(s.len(), 2);
        s.release(keep);
        assert_eq!(s.len(), 1);
    }
}
