//! Redis commands per request on a read-only route, counted by the server
//! (`INFO commandstats` after `CONFIG RESETSTAT`), with and without the layer's
//! `touch_after`: express's behaviour costs a `GET` and an `EXPIRE` per request; with
//! `touch_after(60 s)` a request within the minute costs the `GET` only. On a Redis server
//! of the test's own, so no other test's commands are counted (skipped without
//! `redis-server` unless `CI` is set).

#![cfg(feature = "redis")]

mod common;
mod redis_common;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use redis_common::server::own_server;
use serde_json::{Map, Value};
use sessile::{CookieOptions, RedisStore, Session};

const REQUESTS: u64 = 200;

/// The calls of each command since the last `CONFIG RESETSTAT`.
async fn command_calls(conn: &mut redis::aio::MultiplexedConnection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .filter(|(name, _)| name != "info" && !name.starts_with("config"))
        .collect()
}

/// Logs in, then sends `REQUESTS` requests to `/read` (the session's fields, unmodified)
/// and returns the commands Redis ran for them.
async fn read_commands(url: &str, touch_after: Option<Duration>) -> BTreeMap<String, u64> {
    let store = RedisStore::builder(url)
        .prefix(redis_common::unique_prefix("touch-after"))
        .build()
        .await
        .expect("connect");
    let mut layer = common::builder()
        .store(store)
        .cookie(CookieOptions::new().max_age(Duration::from_secs(86_400)));
    if let Some(d) = touch_after {
        layer = layer.touch_after(d);
    }
    async fn read(s: Session) -> Result<Json<Map<String, Value>>, sessile::Error> {
        Ok(Json(s.data()?))
    }
    let app = Router::new()
        .route("/read", get(read))
        .merge(common::routes())
        .layer(layer.build().unwrap());
    let addr = common::serve(app).await;
    let (_, cookie) = common::login(addr).await;
    let mut conn = redis_common::raw(url).await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .unwrap();
    for _ in 0..REQUESTS {
        let r = common::get_with(addr, "/read", Some(&cookie)).await;
        assert_eq!(r.body, r#"{"user":true}"#, "{r:?}");
    }
    command_calls(&mut conn).await
}

#[tokio::test]
async fn touch_after_halves_the_redis_commands_of_a_read() {
    let Some(server) = own_server("touch_after_halves_the_redis_commands_of_a_read").await else {
        return;
    };
    let url = server.url();
    let express = read_commands(&url, None).await;
    let lazy = read_commands(&url, Some(Duration::from_secs(60))).await;
    let per_request =
        |calls: &BTreeMap<String, u64>| calls.values().sum::<u64>() as f64 / REQUESTS as f64;
    eprintln!(
        "Redis commands per /read request ({REQUESTS} requests, one session): \
         {:.2} without touch_after {express:?}, {:.2} with touch_after(60 s) {lazy:?}",
        per_request(&express),
        per_request(&lazy)
    );
    let expected = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };
    assert_eq!(
        express,
        expected(&[("expire", REQUESTS), ("get", REQUESTS)])
    );
    assert_eq!(lazy, expected(&[("get", REQUESTS)]));
}
