//! The caps across a whole store: the counts, and evictions the log refuses.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::super::durable::fault::FaultStorage;
use super::super::{EmbeddedStore, FsyncPolicy};
use crate::record::{CookieRecord, Data, Record};

fn record(n: u32) -> Record {
    let mut cookie = CookieRecord::default();
    cookie.set_max_age(Some(3_600_000));
    Record {
        cookie,
        data: Data::from_map(json!({ "n": n }).as_object().expect("object")),
    }
}

fn open(fs: &FaultStorage) -> EmbeddedStore {
    EmbeddedStore::builder()
        .shards(1)
        .max_sessions(4)
        .sweep_interval(None)
        .segment_size(1 << 20)
        .snapshot_after_bytes(u64::MAX)
        .snapshot_interval(None)
        .fsync(FsyncPolicy::Never)
        .open_with(Arc::new(fs.clone()), Path::new("/sessions"), false)
        .expect("open")
}

fn held(store: &EmbeddedStore, ids: &[String]) -> Vec<(String, Record)> {
    ids.iter()
        .filter_map(|id| store.get_now(id).map(|r| (id.clone(), r)))
        .collect()
}

/// The store-wide counts follow every change of every shard: sets, replacements, applies,
/// destroys, evictions, expiry sweeps and clears.
#[test]
fn the_counts_follow_every_path() {
    let store = EmbeddedStore::builder()
        .shards(4)
        .max_sessions(50)
        .max_bytes(1 << 20)
        .sweep_interval(None)
        .build();
    let caps = |s: &EmbeddedStore| s.core.shards[0].caps().expect("caps").counts();
    let now = crate::clock::now_ms();
    for i in 0..120u32 {
        let mut r = record(i);
        if i % 3 == 0 {
            // Expires at once: swept by the next writes.
            r.cookie.expires = Some(now + 1);
        }
        store.set_now(&format!("s{i}"), &r).expect("set");
        store
            .set_now(&format!("s{}", i / 2), &record(i))
            .expect("set");
        if i % 7 == 0 {
            store.destroy_now(&format!("s{}", i / 3)).expect("destroy");
        }
        assert_eq!(caps(&store), store.usage(), "after {i}");
    }
    assert!(store.usage().0 <= 50);
    while crate::clock::now_ms() <= now + 1 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    store.purge_expired();
    assert_eq!(caps(&store), store.usage());
    futures_block(crate::store::SessionStore::clear(&store)).expect("clear");
    assert_eq!(caps(&store), (0, 0));
}

fn futures_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// An eviction is logged like a destroy. When the log refuses it (or the write after
/// it), the write that needed the room fails, nothing of it is stored, and memory and
/// log still agree: after a restart the store holds what it held, and no evicted
/// session comes back.
#[test]
fn an_eviction_the_log_refuses_is_never_lost() {
    for fail_at in 1..=3 {
        let fs = FaultStorage::new();
        let store = open(&fs);
        let ids: Vec<String> = (0..5).map(|i| format!("s{i}")).collect();
        for (i, id) in ids.iter().take(4).enumerate() {
            store.set_now(id, &record(i as u32)).expect("set");
        }
        // Let the log prepare its next segment, so that only appends write from here.
        let wal = &store.core.durable.as_ref().expect("durable").wal;
        while matches!(wal.next_state(), "wanted" | "preparing") {
            if !wal.prepare_pending() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        // The `fail_at`-th log write from now on fails, and every one after it.
        fs.faults.lock().fail_write_from = Some(fs.writes() + fail_at);
        let result = store.set_now(&ids[4], &record(4));
        let before = held(&store, &ids);
        assert!(
            before.len() <= 4,
            "fail_at {fail_at}: {} held",
            before.len()
        );
        match fail_at {
            // The eviction, or the set after it, was refused: the set failed.
            1 | 2 => {
                let e = result.expect_err("the write must fail");
                assert!(e.to_string().contains("injected EIO"), "{e}");
                assert!(store.get_now(&ids[4]).is_none());
                assert_eq!(before.len(), if fail_at == 1 { 4 } else { 3 });
            }
            _ => assert!(result.is_ok() && before.len() == 4),
        }
        fs.faults.lock().fail_write_from = None;
        drop(store);
        let store = open(&fs);
        assert_eq!(
            held(&store, &ids),
            before,
            "fail_at {fail_at}: after a restart the store holds something else"
        );
    }
}
