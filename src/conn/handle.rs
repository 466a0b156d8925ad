//! [`ConnHandle`]: reaches one connection from any thread, through its loop's mailbox.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::inbox::{ConnCommand, Inbox, Via};
use crate::base::error::Error;
use crate::base::slab::ConnId;

/// State a connection shares with its handles: whether it has closed, and how much output
/// waits for it — sent by handles and still in the loop's mailbox, and unsent in its output
/// buffer (as the loop last published it).
#[derive(Debug)]
pub(crate) struct ConnShared {
    closed: AtomicBool,
    in_mailbox: AtomicUsize,
    unsent: AtomicUsize,
    /// Handles' sends are refused while this much is pending (the high water mark).
    limit: usize,
}

impl ConnShared {
    pub(crate) fn new(limit: usize) -> Self {
        ConnShared {
            closed: AtomicBool::new(false),
            in_mailbox: AtomicUsize::new(0),
            unsent: AtomicUsize::new(0),
            limit,
        }
    }

    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The loop publishes the connection's unsent output.
    pub(crate) fn set_unsent(&self, bytes: usize) {
        self.unsent.store(bytes, Ordering::Relaxed);
    }

    /// The loop took a send of `bytes` out of its mailbox.
    pub(crate) fn taken(&self, bytes: usize) {
        self.in_mailbox.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn pending(&self) -> usize {
        self.in_mailbox.load(Ordering::Relaxed) + self.unsent.load(Ordering::Relaxed)
    }
}

/// A cloneable, thread-safe handle to one connection, from [`crate::Conn::handle`].
///
/// Its operations are queued to the connection's IO loop and carried out there, in the order
/// they were made from one thread. Once the connection has closed they fail with
/// [`Error::Closed`]. Sends respect the connection's backpressure: while the output waiting
/// for it (in the loop's mailbox and unsent in its buffer) is at the high water mark
/// ([`crate::ServerConfig::write_water_marks`]), they are refused with [`Error::Full`], so a
/// peer that does not read cannot make other threads queue without bound. A command that races
/// with the close is dropped by the loop, which checks the [`ConnId`]'s generation, so a handle
/// can never reach a connection that reused the slot.
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

    /// Bytes waiting to be written to the connection: sent by handles and not yet taken by
    /// its loop, plus its unsent output as of the loop's last turn. Any thread.
    pub fn pending(&self) -> usize {
        self.shared.pending()
    }

    /// Whether a send would be taken now: the connection is open and its pending output is
    /// under the high water mark. When it is not, the loop calls
    /// [`crate::IoHandler::on_low_water`] once the output has drained. Any thread.
    pub fn is_writable(&self) -> bool {
        !self.shared.is_closed() && self.shared.pending() < self.shared.limit
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
    /// [`Error::Full`] if the connection's pending output is at the high water mark (its peer
    /// is not reading fast enough: retry after it drains, drop the message, or close),
    /// [`Error::Closed`] if the connection has closed, [`Error::LoopStopped`] if its loop has
    /// exited. Nothing is queued on an error; `Ok` means queued: it is written unless the
    /// connection closes first.
    pub fn send(&self, data: &[u8]) -> Result<(), Error> {
        self.check_room()?;
        self.queue(data.to_vec())
    }

    /// Like [`ConnHandle::send`], taking ownership of the bytes (no copy).
    ///
    /// # Errors
    /// As [`ConnHandle::send`].
    pub fn send_vec(&self, data: Vec<u8>) -> Result<(), Error> {
        self.check_room()?;
        self.queue(data)
    }

    fn check_room(&self) -> Result<(), Error> {
        if self.shared.is_closed() {
            Err(Error::Closed)
        } else if self.shared.pending() >= self.shared.limit {
            Err(Error::Full)
        } else {
            Ok(())
        }
    }

    fn queue(&self, data: Vec<u8>) -> Result<(), Error> {
        let len = data.len();
        self.shared.in_mailbox.fetch_add(len, Ordering::Relaxed);
        let pushed = self.push(ConnCommand::Send(self.id, data, Via::Handle));
        if pushed.is_err() {
            self.shared.taken(len);
        }
        pushed
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
            .field("pending", &self.pending())
            .finish()
    }
}
