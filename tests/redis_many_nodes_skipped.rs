//! Without the `redis-tls`, `redis-cluster` or `redis-sentinel` feature, `tests/redis_tls.rs`,
//! `tests/redis_cluster.rs` (and the cluster half of `tests/redis_interop.rs`) or
//! `tests/redis_sentinel.rs` are not built. This test names those left out, so that
//! `cargo test --features redis` does not pass over them in silence. Under CI (`CI` set) it
//! fails: CI runs `cargo test --all-features`.

#![cfg(not(all(
    feature = "redis-tls",
    feature = "redis-cluster",
    feature = "redis-sentinel"
)))]

use std::io::Write as _;

#[test]
fn tls_cluster_and_sentinel_tests_are_skipped_without_their_features() {
    let missing: Vec<&str> = [
        (
            cfg!(feature = "redis-tls"),
            "redis-tls (tests/redis_tls.rs)",
        ),
        (
            cfg!(feature = "redis-cluster"),
            "redis-cluster (tests/redis_cluster.rs, the cluster interop test)",
        ),
        (
            cfg!(feature = "redis-sentinel"),
            "redis-sentinel (tests/redis_sentinel.rs)",
        ),
    ]
    .into_iter()
    .filter_map(|(on, what)| (!on).then_some(what))
    .collect();
    let notice = format!(
        "SKIPPED the tests of features {}: run `cargo test --all-features` to run them",
        missing.join(", ")
    );
    let _ = writeln!(std::io::stderr(), "{notice}");
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    assert!(!in_ci, "{notice}; under CI every Redis test must run");
}
