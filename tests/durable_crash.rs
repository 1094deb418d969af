//! Crash tests of the durable embedded store on the real file system: a child process writes
//! sessions (acknowledging each one on stdout) and is killed with SIGKILL at a random moment;
//! the store reopened on the same directory must hold every acknowledged write, and open
//! cleanly. Rounds repeat on one directory, so recovery after recovery is exercised too.
//!
//! The child is this test binary itself, started with `SESSILE_CRASH_CHILD` set.

use std::collections::{BTreeMap, BTreeSet};
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

/// Held by every test of this file for its whole run. A child spawned by one test gets a
/// copy of every open file of this process until it execs, and with it a share of the
/// directory lock of a store another test has open: that test's next child, opening the
/// directory once the parent's store is dropped, would be refused as locked.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TESTS.lock().unwrap_or_else(|e| e.into_inner())
}
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
        "touches" => b
            .segment_size(256 << 10)
            .touch_log_interval(Duration::from_millis(TOUCH_WINDOW as u64)),
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
    Touch,
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
        if mode == "touches" {
            touch_writers(&store, round, &out).await;
        }
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
                        Kind::Touch => unreachable!("op_for never touches"),
                        Kind::Set => {
                            // Owned by its writer: the owner index is checked after recovery.
                            let data = json!({
                                "n": n,
                                "pad": "p".repeat((n % 300) as usize),
                                "__sessile_owner": format!("w{w}"),
                            });
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

/// The sessions of the touch rounds: each writer owns a few and touches them in turn.
const TOUCHED_PER_WRITER: u64 = 4;
/// The `maxAge` of the touch rounds: its 1 % (200 ms) is below the coalescing interval, so
/// the interval is the window.
const TOUCH_MAX_AGE: i64 = 20_000;
/// The coalescing interval of the touch rounds.
const TOUCH_WINDOW: i64 = 500;

fn touch_cookie() -> CookieRecord {
    let mut c = CookieRecord::default();
    // The expiry moves with every call: each touch carries a later one.
    c.set_max_age(Some(TOUCH_MAX_AGE));
    c
}

/// The child of the touch rounds: each writer sets its sessions, then touches them in turn
/// until killed, printing `<w> <n> set|touch <id> <expires>` for each acknowledged one.
async fn touch_writers(store: &EmbeddedStore, round: u64, out: &Arc<Mutex<std::io::Stdout>>) {
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let out = out.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = first_step(round, w);
            for k in 0..TOUCHED_PER_WRITER {
                n += 1;
                let id = format!("t{w}-{k}");
                let r = Record {
                    cookie: touch_cookie(),
                    data: Data::from_map(json!({"n": n}).as_object().unwrap()),
                };
                store.set(&id, &r).await.unwrap();
                let mut o = out.lock().unwrap();
                writeln!(o, "{w} {n} set {id} {}", r.cookie.expires.unwrap()).unwrap();
                o.flush().unwrap();
            }
            loop {
                n += 1;
                let id = format!("t{w}-{}", n % TOUCHED_PER_WRITER);
                let c = touch_cookie();
                store.touch(&id, &c).await.unwrap();
                let mut o = out.lock().unwrap();
                writeln!(o, "{w} {n} touch {id} {}", c.expires.unwrap()).unwrap();
                o.flush().unwrap();
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
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

/// One acknowledged operation, as the child printed it:
/// `<w> <n> set|apply|del|touch <id> [<expires ms>]`.
#[derive(Debug, Clone)]
struct Ack {
    w: u64,
    n: u64,
    kind: Kind,
    id: String,
    expires: Option<i64>,
}

/// The acknowledged operations among the child's lines. The test harness of the child prints
/// lines of its own: what does not parse as an acknowledgement is skipped.
fn acks(lines: &[String]) -> Vec<Ack> {
    lines
        .iter()
        .filter_map(|l| {
            let p: Vec<&str> = l.split(' ').collect();
            let (w, n, word, id, expires) = match p.as_slice() {
                [w, n, word, id] => (w, n, word, id, None),
                [w, n, word, id, e] => (w, n, word, id, Some(e.parse().ok()?)),
                _ => return None,
            };
            let kind = match *word {
                "set" => Kind::Set,
                "apply" => Kind::Apply,
                "del" => Kind::Del,
                "touch" => Kind::Touch,
                _ => return None,
            };
            Some(Ack {
                w: w.parse().ok()?,
                n: n.parse().ok()?,
                kind,
                id: id.to_string(),
                expires,
            })
        })
        .collect()
}

/// The operation each writer may have had in flight at the kill, given the model of the
/// store after this round's acknowledged operations: the first after its last acknowledged
/// one that was not an apply on a missing session (those write nothing and print nothing).
/// Each writer has at most one in flight.
fn in_flight(
    round: u64,
    round_acks: &[Ack],
    model: &BTreeMap<String, u64>,
) -> Vec<(Kind, String, u64)> {
    let mut last_step: BTreeMap<u64, u64> = BTreeMap::new();
    for a in round_acks {
        last_step.insert(a.w, a.n);
    }
    let mut out = Vec::new();
    for w in 0..WRITERS {
        let mut n = last_step.get(&w).copied().unwrap_or(first_step(round, w));
        loop {
            n += 1;
            let (kind, id) = op_for(w, n);
            if kind == Kind::Apply && !model.contains_key(&id) {
                continue;
            }
            out.push((kind, id, n));
            break;
        }
    }
    out
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// One round: starts a child on `dir`, kills it with SIGKILL, and returns every line it
/// printed. `early`: the kill comes right after the start (during open and recovery);
/// otherwise only after the first acknowledged operation, at a random moment `write_ms`
/// later.
fn run_child(
    test: &str,
    mode: &str,
    round: u64,
    dir: &Path,
    seed: &mut u64,
    early: bool,
    write_ms: std::ops::Range<u64>,
) -> Vec<String> {
    let mut child = spawn_child(test, mode, round, dir);
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
    if early {
        std::thread::sleep(Duration::from_millis(xorshift(seed) % 40));
    } else {
        // Wait for the first acknowledged operation (the harness's own lines do not count),
        // then let it write for a random while.
        let t0 = Instant::now();
        while acks(&lines.lock().unwrap()).is_empty() {
            let l = lines.lock().unwrap().clone();
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "round {round}: no acknowledged operation within 60 s: {l:?}"
            );
            assert!(
                !l.iter().any(|l| l.starts_with("open-error")),
                "round {round}: the child could not open the store: {l:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(
            write_ms.start + xorshift(seed) % (write_ms.end - write_ms.start),
        ));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let lines = std::mem::take(&mut *lines.lock().unwrap());
    assert!(
        !lines.iter().any(|l| l.starts_with("open-error")),
        "round {round}: the child could not open the store: {lines:?}"
    );
    lines
}

fn crash_rounds(test: &str, mode: &str, rounds: usize) {
    let dir = temp_dir(mode);
    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64;
    // The model: the value of field `n` of every live session, as the store must hold it.
    // After each round it is set to what the reopened store holds (once that is shown to be
    // allowed), so an operation that landed at a kill without its acknowledgement is known
    // to later rounds.
    let mut model: BTreeMap<String, u64> = BTreeMap::new();
    let mut rounds_with_acks = 0;
    let mut total_acks = 0;
    let mut destroys_checked = 0;
    // Every id ever acknowledged: a destroyed one must stay gone in every later round.
    let mut known: BTreeSet<String> = BTreeSet::new();
    let mut destroyed: BTreeSet<String> = BTreeSet::new();
    for round in 0..rounds {
        // One round in three is killed during open (and recovery of the previous round).
        let early = round % 3 == 2;
        let lines = run_child(test, mode, round as u64, &dir, &mut seed, early, 50..450);
        let round_acks = acks(&lines);
        if !round_acks.is_empty() {
            rounds_with_acks += 1;
        }
        total_acks += round_acks.len();
        for a in &round_acks {
            known.insert(a.id.clone());
            match a.kind {
                Kind::Del => {
                    model.remove(&a.id);
                    destroyed.insert(a.id.clone());
                }
                _ => {
                    model.insert(a.id.clone(), a.n);
                }
            }
        }
        let flying = in_flight(round as u64, &round_acks, &model);

        // Every acknowledged operation, destroys included, is there after the crash: each
        // session holds its last acknowledged value, or the one of the operation in flight
        // at the kill; no other session exists.
        let store = builder(mode)
            .open(&dir)
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let all = rt.block_on(store.all()).unwrap();
        // The owner index rebuilt at open holds exactly the owned sessions recovered.
        let mut owned: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, r) in &all {
            if let Some(owner) = r.data.to_map().unwrap().get("__sessile_owner") {
                let owner = owner.as_str().unwrap().to_owned();
                owned.entry(owner).or_default().insert(id.clone());
            }
        }
        for w in 0..WRITERS {
            let owner = format!("w{w}");
            let listed: BTreeSet<String> = store
                .sessions_of_now(&owner)
                .into_iter()
                .map(|s| s.id)
                .collect();
            assert_eq!(
                listed,
                owned.remove(&owner).unwrap_or_default(),
                "round {round}: the owner index of {owner} after recovery, in {}",
                dir.display()
            );
        }
        let found: BTreeMap<String, u64> = all
            .into_iter()
            .map(|(id, r)| {
                let n = r.data.to_map().unwrap()["n"].as_u64().unwrap();
                (id, n)
            })
            .collect();
        known.extend(found.keys().cloned());
        for id in &known {
            let mut allowed = vec![model.get(id).copied()];
            for (kind, fid, n) in &flying {
                if fid != id {
                    continue;
                }
                match kind {
                    Kind::Set => allowed.push(Some(*n)),
                    Kind::Apply if model.contains_key(id) => allowed.push(Some(*n)),
                    Kind::Del => allowed.push(None),
                    _ => {}
                }
            }
            let got = found.get(id).copied();
            if !model.contains_key(id) && destroyed.contains(id) {
                destroys_checked += 1;
            }
            assert!(
                allowed.contains(&got),
                "round {round}: {id} holds {got:?}, allowed {allowed:?} (None: destroyed); \
                 last lines: {:?}; in {}",
                &lines[lines.len().saturating_sub(12)..],
                dir.display()
            );
        }
        model = found;
        drop(store);
        // The next child reopens the same directory after this clean close.
    }
    // A round killed before its first acknowledged operation checks only that the store
    // opens: enough rounds must have written something.
    let early_rounds = (0..rounds).filter(|r| r % 3 == 2).count();
    assert!(
        rounds_with_acks >= rounds - early_rounds,
        "only {rounds_with_acks} of {rounds} rounds acknowledged an operation"
    );
    assert!(
        destroys_checked > 0,
        "no destroyed session was checked ({total_acks} acknowledged operations)"
    );
    eprintln!(
        "{mode}: {total_acks} acknowledged operations in {rounds_with_acks} of {rounds} rounds, \
         {destroys_checked} destroyed ids checked"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_during_writes_loses_nothing_acknowledged() {
    let _serial = one_at_a_time();
    maybe_child();
    crash_rounds("kill_during_writes_loses_nothing_acknowledged", "writes", 6);
}

#[test]
fn kill_during_snapshots_and_segment_removal_loses_nothing_acknowledged() {
    let _serial = one_at_a_time();
    maybe_child();
    crash_rounds(
        "kill_during_snapshots_and_segment_removal_loses_nothing_acknowledged",
        "snapshots",
        6,
    );
}

/// Touches that only move the expiry are coalesced (logged once the expiry has moved by more
/// than the window), so after a crash a session's expiry may be earlier than the last
/// acknowledged touch set it, but by no more than the window (README: "an expiry can be that
/// much earlier"), and never later than a touch at the kill could have set it.
#[test]
fn kill_during_touches_keeps_each_expiry_within_the_coalescing_window() {
    let _serial = one_at_a_time();
    maybe_child();
    let test = "kill_during_touches_keeps_each_expiry_within_the_coalescing_window";
    let mode = "touches";
    let dir = temp_dir(mode);
    let mut seed = 0x2545_F491_4F6C_DD1D ^ std::process::id() as u64;
    let mut touches = 0;
    let mut earlier = 0;
    for round in 0..4 {
        // Several windows pass before the kill.
        let lines = run_child(test, mode, round, &dir, &mut seed, false, 1_200..3_000);
        let killed_at = sessile::clock::now_ms();
        let round_acks = acks(&lines);
        touches += round_acks.iter().filter(|a| a.kind == Kind::Touch).count();
        // The last acknowledged expiry of each session (a writer's operations are in order).
        let mut acked: BTreeMap<String, i64> = BTreeMap::new();
        for a in &round_acks {
            acked.insert(a.id.clone(), a.expires.unwrap());
        }
        let store = builder(mode)
            .open(&dir)
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for (id, want) in &acked {
            let got = rt
                .block_on(store.get(id))
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: {id} is gone, acked expiry {want}"));
            let got = got.cookie.expires.unwrap();
            assert!(
                got >= want - TOUCH_WINDOW,
                "round {round}: {id} expires at {got}, {} ms before its last acknowledged \
                 expiry {want} (window {TOUCH_WINDOW} ms)",
                want - got
            );
            assert!(
                got <= killed_at + TOUCH_MAX_AGE,
                "round {round}: {id} expires at {got}, later than any touch before the kill \
                 ({killed_at} + {TOUCH_MAX_AGE})"
            );
            if got < *want {
                earlier += 1;
            }
        }
        drop(store);
    }
    assert!(touches > 0, "no touch was acknowledged");
    // Coalescing happens: some recovered expiry is earlier than the last touch set it.
    assert!(
        earlier > 0,
        "every recovered expiry is the last acknowledged one: no touch was coalesced \
         ({touches} touches)"
    );
    eprintln!("{touches} touches acknowledged, {earlier} expiries recovered earlier");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_process_cannot_open_the_directory() {
    let _serial = one_at_a_time();
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
    let _serial = one_at_a_time();
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
