//! The Redis side of the Redis tests (`redis_store.rs`, `redis_interop.rs`): finding the
//! Redis server, skipping without one, raw Redis access. Their HTTP side (server, client,
//! cookies) is `tests/common`.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::Write as _;

pub mod server;

use redis::aio::{ConnectionLike, MultiplexedConnection};

/// Whether this run is CI (`CI` set and not empty), where skipping is not allowed.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Prints a skip notice where `cargo test` shows it (past its output capture).
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// `REDIS_URL`, or `None` after printing that `test` was skipped. Under CI a missing
/// `REDIS_URL` fails the test: `.ci/run` starts a Redis server and sets it.
pub fn redis_url(test: &str) -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                !in_ci(),
                "{test}: REDIS_URL is not set, and CI is: .ci/run must start redis-server"
            );
            skip(
                test,
                "REDIS_URL is not set (start redis-server and set it to run)",
            );
            None
        }
    }
}

/// The shared suite of `sessile::store::suite` on a Redis store, every check but two: the
/// failures, one line each.
///
/// `check_touch` and `check_expiry` expect `touch` to store the whole new cookie to the
/// millisecond. The Redis store's `touch` is connect-redis's `EXPIRE` (whole seconds, value
/// not rewritten), as the format shared with Node requires; `redis_store.rs` checks its
/// behaviour instead. `check_clear` is destructive, but the store's prefix is the test's own.
pub async fn suite_failures(store: &sessile::RedisStore) -> Vec<String> {
    use sessile::store::suite;
    let checks: Vec<(&str, Result<(), suite::SuiteFailure>)> = vec![
        ("get_missing", suite::check_get_missing(store).await),
        ("set_get", suite::check_set_get(store).await),
        ("set_replaces", suite::check_set_replaces(store).await),
        ("destroy", suite::check_destroy(store).await),
        ("create", suite::check_create(store).await),
        ("apply", suite::check_apply(store).await),
        ("apply_missing", suite::check_apply_missing(store).await),
        (
            "expired_on_arrival",
            suite::check_expired_on_arrival(store).await,
        ),
        ("all_and_len", suite::check_all_and_len(store).await),
        (
            "concurrent_apply",
            suite::check_concurrent_apply(store).await,
        ),
        ("large_values", suite::check_large_values(store).await),
        ("odd_ids", suite::check_odd_ids(store).await),
        (
            "undecodable_fields",
            suite::check_undecodable_fields(store).await,
        ),
        ("owners", suite::check_owners(store).await),
        ("clear", suite::check_clear(store).await),
    ];
    checks
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|e| format!("{name}: {e}")))
        .collect()
}

/// `REDIS_CLUSTER_URLS` (the seed nodes of a Redis Cluster, comma-separated), or `None`
/// after printing that `test` was skipped. Under CI a missing `REDIS_CLUSTER_URLS` fails the
/// test: `.ci/run` starts a cluster and sets it.
pub fn redis_cluster_urls(test: &str) -> Option<Vec<String>> {
    let urls: Vec<String> = std::env::var("REDIS_CLUSTER_URLS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(String::from)
        .collect();
    if urls.is_empty() {
        assert!(
            !in_ci(),
            "{test}: REDIS_CLUSTER_URLS is not set, and CI is: .ci/run must start a cluster"
        );
        skip(
            test,
            "REDIS_CLUSTER_URLS is not set (start a Redis Cluster and set it to its nodes' URLs, comma-separated)",
        );
        return None;
    }
    Some(urls)
}

/// A cluster connection for looking at what the store wrote (commands routed by key).
#[cfg(feature = "redis-cluster")]
pub async fn raw_cluster(urls: &[String]) -> redis::cluster_async::ClusterConnection {
    redis::cluster::ClusterClient::new(urls.to_vec())
        .expect("cluster seed URLs parse")
        .get_async_connection()
        .await
        .expect("connect to the cluster")
}

/// The Redis a test runs on: one server, or a cluster by its seed nodes.
#[derive(Clone, Debug)]
pub enum Deployment {
    /// `REDIS_URL`.
    Single(String),
    /// `REDIS_CLUSTER_URLS`.
    #[cfg(feature = "redis-cluster")]
    Cluster(Vec<String>),
}

impl Deployment {
    /// A store builder for it.
    pub fn builder(&self) -> sessile::RedisStoreBuilder {
        match self {
            Deployment::Single(url) => sessile::RedisStore::builder(url.as_str()),
            #[cfg(feature = "redis-cluster")]
            Deployment::Cluster(urls) => sessile::RedisStore::cluster(urls.iter().cloned()),
        }
    }

    /// The environment variable and value that tell the Express app of `tests/interop`
    /// where Redis is.
    pub fn node_env(&self) -> (&'static str, String) {
        match self {
            Deployment::Single(url) => ("REDIS_URL", url.clone()),
            #[cfg(feature = "redis-cluster")]
            Deployment::Cluster(urls) => ("REDIS_CLUSTER_URLS", urls.join(",")),
        }
    }

    /// A plain connection (routed by key on a cluster) for looking at what was written.
    pub async fn raw(&self) -> RawConn {
        match self {
            Deployment::Single(url) => RawConn::Single(raw(url).await),
            #[cfg(feature = "redis-cluster")]
            Deployment::Cluster(urls) => RawConn::Cluster(raw_cluster(urls).await),
        }
    }

    /// Deletes every key under `prefix` (cleanup), on every primary of a cluster.
    pub async fn clear(&self, prefix: &str) {
        let store = self
            .builder()
            .prefix(prefix)
            .build()
            .await
            .expect("connect");
        sessile::SessionStore::clear(&store)
            .await
            .expect("clear the test's keys");
    }
}

/// A connection of a [`Deployment`].
pub enum RawConn {
    Single(MultiplexedConnection),
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for RawConn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            RawConn::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "redis-cluster")]
            RawConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            RawConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            #[cfg(feature = "redis-cluster")]
            RawConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// After a Redis failure under the layer at `addr` (whose routes are `common::routes`):
/// requests `/get/user` with `cookie` until one succeeds, which must show the login
/// (`true`), every one before it answered by the layer's error response (500); returns how
/// many failed. Panics after 60 s without a success.
pub async fn failures_until_recovered(addr: std::net::SocketAddr, cookie: &str) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut failed = 0;
    loop {
        let r = crate::common::get_with(addr, "/get/user", Some(cookie)).await;
        if r.status == 200 {
            assert_eq!(r.body, "true", "the session survived the failover");
            return failed;
        }
        assert_eq!(r.status, 500, "{r:?}");
        failed += 1;
        assert!(
            std::time::Instant::now() < deadline,
            "no success within 60 s of the failure ({failed} requests answered 500)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A key prefix no other test run uses.
pub fn unique_prefix(what: &str) -> String {
    format!(
        "sessile-test:{what}:{}:",
        sessile::id::generate().expect("random id")
    )
}

/// A plain connection for looking at what the store wrote.
pub async fn raw(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("REDIS_URL parses")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to REDIS_URL")
}

/// `GET key` as text.
pub async fn raw_get(conn: &mut impl ConnectionLike, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query_async(conn)
        .await
        .expect("GET")
}

/// `TTL key` (-2: no key, -1: no TTL).
pub async fn raw_ttl(conn: &mut impl ConnectionLike, key: &str) -> i64 {
    redis::cmd("TTL")
        .arg(key)
        .query_async(conn)
        .await
        .expect("TTL")
}

/// `EXISTS key`.
pub async fn raw_exists(conn: &mut impl ConnectionLike, key: &str) -> bool {
    let n: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(conn)
        .await
        .expect("EXISTS");
    n == 1
}

/// `SET key value EX ttl`, as connect-redis writes.
pub async fn raw_set(conn: &mut impl ConnectionLike, key: &str, value: &[u8], ttl: i64) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("EX")
        .arg(ttl)
        .query_async(conn)
        .await
        .expect("SET");
}

/// Deletes every key under `prefix` (cleanup).
pub async fn raw_clear(conn: &mut MultiplexedConnection, prefix: &str) {
    let pattern = format!("{}*", prefix.replace('*', "\\*"));
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await
            .expect("SCAN");
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(conn)
                .await
                .expect("DEL");
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}
