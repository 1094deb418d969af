//! An axum-login 0.18 app whose sessions are kept by sessile's durable embedded store: log in,
//! see a protected page, log out; a login survives a crash of the server.
//!
//! ```text
//! cargo run -p sessile-compat-examples --example axum_login_durable
//! ```
//!
//! Open <http://127.0.0.1:3000/login>, log in as `ferris` / `hunter42`, and visit
//! <http://127.0.0.1:3000/protected>. Stop the server (Ctrl-C, or even `kill -9`), start it
//! again: you are still logged in. <http://127.0.0.1:3000/logout> logs you out. The sessions
//! are kept in `./login-sessions` (`--dir` to choose another directory).
//!
//! axum-login 0.18 takes tower-sessions 0.14's `SessionManagerLayer` (re-exported as
//! `axum_login::tower_sessions`), hence the feature `tower-sessions-014`. The one line that
//! differs from an axum-login app on tower-sessions' `MemoryStore` is the store:
//! `SessionManagerLayer::new(EmbeddedStore::open(dir)?)`.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use axum_login::tower_sessions::{Expiry, SessionManagerLayer};
use axum_login::{login_required, AuthManagerLayerBuilder, AuthUser, AuthnBackend, UserId};
use clap::Parser;
use serde::Deserialize;
use sessile::{EmbeddedStore, SessionStore as _};
use time::Duration;

#[path = "../../examples/support/shutdown.rs"]
#[macro_use]
mod shutdown;

#[derive(Parser)]
#[command(about = "axum-login on sessile's durable store")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
    /// Where the durable session store keeps its log and snapshots.
    #[arg(long, default_value = "login-sessions")]
    dir: std::path::PathBuf,
}

// ---- the users, as axum-login wants them -----------------------------------------------

#[derive(Clone)]
struct User {
    id: u64,
    name: &'static str,
    password: &'static str,
}

// The password stays out of logs.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl AuthUser for User {
    type Id = u64;

    fn id(&self) -> u64 {
        self.id
    }

    /// Changing the password logs out every session of the user. (A real app keeps a hash
    /// of the password and returns that.)
    fn session_auth_hash(&self) -> &[u8] {
        self.password.as_bytes()
    }
}

#[derive(Clone, Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// A fixed table of users (a real app asks its database).
#[derive(Clone)]
struct Backend {
    users: HashMap<u64, User>,
}

impl Default for Backend {
    fn default() -> Self {
        let ferris = User {
            id: 1,
            name: "ferris",
            password: "hunter42",
        };
        Backend {
            users: HashMap::from([(ferris.id, ferris)]),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no such user store error can happen")]
struct NoError;

impl AuthnBackend for Backend {
    type User = User;
    type Credentials = Credentials;
    type Error = NoError;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, NoError> {
        Ok(self
            .users
            .values()
            .find(|u| u.name == creds.username && u.password == creds.password)
            .cloned())
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, NoError> {
        Ok(self.users.get(id).cloned())
    }
}

type AuthSession = axum_login::AuthSession<Backend>;

// ---- the handlers ------------------------------------------------------------------------

/// Counts visits in the session (so a visitor has a session, and an id, before logging in).
async fn index(auth: AuthSession) -> Result<String, StatusCode> {
    let internal = |_| StatusCode::INTERNAL_SERVER_ERROR;
    let visits: u64 = auth
        .session
        .get("visits")
        .await
        .map_err(internal)?
        .unwrap_or(0)
        + 1;
    auth.session
        .insert("visits", visits)
        .await
        .map_err(internal)?;
    Ok(match &auth.user {
        Some(user) => format!("hello {}, visit {visits}", user.name),
        None => format!("not logged in, visit {visits}"),
    })
}

async fn login_page() -> Html<&'static str> {
    Html(
        "<!doctype html><form method=post action=/login>\
         <input name=username placeholder=ferris><input name=password type=password>\
         <input type=submit value='Log in'></form>",
    )
}

async fn login(mut auth: AuthSession, Form(creds): Form<Credentials>) -> Response {
    match auth.authenticate(creds).await {
        Ok(Some(user)) => match auth.login(&user).await {
            // `login` gives the session a new id (session fixation) and keeps its data.
            Ok(()) => Redirect::to("/protected").into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        Ok(None) => (StatusCode::UNAUTHORIZED, "wrong user name or password").into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn protected(auth: AuthSession) -> Response {
    match auth.user {
        Some(user) => format!("protected page of {}", user.name).into_response(),
        // `login_required!` stops anonymous requests before they get here.
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn logout(mut auth: AuthSession) -> Response {
    match auth.logout().await {
        Ok(_) => "logged out".into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(Args::parse(), shutdown::signal()).await
}

/// Serves the app until `stop` completes; then closes the store, which syncs its log and
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
        .with_expiry(Expiry::OnInactivity(Duration::days(1)));
    let auth_layer = AuthManagerLayerBuilder::new(Backend::default(), session_layer).build();

    let app = Router::new()
        .route("/protected", get(protected))
        .route_layer(login_required!(Backend))
        .route("/", get(index))
        .route("/login", get(login_page).post(login))
        .route("/logout", get(logout))
        .layer(auth_layer);

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

    /// Login, the protected route and logout over HTTP, and the login survives kill -9
    /// (see [`child::login_survives_kill_9`]); tower-sessions's cookie is `id`.
    #[test]
    fn login_protected_logout_and_the_login_survives_kill_9() {
        child::login_survives_kill_9("id");
    }
}
