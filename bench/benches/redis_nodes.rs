//! The Redis store on one server, over TLS, and on a Redis Cluster, on loopback: `get` and
//! `set` ops/s and latency (p50, p99) with 16 calls in flight; then requests/s through the
//! layer with 1 and 4 connections to one server. Plain tokio timing (no criterion): each
//! row runs `RUNS` times for `SECS` seconds and the medians are printed as markdown tables.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379/ \
//! REDIS_TLS_URL=rediss://127.0.0.1:6380/ REDIS_TLS_CA=/path/ca.crt \
//! REDIS_CLUSTER_URLS=redis://127.0.0.1:7000,redis://127.0.0.1:7001 \
//!   cargo bench -p sessile-bench --features redis-nodes --bench redis_nodes
//! ```
//!
//! A target whose variable is unset is left out (and said so).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Map, Value};
use sessile::{Data, Record, RedisStore, Session, SessionLayer, SessionStore};

const RUNS: usize = 3;
const SECS: u64 = 3;
const IN_FLIGHT: usize = 16;
const SESSIONS: usize = 1_000;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

async fn stores() -> Vec<(&'static str, RedisStore)> {
    let prefix = format!("sessile-bench-nodes:{}:", std::process::id());
    let mut out = Vec::new();
    match env("REDIS_URL") {
        Some(url) => out.push((
            "single",
            RedisStore::builder(url)
                .prefix(prefix.as_str())
                .build()
                .await
                .expect("REDIS_URL"),
        )),
        None => eprintln!("REDIS_URL unset: no single-server row"),
    }
    match (env("REDIS_TLS_URL"), env("REDIS_TLS_CA")) {
        (Some(url), Some(ca)) => out.push((
            "TLS",
            RedisStore::builder(url)
                .prefix(prefix.as_str())
                .tls_root_certificates(std::fs::read(ca).expect("read REDIS_TLS_CA"))
                .build()
                .await
                .expect("REDIS_TLS_URL"),
        )),
        _ => eprintln!("REDIS_TLS_URL or REDIS_TLS_CA unset: no TLS row"),
    }
    match env("REDIS_CLUSTER_URLS") {
        Some(urls) => out.push((
            "Cluster",
            RedisStore::cluster(urls.split(',').map(str::to_owned))
                .prefix(prefix.as_str())
                .build()
                .await
                .expect("REDIS_CLUSTER_URLS"),
        )),
        None => eprintln!("REDIS_CLUSTER_URLS unset: no Cluster row"),
    }
    out
}

fn record(views: u64) -> Record {
    let mut fields = Map::new();
    fields.insert("user".into(), json!("alice"));
    fields.insert("views".into(), json!(views));
    let mut r = Record::default();
    r.cookie.original_max_age = Some(86_400_000);
    r.cookie.expires = Some(sessile::clock::now_ms() + 86_400_000);
    r.data = Data::from_map(&fields);
    r
}

struct Run {
    ops_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

/// `IN_FLIGHT` tasks calling `get` (or `set`) on random sessions for `SECS`.
async fn run(store: &RedisStore, write: bool) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let start = Instant::now();
    for t in 0..IN_FLIGHT {
        let (store, stop) = (store.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut x = 0x9E37_79B9_7F4A_7C15_u64 ^ (t as u64 + 1);
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let sid = format!("s{}", x % SESSIONS as u64);
                let t0 = Instant::now();
                if write {
                    store.set(&sid, &record(x % 1000)).await.expect("set");
                } else {
                    store.get(&sid).await.expect("get");
                }
                lat.push(t0.elapsed());
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs(SECS)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    Run {
        ops_per_sec: lat.len() as f64 / secs,
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
    }
}

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Requests/s on `/read` (an unmodified session read: the store's `get` and `touch`) from
/// `IN_FLIGHT` concurrent clients, through the layer on `store`.
async fn layer_rps(store: RedisStore) -> f64 {
    async fn read(s: Session) -> Result<Json<Map<String, Value>>, sessile::Error> {
        Ok(Json(s.data()?))
    }
    async fn login(s: Session) -> Result<&'static str, sessile::Error> {
        s.insert("user", "alice")?;
        Ok("ok")
    }
    let layer = SessionLayer::builder()
        .secret("bench secret")
        .cookie(sessile::CookieOptions::new().max_age(Duration::from_secs(86_400)))
        .store(store)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/read", get(read))
        .route("/login", get(login))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let res = client
        .get(format!("http://{addr}/login").parse().unwrap())
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (client, stop, cookie) = (client.clone(), stop.clone(), cookie.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let req = http::Request::get(format!("http://{addr}/read"))
                    .header("cookie", &cookie)
                    .body(Empty::new())
                    .unwrap();
                let res = client.request(req).await.expect("request");
                assert_eq!(res.status(), 200);
                res.into_body().collect().await.unwrap();
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_secs(SECS)).await;
    stop.store(true, Ordering::Relaxed);
    let mut n = 0;
    for t in tasks {
        n += t.await.unwrap();
    }
    let rps = n as f64 / start.elapsed().as_secs_f64();
    server.abort();
    rps
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stores = stores().await;
        println!("\n| deployment | call | ops/s | p50 | p99 |\n| --- | --- | --- | --- | --- |");
        for (name, store) in &stores {
            for i in 0..SESSIONS {
                store
                    .set(&format!("s{i}"), &record(0))
                    .await
                    .expect("prefill");
            }
            for (call, write) in [("get", false), ("set", true)] {
                let mut runs = Vec::new();
                for _ in 0..RUNS {
                    runs.push(run(store, write).await);
                }
                println!(
                    "| {name} | {call} | {:.1} k/s | {} | {} |",
                    median(runs.iter().map(|r| r.ops_per_sec).collect()) / 1e3,
                    us(median(runs.iter().map(|r| r.p50).collect())),
                    us(median(runs.iter().map(|r| r.p99).collect())),
                );
            }
            store.clear().await.expect("clear");
        }
        if let Some(url) = env("REDIS_URL") {
            println!("\n| connections | /read requests/s |\n| --- | --- |");
            for n in [1, 4] {
                let mut runs = Vec::new();
                for _ in 0..RUNS {
                    let store = RedisStore::builder(url.as_str())
                        .prefix(format!("sessile-bench-layer:{}:", std::process::id()))
                        .connections(n)
                        .build()
                        .await
                        .expect("REDIS_URL");
                    runs.push(layer_rps(store.clone()).await);
                    store.clear().await.expect("clear");
                }
                println!("| {n} | {:.0} |", median(runs));
            }
        }
    });
}
