//! The columns of a snapshot chunk: up to [`CHUNK`] sessions stored by column, each distinct
//! cookie shape once (the cookie apart from the value of `expires`), integer columns as narrow
//! as their largest value allows.
//!
//! Layout: `docs/FORMAT.md`, section "Snapshots" (the chunk's columns, `Ints`). Reading
//! checks every column ([`walk`]) before any entry is used.

use std::collections::HashMap;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use super::cookie::{put_cookie, Reader};
use crate::record::{CookieRecord, Record};

/// Entries per chunk.
pub(crate) const CHUNK: usize = 4096;

/// A column of unsigned integers, one per entry of its chunk, as narrow as its largest value
/// allows.
#[derive(rkyv::Archive, rkyv::Serialize, Debug)]
pub(crate) enum Ints {
    /// Every entry's value is this one.
    Same(u64),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
}

impl Ints {
    pub(crate) fn of(values: &[u64]) -> Ints {
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
    pub(crate) fn holds(&self, n: usize) -> bool {
        match self {
            ArchivedInts::Same(_) => true,
            ArchivedInts::U8(v) => v.len() == n,
            ArchivedInts::U16(v) => v.len() == n,
            ArchivedInts::U32(v) => v.len() == n,
            ArchivedInts::U64(v) => v.len() == n,
        }
    }

    /// Entry `i`'s value (`None` past the column's end).
    pub(crate) fn get(&self, i: usize) -> Option<u64> {
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
pub(crate) struct Expires {
    /// The entry's index in its chunk.
    pub(crate) at: u32,
    pub(crate) expires: i64,
}

/// Up to [`CHUNK`] sessions of a snapshot, by columns.
#[derive(rkyv::Archive, rkyv::Serialize, Debug)]
pub(crate) struct SnapChunk {
    /// The distinct cookie shapes, in the log's binary cookie form, `expires` (when set) 0.
    pub(crate) shapes: Vec<Vec<u8>>,
    /// Each entry's shape: an index into `shapes`.
    pub(crate) shape_of: Ints,
    /// Each entry's deadline (ms since the epoch): `deadline_base` plus its value, wrapping.
    pub(crate) deadline_base: i64,
    pub(crate) deadlines: Ints,
    /// The entries (in order) whose cookie's `expires` is not the deadline.
    pub(crate) expires: Vec<Expires>,
    /// Each entry's id length and data length, in bytes of `text`.
    pub(crate) sid_lens: Ints,
    pub(crate) data_lens: Ints,
    /// Every entry's id then data, in order.
    pub(crate) text: String,
}

/// The chunk being filled by the writer, by columns.
#[derive(Default)]
pub(crate) struct Batch {
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
    pub(crate) fn len(&self) -> usize {
        self.deadlines.len()
    }

    pub(crate) fn push(&mut self, sid: &str, record: &Record, deadline: i64) {
        let cookie = &record.cookie;
        let shape = match &self.last {
            Some((last, id)) if last.same_shape(cookie) => *id,
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
    pub(crate) fn take(&mut self) -> SnapChunk {
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

/// The chunk's rkyv archive.
pub(crate) fn encode(chunk: &SnapChunk) -> Result<AlignedVec, rancor::Error> {
    rkyv::to_bytes::<rancor::Error>(chunk)
}

/// Checks that every column of `chunk` holds `count` entries, every shape decodes, and the
/// `expires` list is in order on shapes that have `expires`; returns the shapes.
fn shapes(chunk: &ArchivedSnapChunk, count: usize) -> Result<Vec<CookieRecord>, &'static str> {
    let columns = [
        &chunk.shape_of,
        &chunk.deadlines,
        &chunk.sid_lens,
        &chunk.data_lens,
    ];
    if !columns.iter().all(|c| c.holds(count)) {
        return Err("entry count mismatch");
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
        .ok_or("invalid cookie shape")?;
    // Entries with their own `expires`, in order, each on a shape that has one.
    let mut prev = None;
    for e in chunk.expires.iter() {
        let i = e.at.to_native() as usize;
        let shape = chunk
            .shape_of
            .get(i)
            .and_then(|s| shapes.get(usize::try_from(s).ok()?));
        let ok =
            i < count && prev.is_none_or(|p| p < i) && shape.is_some_and(|s| s.expires.is_some());
        if !ok {
            return Err("invalid expires list");
        }
        prev = Some(i);
    }
    Ok(shapes)
}

/// Checks the columns of a chunk (an archive rkyv validated) against its header's
/// entry count `count`. Without `feed`, checks every entry too (lengths, text splits) and
/// feeds none; with `feed` (the entries checked before, by `check` on these very bytes),
/// runs `f` on each entry in turn: its id, its data, its cookie shape, the cookie's
/// `expires` and the deadline.
pub(crate) fn walk(
    chunk: &ArchivedSnapChunk,
    count: usize,
    feed: bool,
    mut f: impl FnMut(&str, &str, &CookieRecord, Option<i64>, i64),
) -> Result<(), &'static str> {
    let bad = |why: &'static str| why;
    let shapes = shapes(chunk, count)?;
    let shape_of = |i: usize| {
        let s = chunk.shape_of.get(i)?;
        shapes.get(usize::try_from(s).ok()?)
    };
    let text = chunk.text.as_str();
    let entry = |i: usize,
                 pos: usize|
     -> Result<(&CookieRecord, &str, &str, usize), &'static str> {
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

/// A chunk archive built from arbitrary bytes without regard to its validity (counts, shape
/// indexes, lengths and shapes all come from the bytes), with the entry count to frame it
/// with: so a fuzzer reaches the checks after rkyv's validation.
#[cfg(any(test, fuzzing))]
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
