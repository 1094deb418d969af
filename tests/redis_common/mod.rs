//! The Redis side of the Redis tests (`redis_store.rs`, `redis_interop.rs`): finding the
//! Redis server, skipping without one, raw Redis access. Their HTTP side (server, client,
//! cookies) is `tests/common`.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::Write as _;

pub mod server;

use redis::aio::MultiplexedConnection;

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
        ("clear", suite::check_clear(store).await),
    ];
    checks
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|e| format!("{name}: {e}")))
        .collect()
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
pub async fn raw_get(conn: &mut MultiplexedConnection, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query_async(conn)
        .await
        .expect("GET")
}

/// `TTL key` (-2: no key, -1: no TTL).
pub async fn raw_ttl(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("TTL")
        .arg(key)
        .query_async(conn)
        .await
        .expect("TTL")
}

/// `EXISTS key`.
pub async fn raw_exists(conn: &mut MultiplexedConnection, key: &str) -> bool {
    let n: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(conn)
        .await
        .expect("EXISTS");
    n == 1
}

/// `SET key value EX ttl`, as connect-redis writes.
pub async fn raw_set(conn: &mut MultiplexedConnection, key: &str, value: &[u8], ttl: i64) {
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
