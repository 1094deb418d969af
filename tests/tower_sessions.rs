//! Sessile's stores as tower-sessions stores (features `tower-sessions`, tower-sessions-core
//! 0.15, and `tower-sessions-014`, 0.14): the store contract tower-sessions relies on, for
//! the memory, durable and Redis stores and both versions. (tower-sessions' own
//! `SessionManagerLayer` and axum-login are driven over HTTP by the workspace member
//! `compat-examples/`: its `tests/tower_sessions_layer.rs` and its examples' tests.)
#![cfg(all(feature = "tower-sessions", feature = "tower-sessions-014"))]

#[cfg(feature = "redis")]
mod common;
mod redis_common;

use std::collections::HashMap;

use serde_json::{json, Value};
use sessile::{EmbeddedStore, Record};
use time::{Duration, OffsetDateTime};

fn temp_dir(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "sessile-ts-{what}-{}",
        sessile::id::generate().unwrap()
    ))
}

/// The checks of the tower-sessions store contract, for one tower-sessions-core version.
macro_rules! contract {
    ($module:ident, $core:ident) => {
        mod $module {
            use super::*;
            use $core::session::{Id, Record as TsRecord};
            use $core::session_store::Error;
            use $core::{ExpiredDeletion, SessionStore as TsStore};

            fn ts_record(data: Value, expiry: OffsetDateTime) -> TsRecord {
                let Value::Object(map) = data else {
                    panic!("data must be an object")
                };
                TsRecord {
                    id: Id::default(),
                    data: map.into_iter().collect::<HashMap<_, _>>(),
                    expiry_date: expiry,
                }
            }

            fn in_an_hour() -> OffsetDateTime {
                OffsetDateTime::now_utc() + Duration::hours(1)
            }

            /// Loads `id` and checks its data, and its expiry to the millisecond.
            async fn expect<S: TsStore>(store: &S, id: &Id, want: &TsRecord) {
                let got = store.load(id).await.unwrap().expect("stored");
                assert_eq!(got.id, *id);
                assert_eq!(got.data, want.data);
                assert_eq!(
                    got.expiry_date.unix_timestamp_nanos() / 1_000_000,
                    want.expiry_date.unix_timestamp_nanos() / 1_000_000
                );
            }

            /// create, save, load, delete and expiry through the trait; a colliding id is
            /// replaced, never overwritten; racing creates from one id all get their own.
            pub async fn store_contract<S>(store: S)
            where
                S: TsStore + ExpiredDeletion + sessile::SessionStore + Clone,
            {
                let mut alice = ts_record(json!({"user": "alice", "n": 1}), in_an_hour());
                let first = alice.id;
                TsStore::create(&store, &mut alice).await.unwrap();
                assert_eq!(alice.id, first, "a free id is kept");
                expect(&store, &alice.id, &alice).await;
                // The stored session: the id's text, the fields, the expiry as the cookie's.
                let stored = sessile::SessionStore::get(&store, &alice.id.to_string())
                    .await
                    .unwrap()
                    .expect("under the id's text");
                assert_eq!(stored.data.as_str(), r#"{"n":1,"user":"alice"}"#);
                let expires = stored.cookie.expires.expect("an expiry");
                let max_age = stored.cookie.original_max_age.expect("a max age");
                assert!(max_age > 3_500_000 && max_age <= 3_600_000, "{max_age}");
                assert_eq!(
                    i128::from(expires),
                    alice.expiry_date.unix_timestamp_nanos() / 1_000_000
                );

                // A colliding id: the new record gets a fresh id; alice's is untouched.
                let mut mallory = ts_record(json!({"user": "mallory"}), in_an_hour());
                mallory.id = alice.id;
                TsStore::create(&store, &mut mallory).await.unwrap();
                assert_ne!(mallory.id, alice.id, "a colliding id is regenerated");
                expect(&store, &alice.id, &alice).await;
                expect(&store, &mallory.id, &mallory).await;

                // save replaces the whole record.
                alice.data = [("only".to_string(), json!(true))].into();
                alice.expiry_date = in_an_hour() + Duration::minutes(5);
                store.save(&alice).await.unwrap();
                expect(&store, &alice.id, &alice).await;

                // An expired record is not loaded.
                let mut past = ts_record(json!({"old": 1}), OffsetDateTime::now_utc() - Duration::seconds(5));
                store.save(&past).await.unwrap();
                assert!(store.load(&past.id).await.unwrap().is_none());
                TsStore::create(&store, &mut past).await.unwrap();
                assert!(store.load(&past.id).await.unwrap().is_none());

                // delete, twice.
                store.delete(&alice.id).await.unwrap();
                assert!(store.load(&alice.id).await.unwrap().is_none());
                store.delete(&alice.id).await.unwrap();
                expect(&store, &mallory.id, &mallory).await;
                store.delete(&mallory.id).await.unwrap();

                // 32 creates from one id at once, from tasks on several threads: each ends
                // under an id of its own and loads its own data.
                let start = Id::default();
                let tasks: Vec<_> = (0..32)
                    .map(|i| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            let mut r = ts_record(json!({ "task": i }), in_an_hour());
                            r.id = start;
                            TsStore::create(&store, &mut r).await.unwrap();
                            r
                        })
                    })
                    .collect();
                let mut created = Vec::new();
                for task in tasks {
                    created.push(task.await.unwrap());
                }
                let mut ids = std::collections::HashSet::new();
                for r in &created {
                    expect(&store, &r.id, r).await;
                    assert!(ids.insert(r.id), "two creates ended under one id");
                }
                for r in &created {
                    store.delete(&r.id).await.unwrap();
                }
                assert!(ids.contains(&start), "one create kept the id it came with");

                // delete_expired is a cheap purge that succeeds.
                store.delete_expired().await.unwrap();
            }

            /// A stored session tower-sessions cannot read is `Error::Decode`; a store that
            /// refuses writes is `Error::Backend`.
            pub async fn errors<S: TsStore + sessile::SessionStore>(store: &S) {
                let id = Id::default();
                let odd = Record::from_json(
                    r#"{"cookie":{"originalMaxAge":60000,"expires":"2100-01-01T00:00:00.000Z"},"x":"\ud800"}"#,
                )
                .unwrap();
                sessile::SessionStore::set(store, &id.to_string(), &odd)
                    .await
                    .unwrap();
                match store.load(&id).await {
                    Err(Error::Decode(m)) => assert!(m.contains("corrupt"), "{m}"),
                    other => panic!("expected Error::Decode, got {other:?}"),
                }
                store.delete(&id).await.unwrap();
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory_store_keeps_the_contract() {
                store_contract(EmbeddedStore::new()).await;
                errors(&EmbeddedStore::new()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn durable_store_keeps_the_contract_and_the_sessions_across_a_reopen() {
                let dir = temp_dir(stringify!($module));
                let store = EmbeddedStore::open(&dir).unwrap();
                store_contract(store.clone()).await;
                errors(&store).await;
                let mut kept = ts_record(json!({"user": "bob"}), in_an_hour());
                TsStore::create(&store, &mut kept).await.unwrap();
                drop(store);
                let store = EmbeddedStore::open(&dir).unwrap();
                expect(&store, &kept.id, &kept).await;
                drop(store);
                let _ = std::fs::remove_dir_all(&dir);
            }

            /// `delete_expired` frees expired sessions at once (here with no sweeper).
            #[tokio::test]
            async fn delete_expired_frees_expired_sessions() {
                let store = EmbeddedStore::builder().sweep_interval(None).build();
                let soon = OffsetDateTime::now_utc() + Duration::milliseconds(100);
                store.save(&ts_record(json!({"x": 1}), soon)).await.unwrap();
                // Wait for the wall clock to pass the expiry (a condition, not an order).
                while OffsetDateTime::now_utc() <= soon + Duration::milliseconds(5) {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                assert_eq!(store.usage().0, 1, "held until freed");
                store.delete_expired().await.unwrap();
                assert_eq!(store.usage().0, 0, "freed by delete_expired");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn refused_writes_are_backend_errors() {
                // A store full at one byte refuses every session.
                let store = EmbeddedStore::builder().max_bytes(1).build();
                let mut r = ts_record(json!({"user": "alice"}), in_an_hour());
                match TsStore::create(&store, &mut r).await {
                    Err(Error::Backend(m)) => assert!(m.contains("full"), "{m}"),
                    other => panic!("expected Error::Backend, got {other:?}"),
                }
                assert!(matches!(store.save(&r).await, Err(Error::Backend(_))));
            }

            #[cfg(feature = "redis")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis_store_keeps_the_contract() {
                let Some(url) = redis_common::redis_url(stringify!($module)) else {
                    return;
                };
                let prefix = redis_common::unique_prefix(stringify!($module));
                let store = sessile::RedisStore::builder(url.as_str())
                    .prefix(prefix.as_str())
                    .build()
                    .await
                    .unwrap();
                store_contract(store.clone()).await;
                errors(&store).await;
                let mut conn = redis_common::raw(&url).await;
                redis_common::raw_clear(&mut conn, &prefix).await;
            }
        }
    };
}

contract!(core_015, tower_sessions_core);
contract!(core_014, tower_sessions_core_014);
