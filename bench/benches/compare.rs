//! "Which store should I use?": `cargo bench -p sessile-bench --bench compare`.
//!
//! The same workloads run through `sessile::SessionStore` against every store:
//!
//! - `EmbeddedStore` in memory, and durable with `FsyncPolicy::EverySec` and `Always`;
//! - tower-sessions 0.15's `MemoryStore` and `MokaStore`, and a plain moka cache, each behind
//!   a small adapter (below) that does what the peer does for the call;
//! - the Redis store, with `--features redis` and `REDIS_URL` set.
//!
//! Workloads (at 1 and 2 threads, 100k and 1M live sessions of a 197-byte payload, ids
//! uniformly random): `read_heavy` (90 % get, 9 % set, 1 % create), `write_heavy` (50 % get,
//! 50 % set), `touch_only` (a rolling site) and `churn` (create, get, destroy). Every set and
//! create writes new data (a new `views` number), and the time includes what the store's own
//! layer does to a changed session before the store call ([`LayerWrite`]): sessile's layer
//! serialises the fields into the record's JSON text, tower-sessions' layer converts the
//! value into its record's map and its store clones the record.
//!
//! Criterion measures each (workload, sessions, threads) group, one benchmark per store, so
//! its HTML report (`target/criterion/report/index.html`) plots the stores side by side. The
//! same runs also sample the latency of every 16th operation; after each group, and again at
//! the end, the bench prints a table per workload: ops/s, p50/p99/p99.9 latency, and the
//! ratio to `EmbeddedStore`. Then each store fills 1M sessions in a process of its own and
//! reports its memory per session, and the embedded store's turnover and expiry are checked.
//!
//! Knobs (environment): `COMPARE_SESSIONS` (`100k,1M`), `COMPARE_THREADS` (`1,2`),
//! `COMPARE_STORES` (`embedded,everysec,always,ts-memory,ts-moka,moka,redis`),
//! `COMPARE_WORKLOADS` (`read_heavy,write_heavy,touch_only,churn`), `COMPARE_SECS`
//! (criterion's measurement time per benchmark, default 1), `COMPARE_MEMORY`
//! (`0` skips the memory processes), `COMPARE_MEMORY_SESSIONS` (`1M`), `COMPARE_LIFECYCLE`
//! (`0` skips the turnover and expiry check), `COMPARE_HTTP` (`1`: also the HTTP comparison;
//! `only`: just it), `COMPARE_HTTP_LIBS` (`sessile,tower-sessions,ts-moka,ts-sessile`: sessile's
//! layer, and tower-sessions' layer over MemoryStore, MokaStore and sessile's store),
//! `COMPARE_HTTP_SECS` (5), `COMPARE_HTTP_FLOOD_SECS` (12),
//! `COMPARE_HTTP_CONNS` (32), `COMPARE_HTTP_REPS` (1; the best run is kept),
//! `COMPARE_HTTP_LOAD=rust` (the bench's own hyper load generator even when `wrk` is
//! installed), `COMPARE_SNAPSHOTS` (`between`: a durable store's snapshot is forced between
//! benchmarks; `during`: the stores take theirs inside the timed runs), `COMPARE_SNAPSHOT_MIB`
//! (the log size that triggers a snapshot; the store's default, 64 MiB).
//! BENCHMARKS.md describes the adapters and the figures.

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use sessile::{
    Applied, Changes, CookieRecord, Created, Data, EmbeddedStore, FsyncPolicy, Record,
    SessionStore, StoreError,
};
use support::{fmt_ns, fmt_rate, mem_of, quantile, short_count, Id, Rng};

/// Every `SAMPLE_EVERY`-th operation of a worker is timed on its own.
const SAMPLE_EVERY: u64 = 16;
/// Workers time blocks of this many operations to find pauses.
const BLOCK: u64 = 64;
/// The environment variable that makes the bench binary a child process.
const CHILD_ENV: &str = "SESSILE_COMPARE_CHILD";

// ----------------------------------------------------------------------------------------
// The stores
// ----------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Embedded,
    EverySec,
    Always,
    TsMemory,
    TsMoka,
    Moka,
    Redis,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Embedded,
        Kind::EverySec,
        Kind::Always,
        Kind::TsMemory,
        Kind::TsMoka,
        Kind::Moka,
        Kind::Redis,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Embedded => "embedded",
            Kind::EverySec => "everysec",
            Kind::Always => "always",
            Kind::TsMemory => "ts-memory",
            Kind::TsMoka => "ts-moka",
            Kind::Moka => "moka",
            Kind::Redis => "redis",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Embedded => "EmbeddedStore (memory)",
            Kind::EverySec => "EmbeddedStore (EverySec)",
            Kind::Always => "EmbeddedStore (Always)",
            Kind::TsMemory => "tower-sessions MemoryStore",
            Kind::TsMoka => "tower-sessions MokaStore",
            Kind::Moka => "moka future::Cache",
            Kind::Redis => "RedisStore",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> std::io::Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "sessile-compare-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // A store's background snapshot may still be writing a file: try again a few times.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An opened store: the trait object every workload goes through, and the concrete
/// `EmbeddedStore` for fast fills.
struct Store {
    kind: Kind,
    dyn_store: Arc<dyn SessionStore>,
    /// What the store's own layer does to write a changed session (see [`LayerWrite`]).
    writer: Arc<dyn LayerWrite>,
    embedded: Option<EmbeddedStore>,
    /// Runs the Redis client's connection task.
    _runtime: Option<tokio::runtime::Runtime>,
    _dir: Option<TempDir>,
}

fn open_store(kind: Kind) -> Result<Store, String> {
    let embedded = |store: EmbeddedStore, dir: Option<TempDir>| {
        let dyn_store: Arc<dyn SessionStore> = Arc::new(store.clone());
        Store {
            kind,
            writer: Arc::new(SessileWrite(dyn_store.clone())),
            dyn_store,
            embedded: Some(store),
            _runtime: None,
            _dir: dir,
        }
    };
    let other = |s: Arc<dyn SessionStore>, writer: Arc<dyn LayerWrite>| Store {
        kind,
        dyn_store: s,
        writer,
        embedded: None,
        _runtime: None,
        _dir: None,
    };
    Ok(match kind {
        Kind::Embedded => embedded(EmbeddedStore::new(), None),
        Kind::EverySec | Kind::Always => {
            let dir = TempDir::new(kind.name()).map_err(|e| e.to_string())?;
            let policy = if kind == Kind::Always {
                FsyncPolicy::Always
            } else {
                FsyncPolicy::EverySec
            };
            let mut builder = EmbeddedStore::builder().fsync(policy);
            // The log size that triggers a snapshot: the store's default (64 MiB) unless
            // `COMPARE_SNAPSHOT_MIB` is set.
            let mib = support::env_num("COMPARE_SNAPSHOT_MIB", 0);
            if mib > 0 {
                builder = builder.snapshot_after_bytes(mib << 20);
            }
            let store = builder.open(&dir.0).map_err(|e| e.to_string())?;
            embedded(store, Some(dir))
        }
        Kind::TsMemory => {
            let a = Arc::new(TsAdapter::new(tower_sessions::MemoryStore::default()));
            other(a.clone(), a)
        }
        Kind::TsMoka => {
            let a = Arc::new(TsAdapter014::new(
                tower_sessions_moka_store::MokaStore::new(None),
            ));
            other(a.clone(), a)
        }
        Kind::Moka => {
            let a: Arc<dyn SessionStore> = Arc::new(MokaAdapter::new());
            other(a.clone(), Arc::new(SessileWrite(a)))
        }
        Kind::Redis => open_redis()?,
    })
}

#[cfg(feature = "redis")]
fn open_redis() -> Result<Store, String> {
    let url = std::env::var("REDIS_URL").map_err(|_| "REDIS_URL is not set".to_owned())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let store = rt
        .block_on(async {
            let s = sessile::RedisStore::builder(url)
                .prefix("sessile-compare:")
                .build()
                .await?;
            s.clear().await?;
            Ok::<_, StoreError>(s)
        })
        .map_err(|e| e.to_string())?;
    let dyn_store: Arc<dyn SessionStore> = Arc::new(store);
    Ok(Store {
        kind: Kind::Redis,
        writer: Arc::new(SessileWrite(dyn_store.clone())),
        dyn_store,
        embedded: None,
        _runtime: Some(rt),
        _dir: None,
    })
}

#[cfg(not(feature = "redis"))]
fn open_redis() -> Result<Store, String> {
    Err("the bench was built without `--features redis`".into())
}

// ---- what each store's layer does to write a changed session -----------------------------

/// The write of a session whose handler just set its `views` field to a new number: every
/// write carries new data, and what the store's own layer does before the store call is timed
/// with it. sessile's layer holds the changed session's fields as a map and serialises them
/// into the record's JSON text (`Data::from_map`), then calls `set` (the record's cookie is
/// the one the request computed); tower-sessions' layer keeps the fields in its record's
/// `HashMap` (`Session::insert` converts the value with `serde_json::to_value`) and calls the
/// store's `save` with that record.
#[async_trait]
trait LayerWrite: Send + Sync {
    async fn write(&self, sid: &str, views: u64, cookie: &CookieRecord) -> Result<(), StoreError>;
}

std::thread_local! {
    /// The fields of the session this worker's requests change, as sessile's layer holds
    /// them once a handler has changed one.
    static FIELDS: std::cell::RefCell<Option<serde_json::Map<String, serde_json::Value>>> =
        const { std::cell::RefCell::new(None) };
}

/// sessile's layer in front of any store that takes sessile's `Record` (the embedded stores,
/// Redis, the plain moka cache).
struct SessileWrite(Arc<dyn SessionStore>);

#[async_trait]
impl LayerWrite for SessileWrite {
    async fn write(&self, sid: &str, views: u64, cookie: &CookieRecord) -> Result<(), StoreError> {
        let record = FIELDS.with(|f| {
            let mut f = f.borrow_mut();
            let fields = f.get_or_insert_with(|| {
                support::payload(0)
                    .to_map()
                    .expect("the payload is a JSON object")
            });
            fields.insert("views".into(), serde_json::Value::from(views));
            Record {
                cookie: cookie.clone(),
                data: Data::from_map(fields),
            }
        });
        self.0.set(sid, &record).await
    }
}

// ---- tower-sessions 0.15 behind `sessile::SessionStore` ---------------------------------

fn cookie_expiry(cookie: &CookieRecord) -> i64 {
    cookie
        .expires
        .unwrap_or_else(|| sessile::clock::now_ms() + support::MAX_AGE_MS)
}

fn ts_expiry(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The 16 bytes of a tower-sessions id from the first 24 characters of a session id,
/// decoded from base64 as tower-sessions' layer decodes its cookie.
fn ts_id_bits(sid: &str) -> i128 {
    use base64::Engine as _;
    let mut bytes = [0u8; 18];
    let src = sid
        .as_bytes()
        .get(..24)
        .unwrap_or(b"AAAAAAAAAAAAAAAAAAAAAAAA");
    let _ = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(src, &mut bytes);
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[..16]);
    i128::from_le_bytes(id)
}

std::thread_local! {
    /// What `get` hands back for the tower-sessions peers (see [`TsAdapter`]).
    static PLACEHOLDER: Record = support::record(0);
}

/// tower-sessions' `SessionStore` behind sessile's trait. `TsAdapter` takes the trait of
/// tower-sessions 0.15 (`MemoryStore`); `TsAdapter014` the trait of tower-sessions-core 0.14,
/// which is the one tower-sessions-moka-store 0.15.0 implements (`MokaStore`).
///
/// - `get` is the peer's `load`: the id is decoded as tower-sessions' layer decodes its
///   cookie (base64 to an `i128`), and the peer clones its whole record out (a
///   `HashMap<String, Value>`). That record is not converted to sessile's (that would
///   charge the peer a JSON serialisation it never does): the adapter hands back a
///   thread-local placeholder carrying the loaded expiry.
/// - The timed writes go through [`LayerWrite`]: the new `views` goes into the peer's record
///   (`serde_json::to_value`, as `Session::insert` does) and the record is `save`d, which
///   clones it into the store. `set` (used by the untimed fill) converts sessile's record.
/// - `touch` and `apply` are `save` too: tower-sessions has no touch, and its layer saves the
///   whole record when a session is modified or, on a rolling site, on every request
///   (`with_always_save(true)`).
/// - `destroy` is `delete`.
macro_rules! ts_adapter {
    ($name:ident, $krate:ident, $last:ident) => {
        struct $name<S> {
            inner: S,
            template: $krate::session::Record,
        }

        std::thread_local! {
            /// The peer's record of the last payload converted on this thread, with it.
            static $last: std::cell::RefCell<Option<(String, $krate::session::Record)>> =
                const { std::cell::RefCell::new(None) };
        }

        impl<S: $krate::SessionStore> $name<S> {
            fn new(inner: S) -> Self {
                let template = Self::record_of(&support::payload_text(0), 0, 0);
                $name { inner, template }
            }

            fn record_of(data: &str, id: i128, expires_ms: i64) -> $krate::session::Record {
                $krate::session::Record {
                    id: $krate::session::Id(id),
                    data: serde_json::from_str(data).unwrap_or_default(),
                    expiry_date: ts_expiry(expires_ms),
                }
            }

            async fn save_as(
                &self,
                sid: &str,
                data: Option<&str>,
                expires_ms: i64,
            ) -> Result<(), StoreError> {
                let id = ts_id_bits(sid);
                let (text, mut rec) = match ($last.with(|c| c.borrow_mut().take()), data) {
                    (Some((text, rec)), None) => (text, rec),
                    (Some((text, rec)), Some(d)) if text == d => (text, rec),
                    (_, Some(d)) => (d.to_owned(), Self::record_of(d, id, expires_ms)),
                    (None, None) => (String::new(), self.template.clone()),
                };
                rec.id = $krate::session::Id(id);
                rec.expiry_date = ts_expiry(expires_ms);
                let res = self.inner.save(&rec).await;
                $last.with(|c| *c.borrow_mut() = Some((text, rec)));
                res.map_err(|e| StoreError::Backend(Box::new(e)))
            }
        }

        #[async_trait]
        impl<S: $krate::SessionStore> LayerWrite for $name<S> {
            async fn write(
                &self,
                sid: &str,
                views: u64,
                cookie: &CookieRecord,
            ) -> Result<(), StoreError> {
                let mut rec = $last
                    .with(|c| c.borrow_mut().take())
                    .map_or_else(|| self.template.clone(), |(_, rec)| rec);
                rec.data.insert(
                    "views".into(),
                    serde_json::to_value(views).unwrap_or_default(),
                );
                rec.id = $krate::session::Id(ts_id_bits(sid));
                rec.expiry_date = ts_expiry(cookie_expiry(cookie));
                let res = self.inner.save(&rec).await;
                // No payload text matches it any more: a later `set` converts its own.
                $last.with(|c| *c.borrow_mut() = Some((String::new(), rec)));
                res.map_err(|e| StoreError::Backend(Box::new(e)))
            }
        }

        #[async_trait]
        impl<S: $krate::SessionStore> SessionStore for $name<S> {
            async fn get(&self, sid: &str) -> Result<Option<Record>, StoreError> {
                let loaded = self
                    .inner
                    .load(&$krate::session::Id(ts_id_bits(sid)))
                    .await
                    .map_err(|e| StoreError::Backend(Box::new(e)))?;
                Ok(loaded.map(|r| {
                    let mut out = PLACEHOLDER.with(Clone::clone);
                    out.cookie.expires =
                        Some((r.expiry_date.unix_timestamp_nanos() / 1_000_000) as i64);
                    drop(std::hint::black_box(r));
                    out
                }))
            }

            async fn set(&self, sid: &str, record: &Record) -> Result<(), StoreError> {
                self.save_as(
                    sid,
                    Some(record.data.as_str()),
                    cookie_expiry(&record.cookie),
                )
                .await
            }

            async fn apply(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError> {
                self.save_as(sid, None, cookie_expiry(&changes.cookie))
                    .await
                    .map(|()| Applied::Applied)
            }

            async fn destroy(&self, sid: &str) -> Result<(), StoreError> {
                self.inner
                    .delete(&$krate::session::Id(ts_id_bits(sid)))
                    .await
                    .map_err(|e| StoreError::Backend(Box::new(e)))
            }

            async fn touch(&self, sid: &str, cookie: &CookieRecord) -> Result<(), StoreError> {
                self.save_as(sid, None, cookie_expiry(cookie)).await
            }

            async fn create(&self, _sid: &str, _record: &Record) -> Result<Created, StoreError> {
                Err(StoreError::Unavailable("not part of the comparison".into()))
            }

            async fn all(&self) -> Result<BTreeMap<String, Record>, StoreError> {
                Err(StoreError::Unavailable("not part of the comparison".into()))
            }

            async fn clear(&self) -> Result<(), StoreError> {
                Err(StoreError::Unavailable("not part of the comparison".into()))
            }

            async fn len(&self) -> Result<usize, StoreError> {
                Err(StoreError::Unavailable("not part of the comparison".into()))
            }
        }
    };
}

ts_adapter!(TsAdapter, tower_sessions, TS_LAST);
ts_adapter!(TsAdapter014, tower_sessions_core_014, TS_LAST_014);

// ---- a plain moka cache behind `sessile::SessionStore` ----------------------------------

/// What a Rust user would write with moka alone: `future::Cache<String, Arc<Record>>` with
/// an idle timeout of one day. `get` clones the record out of its `Arc`, `set` inserts a new
/// `Arc`, `destroy` invalidates. `touch` is a `get`: moka's reads restart the idle timer,
/// which is the whole of a touch for this cache. `apply` reads, applies the changes and
/// inserts the result.
struct MokaAdapter {
    cache: moka::future::Cache<String, Arc<Record>>,
}

impl MokaAdapter {
    fn new() -> Self {
        MokaAdapter {
            cache: moka::future::Cache::builder()
                .time_to_idle(Duration::from_millis(support::MAX_AGE_MS as u64))
                .build(),
        }
    }
}

#[async_trait]
impl SessionStore for MokaAdapter {
    async fn get(&self, sid: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.cache.get(sid).await.map(|r| (*r).clone()))
    }

    async fn set(&self, sid: &str, record: &Record) -> Result<(), StoreError> {
        self.cache
            .insert(sid.to_owned(), Arc::new(record.clone()))
            .await;
        Ok(())
    }

    async fn apply(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError> {
        let Some(old) = self.cache.get(sid).await else {
            return Ok(Applied::Missing);
        };
        let record = Record {
            cookie: changes.cookie.clone(),
            data: changes.apply_to_data(&old.data)?,
        };
        self.cache.insert(sid.to_owned(), Arc::new(record)).await;
        Ok(Applied::Applied)
    }

    async fn destroy(&self, sid: &str) -> Result<(), StoreError> {
        self.cache.invalidate(sid).await;
        Ok(())
    }

    async fn touch(&self, sid: &str, _cookie: &CookieRecord) -> Result<(), StoreError> {
        drop(std::hint::black_box(self.cache.get(sid).await));
        Ok(())
    }

    async fn create(&self, _sid: &str, _record: &Record) -> Result<Created, StoreError> {
        Err(StoreError::Unavailable("not part of the comparison".into()))
    }

    async fn all(&self) -> Result<BTreeMap<String, Record>, StoreError> {
        Err(StoreError::Unavailable("not part of the comparison".into()))
    }

    async fn clear(&self) -> Result<(), StoreError> {
        self.cache.invalidate_all();
        Ok(())
    }

    async fn len(&self) -> Result<usize, StoreError> {
        Ok(self.cache.entry_count() as usize)
    }
}

// ---- filling -----------------------------------------------------------------------------

/// Fills `store` with sessions `0..n` (each its own payload), on two threads.
fn fill(store: &Store, n: u64) {
    let started = Instant::now();
    if store.kind == Kind::Redis {
        fill_concurrent(store, n);
    } else {
        let parts = 2u64;
        std::thread::scope(|s| {
            for p in 0..parts {
                let range = (n * p / parts)..(n * (p + 1) / parts);
                let store = &*store;
                s.spawn(move || match &store.embedded {
                    // The durable stores log every write; `set_now` does not wait for the
                    // fsync of `Always` (the timed runs do).
                    Some(e) => range.for_each(|i| {
                        e.set_now(Id::of(i).as_str(), &support::record(i))
                            .expect("fill")
                    }),
                    None => current_thread().block_on(async {
                        for i in range {
                            store
                                .dyn_store
                                .set(Id::of(i).as_str(), &support::record(i))
                                .await
                                .expect("fill");
                        }
                    }),
                });
            }
        });
    }
    if let Some(e) = &store.embedded {
        let _ = e.flush();
    }
    eprintln!(
        "compare: filled {} with {} sessions in {:.1} s",
        store.kind.label(),
        short_count(n),
        started.elapsed().as_secs_f64()
    );
}

/// Redis: many writes in flight, so the fill is not a million round trips in a row.
fn fill_concurrent(store: &Store, n: u64) {
    let rt = current_thread();
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::<Result<(), StoreError>>::new();
        for i in 0..n {
            if set.len() >= 256 {
                if let Some(r) = set.join_next().await {
                    r.expect("task").expect("fill");
                }
            }
            let s = store.dyn_store.clone();
            let _ = set.spawn(async move { s.set(Id::of(i).as_str(), &support::record(i)).await });
        }
        while let Some(r) = set.join_next().await {
            r.expect("task").expect("fill");
        }
    });
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ----------------------------------------------------------------------------------------
// The workloads
// ----------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Workload {
    ReadHeavy,
    WriteHeavy,
    TouchOnly,
    Churn,
}

impl Workload {
    const ALL: [Workload; 4] = [
        Workload::ReadHeavy,
        Workload::WriteHeavy,
        Workload::TouchOnly,
        Workload::Churn,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::ReadHeavy => "read_heavy",
            Workload::WriteHeavy => "write_heavy",
            Workload::TouchOnly => "touch_only",
            Workload::Churn => "churn",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Workload::ReadHeavy => "90 % get, 9 % set, 1 % create",
            Workload::WriteHeavy => "50 % get, 50 % set",
            Workload::TouchOnly => "100 % touch (a rolling site)",
            Workload::Churn => "create, get, destroy (each a third of the operations)",
        }
    }

    fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }
}

/// What one run of a workload measured.
#[derive(Debug, Default, Clone)]
struct Measured {
    ops: u64,
    /// Wall time from the first worker's start to the last worker's end.
    wall: Duration,
    /// Latency of every `SAMPLE_EVERY`-th operation, in ns.
    lat: Vec<u32>,
    /// Blocks of `BLOCK` operations that took over 1 ms.
    slow_blocks: u64,
    max_block: Duration,
    /// Gets of a prefilled session that found nothing.
    misses: u64,
    gets: u64,
    /// CPU time of the workers, and their time waiting for a CPU (other processes).
    cpu_ns: u64,
    wait_ns: u64,
}

impl Measured {
    fn merge(&mut self, o: Measured) {
        self.ops += o.ops;
        self.wall += o.wall;
        if self.lat.len() < 4_000_000 {
            self.lat.extend(o.lat);
        }
        self.slow_blocks += o.slow_blocks;
        self.max_block = self.max_block.max(o.max_block);
        self.misses += o.misses;
        self.gets += o.gets;
        self.cpu_ns += o.cpu_ns;
        self.wait_ns += o.wait_ns;
    }
}

/// Gives every worker of every run its own range of new ids.
static NEXT_WORKER: AtomicU64 = AtomicU64::new(1);

/// Runs `ops` operations of `w` on `threads` threads against a store holding sessions
/// `0..live`.
fn run(store: &Store, w: Workload, live: u64, threads: usize, ops: u64) -> Measured {
    let barrier = Barrier::new(threads);
    let results: Vec<(Instant, Instant, Measured)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let n = ops / threads as u64 + u64::from(t < ops % threads as u64);
                let barrier = &barrier;
                let dyn_store = &*store.dyn_store;
                let writer = &*store.writer;
                s.spawn(move || {
                    let rt = current_thread();
                    let worker = NEXT_WORKER.fetch_add(1, Ordering::Relaxed);
                    let mut rng = Rng::new(worker.wrapping_mul(0x2545_F491_4F6C_DD1D));
                    barrier.wait();
                    let (cpu0, wait0) = support::thread_sched_ns();
                    let t0 = Instant::now();
                    let mut m = rt.block_on(work(dyn_store, writer, w, live, n, &mut rng, worker));
                    let t1 = Instant::now();
                    let (cpu1, wait1) = support::thread_sched_ns();
                    m.cpu_ns = cpu1.saturating_sub(cpu0);
                    m.wait_ns = wait1.saturating_sub(wait0);
                    (t0, t1, m)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    let start = results.iter().map(|r| r.0).min().expect("a worker");
    let end = results.iter().map(|r| r.1).max().expect("a worker");
    let mut total = Measured::default();
    for (_, _, m) in results {
        total.merge(m);
    }
    total.wall = end - start;
    total
}

/// One worker: `n` operations of `w`. Every set and create writes new data (a new `views`)
/// through `writer`, as the store's layer would.
#[allow(clippy::too_many_arguments)]
async fn work(
    store: &dyn SessionStore,
    writer: &dyn LayerWrite,
    w: Workload,
    live: u64,
    n: u64,
    rng: &mut Rng,
    worker: u64,
) -> Measured {
    // New sessions get ids no other worker uses, beyond the prefilled ones.
    let mut next_new = (worker << 36) + live;
    let mut cookie = support::cookie_template();
    // The number the handler writes into `views`: new on every write.
    let mut views = worker << 32;
    let mut m = Measured {
        lat: Vec::with_capacity((n / SAMPLE_EVERY + 1) as usize),
        ..Measured::default()
    };
    let mut churn_id = Id::of(next_new);
    let mut block_start = Instant::now();
    for i in 0..n {
        if i % 1024 == 0 {
            // The layer sets `expires` to now + maxAge on every request.
            cookie.expires = Some(sessile::clock::now_ms() + support::MAX_AGE_MS);
        }
        let t = (i % SAMPLE_EVERY == 0).then(Instant::now);
        match w {
            Workload::ReadHeavy | Workload::WriteHeavy => {
                let roll = rng.below(1000);
                let (get_below, set_below) = if w == Workload::ReadHeavy {
                    (900, 990)
                } else {
                    (500, 1000)
                };
                if roll < get_below {
                    let id = Id::of(rng.below(live));
                    let got = store.get(id.as_str()).await.expect("get");
                    m.gets += 1;
                    m.misses += u64::from(got.is_none());
                    drop(std::hint::black_box(got));
                } else if roll < set_below {
                    let id = Id::of(rng.below(live));
                    views += 1;
                    writer
                        .write(id.as_str(), views, &cookie)
                        .await
                        .expect("set");
                } else {
                    let id = Id::of(next_new);
                    next_new += 1;
                    views += 1;
                    writer
                        .write(id.as_str(), views, &cookie)
                        .await
                        .expect("create");
                }
            }
            Workload::TouchOnly => {
                let id = Id::of(rng.below(live));
                store.touch(id.as_str(), &cookie).await.expect("touch");
            }
            Workload::Churn => match i % 3 {
                0 => {
                    churn_id = Id::of(next_new);
                    next_new += 1;
                    views += 1;
                    writer
                        .write(churn_id.as_str(), views, &cookie)
                        .await
                        .expect("create");
                }
                1 => {
                    let got = store.get(churn_id.as_str()).await.expect("get");
                    m.gets += 1;
                    m.misses += u64::from(got.is_none());
                    drop(std::hint::black_box(got));
                }
                _ => store.destroy(churn_id.as_str()).await.expect("destroy"),
            },
        }
        if let Some(t) = t {
            m.lat
                .push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
        }
        if i % BLOCK == BLOCK - 1 {
            let now = Instant::now();
            let took = now - block_start;
            m.max_block = m.max_block.max(took);
            m.slow_blocks += u64::from(took > Duration::from_millis(1));
            block_start = now;
        }
    }
    // A churn run cut mid-cycle leaves at most one session behind: destroy it.
    if w == Workload::Churn && !n.is_multiple_of(3) {
        let _ = store.destroy(churn_id.as_str()).await;
    }
    m.ops = n;
    m
}

// ----------------------------------------------------------------------------------------
// Tables
// ----------------------------------------------------------------------------------------

type Cell = (Workload, u64, usize, Kind);

#[derive(Default)]
struct Tables {
    cells: BTreeMap<Cell, Measured>,
    /// A durable store's snapshot files: those present before the cell's first timed run, and
    /// every one seen after a timed run (a new name is a snapshot taken during the cell).
    snaps: BTreeMap<Cell, (BTreeSet<String>, BTreeSet<String>)>,
}

/// The names of the snapshot files in a durable store's directory.
fn snapshot_names(store: &Store) -> BTreeSet<String> {
    let Some(dir) = &store._dir else {
        return BTreeSet::new();
    };
    std::fs::read_dir(&dir.0)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("snap-") && n.ends_with(".rkyv"))
                .collect()
        })
        .unwrap_or_default()
}

impl Tables {
    fn rate(&self, cell: &Cell) -> Option<f64> {
        let m = self.cells.get(cell)?;
        (m.wall > Duration::ZERO).then(|| m.ops as f64 / m.wall.as_secs_f64())
    }

    /// The table of one workload, for the given sizes and thread counts.
    fn table(&mut self, w: Workload, only: Option<(u64, usize)>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n### {} ({})\n", w.name(), w.describe());
        let _ = writeln!(
            out,
            "| sessions | threads | store | ops/s | CPU/op | p50 | p99 | p99.9 | max (sampled) | blocks > 1 ms | waited | × EmbeddedStore |"
        );
        let _ = writeln!(
            out,
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let keys: Vec<Cell> = self
            .cells
            .keys()
            .filter(|c| c.0 == w && only.is_none_or(|(s, t)| c.1 == s && c.2 == t))
            .copied()
            .collect();
        for key in keys {
            let base = self.rate(&(key.0, key.1, key.2, Kind::Embedded));
            let rate = self.rate(&key).unwrap_or(0.0);
            let m = self.cells.get_mut(&key).expect("a cell");
            m.lat.sort_unstable();
            let ratio = base.map_or("–".into(), |b| format!("{:.2}", rate / b));
            let miss = if m.misses > 0 {
                format!(" ({} of {} gets missed)", m.misses, m.gets)
            } else {
                String::new()
            };
            let busy = (m.cpu_ns + m.wait_ns).max(1) as f64;
            let _ = writeln!(
                out,
                "| {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {:.0} % | {} |",
                short_count(key.1),
                key.2,
                key.3.label(),
                miss,
                fmt_rate(rate),
                fmt_ns(m.cpu_ns as f64 / m.ops.max(1) as f64),
                fmt_ns(quantile(&m.lat, 0.5) as f64),
                fmt_ns(quantile(&m.lat, 0.99) as f64),
                fmt_ns(quantile(&m.lat, 0.999) as f64),
                fmt_ns(m.lat.last().copied().unwrap_or(0) as f64),
                m.slow_blocks,
                m.wait_ns as f64 / busy * 100.0,
                ratio
            );
        }
        let taken: Vec<String> = self
            .snaps
            .iter()
            .filter(|(c, _)| c.0 == w && only.is_none_or(|(s, t)| c.1 == s && c.2 == t))
            .map(|(c, (before, seen))| {
                format!(
                    "{} sessions, {} threads, {}: {}",
                    short_count(c.1),
                    c.2,
                    c.3.label(),
                    seen.difference(before).count()
                )
            })
            .collect();
        if !taken.is_empty() {
            let _ = writeln!(
                out,
                "\nSnapshots taken during the timed runs (new snapshot files seen after a run; at \
                 least this many): {}.",
                taken.join("; ")
            );
        }
        out
    }
}

// ----------------------------------------------------------------------------------------
// Memory, turnover and expiry (each in a process of its own)
// ----------------------------------------------------------------------------------------

/// Child: fill `n` sessions into a fresh store and print its memory figures.
fn child_memory(kind: Kind, n: u64) {
    let store = open_store(kind).expect("open the store");
    // Everything the fill needs besides the sessions exists before the baseline.
    let probe = support::record(u64::MAX);
    drop(probe);
    let base = mem_of(None);
    fill(&store, n);
    let after = mem_of(None);
    let per = |bytes: u64| bytes.saturating_sub(base.rss) as f64 / n as f64;
    println!(
        "MEM {} {} {:.1} {:.1} {:.1}",
        kind.name(),
        n,
        per(after.hwm),
        per(after.rss),
        after.anon.saturating_sub(base.anon) as f64 / n as f64
    );
}

/// Child: 10× turnover of a 100k live set, then expiry of 100k sessions.
fn child_lifecycle() {
    let live = support::env_num("COMPARE_TURNOVER_LIVE", 100_000);
    let store = EmbeddedStore::new();
    let base = mem_of(None).rss;
    for i in 0..live {
        store
            .set_now(Id::of(i).as_str(), &support::record(i))
            .expect("set");
    }
    let mut samples = Vec::new();
    for round in 1..=10u64 {
        for i in round * live..(round + 1) * live {
            store
                .set_now(Id::of(i).as_str(), &support::record(i))
                .expect("set");
            store
                .destroy_now(Id::of(i - live).as_str())
                .expect("destroy");
        }
        samples.push(mem_of(None).rss.saturating_sub(base));
    }
    let line = samples
        .iter()
        .map(|b| format!("{:.1}", *b as f64 / (1 << 20) as f64))
        .collect::<Vec<_>>()
        .join(",");
    println!("TURNOVER {live} {line}");

    // Expiry: a fresh batch that expires in about a second; how long after its last deadline
    // until the sweeper has freed every entry?
    store.clear_now();
    let before = mem_of(None).rss;
    let mut cookie = support::cookie_template();
    let deadline = sessile::clock::now_ms() + 1500;
    cookie.expires = Some(deadline);
    for i in 0..live {
        let r = Record {
            cookie: cookie.clone(),
            data: support::payload(i),
        };
        store
            .set_now(Id::of(1 << 40 | i).as_str(), &r)
            .expect("set");
    }
    let filled = mem_of(None).rss;
    let started = Instant::now();
    let freed_ms = loop {
        if store.usage().0 == 0 {
            break sessile::clock::now_ms() - deadline;
        }
        if started.elapsed() > Duration::from_secs(10) {
            break i64::MAX;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    std::thread::sleep(Duration::from_millis(300));
    let after = mem_of(None).rss;
    println!(
        "EXPIRY {live} {freed_ms} {:.1} {:.1} {:.1}",
        before as f64 / (1 << 20) as f64,
        filled as f64 / (1 << 20) as f64,
        after as f64 / (1 << 20) as f64
    );
}

/// `clear` without a runtime.
trait ClearNow {
    fn clear_now(&self);
}

impl ClearNow for EmbeddedStore {
    fn clear_now(&self) {
        current_thread()
            .block_on(SessionStore::clear(self))
            .expect("clear");
    }
}

fn spawn_child(
    vars: &[(&str, String)],
    pin: Option<usize>,
) -> std::io::Result<std::process::Child> {
    let exe = std::env::current_exe()?;
    let mut cmd = match pin.filter(|_| has_taskset()) {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()
}

fn has_taskset() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        && Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn run_child(vars: &[(&str, String)]) -> String {
    match spawn_child(vars, None).and_then(|c| c.wait_with_output()) {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => format!("ERROR {e}"),
    }
}

fn memory_report(kinds: &[Kind], n: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n### Memory per session at {} sessions ({}-byte payload, {}-byte id; one process per store)\n",
        short_count(n),
        support::PAYLOAD_LEN,
        support::ID_LEN
    );
    let _ = writeln!(
        out,
        "| store | all-in, peak RSS | over id + payload, peak | all-in, RSS after fill | anonymous RSS after fill |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    let text_len = (support::ID_LEN + support::PAYLOAD_LEN) as f64;
    for &kind in kinds {
        if kind == Kind::Redis {
            continue; // Redis keeps its sessions in its own process.
        }
        let text = run_child(&[
            (CHILD_ENV, "memory".into()),
            ("SESSILE_COMPARE_STORE", kind.name().into()),
            ("SESSILE_COMPARE_N", n.to_string()),
        ]);
        let line = text.lines().find(|l| l.starts_with("MEM ")).unwrap_or("");
        let f: Vec<f64> = line
            .split_whitespace()
            .skip(3)
            .filter_map(|x| x.parse().ok())
            .collect();
        if f.len() == 3 {
            let _ = writeln!(
                out,
                "| {} | {:.0} B | {:.0} B | {:.0} B | {:.0} B |",
                kind.label(),
                f[0],
                f[0] - text_len,
                f[1],
                f[2]
            );
        } else {
            let _ = writeln!(out, "| {} | failed: {} | | | |", kind.label(), text.trim());
        }
    }
    out
}

fn lifecycle_report() -> String {
    let text = run_child(&[(CHILD_ENV, "lifecycle".into())]);
    let mut out = String::from("\n### EmbeddedStore: turnover and expiry\n\n");
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["TURNOVER", live, series] => {
                let mib: Vec<f64> = series.split(',').filter_map(|x| x.parse().ok()).collect();
                let plateau = mib.first().copied().unwrap_or(0.0);
                let worst = mib
                    .iter()
                    .map(|m| (m - plateau) / plateau * 100.0)
                    .fold(0.0f64, |a, d| if d.abs() > a.abs() { d } else { a });
                let _ = writeln!(
                    out,
                    "- 10× turnover of a {live} live set (create one, destroy the oldest): RSS over the \
                     baseline after each turnover {series} MiB; the largest deviation from the plateau \
                     (after the first) is {worst:+.1} %."
                );
            }
            ["EXPIRY", live, freed, before, filled, after] => {
                let freed = if *freed == i64::MAX.to_string() {
                    "not within 10 s".to_owned()
                } else {
                    format!("{freed} ms after their deadline")
                };
                let _ = writeln!(
                    out,
                    "- {live} sessions expiring together were all freed {freed}; RSS {before} MiB \
                     before, {filled} MiB filled, {after} MiB after."
                );
            }
            _ => {}
        }
    }
    out
}

// ----------------------------------------------------------------------------------------
// The HTTP comparison (COMPARE_HTTP=1)
// ----------------------------------------------------------------------------------------

mod http_cmp {
    //! The same axum routes with sessile's layer and with tower-sessions' layer over its
    //! `MemoryStore`, over `MokaStore` (tower-sessions 0.14's layer: that store implements
    //! the 0.14 trait) and over sessile's `EmbeddedStore` (the `tower-sessions` feature), all
    //! with signed cookies. The server runs in a child process pinned to CPU 0 (`taskset`),
    //! the load generator (hyper, one thread, keep-alive connections) in another pinned to
    //! CPU 1.

    use super::*;
    use axum::routing::get;
    use axum::Router;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;

    /// A ~170-byte field stored by `/views` in a new session, so sessions are about the
    /// payload size of the store comparison.
    const PROFILE: &str = "name=Ada Lovelace;email=ada@example.org;roles=admin,editor;tz=Europe/London;locale=en-GB;plan=pro;theme=dark;last=2026-01-01T00:00:00Z;flags=a,b,c,d;xxxxxxxxxxxxxx";

    /// The routes behind tower-sessions' `SessionManagerLayer` (of crate `$ts`) over `$store`,
    /// with a signed cookie, and `Expiry::OnInactivity` of `$max_age_s` (when not 0).
    macro_rules! ts_routes {
        ($ts:ident, $store:expr, $max_age_s:expr) => {{
            use $ts::{cookie::Key, Expiry, Session, SessionManagerLayer};
            let mut layer = SessionManagerLayer::new($store).with_secure(false);
            if $max_age_s > 0 {
                layer = layer.with_expiry(Expiry::OnInactivity(time::Duration::seconds(
                    $max_age_s as i64,
                )));
            }
            let layer = layer.with_signed(Key::from(&[7u8; 64]));
            Router::new()
                .route(
                    "/read",
                    get(|s: Session| async move {
                        let n: u64 = s.get("views").await.ok().flatten().unwrap_or(0);
                        n.to_string()
                    }),
                )
                .route(
                    "/views",
                    get(|s: Session| async move {
                        let n: u64 = s.get("views").await.ok().flatten().unwrap_or(0) + 1;
                        if n == 1 {
                            let _ = s.insert("profile", PROFILE).await;
                        }
                        let _ = s.insert("views", n).await;
                        n.to_string()
                    }),
                )
                .layer(layer)
        }};
    }

    pub fn app(lib: &str, max_age_s: u64) -> Router {
        let plain = Router::new().route("/plain", get(|| async { "ok" }));
        match lib {
            "sessile" => {
                let mut b = sessile::SessionLayer::builder().secret("compare bench secret");
                if max_age_s > 0 {
                    b = b.cookie(
                        sessile::CookieOptions::new().max_age(Duration::from_secs(max_age_s)),
                    );
                }
                let layer = b.build().expect("valid options");
                Router::new()
                    .route(
                        "/read",
                        get(|s: sessile::Session| async move {
                            let n: u64 = s.get("views").ok().flatten().unwrap_or(0);
                            n.to_string()
                        }),
                    )
                    .route(
                        "/views",
                        get(|s: sessile::Session| async move {
                            let n: u64 = s.get("views").ok().flatten().unwrap_or(0) + 1;
                            if n == 1 {
                                let _ = s.insert("profile", PROFILE);
                            }
                            let _ = s.insert("views", n);
                            n.to_string()
                        }),
                    )
                    .layer(layer)
                    .merge(plain)
            }
            // tower-sessions' layer over sessile's store (the `tower-sessions` feature), and
            // over MokaStore, whose trait is tower-sessions-core 0.14: tower-sessions 0.14's
            // layer (the one axum-login 0.18 runs) serves it.
            "ts-sessile" => {
                ts_routes!(tower_sessions, sessile::EmbeddedStore::new(), max_age_s).merge(plain)
            }
            "ts-moka" => ts_routes!(
                tower_sessions_014,
                tower_sessions_moka_store::MokaStore::new(None),
                max_age_s
            )
            .merge(plain),
            _ => ts_routes!(
                tower_sessions,
                tower_sessions::MemoryStore::default(),
                max_age_s
            )
            .merge(plain),
        }
    }

    /// Child: serve `app(lib)` on a free loopback port on one thread; print the port.
    pub fn child_server() {
        let lib = std::env::var("SESSILE_COMPARE_LIB").unwrap_or_else(|_| "sessile".into());
        let max_age = support::env_num("SESSILE_COMPARE_MAX_AGE", 0);
        current_thread().block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let port = listener.local_addr().expect("addr").port();
            println!("PORT {port}");
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            axum::serve(listener, app(&lib, max_age))
                .await
                .expect("serve");
        });
    }

    #[derive(Default)]
    struct Stats {
        reqs: u64,
        errors: u64,
        lat: Vec<u32>,
    }

    /// One keep-alive connection sending `mode` requests until `until`.
    async fn connection(port: u16, mode: &str, until: Instant) -> Stats {
        let mut st = Stats::default();
        let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            st.errors += 1;
            return st;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, conn)) =
            hyper::client::conn::http1::handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(stream))
                .await
        else {
            st.errors += 1;
            return st;
        };
        tokio::spawn(conn);
        let request = |path: &str, cookie: Option<&str>| {
            let mut b = http::Request::get(path).header(http::header::HOST, "127.0.0.1");
            if let Some(c) = cookie {
                b = b.header(http::header::COOKIE, c);
            }
            b.body(Empty::new()).expect("request")
        };
        // `/read` and `/views` reuse one session per connection, made by a first `/views`.
        let mut cookie = None;
        if mode == "read" || mode == "views" {
            if let Ok(res) = sender.send_request(request("/views", None)).await {
                cookie = res
                    .headers()
                    .get(http::header::SET_COOKIE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(';').next())
                    .map(str::to_owned);
                let _ = res.into_body().collect().await;
            }
            if cookie.is_none() {
                st.errors += 1;
                return st;
            }
        }
        let path = match mode {
            "plain" => "/plain",
            "read" => "/read",
            _ => "/views",
        };
        let mut i = 0u64;
        while Instant::now() < until {
            if sender.ready().await.is_err() {
                st.errors += 1;
                break;
            }
            let t = Instant::now();
            match sender.send_request(request(path, cookie.as_deref())).await {
                Ok(res) if res.status().is_success() => {
                    let _ = res.into_body().collect().await;
                    st.reqs += 1;
                }
                _ => st.errors += 1,
            }
            if i.is_multiple_of(8) {
                st.lat
                    .push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
            }
            i += 1;
        }
        st
    }

    /// Child: the load generator. Prints `LOAD reqs secs errors p50 p99 cpu rss...`.
    pub fn child_load() {
        let port = support::env_num("SESSILE_COMPARE_PORT", 0) as u16;
        let mode = std::env::var("SESSILE_COMPARE_MODE").unwrap_or_else(|_| "plain".into());
        let secs = support::env_num("SESSILE_COMPARE_SECS", 5);
        let conns = support::env_num("SESSILE_COMPARE_CONNS", 32);
        let server = support::env_num("SESSILE_COMPARE_SERVER_PID", 0) as u32;
        let rt = current_thread();
        let (stats, cpu, rss) = rt.block_on(async move {
            let until = Instant::now() + Duration::from_secs(secs);
            let cpu0 = cpu_ticks(server);
            let t0 = Instant::now();
            let sampler = tokio::spawn(async move {
                let mut rss = Vec::new();
                while Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    rss.push(support::mem_of(Some(server)).rss);
                }
                rss
            });
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..conns {
                let mode = mode.clone();
                set.spawn(async move { connection(port, &mode, until).await });
            }
            let mut all = Stats::default();
            while let Some(Ok(s)) = set.join_next().await {
                all.reqs += s.reqs;
                all.errors += s.errors;
                all.lat.extend(s.lat);
            }
            let cpu =
                (cpu_ticks(server) - cpu0) as f64 / ticks_per_second() / t0.elapsed().as_secs_f64();
            (all, cpu, sampler.await.unwrap_or_default())
        });
        let mut lat = stats.lat;
        lat.sort_unstable();
        let rss: Vec<String> = rss.iter().map(|b| (b >> 20).to_string()).collect();
        println!(
            "LOAD {} {} {} {} {} {:.2} {}",
            stats.reqs,
            secs,
            stats.errors,
            quantile(&lat, 0.5),
            quantile(&lat, 0.99),
            cpu,
            rss.join(",")
        );
    }

    fn cpu_ticks(pid: u32) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which may hold spaces): utime is the 14th field.
        let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        n(11) + n(12)
    }

    fn ticks_per_second() -> f64 {
        // `getconf CLK_TCK`; 100 on every Linux this runs on.
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    }

    struct Row {
        lib: &'static str,
        mode: &'static str,
        rps: f64,
        errors: u64,
        p50: u32,
        p99: u32,
        cpu: f64,
        rss: String,
    }

    fn one(lib: &'static str, mode: &'static str, secs: u64, conns: u64, max_age: u64) -> Row {
        let fail = |why: String| {
            eprintln!("compare: http {lib} {mode}: {why}");
            Row {
                lib,
                mode,
                rps: 0.0,
                errors: 1,
                p50: 0,
                p99: 0,
                cpu: 0.0,
                rss: String::new(),
            }
        };
        let mut server = match spawn_child(
            &[
                (CHILD_ENV, "http-server".into()),
                ("SESSILE_COMPARE_LIB", lib.into()),
                ("SESSILE_COMPARE_MAX_AGE", max_age.to_string()),
            ],
            Some(0),
        ) {
            Ok(c) => c,
            Err(e) => return fail(e.to_string()),
        };
        let mut line = String::new();
        if let Some(out) = server.stdout.as_mut() {
            use std::io::BufRead as _;
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse::<u16>().ok());
        let row = match port {
            None => fail(format!("the server did not start: {line:?}")),
            Some(port) if use_wrk() => match wrk(port, mode, secs, conns, server.id()) {
                Ok(r) => Row { lib, mode, ..r },
                Err(e) => fail(e),
            },
            Some(port) => {
                let out = spawn_child(
                    &[
                        (CHILD_ENV, "http-load".into()),
                        ("SESSILE_COMPARE_PORT", port.to_string()),
                        ("SESSILE_COMPARE_MODE", mode.into()),
                        ("SESSILE_COMPARE_SECS", secs.to_string()),
                        ("SESSILE_COMPARE_CONNS", conns.to_string()),
                        ("SESSILE_COMPARE_SERVER_PID", server.id().to_string()),
                    ],
                    Some(1),
                )
                .and_then(|c| c.wait_with_output());
                match out {
                    Err(e) => fail(e.to_string()),
                    Ok(out) => {
                        let text = String::from_utf8_lossy(&out.stdout).into_owned();
                        let f: Vec<&str> = text
                            .lines()
                            .find(|l| l.starts_with("LOAD "))
                            .unwrap_or("")
                            .split_whitespace()
                            .collect();
                        if f.len() < 7 {
                            fail(format!("no result: {text:?}"))
                        } else {
                            let num = |i: usize| f[i].parse::<f64>().unwrap_or(0.0);
                            Row {
                                lib,
                                mode,
                                rps: num(1) / num(2),
                                errors: num(3) as u64,
                                p50: num(4) as u32,
                                p99: num(5) as u32,
                                cpu: num(6),
                                rss: f.get(7).copied().unwrap_or("").to_owned(),
                            }
                        }
                    }
                }
            }
        };
        // The server is this bench's own child.
        let _ = server.kill();
        let _ = server.wait();
        row
    }

    /// The load generator: wrk when it is on the PATH (Debian: `apt-get install wrk`)
    /// unless `COMPARE_HTTP_LOAD=rust`; otherwise the hyper one in this binary.
    fn use_wrk() -> bool {
        std::env::var("COMPARE_HTTP_LOAD").as_deref() != Ok("rust")
            && Command::new("wrk")
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
    }

    /// One plain HTTP/1.1 request; the `name=value` of its `Set-Cookie`, if any.
    fn fetch_cookie(port: u16, path: &str) -> Option<String> {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        text.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
            .and_then(|l| l.split_once(':'))
            .and_then(|(_, v)| v.trim().split(';').next())
            .map(str::to_owned)
    }

    /// wrk's latency figure (`412.00us`, `1.20ms`, `2.00s`) in ns.
    fn wrk_ns(s: &str) -> f64 {
        let num = |suffix: &str, mul: f64| {
            s.strip_suffix(suffix)
                .and_then(|n| n.parse::<f64>().ok())
                .map(|n| n * mul)
        };
        num("us", 1e3)
            .or_else(|| num("ms", 1e6))
            .or_else(|| num("s", 1e9))
            .unwrap_or(0.0)
    }

    /// Runs wrk (one thread, pinned to CPU 1) against the server; samples its RSS and CPU.
    /// `/read` and `/views` reuse one session, made by a first `/views`, on every connection.
    fn wrk(port: u16, mode: &str, secs: u64, conns: u64, server: u32) -> Result<Row, String> {
        let path = match mode {
            "plain" => "/plain",
            "read" => "/read",
            _ => "/views",
        };
        let mut args: Vec<String> = vec![
            "-t1".into(),
            format!("-c{conns}"),
            format!("-d{secs}s"),
            "--latency".into(),
        ];
        if mode == "read" || mode == "views" {
            let cookie = fetch_cookie(port, "/views").ok_or("no session cookie")?;
            args.push("-H".into());
            args.push(format!("Cookie: {cookie}"));
        }
        args.push(format!("http://127.0.0.1:{port}{path}"));
        let mut cmd = if has_taskset() {
            let mut c = Command::new("taskset");
            c.args(["-c", "1", "wrk"]);
            c
        } else {
            Command::new("wrk")
        };
        let cpu0 = cpu_ticks(server);
        let t0 = Instant::now();
        let mut child = cmd
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut rss = Vec::new();
        while child.try_wait().map_err(|e| e.to_string())?.is_none() {
            std::thread::sleep(Duration::from_millis(500));
            if t0.elapsed() < Duration::from_secs(secs) {
                rss.push(support::mem_of(Some(server)).rss >> 20);
            }
        }
        let cpu =
            (cpu_ticks(server) - cpu0) as f64 / ticks_per_second() / t0.elapsed().as_secs_f64();
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let field = |prefix: &str| {
            text.lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix(prefix))
                .map(|r| r.split_whitespace().next().unwrap_or("").to_owned())
        };
        let rps = field("Requests/sec:")
            .and_then(|r| r.parse::<f64>().ok())
            .ok_or_else(|| format!("no result from wrk: {text:?}"))?;
        let errors = text
            .lines()
            .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
            .count() as u64;
        Ok(Row {
            lib: "",
            mode: "",
            rps,
            errors,
            p50: wrk_ns(&field("50%").unwrap_or_default()) as u32,
            p99: wrk_ns(&field("99%").unwrap_or_default()) as u32,
            cpu,
            rss: rss.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
        })
    }

    /// The libraries compared over HTTP (`COMPARE_HTTP_LIBS` picks some): sessile's layer;
    /// tower-sessions' layer over its MemoryStore, over MokaStore and over sessile's store.
    const LIBS: [&str; 4] = ["sessile", "tower-sessions", "ts-moka", "ts-sessile"];

    pub fn report() -> String {
        let secs = support::env_num("COMPARE_HTTP_SECS", 5);
        let conns = support::env_num("COMPARE_HTTP_CONNS", 32);
        let flood_secs = support::env_num("COMPARE_HTTP_FLOOD_SECS", 12);
        let pinned = has_taskset();
        let reps = support::env_num("COMPARE_HTTP_REPS", 1).max(1);
        // The two libraries alternate route by route, so a change in the machine's load
        // between runs touches both; with `COMPARE_HTTP_REPS` > 1 the best run is kept.
        let mut rows: Vec<Row> = Vec::new();
        let picked = support::env_list("COMPARE_HTTP_LIBS", &LIBS);
        let libs: Vec<&'static str> = LIBS
            .into_iter()
            .filter(|l| picked.iter().any(|p| p == l))
            .collect();
        for mode in ["plain", "read", "views", "new"] {
            for rep in 0..reps {
                for &lib in &libs {
                    let (s, age) = if mode == "new" {
                        (flood_secs, 3)
                    } else {
                        (secs, 0)
                    };
                    eprintln!("compare: http {lib} {mode} ({s} s, run {})", rep + 1);
                    let row = one(lib, mode, s, conns, age);
                    match rows.iter_mut().find(|r| r.lib == lib && r.mode == mode) {
                        Some(best) if best.rps >= row.rps => {}
                        Some(best) => *best = row,
                        None => rows.push(row),
                    }
                }
            }
        }
        rows.sort_by_key(|r| {
            (
                LIBS.iter().position(|l| *l == r.lib),
                ["plain", "read", "views", "new"]
                    .iter()
                    .position(|m| *m == r.mode),
            )
        });
        let rps = |lib: &str, mode: &str| {
            rows.iter()
                .find(|r| r.lib == lib && r.mode == mode)
                .map_or(0.0, |r| r.rps)
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n### HTTP on loopback ({conns} keep-alive connections, {secs} s per route, best of {reps}, server {}, load generator {} {})\n",
            if pinned { "pinned to CPU 0" } else { "unpinned" },
            if use_wrk() { "wrk (one thread)" } else { "hyper (this bench, one thread)" },
            if pinned { "pinned to CPU 1" } else { "unpinned" }
        );
        let _ = writeln!(
            out,
            "| library | route | requests/s | p50 | p99 | errors | server CPU | × tower-sessions | × /plain | server RSS (MiB, every 0.5 s) |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
        for r in &rows {
            let library = match r.lib {
                "tower-sessions" => "tower-sessions + MemoryStore",
                "ts-moka" => "tower-sessions 0.14 + MokaStore",
                "ts-sessile" => "tower-sessions + sessile EmbeddedStore",
                other => other,
            };
            let route = match r.mode {
                "plain" => "/plain (no session)",
                "read" => "/read (reused session)",
                "views" => "/views (reused session)",
                _ => "/views (new visitors, maxAge 3 s)",
            };
            let other = rps("tower-sessions", r.mode);
            let plain = rps(r.lib, "plain");
            let rss = if r.mode == "new" {
                r.rss.clone()
            } else {
                r.rss.rsplit(',').next().unwrap_or("").to_owned()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {} | {} | {} | {:.0} % | {:.2} | {:.2} | {} |",
                library,
                route,
                r.rps,
                fmt_ns(r.p50 as f64),
                fmt_ns(r.p99 as f64),
                r.errors,
                r.cpu * 100.0,
                if other > 0.0 { r.rps / other } else { 0.0 },
                if plain > 0.0 { r.rps / plain } else { 0.0 },
                rss
            );
        }
        out
    }
}

// ----------------------------------------------------------------------------------------
// main
// ----------------------------------------------------------------------------------------

fn main() {
    if let Ok(child) = std::env::var(CHILD_ENV) {
        match child.as_str() {
            "memory" => {
                let kind = std::env::var("SESSILE_COMPARE_STORE")
                    .ok()
                    .and_then(|s| Kind::parse(&s))
                    .expect("SESSILE_COMPARE_STORE");
                child_memory(kind, support::env_num("SESSILE_COMPARE_N", 1_000_000));
            }
            "lifecycle" => child_lifecycle(),
            "http-server" => http_cmp::child_server(),
            "http-load" => http_cmp::child_load(),
            other => eprintln!("compare: unknown child {other:?}"),
        }
        return;
    }
    // `cargo test --benches` runs bench binaries without `--bench`: do nothing there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("compare: nothing to do outside `cargo bench -p sessile-bench --bench compare`");
        return;
    }

    let started = Instant::now();
    let sizes: Vec<u64> = support::env_list("COMPARE_SESSIONS", &["100k", "1M"])
        .iter()
        .filter_map(|s| support::parse_count(s))
        .collect();
    let threads: Vec<usize> = support::env_list("COMPARE_THREADS", &["1", "2"])
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let workloads: Vec<Workload> =
        support::env_list("COMPARE_WORKLOADS", &Workload::ALL.map(Workload::name))
            .iter()
            .filter_map(|s| Workload::parse(s))
            .collect();
    let mut kinds: Vec<Kind> = support::env_list("COMPARE_STORES", &Kind::ALL.map(Kind::name))
        .iter()
        .filter_map(|s| Kind::parse(s))
        .collect();
    if kinds.contains(&Kind::Redis)
        && (std::env::var("REDIS_URL").is_err() || !cfg!(feature = "redis"))
    {
        eprintln!(
            "compare: RedisStore skipped (needs REDIS_URL and `cargo bench -p sessile-bench --features redis --bench compare`)"
        );
        kinds.retain(|k| *k != Kind::Redis);
    }
    let http = std::env::var("COMPARE_HTTP").unwrap_or_default();
    let secs = support::env_num("COMPARE_SECS", 1);
    let snapshots_during = std::env::var("COMPARE_SNAPSHOTS").as_deref() == Ok("during");

    let mut report = String::new();
    let _ = writeln!(
        report,
        "Machine: {}. Date: {}. Command: `cargo bench -p sessile-bench --bench compare`. Load average at the start: {}. Snapshots: {}.",
        support::machine(),
        time::OffsetDateTime::now_utc().date(),
        support::load_average(),
        if snapshots_during {
            "during the timed runs (`COMPARE_SNAPSHOTS=during`)"
        } else {
            "forced between benchmarks"
        }
    );

    if http != "only" {
        let mut c = Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(secs))
            .nresamples(10_000)
            .configure_from_args();
        let tables = Mutex::new(Tables::default());
        for &size in &sizes {
            let mut stores: Vec<Option<Store>> = kinds.iter().map(|_| None).collect();
            for &w in &workloads {
                for &t in &threads {
                    let mut group =
                        c.benchmark_group(format!("{}/{}/{}t", w.name(), short_count(size), t));
                    group
                        .throughput(Throughput::Elements(1))
                        .sampling_mode(SamplingMode::Flat);
                    for (k, &kind) in kinds.iter().enumerate() {
                        let slot = &mut stores[k];
                        group.bench_function(BenchmarkId::from_parameter(kind.name()), |b| {
                            // Criterion times the whole `iter_custom` call to plan its
                            // samples: the fill stays out of it.
                            let store = slot.get_or_insert_with(|| {
                                let store = open_store(kind).expect("open the store");
                                fill(&store, size);
                                store
                            });
                            let durable = store._dir.is_some();
                            b.iter_custom(|iters| {
                                let cell = (w, size, t, kind);
                                if durable {
                                    let names = snapshot_names(store);
                                    let mut tables = tables.lock().expect("tables");
                                    tables
                                        .snaps
                                        .entry(cell)
                                        .or_insert_with(|| (names.clone(), names));
                                }
                                let m = run(store, w, size, t, iters.max(t as u64));
                                let wall = m.wall;
                                let mut tables = tables.lock().expect("tables");
                                if durable {
                                    let names = snapshot_names(store);
                                    if let Some((_, seen)) = tables.snaps.get_mut(&cell) {
                                        seen.extend(names);
                                    }
                                }
                                tables.cells.entry(cell).or_default().merge(m);
                                wall
                            })
                        });
                        // A durable store snapshots in the background once its log has grown
                        // by 64 MiB. By default that snapshot is taken now, between
                        // benchmarks, rather than let it land on the next store's
                        // measurement; `COMPARE_SNAPSHOTS=during` leaves the store to take its
                        // snapshots where they fall, inside its own timed runs too.
                        if let Some(e) = slot.as_ref().and_then(|s| s.embedded.as_ref()) {
                            if e.is_durable() && w != Workload::TouchOnly && !snapshots_during {
                                let _ = e.snapshot();
                            }
                        }
                    }
                    group.finish();
                    let table = tables.lock().expect("tables").table(w, Some((size, t)));
                    println!("{table}");
                }
            }
            // Leave a shared Redis server as found: the bench's sessions (under its own prefix)
            // go with the stores of this size.
            for store in stores.iter().flatten() {
                if store.kind == Kind::Redis {
                    let _ = current_thread().block_on(store.dyn_store.clear());
                }
            }
        }
        c.final_summary();
        let mut tables = tables.into_inner().expect("tables");
        let _ = writeln!(report, "\n## Workloads through `SessionStore`");
        for &w in &workloads {
            report.push_str(&tables.table(w, None));
        }
        if std::env::var("COMPARE_MEMORY").as_deref() != Ok("0") {
            let n = std::env::var("COMPARE_MEMORY_SESSIONS")
                .ok()
                .and_then(|s| support::parse_count(&s))
                .unwrap_or(1_000_000);
            report.push_str(&memory_report(&kinds, n));
        }
        if std::env::var("COMPARE_LIFECYCLE").as_deref() != Ok("0") {
            report.push_str(&lifecycle_report());
        }
    }
    if http == "1" || http == "only" {
        report.push_str(&http_cmp::report());
    }
    let _ = writeln!(
        report,
        "\n(compare ran for {:.0} s; load average at the end: {})",
        started.elapsed().as_secs_f64(),
        support::load_average()
    );
    println!("\n{report}");
    if let Some(path) = report_path() {
        if std::fs::write(&path, &report).is_ok() {
            println!("compare: tables written to {}", path.display());
        }
    }
}

/// `target/criterion/compare.md`, beside criterion's report.
fn report_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/compare-<hash>
    let target = exe.parent()?.parent()?.parent()?;
    let dir = target.join("criterion");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("compare.md"))
}
