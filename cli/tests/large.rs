//! `inspect` and `verify` of a directory of 1M sessions (a snapshot of 1M, and 10k more in the
//! log), timed against an open of the same directory by the binary (`sessile get`). Slow (about a minute to build the
//! directory): ignored unless asked for, in release mode:
//!
//! ```text
//! cargo test -p sessile-cli --release --test large -- --ignored --nocapture
//! ```
//!
//! `SESSILE_CLI_SESSIONS` changes the count (1000000).

mod common;

use std::time::{Duration, Instant};

use common::*;
use sessile::{CookieRecord, Data, EmbeddedStore, Record};

/// The sessions of the benchmarks' durable runs: a 32-byte id, 168 bytes of JSON data.
fn big_record(i: usize) -> Record {
    let cookie = CookieRecord {
        original_max_age: Some(86_400_000),
        expires: Some(now_ms() + 86_400_000),
        ..CookieRecord::default()
    };
    let data = format!(
        r#"{{"user":"user-{i:010}","roles":["reader","writer"],"csrf":"{:064x}","views":{i},"flash":null,"theme":"dark"}}"#,
        i as u128 * 0x9e37_79b9_7f4a_7c15
    );
    Record {
        cookie,
        data: Data::from_json_text(&data).expect("data"),
    }
}

fn timed(what: &str, f: impl FnOnce() -> std::process::Output) -> Duration {
    let t = Instant::now();
    let o = f();
    let took = t.elapsed();
    assert_status(&o, 0);
    eprintln!("{what}: {took:.2?}");
    took
}

#[test]
#[ignore = "slow: 1M sessions; run in release with --ignored"]
fn inspect_and_verify_of_a_million_sessions_take_about_an_open() {
    let n: usize = std::env::var("SESSILE_CLI_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let extra = n / 100;
    let dir = temp_dir("large");
    let store = EmbeddedStore::open(&*dir).expect("open");
    for i in 0..n {
        store
            .set_now(&format!("{i:032}"), &big_record(i))
            .expect("set");
    }
    store.snapshot().expect("snapshot");
    for i in n..n + extra {
        store
            .set_now(&format!("{i:032}"), &big_record(i))
            .expect("set");
    }
    drop(store);

    // Page cache warm for all three: each read once before it is timed. The reference is
    // an open by the binary itself (`get`: open, one lookup, exit), so that the process's
    // start and exit count on both sides.
    let _ = run("verify", &dir, &[]);
    let id = format!("{:032}", n - 1);
    let open = timed("sessile get (an open)", || run("get", &dir, &[&id]));
    let inspect = timed("sessile inspect", || {
        let o = run("inspect", &dir, &["--json"]);
        let v = json_of(&o);
        assert_eq!(v["sessions"]["live"], n + extra, "{v}");
        assert_eq!(v["problems"], serde_json::json!([]));
        o
    });
    let verify = timed("sessile verify", || run("verify", &dir, &[]));
    // Speed is measured, not asserted (BENCHMARKS.md, "The operator CLI"): the figures are
    // printed; the target is about as long as an open.
    eprintln!(
        "inspect / open {:.2}, verify / open {:.2}",
        inspect.as_secs_f64() / open.as_secs_f64(),
        verify.as_secs_f64() / open.as_secs_f64()
    );
}
