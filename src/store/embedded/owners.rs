//! One shard's owner index: which of its sessions belong to which owner (the reserved field
//! [`OWNER_KEY`](crate::store::OWNER_KEY)), for
//! [`SessionStore::sessions_of`](crate::SessionStore::sessions_of) without a walk of the
//! store.
//!
//! The index lives in the shard's [`Map`](super::map::Map) beside the entries and is changed
//! by the same calls that insert, replace and remove them (sets, applies, destroys, sweeps of
//! expired sessions, evictions, clears, and the replay of the log and of a snapshot at
//! open), under the same lock: it holds exactly the owned sessions the shard holds, so it
//! never outlives them. Nothing of it is written to disk: the owner is a field of the
//! record, which the log and the snapshots carry, and replaying them rebuilds the index.
//!
//! Memory: one id and one shared owner name per owned session; sessions without an owner
//! cost nothing but a substring search of their data when it is written.

use std::collections::HashMap;
use std::sync::Arc;

use crate::record::{Change, Changes, Data};
use crate::store::{owner_of, OWNER_KEY};

type Hasher = ahash::RandomState;

/// The owned sessions of one shard, both ways.
#[derive(Default)]
pub(crate) struct Owners {
    /// Each owned session's owner.
    of: HashMap<Box<str>, Arc<str>, Hasher>,
    /// Each owner's sessions (in no order; an owner has few per shard).
    sessions: HashMap<Arc<str>, Vec<Box<str>>, Hasher>,
}

impl Owners {
    /// Notes the owner `data` names for the session `sid` (none: it is owned no more).
    pub(crate) fn note(&mut self, sid: &str, data: &Data) {
        let owner = owner_of(data);
        if owner.is_none() && self.of.is_empty() {
            return;
        }
        if self.of.get(sid).map(|o| &**o) == owner.as_deref() {
            return;
        }
        self.forget(sid);
        let Some(owner) = owner else {
            return;
        };
        let owner: Arc<str> = match self.sessions.get_key_value(owner.as_str()) {
            Some((shared, _)) => shared.clone(),
            None => Arc::from(owner),
        };
        self.sessions
            .entry(owner.clone())
            .or_default()
            .push(sid.into());
        self.of.insert(sid.into(), owner);
    }

    /// Whether applying `changes` may change a session's owner: only changes that name the
    /// owner's field do (an apply of other fields, the common write, needs no look at the
    /// owner).
    pub(crate) fn may_change(changes: &Changes) -> bool {
        changes.fields.iter().any(|c| match c {
            Change::Set(k, _) | Change::Remove(k) => k == OWNER_KEY,
        })
    }

    /// Forgets the session `sid` (removed from the shard).
    pub(crate) fn forget(&mut self, sid: &str) {
        if self.of.is_empty() {
            return;
        }
        let Some(owner) = self.of.remove(sid) else {
            return;
        };
        if let Some(sids) = self.sessions.get_mut(&owner) {
            if let Some(i) = sids.iter().position(|s| &**s == sid) {
                sids.swap_remove(i);
            }
            if sids.is_empty() {
                self.sessions.remove(&owner);
            }
        }
    }

    /// Forgets every session.
    pub(crate) fn clear(&mut self) {
        self.of = HashMap::default();
        self.sessions = HashMap::default();
    }

    /// The sessions of `owner` in this shard.
    pub(crate) fn sessions_of(&self, owner: &str) -> &[Box<str>] {
        self.sessions.get(owner).map_or(&[], |s| s.as_slice())
    }

    /// (owned sessions, owners) indexed.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.of.len(), self.sessions.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(owner: &str) -> Data {
        Data::from_json_text(&format!(r#"{{"__sessile_owner":"{owner}"}}"#)).unwrap()
    }

    #[test]
    fn follows_owner_changes_and_removals_without_leftovers() {
        let mut o = Owners::default();
        o.note("a", &owned("alice"));
        o.note("b", &owned("alice"));
        o.note("c", &Data::empty());
        assert_eq!(o.counts(), (2, 1));
        let mut sids: Vec<&str> = o.sessions_of("alice").iter().map(|s| &**s).collect();
        sids.sort_unstable();
        assert_eq!(sids, ["a", "b"]);
        // Re-owned, then no longer owned.
        o.note("a", &owned("bob"));
        assert_eq!(o.sessions_of("alice").len(), 1);
        assert_eq!(o.sessions_of("bob").len(), 1);
        o.note("a", &Data::empty());
        o.forget("b");
        o.forget("never");
        assert_eq!(o.counts(), (0, 0));
        assert!(o.sessions_of("alice").is_empty());
    }

    #[test]
    fn invalid_owners_are_not_indexed() {
        let mut o = Owners::default();
        o.note("a", &owned(""));
        o.note("b", &owned(&"x".repeat(257)));
        o.note(
            "c",
            &Data::from_json_text(r#"{"__sessile_owner":7}"#).unwrap(),
        );
        assert_eq!(o.counts(), (0, 0));
        // An escaped name is the same name.
        o.note(
            "d",
            &Data::from_json_text(r#"{"__sessile_\u006fwner":"eve"}"#).unwrap(),
        );
        assert_eq!(o.sessions_of("eve").len(), 1);
    }
}
