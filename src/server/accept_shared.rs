//! [`AcceptShared`]: what the IO threads of a server share to accept connections — the
//! listening socket (one per thread with `SO_REUSEPORT`), nginx's accept mutex with a spare
//! descriptor for running out of them, and the loops' counters.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::lock_api::ArcMutexGuard;
use parking_lot::{Mutex, RawMutex};

use super::strategy::AcceptStrategy;
use crate::reactor::balance::Peers;
use crate::sys;

/// What the accept mutex guards.
pub(crate) struct AcceptState {
    /// A spare descriptor, closed to make room when the process runs out of them.
    pub(crate) spare: Option<File>,
    /// Accepting pauses until then after a resource error.
    pub(crate) paused_until: Option<Instant>,
}

/// The accept mutex, held by one thread for one turn.
pub(crate) type AcceptGuard = ArcMutexGuard<RawMutex, AcceptState>;

impl AcceptState {
    pub(crate) fn new() -> Self {
        AcceptState { spare: File::open("/dev/null").ok(), paused_until: None }
    }
}

/// Shared by all IO threads of a server: the listener(s), the accept mutex, and the loops.
pub(crate) struct AcceptShared {
    strategy: AcceptStrategy,
    /// One listener, or one per loop (`ReusePort`).
    listeners: Vec<OwnedFd>,
    lock: Arc<Mutex<AcceptState>>,
    pub(crate) peers: Peers,
    /// The listener was stopped (shutdown).
    stopped: AtomicBool,
    /// The listeners were handed to a successor: shutdown leaves them listening.
    handed_over: AtomicBool,
}

impl AcceptShared {
    /// `listeners` holds one socket, or one per loop for `ReusePort`.
    pub(crate) fn new(strategy: AcceptStrategy, listeners: Vec<OwnedFd>, peers: Peers) -> Self {
        debug_assert!(!listeners.is_empty());
        AcceptShared {
            strategy,
            listeners,
            lock: Arc::new(Mutex::new(AcceptState::new())),
            peers,
            stopped: AtomicBool::new(false),
            handed_over: AtomicBool::new(false),
        }
    }

    pub(crate) fn strategy(&self) -> AcceptStrategy {
        self.strategy
    }

    /// The listening socket loop `index` watches.
    pub(crate) fn listener(&self, index: usize) -> BorrowedFd<'_> {
        self.listeners[index % self.listeners.len()].as_fd()
    }

    /// Takes the accept mutex if it is free; never blocks.
    pub(crate) fn try_lock(&self) -> Option<AcceptGuard> {
        self.lock.try_lock_arc()
    }

    /// Whether shutdown stopped the listener.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// The listening descriptors (to hand over).
    pub(crate) fn listener_fds(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.listeners.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// Whether the listeners were handed to a successor.
    pub(crate) fn is_handed_over(&self) -> bool {
        self.handed_over.load(Ordering::Acquire)
    }

    /// The listeners are shared with another process (a successor accepts on them now, or
    /// they were inherited from systemd or a predecessor): the coming shutdown must leave them
    /// listening (their queue is the other's), only closing this process's descriptors.
    pub(crate) fn hand_over(&self) {
        self.handed_over.store(true, Ordering::Release);
    }

    /// Stops the listeners for good (once, whoever calls first): connections still queued are
    /// reset and new ones refused at once instead of waiting for a server that is going away —
    /// unless they were handed over, when they stay listening for the successor.
    pub(crate) fn stop(&self) {
        if !self.stopped.swap(true, Ordering::AcqRel) && !self.handed_over.load(Ordering::Acquire) {
            for l in &self.listeners {
                if let Err(e) = sys::stop_listening(l.as_fd()) {
                    log::debug!(target: "kingpin::accept", "stopping a listener: {e}");
                }
            }
        }
    }
}
