//! Shared helpers of the integration tests (`layer_*`, and the HTTP side of `redis_*`): a
//! real axum server behind the session layer, a hyper client, a tiny cookie jar, a store
//! that records (and can fail) calls, and the handlers every test file routes to.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Map, Value};
use sessile::{
    Applied, Changes, CookieRecord, Created, EmbeddedStore, Record, Secrets, Session, SessionLayer,
    SessionLayerBuilder, SessionStore, StoreError,
};

/// The secret every test signs with unless it says otherwise.
pub const SECRET: &str = "keyboard cat";
/// express-session's default cookie name.
pub const NAME: &str = "connect.sid";

// ---------------------------------------------------------------------------------------
// Server and client
// ---------------------------------------------------------------------------------------

/// A layer builder with the test secret and nothing else.
pub fn builder() -> SessionLayerBuilder {
    SessionLayer::builder().secret(SECRET)
}

/// Serves `app` on an ephemeral port of 127.0.0.1 for the rest of the test.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server");
    });
    addr
}

/// Serves [`routes`] behind `layer`.
pub async fn start(layer: SessionLayer) -> SocketAddr {
    serve(routes().layer(layer)).await
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub set_cookies: Vec<String>,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    /// The `Set-Cookie` of the session cookie (`connect.sid`), if any. Panics when there
    /// are several.
    pub fn session_cookie(&self) -> Option<&str> {
        self.named_cookie(NAME)
    }

    /// The `Set-Cookie` of the cookie called `name`, if any. Panics when there are several.
    pub fn named_cookie(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        let found: Vec<&str> = self
            .set_cookies
            .iter()
            .filter(|c| c.starts_with(&prefix))
            .map(String::as_str)
            .collect();
        assert!(found.len() <= 1, "several {name} cookies: {found:?}");
        found.first().copied()
    }

    /// The session id of the `connect.sid` `Set-Cookie`, verified against [`SECRET`].
    /// Panics when there is no such cookie or its signature is wrong.
    pub fn sid(&self) -> String {
        self.sid_signed_by(SECRET)
    }

    /// The session id of the `connect.sid` `Set-Cookie`, verified against `secret`.
    /// Panics when there is no such cookie or its signature is wrong.
    pub fn sid_signed_by(&self, secret: &str) -> String {
        let c = self
            .session_cookie()
            .unwrap_or_else(|| panic!("no session Set-Cookie in {self:?}"));
        SetCookie::parse(c)
            .session_id(&[secret])
            .unwrap_or_else(|| panic!("Set-Cookie not signed with {secret:?}: {c}"))
    }

    /// `name=value` of the session cookie, ready for a `Cookie` header.
    pub fn cookie_pair(&self) -> String {
        let c = self
            .session_cookie()
            .unwrap_or_else(|| panic!("no session Set-Cookie in {self:?}"));
        c.split(';').next().unwrap_or_default().to_owned()
    }
}

/// Sends `GET path` to `addr` with an optional `Cookie` header and extra headers. Panics
/// when the server does not answer within 10 s.
pub async fn send(
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut req = Request::get(format!("http://{addr}{path}"));
    if let Some(c) = cookie {
        req = req.header(http::header::COOKIE, c);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Empty::<Bytes>::new()).expect("request");
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let exchange = async {
        let res = client.request(req).await.expect("request failed");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        (parts, body)
    };
    let (parts, body) = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path}: no response within 10 s"));
    Resp {
        status: parts.status,
        set_cookies: parts
            .headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("ascii Set-Cookie").to_owned())
            .collect(),
        body: String::from_utf8(body.to_vec()).expect("utf-8 body"),
        headers: parts.headers,
    }
}

/// `GET path` with an optional `Cookie` header.
pub async fn get_with(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Resp {
    send(addr, path, cookie, &[]).await
}

/// Starts a session by `GET /set/user` and returns its id and its `Cookie` header.
pub async fn login(addr: SocketAddr) -> (String, String) {
    let r = get_with(addr, "/set/user", None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let id = r.sid();
    assert_eq!(
        r.body, id,
        "the handler saw another id than the cookie carries"
    );
    (id, r.cookie_pair())
}

// ---------------------------------------------------------------------------------------
// Cookies
// ---------------------------------------------------------------------------------------

/// A tiny cookie jar: keeps `name=value` of every `Set-Cookie`, the latest winning.
#[derive(Debug, Default, Clone)]
pub struct Jar(Vec<(String, String)>);

impl Jar {
    pub fn update(&mut self, resp: &Resp) {
        for c in &resp.set_cookies {
            let sc = SetCookie::parse(c);
            match self.0.iter_mut().find(|(n, _)| *n == sc.name) {
                Some(slot) => slot.1 = sc.value,
                None => self.0.push((sc.name, sc.value)),
            }
        }
    }

    /// The `Cookie` header to send, if the jar holds anything.
    pub fn header(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let pairs: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        Some(pairs.join("; "))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed `Set-Cookie` value: the (still encoded) value and the attributes in order.
#[derive(Debug, Clone, PartialEq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Every attribute as sent, e.g. `["Path=/", "HttpOnly"]`.
    pub attrs: Vec<String>,
}

impl SetCookie {
    pub fn parse(s: &str) -> Self {
        let mut parts = s.split("; ");
        let pair = parts.next().unwrap_or_default();
        let (name, value) = pair.split_once('=').expect("name=value");
        SetCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            attrs: parts.map(str::to_owned).collect(),
        }
    }

    /// The attribute names in order (`Expires=...` gives `Expires`).
    pub fn attr_names(&self) -> Vec<&str> {
        self.attrs
            .iter()
            .map(|a| a.split('=').next().unwrap_or_default())
            .collect()
    }

    /// The value of `Name=value`, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find_map(|a| {
            let (n, v) = a.split_once('=')?;
            (n == name).then_some(v)
        })
    }

    /// Whether the flag attribute (`HttpOnly`, `Secure`, `Partitioned`) is present.
    pub fn has(&self, flag: &str) -> bool {
        self.attrs.iter().any(|a| a == flag)
    }

    /// `Expires` in ms since the epoch.
    pub fn expires_ms(&self) -> Option<i64> {
        self.attr("Expires").map(parse_http_date)
    }

    /// The session id the value carries when signed by one of `secrets`.
    pub fn session_id(&self, secrets: &[&str]) -> Option<String> {
        let secrets = Secrets::new(secrets).expect("secrets");
        let decoded = sessile::cookie::decode(&self.value);
        sessile::signing::session_id(&decoded, &secrets).map(str::to_owned)
    }
}

/// The encoded session cookie value for `id` signed with `secret` (`s%3A<id>.<sig>`).
pub fn signed_value(id: &str, secret: &str) -> String {
    let secrets = Secrets::new([secret]).expect("secret");
    sessile::cookie::encode(&sessile::signing::cookie_value(id, &secrets)).into_owned()
}

/// `connect.sid=<signed value>` for a `Cookie` header.
pub fn cookie_for(id: &str, secret: &str) -> String {
    format!("{NAME}={}", signed_value(id, secret))
}

// ---------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------

/// The crate's clock (the system clock, plus the test clock's offset where a test moved it).
pub fn now_ms() -> i64 {
    sessile::clock::now_ms()
}

/// Parses `Thu, 01 Jan 1970 00:00:00 GMT` (JavaScript's `toUTCString`), checking the
/// weekday too. Panics on any other form.
pub fn parse_http_date(s: &str) -> i64 {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    fn bad<T>(s: &str) -> T {
        panic!("not a JavaScript UTC date: {s:?}")
    }
    let f: Vec<&str> = s.split(' ').collect();
    if f.len() != 6 || f[5] != "GMT" || f[1].len() != 2 || f[3].len() != 4 || f[4].len() != 8 {
        return bad(s);
    }
    let weekday = f[0].strip_suffix(',').unwrap_or_else(|| bad(s));
    let day: i64 = f[1].parse().unwrap_or_else(|_| bad(s));
    let month = MONTHS
        .iter()
        .position(|m| *m == f[2])
        .unwrap_or_else(|| bad(s)) as i64
        + 1;
    let year: i64 = f[3].parse().unwrap_or_else(|_| bad(s));
    let hms: Vec<i64> = f[4]
        .split(':')
        .map(|x| x.parse().unwrap_or_else(|_| bad(s)))
        .collect();
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    assert_eq!(
        weekday,
        DAYS[days.rem_euclid(7) as usize],
        "wrong weekday in {s:?}"
    );
    ((days * 86_400) + hms[0] * 3600 + hms[1] * 60 + hms[2]) * 1000
}

/// Asserts `actual` is within `slack_ms` of `expected` (both ms since the epoch).
pub fn assert_near(actual: i64, expected: i64, slack_ms: i64, what: &str) {
    assert!(
        (actual - expected).abs() <= slack_ms,
        "{what}: {actual} is not within {slack_ms} ms of {expected} (off by {} ms)",
        actual - expected
    );
}

// ---------------------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------------------

/// The application fields of a stored record.
pub fn fields(record: &Record) -> Map<String, Value> {
    record.data.to_map().expect("stored data is a JSON object")
}

/// A record with these fields and cookie, for writing straight into a store.
pub fn record(fields: Value, cookie: CookieRecord) -> Record {
    let map = fields.as_object().expect("fields object").clone();
    Record {
        cookie,
        data: sessile::Data::from_map(&map),
    }
}

/// The store every layer test uses: an [`EmbeddedStore`] that logs each call on an id as
/// `op:id` (`get`, `set`, `apply`, `touch`, `destroy`; `all`, `clear` and `len` are not
/// logged), can be told to fail chosen operations with `StoreError::Unavailable`, and can be
/// slowed down. Clones share everything.
#[derive(Clone, Default)]
pub struct SpyStore {
    inner: EmbeddedStore,
    log: Arc<Mutex<Vec<String>>>,
    failing: Arc<Mutex<Vec<&'static str>>>,
    delay: Arc<Mutex<Duration>>,
    /// `true` while writes are held (see [`SpyStore::hold_writes`]).
    held: Arc<tokio::sync::watch::Sender<bool>>,
}

impl SpyStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every logged call since the last [`take_calls`](Self::take_calls).
    pub fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Every logged call, clearing the log.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    /// Makes `op` (`get`, `set`, `apply`, `touch`, `destroy`) fail from now on.
    pub fn fail(&self, op: &'static str) {
        self.failing.lock().unwrap().push(op);
    }

    /// Makes every operation work again.
    pub fn heal(&self) {
        self.failing.lock().unwrap().clear();
    }

    /// Every write (`set`, `apply`, `touch`, `destroy`) sleeps this long first.
    pub fn slow_writes(&self, d: Duration) {
        *self.delay.lock().unwrap() = d;
    }

    /// Holds every write (`set`, `apply`, `touch`, `destroy`) from now on: each is logged,
    /// then waits until [`release_writes`](Self::release_writes). With
    /// [`wait_for_calls`](Self::wait_for_calls) this orders events without sleeping.
    pub fn hold_writes(&self) {
        self.held.send_replace(true);
    }

    /// Lets the held writes (and every later one) go on.
    pub fn release_writes(&self) {
        self.held.send_replace(false);
    }

    /// Waits until the logged calls satisfy `cond`, for at most 30 s (then panics naming
    /// `what`, with the calls).
    pub async fn wait_for_calls(&self, what: &str, cond: impl Fn(&[String]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let calls = self.calls();
            if cond(&calls) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within 30 s; calls: {calls:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The number of logged writes (every call but `get`).
    pub fn writes(calls: &[String]) -> usize {
        calls.iter().filter(|c| !c.starts_with("get:")).count()
    }

    /// The live record under `id`, read without logging.
    pub async fn record(&self, id: &str) -> Option<Record> {
        self.inner.get(id).await.expect("embedded store get")
    }

    /// Writes a record straight into the store, without logging.
    pub async fn put(&self, id: &str, record: &Record) {
        self.inner
            .set(id, record)
            .await
            .expect("embedded store set");
    }

    /// Destroys a record straight in the store, without logging or delay.
    pub async fn remove(&self, id: &str) {
        self.inner
            .destroy(id)
            .await
            .expect("embedded store destroy");
    }

    /// The ids of every live record.
    pub async fn ids(&self) -> Vec<String> {
        self.inner
            .all()
            .await
            .expect("embedded store all")
            .into_keys()
            .collect()
    }

    async fn enter(&self, op: &'static str, sid: &str) -> Result<(), StoreError> {
        self.log.lock().unwrap().push(format!("{op}:{sid}"));
        if op != "get" {
            let mut held = self.held.subscribe();
            // The sender lives as long as the store: the wait ends only by a release.
            let _ = held.wait_for(|h| !*h).await;
            let d = *self.delay.lock().unwrap();
            if !d.is_zero() {
                tokio::time::sleep(d).await;
            }
        }
        if self.failing.lock().unwrap().contains(&op) {
            return Err(StoreError::Unavailable(format!("{op} is down")));
        }
        Ok(())
    }
}

#[async_trait]
impl SessionStore for SpyStore {
    async fn get(&self, sid: &str) -> Result<Option<Record>, StoreError> {
        self.enter("get", sid).await?;
        self.inner.get(sid).await
    }

    async fn set(&self, sid: &str, record: &Record) -> Result<(), StoreError> {
        self.enter("set", sid).await?;
        self.inner.set(sid, record).await
    }

    async fn create(&self, sid: &str, record: &Record) -> Result<Created, StoreError> {
        self.enter("create", sid).await?;
        self.inner.create(sid, record).await
    }

    async fn apply(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError> {
        self.enter("apply", sid).await?;
        self.inner.apply(sid, changes).await
    }

    async fn destroy(&self, sid: &str) -> Result<(), StoreError> {
        self.enter("destroy", sid).await?;
        self.inner.destroy(sid).await
    }

    async fn touch(&self, sid: &str, cookie: &CookieRecord) -> Result<(), StoreError> {
        self.enter("touch", sid).await?;
        self.inner.touch(sid, cookie).await
    }

    async fn all(&self) -> Result<BTreeMap<String, Record>, StoreError> {
        self.inner.all().await
    }

    async fn clear(&self) -> Result<(), StoreError> {
        self.inner.clear().await
    }

    async fn len(&self) -> Result<usize, StoreError> {
        self.inner.len().await
    }
}

// ---------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------

type Res = Result<String, sessile::Error>;

/// The routes every test can use. Each answers with plain text:
///
/// | route                 | does                                             | answers          |
/// |-----------------------|--------------------------------------------------|------------------|
/// | `/`                   | nothing (no extractor)                           | `ok`             |
/// | `/id`                 | reads the session, changes nothing               | id               |
/// | `/maybe`              | `Option<Session>`                                | id or `none`     |
/// | `/set/{key}`          | `insert(key, true)`                              | id               |
/// | `/put/{key}/{value}`  | `insert(key, value)`                             | id               |
/// | `/get/{key}`          | `get_value(key)`                                 | JSON or `null`   |
/// | `/data`               | `data()`                                         | JSON object      |
/// | `/remove/{key}`       | `remove(key)`                                    | old JSON or none |
/// | `/clear`              | `clear()`                                        | id               |
/// | `/unset`              | `insert("dropped", true)`, then `unset()`        | `unset`          |
/// | `/destroy`            | `destroy()`                                      | `destroyed`      |
/// | `/regenerate`         | `regenerate()`                                   | new id           |
/// | `/cycle`              | `cycle_id()`                                     | new id           |
/// | `/touch`              | `touch()`                                        | maxAge before/after |
/// | `/cookie`             | reads maxAge, originalMaxAge, expires            | JSON             |
/// | `/max-age/{ms}`       | `set_max_age_ms` (`null` for none)               | id               |
pub fn routes() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/id", get(id))
        .route("/maybe", get(maybe))
        .route("/set/{key}", get(set))
        .route("/put/{key}/{value}", get(put))
        .route("/get/{key}", get(get_key))
        .route("/data", get(data))
        .route("/remove/{key}", get(remove))
        .route("/clear", get(clear))
        .route("/unset", get(unset))
        .route("/destroy", get(destroy))
        .route("/regenerate", get(regenerate))
        .route("/cycle", get(cycle))
        .route("/touch", get(touch))
        .route("/cookie", get(cookie_info))
        .route("/max-age/{ms}", get(max_age))
}

fn sid(s: &Session) -> String {
    s.id().unwrap_or_else(|| "none".into())
}

async fn id(s: Session) -> String {
    sid(&s)
}

async fn maybe(s: Option<Session>) -> String {
    s.map_or_else(|| "none".into(), |s| sid(&s))
}

async fn set(s: Session, Path(key): Path<String>) -> Res {
    s.insert(&key, true)?;
    Ok(sid(&s))
}

async fn put(s: Session, Path((key, value)): Path<(String, String)>) -> Res {
    s.insert(&key, value)?;
    Ok(sid(&s))
}

async fn get_key(s: Session, Path(key): Path<String>) -> Res {
    Ok(s.get_value(&key)?.unwrap_or(Value::Null).to_string())
}

async fn data(s: Session) -> Res {
    Ok(Value::Object(s.data()?).to_string())
}

async fn remove(s: Session, Path(key): Path<String>) -> Res {
    Ok(s.remove(&key)?
        .map_or_else(|| "none".into(), |v| v.to_string()))
}

async fn clear(s: Session) -> Res {
    s.clear()?;
    Ok(sid(&s))
}

async fn unset(s: Session) -> Res {
    s.insert("dropped", true)?;
    s.unset();
    Ok("unset".into())
}

async fn destroy(s: Session) -> Res {
    s.destroy().await?;
    Ok("destroyed".into())
}

async fn regenerate(s: Session) -> Res {
    s.regenerate().await?;
    Ok(sid(&s))
}

async fn cycle(s: Session) -> Res {
    s.cycle_id().await?;
    Ok(sid(&s))
}

async fn touch(s: Session) -> Res {
    let before = s.max_age_ms()?;
    s.touch()?;
    let after = s.max_age_ms()?;
    Ok(json!({ "before": before, "after": after }).to_string())
}

async fn cookie_info(s: Session) -> Res {
    let expires = s.expires()?.map(|t| {
        t.duration_since(UNIX_EPOCH)
            .expect("expiry after 1970")
            .as_millis() as i64
    });
    Ok(json!({
        "maxAge": s.max_age_ms()?,
        "maxAgeDuration": s.max_age()?.map(|d| d.as_millis() as u64),
        "originalMaxAge": s.original_max_age_ms()?,
        "expires": expires,
    })
    .to_string())
}

async fn max_age(s: Session, Path(ms): Path<String>) -> Res {
    let ms = if ms == "null" {
        None
    } else {
        Some(ms.parse::<i64>().expect("ms"))
    };
    s.set_max_age_ms(ms)?;
    Ok(sid(&s))
}

/// Parses a handler's JSON answer.
pub fn json_body(r: &Resp) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", r.body))
}
