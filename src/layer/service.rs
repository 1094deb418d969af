//! The [`Service`] the layer wraps around the application, and its response future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body_util::Either;
use tower_service::Service;

use super::strict::{self, Counters, UnknownIdKind};
use crate::clock;
use crate::config::Config;
use crate::error::{Error, StoreError};
use crate::id::RequestHead;
use crate::options::{CookieOptions, IsSecure, Proxy};
use crate::record::Record;
use crate::session::renewal;
use crate::session::Session;
use crate::session_cookie::Read;

use super::{ErrorBody, RequestLine};

/// The response body of a [`SessionService`]: the application's body, or the error
/// handler's.
pub type ResponseBody<B> = Either<B, ErrorBody>;

/// The future of a [`SessionService`] call.
pub type ResponseFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send + 'static>>;

/// The middleware service made by [`SessionLayer`](super::SessionLayer).
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> SessionService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        SessionService { inner, config }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // The clone is not ready yet; the instance polled ready is the one that serves.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let handled = handle(inner, self.config.clone(), req);
        // A span per request, `session`, that the application's own spans nest under;
        // `loaded` is recorded once the session is loaded or made.
        #[cfg(feature = "tracing")]
        let handled = tracing::Instrument::instrument(
            handled,
            tracing::debug_span!(target: "sessile", "session", loaded = tracing::field::Empty),
        );
        Box::pin(handled)
    }
}

async fn handle<S, ReqBody, ResBody>(
    mut inner: S,
    config: Arc<Config>,
    req: Request<ReqBody>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    let (mut parts, body) = req.into_parts();
    // The request line an `on_error` handler is given and the error event names; kept only
    // when one of them can use it.
    let line = (config.on_error.is_some() || crate::events::errors_enabled())
        .then(|| RequestLine::from_parts(&parts));
    let head = config
        .keeps_head()
        .then(|| Arc::new(RequestHead::from_parts(&parts)));

    // Requests outside the cookie's path get no session. The options are resolved once,
    // for the check and for a new session's cookie.
    let options = config.cookie.resolve(head.as_deref());
    if !original_path(&parts).starts_with(options.get_path()) {
        let res = inner.call(Request::from_parts(parts, body)).await?;
        return Ok(res.map(Either::Left));
    }

    let secure = is_secure(&parts, config.proxy, config.trust_proxy);
    let cookie_id = match config.session_cookie.read(&parts.headers) {
        Read::BadSignature(prefix) => {
            strict::report(&config, UnknownIdKind::BadSignature, &prefix, &parts);
            None
        }
        read => read.id(),
    };
    let session = match load(&config, cookie_id, &options, secure, head, &parts).await {
        Ok(s) => s,
        Err(e) => return Ok(error_response(&config, &e, line.as_ref())),
    };
    drop(options);
    parts.extensions.insert(session.clone());

    let mut res = inner.call(Request::from_parts(parts, body)).await?;

    let set_cookie = session.commit().await.and_then(|commit| {
        commit
            .set_cookie
            .map(|(id, cookie)| config.session_cookie.write(&id, &cookie))
            .transpose()
    });
    match set_cookie {
        Ok(Some(value)) => {
            res.headers_mut().append(http::header::SET_COOKIE, value);
            Ok(res.map(Either::Left))
        }
        Ok(None) => Ok(res.map(Either::Left)),
        Err(e) => Ok(error_response(&config, &e, line.as_ref())),
    }
}

async fn load(
    config: &Arc<Config>,
    cookie_id: Option<String>,
    options: &CookieOptions,
    secure: bool,
    head: Option<Arc<RequestHead>>,
    parts: &http::request::Parts,
) -> Result<Session, Error> {
    if let Some(id) = &cookie_id {
        match resolve(config, id).await {
            Ok(Found::Session(id, record)) => {
                #[cfg(feature = "tracing")]
                tracing::Span::current().record("loaded", true);
                return Ok(Session::inflate(config.clone(), id, record, secure, head));
            }
            Ok(Found::Unknown) => {
                crate::events::unknown_cookie(true, id);
                strict::report(
                    config,
                    UnknownIdKind::NotInStore,
                    crate::events::short_id(id),
                    parts,
                );
            }
            Ok(Found::Expired) => {}
            // A record the store cannot read must not lock its user out: the session can
            // still be destroyed (logout) or regenerated (login).
            Err(StoreError::Corrupt(reason)) => {
                return Session::unreadable(
                    config.clone(),
                    id.clone(),
                    reason.to_string(),
                    options,
                    secure,
                    head,
                )
            }
            Err(e) => return Err(e.into()),
        }
    }
    #[cfg(feature = "tracing")]
    tracing::Span::current().record("loaded", false);
    Session::generate(config.clone(), cookie_id, options, secure, head)
}

/// What the store holds for a cookie's id.
enum Found {
    /// The session, under its id (the new one when the cookie's id was renewed within
    /// `renew_grace`).
    Session(String, Record),
    /// No session: none stored, or a renewal's redirect past its grace or to nothing.
    Unknown,
    /// A session past `max_lifetime`, destroyed now.
    Expired,
}

/// The session of the cookie's `id`: followed through a renewal's redirect, and ended when
/// past `max_lifetime`.
async fn resolve(config: &Config, id: &str) -> Result<Found, StoreError> {
    let Some(record) = config.store.get(id).await? else {
        return Ok(Found::Unknown);
    };
    let (id, record) = match renewal::redirect_target(&record.data) {
        None => (id.to_owned(), record),
        Some((to, until)) => {
            if clock::now_ms() >= until {
                return Ok(Found::Unknown);
            }
            match config.store.get(&to).await? {
                // One step only: a redirect to a redirect leads nowhere.
                Some(r) if renewal::redirect_target(&r.data).is_none() => {
                    Counters::bump(&config.counters.renewal_redirects);
                    crate::events::event!(
                        debug,
                        id = crate::events::short_id(id),
                        to = crate::events::short_id(&to),
                        "an old session id within its renewal grace resolved to the new one"
                    );
                    (to, r)
                }
                _ => return Ok(Found::Unknown),
            }
        }
    };
    if let Some(limit) = &config.max_lifetime {
        if limit.expired(&record.data, clock::now_ms()) {
            config.store.destroy(&id).await?;
            Counters::bump(&config.counters.lifetime_expired);
            crate::events::event!(
                debug,
                id = crate::events::short_id(&id),
                "a session past max_lifetime was destroyed"
            );
            return Ok(Found::Expired);
        }
    }
    Ok(Found::Session(id, record))
}

fn error_response<B>(
    config: &Config,
    e: &Error,
    line: Option<&RequestLine>,
) -> Response<ResponseBody<B>> {
    crate::events::event!(
        error,
        error = %e,
        kind = ?e,
        method = line.map(|l| l.method().as_str()),
        path = line.map(RequestLine::path),
        "a session error was turned into the error handler's response"
    );
    let res = match (&config.on_error, line) {
        (Some(handler), Some(line)) => handler(e, line),
        _ => super::internal_server_error(),
    };
    res.map(Either::Right)
}

/// The request's path as the client sent it (see [`super::original_uri`]).
fn original_path(parts: &http::request::Parts) -> &str {
    super::original_uri(parts).path()
}

/// express-session's `issecure(req, trustProxy)`.
fn is_secure(parts: &http::request::Parts, proxy: Proxy, trust_proxy: bool) -> bool {
    let ext = parts.extensions.get::<IsSecure>().copied();
    if ext == Some(IsSecure(true)) || parts.uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
        return true;
    }
    let forwarded = || {
        let header = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        header.split(',').next().unwrap_or("").trim().to_owned()
    };
    match proxy {
        Proxy::Ignore => false,
        Proxy::Trust => forwarded().eq_ignore_ascii_case("https"),
        // express's `req.secure`: with `trust proxy`, the forwarded protocol decides.
        Proxy::Default => ext.is_none() && trust_proxy && forwarded() == "https",
    }
}
