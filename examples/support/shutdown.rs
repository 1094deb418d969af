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

/// Serves `app` on `addr` (printing `listening on http://ADDR`, which the tests wait for)
/// until `stop` completes, then lets in-flight requests finish. When it returns, `app` and
/// with it the session store are dropped: a durable store syncs its log.
#[allow(dead_code)] // not every example uses it
pub async fn serve(
    addr: &str,
    app: axum::Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
}

/// Running the example's server in a child process and talking to it over HTTP.
#[cfg(all(test, unix))]
#[path = "child.rs"]
#[allow(dead_code)] // each example's tests use part of it
pub mod child;

/// Tests of an example's shutdown: the example's test binary runs its server in a child
/// process (itself, with [`child::CHILD_DIR`] set), which the parent stops with SIGTERM.
#[cfg(all(test, unix))]
pub mod check {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::child::Server;

    /// Runs test `child_test` of this binary as a server on `dir`, sends it `request` once it
    /// prints `listening on ADDR`, then SIGTERM, and asserts that it exited by itself, with
    /// success, and that the store's clean shutdown removed the prepared log segment.
    pub fn stops_cleanly_on_sigterm(child_test: &str, dir: &Path, request: &str) {
        let server = Server::start(child_test, dir);
        let addr = server.addr.clone();
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

        let status = server.terminate();
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

/// The tests every example server has, in the example's `tests` module: `server_child`, the
/// server that the other tests run in a child process (on the directory they give it), and
/// `stops_cleanly_on_sigterm`. `$args` makes the example's `Args` from that directory; the
/// example's `run(args, stop)` serves. `$block_on` runs it (default: a tokio runtime).
#[cfg(all(test, unix))]
#[allow(unused_macros)] // not every example uses it
macro_rules! server_tests {
    ($args:expr) => {
        server_tests!($args, |fut| tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(fut));
    };
    ($args:expr, $block_on:expr) => {
        /// The server of this example's tests, run in a child process.
        #[test]
        fn server_child() {
            let Some(dir) = std::env::var_os(shutdown::child::CHILD_DIR) else {
                return; // only as the child of the other tests
            };
            let args = ($args)(std::path::PathBuf::from(dir));
            ($block_on)(run(args, shutdown::signal())).unwrap();
        }

        /// SIGTERM stops the server gracefully and shuts its durable store down cleanly.
        #[test]
        fn stops_cleanly_on_sigterm() {
            let dir = shutdown::child::temp_dir("term");
            shutdown::check::stops_cleanly_on_sigterm(
                "tests::server_child",
                &dir,
                "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    };
}
