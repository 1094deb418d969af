//! Arbitrary bytes as a stored session record: reading never panics, and a record that
//! reads writes back to JSON that reads as the same record.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sessile::{CookieRecord, Record};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };

    let parsed = Record::from_json(text);
    // The serde implementation reads the record as `from_json` does: the stored text as it
    // is (fields that cannot be decoded, and numbers as written, which serde_json without
    // `float_roundtrip` would not read back to the same value once it wrote them).
    let via_serde = serde_json::from_str::<Record>(text);
    match (&parsed, &via_serde) {
        (Ok(record), Ok(by_serde)) => assert_eq!(by_serde, record, "{text:?}"),
        (Err(_), Err(_)) => {}
        (p, s) => panic!("from_json and serde disagree on {text:?}: {p:?} vs {s:?}"),
    }

    if let Ok(record) = parsed {
        let json = record.to_json();
        let again = Record::from_json(&json)
            .unwrap_or_else(|e| panic!("to_json wrote JSON that does not read: {e}\n{json}"));
        assert_eq!(again, record, "\ninput:  {text}\noutput: {json}");
        assert_eq!(again.to_json(), json);
        if record.data.to_map().is_ok() {
            assert_eq!(serde_json::to_string(&record).ok().as_deref(), Some(&*json));
        }
        let _ = record.to_value();
    }

    // The cookie object alone, from any JSON value.
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        if let Ok(cookie) = CookieRecord::from_json(&value) {
            let again = CookieRecord::from_json(&cookie.to_json()).expect("to_json reads back");
            assert_eq!(again, cookie);
            let _ = sessile::cookie::serialize("sid", "v", &cookie);
            let _ = cookie.max_age();
        }
        if let Value::Object(mut map) = value {
            let _ = Record::from_map(&mut map);
        }
    }
});
