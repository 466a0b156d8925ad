//! Why a connection closed: [`CloseReason`], given to [`crate::IoHandler::on_closed`].

use std::fmt;
use std::io;

use super::idle::IdleKind;
use crate::tls::TlsError;

/// Why a connection closed, given to [`crate::IoHandler::on_closed`].
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// This side closed it: [`crate::Conn::close`], [`crate::Conn::force_close`] or a [`crate::ConnHandle`].
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
    /// The memory budget was exhausted and this connection, one of the largest holders, could
    /// not make progress within the budget's stall timeout.
    MemoryBudget,
    /// An idle timeout fired and the handler let the connection go.
    Idle(IdleKind),
    /// Server or client shutdown; the pending output was written first.
    Shutdown,
    /// Server or client shutdown; the deadline passed with output still pending, which was
    /// discarded.
    ShutdownForced,
    /// The peer's bytes broke the protocol: the codec of [`crate::Conn::decode`] could not
    /// frame them (the message says why, e.g. a frame over the codec's limit). Pending output
    /// was written first.
    Protocol(String),
    /// The TLS session failed: the peer broke the protocol, or the handshake failed or ran out
    /// of time. An alert, if any, was written first. (A connection whose handshake never
    /// completed is closed without [`crate::IoHandler::on_closed`]; see
    /// [`crate::IoHandler::on_tls_error`].)
    Tls(TlsError),
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
            CloseReason::MemoryBudget => f.write_str("stalled while the memory budget was exhausted"),
            CloseReason::Idle(kind) => write!(f, "idle timeout ({kind:?})"),
            CloseReason::Shutdown => f.write_str("shutdown"),
            CloseReason::ShutdownForced => f.write_str("shutdown deadline passed, output discarded"),
            CloseReason::Protocol(m) => write!(f, "protocol error: {m}"),
            CloseReason::Tls(e) => write!(f, "{e}"),
        }
    }
}
