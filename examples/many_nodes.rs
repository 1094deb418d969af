//! A view counter on Redis in each deployment the store supports: one server, TLS, a
//! Redis Cluster, Sentinel. Every server started on the same Redis (and the Express app of
//! `tests/interop/`) shares the sessions.
//!
//! ```text
//! # one server
//! cargo run --release --example many_nodes --all-features -- --redis redis://127.0.0.1:6379/
//! # TLS, with a private CA (and, for --tls-auth-clients yes, a client certificate)
//! cargo run --release --example many_nodes --all-features -- \
//!     --redis rediss://127.0.0.1:6380/ --ca ca.crt [--client-cert c.crt --client-key c.key]
//! # a Redis Cluster: any of its nodes as seeds
//! cargo run --release --example many_nodes --all-features -- --cluster \
//!     --redis redis://127.0.0.1:7000 --redis redis://127.0.0.1:7001
//! # Sentinel: the sentinels and the monitored service's name
//! cargo run --release --example many_nodes --all-features -- --sentinel mymaster \
//!     --redis redis://127.0.0.1:26379 --redis redis://127.0.0.1:26380
//! ```
//!
//! Then open <http://127.0.0.1:3000/>. Set `SESSION_SECRET` (a development secret is used
//! otherwise).

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use clap::Parser;
use sessile::{CookieOptions, RedisStore, RedisStoreBuilder, Session, SessionLayer};

#[derive(Parser)]
#[command(about = "sessile on Redis: one server, TLS, Cluster or Sentinel")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
    /// The Redis URL (`redis://` or `rediss://`); with --cluster the seed nodes, with
    /// --sentinel the sentinels (repeat the option).
    #[arg(long = "redis", value_name = "URL", required = true)]
    urls: Vec<String>,
    /// The URLs are seed nodes of a Redis Cluster.
    #[arg(long, conflicts_with = "sentinel")]
    cluster: bool,
    /// The URLs are sentinels monitoring this service.
    #[arg(long, value_name = "SERVICE")]
    sentinel: Option<String>,
    /// A PEM bundle of the CAs to trust for `rediss://` (default: the platform's roots).
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM) for mutual TLS, with --client-key.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    client_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    client_key: Option<std::path::PathBuf>,
}

/// The store builder the options describe, with production settings.
fn builder(args: &Args) -> std::io::Result<RedisStoreBuilder> {
    let mut builder = if args.cluster {
        RedisStore::cluster(args.urls.clone())
    } else if let Some(service) = &args.sentinel {
        RedisStore::sentinel(args.urls.clone(), service.as_str())
    } else {
        RedisStore::builder(args.urls[0].as_str())
    };
    if let Some(ca) = &args.ca {
        builder = builder.tls_root_certificates(std::fs::read(ca)?);
    }
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        builder = builder.tls_client_certificate(std::fs::read(cert)?, std::fs::read(key)?);
    }
    Ok(builder
        .read_timeout(Duration::from_millis(500))
        .write_timeout(Duration::from_secs(1))
        .max_in_flight(1_024))
}

async fn count(session: Session) -> Result<String, sessile::Error> {
    let views = session.get::<u64>("views")?.unwrap_or(0) + 1;
    session.insert("views", views)?;
    Ok(format!("{views} views in this session\n"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let store = builder(&args)?.build().await?;
    let secret = std::env::var("SESSION_SECRET").unwrap_or_else(|_| {
        eprintln!("SESSION_SECRET is not set: using a development secret");
        "development secret, not for production".into()
    });
    let layer = SessionLayer::builder()
        .secret(secret)
        .cookie(CookieOptions::new().max_age(Duration::from_secs(24 * 3600)))
        .touch_after(Duration::from_secs(60))
        .store(store)
        .build()?;
    let app = Router::new().route("/", get(count)).layer(layer);
    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
