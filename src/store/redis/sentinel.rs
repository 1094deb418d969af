//! Redis Sentinel (feature `redis-sentinel`): [`RedisStore::sentinel`] finds the primary of
//! a monitored service through its sentinels, and finds it again after a failover.
//!
//! redis-rs's `SentinelClient` asks the sentinels for the primary's address (and checks that
//! the server there calls itself a primary) each time it connects, but keeps no connection
//! itself, and its `ConnectionManager` reconnects to one fixed address. So the store keeps
//! one multiplexed connection to the primary here and drops it when a call on it fails in a
//! way that says the primary is gone or no longer primary (I/O error, timeout, refused,
//! `READONLY` from a demoted primary, `MASTERDOWN`); the next call asks the sentinels again.
//! The failed call itself fails with [`StoreError::Unavailable`] or [`StoreError::Timeout`]
//! (nothing is retried, so no write can happen twice); calls succeed again once the
//! sentinels have promoted a replica, without restarting the application.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ::redis::aio::{ConnectionLike, MultiplexedConnection};
use ::redis::sentinel::{SentinelClient, SentinelServerType};
use ::redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult,
    ServerErrorKind, Value,
};
use parking_lot::Mutex;

use super::conn::{connect_error, Conn, Target};
use super::{RedisStore, RedisStoreBuilder};
use crate::error::StoreError;

impl RedisStore {
    /// Options for a store on the primary of the service `service` (the name of
    /// `sentinel monitor <name> ...`), found through these sentinels (`redis://host:26379`
    /// URLs; one reachable sentinel is enough). After a failover the store finds the new
    /// primary by itself; every other option is the single server's. Feature
    /// `redis-sentinel`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::sentinel(
    ///     [
    ///         "redis://10.0.0.1:26379",
    ///         "redis://10.0.0.2:26379",
    ///         "redis://10.0.0.3:26379",
    ///     ],
    ///     "sessions",
    /// )
    /// .build()
    /// .await?;
    /// # Ok(()) }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-sentinel")))]
    pub fn sentinel<S: Into<String>>(
        sentinels: impl IntoIterator<Item = S>,
        service: impl Into<String>,
    ) -> RedisStoreBuilder {
        let mut builder = RedisStore::builder(String::new());
        builder.target = Target::Sentinel {
            sentinels: sentinels.into_iter().map(Into::into).collect(),
            service: service.into(),
        };
        builder
    }
}

/// The primary of a Sentinel-monitored service, reconnected through the sentinels when it
/// fails. Clones share the connection.
#[derive(Clone)]
pub(super) struct SentinelConn {
    shared: Arc<Shared>,
}

struct Shared {
    /// Asks the sentinels; one lookup at a time.
    client: tokio::sync::Mutex<SentinelClient>,
    /// The connection to the primary and its generation, while it works.
    conn: Mutex<Option<(u64, MultiplexedConnection)>>,
    generations: AtomicU64,
    config: AsyncConnectionConfig,
}

pub(super) async fn connect(
    builder: &RedisStoreBuilder,
    sentinels: &[String],
    service: &str,
) -> Result<Conn, StoreError> {
    // `build` takes a `String` without TLS and `impl AsRef<str>` with it.
    #[allow(clippy::unnecessary_to_owned)]
    let client = SentinelClient::build(
        sentinels.to_vec(),
        service.to_owned(),
        None,
        SentinelServerType::Master,
    )
    .map_err(|e| StoreError::backend(format!("invalid Redis Sentinel URLs: {e}")))?;
    let conn = SentinelConn {
        shared: Arc::new(Shared {
            client: tokio::sync::Mutex::new(client),
            conn: Mutex::new(None),
            generations: AtomicU64::new(0),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(builder.timeouts.connect))
                .set_response_timeout(Some(builder.timeouts.longest())),
        }),
    };
    conn.current()
        .await
        .map_err(|e| connect_error(builder, e))?;
    Ok(Conn::Sentinel(conn))
}

/// Whether a failed call means the connection no longer reaches a working primary.
fn primary_lost(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
}

impl SentinelConn {
    /// The working connection, or a new one to the primary the sentinels name now.
    async fn current(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(conn) = self.shared.conn.lock().clone() {
            return Ok(conn);
        }
        let mut client = self.shared.client.lock().await;
        // Another call may have reconnected while this one waited.
        if let Some(conn) = self.shared.conn.lock().clone() {
            return Ok(conn);
        }
        let conn = client
            .get_async_connection_with_config(&self.shared.config)
            .await?;
        let generation = self.shared.generations.fetch_add(1, Ordering::Relaxed);
        *self.shared.conn.lock() = Some((generation, conn.clone()));
        Ok((generation, conn))
    }

    /// Drops the connection of `generation` after `e`, if `e` says the primary is lost (a
    /// newer connection is kept).
    fn failed(&self, generation: u64, e: &RedisError) {
        if !primary_lost(e) {
            return;
        }
        let mut slot = self.shared.conn.lock();
        if slot.as_ref().is_some_and(|(g, _)| *g == generation) {
            *slot = None;
        }
    }
}

impl ConnectionLike for SentinelConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let (generation, mut conn) = self.current().await?;
            let reply = conn.req_packed_command(cmd).await;
            if let Err(e) = &reply {
                self.failed(generation, e);
            }
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let (generation, mut conn) = self.current().await?;
            let reply = conn.req_packed_commands(cmd, offset, count).await;
            if let Err(e) = &reply {
                self.failed(generation, e);
            }
            reply
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_primary_is_told_from_other_errors() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(primary_lost(&io));
        let readonly = RedisError::from((
            ErrorKind::Server(ServerErrorKind::ReadOnly),
            "READONLY You can't write against a read only replica.",
        ));
        assert!(primary_lost(&readonly));
        let script = RedisError::from((
            ErrorKind::Server(ServerErrorKind::NoScript),
            "NOSCRIPT No matching script.",
        ));
        assert!(!primary_lost(&script));
    }
}
