//! Records written by Node that hold what sessile cannot decode into a `serde_json::Value`: a
//! string with a lone UTF-16 surrogate (JavaScript's `'👍'.slice(0, 1)`, which
//! `JSON.stringify` writes as `"\ud83d"`) and arrays nested past serde_json's recursion limit.
//! Such a session must still answer: handlers read and write its other fields, and
//! `destroy`, `regenerate` and `cycle_id` work; only reading the odd field itself fails.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::routing::get;
use common::*;
use http::StatusCode;
use sessile::{Applied, Changes, CookieRecord, Created, Record, Session, SessionStore, StoreError};

/// A store that keeps each record as express's JSON text and parses it on every read, as
/// the Redis store (and connect-redis) do.
#[derive(Clone, Default)]
struct TextStore(Arc<Mutex<HashMap<String, String>>>);

impl TextStore {
    fn text(&self, sid: &str) -> Option<String> {
        self.0.lock().unwrap().get(sid).cloned()
    }

    fn put_text(&self, sid: &str, text: &str) {
        self.0
            .lock()
            .unwrap()
            .insert(sid.to_owned(), text.to_owned());
    }
}

#[async_trait]
impl SessionStore for TextStore {
    async fn get(&self, sid: &str) -> Result<Option<Record>, StoreError> {
        self.text(sid).map(|t| Record::from_json(&t)).transpose()
    }

    async fn set(&self, sid: &str, record: &Record) -> Result<(), StoreError> {
        self.put_text(sid, &record.to_json());
        Ok(())
    }

    async fn create(&self, sid: &str, record: &Record) -> Result<Created, StoreError> {
        let mut map = self.0.lock().unwrap();
        if map.contains_key(sid) {
            return Ok(Created::Exists);
        }
        map.insert(sid.to_owned(), record.to_json());
        Ok(Created::Created)
    }

    async fn apply(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError> {
        let Some(old) = self.get(sid).await? else {
            return Ok(Applied::Missing);
        };
        let new = Record {
            cookie: changes.cookie.clone(),
            data: changes.apply_to_data(&old.data)?,
        };
        self.put_text(sid, &new.to_json());
        Ok(Applied::Applied)
    }

    async fn destroy(&self, sid: &str) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(sid);
        Ok(())
    }

    async fn touch(&self, sid: &str, cookie: &CookieRecord) -> Result<(), StoreError> {
        if let Some(old) = self.get(sid).await? {
            let new = Record {
                cookie: cookie.clone(),
                data: old.data,
            };
            self.put_text(sid, &new.to_json());
        }
        Ok(())
    }

    async fn all(&self) -> Result<BTreeMap<String, Record>, StoreError> {
        let texts: Vec<(String, String)> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = BTreeMap::new();
        for (k, t) in texts {
            out.insert(k, Record::from_json(&t)?);
        }
        Ok(out)
    }

    async fn clear(&self) -> Result<(), StoreError> {
        self.0.lock().unwrap().clear();
        Ok(())
    }

    async fn len(&self) -> Result<usize, StoreError> {
        Ok(self.0.lock().unwrap().len())
    }
}

/// `depth` arrays, one inside the other, around a 1.
fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// The odd fields of [`node_record`], as `"name":value` text.
fn odd_members() -> Vec<String> {
    vec![
        r#""lone":"x\ud83dy""#.to_owned(),
        format!(r#""deep":{}"#, nested(200)),
        format!(r#""deeper":{}"#, nested(100_000)),
    ]
}

/// A session record as Node's express-session writes it with `JSON.stringify`.
fn node_record() -> String {
    let expires = now_ms() + 3_600_000;
    let iso = {
        let r = Record {
            cookie: CookieRecord {
                original_max_age: Some(3_600_000),
                expires: Some(expires),
                ..CookieRecord::default()
            },
            ..Record::default()
        };
        r.to_json()
    };
    // `{"cookie":{...}}` without its closing brace, then the fields.
    let mut text = iso.strip_suffix('}').unwrap().to_owned();
    text.push_str(r#","views":3"#);
    for m in odd_members() {
        text.push(',');
        text.push_str(&m);
    }
    text.push_str(r#","user":"alice"}"#);
    text
}

fn assert_odd_kept(store: &TextStore, sid: &str, what: &str) {
    let text = store
        .text(sid)
        .unwrap_or_else(|| panic!("{what}: {sid} is not stored"));
    for m in odd_members() {
        assert!(
            text.contains(&m),
            "{what}: {} is not kept byte for byte",
            &m[..12]
        );
    }
}

async fn typed_lone(s: Session) -> Result<String, sessile::Error> {
    s.get::<String>("lone").map(|v| format!("{v:?}"))
}

async fn server() -> (std::net::SocketAddr, TextStore) {
    let store = TextStore::default();
    let layer = builder().store(store.clone()).build().unwrap();
    let app = routes().route("/typed-lone", get(typed_lone)).layer(layer);
    (serve(app).await, store)
}

#[tokio::test]
async fn a_node_record_with_undecodable_fields_still_serves_its_other_fields() {
    let (addr, store) = server().await;
    let sid = "node-written-session";
    store.put_text(sid, &node_record());
    let cookie = cookie_for(sid, SECRET);

    let r = get_with(addr, "/get/views", Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "3"), "{r:?}");
    let r = get_with(addr, "/get/user", Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "\"alice\""));

    // A write of another field keeps the odd ones byte for byte.
    let r = get_with(addr, "/put/views/4", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let text = store.text(sid).unwrap();
    assert!(text.contains(r#""views":"4""#), "{:.300}", text);
    assert_odd_kept(&store, sid, "after /put/views/4");

    // Reading the odd field itself fails, and only that request, with a typed error.
    let r = get_with(addr, "/typed-lone", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{r:?}");
    let r = get_with(addr, "/get/deeper", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{r:?}");
    let r = get_with(addr, "/get/views", Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "\"4\""));
    assert_odd_kept(&store, sid, "after the failed reads");

    // Removing an odd field removes it; the others stay.
    let r = get_with(addr, "/remove/deep", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let text = store.text(sid).unwrap();
    assert!(!text.contains(r#""deep":"#), "{:.300}", text);
    assert!(text.contains(&odd_members()[0]) && text.contains(&odd_members()[2]));
}

#[tokio::test]
async fn destroy_regenerate_and_cycle_id_work_on_a_record_with_undecodable_fields() {
    let (addr, store) = server().await;

    // destroy
    store.put_text("a", &node_record());
    let r = get_with(addr, "/destroy", Some(&cookie_for("a", SECRET))).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "destroyed"));
    assert_eq!(store.text("a"), None, "destroy left the record");

    // regenerate: the old record goes, the new session is empty.
    store.put_text("b", &node_record());
    let r = get_with(addr, "/regenerate", Some(&cookie_for("b", SECRET))).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(store.text("b"), None, "regenerate left the old record");
    let new = r.sid();
    assert_eq!(r.body, new);
    let stored = Record::from_json(&store.text(&new).expect("new session stored")).unwrap();
    assert!(stored.data.is_empty(), "{:?}", stored.data);

    // cycle_id: the fields move to the new id, the odd ones byte for byte.
    store.put_text("c", &node_record());
    let r = get_with(addr, "/cycle", Some(&cookie_for("c", SECRET))).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(store.text("c"), None, "cycle_id left the old record");
    let new = r.sid();
    assert_odd_kept(&store, &new, "after cycle_id");
    let r = get_with(addr, "/get/views", Some(&r.cookie_pair())).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "3"));

    // clear: every field goes, the odd ones too.
    store.put_text("d", &node_record());
    let r = get_with(addr, "/clear", Some(&cookie_for("d", SECRET))).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let stored = Record::from_json(&store.text("d").expect("still stored")).unwrap();
    assert!(stored.data.is_empty(), "{:.200}", stored.data.as_str());
}

/// Records whose frame sessile cannot read at all: not JSON, not an object, a `cookie` that is
/// not an object, a cookie attribute with a value no cookie can have. Node fails on these too;
/// here the session still answers what does not need its contents.
fn unreadable_records() -> Vec<(&'static str, String)> {
    vec![
        ("not JSON", "not json at all".to_owned()),
        ("an array", "[1,2,3]".to_owned()),
        (
            "cookie not an object",
            r#"{"cookie":5,"views":3}"#.to_owned(),
        ),
        (
            "expires not a date",
            r#"{"cookie":{"originalMaxAge":null,"expires":"someday"},"views":3}"#.to_owned(),
        ),
        ("truncated", node_record()[..40].to_owned()),
    ]
}

#[tokio::test]
async fn a_record_that_cannot_be_read_can_still_be_destroyed_and_regenerated() {
    let (addr, store) = server().await;
    for (what, text) in unreadable_records() {
        // destroy: the record goes, whatever it holds.
        store.put_text("a", &text);
        let r = get_with(addr, "/destroy", Some(&cookie_for("a", SECRET))).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::OK, "destroyed"),
            "{what}: /destroy: {r:?}"
        );
        assert_eq!(store.text("a"), None, "{what}: destroy left the record");

        // regenerate: the old record goes, a new empty session is saved and sent.
        store.put_text("b", &text);
        let r = get_with(addr, "/regenerate", Some(&cookie_for("b", SECRET))).await;
        assert_eq!(r.status, StatusCode::OK, "{what}: /regenerate: {r:?}");
        assert_eq!(store.text("b"), None, "{what}: regenerate left the record");
        let new = r.sid();
        let stored = Record::from_json(&store.text(&new).expect("new session stored")).unwrap();
        assert!(stored.data.is_empty(), "{what}: {:?}", stored.data);
    }
}

#[tokio::test]
async fn a_record_that_cannot_be_read_is_never_overwritten() {
    let (addr, store) = server().await;
    for (what, text) in unreadable_records() {
        store.put_text("c", &text);
        let cookie = cookie_for("c", SECRET);
        // Reading or writing a field fails with a typed error; a request that does not look
        // at the session is served; none of them writes over the record or sends a cookie.
        for path in [
            "/get/views",
            "/put/views/4",
            "/",
            "/touch",
            "/cycle",
            "/data",
        ] {
            let r = get_with(addr, path, Some(&cookie)).await;
            if path == "/" {
                assert_eq!(r.status, StatusCode::OK, "{what}: {path}: {r:?}");
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "{what}: {path}: {r:?}"
                );
            }
            assert!(
                r.set_cookies.is_empty(),
                "{what}: {path} sent a cookie: {r:?}"
            );
            assert_eq!(
                store.text("c").as_deref(),
                Some(text.as_str()),
                "{what}: {path} changed the record"
            );
        }
    }
}
