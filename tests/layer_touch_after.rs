//! `SessionLayerBuilder::touch_after`: the store touch of an unmodified session is skipped
//! while its stored expiry would move by less than `d`, and done as a cookie store (`apply`
//! with no field change) once it would move by more; off by default (a touch per request,
//! as express). Time moves with the crate's test clock (`advance_for_tests`), never by
//! sleeping; the clock is process-wide, so this binary's tests take [`CLOCK`] in turn.

mod common;

use std::time::Duration;

use common::{builder, get_with, login, serve, SpyStore};
use sessile::clock::{advance_for_tests, now_ms};
use sessile::CookieOptions;

/// Held by every test of this binary: the clock moves for the whole process.
static CLOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const DAY_MS: i64 = 86_400_000;

/// A server on a spy store with a day's `maxAge`, and `touch_after` if given.
async fn app(touch_after: Option<Duration>, max_age: bool) -> (std::net::SocketAddr, SpyStore) {
    let store = SpyStore::new();
    let mut layer = builder().store(store.clone());
    if max_age {
        layer = layer.cookie(CookieOptions::new().max_age(Duration::from_millis(DAY_MS as u64)));
    }
    if let Some(d) = touch_after {
        layer = layer.touch_after(d);
    }
    (
        serve(common::routes().layer(layer.build().unwrap())).await,
        store,
    )
}

/// The store writes of the logged calls, by kind (`touch`, `apply`, ...).
fn writes(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| !c.starts_with("get:"))
        .map(|c| c.split(':').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn off_by_default_every_request_touches() {
    let _clock = CLOCK.lock().await;
    let (addr, store) = app(None, true).await;
    let (_, cookie) = login(addr).await;
    store.take_calls();
    for _ in 0..3 {
        assert_eq!(
            get_with(addr, "/get/user", Some(&cookie)).await.body,
            "true"
        );
    }
    assert_eq!(writes(&store.take_calls()), ["touch", "touch", "touch"]);
}

/// Moves the clock by `ms`, reads the session, and returns the store writes of that request.
async fn read_after(
    ms: u64,
    addr: std::net::SocketAddr,
    cookie: &str,
    store: &SpyStore,
) -> Vec<String> {
    advance_for_tests(ms);
    let r = get_with(addr, "/get/user", Some(cookie)).await;
    assert_eq!(r.body, "true", "{r:?}");
    writes(&store.take_calls())
}

/// Within `d` of the stored expiry no write at all; past it one `apply` that stores the new
/// cookie (so the record's expiry catches up), then none again for another `d`.
#[tokio::test]
async fn touches_are_skipped_until_the_expiry_moved_by_d() {
    let _clock = CLOCK.lock().await;
    let (addr, store) = app(Some(Duration::from_secs(60)), true).await;
    let (id, cookie) = login(addr).await;
    store.take_calls();
    let none = Vec::<String>::new();
    for elapsed in [10, 20, 30] {
        assert_eq!(
            read_after(10_000, addr, &cookie, &store).await,
            none,
            "{elapsed} s < d: no write"
        );
    }
    assert_eq!(
        read_after(31_000, addr, &cookie, &store).await,
        ["apply"],
        "61 s >= d: the cookie stored"
    );
    let stored = store.record(&id).await.expect("still stored");
    let expires = stored.cookie.expires.expect("an expiry");
    assert!(
        (expires - (now_ms() + DAY_MS)).abs() < 20_000,
        "the stored expiry moved to now + maxAge"
    );
    assert_eq!(common::fields(&stored)["user"], serde_json::json!(true));
    assert_eq!(
        read_after(30_000, addr, &cookie, &store).await,
        none,
        "30 s after the refresh"
    );
}

/// A browser-session cookie has no expiry to compare: touched on every request. A cookie
/// changed otherwise (`maxAge` set by the handler, no field changed) is stored at once.
#[tokio::test]
async fn browser_session_cookies_and_changed_cookies_are_written() {
    let _clock = CLOCK.lock().await;
    let (addr, store) = app(Some(Duration::from_secs(60)), false).await;
    let (_, cookie) = login(addr).await;
    store.take_calls();
    get_with(addr, "/get/user", Some(&cookie)).await;
    get_with(addr, "/get/user", Some(&cookie)).await;
    assert_eq!(writes(&store.take_calls()), ["touch", "touch"]);

    let (addr, store) = app(Some(Duration::from_secs(60)), true).await;
    let (id, cookie) = login(addr).await;
    store.take_calls();
    get_with(addr, "/max-age/3600000", Some(&cookie)).await;
    assert_eq!(writes(&store.take_calls()), ["apply"]);
    let stored = store.record(&id).await.unwrap();
    assert_eq!(stored.cookie.original_max_age, Some(3_600_000));
}
