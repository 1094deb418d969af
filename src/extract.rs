//! The axum extractor (feature `axum`).

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::error::Error;
use crate::session::Session;

/// The rejection when a handler asks for a [`Session`] that the request does not have: the
/// layer is missing, or the path is outside `cookie.path`.
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
