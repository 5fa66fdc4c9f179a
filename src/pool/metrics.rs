//! The pool's numbers: what [`Pool::metrics`](super::Pool::metrics) and
//! [`Pool::shutdown`](super::Pool::shutdown) return, and the per-worker tallies behind them.

use super::latency::{Latency, LatencySummary};
use crate::metrics::RingMetrics;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one worker has done. Each worker owns one behind its own mutex, which it takes once per
/// batch; metrics readers take it briefly to merge.
#[derive(Clone, Debug, Default)]
pub(crate) struct WorkerStats {
    pub(crate) latency: Latency,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) panics: u64,
}

impl WorkerStats {
    pub(crate) fn merge(&mut self, other: &WorkerStats) {
        self.latency.merge(&other.latency);
        self.completed += other.completed;
        self.failed += other.failed;
        self.panics += other.panics;
    }
}

/// Every worker's stats: the live ones, and the sum of those that have exited. A worker moves
/// its stats from `live` into `retired` under this registry's lock, so a reader holding the
/// lock sees each worker counted exactly once.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) live: Vec<(usize, Arc<Mutex<WorkerStats>>)>,
    pub(crate) retired: WorkerStats,
}

impl Registry {
    pub(crate) fn total(&self) -> WorkerStats {
        let mut total = self.retired.clone();
        for (_, stats) in &self.live {
            total.merge(&stats.lock().unwrap_or_else(|e| e.into_inner()));
        }
        total
    }

    pub(crate) fn retire(&mut self, id: usize) {
        if let Some(i) = self.live.iter().position(|(w, _)| *w == id) {
            let (_, stats) = self.live.swap_remove(i);
            let stats = stats.lock().unwrap_or_else(|e| e.into_inner());
            self.retired.merge(&stats);
        }
    }
}

/// A snapshot of a pool.
///
/// Counters are read one by one without stopping the pool, so while it runs they may belong to
/// slightly different instants; once the pool has shut down they are exact and balance:
///
/// `submitted == completed + failed + rejected + dropped + displaced + (items returned by
/// shutdown_now)`, and while running the difference is [`lag`](Self::lag).
///
/// ```
/// let pool = weir::pool::Pool::builder().unpinned().build_each(|_: u8| {})?;
/// pool.submit(1).unwrap();
/// let m = pool.shutdown().metrics;
/// assert_eq!((m.submitted, m.completed, m.lag, m.depth), (1, 1, 0, 0));
/// assert_eq!(m.queue_latency.count, 1);
/// # Ok::<(), weir::pool::BuildError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct PoolMetrics {
    /// The queue's capacity.
    pub capacity: usize,
    /// Items in the queue now.
    pub depth: usize,
    /// Items accepted but not finished: queued, or in a handler right now
    /// (`accepted - completed - failed - displaced - returned`).
    pub lag: u64,
    /// Live workers now.
    pub workers: usize,
    /// Calls to `submit` (whatever their outcome).
    pub submitted: u64,
    /// Items that entered the queue.
    pub accepted: u64,
    /// Items whose handler returned normally.
    pub completed: u64,
    /// Items handed back to the caller by `submit` (queue full, timeout, rate limited, shut
    /// down).
    pub rejected: u64,
    /// Of `rejected`: refused by the rate limit.
    pub rate_limited: u64,
    /// Items dropped on submit under [`Overflow::DropNewest`](super::Overflow::DropNewest).
    pub dropped: u64,
    /// Queued items removed to make room under
    /// [`Overflow::DropOldest`](super::Overflow::DropOldest).
    pub displaced: u64,
    /// Items whose handler panicked (for a batch handler: the whole batch, see
    /// [`Pool`](super::Pool#handler-panics)).
    pub failed: u64,
    /// Handler panics caught.
    pub panics: u64,
    /// Workers added by the supervisor.
    pub scale_ups: u64,
    /// Workers that retired after an idle window.
    pub scale_downs: u64,
    /// Workers that could not be pinned to their core and ran unpinned.
    pub pin_failures: u64,
    /// Workers the supervisor could not start (the OS refused a thread).
    pub spawn_failures: u64,
    /// Submits per second since the previous `metrics()` call (or since the start).
    pub rate_in: f64,
    /// Items finished (completed or failed) per second over the same interval.
    pub rate_out: f64,
    /// Time since the pool started.
    pub uptime: Duration,
    /// Time from each item's enqueue (stamped in `submit` after any wait for a rate-limit
    /// token, before the push) to its dequeue by a worker: the wait in the queue, plus, for a
    /// submit that blocked on a full queue, the time it waited for room. The backpressure a
    /// submitter felt is part of its latency.
    pub queue_latency: LatencySummary,
    /// Time of each handler call (a batch for `build`, an item for `build_each`).
    pub service_latency: LatencySummary,
    /// The queue's own counters.
    pub ring: RingMetrics,
}

/// What a pool did, returned by [`Pool::shutdown`](super::Pool::shutdown) and
/// [`Pool::shutdown_now`](super::Pool::shutdown_now).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct PoolReport {
    /// The final metrics, taken after every worker has exited (exact).
    pub metrics: PoolMetrics,
    /// Items handed back unprocessed by `shutdown_now` (0 after `shutdown`).
    pub returned: u64,
    /// Worker threads that ended in a panic outside the handler (a bug in the pool; 0).
    pub worker_crashes: u64,
}

impl PoolReport {
    /// Items accounted for: `completed + failed + rejected + dropped + displaced + returned`.
    /// Equals `metrics.submitted` after a shutdown.
    ///
    /// ```
    /// let pool = weir::pool::Pool::builder().unpinned().build_each(|_: u8| {})?;
    /// for i in 0..10 {
    ///     pool.submit(i).unwrap();
    /// }
    /// let report = pool.shutdown();
    /// assert_eq!(report.accounted(), report.metrics.submitted);
    /// # Ok::<(), weir::pool::BuildError>(())
    /// ```
    pub fn accounted(&self) -> u64 {
        let m = &self.metrics;
        m.completed + m.failed + m.rejected + m.dropped + m.displaced + self.returned
    }
}
