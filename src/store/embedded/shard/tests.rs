//! The shard's own tests: the wheel, compaction and snapshot slices stay right.

use std::sync::Arc;

use super::*;
use crate::record::Data;
use crate::store::embedded::context::Limits;
use crate::store::embedded::room::Room;
use crate::store::embedded::slab::CHUNK;

const NOW: i64 = 1_000_000;

const LIMITS: Limits = Limits {
    default_ttl_ms: 60_000,
    touch_log_ms: 1_000,
};

/// A call at `NOW`, without a log.
fn ctx() -> Ctx<'static> {
    Ctx {
        now_ms: NOW,
        limits: &LIMITS,
        log: None,
    }
}

/// A cookie like `record`'s, expiring at `deadline`.
fn cookie(deadline: i64) -> CookieRecord {
    CookieRecord {
        expires: Some(deadline),
        ..record(0).cookie
    }
}

fn record(n: u32) -> Record {
    Record {
        cookie: CookieRecord {
            expires: Some(0),
            original_max_age: Some(60_000),
            ..CookieRecord::default()
        },
        data: Data::from_trusted(&format!("{{\"n\":{n}}}")),
    }
}

fn set_record(s: &Shard, key: &str, r: &Record, deadline: i64) {
    let r = Record {
        cookie: CookieRecord {
            expires: Some(deadline),
            ..r.cookie.clone()
        },
        data: r.data.clone(),
    };
    let written = s.set(key, &r, &ctx(), &Room::single(s)).unwrap();
    assert!(matches!(written, Written::Done(_)));
}

fn set(s: &Shard, key: &str, n: u32, deadline: i64) {
    set_record(s, key, &record(n), deadline);
}

/// Every entry is in the wheel exactly once, at the place it remembers.
fn check_wheel(s: &Shard) {
    let g = s.inner.read();
    let mut seen = 0;
    for pos in 0..g.slab.end() {
        if let Some(e) = g.slab.get(pos) {
            assert_eq!(g.wheel.at(e.place()), Some(pos));
            seen += 1;
        }
    }
    assert_eq!(seen, g.slab.len());
    assert_eq!(g.wheel.len(), g.slab.len());
}

#[test]
fn destroys_and_sweeps_keep_the_wheel_right() {
    let s = Shard::default();
    for i in 0..3_000u32 {
        // Three buckets, several entries in each.
        set(
            &s,
            &format!("id{i}"),
            i,
            NOW + 1_000 + i64::from(i % 3) * 1_000,
        );
    }
    check_wheel(&s);
    for i in (0..3_000u32).step_by(7) {
        s.destroy(&format!("id{i}"), None).unwrap();
    }
    check_wheel(&s);
    // An earlier deadline moves the entry to an earlier bucket.
    set(&s, "id1", 1, NOW + 500);
    check_wheel(&s);
    // The first bucket (and id1) expire.
    let freed = s.sweep(NOW + 2_000, usize::MAX);
    assert!(freed > 800, "{freed}");
    assert!(s.get("id1", NOW + 2_000).is_none());
    assert!(s.get("id2", NOW + 2_000).is_some());
    check_wheel(&s);
    // The rest expire: memory is given back.
    s.sweep(NOW + 10_000, usize::MAX);
    assert_eq!(s.usage(), (0, 0));
    assert!(s.inner.read().slab.capacity() <= CHUNK);
}

#[test]
fn compaction_keeps_every_live_entry_findable() {
    let s = Shard::default();
    let long = "L".repeat(100);
    set(&s, &long, 7, NOW + 60_000);
    for i in 0..5_000u32 {
        let d = if i % 20 == 0 {
            NOW + 60_000
        } else {
            NOW + 1_000
        };
        set(&s, &format!("{i:032}"), i, d);
    }
    let cap = s.inner.read().slab.capacity();
    s.sweep(NOW + 5_000, usize::MAX);
    assert!(s.inner.read().slab.capacity() < cap);
    check_wheel(&s);
    for i in 0..5_000u32 {
        let got = s.get(&format!("{i:032}"), NOW + 5_000);
        assert_eq!(got.is_some(), i % 20 == 0, "{i}");
        if let Some(r) = got {
            assert_eq!(r.data.as_str(), format!("{{\"n\":{i}}}"));
            assert_eq!(r.cookie.expires, Some(NOW + 60_000));
        }
    }
    assert_eq!(s.get(&long, NOW).unwrap().data.as_str(), "{\"n\":7}");
    // Touch and set still work on moved entries.
    s.touch(&long, &cookie(NOW + 90_000), &ctx()).unwrap();
    assert_eq!(
        s.get(&long, NOW).unwrap().cookie.expires,
        Some(NOW + 90_000)
    );
    check_wheel(&s);
}

#[test]
fn snapshot_slices_resume_and_pin_the_slab() {
    let s = Shard::default();
    s.reserve(2_500, true);
    for i in 0..2_500u32 {
        set(
            &s,
            &format!("k{i}"),
            i,
            NOW + 1_000 + i64::from(i % 4 == 0) * 60_000,
        );
    }
    let mut out = Vec::new();
    let mut next = Some(0);
    let mut slices = 0;
    while let Some(from) = next {
        let before = out.len();
        next = s.live_slice(NOW, from, 100, &mut out);
        assert!(out.len() - before <= 100);
        slices += 1;
    }
    assert_eq!(out.len(), 2_500);
    assert!(slices >= 25);
    // A copy in progress: a quarter stay live, the others expire and are swept,
    // but the slab is not compacted under the copy, so no live entry is missed.
    let mut copy = s.live_copy(NOW + 2_000);
    let first = copy.next().unwrap();
    assert_eq!(s.inner.read().copying.load(Ordering::Acquire), 1);
    let cap = s.inner.read().slab.capacity();
    s.sweep(NOW + 2_000, usize::MAX);
    assert_eq!(s.inner.read().slab.capacity(), cap);
    let mut keys: Vec<String> = std::iter::once(first)
        .chain(copy)
        .map(|e| e.0.as_ref().to_owned())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 625);
    // The copy held off compaction; once dropped, it is unpinned.
    assert!(s.inner.read().slab.sparse());
    assert_eq!(s.inner.read().copying.load(Ordering::Acquire), 0);
}

#[test]
fn shapes_follow_the_entries() {
    let s = Shard::default();
    let mut other = record(1);
    other.cookie.path = Arc::from("/app");
    set(&s, "a", 0, NOW + 10_000);
    set_record(&s, "b", &other, NOW + 10_000);
    assert_eq!(&*s.get("b", NOW).unwrap().cookie.path, "/app");
    // A touch with another shape takes the write path and changes the cookie.
    let other_cookie = CookieRecord {
        expires: Some(NOW + 20_000),
        ..other.cookie.clone()
    };
    s.touch("a", &other_cookie, &ctx()).unwrap();
    assert_eq!(&*s.get("a", NOW).unwrap().cookie.path, "/app");
    assert_eq!(s.inner.read().shapes.len(), 1);
    s.destroy("a", None).unwrap();
    s.destroy("b", None).unwrap();
    assert_eq!(s.inner.read().shapes.len(), 0);
}

#[test]
fn the_owner_index_follows_every_removal() {
    use crate::record::{Change, Changes};
    use crate::store::embedded::policy::Caps;

    let owned = |n: i64| Record {
        data: Data::from_trusted(&format!(r#"{{"n":{n},"__sessile_owner":"alice"}}"#)),
        ..record(0)
    };
    let listed = |s: &Shard, now: i64| {
        let mut out = Vec::new();
        s.sessions_of("alice", now, &mut out);
        let mut ids: Vec<String> = out.into_iter().map(|o| o.id).collect();
        ids.sort();
        ids
    };
    let counts = |s: &Shard| s.inner.read().owners.counts();
    // At most 4 sessions: the first two of six are evicted.
    let s = Shard::new(Caps::new(Some(4), None).map(Arc::new));
    for i in 0..6 {
        set_record(&s, &format!("id{i}"), &owned(i), NOW + 1_000 * (i + 1));
    }
    assert_eq!(s.usage().0, 4);
    assert_eq!(listed(&s, NOW), ["id2", "id3", "id4", "id5"]);
    assert_eq!(counts(&s), (4, 1));
    // Destroyed; disowned by an apply.
    s.destroy("id5", None).unwrap();
    let disown = Changes {
        cookie: cookie(NOW + 5_000),
        fields: vec![Change::Remove("__sessile_owner".into())],
    };
    s.apply("id4", &disown, &ctx(), &Room::single(&s)).unwrap();
    assert_eq!(listed(&s, NOW), ["id2", "id3"]);
    assert_eq!(counts(&s), (2, 1));
    // A touch keeps the owner.
    s.touch("id3", &cookie(NOW + 9_000), &ctx()).unwrap();
    assert_eq!(counts(&s), (2, 1));
    // Expired and swept: nothing is left behind.
    assert_eq!(listed(&s, NOW + 4_500), ["id3"]);
    s.sweep(NOW + 20_000, usize::MAX);
    assert_eq!(s.usage(), (0, 0));
    assert_eq!(counts(&s), (0, 0));
    // Replayed sets rebuild it; a replayed clear empties it.
    for i in 0..3 {
        s.replay(&Op::Set {
            sid: format!("r{i}"),
            record: owned(i),
            deadline: NOW + 60_000,
        });
    }
    assert_eq!(listed(&s, NOW), ["r0", "r1", "r2"]);
    s.replay(&Op::Clear);
    assert_eq!(counts(&s), (0, 0));
}
