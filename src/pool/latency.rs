//! Latency recording: one pair of HdrHistograms per worker, merged when metrics are read.
//!
//! Each worker records into its own histograms (behind its own, uncontended mutex, taken once
//! per batch), so recording never contends with other workers; [`Pool::metrics`] merges them.
//! Values are nanoseconds, tracked from 1 ns to one hour with 3 significant digits (0.1 %
//! resolution); a longer value is recorded as one hour.
//!
//! [`Pool::metrics`]: super::Pool::metrics

use hdrhistogram::Histogram;
use std::time::Duration;

/// The largest value tracked exactly: one hour, in nanoseconds.
const MAX_TRACKED_NS: u64 = 3_600 * 1_000_000_000;

/// An empty histogram with the pool's bounds.
fn histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy hdrhistogram's rules (low >= 1, high >= 2 * low,
    // sigfig <= 5), so creation cannot fail.
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("constant histogram bounds are valid")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The two latency distributions of one worker (or of the whole pool, once merged).
#[derive(Clone, Debug)]
pub(crate) struct Latency {
    /// Enqueue → dequeue, one value per item.
    queue: Histogram<u64>,
    /// Duration of one handler call (a batch for `build`, an item for `build_each`).
    service: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            queue: histogram(),
            service: histogram(),
        }
    }
}

impl Latency {
    /// Records how long one item waited in the queue.
    pub(crate) fn record_queue(&mut self, wait: Duration) {
        self.queue.saturating_record(nanos(wait));
    }

    /// Records how long one handler call took.
    pub(crate) fn record_service(&mut self, took: Duration) {
        self.service.saturating_record(nanos(took));
    }

    /// Adds `other`'s counts to ours.
    pub(crate) fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so `add` cannot fail (it only fails when `other` holds
        // values this histogram cannot track).
        self.queue
            .add(&other.queue)
            .expect("histograms share their bounds");
        self.service
            .add(&other.service)
            .expect("histograms share their bounds");
    }

    pub(crate) fn queue_summary(&self) -> LatencySummary {
        LatencySummary::of(&self.queue)
    }

    pub(crate) fn service_summary(&self) -> LatencySummary {
        LatencySummary::of(&self.service)
    }
}

/// Percentiles of one latency distribution, from an HdrHistogram (3 significant digits).
///
/// All zero when nothing was recorded yet.
///
/// ```
/// let s = weir::pool::LatencySummary::default();
/// assert_eq!((s.count, s.max), (0, std::time::Duration::ZERO));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LatencySummary {
    /// How many values were recorded.
    pub count: u64,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The 99.9th percentile.
    pub p999: Duration,
    /// The largest value recorded (values above one hour are recorded as one hour).
    pub max: Duration,
    /// The arithmetic mean.
    pub mean: Duration,
}

impl LatencySummary {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let at = |q: f64| Duration::from_nanos(h.value_at_quantile(q));
        LatencySummary {
            count: h.len(),
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: Duration::from_nanos(h.max()),
            mean: Duration::from_nanos(h.mean().round() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Duration, b: Duration) -> bool {
        let (a, b) = (a.as_nanos() as f64, b.as_nanos() as f64);
        (a - b).abs() <= b * 0.001 + 1.0
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "3 x 33k-bucket histograms take minutes under miri; safe code"
    )]
    fn percentiles_of_a_uniform_spread() {
        let mut l = Latency::default();
        for us in 1..=1000u64 {
            l.record_queue(Duration::from_micros(us));
        }
        let s = l.queue_summary();
        assert_eq!(s.count, 1000);
        assert!(close(s.p50, Duration::from_micros(500)), "{s:?}");
        assert!(close(s.p99, Duration::from_micros(990)), "{s:?}");
        assert!(close(s.p999, Duration::from_micros(999)), "{s:?}");
        assert!(close(s.max, Duration::from_micros(1000)), "{s:?}");
        assert_eq!(l.service_summary(), LatencySummary::default());
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "3 x 33k-bucket histograms take minutes under miri; safe code"
    )]
    fn merging_workers_adds_their_counts() {
        let mut a = Latency::default();
        let mut b = Latency::default();
        for _ in 0..99 {
            a.record_service(Duration::from_micros(10));
        }
        b.record_service(Duration::from_millis(5));
        let mut all = Latency::default();
        all.merge(&a);
        all.merge(&b);
        let s = all.service_summary();
        assert_eq!(s.count, 100);
        assert!(close(s.p50, Duration::from_micros(10)), "{s:?}");
        assert!(close(s.max, Duration::from_millis(5)), "{s:?}");
        // The one slow call is the top 1 %: p99.9 sees it, p99 does not.
        assert!(close(s.p999, Duration::from_millis(5)), "{s:?}");
        assert!(close(s.p99, Duration::from_micros(10)), "{s:?}");
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "3 x 33k-bucket histograms take minutes under miri; safe code"
    )]
    fn out_of_range_values_saturate_instead_of_panicking() {
        let mut l = Latency::default();
        l.record_queue(Duration::ZERO);
        l.record_queue(Duration::from_secs(10 * 3600));
        let s = l.queue_summary();
        assert_eq!(s.count, 2);
        assert!(close(s.max, Duration::from_secs(3600)), "{s:?}");
    }
}
