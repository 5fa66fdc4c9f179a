//! Fault injection on the SPSC ring: element types whose `Drop` panics, zero-sized types,
//! over-aligned types, `usize::MAX`-ish capacities, and sequence counters started just below
//! `usize::MAX` so that every path crosses the wrap-around of the counters. Most tests run on
//! both flavours, as `indexed::NAME` and `stamped::NAME` (see `tests/flavours/mod.rs`).

// ci: miri (cheap enough under miri: sizes scale down with cfg!(miri); run under several seeds)

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread;
use weir::spsc::{self, Builder};

#[macro_use]
mod flavours;
use flavours::{ring, Flavour};

for_both_flavours!(
    items_left_after_single_calls_are_dropped_once,
    panicking_drop_in_ring_at_drop_time_drops_the_rest_once,
    panicking_iterator_in_push_iter_publishes_what_was_written,
    zero_sized_items_keep_exact_capacity_and_drop_once,
    over_aligned_items_stay_aligned_and_intact,
    every_operation_across_counter_wrap_around,
    threads_across_counter_wrap_around,
);
use weir::{CapacityError, TryPopError};

/// Items moved across threads: `WEIR_STRESS_ITEMS / 20` if set (CI lowers it for the
/// sanitizers), else scaled to the build.
fn thread_items() -> u64 {
    if let Some(n) = std::env::var("WEIR_STRESS_ITEMS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        return (n / 20).max(100);
    }
    if cfg!(miri) {
        300
    } else if cfg!(debug_assertions) {
        100_000
    } else {
        1_000_000
    }
}

// ---------------------------------------------------------------------------------------------
// Drop that panics
// ---------------------------------------------------------------------------------------------

/// An item whose drop is logged by id; `bomb` items panic in `Drop` (after logging).
struct Bomb {
    id: u32,
    bomb: bool,
    log: Arc<Mutex<Vec<u32>>>,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.id);
        if self.bomb {
            panic!("Bomb {} exploded", self.id);
        }
    }
}

fn bombs(log: &Arc<Mutex<Vec<u32>>>, ids: &[u32], bomb_id: u32) -> Vec<Bomb> {
    ids.iter()
        .map(|&id| Bomb {
            id,
            bomb: id == bomb_id,
            log: log.clone(),
        })
        .collect()
}

fn sorted(log: &Arc<Mutex<Vec<u32>>>) -> Vec<u32> {
    let mut v = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    v.sort_unstable();
    v
}

fn quiet_panics<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    catch_unwind(AssertUnwindSafe(f))
}

/// Single pushes and pops in rings of several sizes, stopped at various points (the ring
/// wrapped or not): the items left are dropped exactly once, whichever handle goes last, and
/// both handles' `len` counts them.
fn items_left_after_single_calls_are_dropped_once<R: Flavour>() {
    // Fewer under miri, which runs this file for several seeds.
    let caps: &[usize] = if cfg!(miri) {
        &[3, 16]
    } else {
        &[3, 16, 33, 64]
    };
    for &cap in caps {
        let all = [(1u32, 0u32), (3, 1), (17, 5), (cap as u32, 7), (40, 39)];
        let cases = if cfg!(miri) { &all[1..3] } else { &all[..] };
        for &(pushed, popped) in cases {
            let pushed = pushed.min(cap as u32 + popped);
            let popped = popped.min(pushed);
            for producer_last in [true, false] {
                let log = Arc::new(Mutex::new(Vec::new()));
                let (mut tx, mut rx) = ring::<Bomb, R>(cap);
                let mut items = bombs(&log, &(0..pushed).collect::<Vec<_>>(), u32::MAX).into_iter();
                let mut pending = items.next();
                let mut taken = 0;
                // Interleaved so that the ring wraps when `pushed > cap`; a refused item is
                // handed back and offered again.
                while pending.is_some() || taken < popped {
                    if let Some(item) = pending.take() {
                        match tx.try_push(item) {
                            Ok(()) => {
                                pending = items.next();
                                continue;
                            }
                            Err(e) => pending = Some(e.into_inner()),
                        }
                    }
                    drop(rx.try_pop().expect("an item is ready"));
                    taken += 1;
                }
                let ctx = (cap, pushed, popped, producer_last);
                assert_eq!(rx.len(), (pushed - popped) as usize, "{ctx:?}");
                assert_eq!(tx.len(), (pushed - popped) as usize, "{ctx:?}");
                if producer_last {
                    drop(rx);
                    drop(tx);
                } else {
                    drop(tx);
                    drop(rx);
                }
                assert_eq!(sorted(&log), (0..pushed).collect::<Vec<_>>(), "{ctx:?}");
            }
        }
    }
}

fn panicking_drop_in_ring_at_drop_time_drops_the_rest_once<R: Flavour>() {
    for producer_last in [true, false] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (mut tx, mut rx) = ring::<Bomb, R>(4);
        // Wrap the ring first, so the items left straddle the buffer's end.
        for b in bombs(&log, &[100, 101, 102], u32::MAX) {
            assert!(tx.try_push(b).is_ok());
        }
        for _ in 0..3 {
            drop(rx.try_pop().unwrap());
        }
        for b in bombs(&log, &[0, 1, 2, 3], 1) {
            assert!(tx.try_push(b).is_ok());
        }
        type Step = Box<dyn FnOnce()>;
        let (first, last): (Step, Step) = if producer_last {
            (Box::new(move || drop(rx)), Box::new(move || drop(tx)))
        } else {
            (Box::new(move || drop(tx)), Box::new(move || drop(rx)))
        };
        first();
        let r = quiet_panics(last);
        assert!(r.is_err(), "the bomb's panic must reach the caller");
        assert_eq!(
            sorted(&log),
            [0, 1, 2, 3, 100, 101, 102],
            "each item dropped once"
        );
    }
}

#[test]
fn panicking_drop_in_read_chunk_commit_publishes_what_was_dropped() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (mut tx, mut rx) = spsc::channel::<Bomb>(5);
    for b in bombs(&log, &[0, 1, 2, 3], 1) {
        assert!(tx.try_push(b).is_ok());
    }
    let r = quiet_panics(|| {
        let chunk = rx.read_chunk(3).unwrap();
        assert_eq!(chunk.len(), 3);
        chunk.commit(3);
    });
    assert!(r.is_err());
    // 0 and the bomb 1 are gone; 2 (after the panic) stays in the ring, untouched, then 3.
    assert_eq!(sorted(&log), [0, 1]);
    assert_eq!(rx.len(), 2);
    assert_eq!(rx.try_pop().unwrap().id, 2);
    assert_eq!(rx.try_pop().unwrap().id, 3);
    assert_eq!(rx.try_pop().err(), Some(TryPopError::Empty));
    assert_eq!(sorted(&log), [0, 1, 2, 3]);
    // The ring still works, with its exact capacity.
    let more = bombs(&log, &[10, 11, 12, 13, 14, 15], u32::MAX);
    let mut it = more.into_iter();
    assert_eq!(tx.push_iter(it.by_ref()), 5);
    assert_eq!(it.len(), 1);
    drop(it);
    drop((tx, rx));
    assert_eq!(sorted(&log), [0, 1, 2, 3, 10, 11, 12, 13, 14, 15]);
}

fn panicking_iterator_in_push_iter_publishes_what_was_written<R: Flavour>() {
    let (mut tx, mut rx) = ring::<String, R>(8);
    let r = quiet_panics(|| {
        tx.push_iter((0..10).map(|i| {
            if i == 3 {
                panic!("source failed");
            }
            i.to_string()
        }))
    });
    assert!(r.is_err());
    assert_eq!(rx.len(), 3);
    let mut out = Vec::new();
    assert_eq!(rx.try_pop_batch(&mut out, 10), Ok(3));
    assert_eq!(out, ["0", "1", "2"]);
    assert_eq!(tx.push_iter((0..100).map(|i| i.to_string())), 8);
}

// ---------------------------------------------------------------------------------------------
// Zero-sized and over-aligned types
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// Drops of `Ghost`s on this thread: per thread, so that the two flavours' instances of a
    /// test (run in parallel, each on its own thread) count their own.
    static ZST_DROPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn zst_drops() -> usize {
    ZST_DROPS.with(|d| d.get())
}

/// A zero-sized item that counts its drops.
struct Ghost;

impl Drop for Ghost {
    fn drop(&mut self) {
        ZST_DROPS.with(|d| d.set(d.get() + 1));
    }
}

fn zero_sized_items_keep_exact_capacity_and_drop_once<R: Flavour>() {
    let (mut tx, mut rx) = ring::<Ghost, R>(7);
    let mut pushed = 0;
    while tx.try_push(Ghost).is_ok() {
        pushed += 1;
    }
    assert_eq!(pushed, 7);
    assert_eq!(zst_drops(), 1); // the refused one, dropped by us
    drop(rx.try_pop().unwrap());
    let mut out = Vec::new();
    assert_eq!(rx.try_pop_batch(&mut out, 2), Ok(2));
    drop(out);
    assert_eq!(zst_drops(), 4);
    R::take_front(&mut rx, 2, |_| {}); // read_chunk + commit, or single pops
    assert_eq!(zst_drops(), 6);
    drop(tx);
    drop(rx); // 2 left
    assert_eq!(zst_drops(), 8);
}

#[test]
fn zero_sized_items_with_huge_capacity() {
    // 2^63 slots of nothing: a valid ring, and the counters wrap within it.
    let cap = usize::MAX / 2 + 1;
    let (mut tx, mut rx) = Builder::new(cap)
        .start_sequence(usize::MAX - 2)
        .build::<()>()
        .unwrap();
    assert_eq!(tx.capacity(), cap);
    assert_eq!(tx.push_iter(std::iter::repeat_n((), 10)), 10);
    assert_eq!(rx.len(), 10);
    let mut out = Vec::new();
    assert_eq!(rx.try_pop_batch(&mut out, 4), Ok(4));
    assert_eq!(rx.len(), 6);
    let m = rx.metrics();
    assert_eq!((m.pushed, m.popped, m.depth), (10, 4, 6));
    // One more than that is not representable.
    assert_eq!(
        spsc::try_channel::<()>(cap + 1).unwrap_err(),
        CapacityError::TooLarge { requested: cap + 1 }
    );
}

/// A `Stamped` slot carries a `usize` stamp even for a zero-sized item, so the huge
/// capacity above, fine for `Indexed`, is refused (2^63 slots of 8 bytes), not allocated.
#[test]
fn stamped_zero_sized_items_still_cost_a_stamp_each() {
    let cap = usize::MAX / 2 + 1;
    assert_eq!(
        Builder::new(cap).build_stamped::<()>().unwrap_err(),
        CapacityError::TooLarge { requested: cap }
    );
    let (mut tx, mut rx) = Builder::new(5)
        .start_sequence(usize::MAX - 2)
        .build_stamped::<()>()
        .unwrap();
    assert_eq!(tx.push_iter(std::iter::repeat_n((), 10)), 5);
    let mut out = Vec::new();
    assert_eq!(rx.try_pop_batch(&mut out, 4), Ok(4));
    assert_eq!(rx.try_pop(), Ok(()));
    assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
    let m = rx.metrics();
    assert_eq!((m.pushed, m.popped, m.depth), (5, 5, 0));
}

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(align(128))]
struct Wide(u64, [u8; 3]);

fn over_aligned_items_stay_aligned_and_intact<R: Flavour>() {
    let (mut tx, mut rx) = ring::<Wide, R>(5);
    for round in 0..7u64 {
        let items: Vec<Wide> = (0..4).map(|k| Wide(round * 10 + k, [k as u8; 3])).collect();
        assert_eq!(tx.push_slice(&items), 4);
        let front = rx.peek().unwrap();
        assert_eq!(front as *const Wide as usize % 128, 0);
        assert_eq!(*front, items[0]);
        // `Indexed`: seen in place through `read_chunk`.
        let mut seen = Vec::new();
        R::take_front(&mut rx, 2, |w| {
            assert_eq!(w as *const Wide as usize % 128, 0);
            seen.push(*w);
        });
        assert_eq!(seen, items[..2]);
        assert_eq!(rx.peek().map(|w| w as *const Wide as usize % 128), Some(0));
        assert_eq!(rx.try_pop(), Ok(items[2]));
        let mut out = Vec::new();
        assert_eq!(rx.try_pop_batch(&mut out, 9), Ok(1));
        assert_eq!(out, [items[3]]);
    }
    // Across threads as well.
    let n = thread_items() / 5;
    let t = thread::spawn(move || {
        for i in 0..n {
            tx.push(Wide(i, [i as u8; 3])).unwrap();
        }
    });
    for i in 0..n {
        assert_eq!(rx.pop().unwrap(), Wide(i, [i as u8; 3]));
    }
    t.join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Counters near wrap-around
// ---------------------------------------------------------------------------------------------

/// Every operation, with the counters started `k` below `usize::MAX` for every `k` that lands
/// the wrap inside the first few batches.
fn every_operation_across_counter_wrap_around<R: Flavour>() {
    // Under miri (where this runs per flavour and per seed) the capacities that are not powers
    // of two and the smallest ones; every offset still.
    let caps: &[usize] = if cfg!(miri) {
        &[1, 2, 3, 5]
    } else {
        &[1, 2, 3, 4, 5, 8]
    };
    for &cap in caps {
        for k in 0..=2 * cap + 2 {
            let (mut tx, mut rx) = Builder::new(cap)
                .start_sequence(usize::MAX - k)
                .build_flavour::<u64, R>()
                .unwrap();
            let mut next_in = 0u64;
            let mut next_out = 0u64;
            for round in 0..3 * cap + 4 {
                // Fill exactly to capacity with a mix of single and batch pushes.
                let free = cap - tx.len();
                let want: Vec<u64> = (next_in..next_in + free as u64 + 2).collect();
                let n = match round % 3 {
                    0 => tx.push_slice(&want),
                    1 => tx.push_iter(want.iter().copied()),
                    _ => {
                        let mut n = 0;
                        while tx.try_push(want[n]).is_ok() {
                            n += 1;
                        }
                        n
                    }
                };
                assert_eq!(n, free, "cap {cap} k {k} round {round}");
                next_in += n as u64;
                assert!(tx.is_full());
                assert_eq!(rx.len(), cap);
                // Take some out, in every form.
                let take = round % cap + 1;
                match round % 4 {
                    0 => {
                        for _ in 0..take {
                            assert_eq!(rx.try_pop(), Ok(next_out));
                            next_out += 1;
                        }
                    }
                    1 => {
                        let mut out = Vec::new();
                        assert_eq!(rx.try_pop_batch(&mut out, take), Ok(take));
                        for v in out {
                            assert_eq!(v, next_out);
                            next_out += 1;
                        }
                    }
                    2 => {
                        let mut seen = Vec::new();
                        R::take_front(&mut rx, take, |&v| seen.push(v));
                        let expect: Vec<u64> = (next_out..next_out + take as u64).collect();
                        assert_eq!(seen, expect);
                        next_out += take as u64;
                    }
                    _ => {
                        assert_eq!(rx.peek(), Some(&next_out));
                        assert_eq!(rx.pop(), Ok(next_out));
                        next_out += 1;
                        for _ in 1..take {
                            assert_eq!(rx.try_pop(), Ok(next_out));
                            next_out += 1;
                        }
                    }
                }
                assert_eq!(rx.len() as u64, next_in - next_out);
                let m = tx.metrics();
                assert_eq!((m.pushed, m.popped), (next_in, next_out));
            }
        }
    }
}

fn threads_across_counter_wrap_around<R: Flavour>() {
    let n = thread_items();
    for k in [0usize, 1, 3, 50] {
        let (mut tx, mut rx) = Builder::new(3)
            .start_sequence(usize::MAX - k)
            .build_flavour::<u64, R>()
            .unwrap();
        let t = thread::spawn(move || {
            let mut i = 0;
            while i < n {
                let want = (i % 4 + 1).min(n - i);
                let sent = tx.push_iter(i..i + want) as u64;
                i += sent;
                if sent == 0 {
                    tx.push(i).unwrap();
                    i += 1;
                }
            }
        });
        let mut next = 0;
        let mut out = Vec::new();
        while rx.pop_batch(&mut out, 2).is_ok() {
            for v in out.drain(..) {
                assert_eq!(v, next);
                next += 1;
            }
        }
        t.join().unwrap();
        assert_eq!(next, n);
        assert_eq!(rx.metrics().popped, n);
    }
}
