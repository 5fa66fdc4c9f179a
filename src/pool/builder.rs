//! [`PoolBuilder`]: every option of a pool, checked in one place before anything is spawned.

use super::pinning::all_cores;
use super::scaling::Marks;
use super::{Handler, ItemFn, Pool};
use crate::error::CapacityError;
use crate::wait::WaitStrategy;
use core_affinity::CoreId;
use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

/// What [`Pool::submit`] does when the queue is full.
///
/// ```
/// use std::time::Duration;
/// use weir::pool::{Overflow, Pool, SubmitError};
/// let pool = Pool::builder()
///     .capacity(1)
///     .workers(1..=1)
///     .overflow(Overflow::Timeout(Duration::from_millis(1)))
///     .build_each(|_: u32| std::thread::sleep(Duration::from_millis(50)))?;
/// # let _ = pool;
/// # Ok::<(), weir::pool::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Wait for room (spin, then park, per the pool's [`WaitStrategy`]). The default.
    Block,
    /// Refuse at once: [`SubmitError::Full`](super::SubmitError::Full), the item handed back.
    Reject,
    /// Wait at most this long for room, then refuse with
    /// [`SubmitError::Timeout`](super::SubmitError::Timeout), the item handed back.
    Timeout(Duration),
    /// Drop the item being submitted; `submit` returns `Ok(())` and the item is counted in
    /// [`PoolMetrics::dropped`](super::PoolMetrics::dropped).
    DropNewest,
    /// Make room by removing the oldest queued item; it is counted in
    /// [`PoolMetrics::displaced`](super::PoolMetrics::displaced) and handed to the
    /// [`on_displaced`](PoolBuilder::on_displaced) callback if one is set (else dropped).
    DropOldest,
}

/// The longest span a rate limit's burst may cover, in nanoseconds (2^62, about 146 years):
/// the token bucket's clock (`u64` nanoseconds since the pool started) then has room for the
/// burst, one more token and a process that runs another 146 years.
const RATE_SPAN_NS: f64 = (1u64 << 62) as f64;

/// Why a pool could not be built. Nothing was spawned.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// The queue capacity is zero or too large for memory.
    Capacity(CapacityError),
    /// The worker range is empty or starts at zero (a pool needs at least one worker to drain).
    Workers {
        /// The smallest number of workers asked for.
        min: usize,
        /// The largest number of workers asked for.
        max: usize,
    },
    /// The water marks must satisfy `0 <= low < high <= 1`, and stay apart in items:
    /// `floor(low * capacity) < ceil(high * capacity)` (fractions a hair apart can round to the
    /// same item count, which would leave no hysteresis).
    WaterMarks {
        /// The low-water fraction given.
        low: f64,
        /// The high-water fraction given.
        high: f64,
    },
    /// The batch size must be at least 1.
    ZeroBatch,
    /// A rate limit needs a finite rate above zero and a burst of at least 1, and the burst's
    /// tokens must span at most 2^62 ns (about 146 years: `(burst + 1) / per_second`), so that
    /// the bucket's nanosecond arithmetic never saturates and every burst is honoured.
    RateLimit {
        /// Tokens per second given.
        per_second: f64,
        /// Burst given.
        burst: u32,
    },
    /// `pin_cores` was given an empty list (use [`PoolBuilder::unpinned`] to turn pinning off).
    NoCores,
    /// The thread-name prefix contains a NUL byte, which no OS thread name can hold.
    ThreadName(String),
    /// The OS refused to start a thread.
    Spawn(std::io::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Capacity(e) => write!(f, "invalid pool capacity: {e}"),
            Self::Workers { min, max } => write!(
                f,
                "invalid worker range {min}..={max}: need 1 <= min <= max"
            ),
            Self::WaterMarks { low, high } => write!(
                f,
                "invalid water marks low {low}, high {high}: need 0 <= low < high <= 1"
            ),
            Self::ZeroBatch => f.write_str("batch size must be at least 1"),
            Self::RateLimit { per_second, burst } => write!(
                f,
                "invalid rate limit {per_second}/s, burst {burst}: need a finite rate > 0, \
                 burst >= 1, and (burst + 1) / rate within 2^62 ns"
            ),
            Self::NoCores => f.write_str("pin_cores was given no cores"),
            Self::ThreadName(name) => {
                write!(
                    f,
                    "invalid thread-name prefix {name:?}: it contains a NUL byte"
                )
            }
            Self::Spawn(e) => write!(f, "could not start a pool thread: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Capacity(e) => Some(e),
            Self::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CapacityError> for BuildError {
    fn from(e: CapacityError) -> Self {
        Self::Capacity(e)
    }
}

#[derive(Clone, Debug)]
enum Pinning {
    AllCores,
    Cores(Vec<usize>),
    Off,
}

/// The checked configuration a pool runs with.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) capacity: usize,
    pub(crate) min: usize,
    pub(crate) max: usize,
    pub(crate) marks: Marks,
    pub(crate) batch: usize,
    pub(crate) overflow: Overflow,
    pub(crate) rate: Option<(f64, u32)>,
    pub(crate) cooldown: Duration,
    pub(crate) idle_window: Duration,
    pub(crate) wait: WaitStrategy,
    pub(crate) cores: Vec<CoreId>,
    pub(crate) name: String,
}

impl Config {
    /// How long an idle worker sleeps between looks at the depth: half the idle window, kept
    /// within 1 ms ..= 1 s (so a long window costs one wake-up a second per idle worker, and a
    /// short one does not spin).
    pub(crate) fn idle_tick(&self) -> Duration {
        (self.idle_window / 2).clamp(Duration::from_millis(1), Duration::from_secs(1))
    }
}

/// Builds a [`Pool`]. Start with [`Pool::builder`].
///
/// Defaults: capacity 1024, workers `1..=` the number of CPUs, high water 0.75, low water 0.10,
/// batch 64, [`Overflow::Block`], no rate limit, cool-down 100 ms, idle window 1 s, pinned to
/// every core, [`WaitStrategy::default`].
///
/// ```
/// use std::time::Duration;
/// use weir::pool::{Overflow, Pool};
/// let pool = Pool::builder()
///     .capacity(4096)
///     .workers(1..=4)
///     .high_water(0.75)
///     .low_water(0.10)
///     .batch(64)
///     .overflow(Overflow::Block)
///     .rate_limit(100_000.0, 1_000)
///     .cooldown(Duration::from_millis(50))
///     .idle_window(Duration::from_millis(500))
///     .unpinned()
///     .build(|batch: &mut Vec<u64>| {
///         let _sum: u64 = batch.iter().sum();
///     })?;
/// pool.submit(7).unwrap();
/// let report = pool.shutdown();
/// assert_eq!(report.metrics.completed, 1);
/// # Ok::<(), weir::pool::BuildError>(())
/// ```
pub struct PoolBuilder<T> {
    capacity: usize,
    workers: RangeInclusive<usize>,
    high: f64,
    low: f64,
    pinning: Pinning,
    batch: usize,
    overflow: Overflow,
    rate: Option<(f64, u32)>,
    cooldown: Duration,
    idle_window: Duration,
    wait: WaitStrategy,
    name: String,
    pub(crate) on_displaced: Option<ItemFn<T>>,
}

impl<T> fmt::Debug for PoolBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("capacity", &self.capacity)
            .field("workers", &self.workers)
            .field("high", &self.high)
            .field("low", &self.low)
            .field("pinning", &self.pinning)
            .field("batch", &self.batch)
            .field("overflow", &self.overflow)
            .field("rate", &self.rate)
            .field("cooldown", &self.cooldown)
            .field("idle_window", &self.idle_window)
            .field("wait", &self.wait)
            .field("name", &self.name)
            .field("on_displaced", &self.on_displaced.is_some())
            .finish()
    }
}

impl<T> Default for PoolBuilder<T> {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        PoolBuilder {
            capacity: 1024,
            workers: 1..=cpus,
            high: 0.75,
            low: 0.10,
            pinning: Pinning::AllCores,
            batch: 64,
            overflow: Overflow::Block,
            rate: None,
            cooldown: Duration::from_millis(100),
            idle_window: Duration::from_secs(1),
            wait: WaitStrategy::default(),
            name: "weir-pool".into(),
            on_displaced: None,
        }
    }
}

impl<T: Send + 'static> PoolBuilder<T> {
    /// The queue holds exactly this many items.
    pub fn capacity(mut self, items: usize) -> Self {
        self.capacity = items;
        self
    }

    /// The pool runs between `min` and `max` workers (`min..=max`, `min >= 1`); it starts with
    /// `min`.
    pub fn workers(mut self, range: RangeInclusive<usize>) -> Self {
        self.workers = range;
        self
    }

    /// The depth, as a fraction of the capacity, at or above which the pool grows.
    pub fn high_water(mut self, fraction: f64) -> Self {
        self.high = fraction;
        self
    }

    /// The depth, as a fraction of the capacity, at or below which idle workers retire.
    pub fn low_water(mut self, fraction: f64) -> Self {
        self.low = fraction;
        self
    }

    /// The core ids workers may be pinned to (see the pinning policy in the [module
    /// docs](super#pinning)). Default: every core the OS reports.
    pub fn pin_cores(mut self, cores: impl IntoIterator<Item = usize>) -> Self {
        self.pinning = Pinning::Cores(cores.into_iter().collect());
        self
    }

    /// Workers are not pinned; the OS schedules them.
    pub fn unpinned(mut self) -> Self {
        self.pinning = Pinning::Off;
        self
    }

    /// The most items a worker takes from the queue at once (and hands to a batch handler).
    pub fn batch(mut self, items: usize) -> Self {
        self.batch = items;
        self
    }

    /// What `submit` does when the queue is full. Default [`Overflow::Block`].
    pub fn overflow(mut self, policy: Overflow) -> Self {
        self.overflow = policy;
        self
    }

    /// Limits submits to `per_second` on average, with bursts of up to `burst` (a token bucket,
    /// see [`Pool::submit`] for what happens when it is empty).
    pub fn rate_limit(mut self, per_second: f64, burst: u32) -> Self {
        self.rate = Some((per_second, burst));
        self
    }

    /// The least time between two scale-up steps. Default 100 ms; a cool-down under 1 ms is
    /// taken as 1 ms (the supervisor pauses at least that long between looks at the depth).
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// How long a worker must see the depth at or below the low mark before it retires; also
    /// the least time between a scale event (up or down) and the next retirement, so the pool
    /// shrinks one worker per window. Default 1 s.
    pub fn idle_window(mut self, window: Duration) -> Self {
        self.idle_window = window;
        self
    }

    /// How blocked submits and idle workers wait on the queue. Default
    /// [`WaitStrategy::SpinThenPark`].
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.wait = strategy;
        self
    }

    /// The prefix of the worker and supervisor thread names. Default `"weir-pool"`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.name = prefix.into();
        self
    }

    /// Under [`Overflow::DropOldest`], each displaced item is handed to `f`, on the submitting
    /// thread, after the new item is in the queue.
    pub fn on_displaced(mut self, f: impl Fn(T) + Send + Sync + 'static) -> Self {
        self.on_displaced = Some(Box::new(f));
        self
    }

    /// Checks every option; the pool is built from what this returns.
    pub(crate) fn config(&self) -> Result<Config, BuildError> {
        if self.capacity == 0 {
            return Err(CapacityError::Zero.into());
        }
        let (min, max) = (*self.workers.start(), *self.workers.end());
        if min == 0 || min > max {
            return Err(BuildError::Workers { min, max });
        }
        let (low, high) = (self.low, self.high);
        // Written so that NaN fails every comparison and lands in the error.
        if !(0.0 <= low && low < high && high <= 1.0) {
            return Err(BuildError::WaterMarks { low, high });
        }
        let cap = self.capacity as f64;
        let marks = Marks {
            high: ((high * cap).ceil() as usize).clamp(1, self.capacity),
            low: (low * cap).floor() as usize,
        };
        // In exact arithmetic floor(low * c) <= low * c < high * c <= ceil(high * c); in
        // floating point two fractions a hair apart can round to the same product.
        if marks.low >= marks.high {
            return Err(BuildError::WaterMarks { low, high });
        }
        if self.batch == 0 {
            return Err(BuildError::ZeroBatch);
        }
        if let Some((per_second, burst)) = self.rate {
            // The span of the burst, in f64 so that it cannot overflow; NaN fails the test.
            let span_ns = 1e9 / per_second * (f64::from(burst) + 1.0);
            if !(per_second.is_finite()
                && per_second > 0.0
                && burst >= 1
                && span_ns <= RATE_SPAN_NS)
            {
                return Err(BuildError::RateLimit { per_second, burst });
            }
        }
        if self.name.contains('\0') {
            return Err(BuildError::ThreadName(self.name.clone()));
        }
        let cores = match &self.pinning {
            Pinning::AllCores => all_cores(),
            Pinning::Cores(ids) if ids.is_empty() => return Err(BuildError::NoCores),
            Pinning::Cores(ids) => ids.iter().map(|&id| CoreId { id }).collect(),
            Pinning::Off => Vec::new(),
        };
        Ok(Config {
            capacity: self.capacity,
            min,
            max,
            marks,
            batch: self.batch,
            overflow: self.overflow,
            rate: self.rate,
            cooldown: self.cooldown,
            idle_window: self.idle_window,
            wait: self.wait,
            cores,
            name: self.name.clone(),
        })
    }

    /// Whether workers should try to pin (and count a failure when they cannot): true unless
    /// [`unpinned`](Self::unpinned) was chosen.
    pub(crate) fn pinning_wanted(&self) -> bool {
        !matches!(self.pinning, Pinning::Off)
    }

    /// Starts the pool with a handler that takes a batch at a time.
    ///
    /// The handler gets up to [`batch`](Self::batch) items in a `Vec` it may drain or leave
    /// (items left in it are dropped after it returns); it is called from several workers at
    /// once, hence `Fn + Sync`. The service time recorded is the duration of one call.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// let total = Arc::new(AtomicU64::new(0));
    /// let t = total.clone();
    /// let pool = weir::pool::Pool::builder()
    ///     .unpinned()
    ///     .build(move |batch: &mut Vec<u64>| {
    ///         t.fetch_add(batch.drain(..).sum::<u64>(), Ordering::Relaxed);
    ///     })?;
    /// for i in 1..=100 {
    ///     pool.submit(i).unwrap();
    /// }
    /// pool.shutdown();
    /// assert_eq!(total.load(Ordering::Relaxed), 5050);
    /// # Ok::<(), weir::pool::BuildError>(())
    /// ```
    pub fn build<F>(self, handler: F) -> Result<Pool<T>, BuildError>
    where
        F: Fn(&mut Vec<T>) + Send + Sync + 'static,
    {
        Pool::start(self, Handler::Batch(Box::new(handler)))
    }

    /// Starts the pool with a handler called once per item (workers still take items from the
    /// queue in batches). A panic fails only the item it was handling. The service time
    /// recorded is the duration of one call, i.e. of one item.
    ///
    /// ```
    /// let pool = weir::pool::Pool::builder()
    ///     .unpinned()
    ///     .build_each(|line: String| assert!(!line.is_empty()))?;
    /// pool.submit("hello".to_string()).unwrap();
    /// assert_eq!(pool.shutdown().metrics.completed, 1);
    /// # Ok::<(), weir::pool::BuildError>(())
    /// ```
    pub fn build_each<F>(self, handler: F) -> Result<Pool<T>, BuildError>
    where
        F: Fn(T) + Send + Sync + 'static,
    {
        Pool::start(self, Handler::Each(Box::new(handler)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(b: PoolBuilder<u8>) -> Result<Config, BuildError> {
        b.config()
    }

    #[test]
    fn defaults_are_valid() {
        let c = check(PoolBuilder::default().capacity(100)).unwrap();
        assert_eq!(c.marks, Marks { high: 75, low: 10 });
        assert_eq!((c.min, c.batch, c.overflow), (1, 64, Overflow::Block));
        assert!(c.max >= 1);
    }

    #[test]
    fn each_bad_option_has_its_own_error() {
        let b = || PoolBuilder::<u8>::default();
        assert!(matches!(
            check(b().capacity(0)),
            Err(BuildError::Capacity(CapacityError::Zero))
        ));
        assert!(matches!(
            check(b().workers(0..=2)),
            Err(BuildError::Workers { min: 0, max: 2 })
        ));
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 3..=2;
        assert!(matches!(
            check(b().workers(backwards)),
            Err(BuildError::Workers { min: 3, max: 2 })
        ));
        for (low, high) in [
            (0.5, 0.5),
            (0.6, 0.5),
            (-0.1, 0.5),
            (0.1, 1.5),
            (f64::NAN, 0.5),
            (0.1, f64::NAN),
            (0.1, 0.0),
        ] {
            assert!(
                matches!(
                    check(b().low_water(low).high_water(high)),
                    Err(BuildError::WaterMarks { .. })
                ),
                "{low} {high}"
            );
        }
        // Rounded to items on tiny queues: high rounds up, low rounds down.
        assert!(matches!(
            check(b().capacity(2).low_water(0.5).high_water(0.51)),
            Ok(Config {
                marks: Marks { high: 2, low: 1 },
                ..
            })
        ));
        assert!(matches!(
            check(b().capacity(1).low_water(0.99).high_water(1.0)),
            Ok(Config {
                marks: Marks { high: 1, low: 0 },
                ..
            })
        ));
        // floor(low * c) <= low * c < high * c <= ceil(high * c): marks never collapse.
        assert!(matches!(
            check(b().capacity(10).low_water(0.5).high_water(0.5001)),
            Ok(Config {
                marks: Marks { high: 6, low: 5 },
                ..
            })
        ));
        assert!(matches!(check(b().batch(0)), Err(BuildError::ZeroBatch)));
        for (rate, burst) in [
            (0.0, 1),
            (-1.0, 1),
            (f64::INFINITY, 1),
            (f64::NAN, 1),
            (10.0, 0),
        ] {
            assert!(matches!(
                check(b().rate_limit(rate, burst)),
                Err(BuildError::RateLimit { .. })
            ));
        }
        assert!(matches!(
            check(b().pin_cores(Vec::new())),
            Err(BuildError::NoCores)
        ));
    }

    #[test]
    fn errors_explain_themselves() {
        let e = BuildError::Workers { min: 0, max: 4 };
        assert!(e.to_string().contains("0..=4"), "{e}");
        let e = BuildError::from(CapacityError::Zero);
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn idle_tick_is_half_the_window_within_bounds() {
        let tick = |w| {
            check(PoolBuilder::default().idle_window(w))
                .unwrap()
                .idle_tick()
        };
        assert_eq!(tick(Duration::from_millis(100)), Duration::from_millis(50));
        assert_eq!(tick(Duration::ZERO), Duration::from_millis(1));
        assert_eq!(tick(Duration::from_secs(60)), Duration::from_secs(1));
    }
}
