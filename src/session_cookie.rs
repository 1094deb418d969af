//! The session cookie, both ways: a request's `Cookie` headers → the verified session id,
//! and an id with its [`CookieRecord`] → the `Set-Cookie` header value. Only the layer's
//! service calls it; [`crate::cookie`] and [`crate::signing`] are the formats it speaks.

use http::{HeaderMap, HeaderValue};

use crate::error::Error;
use crate::record::CookieRecord;
use crate::signing::{self, Secrets};

/// What a request's session cookie says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// No session cookie.
    Absent,
    /// A cookie whose signature did not verify: the first characters of its id part.
    BadSignature(String),
    /// A verified session id.
    Id(String),
}

impl Read {
    /// The verified id, if any.
    pub(crate) fn id(self) -> Option<String> {
        match self {
            Read::Id(id) => Some(id),
            _ => None,
        }
    }
}

/// The name and secrets of the session cookie.
pub(crate) struct SessionCookie {
    name: String,
    secrets: Secrets,
}

impl SessionCookie {
    /// The cookie called `name`, signed with the first of `secrets` and verified with any.
    pub(crate) fn new(name: String, secrets: Secrets) -> Self {
        SessionCookie { name, secrets }
    }

    /// The session id of the first cookie of this name over every `Cookie` header, when
    /// its signature verifies (express's `getcookie`); a bad cookie is no cookie.
    pub(crate) fn read(&self, headers: &HeaderMap) -> Read {
        let Some(raw) = crate::cookie::find_in_headers(headers, &self.name) else {
            return Read::Absent;
        };
        match signing::session_id(&raw, &self.secrets) {
            Some(id) => Read::Id(id.to_owned()),
            None => {
                crate::events::unknown_cookie(false, "");
                // The id part of `s:<id>.<signature>`, for the first characters only.
                let body = raw.strip_prefix("s:").unwrap_or(&raw);
                let id = body.rsplit_once('.').map_or(body, |(id, _)| id);
                Read::BadSignature(crate::events::short_id(id).to_owned())
            }
        }
    }

    /// The `Set-Cookie` value for session `id` with `cookie`'s attributes, as express's
    /// `setcookie` makes it.
    ///
    /// # Errors
    /// [`Error::Cookie`] for a domain or path that cannot be sent, or that the name's
    /// `__Host-`/`__Secure-` prefix forbids (from a per-request cookie function, or a
    /// stored record); [`Error::CookieHeader`] for a value that is not a
    /// valid header value.
    pub(crate) fn write(&self, id: &str, cookie: &CookieRecord) -> Result<HeaderValue, Error> {
        crate::cookie::check(cookie).map_err(Error::Cookie)?;
        // A per-request cookie function can break the prefix's rules after the build.
        crate::cookie::check_prefix(&self.name, cookie).map_err(Error::Cookie)?;
        let value = crate::cookie::serialize(
            &self.name,
            &signing::cookie_value(id, &self.secrets),
            cookie,
        );
        HeaderValue::try_from(value).map_err(Error::CookieHeader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn codec(secret: &str) -> SessionCookie {
        SessionCookie::new("sid".into(), Secrets::new([secret]).unwrap())
    }

    fn request_with(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.append(http::header::COOKIE, HeaderValue::from_str(pair).unwrap());
        headers
    }

    #[test]
    fn what_it_writes_it_reads_back_and_only_with_its_secret() {
        let written = codec("a")
            .write("the id", &CookieRecord::default())
            .unwrap();
        assert_eq!(
            written.to_str().unwrap(),
            format!(
                "sid={}; Path=/; HttpOnly",
                crate::cookie::encode(&signing::cookie_value(
                    "the id",
                    &Secrets::new(["a"]).unwrap()
                ))
            )
        );
        let headers = request_with(&written);
        assert_eq!(codec("a").read(&headers), Read::Id("the id".into()));
        assert_eq!(
            codec("b").read(&headers),
            Read::BadSignature("the id".into())
        );
        assert_eq!(codec("a").read(&HeaderMap::new()), Read::Absent);
    }

    #[test]
    fn an_attribute_that_cannot_be_sent_is_an_error() {
        let cookie = CookieRecord {
            path: Arc::from("/a;b"),
            ..CookieRecord::default()
        };
        let err = codec("a").write("id", &cookie).unwrap_err();
        assert!(matches!(err, Error::Cookie(_)), "{err:?}");
    }
}
