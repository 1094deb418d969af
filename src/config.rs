//! The resolved configuration shared by the layer, its services and every session, and what
//! a new session is made of: its id and its cookie.

use std::sync::Arc;

use crate::error::Error;
use crate::id::{self, GenId, RequestHead};
use crate::layer::lifetime::MaxLifetime;
use crate::layer::strict::{Counters, UnknownIdHook};
use crate::layer::ErrorHandler;
use crate::options::{CookieOptions, CookieSource, Proxy, Unset};
use crate::record::CookieRecord;
use crate::session_cookie::SessionCookie;
use crate::store::SessionStore;

/// The resolved configuration shared by the layer, its services and every session.
pub(crate) struct Config {
    pub(crate) store: Arc<dyn SessionStore>,
    /// The session cookie's name and secrets: reads it from requests, writes `Set-Cookie`.
    pub(crate) session_cookie: SessionCookie,
    pub(crate) cookie: CookieSource,
    pub(crate) genid: Option<GenId>,
    pub(crate) proxy: Proxy,
    pub(crate) trust_proxy: bool,
    pub(crate) resave: bool,
    pub(crate) rolling: bool,
    /// `touch_after`: skip the store touch of an unmodified session whose stored expiry
    /// would move by less than this (`None`: always touch, as express).
    pub(crate) touch_after: Option<std::time::Duration>,
    pub(crate) save_uninitialized: bool,
    pub(crate) unset: Unset,
    /// `on_error`; `None`: the default generic `500`.
    pub(crate) on_error: Option<ErrorHandler>,
    /// `max_lifetime`: the absolute timeout (`None`: none, as express).
    pub(crate) max_lifetime: Option<MaxLifetime>,
    /// `renew_grace`: how long an old id resolves to its renewed session (`None`: the old
    /// id ends at once, as express).
    pub(crate) renew_grace: Option<std::time::Duration>,
    pub(crate) on_unknown_id: Option<UnknownIdHook>,
    pub(crate) counters: Counters,
    /// `max_sessions_per_owner`: when a session joins an owner, the owner's oldest sessions
    /// beyond this many are destroyed (`None`: no limit).
    pub(crate) max_sessions_per_owner: Option<usize>,
}

impl Config {
    /// Whether hooks need the request head kept with the session.
    pub(crate) fn keeps_head(&self) -> bool {
        self.genid.is_some() || matches!(self.cookie, CookieSource::PerRequest(_))
    }

    /// A new session id: `genid`'s, when one is configured and the request is known, the
    /// default generator's otherwise.
    pub(crate) fn new_id(&self, head: Option<&RequestHead>) -> Result<String, Error> {
        match (&self.genid, head) {
            (Some(f), Some(h)) => Ok(f(h)),
            _ => Ok(id::generate()?),
        }
    }

    /// The cookie a new session starts with, its options resolved for `head`.
    pub(crate) fn new_cookie(
        &self,
        head: Option<&RequestHead>,
        secure: bool,
    ) -> Result<CookieRecord, Error> {
        new_cookie(&self.cookie.resolve(head), secure)
    }
}

/// The cookie a new session starts with under options already resolved for its request.
///
/// # Errors
/// [`Error::Cookie`] when its domain or path cannot be sent.
pub(crate) fn new_cookie(options: &CookieOptions, secure: bool) -> Result<CookieRecord, Error> {
    let record = options.new_record(secure);
    crate::cookie::check(&record).map_err(Error::Cookie)?;
    Ok(record)
}
