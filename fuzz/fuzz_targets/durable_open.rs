//! A durable store's directory damaged on disk, then opened: opening never panics, and it
//! either fails with an error or recovers the state after some prefix of the operations that
//! were written, never anything else. Reaches recovery's scan of the segments, its torn-tail
//! decision, the snapshot fallback and salvage with whole directories.
//!
//! Once per process, a known sequence of operations is written to a store with 4 KiB
//! segments and two snapshots taken on the way (so the directory holds two snapshots and
//! the log after the older one, over several segments); its files are kept in memory with
//! the state after every operation. All but the last few operations wait for their sync
//! (`FsyncPolicy::Always`), so the records after them vouch for them: damage to those is
//! corruption, damage to the last ones a torn tail. Each run writes those files to a fresh directory
//! (under `/dev/shm` when there is one), damages them as the input says (bit flips,
//! truncation, overwrites, zeroed ranges, removed, extended or copied files), and opens it:
//! with or without salvage, keeping one or two snapshots, as the input's first byte says.
//!
//! When an open succeeds, the store must also go on: a session written after it, and the
//! recovered ones, are what the next open finds. When an open without salvage refuses the
//! directory, one with salvage is tried on it, as an operator would.

#![no_main]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use sessile::{Change, Changes, CookieRecord, Data, Record};
use sessile::{EmbeddedStore, EmbeddedStoreBuilder, FsyncPolicy, SessionStore};

/// A store's sessions, with the fields parsed (equal fields, whatever their text).
type State = BTreeMap<String, (CookieRecord, Map<String, Value>)>;

struct Base {
    /// The files of the directory after a clean shutdown, by name.
    files: Vec<(String, Vec<u8>)>,
    /// The state after each prefix of the operations (the first: none).
    states: Vec<State>,
    /// The directory each run writes.
    run: PathBuf,
}

/// Runs a future of the embedded store, which never waits on an in-memory or
/// `FsyncPolicy::Never` store.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("an embedded store call waited"),
    }
}

fn state(store: &EmbeddedStore) -> State {
    let all = now(store.all()).expect("an embedded store lists its sessions");
    all.into_iter()
        .map(|(id, r)| {
            let fields = r
                .data
                .to_map()
                .unwrap_or_else(|e| panic!("recovered data of {id:?} does not parse: {e}"));
            (id, (r.cookie, fields))
        })
        .collect()
}

fn builder() -> EmbeddedStoreBuilder {
    EmbeddedStore::builder()
        .shards(4)
        .segment_size(4096)
        .snapshot_after_bytes(u64::MAX)
        .snapshot_interval(None)
        .sweep_interval(None)
        .fsync(FsyncPolicy::Never)
}

/// The last operations are written without waiting for their sync.
const UNSYNCED: usize = 6;

/// 2100-01-01, so no session expires while the fuzzer runs.
const LATER: i64 = 4_102_444_800_000;

fn cookie(hours: i64) -> CookieRecord {
    CookieRecord {
        original_max_age: Some(3_600_000),
        expires: Some(LATER + hours * 3_600_000),
        ..CookieRecord::default()
    }
}

fn record(n: usize, hours: i64) -> Record {
    let fields = json!({
        "n": n,
        "user": { "name": format!("user {n}"), "roles": ["a", "b"] },
        "pad": "0123456789abcdef0123456789abcdef",
    });
    let Value::Object(map) = fields else {
        unreachable!()
    };
    Record {
        cookie: cookie(hours),
        data: Data::from_map(&map),
    }
}

#[derive(Clone, Copy)]
enum Op {
    Set(usize),
    Browser(usize),
    Apply(usize),
    Remove(usize),
    Touch(usize),
    Destroy(usize),
    Clear,
    Snapshot,
}

/// The operations written: a first snapshot after a few, a second after some more, then
/// enough to fill a few segments of 4 KiB.
fn ops() -> Vec<Op> {
    use Op::*;
    let mut ops = vec![
        Set(0),
        Set(1),
        Set(2),
        Browser(3),
        Apply(0),
        Destroy(1),
        Touch(2),
    ];
    ops.push(Snapshot);
    ops.extend([
        Set(4),
        Apply(2),
        Remove(0),
        Set(1),
        Touch(4),
        Destroy(3),
        Apply(3),
    ]);
    ops.push(Snapshot);
    for i in 0..48 {
        let s = i % 7;
        ops.push(match i % 6 {
            0 | 3 => Set(s),
            1 => Apply(s),
            2 => Touch(s),
            4 => Remove(s),
            _ => Destroy((s + 3) % 7),
        });
        if i == 20 {
            ops.push(Clear);
        }
    }
    ops
}

/// Runs a store call to its end (a durable write under `FsyncPolicy::Always` waits for its
/// sync on another thread).
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Runs `op` (the `step`th) on the base store: through the async calls, which wait for the
/// sync, so later records vouch for it (damage to it is corruption); or, when not `synced`,
/// through the calls that return once the record is in the log (damage to the last of these
/// is a torn tail).
fn run_op(store: &EmbeddedStore, op: &Op, step: usize, synced: bool) {
    let sid = |s: usize| format!("session-{s}");
    let changes = |fields: Vec<Change>| Changes {
        cookie: cookie(step as i64),
        fields,
    };
    let written = match (*op, synced) {
        (Op::Set(s), true) => block_on(store.set(&sid(s), &record(step, step as i64))),
        (Op::Set(s), false) => store.set_now(&sid(s), &record(step, step as i64)),
        (Op::Browser(s), _) => {
            let mut r = record(step, 0);
            r.cookie = CookieRecord::default();
            block_on(store.set(&sid(s), &r))
        }
        (Op::Apply(s), _) => {
            let c = changes(vec![Change::Set("views".into(), json!(step))]);
            match synced {
                true => block_on(store.apply(&sid(s), &c)).map(drop),
                false => store.apply_now(&sid(s), &c).map(drop),
            }
        }
        (Op::Remove(s), _) => {
            let c = changes(vec![Change::Remove("user".into())]);
            match synced {
                true => block_on(store.apply(&sid(s), &c)).map(drop),
                false => store.apply_now(&sid(s), &c).map(drop),
            }
        }
        (Op::Touch(s), true) => block_on(store.touch(&sid(s), &cookie(1000 + step as i64))),
        (Op::Touch(s), false) => store.touch_now(&sid(s), &cookie(1000 + step as i64)),
        (Op::Destroy(s), true) => block_on(store.destroy(&sid(s))),
        (Op::Destroy(s), false) => store.destroy_now(&sid(s)),
        (Op::Clear, _) => block_on(store.clear()),
        (Op::Snapshot, _) => store.snapshot().map(drop),
    };
    written.expect("the base directory is written");
}

fn scratch() -> PathBuf {
    let root = Path::new("/dev/shm");
    let root = if root.is_dir() {
        root.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    // Directories left by earlier processes that are gone.
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("sessile-fuzz-durable-"))
            else {
                continue;
            };
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    root.join(format!("sessile-fuzz-durable-{}", std::process::id()))
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let root = scratch();
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("base");
        let store = builder()
            .fsync(FsyncPolicy::Always)
            .open(&dir)
            .expect("a fresh directory opens");
        let mut states = vec![state(&store)];
        let ops = ops();
        for (step, op) in ops.iter().enumerate() {
            run_op(&store, op, step, step + UNSYNCED < ops.len());
            states.push(state(&store));
        }
        let last = states.last().cloned().expect("a state");
        drop(store);
        let mut files = Vec::new();
        for e in std::fs::read_dir(&dir).expect("the base directory") {
            let e = e.expect("an entry");
            let name = e.file_name().into_string().expect("a file name");
            if name != "LOCK" {
                files.push((name, std::fs::read(e.path()).expect("a file")));
            }
        }
        files.sort();
        let store = builder()
            .open(&dir)
            .expect("the base directory opens again");
        assert_eq!(state(&store), last, "the base directory does not read back");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!(
            "durable_open: {} operations, files: {:?}",
            states.len() - 1,
            files.iter().map(|(n, b)| (n, b.len())).collect::<Vec<_>>()
        );
        Base {
            files,
            states,
            run: root.join("run"),
        }
    })
}

/// Reads the fuzz input a field at a time (zeros once it is used up).
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> usize {
        usize::from(self.byte()) | usize::from(self.byte()) << 8
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// Damages the files as the input says.
fn damage(files: &mut Vec<(String, Vec<u8>)>, input: &mut Input<'_>) {
    for _ in 0..8 {
        if input.0.is_empty() || files.is_empty() {
            return;
        }
        let which = usize::from(input.byte()) % files.len();
        let kind = input.byte() % 8;
        let file = &mut files[which].1;
        let at = input.u16() % (file.len() + 1);
        let n = usize::from(input.byte());
        match kind {
            // A bit flipped.
            0 => {
                if let Some(b) = file.get_mut(at) {
                    *b ^= 1 << (n % 8);
                }
            }
            // Cut short.
            1 => file.truncate(at),
            // Bytes overwritten (the file may grow).
            2 => {
                let with = input.bytes(n);
                let end = at + with.len();
                if file.len() < end {
                    file.resize(end, 0);
                }
                file[at..end].copy_from_slice(with);
            }
            // A range zeroed, as a lost page reads.
            3 => {
                let end = (at + n * 16).min(file.len());
                file[at..end].fill(0);
            }
            // The file removed.
            4 => {
                files.remove(which);
            }
            // Garbage appended.
            5 => {
                let with = input.bytes(n).to_vec();
                file.extend_from_slice(&with);
            }
            // One byte set.
            6 => {
                if let Some(b) = file.get_mut(at) {
                    *b = n as u8;
                }
            }
            // A copy under another segment's or snapshot's name.
            _ => {
                let copy = file.clone();
                let name = match n % 3 {
                    0 => format!("wal-{at:020}.log"),
                    1 => format!("snap-{at:020}.rkyv"),
                    _ => "wal-next.prep".to_owned(),
                };
                match files.iter_mut().find(|(f, _)| *f == name) {
                    Some(f) => f.1 = copy,
                    None => files.push((name, copy)),
                }
            }
        }
    }
}

/// With `DURABLE_OPEN_TRACE` set (when replaying a reproducer), prints the directory's
/// files at each step.
fn trace(dir: &Path, step: &str) {
    if std::env::var_os("DURABLE_OPEN_TRACE").is_none() {
        return;
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let len = e.metadata().map_or(0, |m| m.len());
                    (e.file_name().to_string_lossy().into_owned(), len)
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    eprintln!("durable_open: {step}: {files:?}");
}

fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("the run directory");
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("a file of the run directory");
    }
}

/// The prefix of the operations whose state `got` is.
fn prefix_of(base: &Base, got: &State, how: &str) -> usize {
    base.states
        .iter()
        .rposition(|s| s == got)
        .unwrap_or_else(|| {
            panic!(
                "{how}: the recovered state is no prefix of what was written: {got:#?}\n\
                 the state written last: {:#?}",
                base.states.last()
            )
        })
}

/// What an open recovered: some prefix's state; or, after a salvage that resynchronised
/// past damaged records (keeping the intact ones after them), a state that need not be any
/// prefix, since a later field change may land on an older version of its session when the
/// records between are lost: then every field, and the cookie, of every session is one that
/// session held at some point of the history, and nothing else.
fn check_recovered(base: &Base, store: &EmbeddedStore, got: &State, how: &str) -> Option<usize> {
    let resynced = store.recovery_report().is_some_and(|r| r.resynced > 0);
    if !resynced {
        return Some(prefix_of(base, got, how));
    }
    for (sid, (cookie, fields)) in got {
        let held: Vec<_> = base.states.iter().filter_map(|s| s.get(sid)).collect();
        assert!(
            held.iter().any(|(c, _)| c == cookie),
            "{how}: session {sid} has a cookie it never had: {cookie:#?}"
        );
        for (k, v) in fields {
            assert!(
                held.iter().any(|(_, f)| f.get(k) == Some(v)),
                "{how}: session {sid} holds {k} = {v}, which it never held"
            );
        }
    }
    None
}

/// The store recovered `got` on `dir`: it goes on, and the next open finds what it holds.
fn goes_on(base: &Base, dir: &Path, store: EmbeddedStore, salvage: bool, keep: usize) {
    trace(dir, "opened");
    let mut expected = state(&store);
    let recovered = base.states.iter().rposition(|s| *s == expected);
    let after = record(9999, 5);
    store
        .set_now("written-after-recovery", &after)
        .expect("a recovered store takes writes");
    expected.insert(
        "written-after-recovery".into(),
        (
            after.cookie.clone(),
            after.data.to_map().expect("the record's data"),
        ),
    );
    drop(store);
    trace(dir, "written to and closed");
    let again = builder()
        .salvage(salvage)
        .keep_snapshots(keep)
        .open(dir)
        .unwrap_or_else(|e| {
            panic!("a store that recovered and was written to does not reopen: {e}")
        });
    let mut got = state(&again);
    if got != expected {
        let written = got.remove("written-after-recovery").is_some();
        let reopened = base.states.iter().rposition(|s| *s == got);
        panic!(
            "the reopened store lost or changed sessions: the open recovered the state after \
             {recovered:?} operations; after a write and a reopen, the state is that after \
             {reopened:?} operations (the write {}): {got:#?}",
            if written { "kept" } else { "lost" }
        );
    }
    drop(again);
}

fuzz_target!(|bytes: &[u8]| {
    let base = base();
    let mut input = Input(bytes);
    let flags = input.byte();
    let salvage = flags & 1 != 0;
    let keep = if flags & 2 != 0 { 1 } else { 2 };
    let mut files = base.files.clone();
    damage(&mut files, &mut input);
    let intact = files == base.files;
    let dir = &base.run;
    write_dir(dir, &files);
    trace(dir, "damaged");

    match builder().salvage(salvage).keep_snapshots(keep).open(dir) {
        Ok(store) => {
            let got = state(&store);
            let n = check_recovered(base, &store, &got, "open");
            if intact {
                assert_eq!(
                    n,
                    Some(base.states.len() - 1),
                    "an intact directory lost operations"
                );
            }
            goes_on(base, dir, store, salvage, keep);
        }
        Err(e) => {
            trace(dir, &format!("refused: {e}"));
            assert!(!intact, "an intact directory does not open: {e}");
            if !salvage {
                // An operator's next step: salvage what can be.
                if let Ok(store) = builder().salvage(true).keep_snapshots(keep).open(dir) {
                    let got = state(&store);
                    check_recovered(base, &store, &got, "open with salvage");
                    goes_on(base, dir, store, true, keep);
                }
            }
        }
    }
});
