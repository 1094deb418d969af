//! Crash and fault tests of the durable store, on the fault-injecting storage, each checked
//! against a reference model (a map of the live sessions).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::fault::FaultStorage;
use super::format::header::{self, FileKind, HeaderError};
use super::format::{self, Decoded};
use super::wal::{self, SEGMENT_HEADER};
use super::FsyncPolicy;
use crate::error::{Corrupted, OpenError, PoisonCause, StoreError};
use crate::record::{Change, Changes, CookieRecord, Data, Record};
use crate::store::embedded::EmbeddedStore;
use crate::store::{Applied, SessionStore};

const DIR: &str = "/sessions";

type Model = BTreeMap<String, Map<String, Value>>;

fn cookie() -> CookieRecord {
    let mut c = CookieRecord::default();
    c.set_max_age(Some(3_600_000));
    c
}

fn record(data: Value) -> Record {
    Record {
        cookie: cookie(),
        data: Data::from_map(data.as_object().expect("object")),
    }
}

fn open(
    fs: &FaultStorage,
    policy: FsyncPolicy,
    salvage: bool,
) -> Result<EmbeddedStore, StoreError> {
    open_keeping(fs, 2, policy, salvage)
}

fn open_keeping(
    fs: &FaultStorage,
    snapshots: usize,
    policy: FsyncPolicy,
    salvage: bool,
) -> Result<EmbeddedStore, StoreError> {
    EmbeddedStore::builder()
        .keep_snapshots(snapshots)
        .shards(4)
        .sweep_interval(None)
        .segment_size(4096)
        .snapshot_after_bytes(u64::MAX)
        .snapshot_interval(None)
        .fsync(policy)
        .salvage(salvage)
        .open_with(Arc::new(fs.clone()), Path::new(DIR), false)
}

/// A deterministic pseudo-random sequence (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone)]
enum Step {
    Set(String, Value),
    Apply(String, String, Value),
    Destroy(String),
    Touch(String),
}

fn steps(seed: u64, n: usize) -> Vec<Step> {
    let mut r = Rng(seed);
    (0..n)
        .map(|i| {
            let sid = format!("s{}", r.below(12));
            match r.below(10) {
                0..=3 => Step::Set(
                    sid,
                    json!({ "i": i, "pad": "x".repeat(r.below(90) as usize) }),
                ),
                4..=6 => Step::Apply(sid, format!("k{}", r.below(4)), json!(i)),
                7 => Step::Destroy(sid),
                _ => Step::Touch(sid),
            }
        })
        .collect()
}

/// Runs a step on the store (acknowledged when it returns `Ok`) and on the model.
fn run(store: &EmbeddedStore, model: &mut Model, step: &Step) -> Result<(), StoreError> {
    match step {
        Step::Set(sid, v) => {
            store.set_now(sid, &record(v.clone()))?;
            model.insert(sid.clone(), v.as_object().cloned().unwrap_or_default());
        }
        Step::Apply(sid, k, v) => {
            let changes = Changes {
                cookie: cookie(),
                fields: vec![Change::Set(k.clone(), v.clone())],
            };
            if store.apply_now(sid, &changes)? == Applied::Applied {
                if let Some(m) = model.get_mut(sid) {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        Step::Destroy(sid) => {
            store.destroy_now(sid)?;
            model.remove(sid);
        }
        Step::Touch(sid) => store.touch_now(sid, &cookie())?,
    }
    Ok(())
}

/// The live sessions, read with `all` and checked one by one with `get` (which routes by id,
/// so a recovered session placed in the wrong shard would show).
fn state(store: &EmbeddedStore) -> Model {
    let all = futures_lite_block(store.all()).expect("all");
    all.into_iter()
        .map(|(k, r)| {
            let by_id = store
                .get_now(&k)
                .unwrap_or_else(|| panic!("{k} listed but not found"));
            assert_eq!(by_id, r, "{k}");
            (k, r.data.to_map().expect("data"))
        })
        .collect()
}

/// Runs a future to completion on a fresh current-thread runtime.
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// The model after each prefix of the steps: `prefixes[k]` is the state after `k` steps.
fn prefixes(steps: &[Step]) -> Vec<Model> {
    let mut out = vec![Model::new()];
    let mut m = Model::new();
    for s in steps {
        match s {
            Step::Set(sid, v) => {
                m.insert(sid.clone(), v.as_object().cloned().unwrap_or_default());
            }
            Step::Apply(sid, k, v) => {
                if let Some(x) = m.get_mut(sid) {
                    x.insert(k.clone(), v.clone());
                }
            }
            Step::Destroy(sid) => {
                m.remove(sid);
            }
            Step::Touch(_) => {}
        }
        out.push(m.clone());
    }
    out
}

/// A store opened on `fs` (policy `Never`) after `n` steps of seed `seed`, and its model.
fn opened_with_steps(fs: &FaultStorage, seed: u64, n: usize) -> (EmbeddedStore, Model) {
    let store = open(fs, FsyncPolicy::Never, false).unwrap();
    let mut model = Model::new();
    for s in &steps(seed, n) {
        run(&store, &mut model, s).unwrap();
    }
    (store, model)
}

fn segments(fs: &FaultStorage) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs
        .names()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// Offsets of the records in a segment's bytes.
fn record_offsets(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = SEGMENT_HEADER;
    while let Decoded::Record { len, .. } = format::decode(&bytes[at..]) {
        out.push((at, len));
        at += len;
    }
    out
}

/// Every record of the log on `fs`, by sequence number, decoded.
fn log_ops(fs: &FaultStorage) -> Vec<(u64, super::Op)> {
    let mut out = Vec::new();
    for seg in segments(fs) {
        let bytes = fs.contents(&seg).unwrap();
        for (at, _) in record_offsets(&bytes) {
            if let Decoded::Record { seq, op, .. } = format::decode(&bytes[at..]) {
                out.push((seq, op));
            }
        }
    }
    out.sort_by_key(|(seq, _)| *seq);
    out
}

/// The reference model of replaying `ops` (a log with every record's deadline ahead).
fn replay_model<'a>(ops: impl Iterator<Item = &'a (u64, super::Op)>) -> Model {
    use super::Op;
    let mut m = Model::new();
    for (_, op) in ops {
        match op {
            Op::Set { sid, record, .. } => {
                m.insert(sid.clone(), record.data.to_map().unwrap());
            }
            Op::Apply { sid, changes, .. } => {
                if let Some(x) = m.get_mut(sid) {
                    changes.apply_to(x);
                }
            }
            Op::Touch { .. } => {}
            Op::Destroy { sid } => {
                m.remove(sid);
            }
            Op::Clear => m.clear(),
        }
    }
    m
}

/// The state after each prefix of the log on `fs` (which starts at record 1): `[k]` is the
/// state after records 1..=k.
fn log_models(fs: &FaultStorage) -> Vec<Model> {
    let ops = log_ops(fs);
    for (i, (seq, _)) in ops.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1, "the log starts at record 1, contiguous");
    }
    (0..=ops.len())
        .map(|k| replay_model(ops[..k].iter()))
        .collect()
}

#[test]
fn a_clean_restart_restores_every_session() {
    let fs = FaultStorage::new();
    let steps = steps(1, 400);
    let mut model = Model::new();
    {
        let store = open(&fs, FsyncPolicy::Never, false).unwrap();
        for s in &steps {
            run(&store, &mut model, s).unwrap();
        }
    }
    // A clean shutdown syncs even under `Never`; a power failure after it loses nothing.
    fs.power_loss();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), model);
}

#[test]
fn power_loss_keeps_every_write_acknowledged_under_always() {
    let fs = FaultStorage::new();
    let steps = steps(2, 150);
    let mut model = Model::new();
    let store = open(&fs, FsyncPolicy::Always, false).unwrap();
    futures_lite_block(async {
        for s in &steps {
            match s {
                Step::Set(sid, v) => {
                    store.set(sid, &record(v.clone())).await.unwrap();
                    model.insert(sid.clone(), v.as_object().cloned().unwrap_or_default());
                }
                Step::Apply(sid, k, v) => {
                    let changes = Changes {
                        cookie: cookie(),
                        fields: vec![Change::Set(k.clone(), v.clone())],
                    };
                    if store.apply(sid, &changes).await.unwrap() == Applied::Applied {
                        if let Some(m) = model.get_mut(sid) {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                }
                Step::Destroy(sid) => {
                    store.destroy(sid).await.unwrap();
                    model.remove(sid);
                }
                Step::Touch(sid) => store.touch(sid, &cookie()).await.unwrap(),
            }
        }
    });
    // The process dies with the machine: no clean shutdown.
    std::mem::forget(store);
    fs.power_loss();
    let store = open(&fs, FsyncPolicy::Always, false).unwrap();
    assert_eq!(state(&store), model);
}

#[test]
fn power_loss_under_everysec_leaves_a_consistent_prefix() {
    let fs = FaultStorage::new();
    let steps = steps(3, 300);
    let mut model = Model::new();
    let store = open(&fs, FsyncPolicy::EverySec, false).unwrap();
    for (i, s) in steps.iter().enumerate() {
        run(&store, &mut model, s).unwrap();
        if i == 150 {
            store.flush().unwrap();
        }
    }
    std::mem::forget(store);
    fs.power_loss();
    let store = open(&fs, FsyncPolicy::EverySec, false).unwrap();
    let got = state(&store);
    let all = prefixes(&steps);
    let k = all.iter().rposition(|m| *m == got).expect("a prefix state");
    assert!(k > 150, "the flushed prefix survives (got prefix {k})");
}

/// Cuts the last segment at every byte offset of its last records: each cut must open
/// (a torn tail is cut off) and hold exactly the records wholly before the cut; the partial
/// record's bytes are moved aside, and the report says how many.
#[test]
fn a_torn_tail_at_every_offset_is_cut_off() {
    let fs = FaultStorage::new();
    let steps = steps(4, 60);
    let mut model = Model::new();
    {
        let store = open(&fs, FsyncPolicy::Never, false).unwrap();
        for s in &steps {
            run(&store, &mut model, s).unwrap();
        }
    }
    let models = log_models(&fs);
    let last = segments(&fs).pop().expect("a segment");
    let bytes = fs.contents(&last).unwrap();
    let recs = record_offsets(&bytes);
    assert!(recs.len() >= 3, "the last segment holds records");
    // The records of the log before the last segment's.
    let before = models.len() - 1 - recs.len();
    let (first_cut, _) = recs[recs.len() - 3];
    let (end_at, end_len) = recs[recs.len() - 1];
    let end = end_at + end_len;
    for cut in first_cut..end {
        let trial = fs.deep_copy();
        trial.patch(&last, cut, &vec![0u8; end - cut]);
        let store =
            open(&trial, FsyncPolicy::Never, false).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let got = state(&store);
        // What survives is exactly the records wholly before the cut.
        let whole = recs.iter().filter(|(a, l)| a + l <= cut).count();
        assert_eq!(
            got,
            models[before + whole],
            "cut at {cut}: {whole} whole records of {}",
            recs.len()
        );
        // The partial record's bytes (up to its last non-zero one) are in a file of their own.
        let (torn_at, _) = recs[whole];
        let report = store.recovery_report().unwrap().clone(); // report
        let torn_file = |off: usize| {
            let name = last.file_name().unwrap().to_str().unwrap();
            Path::new(DIR).join(format!("{name}.torn-{off}"))
        };
        let used = bytes[torn_at..cut].iter().rposition(|&b| b != 0);
        match used {
            None => {
                assert!(!trial.names().contains(&torn_file(torn_at)), "cut at {cut}");
                assert_eq!(report.torn_bytes, 0, "cut at {cut}"); // report
            }
            Some(u) => {
                let kept = trial
                    .contents(&torn_file(torn_at))
                    .unwrap_or_else(|| panic!("cut at {cut}: no {}", torn_file(torn_at).display()));
                assert_eq!(kept, bytes[torn_at..torn_at + u + 1], "cut at {cut}");
                assert_eq!(report.torn_bytes, u as u64 + 1, "cut at {cut}"); // report
                assert_eq!(report.torn_files, vec![torn_file(torn_at)]); // report
                assert_eq!(report.torn_intact_records, 0, "cut at {cut}"); // report
            }
        }
        drop(store);
        // Reopening again after the cut-off is stable, and cuts nothing more.
        let again = open(&trial, FsyncPolicy::Never, false).unwrap();
        assert_eq!(state(&again), got, "cut at {cut}: second open");
        assert_eq!(again.recovery_report().unwrap().torn_bytes, 0); // report
    }
}

#[test]
fn a_garbled_last_record_is_a_torn_tail_too() {
    let fs = FaultStorage::new();
    let steps = steps(5, 40);
    let mut model = Model::new();
    {
        let store = open(&fs, FsyncPolicy::Never, false).unwrap();
        for s in &steps {
            run(&store, &mut model, s).unwrap();
        }
    }
    let last = segments(&fs).pop().unwrap();
    let bytes = fs.contents(&last).unwrap();
    let (at, len) = *record_offsets(&bytes).last().unwrap();
    fs.patch(&last, at + len / 2, &[0xA5, 0x5A, 0xFF]);
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert!(prefixes(&steps).contains(&state(&store)));
}

/// Bit flips at sampled offsets of the log: either a clean error naming the file and offset,
/// or (when no later record vouches for the flipped one) exactly the records before it; with
/// salvage exactly every record but the flipped one. Never a panic, never a state that did
/// not exist.
#[test]
fn bit_flips_in_the_log_are_caught() {
    let fs = FaultStorage::new();
    let steps = steps(6, 200);
    let mut model = Model::new();
    {
        let store = open(&fs, FsyncPolicy::Never, false).unwrap();
        for (i, s) in steps.iter().enumerate() {
            run(&store, &mut model, s).unwrap();
            if i % 10 == 0 {
                // Syncs give later records a watermark that vouches for earlier ones.
                store.flush().unwrap();
            }
        }
    }
    let ops = log_ops(&fs);
    let models = log_models(&fs);
    let segs = segments(&fs);
    let mut refused = 0;
    for seg in &segs {
        let bytes = fs.contents(seg).unwrap();
        let recs = record_offsets(&bytes);
        let Some(&(end_at, end_len)) = recs.last() else {
            continue;
        };
        let end = end_at + end_len;
        for off in (SEGMENT_HEADER..end).step_by(37) {
            let trial = fs.deep_copy();
            let flipped = bytes[off] ^ (1 << (off % 8));
            trial.patch(seg, off, &[flipped]);
            // The sequence number of the record flipped.
            let &(at, _) = recs.iter().find(|(a, l)| *a <= off && off < a + l).unwrap();
            let Decoded::Record { seq: bad, .. } = format::decode(&bytes[at..]) else {
                unreachable!()
            };
            match open(&trial, FsyncPolicy::Never, false) {
                Ok(store) => {
                    assert_eq!(
                        state(&store),
                        models[bad as usize - 1],
                        "flip in {} at {off}: not the records before it",
                        seg.display()
                    );
                }
                Err(e) => {
                    refused += 1;
                    let msg = e.to_string();
                    let name = seg.file_name().unwrap().to_str().unwrap();
                    assert!(msg.contains(name), "{msg}");
                    assert!(msg.contains("offset"), "{msg}");
                    let store = open(&trial.deep_copy(), FsyncPolicy::Never, true)
                        .unwrap_or_else(|e| panic!("salvage failed: {e}"));
                    let all_but = replay_model(ops.iter().filter(|(s, _)| *s != bad));
                    assert_eq!(
                        state(&store),
                        all_but,
                        "salvage of a flip in {} at {off}: not every record but {bad}",
                        seg.display()
                    );
                }
            }
        }
    }
    assert!(refused > 0, "flips before the tail must be refused");
}

fn snapshot_files(fs: &FaultStorage) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs
        .names()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rkyv"))
        .collect();
    v.sort();
    v
}

/// The first segment's number and the cuts of the snapshots on `fs`.
fn earliest_segment_and_cuts(fs: &FaultStorage) -> (u64, Vec<u64>) {
    let earliest = segments(fs)
        .iter()
        .filter_map(|p| wal::parse_segment_name(p.file_name()?.to_str()?))
        .min()
        .unwrap();
    let cuts = snapshot_files(fs)
        .iter()
        .map(|p| {
            p.file_stem().unwrap().to_str().unwrap()[5..]
                .parse()
                .unwrap()
        })
        .collect();
    (earliest, cuts)
}

/// By default the previous snapshot and the log from it stay, so rot in the newest one (or
/// in the first, sole one, while the whole log is still there) loses nothing.
#[test]
fn two_snapshots_are_kept_and_a_bad_newest_one_falls_back_with_nothing_lost() {
    let fs = FaultStorage::new();
    let steps = steps(17, 400);
    let mut model = Model::new();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    for s in &steps[..100] {
        run(&store, &mut model, s).unwrap();
    }
    store.snapshot().unwrap();
    for s in &steps[100..200] {
        run(&store, &mut model, s).unwrap();
    }
    // One snapshot so far, and the log from record 1 behind it.
    let (earliest, cuts) = earliest_segment_and_cuts(&fs);
    assert_eq!((earliest, cuts.len()), (1, 1));
    let image = fs.deep_copy();
    let sole = snapshot_files(&image)[0].clone();
    let bytes = image.contents(&sole).unwrap();
    image.patch(&sole, bytes.len() / 2, &[bytes[bytes.len() / 2] ^ 0x10]);
    let reopened = open(&image, FsyncPolicy::Never, false).unwrap();
    assert_eq!(
        state(&reopened),
        model,
        "a bad first snapshot: the whole log replays"
    );
    drop(reopened);

    for (i, s) in steps[200..].iter().enumerate() {
        run(&store, &mut model, s).unwrap();
        if i == 0 || i == 100 {
            store.snapshot().unwrap();
        }
    }
    drop(store);
    let (earliest, cuts) = earliest_segment_and_cuts(&fs);
    assert_eq!(cuts.len(), 2, "the newest snapshot and the previous one");
    assert!(
        earliest > 1,
        "the log before the previous snapshot is removed"
    );
    assert!(
        earliest <= cuts[0] + 1,
        "the log from the previous snapshot is kept"
    );
    let newest = snapshot_files(&fs).last().unwrap().clone();
    let bytes = fs.contents(&newest).unwrap();
    fs.patch(&newest, bytes.len() / 2, &[bytes[bytes.len() / 2] ^ 0x10]);
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), model, "a bad newest snapshot falls back");
}

#[test]
fn one_snapshot_is_kept_and_a_bad_sole_snapshot_is_refused_by_name() {
    let fs = FaultStorage::new();
    let steps = steps(7, 300);
    let mut model = Model::new();
    let open = |fs: &FaultStorage, salvage| open_keeping(fs, 1, FsyncPolicy::Never, salvage);
    {
        let store = open(&fs, false).unwrap();
        for (i, s) in steps.iter().enumerate() {
            run(&store, &mut model, s).unwrap();
            if i == 100 || i == 200 {
                store.snapshot().unwrap();
            }
        }
    }
    let snaps = snapshot_files(&fs);
    let (earliest, cuts) = earliest_segment_and_cuts(&fs);
    assert_eq!(cuts.len(), 1, "only the newest snapshot is kept");
    let cut = cuts[0];
    assert!(earliest > 1, "the log before the snapshot is removed");
    assert!(earliest <= cut + 1, "the log after the snapshot is kept");
    let store = open(&fs, false).unwrap();
    assert_eq!(state(&store), model);
    drop(store);

    // Rot in the sole snapshot: opening fails and names it; nothing is silently dropped.
    let bytes = fs.contents(&snaps[0]).unwrap();
    fs.patch(&snaps[0], bytes.len() / 2, &[bytes[bytes.len() / 2] ^ 0x10]);
    let Err(e) = open(&fs, false) else {
        panic!("a bad sole snapshot must be refused");
    };
    let name = snaps[0].file_name().unwrap().to_str().unwrap();
    assert!(e.to_string().contains(name), "{e}");
    // Salvage opens with what the log after the snapshot holds.
    let store = open(&fs.deep_copy(), true).unwrap();
    assert!(state(&store).len() <= model.len());
}

/// A crash (here: a failed removal) after the new snapshot is in place but before the old
/// one is removed leaves both and the log from the old one: if the new one then rots,
/// recovery falls back to the old one and replays the log from it.
#[test]
fn a_bad_newest_snapshot_falls_back_while_the_previous_one_exists() {
    let fs = FaultStorage::new();
    let steps = steps(8, 300);
    let mut model = Model::new();
    {
        let store = open(&fs, FsyncPolicy::Never, false).unwrap();
        for (i, s) in steps.iter().enumerate() {
            run(&store, &mut model, s).unwrap();
            if i == 100 {
                store.snapshot().unwrap();
            }
            if i == 200 {
                fs.faults.lock().fail_remove = true;
                assert!(store.snapshot().is_err());
                fs.faults.lock().fail_remove = false;
            }
        }
    }
    let snaps = snapshot_files(&fs);
    assert_eq!(snaps.len(), 2);
    let newest = snaps.last().unwrap();
    let bytes = fs.contents(newest).unwrap();
    fs.patch(newest, bytes.len() / 2, &[bytes[bytes.len() / 2] ^ 0x10]);
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), model);
}

#[test]
fn a_snapshot_that_reads_back_bad_is_dropped_and_the_previous_one_kept() {
    let fs = FaultStorage::new();
    let steps = steps(9, 200);
    let mut model = Model::new();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    for (i, s) in steps.iter().enumerate() {
        run(&store, &mut model, s).unwrap();
        if i == 80 {
            store.snapshot().unwrap();
        }
    }
    let before = snapshot_files(&fs);
    fs.faults.lock().garble_files = true;
    let e = store.snapshot().unwrap_err();
    fs.faults.lock().garble_files = false;
    assert!(e.to_string().contains("read back"), "{e}");
    assert_eq!(
        snapshot_files(&fs),
        before,
        "the bad one is removed, the old one kept"
    );
    std::mem::forget(store);
    fs.power_loss();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), model);
}

#[test]
fn snapshots_leave_out_expired_sessions_and_restart_drops_them() {
    let fs = FaultStorage::new();
    {
        let store = open(&fs, FsyncPolicy::Never, false).unwrap();
        let mut short = record(json!({"short": true}));
        short.cookie.set_max_age(Some(150));
        store.set_now("short", &short).unwrap();
        store
            .set_now("long", &record(json!({"long": true})))
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        store.snapshot().unwrap();
        let mut later = record(json!({"later": true}));
        later.cookie.set_max_age(Some(150));
        store.set_now("later", &later).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    let got = state(&store);
    assert_eq!(got.keys().collect::<Vec<_>>(), vec!["long"]);
    assert_eq!(
        store.usage().0,
        1,
        "expired sessions are not held after recovery"
    );
}

#[test]
fn a_full_disk_fails_writes_keeps_reads_and_recovers() {
    let fs = FaultStorage::new();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    store.set_now("kept", &record(json!({"v": 1}))).unwrap();
    fs.faults.lock().disk_full = true;
    let mut failed = None;
    for i in 0..200 {
        if let Err(e) = store.set_now(&format!("f{i}"), &record(json!({"pad": "y".repeat(100)}))) {
            failed = Some((i, e));
            break;
        }
    }
    let (i, e) = failed.expect("a write fails once the segment is full");
    assert!(e.to_string().contains("allocating log segment"), "{e}");
    // The refused write changed nothing; reads go on.
    assert!(store.get_now(&format!("f{i}")).is_none());
    assert!(store.get_now("kept").is_some());
    let big = record(json!({"pad": "y".repeat(100)}));
    assert!(store.set_now("again", &big).is_err(), "still full");
    // Space returns: writes resume.
    fs.faults.lock().disk_full = false;
    store.set_now("again", &record(json!({"v": 2}))).unwrap();
    let expected = state(&store);
    drop(store);
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), expected);
}

#[test]
fn a_full_disk_never_loses_the_old_snapshot() {
    let fs = FaultStorage::new();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    for i in 0..20 {
        store
            .set_now(&format!("s{i}"), &record(json!({"i": i})))
            .unwrap();
    }
    store.snapshot().unwrap();
    for i in 20..40 {
        store
            .set_now(&format!("s{i}"), &record(json!({"i": i})))
            .unwrap();
    }
    let expected = state(&store);
    // The snapshot's file writes fail: the snapshot fails, the old one and the log stay.
    fs.faults.lock().fail_write_from = Some(0);
    assert!(store.snapshot().is_err());
    fs.faults.lock().fail_write_from = None;
    drop(store);
    let names = fs.names();
    assert!(names
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "rkyv")));
    assert!(!names
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "tmp")));
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), expected);
}

#[test]
fn an_fsync_error_poisons_the_log() {
    let fs = FaultStorage::new();
    let store = open(&fs, FsyncPolicy::Always, false).unwrap();
    futures_lite_block(async {
        store.set("a", &record(json!({"v": 1}))).await.unwrap();
        // The first write asks for the next segment, whose preparation syncs too: let it
        // finish, so that the failing sync is the write's own.
        let wal = &store.core.durable.as_ref().unwrap().wal;
        while matches!(wal.next_state(), "wanted" | "preparing") {
            if !wal.prepare_pending() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        fs.faults.lock().fail_sync_from = Some(fs.syncs() + 1);
        let e = store.set("b", &record(json!({"v": 2}))).await.unwrap_err();
        assert!(e.to_string().contains("fsync failed"), "{e}");
        let poisoned = |e: &StoreError| matches!(e, StoreError::Poisoned(p) if p.cause == PoisonCause::SyncFailed);
        assert!(poisoned(&e), "{e:?}");
        let e = store.set("c", &record(json!({"v": 3}))).await.unwrap_err();
        assert!(e.to_string().contains("poisoned"), "{e}");
        assert!(poisoned(&e), "{e:?}");
        assert!(matches!(store.flush(), Err(ref e) if poisoned(e)));
        // Reads still serve.
        assert!(store.get("a").await.unwrap().is_some());
    });
}

#[test]
fn leftover_temporary_files_are_removed() {
    let fs = FaultStorage::new();
    drop(open(&fs, FsyncPolicy::Never, false).unwrap());
    let tmp = Path::new(DIR).join("snap-00000000000000000007.tmp");
    {
        use super::storage::Storage;
        let mut f = fs.create_file(&tmp).unwrap();
        f.write_all(b"half a snapshot").unwrap();
    }
    drop(open(&fs, FsyncPolicy::Never, false).unwrap());
    assert!(!fs.names().contains(&tmp));
}

#[test]
fn segment_names_round_trip() {
    assert_eq!(wal::parse_segment_name(&wal::segment_name(42)), Some(42));
    assert_eq!(wal::parse_segment_name("wal-x.log"), None);
    let check = |b: &[u8]| header::parse(FileKind::Segment, b).ok();
    assert_eq!(check(&wal::segment_header(9)), Some(9));
    assert_eq!(check(&[0; SEGMENT_HEADER]), None);
}

/// A log of another format version (here the unreleased version 1, whose records are
/// checksummed differently) is refused by name, with or without salvage: it is not corrupt,
/// and salvage would move it aside.
#[test]
fn a_log_of_another_format_version_is_refused_by_name() {
    let fs = FaultStorage::new();
    drop(opened_with_steps(&fs, 3, 20));
    let first = segments(&fs)[0].clone();
    let mut header = wal::segment_header(1);
    header[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32c::crc32c(&header[..24]);
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    fs.patch(&first, 8, &header[8..SEGMENT_HEADER]);
    let contents = fs.contents(&first).unwrap();
    assert_eq!(
        header::parse(FileKind::Segment, &contents),
        Err(HeaderError::Version(1))
    );
    for salvage in [false, true] {
        let Err(err) = open(&fs, FsyncPolicy::Never, salvage) else {
            panic!("a version 1 log opened (salvage: {salvage})");
        };
        let msg = err.to_string();
        assert!(msg.contains("format version 1"), "{msg}");
        assert!(msg.contains(&wal::segment_name(1)), "{msg}");
        assert!(
            matches!(
                &err,
                StoreError::Open(OpenError::Version { file, version: 1, supported: 2 })
                    if *file == first
            ),
            "{err:?}"
        );
    }
    assert_eq!(fs.contents(&first).unwrap()[..SEGMENT_HEADER], header[..]);
}

/// Writes numbered sessions from `*n` on until the log's next segment leaves the states
/// "idle" and "wanted"/"preparing" (preparing it here if the sync thread has not), and returns
/// that state.
fn write_until_prepared(store: &EmbeddedStore, model: &mut Model, n: &mut usize) -> &'static str {
    let wal = &store.core.durable.as_ref().unwrap().wal;
    for _ in 0..10_000 {
        match wal.next_state() {
            "idle" => {
                let step = Step::Set(format!("p{n}"), json!({ "n": *n, "pad": "z".repeat(60) }));
                run(store, model, &step).unwrap();
                *n += 1;
            }
            "wanted" => {
                wal.prepare_pending();
            }
            "preparing" => std::thread::sleep(std::time::Duration::from_millis(1)),
            done => return done,
        }
    }
    panic!("no segment was prepared");
}

/// Writes numbered sessions until the log has one more segment file.
fn write_until_rotated(store: &EmbeddedStore, fs: &FaultStorage, model: &mut Model, n: &mut usize) {
    let before = segments(fs).len();
    while segments(fs).len() == before {
        let step = Step::Set(format!("p{n}"), json!({ "n": *n, "pad": "z".repeat(60) }));
        run(store, model, &step).unwrap();
        *n += 1;
    }
}

#[test]
fn rotation_swaps_in_the_prepared_segment() {
    let fs = FaultStorage::new();
    let mut model = Model::new();
    let mut n = 0;
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    for _ in 0..3 {
        assert_eq!(write_until_prepared(&store, &mut model, &mut n), "ready");
        assert!(fs.names().contains(&Path::new(DIR).join(wal::NEXT_SEGMENT)));
        // The preparing thread may already be allocating the segment after this one, so
        // count only allocations under a segment's own name.
        let next = Path::new(DIR).join(wal::NEXT_SEGMENT);
        let allocs = fs.allocs_except(&next);
        write_until_rotated(&store, &fs, &mut model, &mut n);
        assert_eq!(
            fs.allocs_except(&next),
            allocs,
            "the rotation allocated nothing"
        );
        // The write that rotated is the first into the new segment: the next is wanted.
        let wal = &store.core.durable.as_ref().unwrap().wal;
        assert_ne!(
            wal.next_state(),
            "idle",
            "the next segment is asked for at once"
        );
    }
    store.flush().unwrap();
    let segs = segments(&fs);
    assert_eq!(
        fs.unmaps(),
        segs.len() as u64 - 1,
        "every sealed segment is unmapped for its last sync"
    );
    // Sealed segments are cut to their used length once synced.
    for seg in &segs[..segs.len() - 1] {
        let bytes = fs.contents(seg).unwrap();
        let &(at, len) = record_offsets(&bytes).last().unwrap();
        assert_eq!(bytes.len(), at + len, "{}", seg.display());
    }
    std::mem::forget(store);
    fs.power_loss();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), model);
}

/// A power failure after a swap, before the next sync: the rename is not durable, so the
/// prepared file comes back under its temporary name with its placeholder header; recovery
/// removes it and keeps everything flushed before.
#[test]
fn power_loss_right_after_a_swap_keeps_the_flushed_prefix() {
    let fs = FaultStorage::new();
    let mut model = Model::new();
    let mut n = 0;
    let store = open(&fs, FsyncPolicy::EverySec, false).unwrap();
    assert_eq!(write_until_prepared(&store, &mut model, &mut n), "ready");
    store.flush().unwrap();
    let flushed = model.clone();
    write_until_rotated(&store, &fs, &mut model, &mut n);
    for _ in 0..3 {
        let step = Step::Set(format!("p{n}"), json!({ "n": n }));
        run(&store, &mut model, &step).unwrap();
        n += 1;
    }
    std::mem::forget(store);
    let trial = fs.deep_copy();
    trial.power_loss();
    let store = open(&trial, FsyncPolicy::EverySec, false).unwrap();
    let got = state(&store);
    assert!(
        flushed.iter().all(|(k, v)| got.get(k) == Some(v)),
        "the flushed writes survive"
    );
    assert!(!trial
        .names()
        .contains(&Path::new(DIR).join(wal::NEXT_SEGMENT)));
    // Without the power failure (a killed process) everything is there.
    drop(store);
    let store = open(&fs, FsyncPolicy::EverySec, false).unwrap();
    assert_eq!(state(&store), model);
}

#[test]
fn a_clean_shutdown_removes_the_prepared_segment() {
    let fs = FaultStorage::new();
    let mut model = Model::new();
    let mut n = 0;
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(write_until_prepared(&store, &mut model, &mut n), "ready");
    let next = Path::new(DIR).join(wal::NEXT_SEGMENT);
    assert!(fs.names().contains(&next));
    drop(store);
    assert!(
        !fs.names().contains(&next),
        "no unused allocation left behind"
    );
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), model);
}

#[test]
fn a_crash_with_a_prepared_unused_segment_recovers() {
    let fs = FaultStorage::new();
    let mut model = Model::new();
    let mut n = 0;
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(write_until_prepared(&store, &mut model, &mut n), "ready");
    store.flush().unwrap();
    std::mem::forget(store);
    fs.power_loss();
    let next = Path::new(DIR).join(wal::NEXT_SEGMENT);
    assert!(
        fs.names().contains(&next),
        "the prepared segment is durable"
    );
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert!(!fs.names().contains(&next), "recovery removes it");
    assert_eq!(state(&store), model);
    // Writing on through rotations works after it.
    write_until_rotated(&store, &fs, &mut model, &mut n);
    write_until_rotated(&store, &fs, &mut model, &mut n);
    drop(store);
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), model);
}

#[test]
fn a_prepared_segment_that_fails_to_allocate_falls_back() {
    let fs = FaultStorage::new();
    let mut model = Model::new();
    let mut n = 0;
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    // Only the preparation's allocation fails: the rotation allocates its own segment.
    fs.faults.lock().fail_alloc = Some(fs.allocs() + 1);
    assert_eq!(write_until_prepared(&store, &mut model, &mut n), "failed");
    let next = Path::new(DIR).join(wal::NEXT_SEGMENT);
    assert!(
        !fs.names().contains(&next),
        "a failed preparation leaves no file"
    );
    let allocs = fs.allocs_except(&next);
    write_until_rotated(&store, &fs, &mut model, &mut n);
    assert_eq!(
        fs.allocs_except(&next),
        allocs + 1,
        "the rotation allocated"
    );

    // A full disk: preparing fails, writes go on in the active segment until it is full,
    // then fail cleanly while reads serve; once space returns, writes resume.
    assert_eq!(write_until_prepared(&store, &mut model, &mut n), "ready");
    write_until_rotated(&store, &fs, &mut model, &mut n);
    fs.faults.lock().disk_full = true;
    assert_eq!(write_until_prepared(&store, &mut model, &mut n), "failed");
    let e = loop {
        let sid = format!("p{n}");
        match store.set_now(&sid, &record(json!({ "n": n, "pad": "z".repeat(60) }))) {
            Ok(()) => {
                model.insert(
                    sid,
                    json!({ "n": n, "pad": "z".repeat(60) })
                        .as_object()
                        .cloned()
                        .unwrap(),
                );
                n += 1;
            }
            Err(e) => break e,
        }
    };
    assert!(e.to_string().contains("allocating log segment"), "{e}");
    assert!(store.get_now("p0").is_some());
    fs.faults.lock().disk_full = false;
    write_until_rotated(&store, &fs, &mut model, &mut n);
    drop(store);
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), model);
}

/// Snapshots load the same from aligned bytes (read in place, as from a map) and from
/// misaligned ones (read from an aligned copy).
#[test]
fn a_snapshot_loads_in_place_and_from_a_misaligned_copy_alike() {
    use super::snapshot;
    let fs = FaultStorage::new();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    for i in 0..5000 {
        store
            .set_now(&format!("s{i}"), &record(json!({ "i": i })))
            .unwrap();
    }
    store.snapshot().unwrap();
    let bytes = fs.contents(&snapshot_files(&fs)[0]).unwrap();
    let mut aligned = rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(&bytes);
    let mut shifted = rkyv::util::AlignedVec::<16>::new();
    shifted.extend_from_slice(&[0]);
    shifted.extend_from_slice(&bytes);
    let read = |b: &[u8]| {
        let mut out = Vec::new();
        let cut = snapshot::load("t", b, |sid, r, d| out.push((sid, r, d))).unwrap();
        (cut, out)
    };
    let (cut, a) = read(&aligned);
    let (cut2, b) = read(&shifted[1..]);
    assert_eq!((cut, a.len()), (cut2, 5000));
    assert_eq!(a, b);
}

/// Recovery sends ops in batches from a reading thread: many batches, from a snapshot and
/// the log after it, arrive whole and in order.
#[test]
fn recovery_over_many_batches_keeps_order() {
    let fs = FaultStorage::new();
    let mut model = Model::new();
    {
        let store = open(&fs, FsyncPolicy::Never, false).unwrap();
        for round in 0..3 {
            for i in 0..3000 {
                let step = Step::Set(format!("s{}", i % 2500), json!({ "r": round, "i": i }));
                run(&store, &mut model, &step).unwrap();
            }
            if round == 1 {
                store.snapshot().unwrap();
            }
        }
    }
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), model);
}

/// Recovery applies the log from two threads, each owning half the shards: a log of many
/// interleaved sets, applies, touches, destroys and clears over many ids (several batches and
/// segments, a snapshot in the middle) must recover to exactly the sequential state, with
/// any shard count (one shard: one lane).
#[test]
fn parallel_replay_keeps_per_id_order_and_clears_in_place() {
    let fs = FaultStorage::new();
    let mut r = Rng(0x5E55_11E5);
    let mut model = Model::new();
    let builder = |shards: usize| {
        EmbeddedStore::builder()
            .shards(shards)
            .sweep_interval(None)
            .segment_size(64 << 10)
            .snapshot_after_bytes(u64::MAX)
            .snapshot_interval(None)
            .fsync(FsyncPolicy::Never)
    };
    {
        let store = builder(16)
            .open_with(Arc::new(fs.clone()), Path::new(DIR), false)
            .unwrap();
        for i in 0..24_000u64 {
            let sid = format!("id{}", r.below(700));
            let step = match r.below(20) {
                0..=7 => Step::Set(sid, json!({ "i": i })),
                8..=13 => Step::Apply(sid, format!("k{}", r.below(3)), json!(i)),
                14..=16 => Step::Touch(sid),
                _ => Step::Destroy(sid),
            };
            run(&store, &mut model, &step).unwrap();
            if i % 5_000 == 4_999 {
                futures_lite_block(store.clear()).unwrap();
                model.clear();
            }
            if i == 11_000 {
                store.snapshot().unwrap();
            }
        }
        assert_eq!(state(&store), model);
    }
    assert!(segments(&fs).len() >= 2, "{:?}", segments(&fs));
    for shards in [1, 2, 16, 64] {
        let store = builder(shards)
            .open_with(Arc::new(fs.clone()), Path::new(DIR), false)
            .unwrap();
        assert_eq!(state(&store), model, "{shards} shards");
    }
}

/// A session too large for one log record (over 64 MiB) is refused with an error and changes
/// nothing; the store goes on and reopens with everything else.
#[test]
fn a_record_over_the_log_limit_is_refused_and_changes_nothing() {
    let fs = FaultStorage::new();
    let (store, mut model) = opened_with_steps(&fs, 5, 30);
    let huge = record(json!({ "blob": "x".repeat(format::MAX_PAYLOAD) }));
    let err = store.set_now("huge", &huge).unwrap_err();
    assert!(matches!(err, StoreError::Full(_)), "{err}");
    assert!(
        err.to_string().contains("over the limit of 64 MiB"),
        "{err}"
    );
    assert!(futures_lite_block(store.get("huge")).unwrap().is_none());
    let step = Step::Set("after".into(), json!({ "ok": true }));
    run(&store, &mut model, &step).unwrap();
    drop(store);
    fs.power_loss();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), model);
}

/// A snapshot asked for when nothing was logged since the newest one writes nothing; one
/// after a write does.
#[test]
fn a_snapshot_with_nothing_new_writes_nothing() {
    let fs = FaultStorage::new();
    let (store, mut model) = opened_with_steps(&fs, 7, 40);
    let cut = store.snapshot().unwrap();
    let files = fs.files_created();
    assert_eq!(store.snapshot().unwrap(), cut);
    assert_eq!(fs.files_created(), files, "the same snapshot again");
    let step = Step::Set("new".into(), json!({ "n": 1 }));
    run(&store, &mut model, &step).unwrap();
    assert!(store.snapshot().unwrap() > cut);
    assert_eq!(fs.files_created(), files + 1);
    drop(store);
    fs.power_loss();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), model);
}

// ---- Faults of the directory and the volume (issue 10, items 6, 9, 10) ----

/// Sets `sid` to a record padded to about `pad` bytes, on the store and the model.
fn set_padded(
    store: &EmbeddedStore,
    model: &mut Model,
    sid: &str,
    pad: usize,
) -> Result<(), StoreError> {
    run(
        store,
        model,
        &Step::Set(sid.into(), json!({ "pad": "q".repeat(pad) })),
    )
}

/// A directory that cannot be opened for a while (EACCES: a directory at mode 000, which as
/// root only the fault layer can give; EMFILE fails the same calls, see
/// `tests/durable_faults.rs`) fails the writes whose rotation needs it, poisons nothing, and
/// writes resume once it can be opened again.
#[test]
fn a_directory_that_cannot_be_opened_fails_rotations_without_poisoning_the_log() {
    let fs = FaultStorage::new();
    let mut model = Model::new();
    let mut n = 0;
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    // A rotation whose directory entry is not synced yet, as in the field: the directory
    // becomes unreadable between the rotation and the next sync.
    assert_eq!(write_until_prepared(&store, &mut model, &mut n), "ready");
    write_until_rotated(&store, &fs, &mut model, &mut n);
    fs.faults.lock().deny = true;
    store
        .flush()
        .expect("syncing the log needs no new look at the directory");
    let mut failed = Vec::new();
    for i in 0..40 {
        match set_padded(&store, &mut model, &format!("d{i}"), 300) {
            Ok(()) => {}
            Err(e) => failed.push(e.to_string()),
        }
        if let Err(e) = store.flush() {
            failed.push(format!("flush: {e}"));
        }
    }
    assert!(!failed.is_empty(), "some rotation needed the directory");
    for e in &failed {
        assert!(!e.contains("poisoned") && !e.starts_with("flush"), "{e}");
        assert!(e.contains("ermission denied"), "{e}");
    }
    fs.faults.lock().deny = false;
    for i in 0..40 {
        set_padded(&store, &mut model, &format!("e{i}"), 300)
            .unwrap_or_else(|e| panic!("write {i} after the directory came back: {e}"));
    }
    store.flush().unwrap();
    drop(store);
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), model);
}

/// The directory deleted under a running store: the rotation finds it gone and writes fail
/// with an error that says so, the next ones too.
#[test]
fn a_deleted_directory_fails_writes_with_a_clear_error() {
    let fs = FaultStorage::new();
    let mut model = Model::new();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    set_padded(&store, &mut model, "before", 10).unwrap();
    fs.faults.lock().dir_gone = true;
    let mut e = None;
    for i in 0..100 {
        if let Err(err) = set_padded(&store, &mut model, &format!("g{i}"), 200) {
            e = Some(err.to_string());
            break;
        }
    }
    let e = e.expect("a write fails once the directory is gone");
    assert!(e.contains("was deleted"), "{e}");
    assert!(e.contains(DIR), "{e}");
    // A small write that would fit in the active segment fails too, and so does a sync.
    let later = set_padded(&store, &mut model, "later", 1).unwrap_err();
    assert!(later.to_string().contains("was deleted"), "{later}");
    assert!(
        matches!(&later, StoreError::Poisoned(p) if p.cause == PoisonCause::DirectoryGone && p.dir == Path::new(DIR)),
        "{later:?}"
    );
    assert!(store.flush().is_err());
    assert!(store.get_now("before").is_some(), "reads still serve");
}

/// A small volume: 16 KiB segments on 24 KiB. The second segment does not fit whole: it is
/// sized to the space there is, writes go on past the first segment, a restart accepts
/// writes again, and once the volume is full the error says what is needed and what is
/// free.
#[test]
fn a_small_volume_sizes_segments_to_the_space_there_is() {
    let fs = FaultStorage::new();
    fs.faults.lock().capacity = Some(24 << 10);
    let open_small = || {
        EmbeddedStore::builder()
            .keep_snapshots(1)
            .shards(4)
            .sweep_interval(None)
            .segment_size(16 << 10)
            .snapshot_after_bytes(u64::MAX)
            .snapshot_interval(None)
            .fsync(FsyncPolicy::Never)
            .open_with(Arc::new(fs.clone()), Path::new(DIR), false)
    };
    let mut model = Model::new();
    let store = open_small().unwrap();
    let mut i = 0;
    while segments(&fs).len() < 2 {
        set_padded(&store, &mut model, &format!("v{}", i % 8), 500)
            .unwrap_or_else(|e| panic!("write {i} (past the first segment): {e}"));
        i += 1;
    }
    drop(store);
    let store = open_small().unwrap();
    for k in 0..2 {
        set_padded(&store, &mut model, &format!("v{k}"), 500)
            .unwrap_or_else(|e| panic!("write {k} after a restart: {e}"));
    }
    let e = loop {
        match set_padded(&store, &mut model, &format!("v{}", i % 8), 500) {
            Ok(()) => i += 1,
            Err(e) => break e.to_string(),
        }
        assert!(i < 10_000, "the volume never filled");
    };
    assert!(e.contains("bytes free"), "{e}");
    assert!(e.contains("needs"), "{e}");
    // A snapshot lets the log go: writes resume, and the state survives a restart.
    store.snapshot().unwrap();
    set_padded(&store, &mut model, "after", 500).unwrap();
    drop(store);
    let store = open_small().unwrap();
    assert_eq!(state(&store), model);
}

/// A record over the segment size as the first of a segment (after an open, or after a
/// snapshot's cut): the empty segment gives its name to one big enough, and nothing is lost.
#[test]
fn a_record_over_the_segment_size_first_in_its_segment_is_taken() {
    let fs = FaultStorage::new();
    let mut model = Model::new();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    set_padded(&store, &mut model, "big", 6000).unwrap();
    set_padded(&store, &mut model, "small", 10).unwrap();
    store.snapshot().unwrap();
    set_padded(&store, &mut model, "big2", 9000).unwrap();
    drop(store);
    assert!(!fs
        .names()
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "tmp")));
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), model);
}

// ---- Recovery: torn tails reported and kept aside, salvage resynchronises, snapshot
// ---- thresholds counted from disk, field changes replayed on a working form.

/// A store killed (no clean shutdown, nothing synced since `flushed`) after `steps`; the
/// model of what it acknowledged.
fn killed_after(fs: &FaultStorage, seed: u64, n: usize, flush_every: Option<usize>) -> Model {
    let store = open(fs, FsyncPolicy::Never, false).unwrap();
    let mut model = Model::new();
    for (i, s) in steps(seed, n).iter().enumerate() {
        run(&store, &mut model, s).unwrap();
        if flush_every.is_some_and(|k| i % k == 0) {
            store.flush().unwrap();
        }
    }
    std::mem::forget(store);
    model
}

/// Issue 10, item 11: a bit flipped in the unsynced tail of a killed process's log is a torn
/// tail: the records from it on are cut, but not silently and not destroyed: the report says
/// how many bytes and intact records, and the bytes are in `<segment>.torn-<offset>`.
#[test]
fn a_flip_in_the_unsynced_tail_is_cut_reported_and_kept_aside() {
    let fs = FaultStorage::new();
    let acked = killed_after(&fs, 21, 300, None);
    let models = log_models(&fs);
    assert_eq!(models.last(), Some(&acked));
    let last = segments(&fs).pop().unwrap();
    let bytes = fs.contents(&last).unwrap();
    let recs = record_offsets(&bytes);
    assert!(recs.len() >= 6, "the last segment holds records");
    let (at, len) = recs[recs.len() - 5];
    let Decoded::Record { seq: bad, .. } = format::decode(&bytes[at..]) else {
        unreachable!()
    };
    fs.patch(&last, at + len / 2, &[bytes[at + len / 2] ^ 0x04]);
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(
        state(&store),
        models[bad as usize - 1],
        "the records before it"
    );
    let name = last.file_name().unwrap().to_str().unwrap();
    let aside = Path::new(DIR).join(format!("{name}.torn-{at}"));
    let kept = fs
        .contents(&aside)
        .unwrap_or_else(|| panic!("no {}", aside.display()));
    let end = recs.last().map(|(a, l)| a + l).unwrap();
    let mut original = bytes[at..end].to_vec();
    original[len / 2] ^= 0x04;
    assert_eq!(kept, original, "the cut bytes, as they were");
    // The cut bytes are zeroed in the segment, which goes on from the bad record.
    assert!(fs.contents(&last).unwrap()[at..end].iter().all(|&b| b == 0));
    let r = store.recovery_report().expect("a durable store's report"); // report
    assert_eq!(r.torn_bytes, (end - at) as u64); // report
    assert_eq!(r.torn_intact_records, 4, "the 4 intact records after it"); // report
    assert_eq!(r.torn_files, vec![aside.clone()]); // report
    assert_eq!(r.replayed, bad - 1); // report
    assert!(r.problem.as_deref().unwrap().contains("checksum mismatch")); // report
    assert_eq!(r.sessions, models[bad as usize - 1].len()); // report
    drop(store);
    let again = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&again), models[bad as usize - 1]);
    assert!(fs.names().contains(&aside), "kept across opens");
}

/// A torn tail that spans segments (the log went on into segments after the bad record):
/// each later segment is kept aside whole (`.torn-0`) before it is removed.
#[test]
fn a_torn_tail_over_several_segments_keeps_every_later_segment_aside() {
    let fs = FaultStorage::new();
    let _ = killed_after(&fs, 22, 300, None);
    let models = log_models(&fs);
    let segs = segments(&fs);
    assert!(segs.len() >= 3, "{segs:?}");
    let victim = &segs[segs.len() - 3];
    let bytes = fs.contents(victim).unwrap();
    let recs = record_offsets(&bytes);
    let (at, len) = recs[recs.len() / 2];
    let Decoded::Record { seq: bad, .. } = format::decode(&bytes[at..]) else {
        unreachable!()
    };
    let later: Vec<(PathBuf, Vec<u8>)> = segs[segs.len() - 2..]
        .iter()
        .map(|p| (p.clone(), fs.contents(p).unwrap()))
        .collect();
    fs.patch(victim, at + len - 1, &[bytes[at + len - 1] ^ 0x80]);
    // Nothing was synced (`Never`, no flush, killed): no later record vouches for it.
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), models[bad as usize - 1]);
    for (p, was) in &later {
        let name = p.file_name().unwrap().to_str().unwrap();
        let aside = Path::new(DIR).join(format!("{name}.torn-0"));
        let kept = fs.contents(&aside).expect("kept aside whole");
        let used = was.iter().rposition(|&b| b != 0).unwrap() + 1;
        assert_eq!(kept, was[..used], "{name}");
        assert!(!fs.names().contains(p), "{name} is out of the log");
    }
    let r = store.recovery_report().unwrap(); // report
    assert_eq!(r.torn_files.len(), 3); // report
    assert_eq!(r.torn_intact_records, models.len() as u64 - 1 - bad); // report
}

/// Issue 17, item 5: salvage keeps the good prefix and (resynchronising past the bad record)
/// every intact record after it, in log order, moves the bad segment aside as
/// `wal-<seq>.log.corrupt`, and takes a snapshot at once, which the next open uses.
#[test]
fn salvage_keeps_the_prefix_and_the_records_after_a_bad_one() {
    let fs = FaultStorage::new();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    let n = 200;
    for i in 0..n {
        let r = record(json!({ "i": i, "pad": "p".repeat(40) }));
        store.set_now(&format!("s{i}"), &r).unwrap();
        // Syncs give later records a watermark that vouches for earlier ones.
        if i % 5 == 0 {
            store.flush().unwrap();
        }
    }
    drop(store);
    let ops = log_ops(&fs);
    assert_eq!(ops.len(), n, "one record per session");
    let segs = segments(&fs);
    assert!(segs.len() >= 4, "{segs:?}");
    let victim = segs[segs.len() / 2].clone();
    let bytes = fs.contents(&victim).unwrap();
    let recs = record_offsets(&bytes);
    let (at, len) = recs[recs.len() / 2];
    let Decoded::Record { seq: bad, .. } = format::decode(&bytes[at..]) else {
        unreachable!()
    };
    fs.patch(&victim, at + len / 2, &[bytes[at + len / 2] ^ 0x01]);
    let Err(e) = open(&fs, FsyncPolicy::Never, false) else {
        panic!("a corrupt log opened without salvage");
    };
    assert!(e.to_string().contains("salvage"), "{e}");
    // A program can tell which file, where, and that it is the log.
    match &e {
        StoreError::Open(OpenError::Corrupt(c)) => {
            assert_eq!(c.what, Corrupted::LogSegment, "{e}");
            assert_eq!(c.file.as_deref(), Some(victim.as_path()), "{e}");
            let offset = c.offset.expect("the offset of the bad record") as usize;
            assert!(
                at <= offset && offset < at + len,
                "{offset} not in {at}..{}",
                at + len
            );
        }
        other => panic!("not an open error naming the corruption: {other:?}"),
    }

    let store = open(&fs, FsyncPolicy::Never, true).unwrap();
    let got = state(&store);
    let lost = format!("s{}", bad - 1);
    let expected: Model = replay_model(ops.iter().filter(|(s, _)| *s != bad));
    assert_eq!(expected.len(), n - 1);
    assert!(!got.contains_key(&lost));
    assert_eq!(got, expected, "every session but the bad record's");
    // The bad segment and those after it are moved aside under their documented names, with
    // their bytes as they were.
    for seg in &segs[segs.len() / 2..] {
        let name = seg.file_name().unwrap().to_str().unwrap();
        let aside = Path::new(DIR).join(format!("{name}.corrupt"));
        assert!(
            fs.contents(&aside).is_some(),
            "{} moved aside",
            aside.display()
        );
        assert!(!fs.names().contains(seg), "{name} is out of the log");
    }
    let r = store.recovery_report().unwrap().clone(); // report
    assert_eq!(r.salvaged.len(), segs.len() - segs.len() / 2); // report
    assert_eq!(r.resynced, n as u64 - bad); // report
    assert_eq!(r.replayed, n as u64 - 1); // report
                                          // A snapshot covering everything kept was taken at once.
    let (_, cuts) = earliest_segment_and_cuts(&fs);
    assert!(
        cuts.iter().any(|&c| c >= n as u64),
        "a snapshot at once: {cuts:?}"
    );
    drop(store);
    let again = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&again), expected, "reopened without salvage");
}

/// Polls (up to 30 s) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "{what}: not within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Issue 10, item 8: the bytes since the last snapshot are counted from the newest snapshot
/// on disk, not from zero at each open: processes that each write less than the threshold
/// still get a snapshot, taken soon after the open that finds the log since it long.
#[test]
fn the_snapshot_threshold_counts_the_log_left_by_earlier_processes() {
    let fs = FaultStorage::new();
    let threshold = 24 << 10;
    let open_small = || {
        EmbeddedStore::builder()
            .shards(4)
            .sweep_interval(None)
            .segment_size(4096)
            .snapshot_after_bytes(threshold)
            .snapshot_interval(None)
            .fsync(FsyncPolicy::Never)
            .open_with(Arc::new(fs.clone()), Path::new(DIR), false)
            .unwrap()
    };
    let mut model = Model::new();
    let mut n = 0;
    let step = |n: usize| {
        Step::Set(
            format!("p{}", n % 50),
            json!({ "n": n, "pad": "q".repeat(80) }),
        )
    };
    // Less than the threshold in each process: 0.6 of it, in `per` writes.
    let store = open_small();
    let wal = &store.core.durable.as_ref().unwrap().wal;
    while wal.bytes_since_cut() < threshold * 6 / 10 {
        run(&store, &mut model, &step(n)).unwrap();
        n += 1;
    }
    let per = n;
    drop(store);
    let mut lifetime = |model: &mut Model| {
        let store = open_small();
        for _ in 0..per {
            run(&store, model, &step(n)).unwrap();
            n += 1;
        }
        store
    };
    assert!(snapshot_files(&fs).is_empty(), "below the threshold");
    let store = open_small();
    let r = store.recovery_report().unwrap(); // report
    assert!(r.replayed_bytes >= threshold * 6 / 10, "{r:?}"); // report
    drop(store);
    // The second process's writes take the log since the start over the threshold.
    let store = lifetime(&mut model);
    drop(store);
    let store = open_small();
    eventually("a snapshot of the log left by two processes", || {
        !snapshot_files(&fs).is_empty()
    });
    assert_eq!(state(&store), model);
    drop(store);
    let store = open_small();
    assert_eq!(state(&store), model);
    assert!(store.recovery_report().unwrap().snapshot.is_some()); // report
}

/// Issue 10, item 8: the snapshot clock is the age of the newest snapshot on disk (its file's
/// modification time), not the time since this process opened.
#[test]
fn the_snapshot_interval_counts_from_the_newest_snapshot_on_disk() {
    let dir = std::env::temp_dir().join(format!(
        "sessile-snapshot-age-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    // Removed however the test ends.
    struct Removed(PathBuf);
    impl Drop for Removed {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _removed = Removed(dir.clone());
    let open_hourly = || {
        EmbeddedStore::builder()
            .sweep_interval(None)
            .snapshot_interval(Some(std::time::Duration::from_secs(3600)))
            .open(&dir)
            .unwrap()
    };
    let store = open_hourly();
    store.set_now("a", &record(json!({ "a": 1 }))).unwrap();
    let first = store.snapshot().unwrap().unwrap();
    store.set_now("b", &record(json!({ "b": 2 }))).unwrap();
    drop(store);
    // The snapshot was taken two hours ago.
    let snap = dir.join(super::snapshot::snapshot_name(first));
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&snap)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let store = open_hourly();
    let newer = |dir: &Path| {
        std::fs::read_dir(dir).unwrap().any(|e| {
            let name = e.unwrap().file_name();
            super::snapshot::parse_snapshot_name(name.to_str().unwrap()).is_some_and(|c| c > first)
        })
    };
    eventually("a snapshot an hour after the last one", || newer(&dir));
    assert!(store.get_now("b").is_some());
}

/// A replay target that keeps each session's data in a map and counts the apply ops it is
/// handed (each one a parse and an encoding of the whole record in the store).
#[derive(Default)]
struct CountingTarget {
    data: std::sync::Mutex<BTreeMap<String, Data>>,
    applies: std::sync::atomic::AtomicUsize,
}

impl super::recovery::Replay for CountingTarget {
    fn shards(&self) -> usize {
        2
    }

    fn shard_of(&self, sid: &str) -> usize {
        sid.len() % 2
    }

    fn apply(&self, _shard: usize, op: &super::Op) {
        use super::Op;
        let mut m = self.data.lock().unwrap();
        match op {
            Op::Set { sid, record, .. } => {
                m.insert(sid.clone(), record.data.clone());
            }
            Op::Apply { sid, changes, .. } => {
                self.applies
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Some(d) = m.get_mut(sid) {
                    *d = changes.apply_to_data(d).unwrap();
                }
            }
            Op::Touch { .. } => {}
            Op::Destroy { sid } => {
                m.remove(sid);
            }
            Op::Clear => m.clear(),
        }
    }

    fn expect(&self, _shard: usize, _sessions: usize, _exact: bool) {}

    fn data(&self, _shard: usize, sid: &str) -> Option<Data> {
        self.data.lock().unwrap().get(sid).cloned()
    }
}

/// Issue 10, item 12: replaying many field changes of one session does not parse and encode
/// the whole (growing) record once per change: the target is handed the session's changes
/// patched on a working form, and the result is the same.
#[test]
fn replayed_field_changes_are_patched_on_a_working_form() {
    let fs = FaultStorage::new();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    store
        .set_now("hot", &record(json!({ "start": 0 })))
        .unwrap();
    store.set_now("other", &record(json!({ "o": 0 }))).unwrap();
    let changes = |fields: Vec<Change>| Changes {
        cookie: cookie(),
        fields,
    };
    for i in 0..3000 {
        let c = changes(vec![Change::Set(format!("f{i}"), json!("x".repeat(20)))]);
        assert_eq!(store.apply_now("hot", &c).unwrap(), Applied::Applied);
        if i % 100 == 7 {
            let c = changes(vec![Change::Remove(format!("f{}", i - 7))]);
            store.apply_now("hot", &c).unwrap();
            store.touch_now("hot", &cookie()).unwrap();
        }
        if i % 250 == 3 {
            let c = changes(vec![Change::Set("o".into(), json!(i))]);
            store.apply_now("other", &c).unwrap();
        }
        if i == 1500 {
            // A whole record in the middle: what follows patches it.
            store
                .set_now("hot", &record(json!({ "reset": true })))
                .unwrap();
            store.destroy_now("other").unwrap();
            store.apply_now("other", &c).unwrap();
            store
                .set_now("other", &record(json!({ "o": "again" })))
                .unwrap();
        }
    }
    let want: BTreeMap<String, Map<String, Value>> = state(&store);
    drop(store);

    let target = CountingTarget::default();
    super::recovery::recover(&fs, Path::new(DIR), false, &target).unwrap();
    let got: Model = target
        .data
        .lock()
        .unwrap()
        .iter()
        .map(|(k, d)| (k.clone(), d.to_map().unwrap()))
        .collect();
    assert_eq!(got, want);
    let applies = target.applies.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        applies <= 50,
        "{applies} apply ops handed to the store for about 3,000 field changes"
    );
}

/// Nothing of a torn tail is cut until its bytes are kept: when the file that keeps them
/// cannot be written, opening fails and says so, the segment is left as it was, and the next
/// open (the fault gone) cuts and keeps it.
#[test]
fn a_torn_tail_is_not_cut_when_it_cannot_be_kept() {
    let fs = FaultStorage::new();
    let _ = killed_after(&fs, 23, 120, None);
    let models = log_models(&fs);
    let last = segments(&fs).pop().unwrap();
    let bytes = fs.contents(&last).unwrap();
    let (at, len) = *record_offsets(&bytes).last().unwrap();
    fs.patch(&last, at + len / 2, &[bytes[at + len / 2] ^ 0x10]);
    let torn = fs.contents(&last).unwrap();
    fs.faults.lock().fail_write_from = Some(0);
    let Err(e) = open(&fs, FsyncPolicy::Never, false) else {
        panic!("opened without keeping the torn tail");
    };
    fs.faults.lock().fail_write_from = None;
    assert!(e.to_string().contains("keeping the torn tail"), "{e}");
    assert_eq!(
        fs.contents(&last).unwrap(),
        torn,
        "the segment is untouched"
    );
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    assert_eq!(state(&store), models[models.len() - 2]);
    let r = store.recovery_report().unwrap();
    assert_eq!(r.torn_files.len(), 1);
    assert!(fs.contents(&r.torn_files[0]).is_some());
}

#[test]
fn stats_report_the_log_its_syncs_and_the_last_snapshot() {
    let fs = FaultStorage::new();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    let log = store.stats().log.expect("a durable store has a log");
    assert_eq!(log.segments, 1);
    assert_eq!(log.last_snapshot, None);
    assert!(!log.poisoned);
    for i in 0..40 {
        store
            .set_now(&format!("s{i}"), &record(json!({ "pad": "p".repeat(200) })))
            .unwrap();
    }
    store.flush().unwrap();
    let log = store.stats().log.unwrap();
    assert!(log.segments > 1, "4 KiB segments: {log:?}");
    assert!(log.bytes_since_snapshot > 8000, "{log:?}");
    assert!(log.syncs >= 1, "{log:?}");
    assert!(
        log.sync_p50_us >= 1 && log.sync_p50_us <= log.sync_max_us,
        "{log:?}"
    );
    let cut = store.snapshot().unwrap().unwrap();
    let log = store.stats().log.unwrap();
    let snap = log.last_snapshot.clone().expect("the snapshot just taken");
    assert_eq!((snap.cut, snap.sessions), (cut, 40), "{log:?}");
    assert!(snap.bytes > 40 * 200, "{log:?}");
    assert_eq!(log.bytes_since_snapshot, 0, "{log:?}");
    fs.faults.lock().fail_sync_from = Some(fs.syncs() + 1);
    store.set_now("x", &record(json!({}))).unwrap();
    assert!(store.flush().is_err());
    assert!(store.stats().log.unwrap().poisoned);
}

/// What the store says (feature `tracing`): a poisoned log is an `error` event naming its
/// cause, once; a failed snapshot an `error`; a clean open one `info` line and a damaged one
/// one `warn` line with what was cut.
#[cfg(feature = "tracing")]
mod events {
    use super::*;
    use crate::events::captured;

    fn lines<'a>(text: &'a str, level: &str, message: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.trim_start().starts_with(level) && l.contains(message))
            .collect()
    }

    #[test]
    fn a_poisoned_log_says_why_once_at_error() {
        let fs = FaultStorage::new();
        let store = open(&fs, FsyncPolicy::Never, false).unwrap();
        store.set_now("a", &record(json!({"v": 1}))).unwrap();
        let wal = &store.core.durable.as_ref().unwrap().wal;
        while matches!(wal.next_state(), "wanted" | "preparing") {
            if !wal.prepare_pending() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        fs.faults.lock().fail_sync_from = Some(fs.syncs() + 1);
        let ((), text) = captured(|| {
            assert!(store.flush().is_err());
            assert!(store.flush().is_err());
        });
        let poisoned = lines(&text, "ERROR", "the session log is poisoned");
        assert_eq!(poisoned.len(), 1, "{text}");
        assert!(poisoned[0].contains("SyncFailed"), "{text}");
        assert!(poisoned[0].contains("injected EIO"), "{text}");
    }

    #[test]
    fn a_failed_snapshot_is_an_error_event() {
        let fs = FaultStorage::new();
        let store = open(&fs, FsyncPolicy::Never, false).unwrap();
        store.set_now("a", &record(json!({"v": 1}))).unwrap();
        fs.faults.lock().garble_files = true;
        let (taken, text) = captured(|| store.snapshot());
        assert!(taken.is_err());
        assert_eq!(lines(&text, "ERROR", "snapshot failed").len(), 1, "{text}");
        fs.faults.lock().garble_files = false;
        let (taken, text) = captured(|| store.snapshot());
        assert!(taken.is_ok());
        let done = lines(&text, "INFO", "snapshot taken");
        assert_eq!(done.len(), 1, "{text}");
        assert!(done[0].contains("sessions=1"), "{text}");
    }

    #[test]
    fn an_open_says_what_recovery_found() {
        let fs = FaultStorage::new();
        let acked = killed_after(&fs, 21, 300, None);
        assert!(!acked.is_empty());
        let (store, text) = captured(|| open(&fs, FsyncPolicy::Never, false).unwrap());
        let opened = lines(&text, "INFO", "session store opened");
        assert_eq!(opened.len(), 1, "{text}");
        assert!(opened[0].contains("torn_bytes=0"), "{text}");
        assert!(lines(&text, "WARN", "").is_empty(), "{text}");
        drop(store);

        let last = segments(&fs).pop().unwrap();
        let bytes = fs.contents(&last).unwrap();
        let recs = record_offsets(&bytes);
        let (at, len) = recs[recs.len() - 2];
        fs.patch(&last, at + len / 2, &[bytes[at + len / 2] ^ 0x04]);
        let (store, text) = captured(|| open(&fs, FsyncPolicy::Never, false).unwrap());
        let damaged = lines(&text, "WARN", "recovered a damaged directory");
        assert_eq!(damaged.len(), 1, "{text}");
        assert!(!damaged[0].contains("torn_bytes=0"), "{text}");
        assert!(damaged[0].contains(".torn-"), "{text}");
        assert!(
            lines(&text, "INFO", "session store opened").is_empty(),
            "{text}"
        );
        drop(store);
    }
}

/// A value nested deeper than serde_json's recursion limit (128), which a handler can set
/// (serde_json writes any depth) and Node can write: the change is logged, and the store
/// opens again with it, the other sessions untouched.
#[test]
fn a_deeply_nested_field_change_survives_a_reopen() {
    let fs = FaultStorage::new();
    let store = open(&fs, FsyncPolicy::Never, false).unwrap();
    store.set_now("a", &record(json!({ "v": 1 }))).unwrap();
    store.set_now("b", &record(json!({ "w": 2 }))).unwrap();
    let mut deep = json!(0);
    for _ in 0..200 {
        deep = json!([deep]);
    }
    let changes = Changes {
        cookie: cookie(),
        fields: vec![Change::Set("deep".into(), deep.clone())],
    };
    assert_eq!(store.apply_now("a", &changes).unwrap(), Applied::Applied);
    drop(store);
    let store = open(&fs, FsyncPolicy::Never, false).expect("the store opens again");
    let a = store.get_now("a").expect("session a");
    let text = a.data.as_str().to_owned();
    assert!(text.contains(&"[".repeat(200)), "{text}");
    assert!(store.get_now("b").is_some());
}
