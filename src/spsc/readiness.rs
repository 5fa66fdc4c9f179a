//! The two flavours of the SPSC ring: how the consumer learns that an item is ready.
//!
//! - [`Indexed`] (the default): the producer's `tail` counter says how many items are ready.
//!   Slots hold bare items, so ready items form at most two contiguous runs of `T`, which is
//!   what [`Consumer::read_chunk`](super::Consumer::read_chunk) hands out as slices. A single
//!   item crosses between the cores as two cache lines: the `tail` line and the slot's line.
//! - [`Stamped`]: each slot also carries a stamp that the producer writes after the item. A
//!   single pop polls the slot it is about to read, so an item crosses as one line (the slot's),
//!   the `tail` line stays in the producer's cache, and a ping-pong hop costs what a raw atomic
//!   hand-off costs. Slots are interleaved `(item, stamp)` pairs, so there is no zero-copy chunk
//!   API; batch pops copy out (one `head` publication per batch, as in [`Indexed`]).
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
    }
}

/// The flavour of an SPSC ring (a type parameter of [`Producer`](super::Producer) and
/// [`Consumer`](super::Consumer)): how the consumer learns that an item is ready. Sealed.
///
/// - [`Indexed`] (the default): the producer's `tail` counter says how many items are ready.
///   Slots hold bare items, so ready items lie in at most two contiguous runs of `T`, which
///   [`read_chunk`](super::Consumer::read_chunk) hands out as slices and batch calls copy with
///   `memcpy`. A single item crosses between the cores as two cache lines (`tail`'s and the
///   slot's), but a `u64` takes 8 bytes instead of 16: best for batches and for single-item
///   throughput.
/// - [`Stamped`]: each slot also carries a stamp that the producer writes after the item. A
///   single pop polls the slot it is about to read, so an item crosses as one line and a
///   ping-pong hop costs about what a raw atomic hand-off costs: best for single-item
///   latency. No `read_chunk`; batch calls move item by item (one `head` publication per batch
///   still), and each slot is a `usize` larger.
///
/// docs/benchmarks.md has the measurements behind this advice.
pub trait Readiness: sealed::Flavour {}

/// The default flavour: readiness from the producer's counter; contiguous slots, zero-copy
/// [`read_chunk`](super::Consumer::read_chunk). See [`Readiness`] for the trade-off.
#[derive(Debug)]
pub enum Indexed {}

/// The low-latency flavour: readiness stamped in each slot; one cache line per item crossing,
/// no `read_chunk`. Built with [`Builder::build_stamped`](super::Builder::build_stamped).
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
}

/// A [`Stamped`] slot's stamp holds the sequence number of the last item written into it, plus
/// one. A slot is allocated with stamp `start`, which no sequence of the first lap (`start ..
/// start + len`) plus one equals; afterwards sequence `s` finds the stamp `s - len + 1` of the
/// lap before, never `s + 1`, until the producer marks it (sequence numbers wrap around
/// `usize::MAX`; equality is all that is compared).
impl sealed::Flavour for Stamped {
    type Stamp = AtomicUsize;
    const IN_SLOT: bool = true;

    fn alloc<T>(len: usize, start: usize) -> Result<SlotArray<Cell<T, AtomicUsize>>, AllocFailed> {
        SlotArray::try_new(len, |_| Cell {
            value: Slot::new(std::mem::MaybeUninit::uninit()),
            stamp: AtomicUsize::new(start),
        })
    }

    #[inline(always)]
    fn mark(stamp: &AtomicUsize, seq: usize) {
        // Release: pairs with the Acquire load in `is_marked`; the item written into the slot
        // (and everything the producer did before) is visible to a consumer that sees the stamp.
        stamp.store(seq.wrapping_add(1), Ordering::Release);
    }

    #[inline(always)]
    fn is_marked(stamp: &AtomicUsize, seq: usize) -> bool {
        // Acquire: pairs with the Release store in `mark`.
        stamp.load(Ordering::Acquire) == seq.wrapping_add(1)
    }
}
