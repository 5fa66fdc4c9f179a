//! Reference rings for the SPSC rows: the design that weir's default `Indexed` flavour and rtrb
//! share (Lamport's ring, each side keeping a cached copy of the other side's counter), written
//! as bare as it gets: `u64` items only, no disconnection, no parking, no metrics, no checks
//! beyond the counters. Not a contender a user would pick (one item type, no way to learn that
//! the other side is gone, no blocking calls, nothing but `try_` and slices), but the yardstick
//! for two questions the goals of issue 6 raise:
//!
//! - `bare ring` (no prefetch): how far is a crate from the bare design? rtrb is near it.
//! - `bare ring + hints`: the same ring with weir's cache hints: its prefetch rules (8 lines
//!   ahead: the producer asks for lines to write once they are free by its cached bound, the
//!   consumer for lines to read once they are published by its cached `tail`; single items at
//!   each line start, batches for the lines of the next batch) and, on CPUs that have it, its
//!   demotion of the lines a batch publication completed (`CLDEMOTE`, after the store of
//!   `tail`). How far is weir, with its API, its guarantees and its bookkeeping, from what its
//!   design can do at best? And how far is that best from rtrb: the most any ring of this
//!   design can show against it on this machine.
//!
//! docs/benchmarks.md, "What changed in the seventh session" and "... ninth session", has what
//! they showed. (Until the ninth session this row was `bare ring + prefetch`, without the
//! demotion.)

use super::Spsc;
use crossbeam_utils::CachePadded;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// `u64` slots per 64-byte cache line.
const LINE: usize = 8;

/// Two cache lines of slots, so that the slot array starts on a 128-byte boundary (as weir's).
#[repr(C, align(128))]
struct Lines([UnsafeCell<u64>; 2 * LINE]);

struct Ring {
    tail: CachePadded<AtomicUsize>,
    head: CachePadded<AtomicUsize>,
    slots: Box<[Lines]>,
    capacity: usize,
}

// SAFETY: a slot is written only by the producer while it is free (`head + capacity > seq >=
// tail`) and read only by the consumer while it is published (`head <= seq < tail`); each
// handle is owned by one thread (`&mut` in every call), and the counters are atomics.
unsafe impl Sync for Ring {}
// SAFETY: as above; the ring holds plain `u64`s.
unsafe impl Send for Ring {}

impl Ring {
    /// The first slot; slot `i` of the ring is `base().add(i)` for `i < capacity`.
    fn base(&self) -> *mut u64 {
        // `Lines` is `repr(C)` over an array of `UnsafeCell<u64>` (same layout as `u64`), so the
        // boxed slice is `capacity` contiguous `u64` cells.
        UnsafeCell::raw_get(self.slots.as_ptr() as *const UnsafeCell<u64>)
    }
}

/// The producer's half.
pub struct BareTx {
    ring: Arc<Ring>,
    base: *mut u64,
    mask: usize,
    /// Our counter (the only writer).
    tail: usize,
    /// The consumer's `head` as last seen, plus the capacity: free up to here.
    limit: usize,
    /// Prefetch distance in slots; 0 when off.
    ahead: usize,
    /// Whether batch publications demote the lines they completed.
    demote: bool,
}

/// The consumer's half.
pub struct BareRx {
    ring: Arc<Ring>,
    base: *const u64,
    mask: usize,
    /// Our counter (the only writer).
    head: usize,
    /// The producer's `tail` as last seen: published up to here.
    ready_to: usize,
    /// Prefetch distance in slots; 0 when off.
    ahead: usize,
}

// SAFETY: each half is used by one thread at a time (`&mut self` in every call); the raw
// pointers point into the `Arc`-owned slots, which outlive the half.
unsafe impl Send for BareTx {}
// SAFETY: as above.
unsafe impl Send for BareRx {}

/// A ring of `capacity` slots (a power of two, a multiple of two lines) with the given prefetch
/// distance in lines (0: none), demoting published lines of batches if `demote` (and the CPU
/// can).
fn channel(capacity: usize, lines_ahead: usize, demote: bool) -> (BareTx, BareRx) {
    assert!(capacity.is_power_of_two() && capacity % (2 * LINE) == 0);
    assert!((lines_ahead + 1) * LINE <= capacity);
    let slots = (0..capacity / (2 * LINE))
        .map(|_| Lines(std::array::from_fn(|_| UnsafeCell::new(0))))
        .collect();
    let ring = Arc::new(Ring {
        tail: CachePadded::new(AtomicUsize::new(0)),
        head: CachePadded::new(AtomicUsize::new(0)),
        slots,
        capacity,
    });
    let base = ring.base();
    let ahead = if lines_ahead > 0 && prefetchw_available() {
        lines_ahead * LINE
    } else {
        0
    };
    let tx = BareTx {
        ring: ring.clone(),
        base,
        mask: capacity - 1,
        tail: 0,
        limit: capacity,
        ahead,
        demote: demote && cldemote_available(),
    };
    let rx = BareRx {
        ring,
        base,
        mask: capacity - 1,
        head: 0,
        ready_to: 0,
        ahead,
    };
    (tx, rx)
}

impl BareTx {
    /// Reloads the consumer's counter; returns the free slots.
    #[inline(always)]
    fn reload(&mut self) -> usize {
        // Acquire: pairs with the consumer's Release store of `head`; its reads of the slots it
        // freed happen before we overwrite them.
        self.limit = self.ring.head.load(Ordering::Acquire) + self.ring.capacity;
        self.limit - self.tail
    }

    /// Publishes the slots written up to `self.tail`.
    #[inline(always)]
    fn publish(&self) {
        // Release: pairs with the consumer's Acquire load of `tail`; our slot writes are visible
        // to it once it sees the new value.
        self.ring.tail.store(self.tail, Ordering::Release);
    }

    /// Asks for the line starting at `seq` for writing if all of it is free by our bound.
    #[inline(always)]
    fn prefetch(&self, seq: usize) {
        if seq + LINE <= self.limit {
            prefetch_for_write(self.base.wrapping_add(seq & self.mask));
        }
    }

    #[inline(always)]
    pub fn try_push(&mut self, v: u64) -> bool {
        if self.tail == self.limit && self.reload() == 0 {
            return false;
        }
        if self.ahead != 0 && self.tail % LINE == 0 {
            self.prefetch(self.tail + self.ahead);
        }
        // SAFETY: `tail < limit`, so the slot is free: the consumer does not read it until we
        // publish a larger `tail`. The index is masked into the ring.
        unsafe { self.base.add(self.tail & self.mask).write(v) };
        self.tail += 1;
        self.publish();
        true
    }

    #[inline(always)]
    pub fn push_slice(&mut self, items: &[u64]) -> usize {
        let mut room = self.limit - self.tail;
        if room < items.len() {
            room = self.reload();
        }
        let n = room.min(items.len());
        if n == 0 {
            return 0;
        }
        let at = self.tail & self.mask;
        let first = n.min(self.ring.capacity - at);
        // SAFETY: the `n` slots from `tail` are free (`n <= limit - tail`) and lie in the two
        // runs `at .. at + first` and `0 .. n - first` of the ring; `items` has `n` items and
        // does not overlap the ring.
        unsafe {
            std::ptr::copy_nonoverlapping(items.as_ptr(), self.base.add(at), first);
            std::ptr::copy_nonoverlapping(items.as_ptr().add(first), self.base, n - first);
        }
        self.tail += n;
        self.publish();
        if self.demote {
            // The lines this publication completed: those ending in `tail - n + 1 ..= tail`.
            let mut seq = (self.tail - n) & !(LINE - 1);
            while seq + LINE <= self.tail {
                cldemote(self.base.wrapping_add(seq & self.mask));
                seq += LINE;
            }
        }
        if self.ahead != 0 {
            // The lines of the next batch not asked for after this one's predecessor.
            let mut seq = (self.tail + self.ahead.saturating_sub(n)).next_multiple_of(LINE);
            while seq < self.tail + self.ahead {
                self.prefetch(seq);
                seq += LINE;
            }
        }
        n
    }
}

impl BareRx {
    /// Reloads the producer's counter; returns the published slots.
    #[inline(always)]
    fn reload(&mut self) -> usize {
        // Acquire: pairs with the producer's Release store of `tail`; its slot writes are
        // visible to our reads.
        self.ready_to = self.ring.tail.load(Ordering::Acquire);
        self.ready_to - self.head
    }

    /// Frees the slots read up to `self.head`.
    #[inline(always)]
    fn release(&self) {
        // Release: pairs with the producer's Acquire load of `head`; our reads of the freed
        // slots happen before it overwrites them.
        self.ring.head.store(self.head, Ordering::Release);
    }

    /// Asks for the line starting at `seq` for reading if all of it is published.
    #[inline(always)]
    fn prefetch(&self, seq: usize) {
        if seq + LINE <= self.ready_to {
            prefetch_for_read(self.base.wrapping_add(seq & self.mask));
        }
    }

    #[inline(always)]
    pub fn try_pop(&mut self) -> Option<u64> {
        if self.head == self.ready_to && self.reload() == 0 {
            return None;
        }
        if self.ahead != 0 && self.head % LINE == 0 {
            self.prefetch(self.head + self.ahead);
        }
        // SAFETY: `head < ready_to`, so the slot holds a published item that the producer does
        // not overwrite until we publish a larger `head`.
        let v = unsafe { self.base.add(self.head & self.mask).read() };
        self.head += 1;
        self.release();
        Some(v)
    }

    #[inline(always)]
    pub fn pop_batch(&mut self, max: usize, mut sink: impl FnMut(u64)) -> usize {
        let mut ready = self.ready_to - self.head;
        if ready < max {
            ready = self.reload();
        }
        let n = ready.min(max);
        if n == 0 {
            return 0;
        }
        if self.ahead != 0 {
            let mut seq = (self.head + n.max(self.ahead)).next_multiple_of(LINE);
            while seq < self.head + n + self.ahead {
                self.prefetch(seq);
                seq += LINE;
            }
        }
        let at = self.head & self.mask;
        let first = n.min(self.ring.capacity - at);
        // SAFETY: the `n` slots from `head` are published (`n <= ready_to - head`) and lie in
        // the two runs `at .. at + first` and `0 .. n - first`; the producer does not write them
        // until we publish a larger `head`, after the last read below.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(self.base.add(at), first),
                std::slice::from_raw_parts(self.base, n - first),
            )
        };
        a.iter().chain(b).for_each(|&v| sink(v));
        self.head += n;
        self.release();
        n
    }
}

/// x86-64 `PREFETCHW` (the line in the state for writing); nothing elsewhere. Called only where
/// [`prefetchw_available`] said yes.
#[inline(always)]
fn prefetch_for_write(p: *const u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and changes no register, flag or memory; the CPU has the
    // instruction (`prefetchw_available`).
    unsafe {
        std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// x86-64 `PREFETCHT0` (SSE, on every x86-64 CPU); nothing elsewhere.
#[inline(always)]
fn prefetch_for_read(p: *const u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `prefetch_for_write`; PREFETCHT0 is part of x86-64.
    unsafe {
        std::arch::asm!("prefetcht0 [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// x86-64 `CLDEMOTE` (the line out of this core's caches into the shared last-level cache);
/// nothing elsewhere. Called only where [`cldemote_available`] said yes.
#[inline(always)]
fn cldemote(p: *const u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a hint: never faults, changes no register, flag or memory; the CPU has the
    // instruction (`cldemote_available`).
    unsafe {
        std::arch::asm!("cldemote [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Whether the CPU has `CLDEMOTE` (CPUID leaf 7, sub-leaf 0, ECX bit 25), as weir asks.
fn cldemote_available() -> bool {
    cpuid_ecx_bit(7, 25)
}

/// Whether the CPU has `PREFETCHW` (CPUID leaf 8000_0001h, ECX bit 8), as weir asks.
fn prefetchw_available() -> bool {
    cpuid_ecx_bit(0x8000_0001, 8)
}

/// Whether CPUID leaf `leaf` (sub-leaf 0) reports bit `bit` of ECX; the leaf is asked only if
/// the first leaf of its range (basic `0`, extended `8000_0000h`) reports it. False elsewhere.
fn cpuid_ecx_bit(leaf: u32, bit: u32) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        // SAFETY: CPUID exists on every x86-64 CPU and only reads identification registers;
        // `leaf` is asked only if the first leaf of its range reports it.
        #[allow(unused_unsafe)]
        unsafe {
            __cpuid(leaf & 0x8000_0000).eax >= leaf && __cpuid_count(leaf, 0).ecx & (1 << bit) != 0
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (leaf, bit);
        false
    }
}

macro_rules! bare_contender {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $lines:expr, $demote:expr) => {
        $(#[$doc])*
        pub struct $ty;
        impl Spsc for $ty {
            const NAME: &'static str = $name;
            const BATCH_API: &'static str = "slice copy / slice view (reference)";
            type Tx = BareTx;
            type Rx = BareRx;
            fn channel(capacity: usize) -> (Self::Tx, Self::Rx) {
                channel(capacity, $lines, $demote)
            }
            #[inline(always)]
            fn try_push(tx: &mut Self::Tx, v: u64) -> bool {
                tx.try_push(v)
            }
            #[inline(always)]
            fn try_pop(rx: &mut Self::Rx) -> Option<u64> {
                rx.try_pop()
            }
            #[inline(always)]
            fn push_slice(tx: &mut Self::Tx, items: &[u64]) -> usize {
                tx.push_slice(items)
            }
            #[inline(always)]
            fn pop_batch(rx: &mut Self::Rx, max: usize, sink: impl FnMut(u64)) -> usize {
                rx.pop_batch(max, sink)
            }
        }
    };
}

bare_contender!(
    /// The bare ring without cache hints (see the module docs).
    Bare,
    "bare ring (reference)",
    0,
    false
);
bare_contender!(
    /// The bare ring with weir's cache hints: prefetches 8 lines ahead, demoted batches (see
    /// the module docs).
    BareHints,
    "bare ring + hints (reference)",
    8,
    true
);
