//! The embedded store's policy: which entries a shard frees and when, working on the shard's
//! map (`map.rs`: the slab, the wheel, the shapes) under the lock the shard holds. As in moka,
//! where the map (`cht`) is apart from the policy (`timer_wheel`, `housekeeper`).
//!
//! - **Expiry** ([`sweep`]). Due buckets of the wheel are swept a budget at a time: an entry
//!   whose deadline passed is freed, one touched since it was placed goes to its bucket. Once
//!   most of a shard is gone, its slab is packed and memory given back (not while a snapshot
//!   copies it).
//! - **One budget** ([`caps`]). [`Caps`] counts the sessions and bytes of the whole store (each
//!   shard adds what it changed, under its lock), so a session smaller than `max_bytes` is
//!   kept whatever shard it lands in; one larger than the whole cap is refused with
//!   [`StoreError::Full`](crate::StoreError::Full).
//! - **Room before the write** ([`evict`]). A write that would pass a cap first evicts, under
//!   its own shard's lock, as long as that shard holds the store's best victim; otherwise it
//!   lets go of its lock, evicts in the shard that holds it (`room.rs`), and tries again. The
//!   session being written is never its own victim. Writes racing at the same moment may
//!   pass a cap by what they add; the next write brings the store back under it.
//! - **Who goes.** Every entry knows whether it came back (was read, touched or changed)
//!   since it was stored. While the sessions that never came back are more than
//!   1/[`NEW_SHARE`](caps::NEW_SHARE) of a shard (a flood of anonymous visitors, say), they are evicted first,
//!   oldest first; below that share, the session closest to expiry goes, whichever kind it is
//!   (so a new visitor is not turned away by idle ones). As in moka's TinyLFU, a session that
//!   came back is worth more than one that never did.
//! - **Logged.** In a durable store an eviction is logged like a destroy before the session
//!   is dropped. If the log refuses it, the session is kept and the write that needed the
//!   room fails with the log's error, storing nothing (the evictions logged before it stay
//!   made): an evicted session never comes back after a restart, and a session in memory is
//!   in the log.

mod caps;
mod evict;
#[cfg(all(test, sessile_loom))]
mod loom_tests;
mod sweep;
#[cfg(all(test, not(sessile_loom)))]
mod tests;

pub(crate) use caps::{Caps, Need, NO_VICTIM};
pub(crate) use evict::{Elsewhere, Evicted, Written};
