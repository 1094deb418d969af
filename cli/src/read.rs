//! The commands that read the directory without its lock, while a server may run:
//! `inspect` and `verify` (through `sessile::store::embedded::inspect`).

use std::path::Path;
use std::process::ExitCode;

use serde_json::{json, Value};
use sessile::store::embedded::inspect::{self, FileInfo, FileKind, Problem, Verification};

use crate::error::{require_dir, Failure};
use crate::output::{bar, print_json, say, size, spinner, time_of};

/// Lists and checks every file, with a progress bar over the bytes.
fn checked(dir: &Path, json: bool) -> Result<Verification, Failure> {
    let pb = bar(None, true, json).with_message("checking");
    let checked = inspect::verify(dir, |done, total| {
        pb.set_length(total);
        pb.set_position(done);
    })
    .map_err(|e| Failure::because(dir.display(), e))?;
    pb.finish_and_clear();
    Ok(checked)
}

/// `sessile verify DIR`: 0 when clean, 1 with every problem listed.
pub(crate) fn verify(dir: &Path, json: bool) -> Result<ExitCode, Failure> {
    require_dir(dir)?;
    let checked = checked(dir, json)?;
    let checked_files = checked
        .files
        .iter()
        .filter(|f| matches!(f.kind, FileKind::Segment | FileKind::Snapshot))
        .count();
    if json {
        print_json(&json!({
            "clean": checked.is_clean(),
            "files": checked_files,
            "bytes": checked.bytes(),
            "problems": checked.problems.iter().map(problem_json).collect::<Vec<_>>(),
        }));
    } else if checked.is_clean() {
        say!(
            "clean: {checked_files} files, {} checked",
            size(checked.bytes())
        );
    } else {
        for p in &checked.problems {
            say!("{}", problem_line(p));
        }
        say!(
            "{} problem(s) in {checked_files} files",
            checked.problems.len()
        );
    }
    Ok(if checked.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `sessile inspect DIR`.
pub(crate) fn inspect(dir: &Path, json: bool) -> Result<ExitCode, Failure> {
    require_dir(dir)?;
    let locked = inspect::is_locked(dir).map_err(|e| Failure::because(dir.display(), e))?;
    // Best effort: which process, where the system says.
    let holder = inspect::lock_holder(dir).ok().flatten().filter(|_| locked);
    let checked = checked(dir, json)?;
    let pb = spinner("reading the sessions", json);
    let sessions = inspect::sessions(dir);
    pb.finish_and_clear();
    let mut versions: Vec<u32> = checked.files.iter().filter_map(|f| f.version).collect();
    versions.sort_unstable();
    versions.dedup();
    if json {
        let sessions = match &sessions {
            Ok(s) => json!({
                "live": s.live,
                "expired": s.expired,
                "bytes": s.bytes,
                "oldest_expiry": s.oldest_expiry.map(time_of),
                "newest_expiry": s.newest_expiry.map(time_of),
                "snapshot": s.snapshot,
                "skipped_snapshots": s.skipped_snapshots,
                "replayed": s.replayed,
                "problem": s.problem,
            }),
            Err(e) => json!({ "error": e.to_string() }),
        };
        print_json(&json!({
            "dir": dir.display().to_string(),
            "locked": locked,
            "lock_holder": holder,
            "format_versions": versions,
            "reads_version": inspect::FORMAT_VERSION,
            "bytes": checked.bytes(),
            "files": checked.files.iter().map(file_json).collect::<Vec<_>>(),
            "sessions": sessions,
            "problems": checked.problems.iter().map(problem_json).collect::<Vec<_>>(),
        }));
        return Ok(ExitCode::SUCCESS);
    }
    say!("directory     {}", dir.display());
    let lock = match (locked, holder) {
        (true, Some(pid)) => format!("held by process {pid}{}", process_name(pid)),
        (true, None) => "held: a process has the store open".to_owned(),
        (false, _) => "free: no process has the store open".to_owned(),
    };
    say!("lock          {lock}");
    let versions: Vec<String> = versions.iter().map(u32::to_string).collect();
    say!(
        "format        version {} (this build reads {})",
        if versions.is_empty() {
            "-".to_owned()
        } else {
            versions.join(", ")
        },
        inspect::FORMAT_VERSION
    );
    say!(
        "files         {} ({})",
        checked.files.len(),
        size(checked.bytes())
    );
    for f in &checked.files {
        say!("  {}", file_line(f));
    }
    match &sessions {
        Ok(s) => {
            say!(
                "sessions      {} live ({} of ids and data), {} expired",
                s.live,
                size(s.bytes),
                s.expired
            );
            if let (Some(a), Some(b)) = (s.oldest_expiry, s.newest_expiry) {
                say!("expiry        oldest {}, newest {}", time_of(a), time_of(b));
            }
            let from = s
                .snapshot
                .map_or("no snapshot".to_owned(), |c| format!("snapshot cut {c}"));
            say!("read from     {from}, then {} log records", s.replayed);
            for skipped in &s.skipped_snapshots {
                say!("  skipped snapshot: {skipped}");
            }
        }
        Err(e) => say!("sessions      not readable: {e}"),
    }
    if checked.is_clean() {
        say!("problems      none");
    } else {
        say!("problems      {}", checked.problems.len());
        for p in &checked.problems {
            say!("  {}", problem_line(p));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// ` (name)` of process `pid`, from `/proc/<pid>/comm` where there is one.
fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| format!(" ({})", c.trim()))
        .unwrap_or_default()
}

fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Segment => "segment",
        FileKind::Snapshot => "snapshot",
        FileKind::Prepared => "prepared",
        FileKind::Temporary => "temporary",
        FileKind::TornTail => "torn-tail",
        FileKind::Corrupt => "set-aside",
        FileKind::Lock => "lock",
        _ => "other",
    }
}

fn file_line(f: &FileInfo) -> String {
    let what = match (f.kind, f.seq) {
        (FileKind::Segment, Some((a, b))) => format!("records {a}..={b} ({})", f.records),
        (FileKind::Segment, None) => "no records".to_owned(),
        (FileKind::Snapshot, Some((cut, _))) => format!("cut {cut}, {} sessions", f.records),
        (FileKind::Snapshot, None) => "invalid".to_owned(),
        _ => String::new(),
    };
    format!(
        "{:<40} {:<10} {:>10}  {what}",
        f.name,
        kind_name(f.kind),
        size(f.size)
    )
}

fn file_json(f: &FileInfo) -> Value {
    json!({
        "name": f.name,
        "kind": kind_name(f.kind),
        "size": f.size,
        "version": f.version,
        "first_seq": f.seq.map(|s| s.0),
        "last_seq": f.seq.map(|s| s.1),
        "records": f.records,
    })
}

fn problem_line(p: &Problem) -> String {
    let what = if p.torn_tail {
        " (torn tail: the next open cuts it, keeping its bytes aside)"
    } else {
        ""
    };
    format!(
        "{} at offset {}: {}{what}",
        p.file.display(),
        p.offset,
        p.reason
    )
}

fn problem_json(p: &Problem) -> Value {
    json!({
        "file": p.file.display().to_string(),
        "offset": p.offset,
        "reason": p.reason,
        "torn_tail": p.torn_tail,
    })
}
