//! The connection under a [`RedisStore`](super::RedisStore): one Redis server (redis-rs's
//! `ConnectionManager`, one multiplexed connection that reconnects by itself) or, with the
//! `redis-cluster` feature, a Redis Cluster (redis-rs's async cluster client: one
//! connection per node, commands routed by key slot, MOVED/ASK followed, the slot map
//! refreshed after a failover); or, with `redis-sentinel`, the primary the sentinels name
//! (see [`sentinel`](super::sentinel)).
//!
//! Every store call is one command (or one single-key transaction, or the single-key
//! compare-and-set script) and goes through [`Conn`] as a `ConnectionLike`, so it routes by
//! its key in a cluster. The key walk of `all`, `len` and `clear` is the exception: `SCAN`
//! pages belong to one node, so it walks every primary in turn ([`Conn::scan_nodes`]), as
//! connect-redis does.

use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::{store_error, RedisStoreBuilder};
use crate::error::StoreError;

/// Reconnection attempts per failed connection, before the calls waiting on it fail (the
/// next call starts a new series).
pub(super) const RECONNECT_RETRIES: usize = 2;

/// Where the store's Redis is.
#[derive(Clone)]
pub(super) enum Target {
    /// One server (or a replica set's primary behind one address), by URL.
    Single(String),
    /// The seed nodes of a Redis Cluster, by URL.
    #[cfg(feature = "redis-cluster")]
    Cluster(Vec<String>),
    /// The sentinels, by URL, and the name of the service they monitor.
    #[cfg(feature = "redis-sentinel")]
    Sentinel {
        sentinels: Vec<String>,
        service: String,
    },
}

/// A connection to one server or to a cluster. Cloning is cheap: clones share the
/// connections.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    #[cfg(feature = "redis-cluster")]
    Cluster(::redis::cluster_async::ClusterConnection),
    #[cfg(feature = "redis-sentinel")]
    Sentinel(super::sentinel::SentinelConn),
}

/// One node whose keys a `SCAN` walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    /// The single server.
    Only,
    /// A cluster primary, by the address the cluster announces.
    #[cfg(feature = "redis-cluster")]
    Primary { host: String, port: u16 },
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => c.req_packed_command(cmd),
            #[cfg(feature = "redis-sentinel")]
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            #[cfg(feature = "redis-sentinel")]
            Conn::Sentinel(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => c.get_db(),
            #[cfg(feature = "redis-sentinel")]
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// The nodes a full key walk visits: the server, or every primary of the cluster as it
    /// is now (asked again at each walk, so a walk after a failover visits the promoted
    /// replica).
    pub(super) async fn scan_nodes(&mut self) -> RedisResult<Vec<Node>> {
        match self {
            #[cfg(feature = "redis-sentinel")]
            Conn::Sentinel(_) => Ok(vec![Node::Only]),
            Conn::Single(_) => Ok(vec![Node::Only]),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => super::cluster::primaries(c).await,
        }
    }

    /// Runs `cmd` on `node` (a `SCAN` page).
    pub(super) async fn query_node(&mut self, node: &Node, cmd: Cmd) -> RedisResult<Value> {
        match (self, node) {
            (Conn::Single(c), _) => cmd.query_async(c).await,
            #[cfg(feature = "redis-sentinel")]
            (Conn::Sentinel(c), _) => cmd.query_async(c).await,
            #[cfg(feature = "redis-cluster")]
            (Conn::Cluster(c), Node::Only) => cmd.query_async(c).await,
            #[cfg(feature = "redis-cluster")]
            (Conn::Cluster(c), Node::Primary { host, port }) => {
                use ::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                c.route_command(cmd, routing).await
            }
        }
    }
}

/// The builder's connections: `connections` of them to a single server, else one.
pub(super) async fn connect_all(builder: &RedisStoreBuilder) -> Result<Vec<Conn>, StoreError> {
    let n = match builder.target {
        Target::Single(_) => builder.connections,
        #[cfg(any(feature = "redis-cluster", feature = "redis-sentinel"))]
        _ => 1,
    };
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(connect(builder).await?);
    }
    Ok(conns)
}

/// Connects to the builder's target within its connect timeout.
async fn connect(builder: &RedisStoreBuilder) -> Result<Conn, StoreError> {
    let timeout = builder.timeouts.connect;
    let response = builder.timeouts.longest();
    let connecting = async {
        match &builder.target {
            Target::Single(url) => {
                let client = single_client(builder, url)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(response))
                    .set_number_of_retries(RECONNECT_RETRIES)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_with_config(client, config)
                    .await
                    .map(Conn::Single)
                    .map_err(|e| connect_error(builder, e))
            }
            #[cfg(feature = "redis-cluster")]
            Target::Cluster(seeds) => super::cluster::connect(builder, seeds).await,
            #[cfg(feature = "redis-sentinel")]
            Target::Sentinel { sentinels, service } => {
                super::sentinel::connect(builder, sentinels, service).await
            }
        }
    };
    match tokio::time::timeout(timeout, connecting).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Timeout(timeout)),
    }
}

/// The store error of a failed connection: a readable one for a server certificate that
/// does not verify, else the usual mapping.
pub(super) fn connect_error(builder: &RedisStoreBuilder, e: ::redis::RedisError) -> StoreError {
    #[cfg(feature = "redis-tls")]
    if let Some(tls) = super::tls::certificate_error(&e, &builder.tls) {
        return tls;
    }
    store_error(e, builder.timeouts.connect)
}

/// The client of one server, with the builder's TLS certificates if it has any.
fn single_client(builder: &RedisStoreBuilder, url: &str) -> Result<::redis::Client, StoreError> {
    let invalid = |e: ::redis::RedisError| StoreError::backend(format!("invalid Redis URL: {e}"));
    #[cfg(feature = "redis-tls")]
    if let Some(certs) = builder.tls.certificates() {
        super::tls::install_provider();
        return ::redis::Client::build_with_tls(url, certs).map_err(invalid);
    }
    #[cfg(feature = "redis-tls")]
    if url.starts_with("rediss:") {
        super::tls::install_provider();
    }
    #[cfg(not(feature = "redis-tls"))]
    let _ = builder;
    ::redis::Client::open(url).map_err(invalid)
}
