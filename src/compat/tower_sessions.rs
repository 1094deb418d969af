//! Sessile's stores as tower-sessions stores: `impl tower_sessions::SessionStore` (and
//! `ExpiredDeletion`) for [`EmbeddedStore`] and, with the `redis` feature, `RedisStore`.
//!
//! - Feature `tower-sessions`: the trait of tower-sessions-core 0.15 (tower-sessions 0.15).
//! - Feature `tower-sessions-014`: the trait of tower-sessions-core 0.14, the one axum-login
//!   0.18's `AuthManagerLayer` takes (through tower-sessions 0.14).
//!
//! Both are written once (one macro, expanded per version), so they behave the same.
//!
//! | tower-sessions | sessile |
//! | --- | --- |
//! | `create(&mut record)` | [`SessionStore::create`] (atomic insert if absent) under the record's id; a colliding id is replaced by a fresh one and tried again, never overwritten |
//! | `save(&record)` | [`SessionStore::set`] (the whole record) |
//! | `load(&id)` | [`SessionStore::get`] (an expired session is `None`) |
//! | `delete(&id)` | [`SessionStore::destroy`] |
//! | `delete_expired()` | [`EmbeddedStore::purge_expired`]; nothing for Redis, which expires keys itself |
//!
//! The session id is the id's text (22 characters of URL-safe base64, as in the cookie). The
//! record's `expiry_date` becomes the stored cookie's `expires`, to the millisecond, and its
//! `originalMaxAge` the time left until then, so the store frees the session when it expires
//! (the embedded store's sweeper, Redis's TTL); the data map becomes the session's fields, as
//! JSON. A stored record without an `expires` (a browser-session cookie written by sessile's
//! own layer) is reported with an expiry one day ahead, the idle lifetime the stores give it.
//!
//! Errors: a record that cannot be read back (corrupt, or data that is not a JSON object) is
//! tower-sessions' `Error::Decode`; every other [`StoreError`] is `Error::Backend`, with its
//! message.
//!
//! **Whole records.** tower-sessions saves the whole record at the end of each request that
//! changed it, so of two parallel requests of one session that change different fields, the
//! later save wins. Sessile's field-level merge ([`SessionStore::apply`]) is only used by
//! sessile's own [`SessionLayer`](crate::SessionLayer).
//!
//! A type that implements both `sessile::SessionStore` and `tower_sessions::SessionStore`
//! has two methods named `create`: with both traits imported, call them by path
//! (`tower_sessions::SessionStore::create(&store, &mut record)`).
#![cfg_attr(
    feature = "tower-sessions",
    doc = r##"
# Example

```
# #[tokio::main(flavor = "current_thread")]
# async fn main() -> Result<(), Box<dyn std::error::Error>> {
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::SessionStore as _;

let store = sessile::EmbeddedStore::new();
let mut record = Record {
    id: Id::default(),
    data: [("views".to_string(), serde_json::json!(1))].into(),
    expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
};
store.create(&mut record).await?;
let loaded = store.load(&record.id).await?.expect("stored");
assert_eq!(loaded.data, record.data);
// With tower-sessions: `SessionManagerLayer::new(store)`.
# Ok(()) }
```
"##
)]

use std::collections::HashMap;
use std::fmt::Display;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::clock;
use crate::error::StoreError;
use crate::record::{CookieRecord, Data, Record};
use crate::store::{Created, SessionStore};
use crate::EmbeddedStore;

/// How many fresh ids `create` tries before it gives up (each a 128-bit random id: a second
/// collision in a row means the store answers `Exists` for everything).
const CREATE_ATTEMPTS: usize = 16;

/// The expiry reported for a stored record without one (a browser-session cookie).
const NO_EXPIRY_MS: i64 = 86_400_000;

/// What went wrong, before it becomes the error type of one tower-sessions-core version.
#[derive(Debug)]
enum Failure {
    Decode(String),
    Backend(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(_) => Failure::Decode(e.to_string()),
            other => Failure::Backend(other.to_string()),
        }
    }
}

/// The stored form of a tower-sessions record.
fn record_of(data: &HashMap<String, Value>, expiry: OffsetDateTime) -> Record {
    let expires = (expiry.unix_timestamp_nanos() / 1_000_000)
        .clamp(clock::MIN_MS.into(), clock::MAX_MS.into()) as i64;
    let cookie = CookieRecord {
        original_max_age: Some(expires.saturating_sub(clock::now_ms())),
        expires: Some(expires),
        ..CookieRecord::default()
    };
    let mut fields: Vec<(&String, &Value)> = data.iter().collect();
    // A `HashMap` has no order: the stored fields get one, so equal maps store equal text.
    fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let map: Map<String, Value> = fields
        .into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Record {
        cookie,
        data: Data::from_map(&map),
    }
}

/// The data map and expiry of a stored record.
fn parts_of(record: &Record) -> Result<(HashMap<String, Value>, OffsetDateTime), Failure> {
    let data = record.data.to_map().map_err(Failure::from)?;
    let ms = record
        .cookie
        .expires
        .unwrap_or_else(|| clock::now_ms().saturating_add(NO_EXPIRY_MS));
    let expiry = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| Failure::Decode(format!("the session's expiry {ms} ms: {e}")))?;
    Ok((data.into_iter().collect(), expiry))
}

/// `create`: inserts under `id` if absent, else under fresh ids until one is free.
async fn create_record<S, I>(store: &S, id: &mut I, record: &Record) -> Result<(), Failure>
where
    S: SessionStore + ?Sized,
    I: Display + Default,
{
    for _ in 0..CREATE_ATTEMPTS {
        match SessionStore::create(store, &id.to_string(), record).await? {
            Created::Created => return Ok(()),
            Created::Exists => *id = I::default(),
        }
    }
    Err(Failure::Backend(format!(
        "no free session id after {CREATE_ATTEMPTS} fresh ids"
    )))
}

async fn load_record<S: SessionStore + ?Sized>(
    store: &S,
    sid: &str,
) -> Result<Option<(HashMap<String, Value>, OffsetDateTime)>, Failure> {
    match SessionStore::get(store, sid).await? {
        Some(record) => parts_of(&record).map(Some),
        None => Ok(None),
    }
}

/// `ExpiredDeletion::delete_expired` of each store.
trait PurgeExpired {
    fn purge(&self);
}

impl PurgeExpired for EmbeddedStore {
    fn purge(&self) {
        self.purge_expired();
    }
}

#[cfg(feature = "redis")]
impl PurgeExpired for crate::RedisStore {
    /// Redis deletes expired keys itself.
    fn purge(&self) {}
}

/// The impls for one tower-sessions-core version (`$core`, the crate's name here) and the
/// stores listed.
macro_rules! tower_sessions_impls {
    ($core:ident; $($(#[$attr:meta])* $store:ty),+) => {
        impl From<Failure> for ::$core::session_store::Error {
            fn from(f: Failure) -> Self {
                match f {
                    Failure::Decode(m) => ::$core::session_store::Error::Decode(m),
                    Failure::Backend(m) => ::$core::session_store::Error::Backend(m),
                }
            }
        }

        $(
            $(#[$attr])*
            #[async_trait::async_trait]
            impl ::$core::SessionStore for $store {
                async fn create(
                    &self,
                    record: &mut ::$core::session::Record,
                ) -> ::$core::session_store::Result<()> {
                    let stored = record_of(&record.data, record.expiry_date);
                    Ok(create_record(self, &mut record.id, &stored).await?)
                }

                async fn save(
                    &self,
                    record: &::$core::session::Record,
                ) -> ::$core::session_store::Result<()> {
                    let stored = record_of(&record.data, record.expiry_date);
                    let sid = record.id.to_string();
                    SessionStore::set(self, &sid, &stored)
                        .await
                        .map_err(|e| Failure::from(e).into())
                }

                async fn load(
                    &self,
                    id: &::$core::session::Id,
                ) -> ::$core::session_store::Result<Option<::$core::session::Record>> {
                    let loaded = load_record(self, &id.to_string()).await?;
                    Ok(loaded.map(|(data, expiry_date)| ::$core::session::Record {
                        id: *id,
                        data,
                        expiry_date,
                    }))
                }

                async fn delete(
                    &self,
                    id: &::$core::session::Id,
                ) -> ::$core::session_store::Result<()> {
                    SessionStore::destroy(self, &id.to_string())
                        .await
                        .map_err(|e| Failure::from(e).into())
                }
            }

            $(#[$attr])*
            #[async_trait::async_trait]
            impl ::$core::ExpiredDeletion for $store {
                async fn delete_expired(&self) -> ::$core::session_store::Result<()> {
                    PurgeExpired::purge(self);
                    Ok(())
                }
            }
        )+
    };
}

#[cfg(feature = "tower-sessions")]
tower_sessions_impls!(tower_sessions_core; EmbeddedStore, #[cfg(feature = "redis")] crate::RedisStore);

#[cfg(feature = "tower-sessions-014")]
tower_sessions_impls!(tower_sessions_core_014; EmbeddedStore, #[cfg(feature = "redis")] crate::RedisStore);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_their_data_and_expiry_to_the_millisecond() {
        let expiry = OffsetDateTime::from_unix_timestamp_nanos(4_000_000_123_456_789).unwrap();
        let data: HashMap<String, Value> = [
            ("b".to_string(), serde_json::json!({"n": [1, 2]})),
            ("a".to_string(), serde_json::json!("x")),
        ]
        .into();
        let record = record_of(&data, expiry);
        assert_eq!(record.data.as_str(), r#"{"a":"x","b":{"n":[1,2]}}"#);
        assert_eq!(record.cookie.expires, Some(4_000_000_123));
        let (back, at) = parts_of(&record).unwrap();
        assert_eq!(back, data);
        assert_eq!(at.unix_timestamp_nanos(), 4_000_000_123_000_000);
    }
}
