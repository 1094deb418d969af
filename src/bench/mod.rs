//! Measure any [`SessionStore`] the way sessile measures its own (feature `bench`).
//!
//! [`run`] preloads a store with sessions, then has workers (tokio tasks or threads) make
//! store calls in a [`Workload`]'s mix for a time or a number of calls, timing every call
//! around its `.await` into a histogram. Every write carries new data (a payload of the
//! chosen size with a new counter in it), built before the call's timer starts. The
//! [`Report`] has the calls per second, p50/p99/p99.9 latency and, on Linux, the growth of
//! the process's resident memory per preloaded session.
//!
//! The CLI's `sessile bench` runs the same code over sessile's stores, Redis and
//! tower-sessions' `MemoryStore`, so the author of a third-party store can put their store
//! in that table by running this on it:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), sessile::bench::BenchError> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use sessile::bench::{run, Config, Limit, Workers, Workload};
//!
//! let store = Arc::new(sessile::EmbeddedStore::new());
//! let config = Config {
//!     workload: Workload::ReadHeavy,
//!     payload_bytes: 197,
//!     workers: Workers::Tasks(1),
//!     limit: Limit::Duration(Duration::from_millis(50)),
//!     preload: 1_000,
//!     ..Config::default()
//! };
//! let report = run(store, &config).await?;
//! println!(
//!     "{}: {:.0} ops/s, p50 {:?}, p99 {:?}, p99.9 {:?}",
//!     report.workload,
//!     report.ops_per_sec(),
//!     report.latency.p50,
//!     report.latency.p99,
//!     report.latency.p999,
//! );
//! # Ok(()) }
//! ```
//!
//! Sessions the run stores are left in the store (a store shared with other data, such as
//! a Redis server, is best given a prefix of its own and cleared afterwards). Ids are drawn
//! from a random salt per run, so two runs on one store do not meet each other's sessions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::error::StoreError;
use crate::store::{Created, SessionStore};

mod data;
mod memory;
mod report;
mod workload;

pub use report::{Latency, Report};
pub use workload::{Limit, Workers, Workload};

use data::{Id, Rng};

/// What [`run`] does: the workload, the payload, the workers, how long, and the preload.
///
/// ```
/// use std::time::Duration;
/// use sessile::bench::{Config, Limit, Workers, Workload};
///
/// let config = Config {
///     workload: Workload::Churn,
///     workers: Workers::Threads(2),
///     limit: Limit::Duration(Duration::from_secs(3)),
///     ..Config::default()
/// };
/// assert_eq!(config.payload_bytes, 197);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The mix of calls.
    pub workload: Workload,
    /// The size of every written session's fields, in bytes of JSON text (at least what
    /// the fixed fields take, about 30 bytes). Default 197, an 8-field login session.
    pub payload_bytes: usize,
    /// The workers. Default one task.
    pub workers: Workers,
    /// When the timed part stops. Default 3 seconds.
    pub limit: Limit,
    /// Sessions stored before the timed part (untimed): the ones gets, updates and touches
    /// pick from, uniformly. Default 10,000.
    pub preload: u64,
    /// Whether to report the resident memory per preloaded session (see
    /// [`Report::bytes_per_session`]). Default `true`; turn it off for a store whose data
    /// lives in another process. The figure is right only for a process that has not freed
    /// much memory before (a fresh one, as the CLI runs every measurement in).
    pub measure_memory: bool,
}

impl Default for Config {
    /// Read-heavy, 197-byte payloads, one task, 3 seconds, 10,000 sessions preloaded,
    /// memory measured.
    ///
    /// ```
    /// use sessile::bench::{Config, Workload};
    ///
    /// assert_eq!(Config::default().workload, Workload::ReadHeavy);
    /// ```
    fn default() -> Config {
        Config {
            workload: Workload::ReadHeavy,
            payload_bytes: 197,
            workers: Workers::Tasks(1),
            limit: Limit::Duration(Duration::from_secs(3)),
            preload: 10_000,
            measure_memory: true,
        }
    }
}

/// Why [`run`] could not measure.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use sessile::bench::{run, BenchError, Config, Workload};
///
/// // A read-heavy run needs sessions to read.
/// let config = Config { workload: Workload::ReadHeavy, preload: 0, ..Config::default() };
/// let err = run(Arc::new(sessile::EmbeddedStore::new()), &config).await.unwrap_err();
/// assert!(matches!(err, BenchError::NoSessions(Workload::ReadHeavy)));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The workload reads or writes preloaded sessions and `preload` is 0.
    #[error("the {0} workload needs preloaded sessions (preload is 0)")]
    NoSessions(Workload),
    /// A name that is no workload.
    #[error("no workload is named {0:?} (read-heavy, write-heavy, touch-only, churn, new-visitor-flood)")]
    UnknownWorkload(String),
    /// The preload failed: the store refused a `set`.
    #[error("preloading the store: {0}")]
    Preload(#[source] StoreError),
    /// A worker thread or task could not be started, or ended without its result.
    #[error("running the workers: {0}")]
    Workers(String),
}

/// Runs `config` against `store` and reports what it measured. Call it inside a tokio
/// runtime: the preload and [`Workers::Tasks`] run on it.
///
/// Store errors in the timed part are counted ([`Report::errors`]), not returned: a run
/// against a server that drops a connection still reports.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use sessile::bench::{run, Config, Limit, Workers, Workload};
/// use sessile::SessionStore;
///
/// let store = Arc::new(sessile::EmbeddedStore::new());
/// let config = Config {
///     workload: Workload::NewVisitorFlood,
///     workers: Workers::Threads(2),
///     limit: Limit::Ops(1_000),
///     preload: 0,
///     ..Config::default()
/// };
/// let report = run(store.clone(), &config).await?;
/// assert_eq!(report.ops, 1_000);
/// assert_eq!(store.len().await?, 1_000);
/// # Ok(()) }
/// ```
pub async fn run<S>(store: Arc<S>, config: &Config) -> Result<Report, BenchError>
where
    S: SessionStore + ?Sized,
{
    if config.workload.needs_sessions() && config.preload == 0 {
        return Err(BenchError::NoSessions(config.workload));
    }
    let salt = run_salt();
    let before = config.measure_memory.then(memory::resident_bytes).flatten();
    preload(&store, config, salt).await?;
    let after = config.measure_memory.then(memory::resident_bytes).flatten();
    let bytes_per_session = config
        .measure_memory
        .then(|| memory::per_session(before, after, config.preload))
        .flatten();

    let n = config.workers.count();
    let plans: Vec<Plan> = (0..n)
        .map(|w| Plan {
            workload: config.workload,
            payload_bytes: config.payload_bytes,
            live: config.preload,
            salt,
            worker: w as u64,
            limit: match config.limit {
                Limit::Duration(d) => PlanLimit::Until(d),
                Limit::Ops(ops) => {
                    PlanLimit::Ops(ops / n as u64 + u64::from((w as u64) < ops % n as u64))
                }
            },
            yield_every: matches!(config.workers, Workers::Tasks(_)).then_some(256),
        })
        .collect();
    let results = match config.workers {
        Workers::Tasks(_) => run_tasks(&store, plans).await?,
        Workers::Threads(_) => run_threads(&store, plans).await?,
    };

    let mut hist = new_histogram();
    let mut report = Report {
        workload: config.workload,
        workers: config.workers,
        payload_bytes: config.payload_bytes,
        preloaded: config.preload,
        ops: 0,
        errors: 0,
        first_error: None,
        misses: 0,
        elapsed: Duration::ZERO,
        latency: Latency::default(),
        bytes_per_session,
    };
    let start = results.iter().map(|r| r.start).min();
    let end = results.iter().map(|r| r.end).max();
    for r in results {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = hist.add(&r.hist);
        report.ops += r.ops;
        report.errors += r.errors;
        report.misses += r.misses;
        if report.first_error.is_none() {
            report.first_error = r.first_error;
        }
    }
    if let (Some(start), Some(end)) = (start, end) {
        report.elapsed = end.saturating_duration_since(start);
    }
    report.latency = Latency::of(&hist);
    Ok(report)
}

/// A salt for the ids of one run: from the OS's random source, or the clock if that fails.
fn run_salt() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 8];
    let seed = match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => crate::clock::now_ms() as u64,
    };
    seed ^ COUNTER
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Latencies from 1 ns to an hour, 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts (low >= 1, high >= 2 * low, sigfig <= 5).
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// Stores sessions `0..config.preload`, many writes in flight (a remote store is not filled
/// one round trip at a time).
async fn preload<S>(store: &Arc<S>, config: &Config, salt: u64) -> Result<(), BenchError>
where
    S: SessionStore + ?Sized,
{
    const IN_FLIGHT: u64 = 16;
    let path: Arc<str> = Arc::from("/");
    let cookie = data::cookie(&path, crate::clock::now_ms());
    let mut set = tokio::task::JoinSet::new();
    for part in 0..IN_FLIGHT {
        let store = store.clone();
        let cookie = cookie.clone();
        let (bytes, total) = (config.payload_bytes, config.preload);
        let _ = set.spawn(async move {
            let mut i = part;
            while i < total {
                let record = data::record(bytes, i, &cookie);
                store.set(Id::of(salt, i).as_str(), &record).await?;
                i += IN_FLIGHT;
            }
            Ok::<(), StoreError>(())
        });
    }
    while let Some(done) = set.join_next().await {
        done.map_err(|e| BenchError::Workers(e.to_string()))?
            .map_err(BenchError::Preload)?;
    }
    Ok(())
}

/// One worker's part.
#[derive(Debug, Clone, Copy)]
struct Plan {
    workload: Workload,
    payload_bytes: usize,
    /// Preloaded sessions: ids `0..live`.
    live: u64,
    salt: u64,
    worker: u64,
    limit: PlanLimit,
    /// Yield to the runtime after this many calls (tasks share their threads).
    yield_every: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
enum PlanLimit {
    Until(Duration),
    Ops(u64),
}

/// What one worker measured.
struct Outcome {
    start: Instant,
    end: Instant,
    hist: Histogram<u64>,
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    misses: u64,
}

async fn run_tasks<S>(store: &Arc<S>, plans: Vec<Plan>) -> Result<Vec<Outcome>, BenchError>
where
    S: SessionStore + ?Sized,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(plans.len()));
    let handles: Vec<_> = plans
        .into_iter()
        .map(|plan| {
            let store = store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                work(&*store, plan).await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.map_err(|e| BenchError::Workers(e.to_string()))?);
    }
    Ok(out)
}

async fn run_threads<S>(store: &Arc<S>, plans: Vec<Plan>) -> Result<Vec<Outcome>, BenchError>
where
    S: SessionStore + ?Sized,
{
    let barrier = Arc::new(std::sync::Barrier::new(plans.len()));
    let mut receivers = Vec::with_capacity(plans.len());
    for plan in plans {
        let store = store.clone();
        let barrier = barrier.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BenchError::Workers(e.to_string()))?;
        std::thread::Builder::new()
            .name(format!("sessile-bench-{}", plan.worker))
            .spawn(move || {
                barrier.wait();
                let _ = tx.send(runtime.block_on(work(&*store, plan)));
            })
            .map_err(|e| BenchError::Workers(e.to_string()))?;
        receivers.push(rx);
    }
    let mut out = Vec::with_capacity(receivers.len());
    for rx in receivers {
        out.push(
            rx.await
                .map_err(|_| BenchError::Workers("a worker thread ended early".into()))?,
        );
    }
    Ok(out)
}

/// The calls a worker can make.
enum Op {
    Get(u64),
    Update(u64),
    Create,
    Touch(u64),
    Destroy,
}

/// One worker: calls in `plan`'s mix until its limit, each timed around its `.await`.
async fn work<S>(store: &S, plan: Plan) -> Outcome
where
    S: SessionStore + ?Sized,
{
    let path: Arc<str> = Arc::from("/");
    let mut rng = Rng::new(plan.salt ^ (plan.worker + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    // New sessions take ids no other worker and no preloaded session has.
    let mut next_new = ((plan.worker + 1) << 40) + plan.live;
    // The counter every write puts in its payload, new on every write.
    let mut views = (plan.worker + 1) << 40;
    let mut now_ms = crate::clock::now_ms();
    let mut cookie = data::cookie(&path, now_ms);
    let mut created: Option<u64> = None;
    let mut hist = new_histogram();
    let (mut ops, mut errors, mut misses) = (0u64, 0u64, 0u64);
    let mut first_error = None;

    let start = Instant::now();
    let mut last = start;
    loop {
        match plan.limit {
            PlanLimit::Ops(n) if ops >= n => break,
            PlanLimit::Until(d) if last.duration_since(start) >= d => break,
            _ => {}
        }
        if ops % 1024 == 0 {
            // The layer sets `expires` to now + maxAge on every request.
            now_ms = crate::clock::now_ms();
            cookie.expires = Some(now_ms + data::MAX_AGE_MS);
        }
        if let Some(every) = plan.yield_every {
            if ops % every == every - 1 {
                tokio::task::yield_now().await;
            }
        }
        let op = match plan.workload {
            Workload::ReadHeavy => match rng.below(100) {
                0..90 => Op::Get(rng.below(plan.live)),
                90..99 => Op::Update(rng.below(plan.live)),
                _ => Op::Create,
            },
            Workload::WriteHeavy => match rng.below(2) {
                0 => Op::Get(rng.below(plan.live)),
                _ => Op::Update(rng.below(plan.live)),
            },
            Workload::TouchOnly => Op::Touch(rng.below(plan.live)),
            Workload::Churn if created.is_some() => Op::Destroy,
            Workload::Churn | Workload::NewVisitorFlood => Op::Create,
        };
        // Everything a call takes is made before its timer starts.
        let result: Result<(), StoreError> = match op {
            Op::Get(i) => {
                let id = Id::of(plan.salt, i);
                let r = timed(&mut hist, &mut last, || store.get(id.as_str())).await;
                r.map(|got| misses += u64::from(got.is_none()))
            }
            Op::Update(i) => {
                views += 1;
                let id = Id::of(plan.salt, i);
                let record = data::record(plan.payload_bytes, views, &cookie);
                let r = timed(&mut hist, &mut last, || store.set(id.as_str(), &record)).await;
                r
            }
            Op::Create => {
                views += 1;
                let n = next_new;
                next_new += 1;
                let id = Id::of(plan.salt, n);
                let record = data::record(plan.payload_bytes, views, &cookie);
                let r = timed(&mut hist, &mut last, || store.create(id.as_str(), &record)).await;
                if plan.workload == Workload::Churn {
                    created = Some(n);
                }
                r.and_then(|c| match c {
                    Created::Created => Ok(()),
                    Created::Exists => Err(StoreError::Unavailable(
                        "create found a session under a new id".into(),
                    )),
                })
            }
            Op::Touch(i) => {
                let id = Id::of(plan.salt, i);
                let r = timed(&mut hist, &mut last, || store.touch(id.as_str(), &cookie)).await;
                r
            }
            Op::Destroy => {
                let id = Id::of(plan.salt, created.take().unwrap_or(0));
                let r = timed(&mut hist, &mut last, || store.destroy(id.as_str())).await;
                r
            }
        };
        ops += 1;
        if let Err(e) = result {
            errors += 1;
            if first_error.is_none() {
                first_error = Some(e.to_string());
            }
        }
    }
    let end = last;
    // A churn cut between its create and its destroy leaves one session: remove it.
    if let Some(n) = created {
        let _ = store.destroy(Id::of(plan.salt, n).as_str()).await;
    }
    Outcome {
        start,
        end,
        hist,
        ops,
        errors,
        first_error,
        misses,
    }
}

/// Awaits the call `call` makes, timing it from before the call (which makes the future) to
/// the end of its `.await`; records the time in `hist` and the end in `last`.
async fn timed<F, T>(hist: &mut Histogram<u64>, last: &mut Instant, call: impl FnOnce() -> F) -> T
where
    F: std::future::Future<Output = T>,
{
    let t = Instant::now();
    let r = call().await;
    *last = Instant::now();
    hist.saturating_record(last.duration_since(t).as_nanos() as u64);
    r
}

#[cfg(test)]
mod tests;
