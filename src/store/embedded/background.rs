//! The store's background threads: the sweeper (frees expired sessions) and, in a durable
//! store, the snapshotter (takes a snapshot by size and age). Each holds the store weakly,
//! and [`Background`] (held by every handle of the store) stops and joins them when the last
//! handle is dropped, so the store's clean shutdown runs on the dropping thread, before
//! `drop` returns, and never later on one of these.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::durable::Durable;
use super::store::Core;
use crate::clock;
use crate::sync::{thread, Condvar, Mutex};

/// How often the snapshotter checks the thresholds.
const SNAPSHOT_CHECK: Duration = Duration::from_millis(100);

/// The background threads of one store. Dropped with the last handle of the store (before
/// the store's shared state, which the threads only hold weakly): wakes them, and waits
/// until they have ended, a snapshot under way included.
#[derive(Debug, Default)]
pub(super) struct Background {
    stop: Arc<Stop>,
    threads: Mutex<Vec<thread::Handle>>,
}

/// The stop signal the threads sleep on.
#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Sleeps for `d` or until the store is stopped; true once it is.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = std::time::Instant::now() + d;
        let mut stopped = self.stopped.lock();
        loop {
            if *stopped {
                return true;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            stopped = self.wake.wait_for(stopped, left);
        }
    }
}

impl Background {
    /// Starts the sweeper, every `every`, when given one.
    pub(super) fn sweeper(&mut self, core: &Arc<Core>, every: Option<Duration>) {
        let Some(every) = every else { return };
        self.spawn("sessile-sweeper", core, move |stop, weak| {
            while !stop.sleep(every) {
                let Some(core) = weak.upgrade() else { return };
                let freed = core.purge_expired(clock::now_ms());
                if freed > 0 {
                    crate::events::event!(debug, freed, "expired sessions freed");
                }
            }
        });
    }

    /// Starts the snapshotter of a durable store, snapshotting every `interval` (if any) and
    /// whenever the log has grown past the store's size threshold.
    pub(super) fn snapshotter(&mut self, core: &Arc<Core>, interval: Option<Duration>) {
        if core.durable.is_none() {
            return;
        }
        self.spawn("sessile-snapshot", core, move |stop, weak| {
            // The clock and the bytes count from the newest snapshot on disk, not from this
            // open: a store restarted more often than the thresholds still snapshots (at the
            // first check after an open that finds the log since it long).
            let mut last = std::time::Instant::now();
            let mut head_start = weak
                .upgrade()
                .and_then(|c| c.durable.as_ref().and_then(Durable::age_at_open))
                .unwrap_or_default();
            while !stop.sleep(SNAPSHOT_CHECK) {
                let Some(core) = weak.upgrade() else { return };
                let Some(d) = &core.durable else { return };
                let grown = d.bytes_since_snapshot();
                let by_size = grown >= d.opts.snapshot_bytes;
                let age = head_start + last.elapsed();
                let by_age = interval.is_some_and(|i| age >= i) && grown > 0;
                if by_size || by_age {
                    // A failed snapshot leaves the previous one and the log in place; the
                    // next attempt comes with the next check.
                    let _ = core.snapshot();
                    last = std::time::Instant::now();
                    head_start = Duration::ZERO;
                }
            }
        });
    }

    fn spawn(
        &mut self,
        name: &str,
        core: &Arc<Core>,
        body: impl FnOnce(&Stop, Weak<Core>) + Send + 'static,
    ) {
        let stop = Arc::clone(&self.stop);
        let weak = Arc::downgrade(core);
        // Without a thread, writes still sweep, reads still never see expired sessions, and
        // `EmbeddedStore::snapshot` still compacts the log.
        if let Ok(t) = thread::spawn(name, move || body(&stop, weak)) {
            self.threads.lock().push(t);
        }
    }

    /// Wakes the threads and waits until they have ended (a snapshot under way included).
    /// Later calls return at once.
    pub(super) fn stop(&self) {
        *self.stop.stopped.lock() = true;
        self.stop.wake.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            t.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}
