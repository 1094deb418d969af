//! Recovery: the newest valid snapshot, then every log record after its cut.
//!
//! - Leftover temporary files (`*.tmp`) of an interrupted snapshot are removed, and so is a
//!   prepared log segment never put in use (`wal-next.prep`: it holds no record).
//! - Snapshots are tried newest first; a bad one falls back to the previous one (two exist
//!   only after a crash during a snapshot). A bad sole snapshot is an error naming it, unless
//!   salvage, since the log before its cut is gone.
//! - Log records are replayed in sequence order; sequence numbers must be contiguous.
//! - A torn tail (a bad record, or a gap, that no later valid record vouches for as synced)
//!   is cut off: its bytes are first copied aside (`<segment>.torn-<offset>`), then zeroed
//!   (later segments removed) and the segment synced; the report says how many bytes and how
//!   many intact records were in them.
//! - A bad record followed by good ones that vouch for it is corruption: opening fails with
//!   the file and offset, unless salvage is on, which keeps the good prefix, resynchronises
//!   (the next position where a whole record checks out) to keep every intact record after
//!   it in log order, and moves the bad segment (and any after it) aside as `*.corrupt`.
//! - Field changes (apply ops) are replayed on a parsed working form of the session, encoded
//!   once when another kind of op for it, the end of the log, or the bound of working forms
//!   comes: replay costs what the log holds, not its square.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::format::Op;
use super::fs::Storage;
use super::wal::{self, Resume};
use crate::error::OpenError;
use crate::record::Data;

mod replay;
mod scan;
mod tail;

use scan::Scan;

/// What opening a durable store found on disk and did to recover its sessions, returned by
/// [`EmbeddedStore::recovery_report`](crate::EmbeddedStore::recovery_report). Nothing here
/// is lost silently: a torn tail's bytes are moved aside (see `torn_files`), segments
/// salvage set aside are listed, and a skipped snapshot comes with its reason.
///
/// ```no_run
/// let store = sessile::EmbeddedStore::open("/var/lib/myapp/sessions")?;
/// if let Some(r) = store.recovery_report() {
///     if r.torn_bytes > 0 {
///         eprintln!(
///             "cut a torn tail of {} bytes ({} intact records), kept in {:?}",
///             r.torn_bytes, r.torn_intact_records, r.torn_files
///         );
///     }
///     println!("{} sessions restored in {:?}", r.sessions, r.duration);
/// }
/// # Ok::<(), sessile::StoreError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The snapshot loaded, by the sequence number of its cut (`snap-<cut>.rkyv`).
    pub snapshot: Option<u64>,
    /// Snapshots skipped as invalid, each with the reason (naming the file).
    pub skipped_snapshots: Vec<String>,
    /// Log records replayed after the snapshot (including those kept by salvage).
    pub replayed: u64,
    /// The bytes of those records: the log since the snapshot, which counts towards the next
    /// snapshot (`snapshot_after_bytes`).
    pub replayed_bytes: u64,
    /// The first problem met in the log (file, offset and what), if any.
    pub problem: Option<String>,
    /// Bytes cut off the log as a torn tail (0 when the log ended cleanly).
    pub torn_bytes: u64,
    /// Intact records (valid checksums, sequence numbers after the last one replayed) in the
    /// bytes cut as a torn tail: writes that were in the log but never known to be synced.
    pub torn_intact_records: u64,
    /// The files the torn bytes were moved to, in the store's directory
    /// (`wal-<seq>.log.torn-<offset>`).
    pub torn_files: Vec<PathBuf>,
    /// Segments salvage moved aside (`wal-<seq>.log.corrupt`).
    pub salvaged: Vec<PathBuf>,
    /// Records salvage kept after a bad one, by resynchronising (included in `replayed`).
    pub resynced: u64,
    /// Bytes salvage skipped to resynchronise: the bad records.
    pub skipped_bytes: u64,
    /// Sessions live once recovery was done.
    pub sessions: usize,
    /// Sessions dropped because they expired while the store was closed.
    pub expired: usize,
    /// How long opening took, from the lock to the first request it can serve.
    pub duration: Duration,
}

/// Where recovery feeds the state it finds: a store of shards. Ops for one id always go to
/// the same shard, in log order; [`Op::Clear`] goes to every shard, in log order with the
/// ops around it. Different shards may be fed from different threads.
pub(crate) trait Replay: Sync {
    /// The number of shards.
    fn shards(&self) -> usize;
    /// The shard of `sid`.
    fn shard_of(&self, sid: &str) -> usize;
    /// Applies `op` to shard `shard` ([`Op::Clear`]: clears that shard).
    fn apply(&self, shard: usize, op: &Op);
    /// About `sessions` more sessions are coming to shard `shard`: exactly (from a snapshot)
    /// or as an estimate (from the log's length).
    fn expect(&self, shard: usize, sessions: usize, exact: bool);
    /// The data of session `sid` in shard `shard`, expired or not (what an apply op changes),
    /// if the shard holds it.
    fn data(&self, shard: usize, sid: &str) -> Option<Data>;
}

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
