//! Loom models of the pool's two shared scaling pieces (`src/pool/scaling.rs`): the
//! edge-triggered high-water flag that wakes the supervisor, and the scale clock that lets one
//! worker retire per idle window.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test
//! loom_pool -- --nocapture --test-threads=1`. The preemption bound is [`BOUND`] unless
//! `LOOM_MAX_PREEMPTIONS` is set; each model prints how many interleavings it explored.
//!
//! The pool itself (threads, clocks, condition variables) is not built under loom; the flag and
//! the clock are, as the hidden `weir::__loom_scaling` (the very file the pool uses, with its
//! atomics from loom). The submitters push onto a real MPMC ring and read its depth with
//! `len()`, and the supervisor reads the depth the same way, as in the pool, so the models see
//! the ring's own orderings and barriers. The supervisor's mutex hand-off (`pending`, then a
//! condvar notify) is modelled by a loom mutex; the supervisor does not block in the model:
//! when it would sleep, it stops, and the checks then ask whether a wake-up is pending.

#![cfg(loom)]

mod loom_support;

use loom::sync::{Arc, Mutex};
use loom::thread;
use std::time::{Duration, Instant};
use weir::__loom_scaling::{HighWaterEdge, Marks, ScaleClock};
use weir::mpmc;

/// Preemption bound of every model (overridden by `LOOM_MAX_PREEMPTIONS`). The models are short
/// (3 threads at most, a push and a few loads each): bound 3 takes seconds, bound 4 about half a
/// minute (docs/verification.md has the figures).
const BOUND: usize = 3;

fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    loom_support::model_bounded(name, BOUND, f);
}

/// The supervisor's mutex-protected state, as in the pool: a submit that raised the flag sets
/// `pending` under the mutex (and notifies); `wakes` counts those wake-ups.
#[derive(Default)]
struct SupervisorState {
    pending: bool,
    wakes: usize,
}

struct Pool {
    edge: HighWaterEdge,
    supervisor: Mutex<SupervisorState>,
}

/// A submit: push, then the pool's `after_push` on the flag, and the wake-up if it returns
/// `true` (`Shared::submit` and `Shared::wake_supervisor`).
fn submit(pool: &Pool, tx: &mpmc::Producer<u32>, marks: Marks, item: u32) {
    tx.try_push(item).unwrap();
    if pool.edge.after_push(marks, || tx.len()) {
        let mut st = pool.supervisor.lock().unwrap();
        st.pending = true;
        st.wakes += 1;
    }
}

/// What the supervisor did in a model run.
struct SupervisorRun {
    /// Its last look saw the depth at or above the mark: it stays active and looks again after
    /// the cool-down, so every crossing so far is covered by that look.
    active: bool,
    /// Re-arms of the flag (puts it down).
    rearms: usize,
    /// Crossings it took back itself in `settle` (the flag went up again without a wake-up).
    self_raises: usize,
}

/// The supervisor's loop (`supervisor::run`) from an active state: look at the depth; at or
/// above the mark it stays active (adds a worker or holds); below it settles, and then either
/// stays active (it took a crossing back) or goes to sleep, consuming a pending wake-up if one
/// is there (which makes it look again). It stops where the real one would block.
fn supervise(pool: &Pool, rx: &mpmc::Consumer<u32>, marks: Marks) -> SupervisorRun {
    let mut run = SupervisorRun {
        active: false,
        rearms: 0,
        self_raises: 0,
    };
    loop {
        if rx.len() >= marks.high {
            run.active = true;
            return run;
        }
        run.rearms += 1;
        if pool.edge.settle(marks, || rx.len()) {
            run.self_raises += 1;
            continue;
        }
        let mut st = pool.supervisor.lock().unwrap();
        if st.pending {
            st.pending = false;
            continue;
        }
        return run;
    }
}

/// Two submits cross the high mark while the supervisor, active from an earlier crossing (the
/// flag is up), looks, re-arms and goes to sleep. No crossing may be lost: once everything has
/// run, the depth is at the mark, so the supervisor must be active or have a wake-up pending
/// (a sleeping supervisor with nothing pending would not grow the pool; with the flag up it
/// would never be woken again). And one wake-up per raise: every raise (by a submit, or taken
/// back by the supervisor) needs a re-arm before it, the flag being up at the start.
fn crossings_vs_settle(high: usize) {
    model(
        &format!("edge_2_crossings_vs_settle_high{high}"),
        move || {
            let marks = Marks { high, low: 0 };
            let (tx, rx) = mpmc::channel::<u32>(2);
            let pool = Arc::new(Pool {
                edge: HighWaterEdge::raised(),
                supervisor: Mutex::new(SupervisorState::default()),
            });
            let submitters: Vec<_> = (0..2)
                .map(|i| {
                    let (tx, pool) = (tx.clone(), pool.clone());
                    thread::spawn(move || submit(&pool, &tx, marks, i))
                })
                .collect();
            drop(tx);
            let run = supervise(&pool, &rx, marks);
            for s in submitters {
                s.join().unwrap();
            }
            let st = pool.supervisor.lock().unwrap();
            assert_eq!(rx.len(), 2);
            assert!(
                run.active || st.pending,
                "lost crossing: depth 2 >= {high}, supervisor asleep, no wake-up pending \
             (flag raised: {}, wakes {}, rearms {})",
                pool.edge.is_raised(),
                st.wakes,
                run.rearms
            );
            assert!(
                !pool.edge.is_raised() || run.active || st.pending,
                "flag up with the supervisor asleep and nothing pending"
            );
            assert!(
                st.wakes + run.self_raises <= run.rearms,
                "more raises ({} wakes + {} taken back) than re-arms ({})",
                st.wakes,
                run.self_raises,
                run.rearms
            );
        },
    );
}

#[test]
fn two_crossings_race_the_supervisor_settling_high_1() {
    crossings_vs_settle(1);
}

#[test]
fn two_crossings_race_the_supervisor_settling_high_2() {
    crossings_vs_settle(2);
}

/// The supervisor asleep (flag down), two submits cross together: exactly one wakes it.
#[test]
fn two_crossings_wake_an_idle_supervisor_once() {
    for high in [1, 2] {
        model(&format!("edge_2_crossings_idle_high{high}"), move || {
            let marks = Marks { high, low: 0 };
            let (tx, rx) = mpmc::channel::<u32>(2);
            let pool = Arc::new(Pool {
                edge: HighWaterEdge::default(),
                supervisor: Mutex::new(SupervisorState::default()),
            });
            let other = {
                let (tx, pool) = (tx.clone(), pool.clone());
                thread::spawn(move || submit(&pool, &tx, marks, 1))
            };
            submit(&pool, &tx, marks, 0);
            other.join().unwrap();
            let st = pool.supervisor.lock().unwrap();
            assert_eq!(st.wakes, 1);
            assert!(st.pending && pool.edge.is_raised());
            assert_eq!(rx.len(), 2);
        });
    }
}

/// Two workers whose idle windows ran out at about the same time (10 ms apart, both more than a
/// window after the start) try to retire: exactly one wins, and the clock then holds the
/// winner's time (the next claim must wait a whole window after it).
#[test]
fn scale_clock_two_claims_one_winner() {
    model("scale_clock_2_claims", || {
        let t0 = Instant::now();
        let w = Duration::from_millis(100);
        let clock = Arc::new(ScaleClock::new(t0));
        let times = [
            t0 + Duration::from_millis(150),
            t0 + Duration::from_millis(160),
        ];
        let other = {
            let clock = clock.clone();
            thread::spawn(move || clock.claim(times[1], w))
        };
        let mine = clock.claim(times[0], w);
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "winners: {mine} {theirs}");
        let won = if mine { times[0] } else { times[1] };
        assert!(!clock.claim(won + w - Duration::from_nanos(1), w));
        assert!(clock.claim(won + w, w));
    });
}

/// The same two claims while the supervisor notes a scale-up at 120 ms: at most one retirement,
/// none if the scale-up came first (both claims are then less than a window after it), and the
/// clock keeps the latest event whatever the order (`fetch_max` against the claim's CAS).
#[test]
fn scale_clock_claims_race_a_scale_up() {
    model("scale_clock_2_claims_vs_note", || {
        let t0 = Instant::now();
        let w = Duration::from_millis(100);
        let clock = Arc::new(ScaleClock::new(t0));
        let up = t0 + Duration::from_millis(120);
        let times = [
            t0 + Duration::from_millis(150),
            t0 + Duration::from_millis(160),
        ];
        let claimers: Vec<_> = times
            .iter()
            .map(|&t| {
                let clock = clock.clone();
                thread::spawn(move || clock.claim(t, w))
            })
            .collect();
        clock.note(up);
        let wins: Vec<bool> = claimers.into_iter().map(|c| c.join().unwrap()).collect();
        assert!(!(wins[0] && wins[1]), "two retirements in one window");
        let latest = times
            .iter()
            .zip(&wins)
            .filter(|(_, &won)| won)
            .map(|(&t, _)| t)
            .fold(up, Instant::max);
        assert!(!clock.claim(latest + w - Duration::from_nanos(1), w));
        assert!(clock.claim(latest + w, w));
    });
}
