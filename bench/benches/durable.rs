//! The durable embedded store (`EmbeddedStore::builder().open(dir)`): restart, log replay,
//! write throughput per fsync policy, group commit under `Always`, snapshots while serving,
//! and disk use. Results: BENCHMARKS.md, "The durable store".
//!
//! ```text
//! cargo bench -p sessile-bench --bench durable                      # everything: 2.5 to 5 minutes on 2 cores
//! cargo bench -p sessile-bench --bench durable -- durable_open      # one group (a criterion filter)
//! DURABLE_SESSIONS=100000 cargo bench -p sessile-bench --bench durable   # a quick run
//! ```
//!
//! Environment knobs:
//! - `DURABLE_SESSIONS` (default 1000000): sessions in every store. Each is a 32-byte id and
//!   168 bytes of JSON data (200 bytes of live data) with an express cookie; stores are filled
//!   with a distinct record per session, and the timed writes pick a uniformly random session
//!   (its id made on the spot) and one of 1024 pre-built records (in cache, as a handler's
//!   record would be).
//! - `DURABLE_SHARDS` (default: the store's, 64): the store's shard count.
//! - `DURABLE_DIR` (default the system temp dir): where the store directories are made
//!   (`sessile-durable-<pid>-<name>`); they are removed afterwards. Put it on the file system
//!   you want measured.
//! - `DURABLE_SECS` (default 3): criterion's measurement time of the throughput benchmarks.
//! - `DURABLE_WRITERS` (default 128): tasks in flight in the `Always` benchmark.
//! - `DURABLE_KEEP_SNAPSHOTS` (default: the store's, 2): snapshots kept (1 or 2); it
//!   changes the disk use.
//!
//! Groups:
//! - `durable_open/{log_only,snapshot}`: `open(dir)` until the first `get_now` succeeds, on
//!   a directory holding every session in the log only, or in a snapshot. The replay rate
//!   is sessions / `log_only`.
//! - `durable_set/{memory,never,everysec}/{1,2}`: `set_now` from 1 or 2 threads, uniform
//!   random ids over the sessions (all present), in memory or logged (snapshots off, so the
//!   log alone is measured).
//! - `durable_always/{fdatasync_raw,writers/1,writers/N}`: one thread writing 256 bytes and
//!   `File::sync_data` in the store's directory; acknowledged `SessionStore::set`s under
//!   `Always` from 1 and N tokio tasks (2 workers).
//! - `durable_snapshot/while_serving`: `snapshot()` of every session while a thread calls
//!   `set_now` in a loop and times every call; the write latencies during and outside
//!   snapshots are printed in the summary.
//! - `durable_disk` (not criterion): bytes on disk against live data with default
//!   snapshot settings, after filling, after a snapshot, after overwriting every session.
//!
//! - `durable_restarts`, `durable_replay` (not criterion, one sample per process, nothing else
//!   runs): open after 5 restarts below the snapshot thresholds, and open of a log of one
//!   session's 5,000 field updates; see `durable_support/recovery.rs`.
//!
//! A summary with every target is printed at the end.

use std::cell::{OnceCell, RefCell};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use sessile::{EmbeddedStore, EmbeddedStoreBuilder, FsyncPolicy, SessionStore};

mod durable_support;
use durable_support::{
    fmt_bytes, fmt_ns, fmt_rate, median_ns, retry_locked, sched_times, CpuWait, Dataset, DiskUse,
    Knobs, Latencies, Rng, Stall, TempDir,
};

/// Benchmarks that ran in this process (the summary reads only their estimates).
static RAN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn ran(id: &str) {
    let mut r = RAN.lock().unwrap();
    if !r.iter().any(|x| x == id) {
        r.push(id.to_owned());
    }
}

fn ran_this_time(id: &str) -> bool {
    RAN.lock().unwrap().iter().any(|x| x == id)
}

/// Time spent waiting for a CPU, per benchmark (the machine may be shared).
static WAITS: Mutex<Vec<(String, CpuWait)>> = Mutex::new(Vec::new());

fn add_wait(id: &str, w: CpuWait) {
    let mut all = WAITS.lock().unwrap();
    match all.iter_mut().find(|(x, _)| x == id) {
        Some((_, acc)) => acc.add(w),
        None => all.push((id.to_owned(), w)),
    }
}

fn waits(id: &str) -> Option<CpuWait> {
    WAITS
        .lock()
        .unwrap()
        .iter()
        .find(|(x, _)| x == id)
        .map(|(_, w)| *w)
}

/// The store's defaults, but for `DURABLE_SHARDS` if set.
fn builder() -> EmbeddedStoreBuilder {
    let knob = |name: &str| -> Option<usize> { std::env::var(name).ok()?.parse().ok() };
    let b = EmbeddedStore::builder();
    let b = match knob("DURABLE_SHARDS") {
        Some(n) => b.shards(n),
        None => b,
    };
    match knob("DURABLE_KEEP_SNAPSHOTS") {
        Some(n) => b.keep_snapshots(n),
        None => b,
    }
}

/// A durable store that logs only: no snapshot unless asked.
fn log_only(policy: FsyncPolicy) -> EmbeddedStoreBuilder {
    builder()
        .fsync(policy)
        .snapshot_after_bytes(u64::MAX)
        .snapshot_interval(None)
}

fn fill(store: &EmbeddedStore, ds: &Dataset) {
    for (i, r) in ds.records.iter().enumerate() {
        store.set_now(Dataset::id(i).as_str(), r).expect("set");
    }
}

fn progress(what: &str) {
    eprintln!("[durable] {what}");
    let _ = std::io::stderr().flush();
}

/// `iters` sets of uniform random sessions from `threads` threads; returns the wall time
/// and the threads' time waiting for a CPU.
fn sets(
    store: &EmbeddedStore,
    ds: &Dataset,
    threads: usize,
    iters: u64,
    seed: u64,
) -> (Duration, CpuWait) {
    const CLAIM: i64 = 256;
    let left = AtomicI64::new(iters as i64);
    let start = Instant::now();
    let waits: Vec<CpuWait> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let left = &left;
                s.spawn(move || {
                    let (began, (_, wait0)) = (Instant::now(), sched_times());
                    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(t as u64));
                    let mut ops = 0;
                    loop {
                        let claimed = left.fetch_sub(CLAIM, Ordering::Relaxed);
                        if claimed <= 0 {
                            break;
                        }
                        for _ in 0..claimed.min(CLAIM) {
                            let (id, record) = ds.pick(&mut rng);
                            store.set_now(id.as_str(), record).expect("set");
                        }
                        ops += claimed.min(CLAIM) as u64;
                    }
                    CpuWait {
                        ops,
                        threads: threads as u64,
                        wall_ns: began.elapsed().as_nanos() as u64,
                        wait_ns: sched_times().1.saturating_sub(wait0),
                        run_ns: 0,
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("writer"))
            .collect()
    });
    let took = start.elapsed();
    let mut sum = CpuWait::default();
    waits.into_iter().for_each(|w| sum.add(w));
    (took, sum)
}

/// Restart: `open` until the first read is served.
fn bench_open(c: &mut Criterion, k: &Knobs, ds: &Dataset) {
    let probe = Dataset::id(ds.len() - 1);
    let log_dir = OnceCell::new();
    let snap_dir = OnceCell::new();
    let mut g = c.benchmark_group("durable_open");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for (name, cell) in [("log_only", &log_dir), ("snapshot", &snap_dir)] {
        g.bench_function(name, |b| {
            let dir: &TempDir = cell.get_or_init(|| {
                progress(&format!(
                    "building the {name} directory ({} sessions)",
                    ds.len()
                ));
                let dir = TempDir::new(&k.parent, name);
                let store = log_only(FsyncPolicy::EverySec)
                    .open(dir.path())
                    .expect("open");
                fill(&store, ds);
                if name == "snapshot" {
                    store.snapshot().expect("snapshot");
                }
                drop(store);
                dir
            });
            ran(&format!("durable_open/{name}"));
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (store, took, wait) = retry_locked(|| {
                        let (start, (_, wait0)) = (Instant::now(), sched_times());
                        let store = log_only(FsyncPolicy::EverySec).open(dir.path())?;
                        assert!(store.get_now(probe.as_str()).is_some(), "recovered");
                        Ok((store, start.elapsed(), sched_times().1 - wait0))
                    });
                    total += took;
                    add_wait(
                        &format!("durable_open/{name}"),
                        CpuWait {
                            ops: 1,
                            threads: 1,
                            wall_ns: took.as_nanos() as u64,
                            wait_ns: wait,
                            run_ns: 0,
                        },
                    );
                    drop(store);
                }
                total
            });
        });
    }
    g.finish();
}

/// `set_now` throughput in memory and under `Never` / `EverySec`, 1 and 2 threads.
fn bench_sets(c: &mut Criterion, k: &Knobs, ds: &Dataset) {
    let mut g = c.benchmark_group("durable_set");
    g.throughput(Throughput::Elements(1))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(k.secs));
    for (name, policy) in [
        ("memory", None),
        ("never", Some(FsyncPolicy::Never)),
        ("everysec", Some(FsyncPolicy::EverySec)),
    ] {
        let store: OnceCell<(EmbeddedStore, Option<TempDir>)> = OnceCell::new();
        for threads in [1usize, 2] {
            g.bench_function(BenchmarkId::new(name, threads), |b| {
                let (store, _) = store.get_or_init(|| {
                    progress(&format!("filling the {name} store"));
                    let (store, dir) = match policy {
                        None => (builder().build(), None),
                        Some(p) => {
                            let dir = TempDir::new(&k.parent, name);
                            (log_only(p).open(dir.path()).expect("open"), Some(dir))
                        }
                    };
                    fill(&store, ds);
                    (store, dir)
                });
                let id = format!("durable_set/{name}/{threads}");
                ran(&id);
                let mut seed = 0;
                b.iter_custom(|iters| {
                    seed += 1;
                    let (took, wait) = sets(store, ds, threads, iters, seed);
                    add_wait(&id, wait);
                    took
                });
            });
        }
        // The store and its (large) log go before the next one is filled.
        drop(store);
    }
    g.finish();
}

/// `Always`: the raw fdatasync rate of the file system, and acknowledged sets with 1 and N
/// writers in flight.
fn bench_always(c: &mut Criterion, k: &Knobs, ds: &Arc<Dataset>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = TempDir::new(&k.parent, "always");
    let store: OnceCell<EmbeddedStore> = OnceCell::new();
    let mut g = c.benchmark_group("durable_always");
    g.throughput(Throughput::Elements(1))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(k.secs));
    g.bench_function("fdatasync_raw", |b| {
        ran("durable_always/fdatasync_raw");
        std::fs::create_dir_all(dir.path()).expect("dir");
        let path = dir.path().join("fdatasync-probe");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("probe file");
        let block = [0x5au8; 256];
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                f.write_all(&block).expect("write");
                f.sync_data().expect("fdatasync");
            }
            start.elapsed()
        });
        drop(f);
        let _ = std::fs::remove_file(&path);
    });
    for writers in [1, k.writers] {
        g.bench_function(BenchmarkId::new("writers", writers), |b| {
            let store = store.get_or_init(|| {
                progress("filling the Always store");
                let s = log_only(FsyncPolicy::Always)
                    .open(dir.path())
                    .expect("open");
                fill(&s, ds);
                s.flush().expect("flush");
                s
            });
            ran(&format!("durable_always/writers/{writers}"));
            let mut seed = 0u64;
            b.to_async(&rt).iter_custom(|iters| {
                seed += 1;
                let (store, ds) = (store.clone(), ds.clone());
                async move {
                    let left = Arc::new(AtomicI64::new(iters as i64));
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..writers)
                        .map(|w| {
                            let (store, ds, left) = (store.clone(), ds.clone(), left.clone());
                            tokio::spawn(async move {
                                let mut rng = Rng::new(seed << 20 | w as u64);
                                while left.fetch_sub(1, Ordering::Relaxed) > 0 {
                                    let (id, record) = ds.pick(&mut rng);
                                    store.set(id.as_str(), record).await.expect("set");
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("task");
                    }
                    start.elapsed()
                }
            });
        });
    }
    g.finish();
    drop(store);
}

/// What the writer thread of the snapshot run saw.
#[derive(Default)]
struct WriterReport {
    during: Latencies,
    outside: Latencies,
    stalls: Vec<Stall>,
    /// The writer's time, split by phase: [outside snapshots, during snapshots].
    cpu: [CpuWait; 2],
}

struct SnapshotRun {
    /// When each snapshot started and how long it took, from `epoch`.
    windows: RefCell<Vec<(Duration, Duration)>>,
    report: Option<WriterReport>,
}

/// `snapshot()` of every session while a thread keeps writing.
fn bench_snapshot(c: &mut Criterion, k: &Knobs, ds: &Arc<Dataset>) -> Option<SnapshotRun> {
    let dir = TempDir::new(&k.parent, "snapshot");
    let epoch = Instant::now();
    let in_snapshot = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    type Running = (EmbeddedStore, std::thread::JoinHandle<WriterReport>);
    let running: OnceCell<Running> = OnceCell::new();
    let windows = RefCell::new(Vec::new());
    let mut g = c.benchmark_group("durable_snapshot");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("while_serving", |b| {
        let (store, _) = running.get_or_init(|| {
            progress("filling the snapshot store");
            let store = log_only(FsyncPolicy::EverySec)
                .open(dir.path())
                .expect("open");
            fill(&store, ds);
            let (s, ds) = (store.clone(), ds.clone());
            let (flag, stop) = (in_snapshot.clone(), stop.clone());
            let writer = std::thread::Builder::new()
                .name("durable-writer".into())
                .spawn(move || {
                    // The writer's clock and scheduler times, read when the phase changes.
                    let mut mark = (Instant::now(), sched_times());
                    let mut phase = false;
                    let mut rep = WriterReport::default();
                    let mut close = |rep: &mut WriterReport, phase: bool, ops: u64| {
                        let now = (Instant::now(), sched_times());
                        rep.cpu[phase as usize].add(CpuWait {
                            ops,
                            threads: 1,
                            wall_ns: (now.0 - mark.0).as_nanos() as u64,
                            wait_ns: now.1 .1.saturating_sub(mark.1 .1),
                            run_ns: now.1 .0.saturating_sub(mark.1 .0),
                        });
                        mark = now;
                    };
                    let mut ops = 0;
                    let mut rng = Rng::new(7);
                    while !stop.load(Ordering::Relaxed) {
                        let (id, record) = ds.pick(&mut rng);
                        let during = flag.load(Ordering::Relaxed);
                        if during != phase {
                            close(&mut rep, phase, ops);
                            (phase, ops) = (during, 0);
                        }
                        let t = Instant::now();
                        s.set_now(id.as_str(), record).expect("set");
                        let took = t.elapsed();
                        ops += 1;
                        let ns = took.as_nanos() as u64;
                        if during {
                            rep.during.record(ns);
                        } else {
                            rep.outside.record(ns);
                        }
                        if ns > 250_000 && rep.stalls.len() < 100_000 {
                            rep.stalls.push(Stall {
                                at: t - epoch,
                                took,
                            });
                        }
                    }
                    close(&mut rep, phase, ops);
                    rep
                })
                .expect("writer thread");
            // Let the writer reach its pace before the first snapshot.
            std::thread::sleep(Duration::from_millis(300));
            (store, writer)
        });
        ran("durable_snapshot/while_serving");
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                in_snapshot.store(true, Ordering::Relaxed);
                let start = Instant::now();
                store.snapshot().expect("snapshot");
                let took = start.elapsed();
                in_snapshot.store(false, Ordering::Relaxed);
                windows.borrow_mut().push((start - epoch, took));
                total += took;
                // Writes outside snapshots, for comparison.
                std::thread::sleep(Duration::from_millis(150));
            }
            total
        });
    });
    g.finish();
    stop.store(true, Ordering::Relaxed);
    let (store, writer) = running.into_inner()?;
    let report = writer.join().ok();
    drop(store);
    Some(SnapshotRun { windows, report })
}

/// Disk use with the default snapshot settings.
struct DiskRun {
    live: u64,
    steps: Vec<(&'static str, DiskUse)>,
    overwrite_rate: f64,
}

fn wait_for_snapshots(dir: &std::path::Path) {
    // The snapshotter checks every 100 ms; wait until none is being written, twice in a row.
    let mut quiet = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while quiet < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(150));
        if durable_support::snapshot_in_progress(dir) {
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
}

fn disk_use(k: &Knobs, ds: &Dataset) -> DiskRun {
    progress("disk use (default snapshot settings)");
    let dir = TempDir::new(&k.parent, "disk");
    let store = builder().open(dir.path()).expect("open");
    let mut steps = Vec::new();
    fill(&store, ds);
    store.flush().expect("flush");
    wait_for_snapshots(dir.path());
    steps.push(("filled", DiskUse::of(dir.path())));
    store.snapshot().expect("snapshot");
    steps.push(("snapshot()", DiskUse::of(dir.path())));
    let start = Instant::now();
    let n = ds.len() as u64;
    let _ = sets(&store, ds, 1, n, 99);
    let overwrite_rate = n as f64 / start.elapsed().as_secs_f64();
    store.flush().expect("flush");
    wait_for_snapshots(dir.path());
    steps.push(("overwritten", DiskUse::of(dir.path())));
    store.snapshot().expect("snapshot");
    steps.push(("snapshot() again", DiskUse::of(dir.path())));
    drop(store);
    let reopened = retry_locked(|| builder().open(dir.path()));
    assert_eq!(reopened.usage().0, ds.len(), "every session recovered");
    drop(reopened);
    DiskRun {
        live: ds.live_bytes(),
        steps,
        overwrite_rate,
    }
}

/// The positional filter among criterion's arguments, if any.
fn filter() -> Option<String> {
    const VALUED: &[&str] = &[
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--plotting-backend",
        "--output-format",
        "--color",
        "--format",
        "-c",
        "-s",
        "-b",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if VALUED.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn summary(k: &Knobs, ds: &Dataset, snap: Option<&SnapshotRun>, disk: Option<&DiskRun>) {
    let get = |id: &str| ran_this_time(id).then(|| median_ns(id)).flatten();
    let rate = |id: &str| get(id).map(|ns| 1e9 / ns);
    let n = ds.len() as f64;
    // On a shared machine: how much of the time the benchmark's threads waited for a CPU,
    // and the figure without that wait.
    let wait_note = |id: &str, per_op: bool| {
        waits(id).map_or(String::new(), |w| {
            let show = |rate: f64| {
                if per_op {
                    fmt_ns(1e9 / rate)
                } else {
                    fmt_rate(rate)
                }
            };
            format!(
                "\n    mean of every iteration {}; waited for a CPU {:.0}% of the time; without that wait {}",
                show(w.rate()),
                100.0 * w.wait_share(),
                show(w.rate_without_wait())
            )
        })
    };
    println!(
        "\n==== durable store summary ({} sessions, medians) ====",
        ds.len()
    );
    if let Some(ns) = get("durable_open/log_only") {
        println!(
            "open-to-serving, all in the log:  {:>10}  (target <= 500 ms: {}; stretch 100 ms: {})",
            fmt_ns(ns),
            mark(ns <= 500e6),
            mark(ns <= 100e6)
        );
        println!(
            "{}",
            wait_note("durable_open/log_only", true).trim_start_matches('\n')
        );
        let replay = n / (ns / 1e9);
        println!(
            "log replay:                       {:>10}  (target >= 2M records/s: {})",
            fmt_rate(replay),
            mark(replay >= 2e6)
        );
    }
    if let Some(ns) = get("durable_open/snapshot") {
        println!(
            "open-to-serving, from a snapshot: {:>10}  (target <= 500 ms: {}; stretch 100 ms: {}){}",
            fmt_ns(ns),
            mark(ns <= 500e6),
            mark(ns <= 100e6),
            wait_note("durable_open/snapshot", true)
        );
    }
    for threads in [1, 2] {
        let id = |name: &str| format!("durable_set/{name}/{threads}");
        let mem = rate(&id("memory"));
        let mem_fixed = waits(&id("memory")).map(|w| w.rate_without_wait());
        for (name, target) in [
            ("memory", None),
            ("never", None),
            ("everysec", Some([2e6, 3.5e6][threads - 1])),
        ] {
            let Some(r) = rate(&id(name)) else {
                continue;
            };
            let vs = match (mem, name) {
                (Some(m), "never" | "everysec") => {
                    let fixed = waits(&id(name))
                        .zip(mem_fixed)
                        .map_or(String::new(), |(w, m)| {
                            format!(", {:.2} without CPU wait", w.rate_without_wait() / m)
                        });
                    format!("  {:.2} x memory{fixed}", r / m)
                }
                _ => String::new(),
            };
            let t = target.map_or(String::new(), |t| {
                format!("  (target >= {}: {})", fmt_rate(t), mark(r >= t))
            });
            println!(
                "sets, {name:<8} {threads} thread(s):     {:>10}{vs}{t}{}",
                fmt_rate(r),
                wait_note(&id(name), false)
            );
        }
    }
    let raw = rate("durable_always/fdatasync_raw");
    if let Some(raw) = raw {
        println!("raw write+fdatasync, 1 thread:    {:>10}", fmt_rate(raw));
    }
    for w in [1, k.writers] {
        if let Some(r) = rate(&format!("durable_always/writers/{w}")) {
            let vs = raw.map_or(String::new(), |raw| {
                format!("  {:.2} x raw fdatasync", r / raw)
            });
            let t = if w == k.writers {
                format!(
                    "  (target >= 20k/s: {}; >= 0.9 x raw: {})",
                    mark(r >= 20e3),
                    raw.map_or("n/a", |raw| mark(r >= 0.9 * raw))
                )
            } else {
                format!(
                    "  (>= 0.9 x raw: {})",
                    raw.map_or("n/a", |raw| mark(r >= 0.9 * raw))
                )
            };
            println!(
                "Always, {w:>3} writer(s) in flight: {:>10}{vs}{t}",
                fmt_rate(r)
            );
        }
    }
    if let (Some(run), Some(ns)) = (snap, get("durable_snapshot/while_serving")) {
        println!(
            "snapshot while serving:           {:>10}  ({} snapshots of {} sessions)",
            fmt_ns(ns),
            run.windows.borrow().len(),
            ds.len()
        );
        if let Some(rep) = &run.report {
            let show = |what: &str, l: &Latencies, secs: f64| {
                println!(
                    "  writes {what}: {} sets ({}), p50 {}, p99 {}, p99.9 {}, max {}, {} over 1 ms",
                    l.n,
                    fmt_rate(l.n as f64 / secs.max(1e-9)),
                    fmt_ns(l.quantile(0.5) as f64),
                    fmt_ns(l.quantile(0.99) as f64),
                    fmt_ns(l.quantile(0.999) as f64),
                    fmt_ns(l.max_ns as f64),
                    l.over(1_000_000)
                );
            };
            let windows = run.windows.borrow();
            show(
                "during snapshots",
                &rep.during,
                rep.cpu[1].wall_ns as f64 / 1e9,
            );
            show(
                "outside snapshots",
                &rep.outside,
                rep.cpu[0].wall_ns as f64 / 1e9,
            );
            for (what, w) in [
                ("during snapshots", &rep.cpu[1]),
                ("outside snapshots", &rep.cpu[0]),
            ] {
                println!(
                    "  the writer {what}: waited for a CPU {:.0}% of the time, blocked (locks, I/O) {:.1}% ({} per second)",
                    100.0 * w.wait_share(),
                    100.0 * w.blocked_ns() as f64 / w.wall_ns.max(1) as f64,
                    fmt_ns(1e9 * w.blocked_ns() as f64 / w.wall_ns.max(1) as f64)
                );
            }
            println!(
                "  worst write stall during a snapshot: {} (target <= 1 ms: {})",
                fmt_ns(rep.during.max_ns as f64),
                mark(rep.during.max_ns <= 1_000_000)
            );
            // Where in the snapshot the long stalls fell (offset from its start / its length).
            let mut worst: Vec<&Stall> = rep.stalls.iter().collect();
            worst.sort_by_key(|s| std::cmp::Reverse(s.took));
            for s in worst.iter().take(8) {
                let place = windows
                    .iter()
                    .find(|(at, took)| s.at + s.took >= *at && s.at <= *at + *took)
                    .map_or("outside snapshots".to_owned(), |(at, took)| {
                        let off = s.at.saturating_sub(*at);
                        format!(
                            "{} into a {} snapshot",
                            fmt_ns(off.as_nanos() as f64),
                            fmt_ns(took.as_nanos() as f64)
                        )
                    });
                println!("  stall {:>9} {place}", fmt_ns(s.took.as_nanos() as f64));
            }
        }
    }
    if let Some(d) = disk {
        println!(
            "disk use, default settings (live data {}; overwrite pass {}):",
            fmt_bytes(d.live),
            fmt_rate(d.overwrite_rate)
        );
        for (what, u) in &d.steps {
            let x = u.total() as f64 / d.live as f64;
            println!(
                "  {what:<17} {:>10} = {x:.2} x live  (log {} in {} files, snapshots {} in {})  (target <= 3 x: {})",
                fmt_bytes(u.total()),
                fmt_bytes(u.wal),
                u.files_wal,
                fmt_bytes(u.snap),
                u.files_snap,
                mark(x <= 3.0)
            );
        }
    }
}

fn main() {
    let k = Knobs::from_env();
    // The recovery measurements run one sample per process (to alternate two builds).
    if durable_support::recovery::run(filter().as_deref(), &k) {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    // Listing and profiling runs (`--list`, `--profile-time`) report nothing.
    let listing = std::env::args().any(|a| a == "--list" || a == "--profile-time");
    progress(&format!("building {} sessions", k.sessions));
    let ds = Arc::new(Dataset::new(k.sessions));
    bench_open(&mut c, &k, &ds);
    bench_sets(&mut c, &k, &ds);
    bench_always(&mut c, &k, &ds);
    let snap = bench_snapshot(&mut c, &k, &ds);
    let disk = (!listing && filter().is_none_or(|f| "durable_disk".contains(f.as_str())))
        .then(|| disk_use(&k, &ds));
    c.final_summary();
    if !listing {
        summary(&k, &ds, snap.as_ref(), disk.as_ref());
    }
}
