//! The caps of the embedded store: one budget of sessions and bytes for all shards, and
//! which session to evict when a write needs room.
//!
//! - **One budget.** [`Caps`] counts the sessions and bytes of the whole store (each shard
//!   adds what it changed, under its lock), so a session smaller than `max_bytes` is kept
//!   whatever shard it lands in; one larger than the whole cap is refused with
//!   [`StoreError::Full`].
//! - **Room before the write.** A write that would pass a cap first evicts, under its own
//!   shard's lock, as long as that shard holds the store's best victim; otherwise it lets
//!   go of its lock, evicts in the shard that holds it ([`with_room`]), and tries again. The
//!   session being written is never its own victim. Writes racing at the same moment may
//!   pass a cap by what they add; the next write brings the store back under it.
//! - **Who goes.** Every entry knows whether it came back (was read, touched or changed)
//!   since it was stored. While the sessions that never came back are more than
//!   1/[`NEW_SHARE`] of a shard (a flood of anonymous visitors, say), they are evicted first,
//!   oldest first; below that share, the session closest to expiry goes, whichever kind it is
//!   (so a new visitor is not turned away by idle ones). As in moka's TinyLFU, a session that
//!   came back is worth more than one that never did.
//! - **Logged.** In a durable store an eviction is logged like a destroy before the session
//!   is dropped. If the log refuses it, the session is kept and the write that needed the
//!   room fails with the log's error, storing nothing (the evictions logged before it stay
//!   made): an evicted session never comes back after a restart, and a session in memory is
//!   in the log.

use crate::error::StoreError;
use crate::sync::{AtomicU64, Ordering};

use super::durable::wal::Wal;
use super::shard::Shard;

/// While the sessions that never came back are more than 1/`NEW_SHARE` of a shard, they are
/// evicted first.
pub(crate) const NEW_SHARE: usize = 8;

/// The rank of a shard with nothing to evict.
pub(crate) const NO_VICTIM: u64 = u64::MAX;

/// How many times a write lets go of its lock to make room elsewhere before it makes what
/// room it can in its own shard and goes ahead.
const ATTEMPTS: usize = 4;

/// The rank of a victim: lower goes first. `first` for the sessions that never came back
/// while they are over their share; then by the second of the deadline.
pub(crate) fn rank(first: bool, bucket: u32) -> u64 {
    (u64::from(!first) << 32) | u64::from(bucket)
}

/// What a write adds to the store: sessions (0 or 1) and bytes (negative when it shrinks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Need {
    pub(crate) entries: i64,
    pub(crate) bytes: i64,
}

/// The store-wide caps and what the store holds against them.
#[derive(Debug)]
pub(crate) struct Caps {
    max_entries: i64,
    max_bytes: i64,
    entries: AtomicU64,
    bytes: AtomicU64,
}

fn signed(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Caps {
    /// The caps, if there are any (`max_sessions` is at least 1).
    pub(crate) fn new(max_sessions: Option<usize>, max_bytes: Option<usize>) -> Option<Self> {
        if max_sessions.is_none() && max_bytes.is_none() {
            return None;
        }
        Some(Caps {
            max_entries: max_sessions.map_or(i64::MAX, |n| signed(n.max(1))),
            max_bytes: max_bytes.map_or(i64::MAX, signed),
            entries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    /// Records that a shard went from holding `from` (sessions, bytes) to holding `to`.
    pub(crate) fn moved(&self, from: (usize, usize), to: (usize, usize)) {
        let add = |a: &AtomicU64, from: usize, to: usize| {
            if to > from {
                a.fetch_add((to - from) as u64, Ordering::AcqRel);
            } else if from > to {
                a.fetch_sub((from - to) as u64, Ordering::AcqRel);
            }
        };
        add(&self.entries, from.0, to.0);
        add(&self.bytes, from.1, to.1);
    }

    /// Whether the store has room for `need` once a shard that last recorded `recorded` holds
    /// `holds` (its changes not recorded yet).
    pub(crate) fn fits(&self, need: Need, recorded: (usize, usize), holds: (usize, usize)) -> bool {
        let total = |a: &AtomicU64, rec: usize, now: usize, add: i64| {
            signed(a.load(Ordering::Acquire) as usize)
                .saturating_sub(signed(rec))
                .saturating_add(signed(now))
                .saturating_add(add)
        };
        total(&self.entries, recorded.0, holds.0, need.entries) <= self.max_entries
            && total(&self.bytes, recorded.1, holds.1, need.bytes) <= self.max_bytes
    }

    /// Refuses a session of `bytes` that can never fit, whatever is evicted.
    pub(crate) fn admit(&self, bytes: usize) -> Result<(), StoreError> {
        if signed(bytes) > self.max_bytes {
            return Err(StoreError::Full(format!(
                "a session of {bytes} bytes (id, data and per-session charge) is over the \
                 store's max_bytes of {}",
                self.max_bytes
            )));
        }
        Ok(())
    }
}

/// What a write under its shard's lock came to.
pub(crate) enum Written<T> {
    Done(T),
    /// The store's best victim is in another shard: the write let go of its lock without
    /// changing anything, and needs this much room.
    Short(Need),
}

/// Where a write may take room from.
pub(crate) struct Room<'a> {
    shards: &'a [Shard],
    own: &'a Shard,
    /// Make what room the own shard can give and go ahead (the last attempt).
    pub(crate) insist: bool,
}

impl<'a> Room<'a> {
    /// A store of one shard (for tests).
    #[cfg(all(test, not(sessile_loom)))]
    pub(crate) fn single(own: &'a Shard) -> Self {
        Room {
            shards: std::slice::from_ref(own),
            own,
            insist: false,
        }
    }

    /// The rank of the best victim outside the writer's shard.
    pub(crate) fn best_elsewhere(&self) -> u64 {
        self.shards
            .iter()
            .filter(|s| !std::ptr::eq(*s, self.own))
            .map(Shard::rank)
            .min()
            .unwrap_or(NO_VICTIM)
    }
}

/// Runs `write` on `own` (one of `shards`), making room in other shards when it asks for it
/// (see the module's doc).
pub(crate) fn with_room<T>(
    shards: &[Shard],
    own: &Shard,
    now_ms: i64,
    log: Option<&Wal>,
    mut write: impl FnMut(&Room<'_>) -> Result<Written<T>, StoreError>,
) -> Result<T, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let room = Room {
            shards,
            own,
            insist: attempt >= ATTEMPTS,
        };
        match write(&room)? {
            Written::Done(t) => return Ok(t),
            Written::Short(need) => make_room_elsewhere(&room, need, now_ms, log)?,
        }
    }
}

/// Evicts from the shards other than the writer's, best victim first, until the store has
/// room for `need` (or nothing is left to evict there).
fn make_room_elsewhere(
    room: &Room<'_>,
    need: Need,
    now_ms: i64,
    log: Option<&Wal>,
) -> Result<(), StoreError> {
    let Some(caps) = room.own.caps() else {
        return Ok(());
    };
    // Each round evicts one session or moves one that came back to its right place; the
    // bound only guards against a bug turning this into a spin.
    for _ in 0..1_000_000 {
        if caps.fits(need, (0, 0), (0, 0)) {
            return Ok(());
        }
        let best = room
            .shards
            .iter()
            .filter(|s| !std::ptr::eq(*s, room.own))
            .min_by_key(|s| s.rank());
        match best {
            Some(s) if s.rank() != NO_VICTIM => {
                // Evicted, moved, or found nothing (its rank is then published as such).
                s.evict_one(now_ms, log)?;
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

#[cfg(all(test, not(sessile_loom)))]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use serde_json::json;

    use super::super::durable::fault::FaultStorage;
    use super::super::{EmbeddedStore, FsyncPolicy};
    use crate::record::{CookieRecord, Data, Record};

    fn record(n: u32) -> Record {
        let mut cookie = CookieRecord::default();
        cookie.set_max_age(Some(3_600_000));
        Record {
            cookie,
            data: Data::from_map(json!({ "n": n }).as_object().expect("object")),
        }
    }

    fn open(fs: &FaultStorage) -> EmbeddedStore {
        EmbeddedStore::builder()
            .shards(1)
            .max_sessions(4)
            .sweep_interval(None)
            .segment_size(1 << 20)
            .snapshot_after_bytes(u64::MAX)
            .snapshot_interval(None)
            .fsync(FsyncPolicy::Never)
            .open_with(Arc::new(fs.clone()), Path::new("/sessions"), false)
            .expect("open")
    }

    fn held(store: &EmbeddedStore, ids: &[String]) -> Vec<(String, Record)> {
        ids.iter()
            .filter_map(|id| store.get_now(id).map(|r| (id.clone(), r)))
            .collect()
    }

    /// The store-wide counts follow every change of every shard: sets, replacements, applies,
    /// destroys, evictions, expiry sweeps and clears.
    #[test]
    fn the_counts_follow_every_path() {
        let store = EmbeddedStore::builder()
            .shards(4)
            .max_sessions(50)
            .max_bytes(1 << 20)
            .sweep_interval(None)
            .build();
        let caps = |s: &EmbeddedStore| {
            let c = s.core.shards[0].caps().expect("caps");
            (
                c.entries.load(crate::sync::Ordering::Acquire) as usize,
                c.bytes.load(crate::sync::Ordering::Acquire) as usize,
            )
        };
        let now = crate::clock::now_ms();
        for i in 0..120u32 {
            let mut r = record(i);
            if i % 3 == 0 {
                // Expires at once: swept by the next writes.
                r.cookie.expires = Some(now + 1);
            }
            store.set_now(&format!("s{i}"), &r).expect("set");
            store
                .set_now(&format!("s{}", i / 2), &record(i))
                .expect("set");
            if i % 7 == 0 {
                store.destroy_now(&format!("s{}", i / 3)).expect("destroy");
            }
            assert_eq!(caps(&store), store.usage(), "after {i}");
        }
        assert!(store.usage().0 <= 50);
        while crate::clock::now_ms() <= now + 1 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        store.purge_expired();
        assert_eq!(caps(&store), store.usage());
        futures_block(crate::store::SessionStore::clear(&store)).expect("clear");
        assert_eq!(caps(&store), (0, 0));
    }

    fn futures_block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    /// An eviction is logged like a destroy. When the log refuses it (or the write after
    /// it), the write that needed the room fails, nothing of it is stored, and memory and
    /// log still agree: after a restart the store holds what it held, and no evicted
    /// session comes back.
    #[test]
    fn an_eviction_the_log_refuses_is_never_lost() {
        for fail_at in 1..=3 {
            let fs = FaultStorage::new();
            let store = open(&fs);
            let ids: Vec<String> = (0..5).map(|i| format!("s{i}")).collect();
            for (i, id) in ids.iter().take(4).enumerate() {
                store.set_now(id, &record(i as u32)).expect("set");
            }
            // Let the log prepare its next segment, so that only appends write from here.
            let wal = &store.core.durable.as_ref().expect("durable").wal;
            while matches!(wal.next_state(), "wanted" | "preparing") {
                if !wal.prepare_pending() {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            // The `fail_at`-th log write from now on fails, and every one after it.
            fs.faults.lock().fail_write_from = Some(fs.writes() + fail_at);
            let result = store.set_now(&ids[4], &record(4));
            let before = held(&store, &ids);
            assert!(
                before.len() <= 4,
                "fail_at {fail_at}: {} held",
                before.len()
            );
            match fail_at {
                // The eviction, or the set after it, was refused: the set failed.
                1 | 2 => {
                    let e = result.expect_err("the write must fail");
                    assert!(e.to_string().contains("injected EIO"), "{e}");
                    assert!(store.get_now(&ids[4]).is_none());
                    assert_eq!(before.len(), if fail_at == 1 { 4 } else { 3 });
                }
                _ => assert!(result.is_ok() && before.len() == 4),
            }
            fs.faults.lock().fail_write_from = None;
            drop(store);
            let store = open(&fs);
            assert_eq!(
                held(&store, &ids),
                before,
                "fail_at {fail_at}: after a restart the store holds something else"
            );
        }
    }
}

#[cfg(all(test, sessile_loom))]
mod loom_tests {
    use serde_json::json;

    use super::super::EmbeddedStore;
    use crate::record::{CookieRecord, Data, Record};

    fn record(expires: i64) -> Record {
        Record {
            cookie: CookieRecord {
                expires: Some(expires),
                ..CookieRecord::default()
            },
            data: Data::from_map(json!({}).as_object().expect("object")),
        }
    }

    /// The first id from `prefix0`, `prefix1`, ... that the store routes to shard `want`.
    fn id_in(store: &EmbeddedStore, want: usize, prefix: &str) -> String {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .find(|id| std::ptr::eq(store.core.shard(id), &store.core.shards[want]))
            .expect("an id")
    }

    /// A write whose best victim is in another shard lets go of its own lock and evicts there,
    /// while a writer of that other shard evicts in its own: no deadlock, no lost write, and
    /// the sessions that expire later are kept.
    #[test]
    fn loom_a_write_makes_room_in_another_shard() {
        loom::model(|| {
            let s = EmbeddedStore::builder()
                .shards(2)
                .max_sessions(3)
                .sweep_interval(None)
                .build();
            let now = crate::clock::now_ms();
            let (soon, late) = (now + 100_000, now + 900_000);
            let (x0, x1) = (id_in(&s, 0, "x"), id_in(&s, 0, "y"));
            let z = id_in(&s, 1, "z");
            s.set_now(&x0, &record(soon)).expect("set");
            s.set_now(&x1, &record(soon)).expect("set");
            s.set_now(&z, &record(late)).expect("set");
            // Shard 1 holds only `z`, which expires late: its writer evicts in shard 0.
            let there = id_in(&s, 1, "w");
            let here = id_in(&s, 0, "v");
            let t = {
                let s = s.clone();
                let there = there.clone();
                loom::thread::spawn(move || s.set_now(&there, &record(late)).expect("set"))
            };
            s.set_now(&here, &record(late)).expect("set");
            t.join().expect("join");
            assert!(s.get_now(&z).is_some() && s.get_now(&there).is_some());
            assert!(s.get_now(&here).is_some());
            assert!(s.usage().0 <= 4, "{:?}", s.usage());
            s.set_now(&id_in(&s, 1, "u"), &record(late)).expect("set");
            assert!(s.usage().0 <= 3, "{:?}", s.usage());
        });
    }
}
