//! Reading what is on disk, changing nothing: the newest valid snapshot, then the log after
//! its cut up to the first problem (which is reported), and under salvage every intact record
//! after it.

use std::path::Path;

use super::replay::Item;
use super::report::RecoveryReport;
use crate::error::{Corrupted, Corruption, OpenError};
use crate::store::embedded::durable::format::header::{self, FileKind, HeaderError};
use crate::store::embedded::durable::format::{self, Decoded, Op};
use crate::store::embedded::durable::snapshot;
use crate::store::embedded::durable::storage::Storage;
use crate::store::embedded::durable::wal::{self, SEGMENT_HEADER};

/// Log records read before the number of sessions in the log is estimated from their mean
/// length (logs of one segment are not estimated: their tables grow as they go).
const ESTIMATE_AFTER: u64 = 4096;

/// What reading the snapshot and the log found, besides the state fed on.
pub(super) struct Scan {
    pub(super) report: RecoveryReport,
    /// Every segment's first sequence number, sorted.
    pub(super) segments: Vec<u64>,
    /// The index in `segments` of the first one read.
    pub(super) from: usize,
    /// The segments read (`segments[from..]`).
    pub(super) live: Vec<u64>,
    /// The sequence number of the first record not found.
    pub(super) expected: u64,
    /// Where the log ends: the segment and the offset after its last good record.
    pub(super) tail: Option<(u64, usize)>,
    /// The segments read whole and good.
    pub(super) kept: Vec<u64>,
    /// The first problem met.
    pub(super) problem: Option<Problem>,
}

/// The first problem met in the log.
pub(super) struct Problem {
    /// The segment's index in `live`.
    pub(super) index: usize,
    /// The segment to cut, if it is cut from `offset` on (`None`: it is cut whole).
    pub(super) segment: Option<u64>,
    /// The offset to cut at.
    pub(super) offset: usize,
    /// What is wrong.
    pub(super) reason: String,
    /// What is wrong, naming the segment and the offset.
    pub(super) why: String,
}

/// Reads the newest valid snapshot and the log after it, feeding their ops to `sink`, up to
/// the first problem in the log (which it reports, changing nothing on disk).
pub(super) fn scan(
    storage: &dyn Storage,
    dir: &Path,
    names: &[String],
    salvage: bool,
    sink: &mut dyn FnMut(Item),
) -> Result<Scan, OpenError> {
    let mut report = RecoveryReport::default();
    let base = load_snapshot(storage, dir, names, salvage, sink, &mut report)?;
    let mut segments: Vec<u64> = names
        .iter()
        .filter_map(|n| wal::parse_segment_name(n))
        .collect();
    segments.sort_unstable();
    // The segments that can hold records after `base`: from the last one starting at or
    // before `base + 1`.
    let from = segments.iter().rposition(|&s| s <= base + 1).unwrap_or(0);
    let live: Vec<u64> = segments[from..].to_vec();
    let mut log = Log {
        sink,
        report,
        expected: base + 1,
        fed_bytes: 0,
        // The log's sessions are estimated once, from the records fed so far and the bytes
        // left.
        estimated: live.len() < 2,
    };
    let (tail, kept, problem) = log.read(storage, dir, &live)?;
    if salvage {
        if let Some(p) = &problem {
            log.resync_after(storage, dir, &live, p)?;
        }
    }
    log.report.replayed_bytes = log.fed_bytes as u64;
    Ok(Scan {
        report: log.report,
        segments,
        from,
        live,
        expected: log.expected,
        tail,
        kept,
        problem,
    })
}

/// Feeds the newest valid snapshot to `sink`, noting the ones skipped; returns its cut (0
/// with none). Without one, unless salvage, the log must reach back to the first record.
fn load_snapshot(
    storage: &dyn Storage,
    dir: &Path,
    names: &[String],
    salvage: bool,
    sink: &mut dyn FnMut(Item),
    report: &mut RecoveryReport,
) -> Result<u64, OpenError> {
    let mut snaps: Vec<u64> = names
        .iter()
        .filter_map(|n| snapshot::parse_snapshot_name(n))
        .collect();
    snaps.sort_unstable_by(|a, b| b.cmp(a));
    for seq in &snaps {
        let name = snapshot::snapshot_name(*seq);
        let path = dir.join(&name);
        let bytes = storage.read(&path).map_err(OpenError::io_at(&path))?;
        // The cut is checked first: nothing is fed from a snapshot that is not used.
        if let Some(cut) = snapshot::header_cut(bytes.bytes()).filter(|c| c != seq) {
            report
                .skipped_snapshots
                .push(format!("{name}: names cut {seq} but holds cut {cut}"));
            continue;
        }
        let sink = std::cell::RefCell::new(&mut *sink);
        let loaded = snapshot::load_counted(
            &path,
            bytes.bytes(),
            |sessions| {
                (sink.borrow_mut())(Item::Expect {
                    sessions,
                    exact: true,
                })
            },
            |sid, record, deadline| {
                (sink.borrow_mut())(Item::Op(Op::Set {
                    sid,
                    record,
                    deadline,
                }))
            },
        );
        match loaded {
            Ok(cut) => {
                report.snapshot = Some(cut);
                return Ok(cut);
            }
            Err(e) => report.skipped_snapshots.push(e.to_string()),
        }
    }
    let earliest = names
        .iter()
        .filter_map(|n| wal::parse_segment_name(n))
        .min();
    if !snaps.is_empty() && !salvage && earliest != Some(1) {
        let why = format!(
            "no valid snapshot, and the log does not start at the first record: {}",
            report.skipped_snapshots.join("; ")
        );
        return Err(OpenError::Corrupt(
            Corruption::new(Corrupted::Log, why).at(dir, None),
        ));
    }
    Ok(0)
}

/// The log being read: what it fed so far.
struct Log<'s> {
    sink: &'s mut dyn FnMut(Item),
    report: RecoveryReport,
    /// The sequence number of the next record to feed.
    expected: u64,
    /// Bytes of the records fed.
    fed_bytes: usize,
    /// Whether the log's sessions were estimated.
    estimated: bool,
}

/// Where the log ends, the segments read whole and good, and the first problem.
type Read = (Option<(u64, usize)>, Vec<u64>, Option<Problem>);

/// A problem in a segment: the segment to cut from the offset (`None`: whole), the offset,
/// and what is wrong.
type Damage = (Option<u64>, usize, String);

impl Log<'_> {
    /// Reads the segments `live` in order, feeding every record from `expected` on, up to the
    /// first problem.
    fn read(&mut self, storage: &dyn Storage, dir: &Path, live: &[u64]) -> Result<Read, OpenError> {
        let mut tail = None;
        let mut kept = Vec::new();
        for (i, &first) in live.iter().enumerate() {
            let name = wal::segment_name(first);
            let path = dir.join(&name);
            let bytes = storage.read(&path).map_err(OpenError::io_at(&path))?;
            let b = bytes.bytes();
            let at = match self.segment(&path, first, b, live.len() - i)? {
                Ok(at) => at,
                Err((segment, offset, reason)) => {
                    let why = format!("log segment {name} at offset {offset}: {reason}");
                    let index = i;
                    return Ok((
                        tail,
                        kept,
                        Some(Problem {
                            index,
                            segment,
                            offset,
                            reason,
                            why,
                        }),
                    ));
                }
            };
            kept.push(first);
            tail = Some((first, at));
        }
        Ok((tail, kept, None))
    }

    /// Reads one segment, `segments_left` of the log's counting it: its header, then its
    /// records. Returns the offset after its last record, or the problem met (the segment to
    /// cut from the offset, if not whole, and what is wrong); a segment of another format
    /// version is an error.
    fn segment(
        &mut self,
        path: &Path,
        first: u64,
        b: &[u8],
        segments_left: usize,
    ) -> Result<Result<usize, Damage>, OpenError> {
        let header = header::parse(FileKind::Segment, b);
        if let Err(HeaderError::Version(v)) = header {
            return Err(OpenError::Version {
                file: path.to_owned(),
                version: v,
                supported: FileKind::Segment.version(),
            });
        }
        if header != Ok(first) {
            return Ok(Err((None, 0, "invalid segment header".into())));
        }
        if first > self.expected {
            let why = format!("records {}..{first} are missing", self.expected);
            return Ok(Err((None, 0, why)));
        }
        Ok(self
            .records(b, segments_left)
            .map_err(|(at, why)| (Some(first), at, why.into())))
    }

    /// Feeds the records of a segment's bytes `b` from its header on; returns the offset after
    /// the last one, or where the first problem is and what it is.
    fn records(&mut self, b: &[u8], segments_left: usize) -> Result<usize, (usize, &'static str)> {
        let mut at = SEGMENT_HEADER;
        loop {
            match format::decode(&b[at..]) {
                Decoded::Record { seq, op, len, .. } if seq < self.expected => {
                    drop(op);
                    at += len;
                }
                Decoded::Record { seq, op, len, .. } if seq == self.expected => {
                    if !self.estimated && self.report.replayed == ESTIMATE_AFTER {
                        self.estimate(b.len(), at, segments_left);
                    }
                    self.fed_bytes += len;
                    (self.sink)(Item::Op(op));
                    self.report.replayed += 1;
                    self.expected += 1;
                    at += len;
                }
                Decoded::Record { .. } => return Err((at, "sequence gap")),
                // Zeros where a record should be, with data after them: a hole (pages
                // written back out of order), not the end; what follows must not be ignored
                // now and overwritten later.
                Decoded::End if used_end(b) > at => return Err((at, "zeros before later data")),
                Decoded::End => return Ok(at),
                Decoded::Bad(why) => return Err((at, why)),
            }
        }
    }

    /// Tells the sink how many sessions the rest of the log holds, estimated from the mean
    /// length of the records fed so far, at offset `at` of a segment of `len` bytes with
    /// `segments_left` segments to read counting it.
    fn estimate(&mut self, len: usize, at: usize, segments_left: usize) {
        self.estimated = true;
        // Segments are all about the size of this one; the last may be partly written, so
        // this errs high (by the index slots of at most one segment).
        let left = segments_left.saturating_mul(len).saturating_sub(at);
        let sessions = left / (self.fed_bytes / ESTIMATE_AFTER as usize).max(1);
        (self.sink)(Item::Expect {
            sessions,
            exact: false,
        });
    }

    /// Salvage: resynchronises past `problem`, feeding every intact record after it, in log
    /// order.
    fn resync_after(
        &mut self,
        storage: &dyn Storage,
        dir: &Path,
        live: &[u64],
        problem: &Problem,
    ) -> Result<(), OpenError> {
        let mut last = self.expected - 1;
        for (k, &first) in live.iter().enumerate().skip(problem.index) {
            let path = dir.join(wal::segment_name(first));
            let bytes = storage.read(&path).map_err(OpenError::io_at(&path))?;
            let from = if k == problem.index {
                problem.offset.max(SEGMENT_HEADER)
            } else {
                SEGMENT_HEADER
            };
            let skipped = resync(bytes.bytes(), from, &mut last, |op, len| {
                self.fed_bytes += len;
                self.report.replayed += 1;
                self.report.resynced += 1;
                (self.sink)(Item::Op(op));
            });
            self.report.skipped_bytes += skipped;
        }
        self.expected = last + 1;
        Ok(())
    }
}

/// The offset after the last non-zero byte of `b` (a record starts with a non-zero header,
/// so none starts at or after it).
pub(crate) fn used_end(b: &[u8]) -> usize {
    b.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1)
}

/// Whether a valid record at or after `from` says that record `seq` had been synced.
pub(super) fn vouches_for(b: &[u8], from: usize, seq: u64) -> bool {
    (from..used_end(b))
        .any(|p| matches!(format::decode(&b[p..]), Decoded::Record { synced, .. } if synced >= seq))
}

/// Resynchronises: walks `b` from `from`, at each position either a whole valid record
/// (checksum over its header and payload) or one byte skipped, and hands `keep` each record
/// whose sequence number is after `*last` (in log order, so `*last` only grows); a valid
/// record at or before `*last` (stale) is skipped whole. Returns the bytes skipped.
pub(super) fn resync(
    b: &[u8],
    from: usize,
    last: &mut u64,
    mut keep: impl FnMut(Op, usize),
) -> u64 {
    let end = used_end(b);
    let mut skipped = 0u64;
    let mut p = from;
    while p < end {
        match format::decode(&b[p..]) {
            Decoded::Record { seq, op, len, .. } if seq > *last => {
                keep(op, len);
                *last = seq;
                p += len;
            }
            Decoded::Record { len, .. } => {
                skipped += len as u64;
                p += len;
            }
            Decoded::End | Decoded::Bad(_) => {
                skipped += 1;
                p += 1;
            }
        }
    }
    skipped
}
