//! The durable store's files on the real file system: [`DiskStorage`], the [`Storage`] of
//! every store opened with `EmbeddedStoreBuilder::open`. Unix only (modes, `fallocate`,
//! `statvfs`, the directory's own lock), so the durable store is too; the in-memory store
//! and the layer build everywhere.

#![allow(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::storage::{DirHandle, FileBytes, NewFile, SegmentMap, Storage};
use crate::error::OpenError;

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DiskStorage;

struct DiskSegment {
    /// `None` once unmapped ([`SegmentMap::unmap_and_sync`]).
    map: Option<memmap2::MmapRaw>,
    len: usize,
    file: File,
}

impl DiskSegment {
    fn new(map: memmap2::MmapRaw, file: File) -> Self {
        DiskSegment {
            len: map.len(),
            map: Some(map),
            file,
        }
    }

    fn map(&self) -> io::Result<&memmap2::MmapRaw> {
        self.map
            .as_ref()
            .ok_or_else(|| io::Error::other("log segment already unmapped"))
    }
}

impl SegmentMap for DiskSegment {
    fn len(&self) -> usize {
        self.len
    }

    fn write(&self, offset: usize, data: &[u8]) -> io::Result<()> {
        let map = self.map()?;
        let end = offset
            .checked_add(data.len())
            .filter(|&e| e <= map.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "write past segment"))?;
        let _ = end;
        // SAFETY: the range is inside the mapping (checked above); the file was allocated with
        // fallocate before mapping, so the pages are backed and the copy cannot fault for
        // lack of space; the directory lock keeps other processes from truncating it; and the
        // log's mutex serialises writers, so no two copies overlap. Nothing reads these bytes
        // through the map while they are written.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), map.as_mut_ptr().add(offset), data.len());
        }
        Ok(())
    }

    fn sync(&self, from: usize, to: usize) -> io::Result<()> {
        if to <= from {
            return Ok(());
        }
        self.map()?.flush_range(from, to - from)
    }

    fn unmap_and_sync(&mut self, from: usize, to: usize) -> io::Result<()> {
        self.map = None;
        if to <= from {
            return Ok(());
        }
        rustix::fs::fdatasync(&self.file).map_err(io::Error::from)
    }

    fn prefault(&self) {
        // MADV_POPULATE_WRITE (Linux 5.14) faults pages in writable, in steps of
        // `POPULATE_STEP`: the call holds the process's mmap lock, which an `mmap` elsewhere
        // (a large allocation) would queue behind, and page faults of the writers behind that.
        let Ok(map) = self.map() else {
            return;
        };
        #[cfg(target_os = "linux")]
        {
            let len = map.len();
            let mut at = 0;
            while at < len {
                let n = POPULATE_STEP.min(len - at);
                if map
                    .advise_range(memmap2::Advice::PopulateWrite, at, n)
                    .is_err()
                {
                    break;
                }
                at += n;
            }
            if at >= len {
                return;
            }
        }
        // Otherwise one write per page, of the zero already there (the segment is fresh and
        // its first page holds the header, already written).
        for at in (PAGE..map.len()).step_by(PAGE) {
            let _ = self.write(at, &[0]);
        }
    }

    fn truncate(&self, len: usize) -> io::Result<()> {
        // The map keeps its length; the pages past the new end are never touched again (an
        // access there would be SIGBUS), which the log guarantees for sealed segments.
        self.file.set_len(len as u64)
    }
}

/// Bytes faulted in per `madvise` call (64 pages of 4 KiB).
#[cfg(target_os = "linux")]
const POPULATE_STEP: usize = 256 << 10;

/// The smallest page size; touching every `PAGE` bytes faults in every page of any size.
const PAGE: usize = 4096;

struct DiskBytes(memmap2::Mmap);

impl FileBytes for DiskBytes {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

struct VecBytes(Vec<u8>);

impl FileBytes for VecBytes {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

struct DiskFile {
    w: io::BufWriter<File>,
}

impl NewFile for DiskFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.w.write_all(data)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.w.flush()?;
        self.w.get_ref().sync_all()
    }
}

fn rw_0600() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).write(true).mode(0o600);
    o
}

impl Storage for DiskStorage {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // Sessions are logins: a directory others may read or enter leaks them.
        let meta = fs::metadata(dir)?;
        if meta.mode() & 0o7077 != 0 && meta.uid() == rustix::process::geteuid().as_raw() {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    fn create_segment(&self, path: &Path, len: usize) -> io::Result<Box<dyn SegmentMap>> {
        let file = rw_0600().create_new(true).open(path)?;
        let allocated =
            rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, len as u64);
        if let Err(e) = allocated {
            drop(file);
            let _ = fs::remove_file(path);
            return Err(e.into());
        }
        let map = memmap2::MmapOptions::new().len(len).map_raw(&file)?;
        Ok(Box::new(DiskSegment::new(map, file)))
    }

    fn open_segment(&self, path: &Path) -> io::Result<Box<dyn SegmentMap>> {
        let file = rw_0600().open(path)?;
        let map = memmap2::MmapOptions::new().map_raw(&file)?;
        Ok(Box::new(DiskSegment::new(map, file)))
    }

    fn read(&self, path: &Path) -> io::Result<Box<dyn FileBytes>> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Box::new(VecBytes(Vec::new())));
        }
        // SAFETY: the directory lock keeps other sessile processes out, and sessile never
        // modifies a file it reads this way (snapshots are immutable once renamed; segments are
        // read here only during recovery, before any writer exists). Every byte read is
        // checksummed and validated before use.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Box::new(DiskBytes(map)))
    }

    fn create_file(&self, path: &Path) -> io::Result<Box<dyn NewFile>> {
        let file = rw_0600().create_new(true).open(path)?;
        Ok(Box::new(DiskFile {
            w: io::BufWriter::with_capacity(1 << 20, file),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir)? {
            if let Some(name) = e?.file_name().to_str() {
                out.push(name.to_owned());
            }
        }
        Ok(out)
    }

    fn modified(&self, path: &Path) -> Option<std::time::SystemTime> {
        fs::metadata(path).and_then(|m| m.modified()).ok()
    }

    fn lock(&self, dir: &Path) -> Result<Option<Box<dyn Send + Sync>>, OpenError> {
        Ok(Some(Box::new(DirLock::acquire(dir)?)))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn open_dir(&self, dir: &Path) -> io::Result<Box<dyn DirHandle>> {
        let file = File::open(dir)?;
        let meta = file.metadata()?;
        Ok(Box::new(DiskDir {
            path: dir.to_owned(),
            id: (meta.dev(), meta.ino()),
            file,
        }))
    }

    fn available(&self, dir: &Path) -> io::Result<u64> {
        let st = rustix::fs::statvfs(dir)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }
}

/// A directory held open, with the device and inode it had when opened.
struct DiskDir {
    path: PathBuf,
    id: (u64, u64),
    file: File,
}

impl DirHandle for DiskDir {
    fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn check(&self) -> io::Result<()> {
        let gone = |what: &str| io::Error::new(io::ErrorKind::NotFound, what.to_owned());
        match fs::metadata(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(gone("its path no longer exists")),
            Ok(m) if (m.dev(), m.ino()) != self.id => {
                Err(gone("its path now leads to another directory"))
            }
            _ if self.file.metadata().is_ok_and(|m| m.nlink() == 0) => {
                Err(gone("it has no name left"))
            }
            _ => Ok(()),
        }
    }
}

/// The directory lock: held for the store's life, so a second process cannot open the same
/// directory. It is an exclusive `flock` of the directory itself, which no `rm` can take
/// away (a directory deleted and made anew is another directory, found by the log's
/// checks). The `LOCK` file is locked too, for older versions that lock only it.
struct DirLock {
    _dir: File,
    _file: File,
}

impl DirLock {
    /// Locks `dir`; fails with [`OpenError::Locked`] naming what another holds.
    fn acquire(dir: &Path) -> Result<DirLock, OpenError> {
        let held = File::open(dir).map_err(OpenError::io_at(dir))?;
        try_lock(&held, dir)?;
        let path = dir.join("LOCK");
        let file = rw_0600()
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(OpenError::io_at(&path))?;
        try_lock(&file, &path)?;
        Ok(DirLock {
            _dir: held,
            _file: file,
        })
    }
}

/// An exclusive `flock` of `file` (the directory `what`, or its `LOCK`), or an error that
/// says another process holds it.
fn try_lock(file: &File, what: &Path) -> Result<(), OpenError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => Err(OpenError::Locked {
            lock: what.to_owned(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(OpenError::io_at(what)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_unmapped_and_synced_keeps_its_bytes_and_refuses_writes() {
        let dir = std::env::temp_dir().join(format!("sessile-fs-unmap-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        DiskStorage.create_dir(&dir).unwrap();
        let path = dir.join("wal-1.log");
        let mut seg = DiskStorage.create_segment(&path, 3 * PAGE).unwrap();
        seg.prefault();
        seg.write(10, b"sealed").unwrap();
        seg.write(2 * PAGE + 1, b"tail").unwrap();
        seg.unmap_and_sync(0, 2 * PAGE + 5).unwrap();
        assert!(
            seg.write(0, b"x").is_err(),
            "a write after unmapping must fail"
        );
        assert!(seg.sync(0, 1).is_err(), "so must a sync through the map");
        assert_eq!(seg.len(), 3 * PAGE);
        seg.truncate(2 * PAGE + 5).unwrap();
        drop(seg);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 2 * PAGE + 5);
        assert_eq!(&bytes[10..16], b"sealed");
        assert_eq!(&bytes[2 * PAGE + 1..], b"tail");
        fs::remove_dir_all(&dir).unwrap();
    }
}
