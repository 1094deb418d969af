//! Recovery: the newest valid snapshot, then every log record after its cut.
//!
//! - Leftover temporary files (`*.tmp`) of an interrupted snapshot are removed, and so is a
//!   prepared log segment never put in use (`wal-next.prep`: it holds no record).
//! - Snapshots are tried newest first; a bad one falls back to the previous one (two exist
//!   only after a crash during a snapshot). A bad sole snapshot is an error naming it, unless
//!   salvage, since the log before its cut is gone.
//! - Log records are replayed in sequence order; sequence numbers must be contiguous.
//! - A torn tail (a partial or garbled last record with nothing valid after it, in the last
//!   segment) is cut off: its bytes are zeroed and the segment synced.
//! - A bad record followed by good ones is corruption: opening fails with the file and offset,
//!   unless salvage is on, which keeps the good prefix and moves the bad segment (and any
//!   after it) aside as `*.corrupt`.

use std::path::Path;

use super::format::{self, Decoded, Op};
use super::fs::Storage;
use super::snapshot;
use super::wal::{self, Resume, SEGMENT_HEADER};
use crate::error::StoreError;

/// What recovery found, besides the state fed to the caller.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// The snapshot used, by cut sequence number.
    pub(crate) snapshot: Option<u64>,
    /// Snapshots skipped as invalid, with the reason.
    pub(crate) bad_snapshots: Vec<String>,
    /// Log records replayed.
    pub(crate) replayed: u64,
    /// Bytes of torn tail cut off.
    pub(crate) torn_bytes: usize,
    /// Segments moved aside by salvage.
    pub(crate) salvaged: Vec<String>,
}

/// Where recovery feeds the state it finds: a store of shards. Ops for one id always go to
/// the same shard, in log order; [`Op::Clear`] goes to every shard, in log order with the
/// ops around it. Different shards may be fed from different threads.
pub(crate) trait Replay: Sync {
    /// The number of shards.
    fn shards(&self) -> usize;
    /// The shard of `sid`.
    fn shard_of(&self, sid: &str) -> usize;
    /// Applies `op` to shard `shard` ([`Op::Clear`]: clears that shard).
    fn apply(&self, shard: usize, op: &Op);
    /// About `sessions` more sessions are coming to shard `shard`: exactly (from a snapshot)
    /// or as an estimate (from the log's length).
    fn expect(&self, shard: usize, sessions: usize, exact: bool);
}

/// What scanning feeds on: an op, or how many sessions are coming (in all shards).
pub(crate) enum Item {
    Op(Op),
    Expect { sessions: usize, exact: bool },
}

/// Feeds one item to `target` on this thread.
#[cfg(sessile_loom)]
fn feed(target: &impl Replay, item: &Item) {
    match item {
        Item::Op(op) => match op.sid() {
            Some(sid) => target.apply(target.shard_of(sid), op),
            None => (0..target.shards()).for_each(|s| target.apply(s, op)),
        },
        Item::Expect { sessions, exact } => {
            let n = target.shards();
            let each = per_shard(*sessions, n, *exact);
            (0..n).for_each(|s| target.expect(s, each, *exact));
        }
    }
}

/// The share of `sessions` to expect in each of `shards` shards: the mean, plus a margin for
/// an estimate's index (ids spread over shards at random).
fn per_shard(sessions: usize, shards: usize, exact: bool) -> usize {
    let mean = sessions.div_ceil(shards.max(1));
    if exact {
        mean
    } else {
        mean + mean / 16
    }
}

/// Recovers the directory: feeds the state to `target` and says where the log continues.
pub(crate) fn recover(
    storage: &dyn Storage,
    dir: &Path,
    salvage: bool,
    target: &impl Replay,
) -> Result<(Resume, Report), StoreError> {
    let names = storage.list(dir)?;
    let mut removed_tmp = false;
    for n in names
        .iter()
        .filter(|n| n.ends_with(".tmp") || *n == wal::NEXT_SEGMENT)
    {
        storage.remove(&dir.join(n))?;
        removed_tmp = true;
    }
    if removed_tmp {
        storage.sync_dir(dir)?;
    }

    let Scan {
        mut report,
        segments,
        from,
        live,
        expected,
        mut tail,
        mut kept,
        problem,
    } = scan_pipelined(storage, dir, &names, salvage, target)?;

    if let Some((i, cut_segment, off, why)) = problem {
        // Is the missing record `expected` vouched for as synced by any later valid record?
        // Then it was durable once and is now damaged: corruption. Otherwise it was never
        // known durable: a torn tail, and everything from it on is dropped.
        let mut vouched = false;
        for (k, &first) in live.iter().enumerate().skip(i) {
            let bytes = storage.read(&dir.join(wal::segment_name(first)))?;
            let from = if k == i && cut_segment.is_some() {
                off + 1
            } else {
                SEGMENT_HEADER
            };
            if vouches_for(bytes.bytes(), from, expected) {
                vouched = true;
                break;
            }
        }
        if vouched {
            if !salvage {
                return Err(StoreError::Corrupt(format!(
                    "{why}, and later records say it was synced: the log is corrupt \
                     (open with salvage to keep the records before it)"
                )));
            }
            set_aside(storage, dir, &live[i..], &mut report)?;
            tail = None;
        } else {
            let later = if cut_segment.is_some() { i + 1 } else { i };
            for &first in &live[later..] {
                storage.remove(&dir.join(wal::segment_name(first)))?;
            }
            if let Some(first) = cut_segment {
                let path = dir.join(wal::segment_name(first));
                let end = {
                    let bytes = storage.read(&path)?;
                    bytes
                        .bytes()
                        .iter()
                        .rposition(|&x| x != 0)
                        .map_or(off, |p| p + 1)
                };
                if end > off {
                    let map = storage.open_segment(&path)?;
                    map.write(off, &vec![0u8; end - off])?;
                    map.sync(off, end)?;
                    report.torn_bytes = end - off;
                }
                kept.push(first);
                tail = Some((first, off));
            }
            storage.sync_dir(dir)?;
        }
    }

    // Segments before `from` are fully covered by the snapshot; keep them listed so they are
    // removed with a later snapshot.
    let mut all = segments[..from].to_vec();
    all.extend(kept);
    if tail.is_none() {
        all.retain(|s| *s < expected);
    }
    Ok((
        Resume {
            seq: expected - 1,
            tail,
            segments: all,
        },
        report,
    ))
}

/// Whether a valid record at or after `from` says that record `seq` had been synced.
fn vouches_for(b: &[u8], from: usize, seq: u64) -> bool {
    // A record starts with a non-zero header, so none starts after the last non-zero byte.
    let last = b.iter().rposition(|&x| x != 0).unwrap_or(0);
    (from..=last)
        .any(|p| matches!(format::decode(&b[p..]), Decoded::Record { synced, .. } if synced >= seq))
}

fn set_aside(
    storage: &dyn Storage,
    dir: &Path,
    segments: &[u64],
    report: &mut Report,
) -> Result<(), StoreError> {
    for &s in segments {
        let name = wal::segment_name(s);
        let aside = format!("{name}.corrupt");
        storage.rename(&dir.join(&name), &dir.join(&aside))?;
        report.salvaged.push(aside);
    }
    storage.sync_dir(dir)?;
    Ok(())
}

/// Items sent from the reading thread to the applying one per batch.
#[cfg(not(sessile_loom))]
const BATCH: usize = 1024;

/// Log records read before the number of sessions in the log is estimated from their mean
/// length (logs of one segment are not estimated: their tables grow as they go).
const ESTIMATE_AFTER: u64 = 4096;

/// What reading the snapshot and the log found, besides the state fed on.
struct Scan {
    report: Report,
    /// Every segment's first sequence number, sorted.
    segments: Vec<u64>,
    /// The index in `segments` of the first one read.
    from: usize,
    /// The segments read (`segments[from..]`).
    live: Vec<u64>,
    /// The sequence number of the first record not found.
    expected: u64,
    /// Where the log ends: the segment and the offset after its last good record.
    tail: Option<(u64, usize)>,
    /// The segments read whole and good.
    kept: Vec<u64>,
    /// The first problem met: (index in `live`, segment to cut, offset to cut at, reason).
    problem: Option<(usize, Option<u64>, usize, String)>,
}

/// Appliers: ops are fed to the store from this many threads, each owning the shards whose
/// index is its number modulo `LANES`.
#[cfg(not(sessile_loom))]
const LANES: usize = 2;

/// How many threads apply the ops: up to [`LANES`], leaving a CPU to the reading thread
/// (on two CPUs a second applier only competes with the reader; measured in BENCHMARKS.md).
/// Tests always use [`LANES`], so the parallel path is what they check.
#[cfg(not(sessile_loom))]
fn lanes() -> usize {
    if cfg!(test) {
        return LANES;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().saturating_sub(1))
        .clamp(1, LANES)
}

/// Shard number of an item meant for every shard of a lane (`Clear`, `Expect`).
#[cfg(not(sessile_loom))]
const ALL: u32 = u32::MAX;

/// A batch of items for one lane, each with its shard (or [`ALL`]).
#[cfg(not(sessile_loom))]
type Batch = Vec<(u32, Item)>;

/// Runs [`scan`] on a thread of its own, which reads, checks and decodes the records and
/// routes each op to its shard's lane; each lane's ops go in batches over a bounded channel
/// to a thread applying them in order (this thread for the first lane). Ops for one id
/// always reach the same shard, hence the same lane, in log order; `Clear` and `Expect` go
/// to every lane at their place in the log, and each lane applies them to its own shards,
/// so every shard sees exactly the sequence a single applier would give it. Applied batches
/// go back to the reading thread, which drops their ops (memory is freed by the thread that
/// allocated it) and reuses the batch.
#[cfg(not(sessile_loom))]
fn scan_pipelined(
    storage: &dyn Storage,
    dir: &Path,
    names: &[String],
    salvage: bool,
    target: &impl Replay,
) -> Result<Scan, StoreError> {
    use std::sync::mpsc;

    let shards = target.shards();
    let lanes = lanes().min(shards).max(1);
    let (back_tx, back_rx) = mpsc::channel::<Batch>();
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..lanes).map(|_| mpsc::sync_channel::<Batch>(8)).unzip();
    // Applies the batches of lane `lane`, in order, and hands them back.
    let run_lane = |lane: usize, rx: mpsc::Receiver<Batch>, back: mpsc::Sender<Batch>| {
        let mine = || (lane..shards).step_by(lanes);
        for batch in rx {
            for (shard, item) in &batch {
                match (*shard, item) {
                    (ALL, Item::Op(op)) => mine().for_each(|s| target.apply(s, op)),
                    (ALL, Item::Expect { sessions, exact }) => {
                        let each = per_shard(*sessions, shards, *exact);
                        mine().for_each(|s| target.expect(s, each, *exact));
                    }
                    (s, Item::Op(op)) => target.apply(s as usize, op),
                    (_, Item::Expect { .. }) => {}
                }
            }
            // The reading thread may be gone (it ended): the batch is then dropped here.
            let _ = back.send(batch);
        }
    };
    std::thread::scope(|s| {
        let reader = std::thread::Builder::new()
            .name("sessile-recovery".into())
            .spawn_scoped(s, move || {
                let fresh = || match back_rx.try_recv() {
                    Ok(mut b) => {
                        b.clear();
                        b
                    }
                    Err(_) => Vec::with_capacity(BATCH),
                };
                let mut batches: Vec<Batch> = (0..lanes).map(|_| fresh()).collect();
                let push = |lane: usize, shard: u32, item: Item, batches: &mut [Batch]| {
                    let Some(b) = batches.get_mut(lane) else {
                        return;
                    };
                    b.push((shard, item));
                    if b.len() == BATCH {
                        let full = std::mem::replace(b, fresh());
                        // The appliers live until this thread ends.
                        let _ = txs[lane].send(full);
                    }
                };
                let scanned = scan(storage, dir, names, salvage, &mut |item| {
                    let shard = match &item {
                        Item::Op(op) => op.sid().map(|sid| target.shard_of(sid)),
                        Item::Expect { .. } => None,
                    };
                    match (shard, item) {
                        (Some(s), item) => push(s % lanes, s as u32, item, &mut batches),
                        (None, Item::Op(op)) => {
                            for lane in 0..lanes {
                                push(lane, ALL, Item::Op(op.clone()), &mut batches);
                            }
                        }
                        (None, Item::Expect { sessions, exact }) => {
                            for lane in 0..lanes {
                                push(lane, ALL, Item::Expect { sessions, exact }, &mut batches);
                            }
                        }
                    }
                });
                for (tx, b) in txs.iter().zip(batches) {
                    if !b.is_empty() {
                        let _ = tx.send(b);
                    }
                }
                drop(txs);
                scanned
            })?;
        let mut rxs = rxs.into_iter();
        let first = rxs.next();
        let mut appliers = Vec::new();
        for (i, rx) in rxs.enumerate() {
            let back = back_tx.clone();
            appliers.push(
                std::thread::Builder::new()
                    .name("sessile-replay".into())
                    .spawn_scoped(s, move || run_lane(i + 1, rx, back))?,
            );
        }
        if let Some(rx) = first {
            run_lane(0, rx, back_tx);
        }
        for a in appliers {
            if let Err(panic) = a.join() {
                std::panic::resume_unwind(panic);
            }
        }
        match reader.join() {
            Ok(scanned) => scanned,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Under loom: the same, on this thread.
#[cfg(sessile_loom)]
fn scan_pipelined(
    storage: &dyn Storage,
    dir: &Path,
    names: &[String],
    salvage: bool,
    target: &impl Replay,
) -> Result<Scan, StoreError> {
    scan(storage, dir, names, salvage, &mut |item| {
        feed(target, &item)
    })
}

/// Reads the newest valid snapshot and the log after it, feeding their ops to `sink`, up to
/// the first problem in the log (which it reports, changing nothing on disk).
fn scan(
    storage: &dyn Storage,
    dir: &Path,
    names: &[String],
    salvage: bool,
    sink: &mut dyn FnMut(Item),
) -> Result<Scan, StoreError> {
    let mut report = Report::default();
    let mut snaps: Vec<u64> = names
        .iter()
        .filter_map(|n| snapshot::parse_snapshot_name(n))
        .collect();
    snaps.sort_unstable_by(|a, b| b.cmp(a));
    let mut base = 0u64;
    for seq in &snaps {
        let name = snapshot::snapshot_name(*seq);
        let bytes = storage.read(&dir.join(&name))?;
        // The cut is checked first: nothing is fed from a snapshot that is not used.
        if let Some(cut) = snapshot::header_cut(bytes.bytes()).filter(|c| c != seq) {
            report
                .bad_snapshots
                .push(format!("{name}: names cut {seq} but holds cut {cut}"));
            continue;
        }
        let sink = std::cell::RefCell::new(&mut *sink);
        let loaded = snapshot::load_counted(
            &name,
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
                base = cut;
                report.snapshot = Some(cut);
                break;
            }
            Err(e) => report.bad_snapshots.push(e.to_string()),
        }
    }
    if report.snapshot.is_none() && !snaps.is_empty() && !salvage {
        // Without a snapshot the log must reach back to the first record.
        let earliest = names
            .iter()
            .filter_map(|n| wal::parse_segment_name(n))
            .min();
        if earliest != Some(1) {
            return Err(StoreError::Corrupt(format!(
                "no valid snapshot in {} and the log does not start at the first record: {}",
                dir.display(),
                report.bad_snapshots.join("; ")
            )));
        }
    }

    let mut segments: Vec<u64> = names
        .iter()
        .filter_map(|n| wal::parse_segment_name(n))
        .collect();
    segments.sort_unstable();
    // The segments that can hold records after `base`: from the last one starting at or
    // before `base + 1`.
    let from = segments.iter().rposition(|&s| s <= base + 1).unwrap_or(0);
    let live: Vec<u64> = segments[from..].to_vec();

    let mut expected = base + 1;
    // Where the log ends: the segment and the offset after its last good record.
    let mut tail: Option<(u64, usize)> = None;
    let mut kept: Vec<u64> = Vec::new();
    // The first problem met: (index in `live`, segment to cut, offset to cut at, reason).
    let mut problem: Option<(usize, Option<u64>, usize, String)> = None;
    // The log's sessions are estimated once, from the records fed so far and the bytes left.
    let mut estimated = live.len() < 2;
    let mut fed_bytes = 0usize;
    for (i, &first) in live.iter().enumerate() {
        let name = wal::segment_name(first);
        let bytes = storage.read(&dir.join(&name))?;
        let b = bytes.bytes();
        if let Some(v) = wal::foreign_version(b) {
            return Err(StoreError::Corrupt(format!(
                "log segment {name} has format version {v}; this version of sessile reads \
                 version {}",
                wal::SEGMENT_VERSION
            )));
        }
        if wal::check_segment_header(b) != Some(first) {
            let why = format!("log segment {name} at offset 0: invalid segment header");
            problem = Some((i, None, 0, why));
            break;
        }
        if first > expected {
            let why =
                format!("log segment {name} at offset 0: records {expected}..{first} are missing");
            problem = Some((i, None, 0, why));
            break;
        }
        let mut at = SEGMENT_HEADER;
        loop {
            match format::decode(&b[at..]) {
                Decoded::Record { seq, op, len, .. } if seq < expected => {
                    drop(op);
                    at += len;
                }
                Decoded::Record { seq, op, len, .. } if seq == expected => {
                    if !estimated && report.replayed == ESTIMATE_AFTER {
                        estimated = true;
                        // Segments are all about the size of this one; the last may be
                        // partly written, so this errs high (by the index slots of at most
                        // one segment).
                        let left = (live.len() - i).saturating_mul(b.len()).saturating_sub(at);
                        let sessions = left / (fed_bytes / ESTIMATE_AFTER as usize).max(1);
                        sink(Item::Expect {
                            sessions,
                            exact: false,
                        });
                    }
                    fed_bytes += len;
                    sink(Item::Op(op));
                    report.replayed += 1;
                    expected += 1;
                    at += len;
                }
                Decoded::Record { .. } => {
                    problem = Some((
                        i,
                        Some(first),
                        at,
                        format!("log segment {name} at offset {at}: sequence gap"),
                    ));
                    break;
                }
                Decoded::End => break,
                Decoded::Bad(why) => {
                    problem = Some((
                        i,
                        Some(first),
                        at,
                        format!("log segment {name} at offset {at}: {why}"),
                    ));
                    break;
                }
            }
        }
        if problem.is_some() {
            break;
        }
        kept.push(first);
        tail = Some((first, at));
    }
    Ok(Scan {
        report,
        segments,
        from,
        live,
        expected,
        tail,
        kept,
        problem,
    })
}
