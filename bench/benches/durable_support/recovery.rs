//! Two recovery measurements, run one sample per process so that the binaries of two builds
//! can be alternated (see BENCHMARKS.md, "The durable store" and the change log of 2026-12-04):
//!
//! ```text
//! cargo bench -p sessile-bench --bench durable -- durable_restarts   # open after 5 restarts
//! cargo bench -p sessile-bench --bench durable -- durable_replay     # open of a log of one session's updates
//! ```
//!
//! - `durable_restarts`: default thresholds (64 MiB, one hour). A store of
//!   `DURABLE_RESTART_SESSIONS` sessions (default 200,000: about 54 MB of log each time they
//!   are all written, below the 64 MiB threshold) is filled, then restarted 5 times, each
//!   process writing every session once more and shutting down cleanly. Prints the time of
//!   each open (until the first read is served), and the log segments and snapshots on disk
//!   before the last one.
//! - `durable_replay`: a log of about 16 MiB holding 5,000 single-field updates of one session
//!   (each a new 2 KB field) and 100 sets of 60 KB of another, made once in `DURABLE_DIR`
//!   (`sessile-durable-replay-log`, kept for the next runs); prints the time of one open.

use std::path::Path;
use std::time::{Duration, Instant};

use sessile::{Change, Changes, EmbeddedStore, Record};

use super::{retry_locked, Dataset, Knobs, TempDir};

/// Runs the measurement named by `filter`, if it names one; returns whether it did.
pub fn run(filter: Option<&str>, k: &Knobs) -> bool {
    match filter {
        Some("durable_restarts") => restarts(k),
        Some("durable_replay") => replay(k),
        _ => return false,
    }
    true
}

fn timed_open(dir: &Path, probe: &str) -> (EmbeddedStore, Duration) {
    retry_locked(|| {
        let start = Instant::now();
        let store = EmbeddedStore::builder().open(dir)?;
        assert!(store.get_now(probe).is_some(), "recovered");
        Ok((store, start.elapsed()))
    })
}

fn files(dir: &Path, ext: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(ext))
                .count()
        })
        .unwrap_or(0)
}

fn restarts(k: &Knobs) {
    let n: usize = std::env::var("DURABLE_RESTART_SESSIONS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(200_000);
    let ds = Dataset::new(n);
    let dir = TempDir::new(&k.parent, "restarts");
    let probe = Dataset::id(n - 1);
    let write_all = |store: &EmbeddedStore, round: usize| {
        for i in 0..n {
            let r = &ds.records[(i + round) % n];
            store.set_now(Dataset::id(i).as_str(), r).expect("set");
        }
    };
    let store = retry_locked(|| EmbeddedStore::builder().open(dir.path()));
    write_all(&store, 0);
    drop(store);
    let mut opens = Vec::new();
    for round in 1..=5 {
        let (store, took) = timed_open(dir.path(), probe.as_str());
        opens.push(took);
        write_all(&store, round);
        drop(store);
    }
    let (segments, snapshots) = (files(dir.path(), ".log"), files(dir.path(), ".rkyv"));
    let (store, last) = timed_open(dir.path(), probe.as_str());
    drop(store);
    let ms = |d: &Duration| format!("{:.0}", d.as_secs_f64() * 1e3);
    println!(
        "durable_restarts sessions={n} opens_ms={} after_5_restarts_ms={} segments={segments} \
         snapshots={snapshots}",
        opens.iter().map(ms).collect::<Vec<_>>().join(","),
        ms(&last)
    );
}

fn replay(k: &Knobs) {
    let dir = k.parent.join("sessile-durable-replay-log");
    if !dir.join("done").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let store = EmbeddedStore::builder().open(&dir).expect("open");
        let big = Record {
            data: sessile::Data::from_json_text(&format!(r#"{{"blob":"{}"}}"#, "b".repeat(60_000)))
                .expect("json"),
            ..Record::default()
        };
        store.set_now("updated", &Record::default()).expect("set");
        for i in 0..5000 {
            let changes = Changes {
                cookie: Record::default().cookie,
                fields: vec![Change::Set(format!("f{i}"), "u".repeat(2000).into())],
            };
            store.apply_now("updated", &changes).expect("apply");
            if i % 50 == 0 {
                store.set_now("big", &big).expect("set");
            }
        }
        drop(store);
        std::fs::write(dir.join("done"), b"").expect("marker");
    }
    let (store, took) = timed_open(&dir, "updated");
    let fields = store
        .get_now("updated")
        .and_then(|r| r.data.to_map().ok())
        .map_or(0, |m| m.len());
    assert_eq!(fields, 5000, "every update replayed");
    drop(store);
    println!("durable_replay open_ms={:.0}", took.as_secs_f64() * 1e3);
}
