//! The store's background threads: the sweeper (frees expired sessions) and, in a durable
//! store, the snapshotter (takes a snapshot by size and age). Each holds the store weakly and
//! ends once the last handle is dropped.

use std::sync::Arc;
use std::time::Duration;

use super::durable::Durable;
use super::store::Core;
use crate::clock;

pub(super) fn spawn_sweeper(core: &Arc<Core>, every: Duration) {
    let weak = Arc::downgrade(core);
    let spawned = std::thread::Builder::new()
        .name("sessile-sweeper".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let Some(core) = weak.upgrade() else { return };
            core.purge_expired(clock::now_ms());
        });
    // Without a thread, writes still sweep and reads still never see expired sessions.
    drop(spawned);
}

pub(super) fn spawn_snapshotter(core: &Arc<Core>, interval: Option<Duration>) {
    let weak = Arc::downgrade(core);
    let spawned = std::thread::Builder::new()
        .name("sessile-snapshot".into())
        .spawn(move || {
            // The clock and the bytes count from the newest snapshot on disk, not from this
            // open: a store restarted more often than the thresholds still snapshots (at the
            // first check after an open that finds the log since it long).
            let mut last = std::time::Instant::now();
            let mut head_start = weak
                .upgrade()
                .and_then(|c| c.durable.as_ref().and_then(Durable::age_at_open))
                .unwrap_or_default();
            loop {
                std::thread::sleep(Duration::from_millis(100));
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
    drop(spawned);
}
