//! [`RedisStoreBuilder`]: the Redis store's options, and the connection it builds.

use super::*;

/// Options of a [`RedisStore`]. Start with [`RedisStore::builder`].
#[must_use]
#[derive(Clone)]
pub struct RedisStoreBuilder {
    pub(super) target: Target,
    #[cfg(feature = "redis-tls")]
    pub(super) tls: tls::TlsOptions,
    pub(super) prefix: String,
    pub(super) default_ttl: Duration,
    pub(super) timeouts: Timeouts,
    pub(super) scan_count: usize,
    pub(super) connections: usize,
    pub(super) max_in_flight: Option<usize>,
}

impl fmt::Debug for RedisStoreBuilder {
    // The URL may hold a password: it is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("default_ttl", &self.default_ttl)
            .field("timeouts", &self.timeouts)
            .field("connections", &self.connections)
            .field("max_in_flight", &self.max_in_flight)
            .field("scan_count", &self.scan_count)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// The key prefix (default `sess:`, connect-redis's). Use the same prefix on every node
    /// and in the Express app that shares the sessions.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::builder("redis://127.0.0.1/")
    ///     .prefix("myapp:sess:")
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a session whose cookie has no expiry (a browser-session cookie) lives after
    /// its last request (default one day, connect-redis's `ttl` of 86400 s). Rounded up to
    /// whole seconds, at least one.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::builder("redis://127.0.0.1/")
    ///     .default_ttl(std::time::Duration::from_secs(3600))
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// The longest any store call may take (default 2 s): connecting, and each of `get`,
    /// `set`, `apply`, `touch` and `destroy` as a whole; for `all`, `len` and `clear`, each
    /// page of the key walk. Past it the call fails with [`StoreError::Timeout`]. Sets every
    /// kind at once; [`connect_timeout`](Self::connect_timeout),
    /// [`read_timeout`](Self::read_timeout), [`write_timeout`](Self::write_timeout) and
    /// [`walk_timeout`](Self::walk_timeout) set one (call them after this).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::builder("redis://127.0.0.1/")
    ///     .timeout(std::time::Duration::from_millis(500))
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeouts = Timeouts::all(timeout);
        self
    }

    /// The `COUNT` hint of each `SCAN` page walked by `all`, `len` and `clear` (default 100,
    /// connect-redis's `scanCount`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let store = sessile::RedisStore::builder("redis://127.0.0.1/")
    ///     .scan_count(1_000)
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn scan_count(mut self, count: usize) -> Self {
        self.scan_count = count.max(1);
        self
    }

    /// Connects to Redis (within the [`timeout`](Self::timeout)) and builds the store.
    ///
    /// # Errors
    /// [`StoreError::Backend`] for a URL that does not parse, [`StoreError::Unavailable`] or
    /// [`StoreError::Timeout`] when Redis cannot be reached.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessile::StoreError> {
    /// let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1/".into());
    /// let store = sessile::RedisStore::builder(url).build().await?;
    /// # Ok(()) }
    /// ```
    pub async fn build(self) -> Result<RedisStore, StoreError> {
        let conns = conn::connect_all(&self).await?;
        let ms = self
            .default_ttl
            .as_millis()
            .min(u128::from(u32::MAX) * 1000) as i64;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                conns,
                next_conn: std::sync::atomic::AtomicUsize::new(0),
                in_flight: self.max_in_flight.map(tokio::sync::Semaphore::new),
                pattern: format!("{}*", glob_escape(&self.prefix)),
                prefix: self.prefix,
                default_ttl_secs: ceil_secs(ms).max(1),
                timeouts: self.timeouts,
                scan_count: self.scan_count,
                cas: Cas::new(),
                owner_scripts: super::owners::OwnerScripts::new(),
                locks: KeyLocks::default(),
                stats: Default::default(),
            }),
        })
    }
}
