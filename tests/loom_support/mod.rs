//! The model runner shared by the loom test files (`tests/loom_*.rs` include it with
//! `mod loom_support;`; a folder, so cargo does not build it as a test of its own).

use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Runs `f` under loom at preemption bound `bound` and prints how many interleavings it
/// explored, in how long. `LOOM_MAX_PREEMPTIONS` overrides the bound (loom reads it into the
/// builder); `WEIR_LOOM_UNBOUNDED` (any value) explores without a bound, for deep local runs.
pub fn model_bounded(name: impl Display, bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("WEIR_LOOM_UNBOUNDED").is_some() {
        builder.preemption_bound = None;
    } else if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(bound);
    }
    let bound = builder.preemption_bound;
    // std atomics: the counter lives outside the model, across its executions.
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "loom model {name}: {} interleavings explored, preemption bound {bound:?}, {:.1} s",
        runs.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
}
