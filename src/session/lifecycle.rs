//! A session's life: saved early, reloaded, regenerated, given a new id, destroyed, unset.

use super::fields::{Fields, Snap};
use super::Session;
use crate::error::Error;
use crate::record::Data;

impl Session {
    /// `req.session = null`: drops the session from this request. With
    /// [`Unset::Destroy`](crate::Unset::Destroy) the stored session is destroyed when the response ends; with
    /// [`Unset::Keep`](crate::Unset::Keep) it stays as it was and this request's changes are dropped.
    ///
    /// ```
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.unset();
    /// assert_eq!(session.id(), None);
    /// assert!(matches!(session.get::<String>("user"), Err(sessile::Error::NoSession)));
    /// # Ok::<(), sessile::Error>(())
    /// ```
    pub fn unset(&self) {
        let mut st = self.inner.state.lock();
        st.present = false;
        st.unset = true;
    }

    /// `req.session.save()`: writes the session to the store now. The layer saves at the end
    /// of the request anyway; this is for long-lived requests, or to be sure before
    /// redirecting.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::Error> {
    /// # let layer = sessile::SessionLayer::builder().secret("s").build().unwrap();
    /// # let session = layer.detached_session()?;
    /// session.insert("user", "alice")?;
    /// session.save().await?;
    /// let stored = layer.store().get(&session.id().unwrap()).await?.expect("saved");
    /// assert_eq!(stored.data.as_str(), r#"{"user":"alice"}"#);
    /// # Ok(()) }
    /// ```
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
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::Error> {
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.insert("user", "alice")?;
    /// session.save().await?;
    /// session.insert("user", "mallory")?;
    /// session.reload().await?;
    /// assert_eq!(session.get::<String>("user")?.as_deref(), Some("alice"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::NotInStore`] when the store has no such session.
    pub async fn reload(&self) -> Result<(), Error> {
        let id = self.with_present(|st| Ok(st.id.clone()))?;
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
        st.unreadable = None;
        Ok(())
    }

    /// `req.session.regenerate()`: destroys the stored session and starts a new one with a new
    /// id, no fields and a fresh cookie. The new session is saved and sent at the end of the
    /// request.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::Error> {
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.insert("user", "alice")?;
    /// let old = session.id();
    /// session.regenerate().await?;
    /// assert_ne!(session.id(), old);
    /// assert!(session.data()?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn regenerate(&self) -> Result<(), Error> {
        let old = self.with_present(|st| Ok(st.id.clone()))?;
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
            st.unreadable = None;
        }
        destroyed.map_err(Error::from)
    }

    /// Gives the session a new id and keeps its fields and cookie: the defence against
    /// session fixation to run at login (express has only `regenerate`, which drops the
    /// fields). The old id is destroyed in the store now; the session is saved under the new
    /// id at the end of the request.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::Error> {
    /// # let session = sessile::SessionLayer::builder().secret("s").build().unwrap().detached_session()?;
    /// session.insert("user", "alice")?;
    /// let old = session.id();
    /// session.cycle_id().await?;
    /// assert_ne!(session.id(), old);
    /// assert_eq!(session.get::<String>("user")?.as_deref(), Some("alice"));
    /// # Ok(()) }
    /// ```
    pub async fn cycle_id(&self) -> Result<(), Error> {
        let old = self.with(|st| Ok(st.id.clone()))?;
        self.inner.config.store.destroy(&old).await?;
        let mut st = self.inner.state.lock();
        let id = self.inner.config.new_id(st.head.as_deref())?;
        st.id = id;
        st.persisted = None;
        st.drop_reserved_on_cycle()
    }

    /// `req.session.destroy()`: removes the session from the store and from this request. The
    /// next request starts a new session.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessile::Error> {
    /// # let layer = sessile::SessionLayer::builder().secret("s").build().unwrap();
    /// # let session = layer.detached_session()?;
    /// session.save().await?;
    /// let id = session.id().unwrap();
    /// session.destroy().await?;
    /// assert_eq!(session.id(), None);
    /// assert!(layer.store().get(&id).await?.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn destroy(&self) -> Result<(), Error> {
        let id = self.with_present(|st| {
            st.present = false;
            Ok(st.id.clone())
        })?;
        self.inner.config.store.destroy(&id).await?;
        Ok(())
    }
}
