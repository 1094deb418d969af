//! Durability for the embedded store: a memory-mapped write-ahead log, snapshots, recovery.
//!
//! The on-disk formats are described byte by byte in `docs/FORMAT.md`; each module names its
//! section there rather than repeating it.
//!
//! - [`format`]: the bytes, and nothing else: the file header, the log's records, a snapshot
//!   chunk's columns.
//! - [`wal`]: the log: appending, its segments, and the sync thread that makes it durable
//!   according to the [`FsyncPolicy`].
//! - [`snapshot`]: the live sessions at a cut of the log, written, read back and loaded.
//! - [`recovery`]: newest valid snapshot, then the log after it; torn tails cut (their bytes
//!   kept aside, and reported), corruption refused (or salvaged on request).
//! - [`fs`]: the storage seam, real or fault-injecting (tests).
//! - [`inspect`]: the directory read without opening it (no lock, nothing written), for
//!   operators: files, checksums, sessions, whether a process holds the lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::{Corrupted, Corruption, OpenError, StoreError};
use crate::record::Record;
use crate::sync::{thread, AtomicU64, Ordering};

#[cfg(test)]
pub(crate) mod fault;
pub(crate) mod format;
#[cfg(unix)]
pub(crate) mod fs;
#[cfg(unix)]
pub mod inspect;
#[cfg(all(test, sessile_loom))]
mod loom_tests;
pub(crate) mod recovery;
pub(crate) mod snapshot;
pub(crate) mod storage;
#[cfg(test)]
mod tests;
pub(crate) mod wal;

pub(crate) use format::{Op, OpRef};
use storage::Storage;
pub use wal::FsyncPolicy;
use wal::Wal;

/// The durability options (set through [`EmbeddedStoreBuilder`](super::EmbeddedStoreBuilder)).
#[derive(Debug, Clone)]
pub(crate) struct DurableOptions {
    pub(crate) fsync: FsyncPolicy,
    pub(crate) segment_size: usize,
    pub(crate) snapshot_bytes: u64,
    pub(crate) snapshot_interval: Option<Duration>,
    pub(crate) touch_interval_ms: i64,
    pub(crate) salvage: bool,
    /// Snapshots kept: 2 (the newest and a fallback, with the log from the older one) or 1.
    pub(crate) keep_snapshots: usize,
}

impl Default for DurableOptions {
    fn default() -> Self {
        DurableOptions {
            fsync: FsyncPolicy::EverySec,
            segment_size: 16 << 20,
            snapshot_bytes: 64 << 20,
            snapshot_interval: Some(Duration::from_secs(3600)),
            touch_interval_ms: 1000,
            salvage: false,
            keep_snapshots: 2,
        }
    }
}

/// The durable part of an open store.
pub(crate) struct Durable {
    pub(crate) wal: Arc<Wal>,
    #[cfg_attr(sessile_loom, allow(dead_code))]
    pub(crate) opts: DurableOptions,
    storage: Arc<dyn Storage>,
    pub(crate) dir: PathBuf,
    syncer: Mutex<Option<thread::Handle>>,
    preparer: Mutex<Option<thread::Handle>>,
    snapshotting: Mutex<()>,
    /// The log since the newest snapshot that earlier processes left (replayed at open), in
    /// bytes; zero from the first cut on. With the log's own count, what the size threshold
    /// of snapshots is checked against.
    carried: AtomicU64,
    /// How old the newest snapshot was at open (or, with none, the log's oldest segment):
    /// where the snapshot clock starts.
    age_at_open: Option<Duration>,
    /// The directory's lock, released by [`Durable::close`].
    lock: Mutex<Option<Box<dyn Send + Sync>>>,
    /// The last snapshot this process took (statistics).
    pub(crate) last_snapshot: Mutex<Option<crate::SnapshotStats>>,
}

impl Durable {
    /// Locks and recovers `dir` (feeding the recovered state to `target`), then opens the log
    /// and starts its sync thread and the thread that prepares its next segments.
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        opts: DurableOptions,
        lock: bool,
        target: &impl recovery::Replay,
    ) -> Result<(Durable, recovery::RecoveryReport), OpenError> {
        storage.create_dir(dir).map_err(OpenError::io_at(dir))?;
        let lock = if lock { storage.lock(dir)? } else { None };
        let (resume, report) = recovery::recover(&*storage, dir, opts.salvage, target)?;
        // The snapshot clock starts at the newest snapshot on disk, or without one at the
        // last change to the oldest segment (the log is at least that old).
        let clock_from = match report.snapshot {
            Some(cut) => storage.modified(&dir.join(snapshot::snapshot_name(cut))),
            None => resume
                .segments
                .first()
                .and_then(|&s| storage.modified(&dir.join(wal::segment_name(s)))),
        };
        let age_at_open = clock_from.map(|t| {
            std::time::SystemTime::now()
                .duration_since(t)
                .unwrap_or_default()
        });
        let wal = Wal::open(storage.clone(), dir, opts.fsync, opts.segment_size, resume)?;
        let (syncer, preparer) = (
            log_thread(&wal, "sessile-log-sync", Wal::run_syncer).map_err(OpenError::io_at(dir))?,
            log_thread(&wal, "sessile-log-prep", Wal::run_preparer)
                .map_err(OpenError::io_at(dir))?,
        );
        Ok((
            Durable {
                wal,
                opts,
                storage,
                dir: dir.to_owned(),
                syncer: Mutex::new(Some(syncer)),
                preparer: Mutex::new(Some(preparer)),
                snapshotting: Mutex::new(()),
                last_snapshot: Mutex::new(None),
                carried: AtomicU64::new(report.replayed_bytes),
                age_at_open,
                lock: Mutex::new(lock),
            },
            report,
        ))
    }

    /// Takes a snapshot: cuts the log, writes the entries `collect` yields (it is called after
    /// the cut), reads the new file back and checks it, then removes what it made redundant.
    /// Returns the cut and the snapshot's size in bytes. When nothing was logged since the
    /// newest snapshot, that one is the snapshot: nothing is written.
    ///
    /// With two snapshots kept (the default), the previous snapshot and the log from its cut
    /// stay, so a newest snapshot damaged later still falls back to the previous one with
    /// nothing lost; with one, older snapshots and the log before the cut go. Until the new
    /// one is synced, renamed, its directory synced and read back valid, nothing is removed:
    /// a crash at any point leaves a complete state behind (see `docs/FORMAT.md`,
    /// "Snapshots").
    pub(crate) fn snapshot<I, K>(
        &self,
        collect: impl FnOnce() -> I,
    ) -> Result<(u64, u64), StoreError>
    where
        I: Iterator<Item = (K, Record, i64)>,
        K: AsRef<str>,
    {
        let _one_at_a_time = self.snapshotting.lock();
        let cut = self.wal.cut()?;
        // Like the log's own count, the earlier processes' bytes start over at the cut.
        self.carried.store(0, Ordering::Release);
        let existing = snapshot::snapshot_name(cut);
        if self.storage.list(&self.dir)?.contains(&existing) {
            let path = self.dir.join(&existing);
            if let Ok(b) = self.storage.read(&path) {
                if snapshot::verify(&path, b.bytes()).ok() == Some(cut) {
                    // Nothing was logged since this snapshot was taken, and it reads back
                    // valid (a damaged one of the same cut, which recovery skipped, is
                    // written anew).
                    return Ok((cut, b.bytes().len() as u64));
                }
            }
        }
        // The cut's segments must be durable before the snapshot that relies on them.
        self.wal.sync_now().map_err(StoreError::Poisoned)?;
        snapshot::write(&*self.storage, &self.dir, cut, collect())?;
        let bytes = self.read_back(cut)?;
        let mut older: Vec<u64> = self
            .storage
            .list(&self.dir)?
            .iter()
            .filter_map(|n| snapshot::parse_snapshot_name(n))
            .filter(|&s| s < cut)
            .collect();
        older.sort_unstable_by(|a, b| b.cmp(a));
        // The fallback kept besides the new snapshot (the newest older one), if any.
        let fallbacks = self.opts.keep_snapshots.clamp(1, 2) - 1;
        for old in older.iter().skip(fallbacks) {
            self.storage
                .remove(&self.dir.join(snapshot::snapshot_name(*old)))?;
        }
        self.storage.sync_dir(&self.dir)?;
        // Only once no snapshot that needs it can be chosen at recovery is a log segment
        // removed: the log from the oldest kept snapshot stays (all of it while a fallback is
        // wanted and there is no older snapshot yet: recovery then replays it from the start).
        if fallbacks == 0 {
            self.wal.remove_segments_through(cut)?;
        } else if let Some(&previous) = older.first() {
            self.wal.remove_segments_through(previous)?;
        }
        Ok((cut, bytes))
    }

    /// Reads the snapshot just written for `cut` back and checks it whole; one that does not
    /// check out is removed (the previous snapshot and the log from it stay) and reported.
    fn read_back(&self, cut: u64) -> Result<u64, StoreError> {
        let path = self.dir.join(snapshot::snapshot_name(cut));
        let checked = self
            .storage
            .read(&path)
            .map_err(StoreError::from)
            .and_then(|bytes| {
                let seq = snapshot::verify(&path, bytes.bytes())?;
                Ok((seq, bytes.bytes().len() as u64))
            });
        let kept = "the new snapshot did not read back valid, the previous one is kept";
        let c = match checked {
            Ok((seq, len)) if seq == cut => return Ok(len),
            Err(StoreError::Corrupt(mut c)) => {
                c.reason = format!("{kept}: {}", c.reason);
                c
            }
            Err(e) => Corruption::new(Corrupted::Snapshot, format!("{kept}: {e}")).at(&path, None),
            Ok((seq, _)) => Corruption::new(
                Corrupted::Snapshot,
                format!("{kept}: it reads back as cut {seq}"),
            )
            .at(&path, None),
        };
        // Not trusted: the previous snapshot and the log from it stay.
        let _ = self.storage.remove(&path);
        let _ = self.storage.sync_dir(&self.dir);
        Err(StoreError::Corrupt(c))
    }

    /// Log bytes written since the newest snapshot, by this process and (until its first
    /// snapshot) by the processes before it: what the size threshold is checked against.
    #[cfg_attr(sessile_loom, allow(dead_code))]
    pub(crate) fn bytes_since_snapshot(&self) -> u64 {
        self.wal
            .bytes_since_cut()
            .saturating_add(self.carried.load(Ordering::Acquire))
    }

    /// How old the newest snapshot (or, with none, the log) was when the store opened, when
    /// the storage knows: where the snapshot clock starts.
    #[cfg_attr(sessile_loom, allow(dead_code))]
    pub(crate) fn age_at_open(&self) -> Option<Duration> {
        self.age_at_open
    }

    /// Syncs the log now.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.wal
            .sync_now()
            .map(|_| ())
            .map_err(StoreError::Poisoned)
    }

    /// The clean shutdown: waits for a snapshot under way, refuses later writes and
    /// snapshots ([`StoreError::Closed`]), stops the log's threads, removes the prepared
    /// segment, syncs the log (under every policy) and releases the directory's lock.
    /// Reports the final sync's failure; later calls do nothing more and report it again.
    pub(crate) fn close(&self) -> Result<(), StoreError> {
        let _no_snapshot = self.snapshotting.lock();
        self.wal.close();
        self.wal.shutdown();
        if let Some(t) = self.syncer.lock().take() {
            t.join();
        }
        if let Some(t) = self.preparer.lock().take() {
            t.join();
        }
        self.wal.discard_prepared();
        let synced = self.flush();
        drop(self.lock.lock().take());
        synced
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        // The failure was an error event when the sync failed (the log's poisoning).
        let _ = self.close();
    }
}

/// Starts a thread of the log's, named `name`, running `body` on it (under loom, none: the
/// models drive the log's rounds themselves).
fn log_thread(wal: &Arc<Wal>, name: &str, body: fn(&Wal)) -> std::io::Result<thread::Handle> {
    let w = wal.clone();
    thread::spawn(name, move || body(&w))
}
