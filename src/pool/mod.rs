//! A worker pool on one [MPMC ring](crate::mpmc): bounded queue, backpressure chosen at
//! `submit`, workers pinned to cores that scale between high- and low-water marks, latency
//! histograms, and a shutdown that loses nothing.
//!
//! The pool is a layer: safe code using only the public API of [`crate::mpmc`].
//!
//! ```
//! use std::time::Duration;
//! use weir::pool::{Overflow, Pool};
//! let pool = Pool::builder()
//!     .capacity(4096)
//!     .workers(1..=4)
//!     .high_water(0.75)
//!     .low_water(0.10)
//!     .batch(64)
//!     .overflow(Overflow::Block)
//!     .build(|batch: &mut Vec<u64>| {
//!         for job in batch.drain(..) {
//!             std::hint::black_box(job * 2);
//!         }
//!     })?;
//! for job in 0..10_000 {
//!     pool.submit(job).unwrap();
//! }
//! let m = pool.metrics(); // depth, lag, workers, rates, latency percentiles
//! assert!(m.workers >= 1);
//! let report = pool.shutdown(); // drains everything, joins, final metrics
//! assert_eq!(report.metrics.completed, 10_000);
//! # Ok::<(), weir::pool::BuildError>(())
//! ```
//!
//! # The path of a job
//! [`Pool::submit`] takes a token from the rate limit if there is one, stamps the job with the
//! current [`Instant`] inside an internal envelope, and pushes it under the [`Overflow`] policy.
//! A worker takes up to `batch` envelopes at once (`pop_batch_timeout`), records each one's
//! queue wait (from the stamp to the dequeue: a blocked submit's wait for room included), calls
//! the handler, and records the call's service time; both
//! go into the worker's own HdrHistograms, merged by [`Pool::metrics`].
//!
//! # Scaling
//! The pool starts with `min` workers. The submit whose push leaves the queue at or above the
//! high-water mark raises an edge-triggered flag and wakes the supervisor thread (parked on a
//! condition variable); submits that do not cross pay one relaxed load and no syscall. The
//! supervisor adds one worker, waits the cool-down, and looks again: another worker while the
//! depth is still at or above the mark, up to `max`; once it is below, it re-arms the flag and
//! sleeps. A worker that has seen the depth at or below the low-water mark at every look for a
//! whole idle window retires, unless the pool is at `min` — and only one worker at a time: a
//! retirement must also be a whole idle window after the pool's last scale event (up or down;
//! the start counts as one), a time shared by all workers and claimed with a compare-and-swap.
//! So workers whose windows run out together (the queue went quiet for all of them at once)
//! leave one per idle window, not in the same instant, and each step is judged on a queue that
//! has already lost the previous worker. Between the two marks nothing happens (hysteresis), so
//! a load at either edge cannot make the pool flap; see the `scaling` module for the argument
//! and the tests that count events under such loads.
//!
//! # Pinning
//! Each worker takes the allowed core ([`PoolBuilder::pin_cores`], default every core) that the
//! fewest live workers hold, earliest in the list on ties: distinct cores while there are no more
//! workers than cores, then **even round-robin sharing** (extra workers stay pinned, two to a
//! core, then three...). A core the OS refuses (absent, outside the cpuset, unsupported
//! platform) is counted in [`PoolMetrics::pin_failures`] and that worker runs unpinned; pinning
//! never panics. [`PoolBuilder::unpinned`] turns it off.
//!
//! # Overflow and the rate limit
//! The [`Overflow`] policy says what `submit` does when the queue is full. With a rate limit
//! ([`PoolBuilder::rate_limit`], a token bucket) `submit` first takes a token; when the bucket
//! is empty, under [`Overflow::Block`] it sleeps until a token is due, under
//! [`Overflow::Timeout`] it does the same if the token is due before the deadline (the one
//! deadline covers both the token and the room) and otherwise refuses at once, and under
//! [`Overflow::Reject`], [`Overflow::DropNewest`] and [`Overflow::DropOldest`] it refuses at
//! once. A refusal by the rate limit is always [`SubmitError::RateLimited`] with the item handed
//! back, never a drop: the drop policies are about a full queue, not about pace.
//!
//! # Handler panics
//! Every handler call runs under `catch_unwind`. A panic is counted in
//! [`PoolMetrics::panics`]; the worker carries on with the next batch. The items counted in
//! [`PoolMetrics::failed`] are exactly the items of that call: for a batch handler
//! ([`PoolBuilder::build`]) every item of the batch as handed to the handler (whether or not it
//! had processed some of them; none of them is counted completed), for a per-item handler
//! ([`PoolBuilder::build_each`]) the one item. Items a batch handler left in its `Vec` are
//! dropped. As with a poisoned mutex, state the handler shares across calls may have been left
//! half-updated by the panic; that is the handler's to judge.
//!
//! # Shutdown and accounting
//! [`Pool::shutdown`] (and dropping the pool) stops intake (later submits, through a
//! [`Submitter`], get [`SubmitError::ShutDown`] with the item back), lets submits already in
//! progress finish, has the workers drain every queued item, joins them and returns a
//! [`PoolReport`]. [`Pool::shutdown_now`] stops the workers after their current batch and hands
//! back every item not processed. Either way each submitted item is counted exactly once:
//!
//! `submitted == completed + failed + rejected + dropped + displaced + returned`.

mod builder;
mod latency;
mod metrics;
mod pinning;
mod rate;
mod scaling;
mod supervisor;
mod worker;

pub use builder::{BuildError, Overflow, PoolBuilder};
pub use latency::LatencySummary;
pub use metrics::{PoolMetrics, PoolReport};

use crate::mpmc;
use crate::{PushTimeoutError, TryPushError};
use builder::Config;
use crossbeam_utils::sync::ShardedLock;
use metrics::Registry;
use pinning::CorePlan;
use rate::TokenBucket;
use scaling::{HighWaterEdge, ScaleClock};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Locks a mutex, ignoring poisoning: the pool's mutexes guard tallies that stay consistent
/// whatever panicked while one was held.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A job as it travels through the queue: stamped at enqueue for the queue-wait histogram.
struct Envelope<T> {
    job: T,
    enqueued: Instant,
}

/// A handler that takes a batch at a time.
type BatchFn<T> = Box<dyn Fn(&mut Vec<T>) + Send + Sync>;
/// A handler, or a displaced-item callback, that takes one item.
type ItemFn<T> = Box<dyn Fn(T) + Send + Sync>;

/// The user's handler.
enum Handler<T> {
    Batch(BatchFn<T>),
    Each(ItemFn<T>),
}

/// `submit` refused the item; it is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError<T> {
    /// The queue was full under [`Overflow::Reject`].
    Full(T),
    /// The queue stayed full until the deadline of [`Overflow::Timeout`].
    Timeout(T),
    /// The rate limit had no token (and, under [`Overflow::Timeout`], none was due before the
    /// deadline; see the [module docs](self#overflow-and-the-rate-limit)). A submit that waits
    /// for a token when the pool shuts down gets [`ShutDown`](Self::ShutDown).
    RateLimited(T),
    /// The pool is shutting down or shut down: it takes no more jobs.
    ShutDown(T),
}

impl<T> SubmitError<T> {
    /// Hands back the job that was refused.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(t) | Self::Timeout(t) | Self::RateLimited(t) | Self::ShutDown(t) => t,
        }
    }

    /// `true` for [`SubmitError::ShutDown`].
    pub fn is_shut_down(&self) -> bool {
        matches!(self, Self::ShutDown(_))
    }

    fn message(&self) -> &'static str {
        match self {
            Self::Full(_) => "the pool's queue is full",
            Self::Timeout(_) => "timed out waiting for room in the pool's queue",
            Self::RateLimited(_) => "refused by the pool's rate limit",
            Self::ShutDown(_) => "the pool is shut down",
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Full(_) => "Full",
            Self::Timeout(_) => "Timeout",
            Self::RateLimited(_) => "RateLimited",
            Self::ShutDown(_) => "ShutDown",
        }
    }
}

impl<T> fmt::Debug for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubmitError::{}(..)", self.name())
    }
}

impl<T> fmt::Display for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl<T> std::error::Error for SubmitError<T> {}

/// Tallies kept by submitters and the supervisor (slow paths only).
#[derive(Debug, Default)]
struct Counters {
    rejected: AtomicU64,
    rate_limited: AtomicU64,
    dropped: AtomicU64,
    displaced: AtomicU64,
    scale_ups: AtomicU64,
    scale_downs: AtomicU64,
    pin_failures: AtomicU64,
    spawn_failures: AtomicU64,
    returned: AtomicU64,
}

impl Counters {
    fn bump(c: &AtomicU64) {
        // Relaxed: a tally, read only for reporting (exact once the threads are joined).
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// The supervisor's mailbox.
#[derive(Debug, Default)]
struct SupervisorState {
    /// A submit crossed the high-water mark.
    pending: bool,
    /// The pool is shutting down.
    stop: bool,
}

/// The last `metrics()` call, for rates.
#[derive(Debug)]
struct RateMark {
    at: Instant,
    submitted: u64,
    finished: u64,
}

/// Everything the pool's threads share.
struct Shared<T> {
    config: Config,
    /// Workers try to pin (false after `unpinned()`).
    pin: bool,
    cores: CorePlan,
    /// The only producer handle. Submits hold a read guard while they push; shutdown takes the
    /// write lock, which waits for submits in progress, and drops the producer, which
    /// disconnects the ring so that workers drain it and exit. Sharded, so that submitting
    /// threads do not contend on one lock word.
    producer: ShardedLock<Option<mpmc::Producer<Envelope<T>>>>,
    /// A consumer handle kept by the pool: workers clone it; shutdown_now drains with it.
    consumer: mpmc::Consumer<Envelope<T>>,
    handler: Handler<T>,
    on_displaced: Option<ItemFn<T>>,
    rate: Option<TokenBucket>,
    /// Intake stopped.
    closed: AtomicBool,
    /// shutdown_now: workers stop after their current batch.
    stop_now: AtomicBool,
    edge: HighWaterEdge,
    /// The last scale event: spaces retirements to one per idle window.
    scale_clock: ScaleClock,
    supervisor: Mutex<SupervisorState>,
    supervisor_wake: Condvar,
    /// Live workers (spawned and not yet exited or retired).
    live: AtomicUsize,
    next_worker_id: AtomicUsize,
    counters: Counters,
    registry: Mutex<Registry>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    started: Instant,
    rate_mark: Mutex<RateMark>,
}

/// Why a submit failed, before it is turned into a [`SubmitError`] and counted.
enum Refusal {
    Full,
    Timeout,
    RateLimited,
    ShutDown,
}

impl<T: Send + 'static> Shared<T> {
    fn submit(&self, job: T) -> Result<(), SubmitError<T>> {
        let overflow = self.config.overflow;
        // `None` for an unreachable deadline: wait as under Block.
        let deadline = match overflow {
            Overflow::Timeout(d) => Instant::now().checked_add(d),
            _ => None,
        };
        if let Some(bucket) = &self.rate {
            if let Err(why) = self.take_token(bucket, deadline) {
                return Err(self.refuse(why, job));
            }
        }
        let guard = self.producer.read().unwrap_or_else(PoisonError::into_inner);
        let tx = match guard.as_ref() {
            // Relaxed: an early exit only; the write lock is what stops intake for good.
            Some(tx) if !self.closed.load(Ordering::Relaxed) => tx,
            _ => {
                drop(guard);
                return Err(self.refuse(Refusal::ShutDown, job));
            }
        };
        let env = Envelope {
            job,
            enqueued: Instant::now(),
        };
        let mut displaced = None;
        let outcome = match overflow {
            Overflow::Block => tx
                .push(env)
                .map_err(|e| (Refusal::ShutDown, e.into_inner())),
            Overflow::Timeout(_) => match deadline {
                Some(deadline) => tx.push_deadline(env, deadline).map_err(|e| match e {
                    PushTimeoutError::Timeout(env) => (Refusal::Timeout, env),
                    PushTimeoutError::Disconnected(env) => (Refusal::ShutDown, env),
                }),
                None => tx
                    .push(env)
                    .map_err(|e| (Refusal::ShutDown, e.into_inner())),
            },
            Overflow::Reject => tx.try_push(env).map_err(|e| match e {
                TryPushError::Full(env) => (Refusal::Full, env),
                TryPushError::Disconnected(env) => (Refusal::ShutDown, env),
            }),
            Overflow::DropNewest => match tx.try_push_or_shed(env) {
                Ok(()) => Ok(()),
                Err(TryPushError::Full(env)) => {
                    Counters::bump(&self.counters.dropped);
                    displaced = Some(env); // dropped below, outside the lock
                    Ok(())
                }
                Err(TryPushError::Disconnected(env)) => Err((Refusal::ShutDown, env)),
            },
            Overflow::DropOldest => match tx.force_push(env) {
                Ok(None) => Ok(()),
                Ok(Some(old)) => {
                    Counters::bump(&self.counters.displaced);
                    displaced = Some(old);
                    Ok(())
                }
                Err(e) => Err((Refusal::ShutDown, e.into_inner())),
            },
        };
        let crossed = self.edge.after_push(self.config.marks, || tx.len());
        drop(guard);
        if crossed {
            self.wake_supervisor();
        }
        match outcome {
            Ok(()) => {
                if let Some(old) = displaced {
                    match (&self.on_displaced, overflow) {
                        (Some(f), Overflow::DropOldest) => f(old.job),
                        _ => drop(old),
                    }
                }
                Ok(())
            }
            Err((why, env)) => Err(self.refuse(why, env.job)),
        }
    }

    /// Takes a token from the bucket, waiting when the policy allows (see the module docs).
    fn take_token(&self, bucket: &TokenBucket, deadline: Option<Instant>) -> Result<(), Refusal> {
        /// Sleep in slices of at most this, so that a shutdown is noticed.
        const SLICE: Duration = Duration::from_millis(10);
        let may_wait = matches!(self.config.overflow, Overflow::Block | Overflow::Timeout(_));
        loop {
            let wait = match bucket.try_take() {
                Ok(()) => return Ok(()),
                Err(wait) => wait,
            };
            if !may_wait {
                return Err(Refusal::RateLimited);
            }
            // Relaxed: a hint to stop waiting; intake is stopped for good by the write lock.
            if self.closed.load(Ordering::Relaxed) {
                return Err(Refusal::ShutDown);
            }
            if let Some(deadline) = deadline {
                // No token before the deadline (or so far off that the instant overflows).
                if Instant::now()
                    .checked_add(wait)
                    .is_none_or(|due| due > deadline)
                {
                    return Err(Refusal::RateLimited);
                }
            }
            std::thread::sleep(wait.min(SLICE));
        }
    }

    #[cold]
    fn refuse(&self, why: Refusal, job: T) -> SubmitError<T> {
        Counters::bump(&self.counters.rejected);
        match why {
            Refusal::Full => SubmitError::Full(job),
            Refusal::Timeout => SubmitError::Timeout(job),
            Refusal::RateLimited => {
                Counters::bump(&self.counters.rate_limited);
                SubmitError::RateLimited(job)
            }
            Refusal::ShutDown => SubmitError::ShutDown(job),
        }
    }

    #[cold]
    fn wake_supervisor(&self) {
        lock(&self.supervisor).pending = true;
        self.supervisor_wake.notify_one();
    }

    fn metrics(&self) -> PoolMetrics {
        // Worker tallies first, then the ring: `accepted` read after `completed` can only be
        // larger, so `lag` does not dip below zero from the order of the reads.
        let totals = lock(&self.registry).total();
        let ring = self.consumer.metrics();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let c = &self.counters;
        let (rejected, dropped, displaced) =
            (load(&c.rejected), load(&c.dropped), load(&c.displaced));
        let returned = load(&c.returned);
        let accepted = ring.pushed;
        let submitted = accepted + rejected + dropped;
        let finished = totals.completed + totals.failed;
        let now = Instant::now();
        let (rate_in, rate_out) = {
            let mut mark = lock(&self.rate_mark);
            let secs = now.saturating_duration_since(mark.at).as_secs_f64();
            let rates = if secs > 0.0 {
                (
                    submitted.saturating_sub(mark.submitted) as f64 / secs,
                    finished.saturating_sub(mark.finished) as f64 / secs,
                )
            } else {
                (0.0, 0.0)
            };
            *mark = RateMark {
                at: now,
                submitted,
                finished,
            };
            rates
        };
        PoolMetrics {
            capacity: self.config.capacity,
            depth: ring.depth,
            lag: accepted.saturating_sub(finished + displaced + returned),
            workers: self.live.load(Ordering::Relaxed),
            submitted,
            accepted,
            completed: totals.completed,
            rejected,
            rate_limited: load(&c.rate_limited),
            dropped,
            displaced,
            failed: totals.failed,
            panics: totals.panics,
            scale_ups: load(&c.scale_ups),
            scale_downs: load(&c.scale_downs),
            pin_failures: load(&c.pin_failures),
            spawn_failures: load(&c.spawn_failures),
            rate_in,
            rate_out,
            uptime: now.saturating_duration_since(self.started),
            queue_latency: totals.latency.queue_summary(),
            service_latency: totals.latency.service_summary(),
            ring,
        }
    }
}

/// A pool of worker threads consuming jobs of type `T` from one bounded MPMC queue.
///
/// Build one with [`Pool::builder`]. `Pool` is `Sync`: share `&pool` among scoped threads, or
/// hand out [`Submitter`]s. See the [module docs](self) for scaling, pinning, overflow, panics
/// and shutdown.
pub struct Pool<T: Send + 'static> {
    shared: Arc<Shared<T>>,
    supervisor: Option<JoinHandle<()>>,
    finished: bool,
}

impl<T: Send + 'static> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("capacity", &self.shared.config.capacity)
            .field("workers", &self.shared.live.load(Ordering::Relaxed))
            .field("depth", &self.shared.consumer.len())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Pool<T> {
    /// Starts configuring a pool (see [`PoolBuilder`] for the options and defaults).
    pub fn builder() -> PoolBuilder<T> {
        PoolBuilder::default()
    }

    fn start(mut builder: PoolBuilder<T>, handler: Handler<T>) -> Result<Self, BuildError> {
        let config = builder.config()?;
        let (tx, rx) = mpmc::Builder::new(config.capacity)
            .wait_strategy(config.wait)
            .build::<Envelope<T>>()?;
        let now = Instant::now();
        let shared = Arc::new(Shared {
            pin: builder.pinning_wanted(),
            cores: CorePlan::new(config.cores.clone()),
            producer: ShardedLock::new(Some(tx)),
            consumer: rx,
            handler,
            on_displaced: builder.on_displaced.take(),
            rate: config
                .rate
                .map(|(per_second, burst)| TokenBucket::new(per_second, burst, now)),
            closed: AtomicBool::new(false),
            stop_now: AtomicBool::new(false),
            edge: HighWaterEdge::default(),
            scale_clock: ScaleClock::new(now),
            supervisor: Mutex::new(SupervisorState::default()),
            supervisor_wake: Condvar::new(),
            live: AtomicUsize::new(0),
            next_worker_id: AtomicUsize::new(0),
            counters: Counters::default(),
            registry: Mutex::new(Registry::default()),
            handles: Mutex::new(Vec::new()),
            started: now,
            rate_mark: Mutex::new(RateMark {
                at: now,
                submitted: 0,
                finished: 0,
            }),
            config,
        });
        // From here on, an early return drops `pool`, which shuts down what was started.
        let mut pool = Pool {
            shared,
            supervisor: None,
            finished: false,
        };
        for _ in 0..pool.shared.config.min {
            pool.shared.live.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = worker::spawn(&pool.shared) {
                pool.shared.live.fetch_sub(1, Ordering::Relaxed);
                return Err(BuildError::Spawn(e));
            }
        }
        pool.supervisor = Some(supervisor::spawn(&pool.shared).map_err(BuildError::Spawn)?);
        Ok(pool)
    }

    /// Submits a job, applying the rate limit and the [`Overflow`] policy; on refusal the job
    /// is handed back in the error (see [`SubmitError`]).
    ///
    /// **Cost** when the queue has room: a read lock on this thread's shard of the intake lock
    /// (uncontended across submitting threads), one `Instant::now()` for the queue-wait stamp,
    /// the ring's push, and one relaxed load of the high-water flag, plus one read of the depth
    /// while the flag is down. A syscall happens only on the submit that crosses the high-water
    /// mark (to wake the supervisor) or when a parked worker must be woken.
    ///
    /// ```
    /// use weir::pool::{Overflow, Pool, SubmitError};
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let rx = std::sync::Mutex::new(rx);
    /// let pool = Pool::builder()
    ///     .capacity(1)
    ///     .workers(1..=1)
    ///     .batch(1)
    ///     .overflow(Overflow::Reject)
    ///     .unpinned()
    ///     .build_each(move |_: &str| rx.lock().unwrap().recv().unwrap())?;
    /// pool.submit("a").unwrap(); // the worker takes it and waits on the channel...
    /// while pool.depth() > 0 {
    ///     std::thread::yield_now();
    /// }
    /// pool.submit("b").unwrap(); // ...so "b" fills the queue
    /// assert!(matches!(pool.submit("c"), Err(SubmitError::Full("c"))));
    /// tx.send(()).unwrap();
    /// tx.send(()).unwrap();
    /// let report = pool.shutdown();
    /// assert_eq!((report.metrics.completed, report.metrics.rejected), (2, 1));
    /// # Ok::<(), weir::pool::BuildError>(())
    /// ```
    #[inline]
    pub fn submit(&self, job: T) -> Result<(), SubmitError<T>> {
        self.shared.submit(job)
    }

    /// A cloneable handle that submits to this pool from any thread, even after the pool is
    /// gone (it then gets [`SubmitError::ShutDown`], with the job back).
    pub fn submitter(&self) -> Submitter<T> {
        Submitter {
            shared: self.shared.clone(),
        }
    }

    /// Jobs in the queue now (cheap: two atomic loads).
    pub fn depth(&self) -> usize {
        self.shared.consumer.len()
    }

    /// Live workers now (cheap: one atomic load).
    pub fn workers(&self) -> usize {
        self.shared.live.load(Ordering::Relaxed)
    }

    /// A snapshot of the pool's numbers (see [`PoolMetrics`]). Merges every worker's latency
    /// histograms; the rates are since the previous call.
    pub fn metrics(&self) -> PoolMetrics {
        self.shared.metrics()
    }

    /// Stops intake, lets every queued job be processed, joins the workers and reports.
    /// Dropping the pool does the same (without the report).
    ///
    /// Submits already in progress (for example blocked on a full queue) complete first; later
    /// ones get [`SubmitError::ShutDown`]. This waits for every handler call to return.
    pub fn shutdown(mut self) -> PoolReport {
        self.finish(false).0
    }

    /// Stops intake, stops each worker after the batch it is processing, joins them, and hands
    /// back every job that was not processed (oldest first), counted in
    /// [`PoolReport::returned`]. Jobs of a submit blocked on the full queue at that moment are
    /// taken in and handed back too. This waits for the handler calls in progress to return.
    ///
    /// ```
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let rx = std::sync::Mutex::new(rx);
    /// let pool = weir::pool::Pool::builder()
    ///     .capacity(16)
    ///     .workers(1..=1)
    ///     .batch(1)
    ///     .unpinned()
    ///     .build_each(move |_: u32| {
    ///         let _ = rx.lock().unwrap().recv(); // wait for the test to let it go
    ///     })?;
    /// for i in 0..10 {
    ///     pool.submit(i).unwrap();
    /// }
    /// while pool.depth() > 9 {
    ///     std::thread::yield_now(); // until the worker holds job 0
    /// }
    /// drop(tx); // let it go: it finishes job 0, maybe a few more, then stops
    /// let (report, rest) = pool.shutdown_now();
    /// assert_eq!(report.metrics.completed + rest.len() as u64, 10);
    /// assert_eq!(report.accounted(), report.metrics.submitted);
    /// # Ok::<(), weir::pool::BuildError>(())
    /// ```
    pub fn shutdown_now(mut self) -> (PoolReport, Vec<T>) {
        self.finish(true)
    }

    fn finish(&mut self, now: bool) -> (PoolReport, Vec<T>) {
        self.finished = true;
        let s = &*self.shared;
        // SeqCst: plain flags set once; the ordering that matters comes from the locks below.
        // `stop_now` first, so that anyone who sees `closed` (`Submitter::is_shut_down`) knows
        // the workers have been told to stop.
        if now {
            s.stop_now.store(true, Ordering::SeqCst);
        }
        s.closed.store(true, Ordering::SeqCst);
        // Stop the supervisor first, so that no worker starts after this point.
        lock(&s.supervisor).stop = true;
        s.supervisor_wake.notify_all();
        let mut crashes = 0;
        if let Some(h) = self.supervisor.take() {
            crashes += u64::from(h.join().is_err());
        }
        // Take the producer: the write lock waits for submits in progress. Dropping it
        // disconnects the ring: workers drain it, see `Disconnected`, and exit.
        let mut rest = Vec::new();
        let mut batch = Vec::new();
        let mut drain = |rest: &mut Vec<T>| {
            while let Ok(n) = s.consumer.try_pop_batch(&mut batch, 1024) {
                if n == 0 {
                    break;
                }
                rest.extend(batch.drain(..).map(|e: Envelope<T>| e.job));
            }
        };
        if now {
            // Workers are stopping, so a submit blocked on a full queue would wait for ever:
            // drain while waiting for the lock, which gives it room.
            loop {
                drain(&mut rest);
                match s.producer.try_write() {
                    Ok(mut g) => break drop(g.take()),
                    Err(TryLockError::Poisoned(p)) => break drop(p.into_inner().take()),
                    Err(TryLockError::WouldBlock) => std::thread::yield_now(),
                }
            }
        } else {
            drop(
                s.producer
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(),
            );
        }
        loop {
            let handles = std::mem::take(&mut *lock(&s.handles));
            if handles.is_empty() {
                break;
            }
            for h in handles {
                crashes += u64::from(h.join().is_err());
            }
        }
        // Whatever is left (only after shutdown_now) goes back to the caller.
        drain(&mut rest);
        s.counters
            .returned
            .store(rest.len() as u64, Ordering::Relaxed);
        let report = PoolReport {
            metrics: s.metrics(),
            returned: rest.len() as u64,
            worker_crashes: crashes,
        };
        (report, rest)
    }
}

impl<T: Send + 'static> Drop for Pool<T> {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(false);
        }
    }
}

/// A cloneable handle that submits jobs to a [`Pool`].
///
/// ```
/// let pool = weir::pool::Pool::builder().unpinned().build_each(|_: u64| {})?;
/// let submitter = pool.submitter();
/// std::thread::spawn(move || submitter.submit(1).unwrap()).join().unwrap();
/// let late = pool.submitter();
/// assert_eq!(pool.shutdown().metrics.completed, 1);
/// assert!(late.submit(2).unwrap_err().is_shut_down());
/// # Ok::<(), weir::pool::BuildError>(())
/// ```
pub struct Submitter<T: Send + 'static> {
    shared: Arc<Shared<T>>,
}

impl<T: Send + 'static> Submitter<T> {
    /// Same as [`Pool::submit`].
    #[inline]
    pub fn submit(&self, job: T) -> Result<(), SubmitError<T>> {
        self.shared.submit(job)
    }

    /// Jobs in the queue now.
    pub fn depth(&self) -> usize {
        self.shared.consumer.len()
    }

    /// `true` once the pool has begun shutting down.
    pub fn is_shut_down(&self) -> bool {
        // Acquire: pairs with the SeqCst store in `finish`, so that whoever sees `true` also
        // sees the `stop_now` flag stored before it.
        self.shared.closed.load(Ordering::Acquire)
    }
}

impl<T: Send + 'static> Clone for Submitter<T> {
    fn clone(&self) -> Self {
        Submitter {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Send + 'static> fmt::Debug for Submitter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submitter").finish_non_exhaustive()
    }
}
