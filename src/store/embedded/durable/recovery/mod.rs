//! Recovery: the newest valid snapshot, then every log record after its cut; a torn tail cut
//! (its bytes kept aside, and reported), corruption refused (or salvaged on request).
//!
//! What it does, step by step, is `docs/FORMAT.md`, section "Recovery". Here:
//! [`scan`] reads what is on disk and changes nothing, [`replay`] feeds it to the store (on
//! threads of their own when there are CPUs to spare), [`tail`] deals with the first problem
//! the log has, and [`report`] holds what the open reports.

use std::path::Path;

use super::storage::Storage;
use super::wal::{self, Resume};
use crate::error::OpenError;

mod replay;
mod report;
mod scan;
mod tail;

pub use report::RecoveryReport;
pub(crate) use report::Replay;
#[cfg(unix)]
pub(crate) use scan::used_end;
use scan::Scan;

/// Recovers the directory: feeds the state to `target` and says where the log continues.
pub(crate) fn recover(
    storage: &dyn Storage,
    dir: &Path,
    salvage: bool,
    target: &impl Replay,
) -> Result<(Resume, RecoveryReport), OpenError> {
    let names = storage.list(dir).map_err(OpenError::io_at(dir))?;
    remove_leftovers(storage, dir, &names)?;
    let mut scanned = replay::feed(target, |sink| {
        scan::scan(storage, dir, &names, salvage, sink)
    })
    .map_err(OpenError::io_at(dir))??;
    if let Some(problem) = scanned.problem.take() {
        tail::settle(storage, dir, &names, salvage, &mut scanned, problem)?;
    }
    let Scan {
        report,
        segments,
        from,
        expected,
        tail,
        kept,
        ..
    } = scanned;
    // Segments before `from` are fully covered by the snapshot; keep them listed so they are
    // removed with a later snapshot.
    let mut all = segments[..from].to_vec();
    all.extend(kept);
    if tail.is_none() {
        all.retain(|s| *s < expected);
    }
    Ok((
        Resume {
            seq: expected - 1,
            tail,
            segments: all,
        },
        report,
    ))
}

/// Reads the directory as [`recover`] does, changing nothing on disk (no leftover removed, no
/// torn tail cut, no salvage): feeds `target` the state an open would start from, and reports
/// the first problem of the log (`report.problem`) instead of dealing with it. What
/// `inspect` counts sessions with, while a server may hold the directory.
#[cfg(unix)]
pub(crate) fn read_only(
    storage: &dyn Storage,
    dir: &Path,
    target: &impl Replay,
) -> Result<RecoveryReport, OpenError> {
    let names = storage.list(dir).map_err(OpenError::io_at(dir))?;
    let scanned = replay::feed(target, |sink| scan::scan(storage, dir, &names, false, sink))
        .map_err(OpenError::io_at(dir))??;
    let mut report = scanned.report;
    report.problem = scanned.problem.map(|p| p.why);
    Ok(report)
}

/// Removes the leftover temporary files (`*.tmp`) and the prepared segment never put in use.
fn remove_leftovers(storage: &dyn Storage, dir: &Path, names: &[String]) -> Result<(), OpenError> {
    let mut removed = false;
    for n in names
        .iter()
        .filter(|n| n.ends_with(".tmp") || *n == wal::NEXT_SEGMENT)
    {
        let path = dir.join(n);
        storage.remove(&path).map_err(OpenError::io_at(&path))?;
        removed = true;
    }
    if removed {
        storage.sync_dir(dir).map_err(OpenError::io_at(dir))?;
    }
    Ok(())
}
