//! The Redis store's pooling and limits against a `redis-server` of each test's own
//! (skipped without it unless `CI` is set): `connections(n)` opens n connections and uses
//! them all; `max_in_flight` makes a call wait for a turn (and time out waiting) while
//! another holds it; each kind of call has its own timeout. Writes are held with
//! `CLIENT PAUSE ... WRITE` (reads go on), and "a write is in flight" is the server's
//! `blocked_clients`, waited for, never slept for.

#![cfg(feature = "redis")]

mod common;
mod redis_common;

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis_common::server::own_server;
use redis_common::*;
use sessile::{Record, RedisStore, SessionStore, StoreError};

async fn info_field(conn: &mut MultiplexedConnection, section: &str, field: &str) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:"))?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
}

/// Holds every write for `ms` (reads go on).
async fn pause_writes(conn: &mut MultiplexedConnection, ms: u64) {
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(ms)
        .arg("WRITE")
        .query_async(conn)
        .await
        .expect("CLIENT PAUSE");
}

async fn unpause(conn: &mut MultiplexedConnection) {
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async(conn)
        .await
        .expect("CLIENT UNPAUSE");
}

/// Waits until the server holds `n` blocked clients (the paused writes in flight).
async fn wait_blocked(conn: &mut MultiplexedConnection, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(conn, "clients", "blocked_clients").await != n {
        assert!(
            Instant::now() < deadline,
            "{n} blocked clients: not within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn connections_opens_that_many_and_uses_each() {
    let Some(server) = own_server("connections_opens_that_many_and_uses_each").await else {
        return;
    };
    let mut raw = raw(&server.url()).await;
    let before = info_field(&mut raw, "clients", "connected_clients").await;
    let store = RedisStore::builder(server.url())
        .connections(4)
        .build()
        .await
        .unwrap();
    assert_eq!(
        info_field(&mut raw, "clients", "connected_clients").await,
        before + 4
    );
    // Four calls each take the next connection: with every write held, all four are in
    // flight at once, one blocked client per connection.
    pause_writes(&mut raw, 30_000).await;
    let mut writes = Vec::new();
    for i in 0..4 {
        let store = store.clone();
        writes.push(tokio::spawn(async move {
            store.set(&format!("c{i}"), &Record::default()).await
        }));
    }
    wait_blocked(&mut raw, 4).await;
    unpause(&mut raw).await;
    for w in writes {
        w.await.unwrap().expect("the write, once unpaused");
    }
    assert_eq!(store.len().await.unwrap(), 4);
}

/// With `max_in_flight(1)`, a read waits behind a held write and times out waiting (its
/// own connection is free: two connections); without the bound the same read succeeds.
#[tokio::test]
async fn max_in_flight_makes_calls_wait_for_a_turn() {
    let Some(server) = own_server("max_in_flight_makes_calls_wait_for_a_turn").await else {
        return;
    };
    let mut raw = raw(&server.url()).await;
    for bound in [None, Some(1)] {
        let mut builder = RedisStore::builder(server.url())
            .prefix(unique_prefix("in-flight"))
            .connections(2)
            .write_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_millis(300));
        if let Some(n) = bound {
            builder = builder.max_in_flight(n);
        }
        let store = builder.build().await.unwrap();
        pause_writes(&mut raw, 30_000).await;
        let held = {
            let store = store.clone();
            tokio::spawn(async move { store.set("held", &Record::default()).await })
        };
        wait_blocked(&mut raw, 1).await;
        let read = store.get("other").await;
        match bound {
            None => assert!(matches!(read, Ok(None)), "{read:?}"),
            Some(_) => assert!(
                matches!(read, Err(StoreError::Timeout(d)) if d == Duration::from_millis(300)),
                "{read:?}"
            ),
        }
        unpause(&mut raw).await;
        held.await.unwrap().expect("the held write, once unpaused");
        wait_blocked(&mut raw, 0).await;
    }
}

/// A held write fails with the write timeout while reads (on another connection) succeed
/// within theirs: each kind of call has its own timeout, and the error names it.
#[tokio::test]
async fn each_kind_of_call_has_its_own_timeout() {
    let Some(server) = own_server("each_kind_of_call_has_its_own_timeout").await else {
        return;
    };
    let mut raw = raw(&server.url()).await;
    let store = RedisStore::builder(server.url())
        .connections(2)
        .read_timeout(Duration::from_secs(20))
        .write_timeout(Duration::from_millis(250))
        .build()
        .await
        .unwrap();
    pause_writes(&mut raw, 30_000).await;
    let err = store
        .set("w", &Record::default())
        .await
        .expect_err("writes are held");
    assert!(
        matches!(err, StoreError::Timeout(d) if d == Duration::from_millis(250)),
        "{err:?}"
    );
    // The next call takes the other connection (the first one's SET is still queued).
    assert!(store.get("w").await.unwrap().is_none(), "reads go on");
    unpause(&mut raw).await;
}
