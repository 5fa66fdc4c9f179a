//! Loom models of the SPSC ring on capacity 1 and 2: wrap-around of the buffer and of the
//! counters, batch pop and `push_slice`, disconnect while the other side is parked, no lost
//! wake-up (both directions), and exactly-once drops of items left in the ring.
//!
//! The models run on the default `Indexed` flavour; the `stamped_*` models run the ones where
//! the `Stamped` flavour differs (pops poll the slots' stamps instead of `tail`, a single push
//! polls a stamp instead of `head`) on that flavour, plus models of its own: a single pop
//! racing batch pops, single pushes running ahead of `head` before a batch push, and a
//! capacity below the slot count.
//!
//! **Loom's reduction and the stamps.** Loom 0.7 prunes interleavings by keeping, per atomic,
//! the last access that a store must be checked against (`rt/atomic.rs`,
//! `last_dependent_access`). In the `Stamped` flavour each side loads a stamp and then stores
//! to it, so its own load hides the other side's earlier load of that stamp, and a two-thread
//! `try_push`/`try_pop` model explores only an interleaving or two. The `Stamped` try-only
//! models therefore `yield_now` between calls, which makes loom switch threads there: the
//! model of single pushes ahead of `head` went from 1 interleaving to 19, and then caught the
//! bug it was written for (a wrapped room count, put back on purpose). Reading the stamps with
//! a read-modify-write under loom instead was tried and dropped: it made loom report
//! deadlocks in the parking models even for the earlier protocol, which had passed them.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test
//! loom_spsc -- --nocapture`. The preemption bound is 4 (bound 4 found a lost wake-up that bound 3 missed, see
//! docs/design.md) unless `LOOM_MAX_PREEMPTIONS` says
//! otherwise; `WEIR_LOOM_UNBOUNDED=1` explores without a bound (slow). Each model prints how many
//! executions loom explored.
//!
//! Waiting uses `WaitStrategy::Park` (sleep at once) or a one-spin, one-yield `SpinThenPark`
//! (under loom the crate clamps spins and yields to 1), so every model goes through
//! `Event::prepare`, the re-check and the condvar stand-in for the futex. A lost wake-up shows
//! up as a loom deadlock ("all threads blocked"), so the side that should wake the other keeps
//! its handle alive until the woken thread has been joined: a disconnect must not be the thing
//! that wakes it.

#![cfg(loom)]

mod loom_support;

use loom::thread;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use weir::spsc::{Builder, Indexed, Readiness, Stamped};
use weir::{PopError, TryPopError, WaitStrategy};

/// The preemption bound used unless the environment overrides it.
const DEFAULT_PREEMPTIONS: usize = 4;

/// Runs `f` under loom at [`DEFAULT_PREEMPTIONS`] (see `loom_support`).
fn model(name: impl std::fmt::Display, f: impl Fn() + Sync + Send + 'static) {
    loom_support::model_bounded(name, DEFAULT_PREEMPTIONS, f);
}

fn spin_then_park() -> WaitStrategy {
    WaitStrategy::SpinThenPark {
        spins: 1,
        yields: 1,
    }
}

/// Three items through two slots: slot 0 is reused. With the counters started at
/// `usize::MAX - 1` the sequence numbers are MAX-1, MAX, 0: the counters wrap too.
fn wrap_around<R: Readiness>(start: usize) {
    let (mut tx, mut rx) = Builder::new(2)
        .wait_strategy(WaitStrategy::Park)
        .start_sequence(start)
        .build_flavour::<usize, R>()
        .unwrap();
    let producer = thread::spawn(move || {
        for i in 0..3 {
            tx.push(i).unwrap();
        }
        tx
    });
    for i in 0..3 {
        assert_eq!(rx.pop(), Ok(i));
    }
    let tx = producer.join().unwrap();
    assert!(rx.is_empty());
    assert_eq!(tx.metrics().popped, 3);
}

#[test]
fn push_pop_across_buffer_wrap_around() {
    model("push_pop_across_buffer_wrap_around", || {
        wrap_around::<Indexed>(0)
    });
}

#[test]
fn push_pop_across_counter_wrap_around() {
    model("push_pop_across_counter_wrap_around", || {
        wrap_around::<Indexed>(usize::MAX - 1)
    });
}

/// `Stamped`, blocking both sides across the counters' wrap-around: the parked consumer
/// re-checks stamps MAX-1+1 = MAX, MAX+1 = 0 and 0+1 = 1 (slot 0's stamp goes from its initial
/// MAX-1 to MAX, then to 1), the parked producer waits for the slot of MAX-1 to be freed.
#[test]
fn stamped_push_pop_across_counter_wrap_around() {
    model("stamped_push_pop_across_counter_wrap_around", || {
        wrap_around::<Stamped>(usize::MAX - 1)
    });
}

/// Non-blocking single pushes and pops racing across a wrap-around; whatever interleaving, the
/// consumer sees a prefix of 0, 1, 2 in order and the rest is still in the ring. With the
/// counters at `usize::MAX`, the sequence numbers are MAX, 0, 1: slot 1 is reused by 1 after
/// MAX (a `Stamped` slot's stamp goes from its initial MAX to 0, then must read 2 for item 1).
fn try_push_try_pop_race_on<R: Readiness>() {
    let (mut tx, mut rx) = Builder::new(2)
        .start_sequence(usize::MAX)
        .build_flavour::<usize, R>()
        .unwrap();
    tx.try_push(0).unwrap();
    let producer = thread::spawn(move || {
        let ok1 = tx.try_push(1).is_ok();
        thread::yield_now(); // see the module doc: loom's reduction and the stamps
        let ok2 = tx.try_push(2).is_ok();
        (tx, ok1, ok2)
    });
    let first = rx.try_pop();
    thread::yield_now();
    let second = rx.try_pop();
    let (mut tx, ok1, ok2) = producer.join().unwrap();
    assert!(ok1, "one slot was always free for item 1");
    assert_eq!(first, Ok(0));
    let mut seen = vec![0];
    if let Ok(v) = second {
        seen.push(v);
    }
    while let Ok(v) = rx.try_pop() {
        seen.push(v);
    }
    let expect: Vec<usize> = if ok2 { vec![0, 1, 2] } else { vec![0, 1] };
    assert_eq!(seen, expect);
    assert!(tx.try_push(9).is_ok());
}

#[test]
fn try_push_try_pop_race() {
    model("try_push_try_pop_race", try_push_try_pop_race_on::<Indexed>);
}

#[test]
fn stamped_try_push_try_pop_race() {
    model(
        "stamped_try_push_try_pop_race",
        try_push_try_pop_race_on::<Stamped>,
    );
}

/// `push_slice` of two then one, against a consumer taking batches of up to two.
fn batch_pop_and_push_slice_on<R: Readiness>() {
    let (mut tx, mut rx) = Builder::new(2)
        .wait_strategy(WaitStrategy::Park)
        .build_flavour::<usize, R>()
        .unwrap();
    let producer = thread::spawn(move || {
        assert_eq!(tx.push_slice(&[0, 1]), 2); // the ring is empty: both fit
        if tx.push_slice(&[2]) == 0 {
            tx.push(2).unwrap();
        }
        tx
    });
    let mut out = Vec::new();
    while out.len() < 3 {
        let n = rx.pop_batch(&mut out, 2).unwrap();
        assert!((1..=2).contains(&n));
    }
    assert_eq!(out, [0, 1, 2]);
    drop(producer.join().unwrap());
    assert_eq!(
        rx.try_pop_batch(&mut out, 2),
        Err(weir::TryPopError::Disconnected)
    );
}

#[test]
fn batch_pop_and_push_slice() {
    model(
        "batch_pop_and_push_slice",
        batch_pop_and_push_slice_on::<Indexed>,
    );
}

/// `Stamped`: the batches count their items by the stamps, and free each slot by its stamp
/// before `head`; a batch waiting for its first item polls the front slot's stamp
/// (`wait_ready` re-checks for one item). Counting by `tail` instead (which the producer
/// stores before the stamps) deadlocks here: a late "holds item" stamp overwrites the free mark.
#[test]
fn stamped_batch_pop_and_push_slice() {
    model(
        "stamped_batch_pop_and_push_slice",
        batch_pop_and_push_slice_on::<Stamped>,
    );
}

/// `push_iter` publishing a batch against `try_pop_batch`: all or a prefix, in order.
#[test]
fn push_iter_against_try_pop_batch() {
    model("push_iter_against_try_pop_batch", || {
        let (mut tx, mut rx) = Builder::new(2).build::<usize>().unwrap();
        let producer = thread::spawn(move || {
            assert_eq!(tx.push_iter(0..5), 2);
        });
        let mut out = Vec::new();
        let got = rx.try_pop_batch(&mut out, 2).unwrap_or(0);
        producer.join().unwrap();
        assert!(
            got == 0 || got == 2,
            "a batch is published at once: got {got}"
        );
        while rx.try_pop_batch(&mut out, 2).is_ok() {}
        assert_eq!(out, [0, 1]);
    });
}

/// `Stamped`, capacity 1 across the counters' wrap-around: the one slot is reused by every
/// item (sequences MAX-1, MAX, 0), so each single pop must tell this lap's stamp from the last
/// lap's. Whatever the interleaving, the consumer sees the accepted items in order, each once.
#[test]
fn stamped_capacity_one_try_race() {
    model("stamped_capacity_one_try_race", || {
        let (mut tx, mut rx) = Builder::new(1)
            .start_sequence(usize::MAX - 1)
            .build_stamped::<usize>()
            .unwrap();
        let producer = thread::spawn(move || {
            let mut accepted = Vec::new();
            for i in 0..3 {
                if tx.try_push(i).is_ok() {
                    accepted.push(i);
                }
                thread::yield_now(); // see the module doc: loom's reduction and the stamps
            }
            (tx, accepted)
        });
        let mut seen = Vec::new();
        for _ in 0..2 {
            if let Ok(v) = rx.try_pop() {
                seen.push(v);
            }
            thread::yield_now();
        }
        let (tx, accepted) = producer.join().unwrap();
        assert!(!accepted.is_empty() && accepted[0] == 0, "{accepted:?}");
        while let Ok(v) = rx.try_pop() {
            seen.push(v);
        }
        assert_eq!(seen, accepted);
        let m = rx.metrics();
        assert_eq!((m.pushed, m.popped), (seen.len() as u64, seen.len() as u64));
        drop(tx);
    });
}

/// `Stamped` room: a single push learns of a free slot from its stamp, which the consumer
/// marks before it publishes `head`, so single pushes may run one release ahead of `head`;
/// the batch push that follows must then see no room by `head` rather than a wrapped
/// difference, and the batch pops count items by their stamps (never by `tail`, which the
/// producer stores before marking). Capacity 1 across the counters' wrap-around: every item
/// reuses the one slot. Whatever the interleaving, the accepted items arrive in order, once.
#[test]
fn stamped_single_and_batch_room() {
    model("stamped_single_and_batch_room", || {
        let (mut tx, mut rx) = Builder::new(1)
            .start_sequence(usize::MAX - 1)
            .build_stamped::<usize>()
            .unwrap();
        let producer = thread::spawn(move || {
            let mut accepted = Vec::new();
            for i in 0..2 {
                if tx.try_push(i).is_ok() {
                    accepted.push(i);
                }
                thread::yield_now(); // see the module doc: loom's reduction and the stamps
            }
            let next = accepted.len();
            let n = tx.push_slice(&[next, next + 1]);
            accepted.extend(next..next + n);
            thread::yield_now();
            let next = accepted.len();
            if tx.try_push(next).is_ok() {
                accepted.push(next);
            }
            (tx, accepted)
        });
        let mut seen = Vec::new();
        if let Ok(v) = rx.try_pop() {
            seen.push(v);
        }
        thread::yield_now();
        let _ = rx.try_pop_batch(&mut seen, 2);
        let (tx, accepted) = producer.join().unwrap();
        while rx.try_pop_batch(&mut seen, 2).is_ok() {}
        assert_eq!(seen, accepted);
        assert!(rx.is_empty());
        drop(tx);
    });
}

/// `Stamped` with a capacity below the slot count (3 items, 4 slots): a push checks the stamp
/// of the slot the item `capacity` before it used, not the slot it writes, so the ring never
/// holds a fourth item, and the pops see the accepted items in order, once.
#[test]
fn stamped_capacity_below_slot_count() {
    model("stamped_capacity_below_slot_count", || {
        let (mut tx, mut rx) = Builder::new(3).build_stamped::<usize>().unwrap();
        let producer = thread::spawn(move || {
            let mut accepted = Vec::new();
            for i in 0..5 {
                if tx.try_push(i).is_ok() {
                    accepted.push(i);
                }
                thread::yield_now();
            }
            (tx, accepted)
        });
        let mut seen = Vec::new();
        if let Ok(v) = rx.try_pop() {
            seen.push(v);
        }
        let (tx, accepted) = producer.join().unwrap();
        // Without the pop above, the fourth and fifth pushes had no room.
        assert!(
            accepted.len() >= 3 && accepted.len() <= 3 + seen.len(),
            "{accepted:?}"
        );
        while let Ok(v) = rx.try_pop() {
            seen.push(v);
        }
        assert_eq!(seen, accepted);
        drop(tx);
    });
}

/// A consumer parked in `pop` is woken when the producer is dropped; with an item pushed just
/// before the drop it gets the item first.
fn disconnect_wakes_parked_consumer_on<R: Readiness>(strategy: WaitStrategy, push_first: bool) {
    let (mut tx, mut rx) = Builder::new(2)
        .wait_strategy(strategy)
        .build_flavour::<usize, R>()
        .unwrap();
    let consumer = thread::spawn(move || {
        let first = rx.pop();
        let second = rx.pop();
        (first, second)
    });
    if push_first {
        tx.try_push(7).unwrap();
    }
    drop(tx);
    let (first, second) = consumer.join().unwrap();
    if push_first {
        assert_eq!((first, second), (Ok(7), Err(PopError)));
    } else {
        assert_eq!((first, second), (Err(PopError), Err(PopError)));
    }
}

#[test]
fn disconnect_wakes_parked_consumer() {
    for strategy in [WaitStrategy::Park, spin_then_park()] {
        for push_first in [false, true] {
            let name =
                format!("disconnect_wakes_parked_consumer({strategy:?}, push_first {push_first})");
            model(name, move || {
                disconnect_wakes_parked_consumer_on::<Indexed>(strategy, push_first)
            });
        }
    }
}

/// `Stamped`: the parked consumer re-checks the slot's stamp, and the item pushed before the
/// drop must be seen through it (or through `tail`, after the disconnect) before `PopError`.
#[test]
fn stamped_disconnect_wakes_parked_consumer() {
    for strategy in [WaitStrategy::Park, spin_then_park()] {
        for push_first in [false, true] {
            let name = format!(
                "stamped_disconnect_wakes_parked_consumer({strategy:?}, push_first {push_first})"
            );
            model(name, move || {
                disconnect_wakes_parked_consumer_on::<Stamped>(strategy, push_first)
            });
        }
    }
}

/// A producer parked on a full ring is woken when the consumer is dropped, and gets its item
/// back.
#[test]
fn disconnect_wakes_parked_producer() {
    for strategy in [WaitStrategy::Park, spin_then_park()] {
        model(
            format!("disconnect_wakes_parked_producer({strategy:?})"),
            move || {
                let (mut tx, rx) = Builder::new(1)
                    .wait_strategy(strategy)
                    .build::<usize>()
                    .unwrap();
                tx.try_push(1).unwrap();
                let producer = thread::spawn(move || tx.push(2).unwrap_err().into_inner());
                drop(rx);
                assert_eq!(producer.join().unwrap(), 2);
            },
        );
    }
}

/// No lost wake-up, consumer side: a consumer parked on an empty ring must be woken by a push.
/// The producer stays alive until the consumer returns, so only the wake-up can release it.
fn no_lost_wakeup_parked_consumer_on<R: Readiness>(strategy: WaitStrategy) {
    let (mut tx, mut rx) = Builder::new(2)
        .wait_strategy(strategy)
        .build_flavour::<usize, R>()
        .unwrap();
    let consumer = thread::spawn(move || rx.pop());
    tx.try_push(5).unwrap();
    assert_eq!(consumer.join().unwrap(), Ok(5));
    drop(tx);
}

#[test]
fn no_lost_wakeup_parked_consumer() {
    for strategy in [WaitStrategy::Park, spin_then_park()] {
        model(
            format!("no_lost_wakeup_parked_consumer({strategy:?})"),
            move || no_lost_wakeup_parked_consumer_on::<Indexed>(strategy),
        );
    }
}

/// `Stamped`: the parked consumer's re-check after `Event::prepare` reads the slot's stamp,
/// which the producer stores after `tail` and before its `has_waiters` check; the wake-up
/// protocol must still cover it.
#[test]
fn stamped_no_lost_wakeup_parked_consumer() {
    for strategy in [WaitStrategy::Park, spin_then_park()] {
        model(
            format!("stamped_no_lost_wakeup_parked_consumer({strategy:?})"),
            move || no_lost_wakeup_parked_consumer_on::<Stamped>(strategy),
        );
    }
}

/// The same with `pop_batch`.
fn no_lost_wakeup_parked_batch_consumer_on<R: Readiness>() {
    let (mut tx, mut rx) = Builder::new(2)
        .wait_strategy(WaitStrategy::Park)
        .build_flavour::<usize, R>()
        .unwrap();
    let consumer = thread::spawn(move || {
        let mut out = Vec::new();
        rx.pop_batch(&mut out, 2).map(|_| out)
    });
    assert_eq!(tx.push_slice(&[1, 2]), 2);
    let out = consumer.join().unwrap().unwrap();
    assert!(out == [1] || out == [1, 2], "{out:?}");
    drop(tx);
}

#[test]
fn no_lost_wakeup_parked_batch_consumer() {
    model(
        "no_lost_wakeup_parked_batch_consumer",
        no_lost_wakeup_parked_batch_consumer_on::<Indexed>,
    );
}

/// `Stamped`: the parked batch consumer re-checks the front slot's stamp; `push_slice` stores
/// `tail`, then both stamps, then checks for waiters.
#[test]
fn stamped_no_lost_wakeup_parked_batch_consumer() {
    model(
        "stamped_no_lost_wakeup_parked_batch_consumer",
        no_lost_wakeup_parked_batch_consumer_on::<Stamped>,
    );
}

/// No lost wake-up, producer side: a producer parked on a full ring of capacity 2, with a wake
/// threshold of `threshold` (1 is also the default, half the capacity), must be woken by that
/// many pops. The consumer stays alive until the producer returns.
///
/// With a threshold of 2 the producer re-checks on a timer: its first sleep times out (the loom
/// sleeper's one modelled timeout) and it keeps its registration (`Event::renew`, no new
/// barrier), re-checks and sleeps again, and the two pops must still wake it, whether they come
/// before, during or after the timeout and the renewal.
fn no_lost_wakeup_parked_producer_on<R: Readiness>(strategy: WaitStrategy, threshold: usize) {
    let (mut tx, mut rx) = Builder::new(2)
        .wait_strategy(strategy)
        .producer_wake_threshold(threshold)
        .build_flavour::<usize, R>()
        .unwrap();
    assert_eq!(tx.push_slice(&[0, 1]), 2);
    let producer = thread::spawn(move || {
        tx.push(2).unwrap();
        tx
    });
    for i in 0..threshold {
        assert_eq!(rx.pop(), Ok(i));
    }
    let tx = producer.join().unwrap();
    for i in threshold..3 {
        assert_eq!(rx.try_pop(), Ok(i));
    }
    drop(tx);
}

#[test]
fn no_lost_wakeup_parked_producer() {
    for strategy in [WaitStrategy::Park, spin_then_park()] {
        model(
            format!("no_lost_wakeup_parked_producer({strategy:?})"),
            move || no_lost_wakeup_parked_producer_on::<Indexed>(strategy, 1),
        );
    }
}

/// `Stamped`: the pop that frees the slot learnt of its item from the stamp; the woken
/// producer's item 2 then lands in slot 0 over item 0's stamp.
#[test]
fn stamped_no_lost_wakeup_parked_producer() {
    for strategy in [WaitStrategy::Park, spin_then_park()] {
        model(
            format!("stamped_no_lost_wakeup_parked_producer({strategy:?})"),
            move || no_lost_wakeup_parked_producer_on::<Stamped>(strategy, 1),
        );
    }
}

#[test]
fn no_lost_wakeup_after_a_timed_out_sleep() {
    model("no_lost_wakeup_after_a_timed_out_sleep", || {
        no_lost_wakeup_parked_producer_on::<Indexed>(WaitStrategy::Park, 2)
    });
}

#[test]
fn stamped_no_lost_wakeup_after_a_timed_out_sleep() {
    model("stamped_no_lost_wakeup_after_a_timed_out_sleep", || {
        no_lost_wakeup_parked_producer_on::<Stamped>(WaitStrategy::Park, 2)
    });
}

/// The producer wakes the consumer after a batch pop frees both slots at once.
#[test]
fn no_lost_wakeup_parked_producer_batch_release() {
    model("no_lost_wakeup_parked_producer_batch_release", || {
        let (mut tx, mut rx) = Builder::new(2)
            .wait_strategy(WaitStrategy::Park)
            .build::<usize>()
            .unwrap();
        assert_eq!(tx.push_slice(&[0, 1]), 2);
        let producer = thread::spawn(move || {
            tx.push(2).unwrap();
            tx
        });
        let mut out = Vec::new();
        assert_eq!(rx.try_pop_batch(&mut out, 2), Ok(2));
        let tx = producer.join().unwrap();
        assert_eq!(rx.try_pop(), Ok(2));
        drop(tx);
    });
}

/// Items still in the ring when both halves go, dropped concurrently: each exactly once.
fn items_left_are_dropped_once_on<R: Readiness>() {
    let drops = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let (mut tx, mut rx) = Builder::new(2).build_flavour::<Counted, R>().unwrap();
    let d = drops.clone();
    let producer = thread::spawn(move || {
        let mut refused = 0;
        for _ in 0..3 {
            if tx.try_push(Counted(d.clone())).is_err() {
                refused += 1; // dropped right here, with the error
            }
        }
        refused
    });
    let popped = rx.try_pop().is_ok() as usize;
    drop(rx);
    let refused = producer.join().unwrap();
    assert!(refused <= 3 && popped <= 1);
    assert_eq!(
        drops.load(Ordering::Relaxed),
        3,
        "each item dropped exactly once"
    );
}

#[test]
fn items_left_are_dropped_once() {
    model(
        "items_left_are_dropped_once",
        items_left_are_dropped_once_on::<Indexed>,
    );
}

#[test]
fn stamped_items_left_are_dropped_once() {
    model(
        "stamped_items_left_are_dropped_once",
        items_left_are_dropped_once_on::<Stamped>,
    );
}

/// `Stamped`: a single pop (which learns of one item from the slot's stamp) racing batch pops
/// (which count the stamps) while the producer publishes one item, then a batch of two whose
/// stamps are written one by one after `tail`. Whatever the interleaving: items come out in order,
/// exactly once, and the consumer's own view of the counters never shows more popped than
/// pushed (the producer stores `tail` before the stamps for that reason), nor more in the ring
/// than the capacity.
#[test]
fn stamped_single_pop_races_batch_pop() {
    model("stamped_single_pop_races_batch_pop", || {
        let (mut tx, mut rx) = Builder::new(3)
            .start_sequence(usize::MAX - 1)
            .build_flavour::<usize, Stamped>()
            .unwrap();
        let producer = thread::spawn(move || {
            tx.try_push(0).unwrap();
            assert_eq!(tx.push_slice(&[1, 2]), 2, "three slots, three items");
            tx
        });
        let mut seen = Vec::new();
        let check = |rx: &weir::spsc::Consumer<usize, Stamped>, seen: &Vec<usize>| {
            let m = rx.metrics();
            assert_eq!(m.popped, seen.len() as u64);
            assert!(m.pushed >= m.popped, "popped ahead of pushed: {m:?}");
            assert!(m.pushed - m.popped <= 3, "{m:?}");
        };
        // A single pop (stamp), a batch (tail), a single pop again (stamp).
        if let Ok(v) = rx.try_pop() {
            seen.push(v);
        }
        check(&rx, &seen);
        let mut out = Vec::new();
        match rx.try_pop_batch(&mut out, 3) {
            Ok(n) => assert_eq!(n, out.len()),
            Err(e) => assert_eq!(e, TryPopError::Empty),
        }
        seen.append(&mut out);
        check(&rx, &seen);
        if let Ok(v) = rx.try_pop() {
            seen.push(v);
        }
        check(&rx, &seen);
        let tx = producer.join().unwrap();
        while let Ok(v) = rx.try_pop() {
            seen.push(v);
        }
        assert_eq!(seen, [0, 1, 2]);
        drop(tx);
        assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
    });
}

/// `Stamped`: a consumer parked in `pop_batch` (its wake-up check is on the front slot's
/// stamp, its count of ready items from `tail`) is woken by single pushes and takes them in
/// order; the metrics and `len` count them. (It also caught a missing walk over the stamps in
/// an experiment that published `tail` only once per 16 single pushes, docs/benchmarks.md,
/// thirteenth session.)
#[test]
fn stamped_parked_batch_consumer_takes_single_pushes() {
    model("stamped_parked_batch_consumer_takes_single_pushes", || {
        let (mut tx, mut rx) = Builder::new(4)
            .wait_strategy(WaitStrategy::Park)
            .build_flavour::<usize, Stamped>()
            .unwrap();
        let consumer = thread::spawn(move || {
            let mut out = Vec::new();
            rx.pop_batch(&mut out, 4).unwrap();
            (rx, out)
        });
        tx.try_push(1).unwrap();
        tx.try_push(2).unwrap();
        let (mut rx, mut out) = consumer.join().unwrap();
        assert!(out == [1] || out == [1, 2], "{out:?}");
        assert_eq!(rx.len(), 2 - out.len());
        let m = rx.metrics();
        assert_eq!((m.pushed, m.popped), (2, out.len() as u64), "{m:?}");
        let mut rest = Vec::new();
        let _ = rx.try_pop_batch(&mut rest, 4);
        out.append(&mut rest);
        assert_eq!(out, [1, 2]);
        assert_eq!(tx.len(), 0);
        drop(tx);
    });
}
