//! What a command fails with, and the exit status it gives.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use sessile::{OpenError, StoreError};

/// A command that could not do its work.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Another process holds the directory's lock (an offline command refuses then).
    Locked(PathBuf),
    /// Anything else, said in words.
    Other(String),
}

impl Failure {
    /// The exit status: 3 for a held lock, 2 for the rest (1 is a command's own "found
    /// problems" or "not found").
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Locked(_) => ExitCode::from(3),
            Failure::Other(_) => ExitCode::from(2),
        }
    }

    /// A failure saying `what` went wrong, because of `e`.
    pub(crate) fn because(what: impl fmt::Display, e: impl fmt::Display) -> Failure {
        Failure::Other(format!("{what}: {e}"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Locked(lock) => write!(
                f,
                "{} is locked: a process (the server?) has this session directory open; \
                 stop it first, or use `sessile inspect` / `sessile verify`, which read it \
                 while it runs",
                lock.display()
            ),
            Failure::Other(why) => f.write_str(why),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        match e {
            StoreError::Open(OpenError::Locked { lock }) => Failure::Locked(lock),
            other => Failure::Other(other.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Other(e.to_string())
    }
}

/// Fails unless `dir` is a directory (an offline command must not create a store where
/// there was none).
pub(crate) fn require_dir(dir: &std::path::Path) -> Result<(), Failure> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(Failure::Other(format!(
            "{}: no such directory",
            dir.display()
        )))
    }
}
