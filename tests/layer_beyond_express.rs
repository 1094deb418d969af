//! What express-session leaves to the application, through the layer over real HTTP:
//! cookie-name prefixes, `max_lifetime` (absolute timeout), strict ids (`on_unknown_id`,
//! `SessionLayer::stats`) and `renew_grace` (safe renewal), each against the embedded
//! store in memory and durable (also across a restart: the store dropped and its directory
//! reopened) and Redis (`REDIS_URL`; skipped with a notice without it). Time moves with the
//! crate's test clock, never by sleeping; the clock is process-wide, so this binary's tests
//! take [`CLOCK`] in turn.

mod common;
#[cfg(feature = "redis")]
mod redis_common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use common::{cookie_for, get_with, send, Resp, SECRET};
use http::StatusCode;
use sessile::clock::advance_for_tests;
use sessile::{
    CookieOptions, EmbeddedStore, MaxLifetime, Proxy, Secure, Session, SessionLayer,
    SessionLayerBuilder, SessionStore, UnknownId, UnknownIdKind,
};
use tokio::sync::Notify;

/// Held by every test of this binary: the clock moves for the whole process.
static CLOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const HOUR_MS: u64 = 3_600_000;
const DAY: Duration = Duration::from_secs(86_400);

// ---------------------------------------------------------------------------------------
// Stores and servers
// ---------------------------------------------------------------------------------------

/// A fresh directory for a durable store.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sessile-beyond-{tag}-{}",
        sessile::id::generate().expect("id")
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The stores every feature is tested on: embedded in memory, durable, and Redis when
/// `REDIS_URL` is set.
async fn stores(test: &str) -> Vec<(&'static str, Arc<dyn SessionStore>)> {
    #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
    let mut out: Vec<(&'static str, Arc<dyn SessionStore>)> = vec![
        ("memory", Arc::new(EmbeddedStore::new())),
        (
            "durable",
            Arc::new(EmbeddedStore::open(temp_dir(test)).expect("open")),
        ),
    ];
    #[cfg(feature = "redis")]
    if let Some(url) = redis_common::redis_url(test) {
        let store = sessile::RedisStore::builder(&url)
            .prefix(redis_common::unique_prefix(test))
            .build()
            .await
            .expect("connect");
        out.push(("redis", Arc::new(store)));
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("SKIPPED {test} on redis: built without the redis feature\n").as_bytes(),
        );
    }
    out
}

/// A server that can be stopped, so that its store can be dropped and reopened.
struct Server {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("server");
        });
        Server { addr, stop, task }
    }

    /// Stops the server and waits until it (and the layer, and its store handle) is gone.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the server stops within 30 s")
            .expect("server task");
    }
}

fn builder(store: &Arc<dyn SessionStore>) -> SessionLayerBuilder {
    SessionLayer::builder()
        .secret(SECRET)
        .store_arc(store.clone())
        .cookie(CookieOptions::new().max_age(DAY))
}

/// `GET /set/user` without a cookie: the new session's id and `Cookie` header.
async fn login(addr: SocketAddr) -> (String, String) {
    common::login(addr).await
}

async fn user(addr: SocketAddr, cookie: &str) -> Resp {
    get_with(addr, "/get/user", Some(cookie)).await
}

// ---------------------------------------------------------------------------------------
// Cookie prefixes
// ---------------------------------------------------------------------------------------

#[test]
fn prefixed_names_are_refused_without_the_attributes_they_demand() {
    let build = |name: &str, cookie: CookieOptions| {
        SessionLayer::builder()
            .secret(SECRET)
            .name(name)
            .cookie(cookie)
            .build()
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let secure = CookieOptions::new().secure(Secure::On);
    assert_eq!(build("__Host-sid", secure.clone()), Ok(()));
    assert_eq!(build("__Secure-sid", secure.clone()), Ok(()));
    assert_eq!(
        build(
            "__Secure-sid",
            secure.clone().domain("example.com").path("/a")
        ),
        Ok(())
    );
    for (name, cookie, why) in [
        ("__Host-sid", CookieOptions::new(), "must be Secure"),
        ("__host-sid", CookieOptions::new(), "must be Secure"),
        (
            "__Host-sid",
            CookieOptions::new().secure(Secure::Auto),
            "not Auto",
        ),
        (
            "__Host-sid",
            secure.clone().domain("example.com"),
            "must have no Domain",
        ),
        (
            "__Host-sid",
            secure.clone().path("/app"),
            "must have Path=/",
        ),
        ("__Secure-sid", CookieOptions::new(), "must be Secure"),
        (
            "__Secure-sid",
            CookieOptions::new().secure(Secure::Off),
            "must be Secure",
        ),
    ] {
        let err = build(name, cookie.clone()).expect_err(name);
        assert!(err.contains(why), "{name} {cookie:?}: {err}");
    }
    // Other names are as express takes them.
    assert_eq!(
        build("sid", CookieOptions::new().domain("example.com")),
        Ok(())
    );
}

#[tokio::test]
async fn a_host_cookie_is_sent_with_its_attributes_and_a_cookie_fn_cannot_break_them() {
    let layer = SessionLayer::builder()
        .secret(SECRET)
        .name("__Host-sid")
        .proxy(Proxy::Trust)
        .cookie(CookieOptions::new().secure(Secure::On))
        .build()
        .unwrap();
    let addr = common::start(layer).await;
    let r = send(addr, "/set/user", None, &[("x-forwarded-proto", "https")]).await;
    let c = r.named_cookie("__Host-sid").expect("a __Host- cookie");
    assert!(c.ends_with("; Path=/; HttpOnly; Secure"), "{c}");

    // A per-request function is checked when the cookie is written.
    let layer = SessionLayer::builder()
        .secret(SECRET)
        .name("__Host-sid")
        .proxy(Proxy::Trust)
        .cookie_fn(|_| {
            CookieOptions::new()
                .secure(Secure::On)
                .domain("example.com")
        })
        .build()
        .unwrap();
    let addr = common::start(layer).await;
    let r = send(addr, "/set/user", None, &[("x-forwarded-proto", "https")]).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{r:?}");
    assert!(r.set_cookies.is_empty(), "{r:?}");
}

// ---------------------------------------------------------------------------------------
// max_lifetime
// ---------------------------------------------------------------------------------------

/// The creation time the store holds for `id`.
async fn created(store: &Arc<dyn SessionStore>, id: &str) -> Option<i64> {
    let r = store.get(id).await.expect("get")?;
    r.data
        .to_map()
        .expect("fields")
        .get("__sessile_created")
        .and_then(|v| v.as_i64())
}

#[tokio::test]
async fn max_lifetime_ends_a_rolling_session_counted_from_its_creation() {
    let _clock = CLOCK.lock().await;
    for (kind, store) in stores("lifetime-created").await {
        let layer = builder(&store)
            .rolling(true)
            .max_lifetime(MaxLifetime::since_created(Duration::from_millis(HOUR_MS)))
            .build()
            .unwrap();
        let stats = layer.clone();
        let addr = common::start(layer).await;
        let before = sessile::clock::now_ms();
        let (id, cookie) = login(addr).await;
        let at = created(&store, &id).await.expect("a creation time");
        assert!(at >= before && at <= sessile::clock::now_ms(), "{kind}");
        // The handler does not see it.
        let r = get_with(addr, "/data", Some(&cookie)).await;
        assert_eq!(r.body, r#"{"user":true}"#, "{kind}");

        advance_for_tests(40 * 60_000);
        let r = user(addr, &cookie).await;
        assert_eq!(r.body, "true", "{kind}: within the hour");
        assert!(r.session_cookie().is_some(), "{kind}: rolling sends it");
        // Activity moves nothing: a cycled id keeps the creation time.
        let r = get_with(addr, "/cycle", Some(&cookie)).await;
        let cookie = r.cookie_pair();
        assert_eq!(created(&store, &r.sid()).await, Some(at), "{kind}");

        advance_for_tests(30 * 60_000);
        let r = user(addr, &cookie).await;
        assert_eq!(r.body, "null", "{kind}: past the hour, a new session");
        assert!(store.get(&r_id(&cookie)).await.unwrap().is_none(), "{kind}");
        assert_eq!(stats.stats().lifetime_expired, 1, "{kind}");
    }
}

/// The id of a `connect.sid=...` pair.
fn r_id(cookie: &str) -> String {
    let value = cookie.split_once('=').expect("a pair").1;
    let decoded = sessile::cookie::decode(value);
    let secrets = sessile::Secrets::new([SECRET]).unwrap();
    sessile::signing::session_id(&decoded, &secrets)
        .expect("signed")
        .to_owned()
}

/// Serves the common routes on `store` with `max_lifetime` set to `limit`.
async fn start_with_lifetime(store: &Arc<dyn SessionStore>, limit: MaxLifetime) -> SocketAddr {
    common::start(builder(store).max_lifetime(limit).build().unwrap()).await
}

#[tokio::test]
async fn since_renewed_counts_from_the_last_new_id() {
    let _clock = CLOCK.lock().await;
    for (kind, store) in stores("lifetime-renewed").await {
        let addr = start_with_lifetime(
            &store,
            MaxLifetime::since_renewed(Duration::from_millis(HOUR_MS)),
        )
        .await;
        let (_, cookie) = login(addr).await;
        advance_for_tests(40 * 60_000);
        let r = get_with(addr, "/cycle", Some(&cookie)).await;
        let cookie = r.cookie_pair();
        advance_for_tests(40 * 60_000);
        assert_eq!(
            user(addr, &cookie).await.body,
            "true",
            "{kind}: 40 min since renewal"
        );
        advance_for_tests(30 * 60_000);
        assert_eq!(
            user(addr, &cookie).await.body,
            "null",
            "{kind}: 70 min since"
        );
    }
}

#[tokio::test]
async fn a_record_without_the_creation_time_gets_it_at_its_next_save() {
    let _clock = CLOCK.lock().await;
    for (kind, store) in stores("lifetime-legacy").await {
        let addr = start_with_lifetime(
            &store,
            MaxLifetime::since_created(Duration::from_millis(HOUR_MS)),
        )
        .await;
        // As Node (or sessile without the option) writes it.
        let id = sessile::id::generate().unwrap();
        let mut cookie = sessile::CookieRecord::default();
        cookie.set_max_age(Some(DAY.as_millis() as i64));
        let record = common::record(serde_json::json!({"user": true}), cookie);
        store.set(&id, &record).await.unwrap();
        let pair = cookie_for(&id, SECRET);
        advance_for_tests(2 * HOUR_MS);
        // Never expired for want of a time; a read is no save.
        assert_eq!(user(addr, &pair).await.body, "true", "{kind}");
        assert_eq!(created(&store, &id).await, None, "{kind}");
        let stamp = sessile::clock::now_ms();
        get_with(addr, "/set/more", Some(&pair)).await;
        let at = created(&store, &id).await.expect("stamped at the save");
        assert!(at >= stamp, "{kind}");
        advance_for_tests(HOUR_MS);
        assert_eq!(user(addr, &pair).await.body, "null", "{kind}");
    }
}

#[tokio::test]
async fn max_lifetime_holds_across_a_restart_of_the_durable_store() {
    let _clock = CLOCK.lock().await;
    let dir = temp_dir("lifetime-restart");
    let layer = |store: &Arc<dyn SessionStore>| {
        builder(store)
            .rolling(true)
            .max_lifetime(MaxLifetime::since_created(Duration::from_millis(HOUR_MS)))
            .build()
            .unwrap()
    };
    let store: Arc<dyn SessionStore> = Arc::new(EmbeddedStore::open(&dir).unwrap());
    let server = Server::start(common::routes().layer(layer(&store))).await;
    let (id, cookie) = login(server.addr).await;
    let at = created(&store, &id).await.expect("stamped");
    server.stop().await;
    drop(store);

    let store: Arc<dyn SessionStore> = Arc::new(EmbeddedStore::open(&dir).unwrap());
    assert_eq!(created(&store, &id).await, Some(at));
    let server = Server::start(common::routes().layer(layer(&store))).await;
    advance_for_tests(50 * 60_000);
    assert_eq!(user(server.addr, &cookie).await.body, "true");
    advance_for_tests(20 * 60_000);
    assert_eq!(user(server.addr, &cookie).await.body, "null");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------
// Strict ids
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_ids_and_bad_signatures_reach_the_hook_and_the_counters() {
    let _clock = CLOCK.lock().await;
    for (kind, store) in stores("strict-ids").await {
        let seen: Arc<Mutex<Vec<UnknownId>>> = Arc::default();
        let hook = seen.clone();
        let layer = builder(&store)
            .on_unknown_id(move |u| hook.lock().unwrap().push(u.clone()))
            .build()
            .unwrap();
        let stats = layer.clone();
        let addr = common::start(layer).await;
        let (_, cookie) = login(addr).await;
        assert_eq!(user(addr, &cookie).await.body, "true");
        assert!(
            seen.lock().unwrap().is_empty(),
            "{kind}: a known id is no alert"
        );

        let forged_id = "forgedforgedforgedforgedforged12";
        let forged = cookie_for(forged_id, "another secret");
        assert_eq!(user(addr, &forged).await.body, "null", "{kind}");
        let unknown_id = sessile::id::generate().unwrap();
        let replayed = cookie_for(&unknown_id, SECRET);
        assert_eq!(user(addr, &replayed).await.body, "null", "{kind}");

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{kind}: {seen:?}");
        assert_eq!(seen[0].kind, UnknownIdKind::BadSignature);
        assert_eq!(seen[0].id_prefix, &forged_id[..6]);
        assert_eq!(seen[1].kind, UnknownIdKind::NotInStore);
        assert_eq!(seen[1].id_prefix, &unknown_id[..6]);
        for u in &seen {
            assert_eq!((u.method.as_str(), u.path.as_str()), ("GET", "/get/user"));
        }
        let s = stats.stats();
        assert_eq!((s.bad_signatures, s.unknown_ids), (1, 1), "{kind}");
        // No cookie at all is no alert.
        get_with(addr, "/get/user", None).await;
        assert_eq!(stats.stats().bad_signatures + stats.stats().unknown_ids, 2);
    }
}

// ---------------------------------------------------------------------------------------
// renew_grace
// ---------------------------------------------------------------------------------------

/// A login that cycles the id, then waits (its response not sent) until the test lets it
/// go: the window in which parallel requests still carry the old cookie.
#[derive(Clone, Default)]
struct Gate {
    cycled: Arc<Notify>,
    release: Arc<Notify>,
}

fn gated_routes(gate: Gate) -> Router {
    common::routes().route(
        "/login",
        get(move |s: Session| {
            let gate = gate.clone();
            async move {
                s.insert("user", "alice")?;
                s.cycle_id().await?;
                gate.cycled.notify_one();
                gate.release.notified().await;
                Ok::<_, sessile::Error>(s.id().unwrap_or_default())
            }
        }),
    )
}

fn grace_layer(store: &Arc<dyn SessionStore>, grace: Option<Duration>) -> SessionLayer {
    let mut b = builder(store);
    if let Some(g) = grace {
        b = b.renew_grace(g);
    }
    b.build().unwrap()
}

/// Logs in (a first session, then `/login` held open), sends `n` parallel requests with the
/// old cookie while the login is held, and returns the login's new cookie, the old cookie,
/// and the parallel responses.
async fn parallel_around_login(
    addr: SocketAddr,
    gate: &Gate,
    n: usize,
) -> (String, String, Vec<Resp>) {
    let (_, old) = common::login(addr).await;
    let cycled = gate.cycled.notified();
    let login = tokio::spawn({
        let old = old.clone();
        async move { get_with(addr, "/login", Some(&old)).await }
    });
    tokio::time::timeout(Duration::from_secs(30), cycled)
        .await
        .expect("the login cycles its id");
    let during: Vec<_> = (0..n)
        .map(|i| {
            let old = old.clone();
            tokio::spawn(
                async move { get_with(addr, &format!("/put/k{i}/v{i}"), Some(&old)).await },
            )
        })
        .collect();
    let mut resps = Vec::new();
    for r in during {
        resps.push(r.await.unwrap());
    }
    // The ones after the login's response, too.
    gate.release.notify_one();
    let login = login.await.unwrap();
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    resps.push(get_with(addr, "/put/after/1", Some(&old)).await);
    (login.cookie_pair(), old, resps)
}

#[tokio::test]
async fn within_the_grace_an_old_id_reads_and_writes_the_renewed_session() {
    let _clock = CLOCK.lock().await;
    for (kind, store) in stores("grace").await {
        let gate = Gate::default();
        let layer = grace_layer(&store, Some(Duration::from_secs(10)));
        let stats = layer.clone();
        let addr = common::serve(gated_routes(gate.clone()).layer(layer)).await;
        let (new, old, resps) = parallel_around_login(addr, &gate, 4).await;
        let new_id = r_id(&new);
        for r in &resps {
            assert_eq!(r.status, StatusCode::OK, "{kind}: {r:?}");
            assert_eq!(
                r.body, new_id,
                "{kind}: the old cookie resolved to the new session"
            );
            // Never a cookie for the old id (a cookie for the new one is harmless).
            if r.session_cookie().is_some() {
                assert_eq!(r.sid(), new_id, "{kind}");
            }
        }
        let data = get_with(addr, "/data", Some(&new)).await.body;
        let data: serde_json::Value = serde_json::from_str(&data).unwrap();
        for i in 0..4 {
            assert_eq!(data[format!("k{i}")], format!("v{i}"), "{kind}: {data}");
        }
        assert_eq!(data["after"], "1", "{kind}: {data}");
        assert_eq!(data["user"], "alice", "{kind}");
        assert_eq!(stats.stats().renewal_redirects, 5, "{kind}");

        // After the grace the old id is unknown.
        advance_for_tests(10_001);
        let r = get_with(addr, "/get/user", Some(&old)).await;
        assert_eq!(r.body, "null", "{kind}");
        assert_eq!(stats.stats().unknown_ids, 1, "{kind}");
        assert_eq!(
            get_with(addr, "/get/user", Some(&new)).await.body,
            "\"alice\""
        );
    }
}

#[tokio::test]
async fn without_a_grace_the_old_id_ends_at_once() {
    let _clock = CLOCK.lock().await;
    let store: Arc<dyn SessionStore> = Arc::new(EmbeddedStore::new());
    let gate = Gate::default();
    let addr = common::serve(gated_routes(gate.clone()).layer(grace_layer(&store, None))).await;
    let (new, _, resps) = parallel_around_login(addr, &gate, 2).await;
    let new_id = r_id(&new);
    for r in &resps {
        // express's behaviour: a fresh empty session, its own cookie.
        assert_ne!(r.body, new_id);
        assert_ne!(r.sid(), new_id);
    }
    assert_eq!(get_with(addr, "/get/k0", Some(&new)).await.body, "null");
}

#[tokio::test]
async fn a_regenerated_session_is_reached_through_the_old_id_too() {
    let _clock = CLOCK.lock().await;
    for (kind, store) in stores("grace-regenerate").await {
        let addr = common::serve(
            common::routes().layer(grace_layer(&store, Some(Duration::from_secs(5)))),
        )
        .await;
        let (old_id, old) = login(addr).await;
        let r = get_with(addr, "/regenerate", Some(&old)).await;
        let new = r.cookie_pair();
        let r = get_with(addr, "/put/cart/1", Some(&old)).await;
        assert_eq!(r.body, r_id(&new), "{kind}");
        assert_eq!(
            get_with(addr, "/data", Some(&new)).await.body,
            r#"{"cart":"1"}"#
        );
        // The old record is a redirect, not the old session.
        let rec = store.get(&old_id).await.unwrap().expect("the redirect");
        assert!(
            rec.data.as_str().starts_with(r#"{"__sessile_renewed_to":"#),
            "{kind}"
        );
        advance_for_tests(5_001);
        assert_eq!(user(addr, &old).await.body, "null", "{kind}");
    }
}

#[tokio::test]
async fn the_grace_holds_across_a_restart_of_the_durable_store() {
    let _clock = CLOCK.lock().await;
    let dir = temp_dir("grace-restart");
    let store: Arc<dyn SessionStore> = Arc::new(EmbeddedStore::open(&dir).unwrap());
    let server =
        Server::start(common::routes().layer(grace_layer(&store, Some(Duration::from_secs(10)))))
            .await;
    let (_, old) = login(server.addr).await;
    let new = get_with(server.addr, "/cycle", Some(&old))
        .await
        .cookie_pair();
    server.stop().await;
    drop(store);

    let store: Arc<dyn SessionStore> = Arc::new(EmbeddedStore::open(&dir).unwrap());
    let server =
        Server::start(common::routes().layer(grace_layer(&store, Some(Duration::from_secs(10)))))
            .await;
    assert_eq!(user(server.addr, &old).await.body, "true");
    assert_eq!(
        get_with(server.addr, "/id", Some(&old)).await.body,
        r_id(&new)
    );
    advance_for_tests(10_001);
    assert_eq!(user(server.addr, &old).await.body, "null");
    assert_eq!(user(server.addr, &new).await.body, "true");
    server.stop().await;
}

#[test]
fn a_grace_over_a_minute_is_refused() {
    let err = SessionLayer::builder()
        .secret(SECRET)
        .renew_grace(Duration::from_secs(61))
        .build()
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("renew_grace"), "{err}");
    assert!(SessionLayer::builder()
        .secret(SECRET)
        .renew_grace(sessile::MAX_RENEW_GRACE)
        .build()
        .is_ok());
}
