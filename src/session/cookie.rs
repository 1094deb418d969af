//! `req.session.cookie`: the session cookie's lifetime, read and set.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Session;
use crate::clock;
use crate::error::Error;
use crate::record::CookieRecord;

impl Session {
    /// `req.session.cookie`: the session cookie as it will be stored and sent.
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// let cookie = session.cookie()?;
    /// assert_eq!(&*cookie.path, "/");
    /// assert!(cookie.http_only);
    /// # Ok::<(), sessile::Error>(())
    /// ```
    pub fn cookie(&self) -> Result<CookieRecord, Error> {
        self.with(|st| Ok(st.cookie.clone()))
    }

    /// `req.session.cookie.maxAge`: the time left until the cookie expires, `None` for a
    /// browser-session cookie. Zero once passed.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let layer = sessile::SessionLayer::builder()
    ///     .secret("s")
    ///     .cookie(sessile::CookieOptions::new().max_age(Duration::from_secs(3600)))
    ///     .build()
    ///     .unwrap();
    /// # let session = layer.detached_session()?;
    /// let left = session.max_age()?.expect("an hour's cookie");
    /// assert!(left <= Duration::from_secs(3600) && left > Duration::from_secs(3500));
    /// # Ok::<(), sessile::Error>(())
    /// ```
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
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// // A browser-session cookie has no maxAge.
    /// assert_eq!(session.max_age_ms()?, None);
    /// session.set_max_age_ms(Some(60_000))?;
    /// assert!(session.max_age_ms()?.is_some_and(|ms| ms > 59_000 && ms <= 60_000));
    /// # Ok::<(), sessile::Error>(())
    /// ```
    pub fn max_age_ms(&self) -> Result<Option<i64>, Error> {
        self.with(|st| Ok(st.cookie.max_age()))
    }

    /// `req.session.cookie.originalMaxAge` in milliseconds.
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.set_max_age_ms(Some(60_000))?;
    /// assert_eq!(session.original_max_age_ms()?, Some(60_000));
    /// # Ok::<(), sessile::Error>(())
    /// ```
    pub fn original_max_age_ms(&self) -> Result<Option<i64>, Error> {
        self.with(|st| Ok(st.cookie.original_max_age))
    }

    /// `req.session.cookie.expires`.
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// assert_eq!(session.expires()?, None);
    /// session.set_max_age(Some(Duration::from_secs(60)))?;
    /// assert!(session.expires()?.expect("an expiry") > SystemTime::now());
    /// # Ok::<(), sessile::Error>(())
    /// ```
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
    /// # use std::time::Duration;
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// // "remember me": keep this login for 30 days.
    /// session.set_max_age(Some(Duration::from_secs(30 * 86_400)))?;
    /// assert_eq!(session.original_max_age_ms()?, Some(30 * 86_400_000));
    /// // A browser-session cookie again.
    /// session.set_max_age(None)?;
    /// assert_eq!(session.expires()?, None);
    /// # Ok::<(), sessile::Error>(())
    /// ```
    pub fn set_max_age(&self, max_age: Option<Duration>) -> Result<(), Error> {
        let ms = max_age.map(|d| d.as_millis().min(clock::MAX_MS as u128) as i64);
        self.set_max_age_ms(ms)
    }

    /// [`set_max_age`](Self::set_max_age) in express's unit, milliseconds.
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.set_max_age_ms(Some(600_000))?;
    /// assert_eq!(session.cookie()?.original_max_age, Some(600_000));
    /// # Ok::<(), sessile::Error>(())
    /// ```
    pub fn set_max_age_ms(&self, ms: Option<i64>) -> Result<(), Error> {
        self.with(|st| {
            st.cookie.set_max_age(ms);
            Ok(())
        })
    }

    /// `req.session.cookie.expires = date`: a fixed expiry; `originalMaxAge` becomes the time
    /// left. `None` makes it a browser-session cookie.
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// let at = SystemTime::now() + Duration::from_secs(3600);
    /// session.set_expires(Some(at))?;
    /// assert!(session.max_age()?.is_some_and(|left| left <= Duration::from_secs(3600)));
    /// # Ok::<(), sessile::Error>(())
    /// ```
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
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.set_max_age_ms(Some(60_000))?;
    /// session.touch()?;
    /// assert!(session.max_age_ms()?.is_some_and(|ms| ms > 59_000));
    /// # Ok::<(), sessile::Error>(())
    /// ```
    pub fn touch(&self) -> Result<(), Error> {
        self.with(|st| {
            st.cookie.touch();
            Ok(())
        })
    }
}
