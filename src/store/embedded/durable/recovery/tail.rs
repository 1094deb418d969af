//! What recovery does about the first problem in the log: a torn tail (a bad record, or a
//! gap, that no later valid record vouches for as synced) is cut off, its bytes first kept
//! aside; corruption (a bad record later ones vouch for) fails the open, or under salvage
//! sets the segments from it aside. See `docs/FORMAT.md`, section "Recovery".

use std::path::Path;

use super::report::RecoveryReport;
use super::scan::{resync, used_end, vouches_for, Problem, Scan};
use crate::error::{Corrupted, Corruption, OpenError};
use crate::store::embedded::durable::storage::Storage;
use crate::store::embedded::durable::wal::{self, SEGMENT_HEADER};

/// Deals with `problem`, the first one [`scan`](super::scan::scan) met: is the missing
/// record `scanned.expected` vouched for as synced by any later valid record? Then it was
/// durable once and is now damaged: corruption. Otherwise it was never known durable: a torn
/// tail, and everything from it on is cut (and kept aside). Salvage that kept records after
/// it (resynchronised) sets the segments aside.
pub(super) fn settle(
    storage: &dyn Storage,
    dir: &Path,
    names: &[String],
    salvage: bool,
    scanned: &mut Scan,
    problem: Problem,
) -> Result<(), OpenError> {
    let Problem {
        index: i,
        segment: cut_segment,
        offset: off,
        reason,
        why,
    } = problem;
    let (live, expected) = (&scanned.live, scanned.expected);
    let report = &mut scanned.report;
    report.problem = Some(why.clone());
    let mut vouched = report.resynced > 0;
    for (k, &first) in live.iter().enumerate().skip(i) {
        if vouched {
            break;
        }
        let path = dir.join(wal::segment_name(first));
        let bytes = storage.read(&path).map_err(OpenError::io_at(&path))?;
        let from = if k == i && cut_segment.is_some() {
            off + 1
        } else {
            SEGMENT_HEADER
        };
        vouched = vouches_for(bytes.bytes(), from, expected);
    }
    if vouched {
        if !salvage {
            let why = format!(
                "{reason}, and later records say it was synced: the log is corrupt \
                 (open with salvage to keep the intact records)"
            );
            let file = dir.join(wal::segment_name(live[i]));
            let at = Some(off as u64);
            return Err(OpenError::Corrupt(
                Corruption::new(Corrupted::LogSegment, why).at(file, at),
            ));
        }
        set_aside(storage, dir, &live[i..], report)?;
        scanned.tail = None;
        return Ok(());
    }
    let later = if cut_segment.is_some() { i + 1 } else { i };
    // What is cut: the rest of the bad segment, then every later segment whole.
    let cuts: Vec<(u64, usize)> = cut_segment
        .map(|first| (first, off))
        .into_iter()
        .chain(live[later..].iter().map(|&first| (first, 0)))
        .collect();
    let zero_from = cut_tail(storage, dir, names, &cuts, expected, report)?;
    for &first in &live[later..] {
        let path = dir.join(wal::segment_name(first));
        storage.remove(&path).map_err(OpenError::io_at(&path))?;
    }
    if let Some(first) = cut_segment {
        if let Some(end) = zero_from {
            let path = dir.join(wal::segment_name(first));
            let map = storage
                .open_segment(&path)
                .map_err(OpenError::io_at(&path))?;
            map.write(off, &vec![0u8; end - off])
                .and_then(|()| map.sync(off, end))
                .map_err(OpenError::io_at(&path))?;
        }
        scanned.kept.push(first);
        scanned.tail = Some((first, off));
    }
    storage.sync_dir(dir).map_err(OpenError::io_at(dir))?;
    Ok(())
}

/// A name for a file set aside: `base`, or `base.<n>` if an earlier recovery took it.
fn free_name(names: &[String], base: String) -> String {
    if !names.contains(&base) {
        return base;
    }
    (1..)
        .map(|n| format!("{base}.{n}"))
        .find(|n| !names.contains(n))
        .unwrap_or(base)
}

/// Copies what a torn tail cuts to files of their own before anything is zeroed or removed:
/// for each `(segment, offset)` of `cuts` (offset 0: the whole segment), the bytes from the
/// offset to the last non-zero one go to `wal-<seq>.log.torn-<offset>` (written as `.tmp`,
/// synced, renamed; the directory synced after all). Segments with nothing past their header
/// (a prepared one never written) hold no record and get no file. Counts the bytes and the
/// intact records (after `expected - 1`, in order) in them. Returns where the first cut ends
/// in its segment, if it holds anything to zero.
fn cut_tail(
    storage: &dyn Storage,
    dir: &Path,
    names: &[String],
    cuts: &[(u64, usize)],
    expected: u64,
    report: &mut RecoveryReport,
) -> Result<Option<usize>, OpenError> {
    let mut last = expected - 1;
    let mut first_end = None;
    for (k, &(first, off)) in cuts.iter().enumerate() {
        let name = wal::segment_name(first);
        let path = dir.join(&name);
        let bytes = storage.read(&path).map_err(OpenError::io_at(&path))?;
        let b = bytes.bytes();
        let end = used_end(b);
        let body = if off == 0 { SEGMENT_HEADER } else { off };
        if end <= body {
            continue;
        }
        if k == 0 && off > 0 {
            first_end = Some(end);
        }
        let aside = free_name(names, format!("{name}.torn-{off}"));
        let tmp = dir.join(format!("{aside}.tmp"));
        // Nothing is cut until its bytes are kept: failing here fails the open, and the
        // next one finds the tail as it was.
        let keep = |e: std::io::Error| OpenError::Io {
            path: tmp.clone(),
            source: std::io::Error::new(
                e.kind(),
                format!("keeping the torn tail of {name} aside as {aside}: {e}"),
            ),
        };
        let mut f = storage.create_file(&tmp).map_err(keep)?;
        f.write_all(&b[off..end]).map_err(keep)?;
        f.sync().map_err(keep)?;
        drop(f);
        storage.rename(&tmp, &dir.join(&aside)).map_err(keep)?;
        report.torn_bytes += (end - body) as u64;
        report.torn_intact_records += {
            let mut n = 0;
            resync(b, body, &mut last, |_, _| n += 1);
            n
        };
        report.torn_files.push(dir.join(aside));
    }
    if !report.torn_files.is_empty() {
        storage.sync_dir(dir).map_err(OpenError::io_at(dir))?;
    }
    Ok(first_end)
}

/// Moves `segments` aside as `*.corrupt` (salvage), listing them in the report.
fn set_aside(
    storage: &dyn Storage,
    dir: &Path,
    segments: &[u64],
    report: &mut RecoveryReport,
) -> Result<(), OpenError> {
    for &s in segments {
        let name = wal::segment_name(s);
        let aside = format!("{name}.corrupt");
        let path = dir.join(&name);
        storage
            .rename(&path, &dir.join(&aside))
            .map_err(OpenError::io_at(&path))?;
        report.salvaged.push(dir.join(aside));
    }
    storage.sync_dir(dir).map_err(OpenError::io_at(dir))?;
    Ok(())
}
