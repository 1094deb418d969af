//! Strict ids: the hook and counters for session cookies that name no session (a bad
//! signature, or a validly signed id the store does not know), and the layer's counters.

use std::sync::Arc;

// Plain std atomics: counters, outside what the loom models explore.
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a session cookie was not taken, given to the
/// [`on_unknown_id`](crate::SessionLayerBuilder::on_unknown_id) hook.
///
/// ```
/// use sessile::UnknownIdKind;
/// assert_ne!(UnknownIdKind::BadSignature, UnknownIdKind::NotInStore);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownIdKind {
    /// The cookie's signature did not verify with any secret: a forged or mangled cookie,
    /// or one signed with a secret that was dropped (or has leaked and was rotated).
    BadSignature,
    /// The signature verified but the store has no such session: expired, destroyed
    /// (logout), or replayed after its end. Valid signatures on unknown ids in numbers
    /// can mean a leaked secret.
    NotInStore,
}

/// A session cookie that named no session, as the
/// [`on_unknown_id`](crate::SessionLayerBuilder::on_unknown_id) hook sees it. It never
/// holds the whole id or cookie (they are credentials): only their first characters.
///
/// ```
/// use sessile::{SessionLayer, UnknownIdKind};
///
/// let layer = SessionLayer::builder()
///     .secret("s")
///     .on_unknown_id(|u| {
///         if u.kind == UnknownIdKind::BadSignature {
///             eprintln!("forged session cookie {}… on {} {}", u.id_prefix, u.method, u.path);
///         }
///     })
///     .build();
/// assert!(layer.is_ok());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UnknownId {
    /// Why the cookie was not taken.
    pub kind: UnknownIdKind,
    /// The first characters (six at most) of the id the cookie carries (for a bad
    /// signature, of the id part of its value).
    pub id_prefix: String,
    /// The request's method.
    pub method: http::Method,
    /// The request's path (without the query).
    pub path: String,
}

/// The `on_unknown_id` hook.
pub(crate) type UnknownIdHook = Arc<dyn Fn(&UnknownId) + Send + Sync>;

/// The layer's counters since it was built ([`SessionLayer::stats`](crate::SessionLayer::stats)).
///
/// ```
/// let layer = sessile::SessionLayer::builder().secret("s").build().unwrap();
/// let stats = layer.stats();
/// assert_eq!((stats.bad_signatures, stats.unknown_ids), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerStats {
    /// Session cookies whose signature did not verify.
    pub bad_signatures: u64,
    /// Validly signed session ids the store did not know (an old id past its renewal
    /// grace included).
    pub unknown_ids: u64,
    /// Sessions ended on load by `max_lifetime`.
    pub lifetime_expired: u64,
    /// Requests with an old id that `renew_grace` resolved to its new session.
    pub renewal_redirects: u64,
}

/// The counters behind [`LayerStats`], shared by every service of a layer.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) bad_signatures: AtomicU64,
    pub(crate) unknown_ids: AtomicU64,
    pub(crate) lifetime_expired: AtomicU64,
    pub(crate) renewal_redirects: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> LayerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LayerStats {
            bad_signatures: get(&self.bad_signatures),
            unknown_ids: get(&self.unknown_ids),
            lifetime_expired: get(&self.lifetime_expired),
            renewal_redirects: get(&self.renewal_redirects),
        }
    }
}

/// Counts a session cookie that named no session and calls the hook, if there is one.
pub(crate) fn report(
    config: &crate::config::Config,
    kind: UnknownIdKind,
    id_prefix: &str,
    parts: &http::request::Parts,
) {
    let c = &config.counters;
    Counters::bump(match kind {
        UnknownIdKind::BadSignature => &c.bad_signatures,
        UnknownIdKind::NotInStore => &c.unknown_ids,
    });
    if let Some(f) = &config.on_unknown_id {
        f(&UnknownId {
            kind,
            id_prefix: id_prefix.to_owned(),
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
        });
    }
}
