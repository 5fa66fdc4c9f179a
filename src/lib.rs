//! # weir
//!
//! Lock-free in-process ring buffers for low-latency pipelines, with backpressure chosen per
//! call, batching on both sides, and metrics that cost the fast path nothing.
//!
//! - [`spsc`]: one producer, one consumer; wait-free fast path, cached counters.
//! - [`mpmc`]: many producers, many consumers (handles are `Clone`); adds `force_push`
//!   (displace the oldest) and `try_push_or_shed` (shed the newest).
//! - [`pool`]: a bounded queue with an overflow policy and a rate limit at `submit`, and
//!   workers pinned to cores that scale between water marks.
//! - [`WaitStrategy`]: how blocking calls wait (spin, yield, spin-then-park on a futex).
//! - [`RingMetrics`]: counters you can monitor (depth, full/empty events, time blocked, parks).
//!
//! Every call that refuses an item hands it back inside its error; capacities are exact.
//!
//! ```
//! use std::thread;
//! let (mut tx, mut rx) = weir::spsc::channel::<u64>(1024);
//! let producer = thread::spawn(move || {
//!     for i in 0..10_000 {
//!         tx.push(i).unwrap(); // blocks (spin, then park) while the ring is full
//!     }
//! });
//! let mut batch = Vec::with_capacity(64);
//! let mut sum = 0;
//! while let Ok(_) = rx.pop_batch(&mut batch, 64) { // waits for >= 1, takes up to 64
//!     sum += batch.drain(..).sum::<u64>();
//! }
//! assert_eq!(sum, (0..10_000).sum());
//! producer.join().unwrap();
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

mod buffer;
mod error;
mod metrics;
mod sync;
pub mod wait;

pub mod mpmc;
#[cfg(not(loom))]
pub mod pool;
pub mod spsc;

/// Loom builds only: the pool's scaling flag and clock (`src/pool/scaling.rs`) on their own, for
/// the models in `tests/loom_pool.rs` (the pool itself is not built under loom). Not an API.
#[cfg(loom)]
#[doc(hidden)]
#[path = "pool/scaling.rs"]
pub mod __loom_scaling;

pub use error::{
    CapacityError, PopError, PopTimeoutError, PushError, PushTimeoutError, TryPopError,
    TryPushError,
};
pub use metrics::RingMetrics;
#[cfg(not(loom))]
pub use pool::{Overflow, Pool, PoolMetrics, PoolReport, SubmitError};
pub use wait::WaitStrategy;

/// The README's examples, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
