//! Contenders and workloads shared by the criterion benches (`benches/rings.rs`) and the harness
//! (`examples/harness.rs`, which includes this file by path).
//!
//! Every contender moves the same item (`u64`) through a ring of the same capacity
//! ([`CAPACITY`]), with the producer pinned to core 0 and the consumer to core 1, and every
//! consumer checks every item it receives (order for SPSC, count and sum for MPMC). Each crate is
//! driven through its own best API: its batch/chunk calls where it has them, a per-item loop
//! where it has none (said so in [`Spsc::BATCH_API`]).
#![allow(dead_code)]

mod bare;
mod stamp;
// The harness's reference rows; the criterion benches compare the crates only.
#[allow(unused_imports)]
pub use bare::{Bare, BareHints};
#[allow(unused_imports)]
pub use stamp::{BareStamp, BareStampChecks};

use crossbeam_utils::{Backoff, CachePadded};
use hdrhistogram::Histogram;
use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Slots of every ring in every workload.
pub const CAPACITY: usize = 1024;
/// Items per batch in the batch workload.
pub const BATCH: usize = 64;

/// Core of the producer (and of the pinger in the round trip).
pub const PRODUCER_CORE: usize = 0;
/// Core of the consumer (and of the echo thread in the round trip).
pub const CONSUMER_CORE: usize = 1;

/// Pins the calling thread to `core` (modulo the cores there are); a no-op where pinning is not
/// supported.
///
/// The cores are listed through the calling thread's own affinity (`get_core_ids`), which a
/// spawned thread inherits: call it only from threads spawned by an unpinned thread (as every
/// workload here does), or a thread spawned by one already pinned to core 0 sees only core 0
/// and lands there whatever `core` says.
pub fn pin(core: usize) {
    if let Some(ids) = core_affinity::get_core_ids() {
        if !ids.is_empty() {
            core_affinity::set_for_current(ids[core % ids.len()]);
        }
    }
}

/// The scheduler's account of the calling thread, from `/proc/thread-self/schedstat`: CPU time
/// used (`sum_exec_runtime`, the clock behind `CLOCK_THREAD_CPUTIME_ID`, read without unsafe
/// code) and time spent runnable but waiting for a core (`run_delay`: preemption by other
/// processes). The yield first makes the kernel account the running slice.
pub fn sched_stat() -> (Duration, Duration) {
    thread::yield_now();
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut fields = text
        .split_whitespace()
        .map(|s| s.parse::<u64>().unwrap_or(0));
    let cpu = fields.next().unwrap_or(0);
    let wait = fields.next().unwrap_or(0);
    (Duration::from_nanos(cpu), Duration::from_nanos(wait))
}

/// CPU time the calling thread has used so far (see [`sched_stat`]).
pub fn thread_cpu_time() -> Duration {
    sched_stat().0
}

/// The largest share of its run that either thread of the last [`run_pair`] spent runnable but
/// off its core (other processes had it), in parts per million. The harness re-runs a sample
/// whose share is above its threshold, the same rule for every contender.
static LAST_PREEMPTED_PPM: AtomicU64 = AtomicU64::new(0);

/// See [`LAST_PREEMPTED_PPM`].
pub fn last_preempted() -> f64 {
    LAST_PREEMPTED_PPM.load(Ordering::Relaxed) as f64 / 1e6
}

/// Runs `f`, returning its result and the share of the wall time this thread was preempted.
fn watched<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let (_, w0) = sched_stat();
    let t0 = Instant::now();
    let r = f();
    let wall = t0.elapsed();
    let (_, w1) = sched_stat();
    let share = (w1.saturating_sub(w0)).as_secs_f64() / wall.as_secs_f64().max(1e-9);
    (r, share)
}

/// Spins for `d` of wall time (the slow consumer's "work").
pub fn busy_work(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        spin_loop();
    }
}

// ---------------------------------------------------------------------------------------------
// SPSC contenders
// ---------------------------------------------------------------------------------------------

/// One SPSC contender: a ring and the calls each workload uses.
pub trait Spsc {
    /// Name in tables.
    const NAME: &'static str;
    /// The batch calls used by [`spsc_batch`] (producer / consumer).
    const BATCH_API: &'static str = "none: per-item loop";
    /// Whether the round trip uses the blocking calls ([`Spsc::push_blocking`]/
    /// [`Spsc::pop_blocking`]) rather than try + spin.
    const RTT_BLOCKING: bool = false;
    type Tx: Send + 'static;
    type Rx: Send + 'static;
    fn channel(capacity: usize) -> (Self::Tx, Self::Rx);
    /// `false` when full (the item is still the caller's).
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool;
    fn try_pop(rx: &mut Self::Rx) -> Option<u64>;
    /// Pushes a prefix of `items` that fits, returns its length.
    fn push_slice(tx: &mut Self::Tx, items: &[u64]) -> usize {
        let mut n = 0;
        for &v in items {
            if !Self::try_push(tx, v) {
                break;
            }
            n += 1;
        }
        n
    }
    /// Takes up to `max` ready items (some crates take all that are ready) and hands each to
    /// `sink`; returns how many.
    fn pop_batch(rx: &mut Self::Rx, max: usize, mut sink: impl FnMut(u64)) -> usize {
        let mut n = 0;
        while n < max {
            match Self::try_pop(rx) {
                Some(v) => {
                    sink(v);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }
    /// The crate's blocking push; try + spin where it has none.
    fn push_blocking(tx: &mut Self::Tx, v: u64) {
        push_spin::<Self>(tx, v)
    }
    /// The crate's blocking pop; try + spin where it has none.
    fn pop_blocking(rx: &mut Self::Rx) -> u64 {
        pop_spin::<Self>(rx)
    }
}

#[inline(always)]
pub fn push_spin<Q: Spsc + ?Sized>(tx: &mut Q::Tx, v: u64) {
    while !Q::try_push(tx, v) {
        spin_loop();
    }
}

#[inline(always)]
pub fn pop_spin<Q: Spsc + ?Sized>(rx: &mut Q::Rx) -> u64 {
    loop {
        if let Some(v) = Q::try_pop(rx) {
            return v;
        }
        spin_loop();
    }
}

/// weir's SPSC ring, default options; try + spin, batches with `push_slice` / `read_chunk`.
pub struct Weir;
impl Spsc for Weir {
    const NAME: &'static str = "weir";
    const BATCH_API: &'static str = "push_slice / read_chunk";
    type Tx = weir::spsc::Producer<u64>;
    type Rx = weir::spsc::Consumer<u64>;
    fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
        weir::spsc::channel(capacity)
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.try_push(v).is_ok()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.try_pop().ok()
    }
    #[inline(always)]
    fn push_slice(tx: &mut Self::Tx, items: &[u64]) -> usize {
        tx.push_slice(items)
    }
    #[inline(always)]
    fn pop_batch(rx: &mut Self::Rx, max: usize, mut sink: impl FnMut(u64)) -> usize {
        match rx.read_chunk(max) {
            Ok(chunk) => {
                let (a, b) = chunk.as_slices();
                a.iter().chain(b).for_each(|&v| sink(v));
                let n = chunk.len();
                chunk.commit_all();
                n
            }
            Err(_) => 0,
        }
    }
    fn push_blocking(tx: &mut Self::Tx, v: u64) {
        tx.push(v).unwrap()
    }
    fn pop_blocking(rx: &mut Self::Rx) -> u64 {
        rx.pop().unwrap()
    }
}

/// A weir SPSC contender whose consumer batch is taken by `try_pop_batch` into a `Vec` (moves the
/// items out): `$name` of flavour `$flavour`.
macro_rules! weir_vec_contender {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $flavour:ty) => {
        $(#[$doc])*
        pub struct $ty;
        impl Spsc for $ty {
            const NAME: &'static str = $name;
            const BATCH_API: &'static str = "push_slice / try_pop_batch";
            type Tx = weir::spsc::Producer<u64, $flavour>;
            type Rx = (weir::spsc::Consumer<u64, $flavour>, Vec<u64>);
            fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
                let (tx, rx) = weir::spsc::Builder::new(capacity)
                    .build_flavour::<u64, $flavour>()
                    .unwrap();
                (tx, (rx, Vec::with_capacity(BATCH)))
            }
            #[inline(always)]
            fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
                tx.try_push(v).is_ok()
            }
            #[inline(always)]
            fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
                rx.0.try_pop().ok()
            }
            #[inline(always)]
            fn push_slice(tx: &mut Self::Tx, items: &[u64]) -> usize {
                tx.push_slice(items)
            }
            #[inline(always)]
            fn pop_batch(rx: &mut Self::Rx, max: usize, mut sink: impl FnMut(u64)) -> usize {
                let (rx, buf) = rx;
                buf.clear();
                match rx.try_pop_batch(buf, max) {
                    Ok(n) => {
                        buf.iter().for_each(|&v| sink(v));
                        n
                    }
                    Err(_) => 0,
                }
            }
        }
    };
}

/// weir's default SPSC ring (the `Weir` contender's calls, same handle types) built with other
/// options: `$options` maps the `Builder`.
macro_rules! weir_options_contender {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $options:expr) => {
        $(#[$doc])*
        pub struct $ty;
        impl Spsc for $ty {
            const NAME: &'static str = $name;
            type Tx = weir::spsc::Producer<u64>;
            type Rx = weir::spsc::Consumer<u64>;
            fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
                let options: fn(weir::spsc::Builder) -> weir::spsc::Builder = $options;
                options(weir::spsc::Builder::new(capacity)).build().unwrap()
            }
            #[inline(always)]
            fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
                Weir::try_push(tx, v)
            }
            #[inline(always)]
            fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
                Weir::try_pop(rx)
            }
            #[inline(always)]
            fn push_slice(tx: &mut Self::Tx, items: &[u64]) -> usize {
                Weir::push_slice(tx, items)
            }
            #[inline(always)]
            fn pop_batch(rx: &mut Self::Rx, max: usize, sink: impl FnMut(u64)) -> usize {
                Weir::pop_batch(rx, max, sink)
            }
        }
    };
}

weir_options_contender!(
    /// weir's default SPSC ring with both prefetches turned off (`Builder::write_prefetch(false)`,
    /// `read_prefetch(false)`): the same-run reference for what they buy (docs/benchmarks.md,
    /// "What changed in the fourth session" and "... fifth session"), single items and batches.
    WeirNoPrefetch,
    "weir no-prefetch",
    |b| b.write_prefetch(false).read_prefetch(false)
);
weir_options_contender!(
    /// weir's default SPSC ring with the repoll interval turned off
    /// (`Builder::repoll_interval(Duration::ZERO)`): a refused single push looks at the
    /// consumer's counter again at once on the next call, as the peers do. The same-run
    /// reference for what the interval buys (docs/benchmarks.md, "What changed in the
    /// seventeenth session"), single items.
    WeirNoRepoll,
    "weir no-repoll",
    |b| b.repoll_interval(Duration::ZERO)
);
weir_options_contender!(
    /// weir's default SPSC ring again, built through `Builder` with no option changed: the same
    /// code as [`Weir`], in a second copy of every benchmark loop (each contender's loops are
    /// its own monomorphised copy). An A/A control: its ratio to `weir` should be 1.00, and what
    /// it is instead measures code placement and host noise in that run (docs/benchmarks.md,
    /// "What changed in the tenth session").
    WeirAgain,
    "weir again (A/A)",
    |b| b
);
weir_options_contender!(
    /// weir's default SPSC ring with the demotion of published lines turned off
    /// (`Builder::write_demote(false)`): the same-run reference for what it buys
    /// (docs/benchmarks.md, "What changed in the ninth session"), batches (single pushes never
    /// demote).
    WeirNoDemote,
    "weir no-demote",
    |b| b.write_demote(false)
);

/// A weir SPSC contender whose round trip uses the blocking `push`/`pop` with wait strategy
/// `$wait`, of flavour `$flavour`.
macro_rules! weir_blocking_contender {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $flavour:ty, $wait:expr) => {
        $(#[$doc])*
        pub struct $ty;
        impl Spsc for $ty {
            const NAME: &'static str = $name;
            const RTT_BLOCKING: bool = true;
            type Tx = weir::spsc::Producer<u64, $flavour>;
            type Rx = weir::spsc::Consumer<u64, $flavour>;
            fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
                weir::spsc::Builder::new(capacity)
                    .wait_strategy($wait)
                    .build_flavour::<u64, $flavour>()
                    .unwrap()
            }
            fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
                tx.try_push(v).is_ok()
            }
            fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
                rx.try_pop().ok()
            }
            fn push_blocking(tx: &mut Self::Tx, v: u64) {
                tx.push(v).unwrap()
            }
            fn pop_blocking(rx: &mut Self::Rx) -> u64 {
                rx.pop().unwrap()
            }
        }
    };
}

weir_vec_contender!(
    /// weir (`Indexed`) with the consumer batch taken by `try_pop_batch`.
    WeirVec,
    "weir (try_pop_batch)",
    weir::spsc::Indexed
);
weir_vec_contender!(
    /// weir's `Stamped` flavour (readiness stamped in each slot): try + spin; batches with
    /// `push_slice` / `try_pop_batch` (this flavour has no `read_chunk`).
    WeirStamped,
    "weir Stamped",
    weir::spsc::Stamped
);
weir_blocking_contender!(
    /// weir whose blocking calls busy-spin; the round trip uses `push`/`pop`.
    WeirBusySpin,
    "weir push/pop, BusySpin",
    weir::spsc::Indexed,
    weir::WaitStrategy::BusySpin
);
weir_blocking_contender!(
    /// weir with its default wait (spin, then yield, then park on a futex).
    WeirPark,
    "weir push/pop, spin-then-park",
    weir::spsc::Indexed,
    weir::WaitStrategy::default()
);
weir_blocking_contender!(
    /// weir `Stamped` with blocking calls that busy-spin.
    WeirStampedBusySpin,
    "weir Stamped push/pop, BusySpin",
    weir::spsc::Stamped,
    weir::WaitStrategy::BusySpin
);
weir_blocking_contender!(
    /// weir `Stamped` with its default wait (spin, then yield, then park).
    WeirStampedPark,
    "weir Stamped push/pop, spin-then-park",
    weir::spsc::Stamped,
    weir::WaitStrategy::default()
);

/// rtrb 0.4: `push`/`pop`; batches with `push_partial_slice` / `read_chunk`.
pub struct Rtrb;
impl Spsc for Rtrb {
    const NAME: &'static str = "rtrb";
    const BATCH_API: &'static str = "push_partial_slice / read_chunk";
    type Tx = rtrb::Producer<u64>;
    type Rx = rtrb::Consumer<u64>;
    fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
        rtrb::RingBuffer::new(capacity)
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.push(v).is_ok()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.pop().ok()
    }
    #[inline(always)]
    fn push_slice(tx: &mut Self::Tx, items: &[u64]) -> usize {
        tx.push_partial_slice(items).0.len()
    }
    #[inline(always)]
    fn pop_batch(rx: &mut Self::Rx, max: usize, mut sink: impl FnMut(u64)) -> usize {
        // rtrb's read_chunk(n) wants exactly n. Asking `slots()` first (its documented use)
        // would load the producer's index on every batch; `read_chunk(max)` loads it only when
        // its cached view holds fewer than `max`, as weir's `read_chunk` does, and when refused
        // says how many there are, which the second call then takes from the fresh cache.
        let chunk = match rx.read_chunk(max) {
            Ok(chunk) => chunk,
            Err(rtrb::chunks::ChunkError::TooFewSlots(0)) => return 0,
            Err(rtrb::chunks::ChunkError::TooFewSlots(n)) => match rx.read_chunk(n) {
                Ok(chunk) => chunk,
                Err(_) => return 0,
            },
        };
        let n = chunk.len();
        let (a, b) = chunk.as_slices();
        a.iter().chain(b).for_each(|&v| sink(v));
        chunk.commit_all();
        n
    }
}

/// ringbuf 0.6 (`HeapRb`, caching wrappers): `try_push`/`try_pop`; `push_slice` / `pop_slice`.
pub struct Ringbuf;
impl Spsc for Ringbuf {
    const NAME: &'static str = "ringbuf";
    const BATCH_API: &'static str = "push_slice / pop_slice";
    type Tx = ringbuf::HeapProd<u64>;
    type Rx = ringbuf::HeapCons<u64>;
    fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
        use ringbuf::traits::Split;
        ringbuf::HeapRb::<u64>::new(capacity).split()
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        use ringbuf::traits::Producer;
        tx.try_push(v).is_ok()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        use ringbuf::traits::Consumer;
        rx.try_pop()
    }
    #[inline(always)]
    fn push_slice(tx: &mut Self::Tx, items: &[u64]) -> usize {
        use ringbuf::traits::Producer;
        tx.push_slice(items)
    }
    #[inline(always)]
    fn pop_batch(rx: &mut Self::Rx, max: usize, mut sink: impl FnMut(u64)) -> usize {
        use ringbuf::traits::Consumer;
        let mut buf = [0u64; BATCH];
        let n = rx.pop_slice(&mut buf[..max.min(BATCH)]);
        buf[..n].iter().for_each(|&v| sink(v));
        n
    }
}

/// crossbeam-queue's `ArrayQueue` (MPMC, used as SPSC): `push`/`pop`, no batch API.
pub struct ArrayQueue;
impl Spsc for ArrayQueue {
    const NAME: &'static str = "crossbeam ArrayQueue";
    type Tx = Arc<crossbeam_queue::ArrayQueue<u64>>;
    type Rx = Arc<crossbeam_queue::ArrayQueue<u64>>;
    fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
        let q = Arc::new(crossbeam_queue::ArrayQueue::new(capacity));
        (q.clone(), q)
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.push(v).is_ok()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.pop()
    }
}

/// crossbeam-channel `bounded`: `try_send`/`try_recv`, blocking `send`/`recv`; no batch API.
pub struct CrossbeamChannel;
impl Spsc for CrossbeamChannel {
    const NAME: &'static str = "crossbeam-channel";
    type Tx = crossbeam_channel::Sender<u64>;
    type Rx = crossbeam_channel::Receiver<u64>;
    fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
        crossbeam_channel::bounded(capacity)
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.try_send(v).is_ok()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.try_recv().ok()
    }
    fn push_blocking(tx: &mut Self::Tx, v: u64) {
        tx.send(v).unwrap()
    }
    fn pop_blocking(rx: &mut Self::Rx) -> u64 {
        rx.recv().unwrap()
    }
}

/// kanal `bounded`: `try_send`/`try_recv`, `drain_into` for batches (it takes every ready item),
/// blocking `send`/`recv`.
pub struct Kanal;
impl Spsc for Kanal {
    const NAME: &'static str = "kanal";
    const BATCH_API: &'static str = "per-item try_send / drain_into (all ready)";
    type Tx = kanal::Sender<u64>;
    type Rx = (kanal::Receiver<u64>, Vec<u64>);
    fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
        let (tx, rx) = kanal::bounded(capacity);
        (tx, (rx, Vec::with_capacity(capacity)))
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.try_send(v).unwrap()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.0.try_recv().unwrap()
    }
    #[inline(always)]
    fn pop_batch(rx: &mut Self::Rx, _max: usize, mut sink: impl FnMut(u64)) -> usize {
        let (rx, buf) = rx;
        buf.clear();
        rx.drain_into(buf).unwrap();
        buf.iter().for_each(|&v| sink(v));
        buf.len()
    }
    fn push_blocking(tx: &mut Self::Tx, v: u64) {
        tx.send(v).unwrap()
    }
    fn pop_blocking(rx: &mut Self::Rx) -> u64 {
        rx.0.recv().unwrap()
    }
}

/// flume `bounded`: `try_send`/`try_recv`, `drain` for batches (takes every ready item),
/// blocking `send`/`recv`.
pub struct Flume;
impl Spsc for Flume {
    const NAME: &'static str = "flume";
    const BATCH_API: &'static str = "per-item try_send / drain (all ready)";
    type Tx = flume::Sender<u64>;
    type Rx = flume::Receiver<u64>;
    fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
        flume::bounded(capacity)
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.try_send(v).is_ok()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.try_recv().ok()
    }
    #[inline(always)]
    fn pop_batch(rx: &mut Self::Rx, _max: usize, mut sink: impl FnMut(u64)) -> usize {
        let mut n = 0;
        for v in rx.drain() {
            sink(v);
            n += 1;
        }
        n
    }
    fn push_blocking(tx: &mut Self::Tx, v: u64) {
        tx.send(v).unwrap()
    }
    fn pop_blocking(rx: &mut Self::Rx) -> u64 {
        rx.recv().unwrap()
    }
}

/// `std::sync::mpsc::sync_channel`: `try_send`/`try_recv`, blocking `send`/`recv`; no batch API.
pub struct StdSync;
impl Spsc for StdSync {
    const NAME: &'static str = "std sync_channel";
    type Tx = std::sync::mpsc::SyncSender<u64>;
    type Rx = std::sync::mpsc::Receiver<u64>;
    fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
        std::sync::mpsc::sync_channel(capacity)
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.try_send(v).is_ok()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.try_recv().ok()
    }
    fn push_blocking(tx: &mut Self::Tx, v: u64) {
        tx.send(v).unwrap()
    }
    fn pop_blocking(rx: &mut Self::Rx) -> u64 {
        rx.recv().unwrap()
    }
}

/// The `disruptor` crate 4.x, single producer, with an `EventPoller` on our own (pinned) thread:
/// `try_publish` / `take(1)`; batches with `try_batch_publish` / `take(64)`; its blocking push is
/// `publish` (spins).
pub struct Disruptor;
impl Spsc for Disruptor {
    const NAME: &'static str = "disruptor";
    const BATCH_API: &'static str = "try_batch_publish / EventPoller::take";
    type Tx = disruptor::SingleProducer<u64, disruptor::SingleConsumerBarrier>;
    type Rx = disruptor::EventPoller<u64, disruptor::SingleProducerBarrier>;
    fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
        let (poller, builder) =
            disruptor::build_single_producer(capacity, || 0u64, disruptor::BusySpin)
                .new_event_poller();
        (builder.build(), poller)
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        use disruptor::Producer;
        tx.try_publish(|e| *e = v).is_ok()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        match rx.take(1) {
            Ok(mut guard) => (&mut guard).next().copied(),
            Err(_) => None,
        }
    }
    #[inline(always)]
    fn push_slice(tx: &mut Self::Tx, items: &[u64]) -> usize {
        use disruptor::Producer;
        let len = items.len();
        let fill = |iter: &mut dyn Iterator<Item = &mut u64>, n: usize| {
            for (e, &v) in iter.zip(&items[..n]) {
                *e = v;
            }
        };
        match tx.try_batch_publish(len, |mut it| fill(&mut it, len)) {
            Ok(_) => len,
            Err(disruptor::MissingFreeSlots(missing)) => {
                // All-or-nothing in the crate: publish what does fit, like the others.
                let n = len - missing as usize;
                if n > 0 && tx.try_batch_publish(n, |mut it| fill(&mut it, n)).is_ok() {
                    n
                } else {
                    0
                }
            }
        }
    }
    #[inline(always)]
    fn pop_batch(rx: &mut Self::Rx, max: usize, mut sink: impl FnMut(u64)) -> usize {
        match rx.take(max as u64) {
            Ok(mut guard) => {
                let mut n = 0;
                for &v in &mut guard {
                    sink(v);
                    n += 1;
                }
                n
            }
            Err(_) => 0,
        }
    }
    fn push_blocking(tx: &mut Self::Tx, v: u64) {
        use disruptor::Producer;
        tx.publish(|e| *e = v)
    }
}

// ---------------------------------------------------------------------------------------------
// SPSC workloads
// ---------------------------------------------------------------------------------------------

/// Runs `producer` on core 0 and `consumer` on core 1, both released by one barrier; returns
/// (producer's start instant, its result, consumer's result).
fn run_pair<P, C, RP, RC>(producer: P, consumer: C) -> (Instant, RP, RC)
where
    P: FnOnce() -> RP + Send + 'static,
    C: FnOnce() -> RC + Send + 'static,
    RP: Send + 'static,
    RC: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    let c = thread::spawn(move || {
        pin(CONSUMER_CORE);
        b.wait();
        watched(consumer)
    });
    let p = thread::spawn(move || {
        pin(PRODUCER_CORE);
        barrier.wait();
        watched(|| {
            let start = Instant::now();
            (start, producer())
        })
    });
    let ((start, rp), sp) = p.join().expect("producer panicked");
    let (rc, sc) = c.join().expect("consumer panicked");
    LAST_PREEMPTED_PPM.store((sp.max(sc) * 1e6) as u64, Ordering::Relaxed);
    (start, rp, rc)
}

/// Single-item throughput: `items` u64s through `try_push`/`try_pop` + spin; the consumer checks
/// the order. Returns the time from the producer's start to the consumer's last item.
pub fn spsc_single<Q: Spsc>(items: u64) -> Duration {
    let (mut tx, mut rx) = Q::channel(CAPACITY);
    let (start, tx, (end, rx)) = run_pair(
        move || {
            for i in 0..items {
                push_spin::<Q>(&mut tx, i);
            }
            // Keep the producer (and the ring) alive until the consumer is done.
            tx
        },
        move || {
            for i in 0..items {
                let v = pop_spin::<Q>(&mut rx);
                assert_eq!(v, i, "{}: out of order", Q::NAME);
            }
            (Instant::now(), rx)
        },
    );
    drop((tx, rx));
    end.duration_since(start)
}

/// Rounds of [`consumer_work`] per item in the busy-consumer workload.
pub const BUSY_CONSUMER_ROUNDS: u32 = 3;

/// The busy consumer's work on one item: `rounds` dependent multiply–rotates (a few ns), kept
/// from being optimised away. Enough to make the consumer the slower side of every ring here, so
/// that the ring runs full, as in a pipeline under backpressure.
#[inline(always)]
pub fn consumer_work(mut x: u64, rounds: u32) -> u64 {
    for _ in 0..rounds {
        x = std::hint::black_box(x)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(7);
    }
    x
}

/// Single-item throughput with a busy consumer: as [`spsc_single`], but the consumer does
/// [`consumer_work`] on each item, so the ring runs full and the producer's failed `try_push`
/// calls (and its spin) meet a consumer that sets the pace. Returns the time from the
/// producer's start to the consumer's last item. A copy of `spsc_single`'s shape, not a call
/// into a shared body: the single-item row's figures depend on how its loops compile (docs/
/// benchmarks.md, sixteenth and seventeenth sessions), so that row keeps its code as it was.
pub fn spsc_busy_consumer<Q: Spsc>(items: u64, rounds: u32) -> Duration {
    let (mut tx, mut rx) = Q::channel(CAPACITY);
    let (start, tx, (end, rx)) = run_pair(
        move || {
            for i in 0..items {
                push_spin::<Q>(&mut tx, i);
            }
            tx
        },
        move || {
            let mut acc = 0u64;
            for i in 0..items {
                let v = pop_spin::<Q>(&mut rx);
                assert_eq!(v, i, "{}: out of order", Q::NAME);
                acc = acc.wrapping_add(consumer_work(v, rounds));
            }
            std::hint::black_box(acc);
            (Instant::now(), rx)
        },
    );
    drop((tx, rx));
    end.duration_since(start)
}

/// Batch throughput: the producer offers slices of [`BATCH`] items (re-offering what did not fit),
/// the consumer takes up to [`BATCH`] per call; order checked.
pub fn spsc_batch<Q: Spsc>(items: u64) -> Duration {
    let (mut tx, mut rx) = Q::channel(CAPACITY);
    let (start, tx, (end, rx)) = run_pair(
        move || {
            let mut buf = [0u64; BATCH];
            let mut next = 0u64;
            while next < items {
                let m = (items - next).min(BATCH as u64) as usize;
                for (k, slot) in buf[..m].iter_mut().enumerate() {
                    *slot = next + k as u64;
                }
                let mut off = 0;
                while off < m {
                    let k = Q::push_slice(&mut tx, &buf[off..m]);
                    if k == 0 {
                        spin_loop();
                    }
                    off += k;
                }
                next += m as u64;
            }
            tx
        },
        move || {
            let mut expected = 0u64;
            while expected < items {
                let k = Q::pop_batch(&mut rx, BATCH, |v| {
                    assert_eq!(v, expected, "out of order");
                    expected += 1;
                });
                if k == 0 {
                    spin_loop();
                }
            }
            (Instant::now(), rx)
        },
    );
    drop((tx, rx));
    end.duration_since(start)
}

/// Round-trip latencies in ns of `rounds` ping-pongs (after `warmup` unrecorded ones) over two
/// rings: the pinger (core 0) pushes `i` into ring A and waits for it on ring B; the echo thread
/// (core 1) pops from A and pushes into B. Each sample brackets one push + one pop with two
/// `Instant::now()` reads. Returns the histogram and the total time of the recorded rounds.
pub fn rtt<Q: Spsc>(rounds: u64, warmup: u64) -> (Histogram<u64>, Duration) {
    let (mut ping_tx, mut ping_rx) = Q::channel(CAPACITY);
    let (mut pong_tx, mut pong_rx) = Q::channel(CAPACITY);
    let total = rounds + warmup;
    let (_, (hist, elapsed), ()) = run_pair(
        move || {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
            let mut elapsed = Duration::ZERO;
            for i in 0..total {
                let t0 = Instant::now();
                if Q::RTT_BLOCKING {
                    Q::push_blocking(&mut ping_tx, i);
                } else {
                    push_spin::<Q>(&mut ping_tx, i);
                }
                let v = if Q::RTT_BLOCKING {
                    Q::pop_blocking(&mut pong_rx)
                } else {
                    pop_spin::<Q>(&mut pong_rx)
                };
                let dt = t0.elapsed();
                assert_eq!(v, i, "{}: echo out of order", Q::NAME);
                if i >= warmup {
                    hist.record(dt.as_nanos() as u64).unwrap();
                    elapsed += dt;
                }
            }
            drop((ping_tx, pong_rx));
            (hist, elapsed)
        },
        move || {
            for _ in 0..total {
                let v = if Q::RTT_BLOCKING {
                    Q::pop_blocking(&mut ping_rx)
                } else {
                    pop_spin::<Q>(&mut ping_rx)
                };
                if Q::RTT_BLOCKING {
                    Q::push_blocking(&mut pong_tx, v);
                } else {
                    push_spin::<Q>(&mut pong_tx, v);
                }
            }
            drop((ping_rx, pong_tx));
        },
    );
    (hist, elapsed)
}

/// The floor for [`rtt`]: the same ping-pong over two cache-padded atomics (one line each way,
/// the least any ring can move), measured the same way.
pub fn rtt_floor(rounds: u64, warmup: u64) -> (Histogram<u64>, Duration) {
    let ping = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let pong = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let (ping2, pong2) = (ping.clone(), pong.clone());
    let total = rounds + warmup;
    let (_, (hist, elapsed), ()) = run_pair(
        move || {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
            let mut elapsed = Duration::ZERO;
            for i in 1..=total {
                let t0 = Instant::now();
                ping.store(i, Ordering::Release);
                while pong.load(Ordering::Acquire) != i {
                    spin_loop();
                }
                let dt = t0.elapsed();
                if i > warmup {
                    hist.record(dt.as_nanos() as u64).unwrap();
                    elapsed += dt;
                }
            }
            (hist, elapsed)
        },
        move || {
            for i in 1..=total {
                while ping2.load(Ordering::Acquire) != i {
                    spin_loop();
                }
                pong2.store(i, Ordering::Release);
            }
        },
    );
    (hist, elapsed)
}

/// The cost of one `Instant::now()` pair (what every round-trip sample includes), as a
/// histogram of `n` back-to-back readings.
pub fn timer_overhead(n: u64) -> Histogram<u64> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for _ in 0..n {
        let t0 = Instant::now();
        let dt = t0.elapsed();
        hist.record(dt.as_nanos().max(1) as u64).unwrap();
    }
    hist
}

/// Result of [`slow_consumer`].
#[derive(Clone, Copy, Debug)]
pub struct SlowResult {
    /// From the producer's start to the consumer's last item.
    pub wall: Duration,
    /// CPU time the producer thread used to push every item.
    pub producer_cpu: Duration,
}

/// Slow consumer: the consumer spends `work` busy per item, the producer pushes `items` as fast
/// as it can with the crate's blocking push (try + spin where there is none).
pub fn slow_consumer<Q: Spsc>(items: u64, work: Duration) -> SlowResult {
    let (mut tx, mut rx) = Q::channel(CAPACITY);
    let (start, (cpu, tx), (end, rx)) = run_pair(
        move || {
            let cpu0 = thread_cpu_time();
            for i in 0..items {
                Q::push_blocking(&mut tx, i);
            }
            (thread_cpu_time() - cpu0, tx)
        },
        move || {
            for i in 0..items {
                let v = Q::pop_blocking(&mut rx);
                assert_eq!(v, i, "{}: out of order", Q::NAME);
                busy_work(work);
            }
            (Instant::now(), rx)
        },
    );
    drop((tx, rx));
    SlowResult {
        wall: end.duration_since(start),
        producer_cpu: cpu,
    }
}

// ---------------------------------------------------------------------------------------------
// MPMC contenders and workload
// ---------------------------------------------------------------------------------------------

/// The producer and consumer handles of one MPMC ring, one per thread.
pub type Handles<T, R> = (Vec<T>, Vec<R>);

/// One MPMC contender. Handles are cloned per thread.
pub trait Mpmc {
    const NAME: &'static str;
    type Tx: Send + 'static;
    type Rx: Send + 'static;
    /// `None` if the crate cannot serve this shape (the disruptor broadcasts to every consumer,
    /// so it is no work queue for more than one consumer).
    fn channel(
        capacity: usize,
        producers: usize,
        consumers: usize,
    ) -> Option<Handles<Self::Tx, Self::Rx>>;
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool;
    fn try_pop(rx: &mut Self::Rx) -> Option<u64>;
}

fn clones<T: Clone>(x: T, n: usize) -> Vec<T> {
    vec![x; n]
}

/// weir's MPMC ring (`weir::mpmc`), default options: `try_push`/`try_pop`.
pub struct WeirMpmc;
impl Mpmc for WeirMpmc {
    const NAME: &'static str = "weir::mpmc";
    type Tx = weir::mpmc::Producer<u64>;
    type Rx = weir::mpmc::Consumer<u64>;
    fn channel(capacity: usize, p: usize, c: usize) -> Option<Handles<Self::Tx, Self::Rx>> {
        let (tx, rx) = weir::mpmc::channel(capacity);
        Some((clones(tx, p), clones(rx, c)))
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.try_push(v).is_ok()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.try_pop().ok()
    }
}

/// weir's MPMC ring without the claim prefetch (`Builder::claim_prefetch(false)`), to measure
/// what the prefetch buys in the same run.
pub struct WeirMpmcNoPrefetch;
impl Mpmc for WeirMpmcNoPrefetch {
    const NAME: &'static str = "weir::mpmc no-prefetch";
    type Tx = weir::mpmc::Producer<u64>;
    type Rx = weir::mpmc::Consumer<u64>;
    fn channel(capacity: usize, p: usize, c: usize) -> Option<Handles<Self::Tx, Self::Rx>> {
        let (tx, rx) = weir::mpmc::Builder::new(capacity)
            .claim_prefetch(false)
            .build()
            .expect("valid capacity");
        Some((clones(tx, p), clones(rx, c)))
    }
    // The same calls as `WeirMpmc` (same handle types): only the ring's option differs.
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        WeirMpmc::try_push(tx, v)
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        WeirMpmc::try_pop(rx)
    }
}

impl Mpmc for ArrayQueue {
    const NAME: &'static str = "crossbeam ArrayQueue";
    type Tx = Arc<crossbeam_queue::ArrayQueue<u64>>;
    type Rx = Arc<crossbeam_queue::ArrayQueue<u64>>;
    fn channel(capacity: usize, p: usize, c: usize) -> Option<Handles<Self::Tx, Self::Rx>> {
        let q = Arc::new(crossbeam_queue::ArrayQueue::new(capacity));
        Some((clones(q.clone(), p), clones(q, c)))
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.push(v).is_ok()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.pop()
    }
}

impl Mpmc for CrossbeamChannel {
    const NAME: &'static str = "crossbeam-channel";
    type Tx = crossbeam_channel::Sender<u64>;
    type Rx = crossbeam_channel::Receiver<u64>;
    fn channel(capacity: usize, p: usize, c: usize) -> Option<Handles<Self::Tx, Self::Rx>> {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        Some((clones(tx, p), clones(rx, c)))
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.try_send(v).is_ok()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.try_recv().ok()
    }
}

impl Mpmc for Kanal {
    const NAME: &'static str = "kanal";
    type Tx = kanal::Sender<u64>;
    type Rx = kanal::Receiver<u64>;
    fn channel(capacity: usize, p: usize, c: usize) -> Option<Handles<Self::Tx, Self::Rx>> {
        let (tx, rx) = kanal::bounded(capacity);
        Some((clones(tx, p), clones(rx, c)))
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.try_send(v).unwrap()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.try_recv().unwrap()
    }
}

impl Mpmc for Flume {
    const NAME: &'static str = "flume";
    type Tx = flume::Sender<u64>;
    type Rx = flume::Receiver<u64>;
    fn channel(capacity: usize, p: usize, c: usize) -> Option<Handles<Self::Tx, Self::Rx>> {
        let (tx, rx) = flume::bounded(capacity);
        Some((clones(tx, p), clones(rx, c)))
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.try_send(v).is_ok()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.try_recv().ok()
    }
}

/// The disruptor with several producers and one `EventPoller` (2P1C only).
impl Mpmc for Disruptor {
    const NAME: &'static str = "disruptor";
    type Tx = disruptor::MultiProducer<u64, disruptor::SingleConsumerBarrier>;
    type Rx = disruptor::EventPoller<u64, disruptor::MultiProducerBarrier>;
    fn channel(capacity: usize, p: usize, c: usize) -> Option<Handles<Self::Tx, Self::Rx>> {
        if c != 1 {
            return None;
        }
        let (poller, builder) =
            disruptor::build_multi_producer(capacity, || 0u64, disruptor::BusySpin)
                .new_event_poller();
        let tx = builder.build();
        Some((clones(tx, p), vec![poller]))
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        use disruptor::Producer;
        tx.try_publish(|e| *e = v).is_ok()
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        match rx.take(1) {
            Ok(mut guard) => (&mut guard).next().copied(),
            Err(_) => None,
        }
    }
}

/// MPMC throughput: `producers` threads (core 0) push disjoint ranges of `items` in total with
/// `try_push`, `consumers` threads (core 1) `try_pop` until every item is taken; failed calls back
/// off with crossbeam's `Backoff` (spin, then yield: the threads share cores). The count and sum
/// of what the consumers took are checked. `None` if the contender has no such shape.
pub fn mpmc<Q: Mpmc>(producers: usize, consumers: usize, items: u64) -> Option<Duration> {
    let (txs, rxs) = Q::channel(CAPACITY, producers, consumers)?;
    let per = items / producers as u64;
    let total = per * producers as u64;
    let taken: Arc<Vec<CachePadded<AtomicU64>>> = Arc::new(
        (0..consumers)
            .map(|_| CachePadded::new(AtomicU64::new(0)))
            .collect(),
    );
    let barrier = Arc::new(Barrier::new(producers + consumers));
    let mut handles_c = Vec::new();
    for (k, mut rx) in rxs.into_iter().enumerate() {
        let (barrier, taken) = (barrier.clone(), taken.clone());
        handles_c.push(thread::spawn(move || {
            pin(CONSUMER_CORE);
            barrier.wait();
            let (mut count, mut sum) = (0u64, 0u64);
            let backoff = Backoff::new();
            loop {
                match Q::try_pop(&mut rx) {
                    Some(v) => {
                        count += 1;
                        sum = sum.wrapping_add(v);
                        // Relaxed: a progress count read only to decide when to stop.
                        taken[k].store(count, Ordering::Relaxed);
                        backoff.reset();
                    }
                    None => {
                        let all: u64 = taken.iter().map(|t| t.load(Ordering::Relaxed)).sum();
                        if all >= total {
                            break;
                        }
                        backoff.snooze();
                    }
                }
            }
            (Instant::now(), count, sum, rx)
        }));
    }
    let mut handles_p = Vec::new();
    for (k, mut tx) in txs.into_iter().enumerate() {
        let barrier = barrier.clone();
        handles_p.push(thread::spawn(move || {
            pin(PRODUCER_CORE);
            barrier.wait();
            let start = Instant::now();
            let base = k as u64 * per;
            for i in base..base + per {
                let backoff = Backoff::new();
                while !Q::try_push(&mut tx, i) {
                    backoff.snooze();
                }
            }
            (start, tx)
        }));
    }
    let mut start: Option<Instant> = None;
    let mut keep = Vec::new();
    for h in handles_p {
        let (s, tx) = h.join().expect("producer panicked");
        start = Some(start.map_or(s, |x: Instant| x.min(s)));
        keep.push(tx);
    }
    let (mut end, mut count, mut sum) = (None::<Instant>, 0u64, 0u64);
    let mut keep_rx = Vec::new();
    for h in handles_c {
        let (e, c, s, rx) = h.join().expect("consumer panicked");
        end = Some(end.map_or(e, |x: Instant| x.max(e)));
        count += c;
        sum = sum.wrapping_add(s);
        keep_rx.push(rx);
    }
    drop(keep);
    drop(keep_rx);
    assert_eq!(count, total, "{}: lost or duplicated items", Q::NAME);
    let expected = ((total as u128 * total.saturating_sub(1) as u128) / 2) as u64;
    assert_eq!(sum, expected, "{}: wrong items", Q::NAME);
    Some(end?.duration_since(start?))
}

// ---------------------------------------------------------------------------------------------
// Instruction counting
// ---------------------------------------------------------------------------------------------

/// Single-threaded loop for instruction counts (run under `valgrind --tool=callgrind`): rounds of
/// [`BATCH`] pushes then [`BATCH`] pops (`batch == false`, with `try_push`/`try_pop`), or one
/// batch push and one batch pop (`batch == true`). Returns the sum of what was popped, checked.
/// Two runs with different `items` give the cost per item without the setup.
pub fn icount<Q: Spsc>(items: u64, batch: bool) -> u64 {
    let (mut tx, mut rx) = Q::channel(CAPACITY);
    let (mut next, mut sum) = (0u64, 0u64);
    while next < items {
        if batch {
            let buf: [u64; BATCH] = std::array::from_fn(|k| next + k as u64);
            assert_eq!(Q::push_slice(&mut tx, &buf), BATCH);
            let mut got = 0;
            while got < BATCH {
                got += Q::pop_batch(&mut rx, BATCH - got, |v| sum = sum.wrapping_add(v));
            }
        } else {
            for k in 0..BATCH as u64 {
                assert!(Q::try_push(&mut tx, next + k));
            }
            for _ in 0..BATCH {
                sum = sum.wrapping_add(Q::try_pop(&mut rx).expect("item missing"));
            }
        }
        next += BATCH as u64;
    }
    assert_eq!(sum, (next as u128 * (next as u128 - 1) / 2) as u64);
    sum
}

/// [`icount`] for an MPMC contender (one thread, one producer and one consumer handle).
pub fn icount_mpmc<Q: Mpmc>(items: u64) -> u64 {
    let (mut txs, mut rxs) = Q::channel(CAPACITY, 1, 1).expect("1P1C");
    let (tx, rx) = (&mut txs[0], &mut rxs[0]);
    let (mut next, mut sum) = (0u64, 0u64);
    while next < items {
        for k in 0..BATCH as u64 {
            assert!(Q::try_push(tx, next + k));
        }
        for _ in 0..BATCH {
            sum = sum.wrapping_add(Q::try_pop(rx).expect("item missing"));
        }
        next += BATCH as u64;
    }
    assert_eq!(sum, (next as u128 * (next as u128 - 1) / 2) as u64);
    sum
}
