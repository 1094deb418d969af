//! Arbitrary bytes as a stored session record: reading never panics, and a record that
//! reads writes back to JSON that reads as the same record.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sessile::record::{CookieRecord, Record};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };

    let parsed = Record::from_json(text);
    // The serde implementation agrees with `from_json`.
    let via_serde = serde_json::from_str::<Record>(text);
    assert_eq!(parsed.is_ok(), via_serde.is_ok(), "{text:?}");

    if let Ok(record) = parsed {
        assert_eq!(via_serde.ok().as_ref(), Some(&record));
        let json = record.to_json();
        let again = Record::from_json(&json)
            .unwrap_or_else(|e| panic!("to_json wrote JSON that does not read: {e}\n{json}"));
        assert_eq!(again, record, "\ninput:  {text}\noutput: {json}");
        assert_eq!(again.to_json(), json);
        assert_eq!(serde_json::to_string(&record).ok().as_deref(), Some(&*json));
        let _ = record.to_value();
        let _ = record.data.to_map().expect("stored data is an object");
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
