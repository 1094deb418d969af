//! Loom models of the log: group commit and the snapshot cut.
//!
//! ```text
//! RUSTFLAGS="--cfg sessile_loom" cargo test --release --lib loom
//! ```

use std::path::Path;
use std::sync::Arc;

use loom::thread;
use serde_json::json;

use super::fault::FaultStorage;
use super::format::{self, Decoded, Op};
use super::wal::{Resume, Wal, SEGMENT_HEADER};
use super::FsyncPolicy;
use crate::record::{CookieRecord, Data, Record};
use crate::store::embedded::EmbeddedStore;

const DIR: &str = "/loom";

fn op(sid: &str) -> Op {
    Op::Destroy { sid: sid.into() }
}

fn wal(fs: &FaultStorage) -> Arc<Wal> {
    let resume = Resume {
        seq: 0,
        tail: None,
        segments: Vec::new(),
    };
    Wal::open(
        Arc::new(fs.clone()),
        Path::new(DIR),
        FsyncPolicy::Always,
        4096,
        resume,
    )
    .unwrap()
}

/// The sequence numbers of the records that would survive a power failure now.
fn durable_records(fs: &FaultStorage) -> Vec<u64> {
    let copy = fs.deep_copy();
    copy.power_loss();
    let mut out = Vec::new();
    for p in copy.names() {
        let bytes = copy.contents(&p).unwrap();
        let mut at = SEGMENT_HEADER;
        while at < bytes.len() {
            match format::decode(&bytes[at..]) {
                Decoded::Record { seq, len, .. } => {
                    out.push(seq);
                    at += len;
                }
                _ => break,
            }
        }
    }
    out.sort_unstable();
    out
}

/// Two writers and the sync thread: a writer is told its record is synced only once the
/// record would survive a power failure, and after a last round every writer has been told.
#[test]
fn loom_group_commit_acknowledges_only_synced_records() {
    loom::model(|| {
        let fs = FaultStorage::new();
        let w = wal(&fs);
        let writers: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|sid| {
                let w = w.clone();
                thread::spawn(move || {
                    let seq = w.append(op(sid).as_ref()).unwrap();
                    (seq, w.register(seq).unwrap())
                })
            })
            .collect();
        let syncer = {
            let w = w.clone();
            let fs = fs.clone();
            thread::spawn(move || {
                w.sync_round();
                durable_records(&fs)
            })
        };
        let waits: Vec<_> = writers.into_iter().map(|t| t.join().unwrap()).collect();
        let durable_after_round = syncer.join().unwrap();
        let mut pending = Vec::new();
        for (seq, rx) in waits {
            let Some(mut rx) = rx else {
                // Already synced when it registered.
                assert!(durable_records(&fs).contains(&seq));
                continue;
            };
            match rx.try_recv() {
                Ok(answer) => {
                    assert!(answer.is_ok());
                    assert!(
                        durable_after_round.contains(&seq),
                        "record {seq} acknowledged before it was synced"
                    );
                }
                Err(_) => pending.push((seq, rx)),
            }
        }
        // A last round answers whoever is still waiting.
        w.sync_round();
        let durable = durable_records(&fs);
        for (seq, mut rx) in pending {
            assert!(durable.contains(&seq));
            assert!(
                matches!(rx.try_recv(), Ok(Ok(()))),
                "record {seq} never acknowledged"
            );
        }
    });
}

/// A failed sync reaches every waiter of its batch, and later writes are refused.
#[test]
fn loom_an_fsync_error_reaches_every_waiter() {
    loom::model(|| {
        let fs = FaultStorage::new();
        let w = wal(&fs);
        fs.faults.lock().fail_sync_from = Some(fs.syncs() + 1);
        let writers: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|sid| {
                let w = w.clone();
                thread::spawn(move || {
                    let seq = w.append(op(sid).as_ref())?;
                    w.register(seq)
                })
            })
            .collect();
        let syncer = {
            let w = w.clone();
            thread::spawn(move || w.sync_round())
        };
        syncer.join().unwrap();
        w.sync_round();
        for t in writers {
            match t.join().unwrap() {
                // Registered: told of the failure.
                Ok(Some(mut rx)) => assert!(matches!(rx.try_recv(), Ok(Err(_)))),
                Ok(None) => panic!("a record counted as synced although every sync failed"),
                // Came after the failure: refused outright.
                Err(e) => assert!(e.to_string().contains("poisoned"), "{e}"),
            }
        }
        assert!(w.append(op("c").as_ref()).is_err());
    });
}

/// A snapshot racing a write: the write lands in the snapshot or in the log after its cut,
/// never in neither, so recovery finds it.
#[test]
fn loom_the_snapshot_cut_misses_no_write() {
    loom::model(|| {
        let fs = FaultStorage::new();
        let open = |fs: &FaultStorage| {
            EmbeddedStore::builder()
                .shards(1)
                .sweep_interval(None)
                .fsync(FsyncPolicy::Never)
                .open_with(Arc::new(fs.clone()), Path::new(DIR), false)
                .unwrap()
        };
        let store = open(&fs);
        let mut cookie = CookieRecord::default();
        cookie.set_max_age(Some(3_600_000));
        let record = |v: i64| Record {
            cookie: cookie.clone(),
            data: Data::from_map(json!({ "v": v }).as_object().unwrap()),
        };
        store.set_now("a", &record(1)).unwrap();
        let writer = {
            let store = store.clone();
            let r = record(2);
            thread::spawn(move || store.set_now("b", &r).unwrap())
        };
        store.snapshot().unwrap();
        writer.join().unwrap();
        store.flush().unwrap();
        drop(store);
        let again = open(&fs);
        assert_eq!(again.get_now("a").unwrap().data.as_str(), r#"{"v":1}"#);
        assert_eq!(again.get_now("b").unwrap().data.as_str(), r#"{"v":2}"#);
    });
}
