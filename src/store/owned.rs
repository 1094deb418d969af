//! Sessions by owner ("sign out everywhere"): the reserved fields a session's owner is kept
//! under, how a store reads them from a record, and [`OwnedSession`], what
//! [`SessionStore::sessions_of`](crate::SessionStore::sessions_of) returns.
//!
//! The owner (an application's user id, set with `Session::set_owner`) is a field of the
//! record like any other, under the reserved name [`OWNER_KEY`] (a JSON string), with the
//! time it was set under [`OWNER_SINCE_KEY`] (milliseconds since the epoch): a Node app
//! sharing the store keeps both as it keeps every field it does not know.

use crate::record::{Data, Record};

/// The reserved field holding a session's owner, a JSON string of 1 to
/// [`MAX_OWNER_LEN`] bytes.
///
/// ```
/// assert_eq!(sessile::store::OWNER_KEY, "__sessile_owner");
/// ```
pub const OWNER_KEY: &str = "__sessile_owner";

/// The reserved field holding when the owner was set (milliseconds since the epoch, a JSON
/// number): [`SessionStore::sessions_of`](crate::SessionStore::sessions_of) lists the
/// oldest first.
///
/// ```
/// assert_eq!(sessile::store::OWNER_SINCE_KEY, "__sessile_owner_since");
/// ```
pub const OWNER_SINCE_KEY: &str = "__sessile_owner_since";

/// The longest owner id, in bytes.
///
/// ```
/// assert_eq!(sessile::store::MAX_OWNER_LEN, 256);
/// ```
pub const MAX_OWNER_LEN: usize = 256;

/// Whether `owner` is a valid owner id: 1 to [`MAX_OWNER_LEN`] bytes.
pub(crate) fn valid_owner(owner: &str) -> bool {
    (1..=MAX_OWNER_LEN).contains(&owner.len())
}

/// The owner stored in `data`, if it holds a valid one. Text without the field's name (or
/// any `\u` escape, which could spell it) is not parsed, so records of sessions without an
/// owner cost two vectorised substring searches (`memchr::memmem`: an unmodified request's
/// touch asks every session for its owner).
pub(crate) fn owner_of(data: &Data) -> Option<String> {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    // Built once: a finder's setup costs more than a search of a small record.
    static NAME: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(OWNER_KEY));
    static ESCAPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("\\u"));
    let text = data.as_str().as_bytes();
    if NAME.find(text).is_none() && ESCAPE.find(text).is_none() {
        return None;
    }
    data.field::<String>(OWNER_KEY)
        .ok()
        .flatten()
        .filter(|o| valid_owner(o))
}

/// A live session of an owner, as [`SessionStore::sessions_of`](crate::SessionStore::sessions_of)
/// lists it: its id and its record.
///
/// ```
/// use sessile::store::OwnedSession;
/// use sessile::Record;
///
/// let record = Record::from_json(
///     r#"{"cookie":{},"__sessile_owner":"alice","__sessile_owner_since":1700000000000}"#,
/// )?;
/// let session = OwnedSession { id: "sid".into(), record };
/// assert_eq!(session.owner().as_deref(), Some("alice"));
/// assert_eq!(session.owned_since_ms(), Some(1_700_000_000_000));
/// # Ok::<(), sessile::StoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedSession {
    /// The session id.
    pub id: String,
    /// The session's record (its cookie, so its expiry, and its fields).
    pub record: Record,
}

impl OwnedSession {
    /// The session's owner, as stored in its record.
    pub fn owner(&self) -> Option<String> {
        owner_of(&self.record.data)
    }

    /// When the owner was set, in milliseconds since the epoch (`None` if the record does
    /// not say, e.g. a Node app set the owner field alone).
    pub fn owned_since_ms(&self) -> Option<i64> {
        self.record
            .data
            .field::<i64>(OWNER_SINCE_KEY)
            .ok()
            .flatten()
    }

    /// The order [`SessionStore::sessions_of`](crate::SessionStore::sessions_of) lists
    /// sessions in: oldest owner first (a record that does not say counts as oldest), then
    /// by id, so that sessions made in one millisecond still come in one order.
    pub(crate) fn sort(sessions: &mut [OwnedSession]) {
        sessions.sort_by_cached_key(|s| (s.owned_since_ms().unwrap_or(i64::MIN), s.id.clone()));
    }
}
