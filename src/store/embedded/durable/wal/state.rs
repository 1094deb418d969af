//! The log's state, shared by appending ([`super`]), rotation ([`super::segment`]) and
//! syncing ([`super::sync`]).

use std::path::PathBuf;
use std::sync::Arc;

use super::policy::{Ack, FsyncPolicy};
use crate::error::Poison;
use crate::store::embedded::durable::storage::{DirHandle, SegmentMap, Storage};
use crate::sync::{AtomicBool, AtomicU64, Condvar, Mutex};

pub(super) struct Active {
    pub(super) map: Arc<dyn SegmentMap>,
    pub(super) pos: usize,
    pub(super) synced_pos: usize,
}

/// A full segment whose tail may not be synced yet.
pub(super) struct Sealed {
    pub(super) map: Arc<dyn SegmentMap>,
    pub(super) from: usize,
    pub(super) to: usize,
}

/// The next segment, prepared off the write path.
pub(super) enum Next {
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

pub(super) struct State {
    /// The last sequence number assigned.
    pub(super) seq: u64,
    pub(super) active: Active,
    pub(super) next: Next,
    pub(super) unsynced: Vec<Sealed>,
    /// First sequence numbers of every segment file, oldest first (the active one last).
    pub(super) segments: Vec<u64>,
    pub(super) bytes_since_cut: u64,
    /// A segment was created since the last sync: the directory must be synced too.
    pub(super) dir_dirty: bool,
    /// The store was closed: every later append and cut is refused
    /// ([`StoreError::Closed`](crate::StoreError::Closed)).
    pub(super) closed: bool,
}

pub(super) struct Waiters {
    pub(super) list: Vec<(u64, Ack)>,
    pub(super) shutdown: bool,
    /// A segment should be prepared (see [`Next::Wanted`]).
    pub(super) prepare: bool,
}

/// The log.
pub(crate) struct Wal {
    pub(super) storage: Arc<dyn Storage>,
    pub(super) dir: PathBuf,
    pub(super) policy: FsyncPolicy,
    pub(super) segment_size: usize,
    pub(super) state: Mutex<State>,
    pub(super) synced_seq: AtomicU64,
    /// Held through a whole sync, so that no sync reports records that another, still
    /// running, has taken to sync.
    pub(super) syncing: Mutex<()>,
    /// The directory, held open (see [`DirHandle`]).
    pub(super) dir_handle: Box<dyn DirHandle>,
    /// Why every write is refused, in full: a failed sync, or the directory gone.
    pub(super) poisoned: Mutex<Option<Poison>>,
    pub(super) is_poisoned: AtomicBool,
    pub(super) waiters: Mutex<Waiters>,
    pub(super) wake: Condvar,
    /// Wakes the preparing thread.
    pub(super) prep_wake: Condvar,
    /// How long each sync took (statistics).
    pub(super) sync_latency: crate::store::latency::Latencies,
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
