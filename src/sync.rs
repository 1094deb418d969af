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
