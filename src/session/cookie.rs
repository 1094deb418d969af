//! `req.session.cookie`: the session cookie's lifetime, read and set.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Session;
use crate::clock;
use crate::error::Error;
use crate::record::CookieRecord;

impl Session {
    /// `req.session.cookie`: the session cookie as it will be stored and sent.
    pub fn cookie(&self) -> Result<CookieRecord, Error> {
        self.with(|st| Ok(st.cookie.clone()))
    }

    /// `req.session.cookie.maxAge`: the time left until the cookie expires, `None` for a
    /// browser-session cookie. Zero once passed.
    pub fn max_age(&self) -> Result<Option<Duration>, Error> {
        self.with(|st| {
            Ok(st
                .cookie
                .max_age()
                .map(|ms| Duration::from_millis(ms.max(0) as u64)))
        })
    }

    /// `req.session.cookie.maxAge` in milliseconds as express reports it (negative once
    /// passed).
    pub fn max_age_ms(&self) -> Result<Option<i64>, Error> {
        self.with(|st| Ok(st.cookie.max_age()))
    }

    /// `req.session.cookie.originalMaxAge` in milliseconds.
    pub fn original_max_age_ms(&self) -> Result<Option<i64>, Error> {
        self.with(|st| Ok(st.cookie.original_max_age))
    }

    /// `req.session.cookie.expires`.
    pub fn expires(&self) -> Result<Option<SystemTime>, Error> {
        self.with(|st| {
            Ok(st.cookie.expires.map(|ms| {
                if ms >= 0 {
                    UNIX_EPOCH + Duration::from_millis(ms as u64)
                } else {
                    UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
                }
            }))
        })
    }

    /// `req.session.cookie.maxAge = ms`: the cookie (and the session) now lives `max_age` from
    /// now, and `originalMaxAge` becomes `max_age`; `None` makes it a browser-session cookie.
    ///
    /// ```
    /// # fn f(session: sessile::Session) -> Result<(), sessile::Error> {
    /// // "remember me": keep this login for 30 days.
    /// session.set_max_age(Some(std::time::Duration::from_secs(30 * 86_400)))?;
    /// # Ok(()) }
    /// ```
    pub fn set_max_age(&self, max_age: Option<Duration>) -> Result<(), Error> {
        let ms = max_age.map(|d| d.as_millis().min(clock::MAX_MS as u128) as i64);
        self.set_max_age_ms(ms)
    }

    /// [`set_max_age`](Self::set_max_age) in express's unit, milliseconds.
    pub fn set_max_age_ms(&self, ms: Option<i64>) -> Result<(), Error> {
        self.with(|st| {
            st.cookie.set_max_age(ms);
            Ok(())
        })
    }

    /// `req.session.cookie.expires = date`: a fixed expiry; `originalMaxAge` becomes the time
    /// left. `None` makes it a browser-session cookie.
    pub fn set_expires(&self, at: Option<SystemTime>) -> Result<(), Error> {
        self.with(|st| {
            let at = at.map(|t| match t.duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_millis().min(clock::MAX_MS as u128) as i64,
                Err(e) => -(e.duration().as_millis().min(i64::MAX as u128) as i64),
            });
            st.cookie.expires = at;
            st.cookie.original_max_age = at.map(|e| e - clock::now_ms());
            Ok(())
        })
    }

    /// `req.session.touch()`: resets the cookie's expiry to now + `originalMaxAge`. The layer
    /// does this for every request that has a session.
    pub fn touch(&self) -> Result<(), Error> {
        self.with(|st| {
            st.cookie.touch();
            Ok(())
        })
    }
}
