//! The multi-producer multi-consumer ring.
//!
//! A bounded array of slots, each with a sequence *stamp*, and two cache-padded position
//! counters that producers and consumers claim positions on with compare-and-swap: the family of
//! Dmitry Vyukov's bounded MPMC queue. A slot's stamp says whose turn it is, so a producer never
//! waits on another producer's unrelated slot, and a consumer that claimed a position only ever
//! waits for the one producer that owns the same position.
//!
//! # Positions
//!
//! A position is one `usize` split in two: the low bits are the *index* of a slot
//! (`0 .. capacity`), the high bits count *laps* around the array. `one_lap` is the power of two
//! above the index bits (`capacity.next_power_of_two()`, at least 4 so that the stamp has room for
//! a state, see below). The position after `p` is `p + 1` while the index stays below `capacity`,
//! and the start of the next lap otherwise:
//!
//! ```text
//! next(p) = if index(p) + 1 < capacity { p + 1 } else { lap(p) + one_lap }
//! ```
//!
//! So the array holds exactly `capacity` slots and a ring of 1000 holds 1000 items, never 1001,
//! without a division or a modulo anywhere: a slot is found with a mask, a position advanced with
//! one compare. Positions wrap around `usize::MAX` (at a lap boundary, since `one_lap` is a power
//! of two); all comparisons are wrapping.
//!
//! - `tail`: the next position a producer will claim. Producers advance it with CAS.
//! - `head`: the next position a consumer will claim. Consumers (and `force_push`) advance it
//!   with CAS.
//!
//! # Stamps
//!
//! The stamp of a slot is `lap | state`, where `lap` is the lap bits of the position the slot
//! currently serves and `state` lives in the two low bits (free, because `one_lap >= 4`):
//!
//! | stamp              | meaning                                                          |
//! |--------------------|------------------------------------------------------------------|
//! | `lap \| EMPTY`     | free, waiting for the producer of position `lap \| index`        |
//! | `lap \| FULL`      | holds the item of that position, waiting for its consumer        |
//! | `lap \| HOLE`      | that position was claimed by a producer that had nothing to put  |
//! |                    | in it (an iterator ran dry); consumers pass over it              |
//! | `lap + one_lap`    | consumed; free for the producer of the next lap                  |
//!
//! **Invariants.** A slot's stamp only moves forward, and only its owner moves it: the producer
//! that claimed the position (EMPTY → FULL/HOLE) or the consumer that claimed it (FULL/HOLE →
//! next lap's EMPTY). A producer claims position `t` only when `stamp == lap(t) | EMPTY`, so the
//! previous lap's item was taken; a consumer claims `h` only when the stamp is `lap(h) | FULL` or
//! `| HOLE`, so the item is there. Hence `head <= tail` and `tail - head <= capacity`, except for
//! the few instructions inside [`Producer::force_push`] between its two CASes (see there), when it
//! is `capacity + 1`. The items are exactly the positions in `head .. tail` whose stamp is FULL.
//!
//! # Orderings
//!
//! The slot's stamp carries the data, never the counters: a producer writes the value, then
//! stores `FULL` with Release; a consumer loads the stamp with Acquire before reading the value
//! (that pair publishes the item). A consumer reads the value, then stores the next lap's `EMPTY`
//! with Release; a producer loads the stamp with Acquire before writing (that pair returns the
//! slot). The CASes on `head` and `tail` only decide *who* owns a position, so they are Relaxed:
//! their atomicity alone makes ownership exclusive.
//!
//! # Single items
//!
//! `try_push`/`try_pop` (and the retries of the blocking `push`/`pop`) first try the common case
//! written out, with the lap computed once: load the counter, load its slot's stamp, compare it
//! with `lap | EMPTY` (a pop: `lap | FULL`), CAS the counter, write (read) the value, store the
//! stamp, check for sleepers. It is the general claim below restricted to one position whose
//! stamp was ready and whose CAS won, with the same orderings. If the stamp says the slot is
//! still the other side's (a pop: `lap | EMPTY`, this lap's producer has not written it; a push:
//! the previous lap's `FULL`, its item is still in it), the call reports `Empty`/`Full` at once,
//! without a second look. Everything else (a stale counter, a lost CAS, a hole, and a pop once
//! every producer is gone) goes the general way.
//!
//! # Batches
//!
//! `try_pop_batch`/`pop_batch` scan forward from `head` for stamps that say "ready", then claim
//! the whole run with one CAS; `push_slice`/`push_iter` do the same from `tail` for free slots. A
//! stamp seen ready cannot change before the CAS, because only the owner of a position changes
//! it and nobody owns a position beyond the counter it is claimed on.
//!
//! # Not ready means report, never wait here
//!
//! No claim waits for the other side. When the slot at the counter is still the other side's
//! (empty or full there, or a peer claimed that position and is mid-way through it), the claim
//! reports `Empty`/`Full` and the caller's retry policy, or the blocking calls' spin-then-park,
//! decides when to look again. A side that finds the ring empty (full) is right behind the other
//! side, on the very line the other side is storing to: every further look takes that line away
//! from the writer, which must fetch it back for its next store. Until the sixth session the
//! claims looked again, read the other counter and, seeing the position claimed, waited for the
//! peer (spins, then yields), as crossbeam's `ArrayQueue` does without a bound; a side that kept
//! up with the other hit that case again and again and slowed the very writer it waited for.
//! Reporting at once measured 1.05-1.29x for single items per shape, 1.03-1.09x for batches with
//! try + backoff and 1.24-1.35x with `pop_batch_timeout` (what the pool's workers call), in
//! same-binary A/Bs (docs/benchmarks.md, "What changed in the sixth session"). A pop that reports
//! `Empty` while a producer is mid-way is correct: that push has not completed (the stamp store
//! publishes the item).
//!
//! # Waiting and fairness
//!
//! Producers that find the ring full park on the `not_full` queue, consumers that find it empty
//! on `not_empty` (see [`crate::wait`] for the lost-wake-up argument). Every publish does
//! `store stamp; light_barrier(); if has_waiters() { wake(n) }`, where `n` is the number of items
//! published (producers) or slots freed (consumers): one wake-up per item or slot, never all
//! waiters at once. Disconnects wake every waiter.
//!
//! Each parked thread waits on a node of its own in a FIFO queue (`wait::WaitQueue`). A wake
//! dequeues the oldest node and claims it before waking that thread, so a registration stops
//! counting the moment its wake is sent: publications made while the woken thread is still
//! getting up (tens of microseconds after a futex wake) find no one left to wake and make no
//! system call. A thread that leaves while its node is queued (its re-check succeeded, or its
//! deadline passed) withdraws the node; if a wake had claimed it already, the thread passes that
//! wake on to the next node, so a wake is never spent on a thread that does not retry for it.
//!
//! What this guarantees, and what it does not: a parked thread is never left asleep while the
//! thing it waits for is available and no other thread takes it (each publish after it
//! registered wakes one sleeper, and a sleeper that is woken always retries before it can time
//! out). Parked threads are woken in the order they parked. But a woken thread competes with
//! threads that are still spinning and may lose the slot or item to one of them; it then parks
//! again, at the back of the queue. Under sustained oversubscription a waiter can therefore lose
//! repeatedly: there is no strict FIFO hand-off and no bound on how often that happens.
//!
//! # Progress
//!
//! Like every queue of this family the ring is not lock-free in the strict sense: a producer
//! that claimed a position and is preempted before it writes the stamp holds up the consumer of
//! that one position (and only that one). The `try_` calls and the batch calls report
//! `Full`/`Empty` then (see above); blocking calls park until the peer publishes. Only
//! `force_push` waits for a peer mid-way, because it must take over that very slot.

use crate::buffer::{
    alloc_slots, prefetch_for_write, slot_count, write_prefetch_available, Slot as Cell,
};
use crate::error::{
    CapacityError, PopError, PopTimeoutError, PushError, PushTimeoutError, TryPopError,
    TryPushError,
};
use crate::metrics::{RingMetrics, SideStats};
use crate::sync::{spin_loop, yield_now, Arc, AtomicUsize, Ordering, StatU64, UnsafeCell};
use crate::wait::{init_barriers, light_barrier, spin_briefly, WaitQueue, WaitStrategy, Waiter};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

/// Why [`Shared::claim_one`] did not claim.
#[derive(Clone, Copy, Debug)]
enum Miss {
    /// The slot is still the other side's: the ring is empty (pop) or full (push) at the
    /// position the counter showed, or a peer is mid-way through that very slot.
    NotYet,
    /// Anything else (a lost or spurious CAS, a stale counter, a hole): the general claim
    /// sorts it out.
    Other,
}

/// Stamp state: the slot waits for its producer.
const EMPTY: usize = 0;
/// Stamp state: the slot holds its producer's item.
const FULL: usize = 1;
/// Stamp state: the producer claimed the position but had no item for it.
const HOLE: usize = 2;
/// The bits of a stamp that hold the state.
const STATE: usize = 3;

/// Creates a ring that holds exactly `capacity` items, with the default options.
///
/// # Panics
/// If `capacity` is 0, its buffer would overflow the address space or the allocator refuses
/// it; [`try_channel`] and [`Builder::build`] return a [`CapacityError`] instead.
///
/// ```
/// use std::thread;
/// let (tx, rx) = weir::mpmc::channel::<u64>(64);
/// let producers: Vec<_> = (0..2)
///     .map(|p| {
///         let tx = tx.clone();
///         thread::spawn(move || for i in 0..1000 { tx.push(p * 1000 + i).unwrap() })
///     })
///     .collect();
/// drop(tx); // the consumers see Disconnected once the clones are gone and the ring is empty
/// let consumers: Vec<_> = (0..2)
///     .map(|_| {
///         let rx = rx.clone();
///         thread::spawn(move || {
///             let mut batch = Vec::new();
///             let mut sum = 0;
///             while rx.pop_batch(&mut batch, 32).is_ok() {
///                 sum += batch.drain(..).sum::<u64>();
///             }
///             sum
///         })
///     })
///     .collect();
/// drop(rx);
/// producers.into_iter().for_each(|t| t.join().unwrap());
/// let total: u64 = consumers.into_iter().map(|t| t.join().unwrap()).sum();
/// assert_eq!(total, (0..2000).sum());
/// ```
pub fn channel<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    match try_channel(capacity) {
        Ok(pair) => pair,
        Err(e) => panic!("weir::mpmc::channel: {e}"),
    }
}

/// Creates a ring that holds exactly `capacity` items, or says why it cannot.
///
/// ```
/// use weir::CapacityError;
/// assert_eq!(weir::mpmc::try_channel::<u8>(0).unwrap_err(), CapacityError::Zero);
/// assert!(weir::mpmc::try_channel::<u64>(usize::MAX).is_err());
/// ```
pub fn try_channel<T>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
    Builder::new(capacity).build()
}

/// Options for an MPMC ring.
///
/// ```
/// use weir::{mpmc, WaitStrategy};
/// let (tx, rx) = mpmc::Builder::new(1000)
///     .producer_wait(WaitStrategy::Park)
///     .consumer_wait(WaitStrategy::SpinThenPark { spins: 512, yields: 4 })
///     .build::<u64>()?;
/// assert_eq!(tx.capacity(), 1000);
/// # drop(rx);
/// # Ok::<(), weir::CapacityError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    capacity: usize,
    producer_wait: WaitStrategy,
    consumer_wait: WaitStrategy,
    start: usize,
    claim_prefetch: bool,
}

impl Builder {
    /// A ring of exactly `capacity` items (checked in [`build`](Self::build)).
    pub fn new(capacity: usize) -> Self {
        Builder {
            capacity,
            producer_wait: WaitStrategy::default(),
            consumer_wait: WaitStrategy::default(),
            start: 0,
            claim_prefetch: true,
        }
    }

    /// How both sides wait in blocking calls. Default: [`WaitStrategy::SpinThenPark`].
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.producer_wait = strategy;
        self.consumer_wait = strategy;
        self
    }

    /// How producers wait for room in `push`/`push_timeout`/`push_deadline`.
    pub fn producer_wait(mut self, strategy: WaitStrategy) -> Self {
        self.producer_wait = strategy;
        self
    }

    /// How consumers wait for items in `pop`/`pop_batch` and their timed forms.
    pub fn consumer_wait(mut self, strategy: WaitStrategy) -> Self {
        self.consumer_wait = strategy;
        self
    }

    /// Whether single-item `try_push`/`try_pop` (and the blocking calls built on them) ask for
    /// the slot's cache line in the state for writing before they read its stamp (x86-64
    /// `PREFETCHW`, where the CPU has it; elsewhere this setting does nothing). Default: on.
    /// Both sides write every slot they claim (the item and the stamp), in a line the other
    /// side wrote last: reading the stamp first fetches the line to share it, and the write
    /// that follows must then take it over, a second exchange with the other core that the
    /// prefetch saves. Turn it off to compare (docs/benchmarks.md, "What changed in the fifth
    /// session").
    ///
    /// ```
    /// let (tx, rx) = weir::mpmc::Builder::new(1024).claim_prefetch(false).build::<u64>()?;
    /// # drop((tx, rx));
    /// # Ok::<(), weir::CapacityError>(())
    /// ```
    pub fn claim_prefetch(mut self, on: bool) -> Self {
        self.claim_prefetch = on;
        self
    }

    /// Starts both position counters near `seq` (its lap, and its index reduced below the
    /// capacity) instead of 0: for tests that prove wrap-around of the counters (start near
    /// `usize::MAX`). Not part of the stable API.
    #[doc(hidden)]
    pub fn start_sequence(mut self, seq: usize) -> Self {
        self.start = seq;
        self
    }

    /// Builds the ring.
    pub fn build<T>(self) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
        let capacity = self.capacity;
        // Checks the capacity (zero, overflow, allocation size) and gives the power of two.
        let one_lap = slot_count::<Slot<T>>(capacity)?.max(4);
        init_barriers();
        let index_mask = one_lap - 1;
        let lap = self.start & !index_mask;
        // A division, once, at construction only.
        let first = (self.start & index_mask) % capacity;
        let start = lap | first;
        let slots = alloc_slots(capacity, |i| Slot {
            // Slots before the first index serve the next lap.
            stamp: AtomicUsize::new(if i >= first {
                lap
            } else {
                lap.wrapping_add(one_lap)
            }),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        })
        .map_err(|e| e.for_capacity(capacity))?;
        let shared = Arc::new(Shared {
            head: CachePadded::new(AtomicUsize::new(start)),
            tail: CachePadded::new(AtomicUsize::new(start)),
            not_full: CachePadded::new(WaitQueue::new()),
            not_empty: CachePadded::new(WaitQueue::new()),
            producer_stats: CachePadded::new(SideStats::default()),
            consumer_stats: CachePadded::new(SideStats::default()),
            holes: CachePadded::new(HoleStats::default()),
            slots,
            capacity,
            one_lap,
            index_mask,
            lap_shift: one_lap.trailing_zeros(),
            producer_wait: self.producer_wait,
            consumer_wait: self.consumer_wait,
            claim_prefetch: self.claim_prefetch && write_prefetch_available(),
            producers: AtomicUsize::new(1),
            consumers: AtomicUsize::new(1),
            start,
        });
        Ok((
            Producer {
                shared: shared.clone(),
            },
            Consumer { shared },
        ))
    }
}

/// One slot: the stamp that says whose turn it is, and the value.
///
/// Not padded to a cache line, as in crossbeam's `ArrayQueue`: with 16-byte slots four share a
/// line, so threads working on neighbouring positions can false-share, but padding would make
/// the array 8x larger and batch scans touch 8x more lines. Whether padding pays on this
/// machine could not be settled (the shared 2-core box ran at load 10-13 during the attempt,
/// and 2-thread spin benchmarks measured the scheduler, not the ring); left to the benchmarks.
// Slots are not padded: measured with `RUSTFLAGS="--cfg weir_pad_slots"` (each slot on its own
// 128-byte pair of lines, the prefetcher's unit), see docs/benchmarks.md, "Slot padding".
#[cfg_attr(weir_pad_slots, repr(align(128)))]
struct Slot<T> {
    /// `lap | state` (see the module docs). Written with Release by the owner of the position,
    /// read with Acquire by whoever wants to claim it next.
    stamp: AtomicUsize,
    /// The item, initialised exactly while the stamp is `lap | FULL`.
    value: Cell<T>,
}

/// Tallies of positions that carried no item (see `HOLE`), so that the metrics count items.
#[derive(Debug, Default)]
struct HoleStats {
    /// Holes written by producers.
    made: StatU64,
    /// Holes passed over by consumers (or displaced by `force_push`).
    passed: StatU64,
}

/// What all handles share. The two counters, the two events and the tallies each sit on their
/// own 128-byte line; the fields after them are read-only after construction (the handle counts
/// change only at clone and drop), so they share lines that stay in every core's cache.
struct Shared<T> {
    /// The next position a consumer claims. CAS by consumers and by `force_push`.
    head: CachePadded<AtomicUsize>,
    /// The next position a producer claims. CAS by producers.
    tail: CachePadded<AtomicUsize>,
    /// Producers sleep here while the ring is full; consumers wake them.
    not_full: CachePadded<WaitQueue>,
    /// Consumers sleep here while the ring is empty; producers wake them.
    not_empty: CachePadded<WaitQueue>,
    producer_stats: CachePadded<SideStats>,
    consumer_stats: CachePadded<SideStats>,
    holes: CachePadded<HoleStats>,
    /// Exactly `capacity` slots.
    slots: Box<[Slot<T>]>,
    capacity: usize,
    /// A power of two `>= max(capacity, 4)`: one lap in position space.
    one_lap: usize,
    /// `one_lap - 1`: the index bits of a position (and the state bits of a stamp).
    index_mask: usize,
    /// `log2(one_lap)`, to count laps.
    lap_shift: u32,
    producer_wait: WaitStrategy,
    consumer_wait: WaitStrategy,
    /// Whether `claim_one` prefetches the slot for writing ([`Builder::claim_prefetch`], and the
    /// CPU has the instruction).
    claim_prefetch: bool,
    /// Live `Producer` handles; 0 means disconnected (stays 0: a handle is needed to clone).
    producers: AtomicUsize,
    /// Live `Consumer` handles.
    consumers: AtomicUsize,
    /// The counters' first position, for the metrics.
    start: usize,
}

// SAFETY: a slot's value is only accessed by the thread that owns its position under the stamp
// protocol (module docs), so items move between threads but are never shared: `T: Send` is
// required, `T: Sync` is not (no `&T` is ever handed out).
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above; `&Shared` gives access only to atomics and to slots through the protocol.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// The slot of position `pos`.
    #[inline(always)]
    fn slot(&self, pos: usize) -> &Slot<T> {
        let index = pos & self.index_mask;
        debug_assert!(index < self.slots.len(), "position {pos:#x} has no slot");
        // SAFETY: every position has an index below `capacity == slots.len()`: positions start
        // there (`build`) and `next` never produces a larger index (checked above in debug).
        unsafe { self.slots.get_unchecked(index) }
    }

    /// The lap bits of `pos`: the stamp its slot has while it waits for this position's producer.
    #[inline(always)]
    fn lap(&self, pos: usize) -> usize {
        // `pos & !index_mask`, written as a difference so that it reuses the index, which the
        // callers compute anyway to find the slot: one instruction less.
        pos - (pos & self.index_mask)
    }

    /// The single-item fast claim on `counter` (`tail` for a push, `head` for a pop): the
    /// position it shows, if its slot's stamp is `lap | state` (`EMPTY` for a producer, `FULL`
    /// for a consumer) and the first CAS to the next position wins. Returns the slot and the
    /// lap; otherwise [`Miss::NotYet`] if the stamp says the slot is still the other side's (the
    /// caller reports `Empty`/`Full` without looking again, see "Not ready means report" in the
    /// module docs) and [`Miss::Other`] for everything else, which the general claims handle.
    #[inline(always)]
    fn claim_one(&self, counter: &AtomicUsize, state: usize) -> Result<(&Slot<T>, usize), Miss> {
        // Relaxed: as in `claim_push`/`claim_pop` (the stamp, not the counter, orders the data).
        let pos = counter.load(Ordering::Relaxed);
        let lap = self.lap(pos);
        let slot = self.slot(pos);
        if self.claim_prefetch {
            // We will write this line if the claim succeeds: one exchange instead of a shared
            // copy for the stamp load and a takeover for the stores (`Builder::claim_prefetch`).
            prefetch_for_write(slot);
        }
        // Acquire: as in the general claims, pairs with the Release stamp store of the side that
        // last owned the slot (`release_slot` for a producer, `fill_slot` for a consumer).
        let stamp = slot.stamp.load(Ordering::Acquire);
        if stamp == lap | state {
            // Relaxed CAS: ownership only, as every CAS on the counters.
            let won = counter
                .compare_exchange_weak(
                    pos,
                    self.next_in_lap(pos, lap),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok();
            return if won {
                Ok((slot, lap))
            } else {
                Err(Miss::Other)
            };
        }
        // Still the other side's turn at this position: for a consumer, this lap's producer has
        // not written the slot; for a producer, the previous lap's item is still in it.
        let not_yet = if state == FULL {
            lap | EMPTY
        } else {
            lap.wrapping_sub(self.one_lap) | FULL
        };
        if stamp == not_yet {
            Err(Miss::NotYet)
        } else {
            Err(Miss::Other)
        }
    }

    /// The position after `pos`.
    #[inline(always)]
    fn next(&self, pos: usize) -> usize {
        self.next_in_lap(pos, self.lap(pos))
    }

    /// The position after `pos`, whose lap bits `lap == self.lap(pos)` the caller already has.
    #[inline(always)]
    fn next_in_lap(&self, pos: usize, lap: usize) -> usize {
        debug_assert_eq!(lap, self.lap(pos));
        // `pos - lap` is the index of `pos`.
        if pos.wrapping_sub(lap) + 1 < self.capacity {
            pos.wrapping_add(1)
        } else {
            lap.wrapping_add(self.one_lap)
        }
    }

    /// How many positions lie in `from .. to` (wrapping; `to` not before `from`).
    fn distance(&self, from: usize, to: usize) -> usize {
        let laps = self.lap(to).wrapping_sub(self.lap(from)) >> self.lap_shift;
        laps.wrapping_mul(self.capacity)
            .wrapping_add(to & self.index_mask)
            .wrapping_sub(from & self.index_mask)
    }

    /// Holes written and not yet passed over: positions in `head .. tail` without an item.
    fn holes_inside(&self) -> usize {
        let load = |c: &StatU64| c.load(Ordering::Relaxed);
        load(&self.holes.made).saturating_sub(load(&self.holes.passed)) as usize
    }

    fn depth(&self) -> usize {
        // Head first: the tail loaded after it can only be further on, so the distance does not
        // underflow. Relaxed: a snapshot for reporting, no data is read through it.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        self.distance(head, tail)
            .saturating_sub(self.holes_inside())
            .min(self.capacity)
    }

    fn metrics(&self) -> RingMetrics {
        // Head first, as in `depth`. Relaxed: a snapshot for reporting.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let load = |c: &StatU64| c.load(Ordering::Relaxed);
        let made = load(&self.holes.made);
        let passed = load(&self.holes.passed);
        let displaced = load(&self.producer_stats.displaced);
        let pushed = (self.distance(self.start, tail) as u64).saturating_sub(made);
        let popped = (self.distance(self.start, head) as u64)
            .saturating_sub(passed)
            .saturating_sub(displaced);
        let depth = self
            .distance(head, tail)
            .saturating_sub(made.saturating_sub(passed) as usize)
            .min(self.capacity);
        RingMetrics::collect(
            self.capacity,
            pushed,
            popped,
            depth,
            &self.producer_stats,
            &self.consumer_stats,
        )
    }

    #[inline(always)]
    fn consumers_gone(&self) -> bool {
        // Relaxed: the count carries no data; a push racing the last consumer's drop may land in
        // the ring and is then dropped with it, exactly once.
        self.consumers.load(Ordering::Relaxed) == 0
    }

    #[inline(always)]
    fn producers_gone(&self) -> bool {
        // Acquire: pairs with the SeqCst (so also Release) decrement of the last producer, which
        // follows every stamp store of every producer (the decrements form a release sequence).
        self.producers.load(Ordering::Acquire) == 0
    }

    /// After publishing `n` items: wake up to `n` parked consumers, if any are parked.
    #[inline(always)]
    fn notify_consumers(&self, n: usize) {
        light_barrier();
        if self.not_empty.has_waiters() {
            self.wake(&self.not_empty, &self.producer_stats, n);
        }
    }

    /// After freeing `n` slots: wake up to `n` parked producers, if any are parked.
    #[inline(always)]
    fn notify_producers(&self, n: usize) {
        light_barrier();
        if self.not_full.has_waiters() {
            self.wake(&self.not_full, &self.consumer_stats, n);
        }
    }

    #[cold]
    #[inline(never)]
    fn wake(&self, event: &WaitQueue, stats: &SideStats, n: usize) {
        let woken = event.wake(u32::try_from(n).unwrap_or(u32::MAX));
        if woken != 0 {
            SideStats::add(&stats.wakes_sent, u64::from(woken));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Claiming
    // -----------------------------------------------------------------------------------------

    /// Claims up to `want` (>= 1, <= capacity) consecutive free positions with one CAS on
    /// `tail`. Returns the first position, how many, and the position after the last one; or
    /// `None` when the slot at `tail` still holds the previous lap's item: the ring is full
    /// there, or a consumer is mid-way through taking that item out (reported at once, see
    /// "Not ready means report" in the module docs).
    #[inline(always)]
    fn claim_push(&self, want: usize) -> Option<(usize, usize, usize)> {
        debug_assert!(want >= 1 && want <= self.capacity);
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            let mut end = tail;
            let mut n = 0;
            let mut blocker = 0;
            while n < want {
                // Acquire: pairs with the Release store of the consumer that emptied the slot
                // (`release_slot`), so its read of the old value happens before our write.
                let stamp = self.slot(end).stamp.load(Ordering::Acquire);
                if stamp != self.lap(end) | EMPTY {
                    blocker = stamp;
                    break;
                }
                n += 1;
                end = self.next(end);
            }
            if n > 0 {
                // Relaxed: the CAS only decides ownership; the data is ordered by the stamps.
                match self.tail.compare_exchange_weak(
                    tail,
                    end,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some((tail, n, end)),
                    Err(now) => {
                        tail = now;
                        spin_loop();
                        continue;
                    }
                }
            }
            if (blocker.wrapping_sub(self.lap(tail)) as isize) > 0 {
                // Our `tail` is stale: another producer already claimed this position. (The
                // hint is also a yield under loom, where a reload loop without one could re-read
                // a stale value forever.)
                spin_loop();
                tail = self.tail.load(Ordering::Relaxed);
                continue;
            }
            // The slot still serves the previous lap: full here, or a consumer (or a
            // `force_push`) is mid-way through taking that item out. Either way the slot is not
            // ours yet: report it at once rather than poll the line its owner is writing.
            return None;
        }
    }

    /// Claims up to `want` (>= 1, <= capacity) consecutive ready positions (items or holes)
    /// with one CAS on `head`. `Err(())` when the front slot is not written yet: the ring is
    /// empty there, or a producer is mid-way through it (reported at once, see "Not ready means
    /// report" in the module docs).
    #[inline(always)]
    fn claim_pop(&self, want: usize) -> Result<(usize, usize), ()> {
        debug_assert!(want >= 1 && want <= self.capacity);
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let mut end = head;
            let mut n = 0;
            let mut blocker = 0;
            while n < want {
                // Acquire: pairs with the Release store of the producer that filled the slot
                // (`fill_slot`), so its write of the value happens before our read.
                let stamp = self.slot(end).stamp.load(Ordering::Acquire);
                let state = stamp.wrapping_sub(self.lap(end));
                if state != FULL && state != HOLE {
                    blocker = stamp;
                    break;
                }
                n += 1;
                end = self.next(end);
            }
            if n > 0 {
                // Relaxed: the CAS only decides ownership; the data is ordered by the stamps.
                match self.head.compare_exchange_weak(
                    head,
                    end,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok((head, n)),
                    Err(now) => {
                        head = now;
                        spin_loop();
                        continue;
                    }
                }
            }
            if (blocker.wrapping_sub(self.lap(head)) as isize) > HOLE as isize {
                // Our `head` is stale: the slot already serves a later lap (hint: as above).
                spin_loop();
                head = self.head.load(Ordering::Relaxed);
                continue;
            }
            // Not written yet: empty here, or a producer claimed the position and is mid-way
            // (its push has not completed). Report it at once, as `claim_push` does.
            return Err(());
        }
    }

    /// Writes `value` into the claimed position `pos` and publishes it.
    ///
    /// # Safety
    /// The caller owns position `pos` as its producer (claimed on `tail`) and the slot's stamp
    /// is `lap(pos) | EMPTY` (seen with Acquire).
    #[inline(always)]
    unsafe fn publish_slot(&self, pos: usize, value: T) {
        // SAFETY: the same contract, for `pos`'s slot and lap.
        unsafe { self.fill_slot(self.slot(pos), self.lap(pos), value) }
    }

    /// Writes `value` into `slot`, which serves a position of lap `lap`, and publishes it.
    ///
    /// # Safety
    /// The caller owns that position as its producer (claimed on `tail`) and saw the slot's
    /// stamp `lap | EMPTY` with Acquire.
    #[inline(always)]
    unsafe fn fill_slot(&self, slot: &Slot<T>, lap: usize, value: T) {
        // SAFETY: per the contract, nobody else reads or writes this slot until the stamp below
        // says FULL, and the previous item was moved out before the stamp became EMPTY.
        slot.value.with_mut(|p| unsafe { (*p).write(value) });
        // Release: pairs with the Acquire stamp load of the consumer that claims the position.
        slot.stamp.store(lap | FULL, Ordering::Release);
    }

    /// Marks the claimed position `pos` as carrying no item.
    ///
    /// # Safety
    /// As for [`publish_slot`](Self::publish_slot).
    unsafe fn publish_hole(&self, pos: usize) {
        SideStats::add(&self.holes.made, 1);
        // Release: pairs with the consumer's Acquire load; it writes the slot's stamp next and
        // must do so after ours (a hole carries no data, but the stamp order must hold).
        self.slot(pos)
            .stamp
            .store(self.lap(pos) | HOLE, Ordering::Release);
    }

    /// Moves the item out of the claimed position `pos` (`None` for a hole) and frees the slot
    /// for the next lap.
    ///
    /// # Safety
    /// The caller owns position `pos` as its consumer (claimed on `head`, or displaced by
    /// `force_push`) and saw its stamp `lap(pos) | FULL` or `| HOLE` with Acquire.
    #[inline(always)]
    unsafe fn take_slot(&self, pos: usize) -> Option<T> {
        let slot = self.slot(pos);
        let lap = self.lap(pos);
        // Relaxed: we already loaded this value with Acquire; only we can change it now.
        let state = slot.stamp.load(Ordering::Relaxed) & STATE;
        if state == FULL {
            // SAFETY: the caller owns `pos` and saw FULL with Acquire: `empty_slot`'s contract.
            Some(unsafe { self.empty_slot(slot, lap) })
        } else {
            debug_assert_eq!(state, HOLE);
            SideStats::add(&self.holes.passed, 1);
            self.release_slot(slot, lap);
            None
        }
    }

    /// Moves the item out of `slot`, which serves a position of lap `lap`, and frees the slot
    /// for the next lap.
    ///
    /// # Safety
    /// The caller owns that position as its consumer and saw the stamp `lap | FULL` with
    /// Acquire.
    #[inline(always)]
    unsafe fn empty_slot(&self, slot: &Slot<T>, lap: usize) -> T {
        // SAFETY: FULL means the producer initialised the value (made visible by the caller's
        // Acquire load), and owning the position means nobody else reads it.
        let value = slot.value.with(|p| unsafe { (*p).assume_init_read() });
        self.release_slot(slot, lap);
        value
    }

    /// Frees `slot` (already emptied), which served a position of lap `lap`, for the producer
    /// of the next lap.
    #[inline(always)]
    fn release_slot(&self, slot: &Slot<T>, lap: usize) {
        // Release: pairs with the Acquire stamp load of the producer of the next lap, so our
        // read of the value happens before its write.
        slot.stamp
            .store(lap.wrapping_add(self.one_lap), Ordering::Release);
    }

    /// Waits (unbounded) until the stamp of `pos`'s slot satisfies `ready`; returns it. For the
    /// rare cases where the caller already owns a position and a peer must finish first.
    #[cold]
    fn wait_stamp(&self, pos: usize, ready: impl Fn(usize) -> bool) -> usize {
        let mut step = 0u32;
        loop {
            // Acquire: pairs with the Release stamp store of the peer we wait for.
            let stamp = self.slot(pos).stamp.load(Ordering::Acquire);
            if ready(stamp) {
                return stamp;
            }
            backoff(&mut step);
        }
    }
}

/// Steps of [`backoff`] that spin (`1 << step` spin hints) before it yields.
const BACKOFF_SPIN_STEPS: u32 = 6;

/// One step of `force_push`'s wait for a peer mid-way through the slot it takes over (directly,
/// or in [`Shared::wait_stamp`]): spins for the first steps, then yields.
#[inline]
fn backoff(step: &mut u32) {
    if cfg!(loom) || *step >= BACKOFF_SPIN_STEPS {
        yield_now();
    } else {
        for _ in 0..1u32 << *step {
            spin_loop();
        }
    }
    *step = step.saturating_add(1);
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Every handle is gone: `&mut self` is exclusive, and `Arc`'s drop ordered every
        // handle's last write before this point. Every position in `head .. tail` is FULL or
        // HOLE (no operation is in flight).
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

/// Drops the items of positions `next .. end`; if one item's `Drop` panics, the guard's own
/// `Drop` goes on with the rest (like `Vec`'s), so none is leaked or dropped twice.
struct DropRange<'a, T> {
    shared: &'a Shared<T>,
    next: usize,
    end: usize,
}

impl<T> DropRange<'_, T> {
    fn drop_all(&mut self) {
        while self.next != self.end {
            let pos = self.next;
            // Advance first: should this item's Drop panic, the guard will not drop it again.
            self.next = self.shared.next(pos);
            let slot = self.shared.slot(pos);
            // Relaxed: exclusive access (see `Shared::drop`).
            if slot.stamp.load(Ordering::Relaxed) & STATE == FULL {
                // SAFETY: FULL means initialised; `next` moved past it, so it is dropped once.
                slot.value.with_mut(|p| unsafe { (*p).assume_init_drop() });
            }
        }
    }
}

impl<T> Drop for DropRange<'_, T> {
    fn drop(&mut self) {
        self.drop_all();
    }
}

// ---------------------------------------------------------------------------------------------
// Producer
// ---------------------------------------------------------------------------------------------

/// The writing side of an MPMC ring: `Clone`, `Send` and `Sync` (for `T: Send`); every method
/// takes `&self`, so threads may share one handle or each hold a clone.
///
/// When the last `Producer` is dropped, consumers drain what is left and then see
/// `Disconnected`.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Producer<T> {
    /// `try_push` without the metrics, for the retries of blocking calls.
    ///
    /// The fast path is `claim_push(1)` for its common case, written out: the slot at `tail`
    /// is free for this lap and the first CAS wins. If the slot still holds the previous lap's
    /// item, the ring is full there: `Full` at once. Anything else (a stale `tail`, a lost or
    /// spurious CAS failure) goes the general way, [`try_push_slow`](Self::try_push_slow).
    #[inline(always)]
    fn try_push_quiet(&self, value: T) -> Result<(), TryPushError<T>> {
        let s = &*self.shared;
        if s.consumers_gone() {
            return Err(TryPushError::Disconnected(value));
        }
        match s.claim_one(&s.tail, EMPTY) {
            Ok((slot, lap)) => {
                // SAFETY: `claim_one` made us the producer of that position, whose stamp it saw
                // `lap | EMPTY` with Acquire.
                unsafe { s.fill_slot(slot, lap, value) };
                s.notify_consumers(1);
                Ok(())
            }
            Err(Miss::NotYet) => Err(TryPushError::Full(value)),
            Err(Miss::Other) => self.try_push_slow(value),
        }
    }

    /// The general single-item push: `claim_push(1)`, which reloads a stale `tail` and retries
    /// a lost CAS.
    #[inline(never)]
    fn try_push_slow(&self, value: T) -> Result<(), TryPushError<T>> {
        let s = &*self.shared;
        let Some((pos, _, _)) = s.claim_push(1) else {
            return Err(TryPushError::Full(value));
        };
        // SAFETY: `claim_push` made us the producer of `pos` after seeing its stamp EMPTY.
        unsafe { s.publish_slot(pos, value) };
        s.notify_consumers(1);
        Ok(())
    }

    /// Pushes `value` if there is room; otherwise hands it back at once.
    ///
    /// ```
    /// let (tx, _rx) = weir::mpmc::channel(1);
    /// assert!(tx.try_push(1).is_ok());
    /// assert_eq!(tx.try_push(2).unwrap_err().into_inner(), 2);
    /// ```
    #[inline]
    pub fn try_push(&self, value: T) -> Result<(), TryPushError<T>> {
        match self.try_push_quiet(value) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.count_refusal(e)),
        }
    }

    #[cold]
    fn count_refusal(&self, e: TryPushError<T>) -> TryPushError<T> {
        if e.is_full() {
            SideStats::add(&self.shared.producer_stats.contended, 1);
        }
        e
    }

    /// Like [`try_push`](Self::try_push), but a refusal because the ring is full is counted as
    /// *shed* in [`metrics`](Self::metrics) (as well as in `push_full`): load shedding that drops
    /// the newest item. The item is still handed back, so the caller decides how to dispose of
    /// it.
    ///
    /// ```
    /// let (tx, _rx) = weir::mpmc::channel(1);
    /// tx.try_push_or_shed(1).unwrap();
    /// assert!(tx.try_push_or_shed(2).unwrap_err().is_full());
    /// assert_eq!(tx.metrics().shed, 1);
    /// ```
    pub fn try_push_or_shed(&self, value: T) -> Result<(), TryPushError<T>> {
        match self.try_push_quiet(value) {
            Ok(()) => Ok(()),
            Err(e) => {
                if e.is_full() {
                    SideStats::add(&self.shared.producer_stats.shed, 1);
                }
                Err(self.count_refusal(e))
            }
        }
    }

    /// Pushes `value`, waiting for room per the wait strategy. Fails only if every consumer is
    /// gone, handing the item back.
    ///
    /// ```
    /// let (tx, rx) = weir::mpmc::channel(1);
    /// let t = std::thread::spawn(move || {
    ///     for i in 0..100 { tx.push(i).unwrap(); }
    /// });
    /// for i in 0..100 { assert_eq!(rx.pop().unwrap(), i); }
    /// t.join().unwrap();
    /// ```
    #[inline]
    pub fn push(&self, value: T) -> Result<(), PushError<T>> {
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
    pub fn push_timeout(&self, value: T, timeout: Duration) -> Result<(), PushTimeoutError<T>> {
        let now = Instant::now();
        match now.checked_add(timeout) {
            Some(deadline) => self.push_until(value, deadline, Some(now)),
            None => self.push(value).map_err(Into::into),
        }
    }

    /// Pushes `value`, waiting until `deadline` at the latest for room.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, _rx) = weir::mpmc::channel(1);
    /// tx.try_push(1).unwrap();
    /// let e = tx.push_deadline(2, Instant::now() + Duration::from_millis(1)).unwrap_err();
    /// assert!(e.is_timeout());
    /// assert_eq!(e.into_inner(), 2);
    /// ```
    pub fn push_deadline(&self, value: T, deadline: Instant) -> Result<(), PushTimeoutError<T>> {
        self.push_until(value, deadline, None)
    }

    /// `push_deadline`, with the blocked time counted from `since` if given (the start of a
    /// `push_timeout` call, see `Waiter::time_from`).
    fn push_until(
        &self,
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
        &self,
        mut value: T,
        deadline: Option<Instant>,
        since: Option<Instant>,
    ) -> Result<(), PushTimeoutError<T>> {
        let s = &*self.shared;
        SideStats::add(&s.producer_stats.contended, 1);
        let mut waiter = Waiter::new(s.producer_wait, deadline, None);
        if let Some(since) = since {
            waiter.time_from(since);
        }
        let out = loop {
            value = match self.try_push_quiet(value) {
                Ok(()) => break Ok(()),
                Err(TryPushError::Disconnected(v)) => break Err(PushTimeoutError::Disconnected(v)),
                Err(TryPushError::Full(v)) => v,
            };
            if !waiter.pause(&*s.not_full, &s.producer_stats) {
                break Err(PushTimeoutError::Timeout(value));
            }
        };
        waiter.finish(&*s.not_full, &s.producer_stats);
        out
    }

    /// Pushes `value`; if the ring is full, displaces the oldest item to make room and returns
    /// it. Never blocks for room (it may wait a moment for a peer that is mid-way through the
    /// very slot it takes over). Fails only if every consumer is gone, handing the item back.
    ///
    /// Exactly one of these holds for each call: the item went into a free slot (`Ok(None)`), or
    /// it took the place of the oldest item, which is returned (`Ok(Some(oldest))`) and counted
    /// in [`RingMetrics::displaced`]. No item is lost and at most one is returned, whatever
    /// other producers and consumers do meanwhile.
    ///
    /// ```
    /// let (tx, rx) = weir::mpmc::channel(2);
    /// assert_eq!(tx.force_push(1), Ok(None));
    /// assert_eq!(tx.force_push(2), Ok(None));
    /// assert_eq!(tx.force_push(3), Ok(Some(1))); // the oldest made room
    /// assert_eq!((rx.try_pop(), rx.try_pop()), (Ok(2), Ok(3)));
    /// assert_eq!(tx.metrics().displaced, 1);
    /// ```
    pub fn force_push(&self, value: T) -> Result<Option<T>, PushError<T>> {
        let s = &*self.shared;
        if s.consumers_gone() {
            return Err(PushError::Disconnected(value));
        }
        let mut tail = s.tail.load(Ordering::Relaxed);
        let mut step = 0u32;
        loop {
            let lap = s.lap(tail);
            // Acquire: as in `claim_push`.
            let stamp = s.slot(tail).stamp.load(Ordering::Acquire);
            let ahead = stamp.wrapping_sub(lap) as isize;
            if ahead > 0 {
                // Stale `tail`: another producer claimed this position (hint: see `claim_push`).
                spin_loop();
                tail = s.tail.load(Ordering::Relaxed);
                continue;
            }
            let next = s.next(tail);
            if ahead == 0 {
                // Free: an ordinary push. Relaxed CAS: ownership only (see `claim_push`).
                if let Err(now) =
                    s.tail
                        .compare_exchange_weak(tail, next, Ordering::Relaxed, Ordering::Relaxed)
                {
                    tail = now;
                    continue;
                }
                // SAFETY: we own `tail` and saw its stamp EMPTY.
                unsafe { s.publish_slot(tail, value) };
                s.notify_consumers(1);
                return Ok(None);
            }
            // The slot still serves the previous lap. Relaxed: a decision only (the CAS below
            // re-checks it atomically).
            let head = s.head.load(Ordering::Relaxed);
            if head.wrapping_add(s.one_lap) != tail {
                // Not full: a consumer is taking that item out right now. Wait for it.
                backoff(&mut step);
                tail = s.tail.load(Ordering::Relaxed);
                continue;
            }
            // Full, and the oldest item (position `head`) lives in the very slot of `tail`.
            // First claim `tail` as its producer: from here on no other producer can pass us.
            if let Err(now) =
                s.tail
                    .compare_exchange_weak(tail, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                tail = now;
                continue;
            }
            // Then try to claim `head` as its consumer. Strong CAS: a spurious failure would
            // make us wait for a consumer that does not exist. Only a consumer can have moved
            // `head` meanwhile (another `force_push` would need our `tail` to be full, so it
            // claims a later head), and that consumer will free the slot.
            let displaced = match s.head.compare_exchange(
                head,
                s.next(head),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    // We own the oldest position; its producer may still be writing it.
                    let old_lap = s.lap(head);
                    s.wait_stamp(head, |st| st == old_lap | FULL || st == old_lap | HOLE);
                    // SAFETY: we own position `head` as its consumer and saw FULL/HOLE with
                    // Acquire; `take_slot` moves the item out and frees the slot for `tail`.
                    unsafe { s.take_slot(head) }
                }
                Err(_) => {
                    // A consumer took the oldest item; wait until it frees the slot.
                    s.wait_stamp(tail, |st| st == lap | EMPTY);
                    None
                }
            };
            // SAFETY: we own `tail` and its slot's stamp is now `lap | EMPTY` (set by
            // `take_slot` above, or by the consumer we waited for, seen with Acquire).
            unsafe { s.publish_slot(tail, value) };
            s.notify_consumers(1);
            if displaced.is_some() {
                SideStats::add(&s.producer_stats.displaced, 1);
            }
            return Ok(displaced);
        }
    }

    /// Pushes as many items of `items` as fit, claiming their slots with one CAS; returns how
    /// many went in (the first `n` of the slice). Never blocks.
    ///
    /// ```
    /// let (tx, rx) = weir::mpmc::channel(4);
    /// assert_eq!(tx.push_slice(&[1, 2, 3, 4, 5, 6]), 4);
    /// let mut out = Vec::new();
    /// rx.try_pop_batch(&mut out, 10).unwrap();
    /// assert_eq!(out, [1, 2, 3, 4]);
    /// ```
    pub fn push_slice(&self, items: &[T]) -> usize
    where
        T: Copy,
    {
        let s = &*self.shared;
        if items.is_empty() || s.consumers_gone() {
            return 0;
        }
        let Some((start, n, _)) = s.claim_push(items.len().min(s.capacity)) else {
            SideStats::add(&s.producer_stats.contended, 1);
            return 0;
        };
        let mut pos = start;
        for item in &items[..n] {
            // SAFETY: `claim_push` made us the producer of the `n` positions from `start`, each
            // seen EMPTY; copying a `T: Copy` cannot panic midway.
            unsafe { s.publish_slot(pos, *item) };
            pos = s.next(pos);
        }
        s.notify_consumers(n);
        n
    }

    /// Pushes items pulled from `items` while there is room; returns how many went in. Pulls an
    /// item only after claiming a slot for it, so nothing is lost: pass `iter.by_ref()` to keep
    /// the rest. Claims as many slots per CAS as the iterator's `size_hint` promises (one CAS
    /// for an exact-size iterator that fits). Never blocks.
    ///
    /// The claimed slots are held while the iterator runs: consumers reaching the first slot not
    /// yet filled wait for it (other producers do not). So pass an iterator that is cheap to
    /// advance; for a slow source, gather the items first and push them with
    /// [`push_slice`](Self::push_slice) or a loop of [`try_push`](Self::try_push). Should the
    /// iterator end early or panic, the unfilled slots are handed back, or, if another producer
    /// claimed slots after them meanwhile, marked empty so that consumers pass over them.
    ///
    /// ```
    /// let (tx, rx) = weir::mpmc::channel(3);
    /// let mut source = vec![String::from("a"), "b".into(), "c".into(), "d".into()].into_iter();
    /// assert_eq!(tx.push_iter(source.by_ref()), 3);
    /// assert_eq!(source.next().as_deref(), Some("d")); // not lost
    /// # drop(rx);
    /// ```
    pub fn push_iter<I: IntoIterator<Item = T>>(&self, items: I) -> usize {
        let s = &*self.shared;
        if s.consumers_gone() {
            return 0;
        }
        let mut items = items.into_iter();
        let mut total = 0;
        loop {
            let (lower, upper) = items.size_hint();
            if upper == Some(0) {
                break;
            }
            let want = lower.clamp(1, upper.unwrap_or(usize::MAX)).min(s.capacity);
            let Some((start, n, end)) = s.claim_push(want) else {
                if total == 0 {
                    SideStats::add(&s.producer_stats.contended, 1);
                }
                break;
            };
            // Should the iterator panic or run dry, the guard gives back or fills the rest.
            let mut batch = IterClaim {
                shared: s,
                next: start,
                end,
                written: 0,
            };
            for item in items.by_ref().take(n) {
                // SAFETY: `batch.next` is one of the positions `claim_push` gave us, not yet
                // written (the guard advances past it only here).
                unsafe { s.publish_slot(batch.next, item) };
                batch.next = s.next(batch.next);
                batch.written += 1;
            }
            let written = batch.written;
            drop(batch);
            total += written;
            if written < n {
                break;
            }
        }
        total
    }

    /// The exact number of items the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Items in the ring now (a snapshot; other threads may be changing it).
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

    /// `true` once every consumer has been dropped.
    pub fn is_disconnected(&self) -> bool {
        self.shared.consumers.load(Ordering::Acquire) == 0
    }

    /// A snapshot of the ring's counters (shared by all handles of the ring).
    pub fn metrics(&self) -> RingMetrics {
        self.shared.metrics()
    }
}

/// The positions `next .. end` a `push_iter` claimed but has not written. On drop (normal end,
/// iterator ran dry, or iterator panicked) they are handed back by moving `tail` back if no
/// producer claimed after them, and otherwise marked as holes that consumers pass over.
struct IterClaim<'a, T> {
    shared: &'a Shared<T>,
    next: usize,
    end: usize,
    written: usize,
}

impl<T> Drop for IterClaim<'_, T> {
    fn drop(&mut self) {
        let s = self.shared;
        if self.next != self.end {
            // Give the unwritten tail of the claim back. Safe because nobody can have claimed a
            // position in `next .. end` but us: no producer (`tail` is still `end`, and positions
            // below a tail value are always claimed), no consumer (they stop at unwritten
            // stamps), and no `force_push` (it would have moved `tail` past `end` first).
            // Relaxed: ownership only, as every CAS on `tail`.
            let given_back = s
                .tail
                .compare_exchange(self.end, self.next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
            let mut unwritten = 0;
            while self.next != self.end {
                if !given_back {
                    // SAFETY: we own these positions as their producer and never wrote them.
                    unsafe { s.publish_hole(self.next) };
                }
                unwritten += 1;
                self.next = s.next(self.next);
            }
            // The wake-ups this owes. Given back: the slots are free again, and a producer that
            // found the ring full because of them may be parked (as after a pop). Holes:
            // consumers parked at the first of them (its stamp read "not yet written") can now
            // pass over them to items other producers published behind, whose wake-ups may have
            // been spent on such a consumer; how many items wait there is not known here, so
            // every parked consumer is woken.
            if given_back {
                s.notify_producers(unwritten);
            } else {
                s.notify_consumers(usize::MAX);
            }
        }
        if self.written > 0 {
            s.notify_consumers(self.written);
        }
    }
}

impl<T> Clone for Producer<T> {
    fn clone(&self) -> Self {
        // Relaxed: like `Arc::clone`, the new handle is derived from a live one, so the count
        // cannot be 0 here and no data is published.
        self.shared.producers.fetch_add(1, Ordering::Relaxed);
        Producer {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        // SeqCst: the last decrement is the `closed` store that `Event::wake_all` requires before
        // its epoch bump (a parked consumer either sees it when it re-checks or sleeps on the old
        // epoch and is woken); it also releases every push of every producer (the decrements
        // form a release sequence) to the consumers' Acquire load in `producers_gone`.
        if self.shared.producers.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.not_empty.wake_all();
        }
    }
}

impl<T> fmt::Debug for Producer<T> {
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

/// The reading side of an MPMC ring: `Clone`, `Send` and `Sync` (for `T: Send`); every method
/// takes `&self`. Each item goes to exactly one consumer.
///
/// When the last `Consumer` is dropped, pushes fail and hand their item back; items left in the
/// ring are dropped with it.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Consumer<T> {
    /// Claims up to `want` (1..=capacity) ready positions with one CAS and hands their items to
    /// `sink` in order; returns how many items (holes are skipped, so it loops until at least one
    /// item or none is ready). `sink` must not panic.
    #[inline(always)]
    fn take(&self, want: usize, mut sink: impl FnMut(T)) -> Result<usize, TryPopError> {
        let s = &*self.shared;
        loop {
            let (start, n) = match s.claim_pop(want) {
                Ok(claim) => claim,
                Err(()) => return Err(self.empty()),
            };
            let mut pos = start;
            let mut items = 0;
            for _ in 0..n {
                // SAFETY: `claim_pop` made us the consumer of these `n` positions, each seen
                // FULL or HOLE with Acquire.
                if let Some(v) = unsafe { s.take_slot(pos) } {
                    sink(v);
                    items += 1;
                }
                pos = s.next(pos);
            }
            s.notify_producers(n);
            if items > 0 {
                return Ok(items);
            }
        }
    }

    /// Nothing was ready: `Empty`, or `Disconnected` once every producer is gone and the ring
    /// is drained.
    #[cold]
    fn empty(&self) -> TryPopError {
        if !self.shared.producers_gone() {
            return TryPopError::Empty;
        }
        // Every producer is gone and all their stores are visible (see `producers_gone`): if an
        // item is left, the caller's next attempt finds it. Relaxed: a snapshot; the items are
        // read only through their stamps.
        let head = self.shared.head.load(Ordering::Relaxed);
        let tail = self.shared.tail.load(Ordering::Relaxed);
        if head == tail {
            TryPopError::Disconnected
        } else {
            TryPopError::Empty
        }
    }

    /// `try_pop` without the metrics.
    ///
    /// The fast path is `claim_pop(1)` for its common case, written out: the slot at `head`
    /// holds this lap's item and the first CAS wins. If this lap's producer has not written the
    /// slot, the ring is empty there: `Empty` at once (unless every producer is gone). Anything
    /// else (a hole, a stale `head`, a lost or spurious CAS failure) goes the general way,
    /// [`try_pop_slow`](Self::try_pop_slow). Holes only come from `push_iter`'s unfilled
    /// claims, so they are rare.
    #[inline(always)]
    fn try_pop_quiet(&self) -> Result<T, TryPopError> {
        let s = &*self.shared;
        match s.claim_one(&s.head, FULL) {
            Ok((slot, lap)) => {
                // SAFETY: `claim_one` made us the consumer of that position, whose stamp it saw
                // `lap | FULL` with Acquire.
                let value = unsafe { s.empty_slot(slot, lap) };
                s.notify_producers(1);
                Ok(value)
            }
            // Once every producer is gone, the general way tells `Disconnected` from items left.
            Err(Miss::NotYet) if !s.producers_gone() => Err(TryPopError::Empty),
            Err(_) => self.try_pop_slow(),
        }
    }

    /// The general single-item pop: `take(1)`, which passes over holes, reloads a stale `head`,
    /// retries a lost CAS, and tells `Empty` from `Disconnected`.
    #[inline(never)]
    fn try_pop_slow(&self) -> Result<T, TryPopError> {
        loop {
            let mut out = None;
            match self.take(1, |v| out = Some(v)) {
                Ok(_) => return out.ok_or(TryPopError::Empty),
                // Items may remain after the last producer left: drain them first.
                Err(TryPopError::Empty) if self.shared.producers_gone() => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes the front item if there is one.
    ///
    /// ```
    /// use weir::TryPopError;
    /// let (tx, rx) = weir::mpmc::channel(2);
    /// assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
    /// tx.try_push(7).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_pop(), Ok(7)); // what was pushed is drained first
    /// assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
    /// ```
    #[inline]
    pub fn try_pop(&self) -> Result<T, TryPopError> {
        match self.try_pop_quiet() {
            Ok(v) => Ok(v),
            Err(e) => Err(self.count_empty(e)),
        }
    }

    #[cold]
    fn count_empty(&self, e: TryPopError) -> TryPopError {
        if e == TryPopError::Empty {
            SideStats::add(&self.shared.consumer_stats.contended, 1);
        }
        e
    }

    /// Takes the front item, waiting per the wait strategy. Fails only when the ring is empty
    /// and every producer is gone.
    #[inline]
    pub fn pop(&self) -> Result<T, PopError> {
        match self.try_pop_quiet() {
            Ok(v) => Ok(v),
            Err(TryPopError::Disconnected) => Err(PopError),
            Err(TryPopError::Empty) => self.pop_blocking(None).map_err(|_| PopError),
        }
    }

    /// Takes the front item, waiting at most `timeout`.
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.pop_deadline(deadline),
            None => self.pop().map_err(Into::into),
        }
    }

    /// Takes the front item, waiting until `deadline` at the latest.
    pub fn pop_deadline(&self, deadline: Instant) -> Result<T, PopTimeoutError> {
        match self.try_pop_quiet() {
            Ok(v) => Ok(v),
            Err(TryPopError::Disconnected) => Err(PopTimeoutError::Disconnected),
            Err(TryPopError::Empty) => self.pop_blocking(Some(deadline)),
        }
    }

    #[cold]
    #[inline(never)]
    fn pop_blocking(&self, deadline: Option<Instant>) -> Result<T, PopTimeoutError> {
        self.wait_for(deadline, || self.try_pop_quiet())
    }

    /// Retries `attempt` per the consumer wait strategy until it succeeds, the producers are
    /// gone, or `deadline` passes.
    fn wait_for<R>(
        &self,
        deadline: Option<Instant>,
        mut attempt: impl FnMut() -> Result<R, TryPopError>,
    ) -> Result<R, PopTimeoutError> {
        let s = &*self.shared;
        SideStats::add(&s.consumer_stats.contended, 1);
        // A short wait is resolved without a `Waiter`.
        let quick = spin_briefly(s.consumer_wait, deadline, || match attempt() {
            Ok(r) => Some(Ok(r)),
            Err(TryPopError::Disconnected) => Some(Err(PopTimeoutError::Disconnected)),
            Err(TryPopError::Empty) => None,
        });
        if let Some(done) = quick {
            return done;
        }
        let mut waiter = Waiter::new(s.consumer_wait, deadline, None);
        let out = loop {
            match attempt() {
                Ok(r) => break Ok(r),
                Err(TryPopError::Disconnected) => break Err(PopTimeoutError::Disconnected),
                Err(TryPopError::Empty) => {}
            }
            if !waiter.pause(&*s.not_empty, &s.consumer_stats) {
                break Err(PopTimeoutError::Timeout);
            }
        };
        waiter.finish(&*s.not_empty, &s.consumer_stats);
        out
    }

    /// Takes the ready items from the front, up to `max`, into `out` (appended); the run is
    /// claimed with one CAS. `Ok(0)` only for `max == 0`.
    fn try_pop_batch_quiet(&self, out: &mut Vec<T>, max: usize) -> Result<usize, TryPopError> {
        if max == 0 {
            return Ok(0);
        }
        let want = max.min(self.shared.capacity);
        // Reserve first: if this panics (capacity overflow) nothing has been claimed yet, and
        // the pushes in the sink below cannot reallocate, so cannot panic.
        out.reserve(want);
        loop {
            match self.take(want, |v| out.push(v)) {
                Err(TryPopError::Empty) if self.shared.producers_gone() => continue,
                r => return r,
            }
        }
    }

    /// Takes every ready item from the front, up to `max`, into `out` (appended), claiming them
    /// with one CAS; returns how many. Never blocks.
    ///
    /// ```
    /// let (tx, rx) = weir::mpmc::channel(8);
    /// tx.push_iter(0..5);
    /// let mut batch = Vec::new();
    /// assert_eq!(rx.try_pop_batch(&mut batch, 3), Ok(3));
    /// assert_eq!(rx.try_pop_batch(&mut batch, 3), Ok(2));
    /// assert_eq!(batch, [0, 1, 2, 3, 4]);
    /// ```
    pub fn try_pop_batch(&self, out: &mut Vec<T>, max: usize) -> Result<usize, TryPopError> {
        match self.try_pop_batch_quiet(out, max) {
            Ok(n) => Ok(n),
            Err(e) => Err(self.count_empty(e)),
        }
    }

    /// Waits (per the wait strategy) for at least one item, then takes every ready item from
    /// the front up to `max` into `out`, claimed with one CAS; returns how many (0 only if `max`
    /// is 0). Fails only when the ring is empty and every producer is gone.
    pub fn pop_batch(&self, out: &mut Vec<T>, max: usize) -> Result<usize, PopError> {
        match self.try_pop_batch_quiet(out, max) {
            Ok(n) => Ok(n),
            Err(TryPopError::Disconnected) => Err(PopError),
            Err(TryPopError::Empty) => self
                .wait_for(None, || self.try_pop_batch_quiet(out, max))
                .map_err(|_| PopError),
        }
    }

    /// Like [`pop_batch`](Self::pop_batch), waiting at most `timeout` for the first item.
    pub fn pop_batch_timeout(
        &self,
        out: &mut Vec<T>,
        max: usize,
        timeout: Duration,
    ) -> Result<usize, PopTimeoutError> {
        match self.try_pop_batch_quiet(out, max) {
            Ok(n) => Ok(n),
            Err(TryPopError::Disconnected) => Err(PopTimeoutError::Disconnected),
            Err(TryPopError::Empty) => {
                let deadline = Instant::now().checked_add(timeout);
                self.wait_for(deadline, || self.try_pop_batch_quiet(out, max))
            }
        }
    }

    /// The exact number of items the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Items in the ring now (a snapshot; other threads may be changing it).
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

    /// `true` once every producer has been dropped (items may still be left to drain).
    pub fn is_disconnected(&self) -> bool {
        self.shared.producers_gone()
    }

    /// A snapshot of the ring's counters (shared by all handles of the ring).
    pub fn metrics(&self) -> RingMetrics {
        self.shared.metrics()
    }
}

impl<T> Clone for Consumer<T> {
    fn clone(&self) -> Self {
        // Relaxed: as in `Producer::clone`.
        self.shared.consumers.fetch_add(1, Ordering::Relaxed);
        Consumer {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // SeqCst: see `Producer::drop`. Items left in the ring are dropped with `Shared`.
        if self.shared.consumers.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.not_full.wake_all();
        }
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::sync::Arc as StdArc;

    /// Each wake claims one registration (`WaitQueue`), so neither side is sent more wake-ups
    /// than the other side registered to sleep. Before the queue (a shared count), a woken
    /// thread stayed counted until it ran, and nearly every publication in between sent another
    /// futex wake: 351 510 for 2 197 producer parks in a scratch run.
    #[test]
    fn each_wake_claims_one_registration() {
        let per = if cfg!(miri) { 60 } else { 20_000 };
        let (tx, rx) = Builder::new(4)
            .wait_strategy(WaitStrategy::Park)
            .build::<u64>()
            .unwrap();
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..per {
                        tx.push(i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut n = 0;
        while rx.pop().is_ok() {
            n += 1;
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(n, 2 * per);
        let s = &*rx.shared;
        let load = |c: &crate::sync::StatU64| c.load(Ordering::Relaxed);
        let (to_producers, producer_registrations) = (
            load(&s.consumer_stats.wakes_sent),
            load(&s.producer_stats.registrations),
        );
        let (to_consumers, consumer_registrations) = (
            load(&s.producer_stats.wakes_sent),
            load(&s.consumer_stats.registrations),
        );
        assert!(
            to_producers <= producer_registrations,
            "{to_producers} wakes to producers for {producer_registrations} registrations"
        );
        assert!(
            to_consumers <= consumer_registrations,
            "{to_consumers} wakes to the consumer for {consumer_registrations} registrations"
        );
    }

    #[test]
    fn capacity_is_exact_for_non_powers_of_two() {
        let big = if cfg!(miri) { 33 } else { 1000 };
        for cap in [1, 2, 3, 5, 7, big] {
            let (tx, rx) = channel::<usize>(cap);
            for i in 0..cap {
                tx.try_push(i).unwrap();
            }
            assert!(tx.try_push(cap).unwrap_err().is_full(), "capacity {cap}");
            assert_eq!(tx.len(), cap);
            assert!(tx.is_full());
            assert_eq!(rx.try_pop(), Ok(0));
            tx.try_push(cap).unwrap();
            assert!(tx.try_push(cap + 1).is_err());
            assert_eq!(tx.push_slice(&[1, 2]), 0);
        }
    }

    #[test]
    fn wraps_the_buffer_many_times() {
        let (tx, rx) = channel::<usize>(5);
        for i in 0..300 {
            tx.try_push(i).unwrap();
            tx.try_push(i + 1).unwrap();
            assert_eq!(rx.try_pop(), Ok(i));
            assert_eq!(rx.try_pop(), Ok(i + 1));
        }
        assert!(rx.is_empty());
        let m = rx.metrics();
        assert_eq!((m.pushed, m.popped, m.depth), (600, 600, 0));
    }

    #[test]
    fn counters_wrap_around_usize_max() {
        for cap in [1, 3, 4] {
            let (tx, rx) = Builder::new(cap)
                .start_sequence(usize::MAX - 5)
                .build::<u64>()
                .unwrap();
            let mut out = Vec::new();
            for round in 0..12u64 {
                let k = tx.push_slice(&[round, round + 100, round + 200]);
                assert_eq!(k, 3.min(cap));
                assert_eq!(tx.len(), k);
                assert_eq!(rx.try_pop(), Ok(round));
                let rest = if k > 1 {
                    Ok(k - 1)
                } else {
                    Err(TryPopError::Empty)
                };
                assert_eq!(rx.try_pop_batch(&mut out, 8), rest);
                assert_eq!(tx.force_push(round), Ok(None));
                assert_eq!(rx.try_pop(), Ok(round));
            }
            assert!(rx.is_empty());
            let m = rx.metrics();
            assert_eq!(m.pushed, m.popped);
            assert_eq!(m.pushed, 12 * (3.min(cap) as u64 + 1));
        }
    }

    #[test]
    fn force_push_displaces_the_oldest() {
        let (tx, rx) = channel::<String>(3);
        for s in ["a", "b", "c"] {
            assert_eq!(tx.force_push(s.into()), Ok(None));
        }
        assert_eq!(tx.force_push("d".into()), Ok(Some("a".into())));
        assert_eq!(tx.force_push("e".into()), Ok(Some("b".into())));
        assert_eq!(rx.try_pop().unwrap(), "c");
        assert_eq!(tx.force_push("f".into()), Ok(None));
        let mut out = Vec::new();
        assert_eq!(rx.try_pop_batch(&mut out, 10), Ok(3));
        assert_eq!(out, ["d", "e", "f"]);
        let m = tx.metrics();
        assert_eq!((m.pushed, m.popped, m.displaced, m.depth), (6, 4, 2, 0));
        drop(rx);
        assert_eq!(
            tx.force_push("g".into()).unwrap_err().into_inner(),
            "g".to_string()
        );
    }

    #[test]
    fn shed_is_counted_and_hands_back() {
        let (tx, _rx) = channel::<u8>(1);
        tx.try_push_or_shed(1).unwrap();
        assert_eq!(tx.try_push_or_shed(2).unwrap_err().into_inner(), 2);
        let m = tx.metrics();
        assert_eq!((m.shed, m.push_full, m.pushed), (1, 1, 1));
    }

    #[test]
    fn push_iter_pulls_only_what_fits() {
        let (tx, rx) = channel::<u32>(4);
        // An iterator with no size hint: claims one slot at a time and gives the last back.
        let mut src = (0..10).filter(|x| x % 2 == 0);
        assert_eq!(tx.push_iter(src.by_ref()), 4);
        assert_eq!(src.next(), Some(8));
        assert_eq!(rx.try_pop(), Ok(0));
        let mut short = (100..102).filter(|_| true);
        assert_eq!(tx.push_iter(short.by_ref()), 1);
        assert_eq!(short.next(), Some(101));
        let mut out = Vec::new();
        assert_eq!(rx.try_pop_batch(&mut out, 10), Ok(4));
        assert_eq!(out, [2, 4, 6, 100]);
        assert_eq!(tx.push_iter(std::iter::empty()), 0);
        assert_eq!(tx.push_iter(0..2), 2);
        let m = tx.metrics();
        assert_eq!((m.pushed, m.popped, m.depth), (7, 5, 2));
    }

    #[test]
    fn push_iter_leaves_holes_when_it_cannot_give_back() {
        // The iterator pushes through another handle while `push_iter` holds its claim, so the
        // unused claimed positions cannot be given back and become holes.
        let (tx, rx) = channel::<u32>(4);
        let other = tx.clone();
        let mut calls = 0;
        let src = std::iter::from_fn(|| {
            calls += 1;
            match calls {
                1 => Some(1),
                2 => {
                    other.try_push(2).unwrap();
                    None
                }
                _ => unreachable!(),
            }
        });
        // A lying size hint makes push_iter claim 3 positions at once.
        struct Hint<I>(I);
        impl<I: Iterator> Iterator for Hint<I> {
            type Item = I::Item;
            fn next(&mut self) -> Option<I::Item> {
                self.0.next()
            }
            fn size_hint(&self) -> (usize, Option<usize>) {
                (3, Some(3))
            }
        }
        assert_eq!(tx.push_iter(Hint(src)), 1);
        // Positions: 1, hole, hole, 2. Holes are not items.
        assert_eq!(tx.len(), 2);
        assert!(tx.try_push(9).unwrap_err().is_full());
        let mut out = Vec::new();
        assert_eq!(rx.try_pop_batch(&mut out, 10), Ok(2));
        assert_eq!(out, [1, 2]);
        assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
        let m = rx.metrics();
        assert_eq!((m.pushed, m.popped, m.depth), (2, 2, 0));
        // The hole positions are reusable.
        assert_eq!(tx.push_slice(&[5, 6, 7, 8]), 4);
        assert_eq!(rx.try_pop(), Ok(5));
    }

    #[test]
    fn single_pops_pass_over_holes() {
        // The single-item pop's fast path only takes FULL slots; holes at the front must send
        // it the general way, which passes over them, for `try_pop` and for `pop` alike.
        struct Two<I>(I);
        impl<I: Iterator> Iterator for Two<I> {
            type Item = I::Item;
            fn next(&mut self) -> Option<I::Item> {
                self.0.next()
            }
            fn size_hint(&self) -> (usize, Option<usize>) {
                (2, Some(2))
            }
        }
        let (tx, rx) = channel::<u32>(4);
        let other = tx.clone();
        for round in 0..3u32 {
            let mut first = true;
            let src = std::iter::from_fn(|| {
                if std::mem::take(&mut first) {
                    other.try_push(10 * round).unwrap();
                    other.try_push(10 * round + 1).unwrap();
                }
                None
            });
            // Claims two positions, then another producer fills the two after them, so the
            // claim cannot be given back. Positions: hole, hole, 10r, 10r + 1.
            assert_eq!(tx.push_iter(Two(src)), 0);
            assert_eq!(tx.len(), 2);
            let front = if round == 1 {
                rx.pop().map_err(|_| TryPopError::Disconnected)
            } else {
                rx.try_pop()
            };
            assert_eq!(front, Ok(10 * round), "round {round}");
            assert_eq!(rx.try_pop(), Ok(10 * round + 1));
            assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
        }
        let m = rx.metrics();
        assert_eq!((m.pushed, m.popped, m.depth), (6, 6, 0));
        // Every slot is reusable afterwards.
        assert_eq!(tx.push_slice(&[1, 2, 3, 4]), 4);
        assert_eq!(rx.try_pop(), Ok(1));
    }

    #[test]
    fn force_push_over_a_hole_displaces_nothing() {
        let (tx, rx) = channel::<u32>(2);
        let other = tx.clone();
        let mut first = true;
        let src = std::iter::from_fn(|| {
            if std::mem::take(&mut first) {
                other.try_push(7).unwrap();
            }
            None
        });
        struct One<I>(I);
        impl<I: Iterator> Iterator for One<I> {
            type Item = I::Item;
            fn next(&mut self) -> Option<I::Item> {
                self.0.next()
            }
            fn size_hint(&self) -> (usize, Option<usize>) {
                (1, Some(1))
            }
        }
        assert_eq!(tx.push_iter(One(src)), 0);
        // Positions: hole, 7.
        assert_eq!(tx.force_push(8), Ok(None));
        assert_eq!(tx.force_push(9), Ok(Some(7)));
        assert_eq!((rx.try_pop(), rx.try_pop()), (Ok(8), Ok(9)));
        assert_eq!(tx.metrics().displaced, 1);
    }

    #[test]
    fn push_iter_survives_a_panicking_iterator() {
        let (tx, rx) = channel::<u32>(4);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tx.push_iter((0..4).map(|i| if i == 2 { panic!("boom") } else { i }))
        }));
        assert!(r.is_err());
        assert_eq!(tx.len(), 2);
        assert_eq!(tx.push_slice(&[10, 11, 12]), 2);
        let mut out = Vec::new();
        assert_eq!(rx.try_pop_batch(&mut out, 10), Ok(4));
        assert_eq!(out, [0, 1, 10, 11]);
    }

    struct Counted(StdArc<StdAtomicUsize>, bool);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if self.1 {
                panic!("drop panics");
            }
        }
    }

    #[test]
    fn leftover_items_drop_once_even_if_a_drop_panics() {
        let drops = StdArc::new(StdAtomicUsize::new(0));
        let (tx, rx) = channel::<Counted>(5);
        for i in 0..5 {
            tx.try_push(Counted(drops.clone(), i == 2)).ok().unwrap();
        }
        drop(rx.try_pop().unwrap());
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 1);
        drop(tx);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(rx)));
        assert!(r.is_err());
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 5);
    }

    #[test]
    fn disconnects_both_ways() {
        let (tx, rx) = channel::<u8>(2);
        let tx2 = tx.clone();
        tx.try_push(1).unwrap();
        drop(tx);
        assert!(!rx.is_disconnected());
        tx2.try_push(2).unwrap();
        drop(tx2);
        assert!(rx.is_disconnected());
        let rx2 = rx.clone();
        assert_eq!(rx.try_pop(), Ok(1));
        assert_eq!(rx2.try_pop(), Ok(2));
        assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
        assert_eq!(rx2.pop(), Err(PopError));

        let (tx, rx) = channel::<String>(2);
        let rx2 = rx.clone();
        drop(rx);
        assert!(!tx.is_disconnected());
        drop(rx2);
        assert!(tx.is_disconnected());
        let e = tx.try_push("x".into()).unwrap_err();
        assert!(e.is_disconnected());
        assert_eq!(e.into_inner(), "x");
        assert_eq!(tx.push("y".into()).unwrap_err().into_inner(), "y");
        assert_eq!(tx.push_iter(["z".to_string()]), 0);
    }

    #[test]
    fn blocking_pop_sees_disconnect() {
        let (tx, rx) = channel::<u8>(2);
        let rx2 = rx.clone();
        let a = std::thread::spawn(move || rx.pop());
        let b = std::thread::spawn(move || rx2.pop_batch(&mut Vec::new(), 4));
        std::thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 20 }));
        drop(tx);
        assert_eq!(a.join().unwrap(), Err(PopError));
        assert_eq!(b.join().unwrap(), Err(PopError));
    }

    #[test]
    fn blocking_push_sees_disconnect_and_hands_back() {
        let (tx, rx) = channel::<String>(1);
        tx.try_push("a".into()).unwrap();
        let tx2 = tx.clone();
        let a = std::thread::spawn(move || tx.push("b".into()));
        let b = std::thread::spawn(move || tx2.push("c".into()));
        std::thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 20 }));
        drop(rx);
        let mut back = [
            a.join().unwrap().unwrap_err().into_inner(),
            b.join().unwrap().unwrap_err().into_inner(),
        ];
        back.sort();
        assert_eq!(back, ["b", "c"]);
    }

    #[test]
    fn timeouts_return_the_item() {
        let (tx, rx) = channel::<u8>(1);
        tx.try_push(1).unwrap();
        let e = tx.push_timeout(2, Duration::from_millis(5)).unwrap_err();
        assert!(e.is_timeout());
        assert_eq!(e.into_inner(), 2);
        assert_eq!(rx.pop_timeout(Duration::from_millis(5)), Ok(1));
        assert_eq!(
            rx.pop_timeout(Duration::from_millis(5)),
            Err(PopTimeoutError::Timeout)
        );
        assert_eq!(
            rx.pop_batch_timeout(&mut Vec::new(), 3, Duration::from_millis(1)),
            Err(PopTimeoutError::Timeout)
        );
        let m = rx.metrics();
        assert_eq!(m.push_full, 1);
        assert_eq!(m.pop_empty, 2);
        assert!(m.producer_blocked >= Duration::from_millis(5));
    }

    #[test]
    fn zero_sized_items() {
        let (tx, rx) = channel::<()>(3);
        assert_eq!(tx.push_iter(std::iter::repeat(())), 3);
        assert!(tx.try_push(()).is_err());
        assert_eq!(tx.force_push(()), Ok(Some(())));
        let mut out = Vec::new();
        assert_eq!(rx.try_pop_batch(&mut out, 10), Ok(3));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn handles_are_send_sync_clone() {
        fn check<X: Send + Sync + Clone>() {}
        check::<Producer<String>>();
        check::<Consumer<String>>();
    }

    #[test]
    fn two_producers_two_consumers_exactly_once() {
        let per: usize = if cfg!(miri) { 60 } else { 20_000 };
        let (tx, rx) = Builder::new(3)
            .wait_strategy(WaitStrategy::SpinThenPark {
                spins: 8,
                yields: 2,
            })
            .build::<(usize, usize)>()
            .unwrap();
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..per {
                        match i % 3 {
                            0 => tx.push((p, i)).unwrap(),
                            1 => loop {
                                // Non-blocking: retry until it fits.
                                if tx.push_iter([(p, i)]) == 1 {
                                    break;
                                }
                                std::thread::yield_now();
                            },
                            _ => loop {
                                if tx.push_slice(&[(p, i)]) == 1 {
                                    break;
                                }
                                std::thread::yield_now();
                            },
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let consumers: Vec<_> = (0..2)
            .map(|c| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut batch = Vec::new();
                    loop {
                        if c == 0 {
                            match rx.pop() {
                                Ok(v) => got.push(v),
                                Err(_) => break,
                            }
                        } else {
                            match rx.pop_batch(&mut batch, 2) {
                                Ok(n) => {
                                    assert!((1..=2).contains(&n));
                                    got.append(&mut batch);
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    got
                })
            })
            .collect();
        drop(rx);
        for t in producers {
            t.join().unwrap();
        }
        let mut next = [0usize; 2];
        let mut all = Vec::new();
        for t in consumers {
            let got = t.join().unwrap();
            // Per producer, each consumer sees increasing sequence numbers.
            let mut last = [None::<usize>; 2];
            for &(p, i) in &got {
                assert!(last[p].is_none_or(|l| l < i));
                last[p] = Some(i);
            }
            all.extend(got);
        }
        all.sort_unstable();
        for (p, i) in all {
            assert_eq!(i, next[p], "producer {p}");
            next[p] += 1;
        }
        assert_eq!(next, [per, per]);
    }
}
