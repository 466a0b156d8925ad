//! The mailbox of one IO loop: commands from other threads, woken through the loop's eventfd.
//!
//! Producers push under a short lock and wake the loop only when the queue was empty, so a
//! burst of commands costs one eventfd write. The loop swaps the whole queue out under the lock
//! and runs the commands outside it (muduo's `doPendingFunctors`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use crate::event_loop::LoopCtx;
use crate::waker::Waker;
use crate::{ConnId, Error};

/// A closure run on a loop's thread with its handler and context.
pub(crate) type Task<H> = Box<dyn FnOnce(&mut H, &mut LoopCtx<'_, H>) + Send>;

/// What another thread can ask a loop to do.
pub(crate) enum Command<H> {
    /// Append bytes to a connection's output.
    Send(ConnId, Vec<u8>),
    /// Close a connection after its pending output.
    Close(ConnId),
    /// Shut a connection's write side after its pending output.
    ShutdownWrite(ConnId),
    /// Run a closure on the loop.
    Run(Task<H>),
    /// Stop accepting, drain and close every connection by the deadline, then exit.
    Shutdown(Instant),
}

/// The non-generic face of a mailbox, used by [`crate::ConnHandle`] and by other loops.
pub(crate) trait ConnSink: Send + Sync {
    /// Queues a command for one connection.
    fn push_conn(&self, cmd: ConnCommand) -> Result<(), Error>;
    /// Wakes the loop without a command (e.g. to hand it the accept mutex).
    fn wake(&self);
}

/// The connection commands a [`crate::ConnHandle`] can send.
pub(crate) enum ConnCommand {
    Send(ConnId, Vec<u8>),
    Close(ConnId),
    ShutdownWrite(ConnId),
}

/// A loop's command queue plus the eventfd that wakes it.
pub(crate) struct Mailbox<H> {
    queue: Mutex<Vec<Command<H>>>,
    closed: AtomicBool,
    waker: Waker,
}

impl<H> Mailbox<H> {
    pub(crate) fn new(waker: Waker) -> Self {
        Mailbox { queue: Mutex::new(Vec::new()), closed: AtomicBool::new(false), waker }
    }

    pub(crate) fn waker(&self) -> &Waker {
        &self.waker
    }

    /// Queues a command and wakes the loop if it may be asleep. Any thread.
    ///
    /// # Errors
    /// [`Error::LoopStopped`] once the loop has exited; the command is dropped.
    pub(crate) fn push(&self, cmd: Command<H>) -> Result<(), Error> {
        let was_empty = {
            let mut q = self.queue.lock();
            if self.closed.load(Ordering::Relaxed) {
                return Err(Error::LoopStopped);
            }
            q.push(cmd);
            q.len() == 1
        };
        if was_empty {
            self.waker.wake();
        }
        Ok(())
    }

    /// Swaps the queued commands into `out` (which must be empty). Loop thread only.
    pub(crate) fn take(&self, out: &mut Vec<Command<H>>) {
        debug_assert!(out.is_empty());
        std::mem::swap(&mut *self.queue.lock(), out);
    }

    /// Refuses further commands and returns what was still queued. Loop thread, at exit.
    pub(crate) fn close(&self) -> Vec<Command<H>> {
        let mut q = self.queue.lock();
        self.closed.store(true, Ordering::Relaxed);
        std::mem::take(&mut *q)
    }
}

impl<H: 'static> ConnSink for Mailbox<H> {
    fn push_conn(&self, cmd: ConnCommand) -> Result<(), Error> {
        self.push(match cmd {
            ConnCommand::Send(id, data) => Command::Send(id, data),
            ConnCommand::Close(id) => Command::Close(id),
            ConnCommand::ShutdownWrite(id) => Command::ShutdownWrite(id),
        })
    }

    fn wake(&self) {
        self.waker.wake();
    }
}
