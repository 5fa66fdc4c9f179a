//! Integration tests of the MPMC ring: many threads on a 2-core machine (oversubscribed on
//! purpose), exactly-once delivery checked with per-producer sequence numbers, drop counts that
//! must balance, load shedding, disconnects and batches.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;
use weir::mpmc::{self, Builder};
use weir::{PushTimeoutError, TryPopError, WaitStrategy};

/// An item that knows its producer and sequence number, and counts its drops.
#[derive(Debug)]
struct Tracked {
    producer: usize,
    seq: usize,
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

const PRODUCERS: usize = 4;
const CONSUMERS: usize = 4;
const PER_PRODUCER: usize = 25_000;

/// Checks that every (producer, seq) in `0..per` appears exactly once across `lists`, and
/// that within each list the items of a producer arrive in increasing order.
fn check_exactly_once(lists: &[Vec<(usize, usize)>], producers: usize, per: usize) {
    let mut seen = vec![vec![false; per]; producers];
    for list in lists {
        let mut last = vec![None::<usize>; producers];
        for &(p, s) in list {
            assert!(
                last[p].is_none_or(|l| l < s),
                "producer {p}: {s} after {last:?}"
            );
            last[p] = Some(s);
            assert!(!seen[p][s], "({p}, {s}) received twice");
            seen[p][s] = true;
        }
    }
    for (p, row) in seen.iter().enumerate() {
        let missing = row.iter().filter(|&&b| !b).count();
        assert_eq!(missing, 0, "producer {p} lost {missing} items");
    }
}

#[test]
fn four_producers_four_consumers_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpmc::channel::<Tracked>(64);
    let start = Arc::new(Barrier::new(PRODUCERS + CONSUMERS));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (tx, drops, start) = (tx.clone(), drops.clone(), start.clone());
            let created = created.clone();
            thread::spawn(move || {
                start.wait();
                let item = |seq| {
                    created.fetch_add(1, Ordering::Relaxed);
                    Tracked {
                        producer: p,
                        seq,
                        drops: drops.clone(),
                    }
                };
                let mut seq = 0;
                while seq < PER_PRODUCER {
                    match seq % 4 {
                        0 => {
                            tx.push(item(seq)).unwrap();
                            seq += 1;
                        }
                        1 => {
                            let mut v = item(seq);
                            loop {
                                match tx.push_timeout(v, Duration::from_micros(50)) {
                                    Ok(()) => break,
                                    Err(PushTimeoutError::Timeout(back)) => v = back,
                                    Err(e) => panic!("{e}"),
                                }
                            }
                            seq += 1;
                        }
                        2 => {
                            // A run of up to 5, pulled only as far as it fits.
                            let end = (seq + 5).min(PER_PRODUCER);
                            let mut run = (seq..end).map(item);
                            seq += tx.push_iter(run.by_ref());
                            // What did not fit was never pulled.
                            assert_eq!(run.next().map(|t| t.seq), (seq < end).then_some(seq));
                        }
                        _ => {
                            let mut v = item(seq);
                            loop {
                                match tx.try_push(v) {
                                    Ok(()) => break,
                                    Err(e) => v = e.into_inner(),
                                }
                                thread::yield_now();
                            }
                            seq += 1;
                        }
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|c| {
            let (rx, start) = (rx.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let mut got = Vec::new();
                let mut batch = Vec::new();
                let mut record = |t: Tracked| got.push((t.producer, t.seq));
                loop {
                    match c {
                        0 => match rx.pop() {
                            Ok(t) => record(t),
                            Err(_) => break,
                        },
                        1 => match rx.pop_batch(&mut batch, 16) {
                            Ok(n) => {
                                assert!((1..=16).contains(&n));
                                batch.drain(..).for_each(&mut record);
                            }
                            Err(_) => break,
                        },
                        2 => match rx.pop_timeout(Duration::from_micros(100)) {
                            Ok(t) => record(t),
                            Err(weir::PopTimeoutError::Timeout) => {}
                            Err(_) => break, // disconnected
                        },
                        _ => match rx.try_pop_batch(&mut batch, 7) {
                            Ok(n) => {
                                assert!((1..=7).contains(&n));
                                batch.drain(..).for_each(&mut record);
                            }
                            Err(TryPopError::Empty) => thread::yield_now(),
                            Err(_) => break, // disconnected
                        },
                    }
                }
                got
            })
        })
        .collect();
    let metrics_rx = rx.clone();
    drop(rx);
    for t in producers {
        t.join().unwrap();
    }
    let lists: Vec<_> = consumers.into_iter().map(|t| t.join().unwrap()).collect();
    check_exactly_once(&lists, PRODUCERS, PER_PRODUCER);
    let total = PRODUCERS * PER_PRODUCER;
    // Every item made was dropped exactly once (the `run.next()` probes make a few extra).
    assert_eq!(
        drops.load(Ordering::Relaxed),
        created.load(Ordering::Relaxed)
    );
    let m = metrics_rx.metrics();
    assert_eq!(
        (m.pushed, m.popped, m.depth),
        (total as u64, total as u64, 0)
    );
    assert_eq!(m.displaced, 0);
    // Every consumer took part (each loop runs until disconnect).
    println!("4P4C metrics: {m:?}");
}

/// The single-item fast paths (`try_push`/`try_pop`, where the claim prefetch sits), with the
/// prefetch on and off: 2P2C over a small ring (so the ring runs full and empty and both sides
/// retry), every item once, in order per producer, and the counts balance.
#[test]
fn single_item_claims_deliver_exactly_once_with_and_without_the_claim_prefetch() {
    const PER: usize = 20_000;
    for prefetch in [true, false] {
        let (tx, rx) = Builder::new(8)
            .claim_prefetch(prefetch)
            .build::<(usize, usize)>()
            .unwrap();
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for seq in 0..PER {
                        let mut v = (p, seq);
                        while let Err(e) = tx.try_push(v) {
                            v = e.into_inner();
                            thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let rx = rx.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match rx.try_pop() {
                            Ok(v) => got.push(v),
                            Err(TryPopError::Empty) => thread::yield_now(),
                            Err(_) => break got, // disconnected and drained
                        }
                    }
                })
            })
            .collect();
        for t in producers {
            t.join().unwrap();
        }
        let lists: Vec<_> = consumers.into_iter().map(|t| t.join().unwrap()).collect();
        check_exactly_once(&lists, 2, PER);
        let m = rx.metrics();
        assert_eq!(
            (m.pushed, m.popped, m.depth),
            (2 * PER as u64, 2 * PER as u64, 0)
        );
    }
}

#[test]
fn force_push_never_loses_or_duplicates() {
    let per = 20_000;
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpmc::channel::<Tracked>(5);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (tx, drops) = (tx.clone(), drops.clone());
            thread::spawn(move || {
                let mut displaced = Vec::new();
                for seq in 0..per {
                    let item = Tracked {
                        producer: p,
                        seq,
                        drops: drops.clone(),
                    };
                    if let Some(old) = tx.force_push(item).unwrap() {
                        displaced.push((old.producer, old.seq));
                    }
                }
                displaced
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..2)
        .map(|c| {
            let rx = rx.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                let mut batch = Vec::new();
                loop {
                    let r = if c == 0 {
                        rx.pop().map(|t| got.push((t.producer, t.seq)))
                    } else {
                        rx.pop_batch(&mut batch, 3).map(|_| {
                            got.extend(batch.drain(..).map(|t| (t.producer, t.seq)));
                        })
                    };
                    if r.is_err() {
                        break;
                    }
                }
                got
            })
        })
        .collect();
    let metrics_rx = rx.clone();
    drop(rx);
    let displaced: Vec<Vec<(usize, usize)>> =
        producers.into_iter().map(|t| t.join().unwrap()).collect();
    let received: Vec<Vec<(usize, usize)>> =
        consumers.into_iter().map(|t| t.join().unwrap()).collect();
    let n_displaced: usize = displaced.iter().map(Vec::len).sum();
    let mut all = HashSet::new();
    for &(p, s) in displaced.iter().flatten() {
        assert!(all.insert((p, s)), "({p}, {s}) displaced twice");
    }
    for &(p, s) in received.iter().flatten() {
        assert!(
            all.insert((p, s)),
            "({p}, {s}) both displaced and received, or twice"
        );
    }
    assert_eq!(all.len(), PRODUCERS * per, "items lost");
    check_exactly_once(&received_plus(&received, &displaced), PRODUCERS, per);
    let m = metrics_rx.metrics();
    assert_eq!(m.displaced, n_displaced as u64);
    assert_eq!(m.pushed, (PRODUCERS * per) as u64);
    assert_eq!(m.popped + m.displaced, m.pushed);
    assert_eq!(drops.load(Ordering::Relaxed), PRODUCERS * per);
    println!("force_push: {n_displaced} displaced of {}", PRODUCERS * per);
}

/// Received lists plus one list per producer of its displaced items (which a producer sees in
/// increasing order of the displaced items' own producers' sequences only per source producer,
/// so they are split by source).
fn received_plus(
    received: &[Vec<(usize, usize)>],
    displaced: &[Vec<(usize, usize)>],
) -> Vec<Vec<(usize, usize)>> {
    let mut lists = received.to_vec();
    for d in displaced {
        for src in 0..PRODUCERS {
            lists.push(d.iter().copied().filter(|&(p, _)| p == src).collect());
        }
    }
    lists
}

#[test]
fn shedding_counts_every_refusal() {
    let per = 20_000;
    let (tx, rx) = Builder::new(8)
        .consumer_wait(WaitStrategy::Yield)
        .build::<(usize, usize)>()
        .unwrap();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                let mut shed = 0;
                for seq in 0..per {
                    match tx.try_push_or_shed((p, seq)) {
                        Ok(()) => {}
                        Err(e) => {
                            assert!(e.is_full());
                            assert_eq!(e.into_inner(), (p, seq));
                            shed += 1;
                        }
                    }
                }
                shed
            })
        })
        .collect();
    drop(tx);
    let mut got = Vec::new();
    while let Ok(v) = rx.pop() {
        got.push(v);
    }
    let shed: u64 = producers.into_iter().map(|t| t.join().unwrap()).sum();
    let m = rx.metrics();
    assert_eq!(m.shed, shed);
    assert_eq!(got.len() as u64 + shed, (PRODUCERS * per) as u64);
    assert_eq!(m.pushed, got.len() as u64);
    let unique: HashSet<_> = got.iter().collect();
    assert_eq!(unique.len(), got.len());
}

#[test]
fn dropping_all_consumers_mid_stream_hands_items_back() {
    let drops = Arc::new(AtomicUsize::new(0));
    let per = 5_000;
    let (tx, rx) = mpmc::channel::<Tracked>(16);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (tx, drops) = (tx.clone(), drops.clone());
            thread::spawn(move || {
                let mut accepted = 0;
                let mut handed_back = 0;
                for seq in 0..per {
                    let item = Tracked {
                        producer: p,
                        seq,
                        drops: drops.clone(),
                    };
                    match tx.push(item) {
                        Ok(()) => accepted += 1,
                        Err(e) => {
                            let t = e.into_inner();
                            assert_eq!((t.producer, t.seq), (p, seq));
                            handed_back += 1;
                        }
                    }
                }
                (accepted, handed_back)
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || {
                let mut n = 0;
                for _ in 0..2_000 {
                    if rx.pop().is_err() {
                        break;
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    drop(rx);
    let received: usize = consumers.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(received, 4_000);
    let (accepted, back) = producers
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(accepted + back, PRODUCERS * per);
    assert!(back > 0);
    // Every item was dropped exactly once: received ones, handed-back ones, and those left in the
    // ring (dropped with it when the last producer went).
    assert_eq!(drops.load(Ordering::Relaxed), PRODUCERS * per);
}

#[test]
fn parked_consumers_all_wake_on_disconnect() {
    let (tx, rx) = Builder::new(4)
        .wait_strategy(WaitStrategy::Park)
        .build::<u32>()
        .unwrap();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || rx.pop())
        })
        .collect();
    thread::sleep(Duration::from_millis(50));
    tx.try_push(1).unwrap();
    drop(tx);
    let results: Vec<_> = waiters.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 3);
}

#[test]
fn one_wake_per_item_not_a_herd() {
    // Four consumers park; items arrive one at a time. Each item wakes one consumer, so the
    // wake-ups sent equal the items published while someone was parked, never 4 per item.
    let (tx, rx) = Builder::new(4)
        .wait_strategy(WaitStrategy::Park)
        .build::<u32>()
        .unwrap();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || {
                let mut n = 0;
                while rx.pop().is_ok() {
                    n += 1;
                }
                n
            })
        })
        .collect();
    let items = 40;
    for i in 0..items {
        thread::sleep(Duration::from_millis(2));
        tx.push(i).unwrap();
    }
    drop(tx);
    let total: u32 = waiters.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total, items);
    let m = rx.metrics();
    // At most one wake-up call per item published.
    assert!(m.consumer_wakeups <= items as u64, "{m:?}");
    // With one wake per item, about one consumer parks again per item (~items + 4 parks in
    // all); a herd woken per item would re-park ~3 per item (~4 * items). The bound leaves
    // room for a slow scheduler without letting a herd pass.
    assert!(m.consumer_parks <= 2 * items as u64 + 8, "{m:?}");
}

#[test]
fn batches_take_runs_and_respect_max() {
    let (tx, rx) = mpmc::channel::<u32>(10);
    assert_eq!(tx.push_slice(&[0, 1, 2, 3, 4, 5, 6]), 7);
    let mut out = Vec::new();
    assert_eq!(rx.try_pop_batch(&mut out, 0), Ok(0));
    assert_eq!(rx.try_pop_batch(&mut out, 3), Ok(3));
    assert_eq!(rx.pop_batch(&mut out, 100), Ok(4));
    assert_eq!(out, [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(tx.push_slice(&[7; 20]), 10);
    assert_eq!(rx.pop_batch_timeout(&mut out, 4, Duration::ZERO), Ok(4));
    assert_eq!(rx.len(), 6);
}

#[test]
fn blocked_producers_make_progress_one_slot_at_a_time() {
    // Capacity 1, four producers blocked most of the time, one slow consumer: each freed slot
    // lets exactly one item in; nothing is lost and nobody hangs.
    let (tx, rx) = Builder::new(1)
        .wait_strategy(WaitStrategy::SpinThenPark {
            spins: 16,
            yields: 1,
        })
        .build::<(usize, usize)>()
        .unwrap();
    let per = 500;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for s in 0..per {
                    tx.push((p, s)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut got = Vec::new();
    while let Ok(v) = rx.pop() {
        got.push(v);
        assert!(rx.len() <= 1);
    }
    for t in producers {
        t.join().unwrap();
    }
    check_exactly_once(&[got], PRODUCERS, per);
}

/// Items with 128-byte alignment: every slot keeps its item aligned and intact, through
/// single and batch calls, `force_push` and threads.
#[test]
fn over_aligned_items_stay_aligned_and_intact() {
    #[repr(align(128))]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Wide(u64, [u8; 3]);

    let (tx, rx) = weir::mpmc::channel::<Wide>(5);
    for round in 0..7u64 {
        let items: Vec<Wide> = (0..4).map(|k| Wide(round * 10 + k, [k as u8; 3])).collect();
        assert_eq!(tx.push_slice(&items), 4);
        assert_eq!(tx.force_push(Wide(round, [9; 3])), Ok(None));
        assert_eq!(tx.force_push(Wide(round, [8; 3])), Ok(Some(items[0])));
        let mut out = Vec::new();
        assert_eq!(rx.try_pop_batch(&mut out, 3), Ok(3));
        assert_eq!(out, items[1..4]);
        for v in &out {
            assert_eq!(v as *const Wide as usize % 128, 0);
        }
        assert_eq!(rx.try_pop(), Ok(Wide(round, [9; 3])));
        assert_eq!(rx.try_pop(), Ok(Wide(round, [8; 3])));
    }
    let n = if cfg!(miri) { 100 } else { 100_000 };
    let t = std::thread::spawn(move || {
        for i in 0..n {
            tx.push(Wide(i, [i as u8; 3])).unwrap();
        }
    });
    for i in 0..n {
        assert_eq!(rx.pop().unwrap(), Wide(i, [i as u8; 3]));
    }
    t.join().unwrap();
}

/// A parked consumer is woken when holes make an item reachable. A `push_iter` claims
/// positions 0 and 1 with one CAS (exact size hint 2); while its iterator runs, another producer
/// pushes 7 at position 2 (its wake-up finds position 0 unwritten, and the consumer parks
/// again); then the iterator panics and the claim, no longer at `tail`, becomes two holes. The
/// item behind them must reach the parked consumer without any further push.
#[test]
#[cfg_attr(miri, ignore = "needs real time: the consumer must park")]
fn parked_consumer_wakes_when_holes_open_the_way_to_an_item() {
    let (tx, rx) = Builder::new(4)
        .wait_strategy(WaitStrategy::Park)
        .build::<u32>()
        .unwrap();
    let other = tx.clone();
    let (got_tx, got_rx) = std::sync::mpsc::channel();
    let consumer = thread::spawn(move || got_tx.send(rx.pop()).unwrap());
    thread::sleep(Duration::from_millis(100)); // the consumer parks on the empty ring
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tx.push_iter((0..2u32).map(|_| {
            other.try_push(7).unwrap();
            thread::sleep(Duration::from_millis(200)); // the consumer parks again
            panic!("the user's iterator panics");
        }))
    }));
    assert!(panicked.is_err());
    let got = got_rx.recv_timeout(Duration::from_secs(5));
    if got.is_err() {
        tx.try_push(8).unwrap(); // let the consumer go, then fail
        consumer.join().unwrap();
        panic!("lost wake-up: the consumer stayed parked 5 s after 7 became reachable");
    }
    assert_eq!(got.unwrap(), Ok(7));
    consumer.join().unwrap();
}

/// A parked producer is woken when a `push_iter` gives unwritten slots back. The claim covers
/// the whole ring of 2, so another producer's blocking push parks; the iterator yields one item
/// and panics, the claim is still at `tail` and its second slot is given back: room for the
/// parked push, with no consumer to free anything.
#[test]
#[cfg_attr(miri, ignore = "needs real time: the producer must park")]
fn parked_producer_wakes_when_push_iter_gives_slots_back() {
    let (tx, rx) = Builder::new(2)
        .wait_strategy(WaitStrategy::Park)
        .build::<u32>()
        .unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let mut parked = None;
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tx.push_iter((0..2u32).map(|i| {
            if i == 1 {
                panic!("the user's iterator panics");
            }
            let other = tx.clone();
            let done_tx = done_tx.clone();
            parked = Some(thread::spawn(move || done_tx.send(other.push(5)).unwrap()));
            thread::sleep(Duration::from_millis(200)); // the other push finds the ring full
            1
        }))
    }));
    assert!(panicked.is_err());
    let got = done_rx.recv_timeout(Duration::from_secs(5));
    if got.is_err() {
        let room = tx.len() < tx.capacity();
        assert_eq!(rx.try_pop(), Ok(1)); // let the producer go, then fail
        parked.unwrap().join().unwrap();
        panic!("lost wake-up: the producer stayed parked 5 s (room in the ring: {room})");
    }
    assert_eq!(got.unwrap(), Ok(()));
    parked.unwrap().join().unwrap();
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(rx.try_pop(), Ok(5));
}

/// A capacity whose buffer passes the size rules but cannot be allocated (2^55 slots of 16
/// bytes: beyond any 48- or 57-bit address space) is an error, not an abort.
#[test]
#[cfg_attr(
    miri,
    ignore = "miri stops at an allocation this large instead of failing it"
)]
fn a_buffer_the_allocator_refuses_is_an_error() {
    let requested = 1usize << 55;
    match mpmc::try_channel::<u64>(requested) {
        Err(weir::CapacityError::AllocationFailed {
            requested: r,
            bytes,
        }) => {
            assert_eq!(r, requested);
            assert!(bytes >= requested * 8, "{bytes}");
        }
        other => panic!("expected AllocationFailed, got {:?}", other.map(|_| ())),
    }
    let message = mpmc::try_channel::<u64>(requested).unwrap_err().to_string();
    assert!(message.contains("allocator refused"), "{message}");
}
