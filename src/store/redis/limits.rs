//! Pooling and limits of the Redis store: how many connections, how many calls in flight,
//! and how long each kind of call may take.
//!
//! - **Connections**: one multiplexed connection pipelines every call of every task, which
//!   is enough until one connection's socket and the one task that reads its replies become
//!   the limit (large values, many cores). [`RedisStoreBuilder::connections`] opens several
//!   to one server and spreads calls over them in turn. A cluster already keeps a
//!   connection per node, and a Sentinel-found primary one: the option is for one server.
//! - **In flight**: [`RedisStoreBuilder::max_in_flight`] bounds the store calls running at
//!   once; further calls wait for a turn, and the wait counts against their timeout, so a
//!   Redis that falls behind makes calls fail with [`StoreError::Timeout`] instead of piling
//!   up without bound.
//! - **Timeouts** per kind of call: connecting, reads (`get`), writes (`set`, `apply`,
//!   `touch`, `destroy`) and each page of a key walk (`all`, `len`, `clear`).

use std::time::Duration;

use super::RedisStoreBuilder;
#[cfg(doc)]
use crate::error::StoreError;

/// The kinds of store call, each with its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    Read,
    Write,
    Walk,
}

/// The timeout of each kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timeouts {
    pub(super) connect: Duration,
    pub(super) read: Duration,
    pub(super) write: Duration,
    pub(super) walk: Duration,
}

impl Timeouts {
    /// `d` for every kind (at least a millisecond).
    pub(super) fn all(d: Duration) -> Timeouts {
        let d = at_least_1ms(d);
        Timeouts {
            connect: d,
            read: d,
            write: d,
            walk: d,
        }
    }

    pub(super) fn of(&self, call: Call) -> Duration {
        match call {
            Call::Read => self.read,
            Call::Write => self.write,
            Call::Walk => self.walk,
        }
    }

    /// The longest call timeout: what a single Redis reply may take.
    pub(super) fn longest(&self) -> Duration {
        self.read.max(self.write).max(self.walk)
    }
}

fn at_least_1ms(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

impl RedisStoreBuilder {
    /// How long connecting may take, at [`build`](Self::build) and at each reconnection
    /// (default: [`timeout`](Self::timeout)'s 2 s).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::builder("redis://127.0.0.1/")
    ///     .connect_timeout(std::time::Duration::from_secs(5))
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.timeouts.connect = at_least_1ms(d);
        self
    }

    /// How long a `get` may take, waiting for a turn included (default 2 s). Reads are what
    /// every request waits for first: keep this short.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::builder("redis://127.0.0.1/")
    ///     .read_timeout(std::time::Duration::from_millis(200))
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.timeouts.read = at_least_1ms(d);
        self
    }

    /// How long each of `set`, `apply` (all its compare-and-set attempts), `touch` and
    /// `destroy` may take, waiting for a turn included (default 2 s).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::builder("redis://127.0.0.1/")
    ///     .write_timeout(std::time::Duration::from_millis(500))
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.timeouts.write = at_least_1ms(d);
        self
    }

    /// How long each page of the key walk of `all`, `len` and `clear` may take (`SCAN`, then
    /// `MGET` or `DEL` of its keys; default 2 s).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::builder("redis://127.0.0.1/")
    ///     .walk_timeout(std::time::Duration::from_secs(10))
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn walk_timeout(mut self, d: Duration) -> Self {
        self.timeouts.walk = at_least_1ms(d);
        self
    }

    /// The number of connections to a single server (default 1, at least 1), each a
    /// multiplexed connection that reconnects by itself; calls take them in turn. Ignored
    /// for a cluster and for Sentinel.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::builder("redis://127.0.0.1/")
    ///     .connections(4)
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = n.max(1);
        self
    }

    /// At most `n` store calls in flight at once (default: no bound, at least 1); the others
    /// wait for a turn within their timeout, and fail with `StoreError::Timeout` if none
    /// comes. Bounds what a slow Redis can pile up in the application.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::builder("redis://127.0.0.1/")
    ///     .max_in_flight(256)
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = Some(n.max(1));
        self
    }
}
