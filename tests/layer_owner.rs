//! Sign out everywhere, through the layer over real HTTP: a user logs in on three
//! "devices" (`Session::set_owner` at login), lists them, signs the others out, and
//! `max_sessions_per_owner` evicts the oldest logins; against the embedded store (memory,
//! and durable across a restart) and Redis (`REDIS_URL`, skipped with a message when unset).
//!
//! Logins are told apart by the crate's test clock (`advance_for_tests` between them), so
//! "oldest" is deterministic; the clock is process-wide, so this binary's tests take
//! [`CLOCK`] in turn.

mod common;
#[cfg(feature = "redis")]
mod redis_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use common::get_with;
use sessile::clock::advance_for_tests;
use sessile::{EmbeddedStore, Session, SessionLayerBuilder, SessionStore};

/// Held by every test of this binary: the clock moves for the whole process.
static CLOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Login: a new id (no fixation), the owner, a field. Answers the new id.
async fn login(session: Session, Path(user): Path<String>) -> Result<String, sessile::Error> {
    session.cycle_id().await?;
    session.set_owner(&user)?;
    session.insert("user", &user)?;
    Ok(session.id().unwrap_or_default())
}

/// The devices of the session's owner: their ids, oldest login first.
async fn devices(session: Session) -> Result<Json<Vec<String>>, sessile::Error> {
    let sessions = session.owner_sessions().await?;
    Ok(Json(sessions.into_iter().map(|s| s.id).collect()))
}

/// "Log out of all other devices": the two lines of a handler.
async fn sign_out_others(session: Session) -> Result<String, sessile::Error> {
    let n = session.sign_out_others().await?;
    Ok(format!("signed out of {n} other devices"))
}

async fn whoami(session: Session) -> String {
    session.owner().unwrap_or_else(|| "anonymous".into())
}

async fn logout(session: Session) -> Result<&'static str, sessile::Error> {
    session.destroy().await?;
    Ok("bye")
}

fn app(layer: SessionLayerBuilder) -> Router {
    Router::new()
        .route("/login/{user}", get(login))
        .route("/devices", get(devices))
        .route("/sign-out-others", get(sign_out_others))
        .route("/whoami", get(whoami))
        .route("/logout", get(logout))
        .layer(layer.build().expect("valid options"))
}

/// A server that can be stopped, dropping its layer (and so its store handle).
struct Server {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

async fn serve(app: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Server { addr, stop, done }
}

impl Server {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.done)
            .await
            .expect("the server stops within 30 s")
            .unwrap();
    }
}

/// A device: its session id and `Cookie` header, after logging in as `user`.
async fn log_in(addr: SocketAddr, user: &str) -> (String, String) {
    // Each login a millisecond later than the last: the order of logins is known.
    advance_for_tests(5);
    let r = get_with(addr, &format!("/login/{user}"), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let id = r.sid();
    assert_eq!(r.body, id);
    (id, r.cookie_pair())
}

async fn devices_of(addr: SocketAddr, cookie: &str) -> Vec<String> {
    let r = get_with(addr, "/devices", Some(cookie)).await;
    assert_eq!(r.status, 200, "{r:?}");
    serde_json::from_str(&r.body).unwrap()
}

async fn who(addr: SocketAddr, cookie: &str) -> String {
    get_with(addr, "/whoami", Some(cookie)).await.body
}

/// Three devices of alice and one of bob: listed, the others signed out, logged out.
async fn sign_out_everywhere(store: Arc<dyn SessionStore>) {
    let server = serve(app(common::builder().store_arc(store.clone()))).await;
    let addr = server.addr;
    let (phone, phone_c) = log_in(addr, "alice").await;
    let (laptop, laptop_c) = log_in(addr, "alice").await;
    let (tablet, tablet_c) = log_in(addr, "alice").await;
    let (bob, bob_c) = log_in(addr, "bob").await;
    assert_eq!(
        devices_of(addr, &laptop_c).await,
        [phone.as_str(), laptop.as_str(), tablet.as_str()]
    );
    assert_eq!(devices_of(addr, &bob_c).await, [bob.as_str()]);
    let ids: Vec<String> = store
        .sessions_of("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, [phone.as_str(), laptop.as_str(), tablet.as_str()]);

    let r = get_with(addr, "/sign-out-others", Some(&laptop_c)).await;
    assert_eq!(r.body, "signed out of 2 other devices");
    assert_eq!(who(addr, &phone_c).await, "anonymous");
    assert_eq!(who(addr, &tablet_c).await, "anonymous");
    assert_eq!(who(addr, &laptop_c).await, "alice");
    assert_eq!(who(addr, &bob_c).await, "bob");
    assert_eq!(devices_of(addr, &laptop_c).await, [laptop.as_str()]);
    assert!(store.get(&phone).await.unwrap().is_none());

    // Logging out leaves the owner nothing.
    assert_eq!(get_with(addr, "/logout", Some(&laptop_c)).await.body, "bye");
    assert!(store.sessions_of("alice").await.unwrap().is_empty());
    store.destroy_all_of("bob", None).await.unwrap();
    server.stop().await;
}

/// `max_sessions_per_owner(2)`: a third login signs the oldest out, a fourth the next.
async fn max_sessions(store: Arc<dyn SessionStore>) {
    let layer = common::builder()
        .store_arc(store.clone())
        .max_sessions_per_owner(2);
    let server = serve(app(layer)).await;
    let addr = server.addr;
    let (first, first_c) = log_in(addr, "carol").await;
    let (second, second_c) = log_in(addr, "carol").await;
    assert_eq!(
        devices_of(addr, &second_c).await,
        [first.as_str(), second.as_str()]
    );
    let (third, third_c) = log_in(addr, "carol").await;
    assert_eq!(
        devices_of(addr, &third_c).await,
        [second.as_str(), third.as_str()]
    );
    assert_eq!(who(addr, &first_c).await, "anonymous");
    let (fourth, fourth_c) = log_in(addr, "carol").await;
    assert_eq!(
        devices_of(addr, &fourth_c).await,
        [third.as_str(), fourth.as_str()]
    );
    assert_eq!(who(addr, &second_c).await, "anonymous");
    assert_eq!(who(addr, &third_c).await, "carol");
    // Requests that do not log in evict nothing.
    assert_eq!(who(addr, &third_c).await, "carol");
    assert_eq!(
        devices_of(addr, &fourth_c).await,
        [third.as_str(), fourth.as_str()]
    );
    store.destroy_all_of("carol", None).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn memory_store() {
    let _clock = CLOCK.lock().await;
    sign_out_everywhere(Arc::new(EmbeddedStore::new())).await;
    max_sessions(Arc::new(EmbeddedStore::new())).await;
}

fn temp_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sessile-layer-owner-{what}-{}",
        sessile::id::generate().unwrap()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Opens the durable store in `dir`, waiting (30 s at most) for a previous handle's
/// background threads to let go of the directory lock.
async fn reopen(dir: &std::path::Path) -> EmbeddedStore {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match EmbeddedStore::open(dir) {
            Ok(store) => return store,
            Err(sessile::StoreError::Open(sessile::OpenError::Locked { .. }))
                if std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("reopen {}: {e}", dir.display()),
        }
    }
}

#[tokio::test]
async fn durable_store_and_across_a_restart() {
    let _clock = CLOCK.lock().await;
    let dir = temp_dir("durable");
    sign_out_everywhere(Arc::new(reopen(&dir).await)).await;
    max_sessions(Arc::new(reopen(&dir).await)).await;

    // Three devices, then a restart: the owner index is rebuilt from the log.
    let store = reopen(&dir).await;
    let server = serve(app(common::builder().store(store))).await;
    let mut devices = Vec::new();
    for _ in 0..3 {
        devices.push(log_in(server.addr, "dave").await);
    }
    server.stop().await;
    let store = reopen(&dir).await;
    let ids: Vec<String> = devices.iter().map(|(id, _)| id.clone()).collect();
    let listed: Vec<String> = store
        .sessions_of_now("dave")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, ids, "after a restart from the log");
    // And from a snapshot.
    store.snapshot().unwrap();
    drop(store);
    let store = reopen(&dir).await;
    assert_eq!(store.recovery_report().unwrap().replayed, 0);
    let server = serve(app(common::builder().store(store))).await;
    let (phone_c, laptop_c) = (&devices[0].1, &devices[1].1);
    assert_eq!(devices_of(server.addr, laptop_c).await, ids);
    let r = get_with(server.addr, "/sign-out-others", Some(laptop_c)).await;
    assert_eq!(r.body, "signed out of 2 other devices");
    assert_eq!(who(server.addr, phone_c).await, "anonymous");
    server.stop().await;
    // The sign-out is durable too.
    let store = reopen(&dir).await;
    let listed: Vec<String> = store
        .sessions_of_now("dave")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, [ids[1].clone()]);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store() {
    let _clock = CLOCK.lock().await;
    let Some(url) = redis_common::redis_url("layer_owner redis_store") else {
        return;
    };
    let prefix = redis_common::unique_prefix("owner");
    let store = sessile::RedisStore::builder(&url)
        .prefix(&prefix)
        .build()
        .await
        .expect("connect");
    sign_out_everywhere(Arc::new(store.clone())).await;
    max_sessions(Arc::new(store.clone())).await;

    // The owner's set beside the sessions: its TTL covers the session's, and all/len do
    // not take it for a session.
    let server = serve(app(common::builder().store(store.clone()))).await;
    let (id, cookie) = log_in(server.addr, "erin").await;
    let mut conn = redis_common::raw(&url).await;
    let set = format!("{prefix}owner:erin");
    assert_eq!(store.owner_key("erin"), set);
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(&set)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, [id.as_str()]);
    let ttl_conn = conn.clone();
    let ttl = |key: String| {
        let mut conn = ttl_conn.clone();
        async move {
            redis::cmd("TTL")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    let session_ttl = ttl(store.key(&id)).await;
    assert!(session_ttl > 0);
    assert!(ttl(set.clone()).await >= session_ttl);
    assert_eq!(store.len().await.unwrap(), 1);
    assert_eq!(
        store.all().await.unwrap().keys().collect::<Vec<_>>(),
        [id.as_str()]
    );
    // A touch (an unmodified request) keeps the set alive as long as the session: the set's
    // TTL is cut short first, the touch raises it again.
    let _: () = redis::cmd("EXPIRE")
        .arg(&set)
        .arg(5)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(who(server.addr, &cookie).await, "erin");
    assert!(ttl(set.clone()).await >= ttl(store.key(&id)).await);
    // A member whose session is gone is removed when the set is read.
    let _: () = redis::cmd("DEL")
        .arg(store.key(&id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(store.sessions_of("erin").await.unwrap().is_empty());
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(&set)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(members.is_empty(), "{members:?}");
    server.stop().await;
    store.clear().await.unwrap();
}
