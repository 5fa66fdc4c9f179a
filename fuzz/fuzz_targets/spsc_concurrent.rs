#![no_main]
//! Concurrent fuzzing of the SPSC ring: a producer thread and a consumer thread, each running a
//! list of operations taken from the input (blocking and non-blocking, single and batch,
//! timeouts, yields, dropping its half early), on a flavour (`Indexed` or `Stamped`, the first
//! byte's low bit), capacity and wait strategy from the input. `Stamped` has no `read_chunk`:
//! there, `ReadChunk` is that many single pops (each reading the slot's stamp).
//!
//! Checked: the consumer receives a prefix of the producer's sequence, in order, without gaps
//! or duplicates; every item refused to the producer is handed back (the same item); every item
//! is dropped exactly once (a shared drop ledger), none leaked, once both threads are done.

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use weir::spsc::{Builder, Consumer, Indexed, Readiness, Stamped};
use weir::{PopTimeoutError, PushTimeoutError, TryPopError, TryPushError, WaitStrategy};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ProducerOp {
    TryPush,
    Push,
    PushTimeout(u8),
    PushIter(u8),
    Yield,
    Quit,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ConsumerOp {
    TryPop,
    Pop,
    PopTimeout(u8),
    TryPopBatch(u8),
    PopBatch(u8),
    ReadChunk(u8, u8),
    Peek,
    Yield,
    Quit,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Strategy {
    Default,
    BusySpin,
    Yield,
    Park,
    Short,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// `Stamped` if true, else `Indexed` (first, so that it is the first byte's low bit).
    stamped: bool,
    capacity: u8,
    strategy: Strategy,
    threshold: Option<u8>,
    near_wrap: bool,
    producer: Vec<ProducerOp>,
    consumer: Vec<ConsumerOp>,
}

/// Every item made gets a unique serial; each drop records its serial, once.
struct Ledger {
    made: AtomicU64,
    dropped: Mutex<HashSet<u64>>,
}

struct Item {
    /// Position in the producer's sequence (a refused item's id is reused by the next one).
    id: u64,
    serial: u64,
    ledger: Arc<Ledger>,
}

impl Drop for Item {
    fn drop(&mut self) {
        let fresh = self.ledger.dropped.lock().unwrap().insert(self.serial);
        assert!(fresh, "item {} dropped twice", self.serial);
    }
}

fn timeout(t: u8) -> Duration {
    Duration::from_micros(u64::from(t % 50))
}

/// What `ConsumerOp::ReadChunk(max, commit)` does on each flavour: takes up to `commit % (len +
/// 1)` of the first `max` ready items, passing each to `check`.
trait Flavour: Readiness {
    fn read_chunk(rx: &mut Consumer<Item, Self>, max: u8, commit: u8, check: impl FnMut(&Item));
}

impl Flavour for Indexed {
    fn read_chunk(rx: &mut Consumer<Item, Self>, max: u8, commit: u8, check: impl FnMut(&Item)) {
        if let Ok(chunk) = rx.read_chunk(usize::from(max % 16)) {
            let (a, b) = chunk.as_slices();
            let n = usize::from(commit) % (chunk.len() + 1);
            a.iter().chain(b).take(n).for_each(check);
            chunk.commit(n);
        }
    }
}

impl Flavour for Stamped {
    fn read_chunk(
        rx: &mut Consumer<Item, Self>,
        max: u8,
        commit: u8,
        mut check: impl FnMut(&Item),
    ) {
        let n = usize::from(commit) % (usize::from(max % 16) + 1);
        for _ in 0..n {
            match rx.try_pop() {
                Ok(v) => check(&v),
                Err(_) => break,
            }
        }
    }
}

fuzz_target!(|input: Input| {
    if input.stamped {
        run::<Stamped>(&input);
    } else {
        run::<Indexed>(&input);
    }
});

fn run<R: Flavour>(input: &Input) {
    let capacity = usize::from(input.capacity % 8) + 1;
    let strategy = match input.strategy {
        Strategy::Default => WaitStrategy::default(),
        Strategy::BusySpin => WaitStrategy::BusySpin,
        Strategy::Yield => WaitStrategy::Yield,
        Strategy::Park => WaitStrategy::Park,
        Strategy::Short => WaitStrategy::SpinThenPark {
            spins: 4,
            yields: 1,
        },
    };
    let mut builder = Builder::new(capacity).wait_strategy(strategy);
    if let Some(t) = input.threshold {
        builder = builder.producer_wake_threshold(usize::from(t % 9));
    }
    if input.near_wrap {
        builder = builder.start_sequence(usize::MAX - 3);
    }
    let (mut tx, mut rx) = builder.build_flavour::<Item, R>().unwrap();
    let ledger = Arc::new(Ledger {
        made: AtomicU64::new(0),
        dropped: Mutex::new(HashSet::new()),
    });
    let producer_ops = input.producer.clone();
    let l = ledger.clone();
    // Bounded work: at most 64 ops per side, 16 items per batch.
    let producer = thread::spawn(move || {
        let mut next = 0u64;
        let make = |id: u64| Item {
            id,
            serial: l.made.fetch_add(1, Ordering::Relaxed),
            ledger: l.clone(),
        };
        for op in producer_ops.iter().take(64) {
            match *op {
                ProducerOp::TryPush => match tx.try_push(make(next)) {
                    Ok(()) => next += 1,
                    Err(TryPushError::Full(v)) | Err(TryPushError::Disconnected(v)) => {
                        assert_eq!(v.id, next, "not the refused item");
                    }
                    Err(_) => unreachable!(),
                },
                ProducerOp::Push => match tx.push(make(next)) {
                    Ok(()) => next += 1,
                    Err(e) => {
                        assert!(tx.is_disconnected());
                        assert_eq!(e.into_inner().id, next);
                    }
                },
                ProducerOp::PushTimeout(t) => match tx.push_timeout(make(next), timeout(t)) {
                    Ok(()) => next += 1,
                    Err(PushTimeoutError::Timeout(v)) | Err(PushTimeoutError::Disconnected(v)) => {
                        assert_eq!(v.id, next);
                    }
                    Err(_) => unreachable!(),
                },
                ProducerOp::PushIter(n) => {
                    let n = u64::from(n % 16);
                    next += tx.push_iter((next..next + n).map(make)) as u64;
                }
                ProducerOp::Yield => thread::yield_now(),
                ProducerOp::Quit => break,
            }
        }
        next // items placed in the ring, ids 0..next
    });

    let mut expect = 0u64;
    fn check(expect: &mut u64, id: u64) {
        assert_eq!(id, *expect, "out of order, lost or duplicated");
        *expect += 1;
    }
    let mut quit = false;
    let mut out = Vec::new();
    for op in input.consumer.iter().take(64) {
        match *op {
            ConsumerOp::TryPop => match rx.try_pop() {
                Ok(v) => check(&mut expect, v.id),
                Err(TryPopError::Empty) | Err(TryPopError::Disconnected) => {}
                Err(_) => unreachable!(),
            },
            // Blocking pops end when the producer has finished its list and dropped its half.
            ConsumerOp::Pop => match rx.pop() {
                Ok(v) => check(&mut expect, v.id),
                Err(_) => assert!(rx.is_disconnected() && rx.is_empty()),
            },
            ConsumerOp::PopTimeout(t) => match rx.pop_timeout(timeout(t)) {
                Ok(v) => check(&mut expect, v.id),
                Err(PopTimeoutError::Disconnected) => assert!(rx.is_empty()),
                Err(_) => {}
            },
            ConsumerOp::TryPopBatch(m) | ConsumerOp::PopBatch(m) => {
                let max = usize::from(m % 16);
                let r = if matches!(op, ConsumerOp::PopBatch(_)) {
                    rx.pop_batch(&mut out, max).ok()
                } else {
                    rx.try_pop_batch(&mut out, max).ok()
                };
                if let Some(n) = r {
                    assert!(n <= max);
                    assert_eq!(n, out.len());
                }
                for v in out.drain(..) {
                    check(&mut expect, v.id);
                }
            }
            ConsumerOp::ReadChunk(m, c) => {
                R::read_chunk(&mut rx, m, c, |v| check(&mut expect, v.id));
            }
            ConsumerOp::Peek => {
                if let Some(v) = rx.peek() {
                    assert_eq!(v.id, expect);
                }
            }
            ConsumerOp::Yield => thread::yield_now(),
            ConsumerOp::Quit => {
                quit = true;
                break;
            }
        }
    }
    if quit {
        drop(rx); // items left in the ring are dropped with it, now or when the producer goes
        let placed = producer.join().unwrap();
        assert!(placed >= expect);
    } else {
        // Drain until the producer is done and gone: what was placed arrives, in order.
        while let Ok(v) = rx.pop() {
            check(&mut expect, v.id);
        }
        let placed = producer.join().unwrap();
        assert_eq!(placed, expect, "placed items not received");
        drop(rx);
    }
    let made = ledger.made.load(Ordering::Relaxed);
    let dropped = ledger.dropped.lock().unwrap();
    assert_eq!(dropped.len() as u64, made, "an item was leaked");
    assert!(dropped.iter().all(|&s| s < made));
}
