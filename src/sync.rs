//! Every synchronisation primitive of the embedded store comes through here.
//!
//! Under `--cfg loom` the same names resolve to loom's model-checked versions, so the
//! store's concurrency can be explored exhaustively by `tests/loom.rs` without touching
//! the store's code. Outside loom they are `parking_lot` locks and `std` atomics.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicI64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicI64, Ordering};

/// A reader-writer lock with `parking_lot`'s infallible API.
#[derive(Debug)]
pub(crate) struct RwLock<T> {
    #[cfg(not(loom))]
    inner: parking_lot::RwLock<T>,
    #[cfg(loom)]
    inner: loom::sync::RwLock<T>,
}

#[cfg(not(loom))]
pub(crate) type ReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
#[cfg(not(loom))]
pub(crate) type WriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;
#[cfg(loom)]
pub(crate) type ReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;
#[cfg(loom)]
pub(crate) type WriteGuard<'a, T> = loom::sync::RwLockWriteGuard<'a, T>;

impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(loom))]
            inner: parking_lot::RwLock::new(value),
            #[cfg(loom)]
            inner: loom::sync::RwLock::new(value),
        }
    }

    #[cfg(not(loom))]
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        self.inner.read()
    }

    #[cfg(not(loom))]
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        self.inner.write()
    }

    #[cfg(loom)]
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(loom)]
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}
