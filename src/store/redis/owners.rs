//! Sessions by owner in Redis: a set per owner beside the sessions.
//!
//! | what | key | value |
//! | --- | --- | --- |
//! | the sessions of `owner` | `<prefix>owner:<owner>` | a set of session ids |
//!
//! - **Joining.** Every write of a session whose record names an owner (the reserved field
//!   [`OWNER_KEY`](crate::store::OWNER_KEY)) — `set`, `create`, `apply` — is followed by
//!   [`JOIN`]: `SADD` of the id, and the set's TTL raised to the session's if it is shorter.
//!   A touch of a session the layer knows is owned
//!   ([`touch_owned`](crate::SessionStore::touch_owned)) is connect-redis's `EXPIRE`
//!   followed by [`JOIN`], so the set lives at least as long as its longest-lived member.
//!   (A touch of an owned session by a Node app sharing the store moves the session's TTL
//!   only: the set may then expire first, and the session is no longer listed for its
//!   owner until sessile writes or touches it again.)
//! - **Leaving.** A destroyed, expired or re-owned session stays in its old set until the
//!   set is read: [`sessions_of`](crate::SessionStore::sessions_of) reads every member's
//!   session and removes (`SREM`) those that are gone or belong to someone else. The set
//!   itself expires with its last member.
//! - **Cluster.** The set and its sessions hash to different slots: every command and script
//!   here names one key, so each goes to the node of that key. A `SCAN` of `<prefix>*`
//!   also finds the sets: `all` and `len` skip them (session ids of this store never start
//!   with `owner:`), `clear` deletes them with the sessions. Node's connect-redis reads a set
//!   as no session in `all()` (its `MGET` answers nil), but counts it in `length()`.

use ::redis::{Script, Value};

use super::RedisStore;
use crate::error::StoreError;
use crate::record::Record;
use crate::store::{owner_of, OwnedSession};

/// What follows the session prefix in the key of an owner's set.
pub(super) const OWNER_INFIX: &str = "owner:";

/// Adds a session to its owner's set and keeps the set alive as long as the session.
///
/// `KEYS[1]`: the owner's set. `ARGV[1]`: the session id. `ARGV[2]`: the session's TTL in
/// seconds. The set's TTL is raised to `ARGV[2]` when it is shorter (or the set has none,
/// being new), never lowered.
pub const JOIN: &str = r#"
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('TTL', KEYS[1]) < ttl then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return 1
"#;

/// The loaded owner scripts.
pub(super) struct OwnerScripts {
    join: Script,
}

impl OwnerScripts {
    pub(super) fn new() -> Self {
        OwnerScripts {
            join: Script::new(JOIN),
        }
    }
}

impl RedisStore {
    /// The Redis key of the set of `owner`'s sessions: the prefix, `owner:`, the owner.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::connect("redis://127.0.0.1/").await?;
    /// assert_eq!(store.owner_key("alice"), "sess:owner:alice");
    /// # Ok(()) }
    /// ```
    pub fn owner_key(&self, owner: &str) -> String {
        format!("{}{OWNER_INFIX}{owner}", self.inner.prefix)
    }

    /// Whether a key found under the prefix is an owner's set, not a session.
    pub(super) fn is_owner_set(&self, sid: &str) -> bool {
        sid.starts_with(OWNER_INFIX)
    }

    /// After a write of `record` under `sid` with `ttl_secs`: joins its owner's set, if it
    /// names an owner and was stored.
    pub(super) async fn join_owner(
        &self,
        sid: &str,
        record: &Record,
        ttl_secs: i64,
    ) -> Result<(), StoreError> {
        let Some(owner) = owner_of(&record.data) else {
            return Ok(());
        };
        if ttl_secs <= 0 {
            return Ok(());
        }
        self.join(sid, &owner, ttl_secs).await
    }

    /// [`JOIN`]: `sid` into `owner`'s set, whose TTL is raised to `ttl_secs` if shorter.
    pub(super) async fn join(
        &self,
        sid: &str,
        owner: &str,
        ttl_secs: i64,
    ) -> Result<(), StoreError> {
        let _: Value = self
            .inner
            .owner_scripts
            .join
            .key(self.owner_key(owner))
            .arg(sid)
            .arg(ttl_secs)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The live sessions in `owner`'s set, removing from it the members that are gone or
    /// belong to another owner now.
    pub(super) async fn owned(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError> {
        let set = self.owner_key(owner);
        let members: Vec<Vec<u8>> = ::redis::cmd("SMEMBERS")
            .arg(&set)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| self.err(e))?;
        let (mut out, mut stale) = (Vec::new(), Vec::new());
        for member in members {
            let Ok(sid) = String::from_utf8(member.clone()) else {
                stale.push(member);
                continue;
            };
            let key = self.key(&sid);
            let record = match self.get_text(&key).await? {
                Some(text) => match self.live(&key, text).await {
                    Ok(live) => live.map(|(r, _)| r),
                    Err(StoreError::Corrupt(_)) => None,
                    Err(e) => return Err(e),
                },
                None => None,
            };
            match record {
                Some(record) if owner_of(&record.data).as_deref() == Some(owner) => {
                    out.push(OwnedSession { id: sid, record });
                }
                _ => stale.push(member),
            }
        }
        self.leave(&set, stale).await?;
        OwnedSession::sort(&mut out);
        Ok(out)
    }

    /// `SREM` of `members` from the set `set` (nothing when there are none).
    async fn leave<M: ::redis::ToRedisArgs>(
        &self,
        set: &str,
        members: Vec<M>,
    ) -> Result<(), StoreError> {
        if members.is_empty() {
            return Ok(());
        }
        let _: Value = ::redis::cmd("SREM")
            .arg(set)
            .arg(members)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Destroys `sessions` of `owner` but `except`, and takes them out of its set; returns
    /// how many.
    pub(super) async fn destroy_owned(
        &self,
        owner: &str,
        sessions: Vec<OwnedSession>,
        except: Option<&str>,
    ) -> Result<usize, StoreError> {
        let doomed: Vec<String> = sessions
            .into_iter()
            .map(|s| s.id)
            .filter(|id| Some(id.as_str()) != except)
            .collect();
        for id in &doomed {
            let _: Value = ::redis::cmd("DEL")
                .arg(self.key(id))
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.err(e))?;
        }
        let n = doomed.len();
        self.leave(&self.owner_key(owner), doomed).await?;
        Ok(n)
    }
}
