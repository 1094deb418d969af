//! A server for an external conformance harness that compares sessile with express-session.
//!
//! ```text
//! cargo run --release --example conformance -- --addr 127.0.0.1:4000 --config options.json
//! ```
//!
//! `options.json` holds express-session's options under express's names; `null` means absent,
//! and absent `resave` / `saveUninitialized` take express's defaults (both `true`):
//!
//! ```json
//! { "name": "connect.sid", "secret": ["new", "old"], "resave": false, "rolling": false,
//!   "saveUninitialized": false, "unset": "destroy", "proxy": null, "trustProxy": true,
//!   "cookie": { "path": "/", "httpOnly": true, "secure": "auto", "maxAge": 60000,
//!               "sameSite": "lax", "partitioned": false, "priority": "high" },
//!   "store": "memory" }
//! ```
//!
//! `"store"` may also be `{"redis": "redis://127.0.0.1:6379", "prefix": "sess:"}` (sessions in
//! Redis as Node's connect-redis keeps them; build with
//! `cargo run --release --features redis --example conformance -- ...`).
//!
//! Routes (all GET, JSON bodies): `/noop`, `/read`, `/views`, `/set/:key/:value`, `/get/:key`,
//! `/id`, `/cookie`, `/maxage/:ms`, `/regenerate`, `/destroy`, `/save`, `/touch`, `/unset`,
//! `/reload`, `/store/length`, `/store/all`, `/store/clear`. Errors answer
//! `500 {"error": "..."}`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{OriginalUri, Request};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde_json::{json, Map, Value};
use sessile::{
    CookieOptions, EmbeddedStore, Priority, Proxy, SameSiteOption, Secure, Session, SessionLayer,
    SessionStore, Unset,
};
use tower::util::MapRequest;
use tower::ServiceExt as _;

#[path = "support/shutdown.rs"]
mod shutdown;

#[derive(Parser)]
#[command(about = "sessile conformance server")]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:4000.
    #[arg(long)]
    addr: String,
    /// express-session options as JSON.
    #[arg(long)]
    config: PathBuf,
}

type Store = Arc<dyn SessionStore>;

/// A JSON error response.
struct Fail(String);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": self.0 })),
        )
            .into_response()
    }
}

impl From<sessile::Error> for Fail {
    fn from(e: sessile::Error) -> Self {
        Fail(e.to_string())
    }
}

impl From<sessile::StoreError> for Fail {
    fn from(e: sessile::StoreError) -> Self {
        Fail(e.to_string())
    }
}

type Reply = Result<Json<Value>, Fail>;

fn need(session: Option<Session>) -> Result<Session, Fail> {
    session.ok_or_else(|| Fail("no session".into()))
}

fn ok() -> Reply {
    Ok(Json(json!("ok")))
}

/// Reads the options file into a layer, mapping express's JSON onto the builder.
fn layer_from(config: &Value, store: Option<Store>) -> Result<SessionLayer, String> {
    let opt = |key: &str| config.get(key).filter(|v| !v.is_null());
    let flag = |key: &str, default: bool| -> Result<bool, String> {
        match opt(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(format!("{key} must be a boolean, got {other}")),
        }
    };
    let mut b = SessionLayer::builder();
    if let Some(store) = store {
        b = b.store_arc(store);
    }
    b = match opt("secret") {
        Some(Value::String(s)) => b.secret(s),
        Some(Value::Array(a)) => {
            let secrets: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
            b.secrets(secrets.ok_or("secret array must hold strings")?)
        }
        _ => return Err("secret option required".into()),
    };
    if let Some(name) = opt("name") {
        b = b.name(name.as_str().ok_or("name must be a string")?);
    }
    b = b
        .resave(flag("resave", true)?)
        .rolling(flag("rolling", false)?)
        .save_uninitialized(flag("saveUninitialized", true)?);
    b = b.unset(match opt("unset").and_then(Value::as_str) {
        None | Some("keep") => Unset::Keep,
        Some("destroy") => Unset::Destroy,
        Some(other) => {
            return Err(format!(
                "unset must be \"destroy\" or \"keep\", got {other}"
            ))
        }
    });
    b = b.proxy(match opt("proxy") {
        None => Proxy::Default,
        Some(Value::Bool(true)) => Proxy::Trust,
        Some(Value::Bool(false)) => Proxy::Ignore,
        Some(other) => return Err(format!("proxy must be a boolean or null, got {other}")),
    });
    // express's `trust proxy`: true, a hop count or an address list. The harness connects
    // from loopback, so anything but false/0 trusts the forwarded protocol.
    b = b.trust_proxy(match opt("trustProxy") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n > 0.0),
        Some(_) => true,
    });
    if let Some(cookie) = opt("cookie") {
        b = b.cookie(cookie_from(cookie)?);
    }
    b.build().map_err(|e| e.to_string())
}

fn cookie_from(c: &Value) -> Result<CookieOptions, String> {
    let opt = |key: &str| c.get(key).filter(|v| !v.is_null());
    let mut o = CookieOptions::new();
    if let Some(p) = opt("path") {
        o = o.path(p.as_str().ok_or("cookie.path must be a string")?);
    }
    if let Some(d) = opt("domain") {
        o = o.domain(d.as_str().ok_or("cookie.domain must be a string")?);
    }
    if let Some(h) = opt("httpOnly") {
        o = o.http_only(h.as_bool().ok_or("cookie.httpOnly must be a boolean")?);
    }
    o = o.secure(match opt("secure") {
        None => Secure::Unset,
        Some(Value::Bool(true)) => Secure::On,
        Some(Value::Bool(false)) => Secure::Off,
        Some(Value::String(s)) if s == "auto" => Secure::Auto,
        Some(other) => return Err(format!("invalid cookie.secure {other}")),
    });
    if let Some(m) = opt("maxAge") {
        let ms = m.as_f64().ok_or("cookie.maxAge must be a number")?;
        o = o.max_age_ms(Some(ms as i64));
    }
    o = o.same_site(match opt("sameSite") {
        None | Some(Value::Bool(false)) => SameSiteOption::Off,
        Some(Value::Bool(true)) => SameSiteOption::True,
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "lax" => SameSiteOption::Lax,
            "strict" => SameSiteOption::Strict,
            "none" => SameSiteOption::None,
            "auto" => SameSiteOption::Auto,
            other => return Err(format!("invalid cookie.sameSite {other}")),
        },
        Some(other) => return Err(format!("invalid cookie.sameSite {other}")),
    });
    if let Some(p) = opt("partitioned") {
        o = o.partitioned(p.as_bool().ok_or("cookie.partitioned must be a boolean")?);
    }
    if let Some(p) = opt("priority") {
        let p = p.as_str().and_then(Priority::parse);
        o = o.priority(p.ok_or("cookie.priority must be low, medium or high")?);
    }
    Ok(o)
}

fn store_from(config: &Value) -> Result<Option<Store>, String> {
    match config.get("store") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s == "memory" => Ok(Some(Arc::new(EmbeddedStore::new()))),
        Some(Value::Object(o)) if o.contains_key("dir") => {
            let dir = o["dir"].as_str().ok_or("store.dir must be a string")?;
            let store = EmbeddedStore::open(dir).map_err(|e| format!("opening {dir}: {e}"))?;
            Ok(Some(Arc::new(store)))
        }
        Some(other) => Err(format!("unsupported store {other}")),
    }
}

/// `"store": {"redis": "redis://127.0.0.1:6379", "prefix": "sess:"}`: sessions in Redis, in
/// connect-redis's format (`prefix` optional, default `sess:`). Needs `--features redis`.
/// `Ok(None)` for any other store.
async fn redis_store_from(config: &Value) -> Result<Option<Store>, String> {
    let Some(Value::Object(o)) = config.get("store") else {
        return Ok(None);
    };
    let Some(url) = o.get("redis") else {
        return Ok(None);
    };
    let url = url.as_str().ok_or("store.redis must be a URL string")?;
    let prefix = match o.get("prefix") {
        None | Some(Value::Null) => "sess:",
        Some(Value::String(p)) => p.as_str(),
        Some(other) => return Err(format!("store.prefix must be a string, got {other}")),
    };
    redis_store(url, prefix).await
}

#[cfg(feature = "redis")]
async fn redis_store(url: &str, prefix: &str) -> Result<Option<Store>, String> {
    let store = sessile::RedisStore::builder(url)
        .prefix(prefix)
        .build()
        .await
        .map_err(|e| format!("Redis store: {e}"))?;
    Ok(Some(Arc::new(store)))
}

#[cfg(not(feature = "redis"))]
async fn redis_store(_url: &str, _prefix: &str) -> Result<Option<Store>, String> {
    Err("this build has no Redis store: run the example with `--features redis`".into())
}

async fn noop() -> Reply {
    ok()
}

async fn read(s: Option<Session>) -> Reply {
    Ok(Json(Value::Object(need(s)?.data()?)))
}

async fn views(s: Option<Session>) -> Reply {
    let s = need(s)?;
    let n = s.get::<i64>("views").ok().flatten().unwrap_or(0) + 1;
    s.insert("views", n)?;
    Ok(Json(json!(n)))
}

async fn set(s: Option<Session>, Path((key, value)): Path<(String, String)>) -> Reply {
    need(s)?.insert(&key, value)?;
    ok()
}

async fn get_key(s: Option<Session>, Path(key): Path<String>) -> Reply {
    Ok(Json(need(s)?.get_value(&key)?.unwrap_or(Value::Null)))
}

async fn id(s: Option<Session>) -> Reply {
    let id = need(s)?.id().ok_or_else(|| Fail("no session".into()))?;
    Ok(Json(json!(id)))
}

async fn cookie(s: Option<Session>) -> Reply {
    let c = need(s)?.cookie()?;
    Ok(Json(json!({
        "maxAge": c.max_age(),
        "originalMaxAge": c.original_max_age,
        "expires": c.expires.map(sessile::clock::to_iso),
        "httpOnly": c.http_only,
        "path": &*c.path,
        "secure": c.secure.unwrap_or(false),
        "sameSite": c.to_json().get("sameSite").cloned().unwrap_or(Value::Bool(false)),
    })))
}

async fn maxage(s: Option<Session>, Path(ms): Path<String>) -> Reply {
    let ms: f64 = ms
        .parse()
        .map_err(|_| Fail(format!("invalid maxAge {ms:?}")))?;
    need(s)?.set_max_age_ms(Some(ms as i64))?;
    ok()
}

async fn regenerate(s: Option<Session>) -> Reply {
    let s = need(s)?;
    s.regenerate().await?;
    s.insert("regenerated", true)?;
    Ok(Json(json!(s.id())))
}

async fn destroy(s: Option<Session>) -> Reply {
    need(s)?.destroy().await?;
    ok()
}

async fn save(s: Option<Session>) -> Reply {
    need(s)?.save().await?;
    ok()
}

async fn touch(s: Option<Session>) -> Reply {
    need(s)?.touch()?;
    ok()
}

async fn unset(s: Option<Session>) -> Reply {
    need(s)?.unset();
    ok()
}

async fn reload(s: Option<Session>) -> Reply {
    let s = need(s)?;
    s.reload().await?;
    Ok(Json(Value::Object(s.data()?)))
}

async fn store_length(State(store): State<Store>) -> Reply {
    Ok(Json(json!(store.len().await?)))
}

async fn store_all(State(store): State<Store>) -> Reply {
    let mut out = Map::new();
    for (sid, record) in store.all().await? {
        let data = record.data.to_map()?;
        out.insert(sid, Value::Object(data));
    }
    Ok(Json(Value::Object(out)))
}

async fn store_clear(State(store): State<Store>) -> Reply {
    store.clear().await?;
    ok()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(Args::parse(), shutdown::signal()).await
}

/// Serves the conformance app until `stop` completes, then lets in-flight requests finish
/// and drops the store (a durable store syncs its log and removes its prepared segment).
async fn run(
    args: Args,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| format!("reading {}: {e}", args.config.display()))?;
    let config: Value = serde_json::from_str(&text)
        .map_err(|e| format!("parsing {}: {e}", args.config.display()))?;
    let app = app(&config).await?;
    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(app),
    )
    .with_graceful_shutdown(stop)
    .await?;
    Ok(())
}

/// The routes under the session layer of `config`, routed as Express routes them.
async fn app(
    config: &Value,
) -> Result<MapRequest<Router, fn(Request) -> Request>, Box<dyn std::error::Error>> {
    let store = match redis_store_from(config).await? {
        Some(store) => Some(store),
        None => store_from(config)?,
    };
    let layer = layer_from(config, store)?;
    let store = layer.store();

    let router = Router::new()
        .route("/noop", get(noop))
        .route("/read", get(read))
        .route("/views", get(views))
        .route("/set/{key}/{value}", get(set))
        .route("/get/{key}", get(get_key))
        .route("/id", get(id))
        .route("/cookie", get(cookie))
        .route("/maxage/{ms}", get(maxage))
        .route("/regenerate", get(regenerate))
        .route("/destroy", get(destroy))
        .route("/save", get(save))
        .route("/touch", get(touch))
        .route("/unset", get(unset))
        .route("/reload", get(reload))
        .route("/store/length", get(store_length))
        .route("/store/all", get(store_all))
        .route("/store/clear", get(store_clear))
        .with_state(store)
        .layer(layer);
    Ok(router.map_request(non_strict as fn(Request) -> Request))
}

/// Express's router is not strict by default: a path with one trailing slash is served by
/// the route without it (`/views/` by `/views`). The path the client sent stays in
/// `OriginalUri`, where the session layer checks `cookie.path` (express-session checks
/// `req.originalUrl`).
fn non_strict(mut req: Request) -> Request {
    let uri = req.uri().clone();
    let path = uri.path();
    let Some(trimmed) = path.strip_suffix('/') else {
        return req;
    };
    if trimmed.is_empty() || trimmed.ends_with('/') {
        return req;
    }
    let path_and_query = match uri.query() {
        Some(q) => format!("{trimmed}?{q}"),
        None => trimmed.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    let Ok(pq) = path_and_query.parse() else {
        return req;
    };
    parts.path_and_query = Some(pq);
    if let Ok(new) = Uri::from_parts(parts) {
        req.extensions_mut().insert(OriginalUri(uri));
        *req.uri_mut() = new;
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    async fn get_body(
        app: &MapRequest<Router, fn(Request) -> Request>,
        path: &str,
        cookie: Option<&str>,
    ) -> (StatusCode, String, Option<String>) {
        let mut req = Request::get(path);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let res = app
            .clone()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let set_cookie = res
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            String::from_utf8(body.to_vec()).unwrap(),
            set_cookie,
        )
    }

    /// `/views/` is `/views`, as Express's non-strict router serves it; `/views//` and
    /// unknown paths are not (issue 10, item 4).
    #[tokio::test]
    async fn a_trailing_slash_is_routed_as_express_does() {
        let config = json!({"secret": "keyboard cat", "store": "memory"});
        let app = app(&config).await.unwrap();
        let (status, body, cookie) = get_body(&app, "/views/", None).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
        let cookie = cookie.expect("a session cookie");
        let (status, body, _) = get_body(&app, "/views", Some(&cookie)).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "2"));
        let (status, body, _) = get_body(&app, "/views/?x=1", Some(&cookie)).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "3"));
        let (status, _, _) = get_body(&app, "/get/views/", Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK);
        for path in ["/views//", "/nothing/", "/views/x"] {
            assert_eq!(
                get_body(&app, path, None).await.0,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
    }

    /// The server of `stops_cleanly_on_sigterm`, run in a child process.
    #[cfg(unix)]
    #[test]
    fn shutdown_child() {
        let Some(dir) = std::env::var_os(shutdown::child::CHILD_DIR) else {
            return; // only as the child of the test below
        };
        let dir = PathBuf::from(dir);
        let config = dir.with_extension("json");
        let options = json!({"secret": "keyboard cat", "store": {"dir": dir}});
        std::fs::write(&config, options.to_string()).unwrap();
        let args = Args {
            addr: "127.0.0.1:0".into(),
            config,
        };
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(run(args, shutdown::signal())).unwrap();
    }

    /// SIGTERM stops the server gracefully and shuts its durable store down cleanly (issue
    /// 10, item 16).
    #[cfg(unix)]
    #[test]
    fn stops_cleanly_on_sigterm() {
        let dir = std::env::temp_dir().join(format!("sessile-conf-term-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        shutdown::check::stops_cleanly_on_sigterm(
            "tests::shutdown_child",
            &dir,
            "GET /views HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(dir.with_extension("json"));
    }
}
