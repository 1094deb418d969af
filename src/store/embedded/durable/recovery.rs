//! Recovery: the newest valid snapshot, then every log record after its cut.
//!
//! - Leftover temporary files (`*.tmp`) of an interrupted snapshot are removed, and so is a
//!   prepared log segment never put in use (`wal-next.prep`: it holds no record).
//! - Snapshots are tried newest first; a bad one falls back to the previous one (two exist
//!   only after a crash during a snapshot). A bad sole snapshot is an error naming it, unless
//!   salvage, since the log before its cut is gone.
//! - Log records are replayed in sequence order; sequence numbers must be contiguous.
//! - A torn tail (a bad record, or a gap, that no later valid record vouches for as synced)
//!   is cut off: its bytes are first copied aside (`<segment>.torn-<offset>`), then zeroed
//!   (later segments removed) and the segment synced; the report says how many bytes and how
//!   many intact records were in them.
//! - A bad record followed by good ones that vouch for it is corruption: opening fails with
//!   the file and offset, unless salvage is on, which keeps the good prefix, resynchronises
//!   (the next position where a whole record checks out) to keep every intact record after
//!   it in log order, and moves the bad segment (and any after it) aside as `*.corrupt`.
//! - Field changes (apply ops) are replayed on a parsed working form of the session, encoded
//!   once when another kind of op for it, the end of the log, or the bound of working forms
//!   comes: replay costs what the log holds, not its square.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::format::{self, Decoded, Op};
use super::fs::Storage;
use super::snapshot;
use super::wal::{self, Resume, SEGMENT_HEADER};
use crate::error::StoreError;
use crate::record::{CookieRecord, Data, Parsed, Record};

/// What opening a durable store found on disk and did to recover its sessions, returned by
/// [`EmbeddedStore::recovery_report`](crate::EmbeddedStore::recovery_report). Nothing here
/// is lost silently: a torn tail's bytes are moved aside (see `torn_files`), segments
/// salvage set aside are listed, and a skipped snapshot comes with its reason.
///
/// ```no_run
/// let store = sessile::EmbeddedStore::open("/var/lib/myapp/sessions")?;
/// if let Some(r) = store.recovery_report() {
///     if r.torn_bytes > 0 {
///         eprintln!(
///             "cut a torn tail of {} bytes ({} intact records), kept in {:?}",
///             r.torn_bytes, r.torn_intact_records, r.torn_files
///         );
///     }
///     println!("{} sessions restored in {:?}", r.sessions, r.duration);
/// }
/// # Ok::<(), sessile::StoreError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The snapshot loaded, by the sequence number of its cut (`snap-<cut>.rkyv`).
    pub snapshot: Option<u64>,
    /// Snapshots skipped as invalid, each with the reason (naming the file).
    pub skipped_snapshots: Vec<String>,
    /// Log records replayed after the snapshot (including those kept by salvage).
    pub replayed: u64,
    /// The bytes of those records: the log since the snapshot, which counts towards the next
    /// snapshot (`snapshot_after_bytes`).
    pub replayed_bytes: u64,
    /// The first problem met in the log (file, offset and what), if any.
    pub problem: Option<String>,
    /// Bytes cut off the log as a torn tail (0 when the log ended cleanly).
    pub torn_bytes: u64,
    /// Intact records (valid checksums, sequence numbers after the last one replayed) in the
    /// bytes cut as a torn tail: writes that were in the log but never known to be synced.
    pub torn_intact_records: u64,
    /// The files the torn bytes were moved to, in the store's directory
    /// (`wal-<seq>.log.torn-<offset>`).
    pub torn_files: Vec<PathBuf>,
    /// Segments salvage moved aside (`wal-<seq>.log.corrupt`).
    pub salvaged: Vec<PathBuf>,
    /// Records salvage kept after a bad one, by resynchronising (included in `replayed`).
    pub resynced: u64,
    /// Bytes salvage skipped to resynchronise: the bad records.
    pub skipped_bytes: u64,
    /// Sessions live once recovery was done.
    pub sessions: usize,
    /// Sessions dropped because they expired while the store was closed.
    pub expired: usize,
    /// How long opening took, from the lock to the first request it can serve.
    pub duration: Duration,
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
    /// The data of session `sid` in shard `shard`, expired or not (what an apply op changes),
    /// if the shard holds it.
    fn data(&self, shard: usize, sid: &str) -> Option<Data>;
}

/// What scanning feeds on: an op, or how many sessions are coming (in all shards).
pub(crate) enum Item {
    Op(Op),
    Expect { sessions: usize, exact: bool },
}

/// Feeds one item to `target` on this thread.
#[cfg(sessile_loom)]
fn feed(target: &impl Replay, patcher: &mut Patcher, item: &Item) {
    match item {
        Item::Op(op) => match op.sid() {
            Some(sid) => patcher.feed(target, target.shard_of(sid), op),
            None => (0..target.shards()).for_each(|s| patcher.feed(target, s, op)),
        },
        Item::Expect { sessions, exact } => {
            let n = target.shards();
            let each = per_shard(*sessions, n, *exact);
            (0..n).for_each(|s| target.expect(s, each, *exact));
        }
    }
}

/// Working forms held at once by one applier; past it they are all encoded and handed on.
const WORKING_FORMS: usize = 256;

/// Data shorter than this is patched by the store itself, op by op: parsing it costs about
/// what a working form would save.
const WORKING_MIN_BYTES: usize = 512;

/// A session being patched by the apply ops of the log: its fields parsed once, its cookie
/// and deadline as the last op left them.
struct Working {
    shard: usize,
    fields: Parsed,
    cookie: CookieRecord,
    deadline: i64,
}

/// Replays apply ops on working forms (issue 10, item 12): the first apply op of a session
/// whose data is long parses it; later apply and touch ops of the session patch that form;
/// it is encoded and handed to the target as one set when another op of the session comes
/// (a set, a destroy or a clear drops it instead), when [`WORKING_FORMS`] are held, or at
/// the end. So a session's `n` field changes cost one parse and one encoding, not `n` of
/// each of the whole (growing) record. The target's state afterwards is what handing it
/// every op would give: an apply sets the same cookie and deadline and the same fields in
/// the same order (the form keeps the members in order, each as its text until it is set),
/// a touch the cookie and deadline.
#[derive(Default)]
struct Patcher {
    forms: HashMap<String, Working>,
}

impl Patcher {
    /// Feeds `op` (for shard `shard`) to `target`, through the working forms.
    fn feed(&mut self, target: &impl Replay, shard: usize, op: &Op) {
        match op {
            Op::Apply {
                sid,
                changes,
                deadline,
            } => {
                if let Some(w) = self.forms.get_mut(sid.as_str()) {
                    w.fields.apply(&changes.fields);
                    w.cookie = changes.cookie.clone();
                    w.deadline = *deadline;
                    return;
                }
                let parsed = (!changes.fields.is_empty())
                    .then(|| target.data(shard, sid))
                    .flatten()
                    .filter(|d| d.len() >= WORKING_MIN_BYTES)
                    .and_then(|d| d.parse().ok());
                // Data that does not parse is left to the store (which keeps it as is).
                let Some(mut fields) = parsed else {
                    return target.apply(shard, op);
                };
                if self.forms.len() >= WORKING_FORMS {
                    self.finish(target);
                }
                fields.apply(&changes.fields);
                self.forms.insert(
                    sid.clone(),
                    Working {
                        shard,
                        fields,
                        cookie: changes.cookie.clone(),
                        deadline: *deadline,
                    },
                );
            }
            Op::Touch {
                sid,
                cookie,
                deadline,
            } => match self.forms.get_mut(sid.as_str()) {
                Some(w) => {
                    w.cookie = cookie.clone();
                    w.deadline = *deadline;
                }
                None => target.apply(shard, op),
            },
            Op::Set { sid, .. } | Op::Destroy { sid } => {
                // The whole record is replaced or gone: the form's changes do not matter.
                self.forms.remove(sid.as_str());
                target.apply(shard, op);
            }
            Op::Clear => {
                self.forms.retain(|_, w| w.shard != shard);
                target.apply(shard, op);
            }
        }
    }

    /// Encodes every working form and hands it to the target as a set.
    fn finish(&mut self, target: &impl Replay) {
        for (sid, w) in self.forms.drain() {
            let op = Op::Set {
                sid,
                record: Record {
                    cookie: w.cookie,
                    data: Data::from_parsed(&w.fields),
                },
                deadline: w.deadline,
            };
            target.apply(w.shard, &op);
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
) -> Result<(Resume, RecoveryReport), StoreError> {
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
        report.problem = Some(why.clone());
        // Is the missing record `expected` vouched for as synced by any later valid record?
        // Then it was durable once and is now damaged: corruption. Otherwise it was never
        // known durable: a torn tail, and everything from it on is cut (and kept aside).
        // Salvage that kept records after it (resynchronised) sets the segments aside.
        let mut vouched = report.resynced > 0;
        for (k, &first) in live.iter().enumerate().skip(i) {
            if vouched {
                break;
            }
            let bytes = storage.read(&dir.join(wal::segment_name(first)))?;
            let from = if k == i && cut_segment.is_some() {
                off + 1
            } else {
                SEGMENT_HEADER
            };
            vouched = vouches_for(bytes.bytes(), from, expected);
        }
        if vouched {
            if !salvage {
                return Err(StoreError::Corrupt(format!(
                    "{why}, and later records say it was synced: the log is corrupt \
                     (open with salvage to keep the intact records)"
                )));
            }
            set_aside(storage, dir, &live[i..], &mut report)?;
            tail = None;
        } else {
            let later = if cut_segment.is_some() { i + 1 } else { i };
            // What is cut: the rest of the bad segment, then every later segment whole.
            let cuts: Vec<(u64, usize)> = cut_segment
                .map(|first| (first, off))
                .into_iter()
                .chain(live[later..].iter().map(|&first| (first, 0)))
                .collect();
            let zero_from = cut_tail(storage, dir, &names, &cuts, expected, &mut report)?;
            for &first in &live[later..] {
                storage.remove(&dir.join(wal::segment_name(first)))?;
            }
            if let Some(first) = cut_segment {
                if let Some(end) = zero_from {
                    let path = dir.join(wal::segment_name(first));
                    let map = storage.open_segment(&path)?;
                    map.write(off, &vec![0u8; end - off])?;
                    map.sync(off, end)?;
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

/// The offset after the last non-zero byte of `b` (a record starts with a non-zero header,
/// so none starts at or after it).
fn used_end(b: &[u8]) -> usize {
    b.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1)
}

/// Whether a valid record at or after `from` says that record `seq` had been synced.
fn vouches_for(b: &[u8], from: usize, seq: u64) -> bool {
    (from..used_end(b))
        .any(|p| matches!(format::decode(&b[p..]), Decoded::Record { synced, .. } if synced >= seq))
}

/// Resynchronises: walks `b` from `from`, at each position either a whole valid record
/// (checksum over its header and payload) or one byte skipped, and hands `keep` each record
/// whose sequence number is after `*last` (in log order, so `*last` only grows); a valid
/// record at or before `*last` (stale) is skipped whole. Returns the bytes skipped.
fn resync(b: &[u8], from: usize, last: &mut u64, mut keep: impl FnMut(Op, usize)) -> u64 {
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
) -> Result<Option<usize>, StoreError> {
    let mut last = expected - 1;
    let mut first_end = None;
    for (k, &(first, off)) in cuts.iter().enumerate() {
        let name = wal::segment_name(first);
        let bytes = storage.read(&dir.join(&name))?;
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
        let keep = |e: std::io::Error| {
            StoreError::Io(std::io::Error::new(
                e.kind(),
                format!("keeping the torn tail of {name} aside as {aside}: {e}"),
            ))
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
        storage.sync_dir(dir)?;
    }
    Ok(first_end)
}

fn set_aside(
    storage: &dyn Storage,
    dir: &Path,
    segments: &[u64],
    report: &mut RecoveryReport,
) -> Result<(), StoreError> {
    for &s in segments {
        let name = wal::segment_name(s);
        let aside = format!("{name}.corrupt");
        storage.rename(&dir.join(&name), &dir.join(&aside))?;
        report.salvaged.push(dir.join(aside));
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
    report: RecoveryReport,
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
        let mut patcher = Patcher::default();
        for batch in rx {
            for (shard, item) in &batch {
                match (*shard, item) {
                    (ALL, Item::Op(op)) => mine().for_each(|s| patcher.feed(target, s, op)),
                    (ALL, Item::Expect { sessions, exact }) => {
                        let each = per_shard(*sessions, shards, *exact);
                        mine().for_each(|s| target.expect(s, each, *exact));
                    }
                    (s, Item::Op(op)) => patcher.feed(target, s as usize, op),
                    (_, Item::Expect { .. }) => {}
                }
            }
            // The reading thread may be gone (it ended): the batch is then dropped here.
            let _ = back.send(batch);
        }
        patcher.finish(target);
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
    let mut patcher = Patcher::default();
    let scanned = scan(storage, dir, names, salvage, &mut |item| {
        feed(target, &mut patcher, &item)
    });
    patcher.finish(target);
    scanned
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
    let mut report = RecoveryReport::default();
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
                .skipped_snapshots
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
            Err(e) => report.skipped_snapshots.push(e.to_string()),
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
                report.skipped_snapshots.join("; ")
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
                Decoded::End => {
                    // Zeros where a record should be, with data after them: a hole (pages
                    // written back out of order), not the end; what follows must not be
                    // ignored now and overwritten later.
                    if used_end(b) > at {
                        problem = Some((
                            i,
                            Some(first),
                            at,
                            format!("log segment {name} at offset {at}: zeros before later data"),
                        ));
                    }
                    break;
                }
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
    if salvage {
        if let Some((i, _, off, _)) = &problem {
            // Resynchronise past the problem: every intact record after it, in log order.
            let mut last = expected - 1;
            for (k, &first) in live.iter().enumerate().skip(*i) {
                let name = wal::segment_name(first);
                let bytes = storage.read(&dir.join(&name))?;
                let b = bytes.bytes();
                let from = if k == *i {
                    (*off).max(SEGMENT_HEADER)
                } else {
                    SEGMENT_HEADER
                };
                let skipped = resync(b, from, &mut last, |op, len| {
                    fed_bytes += len;
                    report.replayed += 1;
                    report.resynced += 1;
                    sink(Item::Op(op));
                });
                report.skipped_bytes += skipped;
            }
            expected = last + 1;
        }
    }
    report.replayed_bytes = fed_bytes as u64;
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
