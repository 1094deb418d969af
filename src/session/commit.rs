//! The end of a request: express's decisions to destroy, save, touch and send the cookie,
//! and the store writes that carry them out.

use super::fields::Snap;
use super::state::WriteOp;
use super::Session;
use crate::error::Error;
use crate::options::Unset;
use crate::record::{Changes, CookieRecord};
use crate::store::Applied;

/// What the layer must do with the response after the commit.
pub(crate) struct Commit {
    /// The session id and cookie to send in `Set-Cookie`, when one is to be sent.
    pub(crate) set_cookie: Option<(String, CookieRecord)>,
}

impl Session {
    /// Runs a store write; `None` when the session was no longer in the store.
    pub(super) async fn run_write(&self, op: WriteOp) -> Result<Option<Snap>, Error> {
        let store = &self.inner.config.store;
        match op {
            WriteOp::Set { id, record, snap } => {
                store.set(&id, &record).await?;
                self.after_owned_write(&id).await?;
                Ok(Some(snap))
            }
            WriteOp::Apply { id, changes, snap } => {
                // A session destroyed (a logout in a parallel request) or expired since it
                // was loaded stays gone: express would write it back whole and undo the
                // logout.
                if store.apply(&id, &changes).await? == Applied::Missing {
                    return Ok(None);
                }
                self.after_owned_write(&id).await?;
                Ok(Some(snap))
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
            /// `touch_after`: the stored cookie replaced, fields untouched.
            Refresh(String, Changes),
        }
        // For the `trace` event, evaluated only when it is enabled.
        #[cfg(feature = "tracing")]
        impl Step {
            fn name(&self) -> &'static str {
                match self {
                    Step::Destroy(_) => "destroy",
                    Step::Nothing => "nothing",
                    Step::Write(WriteOp::Set { .. }) => "set",
                    Step::Write(WriteOp::Apply { .. }) => "apply",
                    Step::Touch(..) => "touch",
                    Step::Refresh(..) => "refresh",
                }
            }

            fn id(&self) -> &str {
                match self {
                    Step::Nothing => "",
                    Step::Destroy(id) | Step::Touch(id, _) | Step::Refresh(id, _) => id,
                    Step::Write(WriteOp::Set { id, .. } | WriteOp::Apply { id, .. }) => id,
                }
            }
        }
        let step = {
            let mut st = self.inner.state.lock();
            if !st.present {
                if st.unset && config.unset == Unset::Destroy {
                    Step::Destroy(st.id.clone())
                } else {
                    Step::Nothing
                }
            } else if st.unreadable.is_some() {
                // Nothing of it could change, and a write would lose what the record holds.
                return Ok(Commit { set_cookie: None });
            } else {
                if !st.touched {
                    st.cookie.touch();
                    st.touched = true;
                }
                if st.should_save(config)? {
                    Step::Write(st.write_op(config)?)
                } else if st.cookie_id.as_deref() == Some(st.id.as_str()) {
                    if config.touch_after.is_none() || st.cookie.expires.is_none() {
                        // A browser-session cookie has no expiry to compare: the store's
                        // TTL is all that keeps it, so it is touched as express does.
                        Step::Touch(st.id.clone(), st.cookie.clone())
                    } else if st.touch_skippable(config) {
                        Step::Nothing
                    } else {
                        // The whole cookie is stored, not only the expiry a store's touch
                        // may keep (Redis's `EXPIRE`): the next request compares against it.
                        let changes = Changes {
                            cookie: st.cookie.clone(),
                            fields: Vec::new(),
                        };
                        Step::Refresh(st.id.clone(), changes)
                    }
                } else {
                    Step::Nothing
                }
            }
        };
        crate::events::event!(
            trace,
            commit = step.name(),
            id = crate::events::short_id(step.id()),
            "session committed"
        );
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
            Step::Touch(id, cookie) => match self.owner() {
                Some(owner) => config.store.touch_owned(&id, &cookie, &owner).await?,
                None => config.store.touch(&id, &cookie).await?,
            },
            Step::Refresh(id, changes) => {
                if config.store.apply(&id, &changes).await? == Applied::Missing {
                    // Ended in the store meanwhile (a logout elsewhere, or expired).
                    self.inner.state.lock().present = false;
                    return Ok(Commit { set_cookie: None });
                }
                self.inner.state.lock().stored_cookie = Some(changes.cookie);
            }
        }
        let mut st = self.inner.state.lock();
        // An Invalid Date `expires` (see `has_invalid_expires`) makes express's
        // `cookie.serialize` throw: the session is saved, no cookie is sent.
        let set_cookie = if st.should_set_cookie(config)? && !st.cookie.has_invalid_expires() {
            Some((st.id.clone(), st.cookie.clone()))
        } else {
            None
        };
        Ok(Commit { set_cookie })
    }
}
