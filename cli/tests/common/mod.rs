//! What the CLI's tests share: running the binary, making real store directories with the
//! library, and damaging their files at chosen records.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sessile::{CookieRecord, Data, EmbeddedStore, Record};

/// Runs `sessile ARGS`.
pub fn sessile(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sessile"))
        .args(args)
        .output()
        .expect("run the sessile binary")
}

/// Runs `sessile ARGS DIR …` with the directory as an argument.
pub fn run(command: &str, dir: &Path, rest: &[&str]) -> Output {
    let mut args = vec![command, dir.to_str().expect("UTF-8 temp path")];
    args.extend_from_slice(rest);
    sessile(&args)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The exit status, with the output in the message when it is not `want`.
pub fn assert_status(o: &Output, want: i32) {
    assert_eq!(
        o.status.code(),
        Some(want),
        "status; stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// The JSON object a `--json` command printed.
pub fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_str(stdout(o).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr:\n{}", stdout(o), stderr(o)))
}

/// A fresh directory path (not created) for test `name`.
pub fn temp_dir(name: &str) -> TempDir {
    let path = std::env::temp_dir().join(format!("sessile-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    TempDir(path)
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    sessile::clock::now_ms()
}

/// Session `i`'s id.
pub fn sid(i: usize) -> String {
    format!("session-{i:06}")
}

/// A session expiring in an hour, with a field saying `i`.
pub fn record(i: usize) -> Record {
    let cookie = CookieRecord {
        original_max_age: Some(3_600_000),
        expires: Some(now_ms() + 3_600_000),
        ..CookieRecord::default()
    };
    let data =
        Data::from_json_text(&format!(r#"{{"user":"user-{i}","views":{i}}}"#)).expect("valid data");
    Record { cookie, data }
}

/// Stores sessions `range` (synced after each when `sync_each`, so that every record
/// vouches for the one before it).
pub fn fill(store: &EmbeddedStore, range: std::ops::Range<usize>, sync_each: bool) {
    for i in range {
        store.set_now(&sid(i), &record(i)).expect("set");
        if sync_each {
            store.flush().expect("flush");
        }
    }
}

/// A closed store in `dir` holding `n` sessions, all in the log.
pub fn closed_store(dir: &Path, n: usize, sync_each: bool) {
    let store = EmbeddedStore::open(dir).expect("open");
    fill(&store, 0..n, sync_each);
    drop(store);
}

/// A closed store in `dir` of log segments of `segment_size` bytes, holding `n` sessions
/// (see [`fill`] for `sync_each`).
pub fn segmented_store(dir: &Path, segment_size: usize, n: usize, sync_each: bool) {
    let store = EmbeddedStore::builder()
        .segment_size(segment_size)
        .open(dir)
        .expect("open");
    fill(&store, 0..n, sync_each);
    drop(store);
}

/// A closed store in `dir` holding sessions `0..total`, the first `snapshotted` of them in a
/// snapshot and the rest in the log after it.
pub fn snapshotted_store(dir: &Path, snapshotted: usize, total: usize) {
    let store = EmbeddedStore::open(dir).expect("open");
    fill(&store, 0..snapshotted, false);
    store.snapshot().expect("snapshot");
    fill(&store, snapshotted..total, false);
    drop(store);
}

/// The log segments of `dir`, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    files(dir, "wal-", ".log")
}

/// The snapshots of `dir`, oldest first.
pub fn snapshots(dir: &Path) -> Vec<PathBuf> {
    files(dir, "snap-", ".rkyv")
}

fn files(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with(prefix) && n.ends_with(suffix)
        })
        .collect();
    out.sort();
    out
}

/// The offsets of the records of a segment, by its documented layout (docs/FORMAT.md: a
/// 32-byte header, then records of a 28-byte header whose first 4 bytes are the payload's
/// length, up to a header of zeros).
pub fn record_offsets(segment: &Path) -> Vec<usize> {
    let b = std::fs::read(segment).expect("read segment");
    let mut out = Vec::new();
    let mut at = 32;
    while at + 28 <= b.len() && b[at..at + 28].iter().any(|&x| x != 0) {
        out.push(at);
        let len = u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as usize;
        at += 28 + len;
    }
    out
}

/// Flips the bits of the byte at `offset` of `file`.
pub fn flip(file: &Path, offset: usize) {
    let mut b = std::fs::read(file).expect("read");
    b[offset] ^= 0xff;
    std::fs::write(file, b).expect("write");
}

/// The file name of `p`.
pub fn name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .expect("a file name")
        .to_owned()
}

/// Every file of `dir` with its bytes, by name: to check that a command changed nothing.
pub fn contents(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let path = e.expect("entry").path();
            (name(&path), std::fs::read(&path).expect("read"))
        })
        .collect()
}
