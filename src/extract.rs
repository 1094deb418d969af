//! The axum extractor (feature `axum`).

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::error::Error;
use crate::session::Session;

/// The rejection when a handler asks for a [`Session`] that the request does not have: the
/// layer is missing, or the path is outside `cookie.path`. A handler that can do without
/// asks for `Option<Session>`.
///
/// ```
/// use axum::{body::Body, routing::get, Router};
/// use sessile::{Session, SessionLayer};
/// use tower::ServiceExt as _;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = SessionLayer::builder()
///     .secret("s")
///     .cookie(sessile::CookieOptions::new().path("/app"))
///     .build()
///     .unwrap();
/// let app = Router::new()
///     .route("/app", get(|_: Session| async { "app" }))
///     .route("/public", get(|s: Option<Session>| async move { format!("{}", s.is_some()) }))
///     .route("/other", get(|_: Session| async { "unreachable" }))
///     .layer(layer);
/// let status = |path: &str| {
///     let app = app.clone();
///     let req = http::Request::get(path).body(Body::empty()).unwrap();
///     async move { app.oneshot(req).await.unwrap().status() }
/// };
/// assert_eq!(status("/app").await, http::StatusCode::OK);
/// assert_eq!(status("/public").await, http::StatusCode::OK);
/// // Outside `cookie.path` there is no session: the extractor rejects with `NoSession`.
/// assert_eq!(status("/other").await, http::StatusCode::INTERNAL_SERVER_ERROR);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct NoSession;

impl IntoResponse for NoSession {
    /// `500 Internal Server Error` with a generic body; what to check goes to `tracing`
    /// (`error`): the route is not under `SessionLayer`, or its path is outside
    /// `cookie.path`.
    fn into_response(self) -> Response {
        crate::events::event!(
            error,
            "a handler asked for a Session the request does not have: is SessionLayer applied \
             to this route (`.layer(...)` after `.route(...)`), and is the path inside \
             cookie.path? Ask for Option<Session> where a session is optional"
        );
        internal_server_error()
    }
}

/// The body every session error answers with: nothing of the error reaches the client.
fn internal_server_error() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = NoSession;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Session>().cloned().ok_or(NoSession)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Session>().cloned())
    }
}

/// Session errors answer `500 Internal Server Error` with that generic body, so handlers can
/// use `?` on session calls without sending an internal message (a store's text, a value
/// that did not decode) to the client; the error itself goes to `tracing` (`error`).
///
/// ```
/// use axum::response::IntoResponse;
///
/// let res = sessile::Error::Unreadable("not JSON at line 1".into()).into_response();
/// assert_eq!(res.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
/// ```
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        crate::events::event!(
            error,
            error = %self,
            kind = ?self,
            "a handler returned a session error"
        );
        internal_server_error()
    }
}
