//! A durable store's directory read without opening it: no lock taken, nothing written, so it
//! works while a server has the directory open. What the operator CLI (`sessile inspect`,
//! `sessile verify`) is built on.
//!
//! - [`verify`]: every file listed (kind, size, format version, sequence numbers) and every
//!   checksum checked: each log record, each snapshot's chunks and footer. Problems come with
//!   their file and offset.
//! - [`sessions`]: the sessions an open would start from (the newest valid snapshot and the
//!   log after it, up to the log's first problem), counted: live, expired, bytes, expiries.
//! - [`is_locked`]: whether a process has the directory open; [`lock_holder`]: which one,
//!   where the system says (Linux).
//!
//! On a directory in use, the end of the active log segment may be written while it is read:
//! its last record may then show as a torn tail that the next read no longer shows.
//!
//! ```no_run
//! use sessile::store::embedded::inspect;
//!
//! let dir = "/var/lib/myapp/sessions";
//! let checked = inspect::verify(dir, |_done, _total| {})?;
//! for p in &checked.problems {
//!     eprintln!("{} at offset {}: {}", p.file.display(), p.offset, p.reason);
//! }
//! let sessions = inspect::sessions(dir)?;
//! println!("{} live, locked: {}", sessions.live, inspect::is_locked(dir)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use super::format::header::{self, FileKind as Magic, HeaderError};
use super::format::{self, Decoded};
use super::fs::DiskStorage;
use super::recovery::{self, used_end};
use super::snapshot;
use super::storage::{DirHandle, FileBytes, NewFile, SegmentMap, Storage};
use super::wal::{self, SEGMENT_HEADER};
use crate::clock;
use crate::error::StoreError;
use crate::store::embedded::builder::{routing_hasher, Recovering};
use crate::store::embedded::shard::Shard;

/// The format version of the log segments and snapshots this build reads and writes
/// (`docs/FORMAT.md`, "File header").
///
/// ```
/// assert_eq!(sessile::store::embedded::inspect::FORMAT_VERSION, 2);
/// ```
pub const FORMAT_VERSION: u32 = 2;

/// What a file of the directory is, by its name (`docs/FORMAT.md`, "The directory").
///
/// ```
/// use sessile::store::embedded::inspect::FileKind;
///
/// assert_eq!(FileKind::of("wal-00000000000000000001.log"), FileKind::Segment);
/// assert_eq!(FileKind::of("snap-00000000000000000042.rkyv"), FileKind::Snapshot);
/// assert_eq!(FileKind::of("wal-00000000000000000001.log.torn-96"), FileKind::TornTail);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A log segment, `wal-<first seq>.log`.
    Segment,
    /// A snapshot, `snap-<cut>.rkyv`.
    Snapshot,
    /// The next log segment, prepared before it is needed (`wal-next.prep`).
    Prepared,
    /// A file being written (`*.tmp`), removed at the next open.
    Temporary,
    /// Bytes recovery cut off as a torn tail (`wal-<seq>.log.torn-<offset>`), kept for the
    /// operator; never read by the store.
    TornTail,
    /// A segment salvage moved aside (`wal-<seq>.log.corrupt`).
    Corrupt,
    /// The `LOCK` file.
    Lock,
    /// Any other file.
    Other,
}

impl FileKind {
    /// The kind of the file named `name`.
    ///
    /// ```
    /// use sessile::store::embedded::inspect::FileKind;
    ///
    /// assert_eq!(FileKind::of("LOCK"), FileKind::Lock);
    /// assert_eq!(FileKind::of("notes.txt"), FileKind::Other);
    /// ```
    pub fn of(name: &str) -> FileKind {
        if wal::parse_segment_name(name).is_some() {
            FileKind::Segment
        } else if snapshot::parse_snapshot_name(name).is_some() {
            FileKind::Snapshot
        } else if name == wal::NEXT_SEGMENT {
            FileKind::Prepared
        } else if name.ends_with(".tmp") {
            FileKind::Temporary
        } else if name.starts_with("wal-") && name.contains(".log.torn-") {
            FileKind::TornTail
        } else if name.starts_with("wal-") && name.ends_with(".log.corrupt") {
            FileKind::Corrupt
        } else if name == "LOCK" {
            FileKind::Lock
        } else {
            FileKind::Other
        }
    }
}

/// One file of the directory, as [`verify`] found it.
///
/// ```no_run
/// use sessile::store::embedded::inspect::{self, FileKind};
///
/// let checked = inspect::verify("/var/lib/myapp/sessions", |_, _| {})?;
/// for f in checked.files.iter().filter(|f| f.kind == FileKind::Segment) {
///     println!("{}: {} bytes, records {:?}, {} of them", f.name, f.size, f.seq, f.records);
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileInfo {
    /// The file's name in the directory.
    pub name: String,
    /// What it is.
    pub kind: FileKind,
    /// Its size in bytes.
    pub size: u64,
    /// The format version its header names (segments, snapshots and the prepared segment,
    /// when the header's magic and checksum are right).
    pub version: Option<u32>,
    /// The sequence numbers it holds: a segment's first and last valid record (`None`
    /// without one), a snapshot's cut (twice).
    pub seq: Option<(u64, u64)>,
    /// A segment's valid records, a valid snapshot's sessions; 0 for other files.
    pub records: u64,
}

/// A checksum, header or sequence that does not check out.
///
/// ```no_run
/// let checked = sessile::store::embedded::inspect::verify("/var/lib/myapp/sessions", |_, _| {})?;
/// for p in &checked.problems {
///     let what = if p.torn_tail { "torn tail" } else { "corrupt" };
///     eprintln!("{what}: {} at offset {}: {}", p.file.display(), p.offset, p.reason);
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// The byte offset in it where the damage starts.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
    /// A log problem that no later valid record vouches for as synced: a torn tail, which
    /// the next open cuts off (moving its bytes aside) without being asked. Otherwise the
    /// next open refuses the directory until it is salvaged (or, for a snapshot, falls back
    /// to an older one or the log).
    pub torn_tail: bool,
}

/// What [`verify`] found: every file, and every problem.
///
/// ```no_run
/// let checked = sessile::store::embedded::inspect::verify("/var/lib/myapp/sessions", |_, _| {})?;
/// std::process::exit(if checked.is_clean() { 0 } else { 1 });
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verification {
    /// The directory's files, by name.
    pub files: Vec<FileInfo>,
    /// The problems, in file order then offset order.
    pub problems: Vec<Problem>,
}

impl Verification {
    /// Whether every checksum, header and sequence checked out.
    ///
    /// ```
    /// assert!(sessile::store::embedded::inspect::Verification::default().is_clean());
    /// ```
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The bytes of the directory's files.
    ///
    /// ```
    /// assert_eq!(sessile::store::embedded::inspect::Verification::default().bytes(), 0);
    /// ```
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Lists the directory's files and checks every checksum in them: each log segment's header
/// and records (in order, with their sequence numbers; past a bad record the walk goes on
/// from the next valid one, so each damaged stretch is reported), each snapshot whole
/// (header, chunks, archives, columns, footer). `progress` is called with the bytes checked
/// so far and the bytes to check, before the first file and after each. Takes no lock and writes nothing.
///
/// # Errors
/// The directory or one of its files cannot be read.
///
/// ```
/// use sessile::store::embedded::inspect;
///
/// let dir = std::env::temp_dir().join(format!("sessile-doc-verify-{}", std::process::id()));
/// drop(sessile::EmbeddedStore::open(&dir)?);
/// let checked = inspect::verify(&dir, |_, _| {})?;
/// assert!(checked.is_clean());
/// assert!(checked.files.iter().any(|f| f.kind == inspect::FileKind::Segment));
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify(
    dir: impl AsRef<Path>,
    mut progress: impl FnMut(u64, u64),
) -> io::Result<Verification> {
    let dir = dir.as_ref();
    let mut names = DiskStorage.list(dir)?;
    names.sort_unstable();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let meta = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            meta => meta?,
        };
        if !meta.is_file() {
            continue;
        }
        files.push(FileInfo {
            kind: FileKind::of(&name),
            name,
            size: meta.len(),
            version: None,
            seq: None,
            records: 0,
        });
    }
    let checked = |f: &FileInfo| matches!(f.kind, FileKind::Segment | FileKind::Snapshot);
    let total: u64 = files.iter().filter(|f| checked(f)).map(|f| f.size).sum();
    let mut done = 0;
    progress(done, total);
    let mut log = LogWalk::default();
    for f in &mut files {
        let path = dir.join(&f.name);
        // A file a running store removed since the listing (a snapshot made it redundant)
        // is passed over.
        let read = match f.kind {
            FileKind::Segment | FileKind::Prepared | FileKind::Snapshot => {
                match ReadOnly.read(&path) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                    read => Some(read?),
                }
            }
            _ => None,
        };
        match (f.kind, read) {
            (FileKind::Segment | FileKind::Prepared, Some(bytes)) => {
                let b = bytes.bytes();
                f.version = version(Magic::Segment, b);
                if f.kind == FileKind::Segment {
                    log.segment(f, path, b);
                }
            }
            (FileKind::Snapshot, Some(bytes)) => {
                let b = bytes.bytes();
                f.version = version(Magic::Snapshot, b);
                match snapshot::verify_counted(&path, b) {
                    Ok((cut, sessions)) => {
                        f.seq = Some((cut, cut));
                        f.records = sessions as u64;
                    }
                    Err(e) => log.problems.push(snapshot_problem(path, e)),
                }
            }
            _ => {}
        }
        if checked(f) {
            done += f.size;
            progress(done, total);
        }
    }
    let mut problems = log.finish();
    problems.sort_by(|a, b| (&a.file, a.offset).cmp(&(&b.file, b.offset)));
    Ok(Verification { files, problems })
}

/// The version a header of kind `magic` names, if its magic and checksum are right.
fn version(magic: Magic, bytes: &[u8]) -> Option<u32> {
    match header::parse(magic, bytes) {
        Ok(_) => Some(magic.version()),
        Err(HeaderError::Version(v)) => Some(v),
        Err(_) => None,
    }
}

/// A snapshot that does not check out, as a [`Problem`].
fn snapshot_problem(path: PathBuf, e: StoreError) -> Problem {
    let (offset, reason) = match e {
        StoreError::Corrupt(c) => (c.offset.unwrap_or(0), c.reason),
        other => (0, other.to_string()),
    };
    Problem {
        file: path,
        offset,
        reason,
        torn_tail: false,
    }
}

/// The log walked segment by segment, in sequence order.
#[derive(Default)]
struct LogWalk {
    problems: Vec<Problem>,
    /// The problems of the log no valid record after them has vouched for yet, each with the
    /// sequence number of the first record it lost.
    unvouched: Vec<(usize, u64)>,
    /// The last valid record's sequence number.
    last: Option<u64>,
    /// Whether a problem was met since the last valid record: the records the damage took
    /// are its problem, not another one (no gap is reported after it).
    damaged: bool,
}

impl LogWalk {
    /// Walks one segment's bytes, filling in `f` and noting its problems.
    fn segment(&mut self, f: &mut FileInfo, path: PathBuf, b: &[u8]) {
        let Some(named) = wal::parse_segment_name(&f.name) else {
            return;
        };
        let header_problem = match header::parse(Magic::Segment, b) {
            Ok(seq) if seq == named => None,
            Ok(seq) => Some(format!("the header names first record {seq}")),
            Err(HeaderError::Version(v)) => Some(format!(
                "format version {v}; this build reads {FORMAT_VERSION}"
            )),
            Err(HeaderError::BadMagic) => Some("invalid segment header (bad magic)".into()),
            Err(HeaderError::BadChecksum) => Some("segment header checksum mismatch".into()),
            Err(HeaderError::Truncated) => Some("truncated segment header".into()),
        };
        if let Some(why) = header_problem {
            self.problem(&path, 0, why, named);
            return;
        }
        if let Some(last) = self.last.filter(|&l| named > l + 1 && !self.damaged) {
            let why = format!("records {}..{named} are missing", last + 1);
            self.problem(&path, 0, why, last + 1);
        }
        let (mut first, mut last_here, mut records) = (None, None, 0u64);
        let end = used_end(b);
        let mut at = SEGMENT_HEADER;
        while at < b.len() {
            match format::decode(&b[at..]) {
                Decoded::Record {
                    seq, synced, len, ..
                } => {
                    let expected = last_here.map_or(named, |l: u64| l + 1);
                    if seq != expected && !self.damaged {
                        let why = format!("sequence gap: record {seq} where {expected} was due");
                        self.problem(&path, at, why, expected);
                    }
                    self.vouch(synced);
                    self.damaged = false;
                    first.get_or_insert(seq);
                    last_here = Some(seq);
                    self.last = Some(seq);
                    records += 1;
                    at += len;
                }
                Decoded::End if end <= at => break,
                found => {
                    let why = match found {
                        Decoded::Bad(why) => why,
                        _ => "zeros before later data",
                    };
                    let lost = self.last.map_or(named, |l| l + 1);
                    self.problem(&path, at, why.to_owned(), lost);
                    at = next_record(b, at + 1, end);
                }
            }
        }
        f.seq = first.zip(last_here);
        f.records = records;
    }

    fn problem(&mut self, file: &Path, offset: usize, reason: String, lost: u64) {
        self.damaged = true;
        self.unvouched.push((self.problems.len(), lost));
        self.problems.push(Problem {
            file: file.to_owned(),
            offset: offset as u64,
            reason,
            torn_tail: false,
        });
    }

    /// A valid record written when everything up to `synced` was durable: the problems that
    /// lost a record at or before it were damage to synced records, not a torn tail.
    fn vouch(&mut self, synced: u64) {
        self.unvouched.retain(|&(_, lost)| lost > synced);
    }

    /// The problems, those never vouched for marked as torn tails.
    fn finish(mut self) -> Vec<Problem> {
        for (i, _) in self.unvouched {
            self.problems[i].torn_tail = true;
        }
        self.problems
    }
}

/// The offset of the first valid record at or after `from` (before `end`), or the length of
/// `b` when there is none.
fn next_record(b: &[u8], from: usize, end: usize) -> usize {
    (from..end)
        .find(|&p| matches!(format::decode(&b[p..]), Decoded::Record { .. }))
        .unwrap_or(b.len())
}

/// The sessions of a directory, as an open would start with them: see [`sessions`].
///
/// ```no_run
/// let s = sessile::store::embedded::inspect::sessions("/var/lib/myapp/sessions")?;
/// println!(
///     "{} live ({} bytes), {} expired, expiries {:?}..{:?} (ms since the epoch)",
///     s.live, s.bytes, s.expired, s.oldest_expiry, s.newest_expiry
/// );
/// # Ok::<(), sessile::StoreError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sessions {
    /// Sessions whose deadline is still ahead.
    pub live: usize,
    /// Sessions held whose deadline passed (an open drops them).
    pub expired: usize,
    /// The bytes of the live sessions' ids and data (cookies apart).
    pub bytes: u64,
    /// The earliest deadline of a live session, in milliseconds since the Unix epoch.
    pub oldest_expiry: Option<i64>,
    /// The latest deadline of a live session, in milliseconds since the Unix epoch.
    pub newest_expiry: Option<i64>,
    /// The snapshot the sessions were read from, by its cut.
    pub snapshot: Option<u64>,
    /// Snapshots passed over as invalid, each with the reason.
    pub skipped_snapshots: Vec<String>,
    /// Log records read after the snapshot.
    pub replayed: u64,
    /// The log's first problem (file, offset and what), where reading stopped.
    pub problem: Option<String>,
}

/// Shards of the replay's in-memory copy.
const SHARDS: usize = 64;

/// Reads the newest valid snapshot and the log after it into memory, as an open does, up to
/// the log's first problem, without taking the lock or changing anything on disk (no torn
/// tail is cut, no salvage done: see [`verify`] for the problems), and counts the sessions.
///
/// # Errors
/// The directory cannot be read; no valid snapshot while the log does not reach back to the
/// first record; a file of another format version.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), sessile::StoreError> {
/// use sessile::{Record, SessionStore};
///
/// let dir = std::env::temp_dir().join(format!("sessile-doc-sessions-{}", std::process::id()));
/// let store = sessile::EmbeddedStore::open(&dir)?;
/// store.set("sid", &Record::default()).await?;
/// // Read while the store has the directory open.
/// let s = sessile::store::embedded::inspect::sessions(&dir)?;
/// assert_eq!((s.live, s.expired), (1, 0));
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(()) }
/// ```
pub fn sessions(dir: impl AsRef<Path>) -> Result<Sessions, StoreError> {
    let shards: Box<[Shard]> = (0..SHARDS).map(|_| Shard::new(None)).collect();
    let hasher = routing_hasher();
    let target = Recovering {
        shards: &shards,
        hasher: &hasher,
    };
    let report = recovery::read_only(&ReadOnly, dir.as_ref(), &target)?;
    let mut out = Sessions {
        snapshot: report.snapshot,
        skipped_snapshots: report.skipped_snapshots,
        replayed: report.replayed,
        problem: report.problem,
        ..Sessions::default()
    };
    let now = clock::now_ms();
    for shard in shards.iter() {
        let (held, _) = shard.usage();
        let mut live = 0;
        shard.for_each_live_size(now, |bytes, deadline| {
            live += 1;
            out.bytes += bytes as u64;
            out.oldest_expiry = Some(out.oldest_expiry.map_or(deadline, |o| o.min(deadline)));
            out.newest_expiry = Some(out.newest_expiry.map_or(deadline, |n| n.max(deadline)));
        });
        out.live += live;
        out.expired += held.saturating_sub(live);
    }
    Ok(out)
}

/// Whether a process has the directory open: tries a shared `flock` of the directory (and of
/// its `LOCK` file, which older versions lock alone) without waiting, and releases it at once.
/// A store opening in the instant the test holds it is refused as locked, as it would be by
/// any other process.
///
/// # Errors
/// The directory cannot be opened.
///
/// ```
/// use sessile::store::embedded::inspect;
///
/// let dir = std::env::temp_dir().join(format!("sessile-doc-locked-{}", std::process::id()));
/// let store = sessile::EmbeddedStore::open(&dir)?;
/// assert!(inspect::is_locked(&dir)?);
/// drop(store);
/// assert!(!inspect::is_locked(&dir)?);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn is_locked(dir: impl AsRef<Path>) -> io::Result<bool> {
    let dir = dir.as_ref();
    if held(&File::open(dir)?)? {
        return Ok(true);
    }
    match File::open(dir.join("LOCK")) {
        Ok(f) => held(&f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The process holding the directory's lock (or its `LOCK` file's), as the system lists it:
/// on Linux, `/proc/locks`. `None` when no process holds it, or when the system does not say
/// (no `/proc/locks`: other unixes, or a `/proc` not mounted). The process id is the one the
/// lock was taken by, in the pid namespace of this `/proc`.
///
/// # Errors
/// The directory cannot be read, or `/proc/locks` exists and cannot be read.
///
/// ```
/// use sessile::store::embedded::inspect;
///
/// let dir = std::env::temp_dir().join(format!("sessile-doc-holder-{}", std::process::id()));
/// let store = sessile::EmbeddedStore::open(&dir)?;
/// if cfg!(target_os = "linux") {
///     assert_eq!(inspect::lock_holder(&dir)?, Some(std::process::id()));
/// }
/// drop(store);
/// assert_eq!(inspect::lock_holder(&dir)?, None);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn lock_holder(dir: impl AsRef<Path>) -> io::Result<Option<u32>> {
    use std::os::unix::fs::MetadataExt;

    let dir = dir.as_ref();
    let id = |m: fs::Metadata| {
        let dev = m.dev() as rustix::fs::Dev;
        (rustix::fs::major(dev), rustix::fs::minor(dev), m.ino())
    };
    let mut ours = vec![id(fs::metadata(dir)?)];
    if let Ok(m) = fs::metadata(dir.join("LOCK")) {
        ours.push(id(m));
    }
    let locks = match fs::read_to_string("/proc/locks") {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        locks => locks?,
    };
    Ok(locks.lines().find_map(|line| {
        // `1: FLOCK  ADVISORY  WRITE 4242 fe:00:6792781 0 EOF`; a waiter's line has `->`.
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(1) != Some(&"FLOCK") {
            return None;
        }
        let pid: u32 = f.get(4)?.parse().ok()?;
        let mut at = f.get(5)?.split(':');
        let major = u32::from_str_radix(at.next()?, 16).ok()?;
        let minor = u32::from_str_radix(at.next()?, 16).ok()?;
        let ino: u64 = at.next()?.parse().ok()?;
        ours.contains(&(major, minor, ino)).then_some(pid)
    }))
}

/// Whether another open file holds an exclusive lock on `f`'s file.
fn held(f: &File) -> io::Result<bool> {
    match f.try_lock_shared() {
        Ok(()) => f.unlock().map(|()| false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// The files read, never written: snapshots through a read-only map (a snapshot is never
/// changed once it has its name), log segments copied (the active one may be written while
/// it is read, and a sealed one truncated). Every write is refused.
struct ReadOnly;

/// The error of every write.
fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "the inspection writes nothing",
    )
}

struct Copied(Vec<u8>);

impl FileBytes for Copied {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Storage for ReadOnly {
    fn create_dir(&self, _dir: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn create_segment(&self, _path: &Path, _len: usize) -> io::Result<Box<dyn SegmentMap>> {
        Err(read_only())
    }
    fn open_segment(&self, _path: &Path) -> io::Result<Box<dyn SegmentMap>> {
        Err(read_only())
    }
    fn read(&self, path: &Path) -> io::Result<Box<dyn FileBytes>> {
        let snapshot = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| FileKind::of(n) == FileKind::Snapshot);
        if snapshot {
            DiskStorage.read(path)
        } else {
            Ok(Box::new(Copied(fs::read(path)?)))
        }
    }
    fn create_file(&self, _path: &Path) -> io::Result<Box<dyn NewFile>> {
        Err(read_only())
    }
    fn rename(&self, _from: &Path, _to: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn remove(&self, _path: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        DiskStorage.list(dir)
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn open_dir(&self, _dir: &Path) -> io::Result<Box<dyn DirHandle>> {
        Err(read_only())
    }
    fn available(&self, dir: &Path) -> io::Result<u64> {
        DiskStorage.available(dir)
    }
}
