//! When the log is made durable ([`FsyncPolicy`]), and how a writer waiting for it is told.

use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::Poison;

/// When the log is made durable against power failure, as Redis names it. Under every
/// policy a write is acknowledged only once its record is in the mapped log, so killing the
/// process loses nothing acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// A write is acknowledged after the fdatasync that covers it; concurrent writers share
    /// one sync (group commit).
    Always,
    /// The log is synced about once a second: a power failure loses at most about a second.
    #[default]
    EverySec,
    /// The operating system decides when to write back; a clean shutdown still syncs.
    Never,
}

/// How often the sync thread checks that the directory is still there.
pub(super) const DIR_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Tells a writer waiting under `Always` that its record is synced, or why it is not.
pub(super) type Ack = oneshot::Sender<Result<(), Poison>>;
/// The writer's end of an [`Ack`].
pub(crate) type AckWait = oneshot::Receiver<Result<(), Poison>>;
