//! Session ids.
//!
//! The default id is what express's `uid-safe` makes: 24 bytes from the operating system's
//! CSPRNG as 32 characters of unpadded base64url. A custom generator (express's `genid`) gets
//! the request that needs the id.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::error::IdError;

/// The parts of a request a custom id generator or a per-request cookie function sees.
///
/// It is also kept with the session (only when such a hook is configured) so that
/// `regenerate` inside a handler can call the hook with the request, as express does.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The request method.
    pub method: http::Method,
    /// The request URI.
    pub uri: http::Uri,
    /// The request headers.
    pub headers: http::HeaderMap,
}

impl RequestHead {
    /// Copies the method, URI and headers of a request.
    pub fn from_parts(parts: &http::request::Parts) -> Self {
        RequestHead {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        }
    }
}

/// A session id generator: express's `genid` option.
pub type GenId = Arc<dyn Fn(&RequestHead) -> String + Send + Sync>;

/// A new random session id: 24 bytes of OS randomness as 32 base64url characters.
///
/// ```
/// let id = sessile::id::generate()?;
/// assert_eq!(id.len(), 32);
/// assert_ne!(id, sessile::id::generate()?);
/// # Ok::<(), sessile::IdError>(())
/// ```
///
/// # Errors
/// [`IdError`] only when the operating system cannot provide randomness.
pub fn generate() -> Result<String, IdError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| {
        IdError(match e.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::other(e.to_string()),
        })
    })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_32_url_safe_characters_and_distinct() {
        let a = super::generate().unwrap();
        let b = super::generate().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, b);
    }
}
