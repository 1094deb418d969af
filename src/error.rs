//! Errors: what a store reports ([`StoreError`]) and what a session operation reports
//! ([`Error`]).

use std::fmt;

/// A failure of a session store. "Not found" is never an error: `get` returns `Ok(None)`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached (Redis down, connection refused, ...).
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// The store did not answer in time.
    #[error("session store timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// A stored record could not be read.
    #[error("corrupt session record: {0}")]
    Corrupt(String),
    /// The store refused the write because it is full.
    #[error("session store full: {0}")]
    Full(String),
    /// An I/O error of a durable store.
    #[error("session store I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other failure of a store's backend.
    #[error("session store error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps any error of a store's backend.
    pub fn backend<E: Into<Box<dyn std::error::Error + Send + Sync>>>(e: E) -> Self {
        StoreError::Backend(e.into())
    }
}

/// A failure of a session operation, seen by handlers and by the layer's error handler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request has no session: the session was destroyed or unset in this request, or the
    /// path is outside the cookie's path.
    #[error("no session")]
    NoSession,
    /// `reload` found no record for the session in the store.
    #[error("failed to load session")]
    NotInStore,
    /// A value could not be converted to or from JSON.
    #[error("session value: {0}")]
    Value(#[from] serde_json::Error),
    /// A field name the session keeps for itself (`cookie`, the cookie object of express's
    /// record) was given to [`Session::insert`](crate::Session::insert).
    ///
    /// ```
    /// let err = sessile::Error::ReservedField("cookie".into());
    /// assert_eq!(err.to_string(), "the field name `cookie` is reserved for the session cookie");
    /// ```
    #[error("the field name `{0}` is reserved for the session cookie")]
    ReservedField(String),
    /// The session cookie cannot be sent: an invalid domain or path (from a per-request
    /// cookie function, or a stored record).
    #[error("session cookie: {0}")]
    Cookie(String),
    /// The session cookie was made but is not a valid HTTP header value, so it cannot be
    /// sent as `Set-Cookie`.
    #[error("the session cookie is not a valid header value")]
    CookieHeader(#[source] http::header::InvalidHeaderValue),
    /// The store holds this session's record but could not read it (not JSON, not an
    /// object, a cookie no cookie can be): the session can be destroyed or regenerated, and
    /// nothing else; the record is never written over.
    #[error("the stored session cannot be read: {0}")]
    Unreadable(String),
    /// A session id could not be generated (the OS has no randomness to give).
    #[error(transparent)]
    Id(#[from] IdError),
}

/// The operating system could not give the randomness a new session id is made of,
/// reported by [`id::generate`](crate::id::generate). Its [`source`](std::error::Error::source)
/// is the operating system's error.
///
/// ```
/// fn new_id() -> Result<String, sessile::IdError> {
///     sessile::id::generate()
/// }
/// assert_eq!(new_id().unwrap().len(), 32);
/// ```
#[derive(Debug, thiserror::Error)]
#[error("session id generation failed: the operating system gave no randomness")]
pub struct IdError(#[source] pub(crate) std::io::Error);

/// An invalid layer configuration, reported by [`SessionLayerBuilder::build`](crate::SessionLayerBuilder::build).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub(crate) String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid session configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}
