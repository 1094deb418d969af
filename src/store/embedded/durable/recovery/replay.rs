//! Feeding what recovery reads to the store: ops for one shard in log order, field changes
//! patched on working forms ([`Patcher`]), and, with CPUs to spare, the reading and the
//! applying on threads of their own ([`feed`]).

use std::collections::HashMap;
use std::sync::mpsc;

use super::report::Replay;
use crate::record::{CookieRecord, Data, Parsed, Record};
use crate::store::embedded::durable::format::Op;
use crate::sync::thread;

/// What reading feeds on: an op, or how many sessions are coming (in all shards).
#[derive(Clone)]
pub(crate) enum Item {
    Op(Op),
    Expect { sessions: usize, exact: bool },
}

/// Appliers: ops are fed to the store from up to this many threads, each owning the shards
/// whose index is its number modulo the number of lanes.
const LANES: usize = 2;

/// Items sent from the reading thread to an applying one per batch.
const BATCH: usize = 1024;

/// Shard number of an item meant for every shard of a lane (`Clear`, `Expect`).
const ALL: u32 = u32::MAX;

/// A batch of items for one lane, each with its shard (or [`ALL`]).
type Batch = Vec<(u32, Item)>;

/// Runs `read` (which reads, checks and decodes the snapshot and the log, handing each item
/// to the sink it is given) and feeds its items to `target`; returns what `read` returns.
///
/// With CPUs to spare ([`thread::helpers`]: up to [`LANES`], leaving a CPU to the reading
/// thread, since on two CPUs a second applier only competes with the reader, as measured in
/// BENCHMARKS.md), `read` runs on a thread of its own, which routes each op to its shard's
/// lane; each lane's ops go in batches over a bounded channel to a thread applying them in
/// order (this thread for the first lane). Ops for one id always reach the same shard, hence
/// the same lane, in log order; `Clear` and `Expect` go to every lane at their place in the
/// log, and each lane applies them to its own shards, so every shard sees exactly the
/// sequence a single applier would give it. Applied batches go back to the reading thread,
/// which drops their ops (memory is freed by the thread that allocated it) and reuses the
/// batch. Without (under loom), everything runs on this thread, as one lane.
pub(crate) fn feed<R: Send>(
    target: &impl Replay,
    read: impl FnOnce(&mut dyn FnMut(Item)) -> R + Send,
) -> std::io::Result<R> {
    let lanes = thread::helpers(LANES).min(target.shards());
    if lanes == 0 {
        let mut lane = Lane::new(target, 0, 1);
        let read = read(&mut |item| lane.apply(route(target, &item), &item));
        lane.patcher.finish(target);
        return Ok(read);
    }
    pipelined(target, lanes, read)
}

/// The shard `item` goes to, or [`ALL`].
fn route(target: &impl Replay, item: &Item) -> u32 {
    match item {
        Item::Op(op) => op.sid().map_or(ALL, |sid| target.shard_of(sid) as u32),
        Item::Expect { .. } => ALL,
    }
}

/// The applying end of one lane: the shards whose index is `lane` modulo `lanes`.
struct Lane<'t, T> {
    target: &'t T,
    lane: usize,
    lanes: usize,
    patcher: Patcher,
}

impl<'t, T: Replay> Lane<'t, T> {
    fn new(target: &'t T, lane: usize, lanes: usize) -> Self {
        Lane {
            target,
            lane,
            lanes,
            patcher: Patcher::default(),
        }
    }

    /// Applies `item`, routed to `shard` (or to [`ALL`] of this lane's shards).
    fn apply(&mut self, shard: u32, item: &Item) {
        let (target, shards) = (self.target, self.target.shards());
        let mine = (self.lane..shards).step_by(self.lanes);
        match (shard, item) {
            (ALL, Item::Op(op)) => mine.for_each(|s| self.patcher.feed(target, s, op)),
            (ALL, Item::Expect { sessions, exact }) => {
                let each = per_shard(*sessions, shards, *exact);
                mine.for_each(|s| target.expect(s, each, *exact));
            }
            (s, Item::Op(op)) => self.patcher.feed(target, s as usize, op),
            (_, Item::Expect { .. }) => {}
        }
    }

    /// Applies the batches that come over `rx`, in order, handing each back over `back`.
    fn run(mut self, rx: mpsc::Receiver<Batch>, back: mpsc::Sender<Batch>) {
        for batch in rx {
            for (shard, item) in &batch {
                self.apply(*shard, item);
            }
            // The reading thread may be gone (it ended): the batch is then dropped here.
            let _ = back.send(batch);
        }
        self.patcher.finish(self.target);
    }
}

/// [`feed`] on `lanes` lanes: `read` on a thread of its own, the lanes but the first on
/// threads of theirs, the first on this one.
fn pipelined<R: Send>(
    target: &impl Replay,
    lanes: usize,
    read: impl FnOnce(&mut dyn FnMut(Item)) -> R + Send,
) -> std::io::Result<R> {
    let (back_tx, back_rx) = mpsc::channel::<Batch>();
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..lanes).map(|_| mpsc::sync_channel::<Batch>(8)).unzip();
    std::thread::scope(|s| {
        let reader = thread::spawn_scoped(s, "sessile-recovery", move || {
            route_into(target, txs, back_rx, read)
        })?;
        let mut rxs = rxs.into_iter();
        let first = rxs.next();
        let mut appliers = Vec::new();
        for (i, rx) in rxs.enumerate() {
            let (lane, back) = (Lane::new(target, i + 1, lanes), back_tx.clone());
            appliers.push(thread::spawn_scoped(s, "sessile-replay", move || {
                lane.run(rx, back)
            })?);
        }
        if let Some(rx) = first {
            Lane::new(target, 0, lanes).run(rx, back_tx);
        }
        for a in appliers {
            if let Err(panic) = a.join() {
                std::panic::resume_unwind(panic);
            }
        }
        match reader.join() {
            Ok(read) => Ok(read),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The reading thread of [`pipelined`]: runs `read`, sending each item in batches to the lane
/// of its shard (to every lane for [`ALL`]), reusing the batches that come back.
fn route_into<R>(
    target: &impl Replay,
    txs: Vec<mpsc::SyncSender<Batch>>,
    back_rx: mpsc::Receiver<Batch>,
    read: impl FnOnce(&mut dyn FnMut(Item)) -> R,
) -> R {
    let lanes = txs.len();
    let fresh = || match back_rx.try_recv() {
        Ok(mut b) => {
            b.clear();
            b
        }
        Err(_) => Vec::with_capacity(BATCH),
    };
    let mut batches: Vec<Batch> = (0..lanes).map(|_| fresh()).collect();
    let mut push = |lane: usize, shard: u32, item: Item| {
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
    let read = read(&mut |item| match route(target, &item) {
        ALL => (0..lanes).for_each(|lane| push(lane, ALL, item.clone())),
        s => push(s as usize % lanes, s, item),
    });
    for (tx, b) in txs.iter().zip(batches) {
        if !b.is_empty() {
            let _ = tx.send(b);
        }
    }
    read
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
