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

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{self, Config};
use crate::error::Error;
use crate::id::RequestHead;
use crate::options::CookieOptions;
use crate::record::Record;

mod commit;
mod cookie;
mod fields;
mod lifecycle;
mod owner;
pub(crate) mod renewal;
pub(crate) mod reserved;
mod state;

use state::State;

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
    /// The owner [`Session::set_owner`] gave in this request, until the session is written
    /// (for `max_sessions_per_owner`).
    joined: Mutex<Option<String>>,
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

impl Session {
    /// A new session for a request whose cookie carried `cookie_id` (verified, but not in
    /// the store) or none, with a cookie made from `options`, resolved for the request.
    pub(crate) fn generate(
        config: Arc<Config>,
        cookie_id: Option<String>,
        options: &CookieOptions,
        secure: bool,
        head: Option<Arc<RequestHead>>,
    ) -> Result<Self, Error> {
        let id = config.new_id(head.as_deref())?;
        let cookie = config::new_cookie(options, secure)?;
        let st = State::fresh(id, cookie, cookie_id, secure, head);
        Ok(Self::from_state(config, st))
    }

    /// The session the store holds under `id` as `record`.
    pub(crate) fn inflate(
        config: Arc<Config>,
        id: String,
        record: Record,
        secure: bool,
        head: Option<Arc<RequestHead>>,
    ) -> Self {
        let st = State::loaded(id, record, config.resave, secure, head);
        Self::from_state(config, st)
    }

    /// The session of a cookie whose record the store holds but cannot read (`reason`): not
    /// JSON, not an object, a cookie no cookie can be. Destroying and regenerating it work;
    /// everything that needs its fields or cookie fails with [`Error::Unreadable`], and the
    /// record is never written over (nothing it holds is lost to a write).
    pub(crate) fn unreadable(
        config: Arc<Config>,
        id: String,
        reason: String,
        options: &CookieOptions,
        secure: bool,
        head: Option<Arc<RequestHead>>,
    ) -> Result<Self, Error> {
        let cookie = config::new_cookie(options, secure)?;
        let mut st = State::fresh(id.clone(), cookie, Some(id), secure, head);
        st.unreadable = Some(reason);
        Ok(Self::from_state(config, st))
    }

    fn from_state(config: Arc<Config>, st: State) -> Self {
        Session {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(st),
                joined: Mutex::new(None),
            }),
        }
    }

    /// Runs `f` on a session that is there and whose record could be read.
    fn with<R>(&self, f: impl FnOnce(&mut State) -> Result<R, Error>) -> Result<R, Error> {
        self.with_present(|st| match &st.unreadable {
            Some(reason) => Err(Error::Unreadable(reason.clone())),
            None => f(st),
        })
    }

    /// Runs `f` on a session that is there, whatever its stored record holds.
    fn with_present<R>(&self, f: impl FnOnce(&mut State) -> Result<R, Error>) -> Result<R, Error> {
        let mut st = self.inner.state.lock();
        if !st.present {
            return Err(Error::NoSession);
        }
        f(&mut st)
    }

    /// `req.session.id` / `req.sessionID`; `None` once the session was destroyed or unset.
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// let id = session.id().expect("a session");
    /// assert_eq!(id.len(), 32);
    /// session.unset();
    /// assert_eq!(session.id(), None);
    /// # Ok::<(), sessile::Error>(())
    /// ```
    pub fn id(&self) -> Option<String> {
        let st = self.inner.state.lock();
        st.present.then(|| st.id.clone())
    }

    /// A field's value, converted from JSON.
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.insert("user", "alice")?;
    /// let user: Option<String> = session.get("user")?;
    /// assert_eq!(user.as_deref(), Some("alice"));
    /// assert_eq!(session.get::<u64>("views")?, None);
    /// # Ok::<(), sessile::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Value`] when the field is not a `T`, or is not even a [`Value`] (a lone
    /// UTF-16 surrogate, nesting past serde_json's limit: see [`get_value`](Self::get_value)).
    /// Only this read fails: the other fields read, and the field is stored back as it was.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        if reserved::is_reserved(key) {
            return self.with(|_| Ok(None));
        }
        self.with(|st| st.fields.get(key))
    }

    /// A field's raw JSON value.
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.insert("cart", serde_json::json!({"items": [1, 2]}))?;
    /// let cart = session.get_value("cart")?.expect("a cart");
    /// assert_eq!(cart["items"][1], 2);
    /// # Ok::<(), sessile::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Value`] for a field that cannot be decoded into a [`Value`]: a string with a
    /// lone UTF-16 surrogate, or nesting deeper than serde_json's limit (which a record
    /// written by Node can hold). The other fields read, and the field is stored back as it
    /// was unless the request replaces or removes it.
    pub fn get_value(&self, key: &str) -> Result<Option<Value>, Error> {
        if reserved::is_reserved(key) {
            return self.with(|_| Ok(None));
        }
        self.with(|st| st.fields.value(key))
    }

    /// Every field (without the `cookie` object and the reserved fields, see
    /// [`insert`](Self::insert)).
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.insert("user", "alice")?;
    /// session.insert("views", 3)?;
    /// let data = session.data()?;
    /// assert_eq!(data.keys().collect::<Vec<_>>(), ["user", "views"]);
    /// # Ok::<(), sessile::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Value`] when a field cannot be decoded (see [`get_value`](Self::get_value)).
    pub fn data(&self) -> Result<Map<String, Value>, Error> {
        self.with(|st| st.fields.values())
    }

    /// Sets a field. The name `cookie` is reserved for the cookie object, and names starting
    /// with `__sessile_` for sessile's own data in the record (docs/FORMAT.md, "Reserved
    /// keys"): both are refused ([`Error::ReservedField`]). Reserved fields are never shown
    /// ([`get`](Self::get), [`data`](Self::data)), kept by [`clear`](Self::clear), and
    /// written back with the record, so a Node app sharing the store keeps them.
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.insert("user", "alice")?;
    /// assert!(session.is_modified()?);
    /// // The cookie object has a name of its own.
    /// assert!(matches!(session.insert("cookie", 1), Err(sessile::Error::ReservedField(_))));
    /// // So has sessile's own data.
    /// let err = session.insert("__sessile_created", 1).unwrap_err();
    /// assert_eq!(err.to_string(), "the field name `__sessile_created` is reserved by the session");
    /// # Ok::<(), sessile::Error>(())
    /// ```
    pub fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), Error> {
        if key == "cookie" || reserved::is_reserved(key) {
            return Err(Error::ReservedField(key.to_owned()));
        }
        let value = serde_json::to_value(value)?;
        self.with(|st| {
            st.fields.map_mut()?.insert(key.to_owned(), value);
            Ok(())
        })
    }

    /// Removes a field, returning its old value (`None` for a field that cannot be decoded
    /// into a [`Value`], which is removed all the same). A reserved name (starting with
    /// `__sessile_`) is refused with [`Error::ReservedField`].
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.insert("flash", "saved")?;
    /// assert_eq!(session.remove("flash")?, Some(serde_json::json!("saved")));
    /// assert_eq!(session.remove("flash")?, None);
    /// assert!(session.remove("__sessile_created").is_err());
    /// # Ok::<(), sessile::Error>(())
    /// ```
    pub fn remove(&self, key: &str) -> Result<Option<Value>, Error> {
        if reserved::is_reserved(key) {
            return Err(Error::ReservedField(key.to_owned()));
        }
        self.with(|st| {
            if !st.fields.map()?.contains(key) {
                return Ok(None);
            }
            Ok(st.fields.map_mut()?.remove(key))
        })
    }

    /// Removes every field (the cookie and the reserved fields stay).
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.insert("user", "alice")?;
    /// session.clear()?;
    /// assert!(session.data()?.is_empty());
    /// # Ok::<(), sessile::Error>(())
    /// ```
    pub fn clear(&self) -> Result<(), Error> {
        self.with(|st| {
            if st.fields.map()?.any_shown(reserved::is_reserved) {
                st.fields.map_mut()?.retain(reserved::is_reserved, false);
            }
            Ok(())
        })
    }

    /// A reserved field's value (`None` when absent or not JSON sessile can read), for the
    /// layer.
    #[allow(dead_code)] // for the layer's features that read one back (sign-out everywhere)
    pub(crate) fn reserved(&self, key: &str) -> Result<Option<Value>, Error> {
        debug_assert!(reserved::is_reserved(key));
        self.with(|st| Ok(st.fields.value(key).ok().flatten()))
    }

    /// Sets (`Some`) or removes (`None`) a reserved field, for the layer. A change counts
    /// as a modification of the session, as any field's does.
    #[allow(dead_code)] // for the layer's features that set one (sign-out everywhere)
    pub(crate) fn set_reserved(&self, key: &str, value: Option<Value>) -> Result<(), Error> {
        debug_assert!(reserved::is_reserved(key));
        self.with(|st| st.set_reserved(key, value))
    }

    /// Whether the fields or the id differ from what was loaded (express's `isModified`).
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// assert!(!session.is_modified()?);
    /// session.insert("user", "alice")?;
    /// assert!(session.is_modified()?);
    /// session.remove("user")?;
    /// // Back to what was loaded: no change.
    /// assert!(!session.is_modified()?);
    /// # Ok::<(), sessile::Error>(())
    /// ```
    pub fn is_modified(&self) -> Result<bool, Error> {
        self.with(|st| st.is_modified())
    }
}
