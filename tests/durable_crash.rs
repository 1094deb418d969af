//! Crash tests of the durable embedded store on the real file system: a child process writes
//! sessions (acknowledging each one on stdout) and is killed with SIGKILL at a random moment;
//! the store reopened on the same directory must hold every acknowledged write, and open
//! cleanly. Rounds repeat on one directory, so recovery after recovery is exercised too.
//!
//! The child is this test binary itself, started with `SESSILE_CRASH_CHILD` set.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sessile::{
    Change, Changes, CookieRecord, Data, EmbeddedStore, FsyncPolicy, Record, SessionStore,
};

const CHILD: &str = "SESSILE_CRASH_CHILD";
const WRITERS: u64 = 8;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sessile-crash-{tag}-{}",
        sessile::id::generate().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cookie() -> CookieRecord {
    let mut c = CookieRecord::default();
    c.set_max_age(Some(3_600_000));
    c
}

fn builder(mode: &str) -> sessile::EmbeddedStoreBuilder {
    let b = EmbeddedStore::builder().fsync(FsyncPolicy::Always);
    match mode {
        // Small segments and frequent snapshots: kills land during snapshots and segment
        // removal as well.
        "snapshots" => b.segment_size(64 << 10).snapshot_after_bytes(96 << 10),
        _ => b.segment_size(256 << 10),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Set,
    Apply,
    Del,
}

/// The operation writer `w` does at step `n`: deterministic, so the parent can tell which
/// operation was in flight when the child was killed.
fn op_for(w: u64, n: u64) -> (Kind, String) {
    let id = format!("w{w}-{}", n % 50);
    let kind = match n % 7 {
        0 => Kind::Del,
        1..=2 => Kind::Apply,
        _ => Kind::Set,
    };
    (kind, id)
}

/// The first step of writer `w` in round `round`.
fn first_step(round: u64, w: u64) -> u64 {
    (round + 1) * 1_000_000_000 + w * 10_000_000
}

/// The child: writes until killed. Each line on stdout is an acknowledged write:
/// `<w> <n> set|apply|del <id>`.
fn child(mode: &str, round: u64, dir: &Path) -> ! {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = match builder(mode).open(dir) {
            Ok(s) => s,
            Err(e) => {
                println!("open-error {e}");
                std::process::exit(3);
            }
        };
        if mode == "hold" {
            println!("opened");
            std::io::stdout().flush().unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            std::process::exit(0);
        }
        // The test harness has printed "test <name> ... " without a newline: end that line, or
        // the first acknowledged write would be glued to it and missed by the parent.
        println!();
        std::io::stdout().flush().unwrap();
        let out = Arc::new(Mutex::new(std::io::stdout()));
        // Several writers in flight, so group commit batches them.
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            let out = out.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = first_step(round, w);
                loop {
                    n += 1;
                    let (kind, id) = op_for(w, n);
                    let word = match kind {
                        Kind::Del => {
                            store.destroy(&id).await.unwrap();
                            "del"
                        }
                        Kind::Apply => {
                            let ch = Changes {
                                cookie: cookie(),
                                fields: vec![Change::Set("n".into(), json!(n))],
                            };
                            if store.apply(&id, &ch).await.unwrap() != sessile::Applied::Applied {
                                continue;
                            }
                            "apply"
                        }
                        Kind::Set => {
                            let data = json!({"n": n, "pad": "p".repeat((n % 300) as usize)});
                            let r = Record {
                                cookie: cookie(),
                                data: Data::from_map(data.as_object().unwrap()),
                            };
                            store.set(&id, &r).await.unwrap();
                            "set"
                        }
                    };
                    let line = format!("{w} {n} {word} {id}");
                    let mut o = out.lock().unwrap();
                    writeln!(o, "{line}").unwrap();
                    o.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    std::process::exit(0)
}

fn spawn_child(test: &str, mode: &str, round: u64, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, format!("{mode}:{round}:{}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn maybe_child() {
    if let Ok(v) = std::env::var(CHILD) {
        let mut parts = v.splitn(3, ':');
        let mode = parts.next().unwrap();
        let round = parts.next().unwrap().parse().unwrap();
        child(mode, round, Path::new(parts.next().unwrap()));
    }
}

/// What the store must hold after a crash, from the acknowledged lines of every round so far.
struct Expect {
    /// The last acknowledged value of field `n` per id (`None`: destroyed).
    value: BTreeMap<String, Option<u64>>,
    /// Ids the operation in flight at the kill may have destroyed.
    maybe_gone: Vec<String>,
}

fn expected(lines: &[String], round: u64) -> Expect {
    let mut value = BTreeMap::new();
    let mut last_step: BTreeMap<u64, u64> = BTreeMap::new();
    for l in lines {
        let p: Vec<&str> = l.split(' ').collect();
        // The test harness of the child prints lines of its own: skip what is not ours.
        let [w, n, word, id] = p.as_slice() else {
            continue;
        };
        let (Ok(w), Ok(n)) = (w.parse::<u64>(), n.parse::<u64>()) else {
            continue;
        };
        if !matches!(*word, "set" | "apply" | "del") {
            continue;
        }
        value.insert(id.to_string(), (*word != "del").then_some(n));
        if n >= first_step(round, w) {
            last_step.insert(w, n);
        }
    }
    // Each writer had at most one operation in flight: the first after its last acknowledged
    // line that was not an apply on a missing session (those write nothing and print nothing).
    let mut maybe_gone = Vec::new();
    for w in 0..WRITERS {
        let mut n = last_step.get(&w).copied().unwrap_or(first_step(round, w));
        loop {
            n += 1;
            let (kind, id) = op_for(w, n);
            let exists = value.get(&id).copied().flatten().is_some();
            if kind == Kind::Apply && !exists {
                continue;
            }
            if kind == Kind::Del {
                maybe_gone.push(id);
            }
            break;
        }
    }
    Expect { value, maybe_gone }
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn crash_rounds(test: &str, mode: &str, rounds: usize) {
    let dir = temp_dir(mode);
    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64;
    let mut all_lines: Vec<String> = Vec::new();
    for round in 0..rounds {
        let mut child = spawn_child(test, mode, round as u64, &dir);
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(stdout).lines() {
                    match l {
                        Ok(l) => lines.lock().unwrap().push(l),
                        Err(_) => break,
                    }
                }
            })
        };
        // Let it open and write, then kill it at a random moment.
        let t0 = Instant::now();
        while lines.lock().unwrap().is_empty() && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50 + xorshift(&mut seed) % 400));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let lines = std::mem::take(&mut *lines.lock().unwrap());
        assert!(
            !lines.is_empty() && !lines.iter().any(|l| l.starts_with("open-error")),
            "round {round}: the child wrote nothing: {lines:?}"
        );
        all_lines.extend(lines);

        // Every acknowledged write is there after the crash.
        let store = builder(mode)
            .open(&dir)
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let want = expected(&all_lines, round as u64);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut landed_deletes = Vec::new();
        for (id, n) in &want.value {
            let got = rt.block_on(store.get(id)).unwrap();
            if got.is_none() && n.is_some() && want.maybe_gone.contains(id) {
                // The destroy in flight at the kill landed: later rounds must know it.
                landed_deletes.push(format!("0 0 del {id}"));
            }
            let got_n = got.map(|r| r.data.to_map().unwrap()["n"].as_u64().unwrap());
            // The operation in flight at the kill may have landed without its line: a newer
            // value, a recreated session, or (for a destroy) a missing one.
            match (n, got_n) {
                (Some(n), Some(g)) => assert!(g >= *n, "round {round}: {id} has {g}, acked {n}"),
                (None, _) => {}
                (Some(n), None) => assert!(
                    want.maybe_gone.contains(id),
                    "round {round}: {id} is missing, acked n = {n}; last lines: {:?}; in {}",
                    &all_lines[all_lines.len().saturating_sub(12)..],
                    dir.display()
                ),
            }
        }
        all_lines.extend(landed_deletes);
        drop(store);
        // The next child reopens the same directory after this clean close.
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_during_writes_loses_nothing_acknowledged() {
    maybe_child();
    crash_rounds("kill_during_writes_loses_nothing_acknowledged", "writes", 6);
}

#[test]
fn kill_during_snapshots_and_segment_removal_loses_nothing_acknowledged() {
    maybe_child();
    crash_rounds(
        "kill_during_snapshots_and_segment_removal_loses_nothing_acknowledged",
        "snapshots",
        6,
    );
}

#[test]
fn a_second_process_cannot_open_the_directory() {
    maybe_child();
    let dir = temp_dir("lock");
    let _store = EmbeddedStore::open(&dir).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_second_process_cannot_open_the_directory",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, format!("hold:0:{}", dir.display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("locked"), "{text}");
    drop(_store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    maybe_child();
    let dir = temp_dir("perm");
    let sub = dir.join("sessions");
    {
        let store = EmbeddedStore::open(&sub).unwrap();
        store.set_now("a", &Record::default()).unwrap();
        store.snapshot().unwrap();
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sub), 0o700);
    for e in std::fs::read_dir(&sub).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
