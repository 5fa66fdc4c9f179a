//! Run 3: the same load through `weir::pool::Pool`, which adds workers on the high-water signal
//! and retires them after an idle window below the low-water mark.

use crate::load::{self, Msg, Probe, Service};
use crate::monitor::{self, Watch};
use crate::report::Summary;
use crate::Args;
use std::cell::RefCell;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir::pool::{BuildError, Overflow, Pool};

/// Bytes of one pool queue slot: the ring's stamp, the message, and the pool's enqueue time.
pub const SLOT_BYTES: usize = std::mem::size_of::<(usize, Msg, Instant)>();

thread_local! {
    /// Each worker thread's own service slot (the work of one consumer is sequential).
    static SERVICE: RefCell<Option<Service>> = const { RefCell::new(None) };
}

pub fn run(args: &Args) -> Result<Summary, BuildError> {
    let probe = Arc::new(Probe::new());
    let work = args.work();
    let pool = {
        let probe = probe.clone();
        Pool::builder()
            .capacity(args.capacity)
            .workers(1..=args.max_workers)
            .high_water(args.high_water)
            .low_water(args.low_water)
            .cooldown(Duration::from_millis(args.cooldown_ms))
            .idle_window(Duration::from_millis(args.idle_ms))
            // One message per take, so a message waits in the queue (where any idle worker can
            // take it), not in one worker's batch.
            .batch(1)
            .overflow(Overflow::Block)
            .build_each(move |msg: Msg| {
                probe.dequeued(&msg);
                SERVICE.with(|s| {
                    s.borrow_mut()
                        .get_or_insert_with(|| Service::new(work))
                        .work(&msg)
                });
            })?
    };
    let start = Instant::now();
    let producer = {
        let (probe, rate, load, submitter) =
            (probe.clone(), args.rate, args.load(), pool.submitter());
        std::thread::spawn(move || {
            load::produce(rate, load, &probe, |msg| {
                submitter.submit(msg).map_err(|e| e.into_inner())
            });
        })
    };
    let at_least = args.load() + Duration::from_secs_f64(args.tail_secs);
    let samples = monitor::watch(
        &Watch {
            label: "3 pool",
            probe: &probe,
            capacity: args.capacity,
            depth: &|| pool.depth(),
            workers: &|| pool.workers(),
            finished: &|| {
                producer.is_finished()
                    && probe.processed.load(Relaxed) == probe.offered.load(Relaxed)
            },
            at_least,
        },
        start,
    );
    producer.join().expect("producer thread panicked");
    let report = pool.shutdown();
    let elapsed = start.elapsed();
    let m = &report.metrics;
    let note =
        format!(
        "pool accounting: submitted {} = completed {} + failed {} + rejected {} + dropped {} + \
         displaced {} + returned {} ({}); handler panics {}, pin failures {}",
        m.submitted,
        m.completed,
        m.failed,
        m.rejected,
        m.dropped,
        m.displaced,
        report.returned,
        if report.accounted() == m.submitted { "balanced" } else { "NOT BALANCED" },
        m.panics,
        m.pin_failures,
    );
    Ok(crate::summarize(
        args,
        "3 backpressure + scaling",
        &probe,
        samples,
        elapsed,
        args.capacity,
        SLOT_BYTES,
        Some((m.scale_ups, m.scale_downs)),
        Some(note),
    ))
}
