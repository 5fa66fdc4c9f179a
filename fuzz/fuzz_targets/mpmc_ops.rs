#![no_main]
//! Every operation of the MPMC ring's handles, in a random order, on one thread, checked step by
//! step against a `VecDeque` model: return values, items handed back, order, `len`, metrics,
//! disconnects, and holes (positions a `push_iter` claimed but could not fill and could not give
//! back because another handle pushed after its claim).

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;
use weir::mpmc::{Builder, Producer};
use weir::{PopTimeoutError, PushTimeoutError, TryPopError};

#[derive(Arbitrary, Debug)]
enum Op {
    TryPush,
    /// Blocking push: only issued when it cannot block (room, or no consumer left).
    Push,
    PushTimeoutZero,
    ForcePush,
    Shed,
    PushSlice(u8),
    /// `push_iter` of an iterator that yields `real` items but claims `hint` in its size hint;
    /// on its `interleave`-th `next()` call it first pushes one item through another producer.
    PushIter {
        real: u8,
        hint: u8,
        exact_hint: bool,
        interleave: Option<u8>,
    },
    TryPop,
    /// Blocking pop: only issued when it cannot block.
    Pop,
    PopTimeoutZero,
    TryPopBatch(u8),
    /// Blocking batch pop: only issued when it cannot block.
    PopBatch(u8),
    PopBatchTimeoutZero(u8),
    CloneProducer,
    DropProducer(u8),
    CloneConsumer,
    DropConsumer(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    capacity: u8,
    near_wrap: Option<u8>,
    ops: Vec<Op>,
}

/// The model: `None` entries are holes (they take a slot but are not items).
#[derive(Default)]
struct Model {
    ring: VecDeque<Option<u32>>,
    pushed: u64,
    popped: u64,
    displaced: u64,
    shed: u64,
    push_full: u64,
    pop_empty: u64,
}

impl Model {
    fn items(&self) -> usize {
        self.ring.iter().filter(|e| e.is_some()).count()
    }
    fn push(&mut self, v: u32) {
        self.ring.push_back(Some(v));
        self.pushed += 1;
    }
    /// Takes positions from the front like `claim_pop(want)` + `take`: a run of up to `want`,
    /// repeated while the run held only holes.
    fn take(&mut self, want: usize) -> Vec<u32> {
        loop {
            if self.ring.is_empty() {
                return Vec::new();
            }
            let run: Vec<_> = (0..want.min(self.ring.len()))
                .map(|_| self.ring.pop_front().unwrap())
                .collect();
            let items: Vec<u32> = run.into_iter().flatten().collect();
            if !items.is_empty() {
                self.popped += items.len() as u64;
                return items;
            }
        }
    }
}

struct Source<'a> {
    next: u32,
    left: u8,
    calls: u8,
    hint: usize,
    exact_hint: bool,
    interleave: Option<u8>,
    other: &'a Producer<u32>,
    /// Model of what the interleaved pushes did: (value, accepted?).
    log: &'a RefCell<Vec<(u32, bool)>>,
    pulled: &'a RefCell<Vec<u32>>,
}

impl Iterator for Source<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        self.calls += 1;
        if self.interleave == Some(self.calls) {
            let v = 1_000_000 + self.calls as u32;
            let ok = self.other.try_push(v).is_ok();
            self.log.borrow_mut().push((v, ok));
        }
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.next += 1;
        self.pulled.borrow_mut().push(self.next);
        Some(self.next)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.exact_hint {
            (self.left as usize, Some(self.left as usize))
        } else {
            (self.hint, None)
        }
    }
}

fuzz_target!(|input: Input| {
    let capacity = (input.capacity % 16) as usize + 1;
    let mut builder = Builder::new(capacity);
    if let Some(k) = input.near_wrap {
        builder = builder.start_sequence(usize::MAX - k as usize);
    }
    let (tx, rx) = builder.build::<u32>().unwrap();
    let mut producers = vec![tx];
    let mut consumers = vec![rx];
    let mut m = Model::default();
    let mut next = 0u32;
    fn fresh(next: &mut u32) -> u32 {
        *next += 1;
        *next
    }
    for op in input.ops {
        let cap_left = capacity - m.ring.len();
        let no_consumer = consumers.is_empty();
        let no_producer = producers.is_empty();
        match op {
            Op::TryPush | Op::Push | Op::PushTimeoutZero | Op::Shed => {
                let Some(tx) = producers.first() else {
                    continue;
                };
                if matches!(op, Op::Push) && cap_left == 0 && !no_consumer {
                    continue;
                }
                let v = fresh(&mut next);
                let r: Result<(), (u32, bool)> = match op {
                    Op::TryPush => tx
                        .try_push(v)
                        .map_err(|e| (e.clone().into_inner(), e.is_full())),
                    Op::Shed => tx
                        .try_push_or_shed(v)
                        .map_err(|e| (e.clone().into_inner(), e.is_full())),
                    Op::Push => tx.push(v).map_err(|e| (e.into_inner(), false)),
                    _ => tx.push_timeout(v, Duration::ZERO).map_err(|e| {
                        (
                            e.clone().into_inner(),
                            matches!(e, PushTimeoutError::Timeout(_)),
                        )
                    }),
                };
                if no_consumer {
                    assert_eq!(r, Err((v, false)), "push with no consumer");
                } else if cap_left == 0 {
                    assert_eq!(r, Err((v, true)), "push on a full ring");
                    m.push_full += 1;
                    if matches!(op, Op::Shed) {
                        m.shed += 1;
                    }
                } else {
                    assert_eq!(r, Ok(()));
                    m.push(v);
                }
            }
            Op::ForcePush => {
                let Some(tx) = producers.first() else {
                    continue;
                };
                let v = fresh(&mut next);
                let r = tx.force_push(v);
                if no_consumer {
                    assert_eq!(r.unwrap_err().into_inner(), v);
                } else if cap_left > 0 {
                    assert_eq!(r, Ok(None));
                    m.push(v);
                } else {
                    let old = m.ring.pop_front().unwrap();
                    assert_eq!(r, Ok(old));
                    if old.is_some() {
                        m.displaced += 1;
                    }
                    m.push(v);
                }
            }
            Op::PushSlice(n) => {
                let Some(tx) = producers.first() else {
                    continue;
                };
                let items: Vec<u32> = (0..n % 20).map(|_| fresh(&mut next)).collect();
                let k = tx.push_slice(&items);
                if no_consumer || items.is_empty() {
                    assert_eq!(k, 0);
                } else {
                    assert_eq!(k, items.len().min(cap_left));
                    if k == 0 {
                        m.push_full += 1;
                    }
                    items[..k].iter().for_each(|&v| m.push(v));
                }
            }
            Op::PushIter {
                real,
                hint,
                exact_hint,
                interleave,
            } => {
                let Some(tx) = producers.first() else {
                    continue;
                };
                let other = tx.clone();
                let log = RefCell::new(Vec::new());
                let pulled = RefCell::new(Vec::new());
                let base = next;
                let real = real % 12;
                let src = Source {
                    next: base,
                    left: real,
                    calls: 0,
                    hint: hint as usize % 12,
                    exact_hint,
                    interleave: interleave.map(|i| i % 14),
                    other: &other,
                    log: &log,
                    pulled: &pulled,
                };
                let k = tx.push_iter(src);
                drop(other);
                next = base + real as u32;
                // Model push_iter: chunks of clamp(lower, 1, upper) slots, each claimed at once;
                // an interleaved push lands after the current chunk; unused slots of a chunk are
                // given back unless an interleaved push happened during that chunk (holes).
                let pulled = pulled.into_inner();
                let log = log.into_inner();
                assert_eq!(k, pulled.len(), "push_iter returned {k}, pulled {pulled:?}");
                if no_consumer {
                    assert_eq!(k, 0);
                    assert!(log.is_empty());
                    continue;
                }
                let mut calls = 0u8;
                let mut left = real;
                let mut written_total = 0;
                let mut log_iter = log.iter();
                loop {
                    let (lower, upper) = if exact_hint {
                        (left as usize, Some(left as usize))
                    } else {
                        (hint as usize % 12, None)
                    };
                    if upper == Some(0) {
                        break;
                    }
                    let want = lower.clamp(1, upper.unwrap_or(usize::MAX)).min(capacity);
                    let n = want.min(capacity - m.ring.len());
                    if n == 0 {
                        if written_total == 0 {
                            m.push_full += 1;
                        }
                        break;
                    }
                    let chunk_start = m.ring.len();
                    m.ring.extend(std::iter::repeat_n(None, n));
                    let mut written = 0;
                    let mut interleaved = false;
                    while written < n {
                        calls += 1;
                        if interleave.map(|i| i % 14) == Some(calls) {
                            let &(v, ok) = log_iter.next().expect("interleaved push happened");
                            let room = m.ring.len() < capacity;
                            assert_eq!(ok, room, "interleaved push of {v}");
                            if ok {
                                m.push(v);
                                interleaved = true;
                            } else {
                                m.push_full += 1;
                            }
                        }
                        if left == 0 {
                            break;
                        }
                        left -= 1;
                        m.ring[chunk_start + written] = Some(pulled[written_total + written]);
                        m.pushed += 1;
                        written += 1;
                    }
                    written_total += written;
                    if written < n {
                        if !interleaved {
                            // Given back: remove the unused placeholders.
                            let unused: Vec<_> = m
                                .ring
                                .drain(chunk_start + written..chunk_start + n)
                                .collect();
                            assert!(unused.iter().all(Option::is_none));
                        }
                        break;
                    }
                }
                assert!(log_iter.next().is_none());
                assert_eq!(written_total, k);
            }
            Op::TryPop | Op::Pop | Op::PopTimeoutZero => {
                let Some(rx) = consumers.first() else {
                    continue;
                };
                if matches!(op, Op::Pop) && m.items() == 0 && !no_producer {
                    continue;
                }
                let r: Result<u32, bool> = match op {
                    Op::TryPop => rx.try_pop().map_err(|e| e == TryPopError::Disconnected),
                    Op::Pop => rx.pop().map_err(|_| true),
                    _ => rx
                        .pop_timeout(Duration::ZERO)
                        .map_err(|e| e == PopTimeoutError::Disconnected),
                };
                let want = m.take(1);
                match want.first() {
                    Some(&v) => assert_eq!(r, Ok(v)),
                    None if no_producer => assert_eq!(r, Err(true)),
                    None => {
                        assert_eq!(r, Err(false));
                        m.pop_empty += 1;
                    }
                }
            }
            Op::TryPopBatch(max) | Op::PopBatch(max) | Op::PopBatchTimeoutZero(max) => {
                let Some(rx) = consumers.first() else {
                    continue;
                };
                let max = max as usize % 20;
                if matches!(op, Op::PopBatch(_)) && max > 0 && m.items() == 0 && !no_producer {
                    continue;
                }
                let mut out = vec![7777];
                let r: Result<usize, bool> = match op {
                    Op::TryPopBatch(_) => rx
                        .try_pop_batch(&mut out, max)
                        .map_err(|e| e == TryPopError::Disconnected),
                    Op::PopBatch(_) => rx.pop_batch(&mut out, max).map_err(|_| true),
                    _ => rx
                        .pop_batch_timeout(&mut out, max, Duration::ZERO)
                        .map_err(|e| e == PopTimeoutError::Disconnected),
                };
                assert_eq!(out[0], 7777, "batch must append");
                if max == 0 {
                    assert_eq!(r, Ok(0));
                    continue;
                }
                let want = m.take(max.min(capacity));
                if want.is_empty() {
                    if no_producer {
                        assert_eq!(r, Err(true));
                    } else {
                        assert_eq!(r, Err(false));
                        m.pop_empty += 1;
                    }
                } else {
                    assert_eq!(r, Ok(want.len()));
                    assert_eq!(out[1..], want[..]);
                }
            }
            Op::CloneProducer => {
                if let Some(tx) = producers.first() {
                    producers.push(tx.clone());
                }
            }
            Op::DropProducer(i) => {
                if !producers.is_empty() {
                    let i = i as usize % producers.len();
                    producers.remove(i);
                }
            }
            Op::CloneConsumer => {
                if let Some(rx) = consumers.first() {
                    consumers.push(rx.clone());
                }
            }
            Op::DropConsumer(i) => {
                if !consumers.is_empty() {
                    let i = i as usize % consumers.len();
                    consumers.remove(i);
                }
            }
        }
        // State checks after every step, through whichever handle is left.
        let metrics = producers
            .first()
            .map(|p| (p.len(), p.metrics()))
            .or_else(|| consumers.first().map(|c| (c.len(), c.metrics())));
        if let Some((len, mt)) = metrics {
            assert_eq!(len, m.items(), "len");
            assert_eq!(mt.capacity, capacity);
            assert_eq!(mt.depth, m.items(), "depth");
            assert_eq!(mt.pushed, m.pushed, "pushed");
            assert_eq!(mt.popped, m.popped, "popped");
            assert_eq!(mt.displaced, m.displaced, "displaced");
            assert_eq!(mt.shed, m.shed, "shed");
            assert_eq!(mt.push_full, m.push_full, "push_full");
            assert_eq!(mt.pop_empty, m.pop_empty, "pop_empty");
        }
        if let Some(p) = producers.first() {
            assert_eq!(p.is_disconnected(), consumers.is_empty());
            assert_eq!(p.is_full(), m.items() == capacity);
        }
        if let Some(c) = consumers.first() {
            assert_eq!(c.is_disconnected(), producers.is_empty());
            assert_eq!(c.is_empty(), m.items() == 0);
        }
    }
});
