//! Criterion benches: weir's rings (SPSC and MPMC) next to rtrb, ringbuf, crossbeam (ArrayQueue and channel),
//! kanal, flume, std's sync_channel and the disruptor, each on its best API.
//!
//! `cargo bench --bench rings` runs them all; a filter runs a subset, e.g.
//! `cargo bench --bench rings -- 'spsc_single/(weir|rtrb)'`. The contenders and workloads are in
//! `benches/common/mod.rs` (shared with the harness, `examples/harness.rs`, which produces the
//! table in docs/benchmarks.md with interleaved runs and latency percentiles).

mod common;

use common::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

macro_rules! spsc_group {
    ($c:expr, $group:literal, $work:ident, [$($q:ty),* $(,)?]) => {{
        let mut g = $c.benchmark_group($group);
        g.throughput(Throughput::Elements(1));
        $(
            g.bench_function(BenchmarkId::from_parameter(<$q as Spsc>::NAME), |b| {
                // One iteration = one item; the workload spawns its pinned pair once per sample.
                b.iter_custom(|iters| $work::<$q>(iters.max(1)))
            });
        )*
        g.finish();
    }};
}

fn spsc_single_bench(c: &mut Criterion) {
    spsc_group!(
        c,
        "spsc_single",
        spsc_single,
        [
            Weir,
            WeirStamped,
            Rtrb,
            Ringbuf,
            ArrayQueue,
            CrossbeamChannel,
            Kanal,
            Flume,
            StdSync,
            Disruptor
        ]
    );
}

fn spsc_batch_bench(c: &mut Criterion) {
    spsc_group!(
        c,
        "spsc_batch64",
        spsc_batch,
        [
            Weir,
            WeirVec,
            WeirStamped,
            Rtrb,
            Ringbuf,
            ArrayQueue,
            CrossbeamChannel,
            Kanal,
            Flume,
            StdSync,
            Disruptor
        ]
    );
}

/// Mean round trip (the harness reports the percentiles).
fn rtt_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtt");
    macro_rules! one {
        ($q:ty) => {
            g.bench_function(BenchmarkId::from_parameter(<$q as Spsc>::NAME), |b| {
                b.iter_custom(|iters| rtt::<$q>(iters.max(1), 1000).1)
            });
        };
    }
    one!(Weir);
    one!(WeirBusySpin);
    one!(WeirPark);
    one!(WeirStamped);
    one!(WeirStampedBusySpin);
    one!(WeirStampedPark);
    one!(Rtrb);
    one!(Ringbuf);
    one!(ArrayQueue);
    one!(CrossbeamChannel);
    one!(Kanal);
    one!(Flume);
    one!(StdSync);
    one!(Disruptor);
    g.bench_function("floor (atomics)", |b| {
        b.iter_custom(|iters| rtt_floor(iters.max(1), 1000).1)
    });
    g.finish();
}

fn mpmc_bench(c: &mut Criterion) {
    for (label, p, cons) in [("2P2C", 2, 2), ("4P4C", 4, 4), ("2P1C", 2, 1)] {
        let mut g = c.benchmark_group(format!("mpmc_{label}"));
        g.throughput(Throughput::Elements(1));
        macro_rules! one {
            ($q:ty) => {
                // Skips shapes the crate cannot serve (the disruptor with several consumers).
                if mpmc::<$q>(p, cons, 1000).is_some() {
                    g.bench_function(BenchmarkId::from_parameter(<$q as Mpmc>::NAME), |b| {
                        b.iter_custom(|iters| {
                            let n = (iters.max(p as u64) / p as u64) * p as u64;
                            let d = mpmc::<$q>(p, cons, n).unwrap();
                            // Scale to the requested count (n rounds iters down to whole shares).
                            d.mul_f64(iters.max(1) as f64 / n as f64)
                        })
                    });
                }
            };
        }
        one!(WeirMpmc);
        one!(ArrayQueue);
        one!(CrossbeamChannel);
        one!(Kanal);
        one!(Flume);
        one!(Disruptor);
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = spsc_single_bench, spsc_batch_bench, rtt_bench, mpmc_bench
}
criterion_main!(benches);
