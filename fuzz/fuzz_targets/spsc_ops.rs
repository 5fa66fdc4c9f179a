#![no_main]
//! Differential fuzzing of the SPSC ring against a `VecDeque` model, on one thread.
//!
//! The input picks the flavour (the first byte's low bit: `Indexed` or `Stamped`), a capacity
//! (1..=16, or 32..=47 with the producer's write prefetch 0, 1 or 2 lines ahead), where the sequence counters start (0, or just below
//! `usize::MAX` so that wrap-around is crossed), whether items are `Copy` (`u32`, so that
//! `push_slice` is exercised) or heap-owning tracked items (drops are checked to happen exactly
//! once, with no leak), and then a sequence of every `Producer`/`Consumer` operation, including
//! dropping either half. Every result is compared with the model, capacities exactly. On the
//! `Stamped` flavour, which has no `read_chunk`, the `ReadChunk` operation becomes that many
//! single pops (each one reading the slot's stamp).

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::time::Duration;
use weir::spsc::{Builder, Consumer, Indexed, Producer, Readiness, Stamped};
use weir::{PopTimeoutError, PushTimeoutError, TryPopError, TryPushError};

#[derive(Arbitrary, Debug)]
enum Op {
    TryPush,
    Push,
    PushTimeout,
    PushSlice(u8),
    PushIter(u8),
    TryPop,
    Pop,
    PopTimeout,
    TryPopBatch(u8),
    PopBatch(u8),
    PopBatchTimeout(u8),
    Peek,
    ReadChunk { max: u8, commit: u8, all: bool },
    Lengths,
    Metrics,
    DropProducer,
    DropConsumer,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// `Stamped` if true, else `Indexed` (first, so that it is the first byte's low bit).
    stamped: bool,
    capacity: u8,
    near_wrap: Option<u8>,
    /// The prefetch distance of both handles in lines, 0..=2 (0: off). With the larger
    /// capacities below it is active, so both checkpoints' bookkeeping is checked too.
    prefetch_lines: u8,
    tracked: bool,
    ops: Vec<Op>,
}

thread_local! {
    /// Ids of tracked items alive now.
    static LIVE: RefCell<HashSet<u32>> = RefCell::new(HashSet::new());
}

/// An item that owns heap memory and checks that it is dropped exactly once.
struct Tracked {
    id: u32,
    _heap: Box<u32>,
}

impl Tracked {
    fn new(id: u32) -> Self {
        assert!(LIVE.with(|l| l.borrow_mut().insert(id)), "id {id} reused");
        Tracked {
            id,
            _heap: Box::new(id),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        assert!(
            LIVE.with(|l| l.borrow_mut().remove(&self.id)),
            "item {} dropped twice",
            self.id
        );
    }
}

trait Item: Sized {
    fn make(id: u32) -> Self;
    fn id(&self) -> u32;
    /// `push_slice` for `Copy` items; `push_iter` over the same ids otherwise.
    fn push_many<R: Readiness>(tx: &mut Producer<Self, R>, ids: &[u32]) -> usize;
}

impl Item for u32 {
    fn make(id: u32) -> Self {
        id
    }
    fn id(&self) -> u32 {
        *self
    }
    fn push_many<R: Readiness>(tx: &mut Producer<Self, R>, ids: &[u32]) -> usize {
        tx.push_slice(ids)
    }
}

impl Item for Tracked {
    fn make(id: u32) -> Self {
        Tracked::new(id)
    }
    fn id(&self) -> u32 {
        self.id
    }
    fn push_many<R: Readiness>(tx: &mut Producer<Self, R>, ids: &[u32]) -> usize {
        tx.push_iter(ids.iter().map(|&i| Tracked::new(i)))
    }
}

/// `read_chunk`, for the flavour that has it.
trait Flavour: Readiness {
    /// `read_chunk(max)`: `Ok((chunk length, committed))`, where `decide` sees the chunk's ids
    /// and says how many to commit; `None` if the flavour has no `read_chunk`.
    fn read_chunk<T: Item>(
        c: &mut Consumer<T, Self>,
        max: usize,
        decide: impl FnOnce(&[u32]) -> usize,
    ) -> Option<Result<(usize, usize), TryPopError>>;
}

impl Flavour for Indexed {
    fn read_chunk<T: Item>(
        c: &mut Consumer<T, Self>,
        max: usize,
        decide: impl FnOnce(&[u32]) -> usize,
    ) -> Option<Result<(usize, usize), TryPopError>> {
        Some(c.read_chunk(max).map(|chunk| {
            let len = chunk.len();
            assert_eq!(chunk.is_empty(), len == 0);
            let (a, b) = chunk.as_slices();
            assert_eq!(a.len() + b.len(), len);
            let seen: Vec<u32> = a.iter().chain(b).map(Item::id).collect();
            let n = decide(&seen);
            if n == len {
                chunk.commit_all();
            } else {
                chunk.commit(n);
            }
            (len, n)
        }))
    }
}

impl Flavour for Stamped {
    fn read_chunk<T: Item>(
        _: &mut Consumer<T, Self>,
        _: usize,
        _: impl FnOnce(&[u32]) -> usize,
    ) -> Option<Result<(usize, usize), TryPopError>> {
        None
    }
}

const SHORT: Duration = Duration::from_micros(1);

fn run<T: Item, R: Flavour>(input: &Input) {
    // Mostly 1..=16; one input in eight 32..=47, where a prefetch of 1 or 2 lines is active
    // for every item type here (both handles; the consumer's in the `Indexed` flavour).
    let capacity = if input.capacity >= 224 {
        32 + usize::from(input.capacity % 16)
    } else {
        usize::from(input.capacity % 16) + 1
    };
    let mut builder = Builder::new(capacity).prefetch_lines(usize::from(input.prefetch_lines % 3));
    if let Some(k) = input.near_wrap {
        builder = builder.start_sequence(usize::MAX - usize::from(k % 40));
    }
    let (tx, rx) = builder.build_flavour::<T, R>().unwrap();
    let mut tx = Some(tx);
    let mut rx = Some(rx);
    let mut model: VecDeque<u32> = VecDeque::new();
    let mut next_id = 0u32;
    let mut pushed = 0u64;
    let mut popped = 0u64;

    // Checks a pop result against the model.
    macro_rules! expect_front {
        ($got:expr) => {{
            let got: u32 = $got;
            assert_eq!(Some(got), model.pop_front(), "popped the wrong item");
            popped += 1;
        }};
    }

    for op in &input.ops {
        let room = capacity - model.len();
        let producer_alive = tx.is_some();
        let consumer_alive = rx.is_some();
        match op {
            Op::TryPush | Op::Push | Op::PushTimeout => {
                let Some(p) = tx.as_mut() else { continue };
                let id = next_id;
                next_id += 1;
                let item = T::make(id);
                if !consumer_alive {
                    let back = match op {
                        Op::TryPush => match p.try_push(item) {
                            Err(TryPushError::Disconnected(v)) => v,
                            _ => panic!("push to a disconnected ring"),
                        },
                        Op::Push => p.push(item).unwrap_err().into_inner(),
                        _ => match p.push_timeout(item, SHORT) {
                            Err(PushTimeoutError::Disconnected(v)) => v,
                            _ => panic!("push to a disconnected ring"),
                        },
                    };
                    assert_eq!(back.id(), id, "not the item handed back");
                    continue;
                }
                if room == 0 {
                    // `push` would block forever with nobody to pop: not called on a full ring.
                    let back = match op {
                        Op::PushTimeout => match p.push_timeout(item, SHORT) {
                            Err(PushTimeoutError::Timeout(v)) => v,
                            _ => panic!("push beyond capacity {capacity}"),
                        },
                        _ => match p.try_push(item) {
                            Err(TryPushError::Full(v)) => v,
                            _ => panic!("push beyond capacity {capacity}"),
                        },
                    };
                    assert_eq!(back.id(), id);
                    continue;
                }
                match op {
                    Op::TryPush => assert!(p.try_push(item).is_ok()),
                    Op::Push => assert!(p.push(item).is_ok()),
                    _ => assert!(p.push_timeout(item, SHORT).is_ok()),
                }
                model.push_back(id);
                pushed += 1;
            }
            Op::PushSlice(n) | Op::PushIter(n) => {
                let Some(p) = tx.as_mut() else { continue };
                let ids: Vec<u32> = (next_id..next_id + u32::from(*n % 24)).collect();
                let went = if matches!(op, Op::PushSlice(_)) {
                    T::push_many(p, &ids)
                } else {
                    // Pull lazily, and check that nothing beyond the room is pulled.
                    let mut pulled = 0usize;
                    let mut it = ids.iter().map(|&i| {
                        pulled += 1;
                        T::make(i)
                    });
                    let went = p.push_iter(it.by_ref());
                    drop(it);
                    assert_eq!(pulled, went, "push_iter pulled items it did not place");
                    went
                };
                let expect = if consumer_alive {
                    room.min(ids.len())
                } else {
                    0
                };
                assert_eq!(went, expect, "batch push, room {room}, cap {capacity}");
                model.extend(&ids[..went]);
                // Ids not placed were never created (iter) or are reusable (slice): skip them
                // anyway so that every id is unique.
                next_id += ids.len() as u32;
                pushed += went as u64;
            }
            Op::TryPop | Op::Pop | Op::PopTimeout => {
                let Some(c) = rx.as_mut() else { continue };
                if model.is_empty() {
                    match op {
                        Op::TryPop => {
                            let want = if producer_alive {
                                TryPopError::Empty
                            } else {
                                TryPopError::Disconnected
                            };
                            assert_eq!(c.try_pop().err(), Some(want));
                        }
                        Op::PopTimeout => {
                            let want = if producer_alive {
                                PopTimeoutError::Timeout
                            } else {
                                PopTimeoutError::Disconnected
                            };
                            assert_eq!(c.pop_timeout(SHORT).err(), Some(want));
                        }
                        // `pop` would block forever with a live producer and nothing to come.
                        _ if !producer_alive => assert!(c.pop().is_err()),
                        _ => {}
                    }
                    continue;
                }
                let got = match op {
                    Op::TryPop => c.try_pop().ok(),
                    Op::Pop => c.pop().ok(),
                    _ => c.pop_timeout(SHORT).ok(),
                };
                expect_front!(got.expect("a ready item was not popped").id());
            }
            Op::TryPopBatch(max) | Op::PopBatch(max) | Op::PopBatchTimeout(max) => {
                let Some(c) = rx.as_mut() else { continue };
                let max = usize::from(*max % 20);
                let mut out = Vec::new();
                let res: Result<usize, ()> = match op {
                    Op::TryPopBatch(_) => c.try_pop_batch(&mut out, max).map_err(|e| {
                        let want = if producer_alive {
                            TryPopError::Empty
                        } else {
                            TryPopError::Disconnected
                        };
                        assert_eq!(e, want);
                    }),
                    Op::PopBatch(_) if model.is_empty() && max > 0 && producer_alive => continue,
                    Op::PopBatch(_) => c.pop_batch(&mut out, max).map_err(|_| ()),
                    _ => c.pop_batch_timeout(&mut out, max, SHORT).map_err(|e| {
                        let want = if producer_alive {
                            PopTimeoutError::Timeout
                        } else {
                            PopTimeoutError::Disconnected
                        };
                        assert_eq!(e, want);
                    }),
                };
                let expect = model.len().min(max);
                if max > 0 && model.is_empty() {
                    assert!(res.is_err(), "batch from an empty ring");
                } else {
                    assert_eq!(res, Ok(expect), "batch size, max {max}");
                }
                assert_eq!(out.len(), res.unwrap_or(0));
                for item in out {
                    expect_front!(item.id());
                }
            }
            Op::Peek => {
                let Some(c) = rx.as_mut() else { continue };
                assert_eq!(c.peek().map(Item::id), model.front().copied());
            }
            Op::ReadChunk { max, commit, all } => {
                let Some(c) = rx.as_mut() else { continue };
                let max = usize::from(*max % 20);
                let expect = model.len().min(max);
                let front: Vec<u32> = model.iter().take(expect).copied().collect();
                let decide = |seen: &[u32]| {
                    assert_eq!(seen, front, "chunk contents, max {max}");
                    if *all {
                        seen.len()
                    } else {
                        usize::from(*commit) % (seen.len() + 1)
                    }
                };
                match R::read_chunk(c, max, decide) {
                    Some(Ok((len, n))) => {
                        assert_eq!(len, expect, "chunk size, max {max}");
                        for _ in 0..n {
                            model.pop_front();
                            popped += 1;
                        }
                    }
                    Some(Err(e)) => {
                        // Only an empty ring refuses (also with max 0: the cache is reloaded).
                        assert!(model.is_empty(), "read_chunk refused ready items");
                        let want = if producer_alive {
                            TryPopError::Empty
                        } else {
                            TryPopError::Disconnected
                        };
                        assert_eq!(e, want);
                    }
                    None => {
                        // No `read_chunk` (`Stamped`): as many single pops as the chunk would
                        // have committed, each learning of its item from the slot's stamp.
                        let n = if *all {
                            expect
                        } else {
                            usize::from(*commit) % (expect + 1)
                        };
                        for _ in 0..n {
                            expect_front!(c.try_pop().expect("a ready item was not popped").id());
                        }
                    }
                }
            }
            Op::Lengths => {
                if let Some(p) = tx.as_ref() {
                    assert_eq!(p.len(), model.len());
                    assert_eq!(p.is_empty(), model.is_empty());
                    assert_eq!(p.is_full(), model.len() == capacity);
                    assert_eq!(p.slots(), capacity - model.len());
                    assert_eq!(p.capacity(), capacity);
                    assert_eq!(p.is_disconnected(), !consumer_alive);
                }
                if let Some(c) = rx.as_ref() {
                    assert_eq!(c.len(), model.len());
                    assert_eq!(c.is_empty(), model.is_empty());
                    assert_eq!(c.is_full(), model.len() == capacity);
                    assert_eq!(c.capacity(), capacity);
                    assert_eq!(c.is_disconnected(), !producer_alive);
                }
            }
            Op::Metrics => {
                let m = match (tx.as_ref(), rx.as_ref()) {
                    (Some(p), _) => p.metrics(),
                    (None, Some(c)) => c.metrics(),
                    (None, None) => continue,
                };
                assert_eq!(m.capacity, capacity);
                assert_eq!((m.pushed, m.popped, m.depth), (pushed, popped, model.len()));
            }
            Op::DropProducer => drop(tx.take()),
            Op::DropConsumer => drop(rx.take()),
        }
    }
    drop(tx);
    drop(rx);
}

fn check_no_tracked_left() {
    LIVE.with(|l| {
        let live = l.borrow();
        assert!(live.is_empty(), "items leaked: {:?}", live);
    });
}

fuzz_target!(|input: Input| {
    match (input.tracked, input.stamped) {
        (true, false) => run::<Tracked, Indexed>(&input),
        (true, true) => run::<Tracked, Stamped>(&input),
        (false, false) => run::<u32, Indexed>(&input),
        (false, true) => run::<u32, Stamped>(&input),
    }
    check_no_tracked_left();
});
