//! The `sessile` binary on real directories made by the library: clean, torn tail, corrupt
//! middle record, corrupt snapshot, locked by a running store, empty; and the offline
//! commands (get, destroy, export, import, compact, salvage).

mod common;

use common::*;
use sessile::EmbeddedStore;

/// The problem `verify --json` lists in `dir`, checking that it exits 1 and lists only one.
fn the_one_problem(dir: &std::path::Path) -> serde_json::Value {
    let o = run("verify", dir, &["--json"]);
    assert_status(&o, 1);
    let mut v = json_of(&o);
    let problems = v["problems"].as_array_mut().expect("problems");
    assert_eq!(problems.len(), 1, "{problems:?}");
    problems.remove(0)
}

/// Checks that `dir` verifies clean after a repair that lost session `lost` and kept `kept`.
fn repaired(dir: &std::path::Path, lost: usize, kept: usize) {
    assert_status(&run("verify", dir, &[]), 0);
    assert_status(&run("get", dir, &[&sid(lost)]), 1);
    assert_status(&run("get", dir, &[&sid(kept)]), 0);
}

#[test]
fn a_clean_directory_inspects_and_verifies_clean() {
    let dir = temp_dir("clean");
    snapshotted_store(&dir, 100, 150);

    let o = run("inspect", &dir, &["--json"]);
    assert_status(&o, 0);
    let v = json_of(&o);
    assert_eq!(v["locked"], false);
    assert_eq!(v["format_versions"], serde_json::json!([2]));
    assert_eq!(v["sessions"]["live"], 150);
    assert_eq!(v["sessions"]["expired"], 0);
    assert_eq!(v["sessions"]["snapshot"], 100);
    assert_eq!(v["sessions"]["replayed"], 50);
    assert!(v["sessions"]["oldest_expiry"].is_string(), "{v}");
    assert_eq!(v["problems"], serde_json::json!([]));
    let files = v["files"].as_array().expect("files");
    // A field of the last file of a kind.
    let of = |kind: &str, key: &str| {
        let file = files.iter().rfind(|f| f["kind"] == kind);
        file.map(|f| f[key].as_u64())
    };
    assert_eq!(of("snapshot", "first_seq"), Some(Some(100)));
    assert_eq!(of("snapshot", "records"), Some(Some(100)));
    assert_eq!(of("segment", "first_seq"), Some(Some(101)));
    assert_eq!(of("segment", "last_seq"), Some(Some(150)));

    let o = run("inspect", &dir, &[]);
    assert_status(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains("150 live") && text.contains("problems      none"),
        "{text}"
    );

    let o = run("verify", &dir, &[]);
    assert_status(&o, 0);
    assert!(stdout(&o).starts_with("clean:"), "{}", stdout(&o));
}

#[test]
fn a_torn_tail_is_reported_then_cut_by_salvage() {
    let dir = temp_dir("torn");
    closed_store(&dir, 20, false);
    let segment = segments(&dir).pop().expect("a segment");
    let last = *record_offsets(&segment).last().expect("records");
    // The last record's last byte.
    let end = record_offsets(&segment).len();
    assert_eq!(end, 20);
    let len = std::fs::read(&segment).expect("read")[last..last + 4]
        .try_into()
        .map(u32::from_le_bytes)
        .expect("length") as usize;
    flip(&segment, last + 28 + len - 1);
    // A leftover an open would remove: the read-only commands leave it, as everything else.
    std::fs::write(dir.join("snap-00000000000000000005.tmp"), b"partial").expect("write");
    let before = contents(&dir);

    let problem = the_one_problem(&dir);
    assert_eq!(problem["file"], segment.display().to_string());
    assert_eq!(problem["offset"], last);
    assert_eq!(problem["torn_tail"], true);
    let o = run("verify", &dir, &[]);
    assert_status(&o, 1);
    assert!(
        stdout(&o).contains(&format!("{} at offset {last}", segment.display())),
        "{}",
        stdout(&o)
    );

    let v = json_of(&run("inspect", &dir, &["--json"]));
    assert_eq!(v["sessions"]["live"], 19);
    assert!(v["sessions"]["problem"].is_string(), "{v}");
    assert!(
        contents(&dir) == before,
        "inspect and verify must change nothing in the directory"
    );

    let o = run("salvage", &dir, &["--json"]);
    assert_status(&o, 0);
    let v = json_of(&o);
    assert!(v["torn_bytes"].as_u64() > Some(0), "{v}");
    assert_eq!(v["torn_files"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["sessions"], 19);
    repaired(&dir, 19, 18);
}

#[test]
fn a_corrupt_middle_record_is_refused_then_salvaged() {
    let dir = temp_dir("middle");
    // Synced after each record: every record vouches for the one before it.
    closed_store(&dir, 20, true);
    let segment = segments(&dir).pop().expect("a segment");
    let bad = record_offsets(&segment)[10];
    flip(&segment, bad + 30);

    let problem = the_one_problem(&dir);
    assert_eq!(problem["offset"], bad);
    assert_eq!(problem["torn_tail"], false, "{problem}");

    let o = run("get", &dir, &[&sid(1)]);
    assert_status(&o, 2);
    assert!(stderr(&o).contains("corrupt"), "{}", stderr(&o));

    let o = run("salvage", &dir, &[]);
    assert_status(&o, 0);
    let text = stdout(&o);
    assert!(text.contains(".corrupt"), "{text}");
    assert!(text.contains("19 kept"), "{text}");
    repaired(&dir, 10, 19);
}

#[test]
fn a_missing_segment_is_reported_at_the_next_one() {
    let dir = temp_dir("gap");
    segmented_store(&dir, 8 << 10, 300, true);
    let segments = segments(&dir);
    assert!(segments.len() > 3, "{segments:?}");
    std::fs::remove_file(&segments[1]).expect("remove");
    let first_lost = name(&segments[1])[4..24].parse::<u64>().expect("seq");
    let next = name(&segments[2])[4..24].parse::<u64>().expect("seq");

    let problem = the_one_problem(&dir);
    assert_eq!(problem["file"], segments[2].display().to_string());
    assert_eq!(problem["offset"], 0);
    assert_eq!(
        problem["reason"],
        format!("records {first_lost}..{next} are missing")
    );
    // Later records were synced after the lost ones: damage, not a torn tail.
    assert_eq!(problem["torn_tail"], false, "{problem}");
}

#[test]
fn a_corrupt_snapshot_is_reported_and_passed_over() {
    let dir = temp_dir("snapshot");
    snapshotted_store(&dir, 50, 50);
    let snapshot = snapshots(&dir).pop().expect("a snapshot");
    let len = std::fs::metadata(&snapshot).expect("stat").len() as usize;
    flip(&snapshot, len / 2);

    let problem = the_one_problem(&dir);
    assert_eq!(problem["file"], snapshot.display().to_string());
    assert!(problem["offset"].as_u64() < Some(len as u64), "{problem}");

    // The whole log is still there (the first snapshot keeps it as a fallback).
    let v = json_of(&run("inspect", &dir, &["--json"]));
    assert_eq!(v["sessions"]["live"], 50, "{v}");
    assert_eq!(v["sessions"]["snapshot"], serde_json::Value::Null);
    let skipped = v["sessions"]["skipped_snapshots"]
        .as_array()
        .expect("skipped");
    assert_eq!(skipped.len(), 1, "{v}");
}

#[test]
fn a_directory_locked_by_a_running_store_is_read_but_not_opened() {
    let dir = temp_dir("locked");
    let store = EmbeddedStore::open(&*dir).expect("open");
    fill(&store, 0..10, false);
    store.flush().expect("flush");

    let o = run("inspect", &dir, &["--json"]);
    assert_status(&o, 0);
    let v = json_of(&o);
    assert_eq!(v["locked"], true);
    assert_eq!(v["sessions"]["live"], 10);
    assert!(stdout(&run("inspect", &dir, &[])).contains("held"));
    if std::path::Path::new("/proc/locks").exists() {
        assert_eq!(v["lock_holder"], std::process::id(), "{v}");
    }
    assert_status(&run("verify", &dir, &[]), 0);
    for args in [
        vec!["get", &sid(1)],
        vec!["destroy", &sid(1)],
        vec!["compact"],
        vec!["salvage"],
        vec!["export"],
    ] {
        let o = run(args[0], &dir, &args[1..]);
        assert_status(&o, 3);
        assert!(stderr(&o).contains("is locked"), "{args:?}: {}", stderr(&o));
    }
    // Nothing was changed by the refusals.
    assert!(store.get_now(&sid(1)).is_some());

    drop(store);
    let v = json_of(&run("inspect", &dir, &["--json"]));
    assert_eq!(
        (&v["locked"], &v["lock_holder"]),
        (&false.into(), &serde_json::Value::Null)
    );
    assert_status(&run("get", &dir, &[&sid(1)]), 0);
}

#[test]
fn an_empty_directory_has_nothing_to_report_and_a_missing_one_is_an_error() {
    let dir = temp_dir("empty");
    std::fs::create_dir(&*dir).expect("mkdir");
    let o = run("inspect", &dir, &["--json"]);
    assert_status(&o, 0);
    let v = json_of(&o);
    assert_eq!(v["files"], serde_json::json!([]));
    assert_eq!(v["sessions"]["live"], 0);
    assert_eq!(v["locked"], false);
    let o = run("verify", &dir, &[]);
    assert_status(&o, 0);
    assert!(stdout(&o).contains("clean: 0 files"), "{}", stdout(&o));

    let missing = temp_dir("missing");
    for command in ["inspect", "verify", "get"] {
        let o = run(command, &missing, &["id"][..usize::from(command == "get")]);
        assert_status(&o, 2);
        assert!(stderr(&o).contains("no such directory"), "{}", stderr(&o));
    }
    assert!(
        !missing.exists(),
        "an offline command must not create the directory"
    );
}

#[test]
fn get_and_destroy_one_session() {
    let dir = temp_dir("get");
    closed_store(&dir, 5, false);
    let o = run("get", &dir, &[&sid(3)]);
    assert_status(&o, 0);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("JSON");
    assert_eq!(v["user"], "user-3");
    assert!(v["cookie"]["expires"].is_string(), "{v}");

    let o = run("destroy", &dir, &[&sid(3), "--json"]);
    assert_status(&o, 0);
    assert_eq!(json_of(&o)["destroyed"], true);
    assert_status(&run("get", &dir, &[&sid(3)]), 1);
    assert_status(&run("destroy", &dir, &[&sid(3)]), 1);
    assert_status(&run("get", &dir, &[&sid(4)]), 0);
}

#[test]
fn export_and_import_carry_every_session() {
    let (a, b) = (temp_dir("export-a"), temp_dir("export-b"));
    closed_store(&a, 30, false);
    let o = run("export", &a, &[]);
    assert_status(&o, 0);
    let exported = stdout(&o);
    assert_eq!(exported.lines().count(), 30);
    let first: serde_json::Value =
        serde_json::from_str(exported.lines().next().expect("a line")).expect("JSON line");
    assert_eq!(first["id"], sid(0));
    assert_eq!(first["session"]["user"], "user-0");

    let file = a.with_extension("jsonl");
    let expired = r#"{"id":"gone","session":{"cookie":{"originalMaxAge":1000,"expires":"2020-01-01T00:00:00.000Z","path":"/"},"n":1}}"#;
    std::fs::write(&file, format!("{exported}{expired}\n")).expect("write");
    let o = run("import", &b, &[file.to_str().expect("UTF-8"), "--json"]);
    std::fs::remove_file(&file).ok();
    assert_status(&o, 0);
    let v = json_of(&o);
    assert_eq!((&v["imported"], &v["expired"]), (&30.into(), &1.into()));
    assert_eq!(stdout(&run("export", &b, &[])), exported);

    let bad = b.with_extension("bad");
    std::fs::write(&bad, "{\"id\":\"x\"}\n").expect("write");
    let o = run("import", &b, &[bad.to_str().expect("UTF-8")]);
    std::fs::remove_file(&bad).ok();
    assert_status(&o, 2);
    assert!(stderr(&o).contains("line 1"), "{}", stderr(&o));
}

#[test]
fn compact_removes_the_log_it_covers() {
    let dir = temp_dir("compact");
    segmented_store(&dir, 64 << 10, 2000, false);
    assert!(segments(&dir).len() > 3, "{:?}", segments(&dir));

    let o = run("compact", &dir, &["--json"]);
    assert_status(&o, 0);
    let v = json_of(&o);
    assert_eq!(v["sessions"], 2000);
    assert!(
        v["bytes_after"].as_u64() < v["bytes_before"].as_u64(),
        "{v}"
    );
    assert_eq!(snapshots(&dir).len(), 1);
    let left = segments(&dir);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(record_offsets(&left[0]).is_empty());
    assert!(name(&snapshots(&dir)[0]).contains("2000"));

    let v = json_of(&run("inspect", &dir, &["--json"]));
    assert_eq!(v["sessions"]["live"], 2000);
    assert_status(&run("verify", &dir, &[]), 0);

    // `sessile export DIR | head -1`: more than a pipe holds, the reader gone after a line.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sessile"))
        .args(["export", dir.to_str().expect("UTF-8")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).expect("read");
    assert!(first.starts_with("{\"id\":"), "{first}");
    let o = child.wait_with_output().expect("wait");
    assert_status(&o, 0);
}
