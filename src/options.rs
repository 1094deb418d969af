//! The layer's options, under express-session's names.
//!
//! | express option        | here                                             |
//! |-----------------------|--------------------------------------------------|
//! | `cookie`              | [`CookieOptions`], or a per-request function      |
//! | `genid`               | `SessionLayerBuilder::genid`                      |
//! | `name`                | `SessionLayerBuilder::name`                       |
//! | `proxy`               | [`Proxy`]                                         |
//! | `resave`              | `SessionLayerBuilder::resave`                     |
//! | `rolling`             | `SessionLayerBuilder::rolling`                    |
//! | `saveUninitialized`   | `SessionLayerBuilder::save_uninitialized`         |
//! | `secret`              | `SessionLayerBuilder::secret` / `secrets`          |
//! | `store`               | `SessionLayerBuilder::store`                      |
//! | `unset`               | [`Unset`]                                         |

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock;
use crate::id::RequestHead;
use crate::record::{CookieRecord, Priority, SameSite};

/// `cookie.secure`.
///
/// ```
/// use sessile::{CookieOptions, Secure};
///
/// // `Secure` on HTTPS requests, not on plain HTTP ones (see `Proxy` behind a proxy).
/// let cookie = CookieOptions::new().secure(Secure::Auto);
/// assert_eq!(cookie.get_secure(), Secure::Auto);
/// assert_eq!(CookieOptions::new().get_secure(), Secure::Unset);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Secure {
    /// Not given (express leaves `secure` undefined): the cookie is not `Secure`.
    #[default]
    Unset,
    /// `secure: false`.
    Off,
    /// `secure: true`: the cookie is only sent over HTTPS. Over plain HTTP the session is still
    /// saved but no `Set-Cookie` is sent.
    On,
    /// `secure: "auto"`: `Secure` when the request is (see [`Proxy`]).
    Auto,
}

/// `cookie.sameSite`.
///
/// ```
/// use sessile::{CookieOptions, SameSiteOption};
///
/// let cookie = CookieOptions::new().same_site(SameSiteOption::Lax);
/// assert_ne!(cookie, CookieOptions::new());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSiteOption {
    /// `sameSite: false` or not given: no attribute.
    #[default]
    Off,
    /// `sameSite: true`: `SameSite=Strict`.
    True,
    /// `sameSite: "lax"`.
    Lax,
    /// `sameSite: "strict"`.
    Strict,
    /// `sameSite: "none"`.
    None,
    /// `sameSite: "auto"`: `None` on secure requests, `Lax` otherwise.
    Auto,
}

/// `proxy`: whether `X-Forwarded-Proto` decides if a request is secure.
///
/// ```
/// // Behind a TLS-terminating proxy that sets `X-Forwarded-Proto: https`:
/// let layer = sessile::SessionLayer::builder()
///     .secret("s")
///     .proxy(sessile::Proxy::Trust)
///     .cookie(sessile::CookieOptions::new().secure(sessile::Secure::On))
///     .build();
/// assert!(layer.is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Proxy {
    /// `proxy: true`: trust the first value of `X-Forwarded-Proto`.
    Trust,
    /// `proxy: false`: only a direct TLS connection is secure.
    Ignore,
    /// `proxy` undefined (the default): defer to the application's own trust setting,
    /// `SessionLayerBuilder::trust_proxy` (express's `app.set('trust proxy')`), or to an
    /// [`IsSecure`] extension the application put on the request.
    #[default]
    Default,
}

/// `unset`: what `Session::unset` (express's `req.session = null`) does.
///
/// ```
/// let layer = sessile::SessionLayer::builder()
///     .secret("s")
///     .unset(sessile::Unset::Destroy)
///     .build();
/// assert!(layer.is_ok());
/// assert_eq!(sessile::Unset::default(), sessile::Unset::Keep);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unset {
    /// `'keep'` (the default): the stored session stays, this request's changes are dropped.
    #[default]
    Keep,
    /// `'destroy'`: the stored session is destroyed when the response ends.
    Destroy,
}

/// A request extension telling the layer whether the connection is secure, for servers that
/// terminate TLS themselves (`req.connection.encrypted` in Node) or decide proxy trust their
/// own way (express's `req.secure`).
///
/// ```
/// use axum::{body::Body, routing::get, Router};
/// use sessile::{CookieOptions, IsSecure, Secure, Session, SessionLayer};
/// use tower::ServiceExt as _;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = SessionLayer::builder()
///     .secret("s")
///     .cookie(CookieOptions::new().secure(Secure::On))
///     .build()
///     .unwrap();
/// let app = Router::new()
///     .route("/", get(|s: Session| async move { s.insert("n", 1).unwrap() }))
///     .layer(layer);
/// // This server terminated TLS itself: it says so on the request.
/// let mut req = http::Request::get("/").body(Body::empty()).unwrap();
/// req.extensions_mut().insert(IsSecure(true));
/// let res = app.oneshot(req).await.unwrap();
/// let set_cookie = res.headers()["set-cookie"].to_str().unwrap();
/// assert!(set_cookie.ends_with("; HttpOnly; Secure"));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsSecure(pub bool);

/// The session cookie's options (express's `cookie` option).
///
/// ```
/// use std::time::Duration;
/// use sessile::{CookieOptions, SameSiteOption, Secure};
///
/// let cookie = CookieOptions::new()
///     .max_age(Duration::from_secs(3600))
///     .secure(Secure::Auto)
///     .same_site(SameSiteOption::Lax);
/// assert_eq!(cookie.get_path(), "/");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieOptions {
    path: Arc<str>,
    domain: Option<Arc<str>>,
    http_only: bool,
    secure: Secure,
    lifetime: Lifetime,
    same_site: SameSiteOption,
    partitioned: Option<bool>,
    priority: Option<Priority>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifetime {
    Session,
    MaxAge(i64),
    Expires(i64),
}

impl Default for CookieOptions {
    fn default() -> Self {
        CookieOptions {
            path: Arc::from("/"),
            domain: None,
            http_only: true,
            secure: Secure::Unset,
            lifetime: Lifetime::Session,
            same_site: SameSiteOption::Off,
            partitioned: None,
            priority: None,
        }
    }
}

impl CookieOptions {
    /// express's defaults: `{ path: '/', httpOnly: true, secure: undefined, maxAge: null }`.
    ///
    /// ```
    /// let c = sessile::CookieOptions::new();
    /// assert_eq!((c.get_path(), c.get_max_age_ms()), ("/", None));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// `cookie.path` (default `/`). Requests whose path does not start with it get no session.
    ///
    /// ```
    /// let c = sessile::CookieOptions::new().path("/app");
    /// assert_eq!(c.get_path(), "/app");
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Arc::from(path.into());
        self
    }

    /// `cookie.domain`.
    ///
    /// ```
    /// let c = sessile::CookieOptions::new().domain("example.com");
    /// ```
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(Arc::from(domain.into()));
        self
    }

    /// `cookie.httpOnly` (default `true`).
    ///
    /// ```
    /// let c = sessile::CookieOptions::new().http_only(false);
    /// ```
    pub fn http_only(mut self, on: bool) -> Self {
        self.http_only = on;
        self
    }

    /// `cookie.secure`.
    ///
    /// ```
    /// let c = sessile::CookieOptions::new().secure(sessile::Secure::On);
    /// ```
    pub fn secure(mut self, secure: Secure) -> Self {
        self.secure = secure;
        self
    }

    /// `cookie.maxAge`: the cookie and the session live this long after the last request
    /// that touched them. Replaces an earlier `expires`.
    ///
    /// ```
    /// let c = sessile::CookieOptions::new().max_age(std::time::Duration::from_secs(60));
    /// ```
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.lifetime = Lifetime::MaxAge(max_age.as_millis().min(i64::MAX as u128) as i64);
        self
    }

    /// `cookie.maxAge` in milliseconds, express's unit; `None` is `maxAge: null`, a
    /// browser-session cookie.
    ///
    /// ```
    /// let c = sessile::CookieOptions::new().max_age_ms(Some(60_000));
    /// ```
    pub fn max_age_ms(mut self, ms: Option<i64>) -> Self {
        self.lifetime = ms.map_or(Lifetime::Session, Lifetime::MaxAge);
        self
    }

    /// `cookie.expires`: a fixed expiry instant. Replaces an earlier `max_age`; express
    /// advises `maxAge` instead.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// let c = sessile::CookieOptions::new().expires(SystemTime::now() + Duration::from_secs(60));
    /// ```
    pub fn expires(mut self, at: SystemTime) -> Self {
        let ms = match at.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_millis().min(clock::MAX_MS as u128) as i64,
            Err(_) => 0,
        };
        self.lifetime = Lifetime::Expires(ms);
        self
    }

    /// `cookie.sameSite`.
    ///
    /// ```
    /// let c = sessile::CookieOptions::new().same_site(sessile::SameSiteOption::Strict);
    /// ```
    pub fn same_site(mut self, same_site: SameSiteOption) -> Self {
        self.same_site = same_site;
        self
    }

    /// `cookie.partitioned`.
    ///
    /// ```
    /// let c = sessile::CookieOptions::new().partitioned(true);
    /// ```
    pub fn partitioned(mut self, on: bool) -> Self {
        self.partitioned = Some(on);
        self
    }

    /// `cookie.priority`.
    ///
    /// ```
    /// let c = sessile::CookieOptions::new().priority(sessile::Priority::High);
    /// ```
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// The configured path.
    ///
    /// ```
    /// assert_eq!(sessile::CookieOptions::new().path("/app").get_path(), "/app");
    /// ```
    pub fn get_path(&self) -> &str {
        &self.path
    }

    /// The `maxAge` in milliseconds, when one is set.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use sessile::CookieOptions;
    ///
    /// let c = CookieOptions::new().max_age(Duration::from_secs(60));
    /// assert_eq!(c.get_max_age_ms(), Some(60_000));
    /// // A fixed `expires` is no `maxAge`.
    /// let c = c.expires(SystemTime::now() + Duration::from_secs(60));
    /// assert_eq!(c.get_max_age_ms(), None);
    /// ```
    pub fn get_max_age_ms(&self) -> Option<i64> {
        match self.lifetime {
            Lifetime::MaxAge(ms) => Some(ms),
            _ => None,
        }
    }

    /// The configured `secure`.
    ///
    /// ```
    /// use sessile::{CookieOptions, Secure};
    /// assert_eq!(CookieOptions::new().secure(Secure::On).get_secure(), Secure::On);
    /// ```
    pub fn get_secure(&self) -> Secure {
        self.secure
    }

    /// The cookie a new session starts with (`new Cookie(options)` plus the `"auto"`
    /// resolutions against `secure`, whether this request is secure).
    pub(crate) fn new_record(&self, secure: bool) -> CookieRecord {
        let now = clock::now_ms();
        let (expires, original_max_age) = match self.lifetime {
            Lifetime::Session => (None, None),
            Lifetime::MaxAge(ms) => (
                clock::js_date(now.saturating_add(ms)).map(|e| e.min(clock::MAX_MS)),
                Some(ms),
            ),
            Lifetime::Expires(at) => (Some(at), Some(at - now)),
        };
        CookieRecord {
            original_max_age,
            expires,
            secure: match self.secure {
                Secure::Unset => None,
                Secure::Off => Some(false),
                Secure::On => Some(true),
                Secure::Auto => Some(secure),
            },
            http_only: self.http_only,
            domain: self.domain.clone(),
            path: self.path.clone(),
            same_site: match self.same_site {
                SameSiteOption::Off => None,
                SameSiteOption::True => Some(SameSite::True),
                SameSiteOption::Lax => Some(SameSite::Lax),
                SameSiteOption::Strict => Some(SameSite::Strict),
                SameSiteOption::None => Some(SameSite::None),
                SameSiteOption::Auto => Some(if secure {
                    SameSite::None
                } else {
                    SameSite::Lax
                }),
            },
            partitioned: self.partitioned,
            priority: self.priority,
        }
    }
}

/// Where the cookie options come from: fixed, or computed per request (express 1.19's
/// `cookie: function (req) { ... }`).
#[derive(Clone)]
pub(crate) enum CookieSource {
    Fixed(CookieOptions),
    PerRequest(Arc<dyn Fn(&RequestHead) -> CookieOptions + Send + Sync>),
}

impl CookieSource {
    /// The options for a request. `head` is kept whenever a per-request function is set
    /// (see `Config::keeps_head`); without one the function sees an empty GET request.
    pub(crate) fn resolve(&self, head: Option<&RequestHead>) -> Cow<'_, CookieOptions> {
        match (self, head) {
            (CookieSource::Fixed(c), _) => Cow::Borrowed(c),
            (CookieSource::PerRequest(f), Some(h)) => Cow::Owned(f(h)),
            (CookieSource::PerRequest(f), None) => Cow::Owned(f(&RequestHead {
                method: http::Method::GET,
                uri: http::Uri::default(),
                headers: http::HeaderMap::new(),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_record_resolves_auto_and_lifetime() {
        let c = CookieOptions::new()
            .max_age_ms(Some(1000))
            .secure(Secure::Auto)
            .same_site(SameSiteOption::Auto);
        let r = c.new_record(true);
        assert_eq!(r.secure, Some(true));
        assert_eq!(r.same_site, Some(SameSite::None));
        assert_eq!(r.original_max_age, Some(1000));
        let r = c.new_record(false);
        assert_eq!(r.secure, Some(false));
        assert_eq!(r.same_site, Some(SameSite::Lax));
        let r = CookieOptions::new().new_record(true);
        assert_eq!(
            (r.expires, r.original_max_age, r.secure),
            (None, None, None)
        );
    }
}
