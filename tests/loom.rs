//! Loom models of the embedded store's concurrency: every interleaving of two or three
//! threads racing on one session is explored.
//!
//! ```text
//! RUSTFLAGS="--cfg sessile_loom" cargo test --release --test loom
//! ```
//!
//! (`sessile_loom`, not `loom`: tokio changes itself under plain `--cfg loom`.)

#![cfg(sessile_loom)]

use loom::thread;
use serde_json::{json, Map, Value};
use sessile::{Applied, Change, Changes, CookieRecord, Data, EmbeddedStore, Record};

fn cookie(max_age: i64) -> CookieRecord {
    let mut c = CookieRecord::default();
    c.set_max_age(Some(max_age));
    c
}

fn record(v: Value) -> Record {
    Record {
        cookie: cookie(3_600_000),
        data: Data::from_map(v.as_object().unwrap()),
    }
}

fn store() -> EmbeddedStore {
    EmbeddedStore::builder()
        .shards(1)
        .sweep_interval(None)
        .build()
}

fn fields(store: &EmbeddedStore, sid: &str) -> Option<Map<String, Value>> {
    store.get_now(sid).map(|r| r.data.to_map().unwrap())
}

fn set_field(k: &str, v: Value) -> Changes {
    Changes {
        cookie: cookie(3_600_000),
        fields: vec![Change::Set(k.into(), v)],
    }
}

/// Two requests change different fields of one session at once: both changes are kept.
#[test]
fn apply_racing_apply_keeps_both_changes() {
    loom::model(|| {
        let s = store();
        s.set_now("sid", &record(json!({"base": 0}))).unwrap();
        let t = {
            let s = s.clone();
            thread::spawn(move || s.apply_now("sid", &set_field("a", json!(1))).unwrap())
        };
        let here = s.apply_now("sid", &set_field("b", json!(2))).unwrap();
        let there = t.join().unwrap();
        assert_eq!((here, there), (Applied::Applied, Applied::Applied));
        let f = fields(&s, "sid").unwrap();
        assert_eq!(f.get("a"), Some(&json!(1)));
        assert_eq!(f.get("b"), Some(&json!(2)));
        assert_eq!(f.get("base"), Some(&json!(0)));
    });
}

/// A destroy racing a touch and an apply: once the destroy has happened, nothing brings the
/// session back (touch and apply never create).
#[test]
fn destroy_racing_touch_and_apply_never_resurrects() {
    loom::model(|| {
        let s = store();
        s.set_now("sid", &record(json!({}))).unwrap();
        let toucher = {
            let s = s.clone();
            thread::spawn(move || s.touch_now("sid", &cookie(7_200_000)).unwrap())
        };
        let applier = {
            let s = s.clone();
            thread::spawn(move || s.apply_now("sid", &set_field("x", json!(1))).unwrap())
        };
        s.destroy_now("sid").unwrap();
        toucher.join().unwrap();
        applier.join().unwrap();
        assert!(s.get_now("sid").is_none(), "a destroyed session came back");
    });
}

/// A touch racing a set: the session is live afterwards, with the set's fields, and its
/// expiry is at least the set's.
#[test]
fn touch_racing_set_loses_no_change() {
    loom::model(|| {
        let s = store();
        s.set_now("sid", &record(json!({"v": 1}))).unwrap();
        let before = s.get_now("sid").unwrap().cookie.expires.unwrap();
        let t = {
            let s = s.clone();
            thread::spawn(move || s.touch_now("sid", &cookie(3_600_000)).unwrap())
        };
        s.set_now("sid", &record(json!({"v": 2}))).unwrap();
        t.join().unwrap();
        let r = s.get_now("sid").expect("live");
        assert_eq!(r.data.to_map().unwrap().get("v"), Some(&json!(2)));
        assert!(r.cookie.expires.unwrap() >= before);
    });
}

/// Two touches that only move the expiry (the same cookie) never move it backwards: the
/// deadline is an atomic maximum, taken under the read lock.
#[test]
fn touches_never_move_the_expiry_backwards() {
    loom::model(|| {
        let s = store();
        s.set_now("sid", &record(json!({}))).unwrap();
        let before = s.get_now("sid").unwrap().cookie.expires.unwrap();
        let t = {
            let s = s.clone();
            thread::spawn(move || s.touch_now("sid", &cookie(3_600_000)).unwrap())
        };
        s.touch_now("sid", &cookie(3_600_000)).unwrap();
        let mid = s.get_now("sid").unwrap().cookie.expires.unwrap();
        t.join().unwrap();
        let after = s.get_now("sid").unwrap().cookie.expires.unwrap();
        assert!(mid >= before && after >= mid, "{before} {mid} {after}");
    });
}

/// Expiry sweeping racing a touch never frees a live session, and frees an expired one.
#[test]
fn expiry_never_frees_a_live_session() {
    loom::model(|| {
        let s = store();
        s.set_now("live", &record(json!({}))).unwrap();
        // A session that expires a millisecond from now, and has expired before the race.
        let mut dead = record(json!({}));
        dead.cookie.expires = Some(sessile::clock::now_ms() + 1);
        s.set_now("dead", &dead).unwrap();
        while sessile::clock::now_ms() <= dead.cookie.expires.unwrap() {
            std::hint::spin_loop();
        }
        assert_eq!(s.usage().0, 2, "the expired session is still held");
        let t = {
            let s = s.clone();
            thread::spawn(move || s.purge_expired())
        };
        s.touch_now("live", &cookie(3_600_000)).unwrap();
        let freed = t.join().unwrap();
        assert!(s.get_now("live").is_some());
        assert!(s.get_now("dead").is_none());
        assert_eq!(
            (freed, s.usage().0),
            (1, 1),
            "the expired session was not freed"
        );
    });
}

/// Two writers at the cap, each evicting to make room: no deadlock, and the next write
/// brings the store back under the cap. (The model of a write making room in another
/// shard, which needs ids routed to chosen shards, is `loom_a_write_makes_room_in_another_shard`
/// in `src/store/embedded/policy/loom_tests.rs`.)
#[test]
fn writers_at_the_cap_both_make_room() {
    loom::model(|| {
        let s = EmbeddedStore::builder()
            .shards(2)
            .max_sessions(2)
            .sweep_interval(None)
            .build();
        s.set_now("a", &record(json!({}))).unwrap();
        s.set_now("b", &record(json!({}))).unwrap();
        let t = {
            let s = s.clone();
            thread::spawn(move || s.set_now("c", &record(json!({}))).unwrap())
        };
        s.set_now("d", &record(json!({}))).unwrap();
        t.join().unwrap();
        // Racing writes may pass the cap by what they add, never more.
        assert!(s.usage().0 <= 3, "{:?}", s.usage());
        s.set_now("e", &record(json!({}))).unwrap();
        assert!(s.usage().0 <= 2, "{:?}", s.usage());
        assert!(s.get_now("e").is_some());
    });
}
