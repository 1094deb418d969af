//! Redis Cluster (feature `redis-cluster`): [`RedisStore::cluster`], the connection to the
//! cluster, and the primaries a key walk visits.
//!
//! redis-rs's async cluster client keeps one connection per node, routes each command by the
//! slot of its key, follows `MOVED` and `ASK`, and refreshes its slot map when a node fails
//! or a redirection says the map changed. Every store call but the key walk is about one key
//! (the compare-and-set script included), so it runs on the primary of that key's slot;
//! `MGET` and `DEL` of a walk's page are split by slot by the client. During a failover the
//! calls on the failed primary's slots fail with [`StoreError::Unavailable`] or
//! [`StoreError::Timeout`] until the cluster has promoted a replica; the client then finds
//! the new primary by itself.

use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use ::redis::{ErrorKind, RedisError, RedisResult, Value};

use super::conn::{connect_error, Conn, Node, Target, RECONNECT_RETRIES};
use super::{RedisStore, RedisStoreBuilder};
use crate::error::StoreError;

impl RedisStore {
    /// Options for a store on a Redis Cluster (feature `redis-cluster`), found through
    /// these seed nodes (`redis://host:port` or `rediss://host:port` URLs; one reachable
    /// seed is enough, the client learns the others). Sessions are spread over the
    /// cluster's primaries by the slot of their key; every other option is the single
    /// server's.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::cluster([
    ///     "redis://10.0.0.1:6379",
    ///     "redis://10.0.0.2:6379",
    ///     "redis://10.0.0.3:6379",
    /// ])
    /// .build()
    /// .await?;
    /// # Ok(()) }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-cluster")))]
    pub fn cluster<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> RedisStoreBuilder {
        let mut builder = RedisStore::builder(String::new());
        builder.target = Target::Cluster(seeds.into_iter().map(Into::into).collect());
        builder
    }
}

pub(super) async fn connect(
    builder: &RedisStoreBuilder,
    seeds: &[String],
) -> Result<Conn, StoreError> {
    let timeout = builder.timeouts.connect;
    #[allow(unused_mut)] // Changed only with `redis-tls`.
    let mut client = ClusterClient::builder(seeds.iter().map(String::as_str))
        .connection_timeout(timeout)
        .response_timeout(builder.timeouts.longest())
        .retries(RECONNECT_RETRIES as u32)
        .min_retry_wait(50)
        .max_retry_wait(500);
    #[cfg(feature = "redis-tls")]
    {
        if seeds.iter().any(|s| s.starts_with("rediss:")) {
            super::tls::install_provider();
        }
        if let Some(certs) = builder.tls.certificates() {
            client = client.certs(certs);
        }
    }
    let client = client
        .build()
        .map_err(|e| StoreError::backend(format!("invalid Redis Cluster seed nodes: {e}")))?;
    client
        .get_async_connection()
        .await
        .map(Conn::Cluster)
        .map_err(|e| connect_error(builder, e))
}

/// Every primary of the cluster, from `CLUSTER SLOTS` asked of a primary.
pub(super) async fn primaries(conn: &mut ClusterConnection) -> RedisResult<Vec<Node>> {
    let reply = conn
        .route_command(
            ::redis::cmd("CLUSTER").arg("SLOTS").clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
        )
        .await?;
    parse_slots(reply)
}

/// The distinct primaries of a `CLUSTER SLOTS` reply: each entry is
/// `[start, end, [host, port, id, ...], replicas...]`.
fn parse_slots(reply: Value) -> RedisResult<Vec<Node>> {
    let bad = || {
        RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "unexpected CLUSTER SLOTS reply",
        ))
    };
    let Value::Array(ranges) = reply else {
        return Err(bad());
    };
    let mut nodes = Vec::new();
    for range in ranges {
        let Value::Array(fields) = range else {
            return Err(bad());
        };
        let Some(Value::Array(primary)) = fields.get(2) else {
            return Err(bad());
        };
        let host = match primary.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::SimpleString(s)) => s.clone(),
            _ => return Err(bad()),
        };
        let port = match primary.get(1) {
            Some(Value::Int(p)) => u16::try_from(*p).map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        let node = Node::Primary { host, port };
        if !nodes.contains(&node) {
            nodes.push(node);
        }
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn slots_reply_gives_each_primary_once() {
        let range = |start, end, port| {
            Value::Array(vec![
                Value::Int(start),
                Value::Int(end),
                Value::Array(vec![bulk("127.0.0.1"), Value::Int(port), bulk("id")]),
                Value::Array(vec![bulk("127.0.0.1"), Value::Int(port + 100)]),
            ])
        };
        let reply = Value::Array(vec![
            range(0, 100, 7000),
            range(101, 200, 7001),
            range(201, 300, 7000),
        ]);
        let primary = |port| Node::Primary {
            host: "127.0.0.1".into(),
            port,
        };
        assert_eq!(
            parse_slots(reply).unwrap(),
            vec![primary(7000), primary(7001)]
        );
        assert!(parse_slots(Value::Int(1)).is_err());
        assert!(parse_slots(Value::Array(vec![Value::Array(vec![Value::Int(0)])])).is_err());
        let bad_port = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(1),
            Value::Array(vec![bulk("h"), Value::Int(70_000)]),
        ])]);
        assert!(parse_slots(bad_port).is_err());
    }
}
