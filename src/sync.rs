//! The one place that names atomics, cells, spin hints and blocking primitives.
//!
//! Under `cfg(loom)` everything here comes from [loom] so that the model checker sees every
//! shared access of the rings and of the park/wake protocol; otherwise it is `std` at zero cost.
//! The std [`UnsafeCell`] mirrors loom's closure API (`with`, `with_mut`) so that ring code is
//! written once (the same seam tokio keeps in `src/loom/`).
//!
//! Metric counters ([`StatU64`]) are always `std` atomics: they are bookkeeping, not part of any
//! protocol, and modelling them would only multiply loom's state space.
//!
//! [loom]: https://docs.rs/loom

#[cfg(loom)]
pub(crate) use loom::{
    hint::spin_loop,
    sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::yield_now,
};

#[cfg(not(loom))]
pub(crate) use std::{
    hint::spin_loop,
    sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    sync::{Arc, Mutex, MutexGuard},
    thread::yield_now,
};

#[cfg(all(not(loom), not(target_os = "linux")))]
pub(crate) use std::sync::Condvar;

/// A metrics counter: always a plain std atomic, updated only on slow paths.
pub(crate) use std::sync::atomic::AtomicU64 as StatU64;

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `std::cell::UnsafeCell` with loom's closure API, so ring code compiles unchanged under loom.
#[cfg(not(loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    #[inline(always)]
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a const pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
