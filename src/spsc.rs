//! The single-producer single-consumer ring.
//!
//! A bounded array of slots and two monotonic sequence counters, in the family of Lamport's ring
//! with cached counters (rigtorp's SPSCQueue, rtrb):
//!
//! - `tail`: items ever pushed. Written only by the [`Producer`] (Release), read by the consumer.
//! - `head`: items ever popped. Written only by the [`Consumer`] (Release), read by the producer.
//!
//! **Invariants.** `0 <= tail - head <= capacity` (wrapping arithmetic; the counters may wrap
//! around `usize::MAX`, which the tests exercise by starting near it). The items live in the
//! sequence numbers `head .. tail`; sequence `s` lives in slot `s & mask`, where the slot array
//! has `capacity.next_power_of_two()` slots and `capacity` (the exact bound the user asked for)
//! is what the producer compares against, so a ring of capacity 1000 never holds 1001.
//!
//! Each counter sits on its own 128-byte line. Each handle keeps its own counter in a plain field
//! (it is the only writer) and a *cached* copy of the other side's counter; it reloads the shared
//! one only when the cache says full (producer) or empty (consumer). So while the ring is neither
//! full nor empty the producer touches only the slot and its own `tail` line.
//!
//! **Orderings.** The producer writes the slot, then stores `tail` with Release; the consumer
//! loads `tail` with Acquire before reading the slot (the pair that publishes an item). The
//! consumer reads the slot, then stores `head` with Release; the producer loads `head` with
//! Acquire before overwriting the slot (the pair that returns a slot). Parking and waking use
//! the protocol in [`crate::wait`].
//!
//! **Flavours.** The ring comes in two flavours, a type parameter ([`Readiness`]): [`Indexed`]
//! (the default, described above) and [`Stamped`], in which each slot also holds a stamp that
//! says either "holds item `s`" (written by the producer, Release, after the item and after
//! `tail`) or "free for sequence `s`" (written by the consumer, Release, after it read the item
//! a lap before and before it publishes `head`). Every pop of the `Stamped` flavour learns of
//! its items from their stamps (Acquire) instead of `tail`, and a single push learns of room
//! from a stamp instead of `head`, so an item crosses between the cores as its slot's line and
//! neither side reads the other's counter on that path; the counters are still kept, for
//! `len`, the metrics, the batches and the blocking calls' thresholds, but single calls store
//! them only once per 16 items (readers move them on over the stamps). Stamps go after
//! `tail` so that `head` never passes `tail`; free marks go before `head`, so that room by
//! `head` implies room by the stamps (a single push may then run up to one release ahead of
//! `head + capacity`, which the reload of `head` allows for). [`Builder::build_stamped`]
//! builds one.
//!
//! **Progress.** `try_push`/`try_pop` and their batch forms are wait-free: a bounded number of
//! steps, whatever the other thread does.

mod readiness;

use crate::buffer::{
    completed_lines, demote_available, demote_line, next_line_start, prefetch_for_read,
    prefetch_for_write, slot_count, slots_per_line, write_prefetch_available, Slot, SlotArray,
    PREFETCH_LINES,
};
use crate::error::{
    CapacityError, PopError, PopTimeoutError, PushError, PushTimeoutError, TryPopError,
    TryPushError,
};
use crate::metrics::{RingMetrics, SideStats};
use crate::sync::{Arc, AtomicBool, AtomicUsize, Ordering};
use crate::wait::{
    init_barriers, light_barrier, spin_briefly, Event, SpinBudget, WaitStrategy, Waiter,
};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::mem::ManuallyDrop;
use std::time::{Duration, Instant};

use readiness::Cell;
pub use readiness::{Indexed, Readiness, Stamped};

/// How often a thread parked behind a wake-up threshold re-checks on its own (see
/// [`Builder::producer_wake_threshold`]).
const THRESHOLD_RECHECK: Duration = Duration::from_millis(2);

/// `Stamped` flavour: single pushes and pops store their counter once per this many items (a
/// power of two; fewer for smaller rings), not after each: the stamps already tell the other
/// side, and the store was a measured cost (docs/benchmarks.md, "What changed in the thirteenth
/// session" and "in the fourteenth session"). Readers of a counter move it on over the stamps,
/// at most this many minus one.
const COUNTER_PERIOD: usize = 16;

/// A single push that finds the ring full looks again at the consumer's counter no sooner than
/// this after its last refused look: a `try_push` within this interval of a refusal first waits
/// out the rest of it. Every look at a full ring takes the counter's cache line from the
/// consumer, whose next pop must then win it back before its store of `head` can drain; a
/// producer that retries at once, as a spinning caller does, keeps the consumer, the stage
/// that sets the pace when the ring is full, stalled on that line, and the ring then stays
/// full: with a consumer doing a few ns of work per item, the interval doubled the ring's rate
/// (harness row 1b, docs/benchmarks.md, "What changed in the seventeenth session"). The first
/// refusal of a run is immediate; a call long after the last refusal does not wait.
const REPOLL_INTERVAL: Duration = Duration::from_nanos(250);

/// The longest repoll interval [`Builder::repoll_interval`] takes: a `try_push` never blocks,
/// so it never waits longer than this.
const MAX_REPOLL_INTERVAL: Duration = Duration::from_millis(1);

/// Creates a ring that holds exactly `capacity` items, with the default options.
///
/// # Panics
/// If `capacity` is 0, its buffer would overflow the address space or the allocator refuses
/// it; [`try_channel`] and [`Builder::build`] return a [`CapacityError`] instead.
///
/// ```
/// let (mut tx, mut rx) = weir::spsc::channel::<String>(2);
/// tx.try_push("a".into()).unwrap();
/// tx.try_push("b".into()).unwrap();
/// let refused = tx.try_push("c".into()).unwrap_err();
/// assert!(refused.is_full());
/// assert_eq!(refused.into_inner(), "c"); // the item comes back
/// assert_eq!(rx.try_pop().unwrap(), "a");
/// ```
pub fn channel<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    match try_channel(capacity) {
        Ok(pair) => pair,
        Err(e) => panic!("weir::spsc::channel: {e}"),
    }
}

/// Creates a ring that holds exactly `capacity` items, or says why it cannot.
///
/// ```
/// use weir::CapacityError;
/// assert_eq!(weir::spsc::try_channel::<u8>(0).unwrap_err(), CapacityError::Zero);
/// assert!(weir::spsc::try_channel::<u64>(usize::MAX).is_err());
/// ```
pub fn try_channel<T>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
    Builder::new(capacity).build()
}

/// Options for an SPSC ring.
///
/// ```
/// use weir::{spsc, WaitStrategy};
/// let (tx, rx) = spsc::Builder::new(1024)
///     .wait_strategy(WaitStrategy::SpinThenPark { spins: 512, yields: 4 })
///     .producer_wake_threshold(256) // a parked producer is woken once 256 slots are free
///     .build::<u64>()?;
/// # drop((tx, rx));
/// # Ok::<(), weir::CapacityError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    capacity: usize,
    producer_wait: WaitStrategy,
    consumer_wait: WaitStrategy,
    producer_wake_threshold: Option<usize>,
    consumer_wake_threshold: usize,
    write_prefetch: bool,
    read_prefetch: bool,
    demote: bool,
    prefetch_lines: usize,
    repoll_interval: Duration,
    start: usize,
}

impl Builder {
    /// A ring of exactly `capacity` items (checked in [`build`](Self::build)).
    pub fn new(capacity: usize) -> Self {
        Builder {
            capacity,
            producer_wait: WaitStrategy::default(),
            consumer_wait: WaitStrategy::default(),
            producer_wake_threshold: None,
            consumer_wake_threshold: 1,
            write_prefetch: true,
            read_prefetch: true,
            demote: true,
            prefetch_lines: PREFETCH_LINES,
            repoll_interval: REPOLL_INTERVAL,
            start: 0,
        }
    }

    /// How both sides wait in blocking calls. Default: [`WaitStrategy::SpinThenPark`].
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.producer_wait = strategy;
        self.consumer_wait = strategy;
        self
    }

    /// How the producer waits for room in `push`/`push_timeout`.
    pub fn producer_wait(mut self, strategy: WaitStrategy) -> Self {
        self.producer_wait = strategy;
        self
    }

    /// How the consumer waits for items in `pop`/`pop_batch`/`pop_timeout`.
    pub fn consumer_wait(mut self, strategy: WaitStrategy) -> Self {
        self.consumer_wait = strategy;
        self
    }

    /// A producer parked on a full ring is woken once this many slots are free, so a slow
    /// consumer costs one wake-up per burst rather than one per item. Clamped to
    /// `1..=capacity`. Default: half the capacity (at least 1), so that the half still queued
    /// keeps the consumer busy while the producer wakes up (a futex wake takes tens of
    /// microseconds). A quarter was the default until the slow-consumer benchmark measured
    /// half: 25 % less producer CPU per item, the same wall time (docs/benchmarks.md).
    ///
    /// A blocking push that found the ring full waits (spinning or parked) until this many slots
    /// are free, then refills in a burst: with a slow consumer that is one wait per burst rather
    /// than one per item, and almost no CPU. Should the consumer stop short of the threshold,
    /// any free slot is taken after 2 ms (and a deadline takes any free slot rather than time
    /// out), so the producer is never stranded. `try_push` is not affected.
    pub fn producer_wake_threshold(mut self, slots: usize) -> Self {
        self.producer_wake_threshold = Some(slots);
        self
    }

    /// A consumer parked on an empty ring is woken once this many items are ready (batched
    /// wake-ups). Default 1: woken on the first item, latency first. Clamped to `1..=capacity`;
    /// above 1 the consumer also re-checks on its own every 2 ms.
    pub fn consumer_wake_threshold(mut self, items: usize) -> Self {
        self.consumer_wake_threshold = items;
        self
    }

    /// Whether pushes ask for the cache lines they will write next, eight lines ahead, in the
    /// state for writing (x86-64 `PREFETCHW`, where the CPU has it; elsewhere this setting does
    /// nothing): a single push of the [`Indexed`] flavour at each line start asks for the line
    /// eight lines on (a [`Stamped`] single push checks the stamp of the slot it writes, which
    /// brings that line in anyway), a batch
    /// (`push_slice`, `push_iter`) for the lines of the next batch up to eight lines past its
    /// end. Default: on. When the ring runs full, the line a push needs is the one the consumer
    /// has just read, still in the consumer's cache; asking early overlaps that transfer with
    /// the pushes in between. Only lines that are free by the producer's view are asked for,
    /// never one the consumer may still be reading. Turn it off to compare, or where both
    /// handles run on one core (docs/benchmarks.md, "What changed in the fourth session" and
    /// "... fifth session").
    ///
    /// ```
    /// let (tx, rx) = weir::spsc::Builder::new(1024).write_prefetch(false).build::<u64>()?;
    /// # drop((tx, rx));
    /// # Ok::<(), weir::CapacityError>(())
    /// ```
    pub fn write_prefetch(mut self, on: bool) -> Self {
        self.write_prefetch = on;
        self
    }

    /// Whether pops of the [`Indexed`] flavour ask for the cache lines they will read next
    /// (x86-64 `PREFETCHT0`), once the producer has published all of a line: a single pop at
    /// each line start asks for the line eight lines on, a batch (`read_chunk`,
    /// `try_pop_batch`, `pop_batch`) for the lines of the next batch, up to eight lines past its
    /// end. Default: on (on x86-64 CPUs with `PREFETCHW`, like the write prefetch; the
    /// [`Stamped`] flavour never does: its pops poll slots that may not be written yet). In a
    /// throughput run the consumer is the slower side and each new line it reads comes from
    /// the producer's cache; asking early overlaps those transfers. Turn it off to compare
    /// (docs/benchmarks.md, "What changed in the fourth session" and "... fifth session").
    ///
    /// ```
    /// let (tx, rx) = weir::spsc::Builder::new(1024).read_prefetch(false).build::<u64>()?;
    /// # drop((tx, rx));
    /// # Ok::<(), weir::CapacityError>(())
    /// ```
    pub fn read_prefetch(mut self, on: bool) -> Self {
        self.read_prefetch = on;
        self
    }

    /// Whether a batch publication ([`Producer::push_slice`], [`Producer::push_iter`]) pushes
    /// the cache lines it completed out of the producer core's private caches into the shared
    /// last-level cache (x86-64 `CLDEMOTE`), right after publishing them. The consumer's next
    /// reads of those lines are then served by that cache instead of a snoop into the
    /// producer's core: on the Sapphire Rapids guest of docs/benchmarks.md, batches of 64 `u64`
    /// moved 1.13–1.77× as fast with it as without (twenty harness runs). Default: on, on
    /// x86-64 CPUs with `CLDEMOTE` (Intel since Sapphire Rapids), for the [`Indexed`] flavour;
    /// nothing elsewhere. Single pushes and the [`Stamped`] flavour never demote: their consumer
    /// reads a line while it is still being written, and demoting it then costs more than it
    /// saves (docs/benchmarks.md, "What changed in the ninth session"). Turn it off to compare,
    /// or where both handles share a core.
    ///
    /// ```
    /// let (tx, rx) = weir::spsc::Builder::new(1024).write_demote(false).build::<u64>()?;
    /// # drop((tx, rx));
    /// # Ok::<(), weir::CapacityError>(())
    /// ```
    pub fn write_demote(mut self, on: bool) -> Self {
        self.demote = on;
        self
    }

    /// How long after a refused single push (the ring full by a fresh look at the consumer's
    /// counter) the producer waits before it looks again (default 250 ns; [`Indexed`] flavour
    /// only, see below): a
    /// [`try_push`](Producer::try_push) within this interval of a refusal first waits out the
    /// rest of it. The first refusal of a run is immediate, and a call made later than the
    /// interval does not wait. A producer that looks at a full ring again at once takes the
    /// counter's cache line from the consumer on every look, and stalls the consumer, which
    /// sets the pace while the ring is full (docs/benchmarks.md, "What changed in the
    /// seventeenth session"). `Duration::ZERO` turns it off: every refused call looks again at
    /// once. Longer than 1 ms is taken as 1 ms: `try_push` never blocks, so it never waits
    /// longer than that. Blocking pushes wait per their [`WaitStrategy`] instead. The [`Stamped`] flavour
    /// does not pace: its single pushes learn of room from the slot, with no cached bound to
    /// hang the check on, and a check on every push cost its single-item loop about a third
    /// when the ring was not full.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (mut tx, _rx) = weir::spsc::Builder::new(1)
    ///     .repoll_interval(Duration::ZERO)
    ///     .build::<u64>()?;
    /// tx.try_push(1).unwrap();
    /// assert!(tx.try_push(2).is_err()); // full: refused, and the item handed back
    /// # Ok::<(), weir::CapacityError>(())
    /// ```
    pub fn repoll_interval(mut self, interval: Duration) -> Self {
        self.repoll_interval = interval.min(MAX_REPOLL_INTERVAL);
        self
    }

    /// How many cache lines ahead [`write_prefetch`](Self::write_prefetch) and
    /// [`read_prefetch`](Self::read_prefetch) ask for (default 8):
    /// for the distance experiments of docs/benchmarks.md. Not part of the stable API.
    #[doc(hidden)]
    pub fn prefetch_lines(mut self, lines: usize) -> Self {
        self.prefetch_lines = lines;
        self
    }

    /// Starts both counters at `seq` instead of 0: for tests that prove wrap-around of the
    /// sequence counters (start near `usize::MAX`). Not part of the stable API.
    #[doc(hidden)]
    pub fn start_sequence(mut self, seq: usize) -> Self {
        self.start = seq;
        self
    }

    /// Builds the ring, [`Indexed`] (the default flavour: zero-copy
    /// [`read_chunk`](Consumer::read_chunk)).
    pub fn build<T>(self) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
        self.build_flavour()
    }

    /// Builds a [`Stamped`] ring: readiness and room are stamped in each slot, so a single item
    /// crosses between the cores as one cache line instead of two (lower round-trip latency),
    /// at the price of `read_chunk` (batch pops
    /// copy out) and one `usize` per slot, which makes its batches slower than the default's.
    /// Same API and guarantees otherwise. See [`Readiness`] for which to pick.
    ///
    /// ```
    /// use weir::spsc::{Builder, Consumer, Producer, Stamped};
    /// let (mut tx, mut rx): (Producer<u64, Stamped>, Consumer<u64, Stamped>) =
    ///     Builder::new(1024).build_stamped()?;
    /// tx.try_push(7).unwrap();
    /// assert_eq!(rx.try_pop(), Ok(7));
    /// # Ok::<(), weir::CapacityError>(())
    /// ```
    #[allow(clippy::type_complexity)] // the pair of handles, spelled out for the docs
    pub fn build_stamped<T>(
        self,
    ) -> Result<(Producer<T, Stamped>, Consumer<T, Stamped>), CapacityError> {
        self.build_flavour()
    }

    /// Builds a ring of either flavour, named by its type parameter.
    #[allow(clippy::type_complexity)] // as above
    pub fn build_flavour<T, R: Readiness>(
        self,
    ) -> Result<(Producer<T, R>, Consumer<T, R>), CapacityError> {
        let slots = slot_count::<Cell<T, R::Stamp>>(self.capacity)?;
        init_barriers();
        let capacity = self.capacity;
        let producer_threshold = self
            .producer_wake_threshold
            .unwrap_or(capacity / 2)
            .clamp(1, capacity);
        let consumer_threshold = self.consumer_wake_threshold.clamp(1, capacity);
        let counter_period = if R::IN_SLOT {
            COUNTER_PERIOD.min(slots)
        } else {
            1
        };
        let shared = Arc::new(Shared {
            tail: CachePadded::new(AtomicUsize::new(self.start)),
            head: CachePadded::new(AtomicUsize::new(self.start)),
            producer_event: CachePadded::new(Event::new_sole()),
            consumer_event: CachePadded::new(Event::new_sole()),
            producer_stats: CachePadded::new(SideStats::default()),
            consumer_stats: CachePadded::new(SideStats::default()),
            batch_head: CachePadded::new(AtomicUsize::new(self.start)),
            buffer: R::alloc(slots, self.start).map_err(|e| e.for_capacity(capacity))?,
            counter_period,
            mask: slots - 1,
            capacity,
            producer_threshold,
            consumer_threshold,
            producer_wait: self.producer_wait,
            consumer_wait: self.consumer_wait,
            producer_closed: AtomicBool::new(false),
            consumer_closed: AtomicBool::new(false),
            start: self.start,
        });
        let producer = Producer {
            shared: ManuallyDrop::new(shared.clone()),
            tail: self.start,
            limit: self.start.wrapping_add(capacity),
            checkpoint: self.start,
            // `start` is 0 but in wrap-around tests.
            prefetch_at: next_line_start::<Cell<T, R::Stamp>>(self.start),
            prefetch_ahead: if self.write_prefetch {
                prefetch_distance::<Cell<T, R::Stamp>>(capacity, self.prefetch_lines)
            } else {
                0
            },
            demote: self.demote
                && !R::IN_SLOT
                && std::mem::size_of::<Cell<T, R::Stamp>>() != 0
                && demote_available(),
            spin_budget: SpinBudget::new(),
            free_gap: slots - capacity,
            publish_mask: counter_period - 1,
            refused_at: None,
            repoll_interval: self.repoll_interval,
        };
        let read_ahead = if self.read_prefetch && !R::IN_SLOT {
            prefetch_distance::<Cell<T, R::Stamp>>(capacity, self.prefetch_lines)
        } else {
            0
        };
        let consumer = Consumer {
            shared: ManuallyDrop::new(shared),
            head: self.start,
            cached_tail: self.start,
            checkpoint: self.start,
            prefetch_at: next_line_start::<Cell<T, R::Stamp>>(self.start),
            prefetch_ahead: read_ahead,
            spin_budget: SpinBudget::new(),
            publish_mask: counter_period - 1,
        };
        Ok((producer, consumer))
    }
}

/// What both handles share. Hot counters and events each on their own line; the fields below
/// them are read-only after construction (the `closed` flags change once, at drop), so they share
/// a line that stays in both cores' caches.
struct Shared<T, R: Readiness> {
    tail: CachePadded<AtomicUsize>,
    head: CachePadded<AtomicUsize>,
    /// The producer sleeps here when the ring is full; the consumer wakes it.
    producer_event: CachePadded<Event>,
    /// The consumer sleeps here when the ring is empty; the producer wakes it.
    consumer_event: CachePadded<Event>,
    producer_stats: CachePadded<SideStats>,
    consumer_stats: CachePadded<SideStats>,
    /// `Stamped` only: `head` as of the consumer's last batch release (batch pops mark no slot
    /// free). A single push whose slot is not marked free asks this, not `head`: `head` is
    /// stored by every pop, so a producer that read it on each attempt at a full ring would
    /// pull its line away from the consumer once per pop; this line changes once per batch.
    batch_head: CachePadded<AtomicUsize>,
    buffer: SlotArray<Cell<T, R::Stamp>>,
    /// `Stamped` only: single pushes and pops store their counter when it reaches a multiple
    /// of this (a power of two, at most [`COUNTER_PERIOD`]), so a published counter is at
    /// most `counter_period - 1` behind its handle's; readers move it on over the stamps
    /// ([`Shared::tail_seen`], [`Shared::head_seen`]). 1 for `Indexed`.
    counter_period: usize,
    mask: usize,
    capacity: usize,
    producer_threshold: usize,
    consumer_threshold: usize,
    producer_wait: WaitStrategy,
    consumer_wait: WaitStrategy,
    producer_closed: AtomicBool,
    consumer_closed: AtomicBool,
    /// The counters' starting value (0 but in wrap-around tests), for the metrics.
    start: usize,
}

// SAFETY: the slots are only accessed under the counter protocol: a slot between `head` and
// `tail` (or marked by its stamp, in the `Stamped` flavour) belongs to the consumer, any other to
// the producer, and each handle is owned by one thread at a time. Items cross threads, so
// `T: Send` is required; no `&T` is ever shared between threads (peek needs `&mut Consumer`), so
// `T: Sync` is not.
unsafe impl<T: Send, R: Readiness> Send for Shared<T, R> {}
// SAFETY: as above; `&Shared` only gives access to atomics and to slots through the protocol.
unsafe impl<T: Send, R: Readiness> Sync for Shared<T, R> {}

impl<T, R: Readiness> Shared<T, R> {
    // The cold paths of the handles' hot calls take what they need as arguments, not the
    // handle, so that they do not make a handle's address leave the calling loop (its counters
    // would then stay in memory across the wake-up check's compiler fence). Other things can
    // (a drop of the handle on an unwinding path that is not inlined), and registers alone were
    // not measured to make the rings faster: docs/benchmarks.md, "What changed in the twelfth
    // session".

    /// The producer published up to `tail` and saw the consumer parked.
    #[cold]
    #[inline(never)]
    fn wake_consumer(&self, tail: usize) {
        if self.consumer_threshold > 1 {
            // Only decides whether to wake; the consumer re-checks.
            let depth = tail.wrapping_sub(self.head_seen());
            if depth < self.consumer_threshold {
                return;
            }
        }
        if self.consumer_event.wake_sole_waiter() {
            SideStats::add_sole(&self.producer_stats.wakes_sent, 1);
        }
    }

    /// The consumer published `head` and saw the producer parked.
    #[cold]
    #[inline(never)]
    fn wake_producer(&self, head: usize) {
        // Only decides whether to wake; the producer re-checks.
        let used = self.tail_seen().wrapping_sub(head);
        if self.capacity.saturating_sub(used) < self.producer_threshold {
            return;
        }
        if self.producer_event.wake_sole_waiter() {
            SideStats::add_sole(&self.consumer_stats.wakes_sent, 1);
        }
    }

    /// Counts a `try_push` refused for want of room.
    #[cold]
    fn count_refusal(&self, e: TryPushError<T>) -> TryPushError<T> {
        if e.is_full() {
            SideStats::add_sole(&self.producer_stats.contended, 1);
        }
        e
    }

    /// Counts a `try_pop` that found the ring empty.
    #[cold]
    fn count_empty(&self, e: TryPopError) -> TryPopError {
        if e == TryPopError::Empty {
            SideStats::add_sole(&self.consumer_stats.contended, 1);
        }
        e
    }

    /// The slot (item and stamp) of sequence number `seq`.
    #[inline(always)]
    fn cell(&self, seq: usize) -> &Cell<T, R::Stamp> {
        let index = seq & self.mask;
        debug_assert!(index < self.buffer.len());
        // SAFETY: `mask == buffer.len() - 1` and the length is a power of two, so the index is in
        // bounds (checked above in debug builds).
        unsafe { self.buffer.get_unchecked(index) }
    }

    /// The item cell of sequence number `seq`.
    #[inline(always)]
    fn slot(&self, seq: usize) -> &Slot<T> {
        &self.cell(seq).value
    }

    /// The buffer as an array of `T`, for the contiguous (`memcpy`, slice) paths of the
    /// [`Indexed`] flavour. `None` for [`Stamped`], whose slots interleave stamps.
    #[cfg(not(loom))]
    #[inline(always)]
    fn items_ptr(&self) -> Option<*mut T> {
        if R::IN_SLOT {
            return None;
        }
        // `Cell<T, ()>` is `repr(C)` with the item first and a zero-sized stamp: the same size
        // and alignment as `T`, so the slots are an array of `T` (see `readiness::Cell`);
        // checked at compile time for every flavour that does not stamp its slots.
        const {
            assert!(
                R::IN_SLOT
                    || (std::mem::size_of::<Cell<T, R::Stamp>>() == std::mem::size_of::<T>()
                        && std::mem::align_of::<Cell<T, R::Stamp>>() == std::mem::align_of::<T>())
            )
        };
        Some(self.buffer.as_ptr() as *mut T)
    }

    /// The contiguous runs of slots that `n` sequence numbers from `seq` occupy: `(index of
    /// the first slot, length of the first run)`; the second run starts at index 0.
    #[cfg(not(loom))]
    #[inline(always)]
    fn runs(&self, seq: usize, n: usize) -> (usize, usize) {
        let start = seq & self.mask;
        (start, n.min(self.buffer.len() - start))
    }

    /// Copies `items` into the slots from sequence `seq` on (two `memcpy`s at most).
    ///
    /// # Safety
    /// The `items.len()` slots from `seq` must be free and owned by the caller (the producer).
    #[inline]
    unsafe fn copy_in(&self, seq: usize, items: &[T])
    where
        T: Copy,
    {
        #[cfg(not(loom))]
        if let Some(base) = self.items_ptr() {
            let (start, first) = self.runs(seq, items.len());
            // SAFETY: the slots are an array of `T` (`items_ptr`); `start + first <=
            // buffer.len()` and `items.len() - first <= start` (the runs do not overlap, since
            // `items.len() <= capacity <= buffer.len()`); the slots are free and ours (caller),
            // and writing through the cells' shared pointer is what `UnsafeCell` allows.
            unsafe {
                std::ptr::copy_nonoverlapping(items.as_ptr(), base.add(start), first);
                std::ptr::copy_nonoverlapping(items.as_ptr().add(first), base, items.len() - first);
            }
            return;
        }
        // Stamped slots (and loom, which must see each cell access): one slot at a time.
        for (k, item) in items.iter().enumerate() {
            // SAFETY: the caller owns the `items.len()` free slots from `seq` (loom checks the
            // cell accesses).
            self.slot(seq.wrapping_add(k))
                .with_mut(|p| unsafe { (*p).write(*item) });
        }
    }

    /// Moves the `n` items from sequence `seq` on to the end of `out` (two `memcpy`s at most).
    ///
    /// # Safety
    /// The `n` slots from `seq` must hold initialised items owned by the caller (the consumer),
    /// who must not read them again; `out` must have spare capacity for `n` items.
    #[inline]
    unsafe fn move_out(&self, seq: usize, n: usize, out: &mut Vec<T>) {
        debug_assert!(out.capacity() - out.len() >= n);
        #[cfg(not(loom))]
        if let Some(base) = self.items_ptr() {
            let (start, first) = self.runs(seq, n);
            let len = out.len();
            // SAFETY: as in `copy_in` for the slots; the destination is `out`'s spare capacity
            // (caller); a bitwise copy is a move, since the slots count as empty once the head
            // is published and are never read again; `set_len` covers exactly the `n` moved.
            unsafe {
                let dst = out.as_mut_ptr().add(len);
                std::ptr::copy_nonoverlapping(base.add(start), dst, first);
                std::ptr::copy_nonoverlapping(base, dst.add(first), n - first);
                out.set_len(len + n);
            }
            return;
        }
        // Stamped slots (and loom): one slot at a time.
        for k in 0..n {
            // SAFETY: the caller owns the initialised items of the `n` slots from `seq` and never
            // reads them again.
            let value = self
                .slot(seq.wrapping_add(k))
                .with(|p| unsafe { (*p).assume_init_read() });
            out.push(value); // cannot reallocate: capacity reserved by the caller
        }
    }

    /// `tail` as published, moved on over the items marked after it (`Stamped`: single
    /// pushes publish it once per `counter_period` items). Never ahead of the producer's own.
    fn tail_seen(&self) -> usize {
        // Acquire: pairs with the producer's Release stores of `tail` (for the `Stamped` walk:
        // the stamps read next are at least as new as the counter's value).
        let mut tail = self.tail.load(Ordering::Acquire);
        if R::IN_SLOT {
            // At most `counter_period - 1` items lie past the published value; a concurrent
            // producer may have marked more since, which is a later snapshot.
            for _ in 1..self.counter_period {
                if !R::marked_or_later(&self.cell(tail).stamp, tail) {
                    break;
                }
                tail = tail.wrapping_add(1);
            }
        }
        tail
    }

    /// `head` as published, moved on over the items single pops have read since (`Stamped`,
    /// see `tail_seen`; batch pops publish `head` itself). Never ahead of the consumer's own.
    fn head_seen(&self) -> usize {
        // Acquire: pairs with the consumer's Release stores of `head`.
        let mut head = self.head.load(Ordering::Acquire);
        if R::IN_SLOT {
            let lap = self.mask.wrapping_add(1);
            for _ in 1..self.counter_period {
                // A single pop of `head` marked its slot free for `head + lap`.
                if !R::freed_or_later(&self.cell(head).stamp, head.wrapping_add(lap)) {
                    break;
                }
                head = head.wrapping_add(1);
            }
        }
        head
    }

    fn depth(&self) -> usize {
        // Head first: the tail seen after it counts every item the head counted as read (a
        // slot read is a slot marked), so the difference never underflows.
        let head = self.head_seen();
        let tail = self.tail_seen();
        tail.wrapping_sub(head).min(self.capacity)
    }

    fn metrics(&self) -> RingMetrics {
        // Head first, as in `depth`.
        let head = self.head_seen();
        let tail = self.tail_seen();
        RingMetrics::collect(
            self.capacity,
            tail.wrapping_sub(self.start) as u64,
            head.wrapping_sub(self.start) as u64,
            tail.wrapping_sub(head).min(self.capacity),
            &self.producer_stats,
            &self.consumer_stats,
        )
    }
}

impl<T, R: Readiness> Drop for Shared<T, R> {
    fn drop(&mut self) {
        // Both handles are gone: `&mut self` is exclusive, and `Arc`'s drop ordered every
        // handle's last write before this point.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let mut rest = DropRange {
            shared: self,
            next: head,
            end: tail,
        };
        rest.drop_all();
    }
}

/// Drops the items of sequence numbers `next .. end`; if one item's `Drop` panics, the guard's
/// own `Drop` goes on with the rest (like `Vec`'s), so none is leaked or dropped twice.
struct DropRange<'a, T, R: Readiness> {
    shared: &'a Shared<T, R>,
    next: usize,
    end: usize,
}

impl<T, R: Readiness> DropRange<'_, T, R> {
    fn drop_all(&mut self) {
        while self.next != self.end {
            let seq = self.next;
            // Advance first: should this item's Drop panic, the guard will not drop it again.
            self.next = seq.wrapping_add(1);
            // SAFETY: `seq` is in `head .. tail`, so its slot holds an initialised item, and the
            // caller owns that range exclusively; `next` moved past it, so it is dropped once.
            self.shared
                .slot(seq)
                .with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}

impl<T, R: Readiness> Drop for DropRange<'_, T, R> {
    fn drop(&mut self) {
        self.drop_all();
    }
}

// ---------------------------------------------------------------------------------------------
// Producer
// ---------------------------------------------------------------------------------------------

/// The writing half of an SPSC ring. `Send` (if `T: Send`), not `Clone`.
pub struct Producer<T, R: Readiness = Indexed> {
    /// Dropped only by `Producer::drop`, which hands it to [`close_producer`] (see there).
    shared: ManuallyDrop<Arc<Shared<T, R>>>,
    /// Our own counter: we are its only writer, so this copy is always exact.
    tail: usize,
    /// The consumer's `head` as last seen, plus the capacity: we may write up to (not including)
    /// this sequence number. Never ahead of the real bound, since the real head only grows.
    limit: usize,
    /// Where a single push next leaves its fast path: `limit` (reload the consumer's counter)
    /// or `prefetch_at`, whichever comes first from `tail`, as [`Producer::pass_checkpoint`]
    /// sets it; a batch publication sets it to `tail` instead, so that the next single push
    /// takes that slow path once and computes it (batches need no checkpoint). Never further
    /// from `tail` than `limit` (a reload only moves `limit` on), so `tail != checkpoint`
    /// implies `tail != limit`: a free slot. One comparison per push covers both.
    checkpoint: usize,
    /// The next line start at which a push asks for the line `prefetch_ahead` slots further
    /// on (see [`Producer::prefetch_line`]); unused when `prefetch_ahead == 0`.
    prefetch_at: usize,
    /// How many slots ahead of `tail` a push asks for the next cache line to write; 0 when off.
    prefetch_ahead: usize,
    /// Whether batch publications demote the lines they complete (see
    /// [`Producer::demote_published`]).
    demote: bool,
    /// How long spinning has been paying off for this handle's blocking calls.
    spin_budget: SpinBudget,
    /// `Stamped` only: slots minus capacity (0 when the capacity is a power of two). Sequence
    /// `tail` fits when the slot of `tail + free_gap` is marked free for that sequence (see
    /// `try_push_quiet`).
    free_gap: usize,
    /// `Stamped` only: a single push stores `tail` when `tail & publish_mask == 0` (see
    /// `Shared::counter_period`). 0 for `Indexed` (unused).
    publish_mask: usize,
    /// When a single push last found the ring full by a fresh look at the consumer's counter,
    /// if it has not looked again since (see [`Builder::repoll_interval`]).
    refused_at: Option<Instant>,
    /// [`Builder::repoll_interval`]; zero: off.
    repoll_interval: Duration,
}

/// A handle's prefetch distance in slots for a ring of `capacity` slots of type `S`: `lines`
/// lines ([`PREFETCH_LINES`] by default), or 0 (off) when the CPU has no write prefetch, the
/// slots take no memory, or the ring is too small for a line that far ahead to be free (for the
/// producer) or published (for the consumer).
fn prefetch_distance<S>(capacity: usize, lines: usize) -> usize {
    let ahead = lines.saturating_mul(slots_per_line::<S>());
    if std::mem::size_of::<S>() == 0
        || ahead == 0
        || ahead.saturating_add(slots_per_line::<S>()) > capacity
        || !write_prefetch_available()
    {
        return 0;
    }
    ahead
}

/// Calls `prefetch` with the first sequence number of every line of `S` slots that starts in
/// `from .. to` and lies wholly before `bound` (wrapping sequence numbers; stops at the first
/// line that does not). The batch calls use it to ask for the lines of the next batch.
#[inline(always)]
fn for_lines_ahead<S>(from: usize, to: usize, bound: usize, mut prefetch: impl FnMut(usize)) {
    let per_line = slots_per_line::<S>();
    let mut at = next_line_start::<S>(from);
    while (to.wrapping_sub(at) as isize) > 0
        && (bound.wrapping_sub(at.wrapping_add(per_line - 1)) as isize) > 0
    {
        prefetch(at);
        at = at.wrapping_add(per_line);
    }
}

impl<T, R: Readiness> Producer<T, R> {
    /// Free slots, reloading the consumer's counter only when the cached bound shows fewer than
    /// `want` (batches want all the room there is, single pushes want one).
    #[inline(always)]
    fn room_for(&mut self, want: usize) -> usize {
        let cached = self.limit.wrapping_sub(self.tail);
        // `Stamped` single pushes learn of room from the stamps and leave `limit` behind, so
        // `tail` may have passed it: the difference then wraps to more than the capacity.
        if cached >= want && (!R::IN_SLOT || cached <= self.shared.capacity) {
            return cached;
        }
        self.reload_limit()
    }

    /// Reloads the consumer's counter; returns the free slots it shows. Leaves `checkpoint`
    /// where it was: still at or before the new `limit`, which only moves on.
    #[inline(always)]
    fn reload_limit(&mut self) -> usize {
        // Acquire (in `head_seen`): pairs with the consumer's Release store of `head` (or of a
        // slot's free mark), so its reads of the slots it freed happen before we overwrite them.
        let head = self.shared.head_seen();
        self.limit = head.wrapping_add(self.shared.capacity);
        let room = self.limit.wrapping_sub(self.tail);
        // `Stamped`: the consumer marks slots free before it publishes `head`
        // (`Consumer::try_pop_stamped`), so single pushes, which go by the stamps, may run up to
        // one release ahead of `head + capacity`; the difference then wraps. No room by `head`,
        // then.
        if R::IN_SLOT && room > self.shared.capacity {
            return 0;
        }
        room
    }

    /// A single push reached the cached bound: reloads the consumer's counter, no sooner than
    /// the repoll interval after the last refused reload; false if the ring is full (the time
    /// is then noted). Out of line: it runs once per cached window, and the single-push loop
    /// measured faster with only the call in it (docs/benchmarks.md, "What changed in the
    /// seventeenth session").
    #[inline(never)]
    fn reload_at_limit(&mut self) -> bool {
        self.wait_out_repoll_interval();
        if self.reload_limit() != 0 {
            return true;
        }
        self.note_refusal();
        false
    }

    /// Before a look at the consumer's counter: if the last look was refused less than the
    /// repoll interval ago, waits until the interval has passed. Disarms the pacing.
    #[inline]
    fn wait_out_repoll_interval(&mut self) {
        if let Some(refused_at) = self.refused_at.take() {
            let resume = refused_at + self.repoll_interval;
            while Instant::now() < resume {
                std::hint::spin_loop();
            }
        }
    }

    /// A fresh look at the consumer's counter found the ring full: arms the pacing (unless the
    /// interval is zero, or under loom, which models no time: spinning on the clock would make
    /// its replays differ).
    #[cold]
    fn note_refusal(&mut self) {
        if !cfg!(loom) && !self.repoll_interval.is_zero() {
            self.refused_at = Some(Instant::now());
        }
    }

    /// The nearer of `limit` and (with the prefetch on) `prefetch_at`, from `tail`: the next
    /// checkpoint, set by [`Producer::pass_checkpoint`].
    #[inline(always)]
    fn set_checkpoint(&mut self) {
        let to_limit = self.limit.wrapping_sub(self.tail);
        let to_prefetch = self.prefetch_at.wrapping_sub(self.tail);
        self.checkpoint = if self.prefetch_ahead != 0 && to_prefetch < to_limit {
            self.prefetch_at
        } else {
            self.limit
        };
    }

    /// A single push found `tail == checkpoint`. Reloads the consumer's counter if `tail` is
    /// at the cached bound (returns false if the ring is really full), issues the write
    /// prefetch if `tail` is at `prefetch_at`, and sets the next checkpoint.
    #[inline]
    fn pass_checkpoint(&mut self) -> bool {
        if self.tail == self.limit && !self.reload_at_limit() {
            return false; // full: `checkpoint == limit == tail`, so the next push checks again
        }
        if self.prefetch_ahead != 0 && self.tail == self.prefetch_at {
            self.prefetch_line(self.tail);
            self.prefetch_at = self
                .tail
                .wrapping_add(slots_per_line::<Cell<T, R::Stamp>>());
        }
        self.set_checkpoint();
        true
    }

    /// `Stamped` flavour, a single push of sequence `seq` whose probed slot is not marked free:
    /// whether a batch pop has read the item `capacity` before `seq` (batch pops mark no slot
    /// free, see `Consumer::release`).
    #[inline(always)]
    fn freed_by_batch(&self, seq: usize) -> bool {
        let shared = &*self.shared;
        // Acquire: pairs with the consumer's Release store of `batch_head` in `release`, which
        // follows its reads of the items the batch took; they happen before our overwrite.
        let batch_head = shared.batch_head.load(Ordering::Acquire);
        // The item `seq - capacity` was read iff `batch_head` is past it (wrapping; the
        // distance is at most a lap plus the counters' lead, far below `isize::MAX`).
        (batch_head.wrapping_sub(seq.wrapping_sub(shared.capacity)) as isize) > 0
    }

    #[inline(always)]
    fn consumer_gone(&self) -> bool {
        // Relaxed: the flag carries no data; a push racing the consumer's drop may land in the
        // ring and is then dropped with it, exactly once.
        self.shared.consumer_closed.load(Ordering::Relaxed)
    }

    /// Before writing slot `seq`, the first of a cache line: asks for the line `prefetch_ahead`
    /// slots further on, in the state for writing, if all of it is free by our cached bound
    /// (never a line the consumer may still be reading: that would pull it away from the
    /// consumer). When the ring runs full, the line the producer writes next is the one the
    /// consumer read last, still in the consumer's cache; asking for it early overlaps that
    /// transfer with the pushes in between instead of stalling the store that needs it
    /// (docs/benchmarks.md, "What changed in the fourth session").
    #[inline(always)]
    fn prefetch_line(&self, seq: usize) {
        let ahead = seq.wrapping_add(self.prefetch_ahead);
        // The line's last slot is free (`< limit`, in wrapping arithmetic), so all of it is.
        let line_end = ahead.wrapping_add(slots_per_line::<Cell<T, R::Stamp>>() - 1);
        if (self.limit.wrapping_sub(line_end) as isize) > 0 {
            prefetch_for_write(self.shared.cell(ahead));
        }
    }

    /// Publishes `n` slots written from `self.tail` on, and wakes a parked consumer if needed.
    #[inline(always)]
    fn publish(&mut self, n: usize) {
        let first = self.tail;
        self.tail = first.wrapping_add(n);
        // The next single push prefetches from the next line start on, and computes its
        // checkpoint in `pass_checkpoint` (see `checkpoint`): a batch need not.
        self.prefetch_at = next_line_start::<Cell<T, R::Stamp>>(self.tail);
        self.checkpoint = self.tail;
        // A local: the compiler fence below makes the compiler reload what it reads from memory,
        // and this pointer is the same after it.
        let shared = &*self.shared;
        // Release: pairs with the consumer's Acquire load of `tail`; the slot writes before this
        // store are visible to it once it sees the new value.
        shared.tail.store(self.tail, Ordering::Release);
        // Stamped flavour: the stamps, after `tail`, so that a consumer that learns of an item
        // from its stamp never counts `head` past `tail` (for `len` and the metrics). A no-op
        // loop, compiled away, for `Indexed`.
        if R::IN_SLOT {
            for k in 0..n {
                let seq = first.wrapping_add(k);
                R::mark(&shared.cell(seq).stamp, seq);
            }
        }
        self.demote_published(first, n);
        self.notify_consumer();
        self.prefetch_after_batch(n);
    }

    /// After publishing the `n` slots from sequence `first`: demotes the cache lines that this
    /// publication completed (those wholly written by now), see [`Builder::write_demote`].
    /// Measured with batches of 64 `u64`: docs/benchmarks.md, "What changed in the ninth
    /// session".
    #[inline(always)]
    fn demote_published(&self, first: usize, n: usize) {
        if !self.demote {
            return;
        }
        let shared = &*self.shared;
        let base = shared.buffer.as_ptr() as *const u8;
        completed_lines(
            std::mem::size_of::<Cell<T, R::Stamp>>(),
            shared.buffer.len(),
            first & shared.mask,
            n,
            |offset| demote_line(base.wrapping_add(offset)),
        );
    }

    /// After a batch of `n` up to `tail`: asks for the lines of the next batch, up to
    /// `prefetch_ahead` slots past `tail`, those wholly free by the cached bound, for writing.
    /// Those below `first + prefetch_ahead` (`first = tail - n`) were asked for after the
    /// previous batch (if it was as large), so only the rest is: about as many lines as the
    /// batch filled. Measured with batches of 64 `u64`: docs/benchmarks.md, "What changed in
    /// the fifth session".
    #[inline(always)]
    fn prefetch_after_batch(&self, n: usize) {
        let ahead = self.prefetch_ahead;
        if ahead == 0 {
            return;
        }
        let from = self.tail.wrapping_add(ahead.saturating_sub(n));
        let to = self.tail.wrapping_add(ahead);
        for_lines_ahead::<Cell<T, R::Stamp>>(from, to, self.limit, |seq| {
            prefetch_for_write(self.shared.cell(seq))
        });
    }

    /// After a publication: wakes a parked consumer if needed (see [`crate::wait`]).
    #[inline(always)]
    fn notify_consumer(&self) {
        let shared = &*self.shared; // see `publish`
        light_barrier();
        if shared.consumer_event.has_waiters() {
            shared.wake_consumer(self.tail);
        }
    }

    /// `try_push` without the metrics, for the retries of blocking calls.
    #[inline(always)]
    fn try_push_quiet(&mut self, value: T) -> Result<(), TryPushError<T>> {
        if R::IN_SLOT {
            return self.try_push_stamped(value);
        }
        if self.consumer_gone() {
            return Err(TryPushError::Disconnected(value));
        }
        let seq = self.tail;
        if self.tail == self.checkpoint && !self.pass_checkpoint() {
            // The common case costs one comparison: the cached bound says there is room and no
            // prefetch is due.
            return Err(TryPushError::Full(value));
        }
        debug_assert!(self.tail != self.limit, "checkpoint invariant");
        // `publish(1)` spelled out, so that the slot's address is computed once (the atomic
        // store in between keeps the compiler from reusing it).
        let shared = &*self.shared;
        let cell = shared.cell(seq);
        // SAFETY: `tail != limit` (`tail != checkpoint` implies it, see `checkpoint`; after a
        // reload if needed) means `tail - head < capacity`: slot `tail` is outside `head ..
        // tail`, it holds no item and the consumer does not read it until we publish.
        cell.value.with_mut(|p| unsafe { (*p).write(value) });
        self.tail = seq.wrapping_add(1);
        // Release: as in `publish`.
        shared.tail.store(self.tail, Ordering::Release);
        self.notify_consumer();
        Ok(())
    }

    /// `try_push_quiet` of the `Stamped` flavour: room from a stamp, not from `head`. Sequence
    /// `seq` fits once the item `capacity` before it has been read; a single pop then marked
    /// that item's slot free for the sequence a lap (`len` slots) later, `seq - capacity + len
    /// = seq + free_gap`. With `capacity == len` (a power of two) that is the slot `seq` goes
    /// into: one line for the check and the write. Batch pops mark nothing (see
    /// `Consumer::release`): without the mark, room comes from `batch_head`.
    ///
    /// Both slot addresses are computed before the Acquire load, after which the compiler would
    /// compute them again.
    #[inline(always)]
    fn try_push_stamped(&mut self, value: T) -> Result<(), TryPushError<T>> {
        let shared = &*self.shared;
        // Relaxed: as in `consumer_gone`.
        if shared.consumer_closed.load(Ordering::Relaxed) {
            return Err(TryPushError::Disconnected(value));
        }
        let seq = self.tail;
        let cell = shared.cell(seq);
        let probe_seq = seq.wrapping_add(self.free_gap);
        let probe = shared.cell(probe_seq);
        if !R::is_free(&probe.stamp, probe_seq) && !self.freed_by_batch(seq) {
            return Err(TryPushError::Full(value));
        }
        // SAFETY: the item of `seq - capacity` has been read (its slot's free mark, or
        // `batch_head`, Acquire), and so has every earlier one, so `seq - head < capacity`
        // (`head` the consumer's own, perhaps not yet published): slot `seq` is outside `head ..
        // seq`, it holds no item and the consumer does not read it until we mark it.
        cell.value.with_mut(|p| unsafe { (*p).write(value) });
        self.tail = seq.wrapping_add(1);
        // `tail` only once per `counter_period` items: the stamp tells the consumer, and readers
        // of `tail` move it on over the stamps (`Shared::tail_seen`).
        if self.tail & self.publish_mask == 0 {
            // Release: as in `publish`.
            shared.tail.store(self.tail, Ordering::Release);
        }
        R::mark(&cell.stamp, seq);
        self.notify_consumer();
        Ok(())
    }

    /// Pushes `value` if there is room; otherwise hands it back. Never blocks; in the default
    /// [`Indexed`] flavour, a call made within the [repoll interval](Builder::repoll_interval)
    /// (250 ns) of a refusal first waits out the rest of it, so that a caller spinning at a
    /// full ring does not stall the consumer.
    ///
    /// ```
    /// let (mut tx, _rx) = weir::spsc::channel(1);
    /// assert!(tx.try_push(1).is_ok());
    /// assert_eq!(tx.try_push(2).unwrap_err().into_inner(), 2);
    /// ```
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), TryPushError<T>> {
        match self.try_push_quiet(value) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.shared.count_refusal(e)),
        }
    }

    /// Pushes `value`, waiting for room per the wait strategy. Fails only if the consumer is
    /// gone, handing the item back.
    ///
    /// ```
    /// let (mut tx, mut rx) = weir::spsc::channel(1);
    /// let t = std::thread::spawn(move || {
    ///     for i in 0..100 { tx.push(i).unwrap(); }
    /// });
    /// for i in 0..100 { assert_eq!(rx.pop().unwrap(), i); }
    /// t.join().unwrap();
    /// ```
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        match self.try_push_quiet(value) {
            Ok(()) => Ok(()),
            Err(TryPushError::Disconnected(v)) => Err(PushError::Disconnected(v)),
            Err(TryPushError::Full(v)) => match self.push_blocking(v, None, None) {
                Ok(()) => Ok(()),
                Err(e) => Err(PushError::Disconnected(e.into_inner())),
            },
        }
    }

    /// Pushes `value`, waiting at most `timeout` for room.
    pub fn push_timeout(&mut self, value: T, timeout: Duration) -> Result<(), PushTimeoutError<T>> {
        let now = Instant::now();
        match now.checked_add(timeout) {
            Some(deadline) => self.push_until(value, deadline, Some(now)),
            None => self.push(value).map_err(Into::into),
        }
    }

    /// Pushes `value`, waiting until `deadline` at the latest for room.
    pub fn push_deadline(
        &mut self,
        value: T,
        deadline: Instant,
    ) -> Result<(), PushTimeoutError<T>> {
        self.push_until(value, deadline, None)
    }

    /// `push_deadline`, with the blocked time counted from `since` if given (the start of a
    /// `push_timeout` call, see `Waiter::time_from`).
    fn push_until(
        &mut self,
        value: T,
        deadline: Instant,
        since: Option<Instant>,
    ) -> Result<(), PushTimeoutError<T>> {
        match self.try_push_quiet(value) {
            Ok(()) => Ok(()),
            Err(TryPushError::Disconnected(v)) => Err(PushTimeoutError::Disconnected(v)),
            Err(TryPushError::Full(v)) => self.push_blocking(v, Some(deadline), since),
        }
    }

    #[cold]
    #[inline(never)]
    fn push_blocking(
        &mut self,
        mut value: T,
        deadline: Option<Instant>,
        since: Option<Instant>,
    ) -> Result<(), PushTimeoutError<T>> {
        SideStats::add_sole(&self.shared.producer_stats.contended, 1);
        let recheck = (self.shared.producer_threshold > 1).then_some(THRESHOLD_RECHECK);
        let mut waiter = Waiter::adaptive(
            self.shared.producer_wait,
            deadline,
            recheck,
            self.spin_budget,
        );
        if let Some(since) = since {
            waiter.time_from(since);
        }
        // Having found the ring full, wait until `threshold` slots are free, spinning or not:
        // taking each slot as a slow consumer frees it would cost a wait per item, and refilling
        // in bursts costs one per burst. A consumer that stops short of the threshold does not
        // strand us: after `THRESHOLD_RECHECK` any free slot will do.
        let threshold = self.shared.producer_threshold;
        let mut patience: Option<Instant> = None;
        let out = loop {
            if self.consumer_gone() {
                break Err(PushTimeoutError::Disconnected(value));
            }
            let room = self.room_for(threshold);
            // loom models no time (and a branch on the clock would make its executions differ
            // on replay): there the patience never runs out.
            let take = room >= threshold
                || (room > 0 && !cfg!(loom) && {
                    let now = Instant::now();
                    *patience.get_or_insert(now + THRESHOLD_RECHECK) <= now
                });
            if take {
                value = match self.try_push_quiet(value) {
                    Ok(()) => break Ok(()),
                    Err(TryPushError::Disconnected(v)) => {
                        break Err(PushTimeoutError::Disconnected(v))
                    }
                    Err(TryPushError::Full(v)) => v,
                };
            }
            let shared = &*self.shared;
            if !waiter.pause(&*shared.producer_event, &shared.producer_stats) {
                // The deadline passed: any free slot beats a timeout.
                break match self.try_push_quiet(value) {
                    Ok(()) => Ok(()),
                    Err(TryPushError::Disconnected(v)) => Err(PushTimeoutError::Disconnected(v)),
                    Err(TryPushError::Full(v)) => Err(PushTimeoutError::Timeout(v)),
                };
            }
        };
        let how = waiter.finish(&*self.shared.producer_event, &self.shared.producer_stats);
        self.spin_budget.learn(how);
        out
    }

    /// Pushes as many items of `items` as fit, with one publication of the tail for all of
    /// them; returns how many went in (the first `n` of the slice). Never blocks.
    ///
    /// ```
    /// let (mut tx, mut rx) = weir::spsc::channel(4);
    /// assert_eq!(tx.push_slice(&[1, 2, 3, 4, 5, 6]), 4);
    /// let mut out = Vec::new();
    /// rx.try_pop_batch(&mut out, 10).unwrap();
    /// assert_eq!(out, [1, 2, 3, 4]);
    /// ```
    pub fn push_slice(&mut self, items: &[T]) -> usize
    where
        T: Copy,
    {
        if items.is_empty() || self.consumer_gone() {
            return 0;
        }
        let n = self.room_for(items.len()).min(items.len());
        if n == 0 {
            SideStats::add_sole(&self.shared.producer_stats.contended, 1);
            return 0;
        }
        // SAFETY: `n <= room`, so the `n` slots from `tail` are free (see `try_push_quiet`).
        unsafe { self.shared.copy_in(self.tail, &items[..n]) };
        self.publish(n);
        n
    }

    /// Pushes items pulled from `items` while there is room, with one publication of the tail
    /// for all of them; returns how many went in. Pulls no more items than there are free
    /// slots, so nothing is lost: pass `iter.by_ref()` to keep the rest. Never blocks.
    ///
    /// ```
    /// let (mut tx, mut rx) = weir::spsc::channel(3);
    /// let mut source = vec![String::from("a"), "b".into(), "c".into(), "d".into()].into_iter();
    /// assert_eq!(tx.push_iter(source.by_ref()), 3);
    /// assert_eq!(source.next().as_deref(), Some("d")); // not lost
    /// # drop(rx);
    /// ```
    pub fn push_iter<I: IntoIterator<Item = T>>(&mut self, items: I) -> usize {
        if self.consumer_gone() {
            return 0;
        }
        let room = self.room_for(usize::MAX);
        if room == 0 {
            SideStats::add_sole(&self.shared.producer_stats.contended, 1);
            return 0;
        }
        // Should the iterator panic, the guard publishes what was written so far.
        let mut batch = PublishOnDrop {
            producer: self,
            written: 0,
        };
        for item in items.into_iter().take(room) {
            let seq = batch.producer.tail.wrapping_add(batch.written);
            // SAFETY: `written < room`, so slot `seq` is free (see `try_push_quiet`).
            batch
                .producer
                .shared
                .slot(seq)
                .with_mut(|p| unsafe { (*p).write(item) });
            batch.written += 1;
        }
        batch.written
    }

    /// The exact number of items the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Items in the ring now (a snapshot; the consumer may be taking some).
    pub fn len(&self) -> usize {
        self.shared.depth()
    }

    /// `true` if the ring holds no item now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` if the ring is full now.
    pub fn is_full(&self) -> bool {
        self.len() == self.shared.capacity
    }

    /// Free slots now, as seen by the producer.
    pub fn slots(&self) -> usize {
        self.shared.capacity - self.len()
    }

    /// `true` once the consumer has been dropped.
    pub fn is_disconnected(&self) -> bool {
        self.shared.consumer_closed.load(Ordering::Acquire)
    }

    /// A snapshot of the ring's counters.
    pub fn metrics(&self) -> RingMetrics {
        self.shared.metrics()
    }
}

/// Publishes the slots a batch wrote, also when the batch's source panics mid-way.
struct PublishOnDrop<'a, T, R: Readiness> {
    producer: &'a mut Producer<T, R>,
    written: usize,
}

impl<T, R: Readiness> Drop for PublishOnDrop<'_, T, R> {
    fn drop(&mut self) {
        if self.written > 0 {
            self.producer.publish(self.written);
        }
    }
}

impl<T, R: Readiness> Drop for Producer<T, R> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and is the only place that takes `shared`; the handle is not
        // used after it.
        close_producer(unsafe { ManuallyDrop::take(&mut self.shared) }, self.tail);
    }
}

/// The producer's side of the ring closes: stores the exact `tail` (`Stamped`), flags the side
/// closed and wakes a parked consumer, then drops the producer's reference to the shared state
/// (the last one drops the items left in the ring).
///
/// Out of line and taking the `Arc` by value, so that a handle's drop, inlined into a caller,
/// reads one pointer out of the handle and never takes the handle's address. A drop that took
/// it (a non-inlined `Drop::drop(&mut self)`, or `Arc`'s own drop of a field) made every
/// caller's loop keep the handle in memory, because the loop's unwinding path (a panic in the
/// caller's code) may drop it: then each call loads and stores the counters there instead of
/// in registers (docs/benchmarks.md, "What changed in the fourteenth session").
#[cold]
#[inline(never)]
fn close_producer<T, R: Readiness>(shared: Arc<Shared<T, R>>, tail: usize) {
    if R::IN_SLOT {
        // `Stamped` single pushes publish `tail` only now and then: the exact count, for the
        // metrics and for `Shared`'s drop of the items left. Release: as in `publish`.
        shared.tail.store(tail, Ordering::Release);
    }
    // SeqCst store, then the epoch bump in `wake_all`: a parked consumer either sees the flag
    // when it re-checks or sleeps on the old epoch and is woken (see `Event::wake_all`).
    shared.producer_closed.store(true, Ordering::SeqCst);
    shared.consumer_event.wake_all();
}

impl<T, R: Readiness> fmt::Debug for Producer<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Consumer
// ---------------------------------------------------------------------------------------------

/// The reading half of an SPSC ring. `Send` (if `T: Send`), not `Clone`.
pub struct Consumer<T, R: Readiness = Indexed> {
    /// Dropped only by `Consumer::drop`, which hands it to [`close_consumer`].
    shared: ManuallyDrop<Arc<Shared<T, R>>>,
    /// Our own counter: we are its only writer, so this copy is always exact.
    head: usize,
    /// The producer's `tail` as last seen; never ahead of the real one. Used by the `Indexed`
    /// flavour only (`Stamped` learns single items from the slot, batches from `tail` itself).
    cached_tail: usize,
    /// `Indexed` only: where a single pop next leaves its fast path, the nearer of
    /// `cached_tail` (reload `tail`) and `prefetch_at`, as [`Consumer::pass_checkpoint`] sets
    /// it; a batch release sets it to `head` instead (see `Producer::checkpoint`). Never further
    /// from `head` than `cached_tail` (a reload only moves `cached_tail` on), so
    /// `head != checkpoint` implies an item is ready.
    checkpoint: usize,
    /// The next line start at which a single pop asks for the line `prefetch_ahead` on.
    prefetch_at: usize,
    /// Read-prefetch distance in slots; 0 when off (always for `Stamped`).
    prefetch_ahead: usize,
    /// How long spinning has been paying off for this handle's blocking calls.
    spin_budget: SpinBudget,
    /// `Stamped` only: a single pop stores `head` when `head & publish_mask == 0`, as the
    /// producer's `publish_mask`.
    publish_mask: usize,
}

impl<T, R: Readiness> Consumer<T, R> {
    /// The nearer of `cached_tail` and (with the prefetch on) `prefetch_at`, from `head`: the
    /// next checkpoint, set by [`Consumer::pass_checkpoint`].
    #[inline(always)]
    fn set_checkpoint(&mut self) {
        let to_tail = self.cached_tail.wrapping_sub(self.head);
        let to_prefetch = self.prefetch_at.wrapping_sub(self.head);
        self.checkpoint = if self.prefetch_ahead != 0 && to_prefetch < to_tail {
            self.prefetch_at
        } else {
            self.cached_tail
        };
    }

    /// A single `Indexed` pop found `head == checkpoint`: reloads `tail` if the cache is
    /// exhausted (fails if the ring is empty), issues the read prefetch if a line starts here,
    /// sets the next checkpoint.
    #[inline]
    fn pass_checkpoint(&mut self) -> Result<(), TryPopError> {
        if self.head == self.cached_tail {
            self.ready_or_err(1)?;
        }
        if self.prefetch_ahead != 0 && self.head == self.prefetch_at {
            let per_line = slots_per_line::<Cell<T, R::Stamp>>();
            let ahead = self.head.wrapping_add(self.prefetch_ahead);
            let line_end = ahead.wrapping_add(per_line - 1);
            if (self.cached_tail.wrapping_sub(line_end) as isize) > 0 {
                prefetch_for_read(self.shared.cell(ahead));
            }
            self.prefetch_at = self.head.wrapping_add(per_line);
        }
        self.set_checkpoint();
        Ok(())
    }

    /// Items ready, reloading the producer's counter only when the cached one says empty.
    #[inline(always)]
    fn ready(&mut self) -> usize {
        self.ready_for(1)
    }

    /// Items ready, reloading the producer's counter only when the cached one shows fewer than
    /// `want` (batches want all there is, single pops want one).
    #[inline(always)]
    fn ready_for(&mut self, want: usize) -> usize {
        if R::IN_SLOT {
            // Stamped flavour: a single item is known from the stamp of the slot we are about
            // to read (one line, see `Stamped`; `is_marked` pairs with the producer's `mark`), a
            // batch from `tail` as seen (published, then the marks past it; a batch pop writes
            // no stamp, so reading an item before its mark lands is harmless). No cache of
            // `tail`: a single pop would have to keep it in step, for no gain.
            let shared = &*self.shared;
            if want == 1 {
                return usize::from(R::is_marked(&shared.cell(self.head).stamp, self.head));
            }
            // Acquire (in `tail_seen`): as below, or with the stamps' marks. Single pops may
            // have taken items past the published `tail`, which the walk then passes too.
            let ready = shared.tail_seen().wrapping_sub(self.head);
            // The walk in `tail_seen` passes every item up to ours (the published `tail` is at
            // most `counter_period - 1` behind the producer's, which is not behind `head`); a
            // wrapped difference would mean otherwise: none ready, then, never a wrong count.
            debug_assert!(ready as isize >= 0, "tail seen behind head");
            return if (ready as isize) < 0 { 0 } else { ready };
        }
        let n = self.cached_tail.wrapping_sub(self.head);
        if n >= want {
            return n;
        }
        // Acquire: pairs with the producer's Release store of `tail`; its slot writes are
        // visible to our reads below. `checkpoint` stays where it was (see its doc).
        self.cached_tail = self.shared.tail.load(Ordering::Acquire);
        self.cached_tail.wrapping_sub(self.head)
    }

    /// Items ready (reloading the tail if the cache shows fewer than `want`), or why there are
    /// none.
    #[inline(always)]
    fn ready_or_err(&mut self, want: usize) -> Result<usize, TryPopError> {
        match self.ready_for(want) {
            0 => self.empty(),
            n => Ok(n),
        }
    }

    #[cold]
    fn empty(&mut self) -> Result<usize, TryPopError> {
        // Acquire: pairs with the producer's SeqCst store at drop, which follows its last tail
        // store, so the reload below sees every item it ever pushed.
        if !self.shared.producer_closed.load(Ordering::Acquire) {
            return Err(TryPopError::Empty);
        }
        match self.ready() {
            0 => Err(TryPopError::Disconnected),
            n => Ok(n),
        }
    }

    /// Publishes `n` consumed slots from `self.head` on, and wakes a parked producer if needed.
    #[inline(always)]
    fn release(&mut self, n: usize) {
        // `Stamped`: a batch marks no slot free (a store per slot cost its batches a third of
        // their throughput); it publishes `batch_head` instead, which the producer's single
        // pushes ask for slots not marked free (`Producer::freed_by_batch`).
        self.head = self.head.wrapping_add(n);
        if R::IN_SLOT {
            // Release: pairs with the producer's Acquire load in `freed_by_batch`; our reads of
            // the batch's items happen before it overwrites their slots. Before `head` and the
            // wake-up check in `publish_head`, as the single pops' free marks.
            self.shared.batch_head.store(self.head, Ordering::Release);
        } else {
            // `head` may have passed line starts and the checkpoint: the next single pop
            // prefetches from the next line start on, and computes its checkpoint in
            // `pass_checkpoint` (see `checkpoint`).
            self.prefetch_at = next_line_start::<Cell<T, R::Stamp>>(self.head);
            self.checkpoint = self.head;
        }
        self.publish_head();
    }

    /// `release(1)` for a single `Indexed` pop that has just checked `head` against the
    /// checkpoint (or passed it): `head + 1` is then still at or before the checkpoint.
    #[inline(always)]
    fn release_single(&mut self) {
        self.head = self.head.wrapping_add(1);
        self.publish_head();
    }

    /// Stores `head` and wakes a parked producer if needed.
    #[inline(always)]
    fn publish_head(&mut self) {
        // Release: pairs with the producer's Acquire load of `head`; our reads of the freed
        // slots happen before it overwrites them.
        self.shared.head.store(self.head, Ordering::Release);
        self.notify_producer();
    }

    /// After a release: wakes a parked producer if needed (see [`crate::wait`]).
    #[inline(always)]
    fn notify_producer(&self) {
        // A local, as in `Producer::publish`.
        let shared = &*self.shared;
        light_barrier();
        if shared.producer_event.has_waiters() {
            shared.wake_producer(self.head);
        }
    }

    /// Moves the item of sequence `self.head` out. The caller has checked `ready() > 0`.
    #[inline(always)]
    fn take_front(&mut self) -> T {
        // SAFETY: the caller saw `head < tail` or the slot's stamp marked for `head` (Acquire,
        // pairing with the producer's Release store of either), so the slot holds an initialised
        // item that the producer will not touch until we publish a larger head.
        self.shared
            .slot(self.head)
            .with(|p| unsafe { (*p).assume_init_read() })
    }

    #[inline(always)]
    fn try_pop_quiet(&mut self) -> Result<T, TryPopError> {
        if R::IN_SLOT {
            return self.try_pop_stamped();
        }
        if self.head == self.checkpoint {
            self.pass_checkpoint()?;
        }
        debug_assert!(self.head != self.cached_tail, "checkpoint invariant");
        let value = self.take_front();
        self.release_single();
        Ok(value)
    }

    /// `try_pop_quiet` of the `Stamped` flavour: the stamp, then the item, from one cache line.
    /// As in `Producer::try_push_stamped`, the slot address and its next lap are computed before
    /// the Acquire load.
    #[inline(always)]
    fn try_pop_stamped(&mut self) -> Result<T, TryPopError> {
        let shared = &*self.shared;
        let seq = self.head;
        let cell = shared.cell(seq);
        // The sequence the slot takes a lap later.
        let next_lap = seq.wrapping_add(shared.mask.wrapping_add(1));
        if !R::is_marked(&cell.stamp, seq) {
            // Acquire: pairs with the producer's SeqCst store at drop, which follows its last
            // mark: if it is gone, a second look at the stamp is final.
            if !shared.producer_closed.load(Ordering::Acquire) {
                return Err(TryPopError::Empty);
            }
            if !R::is_marked(&cell.stamp, seq) {
                return Err(TryPopError::Disconnected);
            }
        }
        // SAFETY: the stamp is marked for `seq` (Acquire, pairing with the producer's Release in
        // `mark`), so the slot holds item `seq`, initialised, which the producer will not touch
        // until we mark the slot free or publish a larger head.
        let value = cell.value.with(|p| unsafe { (*p).assume_init_read() });
        // The slot is free for the sequence a lap later: how a single push learns of room
        // (`Producer::try_push_stamped`). Before `head` is published: a batch push that found
        // room by `head` writes the slot and marks it "holds", which a late free mark would
        // overwrite.
        R::mark_free(&cell.stamp, next_lap);
        self.head = seq.wrapping_add(1);
        // `head` only once per `counter_period` items, as the producer's `tail`
        // (`Shared::head_seen`).
        if self.head & self.publish_mask == 0 {
            // Release: as in `publish_head`.
            shared.head.store(self.head, Ordering::Release);
        }
        self.notify_producer();
        Ok(value)
    }

    /// Takes the front item if there is one.
    ///
    /// ```
    /// use weir::TryPopError;
    /// let (mut tx, mut rx) = weir::spsc::channel(2);
    /// assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
    /// tx.try_push(7).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_pop(), Ok(7)); // what was pushed is drained first
    /// assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
    /// ```
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        match self.try_pop_quiet() {
            Ok(v) => Ok(v),
            Err(e) => Err(self.shared.count_empty(e)),
        }
    }

    /// Takes the front item, waiting per the wait strategy. Fails only when the ring is empty
    /// and the producer is gone.
    #[inline]
    pub fn pop(&mut self) -> Result<T, PopError> {
        match self.try_pop_quiet() {
            Ok(v) => Ok(v),
            Err(TryPopError::Disconnected) => Err(PopError),
            Err(TryPopError::Empty) => {
                self.wait_after_empty(1, None).map_err(|_| PopError)?;
                self.try_pop_quiet().map_err(|_| PopError)
            }
        }
    }

    /// Takes the front item, waiting at most `timeout`.
    pub fn pop_timeout(&mut self, timeout: Duration) -> Result<T, PopTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.pop_deadline(deadline),
            None => self.pop().map_err(Into::into),
        }
    }

    /// Takes the front item, waiting until `deadline` at the latest.
    pub fn pop_deadline(&mut self, deadline: Instant) -> Result<T, PopTimeoutError> {
        self.wait_ready(1, Some(deadline))?;
        self.try_pop_quiet()
            .map_err(|_| PopTimeoutError::Disconnected)
    }

    /// Waits until at least one item is ready (returns how many) or it is known none will come.
    /// `want` is how many the caller would take (see `ready_for`).
    #[inline]
    fn wait_ready(
        &mut self,
        want: usize,
        deadline: Option<Instant>,
    ) -> Result<usize, PopTimeoutError> {
        match self.ready_or_err(want) {
            Ok(n) => Ok(n),
            Err(TryPopError::Disconnected) => Err(PopTimeoutError::Disconnected),
            Err(TryPopError::Empty) => self.wait_after_empty(want, deadline),
        }
    }

    /// `wait_ready` for a caller that has just found the ring empty: the first re-check comes
    /// after a spin hint, not at once (polling the line back at once can delay the producer's
    /// store to it).
    #[inline]
    fn wait_after_empty(
        &mut self,
        want: usize,
        deadline: Option<Instant>,
    ) -> Result<usize, PopTimeoutError> {
        SideStats::add_sole(&self.shared.consumer_stats.contended, 1);
        // A short wait (a ping-pong hop) is resolved on the caller's own path, without a
        // `Waiter`.
        let strategy = self.shared.consumer_wait;
        let quick = spin_briefly(strategy, deadline, || match self.ready_or_err(want) {
            Ok(n) => Some(Ok(n)),
            Err(TryPopError::Disconnected) => Some(Err(PopTimeoutError::Disconnected)),
            Err(TryPopError::Empty) => None,
        });
        quick.unwrap_or_else(|| self.wait_ready_slow(want, deadline))
    }

    #[cold]
    #[inline(never)]
    fn wait_ready_slow(
        &mut self,
        want: usize,
        deadline: Option<Instant>,
    ) -> Result<usize, PopTimeoutError> {
        let recheck = (self.shared.consumer_threshold > 1).then_some(THRESHOLD_RECHECK);
        let mut waiter = Waiter::adaptive(
            self.shared.consumer_wait,
            deadline,
            recheck,
            self.spin_budget,
        );
        let out = loop {
            match self.ready_or_err(want) {
                Ok(n) => break Ok(n),
                Err(TryPopError::Disconnected) => break Err(PopTimeoutError::Disconnected),
                Err(TryPopError::Empty) => {}
            }
            let shared = &*self.shared;
            if !waiter.pause(&*shared.consumer_event, &shared.consumer_stats) {
                break Err(PopTimeoutError::Timeout);
            }
        };
        let how = waiter.finish(&*self.shared.consumer_event, &self.shared.consumer_stats);
        self.spin_budget.learn(how);
        out
    }

    /// Before a batch of `len` from `head` is read: asks for the lines of the next batch, up to
    /// `prefetch_ahead` slots past it, those wholly published by the cached `tail`, for reading.
    /// Those below `head + prefetch_ahead` were asked for with the previous batch (if it was as
    /// large), so only the rest is. `Indexed` only (`prefetch_ahead` is 0 for `Stamped`).
    #[inline(always)]
    fn prefetch_next_batch(&self, len: usize) {
        let ahead = self.prefetch_ahead;
        if ahead == 0 {
            return;
        }
        let from = self.head.wrapping_add(len.max(ahead));
        let to = self.head.wrapping_add(len).wrapping_add(ahead);
        for_lines_ahead::<Cell<T, R::Stamp>>(from, to, self.cached_tail, |seq| {
            prefetch_for_read(self.shared.cell(seq))
        });
    }

    /// Moves `n` ready items (the caller checked `n <= ready()`) to the end of `out`, then
    /// publishes the head once.
    fn take_into(&mut self, out: &mut Vec<T>, n: usize) {
        self.prefetch_next_batch(n);
        // Reserve first: if this panics (capacity overflow) nothing has moved yet.
        out.reserve(n);
        // SAFETY: `n <= ready`, so the `n` slots from `head` hold items that are ours to move
        // out; `out` has room for them (reserved above); the head is published only after, so
        // the producer cannot reuse the slots before the moves are done.
        unsafe { self.shared.move_out(self.head, n, out) };
        self.release(n);
    }

    /// Takes every ready item, up to `max`, into `out` (appended), with one publication of the
    /// head; returns how many. Never blocks.
    ///
    /// ```
    /// let (mut tx, mut rx) = weir::spsc::channel(8);
    /// tx.push_iter(0..5);
    /// let mut batch = Vec::new();
    /// assert_eq!(rx.try_pop_batch(&mut batch, 3), Ok(3));
    /// assert_eq!(rx.try_pop_batch(&mut batch, 3), Ok(2));
    /// assert_eq!(batch, [0, 1, 2, 3, 4]);
    /// ```
    pub fn try_pop_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<usize, TryPopError> {
        if max == 0 {
            return Ok(0);
        }
        let n = match self.ready_or_err(max) {
            Ok(n) => n.min(max),
            Err(e) => return Err(self.shared.count_empty(e)),
        };
        self.take_into(out, n);
        Ok(n)
    }

    /// Waits (per the wait strategy) for at least one item, then takes every ready item up to
    /// `max` into `out` with one publication of the head; returns how many (0 only if `max` is
    /// 0). Fails only when the ring is empty and the producer is gone.
    ///
    /// ```
    /// let (mut tx, mut rx) = weir::spsc::channel(64);
    /// let t = std::thread::spawn(move || { for i in 0..1000u32 { tx.push(i).unwrap(); } });
    /// let (mut batch, mut seen) = (Vec::new(), 0);
    /// while let Ok(n) = rx.pop_batch(&mut batch, 32) {
    ///     assert!(n >= 1 && n <= 32);
    ///     seen += n;
    ///     batch.clear();
    /// }
    /// assert_eq!(seen, 1000);
    /// t.join().unwrap();
    /// ```
    pub fn pop_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<usize, PopError> {
        if max == 0 {
            return Ok(0);
        }
        let n = self.wait_ready(max, None).map_err(|_| PopError)?.min(max);
        self.take_into(out, n);
        Ok(n)
    }

    /// Like [`pop_batch`](Self::pop_batch), waiting at most `timeout` for the first item.
    pub fn pop_batch_timeout(
        &mut self,
        out: &mut Vec<T>,
        max: usize,
        timeout: Duration,
    ) -> Result<usize, PopTimeoutError> {
        if max == 0 {
            return Ok(0);
        }
        let deadline = Instant::now().checked_add(timeout);
        let n = self.wait_ready(max, deadline)?.min(max);
        self.take_into(out, n);
        Ok(n)
    }

    /// The front item, without taking it.
    ///
    /// ```
    /// let (mut tx, mut rx) = weir::spsc::channel(2);
    /// assert_eq!(rx.peek(), None);
    /// tx.try_push("x").unwrap();
    /// assert_eq!(rx.peek(), Some(&"x"));
    /// assert_eq!(rx.try_pop(), Ok("x"));
    /// ```
    pub fn peek(&mut self) -> Option<&T> {
        if self.ready_or_err(1).is_err() {
            return None;
        }
        // SAFETY: the slot holds an initialised item (ready > 0) that stays in place while the
        // returned borrow of `self` lives: only this handle could remove it, and it is borrowed.
        Some(
            self.shared
                .slot(self.head)
                .with(|p| unsafe { (*p).assume_init_ref() }),
        )
    }

    /// The exact number of items the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Items in the ring now (a snapshot; the producer may be adding some).
    pub fn len(&self) -> usize {
        self.shared.depth()
    }

    /// `true` if the ring holds no item now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` if the ring is full now.
    pub fn is_full(&self) -> bool {
        self.len() == self.shared.capacity
    }

    /// `true` once the producer has been dropped (items may still be left to drain).
    pub fn is_disconnected(&self) -> bool {
        self.shared.producer_closed.load(Ordering::Acquire)
    }

    /// A snapshot of the ring's counters.
    pub fn metrics(&self) -> RingMetrics {
        self.shared.metrics()
    }
}

/// The zero-copy chunk API, for the [`Indexed`] flavour only: its ready items lie in at most
/// two contiguous runs of `T`; [`Stamped`] slots interleave stamps.
impl<T> Consumer<T, Indexed> {
    /// A zero-copy view of up to `max` ready items, as two slices, consumed only by an explicit
    /// [`ReadChunk::commit`]. Never blocks.
    ///
    /// ```
    /// let (mut tx, mut rx) = weir::spsc::channel(4);
    /// tx.push_slice(&[1, 2, 3]);
    /// let chunk = rx.read_chunk(8).unwrap();
    /// let (a, b) = chunk.as_slices();
    /// assert_eq!(a.iter().chain(b).sum::<i32>(), 6);
    /// chunk.commit(2); // consumes 1 and 2
    /// assert_eq!(rx.try_pop(), Ok(3));
    /// ```
    #[cfg(not(loom))]
    pub fn read_chunk(&mut self, max: usize) -> Result<ReadChunk<'_, T>, TryPopError> {
        // `max(1)`: with max 0 a stale cache must still be reloaded before saying "empty".
        let len = match self.ready_or_err(max.max(1)) {
            Ok(n) => n.min(max),
            Err(e) => return Err(self.shared.count_empty(e)),
        };
        self.prefetch_next_batch(len);
        Ok(ReadChunk {
            consumer: self,
            len,
            _items: std::marker::PhantomData,
        })
    }
}

impl<T, R: Readiness> Drop for Consumer<T, R> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: as in `Producer::drop`.
        close_consumer(unsafe { ManuallyDrop::take(&mut self.shared) }, self.head);
    }
}

/// As [`close_producer`], for the consumer's side. Items left in the ring are dropped with
/// `Shared`, when the last reference goes.
#[cold]
#[inline(never)]
fn close_consumer<T, R: Readiness>(shared: Arc<Shared<T, R>>, head: usize) {
    if R::IN_SLOT {
        // As in `close_producer`: the exact `head`, from which `Shared` drops the items left.
        // Release: as in `publish_head`.
        shared.head.store(head, Ordering::Release);
    }
    // See `close_producer`.
    shared.consumer_closed.store(true, Ordering::SeqCst);
    shared.producer_event.wake_all();
}

impl<T, R: Readiness> fmt::Debug for Consumer<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<T, R: Readiness> Iterator for Consumer<T, R> {
    type Item = T;

    /// Blocks for the next item; ends when the ring is empty and the producer is gone.
    fn next(&mut self) -> Option<T> {
        self.pop().ok()
    }
}

// ---------------------------------------------------------------------------------------------
// Read chunk
// ---------------------------------------------------------------------------------------------

/// Up to `max` ready items seen in place; nothing is consumed until [`commit`](Self::commit).
///
/// Dropping the chunk without committing leaves every item in the ring.
///
/// A chunk lends `&T`s from `&self`, so it can be shared between threads only if `T` is
/// `Sync` (and sent to another thread if `T` is `Send`, as the consumer):
///
/// ```compile_fail
/// fn shared_across_threads<S: Sync>(_: &S) {}
/// let (mut tx, mut rx) = weir::spsc::channel(4);
/// tx.push(std::cell::Cell::new(1)).unwrap();
/// let chunk = rx.read_chunk(1).unwrap();
/// shared_across_threads(&chunk); // error: `Cell<i32>` is not `Sync`
/// ```
#[cfg(not(loom))]
pub struct ReadChunk<'a, T> {
    consumer: &'a mut Consumer<T, Indexed>,
    len: usize,
    /// Opts out of the auto traits, which `&mut Consumer` would give whenever `T: Send`; the
    /// impls below restore them with the bounds that `as_slices` needs.
    _items: std::marker::PhantomData<*const T>,
}

// SAFETY: moving the chunk to another thread moves the exclusive borrow of the consumer with it
// (sound when `&mut Consumer` is `Send`, the bound the field alone gave) and lets that thread
// see the items (`&T`) and drop them in `commit`, which needs `T: Send` (implied by that bound:
// the consumer is `Send` only for `T: Send`); the lending thread has no access while the chunk
// lives.
#[cfg(not(loom))]
unsafe impl<'a, T: Send> Send for ReadChunk<'a, T> where &'a mut Consumer<T, Indexed>: Send {}
// SAFETY: through `&ReadChunk` several threads may hold `&T`s to the same items at once
// (`as_slices`), which needs `T: Sync`; they read the consumer's counters through `&Consumer`,
// which needs the consumer to be `Sync`. Nothing is mutated through `&self`.
#[cfg(not(loom))]
unsafe impl<T: Sync> Sync for ReadChunk<'_, T> where Consumer<T, Indexed>: Sync {}

#[cfg(not(loom))]
impl<T> ReadChunk<'_, T> {
    /// Items in the chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` if the chunk holds no item.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The items, oldest first, as two slices (the second is non-empty when the chunk wraps
    /// around the end of the buffer).
    pub fn as_slices(&self) -> (&[T], &[T]) {
        let shared = &*self.consumer.shared;
        let (start, first) = shared.runs(self.consumer.head, self.len);
        // `Some` for the `Indexed` flavour, the only one with chunks.
        let base = shared.items_ptr().unwrap_or_else(|| unreachable!()) as *const T;
        // SAFETY: the slots are an array of `T` (`items_ptr`);
        // the `len` slots from `head` hold initialised items (len <= ready) in these two
        // contiguous runs, and nobody writes them while this chunk borrows the consumer.
        unsafe {
            (
                std::slice::from_raw_parts(base.add(start), first),
                std::slice::from_raw_parts(base, self.len - first),
            )
        }
    }

    /// Consumes the first `n` items of the chunk (dropping them in place) with one publication
    /// of the head.
    ///
    /// # Panics
    /// If `n > self.len()`.
    pub fn commit(self, n: usize) {
        assert!(
            n <= self.len,
            "ReadChunk::commit({n}) on a chunk of {} items",
            self.len
        );
        // Publishes the dropped prefix even if an item's Drop panics, so that no item is
        // dropped twice (once here, once when the ring is dropped).
        struct Commit<'c, T> {
            consumer: &'c mut Consumer<T, Indexed>,
            dropped: usize,
        }
        impl<T> Drop for Commit<'_, T> {
            fn drop(&mut self) {
                self.consumer.release(self.dropped);
            }
        }
        let mut commit = Commit {
            consumer: self.consumer,
            dropped: 0,
        };
        while commit.dropped < n {
            let seq = commit.consumer.head.wrapping_add(commit.dropped);
            commit.dropped += 1;
            // SAFETY: the slot holds an initialised item of the chunk; counting it as dropped
            // before dropping it means a panicking Drop still publishes past it.
            commit
                .consumer
                .shared
                .slot(seq)
                .with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }

    /// Consumes every item of the chunk.
    pub fn commit_all(self) {
        let n = self.len;
        self.commit(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A ring of flavour `R` with the default options.
    fn ring<T, R: Readiness>(capacity: usize) -> (Producer<T, R>, Consumer<T, R>) {
        Builder::new(capacity).build_flavour::<T, R>().unwrap()
    }

    /// A ring of flavour `R` whose counters start at `start`.
    fn ring_at<T, R: Readiness>(capacity: usize, start: usize) -> (Producer<T, R>, Consumer<T, R>) {
        Builder::new(capacity)
            .start_sequence(start)
            .build_flavour::<T, R>()
            .unwrap()
    }

    /// Instantiates each generic test `name::<R>()` once per flavour, as
    /// `spsc::tests::indexed::name` and `spsc::tests::stamped::name`.
    macro_rules! for_both_flavours {
        ($($name:ident),* $(,)?) => {
            mod indexed {
                $(#[test] fn $name() { super::$name::<super::Indexed>() })*
            }
            mod stamped {
                $(#[test] fn $name() { super::$name::<super::Stamped>() })*
            }
        };
    }

    for_both_flavours!(
        capacity_is_exact_for_non_powers_of_two,
        wraps_the_buffer_many_times,
        counters_wrap_around_usize_max,
        zero_sized_items,
        blocking_pop_sees_disconnect,
        blocking_push_sees_disconnect_and_hands_back,
        timeouts_return_the_item,
        threads_move_items_in_order,
        capacity_is_exact_for_every_small_size,
        capacity_one_reuses_its_slot_every_lap,
        single_and_batch_pops_interleave_near_usize_max,
        model_check_against_vecdeque_near_usize_max,
        zero_sized_items_across_counter_wrap_around,
        threads_mix_single_and_batch_pops,
        threads_mix_single_and_batch_pushes,
        consumer_never_sees_popped_ahead_of_pushed,
        threads_move_items_in_order_with_and_without_write_prefetch,
    );

    /// Tests of parking, which need real time: under miri the producer may never park.
    mod parking {
        macro_rules! real_time_tests {
            ($($name:ident),* $(,)?) => {
                $(
                    #[test]
                    #[cfg_attr(miri, ignore = "needs real time: under miri the producer may never park")]
                    fn $name() {
                        super::$name::<super::Indexed>();
                        super::$name::<super::Stamped>();
                    }
                )*
            };
        }
        real_time_tests!(
            slow_consumer_sends_at_most_one_wake_per_registration,
            blocked_producer_stays_registered_across_rechecks,
        );
    }

    /// The repoll interval, timed (lower bounds only, which a loaded machine cannot break): a
    /// second refusal within the interval of a first returns no sooner than the interval after
    /// it, and hands its item back; a push that finds room right after a refusal still waits
    /// out that refusal's interval. That the first refusal of a run does not wait is checked
    /// without a clock by `a_refusal_arms_the_pacing_unless_the_interval_is_zero` (nothing is
    /// armed before it).
    #[test]
    #[cfg_attr(miri, ignore = "needs real time")]
    fn refused_pushes_look_again_no_sooner_than_the_repoll_interval() {
        let interval = MAX_REPOLL_INTERVAL;
        let (mut tx, mut rx) = Builder::new(2)
            .repoll_interval(interval)
            .build::<u32>()
            .unwrap();
        tx.try_push(1).unwrap();
        tx.try_push(2).unwrap();
        let first = Instant::now();
        assert_eq!(tx.try_push(3), Err(TryPushError::Full(3)));
        assert_eq!(tx.try_push(4), Err(TryPushError::Full(4)));
        assert!(
            first.elapsed() >= interval,
            "a second refusal within the interval looked again at once"
        );
        // Room appears; the push right after the second refusal still waits out its interval,
        // which began when that refusal returned, at least one interval after `first`.
        assert_eq!(rx.try_pop(), Ok(1));
        tx.try_push(5).unwrap();
        assert!(
            first.elapsed() >= 2 * interval,
            "a push right after a refusal looked again at once"
        );
        assert_eq!(tx.metrics().push_full, 2);
        assert_eq!((rx.try_pop(), rx.try_pop()), (Ok(2), Ok(5)));
    }

    /// The interval is capped: `try_push` never blocks.
    #[test]
    fn the_repoll_interval_is_capped() {
        for (asked, taken) in [
            (Duration::MAX, MAX_REPOLL_INTERVAL),
            (
                MAX_REPOLL_INTERVAL + Duration::from_nanos(1),
                MAX_REPOLL_INTERVAL,
            ),
            (MAX_REPOLL_INTERVAL, MAX_REPOLL_INTERVAL),
            (Duration::from_nanos(7), Duration::from_nanos(7)),
        ] {
            let (tx, _rx) = Builder::new(1)
                .repoll_interval(asked)
                .build::<u32>()
                .unwrap();
            assert_eq!(tx.repoll_interval, taken);
        }
    }

    /// Whether a refusal arms the pacing: it does by default, never with a zero interval (a
    /// refused push then has nothing to wait out), and a push that finds room disarms it.
    #[test]
    fn a_refusal_arms_the_pacing_unless_the_interval_is_zero() {
        for (interval, armed) in [(REPOLL_INTERVAL, true), (Duration::ZERO, false)] {
            let (mut tx, mut rx) = Builder::new(1)
                .repoll_interval(interval)
                .build::<u32>()
                .unwrap();
            tx.try_push(1).unwrap();
            assert!(tx.refused_at.is_none());
            for i in 0..3 {
                assert_eq!(tx.try_push(i), Err(TryPushError::Full(i)));
                assert_eq!(tx.refused_at.is_some(), armed && !cfg!(loom));
            }
            assert_eq!(rx.try_pop(), Ok(1));
            tx.try_push(7).unwrap();
            assert!(tx.refused_at.is_none());
        }
    }

    #[test]
    fn write_prefetch_distance_follows_the_line_size_and_the_capacity() {
        let on = crate::buffer::write_prefetch_available();
        let ahead = |p: usize| if on { p } else { 0 };
        // u64: 8 per line, 8 lines ahead; needs room for the line after those 64 slots.
        assert_eq!(ring::<u64, Indexed>(1024).0.prefetch_ahead, ahead(64));
        assert_eq!(ring::<u64, Indexed>(72).0.prefetch_ahead, ahead(64));
        assert_eq!(ring::<u64, Indexed>(71).0.prefetch_ahead, 0);
        // Stamped u64 cells are 16 bytes: 4 per line.
        assert_eq!(ring::<u64, Stamped>(1024).0.prefetch_ahead, ahead(32));
        // One slot per line for items of a line or more.
        assert_eq!(ring::<[u8; 100], Indexed>(64).0.prefetch_ahead, ahead(8));
        // Zero-sized items take no memory: nothing to fetch.
        assert_eq!(ring::<(), Indexed>(1 << 20).0.prefetch_ahead, 0);
        // Off when asked.
        let (tx, _rx) = Builder::new(1024)
            .write_prefetch(false)
            .build::<u64>()
            .unwrap();
        assert_eq!(tx.prefetch_ahead, 0);
        let (tx, _rx) = Builder::new(1024).prefetch_lines(2).build::<u64>().unwrap();
        assert_eq!(tx.prefetch_ahead, ahead(16));
        // The consumer's read prefetch: the same distance, `Indexed` only (a `Stamped` pop polls
        // slots that may not be written yet), and off on its own switch.
        assert_eq!(ring::<u64, Indexed>(1024).1.prefetch_ahead, ahead(64));
        assert_eq!(ring::<u64, Indexed>(71).1.prefetch_ahead, 0);
        assert_eq!(ring::<u64, Stamped>(1024).1.prefetch_ahead, 0);
        let (tx, rx) = Builder::new(1024)
            .read_prefetch(false)
            .build::<u64>()
            .unwrap();
        assert_eq!((tx.prefetch_ahead, rx.prefetch_ahead), (ahead(64), 0));
    }

    /// Batch publications demote their lines where the CPU can, for the `Indexed` flavour only
    /// (a `Stamped` consumer polls lines while they are written), never for zero-sized items,
    /// and not when asked not to.
    #[test]
    fn write_demote_is_on_for_indexed_rings_where_the_cpu_has_it() {
        let on = crate::buffer::demote_available();
        assert_eq!(ring::<u64, Indexed>(1024).0.demote, on);
        assert_eq!(ring::<[u8; 100], Indexed>(3).0.demote, on);
        assert!(!ring::<u64, Stamped>(1024).0.demote);
        assert!(!ring::<(), Indexed>(16).0.demote);
        let (tx, _rx) = Builder::new(1024)
            .write_demote(false)
            .build::<u64>()
            .unwrap();
        assert!(!tx.demote);
    }

    /// The batch prefetches ask for whole lines only, from the first line start at or after
    /// `from`, before `to`, and stop at the first line not wholly before `bound`; in wrapping
    /// sequence numbers.
    #[test]
    fn batch_prefetch_spans_whole_lines_before_the_bound() {
        let lines = |from: usize, to: usize, bound: usize| {
            let mut v = Vec::new();
            for_lines_ahead::<u64>(from, to, bound, |seq| v.push(seq));
            v
        };
        // 8 u64 per line.
        assert_eq!(lines(64, 128, 1000), [64, 72, 80, 88, 96, 104, 112, 120]);
        assert_eq!(lines(65, 128, 1000), [72, 80, 88, 96, 104, 112, 120]);
        assert_eq!(lines(64, 121, 1000), [64, 72, 80, 88, 96, 104, 112, 120]);
        assert_eq!(lines(64, 120, 1000), [64, 72, 80, 88, 96, 104, 112]);
        // The bound: a line whose last slot is not before it is not asked for, nor any after.
        assert_eq!(lines(64, 128, 88), [64, 72, 80]);
        assert_eq!(lines(64, 128, 87), [64, 72]);
        assert_eq!(lines(64, 128, 72), [64]);
        assert_eq!(lines(64, 128, 71), [] as [usize; 0]);
        // Empty span.
        assert_eq!(lines(64, 64, 1000), [] as [usize; 0]);
        // Across the wrap of the counters.
        let near = usize::MAX - 15; // a line start: 2^64 - 16
        assert_eq!(lines(near, 16, 24), [near, near + 8, 0, 8]);
        assert_eq!(lines(near + 1, 8, 1000), [near + 8, 0]);
    }

    /// The consumer's checkpoint (`Consumer::checkpoint`) against every way `head` moves in
    /// the `Indexed` flavour: single pops, `try_pop_batch`, and `read_chunk` with commits of
    /// 0, 1 and more items, at capacities where the read prefetch is active, with it on and
    /// off; the producer pushes single items and slices. Order is checked item by item.
    #[test]
    fn consumer_checkpoint_survives_every_kind_of_pop() {
        let (n, caps): (u64, &[usize]) = if cfg!(miri) {
            (300, &[80])
        } else {
            (200_000, &[72, 100, 1000])
        };
        for &cap in caps {
            for on in [true, false] {
                let (mut tx, mut rx) = Builder::new(cap)
                    .read_prefetch(on)
                    .write_prefetch(on)
                    .build::<u64>()
                    .unwrap();
                let t = std::thread::spawn(move || {
                    let mut i = 0;
                    while i < n {
                        if i % 11 == 0 {
                            let items: Vec<u64> = (i..(i + 9).min(n)).collect();
                            i += tx.push_slice(&items) as u64;
                        } else if tx.try_push(i).is_ok() {
                            i += 1;
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                });
                let mut next = 0u64;
                let mut out = Vec::new();
                let mut step = 0u32;
                while next < n {
                    step = step.wrapping_add(1);
                    match step % 5 {
                        0 => {
                            out.clear();
                            if rx.try_pop_batch(&mut out, 13).is_ok() {
                                for &v in &out {
                                    assert_eq!(v, next, "capacity {cap}, prefetch {on}");
                                    next += 1;
                                }
                            }
                        }
                        1 | 2 => {
                            if let Ok(chunk) = rx.read_chunk(1 + (step as usize % 3) * 6) {
                                let (a, b) = chunk.as_slices();
                                let k = match step % 3 {
                                    0 => 0,
                                    1 => 1,
                                    _ => chunk.len(),
                                };
                                for &v in a.iter().chain(b).take(k) {
                                    assert_eq!(v, next, "capacity {cap}, prefetch {on}");
                                    next += 1;
                                }
                                chunk.commit(k);
                            }
                        }
                        _ => {
                            if let Ok(v) = rx.try_pop() {
                                assert_eq!(v, next, "capacity {cap}, prefetch {on}");
                                next += 1;
                            }
                        }
                    }
                }
                t.join().unwrap();
                assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
            }
        }
    }

    fn capacity_is_exact_for_non_powers_of_two<R: Readiness>() {
        let (mut tx, mut rx) = ring::<u32, R>(3);
        for i in 0..3 {
            tx.try_push(i).unwrap();
        }
        assert!(tx.try_push(3).unwrap_err().is_full());
        assert_eq!(rx.try_pop(), Ok(0));
        tx.try_push(3).unwrap();
        assert!(tx.is_full());
        assert_eq!(tx.len(), 3);
    }

    fn wraps_the_buffer_many_times<R: Readiness>() {
        let (mut tx, mut rx) = ring::<usize, R>(5);
        for i in 0..if cfg!(miri) { 200 } else { 1000 } {
            tx.try_push(i).unwrap();
            tx.try_push(i + 1).unwrap();
            assert_eq!(rx.try_pop(), Ok(i));
            assert_eq!(rx.try_pop(), Ok(i + 1));
        }
        assert!(rx.is_empty());
    }

    fn counters_wrap_around_usize_max<R: Readiness>() {
        let (mut tx, mut rx) = ring_at::<u64, R>(4, usize::MAX - 5);
        let mut out = Vec::new();
        for round in 0..10u64 {
            assert_eq!(tx.push_slice(&[round, round + 100, round + 200]), 3);
            assert_eq!(tx.len(), 3);
            assert_eq!(rx.try_pop(), Ok(round));
            assert_eq!(rx.try_pop_batch(&mut out, 8), Ok(2));
        }
        assert_eq!(out.len(), 20);
        assert!(rx.is_empty());
    }

    #[test]
    fn read_chunk_wraps_into_two_slices() {
        let (mut tx, mut rx) = channel::<u8>(4);
        tx.push_slice(&[1, 2, 3]);
        assert_eq!(rx.try_pop(), Ok(1));
        assert_eq!(rx.try_pop(), Ok(2));
        tx.push_slice(&[4, 5, 6]);
        let chunk = rx.read_chunk(10).unwrap();
        let (a, b) = chunk.as_slices();
        assert_eq!((a, b), (&[3, 4][..], &[5, 6][..]));
        chunk.commit(3);
        assert_eq!(rx.try_pop(), Ok(6));
    }

    fn zero_sized_items<R: Readiness>() {
        let (mut tx, mut rx) = ring::<(), R>(3);
        assert_eq!(tx.push_iter(std::iter::repeat(())), 3);
        assert!(tx.try_push(()).is_err());
        let mut out = Vec::new();
        assert_eq!(rx.try_pop_batch(&mut out, 10), Ok(3));
        assert_eq!(out.len(), 3);
    }

    fn blocking_pop_sees_disconnect<R: Readiness>() {
        let (tx, mut rx) = ring::<u8, R>(2);
        let t = std::thread::spawn(move || rx.pop());
        std::thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 20 }));
        drop(tx);
        assert_eq!(t.join().unwrap(), Err(PopError));
    }

    fn blocking_push_sees_disconnect_and_hands_back<R: Readiness>() {
        let (mut tx, rx) = ring::<String, R>(1);
        tx.try_push("a".into()).unwrap();
        let t = std::thread::spawn(move || tx.push("b".into()));
        std::thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 20 }));
        drop(rx);
        let err = t.join().unwrap().unwrap_err();
        assert_eq!(err.into_inner(), "b");
    }

    fn timeouts_return_the_item<R: Readiness>() {
        let (mut tx, mut rx) = ring::<u8, R>(1);
        tx.try_push(1).unwrap();
        let e = tx.push_timeout(2, Duration::from_millis(5)).unwrap_err();
        assert!(e.is_timeout());
        assert_eq!(e.into_inner(), 2);
        assert_eq!(rx.pop_timeout(Duration::from_millis(5)), Ok(1));
        assert_eq!(
            rx.pop_timeout(Duration::from_millis(5)),
            Err(PopTimeoutError::Timeout)
        );
        let m = rx.metrics();
        assert_eq!(m.push_full, 1);
        assert_eq!(m.pop_empty, 1);
        assert!(m.producer_blocked >= Duration::from_millis(5));
    }

    fn threads_move_items_in_order<R: Readiness>() {
        let n: u64 = if cfg!(miri) { 500 } else { 200_000 };
        let (mut tx, mut rx) = ring::<u64, R>(7);
        let t = std::thread::spawn(move || {
            for i in 0..n {
                tx.push(i).unwrap();
            }
        });
        let mut next = 0;
        let mut batch = Vec::new();
        while let Ok(k) = rx.pop_batch(&mut batch, 5) {
            assert!((1..=5).contains(&k));
            for v in batch.drain(..) {
                assert_eq!(v, next);
                next += 1;
            }
        }
        assert_eq!(next, n);
        t.join().unwrap();
    }

    /// Capacities at which the producer's write prefetch is active (72 is the smallest for
    /// `u64` in the `Indexed` flavour), and the same rings with it off (and the demotion of
    /// published lines on and off with it): items cross threads in order, through single and
    /// slice pushes and single and batch pops, many times around the buffer (the producer's
    /// checkpoint bookkeeping, see `Producer::checkpoint`).
    fn threads_move_items_in_order_with_and_without_write_prefetch<R: Readiness>() {
        let (n, caps): (u64, &[usize]) = if cfg!(miri) {
            (200, &[72, 100])
        } else {
            (100_000, &[72, 100, 1000])
        };
        for &cap in caps {
            for on in [true, false] {
                let (mut tx, mut rx) = Builder::new(cap)
                    .write_prefetch(on)
                    .write_demote(on)
                    .build_flavour::<u64, R>()
                    .unwrap();
                let t = std::thread::spawn(move || {
                    // Single pushes, and now and then a slice, which moves `tail` past the
                    // next prefetch point in one step.
                    let mut i = 0;
                    while i < n {
                        if i % 7 == 0 {
                            let items: Vec<u64> = (i..(i + 5).min(n)).collect();
                            match tx.push_slice(&items) {
                                0 => {
                                    tx.push(i).unwrap();
                                    i += 1;
                                }
                                k => i += k as u64,
                            }
                        } else {
                            tx.push(i).unwrap();
                            i += 1;
                        }
                    }
                });
                let mut next = 0;
                let mut batch = Vec::new();
                while next < n {
                    if next % 3 == 0 {
                        assert_eq!(rx.pop(), Ok(next));
                        next += 1;
                    } else {
                        let k = rx.pop_batch(&mut batch, 40).unwrap();
                        assert!((1..=40).contains(&k));
                        for v in batch.drain(..) {
                            assert_eq!(v, next, "capacity {cap}, prefetch {on}");
                            next += 1;
                        }
                    }
                }
                assert_eq!(rx.pop(), Err(PopError));
                t.join().unwrap();
            }
        }
    }

    /// Every capacity from 1 to 17 (powers of two and not; a few under miri), with the ring
    /// offset so that the bound is checked at every position of the buffer: exactly `capacity`
    /// items go in, by `try_push`, `push_slice` and `push_iter`, and come out in order, by
    /// single pops.
    fn capacity_is_exact_for_every_small_size<R: Readiness>() {
        let caps: &[usize] = if cfg!(miri) {
            &[1, 2, 3, 5, 8, 9]
        } else {
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
        };
        for &cap in caps {
            let (mut tx, mut rx) = ring::<usize, R>(cap);
            let mut next_in = 0;
            let mut next_out = 0;
            for offset in 0..cap.next_power_of_two() + 1 {
                let n = match offset % 3 {
                    0 => {
                        let mut n = 0;
                        while tx.try_push(next_in + n).is_ok() {
                            n += 1;
                        }
                        n
                    }
                    1 => tx.push_slice(&(next_in..next_in + cap + 2).collect::<Vec<_>>()),
                    _ => tx.push_iter(next_in..),
                };
                assert_eq!(n, cap, "cap {cap} offset {offset} form {}", offset % 3);
                next_in += n;
                assert!(tx.is_full() && rx.is_full(), "cap {cap} offset {offset}");
                assert_eq!((tx.len(), rx.len(), tx.slots()), (cap, cap, 0));
                assert!(tx.try_push(usize::MAX).unwrap_err().is_full());
                // Empty it by single pops, then move the ring on by one slot, so that the next
                // round's bound falls one slot further along the buffer.
                while let Ok(v) = rx.try_pop() {
                    assert_eq!(v, next_out, "cap {cap} offset {offset}");
                    next_out += 1;
                }
                assert_eq!(next_out, next_in);
                assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
                tx.try_push(next_in).unwrap();
                next_in += 1;
                assert_eq!(rx.try_pop(), Ok(next_out));
                next_out += 1;
            }
            let m = rx.metrics();
            assert_eq!(
                (m.pushed, m.popped, m.depth),
                (next_in as u64, next_out as u64, 0)
            );
        }
    }

    /// Capacity 1: the one slot is reused every lap, so each single pop must tell this lap's
    /// item from the previous lap's stamp; with the counters wrapping around `usize::MAX` too.
    fn capacity_one_reuses_its_slot_every_lap<R: Readiness>() {
        let laps = if cfg!(miri) { 20 } else { 50 };
        for start in [0, usize::MAX - 3, usize::MAX] {
            let (mut tx, mut rx) = ring_at::<u32, R>(1, start);
            assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
            assert_eq!(rx.peek(), None);
            for i in 0..laps {
                tx.try_push(i).unwrap();
                assert!(tx.try_push(u32::MAX).unwrap_err().is_full());
                assert_eq!(tx.push_slice(&[u32::MAX]), 0);
                assert_eq!(rx.peek(), Some(&i));
                let got = match i % 3 {
                    0 => rx.try_pop().unwrap(),
                    1 => rx.pop_timeout(Duration::from_secs(5)).unwrap(),
                    _ => {
                        let mut out = Vec::new();
                        assert_eq!(rx.try_pop_batch(&mut out, 4), Ok(1));
                        out[0]
                    }
                };
                assert_eq!(got, i, "start {start}");
                assert_eq!(rx.try_pop(), Err(TryPopError::Empty), "start {start} i {i}");
                assert_eq!(rx.peek(), None);
            }
            let m = tx.metrics();
            assert_eq!((m.pushed, m.popped, m.depth), (laps.into(), laps.into(), 0));
        }
    }

    /// Single pops (the stamp path in `Stamped`) and batch pops (the `tail` path) alternating
    /// within one lap, with the counters started just below `usize::MAX`: after a single pop
    /// learnt of one item from its stamp, a batch must still see every item `tail` shows, and
    /// after a batch a single pop must not read past what the batch left.
    fn single_and_batch_pops_interleave_near_usize_max<R: Readiness>() {
        // Under miri, a few offsets only: the wrap at the start, inside the first lap, after it.
        let caps: &[usize] = if cfg!(miri) {
            &[3, 5]
        } else {
            &[2, 3, 4, 5, 8]
        };
        for &cap in caps {
            let offsets: Vec<usize> = if cfg!(miri) {
                vec![0, cap, 2 * cap + 1]
            } else {
                (0..=2 * cap + 2).collect()
            };
            for k in offsets {
                let (mut tx, mut rx) = ring_at::<u64, R>(cap, usize::MAX - k);
                let (mut next_in, mut next_out) = (0u64, 0u64);
                let mut out = Vec::new();
                for round in 0..4 * cap {
                    let free = cap - tx.len();
                    let items: Vec<u64> = (next_in..next_in + free as u64).collect();
                    assert_eq!(tx.push_slice(&items), free, "cap {cap} k {k} round {round}");
                    next_in += free as u64;
                    // single, batch of 2, single, batch of everything
                    assert_eq!(rx.try_pop(), Ok(next_out), "cap {cap} k {k} round {round}");
                    next_out += 1;
                    if cap >= 3 {
                        out.clear();
                        assert_eq!(rx.try_pop_batch(&mut out, 2), Ok(2));
                        assert_eq!(out, [next_out, next_out + 1]);
                        next_out += 2;
                    }
                    // A push between the pops: the single pop below must see the old front.
                    if tx.try_push(next_in).is_ok() {
                        next_in += 1;
                    }
                    assert_eq!(rx.peek(), Some(&next_out));
                    assert_eq!(rx.try_pop(), Ok(next_out));
                    next_out += 1;
                    let left = (next_in - next_out) as usize;
                    assert_eq!(rx.len(), left);
                    out.clear();
                    let taken = rx.try_pop_batch(&mut out, usize::MAX);
                    if left == 0 {
                        assert_eq!(taken, Err(TryPopError::Empty));
                    } else {
                        assert_eq!(taken, Ok(left));
                        let expect: Vec<u64> = (next_out..next_in).collect();
                        assert_eq!(out, expect);
                        next_out = next_in;
                    }
                    let m = rx.metrics();
                    assert_eq!((m.pushed, m.popped, m.depth), (next_in, next_out, 0));
                }
            }
        }
    }

    /// A small xorshift generator: deterministic operation sequences without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Random sequences of every non-blocking operation (and blocking ones that cannot block),
    /// checked step by step against a `VecDeque`, with the counters started at every offset just
    /// below `usize::MAX`.
    fn model_check_against_vecdeque_near_usize_max<R: Readiness>() {
        let steps = if cfg!(miri) { 30 } else { 400 };
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let caps: &[usize] = if cfg!(miri) {
            &[1, 3, 4]
        } else {
            // 20 and 64: rings larger than a `Stamped` counter period.
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 64]
        };
        for &cap in caps {
            let offsets: Vec<usize> = if cfg!(miri) {
                vec![0, cap + 1]
            } else {
                (0..=cap + 2).collect()
            };
            for k in offsets {
                let (mut tx, mut rx) = ring_at::<u64, R>(cap, usize::MAX - k);
                let mut model = VecDeque::new();
                let (mut next, mut pushed, mut popped) = (0u64, 0u64, 0u64);
                for step in 0..steps {
                    // (capacity, start below usize::MAX, step): formatted only if a check fails.
                    let ctx = (cap, k, step);
                    match rng.below(9) {
                        0 | 1 => {
                            let ok = tx.try_push(next).is_ok();
                            assert_eq!(ok, model.len() < cap, "{ctx:?}");
                            if ok {
                                model.push_back(next);
                                next += 1;
                            }
                        }
                        2 => {
                            let want = rng.below(cap as u64 + 2) as usize;
                            let items: Vec<u64> = (next..next + want as u64).collect();
                            let n = tx.push_slice(&items);
                            assert_eq!(n, want.min(cap - model.len()), "{ctx:?}");
                            model.extend(&items[..n]);
                            next += n as u64;
                        }
                        3 => {
                            let n = tx.push_iter(next..);
                            assert_eq!(n, cap - model.len(), "{ctx:?}");
                            model.extend(next..next + n as u64);
                            next += n as u64;
                        }
                        4 | 5 => {
                            let got = rx.try_pop().ok();
                            assert_eq!(got, model.pop_front(), "{ctx:?}");
                        }
                        6 => {
                            let max = rng.below(cap as u64 + 2) as usize;
                            let mut out = Vec::new();
                            let r = rx.try_pop_batch(&mut out, max);
                            let expect: Vec<u64> = model.drain(..max.min(model.len())).collect();
                            match r {
                                Ok(n) => assert_eq!(n, expect.len(), "{ctx:?}"),
                                Err(e) => {
                                    assert_eq!(e, TryPopError::Empty, "{ctx:?}");
                                    assert!(expect.is_empty() && max > 0, "{ctx:?}");
                                }
                            }
                            assert_eq!(out, expect, "{ctx:?}");
                        }
                        7 => assert_eq!(rx.peek(), model.front(), "{ctx:?}"),
                        _ => {
                            // Blocking calls only when they cannot block.
                            if model.is_empty() {
                                let r = rx.pop_timeout(Duration::ZERO);
                                assert_eq!(r, Err(PopTimeoutError::Timeout), "{ctx:?}");
                            } else {
                                assert_eq!(rx.pop().ok(), model.pop_front(), "{ctx:?}");
                            }
                        }
                    }
                    pushed = next;
                    popped = pushed - model.len() as u64;
                    assert_eq!((tx.len(), rx.len()), (model.len(), model.len()), "{ctx:?}");
                    let m = rx.metrics();
                    assert_eq!((m.pushed, m.popped, m.depth), (pushed, popped, model.len()));
                }
                let left: Vec<u64> = rx.by_ref().take(model.len()).collect();
                assert_eq!(left, model.iter().copied().collect::<Vec<_>>());
                assert_eq!(popped + model.len() as u64, pushed);
            }
        }
    }

    /// Zero-sized items in a ring whose counters wrap around `usize::MAX`: the slots still
    /// carry their stamps, and every form of pop counts exactly.
    fn zero_sized_items_across_counter_wrap_around<R: Readiness>() {
        for cap in [1usize, 3, 4] {
            let (mut tx, mut rx) = ring_at::<(), R>(cap, usize::MAX - 1);
            for round in 0..6 {
                assert_eq!(tx.push_iter(std::iter::repeat(())), cap, "round {round}");
                assert!(tx.try_push(()).unwrap_err().is_full());
                assert_eq!(rx.try_pop(), Ok(()));
                let mut out = Vec::new();
                let rest = rx.try_pop_batch(&mut out, cap);
                if cap == 1 {
                    assert_eq!(rest, Err(TryPopError::Empty));
                } else {
                    assert_eq!(rest, Ok(cap - 1));
                }
                assert_eq!(out.len(), cap - 1);
                assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
                tx.try_push(()).unwrap();
                assert_eq!(rx.peek(), Some(&()));
                assert_eq!(rx.pop(), Ok(()));
            }
            let m = rx.metrics();
            assert_eq!(
                (m.pushed, m.popped),
                (6 * (cap as u64 + 1), 6 * (cap as u64 + 1))
            );
        }
    }

    /// Across threads, the consumer switches between single pops (blocking and not) and batch
    /// pops, so that the two readiness paths interleave while the producer is running; the
    /// counters start just below `usize::MAX`.
    fn threads_mix_single_and_batch_pops<R: Readiness>() {
        let n: u64 = if cfg!(miri) { 100 } else { 50_000 };
        for cap in [1usize, 3, 8] {
            let (mut tx, mut rx) = ring_at::<u64, R>(cap, usize::MAX - 2);
            let t = std::thread::spawn(move || {
                let mut i = 0;
                while i < n {
                    let sent = match i % 3 {
                        0 => tx.push_slice(&[i, i + 1, i + 2][..(n - i).min(3) as usize]),
                        1 => tx.push_iter(i..n.min(i + 2)),
                        _ => 0,
                    } as u64;
                    i += sent;
                    if sent == 0 && i < n {
                        tx.push(i).unwrap();
                        i += 1;
                    }
                }
            });
            let mut next = 0u64;
            let mut out = Vec::new();
            let mut round = 0u64;
            loop {
                round += 1;
                let r = match round % 4 {
                    0 => rx.pop().map(|v| vec![v]).map_err(|_| ()),
                    1 => match rx.try_pop() {
                        Ok(v) => Ok(vec![v]),
                        Err(TryPopError::Empty) => Ok(vec![]),
                        Err(TryPopError::Disconnected) => Err(()),
                    },
                    2 => {
                        out.clear();
                        rx.pop_batch(&mut out, 1 + (round as usize % 5))
                            .map(|_| out.clone())
                            .map_err(|_| ())
                    }
                    _ => {
                        out.clear();
                        match rx.try_pop_batch(&mut out, 2) {
                            Ok(_) => Ok(out.clone()),
                            Err(TryPopError::Empty) => Ok(vec![]),
                            Err(TryPopError::Disconnected) => Err(()),
                        }
                    }
                };
                let Ok(got) = r else { break };
                for v in got {
                    assert_eq!(v, next, "cap {cap}");
                    next += 1;
                }
                let m = rx.metrics();
                assert!(m.popped == next && m.pushed >= next, "cap {cap}: {m:?}");
            }
            t.join().unwrap();
            assert_eq!(next, n, "cap {cap}");
        }
    }

    /// Across threads, the producer switches between single `try_push`es and batch pushes
    /// (`push_slice`) while the consumer spins on single pops. In the `Stamped` flavour a single
    /// push learns of room from a stamp, which the consumer marks free before it publishes
    /// `head`, so the producer may run one pop ahead of `head + capacity`; the batch push that
    /// follows must see no room by `head` then, not a wrapped difference (which once let it
    /// overwrite items). Every item arrives once, in order, and the ring never holds more than
    /// its capacity by the consumer's count.
    fn threads_mix_single_and_batch_pushes<R: Readiness>() {
        let n: u64 = if cfg!(miri) { 100 } else { 100_000 };
        for cap in [1usize, 3, 8] {
            let (mut tx, mut rx) = ring_at::<u64, R>(cap, usize::MAX - 2);
            let t = std::thread::spawn(move || {
                let mut i = 0;
                while i < n {
                    if i % 3 == 0 {
                        let batch = [i, i + 1, i + 2];
                        i += tx.push_slice(&batch[..(n - i).min(3) as usize]) as u64;
                    }
                    if i < n && tx.try_push(i).is_ok() {
                        i += 1;
                    }
                    std::hint::spin_loop();
                }
            });
            let mut next = 0;
            while next < n {
                match rx.try_pop() {
                    Ok(v) => {
                        assert_eq!(v, next, "cap {cap}");
                        next += 1;
                        let m = rx.metrics();
                        assert!(m.pushed - m.popped <= cap as u64, "cap {cap}: {m:?}");
                    }
                    Err(TryPopError::Empty) => std::hint::spin_loop(),
                    Err(TryPopError::Disconnected) => panic!("cap {cap}: gone after {next}"),
                }
            }
            t.join().unwrap();
            assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected), "cap {cap}");
        }
    }

    /// The consumer's own view of the counters, taken right after each pop, never shows more
    /// items popped than pushed, nor more in the ring than the capacity. In the `Stamped` flavour
    /// a single pop learns of its item from the slot's stamp, not from `tail`; the producer
    /// stores `tail` before the stamps so that the `tail` this thread loads next is at least
    /// the item's sequence plus one.
    fn consumer_never_sees_popped_ahead_of_pushed<R: Readiness>() {
        let n: u64 = if cfg!(miri) { 200 } else { 30_000 };
        let cap = 4;
        let (mut tx, mut rx) = Builder::new(cap)
            .wait_strategy(WaitStrategy::BusySpin)
            .start_sequence(usize::MAX - 1)
            .build_flavour::<u64, R>()
            .unwrap();
        let t = std::thread::spawn(move || {
            for i in 0..n {
                tx.push(i).unwrap();
                let m = tx.metrics();
                assert!(m.popped <= m.pushed && m.pushed == i + 1, "producer: {m:?}");
            }
        });
        for i in 0..n {
            assert_eq!(rx.pop(), Ok(i));
            let m = rx.metrics();
            assert_eq!(m.popped, i + 1);
            assert!(
                m.pushed > i,
                "popped {} but pushed only {}",
                m.popped,
                m.pushed
            );
            assert!(m.pushed - m.popped <= cap as u64, "{m:?}");
            assert!(rx.len() <= cap);
        }
        t.join().unwrap();
    }

    /// Each registration of a parked producer is woken at most once: the consumer takes it as it
    /// wakes (`Event::wake_sole_waiter`), so its further pops before the producer has run send
    /// no more wake-ups. (Wake-ups per *park* are not bounded the same way: a producer delayed
    /// between registering and its re-check may find the room already there and not sleep, after
    /// the consumer woke it; on a loaded 2-core CI machine that was 63 wake-ups for 44 parks.)
    ///
    /// Regression test: without the take, 768..1053 wake-ups went to 165..172 parks (every pop
    /// between the threshold and the woken producer's unregistering sent another futex wake).
    fn slow_consumer_sends_at_most_one_wake_per_registration<R: Readiness>() {
        let items: u32 = 3_000;
        let (mut tx, mut rx) = Builder::new(64)
            .producer_wait(WaitStrategy::Park)
            .build_flavour::<u32, R>()
            .unwrap();
        let producer = std::thread::spawn(move || {
            for i in 0..items {
                tx.push(i).unwrap();
            }
        });
        let mut next = 0;
        while let Ok(v) = rx.pop() {
            assert_eq!(v, next);
            next += 1;
            // Slow: ~20 µs of work per item, so that the producer fills the ring and parks.
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(20) {
                std::hint::spin_loop();
            }
        }
        producer.join().unwrap();
        assert_eq!(next, items);
        let stats = &rx.shared.producer_stats;
        let registrations = stats.registrations.load(Ordering::Relaxed);
        let parks = stats.parks.load(Ordering::Relaxed);
        let wakes = rx.shared.consumer_stats.wakes_sent.load(Ordering::Relaxed);
        assert!(
            parks > 0,
            "the producer never parked: the test proves nothing"
        );
        assert!(
            wakes <= registrations,
            "{wakes} wake-ups for {registrations} registrations ({parks} parks)"
        );
    }

    /// A producer parked behind the wake-up threshold on a consumer that pops nothing re-checks
    /// every `THRESHOLD_RECHECK` on its own, and keeps its one registration across those sleeps:
    /// no new registration, so no heavy barrier (a `membarrier` interrupt on every core running
    /// the process) per re-check.
    fn blocked_producer_stays_registered_across_rechecks<R: Readiness>() {
        let (mut tx, mut rx) = Builder::new(4)
            .producer_wait(WaitStrategy::Park)
            .build_flavour::<u32, R>()
            .unwrap();
        assert!(rx.shared.producer_threshold > 1, "no re-checks to test");
        assert_eq!(tx.push_iter(0..4), 4);
        let producer = std::thread::spawn(move || tx.push(4));
        let stats = &rx.shared.producer_stats;
        let parks = || stats.parks.load(Ordering::Relaxed);
        let give_up = Instant::now() + Duration::from_secs(30);
        while parks() < 4 {
            assert!(Instant::now() < give_up, "only {} parks in 30 s", parks());
            std::thread::sleep(Duration::from_millis(1));
        }
        // Read before the pop: the consumer takes the registration when it frees room.
        let registrations = stats.registrations.load(Ordering::Relaxed);
        assert_eq!(
            registrations,
            1,
            "{registrations} registrations for {} parks",
            parks()
        );
        assert_eq!(rx.pop(), Ok(0));
        assert_eq!(rx.pop(), Ok(1));
        assert_eq!(producer.join().unwrap(), Ok(()));
        assert_eq!(rx.try_pop_batch(&mut Vec::new(), 10), Ok(3));
    }
}
