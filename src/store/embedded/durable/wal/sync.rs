//! Making the log durable: the [`FsyncPolicy`], the sync thread's group commits, the writers
//! waiting on them, and poisoning.
//!
//! The sync thread makes the log durable after every batch of waiting writers (`Always`),
//! about once a second (`EverySec`), or only at a clean shutdown (`Never`). A sealed segment
//! is unmapped before its last sync (see
//! [`SegmentMap::unmap_and_sync`](crate::store::embedded::durable::storage::SegmentMap::unmap_and_sync)):
//! a sync through the map would interrupt the writers' CPUs once per page.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::policy::{AckWait, FsyncPolicy, DIR_CHECK_EVERY};
use super::state::{Sealed, Wal};
use crate::error::{Poison, StoreError};
use crate::sync::Ordering;

/// A sync of the log that takes this long or longer is reported (`warn`).
const SLOW_SYNC: std::time::Duration = std::time::Duration::from_millis(500);

impl Wal {
    /// Waits until the record `seq` is durable under `Always`; returns at once otherwise.
    pub(crate) async fn wait_durable(&self, seq: u64) -> Result<(), StoreError> {
        if self.policy != FsyncPolicy::Always {
            return Ok(());
        }
        let Some(rx) = self.register(seq)? else {
            return Ok(());
        };
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(StoreError::Poisoned(why)),
            Err(_) => Err(StoreError::Io(std::io::Error::other(
                "session log closed before the write was synced",
            ))),
        }
    }

    /// Registers a writer waiting for record `seq` to be synced; `None` when it already is.
    pub(crate) fn register(&self, seq: u64) -> Result<Option<AckWait>, StoreError> {
        let mut w = self.waiters.lock();
        if let Some(e) = self.poison_error() {
            return Err(e);
        }
        if self.synced_seq.load(Ordering::Acquire) >= seq {
            return Ok(None);
        }
        let (tx, rx) = oneshot::channel();
        w.list.push((seq, tx));
        self.wake.notify_one();
        Ok(Some(rx))
    }

    /// One group commit: syncs everything appended so far, then answers every waiter the
    /// sync covers (or every waiter, with the error).
    pub(crate) fn sync_round(&self) {
        let result = self.sync_now();
        let mut w = self.waiters.lock();
        let list = std::mem::take(&mut w.list);
        for (seq, tx) in list {
            match &result {
                Ok(done) if *done >= seq => {
                    let _ = tx.send(Ok(()));
                }
                Ok(_) => w.list.push((seq, tx)),
                Err(why) => {
                    let _ = tx.send(Err(why.clone()));
                }
            }
        }
    }

    /// Syncs everything appended so far. Returns the durable sequence number.
    /// Sealed segments are truncated to their used length once synced.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn sync_now(&self) -> Result<u64, Poison> {
        let _one_at_a_time = self.syncing.lock();
        let started = std::time::Instant::now();
        let synced = self.sync_all();
        let took = started.elapsed();
        self.sync_latency.record(took);
        if took >= SLOW_SYNC {
            crate::events::event!(
                warn,
                dir = %self.dir.display(),
                ms = took.as_millis() as u64,
                "a sync of the session log was slow"
            );
        }
        synced
    }

    fn sync_all(&self) -> Result<u64, Poison> {
        if let Some(why) = self.poisoned.lock().clone() {
            return Err(why);
        }
        let (target, sealed, active, dir_dirty) = {
            let mut st = self.state.lock();
            let sealed: Vec<Sealed> = std::mem::take(&mut st.unsynced);
            let active = Sealed {
                map: st.active.map.clone(),
                from: st.active.synced_pos,
                to: st.active.pos,
            };
            st.active.synced_pos = st.active.pos;
            (st.seq, sealed, active, std::mem::take(&mut st.dir_dirty))
        };
        let poison = |e: std::io::Error| self.poison(e);
        for mut job in sealed {
            match Arc::get_mut(&mut job.map) {
                Some(map) => map.unmap_and_sync(job.from, job.to),
                // Not expected (syncs run one at a time, and the log lets go of a segment when
                // it seals it); if the map is still shared, syncing through it is as safe.
                None => job.map.sync(job.from, job.to),
            }
            .map_err(poison)?;
            // Only disk space is at stake: a segment left long reads as zeros past its end.
            let _ = job.map.truncate(job.to);
        }
        active.map.sync(active.from, active.to).map_err(poison)?;
        if dir_dirty {
            self.dir_handle.sync().map_err(poison)?;
        }
        self.synced_seq.fetch_max(target, Ordering::AcqRel);
        Ok(target)
    }

    /// The sync thread's loop; returns at shutdown after a final sync.
    pub(crate) fn run_syncer(&self) {
        let mut checked = std::time::Instant::now();
        loop {
            let shutdown = {
                let mut w = self.waiters.lock();
                // Every policy wakes at least once a second, to check the directory.
                let idle = match self.policy {
                    FsyncPolicy::Always => w.list.is_empty(),
                    FsyncPolicy::EverySec | FsyncPolicy::Never => true,
                };
                if idle && !w.shutdown {
                    w = self.wake.wait_for(w, DIR_CHECK_EVERY);
                }
                w.shutdown
            };
            if !shutdown && checked.elapsed() >= DIR_CHECK_EVERY {
                checked = std::time::Instant::now();
                // Once it fails, writes and syncs are refused with its error.
                let _ = self.check_dir();
            }
            let due = shutdown
                || self.policy == FsyncPolicy::EverySec
                || !self.waiters.lock().list.is_empty();
            if due {
                self.sync_round();
            }
            if shutdown {
                return;
            }
        }
    }

    /// The preparing thread's loop: prepares the next segment whenever one is wanted, apart
    /// from the sync thread so that group commits never wait for it; returns at shutdown.
    pub(crate) fn run_preparer(&self) {
        loop {
            {
                let mut w = self.waiters.lock();
                while !w.shutdown && !w.prepare {
                    w = self.prep_wake.wait(w);
                }
                if w.shutdown {
                    return;
                }
                w.prepare = false;
            }
            self.prepare_pending();
        }
    }

    /// Asks the sync thread to sync once more and stop.
    pub(crate) fn shutdown(&self) {
        self.waiters.lock().shutdown = true;
        self.wake.notify_all();
        self.prep_wake.notify_all();
    }
}
