//! Soak test of the pool under shifting load: off by default (it runs for minutes).
//!
//! ```sh
//! cargo test --release --test soak -- --ignored --nocapture          # 180 s
//! WEIR_SOAK_SECS=600 cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! Two submitters cycle through phases (flood, steady, trickle, idle) against a pool of 1..=4
//! workers under each overflow policy in turn, so the pool scales up and down many times. It
//! checks that every submitted item is accounted for exactly once (handler calls included) and
//! that the resident memory stays flat after a warm-up: no queue growth, no histogram growth, no
//! leak of worker threads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use weir::pool::{Overflow, Pool};

/// Resident set size in bytes, from /proc/self/statm (Linux).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn busy(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

#[test]
#[ignore = "soak: runs for minutes (WEIR_SOAK_SECS, default 180)"]
fn pool_under_shifting_load_balances_and_keeps_memory_flat() {
    let secs: u64 = std::env::var("WEIR_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let policies = [
        Overflow::Block,
        Overflow::Timeout(Duration::from_micros(200)),
        Overflow::Reject,
        Overflow::DropNewest,
        Overflow::DropOldest,
    ];
    let per_policy = Duration::from_secs(secs) / policies.len() as u32;
    let start = Instant::now();
    let mut rss_samples: Vec<(Duration, u64)> = Vec::new();
    let mut total_submitted = 0u64;
    let mut total_scale_events = 0u64;
    for policy in policies {
        let handled = Arc::new(AtomicU64::new(0));
        let seen = handled.clone();
        let displaced_seen = Arc::new(AtomicU64::new(0));
        let displaced_cb = displaced_seen.clone();
        let pool = Pool::builder()
            .capacity(1024)
            .workers(1..=4)
            .high_water(0.5)
            .low_water(0.05)
            .batch(32)
            .overflow(policy)
            .cooldown(Duration::from_millis(20))
            .idle_window(Duration::from_millis(200))
            .on_displaced(move |_: u64| {
                displaced_cb.fetch_add(1, Relaxed);
            })
            .build_each(move |job: u64| {
                // Work that varies with the job: 0–8 µs.
                busy(Duration::from_nanos((job % 9) * 1000));
                seen.fetch_add(1, Relaxed);
            })
            .expect("pool");
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicU64::new(0));
        let submitters: Vec<_> = (0..2)
            .map(|id| {
                let sub = pool.submitter();
                let stop = stop.clone();
                let refused = refused.clone();
                thread::spawn(move || {
                    let begun = Instant::now();
                    let mut n = 0u64;
                    let mut i = 0u64;
                    while !stop.load(Relaxed) {
                        // Phases of 300 ms, the two submitters out of step: flood, steady,
                        // trickle, idle.
                        let phase = (begun.elapsed().as_millis() as u64 / 300 + id) % 4;
                        let pause = match phase {
                            0 => None,
                            1 => Some(Duration::from_micros(5)),
                            2 => Some(Duration::from_micros(200)),
                            _ => Some(Duration::from_millis(5)),
                        };
                        if sub.submit(i).is_err() {
                            refused.fetch_add(1, Relaxed);
                        }
                        n += 1;
                        i += 1;
                        if let Some(p) = pause {
                            thread::sleep(p);
                        }
                    }
                    n
                })
            })
            .collect();
        let policy_end = Instant::now() + per_policy;
        while Instant::now() < policy_end {
            thread::sleep(Duration::from_millis(250));
            rss_samples.push((start.elapsed(), rss_bytes()));
        }
        stop.store(true, Relaxed);
        let submitted: u64 = submitters.into_iter().map(|t| t.join().unwrap()).sum();
        let report = pool.shutdown();
        let m = &report.metrics;
        println!(
            "{policy:?}: submitted {submitted}, completed {}, rejected {}, dropped {}, \
             displaced {}, failed {}, scale up/down {}/{}, queue p99 {:?}",
            m.completed,
            m.rejected,
            m.dropped,
            m.displaced,
            m.failed,
            m.scale_ups,
            m.scale_downs,
            m.queue_latency.p99
        );
        assert_eq!(m.submitted, submitted, "{policy:?}: submit calls");
        assert_eq!(report.accounted(), submitted, "{policy:?}: balance");
        assert_eq!(
            m.completed,
            handled.load(Relaxed),
            "{policy:?}: handler calls"
        );
        assert_eq!(m.rejected, refused.load(Relaxed), "{policy:?}: refusals");
        assert_eq!(
            m.displaced,
            displaced_seen.load(Relaxed),
            "{policy:?}: displaced"
        );
        assert_eq!(m.failed, 0);
        total_submitted += submitted;
        total_scale_events += m.scale_ups + m.scale_downs;
    }
    // Memory: after the first fifth (warm-up: thread stacks, histograms, allocator arenas),
    // the resident set must not grow by more than 16 MiB.
    let warm = rss_samples.len() / 5;
    let after_warmup = &rss_samples[warm..];
    let base = after_warmup.iter().map(|s| s.1).min().unwrap();
    let peak = after_warmup.iter().map(|s| s.1).max().unwrap();
    println!(
        "soak: {:?}, {total_submitted} items submitted, {total_scale_events} scale events, \
         RSS after warm-up {:.1}..{:.1} MiB over {} samples",
        start.elapsed(),
        base as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        after_warmup.len()
    );
    assert!(total_scale_events > 0, "the load never made the pool scale");
    assert!(
        peak - base <= 16 << 20,
        "resident memory grew from {base} to {peak} bytes"
    );
}
