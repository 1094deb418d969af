//! The Redis store: sessions shared by many nodes, and with Node's `connect-redis`.
//!
//! [`RedisStore`] keeps sessions exactly as `connect-redis` (v7 to v9) does, so an Express app
//! using `express-session` + `connect-redis` and a sessile app with the same cookie name,
//! secret and prefix share one login:
//!
//! | call | Redis | as connect-redis |
//! | --- | --- | --- |
//! | `get` | `GET prefix+sid`, parsed as express's JSON | yes |
//! | `set` | `SET prefix+sid json EX ttl`, or `DEL` when `ttl <= 0` | yes |
//! | `touch` | `EXPIRE prefix+sid ttl` (the value is not rewritten), or `DEL` when `ttl <= 0`; for a session the layer knows is owned (`touch_owned`), then the owner's set's TTL raised to match (see [`owners`]) | yes |
//! | `destroy` | `DEL prefix+sid` | yes |
//! | `create` | `SET prefix+sid json NX EX ttl` (insert if absent) | sessile only |
//! | `all`, `len`, `clear` | `SCAN MATCH prefix*` (never `KEYS`), then `MGET` / `DEL` per page; `all` and `len` skip values that are not sessions | yes |
//! | `apply` | `GET`, then a compare-and-set Lua script (see below) | sessile only |
//! | `sessions_of`, `destroy_all_of` | the owner's set `prefix+owner:<owner>`, which every write of an owned session joins (see [`owners`]) | sessile only |
//!
//! - **Key**: the prefix (default `sess:`) followed by the session id.
//! - **Value**: `{"cookie":{...},...fields}`, the text `JSON.stringify(req.session)` gives.
//!   Fields this crate does not know (written by Node) are kept, in their order, and
//!   `cookie.expires` is read in any form JavaScript's `Date` writes. A field this crate
//!   cannot decode (a string with a lone UTF-16 surrogate, which `JSON.stringify` writes as
//!   an escape, or nesting past serde_json's limit) is kept byte for byte too.
//! - **TTL**: `ceil((cookie.expires - now) / 1000)` seconds; a browser-session cookie (no
//!   `expires`) gets [`RedisStoreBuilder::default_ttl`] (one day, connect-redis's default).
//!
//! # Expiry, as read back
//!
//! A key's TTL is rounded up to whole seconds, so a key can outlive its `cookie.expires` by
//! up to a second; and a `touch` moves only the TTL, so a key kept alive by touches (from
//! either side) can outlive the `expires` written in its value by far. The store reads both
//! the way the trait promises: a record whose stored `expires` has passed is live only if
//! the key's remaining TTL (`PTTL`, read in the same transaction as the value) reaches at
//! least a second past that `expires`, i.e. a touch extended it; its `cookie.expires` is
//! then reported as the key's expiry. Otherwise it is treated as missing (and left for
//! Redis to delete within the second).
//!
//! A `touch` stores the expiry only: like connect-redis, it never rewrites the value, so it
//! cannot overwrite a field another node wrote meanwhile. A cookie attribute changed without
//! any field change (`cookie.maxAge` set in a handler that changes nothing else) is therefore
//! not stored by a touch, exactly as with express-session and connect-redis.
//!
//! # Parallel requests
//!
//! [`SessionStore::apply`] (what the layer sends for a modified session when `resave` is
//! off) is atomic across every client of the Redis server: an optimistic read-modify-write
//! whose write is a compare-and-set inside Redis, retried on conflict. Two nodes changing
//! different fields of one session both keep their change. See [`script`] for the script
//! and why it was chosen over `WATCH`/`MULTI` or a merge in Lua. Within one process,
//! `apply` calls of one session queue up instead of racing each other's compare-and-set.
//!
//! # Failures
//!
//! One multiplexed connection (redis-rs's `ConnectionManager`) serves every call (or
//! several, see [`limits`](RedisStoreBuilder::connections)); it reconnects by itself after
//! Redis restarts. On a Redis Cluster (`RedisStore::cluster`,
//! feature `redis-cluster`) redis-rs's cluster client keeps one such connection per node,
//! routes each call by its key's slot, follows `MOVED`/`ASK`, and finds a promoted replica
//! after a failover by itself; `all`, `len` and `clear` walk every primary. `rediss://` URLs
//! (feature `redis-tls`) connect with rustls. Every call is bounded by
//! [`RedisStoreBuilder::timeout`] (or the timeout of its kind of call): Redis down gives
//! [`StoreError::Unavailable`], Redis too slow [`StoreError::Timeout`], a value that is not a session [`StoreError::Corrupt`]. The layer
//! turns any of these into its error response (500 by default), and requests succeed again
//! as soon as Redis answers again. Nothing Redis returns can make the store panic.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::{ErrorKind, RedisError, ServerErrorKind, Value};
use async_trait::async_trait;

use crate::clock;
use crate::error::{Corrupted, Corruption, StoreError};
use crate::record::{Changes, CookieRecord, Record};
use crate::store::{Applied, Created, OwnedSession, SessionStore};

mod builder;
#[cfg(feature = "redis-cluster")]
mod cluster;
mod conn;
mod limits;
mod locks;
pub mod owners;
mod reply;
pub mod script;
#[cfg(feature = "redis-sentinel")]
mod sentinel;
mod stats;
#[cfg(feature = "redis-tls")]
mod tls;

pub use builder::RedisStoreBuilder;
use conn::{Conn, Node, Target};
use limits::{Call, Timeouts};
use locks::KeyLocks;
use reply::{bytes_of, ceil_secs, glob_escape, liveness, parse, store_error, utf8, Liveness};
use script::{Cas, CasOutcome};
pub use stats::RedisStats;

/// How long past its stored `cookie.expires` a key may live only because its TTL was rounded
/// up to whole seconds. A key living longer than that was extended by a `touch`.
const ROUNDING_MS: i64 = 1_000;

/// Sessions in Redis, in connect-redis's format. See the [module documentation](self).
///
/// Cloning gives another handle to the same connection.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use sessile::{RedisStore, SessionLayer};
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379/").build().await?;
/// let layer = SessionLayer::builder().secret("keyboard cat").store(store).build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// One connection, or several to one server taken in turn.
    conns: Vec<Conn>,
    next_conn: std::sync::atomic::AtomicUsize,
    /// Turns of `max_in_flight`, if bounded.
    in_flight: Option<tokio::sync::Semaphore>,
    prefix: String,
    /// `SCAN MATCH` pattern: the prefix with glob characters escaped, then `*`.
    pattern: String,
    default_ttl_secs: i64,
    timeouts: Timeouts,
    scan_count: usize,
    cas: Cas,
    /// The owner sets' scripts (see [`owners`]).
    owner_scripts: owners::OwnerScripts,
    /// Queues this process's `apply` calls per session (see [`locks`]).
    locks: KeyLocks,
    /// What [`RedisStore::stats`] reports.
    stats: stats::Counters,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("default_ttl_secs", &self.inner.default_ttl_secs)
            .field("timeouts", &self.inner.timeouts)
            .field("connections", &self.inner.conns.len())
            .finish_non_exhaustive()
    }
}

/// Where a walk of every key under the prefix is: the nodes to scan, the one being scanned
/// and its `SCAN` cursor.
struct KeyWalk {
    nodes: Vec<Node>,
    node: usize,
    cursor: u64,
}

impl RedisStore {
    /// Options for a store on the Redis server at `url` (`redis://[user:password@]host[:port][/db]`,
    /// or `rediss://` for TLS with the `redis-tls` feature: see [`tls`](RedisStoreBuilder::tls_root_certificates)).
    /// For a Redis Cluster, see `RedisStore::cluster` (feature `redis-cluster`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::builder("redis://127.0.0.1:6379/0").build().await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            target: Target::Single(url.into()),
            #[cfg(feature = "redis-tls")]
            tls: tls::TlsOptions::default(),
            prefix: "sess:".into(),
            default_ttl: Duration::from_secs(86_400),
            timeouts: Timeouts::all(Duration::from_secs(2)),
            scan_count: 100,
            connections: 1,
            max_in_flight: None,
        }
    }

    /// A store on `url` with the default options (`builder(url).build()`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::connect("redis://127.0.0.1/").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`RedisStoreBuilder::build`].
    pub async fn connect(url: impl Into<String>) -> Result<Self, StoreError> {
        Self::builder(url).build().await
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The Redis key of a session id: the prefix followed by the id.
    pub fn key(&self, sid: &str) -> String {
        let mut key = String::with_capacity(self.inner.prefix.len() + sid.len());
        key.push_str(&self.inner.prefix);
        key.push_str(sid);
        key
    }

    /// The TTL in seconds a record with this cookie gets; `<= 0` means delete.
    fn ttl_secs(&self, cookie: &CookieRecord, now_ms: i64) -> i64 {
        match cookie.expires {
            None => self.inner.default_ttl_secs,
            Some(e) => ceil_secs(e.min(clock::MAX_MS).saturating_sub(now_ms)),
        }
    }

    /// The store's figures since it was built: calls by kind, errors by kind,
    /// compare-and-set retries, latency percentiles (see [`RedisStats`]).
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::connect("redis://127.0.0.1:6379/").await?;
    /// println!("{}", serde_json::to_string(&store.stats()).unwrap());
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> RedisStats {
        self.inner.stats.snapshot()
    }

    /// The next connection (in turn, when there are several).
    fn conn(&self) -> Conn {
        let conns = &self.inner.conns;
        let i = match conns.len() {
            1 => 0,
            n => {
                self.inner
                    .next_conn
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    % n
            }
        };
        conns[i].clone()
    }

    fn err(&self, e: RedisError) -> StoreError {
        store_error(e, self.inner.timeouts.longest())
    }

    /// Runs `fut` within the timeout of its kind of call, after waiting for a turn when
    /// the calls in flight are bounded (the wait counts against the timeout).
    async fn within<T>(
        &self,
        call: Call,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let limit = self.inner.timeouts.of(call);
        let run = async {
            let _turn = match &self.inner.in_flight {
                // The semaphore is never closed.
                Some(turns) => Some(turns.acquire().await.map_err(StoreError::backend)?),
                None => None,
            };
            fut.await
        };
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(limit, run).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(limit)),
        };
        self.inner
            .stats
            .ended(call, started.elapsed(), result.as_ref().err());
        result
    }

    async fn get_text(&self, key: &str) -> Result<Option<String>, StoreError> {
        let v: Value = ::redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| self.err(e))?;
        bytes_of(v).map(|b| utf8(key, b)).transpose()
    }

    /// The record stored as `text` under `key` if it is live, with the text it was read
    /// from. A record whose stored expiry has passed is read again together with the key's
    /// TTL to tell a touched session from an expired one.
    async fn live(&self, key: &str, text: String) -> Result<Option<(Record, String)>, StoreError> {
        let record = parse(key, &text)?;
        if liveness(record.cookie.expires, -2, clock::now_ms()) != Liveness::Expired {
            return Ok(Some((record, text)));
        }
        let (value, pttl): (Value, i64) = ::redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(key)
            .cmd("PTTL")
            .arg(key)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| self.err(e))?;
        let Some(bytes) = bytes_of(value) else {
            return Ok(None);
        };
        let text = utf8(key, bytes)?;
        let mut record = parse(key, &text)?;
        match liveness(record.cookie.expires, pttl, clock::now_ms()) {
            Liveness::Live(expires) => {
                record.cookie.expires = expires;
                Ok(Some((record, text)))
            }
            Liveness::Expired => Ok(None),
        }
    }

    async fn write(&self, sid: &str, key: &str, record: &Record) -> Result<(), StoreError> {
        let ttl = self.ttl_secs(&record.cookie, clock::now_ms());
        let mut cmd = ::redis::cmd(if ttl > 0 { "SET" } else { "DEL" });
        cmd.arg(key);
        if ttl > 0 {
            cmd.arg(record.to_json()).arg("EX").arg(ttl);
        }
        let _: Value = cmd
            .query_async(&mut self.conn())
            .await
            .map_err(|e| self.err(e))?;
        self.join_owner(sid, record, ttl).await
    }

    async fn apply_inner(
        &self,
        sid: &str,
        key: &str,
        changes: &Changes,
    ) -> Result<Applied, StoreError> {
        // This node's own writers of the session queue up; the compare-and-set handles the
        // others.
        let _turn = self.inner.locks.lock(key).await;
        let mut conn = self.conn();
        let mut stored = self.get_text(key).await?;
        for _ in 0..script::MAX_ATTEMPTS {
            let Some(text) = stored.take() else {
                return Ok(Applied::Missing);
            };
            let Some((record, text)) = self.live(key, text).await? else {
                return Ok(Applied::Missing);
            };
            let new = Record {
                cookie: changes.cookie.clone(),
                data: changes.apply_to_data(&record.data)?,
            };
            let ttl = self.ttl_secs(&new.cookie, clock::now_ms());
            let outcome = self
                .inner
                .cas
                .run(&mut conn, key, &text, &new.to_json(), ttl)
                .await
                .map_err(|e| self.err(e))?;
            match outcome {
                CasOutcome::Written => {
                    self.join_owner(sid, &new, ttl).await?;
                    return Ok(Applied::Applied);
                }
                CasOutcome::Gone => return Ok(Applied::Missing),
                CasOutcome::Conflict(now_stored) => {
                    self.inner.stats.cas_retry();
                    stored = Some(utf8(key, now_stored)?);
                }
            }
        }
        Err(script::too_many_conflicts(key))
    }

    /// `SET NX` with the record's TTL. A key already there is read: a live record makes
    /// the create fail; an expired one still in its last rounded-up second is replaced only
    /// if unchanged (the compare-and-set script), and one gone meanwhile is tried again.
    async fn create_inner(
        &self,
        sid: &str,
        key: &str,
        record: &Record,
    ) -> Result<Created, StoreError> {
        let created = self.create_key(key, record).await?;
        if created == Created::Created {
            let ttl = self.ttl_secs(&record.cookie, clock::now_ms());
            self.join_owner(sid, record, ttl).await?;
        }
        Ok(created)
    }

    /// [`create_inner`](Self::create_inner)'s write of the session itself.
    async fn create_key(&self, key: &str, record: &Record) -> Result<Created, StoreError> {
        let ttl = self.ttl_secs(&record.cookie, clock::now_ms());
        let json = record.to_json();
        let mut conn = self.conn();
        for _ in 0..script::MAX_ATTEMPTS {
            if ttl > 0 {
                let set: Value = ::redis::cmd("SET")
                    .arg(key)
                    .arg(&json)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.err(e))?;
                if set != Value::Nil {
                    return Ok(Created::Created);
                }
            }
            let text = self.get_text(key).await?;
            let live = match text.clone() {
                Some(text) => self.live(key, text).await?.is_some(),
                None => false,
            };
            match (live, text) {
                (true, _) => return Ok(Created::Exists),
                // Already expired on arrival: nothing to store, as `set` would store nothing.
                _ if ttl <= 0 => return Ok(Created::Created),
                (false, None) => continue,
                (false, Some(stale)) => {
                    let outcome = self
                        .inner
                        .cas
                        .run(&mut conn, key, &stale, &json, ttl)
                        .await
                        .map_err(|e| self.err(e))?;
                    if outcome == CasOutcome::Written {
                        return Ok(Created::Created);
                    }
                    self.inner.stats.cas_retry();
                }
            }
        }
        Err(StoreError::backend(format!(
            "create on {key:?}: the key changed under each of {} attempts",
            script::MAX_ATTEMPTS
        )))
    }

    /// Starts a walk of every key under the prefix: the nodes to scan, each from cursor 0.
    async fn start_walk(&self) -> Result<KeyWalk, StoreError> {
        let nodes = self
            .within(Call::Walk, async {
                self.conn().scan_nodes().await.map_err(|e| self.err(e))
            })
            .await?;
        Ok(KeyWalk {
            nodes,
            node: 0,
            cursor: 0,
        })
    }

    /// The next `SCAN` page of a walk (within the timeout): the keys under the prefix, as
    /// session ids with their keys; `None` once every node was walked.
    async fn next_page(
        &self,
        walk: &mut KeyWalk,
    ) -> Result<Option<Vec<(String, String)>>, StoreError> {
        let Some(node) = walk.nodes.get(walk.node) else {
            return Ok(None);
        };
        let mut scan = ::redis::cmd("SCAN");
        scan.arg(walk.cursor)
            .arg("MATCH")
            .arg(&self.inner.pattern)
            .arg("COUNT")
            .arg(self.inner.scan_count);
        let (next, keys): (u64, Vec<Vec<u8>>) = self
            .within(Call::Walk, async {
                let reply = self
                    .conn()
                    .query_node(node, scan)
                    .await
                    .map_err(|e| self.err(e))?;
                ::redis::from_redis_value(reply).map_err(|e| self.err(e.into()))
            })
            .await?;
        if next == 0 {
            walk.node += 1;
        }
        walk.cursor = next;
        let prefix = &self.inner.prefix;
        let keys = keys
            .into_iter()
            // A key that is not UTF-8 cannot hold a session id of this crate's.
            .filter_map(|k| String::from_utf8(k).ok())
            .filter_map(|k| {
                let sid = k.strip_prefix(prefix.as_str())?.to_owned();
                Some((sid, k))
            })
            .collect();
        Ok(Some(keys))
    }

    /// Walks every key under the prefix, one `SCAN` page at a time, handing each page's live
    /// records to `each`; values that are not sessions are skipped.
    async fn walk(&self, mut each: impl FnMut(String, Record)) -> Result<(), StoreError> {
        let mut walk = self.start_walk().await?;
        while let Some(keys) = self.next_page(&mut walk).await? {
            if !keys.is_empty() {
                let values: Vec<Value> = self
                    .within(Call::Walk, async {
                        let mut mget = ::redis::cmd("MGET");
                        for (_, key) in &keys {
                            mget.arg(key);
                        }
                        mget.query_async(&mut self.conn())
                            .await
                            .map_err(|e| self.err(e))
                    })
                    .await?;
                for ((sid, key), value) in keys.into_iter().zip(values) {
                    let Some(bytes) = bytes_of(value) else {
                        continue;
                    };
                    if self.is_owner_set(&sid) {
                        continue;
                    }
                    // A value that cannot be read as a session is skipped: one bad record
                    // must not fail the call for every caller. (Not reported yet: the
                    // store has no channel to report through.)
                    let Ok(text) = utf8(&key, bytes) else {
                        continue;
                    };
                    match self.within(Call::Walk, self.live(&key, text)).await {
                        Ok(Some((record, _))) => each(sid, record),
                        Ok(None) | Err(StoreError::Corrupt(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn get(&self, sid: &str) -> Result<Option<Record>, StoreError> {
        let key = self.key(sid);
        self.within(Call::Read, async {
            let Some(text) = self.get_text(&key).await? else {
                return Ok(None);
            };
            Ok(self.live(&key, text).await?.map(|(record, _)| record))
        })
        .await
    }

    async fn set(&self, sid: &str, record: &Record) -> Result<(), StoreError> {
        let key = self.key(sid);
        self.within(Call::Write, self.write(sid, &key, record))
            .await
    }

    async fn create(&self, sid: &str, record: &Record) -> Result<Created, StoreError> {
        let key = self.key(sid);
        self.within(Call::Write, self.create_inner(sid, &key, record))
            .await
    }

    async fn apply(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError> {
        let key = self.key(sid);
        self.within(Call::Write, self.apply_inner(sid, &key, changes))
            .await
    }

    async fn destroy(&self, sid: &str) -> Result<(), StoreError> {
        let key = self.key(sid);
        self.within(Call::Write, async {
            let _: Value = ::redis::cmd("DEL")
                .arg(&key)
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.err(e))?;
            Ok(())
        })
        .await
    }

    async fn touch(&self, sid: &str, cookie: &CookieRecord) -> Result<(), StoreError> {
        let key = self.key(sid);
        let ttl = self.ttl_secs(cookie, clock::now_ms());
        self.within(Call::Write, async {
            let mut cmd = ::redis::cmd(if ttl > 0 { "EXPIRE" } else { "DEL" });
            cmd.arg(&key);
            if ttl > 0 {
                cmd.arg(ttl);
            }
            let _: Value = cmd
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.err(e))?;
            Ok(())
        })
        .await
    }

    async fn all(&self) -> Result<BTreeMap<String, Record>, StoreError> {
        let mut out = BTreeMap::new();
        self.walk(|sid, record| {
            out.insert(sid, record);
        })
        .await?;
        Ok(out)
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let mut walk = self.start_walk().await?;
        while let Some(keys) = self.next_page(&mut walk).await? {
            if !keys.is_empty() {
                self.within(Call::Walk, async {
                    let mut del = ::redis::cmd("DEL");
                    for (_, key) in &keys {
                        del.arg(key);
                    }
                    let _: Value = del
                        .query_async(&mut self.conn())
                        .await
                        .map_err(|e| self.err(e))?;
                    Ok(())
                })
                .await?;
            }
        }
        Ok(())
    }

    /// `EXPIRE` (or `DEL`) as [`touch`](SessionStore::touch), then, if the session is
    /// still there, the [`owners::JOIN`] script on the owner's set, so that the set lives as
    /// long as the session.
    async fn touch_owned(
        &self,
        sid: &str,
        cookie: &CookieRecord,
        owner: &str,
    ) -> Result<(), StoreError> {
        let key = self.key(sid);
        let ttl = self.ttl_secs(cookie, clock::now_ms());
        if ttl <= 0 {
            return self.touch(sid, cookie).await;
        }
        self.within(Call::Write, async {
            let found: i64 = ::redis::cmd("EXPIRE")
                .arg(&key)
                .arg(ttl)
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.err(e))?;
            if found == 1 {
                self.join(sid, owner, ttl).await?;
            }
            Ok(())
        })
        .await
    }

    /// From the set `<prefix>owner:<owner>` (see [`owners`]): `SMEMBERS`, a `GET` per
    /// member, and one `SREM` of the members found gone or re-owned.
    async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError> {
        self.within(Call::Walk, self.owned(owner)).await
    }

    /// [`sessions_of`](SessionStore::sessions_of), then a `DEL` of each session and one
    /// `SREM` of them from the set.
    async fn destroy_all_of(&self, owner: &str, except: Option<&str>) -> Result<usize, StoreError> {
        let sessions = self.sessions_of(owner).await?;
        self.within(Call::Walk, self.destroy_owned(owner, sessions, except))
            .await
    }

    async fn len(&self) -> Result<usize, StoreError> {
        // SCAN may return a key twice; count distinct ids.
        let mut ids = std::collections::HashSet::new();
        self.walk(|sid, _| {
            ids.insert(sid);
        })
        .await?;
        Ok(ids.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_javascripts_ceil() {
        assert_eq!(ceil_secs(1), 1);
        assert_eq!(ceil_secs(999), 1);
        assert_eq!(ceil_secs(1_000), 1);
        assert_eq!(ceil_secs(1_001), 2);
        assert_eq!(ceil_secs(0), 0);
        assert_eq!(ceil_secs(-1), 0);
        assert_eq!(ceil_secs(-999), 0);
        assert_eq!(ceil_secs(-1_000), -1);
        assert_eq!(ceil_secs(-1_001), -1);
        assert_eq!(ceil_secs(i64::MIN), i64::MIN / 1000);
    }

    #[test]
    fn liveness_trusts_touches_but_not_rounding() {
        let now = 1_000_000;
        assert_eq!(liveness(None, -1, now), Liveness::Live(None));
        assert_eq!(
            liveness(Some(now + 1), -2, now),
            Liveness::Live(Some(now + 1))
        );
        // Expired, the key alive only for the rest of its rounded-up second.
        assert_eq!(liveness(Some(now - 100), 800, now), Liveness::Expired);
        assert_eq!(liveness(Some(now), 999, now), Liveness::Expired);
        // Expired, no key or no TTL.
        assert_eq!(liveness(Some(now - 1), -2, now), Liveness::Expired);
        assert_eq!(liveness(Some(now - 1), -1, now), Liveness::Expired);
        // A touch moved the key's expiry well past the stored one.
        assert_eq!(
            liveness(Some(now - 5_000), 60_000, now),
            Liveness::Live(Some(now + 60_000))
        );
        assert_eq!(
            liveness(Some(now), 1_000, now),
            Liveness::Live(Some(now + 1_000))
        );
        assert!(matches!(
            liveness(Some(i64::MIN), i64::MAX, now),
            Liveness::Live(_)
        ));
    }

    #[test]
    fn scan_pattern_escapes_globs() {
        assert_eq!(glob_escape("sess:"), "sess:");
        assert_eq!(glob_escape("a*b?[c]\\d^-"), "a\\*b\\?\\[c\\]\\\\d\\^\\-");
    }
}
