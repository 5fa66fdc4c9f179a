//! The load: a paced producer, a simulated 2 ms consumer, and the probe both report to.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One message. `born` is stamped just before the producer hands it to the queue, so the latency
/// measured at the consumer is the time it spent waiting in (or for) the queue.
#[derive(Debug)]
pub struct Msg {
    /// Sequence number (kept so the message has a realistic payload).
    #[allow(dead_code)]
    pub id: u64,
    /// When the producer made it.
    pub born: Instant,
}

/// Latency histograms in microseconds: the whole run, plus two windows the monitor resets.
pub struct Latencies {
    /// Every message of the run.
    pub total: Histogram<u64>,
    /// Since the last chart sample.
    pub sample: Histogram<u64>,
    /// Since the last status line.
    pub status: Histogram<u64>,
}

/// What the producer and the consumers of one run report, read by the monitor.
pub struct Probe {
    /// Messages the producer made and offered to the queue.
    pub offered: AtomicU64,
    /// Of those, messages the queue refused (handed back). The report calls them lost.
    pub refused: AtomicU64,
    /// Messages a consumer has started to process.
    pub processed: AtomicU64,
    /// `processed` when the load stopped.
    pub processed_at_load_end: AtomicU64,
    /// How far behind its 1,000/s schedule the producer was when the load stopped, in µs.
    pub behind_us: AtomicU64,
    /// Queueing latency.
    pub lat: Mutex<Latencies>,
}

/// A histogram from 1 µs to 10 minutes at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

impl Probe {
    pub fn new() -> Self {
        Probe {
            offered: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            processed: AtomicU64::new(0),
            processed_at_load_end: AtomicU64::new(0),
            behind_us: AtomicU64::new(0),
            lat: Mutex::new(Latencies {
                total: histogram(),
                sample: histogram(),
                status: histogram(),
            }),
        }
    }

    /// A consumer took `msg` off the queue and is about to work on it.
    pub fn dequeued(&self, msg: &Msg) {
        let us = msg.born.elapsed().as_micros().max(1) as u64;
        {
            let mut l = self.lat.lock().unwrap();
            l.total.saturating_record(us);
            l.sample.saturating_record(us);
            l.status.saturating_record(us);
        }
        self.processed.fetch_add(1, Relaxed);
    }
}

/// Makes `rate` messages per second for `duration` and hands each to `offer`, which returns
/// the message if the queue refused it. Paced on an absolute schedule (message `i` is due at
/// `start + i / rate`), so sleep overshoot does not accumulate; a producer held back by a
/// blocking queue falls behind that schedule, and how far is recorded.
pub fn produce(
    rate: f64,
    duration: Duration,
    probe: &Probe,
    mut offer: impl FnMut(Msg) -> Result<(), Msg>,
) {
    let start = Instant::now();
    let end = start + duration;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut due = start;
    let mut id = 0u64;
    loop {
        let now = Instant::now();
        if now >= end || due >= end {
            break;
        }
        if due > now {
            std::thread::sleep(due - now);
        }
        let msg = Msg {
            id,
            born: Instant::now(),
        };
        probe.offered.fetch_add(1, Relaxed);
        if offer(msg).is_err() {
            probe.refused.fetch_add(1, Relaxed);
        }
        id += 1;
        due += interval;
    }
    let now = Instant::now();
    let behind = now.saturating_duration_since(due.min(end));
    probe
        .processed_at_load_end
        .store(probe.processed.load(Relaxed), Relaxed);
    probe.behind_us.store(behind.as_micros() as u64, Relaxed);
}

/// A consumer's simulated work: each message occupies a `work`-long service slot, spent
/// sleeping (not spinning), so the other threads keep the CPU. A slot starts when both the
/// consumer is free (its previous slot ended) and the message exists, so while there is a
/// backlog the slots are back to back and a consumer handles exactly `1 / work` messages per
/// second however much the OS oversleeps (a late thread catches up, at most `CATCH_UP` behind).
pub struct Service {
    work: Duration,
    next_free: Option<Instant>,
}

/// How far behind the clock a late consumer may run its slots to catch up.
const CATCH_UP: Duration = Duration::from_millis(20);

impl Service {
    pub fn new(work: Duration) -> Self {
        Service {
            work,
            next_free: None,
        }
    }

    /// Does the work for `msg`.
    pub fn work(&mut self, msg: &Msg) {
        let now = Instant::now();
        let mut start = match self.next_free {
            Some(free) => free.max(msg.born),
            None => now,
        };
        if let Some(floor) = now.checked_sub(CATCH_UP) {
            start = start.max(floor);
        }
        let end = start + self.work;
        self.next_free = Some(end);
        let now = Instant::now();
        if end > now {
            std::thread::sleep(end - now);
        }
    }
}
