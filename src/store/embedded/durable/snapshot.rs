//! Snapshots: the live sessions at a cut of the log, as checksummed columnar rkyv archives.
//!
//! ```text
//! header  32 bytes: "SESSNAP1", version u32 = 2, 0 u32, cut sequence u64, CRC32C of 0..24, 0 u32
//! chunk   16 bytes: "CHNK", length u32, entries u32, CRC32C of the archive u32,
//!         then the rkyv archive of one `SnapChunk` (up to 4096 entries), zero-padded to 16 bytes
//! footer  16 bytes: "SEND", chunks u32, CRC32C of the footer's first 8 bytes u32, 0 u32
//! ```
//!
//! A chunk is stored by columns: each distinct cookie shape once (the cookie apart from the
//! value of `expires`, as the store keeps it, see `shape.rs`), then per entry a shape index,
//! a deadline, and the lengths of its id and data in one text of every id and data in turn.
//! Integer columns are as narrow as their largest value allows (or one value for all). A
//! cookie's `expires` is its deadline on load, as the store hands it out; one that differs
//! (never, from the store) is listed with its entry.
//!
//! A snapshot is written to `snap-<seq>.tmp`, synced, renamed to `snap-<seq>.rkyv` and the
//! directory synced; only then are older files removed. Loading checks every checksum,
//! validates every archive (rkyv's `access` with bytecheck) and then every column (lengths,
//! shape indexes, cookie shapes, text splits on character boundaries) before feeding any
//! entry: bytes from disk are never accessed unchecked.

use std::collections::HashMap;
use std::path::Path;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use super::super::shape::same_shape;
use super::format::{put_cookie, Reader};
use super::fs::Storage;
use crate::error::StoreError;
use crate::record::{CookieRecord, Data, Record};

const MAGIC: &[u8; 8] = b"SESSNAP1";
/// The layout version this build writes and reads.
const VERSION: u32 = 2;
const HEADER: usize = 32;
const CHUNK_TAG: &[u8; 4] = b"CHNK";
const END_TAG: &[u8; 4] = b"SEND";
/// Entries per chunk.
pub(crate) const CHUNK: usize = 4096;

/// A column of unsigned integers, one per entry of its chunk, as narrow as its largest value
/// allows.
#[derive(rkyv::Archive, rkyv::Serialize, Debug)]
enum Ints {
    /// Every entry's value is this one.
    Same(u64),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
}

impl Ints {
    fn of(values: &[u64]) -> Ints {
        let first = values.first().copied().unwrap_or(0);
        if values.iter().all(|&v| v == first) {
            return Ints::Same(first);
        }
        let max = values.iter().copied().max().unwrap_or(0);
        // Each conversion fits: `max` bounds every value.
        if max <= u8::MAX as u64 {
            Ints::U8(values.iter().map(|&v| v as u8).collect())
        } else if max <= u16::MAX as u64 {
            Ints::U16(values.iter().map(|&v| v as u16).collect())
        } else if max <= u32::MAX as u64 {
            Ints::U32(values.iter().map(|&v| v as u32).collect())
        } else {
            Ints::U64(values.to_vec())
        }
    }
}

impl ArchivedInts {
    /// Whether the column holds a value for each of `n` entries.
    fn holds(&self, n: usize) -> bool {
        match self {
            ArchivedInts::Same(_) => true,
            ArchivedInts::U8(v) => v.len() == n,
            ArchivedInts::U16(v) => v.len() == n,
            ArchivedInts::U32(v) => v.len() == n,
            ArchivedInts::U64(v) => v.len() == n,
        }
    }

    /// Entry `i`'s value (`None` past the column's end).
    fn get(&self, i: usize) -> Option<u64> {
        match self {
            ArchivedInts::Same(v) => Some(v.to_native()),
            ArchivedInts::U8(v) => v.get(i).map(|&x| x as u64),
            ArchivedInts::U16(v) => v.get(i).map(|x| x.to_native() as u64),
            ArchivedInts::U32(v) => v.get(i).map(|x| x.to_native() as u64),
            ArchivedInts::U64(v) => v.get(i).map(|x| x.to_native()),
        }
    }
}

/// An entry whose cookie's `expires` is not its deadline.
#[derive(rkyv::Archive, rkyv::Serialize, Debug)]
struct Expires {
    /// The entry's index in its chunk.
    at: u32,
    expires: i64,
}

/// Up to [`CHUNK`] sessions of a snapshot, by columns.
#[derive(rkyv::Archive, rkyv::Serialize, Debug)]
struct SnapChunk {
    /// The distinct cookie shapes, in the log's binary cookie form, `expires` (when set) 0.
    shapes: Vec<Vec<u8>>,
    /// Each entry's shape: an index into `shapes`.
    shape_of: Ints,
    /// Each entry's deadline (ms since the epoch): `deadline_base` plus its value, wrapping.
    deadline_base: i64,
    deadlines: Ints,
    /// The entries (in order) whose cookie's `expires` is not the deadline.
    expires: Vec<Expires>,
    /// Each entry's id length and data length, in bytes of `text`.
    sid_lens: Ints,
    data_lens: Ints,
    /// Every entry's id then data, in order.
    text: String,
}

/// The file name of the snapshot cut at `seq`.
pub(crate) fn snapshot_name(seq: u64) -> String {
    format!("snap-{seq:020}.rkyv")
}

/// The cut sequence number named by a snapshot file name.
pub(crate) fn parse_snapshot_name(name: &str) -> Option<u64> {
    name.strip_prefix("snap-")?
        .strip_suffix(".rkyv")?
        .parse()
        .ok()
}

fn pad16(n: usize) -> usize {
    (16 - n % 16) % 16
}

/// Writes the snapshot of `entries` cut at `seq` into `dir`, durably.
pub(crate) fn write(
    storage: &dyn Storage,
    dir: &Path,
    seq: u64,
    entries: impl Iterator<Item = (impl AsRef<str>, Record, i64)>,
) -> Result<(), StoreError> {
    let tmp = dir.join(format!("snap-{seq:020}.tmp"));
    let result = write_tmp(storage, &tmp, seq, entries);
    if let Err(e) = result {
        let _ = storage.remove(&tmp);
        return Err(e);
    }
    storage.rename(&tmp, &dir.join(snapshot_name(seq)))?;
    storage.sync_dir(dir)?;
    Ok(())
}

/// The 32-byte file header for the cut `seq`.
fn header(seq: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The 16-byte header of a chunk holding `entries` entries in the archive `body`.
fn chunk_header(body: &[u8], entries: usize) -> [u8; 16] {
    let mut ch = [0u8; 16];
    ch[..4].copy_from_slice(CHUNK_TAG);
    ch[4..8].copy_from_slice(&(body.len() as u32).to_le_bytes());
    ch[8..12].copy_from_slice(&(entries as u32).to_le_bytes());
    ch[12..16].copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
    ch
}

/// The 16-byte footer after `chunks` chunks.
fn footer(chunks: u32) -> [u8; 16] {
    let mut end = [0u8; 16];
    end[..4].copy_from_slice(END_TAG);
    end[4..8].copy_from_slice(&chunks.to_le_bytes());
    let crc = crc32c::crc32c(&end[..8]);
    end[8..12].copy_from_slice(&crc.to_le_bytes());
    end
}

/// The chunk being filled by the writer, by columns.
#[derive(Default)]
struct Batch {
    shapes: Vec<Vec<u8>>,
    /// The index of each shape's encoding in `shapes`.
    shape_ids: HashMap<Vec<u8>, u64>,
    /// The last entry's cookie and shape index: most entries have the same shape.
    last: Option<(CookieRecord, u64)>,
    shape_of: Vec<u64>,
    deadlines: Vec<i64>,
    expires: Vec<Expires>,
    sid_lens: Vec<u64>,
    data_lens: Vec<u64>,
    text: String,
}

impl Batch {
    fn len(&self) -> usize {
        self.deadlines.len()
    }

    fn push(&mut self, sid: &str, record: &Record, deadline: i64) {
        let cookie = &record.cookie;
        let shape = match &self.last {
            Some((last, id)) if same_shape(last, cookie) => *id,
            _ => {
                let mut key = Vec::with_capacity(32);
                put_cookie(
                    &mut key,
                    &CookieRecord {
                        expires: cookie.expires.map(|_| 0),
                        ..cookie.clone()
                    },
                );
                let next = self.shapes.len() as u64;
                let id = *self.shape_ids.entry(key).or_insert_with_key(|key| {
                    self.shapes.push(key.clone());
                    next
                });
                self.last = Some((cookie.clone(), id));
                id
            }
        };
        if let Some(expires) = cookie.expires.filter(|&e| e != deadline) {
            self.expires.push(Expires {
                at: self.len() as u32,
                expires,
            });
        }
        self.shape_of.push(shape);
        self.deadlines.push(deadline);
        self.sid_lens.push(sid.len() as u64);
        self.data_lens.push(record.data.as_str().len() as u64);
        self.text.push_str(sid);
        self.text.push_str(record.data.as_str());
    }

    /// The chunk's archive; the batch is left empty.
    fn take(&mut self) -> SnapChunk {
        let base = self.deadlines.iter().copied().min().unwrap_or(0);
        let text_len = self.text.len();
        let offsets: Vec<u64> = self
            .deadlines
            .iter()
            .map(|&d| d.wrapping_sub(base) as u64)
            .collect();
        let chunk = SnapChunk {
            shapes: std::mem::take(&mut self.shapes),
            shape_of: Ints::of(&self.shape_of),
            deadline_base: base,
            deadlines: Ints::of(&offsets),
            expires: std::mem::take(&mut self.expires),
            sid_lens: Ints::of(&self.sid_lens),
            data_lens: Ints::of(&self.data_lens),
            // The next chunk's text is about as long.
            text: std::mem::replace(&mut self.text, String::with_capacity(text_len)),
        };
        self.shape_ids.clear();
        self.last = None;
        self.shape_of.clear();
        self.deadlines.clear();
        self.sid_lens.clear();
        self.data_lens.clear();
        chunk
    }
}

fn encode(chunk: &SnapChunk) -> Result<AlignedVec, StoreError> {
    rkyv::to_bytes::<rancor::Error>(chunk)
        .map_err(|e| StoreError::Corrupt(format!("encoding snapshot: {e}")))
}

fn write_tmp(
    storage: &dyn Storage,
    tmp: &Path,
    seq: u64,
    entries: impl Iterator<Item = (impl AsRef<str>, Record, i64)>,
) -> Result<(), StoreError> {
    let mut f = storage.create_file(tmp)?;
    f.write_all(&header(seq))?;

    let mut chunks = 0u32;
    let mut batch = Batch::default();
    let mut flush = |batch: &mut Batch, f: &mut Box<dyn super::fs::NewFile>| {
        let entries = batch.len();
        if entries == 0 {
            return Ok::<(), StoreError>(());
        }
        let bytes = encode(&batch.take())?;
        f.write_all(&chunk_header(&bytes, entries))?;
        f.write_all(&bytes)?;
        f.write_all(&[0u8; 16][..pad16(bytes.len())])?;
        chunks += 1;
        Ok(())
    };
    for (sid, record, deadline) in entries {
        batch.push(sid.as_ref(), &record, deadline);
        if batch.len() == CHUNK {
            flush(&mut batch, &mut f)?;
        }
    }
    flush(&mut batch, &mut f)?;
    f.write_all(&footer(chunks))?;
    f.sync()?;
    Ok(())
}

/// A snapshot file around the given chunk bodies, each with its entry count, with valid
/// framing and checksums: for the fuzz target of the loader.
pub(crate) fn frame(seq: u64, chunks: &[(u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&header(seq));
    for &(entries, body) in chunks {
        out.extend_from_slice(&chunk_header(body, entries as usize));
        out.extend_from_slice(body);
        out.extend_from_slice(&[0u8; 16][..pad16(body.len())]);
    }
    out.extend_from_slice(&footer(chunks.len() as u32));
    out
}

/// A chunk archive built from arbitrary bytes without regard to its validity (counts, shape
/// indexes, lengths and shapes all come from the bytes), with the entry count to frame it
/// with: so a fuzzer reaches the checks after rkyv's validation.
pub(crate) fn arbitrary_chunk(bytes: &[u8]) -> (u32, Vec<u8>) {
    let mut rest = bytes;
    let mut next = || match rest.split_first() {
        Some((&b, tail)) => {
            rest = tail;
            b
        }
        None => 0,
    };
    let entries = u32::from(next() % 8);
    let column = |next: &mut dyn FnMut() -> u8, modulo: u8| match next() % 3 {
        0 => Ints::Same(u64::from(next() % modulo)),
        1 => Ints::U8((0..entries).map(|_| next() % modulo).collect()),
        _ => Ints::U16(
            (0..next() % 9)
                .map(|_| u16::from(next() % modulo))
                .collect(),
        ),
    };
    let shapes = (0..next() % 3)
        .map(|_| (0..next() % 40).map(|_| next()).collect())
        .collect();
    let shape_of = column(&mut next, 4);
    let deadline_base = i64::from(next()) << 40;
    let deadlines = column(&mut next, 255);
    let expires = (0..next() % 3)
        .map(|_| Expires {
            at: u32::from(next() % 8),
            expires: i64::from(next()),
        })
        .collect();
    let sid_lens = column(&mut next, 8);
    let data_lens = column(&mut next, 16);
    let text = String::from_utf8_lossy(rest).into_owned();
    let chunk = SnapChunk {
        shapes,
        shape_of,
        deadline_base,
        deadlines,
        expires,
        sid_lens,
        data_lens,
        text,
    };
    let bytes = encode(&chunk).map(|b| b.to_vec()).unwrap_or_default();
    (entries, bytes)
}

fn corrupt(what: &str, offset: usize, why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("snapshot {what} at offset {offset}: {why}"))
}

/// The cut a snapshot's header names, if the header is valid.
pub(crate) fn header_cut(bytes: &[u8]) -> Option<u64> {
    let h = bytes.get(..HEADER)?;
    let crc = u32::from_le_bytes([h[24], h[25], h[26], h[27]]);
    (&h[..8] == MAGIC && h[8..12] == VERSION.to_le_bytes() && crc32c::crc32c(&h[..24]) == crc)
        .then(|| u64::from_le_bytes(h[16..24].try_into().unwrap_or([0; 8])))
}

/// Checks a snapshot's bytes as [`load`] does, without reading the entries out: returns the
/// cut sequence number.
pub(crate) fn verify(what: &str, bytes: &[u8]) -> Result<u64, StoreError> {
    check(what, bytes).map(|(seq, _)| seq)
}

/// Loads a snapshot's bytes: returns the cut sequence number, feeding every entry to `each`.
/// Nothing is fed unless the whole file checks out.
pub(crate) fn load(
    what: &str,
    bytes: &[u8],
    each: impl FnMut(String, Record, i64),
) -> Result<u64, StoreError> {
    load_counted(what, bytes, |_| {}, each)
}

/// [`load`], telling `count` how many entries will be fed (the sum of the chunk headers'
/// counts, each checked against its archive) once the whole file checked out and before the
/// first entry.
pub(crate) fn load_counted(
    what: &str,
    bytes: &[u8],
    count: impl FnOnce(usize),
    mut each: impl FnMut(String, Record, i64),
) -> Result<u64, StoreError> {
    let (seq, chunks) = check(what, bytes)?;
    count(chunks.iter().map(|c| c.count).sum());
    let mut copy = AlignedVec::<16>::new();
    let mut feed = |c: &Checked<'_>, archived: &ArchivedSnapChunk| {
        walk(
            what,
            c.at,
            archived,
            c.count,
            true,
            |sid, data, shape, expires, deadline| {
                let record = Record {
                    cookie: CookieRecord {
                        expires,
                        ..shape.clone()
                    },
                    data: Data::from_trusted(data),
                };
                each(sid.to_owned(), record, deadline);
            },
        )
    };
    for c in &chunks {
        match c.checked {
            // Validated in place by `check`: not validated again.
            Some(archived) => feed(c, archived)?,
            None => with_archive(what, c.at, c.body, &mut copy, |archived| feed(c, archived))?,
        }
    }
    Ok(seq)
}

/// A chunk `check` found valid.
struct Checked<'a> {
    /// Where its chunk header starts.
    at: usize,
    /// Its archive.
    body: &'a [u8],
    /// Its entries.
    count: usize,
    /// The archive, when it was validated in place (16-byte aligned bytes, as in a mapped
    /// file); otherwise it was validated on an aligned copy, to be made again to be read.
    checked: Option<&'a ArchivedSnapChunk>,
}

/// Validates the archive `body` (rkyv's `access` with bytecheck) and runs `f` on it. The
/// archive is read in place when `body` is 16-byte aligned, as it is in a mapped file (every
/// archive starts at a multiple of 16 from the file's start); otherwise on an aligned copy.
fn with_archive<R>(
    what: &str,
    at: usize,
    body: &[u8],
    copy: &mut AlignedVec<16>,
    f: impl FnOnce(&ArchivedSnapChunk) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let aligned: &[u8] = if body.as_ptr().align_offset(16) == 0 {
        body
    } else {
        copy.clear();
        copy.extend_from_slice(body);
        copy
    };
    let archived = rkyv::access::<ArchivedSnapChunk, rancor::Error>(aligned)
        .map_err(|e| corrupt(what, at, format!("invalid archive: {e}")))?;
    f(archived)
}

/// Checks the columns of the chunk at `at` (an archive rkyv validated) against its header's
/// entry count `count`. Without `feed`, checks every entry too (lengths, text splits) and
/// feeds none; with `feed` (the entries checked before, by `check` on these very bytes),
/// runs `f` on each entry in turn: its id, its data, its cookie shape, the cookie's
/// `expires` and the deadline.
fn walk(
    what: &str,
    at: usize,
    chunk: &ArchivedSnapChunk,
    count: usize,
    feed: bool,
    mut f: impl FnMut(&str, &str, &CookieRecord, Option<i64>, i64),
) -> Result<(), StoreError> {
    let bad = |why: &str| corrupt(what, at, why);
    let columns = [
        &chunk.shape_of,
        &chunk.deadlines,
        &chunk.sid_lens,
        &chunk.data_lens,
    ];
    if !columns.iter().all(|c| c.holds(count)) {
        return Err(bad("entry count mismatch"));
    }
    let shapes = chunk
        .shapes
        .iter()
        .map(|s| {
            let mut r = Reader(s.as_slice());
            r.cookie()
                .filter(|c| r.0.is_empty() && c.expires.is_none_or(|e| e == 0))
        })
        .collect::<Option<Vec<CookieRecord>>>()
        .ok_or_else(|| bad("invalid cookie shape"))?;
    let shape_of = |i: usize| {
        let s = chunk.shape_of.get(i)?;
        shapes.get(usize::try_from(s).ok()?)
    };
    // Entries with their own `expires`, in order, each on a shape that has one.
    let mut prev = None;
    for e in chunk.expires.iter() {
        let i = e.at.to_native() as usize;
        let ok = i < count
            && prev.is_none_or(|p| p < i)
            && shape_of(i).is_some_and(|s| s.expires.is_some());
        if !ok {
            return Err(bad("invalid expires list"));
        }
        prev = Some(i);
    }

    let text = chunk.text.as_str();
    let entry = |i: usize, pos: usize| -> Result<(&CookieRecord, &str, &str, usize), StoreError> {
        let shape = shape_of(i).ok_or_else(|| bad("shape index out of range"))?;
        let len = |c: &ArchivedInts| c.get(i).and_then(|n| usize::try_from(n).ok());
        let sid_end = len(&chunk.sid_lens).and_then(|n| pos.checked_add(n));
        let data_end = sid_end
            .zip(len(&chunk.data_lens))
            .and_then(|(s, n)| s.checked_add(n));
        let (Some(sid_end), Some(end)) = (sid_end, data_end.filter(|&e| e <= text.len())) else {
            return Err(bad("lengths exceed the text"));
        };
        match (text.get(pos..sid_end), text.get(sid_end..end)) {
            (Some(sid), Some(data)) => Ok((shape, sid, data, end)),
            _ => Err(bad("text split inside a character")),
        }
    };
    if !feed {
        let mut pos = 0;
        for i in 0..count {
            pos = entry(i, pos)?.3;
        }
        if pos != text.len() {
            return Err(bad("lengths do not add up to the text"));
        }
        return Ok(());
    }

    let base = chunk.deadline_base.to_native();
    let mut own = chunk.expires.iter().peekable();
    let mut pos = 0;
    for i in 0..count {
        let (shape, sid, data, end) = entry(i, pos)?;
        pos = end;
        let offset = chunk.deadlines.get(i).unwrap_or(0);
        let deadline = base.wrapping_add(offset as i64);
        let expires = match own.next_if(|e| e.at.to_native() as usize == i) {
            Some(e) => Some(e.expires.to_native()),
            None => shape.expires.map(|_| deadline),
        };
        f(sid, data, shape, expires, deadline);
    }
    Ok(())
}

/// Checks the header, every chunk (checksum, archive, columns) and the footer; returns the
/// cut and the chunks.
fn check<'a>(what: &str, bytes: &'a [u8]) -> Result<(u64, Vec<Checked<'a>>), StoreError> {
    let h = bytes
        .get(..HEADER)
        .ok_or_else(|| corrupt(what, 0, "truncated header"))?;
    if &h[..8] != MAGIC {
        return Err(corrupt(what, 0, "bad magic"));
    }
    let crc = u32::from_le_bytes([h[24], h[25], h[26], h[27]]);
    if crc32c::crc32c(&h[..24]) != crc {
        return Err(corrupt(what, 0, "header checksum mismatch"));
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != VERSION {
        return Err(corrupt(
            what,
            0,
            format!("snapshot version {version} is not read by this build (it reads {VERSION})"),
        ));
    }
    let seq = u64::from_le_bytes(h[16..24].try_into().unwrap_or([0; 8]));

    // Check every chunk and the footer, so a bad file feeds nothing. Archives are read in
    // place in a map; one aligned buffer is reused for bytes that are not aligned.
    let mut chunks: Vec<Checked<'a>> = Vec::new();
    let mut copy = AlignedVec::<16>::new();
    let mut at = HEADER;
    loop {
        let tag = bytes
            .get(at..at + 16)
            .ok_or_else(|| corrupt(what, at, "truncated (no footer)"))?;
        if &tag[..4] == END_TAG {
            let n = u32::from_le_bytes([tag[4], tag[5], tag[6], tag[7]]) as usize;
            let crc = u32::from_le_bytes([tag[8], tag[9], tag[10], tag[11]]);
            if crc32c::crc32c(&tag[..8]) != crc || n != chunks.len() {
                return Err(corrupt(what, at, "bad footer"));
            }
            if at + 16 != bytes.len() {
                return Err(corrupt(what, at + 16, "bytes after the footer"));
            }
            break;
        }
        if &tag[..4] != CHUNK_TAG {
            return Err(corrupt(what, at, "bad chunk tag"));
        }
        let len = u32::from_le_bytes([tag[4], tag[5], tag[6], tag[7]]) as usize;
        let count = u32::from_le_bytes([tag[8], tag[9], tag[10], tag[11]]) as usize;
        if count > CHUNK {
            // The writer never puts more in a chunk; a larger count would size tables (and
            // loops) by a number the file's bytes do not back.
            return Err(corrupt(
                what,
                at,
                format!("entry count {count} over {CHUNK}"),
            ));
        }
        let crc = u32::from_le_bytes([tag[12], tag[13], tag[14], tag[15]]);
        let start = at + 16;
        let body = start
            .checked_add(len)
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| corrupt(what, at, "truncated chunk"))?;
        if crc32c::crc32c(body) != crc {
            return Err(corrupt(what, at, "chunk checksum mismatch"));
        }
        let valid = |archived: &ArchivedSnapChunk| {
            walk(what, at, archived, count, false, |_, _, _, _, _| {})
        };
        let checked = if body.as_ptr().align_offset(16) == 0 {
            let archived = rkyv::access::<ArchivedSnapChunk, rancor::Error>(body)
                .map_err(|e| corrupt(what, at, format!("invalid archive: {e}")))?;
            valid(archived)?;
            Some(archived)
        } else {
            with_archive(what, at, body, &mut copy, valid)?;
            None
        };
        chunks.push(Checked {
            at,
            body,
            count,
            checked,
        });
        at = start + len + pad16(len);
    }
    Ok((seq, chunks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Priority, SameSite};
    use std::sync::Arc;

    type Entry = (String, Record, i64);

    fn cookie(path: &str, max_age: Option<i64>, deadline: i64) -> CookieRecord {
        CookieRecord {
            original_max_age: max_age,
            expires: max_age.map(|_| deadline),
            path: Arc::from(path),
            ..CookieRecord::default()
        }
    }

    fn entry(sid: &str, cookie: CookieRecord, deadline: i64, data: &str) -> Entry {
        let data = Data::from_trusted(data);
        (sid.to_owned(), Record { cookie, data }, deadline)
    }

    /// The file of one chunk holding `entries` as the writer lays them out.
    fn file_of(entries: &[Entry]) -> Vec<u8> {
        let mut batch = Batch::default();
        for (sid, record, deadline) in entries {
            batch.push(sid, record, *deadline);
        }
        file_with(entries.len() as u32, &batch.take())
    }

    fn file_with(count: u32, chunk: &SnapChunk) -> Vec<u8> {
        frame(7, &[(count, &encode(chunk).unwrap())])
    }

    fn load_all(bytes: &[u8]) -> Result<Vec<Entry>, StoreError> {
        let mut copy = AlignedVec::<16>::new();
        copy.extend_from_slice(bytes);
        let mut out = Vec::new();
        load("snap-t", &copy, |s, r, d| out.push((s, r, d)))?;
        Ok(out)
    }

    /// The reason loading `bytes` fails with (it names the file).
    fn refusal(bytes: &[u8]) -> String {
        let e = load_all(bytes).expect_err("must be refused").to_string();
        assert!(e.contains("snapshot snap-t at offset "), "{e}");
        e
    }

    /// A valid two-entry chunk to spoil one column of.
    fn two() -> SnapChunk {
        let mut batch = Batch::default();
        for (sid, record, deadline) in [
            entry("a", cookie("/", Some(5), 100), 100, "{}"),
            entry("bé", cookie("/x", None, 50), 50, r#"{"é":1}"#),
        ] {
            batch.push(sid.as_ref(), &record, deadline);
        }
        let chunk = batch.take();
        assert!(load_all(&file_with(2, &chunk)).is_ok());
        chunk
    }

    #[test]
    fn a_chunk_with_several_shapes_round_trips() {
        let mut odd = cookie("/", Some(60_000), 0);
        odd.secure = Some(true);
        odd.domain = Some(Arc::from("example.com"));
        odd.same_site = Some(SameSite::Strict);
        odd.priority = Some(Priority::High);
        odd.partitioned = Some(false);
        let mut entries = Vec::new();
        for i in 0..300i64 {
            let deadline = 1_700_000_000_000 + i * 7_919;
            let c = match i % 3 {
                0 => cookie("/", Some(60_000), deadline),
                1 => cookie("/", None, deadline),
                _ => CookieRecord {
                    expires: Some(deadline),
                    ..odd.clone()
                },
            };
            // Lengths past a byte, text past ASCII.
            let data = format!(r#"{{"n":"{}"}}"#, "é".repeat(i as usize));
            entries.push(entry(&format!("sid-{i}"), c, deadline, &data));
        }
        // A cookie whose `expires` is not its deadline comes back as it went in.
        entries[4].1.cookie.expires = Some(12);
        assert_eq!(load_all(&file_of(&entries)).unwrap(), entries);
        // Every deadline and length the same; an empty chunk.
        let same: Vec<Entry> = (0..5)
            .map(|i| entry(&format!("s{i}"), cookie("/", Some(1), -3), -3, "{}"))
            .collect();
        assert_eq!(load_all(&file_of(&same)).unwrap(), same);
        assert_eq!(load_all(&file_of(&[])).unwrap(), []);
        // Deadlines spread past 32 bits.
        let far = [
            entry("a", cookie("/", Some(1), i64::MIN), i64::MIN, "{}"),
            entry("b", cookie("/", Some(1), i64::MAX), i64::MAX, "{}"),
        ];
        assert_eq!(load_all(&file_of(&far)).unwrap(), far);
    }

    #[test]
    fn written_files_round_trip_over_several_chunks() {
        let fs = super::super::fault::FaultStorage::new();
        let dir = Path::new("/s");
        fs.create_dir(dir).unwrap();
        let entries: Vec<Entry> = (0..CHUNK as i64 + 10)
            .map(|i| entry(&format!("{i:032}"), cookie("/", Some(9), i), i, "{}"))
            .collect();
        let input = entries.iter().map(|(s, r, d)| (s.as_str(), r.clone(), *d));
        write(&fs, dir, 42, input).unwrap();
        let bytes = fs.contents(&dir.join(snapshot_name(42))).unwrap();
        assert_eq!(header_cut(&bytes), Some(42));
        let mut out = Vec::new();
        let mut counted = 0;
        let cut = load_counted("t", &bytes, |n| counted = n, |s, r, d| out.push((s, r, d)));
        assert_eq!((cut.unwrap(), counted), (42, entries.len()));
        assert_eq!(out, entries);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_refused() {
        let entries = [
            entry("a", cookie("/", Some(5), 100), 100, "{}"),
            entry("b", cookie("/", Some(5), 900), 900, r#"{"x":1}"#),
        ];
        let bytes = file_of(&entries);
        for len in 0..bytes.len() {
            refusal(&bytes[..len]);
        }
        // A flip is refused, or is in bytes that carry nothing (reserved header and footer
        // bytes, padding) and the entries load unchanged.
        let mut refused = 0;
        for at in 0..bytes.len() {
            let mut b = bytes.clone();
            b[at] ^= 1 << (at % 8);
            match load_all(&b) {
                Ok(got) => assert_eq!(got, entries, "flip at {at}"),
                Err(_) => refused += refusal(&b).len().min(1),
            }
        }
        assert!(refused + 32 >= bytes.len(), "{refused} of {}", bytes.len());
    }

    #[test]
    fn a_corrupt_shape_index_is_refused() {
        let mut chunk = two();
        chunk.shape_of = Ints::U8(vec![0, 2]);
        let e = refusal(&file_with(2, &chunk));
        assert!(e.contains("shape index out of range"), "{e}");
    }

    #[test]
    fn a_bad_cookie_shape_is_refused() {
        for bad in [vec![0xff; 6], Vec::new()] {
            let mut chunk = two();
            chunk.shapes[1] = bad;
            let e = refusal(&file_with(2, &chunk));
            assert!(e.contains("invalid cookie shape"), "{e}");
        }
        // A shape's bytes are all used; its `expires` is a placeholder 0.
        let mut chunk = two();
        chunk.shapes[1].push(0);
        assert!(refusal(&file_with(2, &chunk)).contains("invalid cookie shape"));
        let mut chunk = two();
        let mut c = cookie("/", Some(5), 1);
        c.expires = Some(1);
        chunk.shapes[0].clear();
        put_cookie(&mut chunk.shapes[0], &c);
        assert!(refusal(&file_with(2, &chunk)).contains("invalid cookie shape"));
    }

    #[test]
    fn lengths_that_do_not_match_are_refused() {
        // A column shorter than the header's count, or a count the columns do not hold.
        let mut chunk = two();
        chunk.data_lens = Ints::U32(vec![2]);
        let e = refusal(&file_with(2, &chunk));
        assert!(e.contains("entry count mismatch"), "{e}");
        let e = refusal(&file_with(3, &two()));
        assert!(e.contains("entry count mismatch"), "{e}");
        // A count over a chunk's, even one that every column holds (each one value for all).
        let same = SnapChunk {
            shapes: two().shapes,
            shape_of: Ints::Same(0),
            deadline_base: 0,
            deadlines: Ints::Same(0),
            expires: Vec::new(),
            sid_lens: Ints::Same(0),
            data_lens: Ints::Same(0),
            text: String::new(),
        };
        let n = CHUNK as u32;
        assert_eq!(
            load_all(&file_with(n, &same)).map(|v| v.len()).ok(),
            Some(CHUNK)
        );
        let e = refusal(&file_with(n + 1, &same));
        assert!(e.contains("entry count 4097 over 4096"), "{e}");
        let e = refusal(&file_with(u32::MAX, &same));
        assert!(e.contains("over 4096"), "{e}");
        // Lengths past the text, or short of it.
        let mut chunk = two();
        chunk.sid_lens = Ints::U16(vec![1, 300]);
        let e = refusal(&file_with(2, &chunk));
        assert!(e.contains("lengths exceed the text"), "{e}");
        let mut chunk = two();
        chunk.text.push('x');
        let e = refusal(&file_with(2, &chunk));
        assert!(e.contains("lengths do not add up to the text"), "{e}");
        let mut chunk = two();
        chunk.data_lens = Ints::Same(u64::MAX);
        let e = refusal(&file_with(2, &chunk));
        assert!(e.contains("lengths exceed the text"), "{e}");
    }

    #[test]
    fn a_split_inside_a_character_is_refused() {
        // "bé": the id ends inside "é" and the data starts there.
        let mut chunk = two();
        chunk.sid_lens = Ints::U8(vec![1, 2]);
        chunk.data_lens = Ints::U8(vec![2, 9]);
        let e = refusal(&file_with(2, &chunk));
        assert!(e.contains("text split inside a character"), "{e}");
    }

    #[test]
    fn a_bad_expires_list_is_refused() {
        let bad = [
            vec![Expires { at: 2, expires: 1 }],
            // The second entry's shape has no `expires`.
            vec![Expires { at: 1, expires: 1 }],
            vec![Expires { at: 0, expires: 1 }, Expires { at: 0, expires: 2 }],
        ];
        for list in bad {
            let mut chunk = two();
            chunk.expires = list;
            let e = refusal(&file_with(2, &chunk));
            assert!(e.contains("invalid expires list"), "{e}");
        }
    }

    #[test]
    fn a_version_1_file_is_refused_naming_its_version() {
        let mut bytes = file_of(&[]);
        bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..24]);
        bytes[24..28].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(header_cut(&bytes), None);
        let e = refusal(&bytes);
        assert!(
            e.contains("snapshot version 1 is not read by this build"),
            "{e}"
        );
    }

    #[test]
    fn arbitrary_chunks_load_or_are_refused_without_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut loaded = 0;
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..seed % 96)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let (count, chunk) = arbitrary_chunk(&bytes);
            loaded += load_all(&frame(1, &[(count, &chunk)])).is_ok() as usize;
        }
        assert!(loaded > 0);
    }
}
