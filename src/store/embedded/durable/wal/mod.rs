//! The write-ahead log: append-only segment files written through a memory map
//! ([`segment`]: naming, creating, preparing and rotating them) and a dedicated thread that
//! syncs them in groups ([`sync`]: the [`FsyncPolicy`], group commit, poisoning).
//!
//! Layout of segments and records: `docs/FORMAT.md`, sections "Log segments" and "Record".
//!
//! A writer encodes its record and copies it into the mapped segment under the log's mutex
//! (the shard lock of the session is held too, so the log's order per session is the memory's
//! order). Once copied, the record is in the page cache: a killed process loses nothing. What
//! a power failure may take depends on the [`FsyncPolicy`]. A failed sync poisons the log:
//! every waiter of that batch gets the error and every later write fails. Only a sync can: a
//! failure to create, allocate or prepare a segment (no file descriptor left, a directory that
//! cannot be entered, a full disk) is an error for the writes that need the segment, and the
//! next one tries again. The directory is held open for the log's life, so syncing it needs
//! no new file descriptor; it is checked at every rotation and about once a second by the
//! sync thread: once it is deleted (or its path leads to another directory), every write is
//! refused, as it would be lost at restart.

use std::path::Path;
use std::sync::Arc;

use super::format::{self, OpRef};
use super::storage::{SegmentMap, Storage};
use crate::error::{OpenError, Poison, PoisonCause, StoreError};
use crate::sync::{AtomicBool, AtomicU64, Condvar, Mutex, Ordering};

mod files;
mod policy;
mod segment;
mod state;
mod sync;

#[cfg(test)]
pub(crate) use files::segment_header;
use files::{new_segment, PAGE};
pub(crate) use files::{parse_segment_name, segment_name, NEXT_SEGMENT, SEGMENT_HEADER};
pub use policy::FsyncPolicy;
use state::{Active, Next, State, Waiters};
pub(crate) use state::{Resume, Wal};

std::thread_local! {
    /// Each writing thread's buffer for the record it is about to append.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A thread's record buffer is kept for its next record up to this capacity (a rare huge
/// session does not pin its memory to the thread).
const SCRATCH_KEPT: usize = 64 << 10;

impl Wal {
    /// Opens the log for appending after recovery.
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        policy: FsyncPolicy,
        segment_size: usize,
        resume: Resume,
    ) -> Result<Arc<Wal>, OpenError> {
        let mut segments = resume.segments;
        let dir_handle = storage.open_dir(dir).map_err(OpenError::io_at(dir))?;
        let active = match resume.tail {
            Some((first_seq, pos)) => {
                let path = dir.join(segment_name(first_seq));
                let map = storage
                    .open_segment(&path)
                    .map_err(OpenError::io_at(&path))?;
                let map: Arc<dyn SegmentMap> = Arc::from(map);
                Active {
                    map,
                    pos,
                    synced_pos: pos,
                }
            }
            None => {
                let first_seq = resume.seq + 1;
                let path = dir.join(segment_name(first_seq));
                let map = new_segment(&*storage, dir, first_seq, segment_size, PAGE, true)
                    .map_err(OpenError::io_at(&path))?;
                dir_handle.sync().map_err(OpenError::io_at(dir))?;
                segments.push(first_seq);
                Active {
                    map,
                    pos: SEGMENT_HEADER,
                    synced_pos: SEGMENT_HEADER,
                }
            }
        };
        Ok(Arc::new(Wal {
            storage,
            dir: dir.to_owned(),
            policy,
            segment_size,
            state: Mutex::new(State {
                seq: resume.seq,
                active,
                next: Next::Idle,
                unsynced: Vec::new(),
                segments,
                bytes_since_cut: 0,
                dir_dirty: false,
                closed: false,
            }),
            synced_seq: AtomicU64::new(resume.seq),
            syncing: Mutex::new(()),
            dir_handle,
            poisoned: Mutex::new(None),
            is_poisoned: AtomicBool::new(false),
            waiters: Mutex::new(Waiters {
                list: Vec::new(),
                shutdown: false,
                prepare: false,
            }),
            wake: Condvar::new(),
            prep_wake: Condvar::new(),
            sync_latency: Default::default(),
        }))
    }

    /// Why every write is refused, once the log is poisoned.
    fn poison_error(&self) -> Option<StoreError> {
        if !self.is_poisoned.load(Ordering::Acquire) {
            return None;
        }
        // Set before the flag, under the lock.
        self.poisoned.lock().clone().map(StoreError::Poisoned)
    }

    /// Checks that the directory is still there; once it is not, refuses every write.
    pub(crate) fn check_dir(&self) -> Result<(), StoreError> {
        if let Some(e) = self.poison_error() {
            return Err(e);
        }
        let Err(e) = self.dir_handle.check() else {
            return Ok(());
        };
        let why = Poison {
            cause: PoisonCause::DirectoryGone,
            dir: self.dir.clone(),
            reason: e.to_string(),
        };
        self.halt(why.clone());
        Err(StoreError::Poisoned(why))
    }

    /// Appends one record and returns its sequence number. When this returns `Ok`, the record
    /// is in the mapped log (the page cache). A record whose payload is over
    /// [`format::MAX_PAYLOAD`] is refused ([`StoreError::Full`]).
    ///
    /// The record is encoded and its payload checksummed before the log's mutex is taken, in
    /// a buffer of the calling thread's; under the mutex only its header (sequence numbers,
    /// checksum) is filled in and the record copied into the map.
    pub(crate) fn append(&self, op: OpRef<'_>) -> Result<u64, StoreError> {
        if let Some(e) = self.poison_error() {
            return Err(e);
        }
        SCRATCH.with(|cell| {
            let mut buf = cell.take();
            let rec = format::Unsealed::encode(op, &mut buf);
            let payload = buf.len() - format::HEADER;
            let result = if payload > format::MAX_PAYLOAD {
                // Recovery would refuse such a record: it is refused here, and nothing changes.
                Err(StoreError::Full(format!(
                    "a log record of {payload} bytes is over the limit of {} MiB",
                    format::MAX_PAYLOAD >> 20
                )))
            } else {
                self.append_unsealed(&rec, &mut buf)
            };
            if buf.capacity() <= SCRATCH_KEPT {
                cell.set(buf);
            }
            result
        })
    }

    fn append_unsealed(&self, rec: &format::Unsealed, buf: &mut [u8]) -> Result<u64, StoreError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(StoreError::Closed);
        }
        let seq = st.seq + 1;
        rec.seal(buf, seq, self.synced_seq.load(Ordering::Acquire));
        self.append_encoded(&mut st, seq, buf)?;
        st.seq = seq;
        Ok(seq)
    }

    fn append_encoded(&self, st: &mut State, seq: u64, rec: &[u8]) -> Result<(), StoreError> {
        if st.active.pos + rec.len() > st.active.map.len() {
            self.rotate(st, seq, rec.len())?;
        }
        st.active.map.write(st.active.pos, rec)?;
        st.active.pos += rec.len();
        st.bytes_since_cut += rec.len() as u64;
        if matches!(st.next, Next::Idle) {
            st.next = Next::Wanted;
            // Lock order: the state, then the waiters (nothing takes them the other way).
            self.waiters.lock().prepare = true;
            self.prep_wake.notify_one();
        }
        Ok(())
    }

    /// Poisons the log with the failed sync `e`: every later write and sync fails. Returns
    /// the error for the writers whose records the sync was to cover.
    fn poison(&self, e: std::io::Error) -> Poison {
        let why = Poison {
            cause: PoisonCause::SyncFailed,
            dir: self.dir.clone(),
            reason: e.to_string(),
        };
        self.halt(why.clone());
        why
    }

    /// Refuses every later write and sync, for the reason `why` (the first one is kept).
    fn halt(&self, why: Poison) {
        let mut p = self.poisoned.lock();
        if p.is_none() {
            crate::events::event!(
                error,
                cause = ?why.cause,
                dir = %why.dir.display(),
                reason = %why.reason,
                "the session log is poisoned: every write fails until the store is reopened"
            );
            *p = Some(why);
        }
        self.is_poisoned.store(true, Ordering::Release);
    }

    /// The log's figures for [`Stats`](crate::Stats) (all but the snapshot's).
    pub(crate) fn stats(&self) -> crate::LogStats {
        let (syncs, p50, p99, max) = self.sync_latency.summary();
        let (segments, bytes_since_cut) = {
            let st = self.state.lock();
            (st.segments.len(), st.bytes_since_cut)
        };
        crate::LogStats {
            segments,
            bytes_since_snapshot: bytes_since_cut,
            last_snapshot: None,
            syncs,
            sync_p50_us: p50,
            sync_p99_us: p99,
            sync_max_us: max,
            writes_waiting: self.waiters.lock().list.len(),
            poisoned: self.is_poisoned.load(Ordering::Acquire),
        }
    }

    /// Refuses every later append and cut: an append either finished before (and the final
    /// sync covers it) or fails with [`StoreError::Closed`].
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
    }

    /// At a clean shutdown, once the log's threads have stopped: drops the prepared segment
    /// and removes its file, so a stopped store leaves no unused allocation on disk. (A crash
    /// leaves it; the next open removes it.) Best effort: a file that cannot be removed now is
    /// removed at the next open.
    pub(crate) fn discard_prepared(&self) {
        let next = std::mem::replace(&mut self.state.lock().next, Next::Idle);
        // The map is unmapped before its file goes.
        drop(next);
        let _ = self.storage.remove(&self.dir.join(NEXT_SEGMENT));
    }

    /// Bytes appended since the last snapshot cut.
    #[cfg_attr(sessile_loom, allow(dead_code))]
    pub(crate) fn bytes_since_cut(&self) -> u64 {
        self.state.lock().bytes_since_cut
    }
}
