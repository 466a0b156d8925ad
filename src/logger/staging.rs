//! Per-thread staging buffers: the producer side of the logger.
//!
//! Each thread that logs gets, per logger, a [`Producer`]: a byte buffer behind its own mutex,
//! registered with the logger so the backend can find it. Only the owning thread appends and
//! only the backend swaps the buffer out, so the lock is uncontended except for the instant of
//! a swap. The thread-local [`Local`] also keeps the timestamp cache; when the thread exits its
//! producers are marked dead and the backend drains and forgets them, so no line is lost.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::line::{self, Clock};

/// What a producer needs of the logger it belongs to.
pub(crate) trait Home {
    /// Distinguishes loggers in the thread-local registrations.
    fn id(&self) -> u64;
    /// Per-thread buffer capacity in bytes.
    fn capacity(&self) -> usize;
    /// Blocking (true) or drop mode.
    fn blocking(&self) -> bool;
    /// Asks the backend for a round.
    fn wake_backend(&self);
    /// Adds a producer; `false` once the logger has shut down.
    fn register(&self, producer: &Arc<Producer>) -> bool;
}

/// Bytes reserved past the capacity so the line that crosses it rarely reallocates.
const SLACK: usize = 4096;

/// The part of a producer that the mutex guards.
pub(crate) struct Staging {
    /// Formatted lines not yet taken by the backend.
    pub(crate) buf: Vec<u8>,
    /// Lines dropped since the backend last looked (drop mode).
    pub(crate) dropped: u64,
    /// Set by the backend's final drain: from then on the thread writes synchronously.
    pub(crate) closed: bool,
}

/// One thread's staging buffer for one logger.
pub(crate) struct Producer {
    /// The buffer and its counters.
    pub(crate) state: Mutex<Staging>,
    /// Signalled by the backend after a swap, for callers waiting in blocking mode.
    pub(crate) space: Condvar,
    /// The thread field of this thread's lines, e.g. `[tid 12 main] `.
    pub(crate) thread: Box<[u8]>,
    /// Set when the owning thread exits; the backend then drains and unregisters it.
    pub(crate) dead: AtomicBool,
}

impl Producer {
    /// A producer whose lines carry `thread` as their thread field.
    pub(crate) fn new(thread: Box<[u8]>) -> Arc<Producer> {
        Arc::new(Producer {
            state: Mutex::new(Staging { buf: Vec::new(), dropped: 0, closed: false }),
            space: Condvar::new(),
            thread,
            dead: AtomicBool::new(false),
        })
    }

    /// Appends one line, written into the buffer by `write`, honouring the capacity. Returns
    /// `false` (line not taken) only when the logger has shut down and the caller must write
    /// synchronously.
    pub(crate) fn append(&self, shared: &dyn Home, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        let mut st = self.state.lock();
        if st.closed {
            return false;
        }
        if st.buf.len() >= shared.capacity() {
            if !shared.blocking() {
                st.dropped += 1;
                return true;
            }
            if !self.wait_for_space(shared, &mut st) {
                return false;
            }
        }
        if st.buf.capacity() == 0 {
            st.buf.reserve_exact(shared.capacity() + SLACK);
        }
        let before = st.buf.len();
        write(&mut st.buf);
        let half = shared.capacity() / 2;
        if before < half && st.buf.len() >= half {
            drop(st);
            shared.wake_backend();
        }
        true
    }

    /// Blocking mode: waits until the backend has taken the buffer. `false` if it shut down.
    fn wait_for_space(&self, shared: &dyn Home, st: &mut MutexGuard<'_, Staging>) -> bool {
        while st.buf.len() >= shared.capacity() && !st.closed {
            MutexGuard::unlocked(st, || shared.wake_backend());
            self.space.wait_for(st, Duration::from_millis(50));
        }
        !st.closed
    }
}

/// One registration of this thread with a logger.
struct Entry {
    /// The logger's id.
    logger: u64,
    /// This thread's producer for it.
    producer: Arc<Producer>,
}

/// Everything a producer thread keeps for itself.
pub(crate) struct Local {
    /// The timestamp cache.
    clock: Clock,
    /// One entry per logger this thread has logged to.
    entries: Vec<Entry>,
}

impl Local {
    /// Appends `record` to this thread's buffer for `shared`, registering a producer on first
    /// use. Returns `false` when the logger has shut down and the caller must write itself.
    pub(crate) fn append(&mut self, shared: &dyn Home, record: &log::Record<'_>) -> bool {
        let i = match self.entries.iter().position(|e| e.logger == shared.id()) {
            Some(i) => i,
            None => match self.register(shared) {
                Some(i) => i,
                None => return false,
            },
        };
        let now = SystemTime::now();
        let (clock, producer) = (&mut self.clock, &self.entries[i].producer);
        producer.append(shared, |buf| {
            let (level, target) = (record.level(), record.target());
            line::write_line(buf, clock, now, level, &producer.thread, target, record.args())
        })
    }

    /// Registers a producer for this thread with `shared`; `None` once it accepts no more.
    fn register(&mut self, shared: &dyn Home) -> Option<usize> {
        self.entries.retain(|e| !e.producer.state.lock().closed);
        let current = std::thread::current();
        let producer = Producer::new(line::thread_field(crate::sys::gettid(), current.name()));
        if !shared.register(&producer) {
            return None;
        }
        self.entries.push(Entry { logger: shared.id(), producer });
        Some(self.entries.len() - 1)
    }
}

#[cfg(test)]
impl Local {
    /// This thread's producers for the logger `id`.
    pub(crate) fn producers_of(&self, id: u64) -> Vec<Arc<Producer>> {
        self.entries.iter().filter(|e| e.logger == id).map(|e| e.producer.clone()).collect()
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        for e in &self.entries {
            e.producer.dead.store(true, Ordering::Release);
        }
    }
}

thread_local! {
    /// This thread's producers and timestamp cache.
    pub(crate) static LOCAL: RefCell<Local> =
        RefCell::new(Local { clock: Clock::new(), entries: Vec::new() });
}
