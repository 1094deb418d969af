//! An actix-web app with actix-session 0.11 whose sessions are kept by sessile's durable
//! embedded store: log in, see a protected page, log out; a login survives a crash of the
//! server.
//!
//! ```text
//! cargo run -p sessile-compat-examples --example actix_login_durable
//! ```
//!
//! Open <http://127.0.0.1:3000/login>, log in as `ferris` / `hunter42`, and visit
//! <http://127.0.0.1:3000/protected>. Stop the server (Ctrl-C, or even `kill -9`), start it
//! again: you are still logged in. <http://127.0.0.1:3000/logout> logs you out. The sessions
//! are kept in `./actix-sessions` (`--dir` to choose another directory).
//!
//! The one line that differs from an actix-session app on Redis or cookies is the store:
//! `SessionMiddleware::new(EmbeddedStore::open(dir)?, key)`. The cookie stays actix-session's
//! (encrypted with `key`); set `SESSION_KEY` (64 bytes or more) so that cookies stay valid
//! across restarts with your own key (a fixed development key is used otherwise, with a
//! warning).

use actix_session::config::PersistentSession;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::http::header;
use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
use serde::Deserialize;
use sessile::{EmbeddedStore, SessionStore as _};
use time::Duration;

#[path = "../../examples/support/shutdown.rs"]
#[macro_use]
mod shutdown;

#[derive(Parser)]
#[command(about = "actix-session on sessile's durable store")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
    /// Where the durable session store keeps its log and snapshots.
    #[arg(long, default_value = "actix-sessions")]
    dir: std::path::PathBuf,
}

const USER: &str = "ferris";
const PASSWORD: &str = "hunter42";

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// Counts visits in the session (so a visitor has a session, and a key, before logging in).
async fn index(session: Session) -> actix_web::Result<String> {
    let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
    session.insert("visits", visits)?;
    Ok(match session.get::<String>("user")? {
        Some(user) => format!("hello {user}, visit {visits}"),
        None => format!("not logged in, visit {visits}"),
    })
}

async fn login_page() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html").body(
        "<!doctype html><form method=post action=/login>\
         <input name=username placeholder=ferris><input name=password type=password>\
         <input type=submit value='Log in'></form>",
    )
}

async fn login(session: Session, form: web::Form<Credentials>) -> actix_web::Result<HttpResponse> {
    if form.username != USER || form.password != PASSWORD {
        return Ok(HttpResponse::Unauthorized().body("wrong user name or password"));
    }
    // A new session key (session fixation); the session keeps its data.
    session.renew();
    session.insert("user", &form.username)?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/protected"))
        .finish())
}

async fn protected(session: Session) -> actix_web::Result<HttpResponse> {
    Ok(match session.get::<String>("user")? {
        Some(user) => HttpResponse::Ok().body(format!("protected page of {user}")),
        None => HttpResponse::Unauthorized().finish(),
    })
}

async fn logout(session: Session) -> &'static str {
    session.purge();
    "logged out"
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(Args::parse(), shutdown::signal()).await
}

/// The key actix-session encrypts its cookie with: `SESSION_KEY`, or a development key.
fn key() -> Result<Key, Box<dyn std::error::Error>> {
    let secret = std::env::var("SESSION_KEY").unwrap_or_else(|_| {
        eprintln!("warning: SESSION_KEY is not set; using a development key");
        "a development key of sixty-four bytes or more, never for production!".to_owned()
    });
    Key::try_from(secret.as_bytes()).map_err(|_| "SESSION_KEY must be 64 bytes or more".into())
}

/// Serves the app until `stop` completes; then closes the store, which syncs its log and
/// releases its directory.
async fn run(
    args: Args,
    stop: impl std::future::Future<Output = ()> + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    let store = EmbeddedStore::open(&args.dir)?;
    println!(
        "sessions in {} ({} restored)",
        args.dir.display(),
        store.len().await?
    );
    let key = key()?;
    let listener = std::net::TcpListener::bind(&args.addr)?;
    let addr = listener.local_addr()?;
    let app_store = store.clone();
    let server = HttpServer::new(move || {
        let sessions = SessionMiddleware::builder(app_store.clone(), key.clone())
            // The cookie is sent over plain HTTP here; behind TLS, leave it secure.
            .cookie_secure(false)
            .session_lifecycle(PersistentSession::default().session_ttl(Duration::days(1)))
            .build();
        App::new()
            .wrap(sessions)
            .route("/", web::get().to(index))
            .route("/login", web::get().to(login_page))
            .route("/login", web::post().to(login))
            .route("/protected", web::get().to(protected))
            .route("/logout", web::get().to(logout))
    })
    .workers(2)
    .disable_signals()
    .listen(listener)?
    .run();
    println!("listening on http://{addr}");
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        stop.await;
        handle.stop(true).await;
    });
    server.await?;
    // A worker's `App` may still hold a handle, torn down at exit without its drop running:
    // `close` shuts the store down whoever holds one.
    store.close()?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use shutdown::child;

    server_tests!(
        |dir| Args {
            addr: "127.0.0.1:0".into(),
            dir,
        },
        |fut| actix_web::rt::System::new().block_on(fut)
    );

    /// Login, the protected route and logout over HTTP, and the login survives kill -9
    /// (see [`child::login_survives_kill_9`]); actix-session's cookie is `id`.
    #[test]
    fn login_protected_logout_and_the_login_survives_kill_9() {
        child::login_survives_kill_9("id");
    }
}
