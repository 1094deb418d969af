//! `sessile migrate` against a real Redis server (`REDIS_URL`): every live session lands
//! under the prefix in connect-redis's format, with its remaining time to live. Without
//! `REDIS_URL` the test says it was skipped; with `CI` set it fails instead.

mod common;

use std::io::Write as _;

use common::*;
use sessile::{CookieRecord, Data, EmbeddedStore, Record};

/// `REDIS_URL`, or `None` after saying the test was skipped (a failure under CI).
fn redis_url(test: &str) -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
            assert!(
                !in_ci,
                "{test}: REDIS_URL is not set, and CI is: .ci/run must start redis-server"
            );
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: REDIS_URL is not set (start redis-server and set it to run)"
            );
            None
        }
    }
}

#[test]
fn migrate_copies_every_live_session_with_its_remaining_ttl() {
    let Some(url) = redis_url("migrate_copies_every_live_session_with_its_remaining_ttl") else {
        return;
    };
    let dir = temp_dir("migrate");
    let store = EmbeddedStore::open(&*dir).expect("open");
    fill(&store, 0..25, false);
    // A browser-session cookie (no `expires`): connect-redis gives it the default TTL.
    let browser = Record {
        cookie: CookieRecord::default(),
        data: Data::from_json_text(r#"{"cart":[1,2]}"#).expect("data"),
    };
    store.set_now("browser", &browser).expect("set");
    store.destroy_now(&sid(7)).expect("destroy");
    drop(store);

    let prefix = format!("sessile-cli-test:{}:", std::process::id());
    let o = run(
        "migrate",
        &dir,
        &[
            "--redis",
            &url,
            "--prefix",
            &prefix,
            "--default-ttl",
            "600",
            "--json",
        ],
    );
    assert_status(&o, 0);
    let v = json_of(&o);
    assert_eq!(
        (&v["copied"], &v["default_ttl"]),
        (&25.into(), &1.into()),
        "{v}"
    );

    let mut conn = redis::Client::open(url.as_str())
        .expect("REDIS_URL parses")
        .get_connection()
        .expect("connect to REDIS_URL");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut conn)
        .expect("KEYS");
    assert_eq!(keys.len(), 25, "{keys:?}");
    assert!(!keys.contains(&format!("{prefix}{}", sid(7))));
    let key = format!("{prefix}{}", sid(3));
    let text: String = redis::cmd("GET").arg(&key).query(&mut conn).expect("GET");
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON value");
    assert_eq!(value["user"], "user-3");
    assert!(value["cookie"]["expires"].is_string(), "{value}");
    // The session expires in an hour: its key lives that long (connect-redis rounds up).
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut conn).expect("TTL");
    assert!((3590..=3601).contains(&ttl), "TTL {ttl}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{prefix}browser"))
        .query(&mut conn)
        .expect("TTL");
    assert!((590..=600).contains(&ttl), "TTL {ttl}");
    let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut conn).expect("DEL");

    let o = run("migrate", &dir, &["--redis", "redis://127.0.0.1:1/"]);
    assert_status(&o, 2);
    assert!(stderr(&o).contains("Redis at"), "{}", stderr(&o));
}
