//! Segment files, apart from the log that writes them: their names and headers, creating one
//! (whole, or shrunk on a volume short of space), and preparing the next one off the write
//! path.
//!
//! A segment is allocated whole when the volume has room for it; otherwise it is sized to
//! half the space there is (the rest is left for snapshots), and never smaller than the
//! record that needs it. When even that does not fit, the error says how many bytes were
//! needed and how many are free. See `docs/FORMAT.md`, section "Log segments".

use std::path::Path;
use std::sync::Arc;

use crate::store::embedded::durable::format::header::{self, FileKind};
use crate::store::embedded::durable::storage::{DirHandle, SegmentMap, Storage};

/// Bytes of a segment header.
pub(crate) const SEGMENT_HEADER: usize = header::LEN;
/// The file name of a prepared segment not yet in use. Its header names sequence number 0
/// (no record has it). Recovery removes it: it holds no record until it is renamed.
pub(crate) const NEXT_SEGMENT: &str = "wal-next.prep";

/// The file name of the segment whose first record has `first_seq`.
pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("wal-{first_seq:020}.log")
}

/// The first sequence number named by a segment file name.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// The 32-byte segment header naming `first_seq`.
pub(crate) fn segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER] {
    header::build(FileKind::Segment, first_seq)
}

/// The smallest segment the preparing thread allocates when the volume has no room for a
/// whole one (a rotation's own segment is as small as its record).
pub(super) const PREPARED_MIN: usize = 64 << 10;

/// The smallest page size: shrunk segments are whole pages.
pub(super) const PAGE: usize = 4096;

/// Creates a segment of `size` bytes, or as small as `need` on a volume without room for it
/// (see [`create_sized`]), and writes its header; `sync` makes the header durable at once.
pub(super) fn new_segment(
    storage: &dyn Storage,
    dir: &Path,
    first_seq: u64,
    size: usize,
    need: usize,
    sync: bool,
) -> std::io::Result<Arc<dyn SegmentMap>> {
    let path = dir.join(segment_name(first_seq));
    let map = create_sized(storage, dir, &path, size, need).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("allocating log segment {}: {e}", path.display()),
        )
    })?;
    let header = map.write(0, &segment_header(first_seq)).and_then(|()| {
        if sync {
            map.sync(0, SEGMENT_HEADER)
        } else {
            Ok(())
        }
    });
    if let Err(e) = header {
        drop(map);
        let _ = storage.remove(&path);
        return Err(e);
    }
    Ok(Arc::from(map))
}

/// Whether `e` says the volume is full.
fn is_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

/// Creates the segment file `path` of `want` bytes. When the volume has no room for it, the
/// segment gets half the space there is (the rest stays for snapshots and the segment after
/// it) in whole pages, but never less than `need`; when even `need` does not fit, the error
/// says how many bytes were needed and how many are free.
pub(super) fn create_sized(
    storage: &dyn Storage,
    dir: &Path,
    path: &Path,
    want: usize,
    need: usize,
) -> std::io::Result<Box<dyn SegmentMap>> {
    let e = match storage.create_segment(path, want) {
        Ok(map) => return Ok(map),
        Err(e) if is_full(&e) => e,
        Err(e) => return Err(e),
    };
    let free = storage.available(dir).unwrap_or(0);
    let half = usize::try_from(free / 2).unwrap_or(usize::MAX) / PAGE * PAGE;
    let mut len = half.max(need.next_multiple_of(PAGE)).min(want);
    if len as u64 > free {
        len = need;
    }
    let short = |e: std::io::Error| {
        std::io::Error::new(
            e.kind(),
            format!(
                "{e}: the log needs {need} bytes (a segment of {want} wanted) and the volume \
                 of {} has {free} bytes free",
                dir.display()
            ),
        )
    };
    if len == want || len as u64 > free {
        return Err(short(e));
    }
    storage
        .create_segment(path, len)
        .map_err(|e| if is_full(&e) { short(e) } else { e })
}

/// Why preparing a segment failed.
#[derive(Debug)]
pub(super) enum Prep {
    /// Creating, allocating or writing it (a full disk): the rotation will try itself.
    Alloc,
    /// A sync: poisons the log.
    Sync(std::io::Error),
}

/// Prepares a segment off the write path: creates [`NEXT_SEGMENT`] (removing a stale one),
/// allocates it (smaller on a volume without room for a whole one, see [`create_sized`]),
/// writes and syncs a placeholder header, syncs the directory and faults its pages in. On
/// any error the file is removed. Only the directory's sync poisons: it covers the names of
/// segments that hold records. The placeholder header holds none.
pub(super) fn prepare_segment(
    storage: &dyn Storage,
    dir: &Path,
    dir_handle: &dyn DirHandle,
    size: usize,
) -> Result<Arc<dyn SegmentMap>, Prep> {
    let path = dir.join(NEXT_SEGMENT);
    match storage.remove(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Prep::Alloc),
        _ => {}
    }
    let map =
        create_sized(storage, dir, &path, size, PREPARED_MIN.min(size)).map_err(|_| Prep::Alloc)?;
    let done = map
        .write(0, &segment_header(0))
        .and_then(|()| map.sync(0, SEGMENT_HEADER))
        .map_err(|_| Prep::Alloc)
        .and_then(|()| dir_handle.sync().map_err(Prep::Sync));
    if let Err(e) = done {
        drop(map);
        let _ = storage.remove(&path);
        return Err(e);
    }
    map.prefault();
    Ok(Arc::from(map))
}
