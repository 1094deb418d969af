//! The write-ahead log: append-only segment files written through a memory map, and a
//! dedicated sync thread that commits them in groups.
//!
//! A writer encodes its record and copies it into the mapped segment under the log's mutex
//! (the shard lock of the session is held too, so the log's order per session is the memory's
//! order). Once copied, the record is in the page cache: a killed process loses nothing. What
//! a power failure may take depends on the [`FsyncPolicy`]: the sync thread makes the log
//! durable after every batch of waiting writers (`Always`), about once a second (`EverySec`),
//! or only at a clean shutdown (`Never`). A failed sync poisons the log: every waiter of that
//! batch gets the error and every later write fails. Only a sync can: a failure to create,
//! allocate or prepare a segment (no file descriptor left, a directory that cannot be
//! entered, a full disk) is an error for the writes that need the segment, and the next one
//! tries again. The directory is held open for the log's life, so syncing it needs no new
//! file descriptor.
//!
//! The directory is checked at every rotation and about once a second by the sync thread:
//! once it is deleted (or its path leads to another directory), every write is refused, as
//! it would be lost at restart.
//!
//! A segment is allocated whole when the volume has room for it; otherwise it is sized to
//! half the space there is (the rest is left for snapshots), and never smaller than the
//! record that needs it. When even that does not fit, the error says how many bytes were
//! needed and how many are free.
//!
//! Rotation is a swap: as soon as a segment is written to, the next one is prepared off the
//! write path, on a thread of its own (created as [`NEXT_SEGMENT`], allocated, its placeholder
//! header and the directory synced, its pages faulted in), with a whole segment's worth of
//! writes to do it in. A rotation under the mutex then writes the real header into the
//! prepared map and renames it to its final name; only when none is ready does it create one
//! itself, as it would without preparation.
//!
//! A sealed segment is unmapped before its last sync (see [`SegmentMap::unmap_and_sync`]): a
//! sync through the map would interrupt the writers' CPUs once per page.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::format::header::{self, FileKind};
use super::format::{self, OpRef};
use super::fs::{DirHandle, SegmentMap, Storage};
use super::FsyncPolicy;
use crate::error::StoreError;
use crate::sync::{AtomicBool, AtomicU64, Condvar, Mutex, Ordering};

/// Bytes of a segment header.
pub(crate) const SEGMENT_HEADER: usize = header::LEN;
/// The file name of a prepared segment not yet in use. Its header names sequence number 0
/// (no record has it). Recovery removes it: it holds no record until it is renamed.
pub(crate) const NEXT_SEGMENT: &str = "wal-next.prep";

/// The file name of the segment whose first record has `first_seq`.
pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("wal-{first_seq:020}.log")
}

/// The first sequence number named by a segment file name.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// The 32-byte segment header naming `first_seq`.
pub(crate) fn segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER] {
    header::build(FileKind::Segment, first_seq)
}

std::thread_local! {
    /// Each writing thread's buffer for the record it is about to append.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A thread's record buffer is kept for its next record up to this capacity (a rare huge
/// session does not pin its memory to the thread).
const SCRATCH_KEPT: usize = 64 << 10;

struct Active {
    map: Arc<dyn SegmentMap>,
    pos: usize,
    synced_pos: usize,
}

/// A full segment whose tail may not be synced yet.
struct Sealed {
    map: Arc<dyn SegmentMap>,
    from: usize,
    to: usize,
}

/// The next segment, prepared off the write path.
enum Next {
    /// Not asked for yet (no write since the last rotation or since the log was opened).
    Idle,
    /// Asked for; the preparing thread (or a snapshot's cut) will prepare it.
    Wanted,
    /// Being prepared, outside the log's mutex.
    Preparing,
    /// Allocated, header synced, pages faulted in: the next rotation swaps it in.
    Ready(Arc<dyn SegmentMap>),
    /// Preparing failed (a full disk, an I/O error): the next rotation creates its segment
    /// itself and reports any error to the writer; preparing is asked for again after it.
    Failed,
}

struct State {
    /// The last sequence number assigned.
    seq: u64,
    active: Active,
    next: Next,
    unsynced: Vec<Sealed>,
    /// First sequence numbers of every segment file, oldest first (the active one last).
    segments: Vec<u64>,
    bytes_since_cut: u64,
    /// A segment was created since the last sync: the directory must be synced too.
    dir_dirty: bool,
}

/// How often the sync thread checks that the directory is still there.
const DIR_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The smallest segment the preparing thread allocates when the volume has no room for a
/// whole one (a rotation's own segment is as small as its record).
const PREPARED_MIN: usize = 64 << 10;

/// The smallest page size: shrunk segments are whole pages.
const PAGE: usize = 4096;

/// Tells a writer waiting under `Always` that its record is synced, or why it is not.
type Ack = oneshot::Sender<Result<(), Arc<str>>>;
/// The writer's end of an [`Ack`].
pub(crate) type AckWait = oneshot::Receiver<Result<(), Arc<str>>>;

struct Waiters {
    list: Vec<(u64, Ack)>,
    shutdown: bool,
    /// A segment should be prepared (see [`Next::Wanted`]).
    prepare: bool,
}

/// The log.
pub(crate) struct Wal {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    policy: FsyncPolicy,
    segment_size: usize,
    state: Mutex<State>,
    synced_seq: AtomicU64,
    /// Held through a whole sync, so that no sync reports records that another, still
    /// running, has taken to sync.
    syncing: Mutex<()>,
    /// The directory, held open (see [`DirHandle`]).
    dir_handle: Box<dyn DirHandle>,
    /// Why every write is refused, in full: a failed sync, or the directory gone.
    poisoned: Mutex<Option<Arc<str>>>,
    is_poisoned: AtomicBool,
    waiters: Mutex<Waiters>,
    wake: Condvar,
    /// Wakes the preparing thread.
    prep_wake: Condvar,
}

/// Where the log continues after recovery.
pub(crate) struct Resume {
    /// The last sequence number in the log (or in the snapshot, if later).
    pub(crate) seq: u64,
    /// The segment to append to and the offset after its last good record, if any.
    pub(crate) tail: Option<(u64, usize)>,
    /// First sequence numbers of the existing segments, oldest first.
    pub(crate) segments: Vec<u64>,
}

impl Wal {
    /// Opens the log for appending after recovery.
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        policy: FsyncPolicy,
        segment_size: usize,
        resume: Resume,
    ) -> Result<Arc<Wal>, StoreError> {
        let mut segments = resume.segments;
        let dir_handle = storage.open_dir(dir).map_err(|e| {
            StoreError::Io(std::io::Error::new(
                e.kind(),
                format!("opening the session directory {}: {e}", dir.display()),
            ))
        })?;
        let active = match resume.tail {
            Some((first_seq, pos)) => {
                let map: Arc<dyn SegmentMap> =
                    Arc::from(storage.open_segment(&dir.join(segment_name(first_seq)))?);
                Active {
                    map,
                    pos,
                    synced_pos: pos,
                }
            }
            None => {
                let first_seq = resume.seq + 1;
                let map = new_segment(&*storage, dir, first_seq, segment_size, PAGE, true)?;
                dir_handle.sync()?;
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
        }))
    }

    fn poison_error(&self) -> Option<StoreError> {
        if !self.is_poisoned.load(Ordering::Acquire) {
            return None;
        }
        let why = self
            .poisoned
            .lock()
            .clone()
            .unwrap_or_else(|| Arc::from("session log refuses writes"));
        Some(StoreError::Io(std::io::Error::other(why.to_string())))
    }

    /// Checks that the directory is still there; once it is not, refuses every write.
    pub(crate) fn check_dir(&self) -> Result<(), StoreError> {
        if let Some(e) = self.poison_error() {
            return Err(e);
        }
        let Err(e) = self.dir_handle.check() else {
            return Ok(());
        };
        let why: Arc<str> = Arc::from(format!(
            "the session directory {} was deleted or replaced while the store was running \
             ({e}): writes are refused, as they would be lost at restart; restart the store",
            self.dir.display()
        ));
        self.halt(why.clone());
        Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            why.to_string(),
        )))
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

    /// Seals the active segment and starts one whose first record is `first_seq`: the
    /// prepared segment if one is ready (its header written, its file renamed), otherwise a
    /// new one. Nothing is synced here, under the log's mutex: the new segment's header and its
    /// directory entry are made durable by the next sync, before any record in it is
    /// acknowledged as synced.
    fn rotate(&self, st: &mut State, first_seq: u64, need: usize) -> Result<(), StoreError> {
        self.check_dir()?;
        if st.active.pos == SEGMENT_HEADER && st.segments.last() == Some(&first_seq) {
            // The active segment holds no record and is too small for this one (a record over
            // the segment size, or a segment shrunk for a small volume): a new one takes its
            // name, so it goes first.
            return self.replace_empty(st, first_seq, need);
        }
        let need = SEGMENT_HEADER + need;
        let size = self.segment_size.max(need);
        let create = || new_segment(&*self.storage, &self.dir, first_seq, size, need, false);
        let map = match std::mem::replace(&mut st.next, Next::Idle) {
            Next::Ready(map) if map.len() >= need => self.swap_in(map, first_seq)?,
            Next::Ready(map) if map.len() < self.segment_size => {
                // Shrunk for a small volume and too small for this record: its space goes
                // to this rotation's own segment.
                drop(map);
                let _ = self.storage.remove(&self.dir.join(NEXT_SEGMENT));
                create()?
            }
            kept @ (Next::Ready(_) | Next::Preparing) => {
                // Too small for this record, or still being prepared: keep it for later.
                st.next = kept;
                create()?
            }
            Next::Failed => {
                let made = create();
                if made.is_err() {
                    st.next = Next::Failed;
                }
                made?
            }
            Next::Idle | Next::Wanted => create()?,
        };
        let old = std::mem::replace(
            &mut st.active,
            Active {
                map,
                pos: SEGMENT_HEADER,
                synced_pos: 0,
            },
        );
        st.unsynced.push(Sealed {
            map: old.map,
            from: old.synced_pos,
            to: old.pos,
        });
        st.segments.push(first_seq);
        st.dir_dirty = true;
        Ok(())
    }

    /// Replaces the active segment, which holds no record, by one of its name big enough for a
    /// record of `need` bytes.
    fn replace_empty(&self, st: &mut State, first_seq: u64, need: usize) -> Result<(), StoreError> {
        let need = SEGMENT_HEADER + need;
        let path = self.dir.join(segment_name(first_seq));
        let moved = self.dir.join(format!("{}.tmp", segment_name(first_seq)));
        // Moved aside, not removed: if the new one cannot be made, it is put back.
        self.storage.rename(&path, &moved)?;
        let size = self.segment_size.max(need);
        match new_segment(&*self.storage, &self.dir, first_seq, size, need, false) {
            Ok(map) => {
                let _ = self.storage.remove(&moved);
                st.active = Active {
                    map,
                    pos: SEGMENT_HEADER,
                    synced_pos: 0,
                };
                st.dir_dirty = true;
                Ok(())
            }
            Err(e) => {
                let _ = self.storage.rename(&moved, &path);
                Err(e)
            }
        }
    }

    /// Makes the prepared segment the one starting at `first_seq`: its header (a copy into
    /// pages already faulted in) and its name (a rename, no sync).
    fn swap_in(
        &self,
        map: Arc<dyn SegmentMap>,
        first_seq: u64,
    ) -> Result<Arc<dyn SegmentMap>, StoreError> {
        let from = self.dir.join(NEXT_SEGMENT);
        let to = self.dir.join(segment_name(first_seq));
        let swapped = map
            .write(0, &segment_header(first_seq))
            .and_then(|()| self.storage.rename(&from, &to));
        if let Err(e) = swapped {
            drop(map);
            let _ = self.storage.remove(&from);
            return Err(StoreError::Io(std::io::Error::new(
                e.kind(),
                format!("starting log segment {}: {e}", to.display()),
            )));
        }
        Ok(map)
    }

    /// Prepares the next segment if one is wanted (outside the log's mutex); returns whether
    /// it did. Called by the preparing thread, and by a snapshot's cut.
    pub(crate) fn prepare_pending(&self) -> bool {
        {
            let mut st = self.state.lock();
            if !matches!(st.next, Next::Wanted) {
                return false;
            }
            st.next = Next::Preparing;
        }
        let made = prepare_segment(
            &*self.storage,
            &self.dir,
            &*self.dir_handle,
            self.segment_size,
        );
        if let Err(Prep::Sync(e)) = &made {
            // A failed sync of the directory may hide the failure from a later one: the log
            // can no longer promise durability.
            self.poison(std::io::Error::new(e.kind(), e.to_string()));
        }
        let mut st = self.state.lock();
        st.next = match made {
            Ok(map) => Next::Ready(map),
            Err(_) => Next::Failed,
        };
        true
    }

    /// The state of the next segment: "idle", "wanted", "preparing", "ready" or "failed".
    #[cfg(test)]
    pub(crate) fn next_state(&self) -> &'static str {
        match self.state.lock().next {
            Next::Idle => "idle",
            Next::Wanted => "wanted",
            Next::Preparing => "preparing",
            Next::Ready(_) => "ready",
            Next::Failed => "failed",
        }
    }

    /// Waits until the record `seq` is durable under `Always`; returns at once otherwise.
    pub(crate) async fn wait_durable(&self, seq: u64) -> Result<(), StoreError> {
        if self.policy != FsyncPolicy::Always {
            return Ok(());
        }
        let Some(rx) = self.register(seq)? else {
            return Ok(());
        };
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(StoreError::Io(std::io::Error::other(why.to_string()))),
            Err(_) => Err(StoreError::Io(std::io::Error::other(
                "session log closed before the write was synced",
            ))),
        }
    }

    /// Registers a writer waiting for record `seq` to be synced; `None` when it already is.
    pub(crate) fn register(&self, seq: u64) -> Result<Option<AckWait>, StoreError> {
        let mut w = self.waiters.lock();
        if let Some(e) = self.poison_error() {
            return Err(e);
        }
        if self.synced_seq.load(Ordering::Acquire) >= seq {
            return Ok(None);
        }
        let (tx, rx) = oneshot::channel();
        w.list.push((seq, tx));
        self.wake.notify_one();
        Ok(Some(rx))
    }

    /// One group commit: syncs everything appended so far, then answers every waiter the
    /// sync covers (or every waiter, with the error).
    pub(crate) fn sync_round(&self) {
        let result = self.sync_now();
        let mut w = self.waiters.lock();
        let list = std::mem::take(&mut w.list);
        for (seq, tx) in list {
            match &result {
                Ok(done) if *done >= seq => {
                    let _ = tx.send(Ok(()));
                }
                Ok(_) => w.list.push((seq, tx)),
                Err(why) => {
                    let _ = tx.send(Err(why.clone()));
                }
            }
        }
    }

    /// Poisons the log with the failed sync `e`: every later write and sync fails. Returns
    /// the error for the writers whose records the sync was to cover.
    fn poison(&self, e: std::io::Error) -> Arc<str> {
        self.halt(Arc::from(format!(
            "session log is poisoned by an earlier fsync failure, writes are refused: {e}"
        )));
        Arc::from(format!("session log fsync failed: {e}"))
    }

    /// Refuses every later write and sync, for the reason `why` (given in full).
    fn halt(&self, why: Arc<str>) {
        let mut p = self.poisoned.lock();
        if p.is_none() {
            *p = Some(why);
        }
        self.is_poisoned.store(true, Ordering::Release);
    }

    /// Syncs everything appended so far. Returns the durable sequence number.
    /// Sealed segments are truncated to their used length once synced.
    pub(crate) fn sync_now(&self) -> Result<u64, Arc<str>> {
        let _one_at_a_time = self.syncing.lock();
        if let Some(why) = self.poisoned.lock().clone() {
            return Err(why);
        }
        let (target, sealed, active, dir_dirty) = {
            let mut st = self.state.lock();
            let sealed: Vec<Sealed> = std::mem::take(&mut st.unsynced);
            let active = Sealed {
                map: st.active.map.clone(),
                from: st.active.synced_pos,
                to: st.active.pos,
            };
            st.active.synced_pos = st.active.pos;
            (st.seq, sealed, active, std::mem::take(&mut st.dir_dirty))
        };
        let poison = |e: std::io::Error| self.poison(e);
        for mut job in sealed {
            match Arc::get_mut(&mut job.map) {
                Some(map) => map.unmap_and_sync(job.from, job.to),
                // Not expected (syncs run one at a time, and the log lets go of a segment when
                // it seals it); if the map is still shared, syncing through it is as safe.
                None => job.map.sync(job.from, job.to),
            }
            .map_err(poison)?;
            // Only disk space is at stake: a segment left long reads as zeros past its end.
            let _ = job.map.truncate(job.to);
        }
        active.map.sync(active.from, active.to).map_err(poison)?;
        if dir_dirty {
            self.dir_handle.sync().map_err(poison)?;
        }
        self.synced_seq.fetch_max(target, Ordering::AcqRel);
        Ok(target)
    }

    /// The sync thread's loop; returns at shutdown after a final sync.
    #[cfg_attr(sessile_loom, allow(dead_code))]
    pub(crate) fn run_syncer(&self) {
        let mut checked = std::time::Instant::now();
        loop {
            let shutdown = {
                let mut w = self.waiters.lock();
                // Every policy wakes at least once a second, to check the directory.
                let idle = match self.policy {
                    FsyncPolicy::Always => w.list.is_empty(),
                    FsyncPolicy::EverySec | FsyncPolicy::Never => true,
                };
                if idle && !w.shutdown {
                    w = self.wake.wait_for(w, DIR_CHECK_EVERY);
                }
                w.shutdown
            };
            if !shutdown && checked.elapsed() >= DIR_CHECK_EVERY {
                checked = std::time::Instant::now();
                // Once it fails, writes and syncs are refused with its error.
                let _ = self.check_dir();
            }
            let due = shutdown
                || self.policy == FsyncPolicy::EverySec
                || !self.waiters.lock().list.is_empty();
            if due {
                self.sync_round();
            }
            if shutdown {
                return;
            }
        }
    }

    /// The preparing thread's loop: prepares the next segment whenever one is wanted, apart
    /// from the sync thread so that group commits never wait for it; returns at shutdown.
    #[cfg_attr(sessile_loom, allow(dead_code))]
    pub(crate) fn run_preparer(&self) {
        loop {
            {
                let mut w = self.waiters.lock();
                while !w.shutdown && !w.prepare {
                    w = self.prep_wake.wait(w);
                }
                if w.shutdown {
                    return;
                }
                w.prepare = false;
            }
            self.prepare_pending();
        }
    }

    /// Asks the sync thread to sync once more and stop.
    pub(crate) fn shutdown(&self) {
        self.waiters.lock().shutdown = true;
        self.wake.notify_all();
        self.prep_wake.notify_all();
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

    /// The cut for a snapshot: starts a new segment so that every record up to the returned
    /// sequence number is in the segments before it and every later one after.
    pub(crate) fn cut(&self) -> Result<u64, StoreError> {
        // The snapshot's thread can afford to prepare the next segment itself, so the
        // rotation below is a swap.
        {
            let mut st = self.state.lock();
            if st.active.pos > SEGMENT_HEADER && matches!(st.next, Next::Idle) {
                st.next = Next::Wanted;
            }
        }
        self.prepare_pending();
        let mut st = self.state.lock();
        let seq = st.seq;
        if st.active.pos > SEGMENT_HEADER {
            self.rotate(&mut st, seq + 1, 0)?;
        }
        st.bytes_since_cut = 0;
        Ok(seq)
    }

    /// Removes the segments whose records all precede `upto + 1` (they are covered by a
    /// durable snapshot). The active segment is never removed.
    pub(crate) fn remove_segments_through(&self, upto: u64) -> Result<(), StoreError> {
        let doomed: Vec<u64> = {
            let st = self.state.lock();
            st.segments
                .windows(2)
                .filter(|w| w[1] <= upto + 1)
                .map(|w| w[0])
                .collect()
        };
        if doomed.is_empty() {
            return Ok(());
        }
        for first in &doomed {
            self.storage.remove(&self.dir.join(segment_name(*first)))?;
            self.state.lock().segments.retain(|s| s != first);
        }
        self.dir_handle.sync()?;
        Ok(())
    }
}

/// Creates a segment of `size` bytes, or as small as `need` on a volume without room for it
/// (see [`create_sized`]), and writes its header; `sync` makes the header durable at once.
fn new_segment(
    storage: &dyn Storage,
    dir: &Path,
    first_seq: u64,
    size: usize,
    need: usize,
    sync: bool,
) -> Result<Arc<dyn SegmentMap>, StoreError> {
    let path = dir.join(segment_name(first_seq));
    let map = create_sized(storage, dir, &path, size, need).map_err(|e| {
        StoreError::Io(std::io::Error::new(
            e.kind(),
            format!("allocating log segment {}: {e}", path.display()),
        ))
    })?;
    let header = map.write(0, &segment_header(first_seq)).and_then(|()| {
        if sync {
            map.sync(0, SEGMENT_HEADER)
        } else {
            Ok(())
        }
    });
    if let Err(e) = header {
        drop(map);
        let _ = storage.remove(&path);
        return Err(e.into());
    }
    Ok(Arc::from(map))
}

/// Whether `e` says the volume is full.
fn is_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

/// Creates the segment file `path` of `want` bytes. When the volume has no room for it, the
/// segment gets half the space there is (the rest stays for snapshots and the segment after
/// it) in whole pages, but never less than `need`; when even `need` does not fit, the error
/// says how many bytes were needed and how many are free.
fn create_sized(
    storage: &dyn Storage,
    dir: &Path,
    path: &Path,
    want: usize,
    need: usize,
) -> std::io::Result<Box<dyn SegmentMap>> {
    let e = match storage.create_segment(path, want) {
        Ok(map) => return Ok(map),
        Err(e) if is_full(&e) => e,
        Err(e) => return Err(e),
    };
    let free = storage.available(dir).unwrap_or(0);
    let half = usize::try_from(free / 2).unwrap_or(usize::MAX) / PAGE * PAGE;
    let mut len = half.max(need.next_multiple_of(PAGE)).min(want);
    if len as u64 > free {
        len = need;
    }
    let short = |e: std::io::Error| {
        std::io::Error::new(
            e.kind(),
            format!(
                "{e}: the log needs {need} bytes (a segment of {want} wanted) and the volume \
                 of {} has {free} bytes free",
                dir.display()
            ),
        )
    };
    if len == want || len as u64 > free {
        return Err(short(e));
    }
    storage
        .create_segment(path, len)
        .map_err(|e| if is_full(&e) { short(e) } else { e })
}

/// Why preparing a segment failed.
enum Prep {
    /// Creating, allocating or writing it (a full disk): the rotation will try itself.
    Alloc,
    /// A sync: poisons the log.
    Sync(std::io::Error),
}

/// Prepares a segment off the write path: creates [`NEXT_SEGMENT`] (removing a stale one),
/// allocates it (smaller on a volume without room for a whole one, see [`create_sized`]),
/// writes and syncs a placeholder header, syncs the directory and faults its pages in. On
/// any error the file is removed. Only the directory's sync poisons: it covers the names of
/// segments that hold records. The placeholder header holds none.
fn prepare_segment(
    storage: &dyn Storage,
    dir: &Path,
    dir_handle: &dyn DirHandle,
    size: usize,
) -> Result<Arc<dyn SegmentMap>, Prep> {
    let path = dir.join(NEXT_SEGMENT);
    match storage.remove(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Prep::Alloc),
        _ => {}
    }
    let map =
        create_sized(storage, dir, &path, size, PREPARED_MIN.min(size)).map_err(|_| Prep::Alloc)?;
    let done = map
        .write(0, &segment_header(0))
        .and_then(|()| map.sync(0, SEGMENT_HEADER))
        .map_err(|_| Prep::Alloc)
        .and_then(|()| dir_handle.sync().map_err(Prep::Sync));
    if let Err(e) = done {
        drop(map);
        let _ = storage.remove(&path);
        return Err(e);
    }
    map.prefault();
    Ok(Arc::from(map))
}
