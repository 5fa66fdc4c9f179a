//! Reference rings of a second design for the single-item SPSC row: **readiness and room both
//! in the slot**. Each slot holds a stamp next to its `u64`; the producer may write sequence `s`
//! when the stamp says "free for `s`", and marks it "full for `s`"; the consumer may read `s`
//! when the stamp says "full for `s`", and marks it "free for `s + capacity`" (the next lap).
//! Neither side ever reads the other side's counter, so an item crosses between the cores as
//! its slot's line and nothing else (Vyukov's bounded queue, without the compare-and-swap that
//! several producers need; FastForward and B-Queue are the SPSC papers of this family).
//!
//! - `bare stamp ring`: exactly that, `u64` only, `try_` only: no counters, no way to learn
//!   that the other side is gone, no parking, no metrics. The design's reach.
//! - `bare stamp ring + checks`: the same ring with the per-item work that weir's rings do on
//!   top of the protocol: the producer loads a "consumer gone" flag before each push, each side
//!   stores its counter after each item (what `len`, the metrics and the drop of the remaining
//!   items read), and each side loads a "peer parked" flag after each publication (the check
//!   that lets the other side sleep, see weir's `wait` module). The flags are never set here:
//!   this measures what the checks cost, not what they do.
//!
//! Not contenders a user would pick (one item type, power-of-two capacity only, nothing but
//! `try_`), but the yardstick for the question the ≥ 1.3× single-item goal raises on machines
//! where weir's counter design is level with rtrb: would the other design reach it, and what
//! would a full ring's guarantees cost in it? docs/benchmarks.md, "What changed in the
//! eleventh session", has what they showed.

use super::Spsc;
use crossbeam_utils::CachePadded;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A slot: the stamp, then the item; 16 bytes, four to a 64-byte line.
#[repr(C, align(16))]
struct Slot {
    /// `2 * s` when free for sequence `s`, `2 * s + 1` when it holds item `s` (wrapping).
    stamp: AtomicUsize,
    value: UnsafeCell<u64>,
}

/// Eight slots: the slot array starts on a 128-byte boundary (as weir's and the bare ring's).
#[repr(C, align(128))]
struct Lines([Slot; 8]);

const fn free(seq: usize) -> usize {
    seq.wrapping_mul(2)
}

const fn full(seq: usize) -> usize {
    seq.wrapping_mul(2).wrapping_add(1)
}

struct Ring {
    lines: Box<[Lines]>,
    /// Items pushed and popped, for the `+ checks` ring (stored, never read on the hot path).
    tail: CachePadded<AtomicUsize>,
    head: CachePadded<AtomicUsize>,
    /// "Consumer gone", "consumer parked", "producer parked": never set here.
    consumer_gone: CachePadded<AtomicUsize>,
    consumer_parked: CachePadded<AtomicUsize>,
    producer_parked: CachePadded<AtomicUsize>,
}

// SAFETY: a slot's value is written only by the producer after it saw the slot's stamp "free
// for" that sequence (Acquire, pairing with the consumer's Release store of it, which follows
// the consumer's read), and read only by the consumer after it saw "full for" it (Acquire,
// pairing with the producer's Release store, which follows the write); each handle is owned
// by one thread (`&mut` in every call).
unsafe impl Sync for Ring {}
// SAFETY: as above; the ring holds plain `u64`s.
unsafe impl Send for Ring {}

/// The producer's half; `CHECKS` adds the per-item work of a full ring (module doc).
pub struct StampTx<const CHECKS: bool> {
    ring: Arc<Ring>,
    base: *const Slot,
    mask: usize,
    tail: usize,
}

/// The consumer's half.
pub struct StampRx<const CHECKS: bool> {
    ring: Arc<Ring>,
    base: *const Slot,
    mask: usize,
    head: usize,
}

// SAFETY: each half is used by one thread at a time (`&mut self` in every call); the raw
// pointer points into the `Arc`-owned slots, which outlive the half.
unsafe impl<const CHECKS: bool> Send for StampTx<CHECKS> {}
// SAFETY: as above.
unsafe impl<const CHECKS: bool> Send for StampRx<CHECKS> {}

fn channel<const CHECKS: bool>(capacity: usize) -> (StampTx<CHECKS>, StampRx<CHECKS>) {
    assert!(capacity.is_power_of_two() && capacity % 8 == 0);
    let lines = (0..capacity / 8)
        .map(|line| {
            Lines(std::array::from_fn(|k| Slot {
                // Every slot starts free for its sequence of the first lap.
                stamp: AtomicUsize::new(free(line * 8 + k)),
                value: UnsafeCell::new(0),
            }))
        })
        .collect::<Box<[Lines]>>();
    let ring = Arc::new(Ring {
        lines,
        tail: CachePadded::new(AtomicUsize::new(0)),
        head: CachePadded::new(AtomicUsize::new(0)),
        consumer_gone: CachePadded::new(AtomicUsize::new(0)),
        consumer_parked: CachePadded::new(AtomicUsize::new(0)),
        producer_parked: CachePadded::new(AtomicUsize::new(0)),
    });
    // `Lines` is `repr(C)` over an array of `Slot`, so the boxed slice is `capacity`
    // contiguous slots.
    let base = ring.lines.as_ptr() as *const Slot;
    let tx = StampTx {
        ring: ring.clone(),
        base,
        mask: capacity - 1,
        tail: 0,
    };
    let rx = StampRx {
        ring,
        base,
        mask: capacity - 1,
        head: 0,
    };
    (tx, rx)
}

impl<const CHECKS: bool> StampTx<CHECKS> {
    #[inline(always)]
    fn try_push(&mut self, v: u64) -> bool {
        let ring = &*self.ring;
        // Relaxed: a flag that carries no data (as weir's `consumer_gone`).
        if CHECKS && ring.consumer_gone.load(Ordering::Relaxed) != 0 {
            return false;
        }
        let seq = self.tail;
        // SAFETY: the index is masked into the `mask + 1` slots.
        let slot = unsafe { &*self.base.add(seq & self.mask) };
        // Acquire: pairs with the consumer's Release store of "free for `seq`", which follows
        // its read of the item this slot held a lap ago.
        if slot.stamp.load(Ordering::Acquire) != free(seq) {
            return false;
        }
        // SAFETY: the stamp says free for `seq`: the consumer is done with the slot and does not
        // read it until we mark it full.
        unsafe { *slot.value.get() = v };
        self.tail = seq.wrapping_add(1);
        // Release: pairs with the consumer's Acquire load of the stamp; the item is visible
        // to it once it sees "full for `seq`".
        slot.stamp.store(full(seq), Ordering::Release);
        if CHECKS {
            // Relaxed: a count for reporting; no data is read through it.
            ring.tail.store(self.tail, Ordering::Relaxed);
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
            // Relaxed: as weir's `has_waiters` after its publication (the flag is never set).
            if ring.consumer_parked.load(Ordering::Relaxed) != 0 {
                wake();
            }
        }
        true
    }
}

impl<const CHECKS: bool> StampRx<CHECKS> {
    #[inline(always)]
    fn try_pop(&mut self) -> Option<u64> {
        let ring = &*self.ring;
        let seq = self.head;
        // SAFETY: the index is masked into the `mask + 1` slots.
        let slot = unsafe { &*self.base.add(seq & self.mask) };
        // Acquire: pairs with the producer's Release store of "full for `seq`".
        if slot.stamp.load(Ordering::Acquire) != full(seq) {
            return None;
        }
        // SAFETY: the stamp says full for `seq`: the item is written, and the producer does not
        // touch the slot until we mark it free.
        let v = unsafe { *slot.value.get() };
        self.head = seq.wrapping_add(1);
        // Release: pairs with the producer's Acquire load of the stamp; our read of the item
        // happens before it overwrites the slot, a lap later.
        slot.stamp
            .store(free(seq.wrapping_add(self.mask + 1)), Ordering::Release);
        if CHECKS {
            // Relaxed: a count for reporting.
            ring.head.store(self.head, Ordering::Relaxed);
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
            // Relaxed: as in `try_push`.
            if ring.producer_parked.load(Ordering::Relaxed) != 0 {
                wake();
            }
        }
        Some(v)
    }
}

/// Where a full ring would wake the parked side; never reached here (the flags are never set).
#[cold]
#[inline(never)]
fn wake() {
    unreachable!("the reference ring's parked flags are never set");
}

/// The two reference rows: `StampRing<false>` is `bare stamp ring (reference)`,
/// `StampRing<true>` is `bare stamp ring + checks (reference)` (module doc).
pub struct StampRing<const CHECKS: bool>;
pub type BareStamp = StampRing<false>;
pub type BareStampChecks = StampRing<true>;

impl<const CHECKS: bool> Spsc for StampRing<CHECKS> {
    const NAME: &'static str = if CHECKS {
        "bare stamp ring + checks (reference)"
    } else {
        "bare stamp ring (reference)"
    };
    type Tx = StampTx<CHECKS>;
    type Rx = StampRx<CHECKS>;
    fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
        channel(capacity)
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.try_push(v)
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.try_pop()
    }
}
