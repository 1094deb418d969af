//! The atomic [`apply`](crate::SessionStore::apply) of the Redis store: an optimistic
//! read-modify-write whose write is a compare-and-set run inside Redis by a Lua script.
//!
//! 1. `GET` the stored JSON text.
//! 2. In Rust, parse it, apply the changes, and serialise the new record (serde_json, key
//!    order kept).
//! 3. Run [`CAS`] with the text read in step 1 and the new text: Redis compares the stored
//!    value with the text read and writes only if they are still equal. Scripts run
//!    atomically, so no other client's write can come between the compare and the write.
//! 4. If another write came first, the script answers with the value now stored, and steps
//!    2-3 run again on it (no second `GET`).
//!
//! # Why not merge inside Lua, or WATCH/MULTI/EXEC
//!
//! Merging the changes inside Lua would need `cjson`, which reorders object keys and
//! rewrites numbers (`1e21`, large integers) when it encodes: fields written by Node would
//! not round-trip untouched. Here Lua never looks inside the JSON; it compares and stores
//! strings, and the text stored is exactly what serde_json produced.
//!
//! `WATCH`/`MULTI`/`EXEC` gives the same optimistic check, but `WATCH` state belongs to a
//! connection, so every `apply` in flight would need a connection of its own, taken from a
//! pool with its own reconnect logic. The script runs on the one multiplexed connection every
//! other call uses (and that reconnects by itself), costs one round trip per attempt, and
//! turns a conflict into the new value directly.

use ::redis::{Script, Value};

use crate::error::StoreError;

/// The compare-and-set script.
///
/// `KEYS[1]`: the session key. `ARGV[1]`: the value the new one was computed from.
/// `ARGV[2]`: the new value. `ARGV[3]`: the TTL in whole seconds; `0` or less deletes the
/// key instead of writing it (the record is already expired).
///
/// Returns `1` when the write (or delete) happened, `0` when the key is gone, and the value
/// now stored when it differs from `ARGV[1]`.
pub const CAS: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
if current ~= ARGV[1] then
  return current
end
local ttl = tonumber(ARGV[3])
if ttl and ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)
else
  redis.call('DEL', KEYS[1])
end
return 1
"#;

/// What one compare-and-set attempt found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum CasOutcome {
    /// The new value was written (or the key deleted, for a TTL of zero or less).
    Written,
    /// The key no longer exists.
    Gone,
    /// Another write came first; this is the value stored now.
    Conflict(Vec<u8>),
}

/// The loaded [`CAS`] script.
pub(super) struct Cas {
    script: Script,
}

impl Cas {
    pub(super) fn new() -> Self {
        Cas {
            script: Script::new(CAS),
        }
    }

    /// One attempt. `EVALSHA` first; a Redis that lost its script cache (a restart) is
    /// sent the script again by [`Script::invoke_async`].
    pub(super) async fn run(
        &self,
        conn: &mut super::Conn,
        key: &str,
        expected: &str,
        new: &str,
        ttl_secs: i64,
    ) -> Result<CasOutcome, ::redis::RedisError> {
        let reply: Value = self
            .script
            .key(key)
            .arg(expected)
            .arg(new)
            .arg(ttl_secs)
            .invoke_async(conn)
            .await?;
        Ok(match reply {
            Value::Int(1) => CasOutcome::Written,
            Value::Int(_) | Value::Nil => CasOutcome::Gone,
            Value::BulkString(b) => CasOutcome::Conflict(b),
            Value::SimpleString(s) => CasOutcome::Conflict(s.into_bytes()),
            Value::VerbatimString { text, .. } => CasOutcome::Conflict(text.into_bytes()),
            other => {
                return Err(::redis::RedisError::from((
                    ::redis::ErrorKind::UnexpectedReturnType,
                    "unexpected reply to the session compare-and-set script",
                    format!("{other:?}"),
                )))
            }
        })
    }
}

/// How many compare-and-set attempts one `apply` makes before giving up. Each attempt that
/// loses means another write to the same session won, so this bounds the work under a
/// pathological stream of writes; the call's timeout bounds the time.
pub(super) const MAX_ATTEMPTS: usize = 1_000;

/// The error of an `apply` that lost every attempt.
pub(super) fn too_many_conflicts(key: &str) -> StoreError {
    StoreError::backend(format!(
        "apply on {key:?}: {MAX_ATTEMPTS} compare-and-set attempts each lost to another write"
    ))
}
