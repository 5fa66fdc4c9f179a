//! The slot array shared by both rings, and the capacity checks that guard its allocation.

use crate::error::CapacityError;
use crate::sync::UnsafeCell;
use std::mem::{size_of, MaybeUninit};

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
    if bytes > isize::MAX as usize {
        return Err(too_large);
    }
    Ok(len)
}

/// Allocates `len` slots, each built by `init(index)`.
pub(crate) fn alloc_slots<S>(len: usize, init: impl FnMut(usize) -> S) -> Box<[S]> {
    (0..len).map(init).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
