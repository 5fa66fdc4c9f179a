//! Metrics kept off the hot path.
//!
//! Pushed, popped and depth come from the sequence counters themselves, so the fast path pays
//! nothing for them. Everything else is counted in a [`SideStats`] that lives on its own cache
//! line and changes only on slow paths: a push that found the ring full, a park, a wake-up sent,
//! an item displaced or shed. Those updates are `Relaxed` read-modify-writes: they publish no
//! data, they are only tallies read by [`RingMetrics`] snapshots.

use crate::sync::{Ordering::Relaxed, StatU64};
use std::time::Duration;

/// Slow-path tallies of one side (producers or consumers) of a ring.
#[derive(Debug, Default)]
pub(crate) struct SideStats {
    /// Operations that found the ring full (producer side) or empty (consumer side).
    pub(crate) contended: StatU64,
    /// Nanoseconds spent inside blocking calls that did not succeed at once.
    pub(crate) blocked_ns: StatU64,
    /// Times a thread of this side went to sleep on the futex.
    pub(crate) parks: StatU64,
    /// Times a thread of this side registered on its event to sleep (`Event::prepare`); one
    /// registration may cover several sleeps. Internal: a sole waiter's notifier can take each
    /// at most once, so on an SPSC ring `wakes_sent` of the other side never exceeds it.
    pub(crate) registrations: StatU64,
    /// Wake-up calls this side sent to the other side.
    pub(crate) wakes_sent: StatU64,
    /// Producer side: items displaced by `force_push`. Consumer side: unused.
    pub(crate) displaced: StatU64,
    /// Producer side: items shed (dropped newest) on purpose. Consumer side: unused.
    pub(crate) shed: StatU64,
}

impl SideStats {
    #[inline]
    pub(crate) fn add(counter: &StatU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// `add` for a counter with one writer thread (a side of an SPSC ring): a plain load and
    /// store, no locked instruction. Relaxed: a tally, read only by snapshots.
    #[inline]
    pub(crate) fn add_sole(counter: &StatU64, n: u64) {
        counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub(crate) fn add_blocked(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.blocked_ns.fetch_add(ns, Relaxed);
    }
}

/// A point-in-time snapshot of a ring's counters.
///
/// Fields are read one by one without a lock, so under load they are each exact but may belong
/// to slightly different instants (for example `depth` may not equal `pushed - popped` of the
/// same snapshot by a few items).
///
/// ```
/// let (mut tx, mut rx) = weir::spsc::channel::<u32>(4);
/// tx.try_push(1).unwrap();
/// tx.try_push(2).unwrap();
/// rx.try_pop().unwrap();
/// let m = tx.metrics();
/// assert_eq!((m.pushed, m.popped, m.depth, m.capacity), (2, 1, 1, 4));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RingMetrics {
    /// The exact capacity the ring was built with.
    pub capacity: usize,
    /// Items ever pushed (including ones later displaced).
    pub pushed: u64,
    /// Items ever taken out by consumers (displaced items are not counted here).
    pub popped: u64,
    /// Items in the ring now.
    pub depth: usize,
    /// Pushes that found the ring full (a blocking push counts once per call, not per retry).
    pub push_full: u64,
    /// Pops that found the ring empty (a blocking pop counts once per call).
    pub pop_empty: u64,
    /// Total time producers spent blocked waiting for room. Waits without a deadline that
    /// spinning resolves within the first 128 spins (a microsecond or two) are not timed: the
    /// clock read would cost more than they do. A `push_timeout` is timed from its call, so one
    /// that times out adds at least its timeout.
    pub producer_blocked: Duration,
    /// Total time consumers spent blocked waiting for items (timed as `producer_blocked`).
    pub consumer_blocked: Duration,
    /// Times a producer went to sleep (parked on the futex).
    pub producer_parks: u64,
    /// Times a consumer went to sleep.
    pub consumer_parks: u64,
    /// Wake-ups sent to parked producers (by consumers that freed room, or, on the MPMC ring, by
    /// a `push_iter` that gave claimed slots back).
    pub producer_wakeups: u64,
    /// Wake-ups sent to parked consumers (by producers that added items).
    pub consumer_wakeups: u64,
    /// Items displaced (oldest dropped to make room) by `force_push`.
    pub displaced: u64,
    /// Items shed (newest dropped on a full ring) and counted.
    pub shed: u64,
}

impl RingMetrics {
    /// Builds a snapshot from the counters of a ring.
    pub(crate) fn collect(
        capacity: usize,
        pushed: u64,
        popped: u64,
        depth: usize,
        producers: &SideStats,
        consumers: &SideStats,
    ) -> Self {
        let load = |c: &StatU64| c.load(Relaxed);
        RingMetrics {
            capacity,
            pushed,
            popped,
            depth,
            push_full: load(&producers.contended),
            pop_empty: load(&consumers.contended),
            producer_blocked: Duration::from_nanos(load(&producers.blocked_ns)),
            consumer_blocked: Duration::from_nanos(load(&consumers.blocked_ns)),
            producer_parks: load(&producers.parks),
            consumer_parks: load(&consumers.parks),
            // A wake-up *sent by* consumers goes *to* producers, and the other way round.
            producer_wakeups: load(&consumers.wakes_sent),
            consumer_wakeups: load(&producers.wakes_sent),
            displaced: load(&producers.displaced),
            shed: load(&producers.shed),
        }
    }
}
