//! The crate's error type for operations that cross threads (handles, the worker pool).

use std::fmt;
use std::io;

/// Why an operation on a connection or loop from another thread failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The connection has closed; its handle is stale. Nothing was sent.
    Closed,
    /// The IO loop has stopped (the server or client shut down). Nothing was delivered.
    LoopStopped,
    /// The connection's pending output is at its high water mark: its peer is not reading as
    /// fast as it is sent to. Nothing was queued.
    Full,
    /// The worker pool's queue is full: the job was not queued (nothing waits, nothing runs).
    Busy,
    /// The worker pool has stopped (or the loop is shutting down) and takes no more jobs.
    Stopped,
    /// An operating-system error.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed => f.write_str("connection is closed"),
            Error::LoopStopped => f.write_str("io loop has stopped"),
            Error::Full => f.write_str("connection's output is full (its peer is not reading)"),
            Error::Busy => f.write_str("the worker pool's queue is full"),
            Error::Stopped => f.write_str("the worker pool takes no more jobs (shutting down)"),
            Error::Io(e) => write!(f, "io error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            Error::Closed => io::Error::new(io::ErrorKind::NotConnected, e.to_string()),
            Error::LoopStopped => io::Error::new(io::ErrorKind::BrokenPipe, e.to_string()),
            Error::Full | Error::Busy => io::Error::new(io::ErrorKind::WouldBlock, e.to_string()),
            Error::Stopped => io::Error::new(io::ErrorKind::BrokenPipe, e.to_string()),
        }
    }
}
