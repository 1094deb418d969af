//! Snapshots: the live sessions at a cut of the log, as checksummed columnar rkyv archives
//! (the columns are in [`format::columns`](super::format::columns)).
//!
//! Layout: `docs/FORMAT.md`, section "Snapshots". A snapshot is written to `snap-<seq>.tmp`,
//! synced, renamed to `snap-<seq>.rkyv` and the directory synced; only then are older files
//! removed. Loading checks every checksum, validates every archive (rkyv's `access` with
//! bytecheck) and then every column before feeding any entry: bytes from disk are never
//! accessed unchecked.

use std::path::Path;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use super::format::columns::{self, ArchivedSnapChunk, Batch};
use super::format::header::{self, FileKind, HeaderError};
use super::storage::{NewFile, Storage};
use crate::error::{Corrupted, Corruption, StoreError};
use crate::record::{CookieRecord, Data, Record};

#[cfg(any(test, fuzzing))]
pub(crate) use columns::arbitrary_chunk;
pub(crate) use columns::CHUNK;

const CHUNK_TAG: &[u8; 4] = b"CHNK";
const END_TAG: &[u8; 4] = b"SEND";
const HEADER: usize = header::LEN;

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

fn write_tmp(
    storage: &dyn Storage,
    tmp: &Path,
    seq: u64,
    entries: impl Iterator<Item = (impl AsRef<str>, Record, i64)>,
) -> Result<(), StoreError> {
    let mut f = storage.create_file(tmp)?;
    f.write_all(&header::build(FileKind::Snapshot, seq))?;

    let mut chunks = 0u32;
    let mut batch = Batch::default();
    let mut flush = |batch: &mut Batch, f: &mut Box<dyn NewFile>| {
        let entries = batch.len();
        if entries == 0 {
            return Ok::<(), StoreError>(());
        }
        let bytes = columns::encode(&batch.take())
            .map_err(|e| corrupt(tmp, 0, format!("encoding a chunk: {e}")))?;
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
#[cfg(any(test, fuzzing))]
pub(crate) fn frame(seq: u64, chunks: &[(u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&header::build(FileKind::Snapshot, seq));
    for &(entries, body) in chunks {
        out.extend_from_slice(&chunk_header(body, entries as usize));
        out.extend_from_slice(body);
        out.extend_from_slice(&[0u8; 16][..pad16(body.len())]);
    }
    out.extend_from_slice(&footer(chunks.len() as u32));
    out
}

/// The snapshot `what` is corrupt at `offset`, for `why`.
fn corrupt(what: &Path, offset: usize, why: impl std::fmt::Display) -> StoreError {
    Corruption::new(Corrupted::Snapshot, why.to_string())
        .at(what, Some(offset as u64))
        .into()
}

/// The cut a snapshot's header names, if the header is valid.
pub(crate) fn header_cut(bytes: &[u8]) -> Option<u64> {
    header::parse(FileKind::Snapshot, bytes).ok()
}

/// Checks a snapshot's bytes as [`load`] does, without reading the entries out: returns the
/// cut sequence number.
pub(crate) fn verify(what: impl AsRef<Path>, bytes: &[u8]) -> Result<u64, StoreError> {
    check(what.as_ref(), bytes).map(|(seq, _)| seq)
}

/// [`verify`], also returning how many sessions the snapshot holds (the sum of its chunk
/// headers' counts, each checked against its archive).
#[cfg(unix)]
pub(crate) fn verify_counted(
    what: impl AsRef<Path>,
    bytes: &[u8],
) -> Result<(u64, usize), StoreError> {
    check(what.as_ref(), bytes).map(|(seq, chunks)| (seq, chunks.iter().map(|c| c.count).sum()))
}

/// Loads a snapshot's bytes: returns the cut sequence number, feeding every entry to `each`.
/// Nothing is fed unless the whole file checks out.
#[cfg(any(test, fuzzing))]
pub(crate) fn load(
    what: impl AsRef<Path>,
    bytes: &[u8],
    each: impl FnMut(String, Record, i64),
) -> Result<u64, StoreError> {
    load_counted(what, bytes, |_| {}, each)
}

/// [`load`], telling `count` how many entries will be fed (the sum of the chunk headers'
/// counts, each checked against its archive) once the whole file checked out and before the
/// first entry.
pub(crate) fn load_counted(
    what: impl AsRef<Path>,
    bytes: &[u8],
    count: impl FnOnce(usize),
    mut each: impl FnMut(String, Record, i64),
) -> Result<u64, StoreError> {
    let what = what.as_ref();
    let (seq, chunks) = check(what, bytes)?;
    count(chunks.iter().map(|c| c.count).sum());
    let mut copy = AlignedVec::<16>::new();
    let mut feed = |c: &Checked<'_>, archived: &ArchivedSnapChunk| {
        columns::walk(
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
        .map_err(|why| corrupt(what, c.at, why))
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
    what: &Path,
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

/// Checks the header, every chunk (checksum, archive, columns) and the footer; returns the
/// cut and the chunks.
fn check<'a>(what: &Path, bytes: &'a [u8]) -> Result<(u64, Vec<Checked<'a>>), StoreError> {
    let seq = header::parse(FileKind::Snapshot, bytes).map_err(|e| {
        let why = match e {
            HeaderError::Truncated => "truncated header".to_owned(),
            HeaderError::BadMagic => "bad magic".to_owned(),
            HeaderError::BadChecksum => "header checksum mismatch".to_owned(),
            HeaderError::Version(v) => format!(
                "snapshot version {v} is not read by this build (it reads {})",
                FileKind::Snapshot.version()
            ),
        };
        corrupt(what, 0, why)
    })?;
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
            check_footer(what, bytes, at, chunks.len())?;
            return Ok((seq, chunks));
        }
        let chunk = check_chunk(what, bytes, at, &mut copy)?;
        at = chunk.at + 16 + chunk.body.len() + pad16(chunk.body.len());
        chunks.push(chunk);
    }
}

/// The `u32` at `at` of a 16-byte tag.
fn word(tag: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([tag[at], tag[at + 1], tag[at + 2], tag[at + 3]])
}

/// Checks the footer at `at`, after `chunks` chunks: its checksum, its count, and that it ends
/// the file.
fn check_footer(what: &Path, bytes: &[u8], at: usize, chunks: usize) -> Result<(), StoreError> {
    let tag = &bytes[at..at + 16];
    if crc32c::crc32c(&tag[..8]) != word(tag, 8) || word(tag, 4) as usize != chunks {
        return Err(corrupt(what, at, "bad footer"));
    }
    if at + 16 != bytes.len() {
        return Err(corrupt(what, at + 16, "bytes after the footer"));
    }
    Ok(())
}

/// Checks the chunk whose header is at `at`: its tag, count, checksum, archive and columns.
fn check_chunk<'a>(
    what: &Path,
    bytes: &'a [u8],
    at: usize,
    copy: &mut AlignedVec<16>,
) -> Result<Checked<'a>, StoreError> {
    let tag = &bytes[at..at + 16];
    if &tag[..4] != CHUNK_TAG {
        return Err(corrupt(what, at, "bad chunk tag"));
    }
    let len = word(tag, 4) as usize;
    let count = word(tag, 8) as usize;
    if count > CHUNK {
        // The writer never puts more in a chunk; a larger count would size tables (and
        // loops) by a number the file's bytes do not back.
        return Err(corrupt(
            what,
            at,
            format!("entry count {count} over {CHUNK}"),
        ));
    }
    let start = at + 16;
    let body = start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(|| corrupt(what, at, "truncated chunk"))?;
    if crc32c::crc32c(body) != word(tag, 12) {
        return Err(corrupt(what, at, "chunk checksum mismatch"));
    }
    let valid = |archived: &ArchivedSnapChunk| {
        columns::walk(archived, count, false, |_, _, _, _, _| {})
            .map_err(|why| corrupt(what, at, why))
    };
    let checked = if body.as_ptr().align_offset(16) == 0 {
        let archived = rkyv::access::<ArchivedSnapChunk, rancor::Error>(body)
            .map_err(|e| corrupt(what, at, format!("invalid archive: {e}")))?;
        valid(archived)?;
        Some(archived)
    } else {
        with_archive(what, at, body, copy, valid)?;
        None
    };
    Ok(Checked {
        at,
        body,
        count,
        checked,
    })
}

#[cfg(test)]
mod tests;
