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
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, "no session").into_response()
    }
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

/// Session errors answer `500 Internal Server Error` (`NoSession` answers "no session"), so
/// handlers can use `?` on session calls.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let msg = match &self {
            Error::NoSession => "no session".to_owned(),
            other => other.to_string(),
        };
        (StatusCode::INTERNAL_SERVER_ERROR, msg).into_response()
    }
}
