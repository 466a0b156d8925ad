//! The one trait users implement: [`IoHandler`], and why a connection closed: [`CloseReason`].

use std::fmt;
use std::io;

use crate::event_loop::LoopCtx;
use crate::{Conn, ConnectFailure, IdleAction, IdleKind, Target};

/// The callbacks of one IO thread. Every method has a default that does nothing.
///
/// An [`crate::EpollTPServer`] or [`crate::EpollTPClient`] builds one handler per IO thread with its factory, on that thread, and
/// calls it only from there: a handler needs no locks for its own state and need not be `Send`.
/// Connections of the thread share the handler; per-connection state goes in
/// [`Conn::set_context`].
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
///     fn on_message(&mut self, conn: &mut Conn<'_>) {
///         conn.send_input(); // echo every byte read so far
///     }
/// }
/// ```
pub trait IoHandler: 'static {
    /// Runs once on the loop's thread, before it serves any connection.
    fn on_start(&mut self, ctx: &mut LoopCtx<'_, Self>)
    where
        Self: Sized,
    {
        let _ = ctx;
    }

    /// A connection was accepted (server) or established (client; its target's first message
    /// has already been sent).
    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// New bytes were read into [`Conn::input`]. Consume what you handle (e.g. with
    /// [`crate::Buffer::advance`]); the rest stays for the next call.
    fn on_message(&mut self, conn: &mut Conn<'_>) {
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
    fn on_write_complete(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// The peer closed its side (end of stream) or reset the connection.
    ///
    /// After end of stream the connection can still send: pending output is written, then the
    /// connection closes (so a half-closing client still gets its reply). With
    /// [`crate::ServerConfig::allow_half_close`] it stays open until the handler closes it.
    fn on_passively_closed(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// The connection is being closed, for `reason`; called exactly once per connection that
    /// reached [`IoHandler::on_connect`]. Sends are ignored from here on. Release what the
    /// connection held (e.g. remove its [`crate::ConnHandle`] from shared maps).
    fn on_closed(&mut self, conn: &mut Conn<'_>, reason: &CloseReason) {
        let _ = (conn, reason);
    }

    /// A timer set with [`Conn::set_timer`] fired, with the `tag` it was set with.
    fn on_timer(&mut self, conn: &mut Conn<'_>, tag: u64) {
        let _ = (conn, tag);
    }

    /// An idle timeout fired (see [`crate::IdleTimeouts`]). The default closes the connection,
    /// which drops a slowloris peer; return [`IdleAction::Keep`] to keep it (e.g. after sending
    /// a heartbeat), and the timeout starts over.
    fn on_idle(&mut self, conn: &mut Conn<'_>, kind: IdleKind) -> IdleAction {
        let _ = (conn, kind);
        IdleAction::Close
    }

    /// Unsent output reached the high water mark; reading from the connection is paused (unless
    /// the config says otherwise) until [`IoHandler::on_low_water`]. Producers that do not
    /// depend on input should stop sending here.
    fn on_high_water(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// Unsent output fell to the low water mark after a high water mark; reading resumed.
    fn on_low_water(&mut self, conn: &mut Conn<'_>) {
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

    /// `accept` failed (e.g. `EMFILE`: out of file descriptors). The server has already logged
    /// it and backs off; this is for metrics or alarms.
    fn on_accept_error(&mut self, error: &io::Error) {
        let _ = error;
    }
}

/// Why a connection closed, given to [`IoHandler::on_closed`].
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// This side closed it: [`Conn::close`], [`Conn::force_close`] or a [`crate::ConnHandle`].
    Local,
    /// The peer closed its side (end of stream); pending output was written first.
    PeerClosed,
    /// A read or write failed, e.g. `ECONNRESET` or `EPIPE` when the peer reset.
    Error(io::Error),
    /// A callback panicked while handling this connection; the message is attached.
    Panicked(String),
    /// The peer sent more than the input limit without it being consumed.
    InputLimit,
    /// More output was queued than the output limit allows (the peer does not read).
    OutputLimit,
    /// An idle timeout fired and the handler let the connection go.
    Idle(IdleKind),
    /// Server or client shutdown; the pending output was written first.
    Shutdown,
    /// Server or client shutdown; the deadline passed with output still pending, which was
    /// discarded.
    ShutdownForced,
}

impl CloseReason {
    /// Whether the close came from the peer or the network rather than from this side.
    pub fn is_passive(&self) -> bool {
        matches!(self, CloseReason::PeerClosed | CloseReason::Error(_))
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::PeerClosed => f.write_str("closed by peer"),
            CloseReason::Error(e) => write!(f, "io error: {e}"),
            CloseReason::Panicked(m) => write!(f, "handler panicked: {m}"),
            CloseReason::InputLimit => f.write_str("input buffer limit exceeded"),
            CloseReason::OutputLimit => f.write_str("output buffer limit exceeded"),
            CloseReason::Idle(kind) => write!(f, "idle timeout ({kind:?})"),
            CloseReason::Shutdown => f.write_str("shutdown"),
            CloseReason::ShutdownForced => f.write_str("shutdown deadline passed, output discarded"),
        }
    }
}
