//! Errors. Every error that refuses an item carries it and hands it back with `into_inner`.
//!
//! `Debug` never requires `T: Debug`: an error is printed by what happened, not by what it holds.

use std::fmt;

macro_rules! opaque_debug_and_display {
    ($ty:ident, $($variant:ident => $msg:expr),+ $(,)?) => {
        impl<T> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(Self::$variant(_) => f.write_str(concat!(stringify!($ty), "::", stringify!($variant), "(..)")),)+
                }
            }
        }
        impl<T> fmt::Display for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(Self::$variant(_) => f.write_str($msg),)+
                }
            }
        }
        impl<T> std::error::Error for $ty<T> {}
        impl<T> $ty<T> {
            /// Hands back the item that was refused.
            pub fn into_inner(self) -> T {
                match self {
                    $(Self::$variant(item) => item,)+
                }
            }
        }
    };
}

/// A non-blocking push refused the item. The item is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryPushError<T> {
    /// The ring held `capacity` items.
    Full(T),
    /// Every consumer is gone; nobody would ever read the item.
    Disconnected(T),
}
opaque_debug_and_display!(TryPushError,
    Full => "the ring is full",
    Disconnected => "the receiving side is disconnected");

impl<T> TryPushError<T> {
    /// `true` if the ring was full.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }
    /// `true` if the other side is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }
}

/// A push with a timeout or deadline refused the item. The item is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushTimeoutError<T> {
    /// The ring stayed full until the deadline.
    Timeout(T),
    /// Every consumer is gone.
    Disconnected(T),
}
opaque_debug_and_display!(PushTimeoutError,
    Timeout => "timed out waiting for room in the ring",
    Disconnected => "the receiving side is disconnected");

impl<T> PushTimeoutError<T> {
    /// `true` if the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }
    /// `true` if the other side is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }
}

/// A blocking push failed because every consumer is gone. The item is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError<T> {
    /// Every consumer is gone.
    Disconnected(T),
}
opaque_debug_and_display!(PushError,
    Disconnected => "the receiving side is disconnected");

/// A non-blocking pop found nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TryPopError {
    /// The ring is empty but a producer may still push.
    Empty,
    /// The ring is empty and every producer is gone: nothing will ever arrive.
    Disconnected,
}

impl fmt::Display for TryPopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "the ring is empty",
            Self::Disconnected => "the ring is empty and the sending side is disconnected",
        })
    }
}
impl std::error::Error for TryPopError {}

/// A pop with a timeout or deadline found nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PopTimeoutError {
    /// Nothing arrived before the deadline.
    Timeout,
    /// The ring is empty and every producer is gone.
    Disconnected,
}

impl fmt::Display for PopTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out waiting for an item",
            Self::Disconnected => "the ring is empty and the sending side is disconnected",
        })
    }
}
impl std::error::Error for PopTimeoutError {}

/// A blocking pop failed: the ring is empty and every producer is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PopError;

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the ring is empty and the sending side is disconnected")
    }
}
impl std::error::Error for PopError {}

/// A ring could not be built with the requested capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CapacityError {
    /// A ring must hold at least one item.
    Zero,
    /// The buffer for `requested` items would not fit in the address space
    /// (its byte size, rounded up to a power of two slots, exceeds `isize::MAX`).
    TooLarge {
        /// The capacity that was asked for.
        requested: usize,
    },
    /// The buffer fits the rules above, but the allocator could not provide its `bytes`
    /// (for example more than the machine's address space or memory limits allow). Returned
    /// instead of aborting, as `Vec::try_reserve` does.
    AllocationFailed {
        /// The capacity that was asked for.
        requested: usize,
        /// The size of the buffer that was refused, in bytes.
        bytes: usize,
    },
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero => f.write_str("capacity must be at least 1"),
            Self::TooLarge { requested } => write!(
                f,
                "capacity {requested} is too large: its buffer would overflow the address space"
            ),
            Self::AllocationFailed { requested, bytes } => write!(
                f,
                "capacity {requested} is too large: the allocator refused its buffer of {bytes} bytes"
            ),
        }
    }
}
impl std::error::Error for CapacityError {}

impl<T> From<PushError<T>> for PushTimeoutError<T> {
    fn from(e: PushError<T>) -> Self {
        match e {
            PushError::Disconnected(v) => Self::Disconnected(v),
        }
    }
}

impl From<PopError> for PopTimeoutError {
    fn from(_: PopError) -> Self {
        Self::Disconnected
    }
}

impl From<PopError> for TryPopError {
    fn from(_: PopError) -> Self {
        Self::Disconnected
    }
}
