//! The optional rate limit on `submit`: a token bucket, kept as one atomic number.
//!
//! A bucket that holds at most `burst` tokens and gains `rate` tokens per second admits exactly
//! the same submits as the *generic cell rate algorithm* (GCRA, the virtual-scheduling form of
//! the token bucket used by ATM networks and by many HTTP rate limiters). Instead of a token
//! count and a refill time (two numbers, so a lock), GCRA keeps one: the *theoretical arrival
//! time* `tat`, the instant at which the bucket would be full again. With `interval = 1 / rate`:
//!
//! - a submit at time `now` would move `tat` to `max(tat, now) + interval`;
//! - it is admitted if that new `tat` is at most `burst * interval` ahead of `now` (the bucket
//!   still had a token), and then `tat` is stored with a compare-and-swap;
//! - otherwise it is refused, and the bucket will have a token again in
//!   `new_tat - now - burst * interval`.
//!
//! So a full bucket admits `burst` submits at once, then one per `interval`. Time is counted in
//! nanoseconds from the bucket's creation; `interval` is `1e9 / rate` rounded to whole
//! nanoseconds (at least 1); the builder refuses a rate whose `(burst + 1) * interval` exceeds
//! 2^62 ns, so no sum here saturates.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A lock-free token bucket (GCRA). Shared by every submitting thread.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    /// The instant that nanosecond 0 stands for.
    origin: Instant,
    /// Nanoseconds per token (`1e9 / rate`, at least 1).
    interval: u64,
    /// How far `tat` may run ahead of now: `burst * interval`.
    tolerance: u64,
    /// Theoretical arrival time, in nanoseconds since `origin`. Starts at 0: a full bucket.
    tat: AtomicU64,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `per_second` tokens a second. The caller has
    /// checked `per_second` is finite and positive and `burst >= 1`.
    pub(crate) fn new(per_second: f64, burst: u32, origin: Instant) -> Self {
        debug_assert!(per_second.is_finite() && per_second > 0.0 && burst >= 1);
        // The builder bounds `(burst + 1) * interval` by 2^62 ns (`RATE_SPAN_NS`), so neither
        // the product below nor `tat` (at most now + tolerance + interval) can saturate within
        // 146 years of the pool's start. The clamp only keeps the cast defined.
        let interval = (1e9 / per_second).round().clamp(1.0, (1u64 << 62) as f64) as u64;
        TokenBucket {
            origin,
            interval,
            tolerance: interval.saturating_mul(u64::from(burst)),
            tat: AtomicU64::new(0),
        }
    }

    /// Takes a token at time `now`, or says how long until one will be there.
    pub(crate) fn try_take_at(&self, now: Instant) -> Result<(), Duration> {
        let now_ns = u64::try_from(now.saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX);
        // Relaxed throughout: `tat` guards no other data; the compare-and-swap alone makes the
        // read-decide-write of each submit atomic, so no two submits take the same token.
        let mut tat = self.tat.load(Relaxed);
        loop {
            let Some(next) = tat.max(now_ns).checked_add(self.interval) else {
                // 584 years of tokens spoken for: only reachable with absurd rates and bursts.
                return Err(Duration::from_nanos(u64::MAX));
            };
            let ahead = next - now_ns;
            if ahead > self.tolerance {
                return Err(Duration::from_nanos(ahead - self.tolerance));
            }
            match self.tat.compare_exchange_weak(tat, next, Relaxed, Relaxed) {
                Ok(_) => return Ok(()),
                Err(current) => tat = current,
            }
        }
    }

    /// Takes a token now.
    pub(crate) fn try_take(&self) -> Result<(), Duration> {
        self.try_take_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn full_bucket_admits_burst_then_one_per_interval() {
        let t0 = Instant::now();
        let bucket = TokenBucket::new(1000.0, 5, t0); // 1 ms per token
        for _ in 0..5 {
            bucket.try_take_at(t0).unwrap();
        }
        assert_eq!(bucket.try_take_at(t0), Err(MS));
        // Half an interval later: still none, half an interval to go.
        assert_eq!(bucket.try_take_at(t0 + MS / 2), Err(MS / 2));
        bucket.try_take_at(t0 + MS).unwrap();
        assert_eq!(bucket.try_take_at(t0 + MS), Err(MS));
    }

    #[test]
    #[cfg_attr(miri, ignore = "safe code, 10^4 steps: 15 s under miri")]
    fn long_run_admits_burst_plus_rate_times_time() {
        let t0 = Instant::now();
        let bucket = TokenBucket::new(200.0, 10, t0); // 5 ms per token
        let mut admitted = 0;
        // Try every 100 µs for one second of simulated time.
        for step in 0..=10_000u32 {
            let now = t0 + Duration::from_micros(100) * step;
            while bucket.try_take_at(now).is_ok() {
                admitted += 1;
            }
        }
        // 10 at once, then one every 5 ms for 1 s.
        assert_eq!(admitted, 10 + 200);
    }

    #[test]
    fn idle_time_refills_only_up_to_burst() {
        let t0 = Instant::now();
        let bucket = TokenBucket::new(1000.0, 3, t0);
        let later = t0 + Duration::from_secs(60);
        let mut n = 0;
        while bucket.try_take_at(later).is_ok() {
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn concurrent_takers_share_exactly_the_burst() {
        let t0 = Instant::now();
        let bucket = Arc::new(TokenBucket::new(1.0, 1000, t0));
        let taken = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (bucket, taken) = (bucket.clone(), taken.clone());
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        if bucket.try_take_at(t0).is_ok() {
                            taken.fetch_add(1, Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(taken.load(Relaxed), 1000);
    }

    #[test]
    fn extreme_rates_do_not_overflow() {
        let t0 = Instant::now();
        let slow = TokenBucket::new(1e-30, u32::MAX, t0);
        slow.try_take_at(t0).unwrap();
        let fast = TokenBucket::new(1e12, 1, t0); // interval clamps to 1 ns
        fast.try_take_at(t0).unwrap();
        assert_eq!(fast.try_take_at(t0), Err(Duration::from_nanos(1)));
    }
}
