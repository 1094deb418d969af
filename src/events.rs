//! What sessile says while it runs: [`tracing`] events under the target `sessile` (feature
//! `tracing`, on by default; without a subscriber an event costs a relaxed load). Without
//! the feature every event compiles to nothing.
//!
//! Events carry structured fields and never a secret, a cookie's value or a whole session
//! id: at most [`short_id`], the id's first 6 characters. README's "Operating it" lists them
//! by level.
//!
//! The rest of the crate calls [`event!`]: `event!(warn, field = value, "message")` is
//! `tracing::warn!` with the target set, or nothing without the feature.

use std::path::Path;
#[cfg(feature = "tracing")]
use std::sync::atomic::{AtomicI64, Ordering};

use crate::store::embedded::RecoveryReport;

macro_rules! event {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        ::tracing::$level!(target: "sessile", $($arg)+);
    }};
}
pub(crate) use event;

/// Whether an `error` event of sessile's would be recorded (a cheap check of the
/// callsite's interest; always `false` without the `tracing` feature).
pub(crate) fn errors_enabled() -> bool {
    #[cfg(feature = "tracing")]
    return ::tracing::enabled!(target: "sessile", ::tracing::Level::ERROR);
    #[cfg(not(feature = "tracing"))]
    false
}

/// The first characters of a session id, enough to tell sessions apart in a log and too few
/// to use one (an id is 32 characters of base64url).
pub(crate) fn short_id(sid: &str) -> &str {
    let end = sid.char_indices().nth(6).map_or(sid.len(), |(i, _)| i);
    &sid[..end]
}

/// A durable store opened on `dir`: one line that says what recovery found, `info` when the
/// directory was clean, `warn` when anything was cut, skipped or salvaged.
#[cfg_attr(
    not(feature = "tracing"),
    allow(unused_variables, clippy::if_same_then_else)
)]
pub(crate) fn recovered(dir: &Path, r: &RecoveryReport) {
    let damaged = r.torn_bytes > 0
        || r.problem.is_some()
        || !r.skipped_snapshots.is_empty()
        || !r.salvaged.is_empty();
    macro_rules! report {
        ($level:ident, $message:literal) => {
            event!(
                $level,
                dir = %dir.display(),
                snapshot = ?r.snapshot,
                skipped_snapshots = ?r.skipped_snapshots,
                replayed = r.replayed,
                replayed_bytes = r.replayed_bytes,
                torn_bytes = r.torn_bytes,
                torn_intact_records = r.torn_intact_records,
                torn_files = ?r.torn_files,
                salvaged = ?r.salvaged,
                resynced = r.resynced,
                problem = ?r.problem,
                sessions = r.sessions,
                expired = r.expired,
                ms = r.duration.as_millis() as u64,
                $message
            )
        };
    }
    if damaged {
        report!(warn, "session store recovered a damaged directory");
    } else {
        report!(info, "session store opened");
    }
}

/// At most one event a second for each kind of rate-limited event (a flood of forged
/// cookies must not flood the log): true when this one may be emitted now.
#[cfg(feature = "tracing")]
pub(crate) fn once_a_second(last: &AtomicI64) -> bool {
    let now = crate::clock::now_ms();
    let before = last.load(Ordering::Relaxed);
    now - before >= 1000
        && last
            .compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// A cookie that failed verification (`signed: false`) or a validly signed id the store did
/// not know (`signed: true`): `debug`, at most once a second for each kind.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn unknown_cookie(signed: bool, sid: &str) {
    #[cfg(feature = "tracing")]
    {
        static BAD_SIGNATURE: AtomicI64 = AtomicI64::new(i64::MIN / 2);
        static UNKNOWN_ID: AtomicI64 = AtomicI64::new(i64::MIN / 2);
        if signed {
            if once_a_second(&UNKNOWN_ID) {
                event!(
                    debug,
                    id = short_id(sid),
                    "a validly signed session id the store does not know (expired, destroyed, or replayed)"
                );
            }
        } else if once_a_second(&BAD_SIGNATURE) {
            event!(debug, "a session cookie failed signature verification");
        }
    }
}

/// Runs `f` with a subscriber of this thread's own that keeps every event, and returns what
/// `f` returned with the events as text, one a line (`LEVEL target: message fields`).
#[cfg(all(test, feature = "tracing"))]
pub(crate) fn captured<T>(f: impl FnOnce() -> T) -> (T, String) {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .finish();
    every_thread_has_a_subscriber();
    let out = tracing::subscriber::with_default(subscriber, || {
        // A callsite first reached by a test without a subscriber, while this one was being
        // set, may keep the interest of "no subscriber" (never): recomputed here.
        tracing::callsite::rebuild_interest_cache();
        f()
    });
    let text = String::from_utf8_lossy(&lines.0.lock().unwrap()).into_owned();
    (out, text)
}

/// Installs, once, a global subscriber that keeps nothing but is interested in every
/// event, so that no callsite is ever cached as "never" by a thread without a subscriber of
/// its own while another test captures events (tracing caches a callsite's interest when it
/// is first reached).
#[cfg(all(test, feature = "tracing"))]
fn every_thread_has_a_subscriber() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let sink = tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        // Fails only when another global subscriber was set first, which is as good.
        let _ = tracing::subscriber::set_global_default(sink);
    });
}

#[cfg(test)]
#[cfg(feature = "tracing")]
mod tests {
    use super::short_id;

    #[cfg(feature = "tracing")]
    #[test]
    fn short_ids_are_six_characters_at_most() {
        assert_eq!(short_id("abcdefghijkl"), "abcdef");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id("ééééééé"), "éééééé");
    }
}
