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

/// Whether `redis-server` can be started; when it cannot, `test` is skipped (printed), or
/// fails under CI.
pub fn have_redis_server(test: &str) -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            !in_ci(),
            "{test}: redis-server is not installed, and CI is set"
        );
        skip(test, "redis-server is not installed");
    }
    found
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
