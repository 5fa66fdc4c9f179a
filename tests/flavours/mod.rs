//! Runs the SPSC integration tests on both flavours of the ring (`Indexed`, the default, and
//! `Stamped`): test files include it with `#[macro_use] mod flavours;` (a folder, so cargo does
//! not build it as a test of its own), write each test as a function generic over
//! `R: Flavour`, and list it in `for_both_flavours!`, which makes `indexed::NAME` and
//! `stamped::NAME` of it.

// Each test file uses a part of this module.
#![allow(dead_code)]

use weir::spsc::{Builder, Consumer, Indexed, Producer, Readiness, Stamped};
use weir::TryPopError;

/// Instantiates each listed generic test `NAME::<R>()` as `indexed::NAME` and `stamped::NAME`;
/// attributes written before a name (`#[cfg_attr(miri, ignore = "...")]`, `#[should_panic]`)
/// go on both instances.
macro_rules! for_both_flavours {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        mod indexed {
            $(#[test] $(#[$attr])* fn $name() { super::$name::<weir::spsc::Indexed>() })*
        }
        mod stamped {
            $(#[test] $(#[$attr])* fn $name() { super::$name::<weir::spsc::Stamped>() })*
        }
    };
}

/// A ring of flavour `R` with the default options.
pub fn ring<T, R: Readiness>(capacity: usize) -> (Producer<T, R>, Consumer<T, R>) {
    Builder::new(capacity).build_flavour::<T, R>().unwrap()
}

/// What differs between the flavours in the tests: `read_chunk` exists for `Indexed` only.
pub trait Flavour: Readiness {
    /// Takes about half of the ready items, up to `max`, each passed to `visit` in order:
    /// `Indexed` through `read_chunk` + `commit` (zero-copy), `Stamped` by single pops (each
    /// learning of its item from the slot's stamp). Returns how many were taken.
    fn pop_some<T>(
        rx: &mut Consumer<T, Self>,
        max: usize,
        visit: impl FnMut(&T),
    ) -> Result<usize, TryPopError>;

    /// Takes exactly `n` items (which must be ready), each passed to `visit` in order:
    /// `Indexed` as one `read_chunk(n)` (`visit` sees them in place) then `commit(n)`, `Stamped`
    /// by `n` single pops.
    fn take_front<T>(rx: &mut Consumer<T, Self>, n: usize, visit: impl FnMut(&T));

    /// `read_chunk(max)`'s length, or `None` for a flavour without it.
    fn read_chunk_len<T>(
        rx: &mut Consumer<T, Self>,
        max: usize,
    ) -> Option<Result<usize, TryPopError>>;
}

impl Flavour for Indexed {
    fn pop_some<T>(
        rx: &mut Consumer<T, Self>,
        max: usize,
        mut visit: impl FnMut(&T),
    ) -> Result<usize, TryPopError> {
        let chunk = rx.read_chunk(max)?;
        let (a, b) = chunk.as_slices();
        assert_eq!(a.len() + b.len(), chunk.len());
        assert!(chunk.len() <= max);
        let take = chunk.len().div_ceil(2).max(1).min(chunk.len());
        a.iter().chain(b).take(take).for_each(&mut visit);
        chunk.commit(take);
        Ok(take)
    }

    fn take_front<T>(rx: &mut Consumer<T, Self>, n: usize, visit: impl FnMut(&T)) {
        let chunk = rx.read_chunk(n).unwrap();
        assert_eq!(chunk.len(), n);
        let (a, b) = chunk.as_slices();
        a.iter().chain(b).for_each(visit);
        chunk.commit_all();
    }

    fn read_chunk_len<T>(
        rx: &mut Consumer<T, Self>,
        max: usize,
    ) -> Option<Result<usize, TryPopError>> {
        Some(rx.read_chunk(max).map(|c| c.len()))
    }
}

impl Flavour for Stamped {
    fn pop_some<T>(
        rx: &mut Consumer<T, Self>,
        max: usize,
        mut visit: impl FnMut(&T),
    ) -> Result<usize, TryPopError> {
        let mut taken = 0;
        while taken < max.div_ceil(2).max(1) {
            match rx.try_pop() {
                Ok(v) => visit(&v),
                Err(e) if taken == 0 => return Err(e),
                Err(_) => break,
            }
            taken += 1;
        }
        Ok(taken)
    }

    fn take_front<T>(rx: &mut Consumer<T, Self>, n: usize, mut visit: impl FnMut(&T)) {
        for _ in 0..n {
            visit(&rx.try_pop().unwrap());
        }
    }

    fn read_chunk_len<T>(
        _: &mut Consumer<T, Self>,
        _: usize,
    ) -> Option<Result<usize, TryPopError>> {
        None
    }
}
