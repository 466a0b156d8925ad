//! One TCP connection owned by an IO loop, and [`Conn`], the view of it given to callbacks.

use std::any::Any;
use std::fmt;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::handle::{ConnHandle, ConnShared};
use crate::idle::IdleState;
use crate::io_ctx::{ConnTimer, IoCtx};
use crate::timer::TimerId;
use crate::{sys, Buffer, CloseReason, ConnId, IdleTimeouts, Target};

/// The write side of a connection: its socket and pending output.
pub(crate) struct Outbound {
    pub(crate) fd: OwnedFd,
    /// Bytes the socket did not take yet. `None` while empty, so an idle connection holds no
    /// buffer.
    pub(crate) buf: Option<Buffer>,
    /// A send happened since the last `on_write_complete`.
    pub(crate) wrote: bool,
    /// A write failed; the connection must close.
    pub(crate) error: Option<io::Error>,
    /// Sends are refused (closing, write side shut, or torn down).
    pub(crate) refuse: bool,
    /// When a byte was last written.
    pub(crate) last_write: Instant,
    /// A [`Conn::send_file`] could not finish: watch `EPOLLOUT` even with nothing buffered, and
    /// call `on_write_complete` when the socket can take more.
    pub(crate) want_writable: bool,
}

impl Outbound {
    pub(crate) fn pending(&self) -> usize {
        self.buf.as_ref().map_or(0, Buffer::len)
    }

    /// Appends `data`, writing at once what the socket takes when nothing is queued before it.
    fn send(&mut self, io: &mut IoCtx, data: &[u8]) {
        if self.refuse || self.error.is_some() {
            log::trace!(target: "kingpin::conn", "send of {} bytes ignored: connection closing", data.len());
            return;
        }
        if data.is_empty() {
            return;
        }
        self.wrote = true;
        let mut written = 0;
        if self.pending() == 0 {
            match sys::send(self.fd.as_fd(), data) {
                Ok(n) => {
                    io.stats.add_out(n);
                    self.last_write = io.now;
                    written = n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
        if written < data.len() {
            self.buf.get_or_insert_with(|| io.pool.get()).extend_from_slice(&data[written..]);
        }
    }

    /// One `sendfile` of up to `max` bytes of `file` from `*offset`, when nothing is buffered
    /// ahead of it. See [`Conn::send_file`].
    fn send_file(&mut self, io: &mut IoCtx, file: &File, offset: &mut u64, max: usize) -> io::Result<usize> {
        if self.refuse || self.error.is_some() || max == 0 {
            return Ok(0);
        }
        if self.pending() > 0 {
            // Buffered bytes go first; `on_write_complete` follows once they have drained.
            self.wrote = true;
            return Ok(0);
        }
        match sys::sendfile(self.fd.as_fd(), file.as_fd(), offset, max) {
            Ok(n) => {
                if n > 0 {
                    io.stats.add_out(n);
                    self.last_write = io.now;
                }
                if n == max {
                    // The socket took it all: the next chunk may follow on the next pass.
                    self.wrote = true;
                } else {
                    // The socket is full (or the file ended): wait until it can take more.
                    self.want_writable = true;
                }
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.want_writable = true;
                Ok(0)
            }
            Err(e) if is_file_error(&e) => Err(e),
            Err(e) => {
                let copy = match e.raw_os_error() {
                    Some(code) => io::Error::from_raw_os_error(code),
                    None => io::Error::new(e.kind(), e.to_string()),
                };
                self.error = Some(e);
                Err(copy)
            }
        }
    }

    /// Writes queued output once (on `EPOLLOUT`). Returns whether the queue is now empty.
    pub(crate) fn flush(&mut self, io: &mut IoCtx) -> bool {
        let Some(buf) = self.buf.as_mut() else { return true };
        if !buf.is_empty() {
            match sys::send(self.fd.as_fd(), buf.as_slice()) {
                Ok(n) => {
                    io.stats.add_out(n);
                    self.last_write = io.now;
                    buf.advance(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.error = Some(e);
                    return false;
                }
            }
        }
        if buf.is_empty() {
            if let Some(b) = self.buf.take() {
                io.pool.put(b);
            }
            true
        } else {
            false
        }
    }
}

/// Whether a `sendfile` error concerns the file rather than the socket, so the connection can
/// go on (e.g. with buffered reads and [`Conn::send`]).
fn is_file_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::EIO | libc::EOVERFLOW | libc::ESPIPE)
    ) || e.kind() == io::ErrorKind::InvalidInput
}

/// A connection as its loop stores it in the slab.
pub(crate) struct Connection {
    pub(crate) id: ConnId,
    pub(crate) peer: SocketAddr,
    /// Bytes read and not yet consumed; `None` while empty.
    pub(crate) input: Option<Buffer>,
    pub(crate) out: Outbound,
    /// epoll events currently registered.
    pub(crate) registered: u32,
    /// Whether the loop reads from the socket (false after end of stream or a close request).
    pub(crate) reading: bool,
    /// Close once output is flushed, for this reason.
    pub(crate) close_after_flush: Option<CloseReason>,
    /// Close now, discarding output, for this reason.
    pub(crate) close_now: Option<CloseReason>,
    /// Shut the write side once output is flushed.
    pub(crate) shutdown_after_flush: bool,
    /// The write side was shut.
    pub(crate) write_shut: bool,
    /// `on_write_complete` is already queued.
    pub(crate) write_complete_queued: bool,
    /// `on_connect` ran, so `on_closed` is owed.
    pub(crate) connected: bool,
    /// `on_passively_closed` ran (it runs at most once).
    pub(crate) peer_gone: bool,
    pub(crate) context: Option<Box<dyn Any>>,
    pub(crate) shared: Option<Arc<ConnShared>>,
    /// The client target this connection came from.
    pub(crate) target: Option<Arc<Target>>,
    /// A client connect in progress: the attempt number.
    pub(crate) connecting: Option<u32>,
    /// The connect timeout of a connect in progress.
    pub(crate) connect_timer: Option<TimerId>,
    /// Idle timeouts and the activity they watch.
    pub(crate) idle: Option<IdleState>,
    /// The pending idle check.
    pub(crate) idle_timer: Option<TimerId>,
    /// Timers set with [`Conn::set_timer`] that may still be pending: cancelled at teardown,
    /// so a closed connection leaves none behind.
    pub(crate) user_timers: Vec<TimerId>,
    /// Output is above the high water mark (until it falls to the low one).
    pub(crate) above_high: bool,
    /// Reading paused by backpressure.
    pub(crate) paused: bool,
    /// Reading paused by the handler.
    pub(crate) user_paused: bool,
    /// Buffer capacity this connection holds, as counted in the loop's total.
    pub(crate) held: usize,
}

impl Connection {
    pub(crate) fn new(id: ConnId, fd: OwnedFd, peer: SocketAddr, now: Instant) -> Self {
        Connection {
            id,
            peer,
            input: None,
            out: Outbound {
                fd,
                buf: None,
                wrote: false,
                error: None,
                refuse: false,
                last_write: now,
                want_writable: false,
            },
            registered: 0,
            reading: true,
            close_after_flush: None,
            close_now: None,
            shutdown_after_flush: false,
            write_shut: false,
            write_complete_queued: false,
            connected: false,
            peer_gone: false,
            context: None,
            shared: None,
            target: None,
            connecting: None,
            connect_timer: None,
            idle: None,
            idle_timer: None,
            user_timers: Vec::new(),
            above_high: false,
            paused: false,
            user_paused: false,
            held: 0,
        }
    }

    /// Requests a close after flushing, unless a close is already on its way.
    pub(crate) fn request_close(&mut self, reason: CloseReason) {
        self.reading = false;
        self.out.refuse = true;
        if self.close_after_flush.is_none() {
            self.close_after_flush = Some(reason);
        }
    }
}

/// A connection as a callback sees it: its input, its output, its state and its handle.
///
/// Given to [`crate::IoHandler`] callbacks on the connection's own IO thread, for the length of
/// the call.
pub struct Conn<'a> {
    pub(crate) c: &'a mut Connection,
    pub(crate) io: &'a mut IoCtx,
}

impl<'a> Conn<'a> {
    pub(crate) fn new(c: &'a mut Connection, io: &'a mut IoCtx) -> Self {
        Conn { c, io }
    }

    /// The connection's id within its loop.
    pub fn id(&self) -> ConnId {
        self.c.id
    }

    /// Index of the IO loop (thread) that owns the connection.
    pub fn loop_index(&self) -> usize {
        self.io.index
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.c.peer
    }

    /// The client target this connection was made for (`None` on a server).
    pub fn target(&self) -> Option<&Target> {
        self.c.target.as_deref()
    }

    /// The local address of the socket.
    ///
    /// # Errors
    /// When `getsockname` fails (e.g. the socket was reset).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::local_addr(self.c.out.fd.as_fd())
    }

    /// How many bytes were read and not yet consumed (without taking a buffer from the pool).
    pub fn input_len(&self) -> usize {
        self.c.input.as_ref().map_or(0, Buffer::len)
    }

    /// The bytes read and not yet consumed. Consume with [`Buffer::advance`] and friends.
    pub fn input(&mut self) -> &mut Buffer {
        let pool = &mut self.io.pool;
        self.c.input.get_or_insert_with(|| pool.get())
    }

    /// Sends `data`: writes what the socket takes now and queues the rest, which goes out when
    /// the socket is writable — never blocking, never spinning.
    ///
    /// Ignored (logged at trace level) once the connection is closing or its write side is
    /// shut. A write error closes the connection with [`CloseReason::Error`] after the callback.
    pub fn send(&mut self, data: &[u8]) {
        self.c.out.send(self.io, data);
    }

    /// Sends every unconsumed input byte and consumes it: an echo in one call.
    pub fn send_input(&mut self) {
        if let Some(input) = self.c.input.as_mut() {
            self.c.out.send(self.io, input.as_slice());
            input.clear();
        }
    }

    /// Sends up to `max` bytes of `file` from `*offset` with one `sendfile(2)`: the kernel copies
    /// from the page cache to the socket, never through user space. Returns how many bytes were
    /// sent, and advances `*offset` by as many (the file's own position is untouched).
    ///
    /// Called on the connection's IO thread, from a callback. Never blocks, never buffers: what
    /// the socket does not take now stays in the file for the next call. The pacing pattern —
    /// send a header with [`Conn::send`], then call `send_file` from
    /// [`crate::IoHandler::on_write_complete`] until the range is done:
    ///
    /// - the socket took all `max` bytes: `on_write_complete` follows on the same loop turn's
    ///   write-complete pass (other connections are served in between);
    /// - fewer, or none (the send buffer is full): the loop watches `EPOLLOUT` and calls
    ///   `on_write_complete` when the socket can take more, so a slow peer costs no CPU;
    /// - output buffered by earlier [`Conn::send`] calls is still pending: nothing is sent
    ///   (`Ok(0)`), so bytes never overtake one another; `on_write_complete` follows once the
    ///   buffer drains.
    ///
    /// `Ok(0)` also when `max` is 0, when `*offset` is at or past the end of the file, or when
    /// the connection is closing ([`Conn::is_closing`]). The file's bytes are not output in the
    /// framework's sense: [`Conn::close`] and a peer's end of stream wait only for buffered
    /// output, so close once the whole range has been sent.
    ///
    /// Bytes sent count in [`crate::Stats::bytes_out`] and as write activity for idle timeouts.
    ///
    /// # Errors
    /// - An error of the file rather than the socket (`EBADF` when it is not open for reading,
    ///   `EINVAL` when it cannot be mapped, e.g. some pseudo-files; `EIO`; `EOVERFLOW`; an
    ///   offset beyond `off_t`): returned, and the connection is untouched,
    ///   so the caller can fall back to reading the file and [`Conn::send`], or close.
    /// - Any other error (e.g. `EPIPE`, `ECONNRESET`): returned, and the connection closes after
    ///   the callback with [`CloseReason::Error`], as a failed [`Conn::send`] does.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use kingpin::{Conn, IoHandler};
    /// use std::fs::File;
    ///
    /// /// Sends one file to each client, then closes.
    /// struct FileServer;
    ///
    /// struct Transfer {
    ///     file: File,
    ///     offset: u64,
    ///     end: u64,
    /// }
    ///
    /// impl IoHandler for FileServer {
    ///     fn on_connect(&mut self, conn: &mut Conn<'_>) {
    ///         let file = File::open("/etc/hostname").expect("open");
    ///         let end = file.metadata().expect("stat").len();
    ///         conn.send(format!("{end}\n").as_bytes()); // the header, buffered if need be
    ///         conn.set_context(Transfer { file, offset: 0, end });
    ///     }
    ///
    ///     fn on_write_complete(&mut self, conn: &mut Conn<'_>) {
    ///         let Some(mut t) = conn.take_context::<Transfer>() else { return };
    ///         let chunk = (t.end - t.offset).min(1 << 20) as usize;
    ///         match conn.send_file(&t.file, &mut t.offset, chunk) {
    ///             Ok(_) if t.offset >= t.end => conn.close(), // all sent
    ///             Ok(_) => conn.set_context(t),               // more on the next call
    ///             Err(_) => conn.force_close(),               // the file failed, or the socket
    ///         }
    ///     }
    /// }
    /// ```
    pub fn send_file(&mut self, file: &File, offset: &mut u64, max: usize) -> io::Result<usize> {
        self.c.out.send_file(self.io, file, offset, max)
    }

    /// Splits the connection into its input buffer and its output, to send bytes straight from
    /// the input without copying them first.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::{Conn, IoHandler};
    ///
    /// /// Answers each line with itself.
    /// struct LineEcho;
    /// impl IoHandler for LineEcho {
    ///     fn on_message(&mut self, conn: &mut Conn<'_>) {
    ///         let (input, mut output) = conn.split();
    ///         while let Some(end) = input.find_eol() {
    ///             output.send(&input.as_slice()[..=end]);
    ///             input.advance(end + 1);
    ///         }
    ///     }
    /// }
    /// ```
    pub fn split(&mut self) -> (&mut Buffer, Output<'_>) {
        let pool = &mut self.io.pool;
        let input = self.c.input.get_or_insert_with(|| pool.get());
        (input, Output { out: &mut self.c.out, io: self.io })
    }

    /// Bytes queued for sending that the socket has not taken yet.
    pub fn pending_output(&self) -> usize {
        self.c.out.pending()
    }

    /// Closes the connection once pending output is written; stops reading now.
    /// [`crate::IoHandler::on_closed`] follows with [`CloseReason::Local`].
    ///
    /// If the peer has sent bytes this side never read, the kernel answers the close with a
    /// reset, which can destroy the last response before the peer reads it. Protocols where
    /// the peer may keep sending (e.g. pipelined HTTP) should close in two steps:
    /// [`Conn::shutdown_write`], then drop input until the peer closes or a timer fires
    /// (nginx's lingering close; the `http_server` example does this).
    pub fn close(&mut self) {
        self.c.request_close(CloseReason::Local);
    }

    /// Closes the connection now, discarding pending output.
    pub fn force_close(&mut self) {
        self.c.reading = false;
        self.c.out.refuse = true;
        if self.c.close_now.is_none() {
            self.c.close_now = Some(CloseReason::Local);
        }
    }

    /// Shuts the write side once pending output is written (half-close): the peer reads end of
    /// stream, and this side can still read.
    pub fn shutdown_write(&mut self) {
        self.c.shutdown_after_flush = true;
        self.c.out.refuse = true;
    }

    /// Stops reading from the socket until [`Conn::resume_reading`] (e.g. while a slow
    /// downstream catches up). Bytes already read stay in [`Conn::input`].
    pub fn pause_reading(&mut self) {
        self.c.user_paused = true;
    }

    /// Resumes reading after [`Conn::pause_reading`].
    pub fn resume_reading(&mut self) {
        self.c.user_paused = false;
    }

    /// Whether reading is paused, by the handler or by backpressure (output above the high
    /// water mark).
    pub fn is_reading_paused(&self) -> bool {
        self.c.user_paused || self.c.paused
    }

    /// Replaces this connection's idle timeouts (the config's are the default); all `None`
    /// turns them off.
    pub fn set_idle_timeouts(&mut self, timeouts: IdleTimeouts) {
        if let Some(t) = self.c.idle_timer.take() {
            self.io.conn_timers.cancel(t);
        }
        self.c.idle = None;
        if timeouts.is_enabled() {
            arm_idle(self.c, self.io, timeouts);
        }
    }

    /// Whether the connection is closing or its write side is shut (sends are ignored).
    pub fn is_closing(&self) -> bool {
        self.c.out.refuse
    }

    /// Stores per-connection user state, replacing any previous one.
    pub fn set_context<T: Any>(&mut self, value: T) {
        self.c.context = Some(Box::new(value));
    }

    /// The per-connection user state, if one of type `T` was set.
    pub fn context<T: Any>(&self) -> Option<&T> {
        self.c.context.as_ref()?.downcast_ref()
    }

    /// The per-connection user state, mutably, if one of type `T` was set.
    pub fn context_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.c.context.as_mut()?.downcast_mut()
    }

    /// Removes and returns the per-connection user state, if one of type `T` was set.
    pub fn take_context<T: Any>(&mut self) -> Option<T> {
        match self.c.context.take()?.downcast::<T>() {
            Ok(v) => Some(*v),
            Err(other) => {
                self.c.context = Some(other);
                None
            }
        }
    }

    /// A handle that reaches this connection from any thread.
    pub fn handle(&mut self) -> ConnHandle {
        let shared = self.c.shared.get_or_insert_with(Default::default).clone();
        ConnHandle::new(self.c.id, self.io.index, shared, self.io.sink.clone())
    }

    /// Calls [`crate::IoHandler::on_timer`] for this connection with `tag` after `delay`,
    /// unless the connection has closed by then or the timer is cancelled.
    pub fn set_timer(&mut self, delay: Duration, tag: u64) -> TimerId {
        let deadline = crate::timer::after(self.io.now, delay);
        let id = self.io.conn_timers.insert(deadline, None, (self.c.id, ConnTimer::User(tag)));
        let timers = &mut self.c.user_timers;
        if timers.len() >= 8 {
            let queue = &self.io.conn_timers;
            timers.retain(|t| queue.contains(*t));
        }
        timers.push(id);
        id
    }

    /// Cancels a timer set with [`Conn::set_timer`]; `false` if it already fired.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.c.user_timers.retain(|t| *t != id);
        self.io.conn_timers.owns(id) && self.io.conn_timers.cancel(id)
    }
}

impl fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.c.id)
            .field("peer", &self.c.peer)
            .field("loop", &self.io.index)
            .field("pending_output", &self.c.out.pending())
            .finish()
    }
}

/// The output half of a [`Conn`], from [`Conn::split`].
pub struct Output<'a> {
    out: &'a mut crate::connection::Outbound,
    io: &'a mut IoCtx,
}

impl Output<'_> {
    /// Sends `data`, exactly as [`Conn::send`].
    pub fn send(&mut self, data: &[u8]) {
        self.out.send(self.io, data);
    }

    /// Bytes queued for sending that the socket has not taken yet.
    pub fn pending(&self) -> usize {
        self.out.pending()
    }
}

impl fmt::Debug for Output<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output").field("pending", &self.out.pending()).finish()
    }
}

/// Starts watching `c` for idleness with `timeouts` (which must enable at least one kind).
pub(crate) fn arm_idle(c: &mut Connection, io: &mut IoCtx, timeouts: IdleTimeouts) {
    let state = c.idle.get_or_insert_with(|| IdleState::new(timeouts, io.now));
    state.timeouts = timeouts;
    if let Some(at) = state.next_check(c.out.last_write) {
        c.idle_timer = Some(io.conn_timers.insert(at, None, (c.id, ConnTimer::Idle)));
    }
}
