//! The store-wide caps: one budget of sessions and bytes for all shards, and the rank that
//! orders victims across shards.

use crate::error::StoreError;
use crate::sync::{AtomicU64, Ordering};

/// While the sessions that never came back are more than 1/`NEW_SHARE` of a shard, they are
/// evicted first.
pub(crate) const NEW_SHARE: usize = 8;

/// The rank of a shard with nothing to evict.
pub(crate) const NO_VICTIM: u64 = u64::MAX;

/// The rank of a victim: lower goes first. `first` for the sessions that never came back
/// while they are over their share; then by the second of the deadline.
pub(crate) fn rank(first: bool, bucket: u32) -> u64 {
    (u64::from(!first) << 32) | u64::from(bucket)
}

/// What a write adds to the store: sessions (0 or 1) and bytes (negative when it shrinks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Need {
    pub(crate) entries: i64,
    pub(crate) bytes: i64,
}

/// The store-wide caps and what the store holds against them.
#[derive(Debug)]
pub(crate) struct Caps {
    max_entries: i64,
    max_bytes: i64,
    entries: AtomicU64,
    bytes: AtomicU64,
}

fn signed(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Caps {
    /// The caps, if there are any (`max_sessions` is at least 1).
    pub(crate) fn new(max_sessions: Option<usize>, max_bytes: Option<usize>) -> Option<Self> {
        if max_sessions.is_none() && max_bytes.is_none() {
            return None;
        }
        Some(Caps {
            max_entries: max_sessions.map_or(i64::MAX, |n| signed(n.max(1))),
            max_bytes: max_bytes.map_or(i64::MAX, signed),
            entries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    /// Records that a shard went from holding `from` (sessions, bytes) to holding `to`.
    pub(crate) fn moved(&self, from: (usize, usize), to: (usize, usize)) {
        let add = |a: &AtomicU64, from: usize, to: usize| {
            if to > from {
                a.fetch_add((to - from) as u64, Ordering::AcqRel);
            } else if from > to {
                a.fetch_sub((from - to) as u64, Ordering::AcqRel);
            }
        };
        add(&self.entries, from.0, to.0);
        add(&self.bytes, from.1, to.1);
    }

    /// Whether the store has room for `need` once a shard that last recorded `recorded` holds
    /// `holds` (its changes not recorded yet).
    pub(crate) fn fits(&self, need: Need, recorded: (usize, usize), holds: (usize, usize)) -> bool {
        let total = |a: &AtomicU64, rec: usize, now: usize, add: i64| {
            signed(a.load(Ordering::Acquire) as usize)
                .saturating_sub(signed(rec))
                .saturating_add(signed(now))
                .saturating_add(add)
        };
        total(&self.entries, recorded.0, holds.0, need.entries) <= self.max_entries
            && total(&self.bytes, recorded.1, holds.1, need.bytes) <= self.max_bytes
    }

    /// The caps as set: (max_sessions, max_bytes).
    pub(crate) fn limits(&self) -> (Option<usize>, Option<usize>) {
        let set = |m: i64| (m != i64::MAX).then(|| usize::try_from(m).unwrap_or(usize::MAX));
        (set(self.max_entries), set(self.max_bytes))
    }

    /// The (sessions, bytes) the store holds, as recorded.
    #[cfg(all(test, not(sessile_loom)))]
    pub(crate) fn counts(&self) -> (usize, usize) {
        (
            self.entries.load(Ordering::Acquire) as usize,
            self.bytes.load(Ordering::Acquire) as usize,
        )
    }

    /// Refuses a session of `bytes` that can never fit, whatever is evicted.
    pub(crate) fn admit(&self, bytes: usize) -> Result<(), StoreError> {
        if signed(bytes) > self.max_bytes {
            return Err(StoreError::Full(format!(
                "a session of {bytes} bytes (id, data and per-session charge) is over the \
                 store's max_bytes of {}",
                self.max_bytes
            )));
        }
        Ok(())
    }
}
