//! Faults of the file system under a running durable store, made for real where the machine
//! lets them be made: file descriptors run out (a child process under `ulimit -n`), a second
//! process after `rm DIR/LOCK`, the directory deleted, a small volume (a tmpfs, when
//! mounting is allowed), a directory of a wider mode. The fault layer's tests
//! (`src/store/embedded/durable/tests.rs`) cover the same faults where they cannot be made
//! here (EACCES as root, a volume when mounting is refused).
//!
//! The children are this test binary itself, started with `SESSILE_FAULT_CHILD` set.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use sessile::{CookieRecord, Data, EmbeddedStore, FsyncPolicy, Record};

const CHILD: &str = "SESSILE_FAULT_CHILD";

/// Held by every test of this file for its whole run. A process spawned by one test (the
/// children here, `mount`) gets a copy of every open file of this process until it execs,
/// and with it a share of a store's directory lock: a test that drops a store and opens
/// it again would see the lock still held, for that moment, by the fork of another test.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TESTS.lock().unwrap_or_else(|e| e.into_inner())
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sessile-faults-{tag}-{}",
        sessile::id::generate().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn record(pad: usize) -> Record {
    let mut c = CookieRecord::default();
    c.set_max_age(Some(3_600_000));
    let data = json!({ "pad": "p".repeat(pad) });
    Record {
        cookie: c,
        data: Data::from_map(data.as_object().unwrap()),
    }
}

/// Runs this binary's test `test` as a child with `CHILD` set to `arg`; `shell` is a prefix
/// run by `sh` before it (`ulimit -n 64`).
fn run_child(test: &str, arg: &str, shell: Option<&str>) -> (Option<i32>, String) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match shell {
        Some(prefix) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("{prefix} && exec \"$0\" \"$@\""))
                .arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let out = cmd
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, arg)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// In a child, `CHILD`'s value; `None` in the parent.
fn child_arg() -> Option<String> {
    std::env::var(CHILD).ok()
}

/// Takes every free file descriptor (opens `/dev/null` until EMFILE).
fn hog(held: &mut Vec<File>) {
    loop {
        match File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) if e.raw_os_error() == Some(24) => return,
            Err(e) => panic!("opening /dev/null: {e}"),
        }
        assert!(held.len() < 100_000, "no file descriptor limit");
    }
}

/// The child of item 6: in rounds, takes every free file descriptor but one and writes five
/// segments' worth (under `Never`, nothing syncs in between, so no closed segment gives a
/// descriptor back: once the one left is taken, a rotation without a prepared segment fails
/// with EMFILE), then syncs.
/// Then frees the descriptors and writes on. Exits 0 when the descriptors ran out, no error
/// poisoned the log or failed a sync, and every write after the descriptors came back
/// landed; prints what happened.
fn emfile_child(dir: &Path) -> ! {
    let store = EmbeddedStore::builder()
        .segment_size(64 << 10)
        .fsync(FsyncPolicy::Never)
        .sweep_interval(None)
        .snapshot_interval(None)
        .snapshot_after_bytes(u64::MAX)
        .open(dir)
        .unwrap();
    for i in 0..100 {
        store.set_now(&format!("a{i}"), &record(1000)).unwrap();
    }
    store.flush().unwrap();
    let mut held = Vec::new();
    let mut errors = Vec::new();
    for round in 0..5 {
        // Whatever the last sync's closed segments gave back is taken again, all but one
        // descriptor: enough to create a segment, not to open the directory besides.
        hog(&mut held);
        held.pop();
        for i in 0..300 {
            if let Err(e) = store.set_now(&format!("b{round}-{i}"), &record(1000)) {
                errors.push(format!("write: {e}"));
            }
        }
        if let Err(e) = store.flush() {
            errors.push(format!("flush: {e}"));
        }
    }
    drop(held);
    println!();
    println!("errors while out of fds: {}", errors.len());
    for e in errors.iter().take(3) {
        println!("  {e}");
    }
    let mut after = Vec::new();
    for i in 0..300 {
        if let Err(e) = store.set_now(&format!("c{i}"), &record(1000)) {
            after.push(format!("write: {e}"));
        }
        if let Err(e) = store.flush() {
            after.push(format!("flush: {e}"));
        }
    }
    println!("errors after fds came back: {}", after.len());
    for e in after.iter().take(3) {
        println!("  {e}");
    }
    let poisoned = errors
        .iter()
        .any(|e| e.contains("poisoned") || e.starts_with("flush"));
    let emfile = errors.iter().any(|e| e.contains("Too many open files"));
    let ok = !poisoned && emfile && after.is_empty();
    println!("result: {}", if ok { "ok" } else { "bad" });
    std::io::stdout().flush().unwrap();
    std::process::exit(if ok { 0 } else { 1 })
}

/// Item 6: file descriptors run out (`ulimit -n 64` in a child, every free one taken) while
/// the log rotates: the writes that need a new segment fail with EMFILE, nothing poisons the
/// log, and writes resume once descriptors are free again.
#[test]
fn running_out_of_file_descriptors_fails_rotations_without_poisoning_the_log() {
    let _serial = one_at_a_time();
    const TEST: &str = "running_out_of_file_descriptors_fails_rotations_without_poisoning_the_log";
    if let Some(arg) = child_arg() {
        emfile_child(Path::new(&arg));
    }
    let dir = temp_dir("emfile");
    let (code, text) = run_child(TEST, dir.to_str().unwrap(), Some("ulimit -n 64"));
    assert_eq!(code, Some(0), "{text}");
    println!("{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 7: `rm DIR/LOCK` under a running store does not let a second process in.
#[test]
fn a_second_process_is_refused_even_after_the_lock_file_is_deleted() {
    let _serial = one_at_a_time();
    const TEST: &str = "a_second_process_is_refused_even_after_the_lock_file_is_deleted";
    if let Some(arg) = child_arg() {
        match EmbeddedStore::open(&arg) {
            Ok(_) => {
                println!("\nopened");
                std::process::exit(0)
            }
            Err(e) => {
                println!("\nopen-error {e}");
                std::process::exit(3)
            }
        }
    }
    let dir = temp_dir("lock");
    let store = EmbeddedStore::open(&dir).unwrap();
    store.set_now("first", &record(10)).unwrap();
    std::fs::remove_file(dir.join("LOCK")).unwrap();
    let (code, text) = run_child(TEST, dir.to_str().unwrap(), None);
    assert_eq!(
        code,
        Some(3),
        "the second process opened the directory: {text}"
    );
    assert!(text.contains("locked"), "{text}");
    // The first store goes on.
    store.set_now("second", &record(10)).unwrap();
    drop(store);
    // Once it is closed, the directory opens again (LOCK is made anew).
    let store = EmbeddedStore::open(&dir).unwrap();
    assert!(store.get_now("second").is_some());
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes until one fails (the store notices a deleted or replaced directory about once a
/// second), for up to 30 s; the error's text.
fn first_failed_write(store: &EmbeddedStore, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Err(e) = store.set_now("after", &record(10)) {
            return e.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "writes still succeed 30 s after the directory was {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the directory of a running store. Its first write has the next segment prepared
/// by a thread of the store, which creates `wal-next.prep` in the directory: when that
/// happened while `remove_dir_all` walked it, the removal failed with `DirectoryNotEmpty`
/// (seen once under load). Waiting for the file first leaves nothing more to be created.
fn remove_under_store(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("wal-next.prep").exists() {
        assert!(
            Instant::now() < deadline,
            "no segment prepared within 30 s of the first write"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Item 9: the directory deleted under a running store (no rotation due: the segment is
/// large): writes fail with an error that says so, once the store notices (it checks about
/// once a second).
#[test]
fn writes_fail_once_the_directory_is_deleted() {
    let _serial = one_at_a_time();
    if child_arg().is_some() {
        return;
    }
    let dir = temp_dir("deleted");
    let store = EmbeddedStore::open(&dir).unwrap();
    store.set_now("before", &record(10)).unwrap();
    remove_under_store(&dir);
    let e = first_failed_write(&store, "deleted");
    assert!(e.contains("was deleted"), "{e}");
    assert!(e.contains(dir.to_str().unwrap()), "{e}");
    // Later writes fail the same way; reads go on.
    let again = store.set_now("later", &record(10)).unwrap_err().to_string();
    assert!(again.contains("was deleted"), "{again}");
    assert!(store.get_now("before").is_some());
}

/// Item 9, the directory deleted and made anew under a running store (another process could
/// now lock and open it): writes fail, saying its path leads to another directory.
#[test]
fn writes_fail_once_the_directory_is_replaced() {
    let _serial = one_at_a_time();
    if child_arg().is_some() {
        return;
    }
    let dir = temp_dir("replaced");
    let store = EmbeddedStore::open(&dir).unwrap();
    store.set_now("before", &record(10)).unwrap();
    remove_under_store(&dir);
    std::fs::create_dir(&dir).unwrap();
    let e = first_failed_write(&store, "replaced");
    assert!(e.contains("another directory"), "{e}");
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Mounts a tmpfs of `size` on a new directory; `None` (and why) when mounting is refused.
fn tmpfs(size: &str) -> Result<PathBuf, String> {
    let dir = temp_dir("tmpfs");
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(&dir)
        .output()
        .map_err(|e| format!("mount: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir(&dir);
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(dir)
}

/// Unmounts on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Item 10: 16 MiB segments on a 24 MiB tmpfs. Writes go on past the first segment (the
/// next one is sized to the space there is), a restart on the same volume accepts writes,
/// and once the volume is full the error says how many bytes were needed and how many are
/// free. Skipped (with a message) where mounting is refused: the fault layer's
/// `a_small_volume_sizes_segments_to_the_space_there_is` covers it there.
#[test]
fn a_small_volume_takes_writes_past_the_first_segment() {
    let _serial = one_at_a_time();
    if child_arg().is_some() {
        return;
    }
    let mount = match tmpfs("24m") {
        Ok(dir) => Mounted(dir),
        Err(why) => {
            println!(
                "skipped: cannot mount a tmpfs ({why}); the fault layer's \
                 a_small_volume_sizes_segments_to_the_space_there_is covers this"
            );
            return;
        }
    };
    let dir = mount.0.join("sessions");
    let open = || {
        EmbeddedStore::builder()
            .segment_size(16 << 20)
            .fsync(FsyncPolicy::Never)
            .sweep_interval(None)
            .snapshot_interval(None)
            .snapshot_after_bytes(u64::MAX)
            .open(&dir)
    };
    let store = open().unwrap();
    // 18 MiB of records: past the first segment. Sessions are rewritten, so the live set
    // stays small.
    let mut i = 0usize;
    while i < 18 * 1024 {
        store
            .set_now(&format!("s{}", i % 64), &record(1000))
            .unwrap_or_else(|e| panic!("write {i} (KiB {i} of the log): {e}"));
        i += 1;
    }
    drop(store);
    let store = open().unwrap();
    for k in 0..256 {
        store
            .set_now(&format!("s{}", k % 64), &record(1000))
            .unwrap_or_else(|e| panic!("write {k} after a restart: {e}"));
    }
    let e = loop {
        match store.set_now(&format!("s{}", i % 64), &record(1000)) {
            Ok(()) => i += 1,
            Err(e) => break e.to_string(),
        }
        assert!(i < 100 * 1024, "a 24 MiB volume took 100 MiB");
    };
    assert!(e.contains("bytes free"), "{e}");
    println!("the full volume: {e}");
    drop(store);
}

/// Item 13: an existing directory of mode 0755 owned by this user is tightened to 0700 at
/// open; one owned by another user is left as it is (a root process opens it).
#[test]
fn an_existing_directory_is_tightened_to_0700() {
    let _serial = one_at_a_time();
    if child_arg().is_some() {
        return;
    }
    let dir = temp_dir("mode");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(mode(&dir), 0o755);
    drop(EmbeddedStore::open(&dir).unwrap());
    assert_eq!(
        mode(&dir),
        0o700,
        "a session directory must not be world-readable"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Someone else's directory (only root can make one to test with).
    let other = temp_dir("mode-other");
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
    if std::os::unix::fs::chown(&other, Some(65534), Some(65534)).is_ok() {
        drop(EmbeddedStore::open(&other).unwrap());
        assert_eq!(
            mode(&other),
            0o755,
            "another user's directory is left alone"
        );
    } else {
        println!("skipped the other user's directory: chown needs root");
    }
    let _ = std::fs::remove_dir_all(&other);
}

/// A second store on a directory this process already has open is refused, and the error
/// names what is locked.
#[test]
fn a_second_store_in_one_process_is_refused_naming_the_lock() {
    let _serial = one_at_a_time();
    let dir = temp_dir("lock-here");
    let first = EmbeddedStore::open(&dir).unwrap();
    let Err(e) = EmbeddedStore::open(&dir) else {
        panic!("a second store opened a locked directory");
    };
    match &e {
        sessile::StoreError::Open(sessile::OpenError::Locked { lock }) => {
            assert_eq!(lock, &dir, "{e}");
        }
        other => panic!("not a lock error: {other:?}"),
    }
    assert!(e.to_string().contains("locked"), "{e}");
    assert!(e.to_string().contains(dir.to_str().unwrap()), "{e}");
    drop(first);
    drop(EmbeddedStore::open(&dir).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Opening a path that is a file, or a directory that cannot be entered, fails with an error
/// that names the path (not only "Not a directory").
#[test]
fn an_io_error_at_open_names_the_path() {
    let _serial = one_at_a_time();
    let dir = temp_dir("io-at-open");
    let file = dir.join("not-a-dir");
    File::create(&file).unwrap();
    let Err(e) = EmbeddedStore::open(&file) else {
        panic!("a store opened on a file");
    };
    assert!(e.to_string().contains(file.to_str().unwrap()), "{e}");
    assert!(
        matches!(&e, sessile::StoreError::Open(sessile::OpenError::Io { path, .. }) if *path == file),
        "{e:?}"
    );
    let inner = file.join("sessions");
    let Err(e) = EmbeddedStore::open(&inner) else {
        panic!("a store opened under a file");
    };
    assert!(e.to_string().contains(inner.to_str().unwrap()), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Dropping the last handle is the store's clean shutdown, done before `drop` returns, even
/// while a background snapshot is running: the directory is unlocked (the next open in this
/// process succeeds) and the prepared segment is gone. Before, the snapshot thread could
/// hold the last reference, so the shutdown ran later on that thread (or never, when the
/// process exited first) and an open right after the drop was refused as locked.
#[test]
fn dropping_the_store_during_a_background_snapshot_shuts_it_down_at_once() {
    let _serial = one_at_a_time();
    let dir = temp_dir("drop-snapshot");
    let builder = || {
        EmbeddedStore::builder()
            .sweep_interval(None)
            .snapshot_interval(None)
            // Every check of the snapshot thread (each 100 ms) finds the log long enough.
            .snapshot_after_bytes(1)
            .fsync(FsyncPolicy::Never)
    };
    let store = builder().open(&dir).unwrap();
    for i in 0..10_000 {
        store.set_now(&format!("s{i}"), &record(64)).unwrap();
    }
    drop(store);
    let mut refused = Vec::new();
    for round in 0..24u64 {
        let store = builder()
            .open(&dir)
            .unwrap_or_else(|e| panic!("round {round}: the directory does not reopen: {e}"));
        store.set_now("grown", &record(round as usize)).unwrap();
        // Within one or two checks of the snapshot thread, which then copies 10,000
        // sessions for a while.
        std::thread::sleep(Duration::from_millis(80 + (round * 7) % 60));
        drop(store);
        if dir.join("wal-next.prep").exists() {
            refused.push(format!(
                "round {round}: wal-next.prep is still there after the drop"
            ));
        }
        if let Err(e) = builder().open(&dir) {
            refused.push(format!("round {round}: {e}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(refused.is_empty(), "{refused:#?}");
}

/// `close` is the clean shutdown whichever handles still exist (an actix worker's `App`
/// torn down at exit without running drops): the log is synced, the prepared segment
/// removed, the directory unlocked; the handle still held refuses writes and snapshots and
/// serves reads; a second `close` changes nothing.
#[test]
fn close_shuts_the_store_down_while_another_handle_still_holds_it() {
    let _serial = one_at_a_time();
    let dir = temp_dir("close");
    let store = EmbeddedStore::builder()
        .sweep_interval(None)
        .fsync(FsyncPolicy::Never)
        .open(&dir)
        .unwrap();
    let held = store.clone();
    for i in 0..1_000 {
        store.set_now(&format!("s{i}"), &record(32)).unwrap();
    }
    store.close().unwrap();
    assert!(
        !dir.join("wal-next.prep").exists(),
        "the prepared segment is still there after close"
    );
    let e = held.set_now("late", &record(1)).unwrap_err();
    assert!(matches!(e, sessile::StoreError::Closed), "{e}");
    let e = held.snapshot().unwrap_err();
    assert!(matches!(e, sessile::StoreError::Closed), "{e}");
    assert!(held.get_now("s999").is_some(), "a read after close");
    assert!(
        held.get_now("late").is_none(),
        "a refused write is not served"
    );
    held.close().unwrap();

    // Unlocked while `held` is alive, and every acknowledged write is on disk (`Never`
    // syncs only at the clean shutdown).
    let reopened = EmbeddedStore::builder()
        .sweep_interval(None)
        .open(&dir)
        .unwrap_or_else(|e| panic!("the directory does not reopen after close: {e}"));
    assert_eq!(reopened.stats().sessions, 1_000);
    drop((store, held, reopened));
    let _ = std::fs::remove_dir_all(&dir);
}
