//! Arbitrary text as a session's stored fields, read one field at a time as `Session::get`
//! reads them (`Data::field`, a scan of the text that builds no map): never a panic, and
//! wherever the whole text parses, every field read by the scan is what the parsed map holds
//! (as JSON, and as the typed values a handler asks for).
//!
//! The text reaches `Data` three ways: unchecked, as the durable store reads it from disk;
//! through `Data::from_json_text`; and inside a whole record (`Record::from_json`, what the
//! Redis store runs on the text Node wrote). The input is `key \0 text` (without a `\0`, the
//! whole input is the text); besides that key, a few fixed ones and every key of the parsed
//! map are read.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sessile::{Data, Record};
use sessile::fuzzing::{data_field, data_from_disk};

/// What the scan reads of `key` as a `T` agrees with the parsed map: when the scan gives a
/// value it is the map's (`Session::get` falls back to the map when the scan fails).
fn agrees<T: DeserializeOwned + PartialEq + std::fmt::Debug>(
    data: &Data,
    map: &Map<String, Value>,
    key: &str,
) {
    let scanned = data_field::<T>(data, key);
    let parsed = map.get(key).map(|v| T::deserialize(v));
    match (scanned, parsed) {
        (Ok(None), None) => {}
        (Ok(Some(s)), Some(Ok(p))) => assert_eq!(s, p, "{key:?} in {data:?}"),
        (Ok(s), p) => panic!("{key:?} in {data:?}: the scan read {s:?}, the map {p:?}"),
        // A value that is not a `T`, or a key given twice with a first value that is not a
        // `T`: `Session::get` then answers from the map.
        (Err(_), _) => {}
    }
}

fn check(data: &Data, extra: &[&str]) {
    let map = match data.to_map() {
        Ok(map) => map,
        Err(_) => {
            // The text does not parse: the scan may still read a field, but never panics.
            for key in extra {
                let _ = data_field::<Value>(data, key);
                let _ = data_field::<String>(data, key);
            }
            return;
        }
    };
    let keys: Vec<&str> = extra
        .iter()
        .copied()
        .chain(map.keys().map(String::as_str))
        .collect();
    for key in keys {
        // As JSON, the scan must always succeed on text that parses.
        let scanned = data_field::<Value>(data, key)
            .unwrap_or_else(|e| panic!("{key:?} in {data:?}: the map parses, the scan: {e}"));
        assert_eq!(scanned.as_ref(), map.get(key), "{key:?} in {data:?}");
        agrees::<String>(data, &map, key);
        agrees::<u64>(data, &map, key);
        agrees::<i64>(data, &map, key);
        agrees::<f64>(data, &map, key);
        agrees::<bool>(data, &map, key);
        agrees::<Vec<Value>>(data, &map, key);
        agrees::<Map<String, Value>>(data, &map, key);
        agrees::<Option<String>>(data, &map, key);
    }
}

fuzz_target!(|bytes: &[u8]| {
    let (key, text) = match bytes.iter().position(|&b| b == 0) {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (&[][..], bytes),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let key = String::from_utf8_lossy(key);
    let extra = [&*key, "views", "user", "a", "", "cookie"];

    // As the durable store reads it.
    let stored = data_from_disk(text);
    check(&stored, &extra);

    // Through the checked constructor: whatever parses as an object is accepted (and so is
    // an object with members that do not decode, kept opaque).
    match Data::from_json_text(text) {
        Ok(data) => {
            check(&data, &extra);
            // `field` is the fast path: it may refuse an object with members it cannot
            // decode (the session then reads member by member), but it never finds a
            // `cookie` the checked constructor left out.
            assert!(
                !matches!(data_field::<Value>(&data, "cookie"), Ok(Some(_))),
                "{text:?}"
            );
        }
        Err(_) => assert!(stored.to_map().is_err(), "{text:?}"),
    }

    // Inside a whole record, as Node writes it.
    if let Ok(record) = Record::from_json(text) {
        check(&record.data, &extra);
    }
});
