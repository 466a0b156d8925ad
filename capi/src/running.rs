//! What a started server and a started client share: the running core object until it is
//! joined, its shutdown trigger, and which IO threads are its own (so that a call that would
//! wait for them is refused there instead of deadlocking).

use std::cell::Cell;
use std::ffi::c_int;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kingpin::{Shutdown, Stats};
use parking_lot::{Condvar, Mutex};

use crate::stats::kp_stats;
use crate::status::{fail, KP_ERR_INVALID_ARGUMENT, KP_ERR_IO, KP_ERR_STOPPED, KP_ERR_WRONG_THREAD, KP_OK};

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// The server or client whose IO thread this is (0: none).
    static LOOP_OF: Cell<usize> = const { Cell::new(0) };
}

/// A server or client about to start, as its IO threads know it: its id, and how many of its
/// loops have not ended yet (each thread's handler says so when it is dropped, at the very end
/// of its loop).
pub(crate) struct Owner {
    id: usize,
    loops_left: Mutex<usize>,
    ended: Condvar,
}

impl Owner {
    /// The owner of `threads` IO loops, with a fresh id.
    pub(crate) fn new(threads: usize) -> Arc<Self> {
        Arc::new(Owner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            loops_left: Mutex::new(threads),
            ended: Condvar::new(),
        })
    }

    /// Marks the calling IO thread as one of this owner's.
    pub(crate) fn mark_loop_thread(&self) {
        LOOP_OF.with(|l| l.set(self.id));
    }

    /// One loop has ended (called on its thread, by its handler's drop).
    pub(crate) fn loop_ended(&self) {
        let mut left = self.loops_left.lock();
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.ended.notify_all();
        }
    }

    fn wait_loops_ended(&self) {
        let mut left = self.loops_left.lock();
        while *left > 0 {
            self.ended.wait(&mut left);
        }
    }
}

/// A started server or client: `T` is the core's handle, joined once.
pub(crate) struct Running<T> {
    owner: Arc<Owner>,
    shutdown: Shutdown,
    handle: Mutex<Option<T>>,
    /// The counters as the loops left them, once every loop has ended.
    final_stats: Mutex<Option<Stats>>,
    /// The result of the join, once done, and its signal to other waiters.
    joined: Mutex<Option<Result<(), String>>>,
    joined_cv: Condvar,
}

impl<T> Running<T> {
    pub(crate) fn new(owner: Arc<Owner>, shutdown: Shutdown, handle: T) -> Self {
        Running {
            owner,
            shutdown,
            handle: Mutex::new(Some(handle)),
            final_stats: Mutex::new(None),
            joined: Mutex::new(None),
            joined_cv: Condvar::new(),
        }
    }

    /// The core's handle while it runs (`None` once joined).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.handle.lock().as_ref().map(f)
    }

    /// Writes the counters `get` reads off the running core object into `out`.
    pub(crate) fn stats(&self, function: &str, out: Option<&mut kp_stats>, get: impl FnOnce(&T) -> Stats) -> c_int {
        let Some(out) = out else {
            return fail(KP_ERR_INVALID_ARGUMENT, format!("{function}: stats is NULL"));
        };
        let final_stats = *self.final_stats.lock();
        match final_stats.or_else(|| self.with(get)) {
            Some(stats) => {
                *out = stats.into();
                KP_OK
            }
            None => fail(KP_ERR_STOPPED, format!("{function}: it has stopped")),
        }
    }

    pub(crate) fn shutdown(&self) {
        self.shutdown.shutdown();
    }

    pub(crate) fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Refuses to run on one of its own IO threads (in a callback), where waiting for the
    /// threads would wait for itself.
    pub(crate) fn off_own_threads(&self, function: &str) -> Result<(), c_int> {
        if LOOP_OF.with(Cell::get) == self.owner.id {
            return Err(fail(
                KP_ERR_WRONG_THREAD,
                format!("{function}: called from one of its own IO threads (in a callback), where it would wait for itself; shut it down there instead, and wait or free from another thread"),
            ));
        }
        Ok(())
    }

    /// Waits until every IO thread has exited (after a shutdown, from anywhere), with `join`.
    /// Refused on one of its own IO threads, which would wait for itself.
    pub(crate) fn wait(
        &self,
        function: &str,
        stats: impl Fn(&T) -> Stats,
        join: impl FnOnce(T) -> io::Result<()>,
    ) -> c_int {
        if let Err(code) = self.off_own_threads(function) {
            return code;
        }
        // The handle stays in place (for stats) until every loop has ended; joining the
        // threads is then a formality.
        self.owner.wait_loops_ended();
        let taken = {
            let mut handle = self.handle.lock();
            if let Some(h) = handle.as_ref() {
                *self.final_stats.lock() = Some(stats(h));
            }
            handle.take()
        };
        if let Some(handle) = taken {
            let result = join(handle).map_err(|e| e.to_string());
            *self.joined.lock() = Some(result);
            self.joined_cv.notify_all();
        }
        // Another thread may be joining right now: wait for its result.
        let mut joined = self.joined.lock();
        while joined.is_none() {
            self.joined_cv.wait(&mut joined);
        }
        match joined.clone() {
            Some(Err(e)) => fail(KP_ERR_IO, format!("{function}: {e}")),
            _ => KP_OK,
        }
    }
}

/// The body of `kp_server_free` and `kp_client_free`: refuse on an own IO thread; else shut
/// down, join, and free the box at `owner`. Threads blocked in a wait meanwhile hold the
/// `Running` through their own `Arc`, so they return normally after the box is gone.
///
/// # Safety
/// `owner` is a live pointer from `Box::into_raw`, given up by the caller when this succeeds.
pub(crate) unsafe fn free<S, T>(
    owner: *mut S,
    function: &str,
    running: impl Fn(&S) -> &Arc<Running<T>>,
    stats: impl Fn(&T) -> Stats,
    join: impl FnOnce(T) -> io::Result<()>,
) -> c_int {
    // SAFETY: live by the caller's contract.
    let r = Arc::clone(running(unsafe { &*owner }));
    if let Err(code) = r.off_own_threads(function) {
        return code;
    }
    r.shutdown();
    let status = r.wait(function, stats, join);
    // SAFETY: from `Box::into_raw`; its threads have exited, and the caller gives it up.
    drop(unsafe { Box::from_raw(owner) });
    status
}
