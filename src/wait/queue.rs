//! Where the MPMC ring's threads sleep: a queue of waiters, each woken by name.
//!
//! An [`Event`](super::Event) counts its waiters and wakes "one of them" through a shared futex
//! word; it suits the SPSC rings, whose notifier can take the one registration itself. With many
//! waiters a count cannot say *whose* registration a wake used, so on the MPMC ring a woken
//! thread's registration stayed counted until that thread ran and withdrew it: tens of
//! microseconds after a futex wake, during which every publication saw "a waiter" and made
//! another futex call (a scratch run of two producers and one consumer, all parking, sent
//! 351 510 wakes for 2 197 producer parks; docs/benchmarks.md, sixteenth session).
//!
//! Here each waiter enqueues a [`Node`] of its own and sleeps on that node's state word. A
//! notifier dequeues a node and moves it from `WAITING` to `NOTIFIED` with one compare-exchange,
//! then wakes that thread: the registration is gone the moment the wake is decided, so the next
//! publication sees only the waiters still unclaimed, and sends nothing when none are left.
//!
//! The protocol of the module docs of [`crate::wait`] is unchanged: the waiter's registration
//! (a) is the store of the queue length, made before its heavy barrier and re-check; the
//! notifier's check (3) is the load of that length after its publication and light barrier.
//!
//! A waiter that leaves without having been woken (its re-check succeeded, or its deadline
//! passed) moves its node from `WAITING` to `LEFT` first and then takes it out of the queue; a
//! notifier that dequeues a node already `LEFT` skips it and takes the next one. If that
//! compare-exchange fails, the node was claimed by a notifier whose wake the waiter has not acted
//! on, and the waiter passes it on to the next node (`WaitQueue::cancel`): a wake claimed for a
//! thread that leaves goes on to one that stays, so "each publication wakes a sleeper that will
//! retry for it" still holds. (Passing on may cost a needless wake, when the leaving thread's
//! re-check took the very item the wake was for.)

use super::sleeper::Sleeper;
use super::Parking;
use crate::sync::{Arc, AtomicU32, Mutex, MutexGuard, Ordering};
use std::collections::VecDeque;
use std::time::Duration;

/// The node is queued and its thread may be asleep on `state`.
const WAITING: u32 = 0;
/// A notifier claimed the node and wakes (or has woken) its thread.
const NOTIFIED: u32 = 1;
/// The thread withdrew before any notifier claimed the node.
const LEFT: u32 = 2;

/// One waiting thread: the word it sleeps on, and (off Linux, and under loom) what it sleeps
/// with.
#[derive(Debug, Default)]
struct Node {
    state: AtomicU32,
    sleeper: Sleeper,
}

/// A queue of sleeping threads, woken one by one in the order they registered.
#[derive(Debug, Default)]
pub(crate) struct WaitQueue {
    /// The queue's length, written under the lock; read by notifiers without it.
    queued: AtomicU32,
    queue: Mutex<VecDeque<Arc<Node>>>,
}

/// A registration on [`WaitQueue`]: the caller's node.
#[derive(Debug)]
pub(crate) struct QueueTicket(Arc<Node>);

impl WaitQueue {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<Node>>> {
        // Nothing panics while the queue is locked (no user code runs under the lock; a failed
        // allocation in `push_back` aborts), so even a poisoned lock would hold a sound queue.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cheap check for the notifier, to be called after publishing and
    /// [`light_barrier`](super::light_barrier).
    #[inline(always)]
    pub(crate) fn has_waiters(&self) -> bool {
        // Relaxed: ordered against the waiter's registration by the barrier pair (module docs
        // of `crate::wait`).
        self.queued.load(Ordering::Relaxed) != 0
    }

    /// Wakes up to `n` waiters, oldest first, and returns how many it woke. The caller has
    /// published its change before this.
    #[cold]
    #[inline(never)]
    pub(crate) fn wake(&self, n: u32) -> u32 {
        let mut left = n;
        while left > 0 {
            let Some(node) = self.pop_front() else {
                break;
            };
            // Release: the woken thread's Acquire load of the state (`renew`, `cancel`) then sees
            // what the caller published. Relaxed on failure: the node is `LEFT`, nothing to see.
            if node
                .state
                .compare_exchange(WAITING, NOTIFIED, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                node.sleeper.wake(&node.state, 1);
                left -= 1;
            }
            // A node that its thread left is skipped: it does not count as a wake.
        }
        n - left
    }

    /// Wakes every queued waiter. For disconnects: the caller has stored its `closed` flag
    /// (SeqCst) before this; a waiter either was queued before the queue was drained here (and
    /// is woken) or queues after, under the same lock, and then its re-check sees the flag.
    pub(crate) fn wake_all(&self) {
        self.wake(u32::MAX);
    }

    fn pop_front(&self) -> Option<Arc<Node>> {
        let mut q = self.lock();
        let node = q.pop_front();
        // Relaxed: a length; written under the lock, read by notifiers as in `has_waiters`.
        self.queued.store(q.len() as u32, Ordering::Relaxed);
        node
    }
}

impl Parking for WaitQueue {
    type Ticket = QueueTicket;

    /// Registers the caller (enqueues a node of its own) and issues the heavy barrier. The
    /// caller must then re-check its condition, and either [`cancel`](Parking::cancel) or
    /// [`sleep`](Parking::sleep) and then [`renew`](Parking::renew).
    fn prepare(&self) -> QueueTicket {
        let node = Arc::new(Node::default());
        {
            let mut q = self.lock();
            q.push_back(Arc::clone(&node));
            // Relaxed: ordered before the re-check by the heavy barrier below (step (a)).
            self.queued.store(q.len() as u32, Ordering::Relaxed);
        }
        super::heavy_barrier();
        QueueTicket(node)
    }

    /// Sleeps until a notifier claims the node, or `timeout` passes (or spuriously). Returns
    /// whether the sleep ended by its timeout.
    fn sleep(&self, ticket: &QueueTicket, timeout: Option<Duration>) -> bool {
        ticket.0.sleeper.wait(&ticket.0.state, WAITING, timeout)
    }

    /// After a sleep: still queued (a timeout, or a spurious return) gives the ticket back, to
    /// sleep on again after the caller's re-check; claimed by a notifier gives `None`, and the
    /// caller must re-check and [`prepare`](Parking::prepare) again before another sleep.
    fn renew(&self, ticket: QueueTicket) -> Option<QueueTicket> {
        // Acquire: pairs with the notifier's Release claim, so the re-check sees its item.
        match ticket.0.state.load(Ordering::Acquire) {
            WAITING => Some(ticket),
            _ => None,
        }
    }

    /// Withdraws a registration the caller leaves with (its attempt succeeded, or it gives up).
    /// If a notifier claimed the node meanwhile, its wake is passed on to the next waiter.
    fn cancel(&self, ticket: QueueTicket) {
        // Acquire on failure: pairs with the Release claim (the wake passed on is for an item
        // published before it). Relaxed on success: only this thread acts on `LEFT`, and the
        // lock below orders its removal.
        match ticket
            .0
            .state
            .compare_exchange(WAITING, LEFT, Ordering::Relaxed, Ordering::Acquire)
        {
            Ok(_) => {
                let mut q = self.lock();
                if let Some(i) = q.iter().position(|n| Arc::ptr_eq(n, &ticket.0)) {
                    q.remove(i);
                }
                // Relaxed: as in `pop_front`.
                self.queued.store(q.len() as u32, Ordering::Relaxed);
            }
            Err(_) => {
                self.wake(1);
            }
        }
    }
}
