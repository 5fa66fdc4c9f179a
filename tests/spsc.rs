//! Integration tests of the SPSC ring: stress across two threads, exactly-once drops, the
//! CPU cost of a parked producer, batched wake-ups, disconnects, timeouts and exact capacity.
//!
//! Every test but the few that name `spsc::channel` runs on both flavours, as `indexed::NAME`
//! and `stamped::NAME` (see `tests/flavours/mod.rs`).
//!
//! Sizes scale down under miri and in debug builds; `WEIR_STRESS_ITEMS` overrides the number of
//! items of the stress tests (CI lowers it for the sanitizer runs).

// ci: miri (cheap enough under miri: sizes scale down with cfg!(miri); run under several seeds)

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use weir::spsc::{self, Builder, Consumer, Producer};

#[macro_use]
mod flavours;
use flavours::{ring, Flavour};
use weir::{
    CapacityError, PopError, PopTimeoutError, PushTimeoutError, TryPopError, TryPushError,
    WaitStrategy,
};

for_both_flavours!(
    stress_default_strategy_order_and_count,
    stress_busy_spin_order_and_count,
    stress_batches_both_sides,
    items_left_in_ring_are_dropped_once_when_both_halves_go,
    refused_items_are_handed_back_not_dropped,
    threads_drop_every_item_exactly_once_after_disconnects,
    #[cfg_attr(miri, ignore = "miri has no thread CPU clock")]
    blocked_producer_burns_almost_no_cpu,
    #[cfg_attr(miri, ignore = "miri has no thread CPU clock")]
    blocked_consumer_burns_almost_no_cpu,
    #[cfg_attr(
        miri,
        ignore = "needs real time: under miri the producer may never park"
    )]
    slow_consumer_does_not_cost_a_wake_per_item,
    #[cfg_attr(
        miri,
        ignore = "needs real time: under miri the producer may never park"
    )]
    #[cfg_attr(
        miri,
        ignore = "needs real time: under miri the producer may never park"
    )]
    producer_wake_threshold_is_configurable,
    consumer_drains_then_sees_disconnect,
    parked_consumer_wakes_on_disconnect_in_every_form,
    parked_producer_wakes_on_disconnect_and_gets_its_item_back,
    disconnected_producer_refuses_everything,
    timeouts_hand_items_back,
    push_timeout_succeeds_when_room_appears,
    capacity_is_exact_for_awkward_sizes,
    capacity_zero_is_an_error,
    absurd_capacities_are_errors,
    #[cfg_attr(
        miri,
        ignore = "miri stops at an allocation this large instead of failing it"
    )]
    a_buffer_the_allocator_refuses_is_an_error,
    handles_are_send_and_debug,
);

/// Items moved by each stress test: tens of millions in an optimised build.
fn stress_items() -> u64 {
    if let Some(n) = std::env::var("WEIR_STRESS_ITEMS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return n;
    }
    if cfg!(miri) {
        500
    } else if cfg!(debug_assertions) {
        1_000_000
    } else {
        20_000_000
    }
}

/// Producer: `push` of every number; consumer: `pop_batch`, checking order and count.
fn stress_single<R: Flavour>(strategy: WaitStrategy, capacity: usize) {
    let n = stress_items();
    let (mut tx, mut rx) = Builder::new(capacity)
        .wait_strategy(strategy)
        .build_flavour::<u64, R>()
        .unwrap();
    let producer = thread::spawn(move || {
        for i in 0..n {
            tx.push(i).unwrap();
        }
    });
    let mut next = 0u64;
    let mut batch = Vec::with_capacity(256);
    while let Ok(k) = rx.pop_batch(&mut batch, 256) {
        assert!((1..=256).contains(&k));
        for v in batch.drain(..) {
            assert_eq!(v, next, "out of order");
            next += 1;
        }
    }
    producer.join().unwrap();
    assert_eq!(next, n, "items lost or duplicated");
    let m = rx.metrics();
    assert_eq!((m.pushed, m.popped, m.depth), (n, n, 0));
    eprintln!("stress {strategy:?} cap {capacity}: moved {n} items; {m:?}");
}

fn stress_default_strategy_order_and_count<R: Flavour>() {
    stress_single::<R>(WaitStrategy::default(), 1000);
}

fn stress_busy_spin_order_and_count<R: Flavour>() {
    stress_single::<R>(WaitStrategy::BusySpin, 1024);
}

/// Batches on both sides: `push_slice`/`push_iter` in, `read_chunk`+`commit` (`Indexed`) or
/// single pops (`Stamped`) and `try_pop_batch` out, over an awkward capacity.
fn stress_batches_both_sides<R: Flavour>() {
    let n = stress_items();
    let (mut tx, mut rx) = ring::<u64, R>(777);
    let producer = thread::spawn(move || {
        let mut next = 0u64;
        let mut buf = [0u64; 100];
        let mut round = 0u64;
        while next < n {
            round += 1;
            let want = ((round % 100) + 1).min(n - next) as usize;
            let sent = if round % 2 == 0 {
                for (k, slot) in buf[..want].iter_mut().enumerate() {
                    *slot = next + k as u64;
                }
                tx.push_slice(&buf[..want])
            } else {
                tx.push_iter(next..next + want as u64)
            };
            next += sent as u64;
            if sent == 0 {
                // Full: wait for room the blocking way, one item.
                tx.push(next).unwrap();
                next += 1;
            }
        }
    });
    let mut expect = 0u64;
    let mut out = Vec::new();
    let mut round = 0usize;
    loop {
        round += 1;
        let max = round % 300 + 1;
        if round % 2 == 0 {
            // `Indexed`: `read_chunk` + `commit`; `Stamped`: single pops (the stamp path),
            // interleaved with the batches below (the `tail` path).
            match R::pop_some(&mut rx, max, |&v| {
                assert_eq!(v, expect);
                expect += 1;
            }) {
                Ok(k) => assert!(k >= 1 && k <= max),
                Err(TryPopError::Empty) => thread::yield_now(),
                Err(e) => {
                    assert_eq!(e, TryPopError::Disconnected);
                    break;
                }
            }
        } else {
            match rx.try_pop_batch(&mut out, max) {
                Ok(k) => {
                    assert!(k >= 1 && k <= max);
                    for v in out.drain(..) {
                        assert_eq!(v, expect);
                        expect += 1;
                    }
                }
                Err(TryPopError::Empty) => thread::yield_now(),
                Err(e) => {
                    assert_eq!(e, TryPopError::Disconnected);
                    break;
                }
            }
        }
    }
    producer.join().unwrap();
    assert_eq!(expect, n);
}

// ---------------------------------------------------------------------------------------------
// Drop accounting
// ---------------------------------------------------------------------------------------------

/// Records every drop by id, so that a double drop or a leak is seen, not just a count.
#[derive(Default)]
struct Ledger {
    created: AtomicUsize,
    dropped: AtomicUsize,
    double: AtomicUsize,
    seen: Mutex<HashSet<u64>>,
}

impl Ledger {
    fn item(self: &Arc<Self>, id: u64) -> Tracked {
        self.created.fetch_add(1, Ordering::Relaxed);
        Tracked {
            id,
            ledger: self.clone(),
        }
    }

    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }

    fn assert_all_dropped_once(&self) {
        assert_eq!(
            self.double.load(Ordering::Relaxed),
            0,
            "an item was dropped twice"
        );
        assert_eq!(
            self.created.load(Ordering::Relaxed),
            self.dropped(),
            "an item was leaked"
        );
    }
}

struct Tracked {
    id: u64,
    ledger: Arc<Ledger>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if !self.ledger.seen.lock().unwrap().insert(self.id) {
            self.ledger.double.fetch_add(1, Ordering::Relaxed);
        }
        self.ledger.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

fn items_left_in_ring_are_dropped_once_when_both_halves_go<R: Flavour>() {
    for producer_first in [true, false] {
        let ledger = Arc::new(Ledger::default());
        let (mut tx, mut rx) = ring::<Tracked, R>(5);
        for id in 0..5 {
            assert!(tx.try_push(ledger.item(id)).is_ok());
        }
        drop(rx.try_pop().unwrap()); // one out, then one more in: the ring wraps
        assert!(tx.try_push(ledger.item(5)).is_ok());
        assert_eq!(ledger.dropped(), 1);
        if producer_first {
            drop(tx);
            assert_eq!(ledger.dropped(), 1, "dropping one half must not drop items");
            drop(rx);
        } else {
            drop(rx);
            assert_eq!(ledger.dropped(), 1, "dropping one half must not drop items");
            drop(tx);
        }
        assert_eq!(ledger.dropped(), 6);
        ledger.assert_all_dropped_once();
    }
}

fn refused_items_are_handed_back_not_dropped<R: Flavour>() {
    let ledger = Arc::new(Ledger::default());
    let (mut tx, rx) = ring::<Tracked, R>(1);
    tx.try_push(ledger.item(0)).ok().unwrap();
    let back = tx.try_push(ledger.item(1)).unwrap_err();
    assert!(back.is_full());
    assert_eq!(ledger.dropped(), 0);
    assert_eq!(back.into_inner().id, 1); // dropped here, by us
    assert_eq!(ledger.dropped(), 1);
    drop(rx);
    let back = tx.try_push(ledger.item(2)).unwrap_err();
    assert!(back.is_disconnected());
    assert_eq!(back.into_inner().id, 2);
    let back = tx.push(ledger.item(3)).unwrap_err();
    assert_eq!(back.into_inner().id, 3);
    let mut rest = vec![ledger.item(4), ledger.item(5)].into_iter();
    assert_eq!(tx.push_iter(rest.by_ref()), 0);
    assert_eq!(
        rest.len(),
        2,
        "push_iter must not pull items it cannot place"
    );
    drop(rest);
    drop(tx);
    ledger.assert_all_dropped_once();
    assert_eq!(ledger.dropped(), 6);
}

fn threads_drop_every_item_exactly_once_after_disconnects<R: Flavour>() {
    let n = (stress_items() / 20).max(if cfg!(miri) { 100 } else { 1_000 });
    for consumer_quits_early in [false, true] {
        let ledger = Arc::new(Ledger::default());
        let (mut tx, mut rx) = ring::<Tracked, R>(64);
        let l = ledger.clone();
        let producer = thread::spawn(move || {
            let mut refused = 0u64;
            for id in 0..n {
                if let Err(e) = tx.push(l.item(id)) {
                    assert_eq!(e.into_inner().id, id);
                    refused += 1;
                }
            }
            refused
        });
        let mut got = 0u64;
        let limit = if consumer_quits_early {
            n / 2
        } else {
            u64::MAX
        };
        while got < limit {
            match rx.pop() {
                Ok(item) => {
                    assert_eq!(item.id, got);
                    got += 1;
                }
                Err(PopError) => break,
            }
        }
        let left_in_ring = rx.len() as u64;
        drop(rx); // with the items still in it, if it quit early
        let refused = producer.join().unwrap();
        if consumer_quits_early {
            assert_eq!(got, n / 2);
            assert!(got + left_in_ring + refused <= n);
        } else {
            assert_eq!((got, refused), (n, 0));
        }
        ledger.assert_all_dropped_once();
        assert_eq!(ledger.dropped() as u64, n);
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting: CPU cost, batched wake-ups
// ---------------------------------------------------------------------------------------------

/// CPU time consumed so far by the calling thread.
#[cfg(not(miri))]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is always supported
    // on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A producer blocked on a full ring for ~200 ms must sleep, not spin: its CPU time must be a
/// small fraction of the wall time it waited. (A resource bound, not a speed claim.)
fn blocked_producer_burns_almost_no_cpu<R: Flavour>() {
    #[cfg(not(miri))]
    for strategy in [WaitStrategy::default(), WaitStrategy::Park] {
        let (mut tx, mut rx) = Builder::new(4)
            .wait_strategy(strategy)
            .build_flavour::<u32, R>()
            .unwrap();
        assert_eq!(tx.push_iter(0..4), 4);
        let producer = thread::spawn(move || {
            let cpu0 = thread_cpu_time();
            let wall0 = Instant::now();
            tx.push(4).unwrap(); // blocks until the consumer pops
            (thread_cpu_time() - cpu0, wall0.elapsed(), tx.metrics())
        });
        thread::sleep(Duration::from_millis(200));
        assert_eq!(rx.pop(), Ok(0));
        let (cpu, wall, m) = producer.join().unwrap();
        eprintln!(
            "{strategy:?}: blocked {wall:?}, CPU {cpu:?}, parks {}",
            m.producer_parks
        );
        assert!(
            wall >= Duration::from_millis(150),
            "the push did not block: {wall:?}"
        );
        assert!(m.producer_parks >= 1, "the producer never parked");
        assert!(
            cpu.as_secs_f64() < 0.10 * wall.as_secs_f64(),
            "a parked producer burnt {cpu:?} of CPU in {wall:?}"
        );
    }
}

/// The same for a consumer waiting on an empty ring.
fn blocked_consumer_burns_almost_no_cpu<R: Flavour>() {
    #[cfg(not(miri))]
    {
        let (mut tx, mut rx) = ring::<u32, R>(4);
        let consumer = thread::spawn(move || {
            let cpu0 = thread_cpu_time();
            let wall0 = Instant::now();
            let v = rx.pop();
            (v, thread_cpu_time() - cpu0, wall0.elapsed())
        });
        thread::sleep(Duration::from_millis(200));
        tx.try_push(9).unwrap();
        let (v, cpu, wall) = consumer.join().unwrap();
        assert_eq!(v, Ok(9));
        eprintln!("consumer blocked {wall:?}, CPU {cpu:?}");
        assert!(wall >= Duration::from_millis(150));
        assert!(cpu.as_secs_f64() < 0.10 * wall.as_secs_f64());
    }
}

/// Runs a producer with `WaitStrategy::Park` against a consumer that pauses `pause` per
/// item (`sleep`: yield the core while pausing, else spin), and returns the consumer's metrics.
fn slow_consumer_run<R: Flavour>(
    items: u32,
    capacity: usize,
    threshold: Option<usize>,
    sleep: bool,
) -> weir::RingMetrics {
    let mut b = Builder::new(capacity).producer_wait(WaitStrategy::Park);
    if let Some(t) = threshold {
        b = b.producer_wake_threshold(t);
    }
    let (mut tx, mut rx) = b.build_flavour::<u32, R>().unwrap();
    let producer = thread::spawn(move || {
        for i in 0..items {
            tx.push(i).unwrap();
        }
    });
    let mut next = 0;
    while let Ok(v) = rx.pop() {
        assert_eq!(v, next);
        next += 1;
        // Slow: some work per item, so the producer fills the ring and parks.
        if sleep {
            thread::sleep(Duration::from_micros(20));
        } else {
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(20) {
                std::hint::spin_loop();
            }
        }
    }
    producer.join().unwrap();
    assert_eq!(next, items);
    let m = rx.metrics();
    eprintln!(
        "slow consumer (cap {capacity}, threshold {threshold:?}, sleep {sleep}): popped {}, \
         producer parks {}, wake-ups sent to it {}",
        m.popped, m.producer_parks, m.producer_wakeups
    );
    assert!(
        m.producer_parks > 0,
        "the producer never parked: the test proves nothing"
    );
    m
}

/// A slow consumer must not cost one wake-up per item: a parked producer is woken only once a
/// half of the ring (the default threshold) is free, so it refills in bursts.
fn slow_consumer_does_not_cost_a_wake_per_item<R: Flavour>() {
    let items = if cfg!(miri) { 100 } else { 3_000 };
    let m = slow_consumer_run::<R>(items, 64, None, true);
    // The ideal is popped / 32 (the default threshold on 64 slots); allow 4x that.
    assert!(
        m.producer_wakeups * 8 <= m.popped,
        "{} wake-ups for {} items",
        m.producer_wakeups,
        m.popped
    );
}

// At most one wake-up per registration of a parked producer: a unit test in src/spsc.rs
// (`slow_consumer_sends_at_most_one_wake_per_registration`), which can count registrations.

/// The threshold is configurable: with a threshold equal to the capacity the producer is woken
/// only when the ring is empty.
fn producer_wake_threshold_is_configurable<R: Flavour>() {
    let items = if cfg!(miri) { 100 } else { 2_000 };
    let m = slow_consumer_run::<R>(items, 16, Some(16), true);
    assert!(m.producer_wakeups * 8 <= m.popped);
}

// ---------------------------------------------------------------------------------------------
// Disconnect, timeouts
// ---------------------------------------------------------------------------------------------

fn pause() {
    thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 30 }));
}

fn consumer_drains_then_sees_disconnect<R: Flavour>() {
    let (mut tx, mut rx) = ring::<u32, R>(4);
    tx.push_slice(&[1, 2, 3]);
    assert!(!rx.is_disconnected());
    drop(tx);
    assert!(rx.is_disconnected());
    let mut out = Vec::new();
    assert_eq!(rx.peek(), Some(&1));
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(rx.pop_batch(&mut out, 10), Ok(2));
    assert_eq!(out, [2, 3]);
    assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
    assert_eq!(rx.pop(), Err(PopError));
    assert_eq!(
        rx.pop_timeout(Duration::from_secs(10)),
        Err(PopTimeoutError::Disconnected)
    );
    assert_eq!(
        rx.try_pop_batch(&mut out, 4),
        Err(TryPopError::Disconnected)
    );
    assert_eq!(rx.pop_batch(&mut out, 4), Err(PopError));
    if let Some(r) = R::read_chunk_len(&mut rx, 4) {
        assert_eq!(r, Err(TryPopError::Disconnected));
    }
    assert_eq!(rx.peek(), None);
}

fn parked_consumer_wakes_on_disconnect_in_every_form<R: Flavour>() {
    for strategy in [WaitStrategy::default(), WaitStrategy::Park] {
        for form in 0..4 {
            let (tx, mut rx) = Builder::new(2)
                .wait_strategy(strategy)
                .build_flavour::<u32, R>()
                .unwrap();
            let t = thread::spawn(move || {
                let mut out = Vec::new();
                match form {
                    0 => rx.pop().is_err(),
                    1 => rx.pop_batch(&mut out, 2).is_err(),
                    2 => {
                        rx.pop_timeout(Duration::from_secs(60))
                            == Err(PopTimeoutError::Disconnected)
                    }
                    _ => {
                        rx.pop_batch_timeout(&mut out, 2, Duration::from_secs(60))
                            == Err(PopTimeoutError::Disconnected)
                    }
                }
            });
            pause();
            drop(tx);
            assert!(t.join().unwrap(), "form {form} under {strategy:?}");
        }
    }
}

fn parked_producer_wakes_on_disconnect_and_gets_its_item_back<R: Flavour>() {
    for strategy in [WaitStrategy::default(), WaitStrategy::Park] {
        for timed in [false, true] {
            let (mut tx, rx) = Builder::new(1)
                .wait_strategy(strategy)
                .build_flavour::<String, R>()
                .unwrap();
            tx.try_push("in".into()).unwrap();
            let t = thread::spawn(move || {
                if timed {
                    match tx.push_timeout("late".into(), Duration::from_secs(60)) {
                        Err(PushTimeoutError::Disconnected(s)) => s,
                        other => panic!("expected Disconnected, got {other:?}"),
                    }
                } else {
                    tx.push("late".into()).unwrap_err().into_inner()
                }
            });
            pause();
            drop(rx);
            assert_eq!(t.join().unwrap(), "late");
        }
    }
}

fn disconnected_producer_refuses_everything<R: Flavour>() {
    let (mut tx, rx) = ring::<u32, R>(4);
    drop(rx);
    assert!(tx.is_disconnected());
    assert!(matches!(tx.try_push(1), Err(TryPushError::Disconnected(1))));
    assert_eq!(tx.push(2).unwrap_err().into_inner(), 2);
    assert!(matches!(
        tx.push_timeout(3, Duration::from_millis(1)),
        Err(PushTimeoutError::Disconnected(3))
    ));
    assert_eq!(tx.push_slice(&[4, 5]), 0);
    assert_eq!(tx.push_iter([6, 7]), 0);
}

fn timeouts_hand_items_back<R: Flavour>() {
    let (mut tx, mut rx) = ring::<String, R>(2);
    tx.try_push("a".into()).unwrap();
    tx.try_push("b".into()).unwrap();
    let t0 = Instant::now();
    match tx.push_timeout("c".into(), Duration::from_millis(20)) {
        Err(PushTimeoutError::Timeout(s)) => assert_eq!(s, "c"),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(t0.elapsed() >= Duration::from_millis(20));
    // A deadline in the past: no wait at all, the item comes back.
    let past = Instant::now();
    let e = tx.push_deadline("d".into(), past).unwrap_err();
    assert!(e.is_timeout());
    assert_eq!(e.into_inner(), "d");
    assert_eq!(rx.pop_timeout(Duration::from_millis(5)).unwrap(), "a");
    assert_eq!(rx.pop_deadline(past).unwrap(), "b"); // ready items need no wait
    let t0 = Instant::now();
    assert_eq!(
        rx.pop_timeout(Duration::from_millis(20)),
        Err(PopTimeoutError::Timeout)
    );
    assert!(t0.elapsed() >= Duration::from_millis(20));
    let mut out = Vec::new();
    assert_eq!(
        rx.pop_batch_timeout(&mut out, 4, Duration::from_millis(5)),
        Err(PopTimeoutError::Timeout)
    );
    assert!(out.is_empty());
    // A huge timeout (overflowing Instant) is a plain blocking call, not a panic.
    tx.try_push("e".into()).unwrap();
    assert_eq!(rx.pop_timeout(Duration::MAX).unwrap(), "e");
    tx.push_timeout("f".into(), Duration::MAX).unwrap();
    assert_eq!(rx.try_pop().unwrap(), "f");
    let m = rx.metrics();
    assert!(m.push_full >= 2 && m.pop_empty >= 2, "{m:?}");
}

fn push_timeout_succeeds_when_room_appears<R: Flavour>() {
    let (mut tx, mut rx) = ring::<u32, R>(1);
    tx.try_push(1).unwrap();
    let t = thread::spawn(move || {
        pause();
        let v = rx.pop().unwrap();
        (v, rx) // keep the consumer alive until the producer is done
    });
    assert_eq!(tx.push_timeout(2, Duration::from_secs(60)), Ok(()));
    let (v, mut rx) = t.join().unwrap();
    assert_eq!((v, rx.try_pop()), (1, Ok(2)));
}

// ---------------------------------------------------------------------------------------------
// Capacity
// ---------------------------------------------------------------------------------------------

fn fill_with_try_push<R: Flavour>(tx: &mut Producer<usize, R>) -> usize {
    let mut n = 0;
    while tx.try_push(n).is_ok() {
        n += 1;
    }
    n
}

fn drain<R: Flavour>(rx: &mut Consumer<usize, R>) -> usize {
    let mut n = 0;
    while rx.try_pop().is_ok() {
        n += 1;
    }
    n
}

fn capacity_is_exact_for_awkward_sizes<R: Flavour>() {
    let sizes: &[usize] = if cfg!(miri) {
        &[1, 2, 3, 5, 7, 9, 33]
    } else {
        &[1, 2, 3, 5, 7, 9, 33, 100, 1000, 1023, 1025, 4097, 65_537]
    };
    for &cap in sizes {
        let (mut tx, mut rx) = ring::<usize, R>(cap);
        assert_eq!((tx.capacity(), rx.capacity()), (cap, cap));
        for round in 0..3 {
            // Offset the ring so that the exact bound is checked across the buffer's end too.
            for _ in 0..round {
                tx.try_push(0).unwrap();
                rx.try_pop().unwrap();
            }
            assert_eq!(fill_with_try_push(&mut tx), cap, "try_push, cap {cap}");
            assert!(tx.is_full() && rx.is_full());
            assert_eq!((tx.len(), rx.len(), tx.slots()), (cap, cap, 0));
            assert_eq!(drain(&mut rx), cap);
            assert!(tx.is_empty() && rx.is_empty());
            let items = vec![7usize; cap + 3];
            assert_eq!(tx.push_slice(&items), cap, "push_slice, cap {cap}");
            assert_eq!(tx.push_slice(&items), 0);
            assert_eq!(drain(&mut rx), cap);
            assert_eq!(tx.push_iter(0..usize::MAX), cap, "push_iter, cap {cap}");
            let mut out = Vec::new();
            assert_eq!(rx.try_pop_batch(&mut out, usize::MAX), Ok(cap));
            assert_eq!(out, (0..cap).collect::<Vec<_>>());
        }
    }
}

fn capacity_zero_is_an_error<R: Flavour>() {
    assert_eq!(
        Builder::new(0).build_flavour::<u8, R>().unwrap_err(),
        CapacityError::Zero
    );
    assert_eq!(
        Builder::new(0).build_flavour::<String, R>().unwrap_err(),
        CapacityError::Zero
    );
    assert_eq!(
        Builder::new(0).build_flavour::<(), R>().unwrap_err(),
        CapacityError::Zero
    );
}

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn channel_with_capacity_zero_panics() {
    let _ = spsc::channel::<u8>(0);
}

fn absurd_capacities_are_errors<R: Flavour>() {
    for cap in [usize::MAX, usize::MAX / 2 + 2, usize::MAX / 2 + 1] {
        assert_eq!(
            Builder::new(cap).build_flavour::<u8, R>().unwrap_err(),
            CapacityError::TooLarge { requested: cap }
        );
    }
    // 2^60 slots of 16 bytes overflow usize; 2^59 of them exceed isize::MAX bytes.
    for cap in [1usize << 60, (1 << 59) + 1, 1 << 59] {
        assert_eq!(
            Builder::new(cap).build_flavour::<u128, R>().unwrap_err(),
            CapacityError::TooLarge { requested: cap }
        );
    }
    // A zero-sized item needs no memory, but the slot count must still be a usize.
    assert_eq!(
        Builder::new(usize::MAX)
            .build_flavour::<(), R>()
            .unwrap_err(),
        CapacityError::TooLarge {
            requested: usize::MAX
        }
    );
}

/// A capacity whose buffer passes the size rules but cannot be allocated (2^55 slots of 8 or
/// 16 bytes: beyond any 48- or 57-bit address space) is an error, not an abort.
fn a_buffer_the_allocator_refuses_is_an_error<R: Flavour>() {
    let requested = 1usize << 55;
    match Builder::new(requested).build_flavour::<u64, R>() {
        Err(CapacityError::AllocationFailed {
            requested: r,
            bytes,
        }) => {
            assert_eq!(r, requested);
            assert!(bytes >= requested * 8, "{bytes}");
        }
        other => panic!("expected AllocationFailed, got {:?}", other.map(|_| ())),
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "miri stops at an allocation this large instead of failing it"
)]
#[should_panic(expected = "allocator refused")]
fn channel_the_allocator_refuses_panics_and_does_not_abort() {
    let _ = spsc::channel::<u64>(1 << 55);
}

#[test]
#[should_panic(expected = "too large")]
fn channel_with_absurd_capacity_panics() {
    let _ = spsc::channel::<u64>(usize::MAX);
}

fn handles_are_send_and_debug<R: Flavour>() {
    fn send<T: Send>() {}
    send::<Producer<String, R>>();
    send::<Consumer<String, R>>();
    let (tx, rx) = ring::<u8, R>(3);
    let s = format!("{tx:?} {rx:?}");
    assert!(s.contains("capacity: 3"), "{s}");
}

/// A read chunk lends `&T`s from `&self`: shareable between threads only for `T: Sync`, which
/// a `compile_fail` doctest on `ReadChunk` checks; sendable like the consumer, for `T: Send`.
#[test]
fn read_chunks_are_send_for_send_items_and_sync_for_sync_items() {
    fn send<X: Send>() {}
    fn sync<X: Sync>() {}
    send::<spsc::ReadChunk<'static, std::cell::Cell<u64>>>();
    send::<spsc::ReadChunk<'static, u64>>();
    sync::<spsc::ReadChunk<'static, u64>>();
    // And the chunk does cross threads for such items.
    let (mut tx, mut rx) = spsc::channel::<u64>(4);
    tx.push_slice(&[1, 2, 3]);
    let chunk = rx.read_chunk(4).unwrap();
    let sum = thread::scope(|s| {
        let h = s.spawn(|| chunk.as_slices().0.iter().sum::<u64>());
        chunk.as_slices().0.iter().sum::<u64>() + h.join().unwrap()
    });
    assert_eq!(sum, 12);
}
