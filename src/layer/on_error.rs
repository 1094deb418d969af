//! What the layer answers when a session operation fails (the store is down, a record is
//! corrupt): the error handler, the request line it is given, and the body it returns.
//!
//! The same handler can answer a handler's own session errors: take the [`RequestLine`]
//! extractor beside the [`Session`](crate::Session) and call it on the error (see
//! [`SessionLayerBuilder::on_error`](super::SessionLayerBuilder::on_error)).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt as _;

use crate::error::Error;

/// The boxed error of an [`ErrorBody`].
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the response sent when a session operation fails in the layer, from the error and
/// the request's method and URI. Set it with
/// [`SessionLayerBuilder::on_error`](super::SessionLayerBuilder::on_error), which takes any
/// function returning an [`IntoErrorResponse`]; the default answers `500 Internal Server
/// Error` with a generic body and no `Set-Cookie`.
///
/// ```
/// use sessile::{ErrorHandler, IntoErrorResponse, RequestLine};
///
/// let handler: ErrorHandler = std::sync::Arc::new(|err, req| {
///     (http::StatusCode::SERVICE_UNAVAILABLE, format!("{} failed", req.path())).into_error_response()
/// });
/// let req = RequestLine::new(http::Method::GET, "/cart".parse().unwrap());
/// let res = handler(&sessile::Error::NoSession, &req);
/// assert_eq!(res.status(), http::StatusCode::SERVICE_UNAVAILABLE);
/// ```
pub type ErrorHandler = Arc<dyn Fn(&Error, &RequestLine) -> Response<ErrorBody> + Send + Sync>;

/// The method and URI of the request a session error happened in, as the client sent them
/// (under axum's `Router::nest`, the URI before the prefix was stripped).
///
/// Under the `axum` feature it is also an extractor, so a handler can answer its own
/// session errors with the layer's error handler.
///
/// ```
/// let req = sessile::RequestLine::new(http::Method::POST, "/login?next=/".parse().unwrap());
/// assert_eq!(req.method(), http::Method::POST);
/// assert_eq!(req.path(), "/login");
/// assert_eq!(req.uri().query(), Some("next=/"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLine {
    method: Method,
    uri: Uri,
}

impl RequestLine {
    /// A request line of this method and URI.
    ///
    /// ```
    /// let req = sessile::RequestLine::new(http::Method::GET, http::Uri::from_static("/"));
    /// assert_eq!(req.path(), "/");
    /// ```
    pub fn new(method: Method, uri: Uri) -> Self {
        RequestLine { method, uri }
    }

    /// The request line of a request's head: its method, and its URI as the client sent it
    /// (axum's `OriginalUri` when the router nested the route).
    ///
    /// ```
    /// let (parts, ()) = http::Request::put("/cart/7").body(()).unwrap().into_parts();
    /// let req = sessile::RequestLine::from_parts(&parts);
    /// assert_eq!((req.method().as_str(), req.path()), ("PUT", "/cart/7"));
    /// ```
    pub fn from_parts(parts: &http::request::Parts) -> Self {
        RequestLine {
            method: parts.method.clone(),
            uri: original_uri(parts).clone(),
        }
    }

    /// The request's method.
    ///
    /// ```
    /// let req = sessile::RequestLine::new(http::Method::DELETE, http::Uri::from_static("/"));
    /// assert_eq!(req.method(), http::Method::DELETE);
    /// ```
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request's URI (path and query; scheme and authority when the client sent an
    /// absolute form).
    ///
    /// ```
    /// let req = sessile::RequestLine::new(http::Method::GET, http::Uri::from_static("/a?b=c"));
    /// assert_eq!(req.uri().query(), Some("b=c"));
    /// ```
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The URI's path.
    ///
    /// ```
    /// let req = sessile::RequestLine::new(http::Method::GET, http::Uri::from_static("/a?b=c"));
    /// assert_eq!(req.path(), "/a");
    /// ```
    pub fn path(&self) -> &str {
        self.uri.path()
    }
}

/// The request's URI as the client sent it: express checks `cookie.path` against
/// `req.originalUrl`, and axum's `Router::nest` strips its prefix before inner layers run.
pub(crate) fn original_uri(parts: &http::request::Parts) -> &Uri {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::OriginalUri(uri)) = parts.extensions.get() {
        return uri;
    }
    &parts.uri
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestLine {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(RequestLine::from_parts(parts))
    }
}

/// The body of an error handler's response: any body of bytes, boxed.
///
/// ```
/// use http_body::Body as _;
///
/// let body = sessile::ErrorBody::new(http_body_util::Full::new(bytes::Bytes::from("down")));
/// assert_eq!(body.size_hint().exact(), Some(4));
/// ```
pub struct ErrorBody(UnsyncBoxBody<Bytes, BoxError>);

impl ErrorBody {
    /// Boxes a body.
    ///
    /// ```
    /// let body = sessile::ErrorBody::new(String::from("down"));
    /// ```
    pub fn new<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        ErrorBody(body.map_err(Into::into).boxed_unsync())
    }
}

impl std::fmt::Debug for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorBody").finish_non_exhaustive()
    }
}

impl Body for ErrorBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// What an error handler may return: under the `axum` feature, anything that implements
/// axum's `IntoResponse` (a status, a string, a tuple of them with headers, `Json`, a
/// `Response`); without it, an `http::Response` of any body of bytes, a status or a string.
///
/// ```
/// use sessile::IntoErrorResponse;
///
/// let res = (http::StatusCode::SERVICE_UNAVAILABLE, "try again").into_error_response();
/// assert_eq!(res.status(), http::StatusCode::SERVICE_UNAVAILABLE);
/// ```
pub trait IntoErrorResponse {
    /// The response.
    ///
    /// ```
    /// use sessile::IntoErrorResponse;
    ///
    /// assert_eq!(http::StatusCode::IM_A_TEAPOT.into_error_response().status(), 418);
    /// ```
    fn into_error_response(self) -> Response<ErrorBody>;
}

#[cfg(feature = "axum")]
impl<T: axum::response::IntoResponse> IntoErrorResponse for T {
    fn into_error_response(self) -> Response<ErrorBody> {
        self.into_response().map(ErrorBody::new)
    }
}

// Without axum, the same set of types where axum has them, so turning the feature on never
// breaks a handler.
#[cfg(not(feature = "axum"))]
impl<B> IntoErrorResponse for Response<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn into_error_response(self) -> Response<ErrorBody> {
        self.map(ErrorBody::new)
    }
}

#[cfg(not(feature = "axum"))]
impl IntoErrorResponse for StatusCode {
    fn into_error_response(self) -> Response<ErrorBody> {
        let mut res = Response::new(ErrorBody::new(http_body_util::Empty::new()));
        *res.status_mut() = self;
        res
    }
}

#[cfg(not(feature = "axum"))]
impl IntoErrorResponse for &'static str {
    fn into_error_response(self) -> Response<ErrorBody> {
        text(StatusCode::OK, Bytes::from_static(self.as_bytes()))
    }
}

#[cfg(not(feature = "axum"))]
impl IntoErrorResponse for String {
    fn into_error_response(self) -> Response<ErrorBody> {
        text(StatusCode::OK, Bytes::from(self))
    }
}

#[cfg(not(feature = "axum"))]
impl<T: Into<Bytes>> IntoErrorResponse for (StatusCode, T) {
    fn into_error_response(self) -> Response<ErrorBody> {
        text(self.0, self.1.into())
    }
}

/// A plain-text response.
fn text(status: StatusCode, body: Bytes) -> Response<ErrorBody> {
    let mut res = Response::new(ErrorBody::new(http_body_util::Full::new(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// The default error response: `500 Internal Server Error`, a generic plain-text body;
/// nothing of the error reaches the client.
pub(crate) fn internal_server_error() -> Response<ErrorBody> {
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        Bytes::from_static(b"Internal Server Error"),
    )
}
