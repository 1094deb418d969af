//! Sessile's stores as actix-session stores: `impl actix_session::storage::SessionStore`
//! (actix-session 0.11) for [`EmbeddedStore`] and, with the `redis` feature, `RedisStore`, so
//! an actix-web app keeps its sessions in the durable embedded store (or in Redis).
//!
//! | actix-session | sessile |
//! | --- | --- |
//! | `load(key)` | [`SessionStore::get`] (an expired session is `None`) |
//! | `save(state, ttl)` | [`SessionStore::create`] under a fresh id from the OS's random source (32 characters); an id already taken is never overwritten: another is drawn |
//! | `update(key, state, ttl)` | [`SessionStore::apply`] of the state's fields (set, and removed when gone from the state) and the new expiry; a session that expired or was deleted meanwhile is saved again under a fresh key, as actix-session's Redis store does |
//! | `update_ttl(key, ttl)` | [`SessionStore::touch`] with the new expiry |
//! | `delete(key)` | [`SessionStore::destroy`] |
//!
//! The session key is the sessile session id. actix-session keeps each value as JSON text;
//! each is stored as the JSON value it holds, so the stored session reads as a JSON object
//! of the session's fields (as express-session's would). The TTL becomes the stored cookie's
//! `originalMaxAge`, and now plus the TTL its `expires`: the store frees the session then.
//!
//! Errors: a stored session that cannot be read (corrupt, or data that is not a JSON object)
//! is `LoadError::Deserialization`; a value in the state that is not JSON text (actix-session
//! writes only JSON) is `SaveError::Serialization` / `UpdateError::Serialization`; every
//! other [`StoreError`] is `Other`.
//!
//! A type that implements both `sessile::SessionStore` and actix-session's `SessionStore`
//! has two methods named `load`, `update`, `delete`...: with both traits imported, call them
//! by path.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use actix_session::storage::SessionStore as _;
//! use std::collections::HashMap;
//!
//! let store = sessile::EmbeddedStore::new();
//! let state = HashMap::from([("user".to_string(), r#""alice""#.to_string())]);
//! let ttl = time::Duration::hours(1);
//! let key = store.save(state.clone(), &ttl).await?;
//! assert_eq!(store.load(&key).await?, Some(state));
//! // With actix-web: `SessionMiddleware::new(store, key)`.
//! # Ok(()) }
//! ```

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, UpdateError};
use serde_json::{Map, Value};
use time::Duration;

use crate::error::StoreError;
use crate::record::{Change, Changes, CookieRecord, Data, Record};
use crate::store::{Applied, Created, SessionStore};
use crate::EmbeddedStore;

/// actix-session's session state: field name to the field's JSON text.
type State = HashMap<String, String>;

/// How many fresh ids `save` draws before it gives up (a second 192-bit id taken in a row
/// means the store answers `Exists` for everything).
const SAVE_ATTEMPTS: usize = 16;

/// The cookie of a session living `ttl` from now.
fn cookie(ttl: &Duration) -> CookieRecord {
    let ms = i64::try_from(ttl.whole_milliseconds()).unwrap_or(i64::MAX);
    let mut cookie = CookieRecord::default();
    cookie.set_max_age(Some(ms));
    cookie
}

/// The state's values as JSON values, in name order.
fn fields(state: &State) -> Result<Map<String, Value>, anyhow::Error> {
    let mut names: Vec<&String> = state.keys().collect();
    names.sort_unstable();
    names
        .into_iter()
        .map(|name| {
            let value = serde_json::from_str(&state[name])
                .map_err(|e| anyhow::anyhow!("session field {name:?} is not JSON text: {e}"))?;
            Ok((name.clone(), value))
        })
        .collect()
}

fn load_error(e: StoreError) -> LoadError {
    match e {
        StoreError::Corrupt(_) => LoadError::Deserialization(e.into()),
        other => LoadError::Other(other.into()),
    }
}

async fn load<S: SessionStore + ?Sized>(
    store: &S,
    key: &SessionKey,
) -> Result<Option<State>, LoadError> {
    let Some(record) = SessionStore::get(store, key.as_ref())
        .await
        .map_err(load_error)?
    else {
        return Ok(None);
    };
    let map = record.data.to_map().map_err(load_error)?;
    Ok(Some(
        map.into_iter().map(|(k, v)| (k, v.to_string())).collect(),
    ))
}

async fn save<S: SessionStore + ?Sized>(
    store: &S,
    state: &State,
    ttl: &Duration,
) -> Result<SessionKey, SaveError> {
    let record = Record {
        cookie: cookie(ttl),
        data: Data::from_map(&fields(state).map_err(SaveError::Serialization)?),
    };
    for _ in 0..SAVE_ATTEMPTS {
        let id = crate::id::generate().map_err(|e| SaveError::Other(e.into()))?;
        let created = SessionStore::create(store, &id, &record)
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        if created == Created::Created {
            return SessionKey::try_from(id).map_err(|e| SaveError::Other(e.into()));
        }
    }
    Err(SaveError::Other(anyhow::anyhow!(
        "no free session id after {SAVE_ATTEMPTS} fresh ids"
    )))
}

async fn update<S: SessionStore + ?Sized>(
    store: &S,
    key: SessionKey,
    state: State,
    ttl: &Duration,
) -> Result<SessionKey, UpdateError> {
    let other = |e: StoreError| UpdateError::Other(e.into());
    let set = fields(&state).map_err(UpdateError::Serialization)?;
    let stored = SessionStore::get(store, key.as_ref())
        .await
        .map_err(other)?;
    let gone: Vec<Change> = match &stored {
        Some(record) => record
            .data
            .to_map()
            .map_err(other)?
            .into_iter()
            .filter(|(name, _)| !set.contains_key(name))
            .map(|(name, _)| Change::Remove(name))
            .collect(),
        None => Vec::new(),
    };
    let changes = Changes {
        cookie: cookie(ttl),
        fields: set
            .into_iter()
            .map(|(name, value)| Change::Set(name, value))
            .chain(gone)
            .collect(),
    };
    let applied = match stored {
        Some(_) => SessionStore::apply(store, key.as_ref(), &changes)
            .await
            .map_err(other)?,
        None => Applied::Missing,
    };
    match applied {
        Applied::Applied => Ok(key),
        // Expired or deleted since it was loaded: a new session, under a new key.
        Applied::Missing => save(store, &state, ttl).await.map_err(|e| match e {
            SaveError::Serialization(e) => UpdateError::Serialization(e),
            SaveError::Other(e) => UpdateError::Other(e),
        }),
    }
}

/// The impls for the stores listed.
macro_rules! actix_session_impls {
    ($($(#[$attr:meta])* $store:ty),+) => {
        $(
            $(#[$attr])*
            impl actix_session::storage::SessionStore for $store {
                async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
                    load(self, key).await
                }

                async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
                    save(self, &state, ttl).await
                }

                async fn update(
                    &self,
                    key: SessionKey,
                    state: State,
                    ttl: &Duration,
                ) -> Result<SessionKey, UpdateError> {
                    update(self, key, state, ttl).await
                }

                async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
                    Ok(SessionStore::touch(self, key.as_ref(), &cookie(ttl)).await?)
                }

                async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
                    Ok(SessionStore::destroy(self, key.as_ref()).await?)
                }
            }
        )+
    };
}

actix_session_impls!(
    EmbeddedStore,
    #[cfg(feature = "redis")]
    crate::RedisStore
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_values_are_stored_as_json_values() {
        let state = State::from([
            ("b".to_string(), r#"{"n":[1,2.5]}"#.to_string()),
            ("a".to_string(), r#""x""#.to_string()),
        ]);
        let map = fields(&state).unwrap();
        assert_eq!(
            Data::from_map(&map).as_str(),
            r#"{"a":"x","b":{"n":[1,2.5]}}"#
        );
        let bad = State::from([("a".to_string(), "not json".to_string())]);
        assert!(fields(&bad).is_err());
    }
}
