//! The tower [`Layer`](tower_layer::Layer): express-session's middleware.
//!
//! The data's path, one request:
//! 1. `service`: the request comes in; the path is checked against `cookie.path`, with the
//!    cookie options resolved once for the request.
//! 2. The `Cookie` header is read and its signature verified by the session cookie's codec
//!    (`SessionCookie`, over [`crate::cookie`] and [`crate::signing`]); a bad cookie
//!    counts as no cookie.
//! 3. The record is loaded from the store, or a new session generated ([`crate::session`]).
//! 4. The handler runs with the [`Session`] in the request's extensions.
//! 5. The session is committed to the store; a store failure turns the response into the
//!    error handler's response.
//! 6. The codec writes `Set-Cookie` for the id and cookie the commit decided to send, and
//!    the response goes out.

use std::sync::Arc;

use crate::config::Config;
use crate::error::{ConfigError, Error};
use crate::id::{GenId, RequestHead};
use crate::options::{CookieOptions, CookieSource, Proxy, Unset};
use crate::record::CookieRecord;
use crate::session::Session;
use crate::session_cookie::SessionCookie;
use crate::signing::Secrets;
use crate::store::embedded::EmbeddedStore;
use crate::store::SessionStore;

pub(crate) mod lifetime;
mod on_error;
mod service;
pub(crate) mod strict;

pub use lifetime::MaxLifetime;
pub(crate) use on_error::{internal_server_error, original_uri};
pub use on_error::{ErrorBody, ErrorHandler, IntoErrorResponse, RequestLine};
pub use service::{ResponseBody, ResponseFuture, SessionService};
pub use strict::{LayerStats, UnknownId, UnknownIdKind};

/// The longest [`SessionLayerBuilder::renew_grace`] accepted: a minute.
///
/// ```
/// assert_eq!(sessile::MAX_RENEW_GRACE.as_secs(), 60);
/// ```
pub const MAX_RENEW_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// The session middleware. Build it with [`SessionLayer::builder`].
///
/// ```
/// use axum::{routing::get, Router};
/// use sessile::{Session, SessionLayer};
///
/// async fn views(session: Session) -> Result<String, sessile::Error> {
///     let n: u64 = session.get("views")?.unwrap_or(0) + 1;
///     session.insert("views", n)?;
///     Ok(format!("{n} views"))
/// }
///
/// let layer = SessionLayer::builder().secret("keyboard cat").build().unwrap();
/// let app: Router = Router::new().route("/", get(views)).layer(layer);
/// ```
#[derive(Clone)]
pub struct SessionLayer {
    config: Arc<Config>,
}

impl SessionLayer {
    /// Starts a builder with this crate's defaults: `name = "connect.sid"`,
    /// `resave = false`, `saveUninitialized = false`, `rolling = false`, `unset = keep`,
    /// an in-memory [`EmbeddedStore`], and express's cookie defaults.
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder().secret("keyboard cat").build();
    /// assert!(layer.is_ok());
    /// // A secret is required.
    /// assert!(sessile::SessionLayer::builder().build().is_err());
    /// ```
    pub fn builder() -> SessionLayerBuilder {
        SessionLayerBuilder::default()
    }

    /// The store sessions are kept in.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::StoreError> {
    /// let layer = sessile::SessionLayer::builder().secret("s").build().unwrap();
    /// // The application can read sessions beside the layer, e.g. for an admin page.
    /// assert!(layer.store().get("no such id").await?.is_none());
    /// # Ok(()) }
    /// ```
    pub fn store(&self) -> Arc<dyn SessionStore> {
        self.config.store.clone()
    }

    /// The layer's counters since it was built: cookies with a bad signature, validly
    /// signed ids the store did not know, sessions ended by `max_lifetime`, old ids
    /// resolved by `renew_grace`.
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder().secret("s").build().unwrap();
    /// assert_eq!(layer.stats(), sessile::LayerStats::default());
    /// ```
    pub fn stats(&self) -> LayerStats {
        self.config.counters.snapshot()
    }

    /// A session outside any request, as a request without a cookie starts it, over this
    /// layer's store and options: what the examples of [`Session`]'s methods run on. No
    /// layer commits it; [`Session::save`] writes it.
    #[doc(hidden)]
    pub fn detached_session(&self) -> Result<Session, Error> {
        let options = self.config.cookie.resolve(None);
        Session::generate(self.config.clone(), None, &options, false, None)
    }
}

/// The rules of a `__Host-`/`__Secure-` cookie name against fixed cookie options: `secure`
/// must be `On` (`Auto` would send the cookie without `Secure` over plain HTTP).
fn check_prefix(name: &str, c: &CookieOptions) -> Result<(), ConfigError> {
    crate::cookie::check_prefix(name, &c.new_record(true)).map_err(ConfigError)?;
    let prefixed = crate::cookie::check_prefix(name, &CookieRecord::default()).is_err();
    if prefixed && c.get_secure() != crate::options::Secure::On {
        // `Auto` passed above as for a secure request.
        return Err(ConfigError(format!(
            "a cookie named {name:?} must be Secure: set secure to Secure::On, not Auto \
             (a plain HTTP request would get it without Secure, and browsers drop it)"
        )));
    }
    Ok(())
}

impl<S> tower_layer::Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, self.config.clone())
    }
}

/// Options for [`SessionLayer`], under express-session's names.
#[must_use]
pub struct SessionLayerBuilder {
    store: Option<Arc<dyn SessionStore>>,
    secrets: Vec<Vec<u8>>,
    name: String,
    cookie: CookieSource,
    genid: Option<GenId>,
    proxy: Proxy,
    trust_proxy: bool,
    resave: bool,
    rolling: bool,
    touch_after: Option<std::time::Duration>,
    max_sessions_per_owner: Option<usize>,
    save_uninitialized: bool,
    unset: Unset,
    on_error: Option<ErrorHandler>,
    max_lifetime: Option<MaxLifetime>,
    renew_grace: Option<std::time::Duration>,
    on_unknown_id: Option<strict::UnknownIdHook>,
}

impl Default for SessionLayerBuilder {
    fn default() -> Self {
        SessionLayerBuilder {
            store: None,
            secrets: Vec::new(),
            name: "connect.sid".into(),
            cookie: CookieSource::Fixed(CookieOptions::default()),
            genid: None,
            proxy: Proxy::Default,
            trust_proxy: false,
            resave: false,
            rolling: false,
            touch_after: None,
            max_sessions_per_owner: None,
            save_uninitialized: false,
            unset: Unset::Keep,
            on_error: None,
            max_lifetime: None,
            renew_grace: None,
            on_unknown_id: None,
        }
    }
}

impl SessionLayerBuilder {
    /// `secret`: the secret that signs and verifies the cookie. Required (this or
    /// [`secrets`](Self::secrets)).
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder().secret("keyboard cat").build();
    /// assert!(layer.is_ok());
    /// ```
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secrets = vec![secret.as_ref().to_vec()];
        self
    }

    /// `secret: [...]`: several secrets; the first signs, all verify. Rotate a secret by
    /// putting the new one first and keeping the old one until its cookies have expired.
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder().secrets(["new secret", "old secret"]).build();
    /// assert!(layer.is_ok());
    /// ```
    pub fn secrets<I, S>(mut self, secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.secrets = secrets.into_iter().map(|s| s.as_ref().to_vec()).collect();
        self
    }

    /// `store`: where sessions live (default: an in-memory [`EmbeddedStore`]).
    ///
    /// ```
    /// let store = sessile::EmbeddedStore::new();
    /// let layer = sessile::SessionLayer::builder().secret("s").store(store).build();
    /// ```
    pub fn store(mut self, store: impl SessionStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// `store`, given as a shared handle (for a store the application also uses directly).
    ///
    /// ```
    /// use std::sync::Arc;
    /// let store = Arc::new(sessile::EmbeddedStore::new());
    /// let layer = sessile::SessionLayer::builder().secret("s").store_arc(store.clone()).build();
    /// ```
    pub fn store_arc(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// `name`: the cookie's name (default `connect.sid`).
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder().secret("s").name("app.sid").build();
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// `cookie`: the cookie's options.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = sessile::SessionLayer::builder()
    ///     .secret("s")
    ///     .cookie(sessile::CookieOptions::new().max_age(Duration::from_secs(3600)))
    ///     .build();
    /// ```
    pub fn cookie(mut self, cookie: CookieOptions) -> Self {
        self.cookie = CookieSource::Fixed(cookie);
        self
    }

    /// `cookie: function (req) {...}`: the cookie's options computed for each request that
    /// starts a new session (and for the path check).
    ///
    /// ```
    /// use sessile::CookieOptions;
    /// let layer = sessile::SessionLayer::builder()
    ///     .secret("s")
    ///     .cookie_fn(|req| {
    ///         let admin = req.uri.path().starts_with("/admin");
    ///         CookieOptions::new().max_age_ms(Some(if admin { 600_000 } else { 86_400_000 }))
    ///     })
    ///     .build();
    /// ```
    pub fn cookie_fn(
        mut self,
        f: impl Fn(&RequestHead) -> CookieOptions + Send + Sync + 'static,
    ) -> Self {
        self.cookie = CookieSource::PerRequest(Arc::new(f));
        self
    }

    /// `genid`: makes the id of each new session from the request. Ids must be unique and
    /// unguessable; the default (24 random bytes, base64url) is both.
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder()
    ///     .secret("s")
    ///     .genid(|_req| format!("app-{}", sessile::id::generate().unwrap()))
    ///     .build();
    /// ```
    pub fn genid(mut self, f: impl Fn(&RequestHead) -> String + Send + Sync + 'static) -> Self {
        self.genid = Some(Arc::new(f));
        self
    }

    /// `proxy`: whether `X-Forwarded-Proto` decides if the request is secure.
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder().secret("s").proxy(sessile::Proxy::Trust).build();
    /// ```
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = proxy;
        self
    }

    /// express's `app.set('trust proxy', true)`, consulted when `proxy` is
    /// [`Proxy::Default`]: trust `X-Forwarded-Proto`.
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder().secret("s").trust_proxy(true).build();
    /// ```
    pub fn trust_proxy(mut self, trust: bool) -> Self {
        self.trust_proxy = trust;
        self
    }

    /// `resave`: write the whole session back on every request, even unmodified (express's
    /// old default). Off (the default), unmodified sessions are only touched and modified
    /// ones get a field-level update that cannot lose a parallel request's change.
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder().secret("s").resave(true).build();
    /// ```
    pub fn resave(mut self, on: bool) -> Self {
        self.resave = on;
        self
    }

    /// `rolling`: send the cookie on every response, restarting its `maxAge` countdown.
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder().secret("s").rolling(true).build();
    /// ```
    pub fn rolling(mut self, on: bool) -> Self {
        self.rolling = on;
        self
    }

    /// Fewer store writes (off by default, so the store sees what express sends it): an
    /// unmodified session is touched in the store only when its stored expiry would move
    /// forward by `d` or more, i.e. at most once per `d` of activity, instead of on every
    /// request (one `EXPIRE` per request with Redis, one paid write per request with
    /// DynamoDB-like stores). connect-mongo calls this `touchAfter`.
    ///
    /// When the touch is due, the layer stores the session's new cookie with
    /// [`SessionStore::apply`] and no field changes (fields untouched, parallel changes kept),
    /// not with [`SessionStore::touch`]: a Redis touch moves the key's TTL only, and the next
    /// request must see the new expiry in the record to decide again.
    ///
    /// The price: a session idle past its stored expiry ends, though the browser's cookie
    /// (sent with `rolling`) may promise up to `d` more; choose `d` small against `maxAge`
    /// (a minute against a day). Browser-session cookies (no `maxAge`) are touched on every
    /// request, as without this option; a cookie changed otherwise than in its expiry is
    /// stored at once.
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder()
    ///     .secret("s")
    ///     .touch_after(std::time::Duration::from_secs(60))
    ///     .build();
    /// ```
    pub fn touch_after(mut self, d: std::time::Duration) -> Self {
        self.touch_after = Some(d);
        self
    }

    /// At most `n` sessions per owner (off by default; see
    /// [`Session::set_owner`](crate::Session::set_owner)): when a session is saved with an
    /// owner set in its request (a login), the owner's oldest sessions beyond `n` (by when
    /// their owner was set) are destroyed; the session being saved is always kept. With
    /// `n = 1`, a login signs the user's other devices out (actix-session #306). `n = 0`
    /// counts as 1.
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder()
    ///     .secret("s")
    ///     .max_sessions_per_owner(3)
    ///     .build();
    /// ```
    pub fn max_sessions_per_owner(mut self, n: usize) -> Self {
        self.max_sessions_per_owner = Some(n.max(1));
        self
    }

    /// `saveUninitialized`: store new sessions even when the handler put nothing in them
    /// (off by default: no cookie and no store write until there is something to keep).
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder().secret("s").save_uninitialized(true).build();
    /// ```
    pub fn save_uninitialized(mut self, on: bool) -> Self {
        self.save_uninitialized = on;
        self
    }

    /// `unset`: what [`Session::unset`](crate::Session::unset) does to the stored session.
    ///
    /// ```
    /// let layer = sessile::SessionLayer::builder().secret("s").unset(sessile::Unset::Destroy).build();
    /// ```
    pub fn unset(mut self, unset: Unset) -> Self {
        self.unset = unset;
        self
    }

    /// The response sent when a session operation fails in the layer: the store is down or
    /// refuses a write, a cookie cannot be written (default: `500 Internal Server Error`, a
    /// generic body, no `Set-Cookie`; the error goes to `tracing`). The function gets the
    /// error and the request's [`RequestLine`], and returns anything that
    /// [turns into a response](IntoErrorResponse): under the `axum` feature, any
    /// `IntoResponse`. No cookie of the handler's response is kept.
    ///
    /// One function can answer the layer's errors and a handler's own: the handler takes
    /// the [`RequestLine`] extractor and calls it on the error.
    ///
    /// ```
    /// use axum::{http::StatusCode, response::{IntoResponse, Response}, routing::get, Router};
    /// use sessile::{RequestLine, Session, SessionLayer};
    ///
    /// fn session_error(err: &sessile::Error, req: &RequestLine) -> Response {
    ///     eprintln!("{} {}: {err}", req.method(), req.path()); // or tracing::error!
    ///     (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")], "try again").into_response()
    /// }
    ///
    /// async fn views(session: Session, req: RequestLine) -> Result<String, Response> {
    ///     let n: u64 = session.get("views").map_err(|e| session_error(&e, &req))?.unwrap_or(0);
    ///     session.insert("views", n + 1).map_err(|e| session_error(&e, &req))?;
    ///     Ok(format!("{} views", n + 1))
    /// }
    ///
    /// let layer = SessionLayer::builder().secret("s").on_error(session_error).build().unwrap();
    /// let app: Router = Router::new().route("/", get(views)).layer(layer);
    /// ```
    pub fn on_error<F, R>(mut self, f: F) -> Self
    where
        F: Fn(&Error, &RequestLine) -> R + Send + Sync + 'static,
        R: IntoErrorResponse,
    {
        self.on_error = Some(Arc::new(move |err: &Error, req: &RequestLine| {
            f(err, req).into_error_response()
        }));
        self
    }

    /// An absolute timeout (off by default, as express): a session older than the limit,
    /// counted from its creation or from its last renewal, is treated as expired when it is
    /// loaded (destroyed; the request gets a new session), even if `rolling` keeps its
    /// cookie alive. OWASP suggests 4 to 8 hours for most applications.
    ///
    /// The time it counts from is kept in the record as a reserved field (docs/FORMAT.md,
    /// "Reserved keys"), set when the session is first saved. A record without it (written
    /// by a Node app sharing the store, or before this option was on) gets it at its next
    /// save, and its lifetime counts from then. With `resave`, that first stamping counts
    /// as a change: a cookie with an expiry is sent once more.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessile::MaxLifetime;
    ///
    /// let layer = sessile::SessionLayer::builder()
    ///     .secret("s")
    ///     .rolling(true)
    ///     .max_lifetime(MaxLifetime::since_created(Duration::from_secs(8 * 3600)))
    ///     .build();
    /// assert!(layer.is_ok());
    /// ```
    pub fn max_lifetime(mut self, max_lifetime: MaxLifetime) -> Self {
        self.max_lifetime = Some(max_lifetime);
        self
    }

    /// Safe renewal (off by default): when a session gets a new id
    /// ([`Session::cycle_id`](crate::Session::cycle_id),
    /// [`Session::regenerate`](crate::Session::regenerate)), its old id resolves to the new
    /// session for `grace` more, so parallel requests still carrying the old cookie (sent
    /// before the login's response arrived) read and write the new session instead of
    /// getting an empty one. After `grace` the old id is unknown.
    ///
    /// The old id's record is replaced by a redirect record that lives `grace` (reserved
    /// fields naming the new id, docs/FORMAT.md), and the new session is saved at once. A
    /// request resolved through it never gets a `Set-Cookie` for the old id. Keep `grace`
    /// short (seconds): whoever holds the old cookie holds the new session meanwhile.
    ///
    /// What it does not cover: a request that loaded the old session *before* the renewal
    /// and ends after it writes its changes to the redirect record, where they are lost
    /// (as without a grace, where the write finds no session), and may still send the old
    /// id's cookie (with `rolling`, or a change and an expiry), which then resolves to the
    /// new session until the grace ends. Every layer sharing the store follows redirects,
    /// with or without this option.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = sessile::SessionLayer::builder()
    ///     .secret("s")
    ///     .renew_grace(Duration::from_secs(10))
    ///     .build();
    /// assert!(layer.is_ok());
    /// // At most a minute.
    /// let too_long = sessile::SessionLayer::builder().secret("s").renew_grace(Duration::from_secs(61));
    /// assert!(too_long.build().is_err());
    /// ```
    pub fn renew_grace(mut self, grace: std::time::Duration) -> Self {
        self.renew_grace = Some(grace);
        self
    }

    /// Strict ids: calls `f` for every session cookie that names no session, a bad
    /// signature or a validly signed id the store does not know (the request then gets a
    /// new session, as without the hook; sessile never adopts an id it did not issue).
    /// Alert on it to catch cookie replay or a leaked secret; [`SessionLayer::stats`]
    /// counts both. `f` runs on the request's task: keep it quick.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// let forged = Arc::new(AtomicU64::new(0));
    /// let seen = forged.clone();
    /// let layer = sessile::SessionLayer::builder()
    ///     .secret("s")
    ///     .on_unknown_id(move |u| {
    ///         if u.kind == sessile::UnknownIdKind::BadSignature {
    ///             seen.fetch_add(1, Ordering::Relaxed);
    ///         }
    ///     })
    ///     .build();
    /// assert!(layer.is_ok());
    /// ```
    pub fn on_unknown_id(mut self, f: impl Fn(&UnknownId) + Send + Sync + 'static) -> Self {
        self.on_unknown_id = Some(Arc::new(f));
        self
    }

    /// Checks the options and builds the layer.
    ///
    /// ```
    /// use sessile::{CookieOptions, SessionLayer};
    ///
    /// assert!(SessionLayer::builder().secret("s").build().is_ok());
    /// assert!(SessionLayer::builder().secret("").build().is_err());
    /// assert!(SessionLayer::builder().secret("s").name("a;b").build().is_err());
    /// let smuggled = CookieOptions::new().domain("example.com; Secure");
    /// assert!(SessionLayer::builder().secret("s").cookie(smuggled).build().is_err());
    /// ```
    ///
    /// A cookie name with a `__Host-` or `__Secure-` prefix must come with the attributes the
    /// prefix demands (browsers drop the cookie otherwise): `Secure::On` for both, and for
    /// `__Host-` also path `/` and no domain.
    ///
    /// ```
    /// use sessile::{CookieOptions, Secure, SessionLayer};
    ///
    /// let secure = CookieOptions::new().secure(Secure::On);
    /// assert!(SessionLayer::builder().secret("s").name("__Host-sid").cookie(secure.clone()).build().is_ok());
    /// let err = SessionLayer::builder().secret("s").name("__Host-sid").build().err().unwrap();
    /// assert!(err.to_string().contains("must be Secure"), "{err}");
    /// let scoped = secure.domain("example.com");
    /// assert!(SessionLayer::builder().secret("s").name("__Host-sid").cookie(scoped).build().is_err());
    /// ```
    ///
    /// # Errors
    /// No secret, an empty secret, a cookie name or attribute that cannot be sent,
    /// attributes the cookie name's prefix forbids, or a `renew_grace` over
    /// [`MAX_RENEW_GRACE`].
    pub fn build(self) -> Result<SessionLayer, ConfigError> {
        let secrets = Secrets::new(&self.secrets).ok_or_else(|| {
            ConfigError("a non-empty secret is required (secret or secrets)".into())
        })?;
        if !crate::cookie::is_valid_name(&self.name) {
            return Err(ConfigError(format!("invalid cookie name {:?}", self.name)));
        }
        if let CookieSource::Fixed(c) = &self.cookie {
            crate::cookie::check(&c.new_record(false)).map_err(ConfigError)?;
            check_prefix(&self.name, c)?;
        }
        if let Some(grace) = self.renew_grace {
            if grace > MAX_RENEW_GRACE {
                return Err(ConfigError(format!(
                    "renew_grace of {grace:?} is longer than {MAX_RENEW_GRACE:?}: whoever holds \
                     an old cookie holds the renewed session that long"
                )));
            }
        }
        let store = match self.store {
            Some(s) => s,
            None => Arc::new(EmbeddedStore::new()),
        };
        Ok(SessionLayer {
            config: Arc::new(Config {
                store,
                session_cookie: SessionCookie::new(self.name, secrets),
                cookie: self.cookie,
                genid: self.genid,
                proxy: self.proxy,
                trust_proxy: self.trust_proxy,
                resave: self.resave,
                rolling: self.rolling,
                touch_after: self.touch_after,
                max_sessions_per_owner: self.max_sessions_per_owner,
                save_uninitialized: self.save_uninitialized,
                unset: self.unset,
                on_error: self.on_error,
                max_lifetime: self.max_lifetime,
                renew_grace: self.renew_grace.filter(|g| !g.is_zero()),
                on_unknown_id: self.on_unknown_id,
                counters: strict::Counters::default(),
            }),
        })
    }
}
