//! The slot array shared by both rings, and the capacity checks that guard its allocation.

use crate::error::CapacityError;
use crate::sync::UnsafeCell;
use std::alloc::{alloc, dealloc, Layout};
use std::mem::{needs_drop, size_of, MaybeUninit};
use std::ops::Deref;
use std::ptr::NonNull;

/// A slot that may or may not hold an item. Which slots hold one is known from the ring's
/// counters (or from a stamp kept next to the slot, see `spsc::Stamped` and `mpmc`).
pub(crate) type Slot<T> = UnsafeCell<MaybeUninit<T>>;

/// The number of slots of type `S` for a ring of exact `capacity`: the next power of two, so
/// that a sequence number maps to its slot with a mask (`seq & (len - 1)`), never a division.
///
/// Fails with [`CapacityError::Zero`] for 0 and [`CapacityError::TooLarge`] when the power of two
/// overflows `usize` or the buffer's byte size would exceed `isize::MAX` (Rust's allocation limit).
pub(crate) fn slot_count<S>(capacity: usize) -> Result<usize, CapacityError> {
    if capacity == 0 {
        return Err(CapacityError::Zero);
    }
    let too_large = CapacityError::TooLarge {
        requested: capacity,
    };
    let len = capacity.checked_next_power_of_two().ok_or(too_large)?;
    let bytes = len.checked_mul(size_of::<S>()).ok_or(too_large)?;
    // Room to round the size up to `SLOT_ALIGN` (`SlotArray`) within Rust's allocation limit.
    if bytes > isize::MAX as usize - SLOT_ALIGN {
        return Err(too_large);
    }
    Ok(len)
}

/// The allocator refused the memory for a ring's slots (`bytes` of it): a request that
/// [`slot_count`] let through (it fits `isize::MAX`) but that the machine cannot back, such as
/// 2^58 bytes on a 48-bit address space. The builders turn it into
/// [`CapacityError::AllocationFailed`], so that even then the caller gets an error, not an abort.
/// (`pub` in a private module, as [`SlotArray`], for the sealed flavour trait of `spsc`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocFailed {
    pub(crate) bytes: usize,
}

impl AllocFailed {
    /// The error a builder returns for a ring of `requested` items.
    pub(crate) fn for_capacity(self, requested: usize) -> CapacityError {
        CapacityError::AllocationFailed {
            requested,
            bytes: self.bytes,
        }
    }
}

/// Where a [`SlotArray`] starts: a multiple of 128 bytes, a pair of 64-byte cache lines (the
/// unit the adjacent-line prefetcher of x86 cores fetches).
/// `RUSTFLAGS="--cfg weir_slot_align_16"` builds with 16 instead (what `malloc` gives), for the
/// comparison in docs/benchmarks.md.
pub(crate) const SLOT_ALIGN: usize = if cfg!(weir_slot_align_16) { 16 } else { 128 };

/// A fixed-size heap array of slots that starts on a [`SLOT_ALIGN`] boundary.
///
/// `Box<[S]>` would start wherever the allocator puts it (glibc: 16 bytes past a line boundary),
/// so a batch of whole cache lines' worth of items would straddle one line more than it needs,
/// and the line at each batch boundary would be written by the producer while the consumer
/// still reads it. Starting on a line boundary lines a batch of 8k `u64` items up with k
/// lines. Dereferences to `[S]`; drops its slots, then frees the memory. (`pub` in a private
/// module, for the sealed flavour trait of `spsc`; not nameable outside the crate.)
pub struct SlotArray<S> {
    ptr: NonNull<S>,
    len: usize,
}

impl<S> SlotArray<S> {
    /// `len` slots, each built by `init(index)`, or [`AllocFailed`] if the allocator refuses
    /// the memory. The caller has checked `len` with [`slot_count`], so the layout below exists.
    pub(crate) fn try_new(
        len: usize,
        mut init: impl FnMut(usize) -> S,
    ) -> Result<Self, AllocFailed> {
        let layout = Self::layout(len);
        if layout.size() == 0 {
            // Zero-sized slots: nothing to allocate; a dangling, aligned pointer is valid for
            // reads and writes of zero-sized values. Such a value "lives" at the dangling
            // pointer: building one and forgetting it is moving it there, and `drop` drops it
            // once. Nothing to do if it has no `Drop`.
            if needs_drop::<S>() {
                for i in 0..len {
                    std::mem::forget(init(i));
                }
            }
            return Ok(SlotArray {
                ptr: NonNull::dangling(),
                len,
            });
        }
        // SAFETY: the layout has a non-zero size (checked above).
        let raw = unsafe { alloc(layout) } as *mut S;
        let Some(ptr) = NonNull::new(raw) else {
            return Err(AllocFailed {
                bytes: layout.size(),
            });
        };
        for i in 0..len {
            // SAFETY: `i < len` and the allocation holds `len` slots of `S`, aligned (the
            // layout's alignment is a multiple of `S`'s); each slot is written once, before any
            // read. Should `init` panic, the slots written so far and the memory leak (no
            // `SlotArray` exists yet to free them): a leak, never a double drop.
            unsafe { ptr.as_ptr().add(i).write(init(i)) };
        }
        Ok(SlotArray { ptr, len })
    }

    fn layout(len: usize) -> Layout {
        Layout::array::<S>(len)
            .and_then(|l| l.align_to(SLOT_ALIGN))
            .map(|l| l.pad_to_align())
            .expect("slot_count bounds the size")
    }
}

impl<S> Deref for SlotArray<S> {
    type Target = [S];

    #[inline(always)]
    fn deref(&self) -> &[S] {
        // SAFETY: `ptr` points to `len` initialised slots (written in `new`), or is dangling and
        // aligned with zero-sized `S`; they live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<S> Drop for SlotArray<S> {
    fn drop(&mut self) {
        // SAFETY: the `len` slots are initialised and dropped here once (`&mut self`, and `self`
        // is never used again); the memory was allocated in `new` with the same layout.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr(),
                self.len,
            ));
            let layout = Self::layout(self.len);
            if layout.size() != 0 {
                dealloc(self.ptr.as_ptr() as *mut u8, layout);
            }
        }
    }
}

/// How far ahead the SPSC handles ask for cache lines: 8 lines (512 bytes). A cache-to-cache
/// transfer takes about half the floor's round trip on the machine of docs/benchmarks.md (60–200
/// ns), and a line of `u64`s is written or read in 8 single-item calls of a few ns each: a request
/// issued 8 lines ahead has arrived by the time the handle gets there.
pub(crate) const PREFETCH_LINES: usize = 8;

/// Slots of type `S` per 64-byte cache line, rounded down to a power of two, at least 1.
pub(crate) const fn slots_per_line<S>() -> usize {
    let size = size_of::<S>();
    if size == 0 || size >= 64 {
        1
    } else {
        let n = 64 / size;
        // The largest power of two not above `n`.
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// The first line start at or after sequence number `seq` for slots of type `S`: line starts are
/// the multiples of [`slots_per_line`] (a slot array starts on a line boundary), in wrapping
/// arithmetic.
#[inline(always)]
pub(crate) fn next_line_start<S>(seq: usize) -> usize {
    seq.wrapping_add(seq.wrapping_neg() & (slots_per_line::<S>() - 1))
}

/// Whether the rings schedule prefetches (the SPSC producer's write prefetch and the MPMC claim
/// prefetch need the instruction; the SPSC consumer's read prefetch follows the same answer, one
/// switch per platform):
/// on x86-64 when the CPU has `PREFETCHW` (CPUID leaf 8000_0001h, ECX bit 8: AMD CPUs for many
/// generations, Intel since Broadwell); never under loom or on other architectures. Under miri,
/// yes, so that the interpreter checks the handles' bookkeeping around the prefetches, which
/// compile to nothing there. Asked once per handle (SPSC) or ring (MPMC), when a ring is built.
pub(crate) fn write_prefetch_available() -> bool {
    cfg!(all(miri, not(loom))) || cpuid_ecx_bit(0x8000_0001, 8)
}

/// Whether CPUID leaf `leaf` (sub-leaf 0) reports bit `bit` of ECX, asking the leaf only if the
/// highest leaf of its range (basic `0`, extended `8000_0000h`) reaches it. Always false under
/// miri and loom and on other architectures. The feature checks of [`write_prefetch_available`]
/// and [`demote_available`].
fn cpuid_ecx_bit(leaf: u32, bit: u32) -> bool {
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        // SAFETY: CPUID exists on every x86-64 CPU and only reads identification registers;
        // `leaf` is asked only if the first leaf of its range reports it.
        #[allow(unused_unsafe)]
        unsafe {
            __cpuid(leaf & 0x8000_0000).eax >= leaf && __cpuid_count(leaf, 0).ecx & (1 << bit) != 0
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
    {
        let _ = (leaf, bit);
        false
    }
}

/// Asks the core to fetch the cache line holding `*p` for reading (x86-64 `PREFETCHT0`, part
/// of SSE and so of every x86-64 CPU), so that the load that comes later does not wait for the
/// line to leave the other core's cache. A hint: reads and writes nothing; nothing under miri
/// and loom.
#[inline(always)]
pub(crate) fn prefetch_for_read<S>(p: *const S) {
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    // SAFETY: PREFETCHT0 never faults, whatever the address, and changes no register, flag or
    // memory contents (SSE, part of x86-64).
    unsafe {
        std::arch::asm!(
            "prefetcht0 [{0}]",
            in(reg) p,
            options(nostack, preserves_flags, readonly)
        );
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
    let _ = p;
}

/// Asks the core to fetch the cache line holding `*p` in the state for writing (x86-64
/// `PREFETCHW`), so that the store that comes later does not wait for the line to leave the
/// other core's cache. A hint: reads and writes nothing. Call only where
/// [`write_prefetch_available`] said yes (the handle or the ring keeps the answer); nothing
/// under miri and loom.
#[inline(always)]
pub(crate) fn prefetch_for_write<S>(p: *const S) {
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    // SAFETY: PREFETCHW never faults, whatever the address, and changes no register, flag or
    // memory contents: only where a cache line is held. The CPU supports it (the caller checked
    // `write_prefetch_available`).
    unsafe {
        std::arch::asm!(
            "prefetchw [{0}]",
            in(reg) p,
            options(nostack, preserves_flags, readonly)
        );
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
    let _ = p;
}

/// Whether the SPSC producer demotes the cache lines it has published (see [`demote_line`]):
/// on x86-64 when the CPU has `CLDEMOTE` (CPUID leaf 7, sub-leaf 0, ECX bit 25: Intel since
/// Sapphire Rapids and Tremont); never under loom or on other architectures. Under miri, yes, so
/// that the interpreter checks the address arithmetic around the demotions, which compile to
/// nothing there. Asked once per producer, when a ring is built.
pub(crate) fn demote_available() -> bool {
    cfg!(all(miri, not(loom))) || cpuid_ecx_bit(7, 25)
}

/// Asks the core to move the cache line holding `*p` out of its private caches into the shared
/// last-level cache (x86-64 `CLDEMOTE`), so that the other core's next load of it is served by
/// that cache instead of a snoop into this core's. A hint: reads and writes nothing, keeps the
/// line's contents and ordering as they are. Call only where [`demote_available`] said yes;
/// nothing under miri and loom.
#[inline(always)]
pub(crate) fn demote_line(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    // SAFETY: CLDEMOTE never faults on its address (a hint, like a prefetch: Intel's SDM lists
    // no exception but #UD for a LOCK prefix, which this has not), changes no register, flag or
    // memory contents, and the CPU has it (the caller checked `demote_available`; the SDM says
    // CPUs without it run its encoding as a NOP anyway).
    unsafe {
        std::arch::asm!(
            "cldemote [{0}]",
            in(reg) p,
            options(nostack, preserves_flags, readonly)
        );
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
    let _ = p;
}

/// Calls `f` with the byte offset of every 64-byte line of a slot array that a publication
/// completed: `n` slots of `size` bytes each from index `start` on, in an array of `len` slots
/// (`n <= len`), wrapping to index 0. A line is completed when its last byte is written: the
/// line that the first slot starts in counts if it ends within the publication (its bytes
/// before that slot belong to slots written earlier); the line that the last slot ends in
/// counts only if it ends there. Offsets count from the array's start, which lies on a line
/// boundary ([`SLOT_ALIGN`]), so each offset is one whole line of the array (with
/// `--cfg weir_slot_align_16`, a line of offsets that straddles two of memory: still a hint's
/// address inside the array).
#[inline(always)]
pub(crate) fn completed_lines(
    size: usize,
    len: usize,
    start: usize,
    n: usize,
    mut f: impl FnMut(usize),
) {
    debug_assert!(start < len && n <= len);
    // The two runs the publication occupies: `start ..` up to the array's end, then `0 ..`.
    let run = n.min(len - start);
    for (from, to) in [(start * size, (start + run) * size), (0, (n - run) * size)] {
        let mut line = from & !63;
        while line + 64 <= to {
            f(line);
            line += 64;
        }
    }
}

/// Allocates `len` slots, each built by `init(index)`, or [`AllocFailed`] if the allocator
/// refuses the memory (the caller has checked `len` with [`slot_count`]).
pub(crate) fn alloc_slots<S>(
    len: usize,
    init: impl FnMut(usize) -> S,
) -> Result<Box<[S]>, AllocFailed> {
    let mut slots = Vec::new();
    slots.try_reserve_exact(len).map_err(|_| AllocFailed {
        bytes: len.saturating_mul(size_of::<S>()),
    })?;
    slots.extend((0..len).map(init));
    Ok(slots.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_lines_are_the_lines_whose_last_byte_a_publication_wrote() {
        // Brute force: the lines whose last byte lies in the bytes written, slot by slot.
        for size in [1, 8, 24, 64, 72, 200] {
            for len in [1, 2, 8, 16] {
                let bytes = len * size;
                for start in 0..len {
                    for n in 0..=len {
                        let mut expected = Vec::new();
                        for k in 0..n {
                            let index = (start + k) % len;
                            for byte in index * size..(index + 1) * size {
                                if byte % 64 == 63 {
                                    expected.push(byte - 63);
                                }
                            }
                        }
                        let mut got = Vec::new();
                        completed_lines(size, len, start, n, |line| got.push(line));
                        assert!(got.iter().all(|&l| l % 64 == 0 && l + 64 <= bytes));
                        let mut sorted = got.clone();
                        sorted.sort_unstable();
                        sorted.dedup();
                        assert_eq!(sorted.len(), got.len(), "a line twice: {got:?}");
                        expected.sort_unstable();
                        assert_eq!(
                            sorted, expected,
                            "size {size}, len {len}, start {start}, n {n}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn slot_arrays_start_on_a_line_pair_and_drop_their_slots() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Counted(#[allow(dead_code)] u8);
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::Relaxed);
            }
        }
        for len in [1, 3, 64, 1000] {
            let a = SlotArray::try_new(len, |i| (i as u64) * 3).unwrap();
            assert_eq!(a.as_ptr() as usize % SLOT_ALIGN, 0);
            assert_eq!(a.len(), len);
            assert!(a.iter().enumerate().all(|(i, &v)| v == i as u64 * 3));
        }
        DROPS.store(0, Ordering::Relaxed);
        drop(SlotArray::try_new(5, |i| Counted(i as u8)).unwrap());
        assert_eq!(DROPS.load(Ordering::Relaxed), 5);
        let zst = SlotArray::try_new(1 << 20, |_| ()).unwrap();
        assert_eq!(zst.len(), 1 << 20);
    }

    #[test]
    fn slots_per_line_is_a_power_of_two_that_fits_a_line() {
        assert_eq!(slots_per_line::<u8>(), 64);
        assert_eq!(slots_per_line::<u64>(), 8);
        assert_eq!(slots_per_line::<[u8; 12]>(), 4); // 5 fit; rounded down
        assert_eq!(slots_per_line::<[u8; 24]>(), 2);
        assert_eq!(slots_per_line::<[u8; 40]>(), 1);
        assert_eq!(slots_per_line::<[u8; 64]>(), 1);
        assert_eq!(slots_per_line::<[u8; 200]>(), 1);
        assert_eq!(slots_per_line::<()>(), 1);
    }

    #[test]
    fn next_line_start_rounds_up_to_a_multiple_of_the_line_in_wrapping_arithmetic() {
        assert_eq!(next_line_start::<u64>(0), 0);
        assert_eq!(next_line_start::<u64>(1), 8);
        assert_eq!(next_line_start::<u64>(8), 8);
        assert_eq!(next_line_start::<u64>(13), 16);
        assert_eq!(next_line_start::<u64>(usize::MAX - 2), 0); // wraps to 0, a line start
        assert_eq!(next_line_start::<[u8; 100]>(5), 5); // one slot per line
    }

    #[test]
    fn a_prefetch_of_any_address_is_harmless() {
        // A hint: even a dangling or null address must not fault, and nothing is written.
        let x = 5u64;
        prefetch_for_read(&x);
        prefetch_for_read(std::ptr::null::<u64>());
        prefetch_for_read(NonNull::<u64>::dangling().as_ptr());
        if write_prefetch_available() {
            prefetch_for_write(&x);
            prefetch_for_write(std::ptr::null::<u64>());
            prefetch_for_write(NonNull::<u64>::dangling().as_ptr());
        }
        assert_eq!(x, 5);
    }

    #[test]
    fn zero_is_rejected() {
        assert_eq!(slot_count::<u64>(0), Err(CapacityError::Zero));
    }

    #[test]
    fn rounds_up_to_a_power_of_two() {
        assert_eq!(slot_count::<u64>(1), Ok(1));
        assert_eq!(slot_count::<u64>(1000), Ok(1024));
        assert_eq!(slot_count::<u64>(1024), Ok(1024));
    }

    #[test]
    fn absurd_sizes_are_rejected() {
        let huge = usize::MAX / 2 + 2;
        assert_eq!(
            slot_count::<u8>(huge),
            Err(CapacityError::TooLarge { requested: huge })
        );
        let big = usize::MAX / 8;
        assert_eq!(
            slot_count::<u64>(big),
            Err(CapacityError::TooLarge { requested: big })
        );
        // Zero-sized slots take no memory, so any representable power of two is fine.
        assert_eq!(slot_count::<()>(1 << 40), Ok(1 << 40));
    }
}
