//! The store trait, and the stores this crate ships.
//!
//! A store keeps [`Record`]s by session id. The calls are express-session's store interface
//! (`get`, `set`, `destroy`, `touch`, `all`, `clear`, `length`) plus [`SessionStore::apply`],
//! the atomic field-level update the layer uses so that parallel requests of one session do
//! not overwrite each other's changes, and [`SessionStore::create`], an atomic insert if
//! absent, for callers that mint ids (the tower-sessions and actix-session adapters).

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::record::{Changes, CookieRecord, Record};
pub(crate) use owned::{owner_of, valid_owner};
pub use owned::{OwnedSession, MAX_OWNER_LEN, OWNER_KEY, OWNER_SINCE_KEY};

pub mod embedded;
pub(crate) mod latency;
mod owned;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(feature = "suite")]
#[cfg_attr(docsrs, doc(cfg(feature = "suite")))]
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

/// What [`SessionStore::create`] found.
///
/// ```
/// use sessile::{Created, EmbeddedStore, Record};
///
/// let store = EmbeddedStore::new();
/// let outcome = store.create_now("sid", &Record::default())?;
/// assert_eq!(outcome, Created::Created);
/// // The id is taken: a caller minting ids draws another one.
/// assert_eq!(store.create_now("sid", &Record::default())?, Created::Exists);
/// # Ok::<(), sessile::StoreError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// No live record was under that id: the record was stored.
    Created,
    /// A live record was already under that id: it was left as it was, nothing was written.
    Exists,
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{EmbeddedStore, Record, SessionStore};
    ///
    /// let store = EmbeddedStore::new();
    /// assert!(store.get("sid").await?.is_none());
    /// store.set("sid", &Record::from_json(r#"{"cookie":{},"views":1}"#)?).await?;
    /// let record = store.get("sid").await?.expect("stored");
    /// assert_eq!(record.data.as_str(), r#"{"views":1}"#);
    /// # Ok(()) }
    /// ```
    async fn get(&self, sid: &str) -> Result<Option<Record>, StoreError>;

    /// `store.set(sid, session)`: insert or replace the whole record.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{EmbeddedStore, Record, SessionStore};
    ///
    /// let store = EmbeddedStore::new();
    /// store.set("sid", &Record::from_json(r#"{"cookie":{},"views":1}"#)?).await?;
    /// store.set("sid", &Record::from_json(r#"{"cookie":{},"user":"alice"}"#)?).await?;
    /// let record = store.get("sid").await?.expect("stored");
    /// assert_eq!(record.data.as_str(), r#"{"user":"alice"}"#);
    /// # Ok(()) }
    /// ```
    async fn set(&self, sid: &str, record: &Record) -> Result<(), StoreError>;

    /// Stores `record` under `sid` only if no live record is there, atomically with respect
    /// to every other call on that id: of many creates of one id racing each other, exactly
    /// one returns [`Created::Created`]. A live record already there is left untouched and
    /// [`Created::Exists`] is returned; an expired one counts as absent. This is what a
    /// caller minting a fresh id uses, so that an id collision is never an overwrite of
    /// another user's session.
    ///
    /// There is no default implementation: a `get` followed by a `set` is not atomic.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{Created, EmbeddedStore, Record, SessionStore};
    ///
    /// let store = EmbeddedStore::new();
    /// let first = Record::from_json(r#"{"cookie":{},"user":"alice"}"#)?;
    /// let second = Record::from_json(r#"{"cookie":{},"user":"mallory"}"#)?;
    /// assert_eq!(store.create("sid", &first).await?, Created::Created);
    /// assert_eq!(store.create("sid", &second).await?, Created::Exists);
    /// let record = store.get("sid").await?.expect("stored");
    /// assert_eq!(record.data.as_str(), r#"{"user":"alice"}"#);
    /// # Ok(()) }
    /// ```
    async fn create(&self, sid: &str, record: &Record) -> Result<Created, StoreError>;

    /// Applies field changes and the new cookie to the live record under `sid`, atomically
    /// with respect to every other call on that id. Returns [`Applied::Missing`] without
    /// writing when there is no live record.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{Applied, Change, Changes, EmbeddedStore, Record, SessionStore};
    ///
    /// let store = EmbeddedStore::new();
    /// let record = Record::from_json(r#"{"cookie":{},"views":1,"flash":"hi"}"#)?;
    /// store.set("sid", &record).await?;
    /// let changes = Changes {
    ///     cookie: record.cookie.clone(),
    ///     fields: vec![Change::Set("views".into(), 2.into()), Change::Remove("flash".into())],
    /// };
    /// assert_eq!(store.apply("sid", &changes).await?, Applied::Applied);
    /// let record = store.get("sid").await?.expect("stored");
    /// assert_eq!(record.data.as_str(), r#"{"views":2}"#);
    /// // No live record: nothing is written.
    /// assert_eq!(store.apply("gone", &changes).await?, Applied::Missing);
    /// assert!(store.get("gone").await?.is_none());
    /// # Ok(()) }
    /// ```
    async fn apply(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError>;

    /// `store.destroy(sid)`: remove the record; removing a missing one is not an error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{EmbeddedStore, Record, SessionStore};
    ///
    /// let store = EmbeddedStore::new();
    /// store.set("sid", &Record::default()).await?;
    /// store.destroy("sid").await?;
    /// assert!(store.get("sid").await?.is_none());
    /// store.destroy("sid").await?;
    /// # Ok(()) }
    /// ```
    async fn destroy(&self, sid: &str) -> Result<(), StoreError>;

    /// `store.touch(sid, session)`: store the cookie (and so the new expiry) of a live record
    /// without rewriting its fields, as express's MemoryStore does. A missing record stays
    /// missing. A store shared with Node's connect-redis follows connect-redis instead: a touch
    /// only moves the key's expiry, in whole seconds (the suite's `check_touch` and
    /// `check_expiry` assume the whole cookie is stored, so such a store runs the others).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{EmbeddedStore, Record, SessionStore};
    ///
    /// let store = EmbeddedStore::new();
    /// store.set("sid", &Record::from_json(r#"{"cookie":{},"views":1}"#)?).await?;
    /// let mut cookie = store.get("sid").await?.expect("stored").cookie;
    /// cookie.set_max_age(Some(60_000));
    /// store.touch("sid", &cookie).await?;
    /// let record = store.get("sid").await?.expect("stored");
    /// assert_eq!((record.cookie, record.data.as_str()), (cookie.clone(), r#"{"views":1}"#));
    /// // A missing record stays missing.
    /// store.touch("gone", &cookie).await?;
    /// assert!(store.get("gone").await?.is_none());
    /// # Ok(()) }
    /// ```
    async fn touch(&self, sid: &str, cookie: &CookieRecord) -> Result<(), StoreError>;

    /// `store.all()`: every live record by id.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{EmbeddedStore, Record, SessionStore};
    ///
    /// let store = EmbeddedStore::new();
    /// store.set("a", &Record::from_json(r#"{"cookie":{},"n":1}"#)?).await?;
    /// store.set("b", &Record::from_json(r#"{"cookie":{},"n":2}"#)?).await?;
    /// let all = store.all().await?;
    /// assert_eq!(all.keys().collect::<Vec<_>>(), ["a", "b"]);
    /// assert_eq!(all["b"].data.as_str(), r#"{"n":2}"#);
    /// # Ok(()) }
    /// ```
    async fn all(&self) -> Result<BTreeMap<String, Record>, StoreError>;

    /// `store.clear()`: remove every record.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{EmbeddedStore, Record, SessionStore};
    ///
    /// let store = EmbeddedStore::new();
    /// store.set("a", &Record::default()).await?;
    /// store.set("b", &Record::default()).await?;
    /// store.clear().await?;
    /// assert_eq!(store.len().await?, 0);
    /// # Ok(()) }
    /// ```
    async fn clear(&self) -> Result<(), StoreError>;

    /// `store.length()`: how many live records there are.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{EmbeddedStore, Record, SessionStore};
    ///
    /// let store = EmbeddedStore::new();
    /// store.set("a", &Record::default()).await?;
    /// store.set("b", &Record::default()).await?;
    /// store.set("a", &Record::default()).await?;
    /// assert_eq!(store.len().await?, 2);
    /// # Ok(()) }
    /// ```
    async fn len(&self) -> Result<usize, StoreError>;

    /// Whether there are no live records.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{EmbeddedStore, Record, SessionStore};
    ///
    /// let store = EmbeddedStore::new();
    /// assert!(store.is_empty().await?);
    /// store.set("sid", &Record::default()).await?;
    /// assert!(!store.is_empty().await?);
    /// # Ok(()) }
    /// ```
    async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len().await? == 0)
    }

    /// The live sessions of `owner` (the user id a handler gave `Session::set_owner`),
    /// oldest owner first (by when the owner was set, then by id).
    ///
    /// The default implementation reads every record ([`all`](Self::all)) and keeps those
    /// whose [`OWNER_KEY`] field is `owner`: correct for any store, but a walk of the whole
    /// store. The stores of this crate keep an index instead (the embedded store one in
    /// memory, the Redis store a set per owner).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{EmbeddedStore, Record, SessionStore};
    ///
    /// let store = EmbeddedStore::new();
    /// let phone = r#"{"cookie":{},"__sessile_owner":"alice","__sessile_owner_since":1}"#;
    /// let laptop = r#"{"cookie":{},"__sessile_owner":"alice","__sessile_owner_since":2}"#;
    /// store.set("phone", &Record::from_json(phone)?).await?;
    /// store.set("laptop", &Record::from_json(laptop)?).await?;
    /// store.set("bob", &Record::from_json(r#"{"cookie":{},"__sessile_owner":"bob"}"#)?).await?;
    /// let ids: Vec<String> = store.sessions_of("alice").await?.into_iter().map(|s| s.id).collect();
    /// assert_eq!(ids, ["phone", "laptop"]);
    /// assert!(store.sessions_of("carol").await?.is_empty());
    /// # Ok(()) }
    /// ```
    async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError> {
        let mut out: Vec<OwnedSession> = self
            .all()
            .await?
            .into_iter()
            .filter(|(_, r)| owner_of(&r.data).as_deref() == Some(owner))
            .map(|(id, record)| OwnedSession { id, record })
            .collect();
        OwnedSession::sort(&mut out);
        Ok(out)
    }

    /// [`touch`](Self::touch) of a session the caller knows `owner` owns (the layer calls
    /// this instead of `touch` for an owned session): a store whose owner index expires on
    /// its own (the Redis store's owner sets) keeps it alive as long as the session. The
    /// default implementation is `touch`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{EmbeddedStore, Record, SessionStore};
    ///
    /// let store = EmbeddedStore::new();
    /// store.set("sid", &Record::from_json(r#"{"cookie":{},"__sessile_owner":"alice"}"#)?).await?;
    /// let mut cookie = store.get("sid").await?.expect("stored").cookie;
    /// cookie.set_max_age(Some(60_000));
    /// store.touch_owned("sid", &cookie, "alice").await?;
    /// assert_eq!(store.sessions_of("alice").await?[0].record.cookie, cookie);
    /// # Ok(()) }
    /// ```
    async fn touch_owned(
        &self,
        sid: &str,
        cookie: &CookieRecord,
        owner: &str,
    ) -> Result<(), StoreError> {
        let _ = owner;
        self.touch(sid, cookie).await
    }

    /// Destroys every live session of `owner` but `except` (the current session, for "log
    /// out of all other devices"); returns how many were destroyed.
    ///
    /// The default implementation destroys each session [`sessions_of`](Self::sessions_of)
    /// lists.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// use sessile::{EmbeddedStore, Record, SessionStore};
    ///
    /// let store = EmbeddedStore::new();
    /// let alice = Record::from_json(r#"{"cookie":{},"__sessile_owner":"alice"}"#)?;
    /// for sid in ["phone", "laptop", "tablet"] {
    ///     store.set(sid, &alice).await?;
    /// }
    /// assert_eq!(store.destroy_all_of("alice", Some("laptop")).await?, 2);
    /// assert!(store.get("phone").await?.is_none());
    /// assert!(store.get("laptop").await?.is_some());
    /// assert_eq!(store.destroy_all_of("alice", None).await?, 1);
    /// assert_eq!(store.len().await?, 0);
    /// # Ok(()) }
    /// ```
    async fn destroy_all_of(&self, owner: &str, except: Option<&str>) -> Result<usize, StoreError> {
        let mut destroyed = 0;
        for s in self.sessions_of(owner).await? {
            if Some(s.id.as_str()) != except {
                self.destroy(&s.id).await?;
                destroyed += 1;
            }
        }
        Ok(destroyed)
    }
}
