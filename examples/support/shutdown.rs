//! Graceful shutdown for the examples: SIGTERM (what `kill`, systemd and container runtimes
//! send) or Ctrl-C ends the server; in-flight requests finish, and the store is dropped
//! afterwards, which syncs its log and removes its prepared segment.

/// Completes at the first SIGTERM or Ctrl-C (SIGINT).
pub async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No handler could be installed: wait on SIGTERM alone.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    println!("shutting down");
}

/// Tests of an example's shutdown: the example's test binary runs its server in a child
/// process (itself, with `SHUTDOWN_CHILD_DIR` set), which the parent stops with SIGTERM.
#[cfg(all(test, unix))]
pub mod check {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// The variable naming the data directory of the child's server.
    pub const CHILD_DIR: &str = "SHUTDOWN_CHILD_DIR";

    /// Runs test `child_test` of this binary as a server on `dir`, sends it `request` once it
    /// prints `listening on ADDR`, then SIGTERM, and asserts that it exited by itself, with
    /// success, and that the store's clean shutdown removed the prepared log segment.
    pub fn stops_cleanly_on_sigterm(child_test: &str, dir: &Path, request: &str) {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the server");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let addr = loop {
            let mut line = String::new();
            if out.read_line(&mut line).expect("child stdout") == 0 {
                panic!("the server exited before listening: {:?}", child.wait());
            }
            // The child's harness may have printed `test NAME ... ` on the same line.
            if let Some((_, rest)) = line.trim().split_once("listening on ") {
                break rest.trim_start_matches("http://").to_owned();
            }
        };
        // One write, so the log prepares its next segment.
        let mut conn = TcpStream::connect(&addr).expect("connect");
        conn.write_all(request.as_bytes()).expect("send");
        let mut head = [0u8; 12];
        conn.read_exact(&mut head).expect("response");
        assert!(head.starts_with(b"HTTP/1.1 "), "{head:?}");
        drop(conn);
        let prepared = dir.join("wal-next.prep");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !prepared.exists() {
            assert!(Instant::now() < deadline, "no prepared segment appeared");
            std::thread::sleep(Duration::from_millis(20));
        }

        let pid = child.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(kill.expect("kill").success());
        let status = child.wait().expect("wait");
        assert!(
            status.success(),
            "the server did not shut down by itself on SIGTERM: {status}"
        );
        assert!(
            !prepared.exists(),
            "the store was not shut down cleanly: {} is still there",
            prepared.display()
        );
    }
}
