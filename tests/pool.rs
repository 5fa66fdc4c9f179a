//! Integration tests of the worker pool.
//!
//! Load is driven with a [`Gate`] that workers pass through inside the handler: the test decides
//! exactly when each job may finish, so queue depths are known, not guessed from timing. Waits
//! use generous deadlines only as failure guards; nothing asserts that something was fast.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};
use weir::pool::{BuildError, Overflow, Pool, PoolReport, SubmitError};

/// A failure guard: long enough for a loaded 2-core machine, short enough to end a hung test.
const GUARD: Duration = Duration::from_secs(60);

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + GUARD;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_micros(200));
    }
}

/// Handler panics in these tests are intentional; keep them out of the test output.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let intentional = info
                .payload()
                .downcast_ref::<&str>()
                .is_some_and(|m| m.starts_with("intentional"));
            if !intentional {
                default(info);
            }
        }));
    });
}

/// A turnstile for handlers: `pass` counts the caller in, then waits for a permit.
#[derive(Default)]
struct Gate {
    permits: Mutex<u64>,
    cv: Condvar,
    entered: AtomicU64,
}

impl Gate {
    fn pass(&self) {
        self.entered.fetch_add(1, SeqCst);
        let mut p = self.permits.lock().unwrap();
        while *p == 0 {
            p = self.cv.wait(p).unwrap();
        }
        *p -= 1;
    }

    fn release(&self, n: u64) {
        *self.permits.lock().unwrap() += n;
        self.cv.notify_all();
    }

    fn open(&self) {
        self.release(u64::MAX / 2);
    }

    fn close(&self) {
        *self.permits.lock().unwrap() = 0;
    }

    fn entered(&self) -> u64 {
        self.entered.load(SeqCst)
    }

    /// Opens the gate when dropped. Declared after the pool, it is dropped before it, so that a
    /// failing assertion ends the test instead of hanging the pool's drop on a closed gate.
    fn open_on_drop(self: &Arc<Self>) -> OpenOnDrop {
        OpenOnDrop(self.clone())
    }
}

struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

fn assert_balanced(r: &PoolReport) {
    let m = &r.metrics;
    assert_eq!(
        m.submitted,
        m.completed + m.failed + m.rejected + m.dropped + m.displaced + r.returned,
        "{m:#?}"
    );
    assert_eq!(r.accounted(), m.submitted);
    assert_eq!((m.lag, m.depth, m.workers), (0, 0, 0), "{m:#?}");
    assert_eq!(r.worker_crashes, 0);
}

#[test]
fn scale_up_under_sustained_load_then_down_after_it_stops() {
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let pool = Pool::builder()
        .capacity(100)
        .workers(1..=3)
        .high_water(0.75)
        .low_water(0.10)
        .batch(1)
        .cooldown(Duration::from_millis(1))
        .idle_window(Duration::from_millis(20))
        .unpinned()
        .build_each(move |_: u64| g.pass())
        .unwrap();
    let _open = gate.open_on_drop();
    assert_eq!(pool.workers(), 1);
    // 95 jobs, workers hold at most one each: the depth stays >= 92, above the mark (75).
    for i in 0..95 {
        pool.submit(i).unwrap();
    }
    wait_until("the pool has grown to its maximum", || pool.workers() == 3);
    wait_until("every worker holds a job", || gate.entered() == 3);
    let m = pool.metrics();
    assert_eq!((m.scale_ups, m.scale_downs, m.workers), (2, 0, 3));
    assert_eq!(m.depth, 92);
    assert_eq!(m.lag, 95);
    // Load stops: everything drains, then the queue stays empty and the extras retire.
    gate.open();
    wait_until("the pool has shrunk to its minimum", || pool.workers() == 1);
    let m = pool.metrics();
    assert_eq!((m.scale_ups, m.scale_downs, m.completed), (2, 2, 95));
    // A second wave grows the pool again: the signal was re-armed.
    wait_until("the queue is empty", || pool.depth() == 0);
    gate.close();
    let entered = gate.entered();
    for i in 0..95 {
        pool.submit(i).unwrap();
    }
    wait_until("the pool has grown again", || pool.workers() == 3);
    wait_until("every worker holds a job", || gate.entered() == entered + 3);
    assert_eq!(pool.metrics().scale_ups, 4);
    gate.open();
    let report = pool.shutdown();
    let m = &report.metrics;
    assert_eq!((m.scale_ups, m.completed), (4, 190));
    assert_balanced(&report);
}

#[test]
fn workers_idle_at_once_retire_one_per_idle_window() {
    // The demo's bug: when the queue goes quiet for every worker at the same moment, each
    // worker's idle window runs out on its own clock at about the same time, and they all
    // retired together (3 -> 1). The pool must shrink one worker per idle window.
    const WINDOW: Duration = Duration::from_millis(500);
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let pool = Pool::builder()
        .capacity(100)
        .workers(1..=3)
        .high_water(0.75)
        .low_water(0.10)
        .batch(1)
        .cooldown(Duration::from_millis(1))
        .idle_window(WINDOW)
        .unpinned()
        .build_each(move |_: u64| g.pass())
        .unwrap();
    let _open = gate.open_on_drop();
    for i in 0..95 {
        pool.submit(i).unwrap();
    }
    wait_until("the pool has grown to its maximum", || pool.workers() == 3);
    wait_until("every worker holds a job", || gate.entered() == 3);
    // All three drain the queue together, then all of them find it empty.
    gate.open();
    let mut last_seen_three = Instant::now();
    let deadline = last_seen_three + GUARD;
    let seen_one = loop {
        let (now, workers) = (Instant::now(), pool.workers());
        match workers {
            3 => last_seen_three = now,
            2 => {}
            _ => break now,
        }
        assert!(now < deadline, "timed out waiting for the pool to shrink");
        thread::sleep(Duration::from_micros(200));
    };
    let m = pool.metrics();
    assert_eq!((m.scale_ups, m.scale_downs, m.workers), (2, 2, 1), "{m:#?}");
    // The first retirement came after the last look that saw 3 workers, and the second a whole
    // window after the first. (Half a window is asserted, as slack for a worker preempted
    // between reading the clock and leaving; retirements that come together are milliseconds
    // apart.) A lower bound on elapsed time cannot fail because the machine is slow.
    let gap = seen_one - last_seen_three;
    assert!(
        gap >= WINDOW / 2,
        "3 -> 1 within {gap:?}, idle window {WINDOW:?}"
    );
    let report = pool.shutdown();
    assert_eq!(report.metrics.completed, 95);
    assert_balanced(&report);
}

#[test]
fn no_scaling_while_depth_stays_between_the_marks() {
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let pool = Pool::builder()
        .capacity(100)
        .workers(1..=2)
        .high_water(0.75)
        .low_water(0.10)
        .batch(1)
        .cooldown(Duration::from_millis(1))
        .idle_window(Duration::from_millis(5))
        .unpinned()
        .build_each(move |_: u64| g.pass())
        .unwrap();
    let _open = gate.open_on_drop();
    // First grow to 2 workers, so that a wrong retirement could show.
    let mut next = 0;
    while next < 80 {
        pool.submit(next).unwrap();
        next += 1;
    }
    wait_until("the pool has grown", || pool.workers() == 2);
    wait_until("both workers hold a job", || gate.entered() == 2);
    // Bring the depth down to 50, one job at a time.
    while pool.depth() > 50 {
        let entered = gate.entered();
        gate.release(1);
        wait_until("a worker takes the next job", || gate.entered() > entered);
    }
    let before = pool.metrics();
    assert_eq!((before.scale_ups, before.scale_downs), (1, 0));
    // Hold the depth at 49..=50 for at least 300 ms: 60 idle windows, 300 cool-downs.
    let start = Instant::now();
    let mut rounds = 0;
    while start.elapsed() < Duration::from_millis(300) || rounds < 100 {
        let entered = gate.entered();
        gate.release(1);
        wait_until("a worker takes the next job", || gate.entered() > entered);
        pool.submit(next).unwrap();
        next += 1;
        let depth = pool.depth();
        assert!((49..=50).contains(&depth), "depth {depth}");
        rounds += 1;
        thread::sleep(Duration::from_millis(1));
    }
    let m = pool.metrics();
    assert_eq!((m.scale_ups, m.scale_downs, m.workers), (1, 0, 2), "{m:#?}");
    gate.open();
    let report = pool.shutdown();
    assert_eq!(report.metrics.completed, next);
    assert_balanced(&report);
}

#[test]
fn load_oscillating_across_the_high_mark_does_not_flap() {
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let pool = Pool::builder()
        .capacity(100)
        .workers(1..=3)
        .high_water(0.75)
        .low_water(0.10)
        .batch(1)
        .cooldown(Duration::from_millis(1))
        // A retirement needs the depth at or below 10 for only 1 ms: any flapping would show.
        .idle_window(Duration::from_millis(1))
        .unpinned()
        .build_each(move |_: u64| g.pass())
        .unwrap();
    let _open = gate.open_on_drop();
    let mut next = 0;
    let mut crossings = 0;
    for round in 0..200 {
        let target = if round % 2 == 0 { 77 } else { 73 };
        while pool.depth() < target {
            pool.submit(next).unwrap();
            next += 1;
        }
        while pool.depth() > target {
            let depth = pool.depth();
            gate.release(1);
            wait_until("a worker takes the next job", || pool.depth() < depth);
        }
        crossings += 1;
    }
    let m = pool.metrics();
    assert_eq!(crossings, 200);
    // Growth is bounded by the maximum; shrinking needs the low mark, which was never near.
    assert!((1..=2).contains(&m.scale_ups), "{m:#?}");
    assert_eq!(m.scale_downs, 0, "{m:#?}");
    gate.open();
    let report = pool.shutdown();
    assert_eq!(report.metrics.completed, next);
    assert_balanced(&report);
}

/// Fills a 1-worker pool of capacity 8 whose handler is gated, then submits 5 more: the
/// overflow policy decides their fate deterministically. Then opens the gate and hammers the
/// pool from 3 threads (with some handler panics) for the balance under contention.
fn overflow_balance(policy: Overflow) -> (PoolReport, Vec<SubmitError<u64>>, Vec<u64>) {
    quiet_panics();
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let displaced = Arc::new(Mutex::new(Vec::new()));
    let d = displaced.clone();
    let pool = Pool::builder()
        .capacity(8)
        .workers(1..=1)
        .batch(1)
        .overflow(policy)
        .unpinned()
        .on_displaced(move |job| d.lock().unwrap().push(job))
        .build_each(move |job: u64| {
            g.pass();
            if job % 50 == 7 {
                panic!("intentional: job {job}");
            }
        })
        .unwrap();
    let _open = gate.open_on_drop();
    pool.submit(0).unwrap();
    wait_until("the worker holds job 0", || gate.entered() == 1);
    for i in 1..=8 {
        pool.submit(i).unwrap();
    }
    let mut refused = Vec::new();
    thread::scope(|s| {
        let extra = s.spawn(|| {
            let mut refused = Vec::new();
            for i in 9..14 {
                if let Err(e) = pool.submit(i) {
                    refused.push(e);
                }
            }
            refused
        });
        if policy == Overflow::Block {
            // The extra submits are blocked until the gate opens.
            thread::sleep(Duration::from_millis(20));
            assert!(!extra.is_finished());
            gate.open();
            refused = extra.join().unwrap();
        } else {
            refused = extra.join().unwrap();
            assert_eq!(pool.depth(), 8);
            gate.open();
        }
        // Contention: 3 threads, 3000 submits each, values from 100 up.
        for t in 0..3u64 {
            let pool = &pool;
            s.spawn(move || {
                for i in 0..3000 {
                    let _ = pool.submit(100 + t * 3000 + i);
                }
            });
        }
    });
    let report = pool.shutdown();
    assert_balanced(&report);
    let d = displaced.lock().unwrap().clone();
    (report, refused, d)
}

#[test]
fn overflow_block_balances() {
    let (r, refused, _) = overflow_balance(Overflow::Block);
    assert!(refused.is_empty());
    let m = &r.metrics;
    assert_eq!(m.submitted, 14 + 9000);
    assert_eq!((m.rejected, m.dropped, m.displaced), (0, 0, 0));
    // Jobs 7, 57, 107, ... panic: exactly the ones with job % 50 == 7, none refused.
    let expected_failed = (0..14).chain(100..9100).filter(|j| j % 50 == 7).count() as u64;
    assert_eq!((m.failed, m.panics), (expected_failed, expected_failed));
    assert_eq!(m.completed, m.submitted - expected_failed);
}

#[test]
fn overflow_reject_balances_and_hands_items_back() {
    let (r, refused, _) = overflow_balance(Overflow::Reject);
    let back: Vec<u64> = refused
        .into_iter()
        .map(|e| match e {
            SubmitError::Full(j) => j,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(back, [9, 10, 11, 12, 13]);
    assert!(r.metrics.rejected >= 5);
    assert_eq!((r.metrics.dropped, r.metrics.displaced), (0, 0));
}

#[test]
fn overflow_timeout_balances_and_hands_items_back() {
    let (r, refused, _) = overflow_balance(Overflow::Timeout(Duration::from_millis(1)));
    let back: Vec<u64> = refused
        .into_iter()
        .map(|e| match e {
            SubmitError::Timeout(j) => j,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(back, [9, 10, 11, 12, 13]);
    assert!(r.metrics.rejected >= 5);
}

#[test]
fn overflow_drop_newest_balances() {
    let (r, refused, _) = overflow_balance(Overflow::DropNewest);
    assert!(refused.is_empty());
    assert!(r.metrics.dropped >= 5);
    assert_eq!(r.metrics.dropped, r.metrics.ring.shed);
    assert_eq!((r.metrics.rejected, r.metrics.displaced), (0, 0));
}

#[test]
fn overflow_drop_oldest_balances_and_hands_displaced_to_the_callback() {
    let (r, refused, displaced) = overflow_balance(Overflow::DropOldest);
    assert!(refused.is_empty());
    // The five extra submits displaced the five oldest queued jobs (job 0 was in the worker).
    assert_eq!(displaced[..5], [1, 2, 3, 4, 5]);
    assert_eq!(displaced.len() as u64, r.metrics.displaced);
    assert_eq!(r.metrics.displaced, r.metrics.ring.displaced);
    assert_eq!((r.metrics.rejected, r.metrics.dropped), (0, 0));
}

#[test]
fn shutdown_with_a_full_queue_and_a_blocked_submitter_loses_nothing() {
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let sum = Arc::new(AtomicU64::new(0));
    let s2 = sum.clone();
    let pool = Pool::builder()
        .capacity(64)
        .workers(2..=2)
        .batch(8)
        .unpinned()
        .build(move |batch: &mut Vec<u64>| {
            g.pass();
            s2.fetch_add(batch.drain(..).sum::<u64>(), SeqCst);
        })
        .unwrap();
    let _open = gate.open_on_drop();
    let submitter = pool.submitter();
    let mut total = 0;
    let mut next = 1;
    wait_until("both workers hold a batch", || {
        if pool.depth() < 64 {
            pool.submit(next).unwrap();
            total += next;
            next += 1;
        }
        gate.entered() == 2 && pool.depth() == 64
    });
    // One more thread blocks on the full queue.
    let blocked = {
        let submitter = submitter.clone();
        let first = next;
        thread::spawn(move || {
            let mut back = Vec::new();
            for job in first..first + 10 {
                if let Err(e) = submitter.submit(job) {
                    assert!(e.is_shut_down());
                    back.push(e.into_inner());
                }
            }
            back
        })
    };
    let shutting_down = thread::spawn(move || pool.shutdown());
    wait_until("intake is closed", || submitter.is_shut_down());
    gate.open();
    let report = shutting_down.join().unwrap();
    let back = blocked.join().unwrap();
    let extra_total: u64 = (next..next + 10).sum();
    let back_total: u64 = back.iter().sum();
    let m = &report.metrics;
    assert_eq!(sum.load(SeqCst) + back_total, total + extra_total);
    assert_eq!(m.completed + back.len() as u64, next - 1 + 10);
    assert_eq!(m.rejected, back.len() as u64);
    assert_balanced(&report);
    // Later submits are refused with the item back.
    assert!(matches!(submitter.submit(7), Err(SubmitError::ShutDown(7))));
}

#[test]
fn shutdown_now_returns_every_unprocessed_job_in_order() {
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let pool = Pool::builder()
        .capacity(100)
        .workers(1..=1)
        .batch(1)
        .unpinned()
        .build_each(move |_: u64| g.pass())
        .unwrap();
    let _open = gate.open_on_drop();
    for i in 0..50 {
        pool.submit(i).unwrap();
    }
    wait_until("the worker holds job 0", || gate.entered() == 1);
    let submitter = pool.submitter();
    let stopping = thread::spawn(move || pool.shutdown_now());
    wait_until("the pool is stopping and has taken the queue back", || {
        submitter.is_shut_down() && gate.entered() == 1
    });
    gate.release(1); // job 0 finishes; the worker then stops
    let (report, rest) = stopping.join().unwrap();
    assert_eq!(rest, (1..50).collect::<Vec<u64>>());
    assert_eq!((report.metrics.completed, report.returned), (1, 49));
    assert_balanced(&report);
}

#[test]
fn shutdown_now_unblocks_a_submitter_waiting_on_a_full_queue() {
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let pool = Pool::builder()
        .capacity(4)
        .workers(1..=1)
        .batch(1)
        .unpinned()
        .build_each(move |_: u64| g.pass())
        .unwrap();
    let _open = gate.open_on_drop();
    pool.submit(0).unwrap();
    wait_until("the worker holds job 0", || gate.entered() == 1);
    let submitter = pool.submitter();
    let producer = {
        let submitter = submitter.clone();
        thread::spawn(move || {
            (1..=20)
                .filter_map(|i| submitter.submit(i).err().map(SubmitError::into_inner))
                .collect::<Vec<u64>>()
        })
    };
    wait_until("the queue is full", || submitter.depth() == 4);
    let (report, rest, back) = thread::scope(|s| {
        let stopping = s.spawn(|| pool.shutdown_now());
        wait_until("intake is closed", || submitter.is_shut_down());
        let back = producer.join().unwrap();
        gate.open();
        let (report, rest) = stopping.join().unwrap();
        (report, rest, back)
    });
    let mut all: Vec<u64> = rest.iter().chain(&back).copied().collect();
    all.sort_unstable();
    let completed = report.metrics.completed;
    assert_eq!(all.len() as u64 + completed, 21);
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len());
    assert_balanced(&report);
}

#[test]
fn handler_panics_are_counted_and_the_pool_carries_on() {
    quiet_panics();
    let pool = Pool::builder()
        .workers(2..=2)
        .unpinned()
        .build_each(|job: u32| {
            if job % 10 == 0 {
                panic!("intentional");
            }
        })
        .unwrap();
    for i in 0..1000 {
        pool.submit(i).unwrap();
    }
    let report = pool.shutdown();
    let m = &report.metrics;
    assert_eq!((m.completed, m.failed, m.panics), (900, 100, 100));
    assert_eq!(m.workers, 0);
    assert_balanced(&report);
}

#[test]
fn a_panicking_batch_handler_fails_exactly_its_batch() {
    quiet_panics();
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let poisoned_batch = Arc::new(AtomicUsize::new(0));
    let p = poisoned_batch.clone();
    let pool = Pool::builder()
        .capacity(64)
        .workers(1..=1)
        .batch(8)
        .unpinned()
        .build(move |batch: &mut Vec<u32>| {
            g.pass();
            if batch.contains(&13) {
                p.store(batch.len(), SeqCst);
                batch.truncate(2); // processed some, then failed: all still count as failed
                panic!("intentional");
            }
        })
        .unwrap();
    let _open = gate.open_on_drop();
    pool.submit(0).unwrap();
    wait_until("the worker holds a batch", || gate.entered() == 1);
    for i in 1..40 {
        pool.submit(i).unwrap();
    }
    gate.open();
    let report = pool.shutdown();
    let m = &report.metrics;
    let failed = poisoned_batch.load(SeqCst) as u64;
    assert!((1..=8).contains(&failed));
    assert_eq!((m.failed, m.panics, m.completed), (failed, 1, 40 - failed));
    assert_balanced(&report);
}

#[test]
fn pinning_to_cores_that_do_not_exist_is_counted_not_fatal() {
    let pool = Pool::builder()
        .workers(2..=2)
        .pin_cores([100_000, 1 << 40])
        .build_each(|_: u8| {})
        .unwrap();
    for i in 0..100 {
        pool.submit(i).unwrap();
    }
    let report = pool.shutdown();
    assert_eq!(report.metrics.pin_failures, 2);
    assert_eq!(report.metrics.completed, 100);
    assert_balanced(&report);
}

#[cfg(target_os = "linux")]
#[test]
fn pinning_to_every_core_succeeds_on_linux() {
    let pool = Pool::builder()
        .workers(3..=3) // on a 2-core machine, two workers share a core
        .build_each(|_: u8| {})
        .unwrap();
    pool.submit(1).unwrap();
    let report = pool.shutdown();
    assert_eq!(report.metrics.pin_failures, 0);
}

#[test]
fn rate_limit_refuses_when_empty_under_reject() {
    let pool = Pool::builder()
        .overflow(Overflow::Reject)
        .rate_limit(10.0, 5) // 100 ms per token after a burst of 5
        .unpinned()
        .build_each(|_: u32| {})
        .unwrap();
    let start = Instant::now();
    let mut ok = 0;
    let mut limited = Vec::new();
    for i in 0..20 {
        match pool.submit(i) {
            Ok(()) => ok += 1,
            Err(SubmitError::RateLimited(j)) => limited.push(j),
            Err(e) => panic!("{e:?}"),
        }
    }
    let elapsed_tokens = (start.elapsed().as_secs_f64() * 10.0).ceil() as u64;
    assert!(ok >= 5 && ok <= 5 + elapsed_tokens, "{ok}");
    assert_eq!(limited.len() as u64, 20 - ok);
    let report = pool.shutdown();
    assert_eq!(report.metrics.rate_limited, 20 - ok);
    assert_eq!(report.metrics.rejected, 20 - ok);
    assert_balanced(&report);
}

#[test]
fn rate_limit_paces_blocking_submits() {
    let pool = Pool::builder()
        .rate_limit(200.0, 1) // 5 ms per token
        .unpinned()
        .build_each(|_: u32| {})
        .unwrap();
    let start = Instant::now();
    for i in 0..11 {
        pool.submit(i).unwrap();
    }
    // A lower bound only: a loaded machine can make this slower, never faster.
    assert!(
        start.elapsed() >= Duration::from_millis(45),
        "{:?}",
        start.elapsed()
    );
    let report = pool.shutdown();
    assert_eq!(
        (report.metrics.completed, report.metrics.rate_limited),
        (11, 0)
    );
}

#[test]
fn rate_limit_under_timeout_refuses_when_no_token_before_the_deadline() {
    let pool = Pool::builder()
        .overflow(Overflow::Timeout(Duration::from_millis(1)))
        .rate_limit(1.0, 1) // one token a second
        .unpinned()
        .build_each(|_: u32| {})
        .unwrap();
    pool.submit(1).unwrap();
    assert!(matches!(pool.submit(2), Err(SubmitError::RateLimited(2))));
    assert_balanced(&pool.shutdown());
}

#[test]
fn latency_is_recorded_for_every_item_and_call() {
    let pool = Pool::builder()
        .workers(2..=2)
        .unpinned()
        .build_each(|_: u32| thread::sleep(Duration::from_micros(100)))
        .unwrap();
    for i in 0..200 {
        pool.submit(i).unwrap();
    }
    let report = pool.shutdown();
    let m = &report.metrics;
    assert_eq!(m.queue_latency.count, 200);
    assert_eq!(m.service_latency.count, 200);
    let s = m.service_latency;
    assert!(s.p50 >= Duration::from_micros(100), "{s:?}");
    assert!(
        s.p50 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max,
        "{s:?}"
    );
    assert!(m.rate_in > 0.0 && m.rate_out > 0.0);
}

#[test]
fn dropping_the_pool_drains_it() {
    let done = Arc::new(AtomicU64::new(0));
    let d = done.clone();
    let pool = Pool::builder()
        .capacity(16)
        .unpinned()
        .build_each(move |_: u32| {
            d.fetch_add(1, SeqCst);
        })
        .unwrap();
    for i in 0..1000 {
        pool.submit(i).unwrap();
    }
    drop(pool);
    assert_eq!(done.load(SeqCst), 1000);
}

#[test]
fn bad_options_are_typed_errors() {
    let e = Pool::builder()
        .capacity(0)
        .build_each(|_: u8| {})
        .unwrap_err();
    assert!(matches!(e, BuildError::Capacity(_)), "{e}");
    let e = Pool::builder()
        .workers(0..=0)
        .build_each(|_: u8| {})
        .unwrap_err();
    assert!(matches!(e, BuildError::Workers { min: 0, max: 0 }), "{e}");
    let e = Pool::builder()
        .low_water(0.8)
        .high_water(0.2)
        .build_each(|_: u8| {})
        .unwrap_err();
    assert!(matches!(e, BuildError::WaterMarks { .. }), "{e}");
}

#[test]
fn pool_and_submitter_are_send_and_sync_for_send_jobs() {
    fn send_sync<X: Send + Sync>() {}
    // `Cell` is Send but not Sync: jobs only need to be Send.
    send_sync::<Pool<std::cell::Cell<u8>>>();
    send_sync::<weir::pool::Submitter<std::cell::Cell<u8>>>();
}

#[test]
fn the_pool_is_reexported_at_the_crate_root() {
    let pool: weir::Pool<u8> = weir::Pool::builder()
        .overflow(weir::Overflow::Reject)
        .unpinned()
        .build_each(|_| {})
        .unwrap();
    let report: weir::PoolReport = pool.shutdown();
    let _: &weir::PoolMetrics = &report.metrics;
    let _: Option<weir::SubmitError<u8>> = None;
}

#[test]
fn shutdown_interrupts_a_submit_waiting_for_a_rate_limit_token() {
    let pool = Pool::builder()
        .rate_limit(0.001, 1) // one token, then the next in 1000 s
        .unpinned()
        .build_each(|_: u32| {})
        .unwrap();
    pool.submit(1).unwrap();
    let submitter = pool.submitter();
    let waiting = thread::spawn(move || submitter.submit(2));
    let report = pool.shutdown();
    // Whether it was already waiting for the token or arrived after intake closed, the job comes
    // back as ShutDown, long before a token is due.
    assert!(matches!(
        waiting.join().unwrap(),
        Err(SubmitError::ShutDown(2))
    ));
    assert_eq!(report.metrics.completed, 1);
}

/// A panic payload whose own `Drop` panics (`panic_any` of such a value), with a string.
struct PanicsOnDrop;
impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("the payload's Drop panics");
        }
    }
}

/// A payload whose `Drop` panics with another such payload: a chain that never ends by itself.
struct PanicsOnDropForever;
impl Drop for PanicsOnDropForever {
    fn drop(&mut self) {
        if !thread::panicking() {
            std::panic::panic_any(PanicsOnDropForever);
        }
    }
}

fn panic_with_bad_payload(forever: bool) {
    if forever {
        std::panic::panic_any(PanicsOnDropForever);
    }
    std::panic::panic_any(PanicsOnDrop);
}

/// A handler that panics with a payload whose `Drop` panics too (once, or in an endless chain)
/// fails its item (or batch) and nothing more: the worker lives on, every item is accounted
/// for, no crash.
#[test]
fn a_panic_payload_that_panics_on_drop_does_not_take_the_worker_down() {
    quiet_panics();
    for (batch_handler, forever) in [(false, false), (true, false), (false, true), (true, true)] {
        let builder = Pool::builder()
            .capacity(64)
            .workers(1..=1)
            .batch(4)
            .unpinned();
        let pool = if batch_handler {
            builder
                .build(move |jobs: &mut Vec<u32>| {
                    if jobs.contains(&0) {
                        panic_with_bad_payload(forever);
                    }
                    jobs.clear();
                })
                .unwrap()
        } else {
            builder
                .build_each(move |job: u32| {
                    if job == 0 {
                        panic_with_bad_payload(forever);
                    }
                })
                .unwrap()
        };
        for i in 0..10 {
            pool.submit(i).unwrap();
        }
        wait_until("every item handled", || {
            let m = pool.metrics();
            m.completed + m.failed == 10
        });
        assert_eq!(pool.workers(), 1);
        let report = pool.shutdown();
        let m = &report.metrics;
        let case = format!("batch handler {batch_handler}, endless chain {forever}");
        assert_eq!(report.worker_crashes, 0, "{case}");
        assert_eq!(m.panics, 1, "{case}");
        // `build_each`: item 0 alone; `build`: the batch that held it (1 to 4 items).
        assert!(m.failed >= 1 && m.failed <= 4, "{case}: {}", m.failed);
        assert_eq!(m.completed + m.failed, 10, "{case}");
    }
}

#[test]
fn a_thread_name_with_a_nul_byte_is_a_build_error() {
    let e = Pool::builder()
        .thread_name("bad\0name")
        .unpinned()
        .build_each(|_: u8| {})
        .unwrap_err();
    assert!(
        matches!(e, BuildError::ThreadName(ref n) if n == "bad\0name"),
        "{e}"
    );
    assert!(e.to_string().contains("NUL"), "{e}");
}

/// Fractions apart that round to the same item count (capacity 3: floor(low * 3) = 1 =
/// ceil(high * 3) for `high` the next float above 1/3) would leave no hysteresis: rejected.
#[test]
fn water_marks_that_meet_in_items_are_a_build_error() {
    let low = 1.0f64 / 3.0;
    let high = f64::from_bits(low.to_bits() + 1);
    assert!(low < high && (low * 3.0).floor() == (high * 3.0).ceil());
    let e = Pool::builder()
        .capacity(3)
        .low_water(low)
        .high_water(high)
        .unpinned()
        .build_each(|_: u8| {})
        .unwrap_err();
    assert!(matches!(e, BuildError::WaterMarks { .. }), "{e}");
}

/// The slowest rates: a burst whose tokens span more than 2^62 ns is refused at build (the
/// bucket's clock could not honour it); the slowest accepted one admits its whole burst.
#[test]
fn a_rate_too_slow_for_its_burst_is_a_build_error_and_the_slowest_accepted_keeps_its_burst() {
    for (per_second, burst) in [(1e-9, 100), (1e-9, 4), (1e-12, 1)] {
        let e = Pool::builder()
            .rate_limit(per_second, burst)
            .unpinned()
            .build_each(|_: u8| {})
            .unwrap_err();
        assert!(matches!(e, BuildError::RateLimit { .. }), "{e}");
    }
    // 1e9 s per token, burst 3: 4e18 ns, within 2^62 (about 4.6e18).
    let pool = Pool::builder()
        .rate_limit(1e-9, 3)
        .overflow(Overflow::Reject)
        .unpinned()
        .build_each(|_: u8| {})
        .unwrap();
    let admitted = (0..5).filter(|&i| pool.submit(i).is_ok()).count();
    assert_eq!(admitted, 3);
    assert_eq!(pool.shutdown().metrics.rate_limited, 2);
}

/// `queue_latency` runs from the `submit` call: a submit blocked on a full queue counts its
/// wait for room (the documented meaning). Capacity 1, one worker, each job held at a gate.
#[test]
fn queue_latency_counts_a_blocked_submits_wait_for_room() {
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let pool = Arc::new(
        Pool::builder()
            .capacity(1)
            .workers(1..=1)
            .batch(1)
            .unpinned()
            .build_each(move |_: u32| g.pass())
            .unwrap(),
    );
    let _open = gate.open_on_drop();
    pool.submit(0).unwrap();
    wait_until("job 0 in the handler", || gate.entered() == 1);
    pool.submit(1).unwrap(); // fills the queue
    let p = pool.clone();
    let blocked = thread::spawn(move || p.submit(2).unwrap());
    let held = Duration::from_millis(200);
    thread::sleep(held);
    gate.open();
    blocked.join().unwrap();
    let pool = Arc::into_inner(pool).unwrap();
    let m = pool.shutdown().metrics;
    assert_eq!(m.queue_latency.count, 3);
    // Job 2's submit waited for room from its stamp (taken a moment after the spawn, which
    // `held` also starts from) until the gate opened: close to `held`. Were that wait not
    // counted, job 2 would show only its time in the queue behind job 1, microseconds.
    assert!(m.queue_latency.max >= held / 2, "{:?}", m.queue_latency.max);
}
