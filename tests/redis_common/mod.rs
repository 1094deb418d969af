//! Helpers of the Redis tests (`redis_store.rs`, `redis_interop.rs`): finding the Redis
//! server, skipping without one, raw Redis access, a real HTTP server and client.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
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

/// Serves `app` on an ephemeral port of 127.0.0.1 for the rest of the test.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// `name=value` of the session cookie set by the response, if any.
    pub set_cookie: Option<String>,
    /// The whole `Set-Cookie` header of the session cookie, attributes included.
    pub set_cookie_header: Option<String>,
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.body))
    }
}

/// `GET http://addr{path}` with an optional `Cookie` header, within 10 s.
pub async fn fetch(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut req = Request::get(format!("http://{addr}{path}"));
    if let Some(c) = cookie {
        req = req.header(http::header::COOKIE, c);
    }
    let req = req.body(Empty::new()).expect("request");
    let res = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .unwrap_or_else(|_| panic!("GET {path} on {addr}: no response in 10 s"))
        .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"));
    let status = res.status();
    let set_cookie_header = res
        .headers()
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("connect.sid="))
        .map(str::to_owned);
    let set_cookie = set_cookie_header
        .as_deref()
        .map(|v| v.split(';').next().unwrap_or("").to_owned());
    let body = res.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        set_cookie,
        set_cookie_header,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}
