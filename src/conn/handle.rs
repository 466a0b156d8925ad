//! [`ConnHandle`]: reaches one connection from any thread, through its loop's mailbox.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::inbox::{ConnCommand, Inbox};
use crate::base::error::Error;
use crate::base::slab::ConnId;

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
///     type ConnState = ();
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
    inbox: Arc<dyn Inbox>,
}

impl ConnHandle {
    pub(crate) fn new(id: ConnId, loop_index: usize, shared: Arc<ConnShared>, inbox: Arc<dyn Inbox>) -> Self {
        ConnHandle { id, loop_index, shared, inbox }
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
        self.inbox.push_conn(cmd)
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
