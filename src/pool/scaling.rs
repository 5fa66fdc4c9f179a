//! When the pool grows and shrinks: the pure decision logic, kept free of threads and clocks so
//! it can be tested step by step.
//!
//! - **Up, signal-driven.** [`HighWaterEdge`] is one flag. The submit whose push leaves the
//!   queue at or above the high mark swaps it from `false` to `true` and only that submit wakes
//!   the supervisor: every other submit pays one relaxed load of a flag that stays in its cache
//!   (plus, while the flag is down, one read of the queue depth). No polling, and no syscall
//!   unless a crossing happens. The supervisor then runs [`UpController`]: add one worker, wait
//!   the cool-down, look again; add another while the depth is still at or above the high mark,
//!   up to the maximum; once the depth is below it, re-arm the flag and sleep until the next
//!   crossing.
//! - **Down, per worker, one at a time.** Each worker keeps an [`IdleTracker`]: once it has
//!   seen the depth at or below the low mark continuously for the idle window it asks to
//!   retire. The depth is shared, so when the queue goes quiet every worker's window runs out
//!   at about the same time, and a queue kept near empty *because* every worker is busy looks
//!   the same as one with nothing to do. Left to their own clocks, several workers would
//!   retire in the same instant (the demo once saw 3 → 1 under a load that needed 2), the
//!   queue would refill to the high mark and the pool would grow again. So a retirement must
//!   also win the pool's [`ScaleClock`]: one shared "last scale event" time, claimed with a
//!   compare-and-swap, that lets at most one worker retire per idle window after the previous
//!   scale event (up or down). The pool therefore shrinks one step per window, and each step
//!   is judged on a queue that has already lost the previous worker; and it never goes below
//!   its minimum.
//! - **Hysteresis.** Growing needs the depth at or above the high mark; shrinking needs it at or
//!   below the low mark for a whole idle window. In between nothing happens, so a load that sits
//!   at either edge cannot make the pool flap: at the high edge it can only grow (one step per
//!   cool-down, bounded by the maximum), at the low edge it cannot shrink while the dips are
//!   shorter than the idle window, and it then loses at most one worker per window. The tests
//!   below drive these pieces with such loads and count the events.

//!
//! The two shared pieces, [`HighWaterEdge`] and [`ScaleClock`], take their atomics from
//! `crate::sync`, so that `tests/loom_pool.rs` checks their protocols under loom (where this file
//! is built on its own as the hidden `weir::__loom_scaling`: the pool itself is not built under
//! loom).

// Under loom only the two shared pieces are used (by the loom models).
#![cfg_attr(loom, allow(dead_code))]

use crate::sync::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The water marks in items, derived from the fractions given to the builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marks {
    /// Depth at or above which the pool grows: `ceil(high * capacity)`, at least 1.
    pub high: usize,
    /// Depth at or below which workers may retire: `floor(low * capacity)`; always `< high`.
    pub low: usize,
}

/// The edge-triggered "queue crossed the high-water mark" flag.
///
/// The protocol: a submit whose push leaves the depth at or above the high mark while the flag
/// is down raises it ([`after_push`](Self::after_push) returns `true` for exactly that submit,
/// which then wakes the supervisor); while it is up, submits stay quiet; the supervisor puts
/// it down once the depth is below the mark and looks once more ([`settle`](Self::settle)). So
/// the flag is up only while the supervisor is active or has a wake-up pending, and a crossing
/// is never left to nobody: `tests/loom_pool.rs` checks both under loom.
#[derive(Debug, Default)]
pub struct HighWaterEdge {
    raised: AtomicBool,
}

impl HighWaterEdge {
    /// A flag that is already up: the state while the supervisor is active (for the models).
    #[cfg(loom)]
    pub fn raised() -> Self {
        HighWaterEdge {
            raised: AtomicBool::new(true),
        }
    }

    /// Called by a submit after a successful push. `depth` is evaluated only while the flag is
    /// down. Returns `true` for exactly one submit per crossing: the one that must wake the
    /// supervisor.
    #[inline]
    pub fn after_push(&self, marks: Marks, depth: impl FnOnce() -> usize) -> bool {
        // Relaxed: the flag only decides who sends the wake-up; the wake-up itself goes through
        // the supervisor's mutex, which orders everything the supervisor then reads.
        !self.raised.load(Relaxed) && depth() >= marks.high && !self.raised.swap(true, Relaxed)
    }

    /// The supervisor's step once it saw the depth below the high mark: puts the flag down so
    /// that the next crossing signals again, then looks at the depth once more, because a submit
    /// may have crossed between the supervisor's look and the re-arm (it saw the flag still up
    /// and stayed quiet). `true` if the depth is at or above the mark again and the supervisor
    /// took the crossing back (the flag is up again and no submit will wake it): it must stay
    /// active. `false`: the supervisor may sleep until a wake-up.
    ///
    /// Between the re-arm and the look sits the waiter's side of the rings' barrier pair
    /// ([`heavy_barrier`](crate::wait::heavy_barrier)): the re-arm and a submit's push are two
    /// stores each followed by a load of the other's location (store buffering), so without a
    /// barrier on both sides the supervisor can miss the push while the submit misses the re-arm
    /// and stays quiet: the crossing is then signalled by nobody (loom found exactly that). The
    /// submit's side is the `light_barrier` that every successful push of the MPMC ring runs
    /// after publishing (`notify_consumers`), before `push` returns and so before the submit's
    /// load in [`after_push`](Self::after_push): the hot path pays nothing more. With
    /// `membarrier` (Linux) or `fence(SeqCst)` on both sides (elsewhere, miri, loom) the pair is
    /// exact; on a Linux kernel that refuses membarrier the supervisor's `fence(SeqCst)` alone
    /// is not, and such a crossing waits for the next submit at or above the mark (the flag is
    /// down, so that one signals).
    pub fn settle(&self, marks: Marks, depth: impl FnOnce() -> usize) -> bool {
        self.rearm();
        crate::wait::heavy_barrier();
        depth() >= marks.high && self.raise()
    }

    /// Puts the flag down so that the next crossing signals again (supervisor only).
    pub fn rearm(&self) {
        self.raised.store(false, Relaxed);
    }

    /// Raises the flag; `true` if it was down (the caller then acts on the crossing itself).
    pub fn raise(&self) -> bool {
        !self.raised.swap(true, Relaxed)
    }

    /// Whether the flag is up now (a snapshot, for the models).
    #[cfg(loom)]
    pub fn is_raised(&self) -> bool {
        // Relaxed: a snapshot.
        self.raised.load(Relaxed)
    }
}

/// What the supervisor does at each look at the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UpStep {
    /// At or above the high mark with room to grow: add one worker, then wait the cool-down.
    Add,
    /// At or above the high mark but at the maximum: wait the cool-down and look again.
    Hold,
    /// Below the high mark: re-arm the edge and sleep until the next crossing.
    Settle,
}

/// The supervisor's decision, one step per wake-up or cool-down.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UpController {
    pub(crate) high: usize,
    pub(crate) max: usize,
}

impl UpController {
    pub(crate) fn step(&self, depth: usize, workers: usize) -> UpStep {
        if depth < self.high {
            UpStep::Settle
        } else if workers < self.max {
            UpStep::Add
        } else {
            UpStep::Hold
        }
    }
}

/// One worker's view of "has the queue been near-empty for a whole idle window?".
#[derive(Clone, Debug)]
pub(crate) struct IdleTracker {
    low: usize,
    window: Duration,
    below_since: Option<Instant>,
}

impl IdleTracker {
    pub(crate) fn new(low: usize, window: Duration) -> Self {
        IdleTracker {
            low,
            window,
            below_since: None,
        }
    }

    /// Feeds one observation of the depth; `true` once the depth has been at or below the low
    /// mark at every observation for at least the idle window.
    pub(crate) fn observe(&mut self, depth: usize, now: Instant) -> bool {
        if depth > self.low {
            self.below_since = None;
            return false;
        }
        let since = *self.below_since.get_or_insert(now);
        now.saturating_duration_since(since) >= self.window
    }
}

/// The pool's "last scale event" time, which spaces retirements: at most one worker retires per
/// `spacing` (the idle window) after the previous scale event, whichever worker's own window
/// ran out.
#[derive(Debug)]
pub struct ScaleClock {
    base: Instant,
    /// Nanoseconds from `base` to the last scale event (the pool's start counts as one).
    last: AtomicU64,
}

impl ScaleClock {
    /// A clock whose first scale event is `base` (the pool's start).
    pub fn new(base: Instant) -> Self {
        ScaleClock {
            base,
            last: AtomicU64::new(0),
        }
    }

    fn nanos(&self, t: Instant) -> u64 {
        let ns = t.saturating_duration_since(self.base).as_nanos();
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// Records a scale-up at `now`: the next retirement waits a whole `spacing` after it.
    pub fn note(&self, now: Instant) {
        // Relaxed: a time stamp that guards no data; `fetch_max` keeps the latest event if a
        // retirement claims a (later) time concurrently.
        self.last.fetch_max(self.nanos(now), Relaxed);
    }

    /// Claims the right to retire one worker at `now`. `true` for at most one caller per
    /// `spacing` (and per instant, even with a zero spacing): the winner's time becomes the last
    /// scale event, so every other caller sees too little time since it.
    pub fn claim(&self, now: Instant, spacing: Duration) -> bool {
        let now = self.nanos(now);
        let spacing = u64::try_from(spacing.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: the stamp guards no data; the compare-and-swap alone decides the winner
        // among workers that read the same `last`.
        let mut last = self.last.load(Relaxed);
        loop {
            if now <= last || now - last < spacing {
                return false;
            }
            match self.last.compare_exchange_weak(last, now, Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(seen) => last = seen,
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A discrete-time model of the pool's scaling built from the real pieces: submits raise the
    /// edge, a supervisor with a cool-down runs the controller and notes each step on the scale
    /// clock, each worker runs its tracker and retires through the same rules as the pool (a
    /// claim on the scale clock, spaced by the idle window, and only above the minimum). The
    /// depth follows a script (the load), one value per millisecond.
    struct Model {
        marks: Marks,
        min: usize,
        up: UpController,
        edge: HighWaterEdge,
        cooldown: Duration,
        /// `Some(t)`: the supervisor is active and looks again at `t`.
        next_look: Option<Instant>,
        workers: Vec<IdleTracker>,
        idle_window: Duration,
        clock: ScaleClock,
        /// The model time (ms) of each retirement.
        down_at: Vec<u32>,
        /// The model's clock: `t0 + elapsed_ms`.
        t0: Instant,
        elapsed_ms: u32,
        ups: usize,
        downs: usize,
    }

    impl Model {
        fn new(
            capacity: usize,
            min: usize,
            max: usize,
            cooldown: Duration,
            idle: Duration,
        ) -> Self {
            let t0 = Instant::now();
            let marks = Marks {
                high: capacity * 3 / 4,
                low: capacity / 10,
            };
            Model {
                marks,
                min,
                up: UpController {
                    high: marks.high,
                    max,
                },
                edge: HighWaterEdge::default(),
                cooldown,
                next_look: None,
                workers: (0..min)
                    .map(|_| IdleTracker::new(marks.low, idle))
                    .collect(),
                idle_window: idle,
                clock: ScaleClock::new(t0),
                down_at: Vec::new(),
                t0,
                elapsed_ms: 0,
                ups: 0,
                downs: 0,
            }
        }

        fn supervisor_look(&mut self, depth: usize, now: Instant) {
            match self.up.step(depth, self.workers.len()) {
                UpStep::Add => {
                    self.workers
                        .push(IdleTracker::new(self.marks.low, self.idle_window));
                    self.ups += 1;
                    self.clock.note(now);
                    self.next_look = Some(now + self.cooldown);
                }
                UpStep::Hold => self.next_look = Some(now + self.cooldown),
                UpStep::Settle => {
                    // One depth per tick: the second look sees the same, below the mark.
                    assert!(!self.edge.settle(self.marks, || depth));
                    self.next_look = None;
                }
            }
        }

        /// One millisecond: a submit that leaves `depth` in the queue, then the supervisor (if
        /// signalled or due), then every worker looks at the depth.
        fn tick(&mut self, depth: usize, now: Instant) {
            if self.edge.after_push(self.marks, || depth) && self.next_look.is_none() {
                self.supervisor_look(depth, now);
            }
            if self.next_look.is_some_and(|t| now >= t) {
                self.supervisor_look(depth, now);
            }
            let mut i = 0;
            while i < self.workers.len() {
                if self.workers[i].observe(depth, now)
                    && self.workers.len() > self.min
                    && self.clock.claim(now, self.idle_window)
                {
                    self.workers.swap_remove(i);
                    self.downs += 1;
                    self.down_at.push(self.elapsed_ms);
                } else {
                    i += 1;
                }
            }
        }

        fn run(&mut self, script: impl IntoIterator<Item = usize>) {
            for depth in script {
                let now = self.t0 + MS * self.elapsed_ms;
                self.tick(depth, now);
                self.elapsed_ms += 1;
            }
        }
    }

    #[test]
    fn edge_signals_once_per_crossing() {
        let marks = Marks { high: 75, low: 10 };
        let edge = HighWaterEdge::default();
        let mut evaluated = 0;
        let mut signals = 0;
        for depth in [10, 74, 75, 80, 100, 76, 75] {
            if edge.after_push(marks, || {
                evaluated += 1;
                depth
            }) {
                signals += 1;
            }
        }
        assert_eq!(signals, 1);
        // The depth is read only until the flag goes up (10, 74, 75), never after.
        assert_eq!(evaluated, 3);
        edge.rearm();
        assert!(edge.after_push(marks, || 90));
        assert!(!edge.raise());
        edge.rearm();
        assert!(edge.raise());
    }

    #[test]
    fn controller_steps() {
        let c = UpController { high: 75, max: 4 };
        assert_eq!(c.step(74, 1), UpStep::Settle);
        assert_eq!(c.step(75, 1), UpStep::Add);
        assert_eq!(c.step(75, 4), UpStep::Hold);
        assert_eq!(c.step(0, 4), UpStep::Settle);
    }

    #[test]
    fn tracker_needs_a_whole_window_without_interruption() {
        let t0 = Instant::now();
        let mut t = IdleTracker::new(10, 10 * MS);
        assert!(!t.observe(10, t0));
        assert!(!t.observe(3, t0 + 9 * MS));
        assert!(!t.observe(11, t0 + 9 * MS)); // one look above the mark resets the window
        assert!(!t.observe(0, t0 + 10 * MS));
        assert!(!t.observe(0, t0 + 19 * MS));
        assert!(t.observe(0, t0 + 20 * MS));
    }

    #[test]
    fn sustained_load_above_high_grows_one_step_per_cooldown_to_max() {
        let mut m = Model::new(100, 1, 4, 50 * MS, 200 * MS);
        m.run(std::iter::repeat_n(90, 1000));
        assert_eq!((m.ups, m.downs, m.workers.len()), (3, 0, 4));
        // Only the first step is immediate; the others wait a cool-down each.
        let mut m = Model::new(100, 1, 4, 50 * MS, 200 * MS);
        m.run(std::iter::repeat_n(90, 101));
        assert_eq!(m.ups, 3); // at 0, 50 and 100 ms
        let mut m = Model::new(100, 1, 4, 50 * MS, 200 * MS);
        m.run(std::iter::repeat_n(90, 100));
        assert_eq!(m.ups, 2);
    }

    #[test]
    fn idle_queue_shrinks_to_min_after_the_window() {
        let mut m = Model::new(100, 1, 4, 10 * MS, 200 * MS);
        m.run(std::iter::repeat_n(90, 100)); // grow to 4
        assert_eq!(m.workers.len(), 4);
        m.run(std::iter::repeat_n(0, 199));
        assert_eq!(m.downs, 0, "no retirement before a whole window");
        m.run(std::iter::repeat_n(0, 1000));
        assert_eq!((m.downs, m.workers.len()), (3, 1));
    }

    #[test]
    fn workers_idle_at_once_retire_one_per_window_not_together() {
        // Grow to 4 (steps at 0, 10 and 20 ms), then the queue empties for everyone at the same
        // moment: every worker's window runs out on the same tick. Without the shared scale
        // clock all three extras retired on that tick (4 -> 1 at once).
        let mut m = Model::new(100, 1, 4, 10 * MS, 200 * MS);
        m.run(std::iter::repeat_n(90, 30));
        assert_eq!(m.workers.len(), 4);
        m.run(std::iter::repeat_n(0, 2_000));
        assert_eq!((m.downs, m.workers.len()), (3, 1));
        // One at a time, each a whole window after the previous scale event: the first a window
        // after the queue emptied at 30 ms (also more than a window after the last step up).
        assert_eq!(m.down_at, [230, 430, 630]);
    }

    #[test]
    fn scale_clock_lets_one_claim_through_per_spacing() {
        let t0 = Instant::now();
        let c = ScaleClock::new(t0);
        let w = 100 * MS;
        assert!(
            !c.claim(t0 + 99 * MS, w),
            "the start counts as a scale event"
        );
        assert!(c.claim(t0 + w, w));
        assert!(
            !c.claim(t0 + w, w),
            "a second claim at the same instant loses"
        );
        assert!(!c.claim(t0 + 199 * MS, w));
        c.note(t0 + 150 * MS); // a scale-up restarts the spacing
        assert!(!c.claim(t0 + 249 * MS, w));
        assert!(c.claim(t0 + 250 * MS, w));
        // A zero spacing still lets only one claim through per instant.
        assert!(c.claim(t0 + 251 * MS, Duration::ZERO));
        assert!(!c.claim(t0 + 251 * MS, Duration::ZERO));
    }

    #[test]
    fn racing_claims_have_one_winner() {
        let t0 = Instant::now();
        let c = ScaleClock::new(t0);
        let now = t0 + 10 * MS;
        let wins = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| c.claim(now, MS))).collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum::<usize>()
        });
        assert_eq!(wins, 1);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "safe-code step model of 10^4 ticks: a minute under miri"
    )]
    fn no_events_while_depth_stays_between_the_marks() {
        let mut m = Model::new(100, 1, 4, 10 * MS, 50 * MS);
        // Swing across the whole band between the marks (11 ..= 74) for ten seconds.
        m.run((0..10_000).map(|i| 11 + (i * 7) % 64));
        assert_eq!((m.ups, m.downs), (0, 0));
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "safe-code step model of 10^4 ticks: a minute under miri"
    )]
    fn load_at_the_high_edge_only_grows_boundedly_and_never_flaps() {
        // Depth crosses the high mark on every other millisecond for ten seconds: 5000 crossings.
        let mut m = Model::new(100, 1, 4, 10 * MS, 50 * MS);
        m.run((0..10_000).map(|i| if i % 2 == 0 { 74 } else { 76 }));
        assert_eq!((m.ups, m.downs), (3, 0));
        // A load that dips below the low mark for less than the idle window keeps its workers.
        m.run((0..10_000).map(|i| if i % 40 < 30 { 5 } else { 20 }));
        assert_eq!((m.ups, m.downs), (3, 0));
        // Then a real lull: down to the minimum, once each, no more.
        m.run(std::iter::repeat_n(5, 1_000));
        assert_eq!((m.ups, m.downs), (3, 3));
    }

    #[test]
    fn a_threshold_without_hysteresis_would_flap_on_the_same_load() {
        // The same edge load against a naive rule (grow above the mark, shrink below it) flaps
        // thousands of times: the test above is not vacuous.
        let (mut workers, mut events) = (1usize, 0usize);
        for i in 0..10_000 {
            let depth = if i % 2 == 0 { 74 } else { 76 };
            if depth >= 75 && workers < 4 {
                workers += 1;
                events += 1;
            } else if depth < 75 && workers > 1 {
                workers -= 1;
                events += 1;
            }
        }
        assert!(events > 1000, "{events}");
    }
}
