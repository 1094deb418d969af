//! The log as a shard knows it: something that appends an operation and gives back its
//! sequence number ([`OpLog`], implemented by the write-ahead log), and the one piece of log
//! state an entry keeps ([`Logged`], the deadline last logged, for touch coalescing).
//!
//! The shard holds the log as `&dyn OpLog`: the call is indirect, but it is made only by a
//! durable store, next to an append that copies the record into the mapped log, and it keeps
//! the shard and the eviction policy free of a type parameter.

use super::durable::wal::Wal;
use super::durable::OpRef;
use crate::error::StoreError;
use crate::sync::{AtomicI64, Ordering};

/// A log of the store's mutations, in the order the shards made them.
pub(crate) trait OpLog {
    /// Appends `op` (it is in the log when this returns); returns its sequence number, which
    /// the caller waits on to be durable.
    fn append(&self, op: OpRef<'_>) -> Result<u64, StoreError>;
}

impl OpLog for Wal {
    #[inline]
    fn append(&self, op: OpRef<'_>) -> Result<u64, StoreError> {
        Wal::append(self, op)
    }
}

/// The log of a call: `None` in a store without one.
pub(crate) type Log<'a> = Option<&'a dyn OpLog>;

/// Logs `op` when there is a log; returns its sequence number.
#[inline]
pub(crate) fn append(log: Log<'_>, op: OpRef<'_>) -> Result<Option<u64>, StoreError> {
    log.map(|l| l.append(op)).transpose()
}

/// The deadline an entry last had in the log: a touch that moves the deadline less than the
/// coalescing window from it is not logged.
pub(crate) struct Logged(AtomicI64);

impl Logged {
    /// An entry just logged (or recovered) with `deadline`.
    #[inline]
    pub(crate) fn new(deadline: i64) -> Self {
        Logged(AtomicI64::new(deadline))
    }

    /// Whether `deadline` is more than `window` past the logged deadline.
    #[inline]
    pub(crate) fn is_behind(&self, deadline: i64, window: i64) -> bool {
        deadline - self.0.load(Ordering::Acquire) > window
    }

    /// Notes that a touch to `deadline` was logged (a racing touch may have logged a later
    /// one: the later is kept).
    #[inline]
    pub(crate) fn touched(&self, deadline: i64) {
        self.0.fetch_max(deadline, Ordering::AcqRel);
    }

    /// Notes that the whole entry was logged with `deadline`.
    #[inline]
    pub(crate) fn set(&self, deadline: i64) {
        self.0.store(deadline, Ordering::Release);
    }
}
