//! `RedisStore` against a real Redis server (`REDIS_URL`; skipped without it unless `CI` is
//! set): the shared store suite, connect-redis's key/value/TTL format checked with raw Redis
//! commands, JSON written by Node, parallel changes from two nodes, typed errors, and a
//! Redis server stopped, frozen and restarted under a running layer.

#![cfg(feature = "redis")]

mod common;
mod redis_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use redis_common::server::{free_port, own_server, Server};
use redis_common::*;
use serde_json::{json, Value};
use sessile::{
    clock, Applied, Change, Changes, CookieOptions, CookieRecord, Data, Record, RedisStore,
    Session, SessionLayer, SessionStore, StoreError,
};
use tower::ServiceExt;

async fn store(url: &str, prefix: &str) -> RedisStore {
    RedisStore::builder(url)
        .prefix(prefix)
        .build()
        .await
        .expect("connect to REDIS_URL")
}

fn record(expires: Option<i64>, data: Value) -> Record {
    let Value::Object(map) = data else {
        panic!("data must be an object")
    };
    Record {
        cookie: CookieRecord {
            original_max_age: expires.map(|e| e - clock::now_ms()),
            expires,
            ..CookieRecord::default()
        },
        data: Data::from_map(&map),
    }
}

/// The shared suite of `sessile::store::suite`, every check but two.
///
/// `check_touch` and `check_expiry` expect `touch` to store the whole new cookie to the
/// millisecond. This store's `touch` is connect-redis's `EXPIRE` (whole seconds, value not
/// rewritten), as the format shared with Node requires; `touch_is_expire_and_keeps_the_value`
/// and `expiry_follows_the_cookie_and_touches` below check its behaviour instead.
#[tokio::test]
async fn shared_suite() {
    let Some(url) = redis_url("shared_suite") else {
        return;
    };
    let prefix = unique_prefix("suite");
    let store = store(&url, &prefix).await;
    let failures = suite_failures(&store).await;
    let mut conn = raw(&url).await;
    raw_clear(&mut conn, &prefix).await;
    assert!(
        failures.is_empty(),
        "suite failures:\n{}",
        failures.join("\n")
    );
}

/// Key = prefix + id, value = express's JSON, `SET ... EX ceil(ms / 1000)`, the default
/// TTL for a browser-session cookie, and `DEL` instead of a write for a TTL <= 0: checked
/// with `GET`, `TTL` and `EXISTS`.
#[tokio::test]
async fn set_writes_connect_redis_keys_values_and_ttls() {
    let Some(url) = redis_url("set_writes_connect_redis_keys_values_and_ttls") else {
        return;
    };
    let mut conn = raw(&url).await;

    // The default prefix is connect-redis's.
    let default = RedisStore::connect(url.as_str()).await.expect("connect");
    assert_eq!(default.prefix(), "sess:");
    let sid = format!("sessile-test-{}", sessile::id::generate().unwrap());
    assert_eq!(default.key(&sid), format!("sess:{sid}"));
    let r = record(Some(clock::now_ms() + 10_500), json!({"views": 1}));
    default.set(&sid, &r).await.unwrap();
    assert_eq!(
        raw_get(&mut conn, &format!("sess:{sid}")).await.as_deref(),
        Some(r.to_json().as_str())
    );
    // ceil(10.5 s) = 11 s (10 if a second passed since).
    let ttl = raw_ttl(&mut conn, &format!("sess:{sid}")).await;
    assert!((10..=11).contains(&ttl), "TTL {ttl}, expected 11");
    default.destroy(&sid).await.unwrap();
    assert!(!raw_exists(&mut conn, &format!("sess:{sid}")).await);

    let prefix = unique_prefix("format");
    let store = RedisStore::builder(url.as_str())
        .prefix(prefix.as_str())
        .default_ttl(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let key = |id: &str| format!("{prefix}{id}");

    // A browser-session cookie gets the default TTL.
    let browser = record(None, json!({"a": 1}));
    store.set("browser", &browser).await.unwrap();
    assert_eq!(raw_ttl(&mut conn, &key("browser")).await, 3600);
    assert_eq!(
        raw_get(&mut conn, &key("browser")).await.as_deref(),
        Some(
            r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"a":1}"#
        )
    );
    // connect-redis's default is a day.
    let day = RedisStore::builder(url.as_str())
        .prefix(prefix.as_str())
        .build()
        .await
        .unwrap();
    day.set("day", &browser).await.unwrap();
    assert_eq!(raw_ttl(&mut conn, &key("day")).await, 86_400);

    // Expiring in 1 ms still gets a second; expired gets no key, and replaces a live one by
    // nothing.
    store
        .set("soon", &record(Some(clock::now_ms() + 900), json!({})))
        .await
        .unwrap();
    assert_eq!(raw_ttl(&mut conn, &key("soon")).await, 1);
    store
        .set("past", &record(Some(clock::now_ms() - 1), json!({})))
        .await
        .unwrap();
    assert!(!raw_exists(&mut conn, &key("past")).await);
    store
        .set("browser", &record(Some(clock::now_ms() - 5_000), json!({})))
        .await
        .unwrap();
    assert!(!raw_exists(&mut conn, &key("browser")).await);

    // apply writes the new cookie's TTL.
    store
        .set(
            "applied",
            &record(Some(clock::now_ms() + 100_000), json!({"x": 1})),
        )
        .await
        .unwrap();
    let changes = Changes {
        cookie: record(Some(clock::now_ms() + 29_500), json!({})).cookie,
        fields: vec![Change::Set("y".into(), json!(2))],
    };
    assert_eq!(
        store.apply("applied", &changes).await.unwrap(),
        Applied::Applied
    );
    assert!((29..=30).contains(&raw_ttl(&mut conn, &key("applied")).await));
    let text = raw_get(&mut conn, &key("applied")).await.unwrap();
    assert!(text.ends_with(r#","x":1,"y":2}"#), "{text}");

    raw_clear(&mut conn, &prefix).await;
}

/// `touch` is `EXPIRE key ceil(ms / 1000)`: the TTL moves, the stored text stays byte for
/// byte, a TTL <= 0 deletes, and a missing key is not created.
#[tokio::test]
async fn touch_is_expire_and_keeps_the_value() {
    let Some(url) = redis_url("touch_is_expire_and_keeps_the_value") else {
        return;
    };
    let mut conn = raw(&url).await;
    let prefix = unique_prefix("touch");
    let store = store(&url, &prefix).await;
    let key = format!("{prefix}t");

    let r = record(Some(clock::now_ms() + 60_000), json!({"n": 1}));
    store.set("t", &r).await.unwrap();
    let before = raw_get(&mut conn, &key).await.unwrap();
    assert!((59..=60).contains(&raw_ttl(&mut conn, &key).await));

    let mut later = r.cookie.clone();
    later.expires = Some(clock::now_ms() + 99_100);
    store.touch("t", &later).await.unwrap();
    assert!((99..=100).contains(&raw_ttl(&mut conn, &key).await));
    assert_eq!(raw_get(&mut conn, &key).await.unwrap(), before);

    // Earlier works too (EXPIRE sets, it does not only extend).
    let mut earlier = r.cookie.clone();
    earlier.expires = Some(clock::now_ms() + 20_000);
    store.touch("t", &earlier).await.unwrap();
    assert!((19..=20).contains(&raw_ttl(&mut conn, &key).await));
    assert_eq!(raw_get(&mut conn, &key).await.unwrap(), before);

    // A browser-session cookie: the default TTL.
    store.touch("t", &CookieRecord::default()).await.unwrap();
    assert_eq!(raw_ttl(&mut conn, &key).await, 86_400);

    // Missing stays missing.
    store.touch("never", &later).await.unwrap();
    assert!(!raw_exists(&mut conn, &format!("{prefix}never")).await);

    // Expired: deleted.
    let mut past = r.cookie.clone();
    past.expires = Some(clock::now_ms() - 10);
    store.touch("t", &past).await.unwrap();
    assert!(!raw_exists(&mut conn, &key).await);

    raw_clear(&mut conn, &prefix).await;
}

/// What the suite's `check_expiry` checks, with this store's whole-second TTLs: a record
/// whose `expires` passes is gone from `get`, `all` and `len` at once, even while Redis
/// keeps its key for the rest of the rounded-up second; a touch that shortened the expiry
/// ends the session when the key's TTL runs out; a touch that extended it keeps the session
/// past the `expires` stored in the value (as connect-redis does), reporting the key's
/// expiry.
#[tokio::test]
async fn expiry_follows_the_cookie_and_touches() {
    let Some(url) = redis_url("expiry_follows_the_cookie_and_touches") else {
        return;
    };
    let mut conn = raw(&url).await;
    let prefix = unique_prefix("expiry");
    let store = store(&url, &prefix).await;
    let start = clock::now_ms();
    let fields = json!({"x": 1});

    store
        .set("set-soon", &record(Some(start + 300), fields.clone()))
        .await
        .unwrap();
    store
        .set(
            "touched-soon",
            &record(Some(start + 60_000), fields.clone()),
        )
        .await
        .unwrap();
    store
        .touch("touched-soon", &record(Some(start + 300), json!({})).cookie)
        .await
        .unwrap();
    store
        .set(
            "applied-soon",
            &record(Some(start + 60_000), fields.clone()),
        )
        .await
        .unwrap();
    let changes = Changes {
        cookie: record(Some(start + 300), json!({})).cookie,
        fields: vec![Change::Set("y".into(), json!(2))],
    };
    assert_eq!(
        store.apply("applied-soon", &changes).await.unwrap(),
        Applied::Applied
    );
    // Set to expire in 1.2 s (a 2 s TTL), then touched to 30 s (far beyond what the test
    // waits, however slow the machine).
    let extended = record(Some(start + 1_200), fields.clone());
    store.set("extended", &extended).await.unwrap();
    store
        .touch("extended", &record(Some(start + 30_000), json!({})).cookie)
        .await
        .unwrap();
    let live = record(Some(start + 600_000), fields.clone());
    store.set("live", &live).await.unwrap();
    // Before the 300 ms pass, all five are there (unchecked if the machine was too slow to
    // get here in time).
    let mut found = 0;
    for id in [
        "set-soon",
        "touched-soon",
        "applied-soon",
        "extended",
        "live",
    ] {
        found += usize::from(store.get(id).await.unwrap().is_some());
    }
    let len = store.len().await.unwrap();
    if clock::now_ms() < start + 280 {
        assert_eq!((found, len), (5, 5), "records and len before expiry");
    }

    tokio::time::sleep(Duration::from_millis(
        (start + 450 - clock::now_ms()).max(0) as u64,
    ))
    .await;
    // Keys still exist (whole-second TTLs: a second from their write, at the earliest
    // `start + 1000`; unchecked if the machine was too slow to look before), records are gone.
    let exist = (
        raw_exists(&mut conn, &format!("{prefix}set-soon")).await,
        raw_exists(&mut conn, &format!("{prefix}applied-soon")).await,
    );
    if clock::now_ms() < start + 950 {
        assert_eq!(exist, (true, true), "keys before their TTL ran out");
    }
    assert!(store.get("set-soon").await.unwrap().is_none());
    assert!(store.get("applied-soon").await.unwrap().is_none());
    assert_eq!(
        store
            .apply(
                "set-soon",
                &Changes {
                    cookie: live.cookie.clone(),
                    fields: vec![]
                }
            )
            .await
            .unwrap(),
        Applied::Missing,
        "apply must not revive an expired record"
    );
    let all = store.all().await.unwrap();
    assert!(!all.contains_key("set-soon") && !all.contains_key("applied-soon"));
    assert!(all.contains_key("live") && all.contains_key("extended"));

    // The touch-shortened one lives until its key's TTL (1 s) runs out: Redis deletes the
    // key (waited for, up to 30 s), and the store finds nothing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while raw_exists(&mut conn, &format!("{prefix}touched-soon")).await {
        assert!(
            Instant::now() < deadline,
            "touched-soon outlived its 1 s TTL by 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store.get("touched-soon").await.unwrap().is_none());

    // Past its stored expiry (1.2 s), the touched one lives on with the key's expiry.
    tokio::time::sleep(Duration::from_millis(
        (start + 1_300 - clock::now_ms()).max(0) as u64,
    ))
    .await;
    let got = store
        .get("extended")
        .await
        .unwrap()
        .expect("extended by touch");
    assert_eq!(got.data, extended.data);
    let expires = got.cookie.expires.unwrap();
    assert!(
        (start + 29_000..=start + 31_500).contains(&expires),
        "reported expiry {} ms after start",
        expires - start
    );
    assert_eq!(store.len().await.unwrap(), 2);
    assert_eq!(
        store.all().await.unwrap().keys().collect::<Vec<_>>(),
        ["extended", "live"]
    );

    raw_clear(&mut conn, &prefix).await;
}

/// A session as Node's express-session + connect-redis writes it (ISO `expires`, fields
/// sessile does not know): read, written back unchanged byte for byte, and changed by
/// `apply` with every other field kept in place.
#[tokio::test]
async fn json_written_by_node_round_trips() {
    let Some(url) = redis_url("json_written_by_node_round_trips") else {
        return;
    };
    let mut conn = raw(&url).await;
    let prefix = unique_prefix("node-json");
    let store = store(&url, &prefix).await;
    let key = format!("{prefix}node");
    let expires = clock::now_ms() + 3_600_000;
    let iso = clock::to_iso(expires);
    let node = format!(
        concat!(
            r#"{{"cookie":{{"originalMaxAge":3600000,"expires":"{iso}","secure":false,"httpOnly":true,"path":"/","sameSite":"lax"}},"#,
            r#""views":3,"passport":{{"user":{{"id":7,"name":"Zoë \"Z\""}}}},"flash":{{}},"ratio":0.1,"#,
            r#""big":9007199254740991,"list":[1,"two",null,true,{{"x":[]}}],"__lastAccess":1700000000000}}"#
        ),
        iso = iso
    );
    raw_set(&mut conn, &key, node.as_bytes(), 3600).await;

    let got = store.get("node").await.unwrap().expect("Node's session");
    assert_eq!(got.cookie.expires, Some(expires));
    assert_eq!(got.cookie.original_max_age, Some(3_600_000));
    let data = got.data.to_map().unwrap();
    assert_eq!(
        data["passport"],
        json!({"user": {"id": 7, "name": "Zoë \"Z\""}})
    );
    assert_eq!(data["big"], json!(9_007_199_254_740_991_i64));

    // Written back whole: the same text.
    store.set("node", &got).await.unwrap();
    assert_eq!(raw_get(&mut conn, &key).await.unwrap(), node);

    // Changed: one field, in place; the rest as Node wrote it.
    let changes = Changes {
        cookie: got.cookie.clone(),
        fields: vec![Change::Set("views".into(), json!(4))],
    };
    assert_eq!(
        store.apply("node", &changes).await.unwrap(),
        Applied::Applied
    );
    assert_eq!(
        raw_get(&mut conn, &key).await.unwrap(),
        node.replace(r#""views":3"#, r#""views":4"#)
    );

    // JavaScript's other date forms parse too.
    for (text, ms) in [
        ("2030-01-02T03:04:05Z", 1_893_553_445_000_i64),
        ("2030-01-02T04:04:05.000+01:00", 1_893_553_445_000),
        ("Wed, 02 Jan 2030 03:04:05 GMT", 1_893_553_445_000),
    ] {
        let v = format!(
            r#"{{"cookie":{{"originalMaxAge":null,"expires":"{text}","httpOnly":true,"path":"/"}},"a":1}}"#
        );
        raw_set(&mut conn, &key, v.as_bytes(), 60).await;
        let got = store.get("node").await.unwrap().expect(text);
        assert_eq!(got.cookie.expires, Some(ms), "{text}");
    }

    raw_clear(&mut conn, &prefix).await;
}

/// Two nodes (two stores, two connections) applying changes to different fields of one
/// session at the same time: every change is kept. Then the same through two real layers.
#[tokio::test]
async fn two_nodes_changing_one_session_keep_both_changes() {
    let Some(url) = redis_url("two_nodes_changing_one_session_keep_both_changes") else {
        return;
    };
    let prefix = unique_prefix("two-nodes");
    let a = Arc::new(store(&url, &prefix).await);
    let b = Arc::new(store(&url, &prefix).await);
    let base = record(Some(clock::now_ms() + 600_000), json!({"base": true}));
    a.set("shared", &base).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..40 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        let cookie = base.cookie.clone();
        tasks.push(tokio::spawn(async move {
            let changes = Changes {
                cookie,
                fields: vec![Change::Set(format!("k{i}"), json!(i))],
            };
            node.apply("shared", &changes).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Applied::Applied);
    }
    let data = b
        .get("shared")
        .await
        .unwrap()
        .unwrap()
        .data
        .to_map()
        .unwrap();
    assert_eq!(data.len(), 41, "{data:?}");
    for i in 0..40 {
        assert_eq!(data[&format!("k{i}")], json!(i));
    }

    // Through the layer: a session made on node A, then parallel requests to A and B.
    let app = |store: Arc<RedisStore>| {
        let layer = builder()
            .cookie(CookieOptions::new().max_age(Duration::from_secs(600)))
            .store_arc(store)
            .build()
            .unwrap();
        routes().layer(layer)
    };
    let (node_a, node_b) = (serve(app(a.clone())).await, serve(app(b.clone())).await);
    let first = get_with(node_a, "/put/start/1", None).await;
    assert_eq!(first.status, StatusCode::OK);
    let cookie = first.cookie_pair();
    let mut requests = Vec::new();
    for i in 0..30 {
        let node = if i % 2 == 0 { node_a } else { node_b };
        let cookie = cookie.clone();
        requests.push(tokio::spawn(async move {
            get_with(node, &format!("/put/f{i}/v{i}"), Some(&cookie)).await
        }));
    }
    for r in requests {
        assert_eq!(r.await.unwrap().status, StatusCode::OK);
    }
    let data = json_body(&get_with(node_b, "/data", Some(&cookie)).await);
    for i in 0..30 {
        assert_eq!(data[format!("f{i}")], json!(format!("v{i}")), "{data}");
    }
    assert_eq!(data["start"], json!("1"));

    let mut conn = raw(&url).await;
    raw_clear(&mut conn, &prefix).await;
}

/// `calls` of `cmd` in `INFO commandstats` (0 before its first call).
async fn command_calls(conn: &mut redis::aio::MultiplexedConnection, cmd: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    let line = format!("cmdstat_{cmd}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .map_or(0, |rest| {
            rest.split(',').next().unwrap().parse().expect("calls")
        })
}

/// The compare-and-set's conflict path: three nodes (three stores, each queueing only its
/// own applies) change different fields of one session at once, so one node's write often
/// lands between another's read and its compare-and-set. On a Redis server of the test's own,
/// `INFO commandstats` counts the script's runs: more runs than applies means conflicts were
/// retried, and every change must still be there. Rounds repeat until a conflict is seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_compare_and_set_that_loses_is_retried_and_keeps_every_change() {
    let test = "a_compare_and_set_that_loses_is_retried_and_keeps_every_change";
    let Some(server) = own_server(test).await else {
        return;
    };
    let port = server.port;
    let url = format!("redis://127.0.0.1:{port}/");
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Arc::new(store(&url, "cas:").await));
    }
    let mut conn = raw(&url).await;
    let base = record(Some(clock::now_ms() + 600_000), json!({"base": true}));
    // Each node loads the script once (EVALSHA, EVAL on NOSCRIPT) before counting starts:
    // from then on every attempt is exactly one EVALSHA.
    for (n, node) in nodes.iter().enumerate() {
        let sid = format!("warm{n}");
        node.set(&sid, &base).await.unwrap();
        let changes = Changes {
            cookie: base.cookie.clone(),
            fields: vec![Change::Set("warm".into(), json!(true))],
        };
        assert_eq!(node.apply(&sid, &changes).await.unwrap(), Applied::Applied);
    }
    const PER_NODE: usize = 20;
    let mut retries = 0;
    let mut rounds = 0;
    while retries == 0 && rounds < 50 {
        rounds += 1;
        let sid = format!("shared{rounds}");
        nodes[0].set(&sid, &base).await.unwrap();
        let before = command_calls(&mut conn, "evalsha").await;
        let mut tasks = Vec::new();
        for i in 0..PER_NODE * nodes.len() {
            let node = nodes[i % nodes.len()].clone();
            let cookie = base.cookie.clone();
            let sid = sid.clone();
            tasks.push(tokio::spawn(async move {
                let changes = Changes {
                    cookie,
                    fields: vec![Change::Set(format!("k{i}"), json!(i))],
                };
                node.apply(&sid, &changes).await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), Applied::Applied);
        }
        let attempts = command_calls(&mut conn, "evalsha").await - before;
        let applies = (PER_NODE * nodes.len()) as u64;
        assert!(
            attempts >= applies,
            "round {rounds}: {attempts} script runs for {applies} applies"
        );
        retries += attempts - applies;
        let data = nodes[1]
            .get(&sid)
            .await
            .unwrap()
            .unwrap()
            .data
            .to_map()
            .unwrap();
        for i in 0..PER_NODE * nodes.len() {
            assert_eq!(
                data.get(&format!("k{i}")),
                Some(&json!(i)),
                "round {rounds}: change {i} was lost ({attempts} script runs for {applies} \
                 applies): {data:?}"
            );
        }
        assert_eq!(data.len(), applies as usize + 1, "{data:?}");
    }
    assert!(
        retries > 0,
        "no compare-and-set conflict in {rounds} rounds of {} parallel applies",
        PER_NODE * nodes.len()
    );
    eprintln!("{retries} compare-and-set retries in {rounds} rounds");
    // Each store counts the retries it made: together, every script run past one per apply.
    let counted: u64 = nodes.iter().map(|n| n.stats().cas_retries).sum();
    assert_eq!(counted, retries, "RedisStore::stats().cas_retries");
    server.kill();
}

/// Values that are not sessions are typed errors, never panics: not JSON, not UTF-8, not a
/// string at all, JSON of the wrong shape.
#[tokio::test]
async fn bad_values_are_typed_errors() {
    let Some(url) = redis_url("bad_values_are_typed_errors") else {
        return;
    };
    let mut conn = raw(&url).await;
    let prefix = unique_prefix("bad");
    let store = store(&url, &prefix).await;
    let changes = Changes {
        cookie: CookieRecord::default(),
        fields: vec![Change::Set("a".into(), json!(1))],
    };
    for (name, value) in [
        ("not-json", &b"not json"[..]),
        ("not-utf8", &b"{\"cookie\":{},\"a\":\"\xff\xfe\"}"[..]),
        ("array", &b"[1,2]"[..]),
        ("bad-cookie", &b"{\"cookie\":{\"expires\":\"someday\"}}"[..]),
    ] {
        raw_set(&mut conn, &format!("{prefix}{name}"), value, 60).await;
        let err = store.get(name).await.expect_err(name);
        assert!(matches!(err, StoreError::Corrupt(_)), "{name}: {err:?}");
        let err = store.apply(name, &changes).await.expect_err(name);
        assert!(matches!(err, StoreError::Corrupt(_)), "{name}: {err:?}");
    }
    // `all` and `len` skip them (see `all_and_len_skip_values_that_are_not_sessions`).
    assert!(store.all().await.expect("all").is_empty());
    // A hash where a session should be: Redis's WRONGTYPE, as a backend error.
    let _: i64 = redis::cmd("HSET")
        .arg(format!("{prefix}hash"))
        .arg("f")
        .arg("v")
        .query_async(&mut conn)
        .await
        .unwrap();
    let err = store.get("hash").await.expect_err("a hash");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    // Every failure counted by its kind: 4 values, each read and applied to, and the 3 of
    // them that are UTF-8 skipped by `all` (the one that is not is skipped before parsing).
    let stats = store.stats();
    assert_eq!(
        (
            stats.corrupt,
            stats.other_errors,
            stats.unavailable,
            stats.timeouts
        ),
        (8 + 3, 1, 0, 0),
        "{stats:?}"
    );
    assert_eq!((stats.reads, stats.writes), (5, 4), "{stats:?}");
    assert!(
        stats.walks >= 1 && stats.max_us >= stats.p50_us,
        "{stats:?}"
    );
    raw_clear(&mut conn, &prefix).await;
}

/// No Redis at the address: `build` fails with `Unavailable` (it does not hang: 30 s are
/// allowed); a URL that does not parse is a backend error. Needs no Redis server.
#[tokio::test]
async fn unreachable_redis_is_unavailable() {
    let port = free_port();
    let build = RedisStore::builder(format!("redis://127.0.0.1:{port}/"))
        .timeout(Duration::from_secs(3))
        .build();
    let err = tokio::time::timeout(Duration::from_secs(30), build)
        .await
        .expect("build gives up (no hang)")
        .expect_err("nothing listens there");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = RedisStore::connect("http://not-redis")
        .await
        .expect_err("bad URL");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Fault: a Redis server of the test's own, frozen, killed and restarted.

/// Redis frozen (`SIGSTOP`: slow), then killed, then restarted on the same port, under a
/// real `SessionLayer` with a 500 ms store timeout: while Redis is gone every request gets
/// the layer's error response (500), no request hangs, and the store reports `Timeout`
/// (frozen) or `Unavailable` (down); once Redis is back, requests succeed again without
/// restarting anything.
#[tokio::test]
async fn redis_down_gives_500_within_the_timeout_then_recovers() {
    let test = "redis_down_gives_500_within_the_timeout_then_recovers";
    let Some(server) = own_server(test).await else {
        return;
    };
    let port = server.port;
    let timeout = Duration::from_millis(500);
    let store = Arc::new(
        RedisStore::builder(format!("redis://127.0.0.1:{port}/"))
            .prefix("fault:")
            .timeout(timeout)
            .build()
            .await
            .expect("connect to the test's redis-server"),
    );
    async fn views(session: Session) -> String {
        let n: u64 = session.get("views").unwrap_or(None).unwrap_or(0) + 1;
        session.insert("views", n).expect("insert");
        n.to_string()
    }
    let layer = SessionLayer::builder()
        .secret("fault secret")
        .store_arc(store.clone())
        .build()
        .unwrap();
    let app = Router::new().route("/views", get(views)).layer(layer);
    let call = |cookie: Option<String>| {
        let app = app.clone();
        async move {
            let mut req = Request::get("/views");
            if let Some(c) = cookie {
                req = req.header(http::header::COOKIE, c);
            }
            // Generous: only a store without a timeout (a hang) runs out of it.
            let res = tokio::time::timeout(
                Duration::from_secs(30),
                app.oneshot(req.body(Empty::<Bytes>::new()).unwrap()),
            )
            .await
            .expect("the layer answers (no hang)")
            .expect("infallible");
            let status = res.status();
            let cookie = res
                .headers()
                .get(http::header::SET_COOKIE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or("").to_owned());
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (status, cookie, String::from_utf8_lossy(&body).into_owned())
        }
    };

    let (status, cookie, body) = call(None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
    let cookie = cookie.expect("session cookie");
    let (status, _, body) = call(Some(cookie.clone())).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "2"));

    // Frozen: Redis accepts nothing and answers nothing.
    server.signal("-STOP");
    for _ in 0..3 {
        let (status, _, _) = call(Some(cookie.clone())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    let err = tokio::time::timeout(Duration::from_secs(30), store.get("x"))
        .await
        .expect("the store's timeout ends the call")
        .expect_err("frozen");
    assert!(matches!(err, StoreError::Timeout(_)), "{err:?}");
    server.signal("-CONT");
    let deadline = Instant::now() + Duration::from_secs(10);
    let views = loop {
        let (status, _, body) = call(Some(cookie.clone())).await;
        if status == StatusCode::OK {
            break body;
        }
        assert!(Instant::now() < deadline, "no recovery after SIGCONT");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(views, "3", "the session survived the freeze");

    // Down: connection refused.
    server.kill();
    for with_cookie in [true, false, true] {
        let (status, set_cookie, _) = call(with_cookie.then(|| cookie.clone())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(set_cookie.is_none(), "no cookie with an error response");
    }
    let err = store.get("x").await.expect_err("down");
    assert!(
        matches!(err, StoreError::Unavailable(_) | StoreError::Timeout(_)),
        "{err:?}"
    );

    // Back (empty: no persistence), on the same port: service resumes by itself.
    let server = Server::start(port).expect("restart redis-server");
    server.wait_ready().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let (body, new_cookie) = loop {
        let (status, set_cookie, body) = call(Some(cookie.clone())).await;
        if status == StatusCode::OK {
            break (body, set_cookie);
        }
        assert!(Instant::now() < deadline, "no recovery after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body, "1", "a new session (the restarted Redis is empty)");
    let new_cookie = new_cookie.expect("a new session cookie");
    for expected in ["2", "3"] {
        let (status, _, body) = call(Some(new_cookie.clone())).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, expected));
    }
    drop(server);
}

/// `all` and `len` skip what cannot be read as a session, and only that, instead of failing
/// for every caller: values that are not JSON, not UTF-8, not an object, or whose cookie
/// does not read. A record written by Node with fields sessile cannot decode (a lone
/// surrogate, nesting 200 deep) is a session and is returned and counted. `clear` removes
/// them all.
#[tokio::test]
async fn all_and_len_skip_values_that_are_not_sessions() {
    let Some(url) = redis_url("all_and_len_skip_values_that_are_not_sessions") else {
        return;
    };
    let mut conn = raw(&url).await;
    let prefix = unique_prefix("skip");
    let store = store(&url, &prefix).await;
    let good = record(Some(now_ms() + 60_000), json!({"n": 1}));
    store.set("good", &good).await.unwrap();
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let node = format!(
        r#"{{"cookie":{{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}},"half":"\ud83d","deep":{deep},"n":2}}"#
    );
    raw_set(&mut conn, &format!("{prefix}node"), node.as_bytes(), 60).await;
    for (name, value) in [
        ("not-json", &b"not json"[..]),
        ("not-utf8", &b"{\"cookie\":{},\"a\":\"\xff\xfe\"}"[..]),
        ("array", &b"[1,2]"[..]),
        ("bad-cookie", &b"{\"cookie\":{\"expires\":\"someday\"}}"[..]),
    ] {
        raw_set(&mut conn, &format!("{prefix}{name}"), value, 60).await;
    }
    let all = store.all().await.expect("all skips what it cannot read");
    assert_eq!(
        all.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["good", "node"]
    );
    assert_eq!(
        all["node"].to_json(),
        node,
        "the Node record, byte for byte"
    );
    assert_eq!(store.len().await.expect("len skips too"), 2);
    store.clear().await.expect("clear");
    assert_eq!(store.len().await.unwrap(), 0);
    assert!(!raw_exists(&mut conn, &format!("{prefix}not-json")).await);
    raw_clear(&mut conn, &prefix).await;
}
