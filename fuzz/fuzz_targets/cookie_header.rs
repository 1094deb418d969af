//! Arbitrary bytes as a request's `Cookie` headers, as the layer reads them: never a panic;
//! several headers read as Node reads them joined with `; `; a session cookie sent after any
//! other cookies is found and its signed id reads back; a signed id always reads back, a
//! tampered one never; the percent-encoding that carries it round-trips.
//!
//! The input is taken as raw bytes (not through `from_utf8_lossy`: a raw UTF-8 or Latin-1
//! byte in another cookie is exactly what once hid the session cookie). Each line (`\n`)
//! is one `Cookie` header; a line that `HeaderValue::from_bytes` refuses is left out of the
//! request (as hyper would refuse it), and is still given to `cookie::find` on its own.

#![no_main]

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use http::header::{HeaderMap, HeaderValue, COOKIE};
use libfuzzer_sys::fuzz_target;
use sessile::CookieRecord;
use sessile::{cookie, signing, Secrets};

fn secrets() -> &'static Secrets {
    static SECRETS: OnceLock<Secrets> = OnceLock::new();
    SECRETS.get_or_init(|| Secrets::new(["keyboard cat", "an older secret"]).expect("non-empty"))
}

/// What the layer's `read_cookie` does with a request's headers.
fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let raw = cookie::find_in_headers(headers, name)?;
    signing::session_id(&raw, secrets()).map(str::to_owned)
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(b"; ".as_slice())
}

fuzz_target!(|bytes: &[u8]| {
    let secrets = secrets();

    // The request: one `Cookie` header per line that HTTP accepts.
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let mut headers = HeaderMap::new();
    let mut accepted: Vec<&[u8]> = Vec::new();
    for line in &lines {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, v);
            accepted.push(line);
        }
    }
    let joined = join(&accepted);

    // Names to look for: fixed ones and the input's first cookie name, when it is text.
    let first_name = lines[0]
        .split(|&b| b == b'=')
        .next()
        .and_then(|n| std::str::from_utf8(n).ok())
        .map(str::trim);
    let names = ["connect.sid", "sid", "a", "pref", ""];
    for name in names.iter().copied().chain(first_name) {
        let found = cookie::find_in_headers(&headers, name);
        // Several headers read as the one header Node makes of them.
        assert_eq!(
            found,
            cookie::find(&joined, name),
            "{name:?} in {:?}",
            String::from_utf8_lossy(&joined)
        );
        if let Some(value) = &found {
            // Bytes of 0x80 and more are Latin-1 characters: without `%` escapes nothing
            // outside U+0000..=U+00FF can appear.
            if !joined.contains(&b'%') {
                assert!(value.chars().all(|c| c <= '\u{ff}'), "{value:?}");
            }
            if let Some(id) = signing::session_id(value, secrets) {
                // Only a value this process signed verifies (a fuzzer cannot forge HMACs),
                // and the id is the part between `s:` and the signature.
                assert_eq!(signing::cookie_value(id, secrets), **value);
            }
        }
        let _ = read_cookie(&headers, name);
        // The raw input as one header, with whatever bytes HTTP would refuse.
        for line in &lines {
            let _ = cookie::find(line, name);
        }
        let _ = cookie::find(bytes, name);
    }

    // A session cookie sent after the input's cookies, in the same header or one of its
    // own: found unless an earlier cookie has its name, and its id reads back.
    let text = String::from_utf8_lossy(bytes);
    let id: &str = &text;
    let value = signing::cookie_value(id, secrets);
    let set_cookie = cookie::serialize("connect.sid", &value, &CookieRecord::default());
    let pair = set_cookie.split(';').next().unwrap_or_default();
    let earlier = cookie::find(bytes, "connect.sid");
    let mut same_header = bytes.to_vec();
    same_header.extend_from_slice(b"; ");
    same_header.extend_from_slice(pair.as_bytes());
    let found = cookie::find(&same_header, "connect.sid").expect("the cookie is there");
    match &earlier {
        Some(e) => assert_eq!(found, *e),
        None => {
            assert_eq!(found, value);
            assert_eq!(signing::session_id(&found, secrets), Some(id));
        }
    }
    let earlier = cookie::find_in_headers(&headers, "connect.sid").map(Cow::into_owned);
    let mut with_session = headers.clone();
    with_session.append(COOKIE, HeaderValue::from_str(pair).expect("a valid header"));
    match earlier {
        Some(e) => assert_eq!(
            cookie::find_in_headers(&with_session, "connect.sid").as_deref(),
            Some(&*e)
        ),
        None => assert_eq!(
            read_cookie(&with_session, "connect.sid").as_deref(),
            Some(id)
        ),
    }
    // Before any other cookie, it always wins.
    let mut first = HeaderMap::new();
    first.append(COOKIE, HeaderValue::from_str(pair).expect("a valid header"));
    for v in headers.get_all(COOKIE) {
        first.append(COOKIE, v.clone());
    }
    assert_eq!(read_cookie(&first, "connect.sid").as_deref(), Some(id));
    // Tampering with the signed value breaks it.
    let tampered = format!("{value}x");
    assert_eq!(signing::session_id(&tampered, secrets), None);
    let encoded = cookie::encode(&value);
    assert_eq!(cookie::decode(&encoded), value);

    // The text APIs (names, attributes, escapes) on the input as text.
    let header: &str = &text;
    let _ = cookie::is_valid_name(header);
    // A domain and path that pass `check` cannot inject attributes or break the header.
    let attrs = CookieRecord {
        domain: Some(Arc::from(header)),
        path: Arc::from(header),
        ..CookieRecord::default()
    };
    if cookie::check(&attrs).is_ok() {
        let set_cookie = cookie::serialize("sid", "v", &attrs);
        // Domain, Path, HttpOnly.
        assert_eq!(set_cookie.matches(';').count(), 3, "{set_cookie:?}");
        assert!(set_cookie.bytes().all(|b| (0x20..0x7f).contains(&b)));
    }
    let _ = cookie::decode(header);
    // encodeURIComponent / decodeURIComponent round-trip any text.
    assert_eq!(cookie::decode(&cookie::encode(header)), header);

    // A secret taken from the input signs and verifies too.
    if let Some((&n, rest)) = bytes.split_first() {
        let (secret, sid) = rest.split_at((n as usize).min(rest.len()));
        if let Some(own) = Secrets::new([secret]) {
            let sid = String::from_utf8_lossy(sid);
            let value = signing::cookie_value(&sid, &own);
            assert_eq!(signing::session_id(&value, &own), Some(&*sid));
            let rotated = Secrets::new([b"new".as_slice(), secret]).expect("non-empty");
            assert_eq!(signing::session_id(&value, &rotated), Some(&*sid));
        }
    }
});
