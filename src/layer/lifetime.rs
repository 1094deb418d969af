//! `max_lifetime`: the absolute timeout of a session, however active it stays.

use std::time::Duration;

use crate::record::Data;
use crate::session::reserved;

/// How long a session may live at most, counted from its creation or from its last renewal
/// (a new id by [`Session::cycle_id`](crate::Session::cycle_id) or
/// [`Session::regenerate`](crate::Session::regenerate)): OWASP's absolute timeout. Past it,
/// the session is treated as expired when it is loaded (destroyed, and the request gets a
/// new session) even if `rolling` or a busy user kept its cookie alive.
///
/// ```
/// use std::time::Duration;
/// use sessile::MaxLifetime;
///
/// let day = MaxLifetime::since_created(Duration::from_secs(8 * 3600));
/// assert_eq!(day.limit(), Duration::from_secs(8 * 3600));
/// assert_ne!(day, MaxLifetime::since_renewed(Duration::from_secs(8 * 3600)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxLifetime {
    limit: Duration,
    since: Since,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Since {
    Created,
    Renewed,
}

impl MaxLifetime {
    /// At most `limit` after the session was first saved (a new id keeps the creation
    /// time: a login that cycles the id does not extend it).
    ///
    /// ```
    /// use std::time::Duration;
    /// let ml = sessile::MaxLifetime::since_created(Duration::from_secs(4 * 3600));
    /// assert_eq!(ml.limit(), Duration::from_secs(4 * 3600));
    /// ```
    pub fn since_created(limit: Duration) -> Self {
        MaxLifetime {
            limit,
            since: Since::Created,
        }
    }

    /// At most `limit` after the session's id was last renewed (`cycle_id` or
    /// `regenerate`), or after its creation when it never was.
    ///
    /// ```
    /// use std::time::Duration;
    /// let ml = sessile::MaxLifetime::since_renewed(Duration::from_secs(3600));
    /// assert_eq!(ml.limit(), Duration::from_secs(3600));
    /// ```
    pub fn since_renewed(limit: Duration) -> Self {
        MaxLifetime {
            limit,
            since: Since::Renewed,
        }
    }

    /// The longest a session may live.
    ///
    /// ```
    /// use std::time::Duration;
    /// let ml = sessile::MaxLifetime::since_created(Duration::from_millis(1500));
    /// assert_eq!(ml.limit(), Duration::from_millis(1500));
    /// ```
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Whether the session whose fields are `data` is past the limit at `now` (ms). A
    /// record without the time it counts from (written by Node, or before `max_lifetime`
    /// was on) is not: it gets the time at its next save.
    pub(crate) fn expired(&self, data: &Data, now: i64) -> bool {
        let at = |key| data.field::<i64>(key).ok().flatten();
        let start = match self.since {
            Since::Created => at(reserved::CREATED),
            Since::Renewed => at(reserved::RENEWED).or_else(|| at(reserved::CREATED)),
        };
        let limit = i64::try_from(self.limit.as_millis()).unwrap_or(i64::MAX);
        start.is_some_and(|s| now >= s.saturating_add(limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(text: &str) -> Data {
        Data::from_json_text(text).unwrap()
    }

    #[test]
    fn counts_from_creation_or_renewal() {
        let d = data(r#"{"__sessile_created":1000,"__sessile_renewed":5000}"#);
        let created = MaxLifetime::since_created(Duration::from_millis(10_000));
        let renewed = MaxLifetime::since_renewed(Duration::from_millis(10_000));
        assert!(!created.expired(&d, 10_999));
        assert!(created.expired(&d, 11_000));
        assert!(!renewed.expired(&d, 14_999));
        assert!(renewed.expired(&d, 15_000));
        // Never renewed: counted from creation.
        let d = data(r#"{"__sessile_created":1000}"#);
        assert!(renewed.expired(&d, 11_000));
    }

    #[test]
    fn a_record_without_the_time_or_with_another_type_is_not_expired() {
        let ml = MaxLifetime::since_created(Duration::ZERO);
        assert!(!ml.expired(&data("{}"), i64::MAX));
        assert!(!ml.expired(&data(r#"{"__sessile_created":"1000"}"#), i64::MAX));
        assert!(ml.expired(&data(r#"{"__sessile_created":1000}"#), 1000));
    }
}
