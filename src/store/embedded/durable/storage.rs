//! The storage seam under the log and the snapshots.
//!
//! [`Storage`] is what the durable store does to files: create a preallocated, memory-mapped
//! log segment; write a whole new file; read a file; rename, remove, list, and sync a
//! directory; lock the directory for the store's life. `fs.rs` does it on the real file
//! system (unix only); the fault-injecting implementation used by the crash tests lives in
//! `fault.rs`.

use std::io;
use std::path::Path;

use crate::error::OpenError;

/// A mapped log segment: writes go to the page cache through the map; `sync` makes a range
/// durable.
pub(crate) trait SegmentMap: Send + Sync {
    /// The segment's length in bytes (fixed at creation).
    fn len(&self) -> usize;
    /// Copies `data` to `offset`. Writers are serialised by the log's lock.
    fn write(&self, offset: usize, data: &[u8]) -> io::Result<()>;
    /// Makes `[from, to)` durable (msync, which on Linux is fdatasync of the range).
    fn sync(&self, from: usize, to: usize) -> io::Result<()>;
    /// Faults every page in for writing, so later writes take no page fault. Called on a
    /// fresh segment only (beyond its header it must still be all zeros), before any writer
    /// can see it.
    fn prefault(&self) {}
    /// Shrinks the file to `len` bytes once the segment is sealed and synced: nothing is
    /// written or read through the map past `len` afterwards.
    fn truncate(&self, _len: usize) -> io::Result<()> {
        Ok(())
    }
    /// For a sealed segment nobody else holds: unmaps it, then makes `[from, to)` durable
    /// through the file. Every later `write` fails.
    ///
    /// Syncing a range that is still mapped write-protects each of its dirty pages again
    /// (for the kernel's dirty tracking), and each of those page-table changes interrupts
    /// every other CPU running the process, a writer among them: a second's worth of log,
    /// tens of thousands of pages, costs tens of thousands of interrupts. Unmapped first, the
    /// whole range is let go in one flush and the sync touches no page table.
    fn unmap_and_sync(&mut self, from: usize, to: usize) -> io::Result<()> {
        self.sync(from, to)
    }
}

/// Bytes read from a file (a read-only map, or a copy).
pub(crate) trait FileBytes: Send + Sync {
    fn bytes(&self) -> &[u8];
}

/// A new file being written sequentially.
pub(crate) trait NewFile: Send {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// Flushes and fsyncs the file.
    fn sync(&mut self) -> io::Result<()>;
}

/// A directory held open by the log for its life: syncing it needs no new file descriptor
/// (so it cannot fail for want of one, nor for the directory's mode), and it tells whether its
/// path still leads to it.
pub(crate) trait DirHandle: Send + Sync {
    /// Makes renames, creations and removals in the directory durable (fsync).
    fn sync(&self) -> io::Result<()>;
    /// Fails when the directory was deleted, or its path now leads to another directory.
    /// A check that cannot tell (the path cannot be looked up for another reason) passes.
    fn check(&self) -> io::Result<()>;
}

/// The file operations of the durable store.
pub(crate) trait Storage: Send + Sync + 'static {
    /// Creates the directory (mode 0700) if missing; an existing one owned by this process's
    /// user is tightened to 0700 (one owned by another user is left as it is).
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    /// Creates a segment of `len` bytes, allocated on disk before it is mapped (so a full disk
    /// is an error here and never a SIGBUS later), mode 0600.
    fn create_segment(&self, path: &Path, len: usize) -> io::Result<Box<dyn SegmentMap>>;
    /// Maps an existing segment for appending.
    fn open_segment(&self, path: &Path) -> io::Result<Box<dyn SegmentMap>>;
    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Box<dyn FileBytes>>;
    /// Creates a new file (mode 0600), failing if it exists.
    fn create_file(&self, path: &Path) -> io::Result<Box<dyn NewFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// File names in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Makes renames, creations and removals in `dir` durable (opens it, then syncs it).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Opens `dir` to be held (see [`DirHandle`]).
    fn open_dir(&self, dir: &Path) -> io::Result<Box<dyn DirHandle>>;
    /// Bytes free to this process on the volume that holds `dir`.
    fn available(&self, dir: &Path) -> io::Result<u64>;
    /// When the file was last modified, if the storage knows (the snapshot clock's start).
    fn modified(&self, _path: &Path) -> Option<std::time::SystemTime> {
        None
    }
    /// Locks `dir` for as long as the returned guard lives, so a second process cannot open
    /// it; fails with [`OpenError::Locked`] naming what another holds. A storage no other
    /// process can reach (the tests' fault layer) has nothing to lock.
    fn lock(&self, _dir: &Path) -> Result<Option<Box<dyn Send + Sync>>, OpenError> {
        Ok(None)
    }
}
