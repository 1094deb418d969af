//! Session ids.
//!
//! The default id is what express's `uid-safe` makes: 24 random bytes as 32 characters of
//! unpadded base64url. The bytes come from rand's `ThreadRng`: a ChaCha12 CSPRNG per thread,
//! seeded from the operating system's and reseeded from it after every 64 KiB it gives, so
//! that an id costs no system call.
//!
//! # Fork safety
//!
//! A child process made by `fork` (without `exec`) starts with a copy of its parent's
//! generators, so until the next reseed it would make the parent's ids. A server that forks
//! workers after making ids calls [`reseed`] in each child, on each thread that makes ids
//! (tokio's workers are started after the fork in the usual setup, and start with fresh
//! generators). A custom generator (express's `genid`) gets
//! the request that needs the id.

use std::cell::Cell;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;

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

/// A new random session id: 24 random bytes as 32 base64url characters.
///
/// ```
/// let id = sessile::id::generate()?;
/// assert_eq!(id.len(), 32);
/// assert_ne!(id, sessile::id::generate()?);
/// # Ok::<(), sessile::IdError>(())
/// ```
///
/// # Errors
/// [`IdError`] only when the operating system cannot provide randomness (checked once per
/// thread, before the thread's generator is first seeded).
pub fn generate() -> Result<String, IdError> {
    os_ready()?;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Seeds this thread's id generator again from the operating system: what a child process
/// made by `fork` calls (see the module's [fork safety](self#fork-safety)).
///
/// ```
/// sessile::id::reseed()?;
/// assert_eq!(sessile::id::generate()?.len(), 32);
/// # Ok::<(), sessile::IdError>(())
/// ```
///
/// # Errors
/// [`IdError`] when the operating system cannot provide randomness.
pub fn reseed() -> Result<(), IdError> {
    os_ready()?;
    rand::rng()
        .reseed()
        .map_err(|e| os_error(e.raw_os_error(), e.to_string()))
}

/// Whether the operating system has given this thread randomness once: `ThreadRng` panics
/// when its first seeding fails, and an id is an error then instead.
fn os_ready() -> Result<(), IdError> {
    thread_local! {
        static READY: Cell<bool> = const { Cell::new(false) };
    }
    if READY.get() {
        return Ok(());
    }
    let mut probe = [0u8; 1];
    getrandom::fill(&mut probe).map_err(|e| os_error(e.raw_os_error(), e.to_string()))?;
    READY.set(true);
    Ok(())
}

fn os_error(code: Option<i32>, message: String) -> IdError {
    IdError(match code {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::other(message),
    })
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

    /// Ids made on many threads and after a reseed are all distinct (no two threads' or
    /// seeds' generators run in step).
    #[test]
    fn ids_of_many_threads_and_reseeds_are_distinct() {
        let ids: Vec<String> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut ids: Vec<String> =
                            (0..500).map(|_| super::generate().unwrap()).collect();
                        super::reseed().unwrap();
                        ids.extend((0..500).map(|_| super::generate().unwrap()));
                        ids
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect()
        });
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), 4000);
    }
}
