//! `redis-server` processes of a test's own (no persistence, killed on drop): a plain one
//! for the fault test, TLS ones for the TLS test, cluster nodes for the failover test.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{in_ci, skip};

/// A `redis-server` child process, killed on drop.
pub struct Server {
    child: Child,
    /// The plain (non-TLS) port, always open: readiness is checked through it.
    pub port: u16,
}

/// A loopback port nothing listens on (as far as a bind can tell).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A loopback port below 55536 that is free, with its cluster bus port (port + 10000) free
/// too, for a cluster node.
pub fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port <= 55_535 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// Whether `program --version` runs; when it does not, `test` is skipped (printed), or
/// fails under CI.
pub fn have_program(test: &str, program: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            !in_ci(),
            "{test}: {program} is not installed, and CI is set"
        );
        skip(test, &format!("{program} is not installed"));
    }
    found
}

/// Whether `redis-server` can be started; when it cannot, `test` is skipped (printed), or
/// fails under CI.
pub fn have_redis_server(test: &str) -> bool {
    have_program(test, "redis-server")
}

/// A plain `redis-server` of the test's own on a free port, ready; `None` (the test is
/// skipped) when the binary is missing, which fails the test under CI.
pub async fn own_server(test: &str) -> Option<Server> {
    if !have_redis_server(test) {
        return None;
    }
    let server = Server::start(free_port()).expect("start redis-server");
    server.wait_ready().await;
    Some(server)
}

impl Server {
    /// Starts a plain `redis-server` on `port`; `None` if the binary is missing.
    pub fn start(port: u16) -> Option<Server> {
        Server::start_with(port, &[], None)
    }

    /// Starts `redis-server` on `port` with `extra` options, in `dir` if given (cluster
    /// nodes keep their `nodes.conf` there); `None` if the binary is missing.
    pub fn start_with(port: u16, extra: &[String], dir: Option<&Path>) -> Option<Server> {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        let child = cmd.spawn().ok()?;
        Some(Server { child, port })
    }

    /// Starts `redis-sentinel` on `port` monitoring the primary on `primary` as `service`
    /// (quorum 2, down after `down_after`), its config file in `dir`; `None` if the binary
    /// is missing.
    pub fn start_sentinel(
        port: u16,
        primary: u16,
        service: &str,
        down_after: Duration,
        dir: &Path,
    ) -> Option<Server> {
        let conf = dir.join(format!("sentinel-{port}.conf"));
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\n\
             sentinel monitor {service} 127.0.0.1 {primary} 2\n\
             sentinel down-after-milliseconds {service} {down}\n\
             sentinel failover-timeout {service} 10000\n\
             sentinel parallel-syncs {service} 1\n",
            dir = dir.display(),
            down = down_after.as_millis(),
        );
        std::fs::write(&conf, text).expect("write the sentinel's config");
        let child = Command::new("redis-sentinel")
            .arg(&conf)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Server { child, port })
    }

    /// The URL of the plain port.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Waits until the server answers `PING` on its plain port.
    pub async fn wait_ready(&self) {
        let url = self.url();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(url.as_str()) {
                if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                    let pong: Result<String, _> = redis::cmd("PING").query_async(&mut c).await;
                    if pong.is_ok() {
                        return;
                    }
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `sig` (`-STOP`, `-CONT`, ...) to the server.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill {sig} redis-server");
    }

    /// Kills the server and waits for it to exit.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory of the test's own under the system's temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "sessile-{what}-{}",
            sessile::id::generate().expect("random id")
        ));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Redis Cluster of the test's own: 3 primaries and 3 replicas (one each) on free
/// loopback ports, made by `redis-cli --cluster create`, stopped on drop.
pub struct Cluster {
    pub nodes: Vec<Server>,
    _dir: TempDir,
}

/// One slot range of `CLUSTER SLOTS`: the primary's port and its replicas' ports.
#[derive(Debug, Clone)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
    pub primary: u16,
    pub replicas: Vec<u16>,
}

impl Cluster {
    /// Starts the cluster with `node_timeout` (`cluster-node-timeout`, how long a primary
    /// must be unreachable before its replica is promoted) and waits until every node sees
    /// every slot served; `None` (skipped, or a failure under CI) without `redis-server`.
    pub async fn start(test: &str, node_timeout: Duration) -> Option<Cluster> {
        if !have_redis_server(test) {
            return None;
        }
        let dir = TempDir::new("cluster");
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_cluster_port();
            let args: Vec<String> = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &format!("nodes-{port}.conf"),
                "--cluster-node-timeout",
                &node_timeout.as_millis().to_string(),
                "--dir",
                &dir.0.display().to_string(),
            ]
            .into_iter()
            .map(String::from)
            .collect();
            nodes.push(Server::start_with(port, &args, Some(&dir.0)).expect("redis-server"));
        }
        for node in &nodes {
            node.wait_ready().await;
        }
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run redis-cli --cluster create");
        assert!(status.success(), "redis-cli --cluster create failed");
        let cluster = Cluster { nodes, _dir: dir };
        cluster.wait_healthy().await;
        Some(cluster)
    }

    /// The seed URLs (every node).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Server::url).collect()
    }

    /// Waits until every running node reports `cluster_state:ok` and the same slot map
    /// with three primaries, each with a replica.
    pub async fn wait_healthy(&self) {
        wait_cluster_healthy(&self.urls()).await;
    }

    /// Removes the node on `port` (killed) from the cluster's processes.
    pub fn kill(&mut self, port: u16) {
        let i = self
            .nodes
            .iter()
            .position(|n| n.port == port)
            .expect("a node of the cluster");
        self.nodes.remove(i).kill();
    }
}

/// Waits (up to a generous deadline) until every node of `urls` that answers says
/// `cluster_state:ok` and serves a slot map of three primaries with one replica each.
pub async fn wait_cluster_healthy(urls: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut healthy = true;
        for url in urls {
            let Ok(mut conn) = node_conn(url).await else {
                continue;
            };
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            let ranges = slot_ranges(&mut conn).await;
            let full: u32 = ranges.iter().map(|r| u32::from(r.end - r.start) + 1).sum();
            let paired = ranges.iter().all(|r| !r.replicas.is_empty());
            let mut primaries: Vec<u16> = ranges.iter().map(|r| r.primary).collect();
            primaries.sort_unstable();
            primaries.dedup();
            if !info.contains("cluster_state:ok")
                || full != 16384
                || !paired
                || primaries.len() != 3
            {
                healthy = false;
            }
        }
        if healthy {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A plain connection to one node.
pub async fn node_conn(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
}

/// `CLUSTER SLOTS` as seen by the node of `conn` (empty if it cannot answer).
pub async fn slot_ranges(conn: &mut redis::aio::MultiplexedConnection) -> Vec<SlotRange> {
    let Ok(reply) = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async::<redis::Value>(conn)
        .await
    else {
        return Vec::new();
    };
    let redis::Value::Array(ranges) = reply else {
        return Vec::new();
    };
    let port = |node: &redis::Value| -> Option<u16> {
        let redis::Value::Array(fields) = node else {
            return None;
        };
        match fields.get(1) {
            Some(redis::Value::Int(p)) => u16::try_from(*p).ok(),
            _ => None,
        }
    };
    ranges
        .into_iter()
        .filter_map(|r| {
            let redis::Value::Array(mut fields) = r else {
                return None;
            };
            let nodes = fields.split_off(2);
            let start = redis::from_redis_value(fields.first()?.clone()).ok()?;
            let end = redis::from_redis_value(fields.get(1)?.clone()).ok()?;
            Some(SlotRange {
                start,
                end,
                primary: port(nodes.first()?)?,
                replicas: nodes[1..].iter().filter_map(port).collect(),
            })
        })
        .collect()
}

/// The slot of `key` and the port of the primary serving it, as the node at `url` sees it.
pub async fn primary_of(url: &str, key: &str) -> (u16, u16) {
    let mut conn = node_conn(url).await.expect("connect to a cluster node");
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("CLUSTER KEYSLOT");
    let ranges = slot_ranges(&mut conn).await;
    let range = ranges
        .iter()
        .find(|r| (r.start..=r.end).contains(&slot))
        .expect("every slot is served");
    (slot, range.primary)
}
