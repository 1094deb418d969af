//! Without the `redis` feature, `tests/redis_store.rs` and `tests/redis_interop.rs` are not
//! built (they need `RedisStore`). This test says so, so that a plain `cargo test` does not
//! pass over them in silence. Under CI (`CI` set) it fails: CI must run them
//! (`.ci/run` runs `cargo test --all-features` with a Redis server).

#![cfg(not(feature = "redis"))]

use std::io::Write as _;

#[test]
fn redis_tests_are_skipped_without_the_redis_feature() {
    let hint = if std::env::var_os("REDIS_URL").is_some() {
        "REDIS_URL is set: run `cargo test --features redis` to run them"
    } else {
        "run `REDIS_URL=redis://127.0.0.1:6379/ cargo test --features redis` to run them"
    };
    let notice = format!(
        "SKIPPED tests/redis_store.rs and tests/redis_interop.rs: built without the `redis` feature ({hint})"
    );
    // Past the test harness's output capture, so `cargo test` shows it.
    let _ = writeln!(std::io::stderr(), "{notice}");
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    assert!(!in_ci, "{notice}; under CI the Redis tests must run");
}
