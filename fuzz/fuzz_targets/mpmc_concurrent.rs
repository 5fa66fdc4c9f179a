#![no_main]
//! Two threads, each both producer and consumer of one MPMC ring, run scripts taken from the
//! input; spin and yield steps in the scripts (also from the input) shift their interleaving.
//! Whatever the interleaving, every accepted item must come out exactly once (popped by either
//! thread, displaced by a `force_push`, or drained at the end), refused items must come back to
//! their producer, and each producer's items must reach each consumer in order.

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::sync::Barrier;
use std::thread;
use weir::mpmc::{self, Consumer, Producer};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    TryPush,
    ForcePush,
    Shed,
    PushSlice(u8),
    PushIter(u8),
    /// `push_iter` of a filtered iterator (no size hint): one claim per item, plus a final claim
    /// that is given back or becomes a hole.
    PushIterFiltered(u8),
    TryPop,
    TryPopBatch(u8),
    Spin(u8),
    Yield,
}

#[derive(Arbitrary, Debug)]
struct Input {
    capacity: u8,
    near_wrap: bool,
    a: Vec<Op>,
    b: Vec<Op>,
}

/// An item: (producer thread, sequence number).
type Item = (u8, u32);

#[derive(Default, Debug)]
struct Log {
    /// Items this thread popped, in order.
    popped: Vec<Item>,
    /// Items this thread's force_push displaced, in order.
    displaced: Vec<Item>,
    /// How many of this thread's items the ring accepted (they are `0..accepted`, since
    /// every refusal is handed back and the next attempt reuses the number).
    accepted: u32,
}

fn run(me: u8, ops: &[Op], tx: Producer<Item>, rx: Consumer<Item>, start: &Barrier) -> Log {
    let mut log = Log::default();
    let mut seq = 0u32;
    start.wait();
    for &op in ops {
        match op {
            Op::TryPush | Op::Shed => {
                let r = if matches!(op, Op::Shed) {
                    tx.try_push_or_shed((me, seq))
                } else {
                    tx.try_push((me, seq))
                };
                match r {
                    Ok(()) => seq += 1,
                    Err(e) => assert_eq!(e.into_inner(), (me, seq), "refused item not handed back"),
                }
            }
            Op::ForcePush => {
                if let Some(old) = tx.force_push((me, seq)).unwrap() {
                    log.displaced.push(old);
                }
                seq += 1;
            }
            Op::PushSlice(n) => {
                let items: Vec<Item> = (0..(n % 6) as u32).map(|k| (me, seq + k)).collect();
                let k = tx.push_slice(&items);
                assert!(k <= items.len());
                seq += k as u32;
            }
            Op::PushIter(n) => {
                let end = seq + (n % 6) as u32;
                let mut it = (seq..end).map(|s| (me, s));
                let k = tx.push_iter(it.by_ref());
                seq += k as u32;
                // Nothing beyond what went in was pulled.
                assert_eq!(it.next(), (seq < end).then_some((me, seq)));
            }
            Op::PushIterFiltered(n) => {
                let end = seq + (n % 6) as u32;
                let mut it = (seq..end).filter(|_| true).map(|s| (me, s));
                let k = tx.push_iter(it.by_ref());
                seq += k as u32;
                assert_eq!(it.next(), (seq < end).then_some((me, seq)));
            }
            Op::TryPop => {
                if let Ok(v) = rx.try_pop() {
                    log.popped.push(v);
                }
            }
            Op::TryPopBatch(n) => {
                let max = (n % 8) as usize;
                let before = log.popped.len();
                if let Ok(k) = rx.try_pop_batch(&mut log.popped, max) {
                    assert_eq!(log.popped.len() - before, k);
                    assert!(k <= max);
                }
            }
            Op::Spin(n) => {
                for _ in 0..n {
                    std::hint::spin_loop();
                }
            }
            Op::Yield => thread::yield_now(),
        }
    }
    log.accepted = seq;
    log
}

/// Per producer, the items of `list` must be in increasing order.
fn assert_ordered(list: &[Item], what: &str) {
    let mut last = [None::<u32>; 2];
    for &(p, s) in list {
        let p = p as usize;
        assert!(
            last[p].is_none_or(|l| l < s),
            "{what}: ({p}, {s}) after {:?}",
            last[p]
        );
        last[p] = Some(s);
    }
}

fuzz_target!(|input: Input| {
    let capacity = (input.capacity % 8) as usize + 1;
    let mut builder = mpmc::Builder::new(capacity);
    if input.near_wrap {
        builder = builder.start_sequence(usize::MAX - 3);
    }
    let (tx, rx) = builder.build::<Item>().unwrap();
    let start = Barrier::new(2);
    let (a, b) = thread::scope(|s| {
        let (tx2, rx2) = (tx.clone(), rx.clone());
        let start = &start;
        let ha = s.spawn(|| run(0, &input.a, tx2, rx2, start));
        let b = run(1, &input.b, tx.clone(), rx.clone(), start);
        (ha.join().unwrap(), b)
    });
    drop(tx);
    let mut rest = Vec::new();
    while let Ok(v) = rx.try_pop() {
        rest.push(v);
    }
    assert_eq!(rx.try_pop(), Err(weir::TryPopError::Disconnected));
    assert!(rest.len() <= capacity);
    for (list, what) in [
        (&a.popped, "a popped"),
        (&b.popped, "b popped"),
        (&a.displaced, "a displaced"),
        (&b.displaced, "b displaced"),
        (&rest, "rest"),
    ] {
        assert_ordered(list, what);
    }
    let accepted = [a.accepted, b.accepted];
    let mut seen = [
        vec![false; a.accepted as usize],
        vec![false; b.accepted as usize],
    ];
    for &(p, s) in a
        .popped
        .iter()
        .chain(&b.popped)
        .chain(&a.displaced)
        .chain(&b.displaced)
        .chain(&rest)
    {
        let (p, s) = (p as usize, s as usize);
        assert!(s < accepted[p] as usize, "({p}, {s}) was never accepted");
        assert!(!seen[p][s], "({p}, {s}) came out twice");
        seen[p][s] = true;
    }
    for (p, row) in seen.iter().enumerate() {
        assert!(row.iter().all(|&b| b), "producer {p} lost an item");
    }
    let m = rx.metrics();
    let total = (a.accepted + b.accepted) as u64;
    assert_eq!(m.pushed, total);
    assert_eq!(m.displaced, (a.displaced.len() + b.displaced.len()) as u64);
    assert_eq!(m.popped + m.displaced, total);
    assert_eq!(m.depth, 0);
});
