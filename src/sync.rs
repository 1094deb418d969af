//! Every synchronisation primitive of the embedded store comes through here.
//!
//! Under `--cfg sessile_loom` (our own name: tokio reacts to plain `loom`) the same names resolve to loom's model-checked versions, so the
//! store's concurrency can be explored exhaustively by `tests/loom.rs` without touching
//! the store's code. Outside loom they are `parking_lot` locks and `std` atomics.

#[cfg(not(sessile_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

#[cfg(sessile_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// A reader-writer lock with `parking_lot`'s infallible API.
#[derive(Debug)]
pub(crate) struct RwLock<T> {
    #[cfg(not(sessile_loom))]
    inner: parking_lot::RwLock<T>,
    #[cfg(sessile_loom)]
    inner: loom::sync::RwLock<T>,
}

#[cfg(not(sessile_loom))]
pub(crate) type ReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
#[cfg(not(sessile_loom))]
pub(crate) type WriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;
#[cfg(sessile_loom)]
pub(crate) type ReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;
#[cfg(sessile_loom)]
pub(crate) type WriteGuard<'a, T> = loom::sync::RwLockWriteGuard<'a, T>;

impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(sessile_loom))]
            inner: parking_lot::RwLock::new(value),
            #[cfg(sessile_loom)]
            inner: loom::sync::RwLock::new(value),
        }
    }

    #[cfg(not(sessile_loom))]
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        self.inner.read()
    }

    #[cfg(not(sessile_loom))]
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        self.inner.write()
    }

    #[cfg(sessile_loom)]
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(sessile_loom)]
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

/// A mutex with `parking_lot`'s infallible API.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T> {
    #[cfg(not(sessile_loom))]
    inner: parking_lot::Mutex<T>,
    #[cfg(sessile_loom)]
    inner: loom::sync::Mutex<T>,
}

#[cfg(not(sessile_loom))]
pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
#[cfg(sessile_loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(sessile_loom))]
            inner: parking_lot::Mutex::new(value),
            #[cfg(sessile_loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(sessile_loom))]
        return self.inner.lock();
        #[cfg(sessile_loom)]
        return self.inner.lock().unwrap_or_else(|e| e.into_inner());
    }
}

/// A condition variable; waiting takes the guard by value and gives it back.
#[derive(Debug, Default)]
pub(crate) struct Condvar {
    #[cfg(not(sessile_loom))]
    inner: parking_lot::Condvar,
    #[cfg(sessile_loom)]
    inner: loom::sync::Condvar,
}

impl Condvar {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        #[cfg(not(sessile_loom))]
        {
            let mut guard = guard;
            self.inner.wait(&mut guard);
            guard
        }
        #[cfg(sessile_loom)]
        self.inner.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// Waits at most `timeout` (under loom, time does not pass: it waits for a notification).
    pub(crate) fn wait_for<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, T> {
        #[cfg(not(sessile_loom))]
        {
            let mut guard = guard;
            self.inner.wait_for(&mut guard, timeout);
            guard
        }
        #[cfg(sessile_loom)]
        {
            let _ = timeout;
            self.inner.wait(guard).unwrap_or_else(|e| e.into_inner())
        }
    }

    pub(crate) fn notify_one(&self) {
        self.inner.notify_one();
    }

    pub(crate) fn notify_all(&self) {
        self.inner.notify_all();
    }
}

/// The threads the store starts for itself: the log's sync and preparing threads, recovery's
/// reader and appliers. Under loom the models run every step on their own threads (and drive
/// the log's sync rounds themselves), so [`spawn`](thread::spawn) starts none and
/// [`helpers`](thread::helpers) is 0: callers run the work inline, with no `cfg` of their own.
pub(crate) mod thread {
    /// A thread of the store's, or (under loom) none.
    #[derive(Debug)]
    pub(crate) struct Handle(Option<std::thread::JoinHandle<()>>);

    impl Handle {
        /// Waits for the thread to end (its panic, if any, is dropped: it was reported).
        pub(crate) fn join(self) {
            if let Some(t) = self.0 {
                let _ = t.join();
            }
        }
    }

    /// Starts a thread named `name` running `body`; under loom, starts none and drops `body`.
    pub(crate) fn spawn(
        name: &str,
        body: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Handle> {
        if cfg!(sessile_loom) {
            return Ok(Handle(None));
        }
        std::thread::Builder::new()
            .name(name.into())
            .spawn(body)
            .map(|t| Handle(Some(t)))
    }

    /// Starts a thread named `name` in `scope`, running `body` (see [`std::thread::scope`]).
    /// Only for work that [`helpers`] gave threads to: under loom it is never called.
    pub(crate) fn spawn_scoped<'s, 'e, T: Send + 's>(
        scope: &'s std::thread::Scope<'s, 'e>,
        name: &str,
        body: impl FnOnce() -> T + Send + 's,
    ) -> std::io::Result<std::thread::ScopedJoinHandle<'s, T>> {
        std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(scope, body)
    }

    /// How many threads of its own, at most `max`, the store may run work on beside the
    /// calling thread: one per CPU but the caller's, at least one (`max` in tests, so the
    /// parallel path is what they check); 0 under loom.
    pub(crate) fn helpers(max: usize) -> usize {
        if cfg!(sessile_loom) {
            return 0;
        }
        if cfg!(test) {
            return max;
        }
        std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .clamp(1, max)
    }
}
