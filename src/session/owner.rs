//! A session's owner ("sign out everywhere"): set at login, listed and signed out through
//! the store's owner index ([`SessionStore::sessions_of`](crate::SessionStore::sessions_of)),
//! and the layer's `max_sessions_per_owner`.

use serde_json::Value;

use super::Session;
use crate::clock;
use crate::error::Error;
use crate::store::{owner_of, valid_owner, OwnedSession, OWNER_KEY, OWNER_SINCE_KEY};

impl Session {
    /// Makes `owner` (the application's user id, typically at login) this session's owner,
    /// so that [`SessionStore::sessions_of`](crate::SessionStore::sessions_of) lists it and
    /// [`sign_out_others`](Self::sign_out_others) /
    /// [`SessionStore::destroy_all_of`](crate::SessionStore::destroy_all_of) end it. Stored
    /// in the record under the reserved field [`OWNER_KEY`] (and the time it was set under
    /// [`OWNER_SINCE_KEY`]), which a Node app sharing the store keeps. Setting the owner it
    /// already has changes nothing.
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.set_owner("user-42")?;
    /// assert_eq!(session.owner().as_deref(), Some("user-42"));
    /// assert!(matches!(session.set_owner(""), Err(sessile::Error::InvalidOwner(0))));
    /// # Ok::<(), sessile::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidOwner`] for an id of 0 or more than
    /// [`MAX_OWNER_LEN`](crate::store::MAX_OWNER_LEN) bytes; [`Error::NoSession`] and
    /// [`Error::Unreadable`] as for [`insert`](Self::insert).
    pub fn set_owner(&self, owner: impl Into<String>) -> Result<(), Error> {
        let owner = owner.into();
        if !valid_owner(&owner) {
            return Err(Error::InvalidOwner(owner.len()));
        }
        self.with(|st| {
            if st.fields.get::<String>(OWNER_KEY).ok().flatten().as_deref() == Some(&owner) {
                return Ok(());
            }
            st.set_reserved(OWNER_KEY, Some(Value::String(owner.clone())))?;
            st.set_reserved(OWNER_SINCE_KEY, Some(clock::now_ms().into()))?;
            *self.inner.joined.lock() = Some(owner);
            Ok(())
        })
    }

    /// The session's owner, if [`set_owner`](Self::set_owner) (or a Node app writing the
    /// same field) set a valid one; `None` too when there is no session.
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// assert_eq!(session.owner(), None);
    /// session.set_owner("user-42")?;
    /// assert_eq!(session.owner().as_deref(), Some("user-42"));
    /// # Ok::<(), sessile::Error>(())
    /// ```
    pub fn owner(&self) -> Option<String> {
        // The fields' text: a record without the owner's name costs a substring search.
        self.with(|st| Ok(owner_of(&st.fields.data())))
            .ok()
            .flatten()
    }

    /// Removes the session's owner: the session is no one's any more (the store's index
    /// drops it when it is saved).
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.set_owner("user-42")?;
    /// session.clear_owner()?;
    /// assert_eq!(session.owner(), None);
    /// # Ok::<(), sessile::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NoSession`] and [`Error::Unreadable`] as for [`remove`](Self::remove).
    pub fn clear_owner(&self) -> Result<(), Error> {
        self.with(|st| {
            st.set_reserved(OWNER_KEY, None)?;
            st.set_reserved(OWNER_SINCE_KEY, None)?;
            *self.inner.joined.lock() = None;
            Ok(())
        })
    }

    /// The live sessions of this session's owner in the store (this one too, once saved),
    /// oldest first: for a "your devices" page. Empty when the session has no owner.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), sessile::Error> {
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.set_owner("user-42")?;
    /// session.save().await?;
    /// let devices = session.owner_sessions().await?;
    /// assert_eq!(devices.len(), 1);
    /// assert_eq!(Some(devices[0].id.clone()), session.id());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails.
    pub async fn owner_sessions(&self) -> Result<Vec<OwnedSession>, Error> {
        match self.owner() {
            Some(owner) => Ok(self.inner.config.store.sessions_of(&owner).await?),
            None => Ok(Vec::new()),
        }
    }

    /// "Log out of all other devices": destroys every session of this session's owner but
    /// this one; returns how many. Nothing (0) when the session has no owner.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), sessile::Error> {
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// // In a handler:
    /// let signed_out = session.sign_out_others().await?;
    /// let answer = format!("signed out of {signed_out} other devices");
    /// # assert_eq!(answer, "signed out of 0 other devices");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails.
    pub async fn sign_out_others(&self) -> Result<usize, Error> {
        let Some(owner) = self.owner() else {
            return Ok(0);
        };
        let id = self.id();
        Ok(self
            .inner
            .config
            .store
            .destroy_all_of(&owner, id.as_deref())
            .await?)
    }

    /// After the session was written under `id`: when its owner was set in this request and
    /// the layer has `max_sessions_per_owner`, destroys the owner's oldest other sessions
    /// beyond the limit.
    pub(super) async fn after_owned_write(&self, id: &str) -> Result<(), Error> {
        let Some(max) = self.inner.config.max_sessions_per_owner else {
            return Ok(());
        };
        let Some(owner) = self.inner.joined.lock().take() else {
            return Ok(());
        };
        let store = &self.inner.config.store;
        let others: Vec<OwnedSession> = store
            .sessions_of(&owner)
            .await?
            .into_iter()
            .filter(|s| s.id != id)
            .collect();
        // This session is one of the `max`; the oldest others go.
        let excess = others.len().saturating_sub(max.saturating_sub(1));
        for s in others.iter().take(excess) {
            store.destroy(&s.id).await?;
        }
        Ok(())
    }
}
