//! The session's methods over HTTP: regenerate, cycle_id, destroy, reload, save, touch, the
//! cookie's maxAge/originalMaxAge/expires, set_max_age, expiry, and field values.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use common::*;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sessile::{CookieOptions, CookieRecord, Session};
use tokio::sync::Notify;

const MINUTE: Duration = Duration::from_secs(60);

/// A server on a spy store with [`routes`] plus `extra`.
async fn server(
    configure: impl FnOnce(sessile::SessionLayerBuilder) -> sessile::SessionLayerBuilder,
    extra: Router,
) -> (std::net::SocketAddr, SpyStore) {
    let store = SpyStore::new();
    let layer = configure(builder().store(store.clone())).build().unwrap();
    (serve(routes().merge(extra).layer(layer)).await, store)
}

// ---------------------------------------------------------------------------------------
// regenerate, cycle_id, destroy
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn regenerate_gives_a_new_empty_session_and_destroys_the_old() {
    let (addr, store) = server(|b| b, Router::new()).await;
    let (old, cookie) = login(addr).await;
    store.take_calls();
    let r = get_with(addr, "/regenerate", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    let new = r.sid();
    assert_eq!(r.body, new);
    assert_ne!(new, old);
    assert_eq!(
        store.take_calls(),
        [
            format!("get:{old}"),
            format!("destroy:{old}"),
            format!("set:{new}")
        ]
    );
    assert!(store.record(&old).await.is_none());
    assert_eq!(store.record(&new).await.unwrap().data.as_str(), "{}");
    // The new cookie carries the new, empty session; the old cookie nothing.
    assert_eq!(
        get_with(addr, "/data", Some(&r.cookie_pair())).await.body,
        "{}"
    );
    let r = get_with(addr, "/id", Some(&cookie)).await;
    assert_ne!(r.body, old);
    assert_ne!(r.body, new);
}

#[tokio::test]
async fn regenerate_then_write_stores_only_the_new_fields() {
    async fn relogin(s: Session) -> Result<String, sessile::Error> {
        s.insert("before", 1)?;
        s.regenerate().await?;
        s.insert("user", "bob")?;
        Ok(s.id().unwrap())
    }
    let (addr, store) = server(|b| b, Router::new().route("/relogin", get(relogin))).await;
    let (old, cookie) = login(addr).await;
    let r = get_with(addr, "/relogin", Some(&cookie)).await;
    let new = r.sid();
    assert_ne!(new, old);
    assert_eq!(
        store.record(&new).await.unwrap().data.as_str(),
        r#"{"user":"bob"}"#
    );
    assert_eq!(store.ids().await, [new]);
}

#[tokio::test]
async fn cycle_id_keeps_the_fields_under_a_new_id() {
    let (addr, store) = server(
        |b| b.cookie(CookieOptions::new().max_age(MINUTE)),
        Router::new(),
    )
    .await;
    let (old, cookie) = login(addr).await;
    get_with(addr, "/put/name/alice", Some(&cookie)).await;
    let old_cookie = store.record(&old).await.unwrap().cookie;
    store.take_calls();
    let r = get_with(addr, "/cycle", Some(&cookie)).await;
    let new = r.sid();
    assert_eq!(r.body, new);
    assert_ne!(new, old);
    assert_eq!(
        store.take_calls(),
        [
            format!("get:{old}"),
            format!("destroy:{old}"),
            format!("set:{new}")
        ]
    );
    assert!(store.record(&old).await.is_none());
    let rec = store.record(&new).await.unwrap();
    assert_eq!(rec.data.as_str(), r#"{"user":true,"name":"alice"}"#);
    assert_eq!(rec.cookie.original_max_age, old_cookie.original_max_age);
    assert_eq!(
        get_with(addr, "/get/name", Some(&r.cookie_pair()))
            .await
            .body,
        "\"alice\""
    );
}

#[tokio::test]
async fn destroy_removes_the_session_and_sends_no_cookie() {
    let (addr, store) = server(
        |b| b.rolling(true).cookie(CookieOptions::new().max_age(MINUTE)),
        Router::new(),
    )
    .await;
    let (id, cookie) = login(addr).await;
    store.take_calls();
    let r = get_with(addr, "/destroy", Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "destroyed"));
    assert_eq!(r.set_cookies, Vec::<String>::new(), "even with rolling");
    assert_eq!(
        store.take_calls(),
        [format!("get:{id}"), format!("destroy:{id}")]
    );
    assert!(store.record(&id).await.is_none());
    // The old cookie now starts a new session.
    let r = get_with(addr, "/set/user", Some(&cookie)).await;
    assert_ne!(r.sid(), id);
    assert_eq!(
        get_with(addr, "/get/user", Some(&cookie)).await.body,
        "null"
    );
}

#[tokio::test]
async fn methods_after_destroy_report_no_session() {
    async fn after(s: Session) -> String {
        s.destroy().await.unwrap();
        format!(
            "{:?} {} {}",
            s.id(),
            s.insert("x", 1).unwrap_err(),
            s.get::<u8>("x").unwrap_err()
        )
    }
    let (addr, _) = server(|b| b, Router::new().route("/after", get(after))).await;
    let (_, cookie) = login(addr).await;
    let r = get_with(addr, "/after", Some(&cookie)).await;
    assert_eq!(r.body, "None no session no session");
    assert_eq!(r.set_cookies, Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------
// reload and save
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn reload_sees_a_write_made_directly_to_the_store() {
    let store = SpyStore::new();
    let direct = store.clone();
    let route = get(move |s: Session| {
        let store = direct.clone();
        async move {
            let id = s.id().unwrap();
            let before = s.get_value("n").unwrap();
            let mut rec = store.record(&id).await.unwrap();
            rec.data = sessile::Data::from_json_text(r#"{"user":true,"n":2}"#).unwrap();
            store.put(&id, &rec).await;
            let stale = s.get_value("n").unwrap();
            s.reload().await.unwrap();
            let after = s.get_value("n").unwrap();
            format!("{before:?} {stale:?} {after:?}")
        }
    });
    let layer = builder().store(store.clone()).build().unwrap();
    let addr = serve(routes().route("/reload-direct", route).layer(layer)).await;
    let (id, cookie) = login(addr).await;
    get_with(addr, "/put/n/1", Some(&cookie)).await;
    // `/put` stores a string; the direct write a number.
    let r = get_with(addr, "/reload-direct", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(
        r.body,
        r#"Some(String("1")) Some(String("1")) Some(Number(2))"#
    );
    // The end of the request does not write the old value back.
    assert_eq!(fields(&store.record(&id).await.unwrap())["n"], json!(2));
}

#[tokio::test]
async fn reload_sees_a_parallel_requests_write() {
    let started = Arc::new(Notify::new());
    let go = Arc::new(Notify::new());
    let (s1, g1) = (started.clone(), go.clone());
    let route = get(move |s: Session| {
        let (started, go) = (s1.clone(), g1.clone());
        async move {
            let before = s.get_value("who").unwrap();
            started.notify_one();
            go.notified().await;
            let stale = s.get_value("who").unwrap();
            s.reload().await.unwrap();
            let after = s.get_value("who").unwrap();
            format!("{before:?} {stale:?} {after:?}")
        }
    });
    let (addr, store) = server(|b| b, Router::new().route("/wait-reload", route)).await;
    let (id, cookie) = login(addr).await;
    get_with(addr, "/put/who/a", Some(&cookie)).await;

    let c = cookie.clone();
    let waiting = tokio::spawn(async move { get_with(addr, "/wait-reload", Some(&c)).await });
    started.notified().await;
    let r = get_with(addr, "/put/who/b", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    go.notify_one();
    let r = waiting.await.unwrap();
    assert_eq!(
        r.body,
        r#"Some(String("a")) Some(String("a")) Some(String("b"))"#
    );
    assert_eq!(fields(&store.record(&id).await.unwrap())["who"], json!("b"));
}

#[tokio::test]
async fn reload_of_a_session_not_in_the_store_fails() {
    async fn reload(s: Session) -> String {
        match s.reload().await {
            Ok(()) => "reloaded".into(),
            Err(e) => format!("{e:?}: {e}"),
        }
    }
    let (addr, _) = server(|b| b, Router::new().route("/reload", get(reload))).await;
    let r = get_with(addr, "/reload", None).await;
    assert_eq!(r.body, "NotInStore: failed to load session");
    let (_, cookie) = login(addr).await;
    assert_eq!(
        get_with(addr, "/reload", Some(&cookie)).await.body,
        "reloaded"
    );
}

#[tokio::test]
async fn save_writes_to_the_store_before_the_handler_returns() {
    let store = SpyStore::new();
    let direct = store.clone();
    let route = get(move |s: Session| {
        let store = direct.clone();
        async move {
            s.insert("saved", true).unwrap();
            let id = s.id().unwrap();
            let has =
                |r: Option<sessile::Record>| r.is_some_and(|r| fields(&r).contains_key("saved"));
            let before = has(store.record(&id).await);
            s.save().await.unwrap();
            let after = has(store.record(&id).await);
            format!("before={before} after={after}")
        }
    });
    let layer = builder().store(store.clone()).build().unwrap();
    let addr = serve(routes().route("/save-now", route).layer(layer)).await;
    let r = get_with(addr, "/save-now", None).await;
    assert_eq!(r.body, "before=false after=true");
    let id = r.sid();
    // Saved once, by `save`; the end of the request has nothing left to write.
    assert_eq!(store.take_calls(), [format!("set:{id}")]);
    // The same on a loaded session.
    let r = get_with(addr, "/save-now", Some(&r.cookie_pair())).await;
    assert_eq!(r.body, "before=true after=true");
}

#[tokio::test]
async fn the_store_write_is_finished_when_the_response_arrives() {
    let (addr, store) = server(|b| b, Router::new()).await;
    store.slow_writes(Duration::from_millis(150));
    let (id, cookie) = login(addr).await;
    assert!(store
        .record(&id)
        .await
        .is_some_and(|r| fields(&r).contains_key("user")));
    get_with(addr, "/put/step/two", Some(&cookie)).await;
    assert_eq!(
        fields(&store.record(&id).await.unwrap())["step"],
        json!("two")
    );
    get_with(addr, "/destroy", Some(&cookie)).await;
    assert!(store.record(&id).await.is_none());
}

// ---------------------------------------------------------------------------------------
// touch, maxAge, expires
// ---------------------------------------------------------------------------------------

/// A session stored directly with `originalMaxAge` 10 s that expires in 1 s.
async fn nearly_expired(store: &SpyStore, id: &str) -> String {
    let cookie = CookieRecord {
        original_max_age: Some(10_000),
        expires: Some(now_ms() + 1_000),
        ..CookieRecord::default()
    };
    store.put(id, &record(json!({"n": 1}), cookie)).await;
    cookie_for(id, SECRET)
}

#[tokio::test]
async fn touch_resets_the_expiry_to_original_max_age() {
    let (addr, store) = server(|b| b, Router::new()).await;
    let cookie = nearly_expired(&store, "t").await;
    let r = get_with(addr, "/touch", Some(&cookie)).await;
    let v = json_body(&r);
    let (before, after) = (v["before"].as_i64().unwrap(), v["after"].as_i64().unwrap());
    assert!((0..=1_000).contains(&before), "{v}");
    assert!((9_000..=10_000).contains(&after), "{v}");
    // Unmodified and not rolling: no cookie, but the store has the new expiry.
    assert_eq!(r.set_cookies, Vec::<String>::new());
    assert_eq!(store.take_calls(), ["get:t", "touch:t"]);
    let stored = store.record("t").await.unwrap().cookie;
    assert_near(
        stored.expires.unwrap(),
        now_ms() + 10_000,
        1_000,
        "stored expires",
    );
    assert_eq!(stored.original_max_age, Some(10_000));
}

#[tokio::test]
async fn cookie_max_age_original_max_age_and_expires() {
    let (addr, store) = server(
        |b| b.cookie(CookieOptions::new().max_age(MINUTE)),
        Router::new(),
    )
    .await;
    let v = json_body(&get_with(addr, "/cookie", None).await);
    let now = now_ms();
    let max_age = v["maxAge"].as_i64().unwrap();
    assert!((59_000..=60_000).contains(&max_age), "{v}");
    let dur = v["maxAgeDuration"].as_i64().unwrap();
    assert!((59_000..=60_000).contains(&dur), "{v}");
    assert_eq!(v["originalMaxAge"], json!(60_000));
    assert_near(
        v["expires"].as_i64().unwrap(),
        now + 60_000,
        1_000,
        "expires",
    );

    // A loaded session reports its stored cookie.
    let cookie = nearly_expired(&store, "n").await;
    let v = json_body(&get_with(addr, "/cookie", Some(&cookie)).await);
    assert!((0..=1_000).contains(&v["maxAge"].as_i64().unwrap()), "{v}");
    assert_eq!(v["originalMaxAge"], json!(10_000));

    // A browser-session cookie has none of them.
    let (addr, _) = server(|b| b, Router::new()).await;
    let v = json_body(&get_with(addr, "/cookie", None).await);
    assert_eq!(
        v,
        json!({"maxAge": null, "maxAgeDuration": null, "originalMaxAge": null, "expires": null})
    );
}

#[tokio::test]
async fn set_max_age_changes_the_stored_cookie_and_the_next_set_cookie() {
    let (addr, store) = server(
        |b| b.cookie(CookieOptions::new().max_age(MINUTE)),
        Router::new(),
    )
    .await;
    let (id, cookie) = login(addr).await;

    // `req.session.cookie.maxAge = 120000` alone does not modify the session: no
    // Set-Cookie (express), but the stored cookie changes through `touch`.
    let r = get_with(addr, "/max-age/120000", Some(&cookie)).await;
    assert_eq!(r.set_cookies, Vec::<String>::new());
    let stored = store.record(&id).await.unwrap().cookie;
    assert_eq!(stored.original_max_age, Some(120_000));
    assert_near(
        stored.expires.unwrap(),
        now_ms() + 120_000,
        1_000,
        "stored expires",
    );

    // The next Set-Cookie carries the new lifetime.
    let r = get_with(addr, "/set/more", Some(&cookie)).await;
    let c = SetCookie::parse(r.session_cookie().unwrap());
    assert_near(
        c.expires_ms().unwrap(),
        now_ms() + 120_000,
        2_000,
        "Expires",
    );

    // `maxAge = null`: a browser-session cookie from now on.
    get_with(addr, "/max-age/null", Some(&cookie)).await;
    let stored = store.record(&id).await.unwrap().cookie;
    assert_eq!((stored.original_max_age, stored.expires), (None, None));
    let r = get_with(addr, "/set/again", Some(&cookie)).await;
    assert_eq!(r.set_cookies, Vec::<String>::new());
}

#[tokio::test]
async fn set_max_age_on_a_new_session_shapes_its_first_cookie() {
    async fn remember(s: Session) -> Result<String, sessile::Error> {
        s.insert("user", "alice")?;
        s.set_max_age(Some(Duration::from_secs(7 * 86_400)))?;
        Ok(s.id().unwrap())
    }
    let (addr, store) = server(|b| b, Router::new().route("/remember", get(remember))).await;
    let r = get_with(addr, "/remember", None).await;
    let c = SetCookie::parse(r.session_cookie().unwrap());
    assert_near(
        c.expires_ms().unwrap(),
        now_ms() + 7 * 86_400_000,
        2_000,
        "Expires",
    );
    let stored = store.record(&r.sid()).await.unwrap().cookie;
    assert_eq!(stored.original_max_age, Some(7 * 86_400_000));
}

/// (A session kept alive by requests and then expired, under the test clock, is in
/// `tests/clock_expiry.rs`.)
#[tokio::test]
async fn a_record_whose_expiry_has_passed_is_not_loaded() {
    let (addr, store) = server(|b| b, Router::new()).await;
    let past = CookieRecord {
        original_max_age: Some(1_000),
        expires: Some(now_ms() - 1_000),
        ..CookieRecord::default()
    };
    store
        .put("past", &record(json!({"user": true}), past))
        .await;
    let r = get_with(addr, "/id", Some(&cookie_for("past", SECRET))).await;
    assert_ne!(r.body, "past");
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    roles: Vec<String>,
    age: u32,
}

async fn typed_set(s: Session) -> Result<String, sessile::Error> {
    let user = User {
        name: "alice".into(),
        roles: vec!["admin".into()],
        age: 42,
    };
    s.insert("user", &user)?;
    Ok(s.id().unwrap())
}

async fn typed_get(s: Session, Path(kind): Path<String>) -> Result<String, sessile::Error> {
    Ok(match kind.as_str() {
        "user" => format!("{:?}", s.get::<User>("user")?),
        _ => format!("{:?}", s.get::<u64>("user")?),
    })
}

#[tokio::test]
async fn typed_values_round_trip_through_the_store() {
    let routes = Router::new()
        .route("/typed/set", get(typed_set))
        .route("/typed/get/{kind}", get(typed_get));
    let (addr, store) = server(|b| b, routes).await;
    let r = get_with(addr, "/typed/set", None).await;
    let id = r.sid();
    let cookie = r.cookie_pair();
    assert_eq!(
        store.record(&id).await.unwrap().to_json(),
        // A value the handler sets is written by serde_json: without its `preserve_order`
        // feature, the keys of an object inside it are sorted.
        r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":{"age":42,"name":"alice","roles":["admin"]}}"#
    );
    let r = get_with(addr, "/typed/get/user", Some(&cookie)).await;
    assert_eq!(
        r.body,
        r#"Some(User { name: "alice", roles: ["admin"], age: 42 })"#
    );
    // The wrong type is an error the handler can answer with `?`: 500, and nothing of the
    // error in the body.
    let r = get_with(addr, "/typed/get/number", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.body, "Internal Server Error");
    // A missing field is `None`.
    let (addr, _) = server(
        |b| b,
        Router::new().route("/typed/get/{kind}", get(typed_get)),
    )
    .await;
    assert_eq!(get_with(addr, "/typed/get/user", None).await.body, "None");
}

#[tokio::test]
async fn the_cookie_field_name_is_refused() {
    async fn sneaky(s: Session) -> String {
        let err = s.insert("cookie", json!({"domain": "evil"})).unwrap_err();
        assert!(
            matches!(&err, sessile::Error::ReservedField(f) if f == "cookie"),
            "{err:?}"
        );
        format!("{} modified={}", err, s.is_modified().unwrap())
    }
    let (addr, store) = server(|b| b, Router::new().route("/sneaky", get(sneaky))).await;
    let r = get_with(addr, "/sneaky", None).await;
    assert_eq!(
        r.body,
        "the field name `cookie` is reserved for the session cookie modified=false"
    );
    assert_eq!(r.set_cookies, Vec::<String>::new());
    assert_eq!(store.ids().await, Vec::<String>::new());
    // On a loaded session the stored cookie is untouched too.
    let (id, cookie) = login(addr).await;
    let before = store.record(&id).await.unwrap();
    get_with(addr, "/sneaky", Some(&cookie)).await;
    assert_eq!(store.record(&id).await.unwrap().to_json(), before.to_json());
}

#[tokio::test]
async fn remove_and_clear() {
    let (addr, store) = server(|b| b, Router::new()).await;
    let (id, cookie) = login(addr).await;
    get_with(addr, "/put/a/1", Some(&cookie)).await;
    assert_eq!(
        get_with(addr, "/remove/a", Some(&cookie)).await.body,
        "\"1\""
    );
    assert_eq!(
        get_with(addr, "/remove/a", Some(&cookie)).await.body,
        "none"
    );
    assert_eq!(get_with(addr, "/get/a", Some(&cookie)).await.body, "null");
    assert_eq!(
        store.record(&id).await.unwrap().data.as_str(),
        r#"{"user":true}"#
    );

    get_with(addr, "/put/b/2", Some(&cookie)).await;
    let r = get_with(addr, "/clear", Some(&cookie)).await;
    assert_eq!(r.body, id);
    // The session stays (with its cookie); only the fields are gone.
    let rec = store.record(&id).await.expect("still stored");
    assert_eq!(rec.data.as_str(), "{}");
    assert_eq!(get_with(addr, "/data", Some(&cookie)).await.body, "{}");
    assert_eq!(get_with(addr, "/id", Some(&cookie)).await.body, id);
}

#[tokio::test]
async fn data_lists_the_fields_without_the_cookie() {
    let (addr, store) = server(|b| b, Router::new()).await;
    let cookie = CookieRecord {
        original_max_age: Some(60_000),
        expires: Some(now_ms() + 60_000),
        domain: Some("example.com".into()),
        ..CookieRecord::default()
    };
    store
        .put(
            "d",
            &record(json!({"a": 1, "nested": {"b": [true, null]}}), cookie),
        )
        .await;
    let r = get_with(addr, "/data", Some(&cookie_for("d", SECRET))).await;
    assert_eq!(r.body, r#"{"a":1,"nested":{"b":[true,null]}}"#);
    assert_eq!(
        get_with(addr, "/get/cookie", Some(&cookie_for("d", SECRET)))
            .await
            .body,
        "null"
    );
}

#[tokio::test]
async fn set_expires_fixes_the_expiry_and_none_makes_a_browser_session_cookie() {
    async fn expires(s: Session, Path(ms): Path<String>) -> Result<String, sessile::Error> {
        s.insert("user", "alice")?;
        let at = match ms.as_str() {
            "null" => None,
            ms => Some(std::time::UNIX_EPOCH + Duration::from_millis(ms.parse().unwrap())),
        };
        s.set_expires(at)?;
        Ok(s.id().unwrap())
    }
    let (addr, store) = server(|b| b, Router::new().route("/expires/{ms}", get(expires))).await;
    // A whole second, so that the cookie's `Expires` (whole seconds) carries it.
    let at = (now_ms() / 1000 + 3 * 86_400) * 1000;
    let before = now_ms();
    let r = get_with(addr, &format!("/expires/{at}"), None).await;
    let after = now_ms();
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let id = r.sid();
    // As express does, the end of the request touches the session (expires = now +
    // originalMaxAge), which moves the expiry by the milliseconds the request took since
    // the handler set it: between `at` and `at + (after - before)`.
    let took = after - before;
    let c = SetCookie::parse(r.session_cookie().unwrap());
    let sent = c.expires_ms().unwrap();
    assert!((at..=at + took).contains(&sent), "Expires {sent}, set {at}");
    let stored = store.record(&id).await.unwrap().cookie;
    let expires = stored.expires.unwrap();
    assert!(
        (at..=at + took).contains(&expires),
        "stored expires {expires}, set {at}"
    );
    // `originalMaxAge` becomes the time left when it was set.
    let left = stored.original_max_age.expect("originalMaxAge");
    assert!(
        (at - after..=at - before).contains(&left),
        "originalMaxAge {left} is not the time left ({}..={})",
        at - after,
        at - before
    );

    // `expires = null`: a browser-session cookie, stored without an expiry.
    let r = get_with(addr, "/expires/null", Some(&r.cookie_pair())).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.set_cookies, Vec::<String>::new());
    let stored = store.record(&id).await.unwrap().cookie;
    assert_eq!((stored.original_max_age, stored.expires), (None, None));
}

/// A handler's `?` on a session error answers `500 Internal Server Error` and nothing of the
/// error: not a value that did not decode, not the layer's own words.
#[tokio::test]
async fn no_session_error_text_reaches_the_client() {
    async fn seven(s: sessile::Session) -> Result<&'static str, sessile::Error> {
        s.insert("views", "seven")?;
        Ok("set")
    }
    async fn views(s: sessile::Session) -> Result<String, sessile::Error> {
        let n: Option<u64> = s.get("views")?;
        Ok(format!("{n:?}"))
    }
    let layer = builder().build().unwrap();
    let app = Router::new()
        .route("/seven", get(seven))
        .route("/views", get(views))
        .layer(layer)
        .route("/outside", get(views));
    let addr = serve(app).await;
    let r = get_with(addr, "/seven", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let cookie = r.cookie_pair();
    for (path, cookie) in [("/views", Some(cookie.as_str())), ("/outside", None)] {
        let r = get_with(addr, path, cookie).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
            "{path}"
        );
    }
}
