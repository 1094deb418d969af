//! Errors: what a store reports ([`StoreError`]) and what a session operation reports
//! ([`Error`]).

use std::fmt;
use std::path::PathBuf;

/// A failure of a session store. "Not found" is never an error: `get` returns `Ok(None)`.
///
/// ```
/// use sessile::{Corrupted, StoreError};
///
/// fn describe(e: &StoreError) -> &'static str {
///     match e {
///         StoreError::Corrupt(c) if c.what == Corrupted::SessionData => "bad session data",
///         StoreError::Corrupt(_) => "damaged store",
///         StoreError::Poisoned(_) => "log refuses writes: restart the store",
///         StoreError::Open(_) => "could not open the store",
///         _ => "other",
///     }
/// }
/// # let _ = describe;
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached (Redis down, connection refused, ...).
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// The store did not answer in time.
    #[error("session store timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// A stored record, or a durable store's file, could not be read: what, where and why.
    #[error("corrupt {0}")]
    Corrupt(Corruption),
    /// The store refused the write because it is full.
    #[error("session store full: {0}")]
    Full(String),
    /// A durable store's log refuses every write (reads still serve) until the store is
    /// opened again: a sync failed, or its directory went away.
    #[error("{0}")]
    Poisoned(Poison),
    /// A durable store could not be opened; the error names the path.
    #[error("cannot open the session store: {0}")]
    Open(#[from] OpenError),
    /// An I/O error of a durable store.
    #[error("session store I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other failure of a store's backend.
    #[error("session store error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// The store was closed ([`EmbeddedStore::close`](crate::EmbeddedStore::close)): it
    /// refuses writes; reads still serve.
    #[error("the session store is closed")]
    Closed,
}

impl StoreError {
    /// Wraps any error of a store's backend.
    pub fn backend<E: Into<Box<dyn std::error::Error + Send + Sync>>>(e: E) -> Self {
        StoreError::Backend(e.into())
    }
}

/// What is corrupt, where, and why: the value of [`StoreError::Corrupt`] and
/// [`OpenError::Corrupt`].
///
/// ```
/// use sessile::{Corrupted, StoreError};
///
/// # fn check(e: StoreError) {
/// if let StoreError::Corrupt(c) = &e {
///     if c.what == Corrupted::SessionData {
///         // A record whose data is not a JSON object: the session can be regenerated.
///     }
///     eprintln!("{:?} in {:?} at {:?} (key {:?}): {}", c.what, c.file, c.offset, c.key, c.reason);
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Corruption {
    /// What holds the bad bytes.
    pub what: Corrupted,
    /// The file (or, for [`Corrupted::Log`], the directory) of a durable store, if any.
    pub file: Option<PathBuf>,
    /// The byte offset in `file` where the damage starts, when known.
    pub offset: Option<u64>,
    /// The Redis key whose value it is, if any.
    pub key: Option<String>,
    /// Why it was refused.
    pub reason: String,
}

/// What a [`Corruption`] is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corrupted {
    /// A stored session record (its JSON text, or a field of it).
    SessionRecord,
    /// A session's data: not a JSON object, or a field that does not decode.
    SessionData,
    /// A durable store's log segment, at an offset: a record that later records say was
    /// synced is damaged.
    LogSegment,
    /// A durable store's log as a whole (records missing that no snapshot covers).
    Log,
    /// A durable store's snapshot file.
    Snapshot,
}

impl Corruption {
    /// `what` is corrupt, for `reason`, at no known place.
    pub(crate) fn new(what: Corrupted, reason: impl Into<String>) -> Self {
        Corruption {
            what,
            file: None,
            offset: None,
            key: None,
            reason: reason.into(),
        }
    }

    /// The same, in `file` at `offset` (if known).
    pub(crate) fn at(mut self, file: impl Into<PathBuf>, offset: Option<u64>) -> Self {
        self.file = Some(file.into());
        self.offset = offset;
        self
    }

    /// The same, as the value of the Redis key `key`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.what {
            Corrupted::SessionRecord => "session record",
            Corrupted::SessionData => "session data",
            Corrupted::LogSegment => "log segment",
            Corrupted::Log => "session log in",
            Corrupted::Snapshot => "snapshot",
        })?;
        if let Some(file) = &self.file {
            write!(f, " {}", file.display())?;
        }
        if let Some(offset) = self.offset {
            write!(f, " at offset {offset}")?;
        }
        if let Some(key) = &self.key {
            write!(f, " (Redis key {key:?})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl From<Corruption> for StoreError {
    fn from(c: Corruption) -> Self {
        StoreError::Corrupt(c)
    }
}

/// Why a durable store's log refuses every write: the value of [`StoreError::Poisoned`].
/// Reads still serve; opening the store again recovers what the log holds.
///
/// ```
/// use sessile::{PoisonCause, StoreError};
///
/// # fn check(e: StoreError) {
/// if let StoreError::Poisoned(p) = &e {
///     match p.cause {
///         PoisonCause::SyncFailed => eprintln!("fsync failed in {}: {}", p.dir.display(), p.reason),
///         PoisonCause::DirectoryGone => eprintln!("{} went away", p.dir.display()),
///         _ => {}
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Poison {
    /// What poisoned the log.
    pub cause: PoisonCause,
    /// The store's directory.
    pub dir: PathBuf,
    /// The error that poisoned it, as the operating system gave it.
    pub reason: String,
}

/// What poisoned a durable store's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoisonCause {
    /// An fsync of the log (or of its directory) failed: what it covered may not be durable,
    /// and a later sync could not tell.
    SyncFailed,
    /// The store's directory was deleted, or its path now leads to another directory: writes
    /// would be lost at restart.
    DirectoryGone,
}

impl fmt::Display for Poison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause {
            PoisonCause::SyncFailed => write!(
                f,
                "session log fsync failed in {}: the log is poisoned, writes are refused \
                 until the store is opened again: {}",
                self.dir.display(),
                self.reason
            ),
            PoisonCause::DirectoryGone => write!(
                f,
                "the session directory {} was deleted or replaced while the store was running \
                 ({}): writes are refused, as they would be lost at restart; restart the store",
                self.dir.display(),
                self.reason
            ),
        }
    }
}

/// Why a durable store could not be opened: the value of [`StoreError::Open`]. Every variant
/// names the path it is about.
///
/// ```no_run
/// use sessile::{OpenError, StoreError};
///
/// match sessile::EmbeddedStore::open("/var/lib/myapp/sessions") {
///     Ok(_store) => {}
///     Err(StoreError::Open(OpenError::Locked { lock, .. })) => {
///         eprintln!("another process has {} locked", lock.display());
///     }
///     Err(StoreError::Open(OpenError::Version { file, version, .. })) => {
///         eprintln!("{} was written by another sessile (format {version})", file.display());
///     }
///     Err(e) => eprintln!("{e}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process (or another store of this one) has the directory open.
    #[error("{} is locked: another process has this session directory open", lock.display())]
    Locked {
        /// What is locked: the directory, or its `LOCK` file.
        lock: PathBuf,
    },
    /// A file of another format version than this build reads: it is refused, never
    /// salvaged as if it were damaged.
    #[error(
        "{} has format version {version}; this version of sessile reads version {supported}",
        file.display()
    )]
    Version {
        /// The file.
        file: PathBuf,
        /// Its format version.
        version: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The directory holds damage recovery does not repair by itself (open with salvage to
    /// keep the intact records).
    #[error("corrupt {0}")]
    Corrupt(Corruption),
    /// An I/O error at `path`.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl OpenError {
    /// A function that makes an I/O error one at `path`.
    pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> OpenError + '_ {
        move |source| OpenError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A failure of a session operation, seen by handlers and by the layer's error handler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request has no session: the session was destroyed or unset in this request, or the
    /// path is outside the cookie's path.
    #[error("no session")]
    NoSession,
    /// `reload` found no record for the session in the store.
    #[error("failed to load session")]
    NotInStore,
    /// A value could not be converted to or from JSON.
    #[error("session value: {0}")]
    Value(#[from] serde_json::Error),
    /// A field name the session keeps for itself (`cookie`, the cookie object of express's
    /// record, or a name starting with `__sessile_`, sessile's own data in the record) was
    /// given to [`Session::insert`](crate::Session::insert) or
    /// [`Session::remove`](crate::Session::remove).
    ///
    /// ```
    /// let err = sessile::Error::ReservedField("cookie".into());
    /// assert_eq!(err.to_string(), "the field name `cookie` is reserved for the session cookie");
    /// let err = sessile::Error::ReservedField("__sessile_created".into());
    /// assert_eq!(err.to_string(), "the field name `__sessile_created` is reserved by the session");
    /// ```
    #[error("the field name `{0}` is reserved {for_}", for_ = reserved_for(.0))]
    ReservedField(String),
    /// The session cookie cannot be sent: an invalid domain or path (from a per-request
    /// cookie function, or a stored record).
    #[error("session cookie: {0}")]
    Cookie(String),
    /// The session cookie was made but is not a valid HTTP header value, so it cannot be
    /// sent as `Set-Cookie`.
    #[error("the session cookie is not a valid header value")]
    CookieHeader(#[source] http::header::InvalidHeaderValue),
    /// The store holds this session's record but could not read it (not JSON, not an
    /// object, a cookie no cookie can be): the session can be destroyed or regenerated, and
    /// nothing else; the record is never written over.
    #[error("the stored session cannot be read: {0}")]
    Unreadable(String),
    /// A session id could not be generated (the OS has no randomness to give).
    #[error(transparent)]
    Id(#[from] IdError),
    /// An owner id given to [`Session::set_owner`](crate::Session::set_owner) is empty or
    /// longer than [`MAX_OWNER_LEN`](crate::store::MAX_OWNER_LEN) bytes (the length given):
    /// the application's mistake, answered 500 like every session error.
    ///
    /// ```
    /// let err = sessile::Error::InvalidOwner(0);
    /// assert_eq!(err.to_string(), "an owner id has 1 to 256 bytes, not 0");
    /// ```
    #[error("an owner id has 1 to {max} bytes, not {0}", max = crate::store::MAX_OWNER_LEN)]
    InvalidOwner(usize),
}

/// The operating system could not give the randomness a new session id is made of,
/// reported by [`id::generate`](crate::id::generate). Its [`source`](std::error::Error::source)
/// is the operating system's error.
///
/// ```
/// fn new_id() -> Result<String, sessile::IdError> {
///     sessile::id::generate()
/// }
/// assert_eq!(new_id().unwrap().len(), 32);
/// ```
#[derive(Debug, thiserror::Error)]
#[error("session id generation failed: the operating system gave no randomness")]
pub struct IdError(#[source] pub(crate) std::io::Error);

/// An invalid layer configuration, reported by [`SessionLayerBuilder::build`](crate::SessionLayerBuilder::build).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub(crate) String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid session configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Whom a reserved field name is kept for, in [`Error::ReservedField`]'s message.
fn reserved_for(name: &str) -> &'static str {
    if name == "cookie" {
        "for the session cookie"
    } else {
        "by the session"
    }
}
