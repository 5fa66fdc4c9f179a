//! Which core each worker runs on.
//!
//! **Policy.** The pool has a list of allowed cores (the builder's `pin_cores`, or every core
//! the OS reports). A starting worker takes the allowed core that the fewest live workers hold,
//! the earliest in the list on ties, and releases it when it exits. So while there are no more
//! workers than allowed cores, every worker has a core of its own; beyond that, extra workers
//! share cores evenly (the second worker on a core goes to the core listed first, and so on),
//! which keeps them pinned rather than letting them float over cores that other workers own.
//!
//! **Failure.** Pinning is best effort: if the OS refuses (a core id that does not exist, a
//! cgroup/cpuset that excludes it, a platform without affinity support, or no core list at
//! all), the worker runs unpinned and the failure is counted in
//! [`PoolMetrics::pin_failures`](super::PoolMetrics::pin_failures). It never panics.

use core_affinity::CoreId;
use std::sync::Mutex;

/// The allowed cores and how many live workers hold each one.
#[derive(Debug)]
pub(crate) struct CorePlan {
    cores: Vec<CoreId>,
    /// `holders[i]`: live workers assigned to `cores[i]`.
    holders: Mutex<Vec<usize>>,
}

/// A worker's claim on a core, handed back with [`CorePlan::release`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    index: usize,
    pub(crate) core: CoreId,
}

impl CorePlan {
    /// A plan over `cores`; empty means pinning is off (or impossible).
    pub(crate) fn new(cores: Vec<CoreId>) -> Self {
        let holders = Mutex::new(vec![0; cores.len()]);
        CorePlan { cores, holders }
    }

    /// Claims the least-held core (earliest on ties); `None` if there are no cores.
    pub(crate) fn claim(&self) -> Option<Claim> {
        let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        let (index, count) = holders
            .iter_mut()
            .enumerate()
            .min_by_key(|(i, n)| (**n, *i))?;
        *count += 1;
        Some(Claim {
            index,
            core: self.cores[index],
        })
    }

    pub(crate) fn release(&self, claim: Claim) {
        let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        debug_assert!(holders[claim.index] > 0);
        holders[claim.index] = holders[claim.index].saturating_sub(1);
    }
}

/// Pins the calling thread to `core`; `false` if the OS refused.
pub(crate) fn pin_current(core: CoreId) -> bool {
    // core_affinity indexes a fixed-size `cpu_set_t` on Linux and would panic on an id past
    // its end: such an id cannot exist there, so it is a plain failure.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if core.id >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return false;
    }
    // Belt and braces: a panic inside the platform call is a failed pin, not a dead worker.
    std::panic::catch_unwind(|| core_affinity::set_for_current(core)).unwrap_or(false)
}

/// Every core the OS reports, or none if it cannot tell.
pub(crate) fn all_cores() -> Vec<CoreId> {
    core_affinity::get_core_ids().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(ids: &[usize]) -> CorePlan {
        CorePlan::new(ids.iter().map(|&id| CoreId { id }).collect())
    }

    #[test]
    fn distinct_cores_first_then_even_sharing() {
        let p = plan(&[4, 5, 6]);
        let ids: Vec<usize> = (0..7).map(|_| p.claim().unwrap().core.id).collect();
        assert_eq!(ids, [4, 5, 6, 4, 5, 6, 4]);
    }

    #[test]
    fn released_cores_are_taken_again_first() {
        let p = plan(&[0, 1, 2]);
        let a = p.claim().unwrap();
        let b = p.claim().unwrap();
        let c = p.claim().unwrap();
        assert_eq!((a.core.id, b.core.id, c.core.id), (0, 1, 2));
        p.release(b);
        assert_eq!(p.claim().unwrap().core.id, 1);
        assert_eq!(p.claim().unwrap().core.id, 0); // all held once: share, earliest first
    }

    #[test]
    fn no_cores_means_no_claim() {
        assert_eq!(plan(&[]).claim(), None);
    }

    #[test]
    fn pinning_to_a_core_that_does_not_exist_fails_without_panicking() {
        // Run in a scratch thread so the test harness thread keeps its affinity.
        for id in [1000, 1 << 20, usize::MAX] {
            let pinned = std::thread::spawn(move || pin_current(CoreId { id }))
                .join()
                .unwrap();
            assert!(!pinned, "core {id}");
        }
    }
}
