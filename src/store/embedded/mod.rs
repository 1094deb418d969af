//! The embedded store, the default: sessions in this process's memory, lock-sharded.
//!
//! - **Shards.** Ids hash (ahash) to one of N shards, each a map under its own
//!   reader-writer lock, so requests of different sessions rarely meet on a lock.
//! - **Expiry.** Every entry carries its deadline as an atomic, checked on every read: an
//!   expired session is never returned. A touch that only moves the deadline takes the read
//!   lock. A per-shard wheel of one-second buckets finds expired entries without scanning
//!   (`expiry`); a background thread sweeps due buckets in small budgets, and writes sweep a
//!   little as they pass. Memory is given back as sessions expire.
//! - **Idle expiry for browser-session cookies.** A session whose cookie has no `expires`
//!   (express's `maxAge: null`) would live forever in express's MemoryStore. Here it expires
//!   after [`EmbeddedStoreBuilder::default_ttl`] without a request (default one day, as
//!   connect-redis does), so the store never leaks.
//! - **Caps.** Optional limits on sessions and bytes, for the whole store; past them the
//!   sessions that never came back go first, then those closest to expiry (`policy/`).
//!
//! Every mutation passes through one method per kind (`set`, `apply`, `touch`, `destroy`,
//! `clear`) so that a write-ahead log can record them in one place.
//!
//! The rooms, from the outside in:
//! - `store.rs`: [`EmbeddedStore`] and its [`SessionStore`](crate::SessionStore) calls,
//!   each routed to one shard with the call's context (`context.rs`: the time, the expiry
//!   settings, the log); `builder.rs`: [`EmbeddedStoreBuilder`] and the constructors;
//!   `background.rs`: the sweeper and snapshotter threads;
//! - `shard/`: one shard's lock and the order of each call (check, log, change);
//!   `room.rs`: making room across shards for a write under the caps;
//! - `policy/`: expiry sweeps, compaction, caps and eviction, working on the data;
//! - `map.rs`, `slab.rs`, `index.rs`, `expiry.rs`, `shape.rs`, `owners.rs`: the data of a
//!   shard (entries, their id index, the expiry wheel, the cookie shapes, the owner index);
//! - `log.rs`: the log as a shard knows it (`OpLog`: append an operation, get its sequence
//!   number), implemented by the write-ahead log of `durable/`.

mod background;
mod builder;
mod context;
pub(crate) mod durable;
mod expiry;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod log;
mod map;
mod owners;
mod policy;
mod room;
mod shape;
mod shard;
mod slab;
mod stats;
mod store;

pub use builder::EmbeddedStoreBuilder;
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub use durable::inspect;
pub use durable::recovery::RecoveryReport;
pub use durable::FsyncPolicy;
pub use stats::{LogStats, SnapshotStats, Stats};
pub use store::EmbeddedStore;
