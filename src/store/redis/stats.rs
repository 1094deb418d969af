//! What [`RedisStore::stats`](super::RedisStore::stats) reports, counted as each call ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::limits::Call;
use crate::error::StoreError;
use crate::store::latency::Latencies;

/// The Redis store's figures since it was built, from
/// [`RedisStore::stats`](super::RedisStore::stats): calls by kind, errors by kind,
/// compare-and-set retries and call latencies. Shared by every clone of the store; cheap to
/// read (relaxed loads). It serialises to JSON (serde) as it reads here.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), sessile::StoreError> {
/// use sessile::{RedisStore, SessionStore};
///
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
/// store.get("some-id").await?;
/// let stats = store.stats();
/// assert_eq!(stats.reads, 1);
/// println!("p99 {} µs, {} timeouts", stats.p99_us, stats.timeouts);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RedisStats {
    /// Reads: `get`.
    pub reads: u64,
    /// Writes: `set`, `create`, `apply`, `touch`, `destroy`.
    pub writes: u64,
    /// Steps of the walks of `all`, `len` and `clear`: each `SCAN` page, each `MGET` or
    /// `DEL` of a page, and each value read.
    pub walks: u64,
    /// Calls that failed with [`StoreError::Unavailable`] (Redis down or unreachable).
    pub unavailable: u64,
    /// Calls that failed with [`StoreError::Timeout`].
    pub timeouts: u64,
    /// Values that are not sessions: calls that failed with [`StoreError::Corrupt`], and
    /// the values `all` and `len` skipped for that reason (how they report what they skip).
    pub corrupt: u64,
    /// Calls that failed otherwise ([`StoreError::Backend`]: a Redis error reply).
    pub other_errors: u64,
    /// Compare-and-set attempts of `apply` and `create` that lost to another writer and
    /// were tried again.
    pub cas_retries: u64,
    /// Call latency percentiles in microseconds, from the call's start to its end (waiting
    /// for a turn of `max_in_flight` included), each the upper bound of a power-of-two
    /// bucket (so within 2 × of the true value); 0 before the first call.
    pub p50_us: u64,
    /// See [`p50_us`](Self::p50_us).
    pub p99_us: u64,
    /// The slowest call's bucket, in microseconds.
    pub max_us: u64,
}

/// The counters behind [`RedisStats`] (statistics only: relaxed std atomics).
#[derive(Debug, Default)]
pub(super) struct Counters {
    reads: AtomicU64,
    writes: AtomicU64,
    walks: AtomicU64,
    unavailable: AtomicU64,
    timeouts: AtomicU64,
    corrupt: AtomicU64,
    other_errors: AtomicU64,
    cas_retries: AtomicU64,
    latency: Latencies,
}

impl Counters {
    /// A call of kind `call` ended after `took` with `error`, if it failed.
    pub(super) fn ended(&self, call: Call, took: Duration, error: Option<&StoreError>) {
        let kind = match call {
            Call::Read => &self.reads,
            Call::Write => &self.writes,
            Call::Walk => &self.walks,
        };
        kind.fetch_add(1, Ordering::Relaxed);
        self.latency.record(took);
        let failed = match error {
            None => return,
            Some(StoreError::Unavailable(_)) => &self.unavailable,
            Some(StoreError::Timeout(_)) => &self.timeouts,
            Some(StoreError::Corrupt(_)) => &self.corrupt,
            Some(_) => &self.other_errors,
        };
        failed.fetch_add(1, Ordering::Relaxed);
    }

    /// A compare-and-set lost and is tried again.
    pub(super) fn cas_retry(&self) {
        self.cas_retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> RedisStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (_, p50_us, p99_us, max_us) = self.latency.summary();
        RedisStats {
            reads: load(&self.reads),
            writes: load(&self.writes),
            walks: load(&self.walks),
            unavailable: load(&self.unavailable),
            timeouts: load(&self.timeouts),
            corrupt: load(&self.corrupt),
            other_errors: load(&self.other_errors),
            cas_retries: load(&self.cas_retries),
            p50_us,
            p99_us,
            max_us,
        }
    }
}
