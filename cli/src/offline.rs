//! The commands that open the store as a server would (taking its lock, refusing while
//! another process holds it): `compact`, `salvage`, `get`, `destroy`.

use std::path::Path;
use std::process::ExitCode;

use serde_json::{json, Value};
use sessile::{EmbeddedStore, EmbeddedStoreBuilder, RecoveryReport};

use crate::error::{require_dir, Failure};
use crate::output::{print_json, say, size};

/// The options every offline open starts from: no timed snapshot while the command runs.
pub(crate) fn builder() -> EmbeddedStoreBuilder {
    EmbeddedStore::builder().snapshot_interval(None)
}

/// Opens the store of an existing `dir` with `builder` (a missing directory is an error,
/// not a new store).
pub(crate) fn open_existing(
    dir: &Path,
    builder: EmbeddedStoreBuilder,
) -> Result<EmbeddedStore, Failure> {
    require_dir(dir)?;
    Ok(builder.open(dir)?)
}

/// The bytes of the files in `dir`.
fn dir_bytes(dir: &Path) -> Result<u64, Failure> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let meta = e?.metadata()?;
        if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

/// `sessile compact DIR`: a snapshot, and the log it covers removed.
pub(crate) fn compact(dir: &Path, keep: u8, json: bool) -> Result<ExitCode, Failure> {
    let before = if dir.is_dir() { dir_bytes(dir)? } else { 0 };
    // A small segment size: the segment after the cut, allocated whole, holds no record
    // yet (a server opening it later moves on to segments of its own size).
    let compacting = builder()
        .keep_snapshots(usize::from(keep))
        .segment_size(64 << 10);
    let store = open_existing(dir, compacting)?;
    let cut = store.snapshot()?.unwrap_or(0);
    // Nothing changed since the open: the sessions it restored are the snapshot's.
    let sessions = store.recovery_report().map_or(0, |r| r.sessions);
    drop(store);
    let after = dir_bytes(dir)?;
    if json {
        print_json(&json!({
            "cut": cut,
            "sessions": sessions,
            "bytes_before": before,
            "bytes_after": after,
        }));
    } else {
        say!("snapshot at cut {cut} holds {sessions} sessions; the log it covers is removed");
        say!("directory {} -> {}", size(before), size(after));
    }
    Ok(ExitCode::SUCCESS)
}

/// `sessile salvage DIR`: opens with salvage and prints the recovery report.
pub(crate) fn salvage(dir: &Path, json: bool) -> Result<ExitCode, Failure> {
    let store = open_existing(dir, builder().salvage(true))?;
    let report = store.recovery_report().cloned().unwrap_or_default();
    drop(store);
    if json {
        print_json(&report_json(&report));
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn report_json(r: &RecoveryReport) -> Value {
    let paths = |v: &[std::path::PathBuf]| -> Vec<String> {
        v.iter().map(|p| p.display().to_string()).collect()
    };
    json!({
        "snapshot": r.snapshot,
        "skipped_snapshots": r.skipped_snapshots,
        "replayed": r.replayed,
        "replayed_bytes": r.replayed_bytes,
        "problem": r.problem,
        "torn_bytes": r.torn_bytes,
        "torn_intact_records": r.torn_intact_records,
        "torn_files": paths(&r.torn_files),
        "salvaged": paths(&r.salvaged),
        "resynced": r.resynced,
        "skipped_bytes": r.skipped_bytes,
        "sessions": r.sessions,
        "expired": r.expired,
        "duration_ms": r.duration.as_secs_f64() * 1000.0,
    })
}

fn print_report(r: &RecoveryReport) {
    match r.snapshot {
        Some(cut) => say!("snapshot        cut {cut}"),
        None => say!("snapshot        none"),
    }
    for s in &r.skipped_snapshots {
        say!("  skipped: {s}");
    }
    say!(
        "log             {} records replayed ({}), {} of them kept past damage",
        r.replayed,
        size(r.replayed_bytes),
        r.resynced
    );
    if let Some(p) = &r.problem {
        say!("problem         {p}");
    }
    if r.skipped_bytes > 0 {
        say!(
            "skipped         {} of damaged records",
            size(r.skipped_bytes)
        );
    }
    if r.torn_bytes > 0 {
        say!(
            "torn tail       {} cut ({} intact records in it), kept in:",
            size(r.torn_bytes),
            r.torn_intact_records
        );
        for f in &r.torn_files {
            say!("  {}", f.display());
        }
    }
    if r.salvaged.is_empty() {
        say!("moved aside     nothing");
    } else {
        say!("moved aside     (a snapshot now holds what they kept)");
        for f in &r.salvaged {
            say!("  {}", f.display());
        }
    }
    say!(
        "sessions        {} kept, {} expired dropped, in {:.1} ms",
        r.sessions,
        r.expired,
        r.duration.as_secs_f64() * 1000.0
    );
}

/// `sessile get DIR ID`: the session's express JSON; 1 when there is none.
pub(crate) fn get(dir: &Path, id: &str, json: bool) -> Result<ExitCode, Failure> {
    let store = open_existing(dir, builder())?;
    let found = store.get_now(id);
    drop(store);
    let Some(record) = found else {
        eprintln!("sessile: no live session {id:?}");
        return Ok(ExitCode::FAILURE);
    };
    if json {
        say!("{}", crate::transfer::line(id, &record));
    } else {
        say!("{}", record.to_json());
    }
    Ok(ExitCode::SUCCESS)
}

/// `sessile destroy DIR ID`: removes it (synced before returning); 1 when there is none.
pub(crate) fn destroy(dir: &Path, id: &str, json: bool) -> Result<ExitCode, Failure> {
    let store = open_existing(dir, builder())?;
    let found = store.get_now(id).is_some();
    if found {
        store.destroy_now(id)?;
        store.flush()?;
    }
    drop(store);
    if json {
        print_json(&json!({ "id": id, "destroyed": found }));
    } else if found {
        say!("destroyed {id}");
    } else {
        eprintln!("sessile: no live session {id:?}");
    }
    Ok(if found {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
