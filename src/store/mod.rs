//! The store trait, and the stores this crate ships.
//!
//! A store keeps [`Record`]s by session id. The calls are express-session's store interface
//! (`get`, `set`, `destroy`, `touch`, `all`, `clear`, `length`) plus [`SessionStore::apply`],
//! the atomic field-level update the layer uses so that parallel requests of one session do
//! not overwrite each other's changes.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::record::{Changes, CookieRecord, Record};

pub mod embedded;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
pub mod suite;

/// What [`SessionStore::apply`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The changes were applied to the stored record.
    Applied,
    /// There was no live record under that id (destroyed or expired meanwhile); nothing was
    /// written.
    Missing,
}

/// A session store, with express-session's store calls.
///
/// Every method is async and returns a typed [`StoreError`]; a missing session is `Ok(None)`,
/// never an error. Records whose `cookie.expires` has passed are treated as missing by every
/// call.
///
/// The conformance suite [`suite`] runs every store of this crate through the same checks;
/// a third-party store can run it too.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// `store.get(sid)`: the live record under `sid`.
    async fn get(&self, sid: &str) -> Result<Option<Record>, StoreError>;

    /// `store.set(sid, session)`: insert or replace the whole record.
    async fn set(&self, sid: &str, record: &Record) -> Result<(), StoreError>;

    /// Applies field changes and the new cookie to the live record under `sid`, atomically
    /// with respect to every other call on that id. Returns [`Applied::Missing`] without
    /// writing when there is no live record.
    async fn apply(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError>;

    /// `store.destroy(sid)`: remove the record; removing a missing one is not an error.
    async fn destroy(&self, sid: &str) -> Result<(), StoreError>;

    /// `store.touch(sid, session)`: store the cookie (and so the new expiry) of a live record
    /// without rewriting its fields, as express's MemoryStore does. A missing record stays
    /// missing. A store shared with Node's connect-redis follows connect-redis instead: a touch
    /// only moves the key's expiry, in whole seconds (the suite's `check_touch` and
    /// `check_expiry` assume the whole cookie is stored, so such a store runs the others).
    async fn touch(&self, sid: &str, cookie: &CookieRecord) -> Result<(), StoreError>;

    /// `store.all()`: every live record by id.
    async fn all(&self) -> Result<BTreeMap<String, Record>, StoreError>;

    /// `store.clear()`: remove every record.
    async fn clear(&self) -> Result<(), StoreError>;

    /// `store.length()`: how many live records there are.
    async fn len(&self) -> Result<usize, StoreError>;

    /// Whether there are no live records.
    async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len().await? == 0)
    }
}
