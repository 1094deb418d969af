//! Expiry under the test clock: sessions of the embedded store (and through the layer) expire
//! because the crate's clock is moved forward (`sessile::clock::advance_for_tests`), not
//! because the test sleeps. Lifetimes are a minute or more and each step moves the clock by
//! tens of seconds, so the real time a loaded machine takes between two steps (well under a
//! second, with 20 s allowed) never changes an outcome.
//!
//! The clock is process-wide: this binary holds only such tests, and each takes [`CLOCK`] so
//! that they run one at a time.

mod common;

use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::{builder, fields, get_with, login, serve, SpyStore};
use serde_json::{json, Value};
use sessile::clock::{advance_for_tests, now_ms};
use sessile::{
    Applied, Change, Changes, CookieOptions, CookieRecord, EmbeddedStore, Record, SessionStore,
};

/// Held by every test of this binary: the clock moves for the whole process.
static CLOCK: Mutex<()> = Mutex::new(());

fn clock() -> MutexGuard<'static, ()> {
    CLOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Moves the crate's clock forward to at least `ms`.
fn advance_to(ms: i64) {
    let left = ms - now_ms();
    if left > 0 {
        advance_for_tests(left as u64);
    }
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn cookie(expires: Option<i64>) -> CookieRecord {
    CookieRecord {
        original_max_age: expires.map(|_| 60_000),
        expires,
        ..CookieRecord::default()
    }
}

fn record(expires: Option<i64>, fields: Value) -> Record {
    common::record(fields, cookie(expires))
}

/// Waits (polling) until `cond` holds, for at most 30 s; returns how long it took.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: not true after 30 s"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------
// Memory is given back.

#[test]
fn the_sweeper_frees_expired_sessions() {
    let _clock = clock();
    let store = EmbeddedStore::new();
    let expires = now_ms() + 60_000;
    let r = record(Some(expires), json!({"user": "someone", "n": 1}));
    for i in 0..10_000 {
        store.set_now(&format!("s{i}"), &r).unwrap();
    }
    assert_eq!(store.usage().0, 10_000);
    assert!(store.usage().1 > 10_000 * 32);

    // Past the expiry and its second-long bucket.
    advance_to(expires + 1_001);
    // Expired sessions are never returned, freed or not.
    assert_eq!(store.get_now("s0"), None);
    assert_eq!(block(store.len()).unwrap(), 0);
    assert!(block(store.all()).unwrap().is_empty());

    // The sweeper thread (every 250 ms) frees them by itself.
    let took = wait_for("the sweeper freed everything", || store.usage().0 == 0);
    eprintln!("10,000 expired sessions freed by the sweeper {took:?} after the clock moved");
    assert_eq!(store.usage(), (0, 0));
}

#[test]
fn purge_expired_frees_everything_expired_without_a_sweeper() {
    let _clock = clock();
    let store = EmbeddedStore::builder().sweep_interval(None).build();
    // Half a second into a second: at `expires + 1` that second has not fully passed.
    let expires = (now_ms() / 1000 + 60) * 1000 + 500;
    let r = record(Some(expires), json!({"n": 1}));
    for i in 0..10_000 {
        store.set_now(&format!("s{i}"), &r).unwrap();
    }
    let live = record(Some(now_ms() + 600_000), json!({"live": true}));
    store.set_now("live", &live).unwrap();
    advance_to(expires + 1);
    // Nothing frees them by itself...
    assert_eq!(store.usage().0, 10_001);
    assert_eq!(store.get_now("s1"), None);
    // ...until purge_expired, right away (not only once their second has passed).
    assert_eq!(store.purge_expired(), 10_000);
    assert_eq!(store.usage().0, 1);
    assert_eq!(store.get_now("live"), Some(live));
    assert_eq!(store.purge_expired(), 0);
}

#[test]
fn purge_expired_gets_past_touched_sessions_in_an_old_bucket() {
    let _clock = clock();
    // 300 sessions placed in an early bucket and then touched far into the future sit in
    // that bucket until a sweep moves them. Behind them, in a later bucket, 100 sessions
    // expire. One purge must free those 100 even though the first 256 keys it looks at
    // are all live.
    let store = EmbeddedStore::builder()
        .shards(1)
        .sweep_interval(None)
        .build();
    let t0 = now_ms();
    for i in 0..300 {
        let id = format!("active{i}");
        store
            .set_now(&id, &record(Some(t0 + 20_000), json!({})))
            .unwrap();
        store.touch_now(&id, &cookie(Some(t0 + 600_000))).unwrap();
    }
    for i in 0..100 {
        let id = format!("dead{i}");
        store
            .set_now(&id, &record(Some(t0 + 600_000), json!({})))
            .unwrap();
        // Shortened: moved to the bucket of t0 + 120 s, after the active ones'.
        store.touch_now(&id, &cookie(Some(t0 + 120_000))).unwrap();
    }
    // Until the second of t0 + 120 s has fully passed.
    advance_to(((t0 + 120_000) / 1000 + 1) * 1000 + 1);
    assert_eq!(store.usage().0, 400);
    assert_eq!(store.purge_expired(), 100);
    assert_eq!(store.usage().0, 300);
    assert!(store.get_now("active7").is_some());
}

#[test]
fn turnover_does_not_leak() {
    let _clock = clock();
    let store = EmbeddedStore::builder().sweep_interval(None).build();
    let keep = record(Some(now_ms() + 3_600_000), json!({"kept": true}));
    store.set_now("kept", &keep).unwrap();
    let baseline = store.usage();
    for round in 0..10 {
        let expires = now_ms() + 60_000;
        let changes = Changes {
            cookie: cookie(Some(expires + 10)),
            fields: vec![Change::Set("x".into(), json!("more data"))],
        };
        for i in 0..5_000 {
            let id = format!("r{round}-{i}");
            let r = record(Some(expires), json!({"round": round, "i": i}));
            store.set_now(&id, &r).unwrap();
            match i % 10 {
                // Some are touched (still expiring within the round)...
                0..=3 => store.touch_now(&id, &cookie(Some(expires + 20))).unwrap(),
                // ...some changed...
                4 | 5 => assert_eq!(store.apply_now(&id, &changes).unwrap(), Applied::Applied),
                // ...and some destroyed.
                6 => store.destroy_now(&id).unwrap(),
                _ => {}
            }
        }
        // A generous deadline, not a speed requirement: the round's sessions must not have
        // expired before they are counted.
        assert!(
            now_ms() < expires,
            "round {round}: the writes took over 60 s"
        );
        assert_eq!(store.usage().0, 1 + 4_500, "round {round}");
        advance_to(expires + 21);
        assert_eq!(store.purge_expired(), 4_500, "round {round}");
        assert_eq!(store.usage(), baseline, "round {round}");
    }
    assert_eq!(store.get_now("kept"), Some(keep));
}

// ---------------------------------------------------------------------------------------
// Expiry.

#[test]
fn browser_session_cookies_expire_after_default_ttl_unless_touched() {
    let _clock = clock();
    let store = EmbeddedStore::builder()
        .default_ttl(Duration::from_secs(60))
        .build();
    let t0 = now_ms();
    let r = record(None, json!({"cart": [1, 2]}));
    store.set_now("touched", &r).unwrap();
    store.set_now("idle", &r).unwrap();

    advance_to(t0 + 30_000);
    // Reading does not extend the idle deadline; touching does.
    assert_eq!(store.get_now("idle"), Some(r.clone()));
    let touched_at = now_ms();
    store.touch_now("touched", &cookie(None)).unwrap();

    advance_to(t0 + 70_000);
    assert_eq!(store.get_now("idle"), None, "idle past default_ttl");
    assert_eq!(
        store.get_now("touched"),
        Some(r.clone()),
        "touched at +30 s lives until +90 s, still no expires in its cookie"
    );

    advance_to(touched_at + 65_000);
    assert_eq!(store.get_now("touched"), None);
    assert_eq!(block(store.len()).unwrap(), 0);
}

#[test]
fn touch_moves_expiry_forward_and_never_creates() {
    let _clock = clock();
    let store = EmbeddedStore::new();
    let t0 = now_ms();
    let r = record(Some(t0 + 30_000), json!({"a": 1}));
    store.set_now("touched", &r).unwrap();
    store.set_now("untouched", &r).unwrap();

    advance_to(t0 + 15_000);
    let later = cookie(Some(now_ms() + 60_000));
    store.touch_now("touched", &later).unwrap();

    advance_to(t0 + 45_000);
    assert_eq!(store.get_now("untouched"), None);
    let got = store
        .get_now("touched")
        .expect("touched outlives its first expiry");
    assert_eq!(got.cookie, later);
    assert_eq!(got.data, r.data);

    // Touching an expired or missing session does not bring it back.
    let before = store.usage().0;
    store
        .touch_now("untouched", &cookie(Some(now_ms() + 600_000)))
        .unwrap();
    assert_eq!(store.get_now("untouched"), None);
    store
        .touch_now("missing", &cookie(Some(now_ms() + 600_000)))
        .unwrap();
    store.touch_now("missing-browser", &cookie(None)).unwrap();
    assert_eq!(store.get_now("missing"), None);
    assert_eq!(store.get_now("missing-browser"), None);
    assert!(store.usage().0 <= before);

    advance_to(later.expires.unwrap() + 1);
    assert_eq!(store.get_now("touched"), None);
}

#[test]
fn apply_on_an_expired_entry_is_missing() {
    let _clock = clock();
    let store = EmbeddedStore::builder().sweep_interval(None).build();
    let t0 = now_ms();
    store
        .set_now("s", &record(Some(t0 + 10_000), json!({"a": 1})))
        .unwrap();
    advance_to(t0 + 15_000);
    assert_eq!(store.usage().0, 1, "still held: nothing swept it");
    let changes = Changes {
        cookie: cookie(Some(now_ms() + 60_000)),
        fields: vec![Change::Set("b".into(), json!(2))],
    };
    assert_eq!(store.apply_now("s", &changes).unwrap(), Applied::Missing);
    assert_eq!(store.get_now("s"), None);
    assert_eq!(
        store.apply_now("never", &changes).unwrap(),
        Applied::Missing
    );
    assert_eq!(store.get_now("never"), None);
    // Nothing was written: once the expired entry is freed (by the purge, or already by
    // the writes' own sweeping if its second has passed), nothing is left.
    store.purge_expired();
    assert_eq!(store.usage(), (0, 0));
}

// ---------------------------------------------------------------------------------------
// Through the layer.

/// Each request restarts the countdown of `maxAge` (the unmodified session is touched), so
/// the session outlives its first minute; left alone past `maxAge`, it is gone, and its
/// cookie starts a new session.
#[test]
fn an_expired_session_is_not_loaded_and_requests_keep_one_alive() {
    let _clock = clock();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SpyStore::new();
        let layer = builder()
            .store(store.clone())
            .cookie(CookieOptions::new().max_age(Duration::from_secs(60)))
            .build()
            .unwrap();
        let addr = serve(common::routes().layer(layer)).await;
        let (id, cookie) = login(addr).await;
        for _ in 0..3 {
            // Two thirds of maxAge: alive only because the previous request touched it.
            advance_for_tests(40_000);
            assert_eq!(get_with(addr, "/id", Some(&cookie)).await.body, id);
        }
        assert!(store.record(&id).await.is_some());
        advance_for_tests(61_000);
        assert!(store.record(&id).await.is_none());
        store.take_calls();
        let r = get_with(addr, "/set/fresh", Some(&cookie)).await;
        let new = r.sid();
        assert_ne!(new, id);
        assert_eq!(
            store.take_calls(),
            [format!("get:{id}"), format!("set:{new}")]
        );
        assert_eq!(
            get_with(addr, "/get/user", Some(&r.cookie_pair()))
                .await
                .body,
            "null"
        );
        let f = fields(&store.record(&new).await.unwrap());
        assert_eq!(f.get("fresh"), Some(&json!(true)));
    });
}
