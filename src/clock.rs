//! Wall-clock time in milliseconds, and the two date formats express uses: ISO-8601 in
//! stored records (`Date.prototype.toISOString`) and the HTTP date in the `Expires`
//! attribute (`Date.prototype.toUTCString`).
//!
//! Every expiry, touch and sweep of the crate (the layer's cookies, both stores) reads time
//! through [`now_ms`], which adds a test clock's offset to the system clock: tests move it
//! forward with [`advance_for_tests`] to make sessions expire without waiting.

// A plain std atomic, not `crate::sync`: the offset is a test seam, outside what the loom
// models explore (and a static cannot hold a loom atomic).
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The latest instant a date may hold (year 9999), so far-future `maxAge`s stay printable.
pub const MAX_MS: i64 = 253_402_300_799_999;
/// The earliest instant a date may hold (year 0).
pub const MIN_MS: i64 = -62_167_219_200_000;
/// The farthest instant from the epoch a JavaScript `Date` can hold (±8.64e15 ms); past it,
/// `new Date(ms)` is an Invalid Date.
pub const JS_DATE_MAX_MS: i64 = 8_640_000_000_000_000;

/// `new Date(ms)` as express computes an expiry: `None` where JavaScript's `Date` would be
/// invalid (more than [`JS_DATE_MAX_MS`] from the epoch).
///
/// ```
/// use sessile::clock::{js_date, JS_DATE_MAX_MS};
///
/// assert_eq!(js_date(1_000), Some(1_000));
/// assert_eq!(js_date(JS_DATE_MAX_MS), Some(JS_DATE_MAX_MS));
/// assert_eq!(js_date(JS_DATE_MAX_MS + 1), None);
/// ```
pub fn js_date(ms: i64) -> Option<i64> {
    (ms.checked_abs()? <= JS_DATE_MAX_MS).then_some(ms)
}

/// How far [`advance_for_tests`] has moved this process's clock, in milliseconds.
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Milliseconds since the Unix epoch, now (plus the test clock's offset, zero unless a test
/// moved it).
pub fn now_ms() -> i64 {
    let system = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_millis().min(i64::MAX as u128) as i64),
    };
    system.saturating_add(OFFSET_MS.load(Ordering::Relaxed))
}

/// Test seam, not API: moves this process's clock ([`now_ms`]) forward by `ms`, for good.
///
/// Every session of the process sees the jump (expiry, touches, the sweeper thread), so a
/// test binary that uses it must hold its tests to one at a time (a global lock), and keep
/// tests that do not expect jumps out of it. Time never moves backwards.
///
/// ```
/// let before = sessile::clock::now_ms();
/// sessile::clock::advance_for_tests(60_000);
/// assert!(sessile::clock::now_ms() >= before + 60_000);
/// ```
#[doc(hidden)]
pub fn advance_for_tests(ms: u64) {
    let ms = ms.min(i64::MAX as u64) as i64;
    let _ = OFFSET_MS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
        Some(o.saturating_add(ms))
    });
}

fn datetime(ms: i64) -> OffsetDateTime {
    let ms = ms.clamp(MIN_MS, MAX_MS);
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `new Date(ms).toISOString()`: `2026-11-23T02:16:44.123Z`.
pub fn to_iso(ms: i64) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    datetime(ms).format(&fmt).unwrap_or_default()
}

/// `new Date(ms).toUTCString()`: `Mon, 23 Nov 2026 02:16:44 GMT`.
pub fn to_http_date(ms: i64) -> String {
    let fmt = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    datetime(ms).format(&fmt).unwrap_or_default()
}

/// Parses a date string as JavaScript's `Date` would for the forms that occur in stored
/// sessions: ISO-8601 (with `Z`, an offset, or no zone, read as UTC) and the HTTP/RFC 2822
/// form. Returns milliseconds since the epoch.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let ms = |dt: OffsetDateTime| (dt.unix_timestamp_nanos() / 1_000_000) as i64;
    if let Ok(dt) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(ms(dt));
    }
    let local = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    if let Ok(dt) = PrimitiveDateTime::parse(s, &local) {
        return Some(ms(dt.assume_offset(UtcOffset::UTC)));
    }
    if let Ok(dt) = OffsetDateTime::parse(s, &Rfc2822) {
        return Some(ms(dt));
    }
    let http = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(s, &http)
        .ok()
        .map(|dt| ms(dt.assume_offset(UtcOffset::UTC)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_javascript() {
        assert_eq!(to_iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(to_iso(1_795_400_204_123), "2026-11-23T02:16:44.123Z");
        assert_eq!(to_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            to_http_date(1_795_400_204_999),
            "Mon, 23 Nov 2026 02:16:44 GMT"
        );
        assert_eq!(to_iso(i64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_what_javascript_writes() {
        assert_eq!(
            parse_date("2026-11-23T02:16:44.123Z"),
            Some(1_795_400_204_123)
        );
        assert_eq!(
            parse_date("2026-11-23T03:16:44.123+01:00"),
            Some(1_795_400_204_123)
        );
        assert_eq!(parse_date("2026-11-23T02:16:44Z"), Some(1_795_400_204_000));
        assert_eq!(
            parse_date("Mon, 23 Nov 2026 02:16:44 GMT"),
            Some(1_795_400_204_000)
        );
        assert_eq!(parse_date("tomorrow"), None);
    }
}
