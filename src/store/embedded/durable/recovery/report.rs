//! What recovery reports ([`RecoveryReport`]) and what it feeds ([`Replay`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::record::Data;
use crate::store::embedded::durable::format::Op;

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
