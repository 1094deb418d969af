//! The layer's options over HTTP: saveUninitialized, resave, rolling, secure and proxy,
//! unset, the stored cookie winning over the current options, the path gate, genid and
//! per-request cookie options.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::routing::get;
use axum::Router;
use common::*;
use http::StatusCode;
use serde_json::{json, Value};
use sessile::{CookieOptions, CookieRecord, IsSecure, Proxy, SameSiteOption, Secure, Unset};

const MINUTE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// saveUninitialized
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn save_uninitialized_off_sends_and_stores_nothing_for_an_untouched_session() {
    let store = SpyStore::new();
    let addr = start(builder().store(store.clone()).build().unwrap()).await;
    for path in ["/", "/id", "/get/x", "/data"] {
        let r = get_with(addr, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.set_cookies, Vec::<String>::new(), "{path}");
    }
    // Setting then removing a field leaves the session unmodified too.
    let r = get_with(addr, "/remove/nothing", None).await;
    assert_eq!((r.body.as_str(), r.set_cookies.len()), ("none", 0));
    assert_eq!(store.take_calls(), Vec::<String>::new());
    assert_eq!(store.ids().await, Vec::<String>::new());

    // Once modified, it is stored and sent.
    let r = get_with(addr, "/set/user", None).await;
    let id = r.sid();
    assert_eq!(store.take_calls(), [format!("set:{id}")]);
    assert_eq!(store.ids().await, [id]);
}

#[tokio::test]
async fn save_uninitialized_on_stores_and_sends_empty_sessions() {
    let store = SpyStore::new();
    let layer = builder()
        .store(store.clone())
        .save_uninitialized(true)
        .build()
        .unwrap();
    let addr = start(layer).await;
    // Even a handler that never looks at the session.
    for path in ["/", "/id"] {
        let r = get_with(addr, path, None).await;
        let id = r.sid();
        if path == "/id" {
            assert_eq!(r.body, id);
        }
        assert_eq!(store.take_calls(), [format!("set:{id}")], "{path}");
        let rec = store.record(&id).await.expect("stored");
        assert_eq!(rec.data.as_str(), "{}");
        assert_eq!(
            rec.to_json(),
            r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}}"#
        );
    }
    assert_eq!(store.ids().await.len(), 2);
}

// ---------------------------------------------------------------------------------------
// resave
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn resave_off_touches_unmodified_and_applies_modified_sessions() {
    let store = SpyStore::new();
    let addr = start(builder().store(store.clone()).build().unwrap()).await;
    let (id, cookie) = login(addr).await;
    store.take_calls();

    get_with(addr, "/id", Some(&cookie)).await;
    assert_eq!(
        store.take_calls(),
        [format!("get:{id}"), format!("touch:{id}")]
    );
    get_with(addr, "/set/other", Some(&cookie)).await;
    assert_eq!(
        store.take_calls(),
        [format!("get:{id}"), format!("apply:{id}")]
    );
    // Setting a field to the value it has is no change.
    get_with(addr, "/set/other", Some(&cookie)).await;
    assert_eq!(
        store.take_calls(),
        [format!("get:{id}"), format!("touch:{id}")]
    );
    let rec = store.record(&id).await.unwrap();
    assert_eq!(rec.data.as_str(), r#"{"user":true,"other":true}"#);
}

#[tokio::test]
async fn resave_on_sets_the_whole_session_every_request() {
    let store = SpyStore::new();
    let layer = builder().store(store.clone()).resave(true).build().unwrap();
    let addr = start(layer).await;
    let (id, cookie) = login(addr).await;
    store.take_calls();

    for path in ["/id", "/set/other", "/set/other", "/"] {
        get_with(addr, path, Some(&cookie)).await;
        assert_eq!(
            store.take_calls(),
            [format!("get:{id}"), format!("set:{id}")],
            "{path}"
        );
    }
    let rec = store.record(&id).await.unwrap();
    assert_eq!(rec.data.as_str(), r#"{"user":true,"other":true}"#);
}

// ---------------------------------------------------------------------------------------
// rolling
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn rolling_sends_the_cookie_on_every_response_of_a_loaded_session() {
    let store = SpyStore::new();
    let layer = builder()
        .store(store.clone())
        .rolling(true)
        .cookie(CookieOptions::new().max_age(MINUTE))
        .build()
        .unwrap();
    let addr = start(layer).await;
    // A new, uninitialized session gets nothing (saveUninitialized is off).
    let r = get_with(addr, "/id", None).await;
    assert_eq!(r.set_cookies, Vec::<String>::new());
    assert_eq!(store.ids().await, Vec::<String>::new());

    let (id, cookie) = login(addr).await;
    for path in ["/", "/id", "/set/more"] {
        let r = get_with(addr, path, Some(&cookie)).await;
        assert_eq!(r.sid(), id, "{path}");
        let c = SetCookie::parse(r.session_cookie().unwrap());
        assert_near(c.expires_ms().unwrap(), now_ms() + 60_000, 2_000, path);
    }

    // The countdown restarts: a stored session about to expire is sent for a full maxAge.
    let soon = CookieRecord {
        original_max_age: Some(60_000),
        expires: Some(now_ms() + 3_000),
        ..CookieRecord::default()
    };
    store.put("soon", &record(json!({"n": 1}), soon)).await;
    let r = get_with(addr, "/id", Some(&cookie_for("soon", SECRET))).await;
    assert_eq!(r.body, "soon");
    let c = SetCookie::parse(r.session_cookie().unwrap());
    assert_near(
        c.expires_ms().unwrap(),
        now_ms() + 60_000,
        2_000,
        "rolled Expires",
    );
    let stored = store.record("soon").await.unwrap().cookie.expires.unwrap();
    assert_near(stored, now_ms() + 60_000, 1_000, "stored expires");
}

#[tokio::test]
async fn rolling_with_a_browser_session_cookie_sends_no_expires() {
    let layer = builder().rolling(true).build().unwrap();
    let addr = start(layer).await;
    let (id, cookie) = login(addr).await;
    let r = get_with(addr, "/id", Some(&cookie)).await;
    assert_eq!(r.sid(), id);
    assert_eq!(
        SetCookie::parse(r.session_cookie().unwrap()).attrs,
        ["Path=/", "HttpOnly"]
    );
}

#[tokio::test]
async fn rolling_off_sends_the_cookie_only_when_modified_and_expiring() {
    let layer = builder()
        .cookie(CookieOptions::new().max_age(MINUTE))
        .build()
        .unwrap();
    let addr = start(layer).await;
    let (id, cookie) = login(addr).await;
    let r = get_with(addr, "/id", Some(&cookie)).await;
    assert_eq!((r.body.as_str(), r.set_cookies.len()), (id.as_str(), 0));
    let r = get_with(addr, "/set/more", Some(&cookie)).await;
    assert_eq!(r.sid(), id);
    let c = SetCookie::parse(r.session_cookie().unwrap());
    assert_near(c.expires_ms().unwrap(), now_ms() + 60_000, 2_000, "Expires");
}

#[tokio::test]
async fn rolling_off_never_resends_a_browser_session_cookie() {
    let store = SpyStore::new();
    let addr = start(builder().store(store.clone()).build().unwrap()).await;
    let (id, cookie) = login(addr).await;
    let r = get_with(addr, "/set/more", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.set_cookies, Vec::<String>::new());
    // Saved all the same.
    let rec = store.record(&id).await.unwrap();
    assert_eq!(rec.data.as_str(), r#"{"user":true,"more":true}"#);
}

// ---------------------------------------------------------------------------------------
// secure and proxy
// ---------------------------------------------------------------------------------------

/// A server whose cookie is `secure: true`, with these proxy settings.
async fn secure_server(proxy: Proxy, trust_proxy: bool) -> (std::net::SocketAddr, SpyStore) {
    let store = SpyStore::new();
    let layer = builder()
        .store(store.clone())
        .proxy(proxy)
        .trust_proxy(trust_proxy)
        .cookie(CookieOptions::new().secure(Secure::On))
        .build()
        .unwrap();
    (start(layer).await, store)
}

/// `GET /set/user` with this `X-Forwarded-Proto`; whether a Secure cookie came back. Panics
/// when the session was not saved either way.
async fn secure_cookie_sent(
    addr: std::net::SocketAddr,
    store: &SpyStore,
    proto: Option<&str>,
) -> bool {
    let headers: Vec<(&str, &str)> = proto
        .map(|p| ("x-forwarded-proto", p))
        .into_iter()
        .collect();
    let r = send(addr, "/set/user", None, &headers).await;
    assert_eq!(r.status, StatusCode::OK);
    let id = r.body.clone();
    let rec = store
        .record(&id)
        .await
        .unwrap_or_else(|| panic!("{proto:?}: not saved"));
    assert_eq!(rec.cookie.secure, Some(true));
    assert_eq!(fields(&rec)["user"], json!(true));
    match r.session_cookie() {
        None => false,
        Some(c) => {
            let c = SetCookie::parse(c);
            assert!(c.has("Secure"), "{c:?}");
            assert_eq!(c.session_id(&[SECRET]).as_deref(), Some(id.as_str()));
            true
        }
    }
}

#[tokio::test]
async fn secure_cookie_over_plain_http_is_saved_but_not_sent() {
    let (addr, store) = secure_server(Proxy::Default, false).await;
    assert!(!secure_cookie_sent(addr, &store, None).await);
    assert_eq!(store.ids().await.len(), 1);
}

#[tokio::test]
async fn proxy_trust_reads_the_first_x_forwarded_proto() {
    let (addr, store) = secure_server(Proxy::Trust, false).await;
    for (proto, secure) in [
        (Some("https"), true),
        (Some("HTTPS"), true),
        (Some(" https , http"), true),
        (Some("http, https"), false),
        (Some("http"), false),
        (None, false),
    ] {
        assert_eq!(
            secure_cookie_sent(addr, &store, proto).await,
            secure,
            "{proto:?}"
        );
    }
}

#[tokio::test]
async fn proxy_ignore_ignores_x_forwarded_proto() {
    for trust_proxy in [false, true] {
        let (addr, store) = secure_server(Proxy::Ignore, trust_proxy).await;
        assert!(!secure_cookie_sent(addr, &store, Some("https")).await);
    }
}

#[tokio::test]
async fn proxy_default_follows_trust_proxy() {
    let (addr, store) = secure_server(Proxy::Default, true).await;
    assert!(secure_cookie_sent(addr, &store, Some("https")).await);
    assert!(secure_cookie_sent(addr, &store, Some("https, http")).await);
    // express's `req.protocol` is not lower-cased: `HTTPS` is not `https`.
    assert!(!secure_cookie_sent(addr, &store, Some("HTTPS")).await);
    assert!(!secure_cookie_sent(addr, &store, None).await);

    let (addr, store) = secure_server(Proxy::Default, false).await;
    assert!(!secure_cookie_sent(addr, &store, Some("https")).await);
}

#[tokio::test]
async fn is_secure_extension_marks_the_request_secure() {
    let store = SpyStore::new();
    let layer = builder()
        .store(store.clone())
        .trust_proxy(true)
        .cookie(CookieOptions::new().secure(Secure::On))
        .build()
        .unwrap();
    let mark = axum::middleware::map_request(|mut req: Request| async move {
        let secure = req.headers().contains_key("x-tls");
        req.extensions_mut().insert(IsSecure(secure));
        req
    });
    let addr = serve(routes().layer(layer).layer(mark)).await;
    let r = send(addr, "/set/user", None, &[("x-tls", "1")]).await;
    assert!(SetCookie::parse(r.session_cookie().expect("Set-Cookie")).has("Secure"));
    // IsSecure(false) wins over a trusted forwarded header (the application decided).
    let r = send(addr, "/set/user", None, &[("x-forwarded-proto", "https")]).await;
    assert_eq!(r.set_cookies, Vec::<String>::new());
    assert!(store.record(&r.body).await.is_some());
}

#[tokio::test]
async fn secure_auto_and_same_site_auto_follow_the_request() {
    let store = SpyStore::new();
    let layer = builder()
        .store(store.clone())
        .proxy(Proxy::Trust)
        .cookie(
            CookieOptions::new()
                .secure(Secure::Auto)
                .same_site(SameSiteOption::Auto),
        )
        .build()
        .unwrap();
    let addr = start(layer).await;

    let r = send(addr, "/set/user", None, &[("x-forwarded-proto", "https")]).await;
    let c = SetCookie::parse(r.session_cookie().unwrap());
    assert_eq!(c.attrs, ["Path=/", "HttpOnly", "Secure", "SameSite=None"]);
    let stored = store.record(&r.body).await.unwrap().to_value()["cookie"].clone();
    assert_eq!(
        (&stored["secure"], &stored["sameSite"]),
        (&json!(true), &json!("none"))
    );

    let r = get_with(addr, "/set/user", None).await;
    let c = SetCookie::parse(r.session_cookie().unwrap());
    assert_eq!(c.attrs, ["Path=/", "HttpOnly", "SameSite=Lax"]);
    let stored = store.record(&r.body).await.unwrap().to_value()["cookie"].clone();
    assert_eq!(
        (&stored["secure"], &stored["sameSite"]),
        (&json!(false), &json!("lax"))
    );
}

// ---------------------------------------------------------------------------------------
// unset
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn unset_destroy_destroys_the_stored_session() {
    let store = SpyStore::new();
    let layer = builder()
        .store(store.clone())
        .unset(Unset::Destroy)
        .cookie(CookieOptions::new().max_age(MINUTE))
        .rolling(true)
        .build()
        .unwrap();
    let addr = start(layer).await;
    let (id, cookie) = login(addr).await;
    store.take_calls();
    let r = get_with(addr, "/unset", Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "unset"));
    assert_eq!(r.set_cookies, Vec::<String>::new());
    assert_eq!(
        store.take_calls(),
        [format!("get:{id}"), format!("destroy:{id}")]
    );
    assert!(store.record(&id).await.is_none());
    // A new session unset: nothing stored, nothing sent.
    let r = get_with(addr, "/unset", None).await;
    assert_eq!(r.set_cookies, Vec::<String>::new());
    assert_eq!(store.ids().await, Vec::<String>::new());
}

#[tokio::test]
async fn unset_keep_leaves_the_stored_session_untouched() {
    let store = SpyStore::new();
    let layer = builder()
        .store(store.clone())
        .cookie(CookieOptions::new().max_age(MINUTE))
        .rolling(true)
        .build()
        .unwrap();
    let addr = start(layer).await;
    let (id, cookie) = login(addr).await;
    let before = store.record(&id).await.unwrap();
    store.take_calls();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = get_with(addr, "/unset", Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "unset"));
    assert_eq!(r.set_cookies, Vec::<String>::new());
    // Not saved, not touched: the record is exactly as it was (same expiry too).
    assert_eq!(store.take_calls(), [format!("get:{id}")]);
    assert_eq!(store.record(&id).await.unwrap(), before);
    assert_eq!(
        get_with(addr, "/get/dropped", Some(&cookie)).await.body,
        "null"
    );
}

// ---------------------------------------------------------------------------------------
// A loaded session keeps the cookie it was created with
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn loaded_session_sends_its_stored_cookie_not_the_current_options() {
    let store = SpyStore::new();
    let a = builder()
        .store(store.clone())
        .cookie(CookieOptions::new().domain("a.example").max_age(MINUTE))
        .build()
        .unwrap();
    let b = builder()
        .store(store.clone())
        .rolling(true)
        .cookie(
            CookieOptions::new()
                .domain("b.example")
                .http_only(false)
                .same_site(SameSiteOption::Strict)
                .priority(sessile::Priority::Low),
        )
        .build()
        .unwrap();
    let a_addr = start(a).await;
    let b_addr = start(b).await;
    let (id, cookie) = login(a_addr).await;

    let r = get_with(b_addr, "/id", Some(&cookie)).await;
    assert_eq!(r.sid(), id);
    let c = SetCookie::parse(r.session_cookie().unwrap());
    assert_eq!(c.attr_names(), ["Domain", "Path", "Expires", "HttpOnly"]);
    assert_eq!(c.attr("Domain"), Some("a.example"));
    assert_near(c.expires_ms().unwrap(), now_ms() + 60_000, 2_000, "Expires");

    // A new session on B uses B's options.
    let r = get_with(b_addr, "/set/user", None).await;
    let c = SetCookie::parse(r.session_cookie().unwrap());
    assert_eq!(
        c.attrs,
        [
            "Domain=b.example",
            "Path=/",
            "Priority=Low",
            "SameSite=Strict"
        ]
    );
}

// ---------------------------------------------------------------------------------------
// The path gate
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn requests_outside_the_cookie_path_get_no_session() {
    let store = SpyStore::new();
    let layer = builder()
        .store(store.clone())
        .cookie(CookieOptions::new().path("/app"))
        .build()
        .unwrap();
    let app = Router::new().nest("/app", routes()).merge(routes()).route(
        "/application",
        get(|s: Option<sessile::Session>| async move {
            s.and_then(|s| s.id()).unwrap_or_else(|| "none".into())
        }),
    );
    let addr = serve(app.layer(layer)).await;

    let r = get_with(addr, "/app/set/user", None).await;
    let id = r.sid();
    assert_eq!(
        SetCookie::parse(r.session_cookie().unwrap()).attr("Path"),
        Some("/app")
    );
    let cookie = r.cookie_pair();
    assert_eq!(get_with(addr, "/app/maybe", Some(&cookie)).await.body, id);
    store.take_calls();

    // Outside /app: no session, not even with a valid cookie; the store is not asked.
    let r = get_with(addr, "/set/user", Some(&cookie)).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    );
    assert_eq!(r.set_cookies, Vec::<String>::new());
    let r = get_with(addr, "/maybe", Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "none"));
    assert_eq!(store.take_calls(), Vec::<String>::new());

    // express compares with `indexOf(path) === 0`: `/application` is inside `/app`.
    let r = get_with(addr, "/application", Some(&cookie)).await;
    assert_eq!(r.body, id);
}

#[tokio::test]
async fn path_gate_sees_the_full_path_when_the_layer_is_nested() {
    // express mounts with `app.use('/app', session({ cookie: { path: '/app' } }))` and
    // checks the ORIGINAL url (`parseUrl.original(req).pathname`), so `/app/x` has a
    // session. axum's `nest` strips `/app` before the nested router's layers run and keeps
    // the original in the `OriginalUri` extension.
    let layer = builder()
        .cookie(CookieOptions::new().path("/app"))
        .build()
        .unwrap();
    let addr = serve(Router::new().nest("/app", routes().layer(layer))).await;
    let r = get_with(addr, "/app/set/user", None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.sid(), r.body);
}

// ---------------------------------------------------------------------------------------
// genid and cookie functions
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn genid_makes_ids_from_the_request() {
    let store = SpyStore::new();
    let n = Arc::new(AtomicU64::new(0));
    let counter = n.clone();
    let layer = builder()
        .store(store.clone())
        .genid(move |req| {
            let tenant = req
                .headers
                .get("x-tenant")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("anon");
            let n = counter.fetch_add(1, Ordering::SeqCst);
            format!(
                "{tenant}-{}-{n}",
                req.uri.path().trim_start_matches('/').replace('/', "_")
            )
        })
        .build()
        .unwrap();
    let addr = start(layer).await;
    let r = send(addr, "/set/user", None, &[("x-tenant", "acme")]).await;
    assert_eq!(r.sid(), "acme-set_user-0");
    assert_eq!(store.ids().await, ["acme-set_user-0"]);
    // regenerate asks genid with the request too.
    let r = send(
        addr,
        "/regenerate",
        Some(&r.cookie_pair()),
        &[("x-tenant", "beta")],
    )
    .await;
    assert_eq!(r.sid(), "beta-regenerate-1");
    assert_eq!(store.ids().await, ["beta-regenerate-1"]);
    assert_eq!(n.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn cookie_fn_computes_options_per_request() {
    let store = SpyStore::new();
    let layer = builder()
        .store(store.clone())
        .cookie_fn(|req| {
            if req.headers.contains_key("x-remember") {
                CookieOptions::new().max_age(Duration::from_secs(30 * 86_400))
            } else {
                CookieOptions::new().same_site(SameSiteOption::Lax)
            }
        })
        .build()
        .unwrap();
    let addr = start(layer).await;
    let r = send(addr, "/set/user", None, &[("x-remember", "1")]).await;
    let c = SetCookie::parse(r.session_cookie().unwrap());
    assert_eq!(c.attr_names(), ["Path", "Expires", "HttpOnly"]);
    assert_near(
        c.expires_ms().unwrap(),
        now_ms() + 30 * 86_400_000,
        2_000,
        "Expires",
    );

    let r = get_with(addr, "/set/user", None).await;
    let c = SetCookie::parse(r.session_cookie().unwrap());
    assert_eq!(c.attrs, ["Path=/", "HttpOnly", "SameSite=Lax"]);

    // Only new sessions get the function's options; a loaded one keeps its own.
    let id = r.sid();
    let r = send(
        addr,
        "/set/more",
        Some(&r.cookie_pair()),
        &[("x-remember", "1")],
    )
    .await;
    assert_eq!(r.set_cookies, Vec::<String>::new());
    let stored = store.record(&id).await.unwrap().to_value()["cookie"].clone();
    assert_eq!(stored["originalMaxAge"], Value::Null);
    assert_eq!(stored["sameSite"], json!("lax"));
}

/// The per-request options are computed once per request: the path check and a new
/// session's cookie use the same options (express calls `cookie(req)` once per request).
#[tokio::test]
async fn cookie_fn_is_called_once_for_a_request_that_starts_a_session() {
    let calls = Arc::new(AtomicU64::new(0));
    let counted = calls.clone();
    let layer = builder()
        .cookie_fn(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            CookieOptions::new()
        })
        .build()
        .unwrap();
    let addr = start(layer).await;
    let r = get_with(addr, "/set/user", None).await;
    assert!(r.session_cookie().is_some());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // A loaded session keeps its own cookie: the function only gates the path.
    get_with(addr, "/set/more", Some(&r.cookie_pair())).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn cookie_fn_path_gates_requests() {
    let layer = builder()
        .cookie_fn(|req| {
            let admin = req.uri.path().starts_with("/admin");
            CookieOptions::new().path(if admin { "/admin" } else { "/app" })
        })
        .build()
        .unwrap();
    let app = Router::new().nest("/admin", routes()).merge(routes());
    let addr = serve(app.layer(layer)).await;
    let r = get_with(addr, "/admin/set/user", None).await;
    assert_eq!(
        SetCookie::parse(r.session_cookie().unwrap()).attr("Path"),
        Some("/admin")
    );
    let r = get_with(addr, "/set/user", None).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    );
}

#[tokio::test]
async fn cookie_fn_attribute_that_cannot_be_sent_is_refused() {
    // express's cookie.serialize throws `option domain is invalid` for such a domain: no
    // cookie goes out with attributes smuggled through a per-request option.
    let layer = builder()
        .cookie_fn(|req| {
            let host = req
                .headers
                .get("x-domain")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("example.com");
            CookieOptions::new().domain(host)
        })
        .build()
        .unwrap();
    let addr = start(layer).await;
    let r = send(addr, "/set/user", None, &[("x-domain", "example.com")]).await;
    assert_eq!(
        SetCookie::parse(r.session_cookie().unwrap()).attr("Domain"),
        Some("example.com")
    );
    let r = send(
        addr,
        "/set/user",
        None,
        &[("x-domain", "evil.example; SameSite=None; Partitioned")],
    )
    .await;
    assert!(
        r.session_cookie().is_none(),
        "a Set-Cookie with smuggled attributes went out: {:?}",
        r.set_cookies
    );
    // The request fails as express's does (the serialize error goes to the error handler).
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{r:?}");
}
