//! Watching a run: chart samples ten times a second and the live status line.

use crate::load::Probe;
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Chart sample period.
const SAMPLE: Duration = Duration::from_millis(100);
/// Status line period on a terminal (in place) and otherwise (one line each).
const STATUS_TTY: Duration = Duration::from_millis(250);
const STATUS_PLAIN: Duration = Duration::from_secs(1);

/// One point of a run's time series.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Seconds since the run started.
    pub t: f64,
    /// Items in the queue.
    pub depth: usize,
    /// Consumers (workers) alive.
    pub workers: usize,
    /// Messages processed so far.
    pub processed: u64,
    /// p99 queueing latency of the messages dequeued in this sample period, in ms (None if none).
    pub p99_ms: Option<f64>,
}

/// What a run exposes to the monitor.
pub struct Watch<'a> {
    /// Short name for the status line.
    pub label: &'a str,
    pub probe: &'a Probe,
    pub capacity: usize,
    pub depth: &'a dyn Fn() -> usize,
    pub workers: &'a dyn Fn() -> usize,
    /// `true` once the run has nothing left to do.
    pub finished: &'a dyn Fn() -> bool,
    /// Keep watching at least this long, even if finished.
    pub at_least: Duration,
}

/// Samples the run until it is finished; prints the status line as it goes.
pub fn watch(w: &Watch<'_>, start: Instant) -> Vec<Sample> {
    let tty = std::io::stdout().is_terminal();
    let status_every = if tty { STATUS_TTY } else { STATUS_PLAIN };
    let mut samples = Vec::new();
    let mut next_sample = start;
    let mut last_status = (start, 0u64, 0u64);
    loop {
        let now = Instant::now();
        if next_sample > now {
            std::thread::sleep(next_sample - now);
        }
        next_sample += SAMPLE;
        let t = start.elapsed();
        let depth = (w.depth)();
        let workers = (w.workers)();
        let (p99_sample, p99_status) = {
            let mut l = w.probe.lat.lock().unwrap();
            let s = p99_ms(&l.sample);
            l.sample.reset();
            let st = p99_ms(&l.status);
            (s, st)
        };
        samples.push(Sample {
            t: t.as_secs_f64(),
            depth,
            workers,
            processed: w.probe.processed.load(Relaxed),
            p99_ms: p99_sample,
        });
        let done = (w.finished)() && t >= w.at_least;
        if last_status.0.elapsed() >= status_every || done {
            let offered = w.probe.offered.load(Relaxed);
            let processed = w.probe.processed.load(Relaxed);
            let dt = last_status.0.elapsed().as_secs_f64().max(1e-3);
            let rate_in = (offered - last_status.1) as f64 / dt;
            let rate_out = (processed - last_status.2) as f64 / dt;
            last_status = (Instant::now(), offered, processed);
            w.probe.lat.lock().unwrap().status.reset();
            let p99 = p99_status.map_or_else(|| "     -  ".to_string(), fmt_ms);
            let line = format!(
                "{:<13} t {:>5.1} s  depth {:>7} / {:<8} workers {}  in {:>5.0}/s  out {:>5.0}/s  p99 {}",
                w.label, t.as_secs_f64(), depth, w.capacity, workers, rate_in, rate_out, p99
            );
            let mut out = std::io::stdout().lock();
            if tty {
                let _ = write!(out, "\r{line}\x1b[K");
            } else {
                let _ = writeln!(out, "{line}");
            }
            let _ = out.flush();
        }
        if done {
            if tty {
                println!();
            }
            return samples;
        }
    }
}

fn p99_ms(h: &hdrhistogram::Histogram<u64>) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(0.99) as f64 / 1000.0)
}

/// A latency in ms, right-aligned in 8 columns, switching to seconds above 10 s.
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:>6.2} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{:>5.0} ms", ms)
    } else if ms >= 1.0 {
        format!("{:>5.1} ms", ms)
    } else {
        format!("{:>5.0} µs", ms * 1000.0)
    }
}
