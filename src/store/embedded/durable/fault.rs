//! A fault-injecting [`Storage`] for the crash tests.
//!
//! Files live in memory with two images: the *current* one (what the process sees, the page
//! cache) and the *durable* one (what survives a power failure: the bytes of a range become
//! durable when it is synced, names when the directory is synced). [`FaultStorage::power_loss`]
//! throws the current images away. Faults: fail the Nth write, sync or allocation, refuse
//! allocations (a full disk), patch bytes of a file.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::storage::{DirHandle, FileBytes, NewFile, SegmentMap, Storage};

#[derive(Default)]
struct FileData {
    current: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Default)]
struct State {
    files: HashMap<u64, FileData>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    next: u64,
    writes: u64,
    syncs: u64,
    allocs: u64,
    /// The path of every allocation asked for, in order.
    alloc_paths: Vec<PathBuf>,
    /// Segments unmapped before their last sync.
    unmaps: u64,
    /// Files created whole (snapshots).
    created: u64,
}

/// Which operations fail.
#[derive(Debug, Default, Clone)]
pub(crate) struct Faults {
    /// Fail the write with this number (counting from 1), and every later one while set.
    pub(crate) fail_write_from: Option<u64>,
    /// Fail syncs from this number on (EIO).
    pub(crate) fail_sync_from: Option<u64>,
    /// Refuse allocations (ENOSPC) while true.
    pub(crate) disk_full: bool,
    /// Refuse this one allocation (counting from 1) with ENOSPC.
    pub(crate) fail_alloc: Option<u64>,
    /// Flip a bit in the first byte of every write to a new file (a bad disk or controller).
    pub(crate) garble_files: bool,
    /// Fail every removal (EIO) while true.
    pub(crate) fail_remove: bool,
    /// Refuse with EACCES, while true, everything that needs the directory by its path:
    /// opening it, creating, renaming, removing and listing files in it (a directory at mode
    /// 000, which as root cannot be had on a real file system; EMFILE fails the same calls).
    pub(crate) deny: bool,
    /// The directory was deleted while true: what needs it by its path fails with ENOENT, and
    /// an open [`DirHandle`] finds it gone.
    pub(crate) dir_gone: bool,
    /// The volume's size: an allocation that would take the files' total past it fails with
    /// ENOSPC, and [`Storage::available`] reports what is left.
    pub(crate) capacity: Option<u64>,
}

/// The in-memory, fault-injecting file system.
#[derive(Default, Clone)]
pub(crate) struct FaultStorage {
    state: Arc<Mutex<State>>,
    pub(crate) faults: Arc<Mutex<Faults>>,
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("injected EIO on {what}"))
}

/// EACCES or ENOENT if the faults deny the directory's path (see [`Faults::deny`] and
/// [`Faults::dir_gone`]).
fn path_fault(faults: &Faults) -> io::Result<()> {
    if faults.dir_gone {
        return Err(io::Error::from_raw_os_error(2));
    }
    if faults.deny {
        return Err(io::Error::from_raw_os_error(13));
    }
    Ok(())
}

impl FaultStorage {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// An independent copy of the whole file system (to run several trials from one state).
    pub(crate) fn deep_copy(&self) -> FaultStorage {
        let st = self.state.lock();
        let files = st
            .files
            .iter()
            .map(|(id, f)| {
                (
                    *id,
                    FileData {
                        current: f.current.clone(),
                        durable: f.durable.clone(),
                    },
                )
            })
            .collect();
        FaultStorage {
            state: Arc::new(Mutex::new(State {
                files,
                names: st.names.clone(),
                durable_names: st.durable_names.clone(),
                next: st.next,
                writes: 0,
                syncs: 0,
                allocs: 0,
                alloc_paths: Vec::new(),
                unmaps: 0,
                created: 0,
            })),
            faults: Arc::new(Mutex::new(Faults::default())),
        }
    }

    /// How many syncs (range, file and directory) have happened.
    pub(crate) fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }

    /// How many writes (to segments and to created files) have happened.
    #[cfg_attr(sessile_loom, allow(dead_code))]
    pub(crate) fn writes(&self) -> u64 {
        self.state.lock().writes
    }

    /// How many whole files (snapshots) were created.
    pub(crate) fn files_created(&self) -> u64 {
        self.state.lock().created
    }

    /// How many segments were unmapped before their last sync.
    pub(crate) fn unmaps(&self) -> u64 {
        self.state.lock().unmaps
    }

    /// How many segment allocations have been asked for.
    pub(crate) fn allocs(&self) -> u64 {
        self.state.lock().allocs
    }

    /// How many segment allocations have been asked for under a name other than `prepared`:
    /// those made by a rotation itself rather than ahead of it.
    pub(crate) fn allocs_except(&self, prepared: &Path) -> usize {
        let st = self.state.lock();
        st.alloc_paths.iter().filter(|p| *p != prepared).count()
    }

    /// A power failure: every file and name reverts to its durable image.
    pub(crate) fn power_loss(&self) {
        let mut st = self.state.lock();
        st.names = st.durable_names.clone();
        let live: Vec<u64> = st.names.values().copied().collect();
        st.files.retain(|id, _| live.contains(id));
        for f in st.files.values_mut() {
            f.current = f.durable.clone();
        }
    }

    /// Overwrites bytes of a file in both images (bit rot, a torn sector).
    pub(crate) fn patch(&self, path: &Path, offset: usize, bytes: &[u8]) {
        let mut st = self.state.lock();
        let Some(&id) = st.names.get(path) else {
            return;
        };
        if let Some(f) = st.files.get_mut(&id) {
            for img in [&mut f.current, &mut f.durable] {
                if img.len() < offset + bytes.len() {
                    img.resize(offset + bytes.len(), 0);
                }
                img[offset..offset + bytes.len()].copy_from_slice(bytes);
            }
        }
    }

    /// The current bytes of a file.
    pub(crate) fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state.lock();
        let id = st.names.get(path)?;
        st.files.get(id).map(|f| f.current.clone())
    }

    /// The names in the directory now.
    pub(crate) fn names(&self) -> Vec<PathBuf> {
        self.state.lock().names.keys().cloned().collect()
    }

    /// Bytes the named files take now.
    fn used(st: &State) -> u64 {
        st.names
            .values()
            .filter_map(|id| st.files.get(id))
            .map(|f| f.current.len() as u64)
            .sum()
    }

    fn path_fault(&self) -> io::Result<()> {
        path_fault(&self.faults.lock())
    }

    fn count_write(&self) -> io::Result<()> {
        let n = {
            let mut st = self.state.lock();
            st.writes += 1;
            st.writes
        };
        match self.faults.lock().fail_write_from {
            Some(k) if n >= k => Err(eio("write")),
            _ => Ok(()),
        }
    }

    fn count_sync(&self) -> io::Result<()> {
        let n = {
            let mut st = self.state.lock();
            st.syncs += 1;
            st.syncs
        };
        match self.faults.lock().fail_sync_from {
            Some(k) if n >= k => Err(eio("sync")),
            _ => Ok(()),
        }
    }

    fn create(&self, path: &Path, len: usize) -> io::Result<u64> {
        let mut st = self.state.lock();
        if st.names.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
        }
        st.next += 1;
        let id = st.next;
        st.files.insert(
            id,
            FileData {
                current: vec![0; len],
                durable: vec![0; len],
            },
        );
        st.names.insert(path.to_owned(), id);
        Ok(id)
    }
}

struct FaultSegment {
    fs: FaultStorage,
    id: u64,
    len: usize,
    /// Set by `unmap_and_sync`: later writes and syncs through the map fail, as on disk.
    unmapped: bool,
}

fn unmapped() -> io::Error {
    io::Error::other("log segment already unmapped")
}

impl SegmentMap for FaultSegment {
    fn len(&self) -> usize {
        self.len
    }

    fn write(&self, offset: usize, data: &[u8]) -> io::Result<()> {
        if self.unmapped {
            return Err(unmapped());
        }
        self.fs.count_write()?;
        let mut st = self.fs.state.lock();
        let f = st
            .files
            .get_mut(&self.id)
            .ok_or_else(|| eio("write to removed file"))?;
        let end = offset + data.len();
        if end > f.current.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write past segment",
            ));
        }
        f.current[offset..end].copy_from_slice(data);
        Ok(())
    }

    fn sync(&self, from: usize, to: usize) -> io::Result<()> {
        if self.unmapped {
            return Err(unmapped());
        }
        self.sync_file(from, to)
    }

    fn unmap_and_sync(&mut self, from: usize, to: usize) -> io::Result<()> {
        self.unmapped = true;
        self.fs.state.lock().unmaps += 1;
        self.sync_file(from, to)
    }

    fn truncate(&self, len: usize) -> io::Result<()> {
        self.truncate_current(len);
        Ok(())
    }
}

impl FaultSegment {
    /// Makes `[from, to)` of the current image durable (a sync, counted and failed like any).
    fn sync_file(&self, from: usize, to: usize) -> io::Result<()> {
        self.fs.count_sync()?;
        let mut st = self.fs.state.lock();
        if let Some(f) = st.files.get_mut(&self.id) {
            let to = to.min(f.current.len());
            if from < to {
                let (cur, dur) = (&f.current, &mut f.durable);
                dur[from..to].copy_from_slice(&cur[from..to]);
            }
        }
        Ok(())
    }

    fn truncate_current(&self, len: usize) {
        // Like a file whose new size is not synced yet: after a power failure the durable
        // image (with its zeros past `len`) comes back.
        let mut st = self.fs.state.lock();
        if let Some(f) = st.files.get_mut(&self.id) {
            f.current.truncate(len);
        }
    }
}

struct Bytes(Vec<u8>);

impl FileBytes for Bytes {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

struct FaultFile {
    fs: FaultStorage,
    id: u64,
}

impl NewFile for FaultFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.fs.count_write()?;
        let garble = self.fs.faults.lock().garble_files;
        let mut st = self.fs.state.lock();
        let f = st
            .files
            .get_mut(&self.id)
            .ok_or_else(|| eio("write to removed file"))?;
        let at = f.current.len();
        f.current.extend_from_slice(data);
        if garble && !data.is_empty() {
            f.current[at] ^= 1;
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.fs.count_sync()?;
        let mut st = self.fs.state.lock();
        if let Some(f) = st.files.get_mut(&self.id) {
            f.durable = f.current.clone();
        }
        Ok(())
    }
}

impl Storage for FaultStorage {
    fn create_dir(&self, _: &Path) -> io::Result<()> {
        Ok(())
    }

    fn create_segment(&self, path: &Path, len: usize) -> io::Result<Box<dyn SegmentMap>> {
        let n = {
            let mut st = self.state.lock();
            st.allocs += 1;
            st.alloc_paths.push(path.to_path_buf());
            st.allocs
        };
        let faults = self.faults.lock().clone();
        path_fault(&faults)?;
        let over = faults.capacity.is_some_and(|cap| {
            let st = self.state.lock();
            Self::used(&st) + len as u64 > cap
        });
        if faults.disk_full || faults.fail_alloc == Some(n) || over {
            return Err(io::Error::from_raw_os_error(28));
        }
        let id = self.create(path, len)?;
        Ok(Box::new(FaultSegment {
            unmapped: false,
            fs: self.clone(),
            id,
            len,
        }))
    }

    fn open_segment(&self, path: &Path) -> io::Result<Box<dyn SegmentMap>> {
        let st = self.state.lock();
        let id = *st
            .names
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let len = st.files.get(&id).map_or(0, |f| f.current.len());
        Ok(Box::new(FaultSegment {
            unmapped: false,
            fs: self.clone(),
            id,
            len,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Box<dyn FileBytes>> {
        self.contents(path)
            .map(|b| Box::new(Bytes(b)) as Box<dyn FileBytes>)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn create_file(&self, path: &Path) -> io::Result<Box<dyn NewFile>> {
        self.path_fault()?;
        let id = self.create(path, 0)?;
        self.state.lock().created += 1;
        Ok(Box::new(FaultFile {
            fs: self.clone(),
            id,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.path_fault()?;
        let mut st = self.state.lock();
        let id = st
            .names
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        st.names.insert(to.to_owned(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        if self.faults.lock().fail_remove {
            return Err(eio("remove"));
        }
        self.path_fault()?;
        let mut st = self.state.lock();
        st.names
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.path_fault()?;
        let st = self.state.lock();
        Ok(st
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        // Opening the directory, then syncing it.
        self.path_fault()?;
        self.sync_names()
    }

    fn open_dir(&self, _: &Path) -> io::Result<Box<dyn DirHandle>> {
        self.path_fault()?;
        Ok(Box::new(FaultDir { fs: self.clone() }))
    }

    fn available(&self, _: &Path) -> io::Result<u64> {
        let cap = self.faults.lock().capacity;
        let st = self.state.lock();
        Ok(cap.map_or(u64::MAX, |cap| cap.saturating_sub(Self::used(&st))))
    }
}

impl FaultStorage {
    /// The directory's sync: its names become durable.
    fn sync_names(&self) -> io::Result<()> {
        self.count_sync()?;
        let mut st = self.state.lock();
        st.durable_names = st.names.clone();
        Ok(())
    }
}

/// An open directory: syncing it needs no path, so [`Faults::deny`] does not touch it.
struct FaultDir {
    fs: FaultStorage,
}

impl DirHandle for FaultDir {
    fn sync(&self) -> io::Result<()> {
        self.fs.sync_names()
    }

    fn check(&self) -> io::Result<()> {
        if self.fs.faults.lock().dir_gone {
            return Err(io::Error::from_raw_os_error(2));
        }
        Ok(())
    }
}
