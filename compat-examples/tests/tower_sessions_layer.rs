//! tower-sessions 0.15's own `SessionManagerLayer` over sessile's stores (memory, durable,
//! and Redis with `--features redis` and `REDIS_URL`), over real HTTP: the counter counts,
//! the session is stored under the cookie's id with the counter in its fields and the
//! session's expiry as its cookie's, `cycle_id` moves it to a new id (created atomically)
//! with the counter, and `flush` deletes it.

#[path = "../../examples/support/child.rs"]
#[allow(dead_code)] // the HTTP client and the temporary directories only
mod child;

use axum::routing::get;
use sessile::{EmbeddedStore, SessionStore};
use tower_sessions::{Expiry, Session, SessionManagerLayer};

async fn views(session: Session) -> String {
    let n: u64 = session.get("views").await.unwrap().unwrap_or(0) + 1;
    session.insert("views", n).await.unwrap();
    n.to_string()
}

async fn cycle(session: Session) -> &'static str {
    session.cycle_id().await.unwrap();
    "cycled"
}

async fn flush(session: Session) -> &'static str {
    session.flush().await.unwrap();
    "flushed"
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_millis() as i64)
}

/// Serves the counter behind tower-sessions' layer over `store` on a runtime of its own,
/// and drives it with a blocking HTTP client from this thread.
fn drive_the_layer<S>(rt: &tokio::runtime::Runtime, store: S)
where
    S: tower_sessions::SessionStore + SessionStore + Clone,
{
    let layer = SessionManagerLayer::new(store.clone())
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(1)));
    let app = axum::Router::new()
        .route("/", get(views))
        .route("/cycle", get(cycle))
        .route("/flush", get(flush))
        .layer(layer);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = rt.spawn(async move { axum::serve(listener, app).await });

    let mut jar = child::Jar::default();
    for n in 1..=3 {
        let r = jar.get_page(&addr, "/");
        assert_eq!((r.status, r.body), (200, n.to_string()));
    }
    let id = jar.get("id").expect("tower-sessions' cookie").to_owned();
    let stored = rt
        .block_on(store.get(&id))
        .unwrap()
        .expect("under the cookie's id");
    assert_eq!(stored.data.as_str(), r#"{"views":3}"#);
    let expires = stored.cookie.expires.expect("the session's expiry");
    let in_an_hour = now_ms() + 3_600_000;
    assert!((in_an_hour - 60_000..=in_an_hour).contains(&expires));

    assert_eq!(jar.get_page(&addr, "/cycle").body, "cycled");
    let cycled = jar.get("id").unwrap().to_owned();
    assert_ne!(cycled, id);
    assert!(
        rt.block_on(store.get(&id)).unwrap().is_none(),
        "the old id is gone"
    );
    assert_eq!(
        jar.get_page(&addr, "/").body,
        "4",
        "the counter moved with the id"
    );

    assert_eq!(jar.get_page(&addr, "/flush").body, "flushed");
    assert!(
        rt.block_on(store.get(&cycled)).unwrap().is_none(),
        "flush deletes"
    );
    assert_eq!(rt.block_on(store.len()).unwrap(), 0);
    server.abort();
}

#[test]
fn tower_sessions_layer_runs_on_the_memory_store() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    drive_the_layer(&rt, EmbeddedStore::new());
}

#[test]
fn tower_sessions_layer_runs_on_the_durable_store() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = child::temp_dir("layer");
    drive_the_layer(&rt, EmbeddedStore::open(&dir).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `REDIS_URL` set (required under CI, where `.ci/run` starts a Redis).
#[cfg(feature = "redis")]
#[test]
fn tower_sessions_layer_runs_on_the_redis_store() {
    let url = match std::env::var("REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            assert!(
                std::env::var_os("CI").is_none_or(|v| v.is_empty()),
                "REDIS_URL is not set, and CI is: .ci/run must start redis-server"
            );
            eprintln!("SKIPPED tower_sessions_layer_runs_on_the_redis_store: REDIS_URL is not set");
            return;
        }
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let prefix = format!(
        "sessile-test:ts-layer:{}:",
        sessile::id::generate().unwrap()
    );
    let store = rt
        .block_on(sessile::RedisStore::builder(url).prefix(prefix).build())
        .unwrap();
    drive_the_layer(&rt, store.clone());
    // Only this test's prefix.
    rt.block_on(store.clear()).unwrap();
}
