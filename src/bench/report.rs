//! What a run measured.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::{Workers, Workload};

/// The latency of the store calls of a run: every call, timed around its `.await`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sessile::bench::BenchError> {
/// use std::sync::Arc;
/// use sessile::bench::{run, Config, Limit};
///
/// let report = run(Arc::new(sessile::EmbeddedStore::new()), &Config {
///     limit: Limit::Ops(1_000),
///     preload: 100,
///     ..Config::default()
/// }).await?;
/// let l = report.latency;
/// assert!(l.p50 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The 99.9th percentile.
    pub p999: Duration,
    /// The slowest call.
    pub max: Duration,
    /// The mean.
    pub mean: Duration,
}

impl Latency {
    pub(super) fn of(h: &Histogram<u64>) -> Latency {
        let at = |q: f64| Duration::from_nanos(h.value_at_quantile(q));
        Latency {
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            max: Duration::from_nanos(h.max()),
            mean: Duration::from_nanos(h.mean() as u64),
        }
    }
}

/// What one [`run`](super::run) measured.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sessile::bench::BenchError> {
/// use std::sync::Arc;
/// use sessile::bench::{run, Config, Limit, Workload};
///
/// let report = run(Arc::new(sessile::EmbeddedStore::new()), &Config {
///     workload: Workload::WriteHeavy,
///     limit: Limit::Ops(2_000),
///     preload: 500,
///     ..Config::default()
/// }).await?;
/// assert_eq!((report.ops, report.errors, report.misses), (2_000, 0, 0));
/// assert!(report.ops_per_sec() > 0.0);
/// println!("{} ops/s, p99 {:?}", report.ops_per_sec(), report.latency.p99);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Report {
    /// The workload run.
    pub workload: Workload,
    /// The workers that ran it.
    pub workers: Workers,
    /// The payload size of every write, in bytes of JSON.
    pub payload_bytes: usize,
    /// Sessions stored before the timed part.
    pub preloaded: u64,
    /// Store calls made in the timed part (failed ones included).
    pub ops: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// The first error, in words.
    pub first_error: Option<String>,
    /// `get`s of a preloaded session that found nothing (a store that lost sessions, or
    /// evicted them, shows it here).
    pub misses: u64,
    /// From the first worker's start to the last worker's end.
    pub elapsed: Duration,
    /// The latency of the calls.
    pub latency: Latency,
    /// The growth of the process's resident memory over the preload, per preloaded session:
    /// `None` where it cannot be measured (not Linux, no preload, or
    /// [`Config::measure_memory`](super::Config::measure_memory) off, as for a store in
    /// another process).
    pub bytes_per_session: Option<u64>,
}

impl Report {
    /// Calls per second over [`elapsed`](Report::elapsed).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::bench::BenchError> {
    /// use std::sync::Arc;
    /// use sessile::bench::{run, Config, Limit};
    ///
    /// let config = Config { limit: Limit::Ops(500), preload: 10, ..Config::default() };
    /// let report = run(Arc::new(sessile::EmbeddedStore::new()), &config).await?;
    /// let expected = report.ops as f64 / report.elapsed.as_secs_f64();
    /// assert_eq!(report.ops_per_sec(), expected);
    /// # Ok(()) }
    /// ```
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }
}
