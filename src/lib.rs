//! # sessile
//!
//! express-session for tower and axum.
//!
//! - [`SessionLayer`]: the middleware, with every express-session option under its Rust name
//!   (see [Options](#options)), and cookies signed exactly as express signs them, so a Node service
//!   and a Rust service with the same secret read each other's cookies.
//! - [`Session`]: `req.session`, with `regenerate`, `destroy`, `reload`, `save`, `touch`, the
//!   cookie's `maxAge`, and an axum extractor (feature `axum`, on by default).
//! - [`SessionStore`]: express's store interface, async, with typed errors.
//! - [`EmbeddedStore`]: the default store, sharded in memory with idle expiry and caps.
//! - `RedisStore` (feature `redis`): sessions in Redis for many nodes, in the format of Node's
//!   connect-redis, so an Express app can share them.
//! - `compat` (features `tower-sessions`, `tower-sessions-014`, `actix`): the stores behind
//!   tower-sessions (and so axum-login) and actix-session, for apps that keep their layer.
//!
//! ```
//! use axum::{routing::get, Router};
//! use sessile::{CookieOptions, Session, SessionLayer};
//! use std::time::Duration;
//!
//! async fn views(session: Session) -> Result<String, sessile::Error> {
//!     let n: u64 = session.get("views")?.unwrap_or(0) + 1;
//!     session.insert("views", n)?;
//!     Ok(format!("you have been here {n} times"))
//! }
//!
//! let sessions = SessionLayer::builder()
//!     .secret("keyboard cat")
//!     .cookie(CookieOptions::new().max_age(Duration::from_secs(3600)))
//!     .build()
//!     .expect("valid options");
//! let app: Router = Router::new().route("/", get(views)).layer(sessions);
//! ```
//!
//! ## Options
//!
//! express-session's options, under their Rust names:
//!
//! | express option        | here                                                    |
//! |-----------------------|---------------------------------------------------------|
//! | `cookie`              | [`CookieOptions`], or a per-request function             |
//! | `genid`               | [`SessionLayerBuilder::genid`]                           |
//! | `name`                | [`SessionLayerBuilder::name`]                            |
//! | `proxy`               | [`Proxy`]                                                |
//! | `resave`              | [`SessionLayerBuilder::resave`]                          |
//! | `rolling`             | [`SessionLayerBuilder::rolling`]                         |
//! | `saveUninitialized`   | [`SessionLayerBuilder::save_uninitialized`]              |
//! | `secret`              | [`SessionLayerBuilder::secret`] / [`secrets`](SessionLayerBuilder::secrets) |
//! | `store`               | [`SessionLayerBuilder::store`]                           |
//! | `unset`               | [`Unset`]                                                |
//!
//! ## What differs from express-session (and why it cannot be seen on the wire)
//!
//! - The store write finishes before the response is handed back, so a redirect never
//!   reaches the browser before the login is saved.
//! - With `resave = false` (the default here), a request sends only the fields it changed,
//!   applied atomically, so parallel requests of one session do not lose each other's
//!   changes.
//! - Defaults: `resave = false` and `saveUninitialized = false` (express's defaults are
//!   deprecated and both `true`).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unreachable_pub)]

#[cfg(feature = "bench")]
#[cfg_attr(docsrs, doc(cfg(feature = "bench")))]
pub mod bench;
pub mod clock;
#[cfg(any(
    feature = "tower-sessions",
    feature = "tower-sessions-014",
    feature = "actix"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "tower-sessions",
        feature = "tower-sessions-014",
        feature = "actix"
    )))
)]
pub mod compat;
mod config;
pub mod cookie;
mod error;
mod events;
#[cfg(feature = "axum")]
mod extract;
pub mod id;
mod layer;
mod options;
mod record;
mod session;
mod session_cookie;
pub mod signing;
pub mod store;
mod sync;

pub use error::{
    ConfigError, Corrupted, Corruption, Error, IdError, OpenError, Poison, PoisonCause, StoreError,
};
pub use layer::{
    ErrorBody, ErrorHandler, IntoErrorResponse, LayerStats, MaxLifetime, RequestLine, ResponseBody,
    ResponseFuture, SessionLayer, SessionLayerBuilder, SessionService, UnknownId, UnknownIdKind,
    MAX_RENEW_GRACE,
};
pub use options::{CookieOptions, IsSecure, Proxy, SameSiteOption, Secure, Unset};
pub use record::{Change, Changes, CookieRecord, Data, Priority, Record, SameSite};
pub use session::Session;
pub use signing::Secrets;
pub use store::embedded::{
    EmbeddedStore, EmbeddedStoreBuilder, FsyncPolicy, LogStats, RecoveryReport, SnapshotStats,
    Stats,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::redis::{RedisStats, RedisStore, RedisStoreBuilder};
pub use store::{Applied, Created, SessionStore};

/// Entry points for the fuzz targets (`fuzz/`), built only under `cfg(fuzzing)` (which
/// `cargo fuzz` sets): not API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub use store::embedded::fuzzing;
