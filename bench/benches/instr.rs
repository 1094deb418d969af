//! Instruction counts per operation, for valgrind's callgrind (repeatable on a shared machine,
//! where wall and CPU times are not). Runs `INSTR_N` (default 10000) iterations of the one
//! operation `INSTR_OP` names inside `measure`, and nothing else is counted when run as:
//!
//! ```sh
//! cargo bench -p sessile-bench --bench instr --no-run
//! INSTR_OP=apply valgrind --tool=callgrind --toggle-collect='instr::measure*' \
//!     --callgrind-out-file=/tmp/cg.apply target/release/deps/instr-<hash>
//! ```
//!
//! Instructions per operation: callgrind's total (`Ir`) divided by `INSTR_N`, less the `ids`
//! operation's figure (picking and spelling an id). The wall time per operation is printed
//! too (meaningful only outside valgrind: `genid`'s system calls are not instructions).
//! Operations: `ids`, `genid` (`sessile::id::generate`), `get`, `touch`, `set`,
//! `apply` (the embedded store in memory, `INSTR_SESSIONS` sessions, default 100k, of the
//! 197-byte payload); `get_dashmap`, `get_papaya` (the same bytes in a plain
//! `DashMap<String, Arc<[u8]>>` and a `papaya::HashMap`); `read`, `views`, `new_visitor` (one
//! request through the layer in process, as `hot_paths`'s `layer/*`, one session reused);
//! `read_owned`, `views_owned` (the same, the session given an owner at its first request),
//! `read_lifetime`, `views_lifetime` (the same under `max_lifetime`);
//! `read_durable` (`read` over a durable store in a temporary directory). Each thread's CPU
//! time is printed at the end (the durable store's background threads beside the measuring
//! one).

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{header, Request};
use sessile::{Change, Changes, EmbeddedStore, SessionLayer};
use support::{Id, Rng};
use tower::ServiceExt as _;

/// What one run measures.
enum Subject {
    Store(EmbeddedStore),
    DashMap(dashmap::DashMap<String, Arc<[u8]>>),
    Papaya(papaya::HashMap<String, Arc<[u8]>>),
    Layer(
        tokio::runtime::Runtime,
        Router,
        Option<String>,
        &'static str,
    ),
}

fn store(size: u64) -> EmbeddedStore {
    let s = EmbeddedStore::new();
    for i in 0..size {
        s.set_now(Id::of(i).as_str(), &support::record(i))
            .expect("fill");
    }
    s
}

fn layer(path: &'static str, with_cookie: bool, store: EmbeddedStore) -> Subject {
    layer_of(path, with_cookie, store, Extra::None)
}

/// What a layer of [`layer_of`] has beyond express-session's behaviour.
#[derive(PartialEq)]
enum Extra {
    None,
    /// The session is given an owner by its first request.
    Owner,
    /// `max_lifetime` (8 hours since creation).
    MaxLifetime,
}

/// [`layer`], with `extra`.
fn layer_of(path: &'static str, with_cookie: bool, store: EmbeddedStore, extra: Extra) -> Subject {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut builder = SessionLayer::builder().secret("instr secret").store(store);
    if extra == Extra::MaxLifetime {
        builder = builder.max_lifetime(sessile::MaxLifetime::since_created(
            std::time::Duration::from_secs(8 * 3600),
        ));
    }
    let sessions = builder.build().expect("valid options");
    let app = Router::new()
        .route("/read", get(support::read))
        .route("/views", get(support::views))
        .route(
            "/login",
            get(|s: sessile::Session| async move {
                s.set_owner("instr-user").expect("an owner");
                s.insert("views", 1).expect("a field");
            }),
        )
        .layer(sessions);
    let first = if extra == Extra::Owner {
        "/login"
    } else {
        "/views"
    };
    let cookie = support::first_cookie(&rt, &app, first);
    Subject::Layer(rt, app, with_cookie.then_some(cookie), path)
}

#[inline(never)]
fn measure(op: &str, subject: &Subject, live: u64, n: u64) {
    let mut rng = Rng::new(42);
    let mut record = support::record(7);
    let changes = Changes {
        cookie: record.cookie.clone(),
        fields: vec![Change::Set("views".into(), serde_json::Value::from(1))],
    };
    record.cookie.expires = changes.cookie.expires;
    match subject {
        Subject::Store(_) if op == "genid" => {
            for _ in 0..n {
                std::hint::black_box(sessile::id::generate().expect("an id"));
            }
        }
        Subject::Store(s) => {
            for _ in 0..n {
                let id = Id::of(rng.below(live));
                let id = id.as_str();
                match op {
                    "get" => {
                        std::hint::black_box(s.get_now(id).expect("get"));
                    }
                    "touch" => s.touch_now(id, &record.cookie).expect("touch"),
                    "set" => s.set_now(id, &record).expect("set"),
                    "apply" => {
                        std::hint::black_box(s.apply_now(id, &changes).expect("apply"));
                    }
                    _ => {
                        std::hint::black_box(id);
                    }
                }
            }
        }
        Subject::DashMap(m) => {
            for _ in 0..n {
                let id = Id::of(rng.below(live));
                let v = m.get(id.as_str()).map(|e| e.value().clone());
                std::hint::black_box(v);
            }
        }
        Subject::Papaya(m) => {
            let m = m.pin();
            for _ in 0..n {
                let id = Id::of(rng.below(live));
                let v = m.get(id.as_str()).cloned();
                std::hint::black_box(v);
            }
        }
        Subject::Layer(rt, app, cookie, path) => rt.block_on(async {
            for _ in 0..n {
                let mut req = Request::get(*path);
                if let Some(c) = cookie {
                    req = req.header(header::COOKIE, c);
                }
                let req = req.body(Body::empty()).expect("request");
                let res = app.clone().oneshot(req).await.expect("response");
                std::hint::black_box(res);
            }
        }),
    }
}

/// Prints each thread's name and CPU time (user + system, in clock ticks of 10 ms) from
/// `/proc/self/task`: what the store's background threads took beside the measuring one.
fn threads_cpu() {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ...`: fields after the name; utime and stime are the 14th and
        // 15th fields of the line.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let name = head.split_once(" (").map_or("?", |(_, n)| n);
        let f: Vec<&str> = rest.split(' ').collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        println!("thread {name}: {} ticks", ticks(11) + ticks(12));
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let op = std::env::var("INSTR_OP").unwrap_or_else(|_| "ids".to_owned());
    let n = support::env_num("INSTR_N", 10_000);
    let live = support::env_list("INSTR_SESSIONS", &["100k"])
        .first()
        .and_then(|s| support::parse_count(s))
        .unwrap_or(100_000);
    let subject = match op.as_str() {
        "get_dashmap" => {
            let m = dashmap::DashMap::new();
            for i in 0..live {
                let bytes: Arc<[u8]> = Arc::from(support::payload_text(i).into_bytes());
                m.insert(Id::of(i).as_str().to_owned(), bytes);
            }
            Subject::DashMap(m)
        }
        "get_papaya" => {
            let m = papaya::HashMap::new();
            for i in 0..live {
                let bytes: Arc<[u8]> = Arc::from(support::payload_text(i).into_bytes());
                m.pin().insert(Id::of(i).as_str().to_owned(), bytes);
            }
            Subject::Papaya(m)
        }
        "read" => layer("/read", true, EmbeddedStore::new()),
        "read_durable" => {
            let dir = std::env::temp_dir().join(format!("sessile-instr-{}", std::process::id()));
            layer(
                "/read",
                true,
                EmbeddedStore::open(&dir).expect("a durable store"),
            )
        }
        "views" => layer("/views", true, EmbeddedStore::new()),
        "read_owned" => layer_of("/read", true, EmbeddedStore::new(), Extra::Owner),
        "views_owned" => layer_of("/views", true, EmbeddedStore::new(), Extra::Owner),
        "read_lifetime" => layer_of("/read", true, EmbeddedStore::new(), Extra::MaxLifetime),
        "views_lifetime" => layer_of("/views", true, EmbeddedStore::new(), Extra::MaxLifetime),
        "new_visitor" => layer("/views", false, EmbeddedStore::new()),
        "genid" => Subject::Store(EmbeddedStore::new()),
        _ => Subject::Store(store(live)),
    };
    let start = std::time::Instant::now();
    measure(&op, &subject, live, n);
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    // The wall time is only meaningful outside valgrind.
    println!("{op}: {n} iterations over {live} sessions, {ns:.0} ns each");
    threads_cpu();
    if op == "read_durable" {
        drop(subject);
        let dir = std::env::temp_dir().join(format!("sessile-instr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(dir);
    }
}
