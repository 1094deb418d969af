//! Sessile's stores as actix-session 0.11 stores (feature `actix`): the store contract
//! actix-session's middleware relies on, for the memory, durable and Redis stores.
//! (actix-session's own `SessionMiddleware` is driven end to end over HTTP by
//! `compat-examples/examples/actix_login_durable.rs` and its test.)
#![cfg(feature = "actix")]

#[cfg(feature = "redis")]
mod common;
mod redis_common;

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore as ActixStore};
use sessile::{EmbeddedStore, Record, SessionStore};
use time::Duration;

type State = HashMap<String, String>;

fn state(pairs: &[(&str, &str)]) -> State {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn key(s: &str) -> SessionKey {
    SessionKey::try_from(s.to_owned()).unwrap()
}

/// save, load, update, update_ttl and delete through the trait; racing saves get distinct
/// keys; an update of a session that is gone saves it under a new key.
async fn store_contract<S>(store: S)
where
    S: ActixStore + SessionStore + Clone,
{
    let hour = Duration::hours(1);
    let alice = state(&[("user", r#""alice""#), ("cart", r#"{"items":[1,2]}"#)]);
    let k = store.save(alice.clone(), &hour).await.unwrap();
    assert_eq!(k.as_ref().len(), 32);
    assert_eq!(store.load(&k).await.unwrap(), Some(alice.clone()));
    // Stored as a session of JSON fields, expiring with the TTL.
    let stored = SessionStore::get(&store, k.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.data.as_str(),
        r#"{"cart":{"items":[1,2]},"user":"alice"}"#
    );
    assert_eq!(stored.cookie.original_max_age, Some(3_600_000));
    let left = stored.cookie.expires.unwrap() - sessile::clock::now_ms();
    assert!((3_500_000..=3_600_000).contains(&left), "{left}");

    // update replaces the fields (a removed field is gone) and keeps the key.
    let changed = state(&[("user", r#""alice""#), ("visits", "3")]);
    let same = ActixStore::update(&store, key(k.as_ref()), changed.clone(), &hour)
        .await
        .unwrap();
    assert_eq!(same, k);
    assert_eq!(store.load(&k).await.unwrap(), Some(changed.clone()));

    // update_ttl to nothing ends it; update of a session that is gone saves it anew.
    store.update_ttl(&k, &Duration::ZERO).await.unwrap();
    assert_eq!(store.load(&k).await.unwrap(), None);
    let new = ActixStore::update(&store, key(k.as_ref()), changed.clone(), &hour)
        .await
        .unwrap();
    assert_ne!(new, k, "a session that is gone gets a new key");
    assert_eq!(store.load(&new).await.unwrap(), Some(changed));
    assert_eq!(store.load(&k).await.unwrap(), None);

    // delete, twice.
    ActixStore::delete(&store, &new).await.unwrap();
    assert_eq!(store.load(&new).await.unwrap(), None);
    ActixStore::delete(&store, &new).await.unwrap();

    // A session saved already expired is not loaded.
    let k = store.save(alice.clone(), &Duration::ZERO).await.unwrap();
    assert_eq!(store.load(&k).await.unwrap(), None);

    // 32 saves at once, as tasks (on one thread: actix-session's futures are not `Send`):
    // 32 keys.
    let local = tokio::task::LocalSet::new();
    let saved = local
        .run_until(async {
            let tasks: Vec<_> = (0..32)
                .map(|i| {
                    let store = store.clone();
                    tokio::task::spawn_local(async move {
                        let s = state(&[("task", &i.to_string())]);
                        (store.save(s.clone(), &Duration::hours(1)).await.unwrap(), s)
                    })
                })
                .collect();
            let mut saved = Vec::new();
            for task in tasks {
                saved.push(task.await.unwrap());
            }
            saved
        })
        .await;
    let keys: std::collections::HashSet<&str> = saved.iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(keys.len(), 32);
    for (k, s) in &saved {
        assert_eq!(store.load(k).await.unwrap().as_ref(), Some(s));
        ActixStore::delete(&store, k).await.unwrap();
    }
}

/// A stored session actix-session cannot read is `LoadError::Deserialization`; a state value
/// that is not JSON text is `SaveError::Serialization`.
async fn errors<S: ActixStore + SessionStore>(store: &S) {
    let id = sessile::id::generate().unwrap();
    let odd = Record::from_json(
        r#"{"cookie":{"originalMaxAge":60000,"expires":"2100-01-01T00:00:00.000Z"},"x":"\ud800"}"#,
    )
    .unwrap();
    SessionStore::set(store, &id, &odd).await.unwrap();
    match store.load(&key(&id)).await {
        Err(LoadError::Deserialization(e)) => assert!(e.to_string().contains("corrupt"), "{e}"),
        other => panic!("expected LoadError::Deserialization, got {other:?}"),
    }
    SessionStore::destroy(store, &id).await.unwrap();
    let bad = state(&[("user", "alice")]);
    assert!(matches!(
        store.save(bad, &Duration::hours(1)).await,
        Err(SaveError::Serialization(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_keeps_the_contract() {
    store_contract(EmbeddedStore::new()).await;
    errors(&EmbeddedStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_store_keeps_the_contract_and_the_sessions_across_a_reopen() {
    let dir = std::env::temp_dir().join(format!(
        "sessile-actix-{}",
        sessile::id::generate().unwrap()
    ));
    let store = EmbeddedStore::open(&dir).unwrap();
    store_contract(store.clone()).await;
    errors(&store).await;
    let kept = state(&[("user", r#""bob""#)]);
    let k = store.save(kept.clone(), &Duration::hours(1)).await.unwrap();
    drop(store);
    let store = EmbeddedStore::open(&dir).unwrap();
    assert_eq!(store.load(&k).await.unwrap(), Some(kept));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn refused_writes_are_errors() {
    let store = EmbeddedStore::builder().max_bytes(1).build();
    let alice = state(&[("user", r#""alice""#)]);
    match store.save(alice, &Duration::hours(1)).await {
        Err(SaveError::Other(e)) => assert!(e.to_string().contains("full"), "{e}"),
        other => panic!("expected SaveError::Other, got {other:?}"),
    }
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_keeps_the_contract() {
    let Some(url) = redis_common::redis_url("actix redis_store_keeps_the_contract") else {
        return;
    };
    let prefix = redis_common::unique_prefix("actix");
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
