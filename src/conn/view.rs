//! [`Conn`]: a connection as a callback sees it, and [`Output`] and [`Parts`], the pieces it
//! splits into so that input, typed state and output can be used at once.

use std::fmt;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use super::close::CloseReason;
use super::connection::Connection;
use super::env::{ConnTimer, Env};
use super::handle::{ConnHandle, ConnShared};
use super::idle::IdleTimeouts;
use super::outbound::Outbound;
use super::target::Target;
use crate::base::slab::ConnId;
use crate::base::timer::{self, TimerId};
use crate::io::buffer::Buffer;
use crate::proxy::ProxyHeader;
use crate::sys;
use crate::tls::TlsInfo;

/// A connection as a callback sees it: its input, its output, its typed state `S` (the
/// handler's [`crate::IoHandler::ConnState`]) and its handle.
///
/// Given to [`crate::IoHandler`] callbacks on the connection's own IO thread, for the length of
/// the call. Sends made during a callback are gathered and written with one system call when
/// the callback returns.
pub struct Conn<'a, S = ()> {
    pub(crate) c: &'a mut Connection<S>,
    pub(crate) env: &'a mut Env,
}

impl<'a, S> Conn<'a, S> {
    pub(crate) fn new(c: &'a mut Connection<S>, env: &'a mut Env) -> Self {
        Conn { c, env }
    }

    /// The connection's id within its loop.
    pub fn id(&self) -> ConnId {
        self.c.id
    }

    /// Index of the IO loop (thread) that owns the connection.
    pub fn loop_index(&self) -> usize {
        self.env.index
    }

    /// The peer's address: the client's, as a PROXY protocol header named it, on a server
    /// behind a load balancer ([`crate::ServerConfig::proxy_protocol`]).
    pub fn peer_addr(&self) -> SocketAddr {
        self.c.peer
    }

    /// The client target this connection was made for (`None` on a server).
    pub fn target(&self) -> Option<&Target> {
        self.c.ticket.as_ref().map(|t| &**t.target())
    }

    /// What the TLS handshake settled (ALPN protocol, SNI name, the peer's certificates), on a
    /// TLS connection; `None` on a plain one. Callbacks see a TLS connection only once its
    /// handshake is done.
    pub fn tls(&self) -> Option<TlsInfo<'_>> {
        self.c.out.tls.as_deref().map(|session| TlsInfo { session })
    }

    /// The load balancer's address, when a PROXY protocol header named the client (then
    /// [`Conn::peer_addr`] is the client's); `None` without a header.
    pub fn proxied_by(&self) -> Option<SocketAddr> {
        self.c.proxied.as_ref().map(|p| p.via)
    }

    /// The PROXY protocol header the connection started with, if any (its destination is the
    /// address the client connected to on the balancer).
    pub fn proxy_header(&self) -> Option<&ProxyHeader> {
        self.c.proxied.as_ref().map(|p| &p.header)
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
        let pool = &mut self.env.pool;
        self.c.input.get_or_insert_with(|| pool.get())
    }

    /// The connection's typed state (the handler's [`crate::IoHandler::ConnState`]), made with
    /// `Default` before [`crate::IoHandler::on_connect`] and dropped after
    /// [`crate::IoHandler::on_closed`].
    pub fn state(&self) -> &S {
        &self.c.user
    }

    /// The connection's typed state, mutably.
    pub fn state_mut(&mut self) -> &mut S {
        &mut self.c.user
    }

    /// Replaces the connection's typed state, returning the old one.
    pub fn set_state(&mut self, state: S) -> S {
        std::mem::replace(&mut self.c.user, state)
    }

    /// Takes the connection's typed state, leaving its default in its place.
    pub fn take_state(&mut self) -> S
    where
        S: Default,
    {
        std::mem::take(&mut self.c.user)
    }

    /// Sends `data`: queues it, and writes it with one system call, together with the other
    /// sends of this callback, when the callback returns; what the socket does not take then is
    /// written when it has room — never blocking, never spinning. A send of 8 KiB or more goes
    /// out at once (with what is queued ahead of it), so large messages are not copied.
    ///
    /// Ignored (logged at trace level) once the connection is closing or its write side is
    /// shut. A write error closes the connection with [`CloseReason::Error`] after the callback.
    pub fn send(&mut self, data: &[u8]) {
        self.output().send(data);
    }

    /// Sends every unconsumed input byte and consumes it: an echo in one call, without a copy
    /// when no output is pending (the input buffer itself becomes the output).
    pub fn send_input(&mut self) {
        if self.c.state.takes_sends() {
            self.c.out.send_buffer(self.env, &mut self.c.input);
        } else if let Some(input) = self.c.input.as_mut() {
            input.clear();
        }
    }

    /// Sends up to `max` bytes of `file` from `*offset` with `sendfile(2)`: the kernel copies
    /// from the page cache to the socket, never through user space. Returns how many bytes were
    /// sent, and advances `*offset` by as many (the file's own position is untouched).
    ///
    /// Called on the connection's IO thread, from a callback. Never blocks, never buffers: what
    /// the socket does not take now stays in the file for the next call. Output queued by
    /// earlier [`Conn::send`] calls is written first, so bytes never overtake one another. The
    /// pacing pattern — send a header with [`Conn::send`], then call `send_file` from
    /// [`crate::IoHandler::on_write_complete`] until the range is done:
    ///
    /// - the socket took all `max` bytes: `on_write_complete` follows on the same loop turn's
    ///   write-complete pass (other connections are served in between);
    /// - fewer, or none (the send buffer is full): the loop watches `EPOLLOUT` and calls
    ///   `on_write_complete` when the socket can take more, so a slow peer costs no CPU;
    /// - output queued ahead could not all be written: nothing is sent (`Ok(0)`);
    ///   `on_write_complete` follows once it has drained.
    ///
    /// `Ok(0)` also when `max` is 0, or when the connection is closing ([`Conn::is_closing`]).
    /// A peer's end of stream does not cut a stream short: without
    /// [`crate::ServerConfig::allow_half_close`] the connection closes once nothing more is
    /// being sent, and a stream paced by `on_write_complete` is still being sent. Close once the
    /// whole range has been sent.
    ///
    /// Bytes sent count in [`crate::Stats::bytes_out`] and as write activity for idle timeouts.
    ///
    /// # Errors
    /// - An error of the file rather than the socket (`EBADF` when it is not open for reading,
    ///   `EINVAL` when it cannot be mapped, e.g. some pseudo-files; `EIO`; `EOVERFLOW`; an
    ///   offset beyond `off_t`; `UnexpectedEof` when `*offset` is at or past the end of the
    ///   file, e.g. because it was truncated under the transfer): returned, and the connection
    ///   is untouched, so the caller can fall back to reading the file and [`Conn::send`], or
    ///   close.
    /// - An error of the socket (e.g. `EPIPE`, `ECONNRESET`): returned, [`Conn::is_closing`]
    ///   says `true` from then on, and the connection closes after the callback with
    ///   [`CloseReason::Error`], as a failed [`Conn::send`] does. (`SIGPIPE` is blocked on the IO
    ///   threads, so a vanished peer never kills the process, whatever the host's disposition.)
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
    /// /// The file being sent on a connection.
    /// #[derive(Default)]
    /// struct Transfer {
    ///     file: Option<File>,
    ///     offset: u64,
    ///     end: u64,
    /// }
    ///
    /// impl IoHandler for FileServer {
    ///     type ConnState = Transfer;
    ///
    ///     fn on_connect(&mut self, conn: &mut Conn<'_, Transfer>) {
    ///         let file = File::open("/etc/hostname").expect("open");
    ///         let end = file.metadata().expect("stat").len();
    ///         conn.send(format!("{end}\n").as_bytes()); // the header
    ///         *conn.state_mut() = Transfer { file: Some(file), offset: 0, end };
    ///     }
    ///
    ///     fn on_write_complete(&mut self, conn: &mut Conn<'_, Transfer>) {
    ///         let kingpin::Parts { state: t, mut output, .. } = conn.parts();
    ///         let Some(file) = &t.file else { return };
    ///         let chunk = (t.end - t.offset).min(1 << 20) as usize;
    ///         match output.send_file(file, &mut t.offset, chunk) {
    ///             Ok(_) if t.offset >= t.end => conn.close(), // all sent
    ///             Ok(_) => {}                                 // more on the next call
    ///             Err(_) => conn.force_close(),               // the file failed, or the socket
    ///         }
    ///     }
    /// }
    /// ```
    pub fn send_file(&mut self, file: &File, offset: &mut u64, max: usize) -> io::Result<usize> {
        self.output().send_file(file, offset, max)
    }

    /// The output alone (e.g. to pass to a helper that only sends).
    pub fn output(&mut self) -> Output<'_> {
        Output { takes: self.c.state.takes_sends(), out: &mut self.c.out, env: self.env }
    }

    /// Splits the connection into its input buffer and its output, to send bytes straight from
    /// the input.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::{Conn, IoHandler};
    ///
    /// /// Answers each line with itself.
    /// struct LineEcho;
    /// impl IoHandler for LineEcho {
    ///     type ConnState = ();
    ///
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
        let Parts { input, output, .. } = self.parts();
        (input, output)
    }

    /// Splits the connection into its input buffer, its typed state and its output, to use
    /// all three at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::{Conn, IoHandler, Parts};
    ///
    /// /// Numbers the lines of each connection: "1 first", "2 second", …
    /// struct Numbered;
    ///
    /// impl IoHandler for Numbered {
    ///     type ConnState = u64; // lines answered so far
    ///
    ///     fn on_message(&mut self, conn: &mut Conn<'_, u64>) {
    ///         let Parts { input, state: count, mut output } = conn.parts();
    ///         while let Some(end) = input.find_eol() {
    ///             *count += 1;
    ///             output.send(format!("{count} ").as_bytes());
    ///             output.send(&input.as_slice()[..=end]);
    ///             input.advance(end + 1);
    ///         }
    ///     }
    /// }
    /// ```
    pub fn parts(&mut self) -> Parts<'_, S> {
        let c = &mut *self.c;
        let pool = &mut self.env.pool;
        let input = c.input.get_or_insert_with(|| pool.get());
        let output = Output { takes: c.state.takes_sends(), out: &mut c.out, env: self.env };
        Parts { input, state: &mut c.user, output }
    }

    /// Bytes queued for sending that the socket has not taken yet.
    pub fn pending_output(&self) -> usize {
        self.c.out.pending()
    }

    /// Closes the connection once pending output is written; stops delivering input now.
    /// [`crate::IoHandler::on_closed`] follows with [`CloseReason::Local`].
    ///
    /// The close lingers, as nginx's does: if the peer may still send, the write side is shut
    /// once output is written (the peer reads end of stream) and what it still sends is dropped
    /// until its own end of stream or the config's `linger_timeout` (2 s), and only then is the
    /// socket closed. Closing at once with unread input would make the kernel answer with a
    /// reset, which can destroy the last response before the peer reads it. Use
    /// [`Conn::force_close`] to drop everything now.
    pub fn close(&mut self) {
        self.c.state.request_close(CloseReason::Local);
    }

    /// Closes the connection now, discarding pending output (and without lingering: a peer
    /// still sending sees a reset).
    pub fn force_close(&mut self) {
        self.c.state.close_now(CloseReason::Local);
    }

    /// Shuts the write side once pending output is written (half-close): the peer reads end of
    /// stream, and this side can still read.
    pub fn shutdown_write(&mut self) {
        self.c.state.shutdown_write();
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
        self.c.user_paused || self.c.water.pauses()
    }

    /// Replaces this connection's idle timeouts (the config's are the default); all `None`
    /// turns them off.
    pub fn set_idle_timeouts(&mut self, timeouts: IdleTimeouts) {
        self.c.watch_idle(self.env, timeouts);
    }

    /// Whether the connection is closing, its write side is shut, or a write to it failed:
    /// sends are ignored.
    pub fn is_closing(&self) -> bool {
        !self.c.state.takes_sends() || self.c.out.error.is_some()
    }

    /// A handle that reaches this connection from any thread.
    pub fn handle(&mut self) -> ConnHandle {
        let limit = self.env.handle_limit;
        let shared = self.c.shared.get_or_insert_with(|| Arc::new(ConnShared::new(limit))).clone();
        ConnHandle::new(self.c.id, self.env.index, shared, self.env.inbox.clone())
    }

    /// Calls [`crate::IoHandler::on_timer`] for this connection with `tag` after `delay`,
    /// unless the connection has closed by then or the timer is cancelled.
    pub fn set_timer(&mut self, delay: Duration, tag: u64) -> TimerId {
        let at = timer::after(self.env.now, delay);
        self.c.set_timer(self.env, at, tag)
    }

    /// Cancels a timer this connection set with [`Conn::set_timer`]; `false` if it already
    /// fired, was cancelled, or is not one of this connection's timers.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        // Only a timer this connection set: never another connection's, nor the loop's own
        // (idle checks, lingering closes, handshake deadlines), whatever id it is given.
        let own = self.env.timers.owns(id)
            && matches!(self.env.timers.task(id), Some(&(conn, ConnTimer::User(_))) if conn == self.c.id);
        if !own {
            return false;
        }
        self.c.user_timers.retain(|t| *t != id);
        self.env.timers.cancel(id)
    }
}

impl<S> fmt::Debug for Conn<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.c.id)
            .field("peer", &self.c.peer)
            .field("loop", &self.env.index)
            .field("state", &self.c.state)
            .field("pending_output", &self.c.out.pending())
            .finish()
    }
}

/// The output half of a [`Conn`], from [`Conn::output`], [`Conn::split`] or [`Conn::parts`].
pub struct Output<'a> {
    /// Whether the connection takes sends (it cannot change while the `Output` lives).
    takes: bool,
    out: &'a mut Outbound,
    env: &'a mut Env,
}

impl Output<'_> {
    /// Sends `data`, exactly as [`Conn::send`].
    pub fn send(&mut self, data: &[u8]) {
        if self.takes {
            self.out.send(self.env, data);
        } else {
            log::trace!(target: "kingpin::conn", "send of {} bytes ignored: connection closing", data.len());
        }
    }

    /// Sends part of a file, exactly as [`Conn::send_file`].
    ///
    /// # Errors
    /// As [`Conn::send_file`].
    pub fn send_file(&mut self, file: &File, offset: &mut u64, max: usize) -> io::Result<usize> {
        if !self.takes {
            return Ok(0);
        }
        self.out.send_file(self.env, file, offset, max)
    }

    /// Bytes queued for sending that the socket has not taken yet.
    pub fn pending(&self) -> usize {
        self.out.pending()
    }
}

impl io::Write for Output<'_> {
    /// Sends all of `buf` (as [`Output::send`]); never fails, never blocks.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf);
        Ok(buf.len())
    }

    /// Does nothing: gathered sends are written when the callback returns.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for Output<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output").field("pending", &self.out.pending()).finish()
    }
}

/// A [`Conn`] split into its input buffer, its typed state and its output, from
/// [`Conn::parts`]. Destructure it: `let Parts { input, state, mut output } = conn.parts();`.
#[derive(Debug)]
pub struct Parts<'a, S> {
    /// The bytes read and not yet consumed (as [`Conn::input`]).
    pub input: &'a mut Buffer,
    /// The connection's typed state (as [`Conn::state_mut`]).
    pub state: &'a mut S,
    /// The output (as [`Conn::output`]).
    pub output: Output<'a>,
}

/// Framing: a [`crate::codec`] codec over the connection's input and output.
impl<S> Conn<'_, S> {
    /// Takes the next frame off the input with `codec`: `None` when no whole frame is there yet
    /// (the partial frame stays in the input for the next [`crate::IoHandler::on_message`]),
    /// or when the bytes cannot be framed.
    ///
    /// Called on the connection's IO thread, from a callback, usually in a
    /// `while let Some(frame) = conn.decode(&mut codec)` loop in `on_message`. Takes no buffer
    /// from the pool when no input is held.
    ///
    /// When the codec fails ([`crate::codec::FrameError`]: a frame over its limit, a bad
    /// header), the stream cannot be framed any more: the error is logged as a warning with
    /// the peer, the input is dropped, and the connection closes with
    /// [`CloseReason::Protocol`] once its pending output is written — what the callback sent
    /// before, e.g. answers to the frames ahead of the bad one, still goes out; nothing more is
    /// read, and sends from here on are ignored ([`Conn::is_closing`] says `true`).
    ///
    /// The connection's input limit (the config's `max_input_buffer`, 1 MiB by default) still
    /// applies: with a codec limit above it, a frame over the input limit closes the
    /// connection with [`CloseReason::InputLimit`] instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::codec::LengthPrefixed;
    /// use kingpin::{Conn, IoHandler};
    ///
    /// /// Answers each length-prefixed message with its length, as a length-prefixed text.
    /// struct Measure(LengthPrefixed);
    ///
    /// impl IoHandler for Measure {
    ///     type ConnState = ();
    ///
    ///     fn on_message(&mut self, conn: &mut Conn<'_>) {
    ///         while let Some(body) = conn.decode(&mut self.0) {
    ///             let answer = body.len().to_string();
    ///             conn.encode(&mut self.0, answer).expect("a short answer");
    ///         }
    ///     }
    /// }
    /// # let _ = Measure(LengthPrefixed::u32(1 << 20));
    /// ```
    pub fn decode<D: crate::codec::Decoder>(&mut self, codec: &mut D) -> Option<D::Item> {
        let input = self.c.input.as_mut()?;
        match codec.decode(input) {
            Ok(frame) => frame,
            Err(e) => {
                // Dropped, so that the bytes left cannot also trip the input limit, which
                // would close at once and discard the output still to go.
                input.clear();
                log::warn!(target: "kingpin::conn", "conn {} ({}): closing, {e}", self.c.id, self.c.peer);
                self.c.state.request_close(CloseReason::Protocol(e.to_string()));
                None
            }
        }
    }

    /// Encodes `item` with `codec` and queues the frame, as [`Conn::send`] does: it is
    /// written with the other sends of this callback when the callback returns.
    ///
    /// Called on the connection's IO thread, from a callback. The frame is encoded into a
    /// buffer from the loop's pool, which becomes the connection's output as it is when no
    /// output is queued ahead of it (no copy), and is otherwise appended to it (one copy); see
    /// the [`crate::codec`] docs. Ignored, like a send, once the connection is closing
    /// (`Ok(())`, nothing encoded).
    ///
    /// # Errors
    ///
    /// The codec's [`crate::codec::FrameError`] when it refuses `item` (e.g. over its limit):
    /// nothing is queued and the connection is untouched; the caller chooses what follows.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::codec::LinesCodec;
    /// use kingpin::{Conn, IoHandler};
    ///
    /// /// Greets each new connection with one line.
    /// struct Greeter;
    ///
    /// impl IoHandler for Greeter {
    ///     type ConnState = ();
    ///
    ///     fn on_connect(&mut self, conn: &mut Conn<'_>) {
    ///         conn.encode(&mut LinesCodec::new(80), "welcome").expect("a short line");
    ///     }
    /// }
    /// ```
    pub fn encode<E, T>(&mut self, codec: &mut E, item: T) -> Result<(), crate::codec::FrameError>
    where
        E: crate::codec::Encoder<T>,
    {
        if !self.c.state.takes_sends() {
            log::trace!(target: "kingpin::conn", "encode ignored: connection closing");
            return Ok(());
        }
        let mut frame = self.env.pool.get();
        if let Err(e) = codec.encode(item, &mut frame) {
            self.env.pool.put(frame);
            return Err(e);
        }
        let mut frame = Some(frame);
        self.c.out.send_buffer(self.env, &mut frame);
        if let Some(left) = frame {
            self.env.pool.put(left);
        }
        Ok(())
    }
}
