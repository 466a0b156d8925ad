//! The life of a connection as a state machine: open (each half may close on its own),
//! draining, closing, closed. Every transition is a method here; the rest of the crate asks
//! questions ([`ConnState::is_reading`], [`ConnState::takes_sends`]) instead of setting flags.
//!
//! ```text
//!   Open { read, write } ──close()──────────────► Draining(reason) ──output written──┐
//!     │  read:  Open ─RDHUP─► Ending ─end of stream─► PeerClosed                     │
//!     │  write: Open ─shutdown_write()─► ShutAfterFlush ─output written─► Shut       │
//!     │                                                 │ error, panic, limit,       │
//!     └──error, panic, limit, force_close()─────────────┴─► Closing(reason) ──┐      │
//!                          (peer may still send) Lingering(reason) ◄───────────┼──────┘
//!                          peer's end, or linger timeout ──────────────────────┴─► Closed
//! ```
//!
//! `Closing` is torn down at the end of the current dispatch, pending output dropped;
//! `Closed` is the state while `on_closed` runs, just before the connection leaves its loop.

use super::close::CloseReason;

/// What the connection knows of the peer's sending side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadHalf {
    /// The peer may still send.
    Open,
    /// epoll said the peer has finished (`EPOLLRDHUP`, `EPOLLHUP` or `EPOLLERR`) and the end
    /// has not been read yet. What is left is bounded by the kernel's receive buffer, so it is
    /// read even while reading is paused: reading to the end lets a departed peer's
    /// connection and buffers go.
    Ending,
    /// The peer ended its stream or reset the connection; `on_passively_closed` has run.
    PeerClosed,
}

/// This side's sending half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteHalf {
    /// Sends are taken.
    Open,
    /// `shutdown_write` was asked for: sends are refused, and the write side is shut once
    /// pending output is written.
    ShutAfterFlush,
    /// The write side is shut (the peer has read end of stream).
    Shut,
}

/// Where a connection is in its life.
#[derive(Debug)]
pub(crate) enum ConnState {
    /// Serving; each half may have closed on its own (half-close).
    Open { read: ReadHalf, write: WriteHalf },
    /// Closing once pending output is written: nothing more is read or taken for sending.
    Draining { reason: CloseReason, read: ReadHalf },
    /// To be torn down at the end of this dispatch; pending output is dropped.
    Closing { reason: CloseReason, read: ReadHalf },
    /// Closed gracefully while the peer may still send: the write side is shut and what the
    /// peer sends is read and dropped until its end of stream or the linger timeout, so that
    /// unread input cannot make the final close a reset that destroys the last response in
    /// flight (nginx's lingering close). Torn down then, for `reason`.
    Lingering { reason: CloseReason },
    /// Being torn down: `on_closed` runs, then the connection leaves its loop.
    Closed,
}

impl ConnState {
    /// A connection just registered with its loop.
    pub(crate) fn new() -> Self {
        ConnState::Open { read: ReadHalf::Open, write: WriteHalf::Open }
    }

    /// Whether the loop reads from the socket (flow control aside): while open, and while
    /// lingering (to drop what comes).
    pub(crate) fn is_reading(&self) -> bool {
        matches!(self, ConnState::Open { read: ReadHalf::Open | ReadHalf::Ending, .. } | ConnState::Lingering { .. })
    }

    /// Whether the connection is open and its peer has ended its stream.
    pub(crate) fn is_peer_closed(&self) -> bool {
        matches!(self, ConnState::Open { read: ReadHalf::PeerClosed, .. })
    }

    /// Whether input is read only to be dropped (lingering).
    pub(crate) fn is_lingering(&self) -> bool {
        matches!(self, ConnState::Lingering { .. })
    }

    /// Whether the peer has finished and the loop reads to the end even while paused.
    pub(crate) fn is_ending(&self) -> bool {
        matches!(self, ConnState::Open { read: ReadHalf::Ending, .. })
    }

    /// epoll reported that the peer has finished sending (or the connection failed).
    pub(crate) fn peer_ending(&mut self) {
        if let ConnState::Open { read: read @ ReadHalf::Open, .. } = self {
            *read = ReadHalf::Ending;
        }
    }

    /// Whether sends are taken (not closing, write side not shut).
    pub(crate) fn takes_sends(&self) -> bool {
        matches!(self, ConnState::Open { write: WriteHalf::Open, .. })
    }

    /// Whether this side has finished sending: a close waits for the output, or the write side
    /// is (to be) shut. A TLS connection then says `close_notify`.
    pub(crate) fn is_done_sending(&self) -> bool {
        matches!(
            self,
            ConnState::Draining { .. } | ConnState::Open { write: WriteHalf::ShutAfterFlush | WriteHalf::Shut, .. }
        )
    }

    /// Whether pending output is still to be written (not closing now, not closed).
    pub(crate) fn writes_output(&self) -> bool {
        matches!(self, ConnState::Open { .. } | ConnState::Draining { .. })
    }

    /// Whether the connection is to be torn down now.
    pub(crate) fn is_closing_now(&self) -> bool {
        matches!(self, ConnState::Closing { .. })
    }

    /// The peer's side has ended (end of stream, reset, or a failed write). Returns `true` the
    /// first time, when `on_passively_closed` is owed.
    pub(crate) fn peer_closed(&mut self) -> bool {
        let read = match self {
            ConnState::Open { read, .. } | ConnState::Draining { read, .. } | ConnState::Closing { read, .. } => read,
            ConnState::Lingering { .. } | ConnState::Closed => return false,
        };
        std::mem::replace(read, ReadHalf::PeerClosed) != ReadHalf::PeerClosed
    }

    /// Asks for a close once pending output is written, unless a close is already on its way.
    pub(crate) fn request_close(&mut self, reason: CloseReason) {
        if let ConnState::Open { read, .. } = *self {
            *self = ConnState::Draining { reason, read };
        }
    }

    /// Asks for a close now, dropping pending output, unless one is already under way; a close
    /// that was waiting for output to drain is replaced.
    pub(crate) fn close_now(&mut self, reason: CloseReason) {
        match *self {
            ConnState::Open { read, .. } | ConnState::Draining { read, .. } => {
                *self = ConnState::Closing { reason, read }
            }
            ConnState::Closing { .. } | ConnState::Lingering { .. } | ConnState::Closed => {}
        }
    }

    /// Asks for the write side to be shut once pending output is written.
    pub(crate) fn shutdown_write(&mut self) {
        if let ConnState::Open { write: write @ WriteHalf::Open, .. } = self {
            *write = WriteHalf::ShutAfterFlush;
        }
    }

    /// Output has drained: returns `true` when the write side is to be shut now (it is then
    /// counted as shut).
    pub(crate) fn shut_write_now(&mut self) -> bool {
        if let ConnState::Open { write: write @ WriteHalf::ShutAfterFlush, .. } = self {
            *write = WriteHalf::Shut;
            return true;
        }
        false
    }

    /// Output has drained and a close was waiting for it: either it closes now (the reason
    /// comes back; the state is `Closed`), or, when `linger` and the peer may still send, it
    /// starts lingering (`None` comes back; the caller shuts the write side and sets the timer).
    pub(crate) fn drained(&mut self, linger: bool) -> Drained {
        let peer_may_send = match self {
            ConnState::Draining { read, .. } => *read == ReadHalf::Open,
            _ => return Drained::No,
        };
        match std::mem::replace(self, ConnState::Closed) {
            ConnState::Draining { reason, .. } if linger && peer_may_send => {
                *self = ConnState::Lingering { reason };
                Drained::Linger
            }
            ConnState::Draining { reason, .. } => Drained::Close(reason),
            _ => unreachable!("checked above"),
        }
    }

    /// The reason to tear down a lingering connection (its peer ended, or the timeout); it is
    /// then `Closed`.
    pub(crate) fn take_lingering(&mut self) -> Option<CloseReason> {
        if !self.is_lingering() {
            return None;
        }
        match std::mem::replace(self, ConnState::Closed) {
            ConnState::Lingering { reason } => Some(reason),
            _ => unreachable!("checked above"),
        }
    }

    /// The reason to tear down now, if the connection is closing; it is then `Closed`.
    pub(crate) fn take_closing(&mut self) -> Option<CloseReason> {
        if !self.is_closing_now() {
            return None;
        }
        match std::mem::replace(self, ConnState::Closed) {
            ConnState::Closing { reason, .. } => Some(reason),
            _ => unreachable!("checked above"),
        }
    }

    /// The reason of a close under way (draining, closing or lingering), which is then
    /// `Closed`; `None` (and no change) while open.
    pub(crate) fn take_reason(&mut self) -> Option<CloseReason> {
        match std::mem::replace(self, ConnState::Closed) {
            ConnState::Draining { reason, .. }
            | ConnState::Closing { reason, .. }
            | ConnState::Lingering { reason } => Some(reason),
            other => {
                *self = other;
                None
            }
        }
    }

    /// Enters `Closed` for a teardown that has its own reason (shutdown deadline, loop exit).
    pub(crate) fn set_closed(&mut self) {
        *self = ConnState::Closed;
    }
}

/// What [`ConnState::drained`] decided.
#[derive(Debug)]
pub(crate) enum Drained {
    /// No close was waiting for the output.
    No,
    /// Close now, for this reason.
    Close(CloseReason),
    /// Linger: shut the write side, drop input until the peer's end or the timeout.
    Linger,
}

/// Whether unsent output is above the high water mark (from reaching it until it falls to the
/// low one): the hysteresis of backpressure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Water {
    /// At or below the low water mark, or on the way up to the high one.
    Low,
    /// Reached the high water mark and not yet back down to the low one; `paused` when that
    /// pauses reading (the config's choice).
    High { paused: bool },
}

impl Water {
    /// Whether backpressure pauses reading.
    pub(crate) fn pauses(self) -> bool {
        matches!(self, Water::High { paused: true })
    }
}

/// Whether `on_write_complete` is owed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    /// Nothing was sent since the last `on_write_complete`.
    Idle,
    /// Something was sent: `on_write_complete` is owed once output drains.
    Owed,
    /// Owed, and the connection is in its loop's write-complete queue.
    Queued,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_closes_then_drains_then_closes() {
        let mut s = ConnState::new();
        assert!(s.is_reading() && s.takes_sends() && s.writes_output());
        s.peer_ending();
        assert!(s.is_reading() && s.is_ending(), "the end is read even while paused");
        assert!(s.peer_closed(), "first end of stream is news");
        assert!(!s.peer_closed(), "the second is not");
        assert!(!s.is_reading() && s.takes_sends());
        s.shutdown_write();
        assert!(!s.takes_sends() && s.writes_output());
        assert!(s.shut_write_now());
        assert!(!s.shut_write_now(), "shut once");
        s.request_close(CloseReason::Local);
        s.request_close(CloseReason::PeerClosed);
        assert!(!s.peer_closed(), "the peer's end is remembered through the close");
        assert!(matches!(s.drained(true), Drained::Close(CloseReason::Local)), "the first reason wins; no linger");
        assert!(matches!(s, ConnState::Closed));
        assert!(!s.takes_sends() && !s.writes_output());
    }

    #[test]
    fn close_now_overrides_draining_but_not_itself() {
        let mut s = ConnState::new();
        s.request_close(CloseReason::Shutdown);
        assert!(!s.is_reading() && !s.takes_sends() && s.writes_output());
        assert!(s.peer_closed(), "a failed write after a close request is still news");
        s.close_now(CloseReason::Idle(crate::conn::idle::IdleKind::Read));
        s.close_now(CloseReason::Local);
        assert!(s.is_closing_now() && !s.writes_output());
        assert!(matches!(s.drained(true), Drained::No));
        assert!(matches!(s.take_closing(), Some(CloseReason::Idle(_))));
        assert!(s.take_closing().is_none());
    }

    #[test]
    fn a_close_with_the_peer_still_sending_lingers() {
        let mut s = ConnState::new();
        s.request_close(CloseReason::Shutdown);
        assert!(matches!(s.drained(true), Drained::Linger));
        assert!(s.is_reading() && s.is_lingering() && !s.takes_sends() && !s.writes_output());
        assert!(!s.peer_closed(), "no on_passively_closed once closing locally");
        s.close_now(CloseReason::Local);
        assert!(matches!(s.take_lingering(), Some(CloseReason::Shutdown)));
        assert!(matches!(s, ConnState::Closed));
        let mut s = ConnState::new();
        s.request_close(CloseReason::Local);
        assert!(matches!(s.drained(false), Drained::Close(CloseReason::Local)), "linger off");
    }
}
