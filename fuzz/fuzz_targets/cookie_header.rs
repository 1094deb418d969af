//! Arbitrary bytes as a `Cookie` header: finding the session cookie and reading a signed id
//! from it never panics, a signed id always reads back, and the percent-encoding that
//! carries it round-trips.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sessile::record::CookieRecord;
use sessile::{cookie, signing, Secrets};

fn secrets() -> &'static Secrets {
    static SECRETS: OnceLock<Secrets> = OnceLock::new();
    SECRETS.get_or_init(|| Secrets::new(["keyboard cat", "an older secret"]).expect("non-empty"))
}

fuzz_target!(|bytes: &[u8]| {
    let header = String::from_utf8_lossy(bytes);
    let secrets = secrets();

    // What the layer does with a request's header.
    for name in ["connect.sid", "sid", "a", ""] {
        if let Some(value) = cookie::find(header.as_bytes(), name) {
            if let Some(id) = signing::session_id(&value, secrets) {
                // Only a value this process signed verifies (a fuzzer cannot forge HMACs),
                // and the id is the part between `s:` and the signature.
                assert_eq!(signing::cookie_value(id, secrets), *value);
            }
        }
    }
    let _ = cookie::is_valid_name(&header);
    // A domain and path that pass `check` cannot inject attributes or break the header.
    let attrs = CookieRecord {
        domain: Some(Arc::from(&*header)),
        path: Arc::from(&*header),
        ..CookieRecord::default()
    };
    if cookie::check(&attrs).is_ok() {
        let set_cookie = cookie::serialize("sid", "v", &attrs);
        // Domain, Path, HttpOnly.
        assert_eq!(set_cookie.matches(';').count(), 3, "{set_cookie:?}");
        assert!(set_cookie.bytes().all(|b| (0x20..0x7f).contains(&b)));
    }
    let _ = cookie::decode(&header);

    // The input as a session id: signed, encoded, sent and read back.
    let id: &str = &header;
    let value = signing::cookie_value(id, secrets);
    assert_eq!(signing::session_id(&value, secrets), Some(id));
    let encoded = cookie::encode(&value);
    assert_eq!(cookie::decode(&encoded), value);
    let set_cookie = cookie::serialize("connect.sid", &value, &CookieRecord::default());
    let pair = set_cookie.split(';').next().unwrap_or_default();
    let request = format!("other=1; {pair}; connect.sid=later");
    let found = cookie::find(request.as_bytes(), "connect.sid").expect("the cookie is there");
    assert_eq!(found, value);
    assert_eq!(signing::session_id(&found, secrets), Some(id));
    // Tampering with the signed value breaks it.
    let tampered = format!("{value}x");
    assert_eq!(signing::session_id(&tampered, secrets), None);

    // encodeURIComponent / decodeURIComponent round-trip any text.
    assert_eq!(cookie::decode(&cookie::encode(&header)), header);

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
