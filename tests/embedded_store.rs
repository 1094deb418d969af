//! The embedded store's own behaviour: records set already expired, caps, and a
//! multi-threaded stress test against a model. Expiry over time (the sweeper, purges, idle
//! expiry, touches) is tested under the test clock, in `tests/clock_expiry.rs`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};
use sessile::clock::now_ms;
use sessile::{
    Applied, Change, Changes, CookieRecord, Data, EmbeddedStore, Priority, Record, SameSite,
    SessionStore,
};

fn block<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn sleep_until(ms: i64) {
    loop {
        let left = ms - now_ms();
        if left <= 0 {
            return;
        }
        thread::sleep(Duration::from_millis(left as u64));
    }
}

fn data(v: Value) -> Data {
    match v {
        Value::Object(m) => Data::from_map(&m),
        _ => panic!("data must be an object"),
    }
}

fn cookie(expires: Option<i64>) -> CookieRecord {
    CookieRecord {
        original_max_age: expires.map(|_| 60_000),
        expires,
        ..CookieRecord::default()
    }
}

fn record(expires: Option<i64>, fields: Value) -> Record {
    Record {
        cookie: cookie(expires),
        data: data(fields),
    }
}

// ---------------------------------------------------------------------------------------
// Expiry. (Memory given back as sessions expire, idle expiry, touches and purges, under the
// test clock: `tests/clock_expiry.rs`.)

#[test]
fn set_of_an_already_expired_record_stores_nothing() {
    let store = EmbeddedStore::builder().sweep_interval(None).build();
    let now = now_ms();
    store
        .set_now("old", &record(Some(now - 1), json!({"a": 1})))
        .unwrap();
    store.set_now("epoch", &record(Some(0), json!({}))).unwrap();
    assert_eq!(store.usage(), (0, 0));
    assert_eq!(store.get_now("old"), None);

    // Over a live record it removes it.
    store
        .set_now("live", &record(Some(now + 60_000), json!({"a": 1})))
        .unwrap();
    assert_eq!(store.usage().0, 1);
    store
        .set_now("live", &record(Some(now - 1), json!({"a": 2})))
        .unwrap();
    assert_eq!(store.get_now("live"), None);
    assert_eq!(store.usage(), (0, 0));

    // Likewise a touch or an apply whose cookie has already expired removes the record.
    store
        .set_now("t", &record(Some(now + 60_000), json!({})))
        .unwrap();
    store.touch_now("t", &cookie(Some(now - 1))).unwrap();
    assert_eq!(store.get_now("t"), None);
    store
        .set_now("a", &record(Some(now + 60_000), json!({})))
        .unwrap();
    let expired = Changes {
        cookie: cookie(Some(now - 1)),
        fields: vec![],
    };
    assert_eq!(store.apply_now("a", &expired).unwrap(), Applied::Applied);
    assert_eq!(store.get_now("a"), None);
    assert_eq!(store.usage(), (0, 0));
}

// ---------------------------------------------------------------------------------------
// Caps.

/// A permutation of `0..n` (n not a multiple of 7), so inserts are not in expiry order.
fn shuffled(n: usize) -> Vec<usize> {
    (0..n).map(|i| (i * 7 + 3) % n).collect()
}

#[test]
fn max_sessions_keeps_the_latest_expiring() {
    let store = EmbeddedStore::builder()
        .shards(1)
        .max_sessions(10)
        .sweep_interval(None)
        .build();
    let base = now_ms() + 100_000;
    for i in shuffled(15) {
        // One-second steps: each in a bucket of its own.
        store
            .set_now(
                &format!("s{i}"),
                &record(Some(base + i as i64 * 1000), json!({})),
            )
            .unwrap();
        assert!(store.usage().0 <= 10);
    }
    assert_eq!(store.usage().0, 10);
    let kept: Vec<String> = block(store.all()).unwrap().into_keys().collect();
    let mut want: Vec<String> = (5..15).map(|i| format!("s{i}")).collect();
    want.sort();
    assert_eq!(kept, want);
}

#[test]
fn eviction_goes_by_the_current_expiry_of_touched_and_changed_sessions() {
    // `a` and `b` were created expiring soonest, then kept alive (by touch and by apply)
    // far into the future; `c` was never used again. At the cap, `c` must go.
    let store = EmbeddedStore::builder()
        .shards(1)
        .max_sessions(3)
        .sweep_interval(None)
        .build();
    let base = now_ms() + 100_000;
    store
        .set_now("a", &record(Some(base + 1_000), json!({})))
        .unwrap();
    store
        .set_now("b", &record(Some(base + 2_000), json!({})))
        .unwrap();
    store
        .set_now("c", &record(Some(base + 3_000), json!({})))
        .unwrap();
    store.touch_now("a", &cookie(Some(base + 10_000))).unwrap();
    let changes = Changes {
        cookie: cookie(Some(base + 11_000)),
        fields: vec![Change::Set("seen".into(), json!(true))],
    };
    assert_eq!(store.apply_now("b", &changes).unwrap(), Applied::Applied);
    store
        .set_now("d", &record(Some(base + 5_000), json!({})))
        .unwrap();
    let kept: Vec<String> = block(store.all()).unwrap().into_keys().collect();
    assert_eq!(kept, ["a", "b", "d"]);
}

#[test]
fn max_sessions_is_kept_per_shard() {
    let store = EmbeddedStore::builder()
        .max_sessions(1_000)
        .sweep_interval(None)
        .build();
    let r = record(Some(now_ms() + 600_000), json!({}));
    for i in 0..5_000 {
        store.set_now(&format!("s{i}"), &r).unwrap();
    }
    let (n, _) = store.usage();
    // 64 shards of ceil(1000 / 64) = 16 each, all full after 5,000 inserts.
    assert!((1_000..=1_024).contains(&n), "{n} sessions kept");
    assert_eq!(block(store.len()).unwrap(), n);
}

#[test]
fn max_bytes_keeps_the_latest_expiring_within_the_budget() {
    let pad = "x".repeat(1_000);
    let probe = EmbeddedStore::builder().sweep_interval(None).build();
    probe
        .set_now(
            "k00",
            &record(Some(now_ms() + 60_000), json!({ "pad": pad })),
        )
        .unwrap();
    let per_entry = probe.usage().1;
    assert!(per_entry > 1_000);

    let budget = per_entry * 10 + per_entry / 2;
    let store = EmbeddedStore::builder()
        .shards(1)
        .max_bytes(budget)
        .sweep_interval(None)
        .build();
    let base = now_ms() + 100_000;
    for i in shuffled(20) {
        let r = record(Some(base + i as i64 * 1000), json!({ "pad": pad }));
        store.set_now(&format!("k{i:02}"), &r).unwrap();
        assert!(store.usage().1 <= budget);
    }
    assert_eq!(store.usage(), (10, per_entry * 10));
    let kept: Vec<String> = block(store.all()).unwrap().into_keys().collect();
    let want: Vec<String> = (10..20).map(|i| format!("k{i:02}")).collect();
    assert_eq!(kept, want);

    // Growing a session by apply evicts the soonest-expiring others to make room.
    let changes = Changes {
        cookie: cookie(Some(base + 50_000)),
        fields: vec![Change::Set("more".into(), json!(pad.repeat(2)))],
    };
    assert_eq!(store.apply_now("k19", &changes).unwrap(), Applied::Applied);
    assert!(store.usage().1 <= budget);
    let kept: Vec<String> = block(store.all()).unwrap().into_keys().collect();
    assert_eq!(kept.len(), 8, "{kept:?}");
    assert!(!kept.contains(&"k10".to_owned()) && !kept.contains(&"k11".to_owned()));
    assert!(kept.contains(&"k19".to_owned()));
}

// ---------------------------------------------------------------------------------------
// Concurrency against a model.

/// SplitMix64: a small deterministic generator (no dependency needed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_value(rng: &mut Rng) -> Value {
    match rng.below(4) {
        0 => json!(rng.below(1000)),
        1 => json!(format!("v{}", rng.below(1_000_000))),
        2 => json!([rng.below(10), {"k": rng.below(10)}]),
        _ => json!("x".repeat(rng.below(200) as usize)),
    }
}

/// A cookie for a random operation: mostly live for minutes, sometimes a browser-session
/// cookie, sometimes already expired; attributes vary so that touches take both paths.
fn random_cookie(rng: &mut Rng) -> CookieRecord {
    let now = now_ms();
    let expires = match rng.below(10) {
        0 => None,
        1 => Some(now - 1 - rng.below(10_000) as i64),
        _ => Some(now + 60_000 + rng.below(60_000) as i64),
    };
    CookieRecord {
        original_max_age: expires.map(|_| 60_000 + rng.below(3) as i64),
        expires,
        secure: [None, Some(true)][rng.below(2) as usize],
        same_site: [None, Some(SameSite::Lax)][rng.below(2) as usize],
        priority: [None, Some(Priority::High)][rng.below(2) as usize],
        ..CookieRecord::default()
    }
}

/// Whether the model's record is live now (browser-session records live for the store's
/// default day).
fn live(r: &Record) -> bool {
    !r.cookie.is_expired_at(now_ms())
}

fn stress(store: EmbeddedStore, seed: u64) {
    const IDS: usize = 24;
    const THREADS: u64 = 4;
    const OPS: usize = 4_000;
    let ids: Vec<String> = (0..IDS).map(|i| format!("model-{i}")).collect();
    // One lock per id: operations on one id are linearized (the lock is held around the
    // store call and the model's update), operations on different ids, in one shard or
    // not, run in the store concurrently.
    let model: Vec<Mutex<Option<Record>>> = (0..IDS).map(|_| Mutex::new(None)).collect();
    let done = AtomicBool::new(false);

    thread::scope(|s| {
        let mut workers = Vec::new();
        for t in 0..THREADS {
            let (store, ids, model) = (&store, &ids, &model);
            workers.push(s.spawn(move || {
                let mut rng = Rng(seed ^ (t + 1).wrapping_mul(0xA076_1D64_78BD_642F));
                for op in 0..OPS {
                    let i = rng.below(IDS as u64) as usize;
                    let id = &ids[i];
                    // A poisoned lock: another worker failed; its panic is the one reported.
                    let Ok(mut slot) = model[i].lock() else {
                        return;
                    };
                    match rng.below(10) {
                        0 | 1 => {
                            let got = store.get_now(id);
                            assert_eq!(got, *slot, "thread {t} op {op}: get({id})");
                        }
                        2 | 3 => {
                            let mut fields = serde_json::Map::new();
                            for _ in 0..rng.below(4) {
                                fields.insert(format!("f{}", rng.below(6)), random_value(&mut rng));
                            }
                            let r = Record {
                                cookie: random_cookie(&mut rng),
                                data: Data::from_map(&fields),
                            };
                            store.set_now(id, &r).unwrap();
                            *slot = Some(r).filter(live);
                        }
                        4..=6 => {
                            let mut changes = Changes {
                                cookie: random_cookie(&mut rng),
                                fields: Vec::new(),
                            };
                            for _ in 0..rng.below(4) {
                                let key = format!("f{}", rng.below(6));
                                changes.fields.push(if rng.below(3) == 0 {
                                    Change::Remove(key)
                                } else {
                                    Change::Set(key, random_value(&mut rng))
                                });
                            }
                            let got = store.apply_now(id, &changes).unwrap();
                            let want = match slot.take() {
                                None => Applied::Missing,
                                Some(old) => {
                                    let r = Record {
                                        data: changes.apply_to_data(&old.data).unwrap(),
                                        cookie: changes.cookie.clone(),
                                    };
                                    *slot = Some(r).filter(live);
                                    Applied::Applied
                                }
                            };
                            assert_eq!(got, want, "thread {t} op {op}: apply({id})");
                        }
                        7 | 8 => {
                            let c = match (&*slot, rng.below(2)) {
                                // The same cookie, expiring later: the read-lock path.
                                (Some(r), 0) if r.cookie.expires.is_some() => CookieRecord {
                                    expires: r
                                        .cookie
                                        .expires
                                        .map(|e| e + 1 + rng.below(5_000) as i64),
                                    ..r.cookie.clone()
                                },
                                _ => random_cookie(&mut rng),
                            };
                            store.touch_now(id, &c).unwrap();
                            if let Some(r) = slot.take() {
                                *slot = Some(Record { cookie: c, ..r }).filter(live);
                            }
                        }
                        _ => {
                            store.destroy_now(id).unwrap();
                            *slot = None;
                        }
                    }
                }
            }));
        }

        // Meanwhile another thread churns short-lived sessions in the same shards, so that
        // sweeps, evictions of the wheel and re-bucketing run beside the model's operations.
        let churn = s.spawn(|| {
            let mut rng = Rng(seed ^ 0x5EED);
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) {
                let id = format!("churn-{}", rng.below(2_000));
                let soon = now_ms() + rng.below(40) as i64;
                match rng.below(4) {
                    0 => store.destroy_now(&id).unwrap(),
                    1 => store.touch_now(&id, &cookie(Some(soon + 20))).unwrap(),
                    _ => store
                        .set_now(&id, &record(Some(soon), json!({"n": n})))
                        .unwrap(),
                }
                n += 1;
            }
            n
        });

        // Stop the churn even when a worker failed, then report the failure.
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        done.store(true, Ordering::Relaxed);
        let churned = churn.join().unwrap();
        for r in results {
            if let Err(panic) = r {
                std::panic::resume_unwind(panic);
            }
        }
        eprintln!("stress: {churned} churn operations beside the model's");
    });

    // Every id equals the model.
    let mut want = BTreeMap::new();
    for (id, slot) in ids.iter().zip(&model) {
        let slot = slot.lock().unwrap();
        assert_eq!(store.get_now(id), *slot, "final get({id})");
        if let Some(r) = &*slot {
            want.insert(id.clone(), r.clone());
        }
    }
    // Once the churn has expired, the store holds exactly the model's records, and the
    // bytes charged add up.
    sleep_until(now_ms() + 100);
    store.purge_expired();
    let all = block(store.all()).unwrap();
    assert_eq!(all, want);
    assert_eq!(block(store.len()).unwrap(), want.len());
    assert_eq!(store.usage().0, want.len());

    let probe = EmbeddedStore::builder().sweep_interval(None).build();
    probe.set_now("", &Record::default()).unwrap();
    let overhead = probe.usage().1 - Data::empty().len();
    let bytes: usize = want
        .iter()
        .map(|(id, r)| overhead + id.len() + r.data.len())
        .sum();
    assert_eq!(store.usage().1, bytes, "bytes charged");
}

#[test]
fn concurrent_operations_match_a_model_on_one_shard() {
    let store = EmbeddedStore::builder()
        .shards(1)
        .sweep_interval(Some(Duration::from_millis(5)))
        .build();
    stress(store, 1);
}

#[test]
fn concurrent_operations_match_a_model_on_four_shards() {
    let store = EmbeddedStore::builder()
        .shards(4)
        .sweep_interval(Some(Duration::from_millis(5)))
        .build();
    stress(store, 2);
}

// ---------------------------------------------------------------------------------------
// Caps are store-wide, and eviction prefers the sessions that never came back.

/// `max_bytes` is one budget for the whole store: a session smaller than the cap is kept,
/// whichever shard it lands in, and one that can never fit is refused.
#[test]
fn max_bytes_is_one_budget_for_the_whole_store() {
    let store = EmbeddedStore::builder()
        .max_bytes(1 << 20)
        .sweep_interval(None)
        .build();
    let later = now_ms() + 600_000;
    let big = record(Some(later), json!({ "pad": "b".repeat(17_000) }));
    store.set_now("big", &big).unwrap();
    assert!(
        store.get_now("big") == Some(big.clone()),
        "17 KB under 1 MiB: evicted"
    );
    // Many small sessions beside it, 1 MiB in all: it stays.
    for i in 0..2_000 {
        store
            .set_now(
                &format!("small{i}"),
                &record(Some(later), json!({ "i": i })),
            )
            .unwrap();
        assert!(store.usage().1 <= 1 << 20, "{:?}", store.usage());
    }
    assert!(store.get_now("big") == Some(big.clone()), "17 KB evicted");
    // Replacing it with more than the whole cap is refused, and changes nothing.
    let huge = record(Some(later), json!({ "pad": "h".repeat(1 << 20) }));
    let err = store.set_now("big", &huge).unwrap_err();
    assert!(matches!(err, sessile::StoreError::Full(_)), "{err}");
    assert!(err.to_string().contains("max_bytes"), "{err}");
    assert!(store.get_now("big") == Some(big.clone()), "17 KB evicted");
    let err = store.set_now("other", &huge).unwrap_err();
    assert!(matches!(err, sessile::StoreError::Full(_)), "{err}");
    assert!(store.get_now("other").is_none());
    assert!(store.usage().1 <= 1 << 20);
}

/// `max_sessions` is one count for the whole store, not a count per shard.
#[test]
fn max_sessions_is_one_count_for_the_whole_store() {
    let store = EmbeddedStore::builder()
        .max_sessions(100)
        .sweep_interval(None)
        .build();
    let r = record(Some(now_ms() + 600_000), json!({}));
    for i in 0..1_000 {
        store.set_now(&format!("s{i}"), &r).unwrap();
        assert!(store.usage().0 <= 100, "{i}: {:?}", store.usage());
        // The session just written is always kept.
        assert!(
            store.get_now(&format!("s{i}")).is_some(),
            "s{i} evicted at once"
        );
    }
    assert_eq!(store.usage().0, 100);
    assert_eq!(block(store.len()).unwrap(), 100);
}

/// A flood of anonymous sessions (created once, never sent back) does not evict users who
/// come back: the sessions that never returned go first. Expiry times stand in for the
/// clock (each request is 1 ms after the previous one, so a second of them shares a bucket).
#[test]
fn an_anonymous_flood_does_not_evict_returning_users() {
    let store = EmbeddedStore::builder()
        .max_sessions(1_000)
        .sweep_interval(None)
        .build();
    let base = now_ms() + 3_600_000;
    let max_age = 600_000;
    let at = |i: i64| Some(base + i + max_age);
    // alice comes back every 500 requests; bob logged in right away (his session came back
    // once at once) and then comes back every 1,500, more than the cap holds.
    store
        .set_now("alice", &record(at(0), json!({"user": "alice"})))
        .unwrap();
    store
        .set_now("bob", &record(at(0), json!({"user": "bob"})))
        .unwrap();
    assert!(store.get_now("bob").is_some());
    store.touch_now("bob", &cookie(at(0))).unwrap();
    for i in 1..=6_000i64 {
        store
            .set_now(&format!("anon{i}"), &record(at(i), json!({})))
            .unwrap();
        for (user, every) in [("alice", 500), ("bob", 1_500)] {
            if i % every == 0 {
                assert!(
                    store.get_now(user).is_some(),
                    "{user} evicted by anonymous sessions after {i} requests"
                );
                store.touch_now(user, &cookie(at(i))).unwrap();
            }
        }
        assert!(store.usage().0 <= 1_000);
    }
    // The newest anonymous sessions are kept too (a new session is not evicted at once).
    assert!(store.get_now("anon6000").is_some());
    assert!(store.get_now("anon5900").is_some());
    assert!(store.get_now("anon1").is_none());
}

// ---------------------------------------------------------------------------------------
// Stats.

#[test]
fn stats_count_sessions_caps_evictions_and_expiries() {
    let store = EmbeddedStore::builder()
        .max_sessions(2)
        .sweep_interval(None)
        .build();
    let later = Some(now_ms() + 3_600_000);
    for id in ["a", "b", "c"] {
        store
            .set_now(id, &record(later, json!({ "user": id })))
            .unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.sessions, 2);
    assert_eq!(stats.max_sessions, Some(2));
    assert_eq!(stats.max_bytes, None);
    assert_eq!(stats.evicted, 1, "{stats:?}");
    assert_eq!(stats.expired, 0, "{stats:?}");
    assert!(stats.log.is_none());

    // A session that expires is counted once freed.
    let soon = now_ms() + 50;
    store.set_now("d", &record(Some(soon), json!({}))).unwrap();
    sleep_until(soon + 1);
    store.purge_expired();
    let stats = store.stats();
    assert_eq!(stats.expired, 1, "{stats:?}");
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["evicted"], json!(stats.evicted));
}
