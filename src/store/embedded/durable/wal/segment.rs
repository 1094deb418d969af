//! Rotating the log: sealing the active segment and swapping in the next one, preparing it
//! off the write path, cutting the log for a snapshot, and removing the segments a snapshot
//! covers.
//!
//! Rotation is a swap: as soon as a segment is written to, the next one is prepared off the
//! write path, on a thread of its own (created as [`NEXT_SEGMENT`], allocated, its placeholder
//! header and the directory synced, its pages faulted in), with a whole segment's worth of
//! writes to do it in. A rotation under the mutex then writes the real header into the
//! prepared map and renames it to its final name; only when none is ready does it create one
//! itself, as it would without preparation.

use std::sync::Arc;

use super::files::{
    new_segment, prepare_segment, segment_header, segment_name, Prep, NEXT_SEGMENT, SEGMENT_HEADER,
};
use super::state::{Active, Next, Sealed, State, Wal};
use crate::error::StoreError;
use crate::store::embedded::durable::storage::SegmentMap;

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
        crate::events::event!(
            debug,
            dir = %self.dir.display(),
            first_seq,
            size = st.active.map.len(),
            "log segment rotated"
        );
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
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
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
            Err(e) => {
                crate::events::event!(
                    warn,
                    dir = %self.dir.display(),
                    error = ?e,
                    "the next log segment could not be prepared: the next rotation creates one itself"
                );
                Next::Failed
            }
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
            if st.closed {
                return Err(StoreError::Closed);
            }
            if st.active.pos > SEGMENT_HEADER && matches!(st.next, Next::Idle) {
                st.next = Next::Wanted;
            }
        }
        self.prepare_pending();
        let mut st = self.state.lock();
        if st.closed {
            return Err(StoreError::Closed);
        }
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
