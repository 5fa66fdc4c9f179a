//! Waiting: spin, then yield, then park; and the wake-up protocol that makes parking safe.
//!
//! # The lost wake-up, and how it is ruled out
//!
//! A waiter (say a consumer on an empty ring) must not go to sleep just after a producer
//! published an item and decided nobody was asleep. Each side does a store, then a full barrier,
//! then a load of what the other side stored (Dekker's pattern):
//!
//! ```text
//!  waiter (Event::prepare + recheck)         notifier (publish + Event::notify_one)
//!  (b) e = epoch.load(Acquire)               (1) publish: tail.store(t + 1, Release)
//!  (a) waiters += 1                          (2) light_barrier()
//!  (c) heavy_barrier()                       (3) if waiters.load(Relaxed) > 0:
//!  (d) re-check the condition (tail)         (4)     epoch.fetch_add(1, Release)
//!  (e) futex_wait(epoch, e)                  (5)     futex_wake(epoch)
//! ```
//!
//! The barriers (c) and (2) together forbid the outcome "(3) reads no waiter *and* (d) reads the
//! old tail". So either the waiter sees the item at (d) and does not sleep, or the notifier sees
//! the waiter at (3) and bumps the epoch. That bump comes after (a), hence after (b): it makes the
//! futex wait at (e) return at once (the kernel compares the word atomically with queueing the
//! waiter) or wakes it at (5). (b) comes first on purpose: see `Event::prepare`.
//!
//! The SPSC rings have one waiter per event, and their notifier takes the registration when it
//! wakes it (`Event::wake_sole_waiter`, a swap to 0), so that one park costs one wake however many
//! items are published before the woken thread runs. The MPMC ring has any number of waiters per
//! side, and a count cannot say whose registration a wake used; there each waiter queues a node of
//! its own and sleeps on that node's word, and the notifier claims a node as it wakes it
//! (`WaitQueue`, in `wait/queue.rs`): there too, one park costs one wake. In the diagram, (a) is
//! then the store of the queue's length, (3) its load, and (4)–(5) the claim of the oldest node
//! and a futex wake on its word.
//!
//! # Staying registered across sleeps
//!
//! A sleep that ends with no wake at all (a timeout or a spurious return: the epoch has not moved
//! and, for a sole waiter, the registration is still there) keeps the registration: the waiter
//! re-checks and sleeps again on the same ticket, with no new heavy barrier (`Event::renew`).
//! This is sound because the barrier pair's guarantee outlives the barrier: (a) was ordered before
//! (c) once, so every notifier whose (3) comes after (c) sees the registration, and every
//! notifier whose (3) came before it published before (c), which every later re-check sees; a
//! notifier that bumps the epoch after the ticket was read makes the next sleep return at once.
//! The epoch is read before the registration is checked, for the reason `Event::prepare` reads
//! it first. A sleep that ended with a wake has lost its registration (the notifier took it, or
//! a disconnect woke everyone) and the next wait registers anew. A node of the MPMC queue stays
//! queued across a sleep without a wake in the same way. The gain: a thread parked behind a
//! wake-up threshold wakes every few milliseconds to re-check on its own
//! (a stalled peer must not strand it); each of those re-checks used to cost a `membarrier`, an
//! interrupt on every core running the process, the peer's included (on the loaded 2-core CI
//! machine such a producer burnt ~0.6 ms of CPU per re-check, most likely in that barrier).
//!
//! # Asymmetric barriers
//!
//! The notifier runs on every push and pop, the waiter only when it is about to sleep (after tens
//! of microseconds of spinning). So the barrier cost is moved to the waiter: on Linux,
//! `heavy_barrier` is `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every running
//! thread of the process execute a full memory barrier, and `light_barrier` is then only a
//! compiler fence: the hot path pays no `mfence`, and no test of a runtime flag either (the mode
//! is fixed at compile time, so the notifier's side is a compiler fence on every Linux build).
//! Under miri and loom, and on other systems, both barriers are `fence(SeqCst)`, which is the
//! textbook form of the argument above and what the loom models check.
//!
//! If a Linux kernel refuses membarrier (older than 4.14, or a seccomp filter), the waiter's side
//! falls back to `fence(SeqCst)`, which alone does not order the notifier's store before its load:
//! a notifier may then miss a waiter that registered just in time. weir does not lose the wake-up
//! in that mode, it bounds it: every sleep is cut to `DEGRADED_RECHECK` (1 ms) and the waiter re-checks
//! its condition when it returns, so a missed wake costs at most that much latency. The mode is
//! fixed once, before the first ring exists (`init_barriers`), and `sleep_bound` reports it.

mod queue;

pub(crate) use queue::WaitQueue;

use crate::metrics::SideStats;
use crate::sync::{fence, spin_loop, yield_now, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A place where a blocking call registers, sleeps and withdraws: [`Event`] (one waiter per
/// side, the SPSC rings) and [`WaitQueue`] (any number, the MPMC ring). [`Waiter`] drives either
/// through these four steps.
pub(crate) trait Parking {
    /// What a registration hands to the sleeps that follow it.
    type Ticket;
    /// Registers the caller and issues the heavy barrier; the caller re-checks next.
    fn prepare(&self) -> Self::Ticket;
    /// Sleeps until woken, at most `timeout` (spurious returns allowed). Returns whether the
    /// sleep ended by its timeout.
    fn sleep(&self, ticket: &Self::Ticket, timeout: Option<Duration>) -> bool;
    /// After a sleep: `Some` if still registered (no wake came), `None` if the registration is
    /// gone and the next sleep must [`prepare`](Self::prepare) again.
    fn renew(&self, ticket: Self::Ticket) -> Option<Self::Ticket>;
    /// Withdraws a registration the caller leaves with.
    fn cancel(&self, ticket: Self::Ticket);
}

/// How a blocking call waits when it cannot proceed at once.
///
/// Every blocking call (`push`, `pop`, `pop_batch`, their `_timeout`/`_deadline` forms) first
/// retries without waiting; the strategy says what it does between retries.
///
/// ```
/// use weir::{spsc, WaitStrategy};
/// let (tx, rx) = spsc::Builder::new(64)
///     .wait_strategy(WaitStrategy::BusySpin)
///     .build::<u64>()
///     .unwrap();
/// # drop((tx, rx));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Spin on the CPU forever: the lowest latency, and a core burnt while waiting.
    BusySpin,
    /// Give the core back to the scheduler between retries (`sched_yield`), never sleep.
    Yield,
    /// Spin `spins` times, then yield `yields` times, then sleep on a futex until the other side
    /// wakes the thread. The default.
    SpinThenPark {
        /// Retries with a CPU spin hint between them.
        spins: u32,
        /// Retries with a `sched_yield` between them, after the spins.
        yields: u32,
    },
    /// Sleep on the futex at once: the least CPU, and a wake-up (tens of µs) per wait.
    Park,
}

/// Spins of the default strategy. One futex wake costs ~40 µs on the VMs weir is tuned on; a
/// retry costs ~20–50 ns when the other side is writing the line, so 2048 retries cover gaps of
/// roughly 40–100 µs before the thread pays for a sleep.
pub const DEFAULT_SPINS: u32 = 2048;
/// Yields of the default strategy, after the spins.
pub const DEFAULT_YIELDS: u32 = 8;

impl WaitStrategy {
    /// Whether a wait under this strategy starts by spinning.
    #[inline]
    pub(crate) fn spins_first(self) -> bool {
        match self {
            WaitStrategy::BusySpin => true,
            WaitStrategy::SpinThenPark { spins, .. } => spins > 0,
            WaitStrategy::Yield | WaitStrategy::Park => false,
        }
    }
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::SpinThenPark {
            spins: DEFAULT_SPINS,
            yields: DEFAULT_YIELDS,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Barriers
// ---------------------------------------------------------------------------------------------

#[cfg(all(target_os = "linux", not(loom), not(miri)))]
mod membarrier {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;

    const CMD_QUERY: libc::c_long = 0;
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    /// Set once, before any ring exists (see [`init`]), never cleared.
    static ENABLED: AtomicBool = AtomicBool::new(false);
    static INIT: OnceLock<bool> = OnceLock::new();

    fn membarrier(cmd: libc::c_long) -> libc::c_long {
        // SAFETY: membarrier takes two integer arguments and touches no user memory.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        }
    }

    /// Registers the process for expedited membarrier, once. Every ring constructor calls this
    /// before it returns, so every thread that holds a ring handle received it after `ENABLED`
    /// took its final value (the handle's transfer to that thread is the happens-before edge).
    pub(super) fn init() {
        INIT.get_or_init(|| {
            // For tests of the degraded mode (module docs): behave as on a kernel without it.
            if std::env::var_os("WEIR_NO_MEMBARRIER").is_some_and(|v| v == "1") {
                return false;
            }
            let supported = membarrier(CMD_QUERY);
            let ok = supported > 0
                && supported & CMD_PRIVATE_EXPEDITED != 0
                && membarrier(CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
            // Relaxed: readers are ordered after this store by the OnceLock and by the hand-over
            // of the ring handles (see above), not by this store itself.
            ENABLED.store(ok, Ordering::Relaxed);
            ok
        });
    }

    #[inline(always)]
    pub(super) fn enabled() -> bool {
        // Relaxed: the value is final before any ring handle exists (see `init`).
        ENABLED.load(Ordering::Relaxed)
    }

    pub(super) fn heavy() {
        if membarrier(CMD_PRIVATE_EXPEDITED) != 0 {
            // Registration succeeded, so this cannot fail; if it somehow does, a full fence on
            // this side alone would not be enough, so fail loudly rather than lose a wake-up.
            panic!("membarrier(PRIVATE_EXPEDITED) failed after registration");
        }
    }
}

/// Called by every ring constructor: fixes the barrier mode before the first handle exists.
pub(crate) fn init_barriers() {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    membarrier::init();
}

/// The longest a waiter sleeps between re-checks when the kernel refused membarrier (see the
/// module docs): the bound on a missed wake-up in that mode.
#[cfg_attr(not(all(target_os = "linux", not(loom), not(miri))), allow(dead_code))]
pub(crate) const DEGRADED_RECHECK: Duration = Duration::from_millis(1);

/// The bound on one sleep that the barrier mode imposes: `None` where the barrier pair is exact
/// (membarrier, or `fence(SeqCst)` on both sides), [`DEGRADED_RECHECK`] on a Linux kernel that
/// refused membarrier, where the notifier's compiler fence alone may miss a waiter.
#[inline]
pub(crate) fn sleep_bound() -> Option<Duration> {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    if !membarrier::enabled() {
        return Some(DEGRADED_RECHECK);
    }
    None
}

/// The notifier's barrier, on every publish. On Linux (outside miri and loom) it is only a
/// compiler fence: the waiter's [`heavy_barrier`] does the hardware part with membarrier (or, if
/// the kernel refused it, the waiter's sleeps are bounded: module docs). Elsewhere
/// `fence(SeqCst)`.
#[inline(always)]
pub(crate) fn light_barrier() {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
    #[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
    fence(Ordering::SeqCst);
}

/// The waiter's barrier, once per sleep: `membarrier` where available, otherwise
/// `fence(SeqCst)`. Pairs with [`light_barrier`] (see the module docs).
#[inline]
pub(crate) fn heavy_barrier() {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    if membarrier::enabled() {
        membarrier::heavy();
        return;
    }
    fence(Ordering::SeqCst);
}

// ---------------------------------------------------------------------------------------------
// The futex word, and its portable fallback
// ---------------------------------------------------------------------------------------------

#[cfg(all(target_os = "linux", not(loom)))]
mod sleeper {
    use crate::sync::AtomicU32;
    use std::time::Duration;

    #[derive(Debug, Default)]
    pub(super) struct Sleeper;

    impl Sleeper {
        /// Sleeps while `*word == expected`, at most `timeout`. Spurious returns are fine: callers
        /// re-check their condition. Returns whether the sleep ended by its timeout.
        pub(super) fn wait(
            &self,
            word: &AtomicU32,
            expected: u32,
            timeout: Option<Duration>,
        ) -> bool {
            let ts = timeout.map(|d| libc::timespec {
                tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            });
            let ts_ptr = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `word` is a live, aligned u32 for the duration of the call (AtomicU32 has
            // the layout of u32); `ts_ptr` is null or points to a timespec on this stack frame.
            // FUTEX_WAIT only reads the word and the timespec.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    word.as_ptr(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    expected,
                    ts_ptr,
                )
            };
            r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT)
        }

        /// Wakes up to `n` threads sleeping on `word`.
        pub(super) fn wake(&self, word: &AtomicU32, n: u32) {
            let n = n.min(i32::MAX as u32) as libc::c_int;
            // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE does not access user memory.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    word.as_ptr(),
                    libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                    n,
                );
            }
        }
    }
}

#[cfg(any(loom, not(target_os = "linux")))]
mod sleeper {
    use crate::sync::{AtomicU32, Condvar, Mutex, Ordering};
    use std::time::Duration;

    /// Mutex + condvar stand-in for the futex (other systems, and loom, which cannot model
    /// syscalls). The epoch is compared under the lock, and wakers take the lock after bumping
    /// it, so a waker cannot slip between the comparison and the wait.
    #[derive(Debug, Default)]
    pub(super) struct Sleeper {
        lock: Mutex<()>,
        cv: Condvar,
        /// loom: whether a timed wait on this sleeper has timed out yet (see `wait`). A std
        /// atomic: bookkeeping of the model, fresh in each execution with its ring.
        #[cfg(loom)]
        timed_out: std::sync::atomic::AtomicBool,
    }

    impl Sleeper {
        /// As the futex form: returns whether the sleep ended by its timeout.
        pub(super) fn wait(
            &self,
            word: &AtomicU32,
            expected: u32,
            timeout: Option<Duration>,
        ) -> bool {
            let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            // Acquire: pairs with the waker's Release store (the epoch's bump, or a queued
            // node's claim).
            if word.load(Ordering::Acquire) != expected {
                return false;
            }
            #[cfg(loom)]
            {
                // loom models no time. The first timed wait on this sleeper (an SPSC event's, or
                // an MPMC queue node's) times out at once, so that the models take the path of a
                // sleep that ends with the registration still in place (`Parking::renew`), and,
                // when the deadline bounded it, of a deadline that passes (`Waiter`); later ones
                // are untimed (timing out every time would make the waiter's loop unbounded).
                if timeout.is_some() && !self.timed_out.swap(true, Ordering::Relaxed) {
                    return true;
                }
                drop(self.cv.wait(guard));
                false
            }
            #[cfg(not(loom))]
            match timeout {
                Some(d) => self
                    .cv
                    .wait_timeout(guard, d)
                    .map_or(false, |(_, t)| t.timed_out()),
                None => {
                    drop(self.cv.wait(guard));
                    false
                }
            }
        }

        pub(super) fn wake(&self, _word: &AtomicU32, n: u32) {
            drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()));
            if n == 1 {
                self.cv.notify_one();
            } else {
                self.cv.notify_all();
            }
        }
    }
}

/// Where the one waiting thread of a side of an SPSC ring sleeps until the other side changes
/// the ring.
///
/// See the module docs for the protocol. `waiters` is 1 while the thread is registered (between
/// [`Event::prepare`] and [`Event::cancel`], unless a notifier took the registration with
/// [`Event::wake_sole_waiter`]); `epoch` is the futex word, bumped by every wake.
#[derive(Debug, Default)]
pub(crate) struct Event {
    waiters: AtomicU32,
    epoch: AtomicU32,
    sleeper: sleeper::Sleeper,
}

/// What [`Event::prepare`] read; passed to [`Event::sleep`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket(u32);

impl Event {
    /// An event with at most one waiter at a time (a side of an SPSC ring), woken with
    /// [`wake_sole_waiter`](Self::wake_sole_waiter).
    pub(crate) fn new_sole() -> Self {
        Self::default()
    }

    /// Cheap check for the notifier, to be called after publishing and [`light_barrier`].
    #[inline(always)]
    pub(crate) fn has_waiters(&self) -> bool {
        // Relaxed: ordered against the waiter's registration by the barrier pair (module docs).
        self.waiters.load(Ordering::Relaxed) != 0
    }

    /// Wakes up to `n` sleepers. The caller has published its change before calling this.
    #[cold]
    #[inline(never)]
    fn wake(&self, n: u32) {
        // Release: a waiter whose (b) reads this bump must also see what was published before
        // it (the module docs' case "bump before (b)").
        self.epoch.fetch_add(1, Ordering::Release);
        self.sleeper.wake(&self.epoch, n);
    }

    /// Wakes the registered waiter of an event that has at most one (the SPSC rings), and
    /// unregisters it on its behalf, so that the notifier's later publications before the
    /// waiter runs again do not each send another futex wake: one park costs one wake.
    #[cold]
    #[inline(never)]
    pub(crate) fn wake_sole_waiter(&self) -> bool {
        // Acquire/Release: an RMW on the count the waiter incremented in `prepare`; if it reads
        // the registration, the wake below is for that registration. Ordered after our
        // publication by the caller's `light_barrier` (module docs).
        if self.waiters.swap(0, Ordering::AcqRel) == 0 {
            return false;
        }
        self.wake(1);
        true
    }

    /// Wakes every sleeper, whether or not one is registered. For disconnects: the caller has
    /// stored its `closed` flag (SeqCst) before this; a waiter either reads the bumped epoch in
    /// (b), and then sees the flag, or sleeps on the old epoch and is woken here.
    pub(crate) fn wake_all(&self) {
        self.wake(u32::MAX);
    }

    /// Unregisters the waiter (unless `wake_sole_waiter` already did).
    fn unregister(&self) {
        // Relaxed: a stale count only costs a notifier one needless wake. Saturating, because
        // `wake_sole_waiter` may have taken our registration already.
        let _ = self
            .waiters
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| w.checked_sub(1));
    }
}

impl Parking for Event {
    type Ticket = Ticket;

    /// Registers the caller as the waiter and issues the heavy barrier. The caller must then
    /// re-check its condition, and either [`cancel`](Parking::cancel) or
    /// [`sleep`](Parking::sleep) and then [`renew`](Parking::renew).
    fn prepare(&self) -> Ticket {
        // The ticket is read *before* registering. Read after, it could include the bump of a
        // notifier that took this very registration (`wake_sole_waiter`) on behalf of an older
        // publication: the waiter would then sleep on the new epoch, unregistered, and miss the
        // next item (loom found this at preemption bound 4). Read before, any bump by a notifier
        // that saw this registration is newer than the ticket, so the sleep returns at once.
        // Acquire: pairs with the Release bump in `wake`.
        let epoch = self.epoch.load(Ordering::Acquire);
        // Relaxed: ordered before the re-check by the heavy barrier below.
        self.waiters.fetch_add(1, Ordering::Relaxed);
        heavy_barrier();
        Ticket(epoch)
    }

    /// Sleeps until woken, the epoch moved since `prepare`, or `timeout` passed.
    fn sleep(&self, ticket: &Ticket, timeout: Option<Duration>) -> bool {
        self.sleeper.wait(&self.epoch, ticket.0, timeout)
    }

    /// After a [`sleep`](Parking::sleep) on `ticket`: if no wake came (the epoch has not moved
    /// and the registration is still there), the caller stays registered and gets `ticket`
    /// back, to sleep on again after it re-checks its condition. Otherwise its registration was
    /// taken by [`wake_sole_waiter`](Self::wake_sole_waiter) (or, after a
    /// [`wake_all`](Self::wake_all), is given up here) and `None` says it must
    /// [`prepare`](Parking::prepare) again before another sleep. No barrier: see the module
    /// docs, "Staying registered across sleeps".
    fn renew(&self, ticket: Ticket) -> Option<Ticket> {
        // Acquire: pairs with the Release bump in `wake`. Read first, as in `prepare`: if it
        // reads the bump of a notifier that took our registration, that notifier's swap happens
        // before the load below, which then reads 0 (we are the only one who registers); and if
        // a notifier bumps later, the sleep on `ticket` returns at once.
        let epoch = self.epoch.load(Ordering::Acquire);
        // Relaxed: ordered after the Acquire load above.
        if self.waiters.load(Ordering::Relaxed) == 0 {
            return None;
        }
        if epoch != ticket.0 {
            // Woken by `wake_all`, which takes no registration: give it up.
            self.unregister();
            return None;
        }
        Some(ticket)
    }

    /// Unregisters the waiter (unless `wake_sole_waiter` already did).
    fn cancel(&self, _ticket: Ticket) {
        self.unregister();
    }
}

/// The state of one blocking call between its retries: spin, then yield, then park.
///
/// Used as a loop around the caller's non-blocking attempt, so that the attempt can borrow the
/// handle mutably (no closure holds it):
///
/// ```text
/// let mut w = Waiter::new(strategy, deadline, recheck);
/// let out = loop {
///     if let done @ Some(_) = attempt() { break done; }     // success, or disconnected
///     if !w.pause(event, stats) { break None; }             // deadline passed
/// };
/// w.finish(event, stats);
/// ```
///
/// In the park phase the first `pause` registers on the event ([`Event::prepare`], with the
/// heavy barrier) and returns so that the caller re-checks; the next call sleeps. The attempt
/// between the two is the re-check (d) of the module docs' protocol. A sleep that returns
/// without a wake (a timeout) keeps the registration ([`Event::renew`]): the caller re-checks
/// and the next call sleeps again, without another barrier; after a wake the next sleep
/// registers anew with `prepare`.
#[derive(Debug)]
pub(crate) struct Waiter<P: Parking> {
    spins: u64,
    yields: u64,
    park: bool,
    count: u64,
    deadline: Option<Instant>,
    recheck: Option<Duration>,
    ticket: Option<P::Ticket>,
    /// When the wait started to be timed: not before [`UNTIMED_SPINS`], so that a wait that a
    /// short spin resolves reads no clock at all.
    start: Option<Instant>,
    /// loom models no time, and its sleeper times out a node's or event's first timed sleep at
    /// once: when that sleep was bounded by the deadline, the deadline counts as passed, so that
    /// the models can take the path of a waiter that gives up while registered.
    #[cfg(loom)]
    deadline_passed: bool,
}

/// Retries a blocking pop makes on its own path, with a spin hint before each, before it sets
/// up a [`Waiter`] ([`spin_briefly`], for SPSC `Consumer::wait_ready` and MPMC
/// `Consumer::wait_for`): about half a
/// microsecond at ~28 ns per hint here. Building the `Waiter` and tearing it down after the item
/// arrived cost ~30 ns per ping-pong hop (harness: blocking RTT p50 120 ns against 90 ns for
/// try + spin); a wait this short now costs what try + spin costs. Used only by strategies that
/// spin anyway, without a deadline (the `Waiter` checks deadlines), and never under loom, where
/// every retry multiplies the explored states.
const INLINE_SPINS: u32 = 16;

/// The short first phase of a blocking pop, before any [`Waiter`]: retries `attempt` up to
/// [`INLINE_SPINS`] times, a spin hint before each, and returns the first `Some`. `None` at once
/// where it does not apply (a strategy that does not spin, a deadline, loom).
#[inline]
pub(crate) fn spin_briefly<R>(
    strategy: WaitStrategy,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Option<R>,
) -> Option<R> {
    if cfg!(loom) || deadline.is_some() || !strategy.spins_first() {
        return None;
    }
    for _ in 0..INLINE_SPINS {
        spin_loop();
        if let done @ Some(_) = attempt() {
            return done;
        }
    }
    None
}

/// Spins a wait makes before it reads the clock (for the blocked-time metric).
const UNTIMED_SPINS: u64 = 128;

impl<P: Parking> Waiter<P> {
    /// `recheck` bounds each sleep: used where the other side wakes us only past a threshold
    /// (batched wake-ups), so that a stalled peer cannot leave us asleep forever while a partial
    /// amount is ready.
    pub(crate) fn new(
        strategy: WaitStrategy,
        deadline: Option<Instant>,
        recheck: Option<Duration>,
    ) -> Self {
        let (spins, yields, park) = match strategy {
            WaitStrategy::BusySpin => (u64::MAX, 0, false),
            WaitStrategy::Yield => (0, u64::MAX, false),
            WaitStrategy::SpinThenPark { spins, yields } => (spins as u64, yields as u64, true),
            WaitStrategy::Park => (0, 0, true),
        };
        // Under loom every retry multiplies the explored states: keep at most one of each.
        #[cfg(loom)]
        let (spins, yields) = (spins.min(1), yields.min(1));
        Waiter {
            spins,
            yields,
            park,
            count: 0,
            deadline,
            recheck,
            ticket: None,
            // A wait with a deadline reads the clock anyway: time all of it.
            start: deadline.map(|_| Instant::now()),
            #[cfg(loom)]
            deadline_passed: false,
        }
    }

    fn expired(&self) -> bool {
        #[cfg(loom)]
        if self.deadline_passed {
            return true;
        }
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Waits a little after a failed attempt. Returns `false` once the deadline has passed: the
    /// caller then gives up (after calling [`finish`](Self::finish)).
    pub(crate) fn pause(&mut self, event: &P, stats: &SideStats) -> bool {
        let n = self.count;
        self.count = n.saturating_add(1);
        if n == UNTIMED_SPINS.min(self.spins) && self.start.is_none() {
            self.start = Some(Instant::now());
        }
        if n < self.spins {
            // A clock read costs ~20 ns: look at the deadline every 128 spins only.
            if n % 128 == 0 && self.expired() {
                return false;
            }
            spin_loop();
            return true;
        }
        if self.expired() {
            return false;
        }
        if n - self.spins < self.yields || !self.park {
            yield_now();
            return true;
        }
        match self.ticket.take() {
            None => {
                // Register, then let the caller re-check before we sleep.
                SideStats::add(&stats.registrations, 1);
                self.ticket = Some(event.prepare());
            }
            Some(ticket) => {
                let recheck = match (self.recheck, sleep_bound()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let timeout = match self.deadline {
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        Some(recheck.map_or(left, |r| r.min(left)))
                    }
                    None => recheck,
                };
                SideStats::add(&stats.parks, 1);
                let timed_out = event.sleep(&ticket, timeout);
                #[cfg(loom)]
                if timed_out && self.deadline.is_some() && recheck.is_none() {
                    self.deadline_passed = true;
                }
                #[cfg(not(loom))]
                let _ = timed_out;
                // No wake (a timeout): keep the registration, and the caller re-checks before
                // the next sleep; woken: unregistered, and the next sleep registers again.
                self.ticket = event.renew(ticket);
            }
        }
        true
    }

    /// Times the wait from `since` instead of from this waiter's creation: the start of a
    /// `push_timeout` call, which computed its deadline from that instant, so that a wait that
    /// runs to the deadline counts the whole timeout as blocked (a thread preempted between the
    /// call and the waiter's creation would otherwise count less than the timeout).
    pub(crate) fn time_from(&mut self, since: Instant) {
        self.start = Some(since);
    }

    /// Ends the blocking call: unregisters from the event if still registered and records the
    /// time spent blocked.
    pub(crate) fn finish(mut self, event: &P, stats: &SideStats) -> Finished {
        if let Some(ticket) = self.ticket.take() {
            event.cancel(ticket);
        }
        if let Some(start) = self.start {
            stats.add_blocked(start.elapsed());
        }
        Finished {
            reached_park: self.park && self.count > self.spins.saturating_add(self.yields),
            spins: self.spins,
        }
    }

    /// Like [`new`](Self::new), with the spin phase cut to what `budget` has learnt pays off
    /// for this handle (see [`SpinBudget`]).
    pub(crate) fn adaptive(
        strategy: WaitStrategy,
        deadline: Option<Instant>,
        recheck: Option<Duration>,
        budget: SpinBudget,
    ) -> Self {
        let mut w = Self::new(strategy, deadline, recheck);
        if w.park && u64::from(budget.spins) < w.spins {
            w.spins = budget.spins as u64;
            // Spinning did not pay last time: skip the yields too, they cost a syscall each.
            w.yields = 0;
        }
        w
    }
}

/// How a blocking call ended, for [`SpinBudget::learn`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Finished {
    reached_park: bool,
    /// The spin phase this wait was given.
    spins: u64,
}

/// Adaptive spinning, per handle: how many spins are worth it before parking.
///
/// A wait that had to park anyway wasted its spins (with a slow consumer, a producer would burn
/// tens of microseconds per burst), so the budget halves, down to [`SpinBudget::MIN`]; a wait
/// that spinning resolved doubles it, back up to the strategy's own count. Latency-bound
/// ping-pong keeps the full spin phase; throttled producers stop burning CPU.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpinBudget {
    spins: u32,
}

impl SpinBudget {
    /// The fewest spins the budget falls to: a few hundred nanoseconds, enough to catch a peer
    /// that is just about to publish.
    pub(crate) const MIN: u32 = 16;

    pub(crate) const fn new() -> Self {
        SpinBudget { spins: u32::MAX }
    }

    /// Updates the budget from how a wait ended.
    pub(crate) fn learn(&mut self, how: Finished) {
        let given = u32::try_from(how.spins).unwrap_or(u32::MAX);
        self.spins = if how.reached_park {
            (given / 2).max(Self::MIN)
        } else {
            given.saturating_mul(2)
        };
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn barrier_mode_follows_the_kernel_or_the_override() {
        init_barriers();
        let forced = std::env::var_os("WEIR_NO_MEMBARRIER").is_some_and(|v| v == "1");
        if forced {
            // CI's `degraded` step: the override must really put the rings in the bounded mode.
            #[cfg(all(target_os = "linux", not(miri)))]
            assert_eq!(sleep_bound(), Some(DEGRADED_RECHECK));
        } else if cfg!(any(miri, not(target_os = "linux"))) {
            // Fences on both sides: exact, no bound.
            assert_eq!(sleep_bound(), None);
        }
        // Otherwise either mode is legitimate: it depends on the kernel.
    }

    #[test]
    fn spin_budget_halves_after_a_park_and_doubles_after_a_spin() {
        let mut b = SpinBudget::new();
        b.learn(Finished {
            reached_park: true,
            spins: 2048,
        });
        assert_eq!(b.spins, 1024);
        b.learn(Finished {
            reached_park: true,
            spins: 20,
        });
        assert_eq!(b.spins, SpinBudget::MIN);
        b.learn(Finished {
            reached_park: false,
            spins: 512,
        });
        assert_eq!(b.spins, 1024);
    }
}
