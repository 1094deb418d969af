//! What every write brings to its shard: the time, the store's expiry settings and its log,
//! as one value ([`Ctx`]).

use super::durable::OpRef;
use super::log::{self, Log};
use crate::error::StoreError;
use crate::record::CookieRecord;

/// The store's expiry settings, as each shard applies them (the caps are in
/// [`Caps`](super::policy::Caps)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The idle lifetime of a session whose cookie has no expiry.
    pub(crate) default_ttl_ms: i64,
    /// A touch is logged only when it moves the logged deadline by more than this, or by
    /// more than 1 % of the cookie's `originalMaxAge` if that is larger.
    pub(crate) touch_log_ms: i64,
}

impl Limits {
    /// When a session with `cookie`, written at `now_ms`, expires.
    #[inline]
    pub(crate) fn deadline(&self, cookie: &CookieRecord, now_ms: i64) -> i64 {
        cookie
            .expires
            .unwrap_or_else(|| now_ms.saturating_add(self.default_ttl_ms))
    }

    /// How far a touch to `cookie` may move the logged deadline without being logged.
    #[inline]
    pub(crate) fn touch_window(&self, cookie: &CookieRecord) -> i64 {
        self.touch_log_ms
            .max(cookie.original_max_age.unwrap_or(0) / 100)
    }
}

/// One call's context: when it happens, the store's settings, the store's log.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) now_ms: i64,
    pub(crate) limits: &'a Limits,
    pub(crate) log: Log<'a>,
}

impl Ctx<'_> {
    /// When a session with `cookie` written now expires.
    #[inline]
    pub(crate) fn deadline(&self, cookie: &CookieRecord) -> i64 {
        self.limits.deadline(cookie, self.now_ms)
    }

    /// Logs `op` when there is a log; returns its sequence number.
    #[inline]
    pub(crate) fn append(&self, op: OpRef<'_>) -> Result<Option<u64>, StoreError> {
        log::append(self.log, op)
    }
}
