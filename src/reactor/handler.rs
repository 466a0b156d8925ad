//! The user's side of a loop: [`IoHandler`], the one trait users implement; [`LoopCtx`], what
//! its loop-level callbacks and the closures run on a loop get to work with; and
//! [`LoopHandle`], which sends those closures from other threads.
//!
//! The three name one another (`on_start` takes a `LoopCtx<Self>`; a `LoopCtx<H>` holds
//! connections with `H::ConnState` and hands out a `LoopHandle<H>`, whose `run` takes a closure
//! over a `LoopCtx<H>`), so they live together. The loop's mailbox is reached through
//! [`Remote`], so this file does not name the mailbox or its commands.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::loop_core::LoopCore;
use crate::base::error::Error;
use crate::base::slab::ConnId;
use crate::base::timer::{self, TimerId};
use crate::conn::close::CloseReason;
use crate::conn::idle::{IdleAction, IdleKind};
use crate::conn::inbox::{ConnCommand, Inbox, Via};
use crate::conn::job::{self, JobError, Outcome};
use crate::conn::target::{ConnectFailure, Target};
use crate::conn::view::Conn;
use crate::tls::TlsError;
use crate::work::cancel::CancelToken;

/// The callbacks of one IO thread. Every method has a default that does nothing.
///
/// An [`crate::EpollTPServer`] or [`crate::EpollTPClient`] builds one handler per IO thread with its factory, on that thread, and
/// calls it only from there: a handler needs no locks for its own state and need not be `Send`.
/// Connections of the thread share the handler; per-connection state is the handler's
/// [`IoHandler::ConnState`], kept inline with each connection and reached with
/// [`Conn::state_mut`] or [`Conn::parts`].
///
/// A panic in a callback is caught: the connection it concerned is closed with
/// [`CloseReason::Panicked`] and the loop goes on (unless the config says to abort).
///
/// # Examples
///
/// An echo server's handler:
///
/// ```
/// use kingpin::{Conn, IoHandler};
///
/// struct Echo;
///
/// impl IoHandler for Echo {
///     type ConnState = (); // no per-connection state
///
///     fn on_message(&mut self, conn: &mut Conn<'_>) {
///         conn.send_input(); // echo every byte read so far
///     }
/// }
/// ```
pub trait IoHandler: 'static {
    /// Per-connection state, typed: made with `Default` when a connection opens (before
    /// [`IoHandler::on_connect`]), kept inline in the loop's table of connections (no
    /// allocation, no downcast), and dropped after [`IoHandler::on_closed`]. Use `()` for none.
    ///
    /// Reach it with [`Conn::state`], [`Conn::state_mut`], or [`Conn::parts`] (together with
    /// the input buffer and the output).
    type ConnState: Default + 'static;

    /// Runs once on the loop's thread, before it serves any connection.
    fn on_start(&mut self, ctx: &mut LoopCtx<'_, Self>)
    where
        Self: Sized,
    {
        let _ = ctx;
    }

    /// A connection was accepted (server) or established (client; its target's first message
    /// has already been sent).
    fn on_connect(&mut self, conn: &mut Conn<'_, Self::ConnState>) {
        let _ = conn;
    }

    /// New bytes were read into [`Conn::input`]. Consume what you handle (e.g. with
    /// [`crate::Buffer::advance`]); the rest stays for the next call.
    fn on_message(&mut self, conn: &mut Conn<'_, Self::ConnState>) {
        let _ = conn;
    }

    /// Everything sent so far has been handed to the kernel (the output buffer is empty).
    ///
    /// Called once after sends drain, also when they were written at once. Streaming code
    /// sends its next chunk from here; it runs on a later loop turn, so other connections
    /// are served in between.
    ///
    /// Also called, with nothing buffered, when a [`Conn::send_file`] that the socket could not
    /// take whole finds room again (`EPOLLOUT`): a file streamer calls `send_file` from here
    /// until its range is sent, and is never woken while the peer is not reading.
    fn on_write_complete(&mut self, conn: &mut Conn<'_, Self::ConnState>) {
        let _ = conn;
    }

    /// The peer closed its side (end of stream) or reset the connection.
    ///
    /// After end of stream the connection can still send: pending output is written, then the
    /// connection closes (so a half-closing client still gets its reply). With
    /// [`crate::ServerConfig::allow_half_close`] it stays open until the handler closes it.
    fn on_passively_closed(&mut self, conn: &mut Conn<'_, Self::ConnState>) {
        let _ = conn;
    }

    /// The connection is being closed, for `reason`; called exactly once per connection that
    /// reached [`IoHandler::on_connect`]. Sends are ignored from here on. Release what the
    /// connection held (e.g. remove its [`crate::ConnHandle`] from shared maps).
    fn on_closed(&mut self, conn: &mut Conn<'_, Self::ConnState>, reason: &CloseReason) {
        let _ = (conn, reason);
    }

    /// A timer set with [`Conn::set_timer`] fired, with the `tag` it was set with.
    fn on_timer(&mut self, conn: &mut Conn<'_, Self::ConnState>, tag: u64) {
        let _ = (conn, tag);
    }

    /// An idle timeout fired (see [`crate::IdleTimeouts`]). The default closes the connection,
    /// which drops a slowloris peer; return [`IdleAction::Keep`] to keep it (e.g. after sending
    /// a heartbeat), and the timeout starts over.
    fn on_idle(&mut self, conn: &mut Conn<'_, Self::ConnState>, kind: IdleKind) -> IdleAction {
        let _ = (conn, kind);
        IdleAction::Close
    }

    /// Unsent output reached the high water mark; reading from the connection is paused (unless
    /// the config says otherwise) until [`IoHandler::on_low_water`]. Producers that do not
    /// depend on input should stop sending here.
    fn on_high_water(&mut self, conn: &mut Conn<'_, Self::ConnState>) {
        let _ = conn;
    }

    /// Unsent output fell to the low water mark after a high water mark; reading resumed.
    fn on_low_water(&mut self, conn: &mut Conn<'_, Self::ConnState>) {
        let _ = conn;
    }

    /// Once per loop turn, after the turn's events, mailbox and timers.
    ///
    /// A loop blocks in `epoll_wait` while idle; set `epoll_timeout` in the config to be called
    /// at least that often.
    fn on_epoll_loop(&mut self, ctx: &mut LoopCtx<'_, Self>)
    where
        Self: Sized,
    {
        let _ = ctx;
    }

    /// A client connect to `target` failed for good: refused, unreachable, timed out (the
    /// config's connect timeout), its name did not resolve, or the client shut down first
    /// (`Interrupted`: the target was queued, connecting, or waiting to retry). Retries of a
    /// target with a [`crate::Reconnect`] policy happen before this is called. Called exactly
    /// once for each target that never connected — except a name still being resolved when
    /// the client shuts down, which is dropped silently.
    fn on_connect_failed(&mut self, target: &Target, failure: &ConnectFailure) {
        let _ = (target, failure);
    }

    /// The TLS handshake of a connection from (or, on a client, to) `peer` failed: the peer
    /// sent no TLS or broke the protocol, a certificate was not trusted, nothing was in
    /// common, or the handshake ran out of time ([`crate::TlsError::HandshakeTimeout`]). The
    /// connection is closed already; the handler never saw it (no `on_connect`, no
    /// `on_closed`), and the failure is logged and counted in
    /// [`crate::Stats::tls_handshake_failures`]. This is for metrics, alarms or a ban list.
    /// A client's target also gets [`IoHandler::on_connect_failed`].
    fn on_tls_error(&mut self, peer: SocketAddr, error: &TlsError) {
        let _ = (peer, error);
    }

    /// `accept` failed (e.g. `EMFILE`: out of file descriptors). The server has already logged
    /// it and backs off; this is for metrics or alarms.
    fn on_accept_error(&mut self, error: &io::Error) {
        let _ = error;
    }

    /// Runs blocking `job` on the worker pool (see [`crate::ServerConfig::worker_threads`]),
    /// then `done` with its value on this connection's loop, with the handler and the
    /// connection — or with `None` for the connection if it closed meanwhile (a reused slot is
    /// never reached). Call it as `Self::spawn_blocking(conn, job, done)` from a callback.
    ///
    /// `done` is called exactly once: with the job's value, with [`JobError::Panicked`] if the
    /// job panicked (the worker lives on), or with [`JobError::Shutdown`] if the server or
    /// client shut down before the value came back. The job gets a [`CancelToken`] that fires
    /// when the connection closes, so long work can stop early. A peer that ends its side
    /// while the job runs closes the connection as usual (unless
    /// [`crate::ServerConfig::allow_half_close`]), which fires the token: nginx, too, takes a
    /// client's end of stream during a request as the client giving up. A panic in `done`
    /// closes the connection, as a callback's would.
    ///
    /// # Errors
    /// At once, never blocking: [`Error::Busy`] when the pool's queue is full (e.g. answer
    /// "503 busy"), [`Error::Stopped`] when the pool has stopped, [`Error::Closed`] when the
    /// connection is already closing. Nothing is queued then and `done` is not called.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::{Conn, IoHandler};
    ///
    /// struct Hasher;
    ///
    /// impl IoHandler for Hasher {
    ///     type ConnState = ();
    ///
    ///     fn on_message(&mut self, conn: &mut Conn<'_>) {
    ///         let data = conn.input().as_slice().to_vec();
    ///         conn.input().clear();
    ///         let sum = move |_: &kingpin::CancelToken| data.iter().map(|&b| u64::from(b)).sum::<u64>();
    ///         let queued = Self::spawn_blocking(conn, sum, |_me, conn, sum| {
    ///             if let (Some(conn), Ok(sum)) = (conn, sum) {
    ///                 conn.send(format!("{sum}\n").as_bytes());
    ///             }
    ///         });
    ///         if queued.is_err() {
    ///             conn.send(b"busy\n");
    ///         }
    ///     }
    /// }
    /// ```
    fn spawn_blocking<T, J, D>(conn: &mut Conn<'_, Self::ConnState>, job: J, done: D) -> Result<(), Error>
    where
        Self: Sized,
        T: Send + 'static,
        J: FnOnce(&CancelToken) -> T + Send + 'static,
        D: FnOnce(&mut Self, Option<&mut Conn<'_, Self::ConnState>>, Result<T, JobError>) + 'static,
    {
        if conn.is_closing() {
            return Err(Error::Closed);
        }
        let finish: Finisher<Self> =
            Finisher::Conn(Box::new(move |h, conn, outcome| done(h, conn, job::outcome::<T>(outcome))));
        let id = conn.id();
        conn.env.submit_job(std::any::TypeId::of::<Self>(), Some(id), job, Box::new(finish))
    }
}

/// The completion of a blocking job, kept on the loop until the job's outcome comes back.
pub(crate) enum Finisher<H: IoHandler> {
    /// Of [`IoHandler::spawn_blocking`]: with the connection, if it is still open.
    Conn(ConnFinisher<H>),
    /// Of [`LoopCtx::spawn_blocking`]: with the loop.
    Loop(LoopFinisher<H>),
}

/// A connection job's completion, given its outcome (`None`: the loop is exiting first).
pub(crate) type ConnFinisher<H> =
    Box<dyn FnOnce(&mut H, Option<&mut Conn<'_, <H as IoHandler>::ConnState>>, Option<Outcome>)>;

/// A loop job's completion, given its outcome (`None`: the loop is exiting first).
pub(crate) type LoopFinisher<H> = Box<dyn FnOnce(&mut H, &mut LoopCtx<'_, H>, Option<Outcome>)>;

/// The core of a loop whose handler is `H`.
pub(crate) type Core<H> = LoopCore<<H as IoHandler>::ConnState, LoopTimer<H>>;

/// A timer closure of a loop whose handler is `H`.
pub(crate) type LoopTimer<H> = Box<dyn FnMut(&mut H, &mut LoopCtx<'_, H>)>;

/// A closure sent to a loop whose handler is `H`, run there with its handler and context.
pub(crate) type Task<H> = Box<dyn FnOnce(&mut H, &mut LoopCtx<'_, H>) + Send>;

/// A loop's mailbox as its handles see it, typed by the loop's handler: closures, shutdown,
/// and (through [`Inbox`]) connection commands. Any thread.
pub(crate) trait Remote<H: IoHandler>: Inbox {
    /// Queues `task` to run on the loop.
    ///
    /// # Errors
    /// [`Error::LoopStopped`] once the loop has exited; the task is dropped unrun.
    fn run(&self, task: Task<H>) -> Result<(), Error>;

    /// Asks the loop to shut down by `deadline`.
    ///
    /// # Errors
    /// [`Error::LoopStopped`] once the loop has exited.
    fn shutdown(&self, deadline: Instant) -> Result<(), Error>;
}

/// Access to one IO loop from code running on it: its connections, its timers, its handle.
///
/// Given to [`crate::IoHandler::on_start`], [`crate::IoHandler::on_epoll_loop`], closures run
/// with [`crate::LoopHandle::run`] and loop timers, on the loop's own thread.
pub struct LoopCtx<'a, H: IoHandler> {
    pub(crate) core: &'a mut Core<H>,
    pub(crate) remote: &'a Arc<dyn Remote<H>>,
}

impl<H: IoHandler> LoopCtx<'_, H> {
    /// Index of this loop (0-based; one per IO thread).
    pub fn loop_index(&self) -> usize {
        self.core.env.index
    }

    /// A handle to this loop, for other threads.
    pub fn handle(&self) -> LoopHandle<H> {
        LoopHandle::new(self.core.env.index, self.remote.clone())
    }

    /// When the current loop turn began (cheaper than `Instant::now()`, and what timers use).
    pub fn now(&self) -> Instant {
        self.core.env.now
    }

    /// Runs `f` on this loop once, after `delay`.
    pub fn run_after<F>(&mut self, delay: Duration, f: F) -> TimerId
    where
        F: FnOnce(&mut H, &mut LoopCtx<'_, H>) + 'static,
    {
        let mut f = Some(f);
        let task: LoopTimer<H> = Box::new(move |h, ctx| {
            if let Some(f) = f.take() {
                f(h, ctx)
            }
        });
        let deadline = timer::after(self.core.env.now, delay);
        self.core.timers.insert(deadline, None, task)
    }

    /// Runs `f` on this loop every `period` (at least 1 ms), first after one period, until
    /// cancelled. Late turns do not pile up: a missed tick is skipped, not repeated.
    pub fn run_every<F>(&mut self, period: Duration, f: F) -> TimerId
    where
        F: FnMut(&mut H, &mut LoopCtx<'_, H>) + 'static,
    {
        let period = period.max(Duration::from_millis(1));
        let deadline = timer::after(self.core.env.now, period);
        self.core.timers.insert(deadline, Some(period), Box::new(f))
    }

    /// Cancels a timer of this loop (set here or with [`Conn::set_timer`]); `false` if it
    /// already fired or was cancelled.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        if self.core.timers.owns(id) {
            self.core.timers.cancel(id)
        } else {
            self.core.env.timers.cancel(id)
        }
    }

    /// The connection `id` of this loop, if it is still open (and its handler has met it).
    ///
    /// Sends and closes made through it take effect when the closure or callback returns.
    pub fn conn(&mut self, id: ConnId) -> Option<Conn<'_, H::ConnState>> {
        let c = self.core.conns.get_mut(id).filter(|c| !c.is_introducing())?;
        self.core.touched.push(id);
        Some(Conn::new(c, &mut self.core.env))
    }

    /// Runs blocking `job` on the worker pool, then `done` with its value on this loop, as
    /// [`IoHandler::spawn_blocking`] does for a connection. The job's [`CancelToken`] fires
    /// when the loop begins to shut down.
    ///
    /// # Errors
    /// [`Error::Busy`] when the pool's queue is full, [`Error::Stopped`] when the pool has
    /// stopped or the loop is shutting down; nothing is queued and `done` is not called.
    pub fn spawn_blocking<T, J, D>(&mut self, job: J, done: D) -> Result<(), Error>
    where
        T: Send + 'static,
        J: FnOnce(&CancelToken) -> T + Send + 'static,
        D: FnOnce(&mut H, &mut LoopCtx<'_, H>, Result<T, JobError>) + 'static,
    {
        if self.core.shutting_down {
            return Err(Error::Stopped);
        }
        let finish: Finisher<H> =
            Finisher::Loop(Box::new(move |h, ctx, outcome| done(h, ctx, job::outcome::<T>(outcome))));
        self.core.env.submit_job(std::any::TypeId::of::<H>(), None, job, Box::new(finish))
    }

    /// Number of connections this loop holds (client connects in progress included).
    pub fn connection_count(&self) -> usize {
        self.core.conns.len() + self.core.env.stats.connecting() as usize
    }

    /// Ids of every connection this loop holds (connects in progress are not connections yet,
    /// nor are connections whose PROXY header or TLS handshake is still to come).
    pub fn conn_ids(&self) -> Vec<ConnId> {
        let mut ids = self.core.conns.ids();
        ids.retain(|id| self.core.conns.get(*id).is_some_and(|c| !c.is_introducing()));
        ids
    }

    /// Whether shutdown has begun (no new connections; existing ones are draining).
    pub fn is_shutting_down(&self) -> bool {
        self.core.shutting_down
    }
}

impl<H: IoHandler> fmt::Debug for LoopCtx<'_, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopCtx")
            .field("loop", &self.core.env.index)
            .field("connections", &self.core.conns.len())
            .finish()
    }
}

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
    /// code that keeps ids rather than handles). A stale `id` is dropped by the loop. Unlike a
    /// handle's send it cannot see the connection's backpressure from here, so it is never
    /// refused as full: for peers that may not read, send through a [`crate::ConnHandle`]
    /// (the memory budget counts these bytes either way).
    ///
    /// # Errors
    /// [`Error::LoopStopped`] if the loop has exited.
    pub fn send(&self, id: ConnId, data: Vec<u8>) -> Result<(), Error> {
        self.remote.push_conn(ConnCommand::Send(id, data, Via::Loop))
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
