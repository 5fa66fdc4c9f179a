//! The classic case, replayed three ways: a stage produces 1,000 msg/s, one consumer handles
//! 500 msg/s (2 ms of work each, simulated by sleeping). What does each design do to the system?
//!
//! 1. **No backpressure**: a very large weir ring and a non-blocking push. Depth and queueing
//!    latency grow for as long as the load lasts.
//! 2. **Backpressure only**: a bounded weir ring and a blocking push. The producer is slowed to
//!    the consumer's 500 msg/s; depth and latency are bounded; nothing is lost.
//! 3. **Backpressure and scaling**: a `weir::pool::Pool` with 1..=N workers and high/low water
//!    marks. Workers are added when the queue crosses the high mark, throughput reaches
//!    1,000 msg/s with bounded latency, and workers retire once the load stops.
//!
//! ```text
//! cargo run --release --example backpressure             # about 20 s
//! cargo run --release --example backpressure -- --help   # rates, durations, capacity, marks
//! ```
//!
//! A live status line shows each run; at the end a side-by-side table and an SVG chart of depth,
//! latency and workers over time (the path is printed).

use clap::{CommandFactory, Parser};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "backpressure/chart.rs"]
mod chart;
#[path = "backpressure/load.rs"]
mod load;
#[path = "backpressure/monitor.rs"]
mod monitor;
#[path = "backpressure/pool_run.rs"]
mod pool_run;
#[path = "backpressure/report.rs"]
mod report;

use load::{Msg, Probe, Service};
use monitor::Watch;
use report::Summary;

/// A 1,000 msg/s producer against a 500 msg/s consumer, run three ways: no backpressure,
/// backpressure only, backpressure and scaling (weir's pool). Prints a live status line, a
/// side-by-side table, and writes an SVG chart of depth, latency and workers over time.
#[derive(Parser, Debug)]
#[command(name = "backpressure", version, allow_negative_numbers = true)]
pub struct Args {
    /// Messages per second the producer offers.
    #[arg(long, default_value_t = 1000.0, value_name = "MSG_PER_S")]
    pub rate: f64,
    /// Work per message in a consumer, in milliseconds (slept, not spun). One consumer handles
    /// 1000 / WORK_MS messages per second: 500 for 2 ms.
    #[arg(long, default_value_t = 2.0, value_name = "MS")]
    pub work_ms: f64,
    /// How long the load lasts in each run, in seconds.
    #[arg(long, default_value_t = 4.0, value_name = "S")]
    pub load_secs: f64,
    /// Quiet time after the load in run 3, in seconds, to show the workers retiring.
    #[arg(long, default_value_t = 3.0, value_name = "S")]
    pub tail_secs: f64,
    /// Capacity (items) of the bounded ring in run 2 and of the pool's queue in run 3.
    #[arg(long, default_value_t = 512, value_name = "ITEMS")]
    pub capacity: usize,
    /// Capacity (items) of the "unbounded" ring in run 1: large enough never to fill.
    #[arg(long, default_value_t = 1 << 20, value_name = "ITEMS")]
    pub big_capacity: usize,
    /// Pool high-water mark, a fraction of capacity: the push that leaves the queue at or above
    /// it signals the pool to add a worker.
    #[arg(long, default_value_t = 0.25, value_name = "FRACTION")]
    pub high_water: f64,
    /// Pool low-water mark, a fraction of capacity: a worker that sees the depth at or below it
    /// for a whole idle window retires. Must be below the high-water mark.
    #[arg(long, default_value_t = 0.02, value_name = "FRACTION")]
    pub low_water: f64,
    /// Most workers the pool may run (it starts with one).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub max_workers: usize,
    /// Pool cool-down between two scale-up steps, in milliseconds.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    pub cooldown_ms: u64,
    /// Pool idle window, in milliseconds: how long a worker must see the depth at or below the
    /// low-water mark before it retires.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub idle_ms: u64,
    /// Which runs to do, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,3",
        value_name = "LIST"
    )]
    pub runs: Vec<u8>,
    /// Where to write the SVG chart [default: <target dir>/weir-demo/backpressure.svg].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

impl Args {
    /// Checks values clap cannot check by type; the message says what is wrong.
    fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!(
                    "--{name} must be a finite number above 0 (got {v})"
                ))
            }
        };
        positive("rate", self.rate)?;
        positive("work-ms", self.work_ms)?;
        positive("load-secs", self.load_secs)?;
        if !(self.tail_secs.is_finite() && self.tail_secs >= 0.0) {
            return Err(format!(
                "--tail-secs must be 0 or more (got {})",
                self.tail_secs
            ));
        }
        if self.rate > 100_000.0 {
            return Err(format!(
                "--rate {} is beyond what a sleeping producer can pace; use at most 100000",
                self.rate
            ));
        }
        if self.load_secs > 600.0 || self.tail_secs > 600.0 {
            return Err("--load-secs and --tail-secs are limited to 600".into());
        }
        if self.capacity == 0 || self.big_capacity == 0 {
            return Err("--capacity and --big-capacity must be at least 1".into());
        }
        if self.big_capacity > 1 << 26 {
            return Err(format!(
                "--big-capacity {} would allocate over 2 GiB; use at most {}",
                self.big_capacity,
                1 << 26
            ));
        }
        for (name, v) in [
            ("high-water", self.high_water),
            ("low-water", self.low_water),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!(
                    "--{name} must be a fraction between 0 and 1 (got {v})"
                ));
            }
        }
        if self.low_water >= self.high_water {
            return Err(format!(
                "--low-water ({}) must be below --high-water ({}): the gap between them is what \
                 keeps the pool from flapping",
                self.low_water, self.high_water
            ));
        }
        if self.max_workers == 0 {
            return Err("--max-workers must be at least 1".into());
        }
        if self.idle_ms == 0 {
            return Err("--idle-ms must be at least 1".into());
        }
        if self.runs.is_empty() || self.runs.iter().any(|r| !(1..=3).contains(r)) {
            return Err(format!(
                "--runs takes a list of 1, 2 and 3 (got {:?})",
                self.runs
            ));
        }
        Ok(())
    }

    fn load(&self) -> Duration {
        Duration::from_secs_f64(self.load_secs)
    }

    fn work(&self) -> Duration {
        Duration::from_secs_f64(self.work_ms / 1000.0)
    }
}

/// Bytes of one MPMC ring slot holding `T`: the slot's stamp (a `usize`) beside the item.
pub fn slot_bytes<T>() -> usize {
    std::mem::size_of::<(usize, T)>()
}

/// Runs 1 and 2: one producer, one consumer thread, one weir MPMC ring between them.
/// `blocking` picks the producer's per-call policy: `push` (wait for room) or `try_push`
/// (never wait; a refusal is counted as lost).
fn ring_run(
    args: &Args,
    title: &'static str,
    label: &str,
    capacity: usize,
    blocking: bool,
) -> Summary {
    let (tx, rx) = weir::mpmc::channel::<Msg>(capacity);
    let probe = Arc::new(Probe::new());
    let start = Instant::now();

    let consumer = {
        let (rx, probe, work) = (rx.clone(), probe.clone(), args.work());
        std::thread::spawn(move || {
            let mut service = Service::new(work);
            // Ends when the producer has gone and the ring is drained.
            while let Ok(msg) = rx.pop() {
                probe.dequeued(&msg);
                service.work(&msg);
            }
        })
    };
    let producer = {
        let (probe, rate, load) = (probe.clone(), args.rate, args.load());
        std::thread::spawn(move || {
            load::produce(rate, load, &probe, |msg| {
                if blocking {
                    tx.push(msg).map_err(|e| e.into_inner())
                } else {
                    tx.try_push(msg).map_err(|e| e.into_inner())
                }
            });
            // `tx` drops here: the consumer drains what is left, then sees Disconnected.
        })
    };

    let samples = monitor::watch(
        &Watch {
            label,
            probe: &probe,
            capacity,
            depth: &|| rx.len(),
            workers: &|| 1,
            finished: &|| consumer.is_finished(),
            at_least: args.load(),
        },
        start,
    );
    producer.join().expect("producer thread panicked");
    consumer.join().expect("consumer thread panicked");
    let elapsed = start.elapsed();
    summarize(
        args,
        title,
        &probe,
        samples,
        elapsed,
        capacity,
        slot_bytes::<Msg>(),
        None,
        None,
    )
}

/// Builds a run's summary from its probe and samples.
#[allow(clippy::too_many_arguments)]
pub fn summarize(
    args: &Args,
    title: &'static str,
    probe: &Probe,
    samples: Vec<monitor::Sample>,
    elapsed: Duration,
    capacity: usize,
    slot_bytes: usize,
    scale: Option<(u64, u64)>,
    note: Option<String>,
) -> Summary {
    use std::sync::atomic::Ordering::Relaxed;
    Summary {
        title,
        load: args.load(),
        elapsed,
        offered_rate: args.rate,
        offered: probe.offered.load(Relaxed),
        refused: probe.refused.load(Relaxed),
        processed: probe.processed.load(Relaxed),
        processed_in_load: probe.processed_at_load_end.load(Relaxed),
        behind: Duration::from_micros(probe.behind_us.load(Relaxed)),
        latency: probe.lat.lock().unwrap().total.clone(),
        samples,
        capacity,
        item_bytes: std::mem::size_of::<Msg>(),
        slot_bytes,
        slots: capacity.next_power_of_two(),
        scale,
        note,
    }
}

fn default_out() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("weir-demo").join("backpressure.svg")
}

fn main() {
    let args = Args::parse();
    if let Err(msg) = args.validate() {
        Args::command()
            .error(clap::error::ErrorKind::ValueValidation, msg)
            .exit();
    }
    let consumer_rate = 1000.0 / args.work_ms;
    println!(
        "weir backpressure demo: a producer offers {:.0} msg/s for {:.1} s; one consumer handles \
         {consumer_rate:.0} msg/s ({} ms of simulated work each).\n",
        args.rate, args.load_secs, args.work_ms
    );

    let mut runs = Vec::new();
    if args.runs.contains(&1) {
        println!(
            "Run 1, no backpressure: a weir ring of {} slots, try_push never waits.",
            args.big_capacity
        );
        runs.push(ring_run(
            &args,
            "1 no backpressure",
            "1 unbounded",
            args.big_capacity,
            false,
        ));
    }
    if args.runs.contains(&2) {
        println!(
            "\nRun 2, backpressure only: a weir ring of {} slots, push waits for room.",
            args.capacity
        );
        runs.push(ring_run(
            &args,
            "2 backpressure",
            "2 bounded",
            args.capacity,
            true,
        ));
    }
    if args.runs.contains(&3) {
        println!(
            "\nRun 3, backpressure and scaling: weir::pool::Pool, capacity {}, workers 1..={}, \
             high/low water {}/{}, then {:.1} s without load.",
            args.capacity, args.max_workers, args.high_water, args.low_water, args.tail_secs
        );
        match pool_run::run(&args) {
            Ok(s) => runs.push(s),
            Err(e) => {
                eprintln!("error: could not build the pool: {e}");
                std::process::exit(1);
            }
        }
    }

    println!();
    report::print(&runs);
    println!(
        "\nLatency is queueing time: from the producer making a message to a consumer starting \
         on it.\nMemory: used = peak depth x {} B per message; allocated = slots (capacity \
         rounded up to a power of two) x slot size ({} B in the rings; {} B in the pool, whose \
         slot also holds the enqueue time).",
        std::mem::size_of::<Msg>(),
        slot_bytes::<Msg>(),
        pool_run::SLOT_BYTES
    );

    let out = args.out.clone().unwrap_or_else(default_out);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("error: cannot create {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
    match chart::draw(&out, &runs, args.max_workers) {
        Ok(()) => println!("\nChart: {}", out.display()),
        Err(e) => {
            eprintln!("error: cannot write the chart to {}: {e}", out.display());
            std::process::exit(1);
        }
    }
    if runs.iter().any(|r| r.lost() > 0) {
        println!("Some messages were lost: see the table (run 1 refuses only if its ring fills).");
    }
}
