//! tower-sessions 0.15's `MemoryStore` behind sessile's `SessionStore`: the reference
//! `sessile bench` compares with, doing for each call what tower-sessions does for it.
//!
//! - `get` is `load` (the peer clones its record, a map of JSON values, out of its map). Its
//!   layer keeps that map as it is, so the adapter does not convert it into sessile's JSON
//!   text (that would charge the peer work it never does): it hands back a record with the
//!   loaded expiry and no fields.
//! - `set` converts sessile's record into the peer's (the fields parsed into its map, as
//!   `Session::insert` turns values into JSON values) and `save`s it.
//! - `create` is the peer's `create`; `touch` and `apply` load, change and `save` the
//!   record (tower-sessions has neither: its layer saves the whole record).
//! - `destroy` is `delete`; `all`, `clear` and `len` are not part of the peer's trait.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use sessile::{Applied, Changes, CookieRecord, Created, Data, Record, SessionStore, StoreError};
use tower_sessions::session::{Id, Record as TsRecord};
use tower_sessions::{MemoryStore, SessionStore as _};

/// tower-sessions' `MemoryStore` as a sessile store (see the module's notes).
#[derive(Debug, Default)]
pub(crate) struct TsMemory(MemoryStore);

/// The peer's id of a sessile id: its first 16 bytes (sessile's ids are 32 random base64url
/// characters, so 16 of them are 96 random bits).
fn id_of(sid: &str) -> Id {
    let mut bytes = [0u8; 16];
    for (b, s) in bytes.iter_mut().zip(sid.bytes()) {
        *b = s;
    }
    Id(i128::from_le_bytes(bytes))
}

/// The expiry of a sessile cookie (a browser-session cookie gets one day).
fn expiry_of(cookie: &CookieRecord) -> time::OffsetDateTime {
    let ms = cookie
        .expires
        .unwrap_or_else(|| sessile::clock::now_ms() + 86_400_000);
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn ms_of(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn backend(e: tower_sessions::session_store::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn ts_record(sid: &str, record: &Record) -> Result<TsRecord, StoreError> {
    let data: HashMap<String, serde_json::Value> =
        serde_json::from_str(record.data.as_str()).map_err(|e| StoreError::Backend(Box::new(e)))?;
    Ok(TsRecord {
        id: id_of(sid),
        data,
        expiry_date: expiry_of(&record.cookie),
    })
}

#[async_trait]
impl SessionStore for TsMemory {
    async fn get(&self, sid: &str) -> Result<Option<Record>, StoreError> {
        let loaded = self.0.load(&id_of(sid)).await.map_err(backend)?;
        Ok(loaded.map(|r| {
            let cookie = CookieRecord {
                expires: Some(ms_of(r.expiry_date)),
                ..CookieRecord::default()
            };
            drop(std::hint::black_box(r));
            Record {
                cookie,
                data: Data::empty(),
            }
        }))
    }

    async fn set(&self, sid: &str, record: &Record) -> Result<(), StoreError> {
        self.0.save(&ts_record(sid, record)?).await.map_err(backend)
    }

    async fn create(&self, sid: &str, record: &Record) -> Result<Created, StoreError> {
        let mut r = ts_record(sid, record)?;
        self.0.create(&mut r).await.map_err(backend)?;
        // The peer draws another id on a collision instead of refusing: a record under
        // another id than asked is sessile's `Exists`.
        Ok(if r.id == id_of(sid) {
            Created::Created
        } else {
            Created::Exists
        })
    }

    async fn apply(&self, sid: &str, changes: &Changes) -> Result<Applied, StoreError> {
        let Some(mut r) = self.0.load(&id_of(sid)).await.map_err(backend)? else {
            return Ok(Applied::Missing);
        };
        let mut map: serde_json::Map<String, serde_json::Value> = r.data.drain().collect();
        changes.apply_to(&mut map);
        r.data = map.into_iter().collect();
        r.expiry_date = expiry_of(&changes.cookie);
        self.0.save(&r).await.map_err(backend)?;
        Ok(Applied::Applied)
    }

    async fn destroy(&self, sid: &str) -> Result<(), StoreError> {
        self.0.delete(&id_of(sid)).await.map_err(backend)
    }

    async fn touch(&self, sid: &str, cookie: &CookieRecord) -> Result<(), StoreError> {
        if let Some(mut r) = self.0.load(&id_of(sid)).await.map_err(backend)? {
            r.expiry_date = expiry_of(cookie);
            self.0.save(&r).await.map_err(backend)?;
        }
        Ok(())
    }

    async fn all(&self) -> Result<BTreeMap<String, Record>, StoreError> {
        Err(unsupported())
    }

    async fn clear(&self) -> Result<(), StoreError> {
        Err(unsupported())
    }

    async fn len(&self) -> Result<usize, StoreError> {
        Err(unsupported())
    }
}

fn unsupported() -> StoreError {
    StoreError::Unavailable("tower-sessions' MemoryStore cannot list or count".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    fn record(json: &str) -> Record {
        let mut r = Record::from_json(json).expect("record");
        r.cookie.expires = Some(sessile::clock::now_ms() + 60_000);
        r
    }

    #[test]
    fn the_calls_reach_the_memory_store() {
        rt().block_on(async {
            let s = TsMemory::default();
            let sid = "abcdefghijklmnopqrstuvwxyz012345";
            assert!(s.get(sid).await.unwrap().is_none());
            let r = record(r#"{"cookie":{},"views":1}"#);
            assert_eq!(s.create(sid, &r).await.unwrap(), Created::Created);
            let got = s.get(sid).await.unwrap().expect("stored");
            assert_eq!(got.cookie.expires, r.cookie.expires);
            s.set(sid, &record(r#"{"cookie":{},"views":2}"#))
                .await
                .unwrap();
            let loaded = s.0.load(&id_of(sid)).await.unwrap().expect("stored");
            assert_eq!(loaded.data["views"], serde_json::json!(2));
            let changes = Changes {
                cookie: r.cookie.clone(),
                fields: vec![sessile::Change::Set("views".into(), 3.into())],
            };
            assert_eq!(s.apply(sid, &changes).await.unwrap(), Applied::Applied);
            let loaded = s.0.load(&id_of(sid)).await.unwrap().expect("stored");
            assert_eq!(loaded.data["views"], serde_json::json!(3));
            s.destroy(sid).await.unwrap();
            assert!(s.get(sid).await.unwrap().is_none());
            assert_eq!(s.apply(sid, &changes).await.unwrap(), Applied::Missing);
        });
    }
}
