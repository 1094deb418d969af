//! A session's state and express's decisions on it: modified, saved, to be saved, to get a
//! cookie; and the store write that saves it.

use std::sync::Arc;

use super::fields::{Fields, Snap};
use super::reserved;
use crate::config::Config;
use crate::error::Error;
use crate::id::RequestHead;
use crate::record::{Changes, CookieRecord, Data, Record};

/// One session's state, behind the [`Session`](super::Session) handle's lock.
pub(super) struct State {
    pub(super) id: String,
    /// `req.session` exists (not destroyed, not unset).
    pub(super) present: bool,
    pub(super) unset: bool,
    pub(super) cookie: CookieRecord,
    pub(super) fields: Fields,
    pub(super) touched: bool,
    /// The cookie the store holds for `id`, as loaded (for `touch_after`); `None` for a
    /// session not loaded from the store.
    pub(super) stored_cookie: Option<CookieRecord>,
    /// The id the request's cookie carried, verified.
    pub(super) cookie_id: Option<String>,
    /// The id and fields as first loaded or generated (express's `originalId`/`originalHash`).
    pub(super) original_id: String,
    pub(super) original: Snap,
    /// What was last written to the store for `id` (express's `savedHash`).
    pub(super) saved: Option<Snap>,
    /// What the store holds under `id`, as far as this request knows: the base of the diff
    /// that `apply` sends. `None` when the id is not in the store.
    pub(super) persisted: Option<Snap>,
    /// Whether the request is secure, for `"auto"` options on regenerate.
    pub(super) secure: bool,
    pub(super) head: Option<Arc<RequestHead>>,
    /// The store holds a record under `id` that it could not read (why): the session can be
    /// destroyed or regenerated, but has no fields or cookie to read or write, and is never
    /// written over.
    pub(super) unreadable: Option<String>,
}

/// A store write that saves a session.
pub(super) enum WriteOp {
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
    /// A new session under `id`: no fields, the new cookie `cookie`.
    pub(super) fn fresh(
        id: String,
        cookie: CookieRecord,
        cookie_id: Option<String>,
        secure: bool,
        head: Option<Arc<RequestHead>>,
    ) -> Self {
        let raw = Data::empty();
        State {
            original_id: id.clone(),
            id,
            present: true,
            unset: false,
            cookie,
            original: Snap::Text(raw.clone()),
            fields: Fields::new(raw),
            touched: false,
            stored_cookie: None,
            cookie_id,
            saved: None,
            persisted: None,
            secure,
            head,
            unreadable: None,
        }
    }

    /// The session the store holds under `id` as `record`. With `resave` off, what was
    /// loaded counts as saved.
    pub(super) fn loaded(
        id: String,
        record: Record,
        resave: bool,
        secure: bool,
        head: Option<Arc<RequestHead>>,
    ) -> Self {
        let snap = Snap::Text(record.data.clone());
        State {
            original_id: id.clone(),
            cookie_id: Some(id.clone()),
            id,
            present: true,
            unset: false,
            stored_cookie: Some(record.cookie.clone()),
            cookie: record.cookie,
            fields: Fields::new(record.data),
            touched: false,
            saved: (!resave).then(|| snap.clone()),
            persisted: Some(snap.clone()),
            original: snap,
            secure,
            head,
            unreadable: None,
        }
    }

    /// Sets (`Some`) or removes (`None`) a reserved field; no write when it already is so.
    #[allow(dead_code)] // until the layer's features use it
    pub(super) fn set_reserved(
        &mut self,
        key: &str,
        value: Option<serde_json::Value>,
    ) -> Result<(), Error> {
        let map = self.fields.map()?;
        let unchanged = match &value {
            Some(v) => map.get(key) == Some(v),
            None => !map.contains(key),
        };
        if !unchanged {
            let map = self.fields.map_mut()?;
            match value {
                Some(v) => map.insert(key.to_owned(), v),
                None => {
                    map.remove(key);
                }
            }
        }
        Ok(())
    }

    /// Drops the reserved fields that belong to the old id when the id changes, keeping
    /// those sessile carries over.
    pub(super) fn drop_reserved_on_cycle(&mut self) -> Result<(), Error> {
        let dropped = |k: &str| reserved::is_reserved(k) && !reserved::carried_on_cycle(k);
        if self.fields.map()?.any_named(dropped) {
            self.fields.map_mut()?.retain(|k| !dropped(k), true);
        }
        Ok(())
    }

    /// Whether `touch_after` lets the store touch of this request be skipped: the cookie is
    /// the stored one but for an expiry moved forward by less than `touch_after`.
    pub(super) fn touch_skippable(&self, config: &Config) -> bool {
        let (Some(after), Some(stored)) = (config.touch_after, self.stored_cookie.as_ref()) else {
            return false;
        };
        let (Some(old), Some(new)) = (stored.expires, self.cookie.expires) else {
            return false;
        };
        let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        let same_otherwise = CookieRecord {
            expires: stored.expires,
            ..self.cookie.clone()
        } == *stored;
        same_otherwise && new.saturating_sub(old) < after_ms
    }

    pub(super) fn is_modified(&mut self) -> Result<bool, Error> {
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

    pub(super) fn should_save(&mut self, config: &Config) -> Result<bool, Error> {
        if !config.save_uninitialized
            && self.saved.is_none()
            && self.cookie_id.as_deref() != Some(self.id.as_str())
        {
            self.is_modified()
        } else {
            Ok(!self.is_saved()?)
        }
    }

    pub(super) fn should_set_cookie(&mut self, config: &Config) -> Result<bool, Error> {
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
    pub(super) fn write_op(&mut self, config: &Config) -> Result<WriteOp, Error> {
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
