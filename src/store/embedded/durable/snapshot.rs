//! Snapshots: the live sessions at a cut of the log, as checksummed rkyv archives.
//!
//! ```text
//! header  32 bytes: "SESSNAP1", version u32 = 1, 0 u32, cut sequence u64, CRC32C of 0..24, 0 u32
//! chunk   16 bytes: "CHNK", length u32, entries u32, CRC32C of the archive u32,
//!         then the rkyv archive of up to 4096 entries, zero-padded to 16 bytes
//! footer  16 bytes: "SEND", chunks u32, CRC32C of the footer's first 8 bytes u32, 0 u32
//! ```
//!
//! A snapshot is written to `snap-<seq>.tmp`, synced, renamed to `snap-<seq>.rkyv` and the
//! directory synced; only then are older files removed. Loading checks every checksum and
//! validates every archive (rkyv's `access` with bytecheck) before reading it: bytes from disk
//! are never accessed unchecked.

use std::path::Path;
use std::sync::Arc;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use super::format::{put_cookie, Reader};
use super::fs::Storage;
use crate::error::StoreError;
use crate::record::{CookieRecord, Data, Record};

const MAGIC: &[u8; 8] = b"SESSNAP1";
const HEADER: usize = 32;
const CHUNK_TAG: &[u8; 4] = b"CHNK";
const END_TAG: &[u8; 4] = b"SEND";
/// Entries per chunk.
pub(crate) const CHUNK: usize = 4096;

/// One session in a snapshot.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug)]
pub(crate) struct SnapEntry {
    sid: String,
    /// The cookie in the log's binary form.
    cookie: Vec<u8>,
    deadline: i64,
    data: String,
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
    entries: impl Iterator<Item = (Arc<str>, Record, i64)>,
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
    h[8..12].copy_from_slice(&1u32.to_le_bytes());
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

fn write_tmp(
    storage: &dyn Storage,
    tmp: &Path,
    seq: u64,
    entries: impl Iterator<Item = (Arc<str>, Record, i64)>,
) -> Result<(), StoreError> {
    let mut f = storage.create_file(tmp)?;
    f.write_all(&header(seq))?;

    let mut chunks = 0u32;
    let mut batch: Vec<SnapEntry> = Vec::with_capacity(CHUNK);
    let mut flush = |batch: &mut Vec<SnapEntry>, f: &mut Box<dyn super::fs::NewFile>| {
        if batch.is_empty() {
            return Ok::<(), StoreError>(());
        }
        let bytes = rkyv::to_bytes::<rancor::Error>(&*batch)
            .map_err(|e| StoreError::Corrupt(format!("encoding snapshot: {e}")))?;
        f.write_all(&chunk_header(&bytes, batch.len()))?;
        f.write_all(&bytes)?;
        f.write_all(&[0u8; 16][..pad16(bytes.len())])?;
        chunks += 1;
        batch.clear();
        Ok(())
    };
    for (sid, record, deadline) in entries {
        let mut cookie = Vec::with_capacity(32);
        put_cookie(&mut cookie, &record.cookie);
        batch.push(SnapEntry {
            sid: sid.to_string(),
            cookie,
            deadline,
            data: record.data.as_str().to_owned(),
        });
        if batch.len() == CHUNK {
            flush(&mut batch, &mut f)?;
        }
    }
    flush(&mut batch, &mut f)?;
    f.write_all(&footer(chunks))?;
    f.sync()?;
    Ok(())
}

/// A snapshot file around the given chunk bodies, with valid framing and checksums (entry
/// counts are taken as zero): for the fuzz target of the loader.
pub(crate) fn frame(seq: u64, chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&header(seq));
    for body in chunks {
        out.extend_from_slice(&chunk_header(body, 0));
        out.extend_from_slice(body);
        out.extend_from_slice(&[0u8; 16][..pad16(body.len())]);
    }
    out.extend_from_slice(&footer(chunks.len() as u32));
    out
}

fn corrupt(what: &str, offset: usize, why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("snapshot {what} at offset {offset}: {why}"))
}

/// The cut a snapshot's header names, if the header is valid.
pub(crate) fn header_cut(bytes: &[u8]) -> Option<u64> {
    let h = bytes.get(..HEADER)?;
    let crc = u32::from_le_bytes([h[24], h[25], h[26], h[27]]);
    (&h[..8] == MAGIC && h[8..12] == 1u32.to_le_bytes() && crc32c::crc32c(&h[..24]) == crc)
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
    let mut feed = |start: usize, archived: &rkyv::Archived<Vec<SnapEntry>>| {
        for e in archived.iter() {
            let cookie: CookieRecord = Reader(e.cookie.as_slice())
                .cookie()
                .ok_or_else(|| corrupt(what, start, "invalid cookie"))?;
            let record = Record {
                cookie,
                data: Data::from_trusted(e.data.as_str()),
            };
            each(e.sid.as_str().to_owned(), record, e.deadline.to_native());
        }
        Ok(())
    };
    for c in chunks {
        match c.checked {
            // Validated in place by `check`: not validated again.
            Some(archived) => feed(c.start, archived)?,
            None => with_archive(
                what,
                c.start,
                &bytes[c.start..c.start + c.len],
                &mut copy,
                |archived| feed(c.start, archived),
            )?,
        }
    }
    Ok(seq)
}

/// A chunk `check` found valid.
struct Checked<'a> {
    /// Where its archive starts, and its length.
    start: usize,
    len: usize,
    /// Its entries.
    count: usize,
    /// The archive, when it was validated in place (16-byte aligned bytes, as in a mapped
    /// file); otherwise it was validated on an aligned copy, to be made again to be read.
    checked: Option<&'a rkyv::Archived<Vec<SnapEntry>>>,
}

/// Validates the archive `body` (rkyv's `access` with bytecheck) and runs `f` on it. The
/// archive is read in place when `body` is 16-byte aligned, as it is in a mapped file (every
/// archive starts at a multiple of 16 from the file's start); otherwise on an aligned copy.
fn with_archive<R>(
    what: &str,
    at: usize,
    body: &[u8],
    copy: &mut AlignedVec<16>,
    f: impl FnOnce(&rkyv::Archived<Vec<SnapEntry>>) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let aligned: &[u8] = if body.as_ptr().align_offset(16) == 0 {
        body
    } else {
        copy.clear();
        copy.extend_from_slice(body);
        copy
    };
    let archived = rkyv::access::<rkyv::Archived<Vec<SnapEntry>>, rancor::Error>(aligned)
        .map_err(|e| corrupt(what, at, format!("invalid archive: {e}")))?;
    f(archived)
}

/// Checks the header, every chunk (checksum, archive, cookies) and the footer; returns the
/// cut and the chunks.
fn check<'a>(what: &str, bytes: &'a [u8]) -> Result<(u64, Vec<Checked<'a>>), StoreError> {
    let h = bytes
        .get(..HEADER)
        .ok_or_else(|| corrupt(what, 0, "truncated header"))?;
    if &h[..8] != MAGIC || h[8..12] != 1u32.to_le_bytes() {
        return Err(corrupt(what, 0, "bad magic or version"));
    }
    let crc = u32::from_le_bytes([h[24], h[25], h[26], h[27]]);
    if crc32c::crc32c(&h[..24]) != crc {
        return Err(corrupt(what, 0, "header checksum mismatch"));
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
        let crc = u32::from_le_bytes([tag[12], tag[13], tag[14], tag[15]]);
        let start = at + 16;
        let body = start
            .checked_add(len)
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| corrupt(what, at, "truncated chunk"))?;
        if crc32c::crc32c(body) != crc {
            return Err(corrupt(what, at, "chunk checksum mismatch"));
        }
        let valid = |archived: &rkyv::Archived<Vec<SnapEntry>>| {
            if archived.len() != count {
                return Err(corrupt(what, at, "entry count mismatch"));
            }
            for e in archived.iter() {
                let mut r = Reader(e.cookie.as_slice());
                if r.cookie().is_none() || !r.0.is_empty() {
                    return Err(corrupt(what, at, "invalid cookie"));
                }
            }
            Ok(())
        };
        let checked = if body.as_ptr().align_offset(16) == 0 {
            let archived = rkyv::access::<rkyv::Archived<Vec<SnapEntry>>, rancor::Error>(body)
                .map_err(|e| corrupt(what, at, format!("invalid archive: {e}")))?;
            valid(archived)?;
            Some(archived)
        } else {
            with_archive(what, at, body, &mut copy, valid)?;
            None
        };
        chunks.push(Checked {
            start,
            len,
            count,
            checked,
        });
        at = start + len + pad16(len);
    }
    Ok((seq, chunks))
}
