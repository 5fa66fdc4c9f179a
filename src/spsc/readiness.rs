//! The two flavours of the SPSC ring: how the consumer learns that an item is ready, and the
//! producer that a slot is free.
//!
//! - [`Indexed`] (the default): the producer's `tail` counter says how many items are ready.
//!   Slots hold bare items, so ready items form at most two contiguous runs of `T`, which is
//!   what [`Consumer::read_chunk`](super::Consumer::read_chunk) hands out as slices. A single
//!   item crosses between the cores as two cache lines: the `tail` line and the slot's line.
//! - [`Stamped`]: each slot also carries a stamp that the producer writes after the item ("holds
//!   item `s`") and the consumer after reading it ("free for `s + len`", the next lap). Pops poll
//!   the slots they are about to read and a single push the slot it is about to write, so an
//!   item crosses as one line (the slot's), the counters' lines stay with their writers, and a
//!   ping-pong hop costs what a raw atomic hand-off costs. Slots are interleaved `(item, stamp)`
//!   pairs, so there is no zero-copy chunk API; batch pops copy out (one `head` publication
//!   per batch, as in [`Indexed`]).
//!
//! The flavour is a type parameter, so each ring's hot path is compiled for its own flavour
//! (no run-time branch); the trait is sealed.

use crate::buffer::{AllocFailed, Slot, SlotArray};
use crate::sync::{AtomicUsize, Ordering};

/// A slot of the ring: the item, then the flavour's stamp (nothing for [`Indexed`]).
///
/// `repr(C)` with the item first: for [`Indexed`] the stamp is `()`, so a `Cell<T, ()>` has the
/// size and alignment of `T` and the buffer is a plain array of `T` (what `read_chunk` and the
/// `memcpy` batch paths rely on; checked where they cast).
#[repr(C)]
pub struct Cell<T, S> {
    pub(crate) value: Slot<T>,
    pub(crate) stamp: S,
}

pub(crate) mod sealed {
    // `pub` items in a private module: usable in the crate, not nameable outside it.
    use super::Cell;
    use crate::buffer::{AllocFailed, SlotArray};

    /// What a flavour provides to the ring; sealed (not nameable outside the crate).
    pub trait Flavour: Send + Sync + Sized + 'static {
        /// The per-slot stamp.
        type Stamp: Send + Sync;
        /// `true` if single pops learn readiness from the slot's stamp instead of `tail`.
        const IN_SLOT: bool;
        /// Allocates `len` slots, no item in any, for a ring whose counters start at `start`.
        fn alloc<T>(
            len: usize,
            start: usize,
        ) -> Result<SlotArray<Cell<T, Self::Stamp>>, AllocFailed>;
        /// Producer: the item of sequence `seq` is written; make it visible through the stamp.
        fn mark(stamp: &Self::Stamp, seq: usize);
        /// Consumer: `true` if the item of sequence `seq` has been marked. When `true`, every
        /// write the producer made before marking is visible to the caller.
        fn is_marked(stamp: &Self::Stamp, seq: usize) -> bool;
        /// Consumer: the item this slot held is read (moved out or dropped); the slot is free
        /// for sequence `next`, the one a lap (`len` slots) later.
        fn mark_free(stamp: &Self::Stamp, next: usize);
        /// Producer: `true` if the slot has been marked free for sequence `seq`. When `true`,
        /// every read the consumer made of the slot before marking it happened before.
        fn is_free(stamp: &Self::Stamp, seq: usize) -> bool;
        /// `true` if item `seq` has been pushed: the stamp is its mark or a later state of the
        /// slot (freed, or holding a later lap's item). When `true`, the item's write (and
        /// everything the producer did before marking it) is visible to the caller.
        fn marked_or_later(stamp: &Self::Stamp, seq: usize) -> bool;
        /// `true` if the item a lap before `next` has been read by a single pop: the stamp is
        /// "free for `next`" or a later state of the slot. When `true`, that read happened
        /// before.
        fn freed_or_later(stamp: &Self::Stamp, next: usize) -> bool;
    }
}

/// The flavour of an SPSC ring (a type parameter of [`Producer`](super::Producer) and
/// [`Consumer`](super::Consumer)): how the consumer learns that an item is ready and the
/// producer that a slot is free. Sealed.
///
/// - [`Indexed`] (the default): the producer's `tail` counter says how many items are ready.
///   Slots hold bare items, so ready items lie in at most two contiguous runs of `T`, which
///   [`read_chunk`](super::Consumer::read_chunk) hands out as slices and batch calls copy with
///   `memcpy`. A single item crosses between the cores as two cache lines (`tail`'s and the
///   slot's), but a `u64` takes 8 bytes instead of 16: best for batches.
/// - [`Stamped`]: each slot also carries a stamp, written by the producer after the item and
///   by the consumer after reading it. Pops poll the slot they are about to read and a single
///   push the slot it is about to write, so an item crosses as one line and a ping-pong hop
///   costs about what a raw atomic hand-off costs: best for single-item latency. Its
///   single-item throughput depends on the host (docs/benchmarks.md, eleventh and twelfth
///   sessions). No `read_chunk`; batch calls move item by item (one `head` publication per
///   batch still), and each slot is a `usize` larger.
///
/// docs/benchmarks.md has the measurements behind this advice.
pub trait Readiness: sealed::Flavour {}

/// The default flavour: readiness from the producer's counter; contiguous slots, zero-copy
/// [`read_chunk`](super::Consumer::read_chunk). See [`Readiness`] for the trade-off.
#[derive(Debug)]
pub enum Indexed {}

/// The low-latency flavour: readiness and room stamped in each slot; one cache line per item
/// crossing, no `read_chunk`. Built with [`Builder::build_stamped`](super::Builder::build_stamped).
#[derive(Debug)]
pub enum Stamped {}

impl Readiness for Indexed {}
impl Readiness for Stamped {}

impl sealed::Flavour for Indexed {
    type Stamp = ();
    const IN_SLOT: bool = false;

    fn alloc<T>(len: usize, _start: usize) -> Result<SlotArray<Cell<T, ()>>, AllocFailed> {
        SlotArray::try_new(len, |_| Cell {
            value: Slot::new(std::mem::MaybeUninit::uninit()),
            stamp: (),
        })
    }

    #[inline(always)]
    fn mark(_: &(), _: usize) {}

    #[inline(always)]
    fn is_marked(_: &(), _: usize) -> bool {
        // Never asked: `IN_SLOT` is false, so the consumer reads `tail` instead.
        false
    }

    #[inline(always)]
    fn mark_free(_: &(), _: usize) {}

    #[inline(always)]
    fn is_free(_: &(), _: usize) -> bool {
        // Never asked: `IN_SLOT` is false, so the producer reads `head` instead.
        false
    }

    fn marked_or_later(_: &(), _: usize) -> bool {
        // Never asked: `Indexed` publishes its counters with every item.
        false
    }

    fn freed_or_later(_: &(), _: usize) -> bool {
        // Never asked, as above.
        false
    }
}

/// A [`Stamped`] stamp meaning "free for sequence `seq`": even.
#[inline(always)]
const fn free(seq: usize) -> usize {
    seq.wrapping_mul(2)
}

/// A [`Stamped`] stamp meaning "holds item `seq`": odd.
#[inline(always)]
const fn full(seq: usize) -> usize {
    seq.wrapping_mul(2).wrapping_add(1)
}

/// A [`Stamped`] slot's stamp says, of one sequence number `s`, either "free for `s`" (`2s`,
/// written by the consumer when it has read the item of `s - len`, the slot's previous
/// occupant) or "holds item `s`" (`2s + 1`, written by the producer after the item): the
/// consumer learns of an item and the producer of a free slot from the slot itself, neither
/// from the other side's counter. A slot is allocated free for its sequence of the first lap
/// (`start .. start + len`). Sequence numbers wrap around `usize::MAX` and the doubling drops
/// their top bit; equality is all that is compared, and the sequences one slot ever holds in
/// the lifetime of a comparison are a few laps apart, never a multiple of `2^63` apart.
impl sealed::Flavour for Stamped {
    type Stamp = AtomicUsize;
    const IN_SLOT: bool = true;

    fn alloc<T>(len: usize, start: usize) -> Result<SlotArray<Cell<T, AtomicUsize>>, AllocFailed> {
        // `len` is a power of two: slot `i` holds the sequences `s` with `s & (len - 1) == i`,
        // the first of them from `start` on being `start + ((i - start) & (len - 1))`.
        SlotArray::try_new(len, |i| Cell {
            value: Slot::new(std::mem::MaybeUninit::uninit()),
            stamp: AtomicUsize::new(free(start.wrapping_add(i.wrapping_sub(start) & (len - 1)))),
        })
    }

    #[inline(always)]
    fn mark(stamp: &AtomicUsize, seq: usize) {
        // Release: pairs with the Acquire load in `is_marked`; the item written into the slot
        // (and everything the producer did before) is visible to a consumer that sees the stamp.
        stamp.store(full(seq), Ordering::Release);
    }

    #[inline(always)]
    fn is_marked(stamp: &AtomicUsize, seq: usize) -> bool {
        // Acquire: pairs with the Release store in `mark`.
        stamp.load(Ordering::Acquire) == full(seq)
    }

    #[inline(always)]
    fn mark_free(stamp: &AtomicUsize, next: usize) {
        // Release: pairs with the Acquire load in `is_free`; the consumer's read of the item
        // (and everything it did before) happens before the producer overwrites the slot.
        stamp.store(free(next), Ordering::Release);
    }

    #[inline(always)]
    fn is_free(stamp: &AtomicUsize, seq: usize) -> bool {
        // Acquire: pairs with the Release store in `mark_free`.
        stamp.load(Ordering::Acquire) == free(seq)
    }

    fn marked_or_later(stamp: &AtomicUsize, seq: usize) -> bool {
        // A slot's stamps only grow (free for `s`, holds `s`, free for `s + len`, ...), in
        // wrapping terms. Acquire: pairs with the Release store in `mark` (or with a later
        // Release store of the slot, which happens after it).
        (stamp.load(Ordering::Acquire).wrapping_sub(full(seq)) as isize) >= 0
    }

    fn freed_or_later(stamp: &AtomicUsize, next: usize) -> bool {
        // As above; Acquire pairs with the Release store in `mark_free` (or a later one).
        (stamp.load(Ordering::Acquire).wrapping_sub(free(next)) as isize) >= 0
    }
}
