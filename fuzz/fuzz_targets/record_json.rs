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
    // The serde implementation agrees with `from_json` on what the record holds. It decodes
    // every value (so it refuses a record with a field `from_json` keeps opaque, and spells
    // numbers as serde_json does), where `from_json` keeps the stored text as it is.
    let via_serde = serde_json::from_str::<Record>(text);
    if let Ok(by_serde) = &via_serde {
        let record = parsed
            .as_ref()
            .unwrap_or_else(|e| panic!("serde reads {text:?}, from_json does not: {e}"));
        assert_eq!(by_serde.cookie, record.cookie, "{text:?}");
        assert_eq!(
            by_serde.data.to_map().ok(),
            record.data.to_map().ok(),
            "{text:?}"
        );
    }
    if let (Ok(_), Err(e)) = (&parsed, &via_serde) {
        // Only something that does not decode (kept opaque, or an unknown cookie property
        // express ignores) may set the two apart.
        assert!(
            serde_json::from_str::<Value>(text).is_err(),
            "from_json reads {text:?}, which decodes whole, and serde does not: {e}"
        );
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
