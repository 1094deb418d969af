//! The hot paths, measured by criterion: `cargo bench -p sessile-bench --bench hot_paths`.
//!
//! - `layer/*`: one request through an axum `Router` in process (tower's `oneshot`, no
//!   network): a bare handler, then the same handler behind `SessionLayer` for a new visitor,
//!   a loaded session left unmodified, and a loaded session modified. These send the same
//!   cookie every time, so the session is always in the cache. `layer/loaded_*/max_lifetime`:
//!   the loaded cases with `max_lifetime` on (its creation time read at every load).
//! - `layer_random/<case>/<sessions>`: the loaded cases again on a store prefilled with 100k
//!   and 1M sessions, each request carrying the cookie of a uniformly random one (what a
//!   server with many users sees: the lookup misses the cache).
//! - `layer_owner/<case>/<variant>`: the cost of sign out everywhere. `read` (a loaded session
//!   left unmodified) and `views` (modified) as in `layer/*`, and `login` (a new session given
//!   an owner and saved), each with no owner (`no_owner`, the baseline of the same run), with an
//!   owner (`owner`), and with an owner and `max_sessions_per_owner(3)` (`owner_max3`: a login
//!   then also lists the owner's sessions and destroys the oldest beyond 3).
//! - `signing/*`: signing a session id, and verifying a cookie with 1 and with 3 secrets.
//! - `store/<op>/<sessions>/<threads>t`: `EmbeddedStore`'s synchronous `get_now`,
//!   `touch_now`, `set_now` and `apply_now` on uniformly random ids of a prefilled store, at
//!   1 and 2 threads (two threads split each sample's iterations; criterion's throughput is
//!   then the sum of both). `store/ids_only` is the harness alone (picking and spelling an id).
//! - `floor/*`: reference points for reading `store/get` (see [`floors`]); `HOT_FLOORS=0`
//!   skips them.
//!
//! Knobs (environment): `HOT_SESSIONS` (`100k,1M`), `HOT_THREADS` (`1,2`), `HOT_SECS`
//! (criterion's measurement time, default 3), `HOT_CLOCK` (`wall`, the default, or `cpu`:
//! each measuring thread's own CPU time from `/proc/thread-self/schedstat`, so that other
//! processes on a shared machine do not count; at 2 threads, the larger of the two; the
//! kernel counts it in ticks, so spans under 50 ms stay in wall time).

#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use criterion::{BenchmarkId, Criterion, Throughput};
use http::{header, Request};
use sessile::{Change, Changes, EmbeddedStore, MaxLifetime, Secrets, Session, SessionLayer};
use support::{short_count, Id, Rng, Timer};

/// Whether measurements use the threads' CPU time instead of the wall clock (`HOT_CLOCK=cpu`).
fn cpu_clock() -> bool {
    std::env::var("HOT_CLOCK").as_deref() == Ok("cpu")
}
use tower::ServiceExt as _;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The two session routes behind `sessions`.
fn app(sessions: SessionLayer) -> Router {
    Router::new()
        .route("/read", get(support::read))
        .route("/views", get(support::views))
        .layer(sessions)
}

async fn bare() -> String {
    7u64.to_string()
}

fn layer(c: &mut Criterion) {
    let rt = runtime();
    let store = EmbeddedStore::new();
    let builder = || {
        SessionLayer::builder()
            .secret("hot paths secret")
            .store(store.clone())
    };
    let app = app(builder().build().expect("valid options"));
    // The same with an absolute timeout: the creation time read at every load, stamped
    // at a session's first save.
    let lifetime_app = self::app(
        builder()
            .max_lifetime(MaxLifetime::since_created(Duration::from_secs(8 * 3600)))
            .build()
            .expect("valid options"),
    );
    let bare_app = Router::new().route("/read", get(bare));

    let cookie = support::first_cookie(&rt, &app, "/views");
    let lifetime_cookie = support::first_cookie(&rt, &lifetime_app, "/views");

    let mut g = per_op_group(c, "layer");
    let cases: [(&str, &Router, &str, Option<&str>); 6] = [
        ("bare_handler", &bare_app, "/read", Some(&cookie)),
        ("new_visitor", &app, "/views", None),
        ("loaded_unmodified", &app, "/read", Some(&cookie)),
        ("loaded_modified", &app, "/views", Some(&cookie)),
        (
            "loaded_unmodified/max_lifetime",
            &lifetime_app,
            "/read",
            Some(&lifetime_cookie),
        ),
        (
            "loaded_modified/max_lifetime",
            &lifetime_app,
            "/views",
            Some(&lifetime_cookie),
        ),
    ];
    for (name, router, path, cookie) in cases {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| time_requests(&rt, router, path, cookie, iters))
        });
    }
    g.finish();
    // The new-visitor runs left sessions behind; free them before the next group.
    drop(store);
}

/// The time of `iters` requests of `path` to `router`, each with `cookie` if given.
fn time_requests(
    rt: &tokio::runtime::Runtime,
    router: &Router,
    path: &str,
    cookie: Option<&str>,
    iters: u64,
) -> Duration {
    let timer = Timer::start();
    rt.block_on(async {
        for _ in 0..iters {
            let mut req = Request::get(path);
            if let Some(cookie) = cookie {
                req = req.header(header::COOKIE, cookie);
            }
            let req = req.body(Body::empty()).expect("request");
            let res = router.clone().oneshot(req).await.expect("response");
            std::hint::black_box(res);
        }
    });
    timer.elapsed(cpu_clock())
}

/// A login: the session gets an owner (one user for every login of the run) when `owned`.
async fn login_as(session: Session, owned: bool) -> String {
    if owned {
        let _ = session.set_owner("bench-user");
    }
    let _ = session.insert("user", "bench-user");
    String::new()
}

/// The cost of an owner on `/read`, `/views` and a login (see the module documentation).
fn layer_owner(c: &mut Criterion) {
    let rt = runtime();
    let mut g = per_op_group(c, "layer_owner");
    let variants = [
        ("no_owner", false, None),
        ("owner", true, None),
        ("owner_max3", true, Some(3)),
    ];
    for (variant, owned, max) in variants {
        let store = EmbeddedStore::new();
        let mut builder = SessionLayer::builder()
            .secret("hot paths secret")
            .store(store.clone());
        if let Some(n) = max {
            builder = builder.max_sessions_per_owner(n);
        }
        let app = Router::new()
            .route("/read", get(support::read))
            .route("/views", get(support::views))
            .route("/login", get(move |s: Session| login_as(s, owned)))
            .layer(builder.build().expect("valid options"));
        let cookie = support::first_cookie(&rt, &app, "/login");
        for (case, path, with_cookie) in [
            ("read", "/read", true),
            ("views", "/views", true),
            ("login", "/login", false),
        ] {
            let cookie = with_cookie.then_some(cookie.as_str());
            g.bench_function(BenchmarkId::new(case, variant), |b| {
                b.iter_custom(|iters| time_requests(&rt, &app, path, cookie, iters))
            });
        }
        drop(store);
    }
    g.finish();
}

/// The loaded-session cases on a prefilled store, each request with a random session's
/// cookie.
fn layer_random(c: &mut Criterion) {
    const SECRET: &str = "hot paths secret";
    let (sizes, _) = sizes_and_threads();
    let rt = runtime();
    let secrets = Secrets::new([SECRET]).expect("a secret");
    let mut g = per_op_group(c, "layer_random");
    for &size in &sizes {
        // Filled lazily, so a filter that skips every benchmark of a size skips its fill.
        let mut prepared: Option<(Router, Arc<Vec<String>>)> = None;
        let mut ensure = || {
            prepared
                .get_or_insert_with(|| {
                    let store = EmbeddedStore::new();
                    let cookies = (0..size)
                        .map(|i| {
                            let id = Id::of(i);
                            store
                                .set_now(id.as_str(), &support::record(i))
                                .expect("fill");
                            let value = sessile::signing::cookie_value(id.as_str(), &secrets);
                            format!("connect.sid={}", sessile::cookie::encode(&value))
                        })
                        .collect();
                    let sessions = SessionLayer::builder()
                        .secret(SECRET)
                        .store(store)
                        .build()
                        .expect("valid options");
                    (app(sessions), Arc::new(cookies))
                })
                .clone()
        };
        for (name, path) in [
            ("loaded_unmodified", "/read"),
            ("loaded_modified", "/views"),
        ] {
            let id = BenchmarkId::new(name, short_count(size));
            g.bench_function(id, |b| {
                let (app, cookies) = ensure();
                let mut rng = Rng::new(sessile::clock::now_ms() as u64 ^ size);
                b.iter_custom(|iters| {
                    let timer = Timer::start();
                    rt.block_on(async {
                        for _ in 0..iters {
                            let cookie = &cookies[rng.below(size) as usize];
                            let req = Request::get(path)
                                .header(header::COOKIE, cookie)
                                .body(Body::empty())
                                .expect("request");
                            let res = app.clone().oneshot(req).await.expect("response");
                            std::hint::black_box(res);
                        }
                    });
                    timer.elapsed(cpu_clock())
                })
            });
        }
    }
    g.finish();
}

fn signing(c: &mut Criterion) {
    let one = Secrets::new(["keyboard cat"]).expect("a secret");
    let three = Secrets::new(["new secret", "previous secret", "keyboard cat"]).expect("secrets");
    let sid = Id::of(42);
    let sid = sid.as_str();
    let by_first = sessile::signing::cookie_value(sid, &three);
    let by_last = sessile::signing::cookie_value(sid, &one);

    let mut g = c.benchmark_group("signing");
    g.throughput(Throughput::Elements(1));
    if cpu_clock() {
        // Every sample long enough to be measured in CPU time.
        g.sampling_mode(criterion::SamplingMode::Flat);
    }
    g.bench_function("sign", |b| {
        b.iter(|| sessile::signing::cookie_value(std::hint::black_box(sid), &one))
    });
    g.bench_function("verify/1_secret", |b| {
        b.iter(|| sessile::signing::session_id(std::hint::black_box(&by_last), &one).map(str::len))
    });
    g.bench_function("verify/3_secrets_first", |b| {
        b.iter(|| {
            sessile::signing::session_id(std::hint::black_box(&by_first), &three).map(str::len)
        })
    });
    g.bench_function("verify/3_secrets_last", |b| {
        b.iter(|| {
            sessile::signing::session_id(std::hint::black_box(&by_last), &three).map(str::len)
        })
    });
    g.finish();
}

#[derive(Debug, Clone, Copy)]
enum Op {
    IdsOnly,
    Get,
    Touch,
    Set,
    Apply,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::IdsOnly => "ids_only",
            Op::Get => "get",
            Op::Touch => "touch",
            Op::Set => "set",
            Op::Apply => "apply",
        }
    }
}

/// The store sizes (`HOT_SESSIONS`) and thread counts (`HOT_THREADS`) to run.
fn sizes_and_threads() -> (Vec<u64>, Vec<usize>) {
    let sizes = support::env_list("HOT_SESSIONS", &["100k", "1M"])
        .iter()
        .filter_map(|s| support::parse_count(s))
        .collect();
    let threads = support::env_list("HOT_THREADS", &["1", "2"])
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    (sizes, threads)
}

/// A group whose throughput is one operation per iteration.
fn per_op_group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    if cpu_clock() {
        // Every sample long enough to be measured in CPU time.
        g.sampling_mode(criterion::SamplingMode::Flat);
    }
    g
}

/// Thread `t`'s share of `iters` operations split over `threads` threads.
fn share(iters: u64, threads: usize, t: u64) -> u64 {
    iters / threads as u64 + u64::from(t < iters % threads as u64)
}

/// The time of a run from each thread's (start, end, CPU time): the wall time from the
/// first start to the last end, or with `HOT_CLOCK=cpu` the largest CPU time of a thread.
fn elapsed(spans: &[(Instant, Instant, Duration)]) -> Duration {
    let start = spans.iter().map(|s| s.0).min().expect("a thread");
    let end = spans.iter().map(|s| s.1).max().expect("a thread");
    let wall = end - start;
    if cpu_clock() && wall >= support::CPU_CLOCK_MIN {
        return spans.iter().map(|s| s.2).max().expect("a thread");
    }
    wall
}

/// `iters` operations split over `threads` threads; the wall time from the first thread's
/// start to the last one's end (with `HOT_CLOCK=cpu`, the largest CPU time of a thread).
fn run_ops(store: &EmbeddedStore, op: Op, live: u64, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let n = share(iters, threads, t);
                let barrier = &barrier;
                s.spawn(move || {
                    let mut rng = Rng::new(sessile::clock::now_ms() as u64 ^ (t << 32) ^ iters);
                    let mut record = support::record(t);
                    let mut changes = Changes {
                        cookie: record.cookie.clone(),
                        fields: vec![Change::Set("views".into(), serde_json::Value::from(1))],
                    };
                    barrier.wait();
                    let timer = Timer::start();
                    let t0 = Instant::now();
                    for i in 0..n {
                        if i % 1024 == 0 {
                            let expires = Some(sessile::clock::now_ms() + support::MAX_AGE_MS);
                            record.cookie.expires = expires;
                            changes.cookie.expires = expires;
                        }
                        let id = Id::of(rng.below(live));
                        let id = id.as_str();
                        match op {
                            Op::IdsOnly => {
                                std::hint::black_box(id);
                            }
                            Op::Get => {
                                std::hint::black_box(store.get_now(id));
                            }
                            Op::Touch => store.touch_now(id, &record.cookie).expect("touch"),
                            Op::Set => store.set_now(id, &record).expect("set"),
                            Op::Apply => {
                                std::hint::black_box(store.apply_now(id, &changes).expect("apply"));
                            }
                        }
                    }
                    (t0, Instant::now(), timer.cpu())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    elapsed(&spans)
}

fn store_ops(c: &mut Criterion) {
    let (sizes, threads) = sizes_and_threads();
    let mut g = per_op_group(c, "store");
    for &size in &sizes {
        // Filled lazily, so a filter that skips every benchmark of a size skips its fill.
        let mut store: Option<Arc<EmbeddedStore>> = None;
        let mut ensure = || {
            store
                .get_or_insert_with(|| {
                    let s = EmbeddedStore::new();
                    for i in 0..size {
                        s.set_now(Id::of(i).as_str(), &support::record(i))
                            .expect("fill");
                    }
                    Arc::new(s)
                })
                .clone()
        };
        for op in [Op::IdsOnly, Op::Get, Op::Touch, Op::Set, Op::Apply] {
            for &t in &threads {
                if matches!(op, Op::IdsOnly) && t > 1 {
                    continue;
                }
                let id = BenchmarkId::new(op.name(), format!("{}/{t}t", short_count(size)));
                g.bench_function(id, |b| {
                    // Criterion times the whole `iter_custom` call to plan its samples: the
                    // fill stays out of it.
                    let s = ensure();
                    b.iter_custom(|iters| run_ops(&s, op, size, t, iters.max(t as u64)))
                });
            }
        }
    }
    g.finish();
}

/// The same map work split over threads, timed like [`run_ops`].
fn run_threads(threads: usize, iters: u64, f: &(dyn Fn(&mut Rng) + Sync)) -> Duration {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let n = share(iters, threads, t);
                let barrier = &barrier;
                s.spawn(move || {
                    let mut rng = Rng::new(sessile::clock::now_ms() as u64 ^ (t << 32) ^ iters);
                    barrier.wait();
                    let timer = Timer::start();
                    let t0 = Instant::now();
                    for _ in 0..n {
                        f(&mut rng);
                    }
                    (t0, Instant::now(), timer.cpu())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    elapsed(&spans)
}

/// Reference points for reading `store/get`, not sessile code paths:
///
/// - `floor/inline_key`: a read-only `HashMap<[u8; 32], u64>` (ahash), the id stored in the
///   slot: one cache miss per lookup and no shared write, the floor of any map here;
/// - `floor/arc_key_arc_value`: a read-only `HashMap<Arc<str>, Arc<str>>` whose value is
///   cloned out, the key and value behind pointers as the embedded store keeps them;
/// - `floor/get_own_path`: `EmbeddedStore::get_now` where every session's cookie has its own
///   `path` allocation. (It measured what one `path` `Arc` shared by every session cost at 2
///   threads; the store now interns cookie shapes per shard, so `store/get` shares none.)
fn floors(c: &mut Criterion) {
    let (sizes, threads) = sizes_and_threads();
    let mut g = per_op_group(c, "floor");
    for &size in &sizes {
        let mut inline: Option<std::collections::HashMap<[u8; 32], u64, ahash::RandomState>> = None;
        let mut arcs: Option<std::collections::HashMap<Arc<str>, Arc<str>, ahash::RandomState>> =
            None;
        let mut own_path: Option<EmbeddedStore> = None;
        for &t in &threads {
            let label = format!("{}/{t}t", short_count(size));
            g.bench_function(BenchmarkId::new("inline_key", &label), |b| {
                let map = inline.get_or_insert_with(|| {
                    (0..size)
                        .map(|i| {
                            let mut k = [0u8; 32];
                            k.copy_from_slice(Id::of(i).as_str().as_bytes());
                            (k, i)
                        })
                        .collect()
                });
                b.iter_custom(|iters| {
                    run_threads(t, iters.max(t as u64), &|rng: &mut Rng| {
                        let id = Id::of(rng.below(size));
                        let mut k = [0u8; 32];
                        k.copy_from_slice(id.as_str().as_bytes());
                        std::hint::black_box(map.get(&k));
                    })
                })
            });
            g.bench_function(BenchmarkId::new("arc_key_arc_value", &label), |b| {
                let map = arcs.get_or_insert_with(|| {
                    (0..size)
                        .map(|i| {
                            (
                                Arc::from(Id::of(i).as_str()),
                                Arc::from(support::payload_text(i).as_str()),
                            )
                        })
                        .collect()
                });
                b.iter_custom(|iters| {
                    run_threads(t, iters.max(t as u64), &|rng: &mut Rng| {
                        let id = Id::of(rng.below(size));
                        std::hint::black_box(map.get(id.as_str()).cloned());
                    })
                })
            });
            g.bench_function(BenchmarkId::new("get_own_path", &label), |b| {
                let store = own_path.get_or_insert_with(|| {
                    let s = EmbeddedStore::new();
                    for i in 0..size {
                        let mut r = support::record(i);
                        r.cookie.path = Arc::from("/");
                        s.set_now(Id::of(i).as_str(), &r).expect("fill");
                    }
                    s
                });
                b.iter_custom(|iters| {
                    run_threads(t, iters.max(t as u64), &|rng: &mut Rng| {
                        let id = Id::of(rng.below(size));
                        std::hint::black_box(store.get_now(id.as_str()));
                    })
                })
            });
        }
    }
    g.finish();
}

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`: do nothing there.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "hot_paths: nothing to do outside `cargo bench -p sessile-bench --bench hot_paths`"
        );
        return;
    }
    let secs = support::env_num("HOT_SECS", 3);
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(secs))
        .configure_from_args();
    layer(&mut c);
    layer_owner(&mut c);
    layer_random(&mut c);
    signing(&mut c);
    store_ops(&mut c);
    if std::env::var("HOT_FLOORS").as_deref() != Ok("0") {
        floors(&mut c);
    }
    c.final_summary();
}
