//! tower-sessions' counter app, with its sessions in sessile's durable embedded store.
//!
//! ```text
//! cargo run -p sessile-compat-examples --example tower_sessions_counter
//! ```
//!
//! Open <http://127.0.0.1:3000/> and reload: the count goes up. Stop the server (Ctrl-C, or
//! even `kill -9`), start it again, reload: the count goes on. The sessions are kept in
//! `./counter-sessions` (`--dir` to choose another directory).
//!
//! The one line that differs from tower-sessions' own counter example is the store:
//! `SessionManagerLayer::new(EmbeddedStore::open(dir)?)` instead of
//! `SessionManagerLayer::new(MemoryStore::default())`. Expired sessions are freed by the
//! store itself; no deletion task is needed.

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use clap::Parser;
use sessile::{EmbeddedStore, SessionStore as _};
use time::Duration;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

#[path = "../../examples/support/shutdown.rs"]
#[macro_use]
mod shutdown;

#[derive(Parser)]
#[command(about = "tower-sessions' counter on sessile's durable store")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
    /// Where the durable session store keeps its log and snapshots.
    #[arg(long, default_value = "counter-sessions")]
    dir: std::path::PathBuf,
}

const COUNTER_KEY: &str = "counter";

async fn handler(session: Session) -> Result<String, StatusCode> {
    let internal = |_| StatusCode::INTERNAL_SERVER_ERROR;
    let counter: usize = session
        .get(COUNTER_KEY)
        .await
        .map_err(internal)?
        .unwrap_or(0);
    session
        .insert(COUNTER_KEY, counter + 1)
        .await
        .map_err(internal)?;
    Ok(format!("Current count: {counter}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(Args::parse(), shutdown::signal()).await
}

/// Serves the counter until `stop` completes; then closes the store, which syncs its log and
/// releases its directory.
async fn run(
    args: Args,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    let store = EmbeddedStore::open(&args.dir)?;
    println!(
        "sessions in {} ({} restored)",
        args.dir.display(),
        store.len().await?
    );
    let session_layer = SessionManagerLayer::new(store.clone())
        // The cookie is sent over plain HTTP here; behind TLS, leave it secure (the default).
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(Duration::seconds(10 * 60)));
    let app = Router::new().route("/", get(handler)).layer(session_layer);

    shutdown::serve(&args.addr, app, stop).await?;
    // The clean shutdown, even if a handle outlives the server.
    store.close()?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use shutdown::child;

    server_tests!(|dir| Args {
        addr: "127.0.0.1:0".into(),
        dir,
    });

    /// The counter counts over HTTP, and goes on after the server is killed with SIGKILL and
    /// started again on the same directory.
    #[test]
    fn the_count_survives_kill_9() {
        let dir = child::temp_dir("kill");
        let mut browser = child::Jar::default();
        let server = child::Server::start("tests::server_child", &dir);
        for n in 0..3 {
            let r = browser.get_page(&server.addr, "/");
            assert_eq!(
                (r.status, r.body.as_str()),
                (200, &*format!("Current count: {n}"))
            );
        }
        assert!(browser.get("id").is_some(), "tower-sessions' cookie");
        server.kill9();

        let server = child::Server::start("tests::server_child", &dir);
        let r = browser.get_page(&server.addr, "/");
        assert_eq!(r.body, "Current count: 3");
        // A new visitor starts from zero.
        let r = child::Jar::default().get_page(&server.addr, "/");
        assert_eq!(r.body, "Current count: 0");
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
