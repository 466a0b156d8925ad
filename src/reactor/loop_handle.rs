//! [`LoopHandle`]: runs closures on one IO loop from any thread, through its mailbox.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::handler::{IoHandler, LoopCtx, Remote};
use crate::base::error::Error;
use crate::base::slab::ConnId;
use crate::conn::inbox::ConnCommand;

/// A cloneable, thread-safe handle to one IO loop: runs closures on it.
///
/// The closure gets the loop's handler `H` and a [`LoopCtx`], through which it can reach the
/// loop's connections by [`ConnId`], set timers and so on. Closures run in the order they were
/// queued from one thread.
pub struct LoopHandle<H: IoHandler> {
    index: usize,
    remote: Arc<dyn Remote<H>>,
}

impl<H: IoHandler> Clone for LoopHandle<H> {
    fn clone(&self) -> Self {
        LoopHandle { index: self.index, remote: self.remote.clone() }
    }
}

impl<H: IoHandler> fmt::Debug for LoopHandle<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle").field("index", &self.index).finish()
    }
}

impl<H: IoHandler> LoopHandle<H> {
    pub(crate) fn new(index: usize, remote: Arc<dyn Remote<H>>) -> Self {
        LoopHandle { index, remote }
    }

    /// Index of the loop (0-based; one per IO thread).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Runs `f` on the loop's thread. Any thread, including the loop's own (it then runs on a
    /// later turn, never re-entrantly).
    ///
    /// # Errors
    /// [`Error::LoopStopped`] if the loop has exited; `f` is dropped unrun.
    pub fn run<F>(&self, f: F) -> Result<(), Error>
    where
        F: FnOnce(&mut H, &mut LoopCtx<'_, H>) + Send + 'static,
    {
        self.remote.run(Box::new(f))
    }

    /// Runs `f` on the loop's thread after `delay`.
    ///
    /// # Errors
    /// As [`LoopHandle::run`].
    pub fn run_after<F>(&self, delay: Duration, f: F) -> Result<(), Error>
    where
        F: FnOnce(&mut H, &mut LoopCtx<'_, H>) + Send + 'static,
    {
        self.run(move |_, ctx| {
            ctx.run_after(delay, f);
        })
    }

    /// Queues bytes for connection `id` of this loop (like [`crate::ConnHandle::send`], for
    /// code that keeps ids rather than handles). A stale `id` is dropped by the loop.
    ///
    /// # Errors
    /// [`Error::LoopStopped`] if the loop has exited.
    pub fn send(&self, id: ConnId, data: Vec<u8>) -> Result<(), Error> {
        self.remote.push_conn(ConnCommand::Send(id, data))
    }

    /// Closes connection `id` of this loop after its pending output. A stale `id` is ignored.
    ///
    /// # Errors
    /// [`Error::LoopStopped`] if the loop has exited.
    pub fn close(&self, id: ConnId) -> Result<(), Error> {
        self.remote.push_conn(ConnCommand::Close(id))
    }

    /// Asks the loop to shut down by `deadline` (see [`crate::Shutdown`]).
    pub(crate) fn shutdown(&self, deadline: Instant) -> Result<(), Error> {
        self.remote.shutdown(deadline)
    }
}

impl<H: IoHandler> LoopCtx<'_, H> {
    /// A handle to this loop, for other threads.
    pub fn handle(&self) -> LoopHandle<H> {
        LoopHandle::new(self.core.env.index, self.remote.clone())
    }
}
