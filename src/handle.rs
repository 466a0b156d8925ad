//! Handles that reach a connection or a loop from any thread, through the loop's mailbox.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::event_loop::LoopCtx;
use crate::mailbox::{Command, ConnCommand, ConnSink, Mailbox};
use crate::{ConnId, Error};

/// State a connection shares with its handles: only whether it has closed.
#[derive(Debug, Default)]
pub(crate) struct ConnShared {
    closed: AtomicBool,
}

impl ConnShared {
    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A cloneable, thread-safe handle to one connection, from [`crate::Conn::handle`].
///
/// Its operations are queued to the connection's IO loop and carried out there, in the order
/// they were made from one thread. Once the connection has closed they fail with
/// [`Error::Closed`]; a command that races with the close is dropped by the loop, which checks
/// the [`ConnId`]'s generation, so a handle can never reach a connection that reused the slot.
///
/// # Examples
///
/// ```no_run
/// use kingpin::{Conn, ConnHandle, IoHandler};
///
/// struct Greeter;
/// impl IoHandler for Greeter {
///     fn on_connect(&mut self, conn: &mut Conn<'_>) {
///         let handle: ConnHandle = conn.handle();
///         std::thread::spawn(move || {
///             // From any thread: queued to the connection's loop.
///             let _ = handle.send(b"hello from another thread\n");
///         });
///     }
/// }
/// ```
#[derive(Clone)]
pub struct ConnHandle {
    id: ConnId,
    loop_index: usize,
    shared: Arc<ConnShared>,
    sink: Arc<dyn ConnSink>,
}

impl ConnHandle {
    pub(crate) fn new(id: ConnId, loop_index: usize, shared: Arc<ConnShared>, sink: Arc<dyn ConnSink>) -> Self {
        ConnHandle { id, loop_index, shared, sink }
    }

    /// The connection's id within its loop.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Index of the IO loop that owns the connection.
    pub fn loop_index(&self) -> usize {
        self.loop_index
    }

    /// Whether the connection is known to have closed. Any thread.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    fn push(&self, cmd: ConnCommand) -> Result<(), Error> {
        if self.shared.is_closed() {
            return Err(Error::Closed);
        }
        self.sink.push_conn(cmd)
    }

    /// Queues `data` to be sent on the connection. Any thread.
    ///
    /// # Errors
    /// [`Error::Closed`] if the connection has closed, [`Error::LoopStopped`] if its loop has
    /// exited. `Ok` means queued: it is written unless the connection closes first.
    pub fn send(&self, data: &[u8]) -> Result<(), Error> {
        self.send_vec(data.to_vec())
    }

    /// Like [`ConnHandle::send`], taking ownership of the bytes (no copy).
    ///
    /// # Errors
    /// As [`ConnHandle::send`].
    pub fn send_vec(&self, data: Vec<u8>) -> Result<(), Error> {
        self.push(ConnCommand::Send(self.id, data))
    }

    /// Closes the connection once its pending output is written. Any thread.
    ///
    /// # Errors
    /// As [`ConnHandle::send`].
    pub fn close(&self) -> Result<(), Error> {
        self.push(ConnCommand::Close(self.id))
    }

    /// Shuts the write side once pending output is written (half-close). Any thread.
    ///
    /// # Errors
    /// As [`ConnHandle::send`].
    pub fn shutdown_write(&self) -> Result<(), Error> {
        self.push(ConnCommand::ShutdownWrite(self.id))
    }
}

impl fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnHandle")
            .field("id", &self.id)
            .field("loop", &self.loop_index)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A cloneable, thread-safe handle to one IO loop: runs closures on it.
///
/// The closure gets the loop's handler `H` and a [`LoopCtx`], through which it can reach the
/// loop's connections by [`ConnId`], set timers and so on. Closures run in the order they were
/// queued from one thread.
pub struct LoopHandle<H> {
    index: usize,
    mailbox: Arc<Mailbox<H>>,
}

impl<H> Clone for LoopHandle<H> {
    fn clone(&self) -> Self {
        LoopHandle { index: self.index, mailbox: self.mailbox.clone() }
    }
}

impl<H> fmt::Debug for LoopHandle<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle").field("index", &self.index).finish()
    }
}

impl<H: 'static> LoopHandle<H> {
    pub(crate) fn new(index: usize, mailbox: Arc<Mailbox<H>>) -> Self {
        LoopHandle { index, mailbox }
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
        self.mailbox.push(Command::Run(Box::new(f)))
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

    /// Queues bytes for connection `id` of this loop (like [`ConnHandle::send`], for code that
    /// keeps ids rather than handles). A stale `id` is dropped by the loop.
    ///
    /// # Errors
    /// [`Error::LoopStopped`] if the loop has exited.
    pub fn send(&self, id: ConnId, data: Vec<u8>) -> Result<(), Error> {
        self.mailbox.push(Command::Send(id, data))
    }

    /// Closes connection `id` of this loop after its pending output. A stale `id` is ignored.
    ///
    /// # Errors
    /// [`Error::LoopStopped`] if the loop has exited.
    pub fn close(&self, id: ConnId) -> Result<(), Error> {
        self.mailbox.push(Command::Close(id))
    }

    pub(crate) fn mailbox(&self) -> &Arc<Mailbox<H>> {
        &self.mailbox
    }
}
