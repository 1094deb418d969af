//! Interop with the real Node packages: the Express app of `tests/interop/` (express,
//! express-session, connect-redis and redis from the npm registry, versions pinned by its
//! `package-lock.json`) and a sessile server, on one Redis, one prefix, one secret and one
//! cookie name. A browser is played by a client carrying the cookie from one to the other.
//!
//! Needs `REDIS_URL`, `node` and `tests/interop/node_modules` (`npm ci --prefix
//! tests/interop`); without them it prints that it was skipped, unless `CI` is set, where
//! it fails (`.ci/run` provides all three).

#![cfg(feature = "redis")]

mod common;
mod redis_common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use common::*;
use redis_common::*;
use serde_json::{json, Map, Value};
use sessile::{
    CookieOptions, MaxLifetime, SameSiteOption, Session, SessionLayer, SessionLayerBuilder,
    SessionStore,
};

const SHARED_SECRET: &str = "shared by node and rust";

/// The Express app, killed on drop.
struct NodeApp {
    child: Child,
    addr: SocketAddr,
}

impl Drop for NodeApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Starts `node tests/interop/app.js` on a free port and waits for its "listening on" line.
fn start_node(redis: &Deployment, prefix: &str) -> NodeApp {
    let (var, value) = redis.node_env();
    let mut child = Command::new("node")
        .arg("app.js")
        .current_dir(interop_dir())
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env_remove("REDIS_URL")
        .env_remove("REDIS_CLUSTER_URLS")
        .env(var, value)
        .env("SECRET", SHARED_SECRET)
        .env("PREFIX", prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node tests/interop/app.js");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(rest) = line.strip_prefix("listening on http://") {
                let _ = tx.send(rest.trim().to_owned());
            }
        }
    });
    let addr = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => addr,
        Err(_) => {
            let _ = child.kill();
            panic!("the Express app did not print `listening on` within 30 s");
        }
    };
    NodeApp {
        child,
        addr: addr.parse().expect("host:port"),
    }
}

/// The sessile server: the same options as the Express app (cookie name `connect.sid`,
/// a day's `maxAge`, `sameSite: 'lax'`, `resave: false`, `saveUninitialized: false`) and the
/// same routes.
async fn start_rust(redis: &Deployment, prefix: &str) -> SocketAddr {
    start_rust_with(redis, prefix, |b| b).await
}

/// [`start_rust`] with more layer options.
async fn start_rust_with(
    redis: &Deployment,
    prefix: &str,
    options: impl FnOnce(SessionLayerBuilder) -> SessionLayerBuilder,
) -> SocketAddr {
    let store = redis
        .builder()
        .prefix(prefix)
        .build()
        .await
        .expect("connect to REDIS_URL");
    let layer = options(
        SessionLayer::builder()
            .secret(SHARED_SECRET)
            .cookie(
                CookieOptions::new()
                    .max_age(Duration::from_secs(24 * 3600))
                    .same_site(SameSiteOption::Lax),
            )
            .store(store),
    )
    .build()
    .expect("layer");

    async fn views(s: Session) -> Result<Json<Value>, sessile::Error> {
        let n = s.get::<i64>("views")?.unwrap_or(0) + 1;
        s.insert("views", n)?;
        Ok(Json(json!(n)))
    }
    async fn set(
        s: Session,
        Path((k, v)): Path<(String, String)>,
    ) -> Result<Json<Value>, sessile::Error> {
        s.insert(&k, v)?;
        Ok(Json(json!("ok")))
    }
    async fn read(s: Session) -> Result<Json<Map<String, Value>>, sessile::Error> {
        Ok(Json(s.data()?))
    }
    async fn id(s: Session) -> Json<Value> {
        Json(json!(s.id()))
    }
    async fn logout(s: Session) -> Result<Json<Value>, sessile::Error> {
        s.destroy().await?;
        Ok(Json(json!("ok")))
    }
    async fn own(s: Session, Path(user): Path<String>) -> Result<Json<Value>, sessile::Error> {
        s.set_owner(user)?;
        Ok(Json(json!("ok")))
    }
    let app = Router::new()
        .route("/own/{user}", get(own))
        .route("/views", get(views))
        .route("/set/{k}/{v}", get(set))
        .route("/read", get(read))
        .route("/id", get(id))
        .route("/logout", get(logout))
        .layer(layer);
    serve(app).await
}

/// Whether everything the test needs is there; prints why not (or fails under CI).
fn prerequisites(test: &str, redis: Option<Deployment>) -> Option<Deployment> {
    let redis = redis?;
    let node_ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let modules = interop_dir().join("node_modules/connect-redis/package.json");
    let missing = if !node_ok {
        Some("node is not installed".to_owned())
    } else if !modules.exists() {
        Some("tests/interop/node_modules is missing (run `npm ci --prefix tests/interop`)".into())
    } else {
        None
    };
    if let Some(why) = missing {
        assert!(
            !in_ci(),
            "{test}: {why}, and CI is set (.ci/run provides it)"
        );
        skip(test, &why);
        return None;
    }
    Some(redis)
}

/// The attributes of a `Set-Cookie` header, with the date of `Expires` left out.
fn attributes(header: &str) -> Vec<String> {
    SetCookie::parse(header)
        .attrs
        .into_iter()
        .map(|a| {
            if a.to_ascii_lowercase().starts_with("expires=") {
                "Expires".to_owned()
            } else {
                a
            }
        })
        .collect()
}

#[tokio::test]
async fn express_and_sessile_share_sessions_through_connect_redis() {
    let test = "express_and_sessile_share_sessions_through_connect_redis";
    let redis = redis_url(test).map(Deployment::Single);
    if let Some(redis) = prerequisites(test, redis) {
        share_sessions(&redis).await;
    }
}

/// The same through a Redis Cluster: the Express app on node-redis's cluster client
/// (`createCluster`), sessile on `RedisStore::cluster`.
#[cfg(feature = "redis-cluster")]
#[tokio::test]
async fn express_and_sessile_share_sessions_through_a_cluster() {
    let test = "express_and_sessile_share_sessions_through_a_cluster";
    let redis = redis_cluster_urls(test).map(Deployment::Cluster);
    if let Some(redis) = prerequisites(test, redis) {
        share_sessions(&redis).await;
    }
}

async fn share_sessions(redis: &Deployment) {
    let prefix = unique_prefix("interop");
    let node = start_node(redis, &prefix);
    let rust = start_rust(redis, &prefix).await;
    let node = node.addr;
    let mut conn = redis.raw().await;

    // 1. A session created by Node is read and changed by Rust, and Node sees the change.
    let created = get_with(node, "/set/user/alice", None).await;
    assert_eq!(created.status, 200, "{created:?}");
    let node_cookie = created.cookie_pair();
    let node_sid = created.sid_signed_by(SHARED_SECRET);
    assert_eq!(
        get_with(node, "/node-extras", Some(&node_cookie))
            .await
            .status,
        200
    );
    let key = format!("{prefix}{node_sid}");
    let written_by_node = raw_get(&mut conn, &key)
        .await
        .expect("connect-redis wrote the key");
    let node_ttl = raw_ttl(&mut conn, &key).await;
    assert!(
        (86_398..=86_400).contains(&node_ttl),
        "Node's TTL {node_ttl}"
    );

    let read = get_with(rust, "/read", Some(&node_cookie)).await;
    assert_eq!(read.status, 200);
    let node_only = json!({
        "list": [1, 2.5, "three", null, true, {"deep": []}],
        "nested": {"a": {"b": {"c": "d"}}},
        "big": 9_007_199_254_740_991_i64,
        "small": 1e-7,
        "text": "é \"quoted\" \\ ✓",
    });
    assert_eq!(
        json_body(&read),
        json!({"user": "alice", "nodeOnly": node_only})
    );
    assert_eq!(
        json_body(&get_with(rust, "/id", Some(&node_cookie)).await),
        json!(node_sid)
    );

    let changed = get_with(rust, "/views", Some(&node_cookie)).await;
    assert_eq!(
        (changed.status, json_body(&changed)),
        (http::StatusCode::OK, json!(1))
    );
    // A modified session with an expiry gets its cookie again (express: `rolling` or
    // `cookie.expires` set and modified), for the same session, signed the same way.
    assert_eq!(changed.sid_signed_by(SHARED_SECRET), node_sid);
    // What Rust wrote is what Node wrote plus the new field: Node's fields untouched, in
    // their order, byte for byte.
    let written_by_rust = raw_get(&mut conn, &key).await.expect("still there");
    let node_fields =
        &written_by_node[written_by_node.find(r#","user":"#).unwrap()..written_by_node.len() - 1];
    assert!(
        written_by_rust.contains(node_fields) && written_by_rust.ends_with(r#","views":1}"#),
        "Node wrote {written_by_node}\nRust wrote {written_by_rust}"
    );
    let rust_ttl = raw_ttl(&mut conn, &key).await;
    assert!(
        (86_398..=86_400).contains(&rust_ttl),
        "Rust's TTL {rust_ttl}"
    );

    let seen = get_with(node, "/read", Some(&node_cookie)).await;
    assert_eq!(
        json_body(&seen),
        json!({"user": "alice", "nodeOnly": node_only, "views": 1}),
        "Node sees Rust's change"
    );
    assert_eq!(
        json_body(&get_with(node, "/views", Some(&node_cookie)).await),
        json!(2)
    );
    assert_eq!(
        json_body(&get_with(rust, "/views", Some(&node_cookie)).await),
        json!(3)
    );

    // 2. The reverse: created by Rust, read and changed by Node, the change seen by Rust.
    let created = get_with(rust, "/set/user/bob", None).await;
    assert_eq!(created.status, 200);
    let rust_cookie = created.cookie_pair();
    let rust_sid = created.sid_signed_by(SHARED_SECRET);
    assert!(raw_exists(&mut conn, &format!("{prefix}{rust_sid}")).await);
    assert_eq!(
        json_body(&get_with(node, "/read", Some(&rust_cookie)).await),
        json!({"user": "bob"})
    );
    assert_eq!(
        json_body(&get_with(node, "/id", Some(&rust_cookie)).await),
        json!(rust_sid)
    );
    let node_cookie_info = json_body(&get_with(node, "/cookie", Some(&rust_cookie)).await);
    assert_eq!(node_cookie_info["originalMaxAge"], json!(86_400_000));
    assert_eq!(node_cookie_info["sameSite"], json!("lax"));
    assert_eq!(
        json_body(&get_with(node, "/views", Some(&rust_cookie)).await),
        json!(1)
    );
    assert_eq!(
        get_with(node, "/set/color/green", Some(&rust_cookie))
            .await
            .status,
        200
    );
    assert_eq!(
        json_body(&get_with(rust, "/read", Some(&rust_cookie)).await),
        json!({"user": "bob", "views": 1, "color": "green"}),
        "Rust sees Node's changes"
    );
    assert_eq!(
        json_body(&get_with(rust, "/views", Some(&rust_cookie)).await),
        json!(2)
    );
    assert_eq!(
        json_body(&get_with(node, "/views", Some(&rust_cookie)).await),
        json!(3)
    );

    // 3. Cookies: both sides sign the same way and send the same attributes.
    let node_header = created_header(node, "/set/probe/node").await;
    let rust_header = created_header(rust, "/set/probe/rust").await;
    assert_eq!(
        attributes(&node_header),
        attributes(&rust_header),
        "Node: {node_header}\nRust: {rust_header}"
    );
    assert_eq!(rust_cookie, cookie_for(&rust_sid, SHARED_SECRET));
    assert_eq!(
        node_cookie,
        cookie_for(&node_sid, SHARED_SECRET),
        "Node's cookie is exactly what sessile would send for that id"
    );

    // 4. A logout on one side ends the session on the other.
    assert_eq!(
        get_with(node, "/logout", Some(&rust_cookie)).await.status,
        200
    );
    assert!(!raw_exists(&mut conn, &format!("{prefix}{rust_sid}")).await);
    let after = get_with(rust, "/read", Some(&rust_cookie)).await;
    assert_eq!(
        json_body(&after),
        json!({}),
        "Rust no longer knows the session Node ended"
    );
    assert_eq!(
        get_with(rust, "/logout", Some(&node_cookie)).await.status,
        200
    );
    assert!(!raw_exists(&mut conn, &key).await);
    let after = get_with(node, "/read", Some(&node_cookie)).await;
    assert_eq!(
        json_body(&after),
        json!({}),
        "Node no longer knows the session Rust ended"
    );
    // ... and a new visit with the old cookie starts a new session under a new id.
    let fresh = get_with(node, "/views", Some(&node_cookie)).await;
    assert_eq!(json_body(&fresh), json!(1));
    let fresh_sid = fresh.sid_signed_by(SHARED_SECRET);
    assert_ne!(fresh_sid, node_sid);

    redis.clear(&prefix).await;
}

/// The whole `Set-Cookie` header of a new session made by `path`.
async fn created_header(addr: SocketAddr, path: &str) -> String {
    get_with(addr, path, None)
        .await
        .session_cookie()
        .unwrap_or_else(|| panic!("{path} on {addr} sets no cookie"))
        .to_owned()
}

/// A session Node wrote with what serde_json cannot decode (half a surrogate pair, which
/// `JSON.stringify` writes as `"\ud83d"`, and arrays nested 200 deep) is served by sessile:
/// its other fields read and change, the odd fields reach Node again unchanged, and logging
/// out works.
#[tokio::test]
async fn a_session_node_wrote_with_undecodable_fields_is_served_and_kept() {
    let test = "a_session_node_wrote_with_undecodable_fields_is_served_and_kept";
    let Some(redis) = prerequisites(test, redis_url(test).map(Deployment::Single)) else {
        return;
    };
    let prefix = unique_prefix("interop-odd");
    let node = start_node(&redis, &prefix);
    let rust = start_rust(&redis, &prefix).await;
    let node = node.addr;
    let mut conn = redis.raw().await;

    let created = get_with(node, "/views", None).await;
    assert_eq!(created.status, 200, "{created:?}");
    let cookie = created.cookie_pair();
    let sid = created.sid_signed_by(SHARED_SECRET);
    assert_eq!(get_with(node, "/node-odd", Some(&cookie)).await.status, 200);
    let stored = raw_get(&mut conn, &format!("{prefix}{sid}")).await.unwrap();
    assert!(stored.contains(r#""half":"\ud83d""#), "{stored:.200}");

    let r = get_with(rust, "/views", Some(&cookie)).await;
    assert_eq!((r.status.as_u16(), json_body(&r)), (200, json!(2)), "{r:?}");
    let r = get_with(rust, "/set/user/bob", Some(&cookie)).await;
    assert_eq!(r.status, 200, "{r:?}");

    let r = get_with(node, "/odd-intact", Some(&cookie)).await;
    assert_eq!(json_body(&r), json!({"half": true, "deep": 200}));
    let r = get_with(node, "/views", Some(&cookie)).await;
    assert_eq!(json_body(&r), json!(3), "Node sees Rust's change of views");

    assert_eq!(get_with(rust, "/logout", Some(&cookie)).await.status, 200);
    assert!(!raw_exists(&mut conn, &format!("{prefix}{sid}")).await);
    redis.clear(&prefix).await;
}

/// `max_lifetime`'s creation time (the reserved field `__sessile_created`) survives a Node
/// write of the session: express-session writes back every field of `req.session`, so Node
/// keeps it (and sees it as an ordinary field: its `/read` lists it). A session Node
/// created gets it at sessile's next save of it.
#[tokio::test]
async fn a_node_write_keeps_the_creation_time_of_max_lifetime() {
    let test = "a_node_write_keeps_the_creation_time_of_max_lifetime";
    let Some(redis) = prerequisites(test, redis_url(test).map(Deployment::Single)) else {
        return;
    };
    let prefix = unique_prefix("interop-lifetime");
    let node = start_node(&redis, &prefix);
    let rust = start_rust_with(&redis, &prefix, |b| {
        b.max_lifetime(MaxLifetime::since_created(Duration::from_secs(8 * 3600)))
    })
    .await;
    let node = node.addr;
    let mut conn = redis.raw().await;
    let created_of = |stored: &str| -> Option<i64> {
        let v: Value = serde_json::from_str(stored).expect("JSON");
        v["__sessile_created"].as_i64()
    };

    // Created by sessile: stamped; Node's write keeps the stamp, unchanged.
    let r = get_with(rust, "/set/user/alice", None).await;
    let cookie = r.cookie_pair();
    let key = format!("{prefix}{}", r.sid_signed_by(SHARED_SECRET));
    let at = created_of(&raw_get(&mut conn, &key).await.unwrap()).expect("stamped");
    assert_eq!(get_with(node, "/set/k/v", Some(&cookie)).await.status, 200);
    let stored = raw_get(&mut conn, &key).await.unwrap();
    assert_eq!(created_of(&stored), Some(at), "{stored}");
    assert!(stored.contains(r#""k":"v""#), "{stored}");
    let seen_by_node = json_body(&get_with(node, "/read", Some(&cookie)).await);
    assert_eq!(seen_by_node["__sessile_created"], json!(at));
    // sessile hides it from its handlers.
    let seen_by_rust = json_body(&get_with(rust, "/read", Some(&cookie)).await);
    assert_eq!(seen_by_rust, json!({"user": "alice", "k": "v"}));

    // Created by Node: no stamp until sessile saves it.
    let r = get_with(node, "/views", None).await;
    let cookie = r.cookie_pair();
    let key = format!("{prefix}{}", r.sid_signed_by(SHARED_SECRET));
    assert_eq!(created_of(&raw_get(&mut conn, &key).await.unwrap()), None);
    assert_eq!(get_with(rust, "/read", Some(&cookie)).await.status, 200);
    assert_eq!(created_of(&raw_get(&mut conn, &key).await.unwrap()), None);
    assert_eq!(get_with(rust, "/views", Some(&cookie)).await.status, 200);
    assert!(created_of(&raw_get(&mut conn, &key).await.unwrap()).is_some());
    assert_eq!(
        json_body(&get_with(node, "/views", Some(&cookie)).await),
        json!(3)
    );
    assert!(created_of(&raw_get(&mut conn, &key).await.unwrap()).is_some());
    redis.clear(&prefix).await;
}

/// Sign out everywhere beside a Node app: a Node write of an owned session keeps its owner
/// (the reserved `__sessile_owner` fields are written back as they were), so the owner's
/// listing still has it; a Node logout leaves a stale member in the owner's set, which the
/// next listing removes; sessile's sign-out of every session of the owner ends a session
/// Node is serving.
#[tokio::test]
async fn a_node_write_keeps_the_owner_and_a_node_logout_leaves_the_listing() {
    let test = "a_node_write_keeps_the_owner_and_a_node_logout_leaves_the_listing";
    let Some(redis) = prerequisites(test, redis_url(test).map(Deployment::Single)) else {
        return;
    };
    let prefix = unique_prefix("interop-owner");
    let node = start_node(&redis, &prefix);
    let rust = start_rust(&redis, &prefix).await;
    let node = node.addr;
    let store = redis
        .builder()
        .prefix(&prefix)
        .build()
        .await
        .expect("store");
    let ids_of = |sessions: Vec<sessile::store::OwnedSession>| -> Vec<String> {
        let mut ids: Vec<String> = sessions.into_iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids
    };

    let mut devices = Vec::new();
    for _ in 0..2 {
        let r = get_with(rust, "/own/alice", None).await;
        assert_eq!(r.status, 200, "{r:?}");
        devices.push((r.sid_signed_by(SHARED_SECRET), r.cookie_pair()));
    }
    let mut both: Vec<String> = devices.iter().map(|(id, _)| id.clone()).collect();
    both.sort_unstable();
    assert_eq!(ids_of(store.sessions_of("alice").await.unwrap()), both);

    // Node writes the first session: its owner is kept.
    let (first, first_cookie) = &devices[0];
    assert_eq!(
        get_with(node, "/set/k/v", Some(first_cookie)).await.status,
        200
    );
    let listed = store.sessions_of("alice").await.unwrap();
    assert_eq!(ids_of(listed.clone()), both);
    let written = listed.iter().find(|s| &s.id == first).unwrap();
    assert_eq!(written.owner().as_deref(), Some("alice"));
    assert!(written.record.data.as_str().contains(r#""k":"v""#));

    // Node logs the first out: the listing drops it.
    assert_eq!(
        get_with(node, "/logout", Some(first_cookie)).await.status,
        200
    );
    assert_eq!(
        ids_of(store.sessions_of("alice").await.unwrap()),
        vec![devices[1].0.clone()]
    );

    // sessile signs alice out everywhere: Node no longer finds the second session.
    assert_eq!(store.destroy_all_of("alice", None).await.unwrap(), 1);
    let seen_by_node = json_body(&get_with(node, "/read", Some(&devices[1].1)).await);
    assert_eq!(
        seen_by_node,
        json!({}),
        "Node still serves a signed-out session"
    );
    redis.clear(&prefix).await;
}
