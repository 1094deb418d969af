//! What Redis replies mean to the store: liveness by `cookie.expires` and `PTTL`, TTLs in
//! seconds, `SCAN` patterns, client errors as the store's errors, and values as records.

use super::*;

/// Whether a stored record is live, and the expiry to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Liveness {
    /// Live, with this `cookie.expires`.
    Live(Option<i64>),
    /// Its `expires` has passed and no touch extended the key.
    Expired,
}

/// The expiry rule of the [module documentation](super): `stored` is the value's
/// `cookie.expires`, `pttl_ms` the key's `PTTL` (`-1` no TTL, `-2` no key).
pub(super) fn liveness(stored: Option<i64>, pttl_ms: i64, now_ms: i64) -> Liveness {
    match stored {
        None => Liveness::Live(None),
        Some(e) if e > now_ms => Liveness::Live(Some(e)),
        Some(e) => {
            let key_expiry = now_ms.saturating_add(pttl_ms);
            if pttl_ms > 0 && key_expiry >= e.saturating_add(ROUNDING_MS) {
                Liveness::Live(Some(key_expiry))
            } else {
                Liveness::Expired
            }
        }
    }
}

/// `Math.ceil(ms / 1000)`.
pub(super) fn ceil_secs(ms: i64) -> i64 {
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
}

/// Escapes the characters `SCAN MATCH` treats as glob syntax.
pub(super) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Maps a client error to the store's error kinds.
pub(super) fn store_error(e: RedisError, timeout: Duration) -> StoreError {
    if e.is_timeout() {
        return StoreError::Timeout(timeout);
    }
    let unavailable = e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                )
        );
    if unavailable {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(Box::new(e))
    }
}

/// The bytes of a string reply; `None` for nil (a missing key, or `MGET` of a key that is
/// not a string).
pub(super) fn bytes_of(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        _ => None,
    }
}

pub(super) fn utf8(key: &str, bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| {
        Corruption::new(Corrupted::SessionRecord, "the value is not UTF-8")
            .with_key(key)
            .into()
    })
}

pub(super) fn parse(key: &str, text: &str) -> Result<Record, StoreError> {
    Record::from_json(text).map_err(|e| match e {
        StoreError::Corrupt(c) => StoreError::Corrupt(c.with_key(key)),
        other => other,
    })
}
