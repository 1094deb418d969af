//! The per-request session: `req.session` in express.
//!
//! The layer puts a [`Session`] in the request's extensions before the handler runs and
//! commits it after the handler returns, before the response leaves. A `Session` is a cheap
//! handle (clone it freely); all clones see the same state.
//!
//! Change tracking: the session remembers the fields as they were loaded. At commit, with
//! `resave = false`, only the fields this request changed are sent to the store
//! ([`SessionStore::apply`](crate::SessionStore::apply)), so two parallel requests that change
//! different fields both keep their change. "Changed" means what express means: a field whose
//! value differs from the loaded one (setting a field to its current value is no change).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock;
use crate::error::Error;
use crate::id::{self, RequestHead};
use crate::layer::Config;
use crate::options::Unset;
use crate::record::{Changes, CookieRecord, Data, Parsed, Record};
use crate::store::Applied;

/// The session of one request.
///
/// Get it in an axum handler with the extractor (`sessile::Session` implements
/// `FromRequestParts`), or from `request.extensions()` in any tower service behind the layer.
///
/// ```
/// # async fn demo(session: sessile::Session) -> Result<(), sessile::Error> {
/// let views: u64 = session.get("views")?.unwrap_or(0);
/// session.insert("views", views + 1)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.inner.state.lock();
        f.debug_struct("Session")
            .field("id", &st.present.then_some(&st.id))
            .field("cookie", &st.cookie)
            .finish_non_exhaustive()
    }
}

/// A view of the fields that is equal to some known text without parsing it.
#[derive(Clone)]
enum Snap {
    Text(Data),
    Map(Arc<Parsed>),
}

/// The fields as loaded (`raw`) and, once a handler looked at them as a whole or wrote one,
/// parsed (`map`). A field that cannot be decoded into a `Value` (a lone surrogate, nesting
/// past serde_json's limit: what Node can write) stays opaque in `map`: written back as it
/// was, and only reading that field fails.
struct Fields {
    raw: Data,
    map: Option<Arc<Parsed>>,
    /// A write happened since `raw` was loaded.
    dirty: bool,
    /// Fields read from `raw` without parsing it into `map`.
    scans: u8,
}

/// Reads of single fields served by scanning the text before the fields are parsed into a
/// map once for all (a handler that reads one or two fields never builds the map).
const SCANS_BEFORE_PARSING: u8 = 2;

impl Fields {
    fn new(raw: Data) -> Self {
        Fields {
            raw,
            map: None,
            dirty: false,
            scans: 0,
        }
    }

    /// One field, converted from JSON.
    fn get<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, Error> {
        if self.map.is_none() && self.scans < SCANS_BEFORE_PARSING {
            self.scans += 1;
            // On an error (text that is not a JSON object, or a value that is not a `T`) the
            // map below gives the same answer and error as without the scan.
            if let Ok(v) = self.raw.field(key) {
                return Ok(v);
            }
        }
        let parsed = self.map()?;
        match parsed.get(key) {
            Some(v) => Ok(Some(T::deserialize(v)?)),
            // A `T` may read what a `Value` cannot (or fails with serde_json's reason).
            None => match parsed.opaque(key) {
                Some(o) => Ok(Some(serde_json::from_str(o.value)?)),
                None => Ok(None),
            },
        }
    }

    /// One field as a `Value`; an error for a field that cannot be decoded.
    fn value(&mut self, key: &str) -> Result<Option<Value>, Error> {
        let parsed = self.map()?;
        if let Some(o) = parsed.opaque(key) {
            return Err(Error::Value(o.error()));
        }
        Ok(parsed.get(key).cloned())
    }

    /// Every field as a `Value`; an error naming the first field that cannot be decoded.
    fn values(&mut self) -> Result<Map<String, Value>, Error> {
        let parsed = self.map()?;
        if let Some(o) = parsed.first_opaque() {
            return Err(Error::Value(serde::de::Error::custom(o)));
        }
        Ok(parsed.to_map())
    }

    fn map(&mut self) -> Result<&Arc<Parsed>, Error> {
        if self.map.is_none() {
            self.map = Some(Arc::new(self.raw.parse()?));
        }
        Ok(self.map.get_or_insert_with(Default::default))
    }

    fn map_mut(&mut self) -> Result<&mut Parsed, Error> {
        self.map()?;
        self.dirty = true;
        Ok(Arc::make_mut(self.map.get_or_insert_with(Default::default)))
    }

    fn snap(&self) -> Snap {
        match (&self.map, self.dirty) {
            (Some(m), true) => Snap::Map(m.clone()),
            _ => Snap::Text(self.raw.clone()),
        }
    }

    fn data(&self) -> Data {
        match (&self.map, self.dirty) {
            (Some(m), true) => Data::from_parsed(m),
            _ => self.raw.clone(),
        }
    }

    fn equals(&mut self, snap: &Snap) -> Result<bool, Error> {
        if !self.dirty {
            if let Snap::Text(t) = snap {
                if *t == self.raw {
                    return Ok(true);
                }
            }
        }
        let other = match snap {
            Snap::Text(t) => Arc::new(t.parse()?),
            Snap::Map(m) => m.clone(),
        };
        Ok(**self.map()? == *other)
    }
}

pub(crate) struct State {
    id: String,
    /// `req.session` exists (not destroyed, not unset).
    present: bool,
    unset: bool,
    cookie: CookieRecord,
    fields: Fields,
    touched: bool,
    /// The id the request's cookie carried, verified.
    cookie_id: Option<String>,
    /// The id and fields as first loaded or generated (express's `originalId`/`originalHash`).
    original_id: String,
    original: Snap,
    /// What was last written to the store for `id` (express's `savedHash`).
    saved: Option<Snap>,
    /// What the store holds under `id`, as far as this request knows: the base of the diff
    /// that `apply` sends. `None` when the id is not in the store.
    persisted: Option<Snap>,
    /// Whether the request is secure, for `"auto"` options on regenerate.
    secure: bool,
    head: Option<Arc<RequestHead>>,
}

/// What the layer must do with the response after the commit.
pub(crate) struct Commit {
    pub(crate) set_cookie: Option<String>,
}

impl Session {
    pub(crate) fn generate(
        config: Arc<Config>,
        cookie_id: Option<String>,
        secure: bool,
        head: Option<Arc<RequestHead>>,
    ) -> Result<Self, Error> {
        let id = config.new_id(head.as_deref())?;
        let cookie = config.new_cookie(head.as_deref(), secure)?;
        let raw = Data::empty();
        let st = State {
            original_id: id.clone(),
            id,
            present: true,
            unset: false,
            cookie,
            original: Snap::Text(raw.clone()),
            fields: Fields::new(raw),
            touched: false,
            cookie_id,
            saved: None,
            persisted: None,
            secure,
            head,
        };
        Ok(Self::from_state(config, st))
    }

    pub(crate) fn inflate(
        config: Arc<Config>,
        id: String,
        record: Record,
        secure: bool,
        head: Option<Arc<RequestHead>>,
    ) -> Self {
        let snap = Snap::Text(record.data.clone());
        let st = State {
            original_id: id.clone(),
            cookie_id: Some(id.clone()),
            id,
            present: true,
            unset: false,
            cookie: record.cookie,
            fields: Fields::new(record.data),
            touched: false,
            saved: (!config.resave).then(|| snap.clone()),
            persisted: Some(snap.clone()),
            original: snap,
            secure,
            head,
        };
        Self::from_state(config, st)
    }

    fn from_state(config: Arc<Config>, st: State) -> Self {
        Session {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(st),
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> Result<R, Error>) -> Result<R, Error> {
        let mut st = self.inner.state.lock();
        if !st.present {
            return Err(Error::NoSession);
        }
        f(&mut st)
    }

    /// `req.session.id` / `req.sessionID`; `None` once the session was destroyed or unset.
    pub fn id(&self) -> Option<String> {
        let st = self.inner.state.lock();
        st.present.then(|| st.id.clone())
    }

    /// A field's value, converted from JSON.
    ///
    /// ```
    /// # fn f(session: sessile::Session) -> Result<(), sessile::Error> {
    /// let user: Option<String> = session.get("user")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Value`] when the field is not a `T`, or is not even a [`Value`] (a lone
    /// UTF-16 surrogate, nesting past serde_json's limit: see [`get_value`](Self::get_value)).
    /// Only this read fails: the other fields read, and the field is stored back as it was.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.with(|st| st.fields.get(key))
    }

    /// A field's raw JSON value.
    ///
    /// # Errors
    /// [`Error::Value`] for a field that cannot be decoded into a [`Value`]: a string with a
    /// lone UTF-16 surrogate, or nesting deeper than serde_json's limit (which a record
    /// written by Node can hold). The other fields read, and the field is stored back as it
    /// was unless the request replaces or removes it.
    pub fn get_value(&self, key: &str) -> Result<Option<Value>, Error> {
        self.with(|st| st.fields.value(key))
    }

    /// Every field (without the `cookie` object).
    ///
    /// # Errors
    /// [`Error::Value`] when a field cannot be decoded (see [`get_value`](Self::get_value)).
    pub fn data(&self) -> Result<Map<String, Value>, Error> {
        self.with(|st| st.fields.values())
    }

    /// Sets a field. The name `cookie` is reserved for the cookie object and is refused.
    ///
    /// ```
    /// # fn f(session: sessile::Session) -> Result<(), sessile::Error> {
    /// session.insert("user", "alice")?;
    /// # Ok(()) }
    /// ```
    pub fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), Error> {
        if key == "cookie" {
            return Err(Error::Value(serde::ser::Error::custom(
                "the field name `cookie` is reserved for the session cookie",
            )));
        }
        let value = serde_json::to_value(value)?;
        self.with(|st| {
            st.fields.map_mut()?.insert(key.to_owned(), value);
            Ok(())
        })
    }

    /// Removes a field, returning its old value (`None` for a field that cannot be decoded
    /// into a [`Value`], which is removed all the same).
    pub fn remove(&self, key: &str) -> Result<Option<Value>, Error> {
        self.with(|st| {
            if !st.fields.map()?.contains(key) {
                return Ok(None);
            }
            Ok(st.fields.map_mut()?.remove(key))
        })
    }

    /// Removes every field (the cookie stays).
    pub fn clear(&self) -> Result<(), Error> {
        self.with(|st| {
            if !st.fields.map()?.is_empty() {
                *st.fields.map_mut()? = Parsed::default();
            }
            Ok(())
        })
    }

    /// Whether the fields or the id differ from what was loaded (express's `isModified`).
    pub fn is_modified(&self) -> Result<bool, Error> {
        self.with(|st| st.is_modified())
    }

    /// `req.session.cookie`: the session cookie as it will be stored and sent.
    pub fn cookie(&self) -> Result<CookieRecord, Error> {
        self.with(|st| Ok(st.cookie.clone()))
    }

    /// `req.session.cookie.maxAge`: the time left until the cookie expires, `None` for a
    /// browser-session cookie. Zero once passed.
    pub fn max_age(&self) -> Result<Option<Duration>, Error> {
        self.with(|st| {
            Ok(st
                .cookie
                .max_age()
                .map(|ms| Duration::from_millis(ms.max(0) as u64)))
        })
    }

    /// `req.session.cookie.maxAge` in milliseconds as express reports it (negative once
    /// passed).
    pub fn max_age_ms(&self) -> Result<Option<i64>, Error> {
        self.with(|st| Ok(st.cookie.max_age()))
    }

    /// `req.session.cookie.originalMaxAge` in milliseconds.
    pub fn original_max_age_ms(&self) -> Result<Option<i64>, Error> {
        self.with(|st| Ok(st.cookie.original_max_age))
    }

    /// `req.session.cookie.expires`.
    pub fn expires(&self) -> Result<Option<SystemTime>, Error> {
        self.with(|st| {
            Ok(st.cookie.expires.map(|ms| {
                if ms >= 0 {
                    UNIX_EPOCH + Duration::from_millis(ms as u64)
                } else {
                    UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
                }
            }))
        })
    }

    /// `req.session.cookie.maxAge = ms`: the cookie (and the session) now lives `max_age` from
    /// now, and `originalMaxAge` becomes `max_age`; `None` makes it a browser-session cookie.
    ///
    /// ```
    /// # fn f(session: sessile::Session) -> Result<(), sessile::Error> {
    /// // "remember me": keep this login for 30 days.
    /// session.set_max_age(Some(std::time::Duration::from_secs(30 * 86_400)))?;
    /// # Ok(()) }
    /// ```
    pub fn set_max_age(&self, max_age: Option<Duration>) -> Result<(), Error> {
        let ms = max_age.map(|d| d.as_millis().min(clock::MAX_MS as u128) as i64);
        self.set_max_age_ms(ms)
    }

    /// [`set_max_age`](Self::set_max_age) in express's unit, milliseconds.
    pub fn set_max_age_ms(&self, ms: Option<i64>) -> Result<(), Error> {
        self.with(|st| {
            st.cookie.set_max_age(ms);
            Ok(())
        })
    }

    /// `req.session.cookie.expires = date`: a fixed expiry; `originalMaxAge` becomes the time
    /// left. `None` makes it a browser-session cookie.
    pub fn set_expires(&self, at: Option<SystemTime>) -> Result<(), Error> {
        self.with(|st| {
            let at = at.map(|t| match t.duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_millis().min(clock::MAX_MS as u128) as i64,
                Err(e) => -(e.duration().as_millis().min(i64::MAX as u128) as i64),
            });
            st.cookie.expires = at;
            st.cookie.original_max_age = at.map(|e| e - clock::now_ms());
            Ok(())
        })
    }

    /// `req.session.touch()`: resets the cookie's expiry to now + `originalMaxAge`. The layer
    /// does this for every request that has a session.
    pub fn touch(&self) -> Result<(), Error> {
        self.with(|st| {
            st.cookie.touch();
            Ok(())
        })
    }

    /// `req.session = null`: drops the session from this request. With
    /// [`Unset::Destroy`] the stored session is destroyed when the response ends; with
    /// [`Unset::Keep`] it stays as it was and this request's changes are dropped.
    pub fn unset(&self) {
        let mut st = self.inner.state.lock();
        st.present = false;
        st.unset = true;
    }

    /// `req.session.save()`: writes the session to the store now. The layer saves at the end
    /// of the request anyway; this is for long-lived requests, or to be sure before
    /// redirecting.
    pub async fn save(&self) -> Result<(), Error> {
        let op = self.with(|st| st.write_op(&self.inner.config))?;
        let done = self.run_write(op).await?;
        let mut st = self.inner.state.lock();
        match done {
            Some(done) => {
                st.saved = Some(done.clone());
                st.persisted = Some(done);
                Ok(())
            }
            None => {
                st.present = false;
                Err(Error::NotInStore)
            }
        }
    }

    /// `req.session.reload()`: replaces the fields and cookie with what the store holds now.
    ///
    /// # Errors
    /// [`Error::NotInStore`] when the store has no such session.
    pub async fn reload(&self) -> Result<(), Error> {
        let id = self.with(|st| Ok(st.id.clone()))?;
        let record = self
            .inner
            .config
            .store
            .get(&id)
            .await?
            .ok_or(Error::NotInStore)?;
        let mut st = self.inner.state.lock();
        if st.id != id || !st.present {
            return Err(Error::NoSession);
        }
        let snap = Snap::Text(record.data.clone());
        st.cookie = record.cookie;
        st.fields = Fields::new(record.data);
        st.persisted = Some(snap);
        Ok(())
    }

    /// `req.session.regenerate()`: destroys the stored session and starts a new one with a new
    /// id, no fields and a fresh cookie. The new session is saved and sent at the end of the
    /// request.
    pub async fn regenerate(&self) -> Result<(), Error> {
        let old = self.with(|st| Ok(st.id.clone()))?;
        let destroyed = self.inner.config.store.destroy(&old).await;
        {
            let mut st = self.inner.state.lock();
            let config = &self.inner.config;
            let id = config.new_id(st.head.as_deref())?;
            st.cookie = config.new_cookie(st.head.as_deref(), st.secure)?;
            st.fields = Fields::new(Data::empty());
            st.id = id;
            st.present = true;
            st.unset = false;
            st.persisted = None;
        }
        destroyed.map_err(Error::from)
    }

    /// Gives the session a new id and keeps its fields and cookie: the defence against
    /// session fixation to run at login (express has only `regenerate`, which drops the
    /// fields). The old id is destroyed in the store now; the session is saved under the new
    /// id at the end of the request.
    pub async fn cycle_id(&self) -> Result<(), Error> {
        let old = self.with(|st| Ok(st.id.clone()))?;
        self.inner.config.store.destroy(&old).await?;
        let mut st = self.inner.state.lock();
        let id = self.inner.config.new_id(st.head.as_deref())?;
        st.id = id;
        st.persisted = None;
        Ok(())
    }

    /// `req.session.destroy()`: removes the session from the store and from this request. The
    /// next request starts a new session.
    pub async fn destroy(&self) -> Result<(), Error> {
        let id = self.with(|st| {
            st.present = false;
            Ok(st.id.clone())
        })?;
        self.inner.config.store.destroy(&id).await?;
        Ok(())
    }

    /// Runs a store write; `None` when the session was no longer in the store.
    async fn run_write(&self, op: WriteOp) -> Result<Option<Snap>, Error> {
        let store = &self.inner.config.store;
        match op {
            WriteOp::Set { id, record, snap } => {
                store.set(&id, &record).await?;
                Ok(Some(snap))
            }
            WriteOp::Apply { id, changes, snap } => {
                // A session destroyed (a logout in a parallel request) or expired since it
                // was loaded stays gone: express would write it back whole and undo the
                // logout.
                Ok((store.apply(&id, &changes).await? == Applied::Applied).then_some(snap))
            }
        }
    }

    /// Runs express's end-of-request logic: destroy on unset, touch, save or store-touch, and
    /// the decision to send `Set-Cookie`.
    pub(crate) async fn commit(&self) -> Result<Commit, Error> {
        let config = &self.inner.config;
        enum Step {
            Destroy(String),
            Nothing,
            Write(WriteOp),
            Touch(String, CookieRecord),
        }
        let step = {
            let mut st = self.inner.state.lock();
            if !st.present {
                if st.unset && config.unset == Unset::Destroy {
                    Step::Destroy(st.id.clone())
                } else {
                    Step::Nothing
                }
            } else {
                if !st.touched {
                    st.cookie.touch();
                    st.touched = true;
                }
                if st.should_save(config)? {
                    Step::Write(st.write_op(config)?)
                } else if st.cookie_id.as_deref() == Some(st.id.as_str()) {
                    Step::Touch(st.id.clone(), st.cookie.clone())
                } else {
                    Step::Nothing
                }
            }
        };
        match step {
            Step::Destroy(id) => {
                config.store.destroy(&id).await?;
                return Ok(Commit { set_cookie: None });
            }
            Step::Nothing => {}
            Step::Write(op) => {
                let done = self.run_write(op).await?;
                let mut st = self.inner.state.lock();
                match done {
                    Some(snap) => {
                        st.saved = Some(snap.clone());
                        st.persisted = Some(snap);
                    }
                    None => {
                        // The session ended in the store meanwhile: no cookie for it.
                        st.present = false;
                        return Ok(Commit { set_cookie: None });
                    }
                }
            }
            Step::Touch(id, cookie) => config.store.touch(&id, &cookie).await?,
        }
        let mut st = self.inner.state.lock();
        // An Invalid Date `expires` (see `has_invalid_expires`) makes express's
        // `cookie.serialize` throw: the session is saved, no cookie is sent.
        let set_cookie = if st.should_set_cookie(config)? && !st.cookie.has_invalid_expires() {
            crate::cookie::check(&st.cookie).map_err(Error::Cookie)?;
            Some(crate::cookie::serialize(
                &config.name,
                &crate::signing::cookie_value(&st.id, &config.secrets),
                &st.cookie,
            ))
        } else {
            None
        };
        Ok(Commit { set_cookie })
    }
}

enum WriteOp {
    Set {
        id: String,
        record: Record,
        snap: Snap,
    },
    Apply {
        id: String,
        changes: Changes,
        snap: Snap,
    },
}

impl State {
    fn is_modified(&mut self) -> Result<bool, Error> {
        if self.original_id != self.id {
            return Ok(true);
        }
        let original = self.original.clone();
        Ok(!self.fields.equals(&original)?)
    }

    fn is_saved(&mut self) -> Result<bool, Error> {
        if self.original_id != self.id {
            return Ok(false);
        }
        match self.saved.clone() {
            None => Ok(false),
            Some(s) => self.fields.equals(&s),
        }
    }

    fn should_save(&mut self, config: &Config) -> Result<bool, Error> {
        if !config.save_uninitialized
            && self.saved.is_none()
            && self.cookie_id.as_deref() != Some(self.id.as_str())
        {
            self.is_modified()
        } else {
            Ok(!self.is_saved()?)
        }
    }

    fn should_set_cookie(&mut self, config: &Config) -> Result<bool, Error> {
        if !self.present {
            return Ok(false);
        }
        let send = if self.cookie_id.as_deref() != Some(self.id.as_str()) {
            config.save_uninitialized || self.is_modified()?
        } else {
            config.rolling || (self.cookie.expires.is_some() && self.is_modified()?)
        };
        // Only send secure cookies over secure connections; the session is saved regardless.
        let sendable = self.secure || self.cookie.secure != Some(true);
        Ok(send && sendable)
    }

    /// The store write that saves this session: field changes against what the store holds
    /// when that is known and `resave` is off, the whole record otherwise (and when the
    /// changes cannot be said as field changes: a field that cannot be decoded and has no
    /// name to remove it by).
    fn write_op(&mut self, config: &Config) -> Result<WriteOp, Error> {
        let snap = self.fields.snap();
        let id = self.id.clone();
        if let (Some(base), false) = (&self.persisted, config.resave) {
            let base = base.clone();
            let fields = if self.fields.equals(&base)? {
                Some(Vec::new())
            } else {
                let base = match base {
                    Snap::Text(t) => Arc::new(t.parse()?),
                    Snap::Map(m) => m,
                };
                self.fields.map()?.changes_since(&base)
            };
            if let Some(fields) = fields {
                return Ok(WriteOp::Apply {
                    id,
                    changes: Changes {
                        cookie: self.cookie.clone(),
                        fields,
                    },
                    snap,
                });
            }
        }
        Ok(WriteOp::Set {
            id,
            record: Record {
                cookie: self.cookie.clone(),
                data: self.fields.data(),
            },
            snap,
        })
    }
}

impl Config {
    pub(crate) fn new_id(&self, head: Option<&RequestHead>) -> Result<String, Error> {
        match (&self.genid, head) {
            (Some(f), Some(h)) => Ok(f(h)),
            _ => id::generate().map_err(|e| Error::Id(e.to_string())),
        }
    }

    pub(crate) fn new_cookie(
        &self,
        head: Option<&RequestHead>,
        secure: bool,
    ) -> Result<CookieRecord, Error> {
        let record = self.cookie.resolve(head).new_record(secure);
        crate::cookie::check(&record).map_err(Error::Cookie)?;
        Ok(record)
    }
}
