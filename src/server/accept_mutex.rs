//! [`AcceptShared`]: what the IO threads of a server share to take turns at the listening
//! socket — the listener, nginx's accept mutex, and a spare descriptor for running out of them.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::lock_api::ArcMutexGuard;
use parking_lot::{Mutex, RawMutex};

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

/// Shared by all IO threads of a server: the listener, its mutex, and the loops.
pub(crate) struct AcceptShared {
    listener: OwnedFd,
    lock: Arc<Mutex<AcceptState>>,
    pub(crate) peers: Peers,
    /// The listener was stopped (shutdown).
    stopped: AtomicBool,
}

impl AcceptShared {
    pub(crate) fn new(listener: OwnedFd, peers: Peers) -> Self {
        let state = AcceptState { spare: File::open("/dev/null").ok(), paused_until: None };
        AcceptShared { listener, lock: Arc::new(Mutex::new(state)), peers, stopped: AtomicBool::new(false) }
    }

    /// The listening socket.
    pub(crate) fn listener(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Takes the accept mutex if it is free; never blocks.
    pub(crate) fn try_lock(&self) -> Option<AcceptGuard> {
        self.lock.try_lock_arc()
    }

    /// Whether shutdown stopped the listener.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Stops the listener for good (once, whoever calls first): connections still queued are
    /// reset and new ones refused at once instead of waiting for a server that is going away.
    pub(crate) fn stop(&self) {
        if !self.stopped.swap(true, Ordering::AcqRel) {
            if let Err(e) = sys::stop_listening(self.listener.as_fd()) {
                log::debug!(target: "kingpin::accept", "stopping the listener: {e}");
            }
        }
    }
}
