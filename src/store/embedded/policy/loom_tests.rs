//! Loom models of making room across shards.

use serde_json::json;

use super::super::EmbeddedStore;
use crate::record::{CookieRecord, Data, Record};

fn record(expires: i64) -> Record {
    Record {
        cookie: CookieRecord {
            expires: Some(expires),
            ..CookieRecord::default()
        },
        data: Data::from_map(json!({}).as_object().expect("object")),
    }
}

/// The first id from `prefix0`, `prefix1`, ... that the store routes to shard `want`.
fn id_in(store: &EmbeddedStore, want: usize, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|id| std::ptr::eq(store.core.shard(id), &store.core.shards[want]))
        .expect("an id")
}

/// A write whose best victim is in another shard lets go of its own lock and evicts there,
/// while a writer of that other shard evicts in its own: no deadlock, no lost write, and
/// the sessions that expire later are kept.
#[test]
fn loom_a_write_makes_room_in_another_shard() {
    loom::model(|| {
        let s = EmbeddedStore::builder()
            .shards(2)
            .max_sessions(3)
            .sweep_interval(None)
            .build();
        let now = crate::clock::now_ms();
        let (soon, late) = (now + 100_000, now + 900_000);
        let (x0, x1) = (id_in(&s, 0, "x"), id_in(&s, 0, "y"));
        let z = id_in(&s, 1, "z");
        s.set_now(&x0, &record(soon)).expect("set");
        s.set_now(&x1, &record(soon)).expect("set");
        s.set_now(&z, &record(late)).expect("set");
        // Shard 1 holds only `z`, which expires late: its writer evicts in shard 0.
        let there = id_in(&s, 1, "w");
        let here = id_in(&s, 0, "v");
        let t = {
            let s = s.clone();
            let there = there.clone();
            loom::thread::spawn(move || s.set_now(&there, &record(late)).expect("set"))
        };
        s.set_now(&here, &record(late)).expect("set");
        t.join().expect("join");
        assert!(s.get_now(&z).is_some() && s.get_now(&there).is_some());
        assert!(s.get_now(&here).is_some());
        assert!(s.usage().0 <= 4, "{:?}", s.usage());
        s.set_now(&id_in(&s, 1, "u"), &record(late)).expect("set");
        assert!(s.usage().0 <= 3, "{:?}", s.usage());
    });
}
