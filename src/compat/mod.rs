//! Sessile's stores behind the session crates Rust apps already use.
//!
//! - [`tower_sessions`] (features `tower-sessions` and `tower-sessions-014`): the stores as
//!   a `tower_sessions::SessionStore`, for tower-sessions' `SessionManagerLayer` and
//!   axum-login.
//! - [`actix`] (feature `actix`): the stores as an `actix_session::storage::SessionStore`,
//!   for actix-web's `SessionMiddleware`.
//!
//! The peer's layer keeps its own cookie (name, format, signing): only where the sessions
//! are kept changes. Sharing sessions with Node's express-session needs sessile's own
//! [`SessionLayer`](crate::SessionLayer).

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;
#[cfg(any(feature = "tower-sessions", feature = "tower-sessions-014"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "tower-sessions", feature = "tower-sessions-014")))
)]
pub mod tower_sessions;
