//! Log segments: their names and headers, creating them (whole, or shrunk on a volume short
//! of space), preparing the next one off the write path, and rotating to it.
//!
//! Rotation is a swap: as soon as a segment is written to, the next one is prepared off the
//! write path, on a thread of its own (created as [`NEXT_SEGMENT`], allocated, its placeholder
//! header and the directory synced, its pages faulted in), with a whole segment's worth of
//! writes to do it in. A rotation under the mutex then writes the real header into the
//! prepared map and renames it to its final name; only when none is ready does it create one
//! itself, as it would without preparation.
//!
//! A segment is allocated whole when the volume has room for it; otherwise it is sized to
//! half the space there is (the rest is left for snapshots), and never smaller than the
//! record that needs it. When even that does not fit, the error says how many bytes were
//! needed and how many are free. See `docs/FORMAT.md`, section "Log segments".

use std::path::Path;
use std::sync::Arc;

use super::{Active, Next, Sealed, State, Wal};
use crate::error::StoreError;
use crate::store::embedded::durable::format::header::{self, FileKind};
use crate::store::embedded::durable::fs::{DirHandle, SegmentMap, Storage};

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

/// The smallest segment the preparing thread allocates when the volume has no room for a
/// whole one (a rotation's own segment is as small as its record).
const PREPARED_MIN: usize = 64 << 10;

/// The smallest page size: shrunk segments are whole pages.
pub(super) const PAGE: usize = 4096;

impl Wal {
    /// Seals the active segment and starts one whose first record is `first_seq`: the
    /// prepared segment if one is ready (its header written, its file renamed), otherwise a
    /// new one. Nothing is synced here, under the log's mutex: the new segment's header and its
    /// directory entry are made durable by the next sync, before any record in it is
    /// acknowledged as synced.
    pub(super) fn rotate(
        &self,
        st: &mut State,
        first_seq: u64,
        need: usize,
    ) -> Result<(), StoreError> {
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
                Err(e.into())
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
pub(super) fn new_segment(
    storage: &dyn Storage,
    dir: &Path,
    first_seq: u64,
    size: usize,
    need: usize,
    sync: bool,
) -> std::io::Result<Arc<dyn SegmentMap>> {
    let path = dir.join(segment_name(first_seq));
    let map = create_sized(storage, dir, &path, size, need).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("allocating log segment {}: {e}", path.display()),
        )
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
        return Err(e);
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
