//! The session cookie on the wire: the `Set-Cookie` format and every attribute option, and
//! how the `Cookie` header is read (first cookie wins, bad signatures, secret rotation).

mod common;

use std::time::{Duration, UNIX_EPOCH};

use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use common::*;
use hmac::Mac as _;
use http::StatusCode;
use serde_json::{json, Value};
use sessile::{CookieOptions, Priority, Proxy, SameSiteOption, Secure, Session, SessionLayer};

/// Starts a server with these cookie options and returns the session `Set-Cookie` of a
/// request that creates a session (sent with `X-Forwarded-Proto: https`, trusted).
async fn cookie_with(opts: CookieOptions) -> (SetCookie, SpyStore, String) {
    let store = SpyStore::new();
    let layer = builder()
        .store(store.clone())
        .proxy(Proxy::Trust)
        .cookie(opts)
        .build()
        .unwrap();
    let addr = start(layer).await;
    let r = send(addr, "/set/user", None, &[("x-forwarded-proto", "https")]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let c = SetCookie::parse(r.session_cookie().expect("a Set-Cookie"));
    (c, store, r.body)
}

/// The stored `cookie` object of session `id`, as express's JSON.
async fn stored_cookie(store: &SpyStore, id: &str) -> Value {
    store.record(id).await.expect("stored").to_value()["cookie"].clone()
}

#[tokio::test]
async fn default_set_cookie_has_express_shape() {
    let addr = start(builder().build().unwrap()).await;
    let r = get_with(addr, "/set/user", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.set_cookies.len(), 1, "{:?}", r.set_cookies);
    let raw = r.session_cookie().unwrap();
    assert!(!raw.contains("Max-Age"), "{raw}");
    let c = SetCookie::parse(raw);
    assert_eq!(c.name, "connect.sid");
    assert_eq!(c.attrs, ["Path=/", "HttpOnly"]);

    // The id: 32 characters of base64url, and the one the handler saw.
    let id = &r.body;
    assert_eq!(id.len(), 32, "{id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{id}"
    );

    // The value: `s%3A<id>.<sig>`, the signature being unpadded base64 of
    // HMAC-SHA256(secret, id), computed here independently of the crate.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(id.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD_NO_PAD.encode(mac.finalize().into_bytes());
    let expected = format!("s:{id}.{sig}");
    assert_eq!(c.value, sessile::cookie::encode(&expected));
    assert!(c.value.starts_with("s%3A"), "{}", c.value);
    assert_eq!(c.session_id(&[SECRET]).as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn signature_matches_node_cookie_signature_vector() {
    // cookie-signature's vector: sign("apple", "keyboard cat").
    let layer = builder().genid(|_| "apple".into()).build().unwrap();
    let addr = start(layer).await;
    let r = get_with(addr, "/set/user", None).await;
    assert_eq!(
        r.session_cookie(),
        Some("connect.sid=s%3Aapple.D8Y%2BpkTAmeR0PobOhY4G97PRW%2Bj7bUnP%2F5m6%2FOn1MCU; Path=/; HttpOnly")
    );
}

#[tokio::test]
async fn every_new_session_gets_a_distinct_id() {
    let addr = start(builder().build().unwrap()).await;
    let a = get_with(addr, "/set/user", None).await.sid();
    let b = get_with(addr, "/set/user", None).await.sid();
    assert_ne!(a, b);
}

#[tokio::test]
async fn name_option_renames_the_cookie() {
    let layer = builder().name("app.sid").build().unwrap();
    let addr = start(layer).await;
    let r = get_with(addr, "/put/who/alice", None).await;
    assert!(r.session_cookie().is_none(), "{:?}", r.set_cookies);
    let c = SetCookie::parse(r.named_cookie("app.sid").expect("app.sid cookie"));
    let id = c.session_id(&[SECRET]).unwrap();
    assert_eq!(id, r.body);
    // Read back under the new name; the default name is not read.
    let pair = format!("app.sid={}", c.value);
    assert_eq!(
        get_with(addr, "/get/who", Some(&pair)).await.body,
        "\"alice\""
    );
    let wrong = format!("connect.sid={}", c.value);
    assert_eq!(get_with(addr, "/get/who", Some(&wrong)).await.body, "null");
}

#[tokio::test]
async fn all_attributes_in_express_order() {
    let (c, store, id) = cookie_with(
        CookieOptions::new()
            .domain("example.com")
            .path("/")
            .max_age(Duration::from_secs(3600))
            .secure(Secure::On)
            .partitioned(true)
            .priority(Priority::High)
            .same_site(SameSiteOption::Strict),
    )
    .await;
    assert_eq!(
        c.attr_names(),
        [
            "Domain",
            "Path",
            "Expires",
            "HttpOnly",
            "Secure",
            "Partitioned",
            "Priority",
            "SameSite"
        ]
    );
    assert_eq!(c.attr("Domain"), Some("example.com"));
    assert_eq!(c.attr("Path"), Some("/"));
    assert_eq!(c.attr("Priority"), Some("High"));
    assert_eq!(c.attr("SameSite"), Some("Strict"));
    assert_near(
        c.expires_ms().unwrap(),
        now_ms() + 3_600_000,
        2_000,
        "Expires",
    );
    // The stored cookie object, in express's key order (read from the record's text: a
    // `Value` has serde_json's order).
    let stored = stored_cookie(&store, &id).await;
    let text = store.record(&id).await.expect("stored").to_json();
    let cookie = text
        .strip_prefix(r#"{"cookie":{"#)
        .unwrap()
        .split('}')
        .next();
    let keys: Vec<&str> = cookie
        .unwrap()
        .split(',')
        .filter_map(|m| m.strip_prefix('"')?.split_once("\":").map(|(k, _)| k))
        .collect();
    assert_eq!(
        keys,
        [
            "originalMaxAge",
            "partitioned",
            "priority",
            "expires",
            "secure",
            "httpOnly",
            "domain",
            "path",
            "sameSite"
        ]
    );
    assert_eq!(stored["originalMaxAge"], json!(3_600_000));
    assert_eq!(stored["priority"], json!("high"));
    assert_eq!(stored["sameSite"], json!("strict"));
    assert_eq!(stored["domain"], json!("example.com"));
}

#[tokio::test]
async fn path_option_sets_path_attribute() {
    let store = SpyStore::new();
    let layer = builder()
        .store(store.clone())
        .cookie(CookieOptions::new().path("/app"))
        .build()
        .unwrap();
    let addr = serve(Router::new().nest("/app", routes()).layer(layer)).await;
    let r = get_with(addr, "/app/set/user", None).await;
    let c = SetCookie::parse(r.session_cookie().expect("Set-Cookie"));
    assert_eq!(c.attrs, ["Path=/app", "HttpOnly"]);
    assert_eq!(stored_cookie(&store, &r.body).await["path"], json!("/app"));
}

#[tokio::test]
async fn http_only_false_omits_the_attribute() {
    let (c, store, id) = cookie_with(CookieOptions::new().http_only(false)).await;
    assert_eq!(c.attrs, ["Path=/"]);
    assert_eq!(stored_cookie(&store, &id).await["httpOnly"], json!(false));
}

#[tokio::test]
async fn secure_off_and_unset_send_no_secure_attribute() {
    let (c, store, id) = cookie_with(CookieOptions::new().secure(Secure::Off)).await;
    assert_eq!(c.attrs, ["Path=/", "HttpOnly"]);
    assert_eq!(stored_cookie(&store, &id).await["secure"], json!(false));

    let (c, store, id) = cookie_with(CookieOptions::new()).await;
    assert_eq!(c.attrs, ["Path=/", "HttpOnly"]);
    // express leaves `secure` undefined, so JSON has no key.
    assert!(stored_cookie(&store, &id).await.get("secure").is_none());
}

#[tokio::test]
async fn secure_on_over_https_sends_secure() {
    let (c, store, id) = cookie_with(CookieOptions::new().secure(Secure::On)).await;
    assert_eq!(c.attrs, ["Path=/", "HttpOnly", "Secure"]);
    assert_eq!(stored_cookie(&store, &id).await["secure"], json!(true));
}

#[tokio::test]
async fn partitioned_and_priority_options() {
    let (c, store, id) = cookie_with(CookieOptions::new().partitioned(true)).await;
    assert_eq!(c.attrs, ["Path=/", "HttpOnly", "Partitioned"]);
    assert_eq!(stored_cookie(&store, &id).await["partitioned"], json!(true));

    let (c, store, id) = cookie_with(CookieOptions::new().partitioned(false)).await;
    assert_eq!(c.attrs, ["Path=/", "HttpOnly"]);
    assert_eq!(
        stored_cookie(&store, &id).await["partitioned"],
        json!(false)
    );

    for (p, attr, json_name) in [
        (Priority::Low, "Low", "low"),
        (Priority::Medium, "Medium", "medium"),
        (Priority::High, "High", "high"),
    ] {
        let (c, store, id) = cookie_with(CookieOptions::new().priority(p)).await;
        assert_eq!(
            c.attrs.join("; "),
            format!("Path=/; HttpOnly; Priority={attr}")
        );
        assert_eq!(
            stored_cookie(&store, &id).await["priority"],
            json!(json_name)
        );
    }
}

#[tokio::test]
async fn same_site_options() {
    for (opt, attr, stored) in [
        (SameSiteOption::True, "Strict", json!(true)),
        (SameSiteOption::Lax, "Lax", json!("lax")),
        (SameSiteOption::Strict, "Strict", json!("strict")),
        (SameSiteOption::None, "None", json!("none")),
    ] {
        let (c, store, id) = cookie_with(CookieOptions::new().same_site(opt)).await;
        assert_eq!(
            c.attrs.join("; "),
            format!("Path=/; HttpOnly; SameSite={attr}"),
            "{opt:?}"
        );
        assert_eq!(
            stored_cookie(&store, &id).await["sameSite"],
            stored,
            "{opt:?}"
        );
    }
    // `false` / not given: no attribute.
    let (c, store, id) = cookie_with(CookieOptions::new().same_site(SameSiteOption::Off)).await;
    assert_eq!(c.attrs, ["Path=/", "HttpOnly"]);
    assert!(stored_cookie(&store, &id).await.get("sameSite").is_none());
}

#[tokio::test]
async fn max_age_sets_expires_to_now_plus_max_age() {
    let before = now_ms();
    let (c, store, id) =
        cookie_with(CookieOptions::new().max_age(Duration::from_millis(90_000))).await;
    let after = now_ms();
    assert_eq!(c.attr_names(), ["Path", "Expires", "HttpOnly"]);
    let exp = c.expires_ms().unwrap();
    // `Expires` has whole seconds: floor(now + maxAge).
    assert!(
        exp >= (before + 90_000) / 1000 * 1000 && exp <= after + 90_000,
        "Expires {exp} outside [{before}, {after}] + 90 s"
    );
    let stored = stored_cookie(&store, &id).await;
    assert_eq!(stored["originalMaxAge"], json!(90_000));
    let iso = stored["expires"].as_str().expect("ISO expires");
    assert!(iso.ends_with('Z') && iso.len() == 24, "{iso}");
    let stored_ms = sessile::clock::parse_date(iso).unwrap();
    assert_near(stored_ms, exp, 1_000, "stored expires vs Expires");

    // `max_age_ms` is the same option in express's unit.
    let (c, _, _) = cookie_with(CookieOptions::new().max_age_ms(Some(5_000))).await;
    assert_near(c.expires_ms().unwrap(), now_ms() + 5_000, 2_000, "Expires");
    // `maxAge: null` is a browser-session cookie.
    let (c, store, id) = cookie_with(CookieOptions::new().max_age_ms(None)).await;
    assert_eq!(c.attrs, ["Path=/", "HttpOnly"]);
    let stored = stored_cookie(&store, &id).await;
    assert_eq!(
        (&stored["originalMaxAge"], &stored["expires"]),
        (&Value::Null, &Value::Null)
    );
}

#[tokio::test]
async fn expires_option_sets_a_fixed_expires() {
    let at_s = (now_ms() / 1000 + 7200) as u64;
    let at = UNIX_EPOCH + Duration::from_secs(at_s);
    let (c, store, id) = cookie_with(CookieOptions::new().expires(at)).await;
    assert_eq!(c.attr_names(), ["Path", "Expires", "HttpOnly"]);
    // The session is touched at the end of the request, as express does, so the expiry
    // can move by the few milliseconds the request took.
    assert_near(
        c.expires_ms().unwrap(),
        at_s as i64 * 1000,
        1_000,
        "Expires",
    );
    let stored = stored_cookie(&store, &id).await;
    let oma = stored["originalMaxAge"].as_i64().expect("originalMaxAge");
    assert_near(oma, 7_200_000, 2_000, "originalMaxAge");
}

#[tokio::test]
async fn cookie_value_is_uri_encoded_and_read_back() {
    // An id with characters that must be encoded goes out encoded and comes back decoded.
    let layer = builder()
        .genid(|_| "id with/slash;semi=é".into())
        .build()
        .unwrap();
    let addr = start(layer).await;
    let r = get_with(addr, "/put/who/alice", None).await;
    let c = SetCookie::parse(r.session_cookie().unwrap());
    assert!(
        c.value
            .starts_with("s%3Aid%20with%2Fslash%3Bsemi%3D%C3%A9."),
        "{}",
        c.value
    );
    assert_eq!(
        c.session_id(&[SECRET]).as_deref(),
        Some("id with/slash;semi=é")
    );
    let back = get_with(addr, "/get/who", Some(&r.cookie_pair())).await;
    assert_eq!(back.body, "\"alice\"");
}

#[tokio::test]
async fn jar_round_trip_keeps_one_session() {
    let addr = start(builder().build().unwrap()).await;
    let mut jar = Jar::default();
    let mut ids = Vec::new();
    for n in 1..=3 {
        let r = get_with(addr, &format!("/put/n/{n}"), jar.header().as_deref()).await;
        assert_eq!(r.status, StatusCode::OK);
        jar.update(&r);
        ids.push(r.body.clone());
    }
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(
        get_with(addr, "/get/n", jar.header().as_deref()).await.body,
        "\"3\""
    );
    assert!(jar.get(NAME).is_some());
}

#[tokio::test]
async fn handler_set_cookie_is_kept_next_to_the_session_cookie() {
    async fn theme(s: Session) -> impl axum::response::IntoResponse {
        s.insert("theme", "dark").unwrap();
        ([(http::header::SET_COOKIE, "theme=dark; Path=/")], "ok")
    }
    let layer = builder().build().unwrap();
    let addr = serve(Router::new().route("/theme", get(theme)).layer(layer)).await;
    let r = get_with(addr, "/theme", None).await;
    assert_eq!(r.set_cookies.len(), 2, "{:?}", r.set_cookies);
    assert_eq!(r.set_cookies[0], "theme=dark; Path=/");
    assert!(r.set_cookies[1].starts_with("connect.sid=s%3A"));
}

// ---------------------------------------------------------------------------------------
// Reading the Cookie header
// ---------------------------------------------------------------------------------------

/// A server on a spy store with two sessions whose `who` is `a` and `b`.
async fn two_sessions() -> (std::net::SocketAddr, SpyStore, [(String, String); 2]) {
    let store = SpyStore::new();
    let addr = start(builder().store(store.clone()).build().unwrap()).await;
    let a = get_with(addr, "/put/who/a", None).await;
    let b = get_with(addr, "/put/who/b", None).await;
    store.take_calls();
    (
        addr,
        store,
        [(a.sid(), a.cookie_pair()), (b.sid(), b.cookie_pair())],
    )
}

#[tokio::test]
async fn first_cookie_of_the_name_wins() {
    let (addr, _, [(_, a), (_, b)]) = two_sessions().await;
    let both = format!("{a}; {b}");
    assert_eq!(get_with(addr, "/get/who", Some(&both)).await.body, "\"a\"");
    let both = format!("{b}; {a}");
    assert_eq!(get_with(addr, "/get/who", Some(&both)).await.body, "\"b\"");
    let others = format!("x=1; {b}; y=2");
    assert_eq!(
        get_with(addr, "/get/who", Some(&others)).await.body,
        "\"b\""
    );
    // Two Cookie header lines: Node joins them, so the first line's cookie wins.
    let r = send(addr, "/get/who", Some(&a), &[("cookie", &b)]).await;
    assert_eq!(r.body, "\"a\"");
}

#[tokio::test]
async fn cookie_value_forms_the_cookie_package_accepts() {
    let (addr, _, [(id, a), _]) = two_sessions().await;
    let value = a.strip_prefix("connect.sid=").unwrap();
    let raw = sessile::cookie::decode(value).into_owned();
    assert!(raw.starts_with("s:"), "{raw}");
    for header in [
        // Quoted, as `cookie.parse` strips one pair of double quotes.
        format!("{NAME}=\"{value}\""),
        // Not percent-encoded at all (`s:` and the signature's `+`/`/` as they are).
        format!("{NAME}={raw}"),
        // Whitespace around the pair.
        format!("a=1;  {NAME} = {value} ;b=2"),
    ] {
        let r = get_with(addr, "/get/who", Some(&header)).await;
        assert_eq!(r.body, "\"a\"", "{header}");
    }
    assert_eq!(get_with(addr, "/id", Some(&a)).await.body, id);
}

#[tokio::test]
async fn a_bad_first_cookie_hides_a_good_second_one() {
    let (addr, store, [(_, a), _]) = two_sessions().await;
    let header = format!("{NAME}=s%3Ajunk.sig; {a}");
    let r = get_with(addr, "/get/who", Some(&header)).await;
    assert_eq!(r.body, "null");
    assert!(
        !store.calls().iter().any(|c| c.starts_with("get:")),
        "{:?}",
        store.calls()
    );
    // An empty first value counts as no cookie too (express's `if (raw)`).
    let header = format!("{NAME}=; {a}");
    assert_eq!(get_with(addr, "/get/who", Some(&header)).await.body, "null");
}

#[tokio::test]
async fn bad_cookies_start_a_new_session_without_asking_the_store() {
    let (addr, store, [(id, good), _]) = two_sessions().await;
    let value = good.strip_prefix("connect.sid=").unwrap();
    let sig_at = value.rfind('.').unwrap();
    let (signed_id, sig) = (&value[..sig_at], &value[sig_at + 1..]);
    let flip = |s: &str, at: usize| {
        let mut b = s.as_bytes().to_vec();
        b[at] = if b[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let bad = [
        ("unsigned", format!("{NAME}={id}")),
        ("no signature", format!("{NAME}=s%3A{id}")),
        ("trailing dot", format!("{NAME}=s%3A{id}.")),
        (
            "tampered id",
            format!("{NAME}={}.{sig}", flip(signed_id, 10)),
        ),
        (
            "tampered sig",
            format!("{NAME}={signed_id}.{}", flip(sig, 3)),
        ),
        ("truncated", format!("{NAME}={}", &value[..value.len() - 1])),
        ("no s: prefix", format!("{NAME}={}", &value[4..])),
        ("unknown secret", cookie_for(&id, "another secret")),
        ("empty", format!("{NAME}=")),
    ];
    for (what, header) in bad {
        store.take_calls();
        let r = get_with(addr, "/set/intruder", Some(&header)).await;
        assert_eq!(r.status, StatusCode::OK, "{what}");
        let new_id = r.sid();
        assert_ne!(new_id, id, "{what}: the client's id was reused");
        assert_eq!(r.body, new_id, "{what}");
        let calls = store.take_calls();
        assert_eq!(calls, [format!("set:{new_id}")], "{what}: store calls");
        let kept = store.record(&id).await.expect("old session still stored");
        assert!(!fields(&kept).contains_key("intruder"), "{what}");
    }
}

#[tokio::test]
async fn signed_id_unknown_to_the_store_gets_a_new_id() {
    let store = SpyStore::new();
    let addr = start(builder().store(store.clone()).build().unwrap()).await;
    let r = get_with(addr, "/set/user", Some(&cookie_for("made-up-id", SECRET))).await;
    let new_id = r.sid();
    assert_ne!(new_id, "made-up-id");
    assert_eq!(
        store.take_calls(),
        ["get:made-up-id".to_string(), format!("set:{new_id}")]
    );
    assert!(store.record("made-up-id").await.is_none());
    // Unmodified: no cookie and nothing stored (saveUninitialized is off).
    let r = get_with(addr, "/id", Some(&cookie_for("made-up-id", SECRET))).await;
    assert_eq!(r.set_cookies, Vec::<String>::new());
    assert_eq!(store.take_calls(), ["get:made-up-id"]);
}

#[tokio::test]
async fn secret_rotation_reads_old_cookies_and_signs_with_the_new_secret() {
    let store = SpyStore::new();
    let old = SessionLayer::builder()
        .secret("old")
        .store(store.clone())
        .build()
        .unwrap();
    let old_addr = start(old).await;
    let r = get_with(old_addr, "/put/who/alice", None).await;
    let c = SetCookie::parse(r.session_cookie().unwrap());
    let id = c.session_id(&["old"]).unwrap();
    let old_pair = r.cookie_pair();

    let rotated = |rolling| {
        SessionLayer::builder()
            .secrets(["new", "old"])
            .store(store.clone())
            .rolling(rolling)
            .build()
            .unwrap()
    };
    let addr = start(rotated(false)).await;
    // A cookie signed with the old secret is still read.
    let r = get_with(addr, "/get/who", Some(&old_pair)).await;
    assert_eq!(r.body, "\"alice\"");
    // A new session is signed with the new (first) secret.
    let r = get_with(addr, "/set/user", None).await;
    let c = SetCookie::parse(r.session_cookie().unwrap());
    assert_eq!(c.session_id(&["new"]).as_deref(), Some(r.body.as_str()));
    assert_eq!(c.session_id(&["old"]), None);
    // A cookie signed with neither is not read.
    let r = get_with(addr, "/get/who", Some(&cookie_for(&id, "older"))).await;
    assert_eq!(r.body, "null");

    // With rolling, the old session's cookie is re-sent signed with the new secret.
    let addr = start(rotated(true)).await;
    let r = get_with(addr, "/id", Some(&old_pair)).await;
    assert_eq!(r.body, id);
    let c = SetCookie::parse(r.session_cookie().expect("rolling Set-Cookie"));
    assert_eq!(c.session_id(&["new"]).as_deref(), Some(id.as_str()));
    assert_eq!(c.session_id(&["old"]), None);
}

/// Another app's cookie with a raw UTF-8 value (`pref=café`) in the same header does not hide
/// the session cookie (issue 10, item 1): Node reads header bytes as Latin-1 and finds it.
#[tokio::test]
async fn a_raw_utf8_cookie_beside_the_session_cookie_keeps_the_session() {
    let addr = start(builder().build().unwrap()).await;
    let r = get_with(addr, "/put/who/alice", None).await;
    let pair = r.cookie_pair();
    for header in [
        format!("pref=caf\u{e9}; {pair}"),
        format!("{pair}; pref=caf\u{e9}"),
        format!("\u{1F36A}=\u{e9}; {pair}; x=\u{e9}\u{e9}"),
    ] {
        let r = get_with(addr, "/get/who", Some(&header)).await;
        assert_eq!(r.status, StatusCode::OK, "{header:?}: {r:?}");
        assert_eq!(
            r.body, "\"alice\"",
            "{header:?}: the session was not loaded"
        );
        assert!(r.set_cookies.is_empty(), "{header:?}: {:?}", r.set_cookies);
    }
}

/// Several `Cookie` headers are read in order, as Node joins them with `; ` (and as HTTP/2
/// sends them, one per cookie); raw bytes in one header do not hide the others.
#[tokio::test]
async fn the_session_cookie_is_found_in_any_cookie_header() {
    let layer = builder().build().unwrap();
    let r = get_with(start(layer.clone()).await, "/put/who/alice", None).await;
    let pair = r.cookie_pair();
    let svc = routes().layer(layer);
    let req = http::Request::get("/get/who")
        .header(
            http::header::COOKIE,
            http::HeaderValue::from_bytes(b"pref=caf\xc3\xa9").unwrap(),
        )
        .header(http::header::COOKIE, "a=1")
        .header(http::header::COOKIE, pair.as_str())
        .body(axum::body::Body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(svc, req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get(http::header::SET_COOKIE).is_none());
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"\"alice\"");
}

/// A `maxAge` whose expiry lies past what JavaScript's `Date` holds (8.64e15 ms after the
/// epoch) makes express's `cookie.expires` an Invalid Date: `cookie.serialize` refuses it, so
/// no `Set-Cookie` is sent, and the session is saved with `expires: null` (how
/// `JSON.stringify` writes an Invalid Date) and its `originalMaxAge` (issue 10, item 3).
#[tokio::test]
async fn a_max_age_past_javascript_dates_sends_no_cookie_and_saves_the_session() {
    const JS_MAX: i64 = 8_640_000_000_000_000;
    for max_age in [JS_MAX, i64::MAX] {
        let store = SpyStore::new();
        let layer = builder()
            .store(store.clone())
            .cookie(CookieOptions::new().max_age_ms(Some(max_age)))
            .build()
            .unwrap();
        let addr = start(layer).await;
        let r = get_with(addr, "/put/who/alice", None).await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert!(r.set_cookies.is_empty(), "{max_age}: {:?}", r.set_cookies);
        let ids = store.ids().await;
        assert_eq!(ids.len(), 1, "the session is saved");
        let cookie = stored_cookie(&store, &ids[0]).await;
        assert_eq!(cookie["expires"], Value::Null, "{cookie}");
        assert_eq!(cookie["originalMaxAge"], json!(max_age), "{cookie}");
        assert_eq!(
            store.record(&ids[0]).await.unwrap().to_value()["who"],
            json!("alice")
        );
    }
    // Just inside JavaScript's range, the date is valid and the cookie is sent.
    let (c, _, _) = cookie_with(CookieOptions::new().max_age_ms(Some(86_400_000))).await;
    assert!(c.attr("Expires").is_some());
}
