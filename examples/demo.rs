//! A small login app, after the express-session login tutorial.
//!
//! ```text
//! cargo run --release --example demo
//! ```
//!
//! Then open <http://127.0.0.1:3000/> and log in as `user1` / `mypassword`. The page counts
//! your visits; logging in gives the session a new id (`cycle_id`, the defence against session
//! fixation) and keeps the counter; logging out destroys the session.
//!
//! Sessions are kept by the durable embedded store in `./demo-sessions` (`--dir` to choose
//! another directory, `--memory` for none): stop the server (Ctrl-C, or even `kill -9`), start
//! it again, and you are still logged in.
//!
//! With `--redis redis://127.0.0.1:6379/` (and `--features redis`) sessions live in Redis
//! instead, as Node's connect-redis keeps them: run two demo servers and an Express app on
//! one Redis and one secret, and a login on one is a login on all (see the README's "Many
//! nodes" section).
//!
//! Set `SESSION_SECRET` to sign cookies with your own secret (a fixed development secret is
//! used otherwise, with a warning).

use std::sync::Arc;
use std::time::Duration;

use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use clap::Parser;
use serde::Deserialize;
use sessile::{CookieOptions, EmbeddedStore, SameSiteOption, Session, SessionLayer, SessionStore};

#[path = "support/shutdown.rs"]
#[macro_use]
mod shutdown;

#[derive(Parser)]
#[command(about = "sessile demo: a login app")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
    /// Where the durable session store keeps its log and snapshots.
    #[arg(long, default_value = "demo-sessions")]
    dir: std::path::PathBuf,
    /// Keep sessions in memory only (lost when the server stops).
    #[arg(long)]
    memory: bool,
    /// Keep sessions in Redis at this URL instead (connect-redis's format, prefix `sess:`),
    /// shared with every server and Express app using the same Redis, secret and prefix.
    /// Needs `--features redis`.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
}

const USER: &str = "user1";
const PASSWORD: &str = "mypassword";

const STYLE: &str = "body{font-family:sans-serif;display:flex;justify-content:center;margin-top:4rem}\
form{display:flex;flex-direction:column;gap:1rem;width:16rem}input{padding:.6rem}\
input[type=submit]{background:linear-gradient(to left,#4776E6,#8e54e9);color:#fff;border:0;border-radius:4px}";

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>sessile demo</title>\
         <style>{STYLE}</style></head><body><main>{body}</main></body></html>"
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn index(session: Session) -> Result<Response, sessile::Error> {
    let views: u64 = session.get("views")?.unwrap_or(0) + 1;
    session.insert("views", views)?;
    if let Some(user) = session.get::<String>("user")? {
        return Ok(page(&format!(
            "<h1>Welcome, {}</h1><p>You have viewed this page {views} times.</p>\
             <p><a href=/profile>profile</a> · <a href=/logout>log out</a></p>",
            escape(&user)
        ))
        .into_response());
    }
    Ok(page(&format!(
        "<h1>Log in</h1><p>Visits before logging in: {views}</p>\
         <form action=/login method=post>\
         <input name=username placeholder=Username autocomplete=username>\
         <input name=password type=password placeholder=Password autocomplete=current-password>\
         <input type=submit value='Log in'></form>"
    ))
    .into_response())
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(session: Session, Form(form): Form<Login>) -> Result<Response, sessile::Error> {
    if form.username != USER || form.password != PASSWORD {
        return Ok(
            page("<h1>Invalid username or password</h1><a href=/>try again</a>").into_response(),
        );
    }
    // A new id at login: an id planted before login is worthless after it.
    session.cycle_id().await?;
    session.insert("user", &form.username)?;
    // The session is stored before this redirect leaves the server.
    Ok(Redirect::to("/").into_response())
}

async fn profile(session: Session) -> Result<Response, sessile::Error> {
    let Some(user) = session.get::<String>("user")? else {
        return Ok(Redirect::to("/").into_response());
    };
    let cookie = session.cookie()?;
    let left = cookie.max_age().unwrap_or(0) / 1000;
    Ok(page(&format!(
        "<h1>{}</h1><p>Session id: <code>{}</code></p><p>This session expires in {left} s \
         unless you come back.</p><p><a href=/>home</a> · <a href=/logout>log out</a></p>",
        escape(&user),
        escape(&session.id().unwrap_or_default()),
    ))
    .into_response())
}

async fn logout(session: Session) -> Result<Redirect, sessile::Error> {
    session.destroy().await?;
    Ok(Redirect::to("/"))
}

#[cfg(feature = "redis")]
async fn redis_store(url: &str) -> Result<Arc<dyn SessionStore>, Box<dyn std::error::Error>> {
    let store = sessile::RedisStore::connect(url).await?;
    println!("sessions in Redis under {}*", store.prefix());
    Ok(Arc::new(store))
}

#[cfg(not(feature = "redis"))]
async fn redis_store(_url: &str) -> Result<Arc<dyn SessionStore>, Box<dyn std::error::Error>> {
    Err(
        "this build has no Redis store: run with `cargo run --features redis --example demo`"
            .into(),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // What sessile says (the recovery report at open, snapshots, errors) on standard error.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .init();
    run(Args::parse(), shutdown::signal()).await
}

/// Serves the demo until `stop` completes, then lets in-flight requests finish and closes the
/// store: a durable store syncs its log, removes its prepared segment and releases its
/// directory.
async fn run(
    args: Args,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("SESSION_SECRET").unwrap_or_else(|_| {
        eprintln!("warning: SESSION_SECRET is not set; using a development secret");
        "thisismysecrctekeyfhrgfgrfrty84fwir767".to_owned()
    });
    // The embedded store, kept for `/stats` and the clean shutdown.
    let mut embedded: Option<EmbeddedStore> = None;
    let store: Arc<dyn SessionStore> = if let Some(url) = &args.redis {
        redis_store(url).await?
    } else if args.memory {
        Arc::new(embedded.insert(EmbeddedStore::new()).clone())
    } else {
        let store = EmbeddedStore::open(&args.dir)?;
        println!(
            "sessions in {} ({} restored)",
            args.dir.display(),
            store.len().await?
        );
        Arc::new(embedded.insert(store).clone())
    };
    let sessions = SessionLayer::builder()
        .secret(secret)
        .store_arc(store)
        .cookie(
            CookieOptions::new()
                .max_age(Duration::from_secs(24 * 3600))
                .same_site(SameSiteOption::Lax),
        )
        .build()?;

    let closing = embedded.clone();
    let app = Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/profile", get(profile))
        .route("/logout", get(logout))
        .layer(sessions)
        // The store's figures as JSON (`EmbeddedStore::stats`), outside the session layer.
        .route(
            "/stats",
            get(move || {
                let stats = embedded.as_ref().map(EmbeddedStore::stats);
                async move {
                    stats
                        .map(axum::Json)
                        .ok_or(axum::http::StatusCode::NOT_FOUND)
                }
            }),
        );

    shutdown::serve(&args.addr, app, stop).await?;
    // The clean shutdown, whoever still holds a handle of the store.
    if let Some(store) = closing {
        store.close()?;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    server_tests!(|dir| Args {
        addr: "127.0.0.1:0".into(),
        dir,
        memory: false,
        redis: None,
    });
}
