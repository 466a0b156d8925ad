//! Running a function with a deadline (the C++ library's `Context` / `ThrWithCtx`).
//!
//! [`run_with_timeout`] runs a function on a process-wide [`WorkerPool`] (threads
//! `kingpin-ctx-N`, started while all are busy, at most 64) and waits for its value at most
//! until the deadline:
//!
//! ```text
//!  caller ──queue──▶ "kingpin-ctx-N" worker: value = f()  ──send──┐
//!    │                                                            ▼
//!    └── recv_timeout(timeout) ◀── Ok(value) | Panicked(msg) ◀─── slot
//!           └─ deadline passed: Err(TimedOut); f runs on (or, not started yet, never runs)
//! ```
//!
//! No thread is started per call, and the pool's queue is bounded: when it is full the call
//! fails at once with [`ContextError::Busy`].
//!
//! **A Rust thread cannot be killed.** When the deadline passes the caller gets
//! [`ContextError::TimedOut`] at once, but a function already running keeps its worker until
//! it returns by itself; its value is then dropped (a function still queued is dropped unrun). Do not give it work that must not outlive the
//! caller (e.g. holding a lock the caller needs). For work that can stop early, use
//! [`run_cancellable`]: the function receives a [`CancelToken`], cancelled at the deadline,
//! and checks it (or sleeps with [`CancelToken::sleep`], which wakes on cancellation).
//!
//! The framework uses this for blocking name resolution ([`resolve`]), which the C library
//! offers no way to bound.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use crate::base::error::Error;
use crate::base::panic::panic_message;
pub use crate::work::cancel::CancelToken;
use crate::work::pool::WorkerPool;

/// Most threads of the pool that runs [`run_with_timeout`]'s functions: they start while every
/// one is busy, so functions that outlive their caller's deadline (a hung name lookup) or that
/// call `run_with_timeout` themselves do not starve the others.
const CONTEXT_THREADS: usize = 64;

/// Functions that may wait for a thread of that pool; beyond, calls fail with `Busy`.
const CONTEXT_QUEUE: usize = 256;

/// The process-wide pool of [`run_with_timeout`], made on first use.
fn context_pool() -> &'static WorkerPool {
    static POOL: OnceLock<WorkerPool> = OnceLock::new();
    POOL.get_or_init(|| WorkerPool::named("kingpin-ctx", CONTEXT_THREADS, CONTEXT_QUEUE))
}

/// Why [`run_with_timeout`] or [`run_cancellable`] returned no value.
#[derive(Debug)]
#[non_exhaustive]
pub enum ContextError {
    /// The deadline passed first; the function runs on, detached (see the [module docs](self)).
    TimedOut(Duration),
    /// The function panicked; the panic message, if it had one.
    Panicked(String),
    /// No worker thread could be started to run it.
    Spawn(io::Error),
    /// Every worker is busy and the queue is full: the function was not run.
    Busy,
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextError::TimedOut(t) => write!(f, "timed out after {t:?}"),
            ContextError::Panicked(msg) => write!(f, "the function panicked: {msg}"),
            ContextError::Spawn(e) => write!(f, "cannot start a context worker: {e}"),
            ContextError::Busy => f.write_str("every context worker is busy and the queue is full"),
        }
    }
}

impl std::error::Error for ContextError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ContextError::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ContextError> for io::Error {
    fn from(e: ContextError) -> io::Error {
        match e {
            ContextError::TimedOut(_) => io::Error::new(io::ErrorKind::TimedOut, e),
            ContextError::Spawn(inner) => inner,
            ContextError::Panicked(_) => io::Error::other(e),
            ContextError::Busy => io::Error::new(io::ErrorKind::WouldBlock, e),
        }
    }
}

/// Runs `f` on a worker of the context pool and returns its value if it arrives within
/// `timeout`.
///
/// Any thread may call it; it blocks the caller for at most `timeout`.
///
/// # Errors
///
/// [`ContextError::TimedOut`] if `f` has not returned by the deadline (if it had started, it
/// runs on, detached), [`ContextError::Panicked`] if it panicked, [`ContextError::Busy`] if
/// the pool's queue is full, [`ContextError::Spawn`] if no worker could be started.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use kingpin::{run_with_timeout, ContextError};
///
/// assert_eq!(run_with_timeout(Duration::from_secs(5), || 6 * 7).unwrap(), 42);
/// let slow = run_with_timeout(Duration::from_millis(10), || std::thread::sleep(Duration::from_secs(1)));
/// assert!(matches!(slow, Err(ContextError::TimedOut(_))));
/// ```
pub fn run_with_timeout<T, F>(timeout: Duration, f: F) -> Result<T, ContextError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    // Cleared when the caller stops waiting: a function not started by then never runs.
    let waiting = Arc::new(AtomicBool::new(true));
    let still_waiting = waiting.clone();
    context_pool()
        .execute(move || {
            if still_waiting.load(Ordering::Acquire) {
                let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
            }
        })
        .map_err(|e| match e {
            Error::Busy => ContextError::Busy,
            other => ContextError::Spawn(other.into()),
        })?;
    let result = match rx.recv_timeout(timeout) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(payload)) => Err(ContextError::Panicked(panic_message(payload.as_ref()))),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(ContextError::TimedOut(timeout)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(ContextError::Panicked(String::new())),
    };
    waiting.store(false, Ordering::Release);
    result
}

/// Like [`run_with_timeout`], but `f` gets a [`CancelToken`] that is cancelled when the
/// deadline passes, so it can stop early instead of running on.
///
/// Any thread may call it.
///
/// # Errors
///
/// As [`run_with_timeout`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use kingpin::{run_cancellable, ContextError};
///
/// let r = run_cancellable(Duration::from_millis(10), |token| {
///     while !token.sleep(Duration::from_millis(1)) {} // work in small steps
/// });
/// assert!(matches!(r, Err(ContextError::TimedOut(_))));
/// ```
pub fn run_cancellable<T, F>(timeout: Duration, f: F) -> Result<T, ContextError>
where
    T: Send + 'static,
    F: FnOnce(&CancelToken) -> T + Send + 'static,
{
    run_cancellable_with(CancelToken::new(), timeout, f)
}

/// Like [`run_cancellable`] with a token of the caller's, who may also cancel it early (the
/// function then typically returns sooner, with whatever value it chooses).
///
/// # Errors
///
/// As [`run_with_timeout`].
pub fn run_cancellable_with<T, F>(token: CancelToken, timeout: Duration, f: F) -> Result<T, ContextError>
where
    T: Send + 'static,
    F: FnOnce(&CancelToken) -> T + Send + 'static,
{
    let inner = token.clone();
    let result = run_with_timeout(timeout, move || f(&inner));
    if matches!(result, Err(ContextError::TimedOut(_))) {
        token.cancel();
    }
    result
}

/// Resolves `host:port` to socket addresses, giving up after `timeout`.
///
/// The system resolver cannot be interrupted, so on timeout the lookup finishes on its
/// worker, detached (see the [module docs](self)). Any thread may call it.
///
/// # Errors
///
/// The resolver's error, or `ErrorKind::TimedOut`.
///
/// # Examples
///
/// ```
/// let addrs = kingpin::context::resolve("127.0.0.1:80", std::time::Duration::from_secs(5)).unwrap();
/// assert_eq!(addrs[0].port(), 80);
/// ```
pub fn resolve(host_port: &str, timeout: Duration) -> io::Result<Vec<SocketAddr>> {
    // A literal address needs no lookup, nor a worker.
    if let Ok(addr) = host_port.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let host_port = host_port.to_owned();
    run_with_timeout(timeout, move || host_port.to_socket_addrs().map(Iterator::collect))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_and_convert() {
        let e = ContextError::TimedOut(Duration::from_millis(5));
        assert_eq!(e.to_string(), "timed out after 5ms");
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::TimedOut);
        assert!(ContextError::Panicked("x".into()).to_string().contains('x'));
    }

    #[test]
    fn token_sleep_returns_on_time_or_cancel() {
        let t = CancelToken::new();
        assert!(!t.sleep(Duration::from_millis(1)));
        let c = t.clone();
        let h = std::thread::spawn(move || c.sleep(Duration::from_secs(30)));
        t.cancel();
        assert!(h.join().unwrap());
    }

    #[test]
    fn resolve_literal_addresses() {
        let a = resolve("[::1]:7", Duration::from_secs(5)).unwrap();
        assert_eq!(a, vec!["[::1]:7".parse().unwrap()]);
        assert!(resolve("no-port", Duration::from_secs(5)).is_err());
    }
}
