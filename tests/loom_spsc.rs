//! Loom models of the SPSC ring on capacity 1 and 2: wrap-around of the buffer and of the
//! counters, batch pop and `push_slice`, disconnect while the other side is parked, no lost
//! wake-up (both directions), and exactly-once drops of items left in the ring.
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
use weir::spsc::Builder;
use weir::{PopError, WaitStrategy};

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
fn wrap_around(start: usize) {
    let (mut tx, mut rx) = Builder::new(2)
        .wait_strategy(WaitStrategy::Park)
        .start_sequence(start)
        .build::<usize>()
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
    model("push_pop_across_buffer_wrap_around", || wrap_around(0));
}

#[test]
fn push_pop_across_counter_wrap_around() {
    model("push_pop_across_counter_wrap_around", || {
        wrap_around(usize::MAX - 1)
    });
}

/// Non-blocking single pushes and pops racing across a wrap-around; whatever interleaving, the
/// consumer sees a prefix of 0, 1, 2 in order and the rest is still in the ring.
#[test]
fn try_push_try_pop_race() {
    model("try_push_try_pop_race", || {
        let (mut tx, mut rx) = Builder::new(2)
            .start_sequence(usize::MAX)
            .build::<usize>()
            .unwrap();
        tx.try_push(0).unwrap();
        let producer = thread::spawn(move || {
            let ok1 = tx.try_push(1).is_ok();
            let ok2 = tx.try_push(2).is_ok();
            (tx, ok1, ok2)
        });
        let first = rx.try_pop();
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
    });
}

/// `push_slice` of two then one, against a consumer taking batches of up to two.
#[test]
fn batch_pop_and_push_slice() {
    model("batch_pop_and_push_slice", || {
        let (mut tx, mut rx) = Builder::new(2)
            .wait_strategy(WaitStrategy::Park)
            .build::<usize>()
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
    });
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

/// A consumer parked in `pop` is woken when the producer is dropped; with an item pushed just
/// before the drop it gets the item first.
#[test]
fn disconnect_wakes_parked_consumer() {
    for strategy in [WaitStrategy::Park, spin_then_park()] {
        for push_first in [false, true] {
            let name =
                format!("disconnect_wakes_parked_consumer({strategy:?}, push_first {push_first})");
            model(name, move || {
                let (mut tx, mut rx) = Builder::new(2)
                    .wait_strategy(strategy)
                    .build::<usize>()
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
#[test]
fn no_lost_wakeup_parked_consumer() {
    for strategy in [WaitStrategy::Park, spin_then_park()] {
        model(
            format!("no_lost_wakeup_parked_consumer({strategy:?})"),
            move || {
                let (mut tx, mut rx) = Builder::new(2)
                    .wait_strategy(strategy)
                    .build::<usize>()
                    .unwrap();
                let consumer = thread::spawn(move || rx.pop());
                tx.try_push(5).unwrap();
                assert_eq!(consumer.join().unwrap(), Ok(5));
                drop(tx);
            },
        );
    }
}

/// The same with `pop_batch`.
#[test]
fn no_lost_wakeup_parked_batch_consumer() {
    model("no_lost_wakeup_parked_batch_consumer", || {
        let (mut tx, mut rx) = Builder::new(2)
            .wait_strategy(WaitStrategy::Park)
            .build::<usize>()
            .unwrap();
        let consumer = thread::spawn(move || {
            let mut out = Vec::new();
            rx.pop_batch(&mut out, 2).map(|_| out)
        });
        assert_eq!(tx.push_slice(&[1, 2]), 2);
        let out = consumer.join().unwrap().unwrap();
        assert!(out == [1] || out == [1, 2], "{out:?}");
        drop(tx);
    });
}

/// No lost wake-up, producer side: a producer parked on a full ring of capacity 2 (wake
/// threshold 2 / 4 clamped to 1) must be woken by one pop. The consumer stays alive until the
/// producer returns.
#[test]
fn no_lost_wakeup_parked_producer() {
    for strategy in [WaitStrategy::Park, spin_then_park()] {
        model(
            format!("no_lost_wakeup_parked_producer({strategy:?})"),
            move || {
                let (mut tx, mut rx) = Builder::new(2)
                    .wait_strategy(strategy)
                    .build::<usize>()
                    .unwrap();
                assert_eq!(tx.push_slice(&[0, 1]), 2);
                let producer = thread::spawn(move || {
                    tx.push(2).unwrap();
                    tx
                });
                assert_eq!(rx.pop(), Ok(0));
                let tx = producer.join().unwrap();
                assert_eq!(rx.try_pop(), Ok(1));
                assert_eq!(rx.try_pop(), Ok(2));
                drop(tx);
            },
        );
    }
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
#[test]
fn items_left_are_dropped_once() {
    model("items_left_are_dropped_once", || {
        let drops = Arc::new(AtomicUsize::new(0));
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let (mut tx, mut rx) = Builder::new(2).build::<Counted>().unwrap();
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
    });
}
