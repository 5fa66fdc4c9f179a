//! A worker: take a batch, run the handler under `catch_unwind`, record, look at the depth,
//! maybe retire.

use super::metrics::WorkerStats;
use super::pinning::pin_current;
use super::scaling::IdleTracker;
use super::{lock, Counters, Envelope, Handler, Shared};
use crate::mpmc::Consumer;
use crate::PopTimeoutError;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Starts one worker. The caller has already counted it in `live` (and uncounts it on error).
pub(super) fn spawn<T: Send + 'static>(shared: &Arc<Shared<T>>) -> io::Result<()> {
    // Relaxed: a unique id is all that is needed.
    let id = shared.next_worker_id.fetch_add(1, Ordering::Relaxed);
    let stats = Arc::new(Mutex::new(WorkerStats::default()));
    lock(&shared.registry).live.push((id, stats.clone()));
    let worker = Worker {
        shared: shared.clone(),
        queue: shared.consumer.clone(),
        id,
        stats,
    };
    let spawned = std::thread::Builder::new()
        .name(format!("{}-{id}", shared.config.name))
        .spawn(move || worker.run());
    match spawned {
        Ok(handle) => {
            let mut handles = lock(&shared.handles);
            // Join workers that retired, so the list does not grow with every scale cycle.
            let (done, running): (Vec<_>, Vec<_>) =
                handles.drain(..).partition(|h| h.is_finished());
            *handles = running;
            handles.push(handle);
            drop(handles);
            for h in done {
                let _ = h.join();
            }
            Ok(())
        }
        Err(e) => {
            lock(&shared.registry).retire(id);
            Err(e)
        }
    }
}

struct Worker<T: Send + 'static> {
    shared: Arc<Shared<T>>,
    queue: Consumer<Envelope<T>>,
    id: usize,
    stats: Arc<Mutex<WorkerStats>>,
}

/// Per-batch scratch space, reused so that a steady state allocates nothing.
struct Scratch<T> {
    envelopes: Vec<Envelope<T>>,
    jobs: Vec<T>,
    waits: Vec<Duration>,
    calls: Vec<Duration>,
}

impl<T: Send + 'static> Worker<T> {
    fn run(self) {
        let s = &*self.shared;
        let claim = if s.pin { s.cores.claim() } else { None };
        if s.pin && !claim.is_some_and(|c| pin_current(c.core)) {
            Counters::bump(&s.counters.pin_failures);
        }
        let cfg = &s.config;
        let mut scratch = Scratch {
            envelopes: Vec::with_capacity(cfg.batch),
            jobs: Vec::with_capacity(cfg.batch),
            waits: Vec::with_capacity(cfg.batch),
            calls: Vec::with_capacity(cfg.batch),
        };
        let mut idle = IdleTracker::new(cfg.marks.low, cfg.idle_window);
        let tick = cfg.idle_tick();
        let mut retired = false;
        // Acquire: pairs with the SeqCst store in `finish`; a plain stop flag, nothing else is
        // read through it.
        while !s.stop_now.load(Ordering::Acquire) {
            match self
                .queue
                .pop_batch_timeout(&mut scratch.envelopes, cfg.batch, tick)
            {
                Ok(_) => self.process(&mut scratch),
                Err(PopTimeoutError::Timeout) => {}
                // Every producer is gone and the queue is empty: the pool is shutting down.
                Err(PopTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if idle.observe(self.queue.len(), now) && self.try_retire(now) {
                retired = true;
                break;
            }
        }
        if let Some(claim) = claim {
            s.cores.release(claim);
        }
        lock(&s.registry).retire(self.id);
        if !retired {
            s.live.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Leaves the pool if it is above its minimum and no scale event happened in the last idle
    /// window (decrementing `live` in the same step, and counting the scale-down right away, so
    /// that `workers` and `scale_downs` agree). Of several workers whose windows ran out at
    /// once, only the one that wins the claim on the scale clock retires; the others carry on
    /// and ask again, each at least a window after the previous retirement.
    fn try_retire(&self, now: Instant) -> bool {
        let s = &*self.shared;
        // Relaxed: a cheap early exit at the minimum (the common case for an idle pool), so
        // that a worker that may not retire does not move the scale clock.
        if s.live.load(Ordering::Relaxed) <= s.config.min
            || !s.scale_clock.claim(now, s.config.idle_window)
        {
            return false;
        }
        // Relaxed: `live` is a count that guards no data; the CAS makes "above min, so one
        // fewer" atomic against other retiring workers and the supervisor's additions.
        let retired = s
            .live
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n > s.config.min).then(|| n - 1)
            })
            .is_ok();
        if retired {
            Counters::bump(&s.counters.scale_downs);
        }
        retired
    }

    fn process(&self, scratch: &mut Scratch<T>) {
        let dequeued = Instant::now();
        let s = &*self.shared;
        let Scratch {
            envelopes,
            jobs,
            waits,
            calls,
        } = scratch;
        let (mut completed, mut failed, mut panics) = (0, 0, 0);
        match &s.handler {
            Handler::Batch(f) => {
                for env in envelopes.drain(..) {
                    waits.push(dequeued.saturating_duration_since(env.enqueued));
                    jobs.push(env.job);
                }
                let n = jobs.len() as u64;
                let start = Instant::now();
                let ok = caught(|| f(jobs));
                calls.push(start.elapsed());
                // Items the handler left (all of them after a panic) are dropped here; a
                // panicking `Drop` must not take the worker down either.
                caught(|| jobs.clear());
                jobs.clear(); // no-op unless a Drop above panicked part-way
                if ok {
                    completed = n;
                } else {
                    failed = n;
                    panics = 1;
                }
            }
            Handler::Each(f) => {
                for env in envelopes.drain(..) {
                    waits.push(dequeued.saturating_duration_since(env.enqueued));
                    let start = Instant::now();
                    let job = env.job;
                    let ok = caught(|| f(job));
                    calls.push(start.elapsed());
                    if ok {
                        completed += 1;
                    } else {
                        failed += 1;
                        panics += 1;
                    }
                }
            }
        }
        let mut stats = lock(&self.stats);
        for wait in waits.drain(..) {
            stats.latency.record_queue(wait);
        }
        for call in calls.drain(..) {
            stats.latency.record_service(call);
        }
        stats.completed += completed;
        stats.failed += failed;
        stats.panics += panics;
    }
}

/// Runs `f`; `true` if it returned, `false` if it panicked. The panic's payload is dropped here,
/// under a `catch_unwind` of its own: a payload whose `Drop` panics (`panic_any` of such a
/// value) would otherwise unwind out of the worker, which would die mid-batch with the rest of
/// its items uncounted. That second panic leaves a payload too (usually a string, dropped
/// quietly on the next round); should payloads keep panicking on drop, the chain is cut after
/// a few rounds by leaking the last one, the only end a panicking `Drop` leaves.
fn caught(f: impl FnOnce()) -> bool {
    /// Payload drops tried before the last payload is leaked.
    const ROUNDS: usize = 4;
    let Err(mut payload) = catch_unwind(AssertUnwindSafe(f)) else {
        return true;
    };
    for _ in 0..ROUNDS {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return false,
            Err(next) => payload = next,
        }
    }
    std::mem::forget(payload);
    false
}
