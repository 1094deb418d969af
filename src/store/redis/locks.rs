//! Per-session queues for `apply` within one process.
//!
//! The compare-and-set of [`script`](super::script) keeps concurrent writers correct, but
//! writers that all start from the same value redo their work once per writer that wins
//! before them: n parallel requests of one session cost about n²/2 attempts. Parallel
//! requests of one session mostly reach the same node, so each store queues its own `apply`
//! calls per session: they then run one after the other, each winning at its first attempt,
//! and only writes from other nodes (or from Node) can still make an attempt lose.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// One async mutex per key with a call holding or waiting for it; entries are removed when
/// the last of those is done.
#[derive(Default)]
pub(super) struct KeyLocks {
    map: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// Holds the queue of one key; the next waiter runs when it is dropped.
pub(super) struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyLocks {
    /// Waits for the turn of `key`.
    pub(super) async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let mutex = self.map.lock().entry(key.to_owned()).or_default().clone();
        let guard = mutex.lock_owned().await;
        KeyGuard {
            locks: self,
            key: key.to_owned(),
            guard: Some(guard),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().len()
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.map.lock();
        // Only the map holds it: nobody holds or waits for this key any more. Waiters clone
        // the entry under this same lock, so none can appear between the check and the
        // removal.
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_at_a_time_per_key_and_no_leak() {
        let locks = Arc::new(KeyLocks::default());
        let inside = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (locks, inside) = (locks.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let k = i % 2;
                let _turn = locks.lock(["a", "b"][k]).await;
                assert_eq!(inside[k].fetch_add(1, Ordering::SeqCst), 0, "two holders");
                tokio::task::yield_now().await;
                inside[k].fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(locks.len(), 0, "entries left behind");
    }
}
