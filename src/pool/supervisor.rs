//! The supervisor thread: parked until a submit crosses the high-water mark, then grows the
//! pool one worker per cool-down while the depth stays at or above the mark. Each step is noted
//! on the scale clock, so that no worker retires within an idle window of it.

use super::scaling::{UpController, UpStep};
use super::{lock, worker, Counters, Shared};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The least pause between two looks at the depth, whatever the cool-down: with a zero
/// cool-down and the pool at its maximum while the queue stays above the mark, the supervisor
/// would otherwise look again and again without sleeping and burn a core.
const MIN_PAUSE: Duration = Duration::from_millis(1);

pub(super) fn spawn<T: Send + 'static>(shared: &Arc<Shared<T>>) -> io::Result<JoinHandle<()>> {
    let s = shared.clone();
    std::thread::Builder::new()
        .name(format!("{}-supervisor", shared.config.name))
        .spawn(move || run(&s))
}

fn run<T: Send + 'static>(s: &Arc<Shared<T>>) {
    let cfg = &s.config;
    let controller = UpController {
        high: cfg.marks.high,
        max: cfg.max,
    };
    loop {
        // Idle: sleep until a submit crosses the high-water mark.
        {
            let mut st = lock(&s.supervisor);
            while !st.pending && !st.stop {
                st = s
                    .supervisor_wake
                    .wait(st)
                    .unwrap_or_else(|e| e.into_inner());
            }
            if st.stop {
                return;
            }
            st.pending = false;
        }
        // Active: one step per cool-down until the depth is back under the mark.
        loop {
            let depth = s.consumer.len();
            match controller.step(depth, s.live.load(Ordering::Relaxed)) {
                UpStep::Add => add_worker(s),
                UpStep::Hold => {}
                UpStep::Settle => {
                    // Re-arm, then look once more: a submit may have crossed between our look
                    // and the re-arm (it saw the flag still up and stayed quiet); act for it.
                    if s.edge.settle(cfg.marks, || s.consumer.len()) {
                        continue;
                    }
                    break;
                }
            }
            let st = lock(&s.supervisor);
            let (mut st, _) = s
                .supervisor_wake
                .wait_timeout_while(st, cfg.cooldown.max(MIN_PAUSE), |st| !st.stop)
                .unwrap_or_else(|e| e.into_inner());
            if st.stop {
                return;
            }
            // Crossings signalled during the cool-down are covered by the look that follows.
            st.pending = false;
        }
    }
}

fn add_worker<T: Send + 'static>(s: &Arc<Shared<T>>) {
    // Relaxed: a count that guards no data; the CAS keeps it within `max` against retiring
    // workers.
    let reserved = s
        .live
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < s.config.max).then_some(n + 1)
        })
        .is_ok();
    if !reserved {
        return;
    }
    // Counted together with `live`, before the thread exists, so that a reader never sees the
    // new worker in `workers` without its scale-up (`workers == min + scale_ups - scale_downs`
    // whenever the supervisor is between steps).
    Counters::bump(&s.counters.scale_ups);
    // The next retirement waits a whole idle window after this step.
    s.scale_clock.note(Instant::now());
    if worker::spawn(s).is_err() {
        s.live.fetch_sub(1, Ordering::Relaxed);
        s.counters.scale_ups.fetch_sub(1, Ordering::Relaxed);
        Counters::bump(&s.counters.spawn_failures);
    }
}
