//! The latency and throughput harness: weir's rings next to their peers, every contender in an
//! interleaved order several times, medians with min–max printed as a markdown table.
//!
//! ```text
//! cargo run --profile bench --example harness             # full run (a few minutes)
//! cargo run --profile bench --example harness -- --quick  # smaller sizes, 3 runs
//! cargo run --profile bench --example harness -- --rows spsc,rtt --only weir,rtrb
//! cargo run --profile bench --example harness -- --markdown out.md --svg docs/benchmarks.svg
//! ```
//!
//! Rows: `spsc` (single-item try_push/try_pop + spin), `busy` (the same with a consumer that
//! does a few ns of work per item, so the ring runs full), `batch` (batches of 64, each crate's batch
//! API), `rtt` (ping-pong round trip, with the raw-atomics floor), `mpmc` (2P2C, 4P4C, 2P1C),
//! `slow` (a consumer spending ~5 µs per item: wall time and the producer's CPU per item).
//! Producers are pinned to core 0, consumers to core 1; the ring holds 1024 `u64` for everyone.
//! See `benches/common/mod.rs` for what each contender does and docs/benchmarks.md for results.

#[path = "../benches/common/mod.rs"]
mod common;

use clap::{Parser, ValueEnum};
use common::*;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "weir vs peers: throughput and latency, interleaved runs, markdown table")]
struct Args {
    /// Smaller sizes and 3 runs (about half a minute on a quiet machine), for a quick look. The
    /// default (full) run takes two to three minutes on a quiet machine.
    #[arg(long)]
    quick: bool,
    /// Repetitions of the interleaved order (default: 7, or 3 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Rows to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    rows: Vec<Row>,
    /// Run only the contenders whose name contains one of these words, comma-separated
    /// (e.g. `weir,rtrb`; the RTT floor always runs with the rtt row).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// A sample during which a pinned thread spent more than this share of its time preempted
    /// by other processes is run again (up to --retries times; the same rule for everyone).
    #[arg(long, default_value_t = 0.02)]
    max_preempted: f64,
    /// How many times a preempted sample is re-run before it is kept anyway.
    #[arg(long, default_value_t = 4)]
    retries: usize,
    /// Multiply every item count by this factor (e.g. 0.2 for a smoke test).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Also write the markdown report to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write a chart of the goal ratios (SVG) to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Instead of the table: run one contender's single-threaded push/pop loop (for
    /// `valgrind --tool=callgrind`, see docs/benchmarks.md). Names: weir, rtrb, ringbuf,
    /// arrayqueue, crossbeam-channel, kanal, flume, std, disruptor, weir-vec (try_pop_batch),
    /// weir-stamped (the Stamped flavour), weir-mpmc, arrayqueue-mpmc, crossbeam-channel-mpmc,
    /// bare, bare-hints, bare-stamp and bare-stamp-checks (the reference rings).
    #[arg(long, value_name = "CONTENDER")]
    icount: Option<String>,
    /// With --icount: use the batch calls.
    #[arg(long)]
    icount_batch: bool,
    /// With --icount: items pushed and popped.
    #[arg(long, default_value_t = 1_000_000)]
    icount_items: u64,
}

fn run_icount(name: &str, items: u64, batch: bool) {
    let sum = match name {
        "weir" => icount::<Weir>(items, batch),
        "weir-vec" => icount::<WeirVec>(items, batch),
        "weir-stamped" => icount::<WeirStamped>(items, batch),
        "rtrb" => icount::<Rtrb>(items, batch),
        "ringbuf" => icount::<Ringbuf>(items, batch),
        "arrayqueue" => icount::<ArrayQueue>(items, batch),
        "crossbeam-channel" => icount::<CrossbeamChannel>(items, batch),
        "kanal" => icount::<Kanal>(items, batch),
        "flume" => icount::<Flume>(items, batch),
        "std" => icount::<StdSync>(items, batch),
        "disruptor" => icount::<Disruptor>(items, batch),
        "bare" => icount::<Bare>(items, batch),
        "bare-hints" => icount::<BareHints>(items, batch),
        "bare-stamp" => icount::<BareStamp>(items, batch),
        "bare-stamp-checks" => icount::<BareStampChecks>(items, batch),
        "weir-mpmc" => icount_mpmc::<WeirMpmc>(items),
        "arrayqueue-mpmc" => icount_mpmc::<ArrayQueue>(items),
        "crossbeam-channel-mpmc" => icount_mpmc::<CrossbeamChannel>(items),
        other => panic!("unknown contender {other:?}"),
    };
    println!("{name}: {items} items, batch={batch}, checksum {sum}");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Row {
    Spsc,
    Busy,
    Batch,
    Rtt,
    Mpmc,
    Slow,
}

/// Item counts of one run of each workload.
struct Sizes {
    spsc: u64,
    batch: u64,
    rtt_rounds: u64,
    rtt_warmup: u64,
    mpmc: u64,
    slow: u64,
    slow_work: Duration,
}

impl Sizes {
    fn new(quick: bool, scale: f64) -> Self {
        let s = |n: u64| ((n as f64 * scale) as u64).max(1000);
        if quick {
            Sizes {
                spsc: s(1_000_000),
                batch: s(4_000_000),
                rtt_rounds: s(20_000),
                rtt_warmup: 2_000,
                mpmc: s(200_000),
                slow: s(4_000),
                slow_work: Duration::from_micros(5),
            }
        } else {
            Sizes {
                spsc: s(2_000_000),
                batch: s(8_000_000),
                rtt_rounds: s(50_000),
                rtt_warmup: 5_000,
                mpmc: s(500_000),
                slow: s(8_000),
                slow_work: Duration::from_micros(5),
            }
        }
    }
}

/// Samples per contender, one per repetition (index = repetition, so that ratios pair runs that
/// were measured next to each other).
#[derive(Default)]
struct Samples(BTreeMap<String, Vec<f64>>);

impl Samples {
    fn push(&mut self, key: &str, v: f64) {
        self.0.entry(key.to_string()).or_default().push(v);
    }
    fn get(&self, key: &str) -> Option<&[f64]> {
        self.0
            .get(key)
            .map(|v| v.as_slice())
            .filter(|v| !v.is_empty())
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}

/// "median (min–max)" with `prec` decimals.
fn stat(v: &[f64], prec: usize) -> String {
    let (lo, hi) = min_max(v);
    format!("{:.p$} ({:.p$}–{:.p$})", median(v), lo, hi, p = prec)
}

/// Ratios a[i] / b[i] of runs measured in the same repetition.
fn paired(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

/// One contender of one row: its name and how to run it once.
struct Entry<F> {
    name: &'static str,
    run: F,
}

fn entry<F>(name: &'static str, run: F) -> Entry<F> {
    Entry { name, run }
}

fn selected(args: &Args, name: &str) -> bool {
    args.only.is_empty()
        || args
            .only
            .iter()
            .any(|w| name.to_lowercase().contains(&w.to_lowercase()))
}

/// Preemption bookkeeping of one row: samples re-run, and samples kept although preempted.
#[derive(Default, Clone, Copy)]
struct Noise {
    samples: usize,
    reruns: usize,
    kept_preempted: usize,
}

impl Noise {
    fn note(&self) -> String {
        format!(
            "{} samples; {} re-run because another process preempted a pinned thread for more \
             than the threshold; {} kept although still preempted.",
            self.samples, self.reruns, self.kept_preempted
        )
    }
}

/// Runs every entry once per repetition, rotating the starting point each time, after one
/// unrecorded warm-up pass; `record` receives (name, result). With `guard`, a sample whose pinned
/// threads were preempted for more than `max_preempted` of the run is run again, up to
/// `retries` times.
fn interleave<R>(
    args: &Args,
    runs: usize,
    guard: bool,
    entries: &[Entry<Boxed<R>>],
    mut record: impl FnMut(&str, R),
) -> Noise {
    let mut noise = Noise::default();
    for e in entries {
        let _ = (e.run)(true);
    }
    for rep in 0..runs {
        for k in 0..entries.len() {
            let e = &entries[(k + rep) % entries.len()];
            let mut r = (e.run)(false);
            let mut tries = 0;
            while guard && last_preempted() > args.max_preempted {
                if tries == args.retries {
                    noise.kept_preempted += 1;
                    break;
                }
                tries += 1;
                noise.reruns += 1;
                r = (e.run)(false);
            }
            noise.samples += 1;
            record(e.name, r);
        }
        eprint!(".");
    }
    eprintln!();
    noise
}

type Boxed<R> = Box<dyn Fn(bool) -> R>;

fn spsc_entries(args: &Args, items: u64) -> Vec<Entry<Boxed<f64>>> {
    macro_rules! e {
        ($q:ty) => {
            entry(
                <$q as Spsc>::NAME,
                Box::new(move |warm: bool| {
                    let n = if warm { items / 10 } else { items };
                    let d = spsc_single::<$q>(n);
                    n as f64 / d.as_secs_f64() / 1e6
                }) as Boxed<f64>,
            )
        };
    }
    let all = vec![
        e!(Weir),
        e!(WeirAgain),
        e!(WeirNoPrefetch),
        e!(WeirNoRepoll),
        e!(WeirStamped),
        e!(Rtrb),
        e!(Ringbuf),
        e!(ArrayQueue),
        e!(CrossbeamChannel),
        e!(Kanal),
        e!(Flume),
        e!(StdSync),
        e!(Disruptor),
        e!(Bare),
        e!(BareHints),
        e!(BareStamp),
        e!(BareStampChecks),
    ];
    all.into_iter().filter(|e| selected(args, e.name)).collect()
}

/// The busy-consumer row: the single-item contenders that spin on `try_push` (the channels,
/// which park or are far slower, are left out), and the reference rings.
fn busy_entries(args: &Args, items: u64) -> Vec<Entry<Boxed<f64>>> {
    macro_rules! e {
        ($q:ty) => {
            entry(
                <$q as Spsc>::NAME,
                Box::new(move |warm: bool| {
                    let n = if warm { items / 10 } else { items };
                    let d = spsc_busy_consumer::<$q>(n, BUSY_CONSUMER_ROUNDS);
                    n as f64 / d.as_secs_f64() / 1e6
                }) as Boxed<f64>,
            )
        };
    }
    let all = vec![
        e!(Weir),
        e!(WeirAgain),
        e!(WeirNoRepoll),
        e!(WeirStamped),
        e!(Rtrb),
        e!(Ringbuf),
        e!(ArrayQueue),
        e!(Disruptor),
        e!(Bare),
        e!(BareHints),
    ];
    all.into_iter().filter(|e| selected(args, e.name)).collect()
}

fn batch_entries(args: &Args, items: u64) -> Vec<Entry<Boxed<f64>>> {
    macro_rules! e {
        ($q:ty) => {
            entry(
                <$q as Spsc>::NAME,
                Box::new(move |warm: bool| {
                    let n = if warm { items / 10 } else { items };
                    let d = spsc_batch::<$q>(n);
                    n as f64 / d.as_secs_f64() / 1e6
                }) as Boxed<f64>,
            )
        };
    }
    let all = vec![
        e!(Weir),
        e!(WeirAgain),
        e!(WeirNoPrefetch),
        e!(WeirNoDemote),
        e!(WeirVec),
        e!(WeirStamped),
        e!(Rtrb),
        e!(Ringbuf),
        e!(ArrayQueue),
        e!(CrossbeamChannel),
        e!(Kanal),
        e!(Flume),
        e!(StdSync),
        e!(Disruptor),
        e!(Bare),
        e!(BareHints),
    ];
    all.into_iter().filter(|e| selected(args, e.name)).collect()
}

/// p50, p99, p99.9, max in ns.
type Quantiles = [f64; 4];

fn quantiles(h: &hdrhistogram::Histogram<u64>) -> Quantiles {
    [
        h.value_at_quantile(0.50) as f64,
        h.value_at_quantile(0.99) as f64,
        h.value_at_quantile(0.999) as f64,
        h.max() as f64,
    ]
}

const FLOOR: &str = "floor: two cache-padded atomics";

fn rtt_entries(args: &Args, s: &Sizes) -> Vec<Entry<Boxed<Quantiles>>> {
    let (rounds, warmup) = (s.rtt_rounds, s.rtt_warmup);
    macro_rules! e {
        ($q:ty) => {
            entry(
                <$q as Spsc>::NAME,
                Box::new(move |warm: bool| {
                    let r = if warm { rounds / 10 } else { rounds };
                    quantiles(&rtt::<$q>(r, warmup).0)
                }) as Boxed<Quantiles>,
            )
        };
    }
    let mut all = vec![
        e!(Weir),
        e!(WeirBusySpin),
        e!(WeirPark),
        e!(WeirStamped),
        e!(WeirStampedBusySpin),
        e!(WeirStampedPark),
        e!(Rtrb),
        e!(Ringbuf),
        e!(ArrayQueue),
        e!(CrossbeamChannel),
        e!(Kanal),
        e!(Flume),
        e!(StdSync),
        e!(Disruptor),
    ];
    all.retain(|e| selected(args, e.name));
    all.push(entry(
        FLOOR,
        Box::new(move |warm: bool| {
            let r = if warm { rounds / 10 } else { rounds };
            quantiles(&rtt_floor(r, warmup).0)
        }),
    ));
    all
}

/// (wall ms, producer CPU ns per item)
fn slow_entries(args: &Args, s: &Sizes) -> Vec<Entry<Boxed<(f64, f64)>>> {
    let (items, work) = (s.slow, s.slow_work);
    macro_rules! e {
        ($q:ty, $name:expr) => {
            entry(
                $name,
                Box::new(move |warm: bool| {
                    let n = if warm { items / 10 } else { items };
                    let r = slow_consumer::<$q>(n, work);
                    (
                        r.wall.as_secs_f64() * 1e3,
                        r.producer_cpu.as_nanos() as f64 / n as f64,
                    )
                }) as Boxed<(f64, f64)>,
            )
        };
    }
    let all = vec![
        e!(WeirPark, "weir push (spin-then-park)"),
        e!(Rtrb, "rtrb (spinning push)"),
        e!(Ringbuf, "ringbuf (spinning push)"),
        e!(ArrayQueue, "crossbeam ArrayQueue (spinning push)"),
        e!(CrossbeamChannel, "crossbeam-channel send"),
        e!(Kanal, "kanal send"),
        e!(Flume, "flume send"),
        e!(StdSync, "std sync_channel send"),
        e!(Disruptor, "disruptor publish (spins)"),
    ];
    all.into_iter().filter(|e| selected(args, e.name)).collect()
}

/// MPMC shapes: (label, producers, consumers).
const SHAPES: [(&str, usize, usize); 3] = [("2P2C", 2, 2), ("4P4C", 4, 4), ("2P1C", 2, 1)];

fn mpmc_entries(args: &Args, items: u64) -> Vec<Entry<Boxed<[Option<f64>; 3]>>> {
    macro_rules! e {
        ($q:ty) => {
            entry(
                <$q as Mpmc>::NAME,
                Box::new(move |warm: bool| {
                    let n = if warm { items / 10 } else { items };
                    let mut out = [None; 3];
                    for (k, &(_, p, c)) in SHAPES.iter().enumerate() {
                        out[k] = mpmc::<$q>(p, c, n)
                            .map(|d| (n / p as u64 * p as u64) as f64 / d.as_secs_f64() / 1e6);
                    }
                    out
                }) as Boxed<[Option<f64>; 3]>,
            )
        };
    }
    let all = vec![
        e!(WeirMpmc),
        e!(WeirMpmcNoPrefetch),
        e!(ArrayQueue),
        e!(CrossbeamChannel),
        e!(Kanal),
        e!(Flume),
        e!(Disruptor),
    ];
    all.into_iter().filter(|e| selected(args, e.name)).collect()
}

/// One goal of issue 6, oriented so that larger is better for weir.
struct Goal {
    label: String,
    /// Paired ratios, one per repetition.
    ratios: Vec<f64>,
    /// The ratio the goal asks for (larger is better).
    target: f64,
    /// How the goal is phrased in the issue.
    phrase: String,
}

/// Adds the goal "`a` / `b`" (runs paired by repetition) if both contenders were measured.
fn ratio_goal(
    goals: &mut Vec<Goal>,
    s: &Samples,
    (a, b): (&str, &str),
    label: impl Into<String>,
    target: f64,
    phrase: &str,
) {
    if let (Some(x), Some(y)) = (s.get(a), s.get(b)) {
        goals.push(Goal {
            label: label.into(),
            ratios: paired(x, y),
            target,
            phrase: phrase.into(),
        });
    }
}

/// The A/A control of an SPSC row: weir against a second copy of itself (no target: 1.00 is
/// expected, and the spread is what code placement and the host move between two contenders
/// that run the same code).
fn aa_goal(goals: &mut Vec<Goal>, s: &Samples, row: &str) {
    ratio_goal(
        goals,
        s,
        (Weir::NAME, WeirAgain::NAME),
        format!("(control) SPSC {row}: weir / weir again (A/A)"),
        f64::NAN,
        "1.00 expected: same code, second copy",
    );
}

/// The reference rows of the bare rings (benches/common/bare.rs) for an SPSC row: how far weir
/// is from the bare design with its own prefetch rules, and how far that design at its best is
/// from rtrb (the most a ring of this design can show against rtrb in the same run).
fn bare_goals(goals: &mut Vec<Goal>, s: &Samples, row: &str) {
    ratio_goal(
        goals,
        s,
        (Weir::NAME, BareHints::NAME),
        format!("(reference) SPSC {row}: weir / bare ring + hints"),
        1.0,
        "what weir's API and guarantees cost",
    );
    ratio_goal(
        goals,
        s,
        (BareHints::NAME, Rtrb::NAME),
        format!("(reference) SPSC {row}: bare ring + hints / rtrb"),
        if row == "batch" { 1.5 } else { 1.3 },
        "the design's reach against rtrb",
    );
    ratio_goal(
        goals,
        s,
        (Rtrb::NAME, Bare::NAME),
        format!("(reference) SPSC {row}: rtrb / bare ring"),
        1.0,
        "rtrb against the bare design",
    );
}

/// The reference rows of the stamp rings (benches/common/stamp.rs), single items only: how far
/// the other design (readiness and room in the slot) reaches against rtrb, what the per-item
/// checks of a full ring cost in it, and where weir's `Stamped` flavour (readiness in the slot,
/// room from the counter, the checks) stands against it.
fn stamp_goals(goals: &mut Vec<Goal>, s: &Samples) {
    ratio_goal(
        goals,
        s,
        (BareStamp::NAME, Rtrb::NAME),
        "(reference) SPSC single: bare stamp ring / rtrb",
        1.3,
        "the other design's reach against rtrb",
    );
    ratio_goal(
        goals,
        s,
        (BareStampChecks::NAME, Rtrb::NAME),
        "(reference) SPSC single: bare stamp ring + checks / rtrb",
        1.3,
        "that design with a full ring's per-item checks",
    );
    ratio_goal(
        goals,
        s,
        (WeirStamped::NAME, BareStampChecks::NAME),
        "(reference) SPSC single: weir Stamped / bare stamp ring + checks",
        1.0,
        "what room from the counter costs",
    );
}

fn main() {
    let args = Args::parse();
    if let Some(name) = &args.icount {
        run_icount(name, args.icount_items, args.icount_batch);
        return;
    }
    let runs = args.runs.unwrap_or(if args.quick { 3 } else { 7 }).max(1);
    let sizes = Sizes::new(args.quick, args.scale);
    let rows: Vec<Row> = if args.rows.is_empty() {
        vec![
            Row::Spsc,
            Row::Busy,
            Row::Batch,
            Row::Rtt,
            Row::Mpmc,
            Row::Slow,
        ]
    } else {
        args.rows.clone()
    };
    let started = Instant::now();
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let mut md = String::new();
    let mut goals: Vec<Goal> = Vec::new();
    let cores = core_affinity::get_core_ids().map_or(0, |c| c.len());
    let _ = writeln!(
        md,
        "Harness: {} runs per contender, interleaved; {} cores; producer on core {}, consumer on \
         core {}; capacity {}, item u64; {}. Values: median (min–max) over the runs.\n",
        runs,
        cores,
        PRODUCER_CORE,
        CONSUMER_CORE,
        CAPACITY,
        if cfg!(weir_aligned_loops) {
            "loops aligned to 64 bytes (.cargo/config.toml)"
        } else {
            "**loops not aligned** (built without .cargo/config.toml's flags, e.g. with \
             RUSTFLAGS set: expect placement noise between contenders, docs/benchmarks.md)"
        }
    );

    if rows.contains(&Row::Spsc) {
        eprint!("spsc single ");
        let entries = spsc_entries(&args, sizes.spsc);
        let mut s = Samples::default();
        let noise = interleave(&args, runs, true, &entries, |name, v| s.push(name, v));
        throughput_table(
            &mut md,
            &format!(
                "1. SPSC single-item throughput (try_push / try_pop + spin, {} items per run), M items/s",
                sizes.spsc
            ),
            &entries.iter().map(|e| e.name).collect::<Vec<_>>(),
            &s,
            None,
        );
        let _ = writeln!(md, "{}\n", noise.note());
        // The goal is on the default flavour (`Indexed`, with its prefetches): the faster of
        // the two for single items since the prefetches (docs/benchmarks.md). `Stamped` and
        // the ring without the prefetches are shown for reference.
        ratio_goal(
            &mut goals,
            &s,
            (Weir::NAME, Rtrb::NAME),
            "SPSC single: weir / rtrb",
            1.3,
            "≥ 1.3× rtrb",
        );
        ratio_goal(
            &mut goals,
            &s,
            (WeirStamped::NAME, Rtrb::NAME),
            "(reference) SPSC single: weir Stamped / rtrb",
            1.3,
            "the other flavour",
        );
        ratio_goal(
            &mut goals,
            &s,
            (Weir::NAME, WeirNoPrefetch::NAME),
            "(reference) SPSC single: weir / weir no-prefetch",
            1.0,
            "what the prefetches buy",
        );
        ratio_goal(
            &mut goals,
            &s,
            (Weir::NAME, WeirNoRepoll::NAME),
            "(reference) SPSC single: weir / weir no-repoll",
            1.0,
            "what the repoll interval buys",
        );
        aa_goal(&mut goals, &s, "single");
        bare_goals(&mut goals, &s, "single");
        stamp_goals(&mut goals, &s);
    }

    if rows.contains(&Row::Busy) {
        eprint!("spsc busy   ");
        let entries = busy_entries(&args, sizes.spsc);
        let mut s = Samples::default();
        let noise = interleave(&args, runs, true, &entries, |name, v| s.push(name, v));
        throughput_table(
            &mut md,
            &format!(
                "1b. SPSC single-item throughput, busy consumer (try_push / try_pop + spin; the \
                 consumer does {} dependent multiply–rotates per item, so the ring runs full; {} \
                 items per run), M items/s",
                BUSY_CONSUMER_ROUNDS, sizes.spsc
            ),
            &entries.iter().map(|e| e.name).collect::<Vec<_>>(),
            &s,
            None,
        );
        let _ = writeln!(md, "{}\n", noise.note());
        // No goal of issue 6 covers this row: it shows a full ring under backpressure, where
        // the consumer sets the pace and the producer's retries can slow it.
        ratio_goal(
            &mut goals,
            &s,
            (Weir::NAME, Rtrb::NAME),
            "(reference) SPSC busy consumer: weir / rtrb",
            f64::NAN,
            "no goal set",
        );
        ratio_goal(
            &mut goals,
            &s,
            (Weir::NAME, WeirNoRepoll::NAME),
            "(reference) SPSC busy consumer: weir / weir no-repoll",
            1.0,
            "what the repoll interval buys",
        );
        aa_goal(&mut goals, &s, "busy consumer");
    }

    if rows.contains(&Row::Batch) {
        eprint!("spsc batch  ");
        let entries = batch_entries(&args, sizes.batch);
        let mut s = Samples::default();
        let noise = interleave(&args, runs, true, &entries, |name, v| s.push(name, v));
        let apis: BTreeMap<&str, &str> = [
            (Weir::NAME, Weir::BATCH_API),
            (WeirAgain::NAME, Weir::BATCH_API),
            (WeirNoPrefetch::NAME, Weir::BATCH_API),
            (WeirNoDemote::NAME, Weir::BATCH_API),
            (WeirVec::NAME, WeirVec::BATCH_API),
            (WeirStamped::NAME, WeirStamped::BATCH_API),
            (Rtrb::NAME, Rtrb::BATCH_API),
            (Ringbuf::NAME, Ringbuf::BATCH_API),
            (<ArrayQueue as Spsc>::NAME, ArrayQueue::BATCH_API),
            (
                <CrossbeamChannel as Spsc>::NAME,
                CrossbeamChannel::BATCH_API,
            ),
            (<Kanal as Spsc>::NAME, Kanal::BATCH_API),
            (<Flume as Spsc>::NAME, Flume::BATCH_API),
            (StdSync::NAME, StdSync::BATCH_API),
            (<Disruptor as Spsc>::NAME, Disruptor::BATCH_API),
            (Bare::NAME, Bare::BATCH_API),
            (BareHints::NAME, BareHints::BATCH_API),
        ]
        .into_iter()
        .collect();
        throughput_table(
            &mut md,
            &format!(
                "2. SPSC batch throughput (batches of {}, {} items per run), M items/s",
                BATCH, sizes.batch
            ),
            &entries.iter().map(|e| e.name).collect::<Vec<_>>(),
            &s,
            Some(&apis),
        );
        let _ = writeln!(md, "{}\n", noise.note());
        ratio_goal(
            &mut goals,
            &s,
            (Weir::NAME, Rtrb::NAME),
            "SPSC batch: weir read_chunk / rtrb chunks",
            1.5,
            "≥ 1.5× rtrb's chunks",
        );
        ratio_goal(
            &mut goals,
            &s,
            (Weir::NAME, WeirNoPrefetch::NAME),
            "(reference) SPSC batch: weir / weir no-prefetch",
            1.0,
            "what the prefetches buy",
        );
        aa_goal(&mut goals, &s, "batch");
        ratio_goal(
            &mut goals,
            &s,
            (Weir::NAME, WeirNoDemote::NAME),
            "(reference) SPSC batch: weir / weir no-demote",
            1.0,
            "what the demotion buys",
        );
        bare_goals(&mut goals, &s, "batch");
    }

    if rows.contains(&Row::Rtt) {
        eprint!("rtt         ");
        let entries = rtt_entries(&args, &sizes);
        let mut s: BTreeMap<String, Vec<Quantiles>> = BTreeMap::new();
        let noise = interleave(&args, runs, true, &entries, |name, q| {
            s.entry(name.to_string()).or_default().push(q)
        });
        let timer = timer_overhead(100_000);
        let _ = writeln!(
            md,
            "### 3–4. Ping-pong round trip over two rings (echo thread), ns ({} round trips per \
             run)\n\nEach sample brackets one push and one pop with two `Instant::now()` reads; \
             a back-to-back pair of reads costs p50 {} ns here, included in every row (floor \
             too).\n",
            sizes.rtt_rounds,
            timer.value_at_quantile(0.5)
        );
        let _ = writeln!(md, "| contender | p50 | p99 | p99.9 | max |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for e in &entries {
            let v = &s[e.name];
            let col = |k: usize| stat(&v.iter().map(|q| q[k]).collect::<Vec<_>>(), 0);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                e.name,
                col(0),
                col(1),
                col(2),
                col(3)
            );
        }
        let _ = writeln!(md, "\n{}\n", noise.note());
        let p50 = |name: &str| -> Option<Vec<f64>> {
            s.get(name).map(|v| v.iter().map(|q| q[0]).collect())
        };
        // Latency goals on weir's low-latency flavour, `Stamped` (one line per hop, as the
        // floor); the default `Indexed` flavour (two lines per hop, as rtrb) for reference.
        let flavours = [
            (
                "Stamped",
                WeirStampedBusySpin::NAME,
                WeirStamped::NAME,
                WeirStampedPark::NAME,
                "",
            ),
            (
                "Indexed",
                WeirBusySpin::NAME,
                Weir::NAME,
                WeirPark::NAME,
                "(reference) ",
            ),
        ];
        for (flavour, busy_name, try_name, park_name, prefix) in flavours {
            if let (Some(busy), Some(floor)) = (p50(busy_name), p50(FLOOR)) {
                goals.push(Goal {
                    label: format!("{prefix}RTT p50: floor / weir {flavour} BusySpin"),
                    ratios: paired(&floor, &busy),
                    target: 1.0 / 1.15,
                    phrase: "weir ≤ 1.15× floor".into(),
                });
            }
            if let (Some(w), Some(floor)) = (p50(try_name), p50(FLOOR)) {
                goals.push(Goal {
                    label: format!("{prefix}RTT p50: floor / weir {flavour} try+spin"),
                    ratios: paired(&floor, &w),
                    target: 1.0 / 1.15,
                    phrase: "weir ≤ 1.15× floor".into(),
                });
            }
            if let (Some(busy), Some(park)) = (p50(busy_name), p50(park_name)) {
                goals.push(Goal {
                    label: format!("RTT p50: weir {flavour} BusySpin / spin-then-park"),
                    ratios: paired(&busy, &park),
                    target: 1.0 / 1.2,
                    phrase: "spin-then-park ≤ 1.2× busy-spin".into(),
                });
            }
        }
        if let (Some(r), Some(floor)) = (p50(Rtrb::NAME), p50(FLOOR)) {
            goals.push(Goal {
                label: "(reference) RTT p50: floor / rtrb".into(),
                ratios: paired(&floor, &r),
                target: 1.0 / 1.15,
                phrase: "for comparison only".into(),
            });
        }
    }

    if rows.contains(&Row::Mpmc) {
        eprint!("mpmc        ");
        let entries = mpmc_entries(&args, sizes.mpmc);
        let mut s: Vec<Samples> = (0..SHAPES.len()).map(|_| Samples::default()).collect();
        let noise = interleave(&args, runs, false, &entries, |name, r| {
            for (k, v) in r.iter().enumerate() {
                if let Some(v) = v {
                    s[k].push(name, *v);
                }
            }
        });
        let _ = writeln!(
            md,
            "### 5. MPMC throughput, M items/s ({} items per run; producers on core 0, consumers \
             on core 1, so 2P2C and 4P4C are oversubscribed; failed try_push/try_pop back off with \
             crossbeam's Backoff)\n",
            sizes.mpmc
        );
        let _ = writeln!(md, "| contender | {} |", SHAPES.map(|s| s.0).join(" | "));
        let _ = writeln!(md, "|---|---|---|---|");
        for e in &entries {
            let cells: Vec<String> = (0..SHAPES.len())
                .map(|k| s[k].get(e.name).map_or("n/a".into(), |v| stat(v, 1)))
                .collect();
            let _ = writeln!(md, "| {} | {} |", e.name, cells.join(" | "));
        }
        let _ = writeln!(
            md,
            "\n{} samples (threads share cores by design here, so no preemption filter).\n",
            noise.samples
        );
        let weir_mpmc: Option<&str> = entries
            .iter()
            .map(|e| e.name)
            .find(|&n| n == WeirMpmc::NAME);
        if let Some(w) = weir_mpmc {
            for (k, &(label, _, _)) in SHAPES.iter().enumerate() {
                let Some(wv) = s[k].get(w) else { continue };
                // The peers: every contender but weir's own rows.
                let peers: Vec<&[f64]> = entries
                    .iter()
                    .filter(|e| !e.name.starts_with("weir"))
                    .filter_map(|e| s[k].get(e.name))
                    .collect();
                if peers.is_empty() {
                    continue;
                }
                let best: Vec<f64> = (0..wv.len())
                    .map(|i| peers.iter().map(|p| p[i]).fold(0.0, f64::max))
                    .collect();
                goals.push(Goal {
                    label: format!("MPMC {label}: weir / best peer"),
                    ratios: paired(wv, &best),
                    target: if label == "4P4C" { f64::NAN } else { 1.3 },
                    phrase: if label == "4P4C" {
                        "no goal set".into()
                    } else {
                        "≥ 1.3× best peer".into()
                    },
                });
                if let Some(np) = s[k].get(WeirMpmcNoPrefetch::NAME) {
                    if label != "4P4C" {
                        goals.push(Goal {
                            label: format!("(reference) MPMC {label}: weir / weir no-prefetch"),
                            ratios: paired(wv, np),
                            target: 1.0,
                            phrase: "what the claim prefetch buys".into(),
                        });
                    }
                }
            }
        }
    }

    if rows.contains(&Row::Slow) {
        eprint!("slow        ");
        let entries = slow_entries(&args, &sizes);
        let mut wall = Samples::default();
        let mut cpu = Samples::default();
        let noise = interleave(&args, runs, true, &entries, |name, (w, c)| {
            wall.push(name, w);
            cpu.push(name, c);
        });
        let _ = writeln!(
            md,
            "### 6. Slow consumer ({} µs of busy work per item, {} items per run; the producer \
             uses the crate's blocking push, or try + spin where it has none)\n",
            sizes.slow_work.as_micros(),
            sizes.slow
        );
        let _ = writeln!(
            md,
            "| contender | wall time, ms | producer CPU per item, ns |"
        );
        let _ = writeln!(md, "|---|---|---|");
        for e in &entries {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                e.name,
                stat(wall.get(e.name).unwrap(), 1),
                stat(cpu.get(e.name).unwrap(), 0)
            );
        }
        let _ = writeln!(md, "\n{}\n", noise.note());
        let w = "weir push (spin-then-park)";
        ratio_goal(
            &mut goals,
            &cpu,
            ("std sync_channel send", w),
            "Slow consumer CPU/item: std / weir",
            3.0,
            "weir ≤ 1/3 of std sync_channel",
        );
        ratio_goal(
            &mut goals,
            &wall,
            ("rtrb (spinning push)", w),
            "Slow consumer wall: rtrb / weir",
            1.0,
            "weir no slower than rtrb",
        );
    }

    if !goals.is_empty() {
        let _ = writeln!(
            md,
            "### Goals (ratios of runs measured side by side, oriented so that larger is better \
             for weir)\n"
        );
        let _ = writeln!(
            md,
            "| goal | ratio, median (min–max) | target | met (median) |"
        );
        let _ = writeln!(md, "|---|---|---|---|");
        for g in &goals {
            let met = if g.target.is_nan() {
                "–".to_string()
            } else if median(&g.ratios) >= g.target {
                "yes".into()
            } else {
                "**no**".into()
            };
            let target = if g.target.is_nan() {
                g.phrase.clone()
            } else {
                format!("≥ {:.2} ({})", g.target, g.phrase)
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                g.label,
                stat(&g.ratios, 2),
                target,
                met
            );
        }
        let _ = writeln!(md);
    }

    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _ = writeln!(
        md,
        "Run took {:.0} s. Load average before: {}; after: {} (other processes share this \
         machine: read ratios, not absolute numbers).",
        started.elapsed().as_secs_f64(),
        load_before.trim(),
        load_after.trim()
    );

    println!("{md}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &md).expect("cannot write the markdown file");
    }
    if let Some(path) = &args.svg {
        chart(path, &goals).expect("cannot draw the chart");
    }
}

fn throughput_table(
    md: &mut String,
    title: &str,
    names: &[&str],
    s: &Samples,
    apis: Option<&BTreeMap<&str, &str>>,
) {
    let _ = writeln!(md, "### {title}\n");
    let rtrb = s.get(Rtrb::NAME);
    match apis {
        Some(_) => {
            let _ = writeln!(md, "| contender | API | M items/s | vs rtrb (paired) |");
            let _ = writeln!(md, "|---|---|---|---|");
        }
        None => {
            let _ = writeln!(md, "| contender | M items/s | vs rtrb (paired) |");
            let _ = writeln!(md, "|---|---|---|");
        }
    }
    for name in names {
        let Some(v) = s.get(name) else { continue };
        let ratio = rtrb.map_or("–".to_string(), |r| {
            format!("{:.2}×", median(&paired(v, r)))
        });
        match apis {
            Some(a) => {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    name,
                    a.get(name).copied().unwrap_or(""),
                    stat(v, 1),
                    ratio
                );
            }
            None => {
                let _ = writeln!(md, "| {} | {} | {} |", name, stat(v, 1), ratio);
            }
        }
    }
    let _ = writeln!(md);
}

/// Horizontal bars of each goal's paired ratio (median, whiskers min–max) on a log axis, with
/// the target marked; larger is better for weir everywhere.
fn chart(path: &std::path::Path, goals: &[Goal]) -> Result<(), Box<dyn std::error::Error>> {
    let n = goals.len().max(1);
    let height = 90 + 46 * n as u32;
    let root = SVGBackend::new(path, (980, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let lo = goals
        .iter()
        .flat_map(|g| g.ratios.iter().copied().chain([g.target]))
        .filter(|x| x.is_finite() && *x > 0.0)
        .fold(1.0f64, f64::min)
        * 0.8;
    let hi = goals
        .iter()
        .flat_map(|g| g.ratios.iter().copied().chain([g.target]))
        .filter(|x| x.is_finite())
        .fold(1.0f64, f64::max)
        * 1.25;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "weir vs peers: goal ratios (larger is better for weir; red tick = target)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(330)
        .build_cartesian_2d((lo..hi).log_scale(), -0.5f64..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_desc("ratio (log scale)")
        .x_label_formatter(&|x| format!("{x:.2}"))
        .draw()?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(1.0, -0.5), (1.0, n as f64 - 0.5)],
        BLACK.stroke_width(1),
    )))?;
    for (i, g) in goals.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let m = median(&g.ratios);
        let (a, b) = min_max(&g.ratios);
        let color = if g.target.is_nan() {
            RGBColor(160, 160, 160)
        } else if m >= g.target {
            RGBColor(70, 130, 180)
        } else {
            RGBColor(230, 140, 60)
        };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(1.0f64.min(m), y - 0.3), (1.0f64.max(m), y + 0.3)],
            color.filled(),
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(a, y), (b, y)],
            BLACK.stroke_width(2),
        )))?;
        if g.target.is_finite() {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(g.target, y - 0.42), (g.target, y + 0.42)],
                RED.stroke_width(3),
            )))?;
        }
        let (px, py) = chart.backend_coord(&(lo, y));
        root.draw(&Text::new(
            format!("{}  {:.2}", g.label, m),
            (px - 8, py),
            ("sans-serif", 13)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    root.present()?;
    Ok(())
}
