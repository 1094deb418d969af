//! A record Node wrote keeps its fields as Node wrote them, whatever serde_json's features:
//! the order of its members (JavaScript keeps an object's keys in the order they were set,
//! a `serde_json::Map` without `preserve_order` sorts them) and the text of its numbers
//! (`0.000001`, which serde_json would write `1e-6`). Only a field a handler sets is written
//! by serde_json. Checked on every path that writes a record: field changes, whole-record
//! writes (`resave`, a new id), and the durable store's recovery of field changes.

mod common;

use std::path::PathBuf;

use axum::routing::get;
use common::*;
use sessile::{Change, Changes, CookieRecord, EmbeddedStore, Record, Session, SessionStore};

/// Fields as Node's `JSON.stringify` writes them: keys in the order set, a nested object in
/// its own order, numbers as JavaScript prints them.
const NODE_DATA: &str = r#"{"zeta":1,"alpha":{"y":0.30000000000000004,"x":[1e+21,5e-324,0.000001,100000000000000000000]},"mid":"m","big":123456789012345680000,"small":1.0715660391465826e-75,"max":1.7976931348623157e+308,"text":"é \"q\""}"#;

/// `NODE_DATA` with `extra` (`,"k":v` members) added before its closing brace.
fn node_data_with(extra: &str) -> String {
    format!("{}{extra}}}", &NODE_DATA[..NODE_DATA.len() - 1])
}

/// A record of these fields with a cookie that expires in an hour.
fn node_record(data: &str) -> Record {
    let mut cookie = CookieRecord::default();
    cookie.set_max_age(Some(3_600_000));
    let text = Record {
        cookie,
        ..Record::default()
    }
    .to_json();
    let text = format!("{},{}", &text[..text.len() - 1], &data[1..]);
    Record::from_json(&text).expect("a Node record")
}

/// Sets `zeta` and then `alpha`: JavaScript keeps them in that order.
async fn two(s: Session) -> Result<String, sessile::Error> {
    s.insert("zeta", 1)?;
    s.insert("alpha", 2)?;
    Ok(s.id().unwrap_or_default())
}

/// Sets `alpha` to the value it has.
async fn same(s: Session) -> Result<String, sessile::Error> {
    let alpha = s.get_value("alpha")?;
    s.insert("alpha", alpha)?;
    Ok(s.id().unwrap_or_default())
}

async fn server(resave: bool) -> (std::net::SocketAddr, SpyStore) {
    let store = SpyStore::new();
    let layer = builder()
        .store(store.clone())
        .resave(resave)
        .build()
        .unwrap();
    let app = routes()
        .route("/two", get(two))
        .route("/same", get(same))
        .layer(layer);
    (serve(app).await, store)
}

async fn stored_data(store: &SpyStore, sid: &str) -> String {
    let record = store.record(sid).await.expect("stored");
    record.data.as_str().to_owned()
}

#[tokio::test]
async fn node_fields_keep_their_order_and_text_when_another_field_is_written() {
    for resave in [false, true] {
        let (addr, store) = server(resave).await;
        let sid = "node-session";
        store.put(sid, &node_record(NODE_DATA)).await;
        let cookie = cookie_for(sid, SECRET);

        let r = get_with(addr, "/put/mid/n", Some(&cookie)).await;
        assert_eq!(r.status, 200, "{r:?}");
        let changed = NODE_DATA.replace(r#""mid":"m""#, r#""mid":"n""#);
        assert_eq!(stored_data(&store, sid).await, changed, "resave {resave}");

        // A field set to the value it has is written as it was.
        let r = get_with(addr, "/same", Some(&cookie)).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(stored_data(&store, sid).await, changed, "resave {resave}");

        // A new field goes last.
        let r = get_with(addr, "/put/added/1", Some(&cookie)).await;
        assert_eq!(r.status, 200, "{r:?}");
        let added = format!("{},\"added\":\"1\"}}", &changed[..changed.len() - 1]);
        assert_eq!(stored_data(&store, sid).await, added, "resave {resave}");

        // A new id: the whole record is written under it.
        let r = get_with(addr, "/cycle", Some(&cookie)).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(stored_data(&store, &r.body).await, added, "resave {resave}");
    }
}

#[tokio::test]
async fn fields_a_handler_sets_are_stored_in_the_order_set() {
    for resave in [false, true] {
        let (addr, store) = server(resave).await;
        let r = get_with(addr, "/two", None).await;
        let sid = r.sid();
        assert_eq!(
            stored_data(&store, &sid).await,
            r#"{"zeta":1,"alpha":2}"#,
            "resave {resave}"
        );
        get_with(addr, "/put/beta/3", Some(&r.cookie_pair())).await;
        assert_eq!(
            stored_data(&store, &sid).await,
            r#"{"zeta":1,"alpha":2,"beta":"3"}"#,
            "resave {resave}"
        );
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "sessile-record-text-{tag}-{}-{nanos}",
        std::process::id()
    ))
}

/// The durable store replays the field changes of its log on a working form of the
/// session's fields when it opens: what it recovers is the text it held, byte for byte.
#[tokio::test]
async fn the_durable_store_recovers_node_fields_as_they_were_written() {
    let dir = temp_dir("recovery");
    // Long enough for recovery to patch a working form (and not the text, op by op).
    let data = node_data_with(&format!(r#","pad":"{}""#, "p".repeat(600)));
    let record = node_record(&data);
    let store = EmbeddedStore::open(&dir).unwrap();
    store.set("sid", &record).await.unwrap();
    let changes = |fields| Changes {
        cookie: record.cookie.clone(),
        fields,
    };
    for change in [
        Change::Set("zz".into(), 1.into()),
        Change::Set("aa".into(), 2.into()),
        Change::Remove("pad".into()),
        Change::Set("mid".into(), "n".into()),
    ] {
        store.apply("sid", &changes(vec![change])).await.unwrap();
    }
    let held = store.get("sid").await.unwrap().unwrap().to_json();
    assert_eq!(
        Record::from_json(&held).unwrap().data.as_str(),
        node_data_with(r#","zz":1,"aa":2"#).replace(r#""mid":"m""#, r#""mid":"n""#)
    );
    drop(store);

    let store = EmbeddedStore::open(&dir).unwrap();
    let report = store.recovery_report().unwrap();
    assert!(report.replayed >= 5, "{report:?}");
    assert_eq!(store.get("sid").await.unwrap().unwrap().to_json(), held);
    drop(store);
    std::fs::remove_dir_all(&dir).ok();
}
