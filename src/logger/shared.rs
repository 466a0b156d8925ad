//! What a logger's handle, its producers and its backend thread share.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::sink::Sink;
use super::staging::{Home, Producer};

/// The producers known to a logger.
pub(super) struct Registry {
    /// One per (thread, logger) pair that has logged and not yet been drained after exiting.
    pub(super) producers: Vec<Arc<Producer>>,
    /// Set by the final drain: no producer registers after it.
    pub(super) closed: bool,
}

/// What wakes the backend.
pub(super) struct Wake {
    /// A producer, `flush` or `shutdown` asked for a round.
    pub(super) pending: bool,
    /// `shutdown` was called.
    pub(super) stopping: bool,
    /// The number of the latest flush request.
    pub(super) flush_req: u64,
}

/// What the backend has done, for callers that wait on it.
pub(super) struct Done {
    /// Every flush request up to this number is complete.
    pub(super) flushed: u64,
    /// The backend has exited.
    pub(super) stopped: bool,
}

/// State shared by the logger handle, its producers and its backend thread.
pub(super) struct Shared {
    /// Distinguishes loggers in the thread-local registrations.
    pub(super) id: u64,
    /// The level filter, a `LevelFilter as usize`.
    pub(super) level: AtomicUsize,
    /// Blocking (true) or drop mode.
    pub(super) blocking: bool,
    /// Per-thread buffer capacity in bytes.
    pub(super) capacity: usize,
    /// The backend's timer.
    pub(super) interval: Duration,
    /// Bound on the waits of `flush` and `shutdown`.
    pub(super) flush_timeout: Duration,
    /// The registered producers.
    pub(super) registry: Mutex<Registry>,
    /// Buffer for lines logged where the thread-local is unusable (re-entrant logging, or a
    /// thread-local destructor).
    pub(super) orphan: Arc<Producer>,
    /// Wake-up state of the backend and its condition variable.
    pub(super) wake: Mutex<Wake>,
    /// Signalled to wake the backend.
    pub(super) wake_cv: Condvar,
    /// Progress of the backend and its condition variable.
    pub(super) done: Mutex<Done>,
    /// Signalled when a round completes or the backend exits.
    pub(super) done_cv: Condvar,
    /// The backend has exited: write synchronously.
    pub(super) stopped: AtomicBool,
    /// The sink; the backend holds it for a whole round.
    pub(super) sink: Mutex<Sink>,
    /// See [`LoggerStats::dropped`].
    pub(super) dropped: AtomicU64,
    /// See [`LoggerStats::sink_errors`].
    pub(super) sink_errors: AtomicU64,
    /// This logger is the global `log` logger: `set_level` also sets `log::max_level`.
    pub(super) global: AtomicBool,
}

impl Shared {
    /// Asks the backend for a round.
    pub(super) fn wake_backend(&self) {
        let mut w = self.wake.lock();
        w.pending = true;
        self.wake_cv.notify_one();
    }

    /// Adds a producer; `false` once the logger has shut down.
    pub(super) fn register(&self, producer: &Arc<Producer>) -> bool {
        let mut r = self.registry.lock();
        if !r.closed {
            r.producers.push(producer.clone());
        }
        !r.closed
    }

    /// Counts a sink error.
    pub(super) fn sink_error(&self) {
        self.sink_errors.fetch_add(1, Ordering::Relaxed);
    }
}

impl Home for Shared {
    fn id(&self) -> u64 {
        self.id
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn blocking(&self) -> bool {
        self.blocking
    }

    fn wake_backend(&self) {
        Shared::wake_backend(self)
    }

    fn register(&self, producer: &Arc<Producer>) -> bool {
        Shared::register(self, producer)
    }
}
