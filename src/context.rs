//! Running a function with a deadline (the C++ library's `Context` / `ThrWithCtx`).
//!
//! [`run_with_timeout`] runs a function on a fresh thread and waits for its value at most
//! until the deadline:
//!
//! ```text
//!  caller ──spawn──▶ "kingpin-ctx" thread: value = f()  ──send──┐
//!    │                                                          ▼
//!    └── recv_timeout(timeout) ◀── Ok(value) | Panicked(msg) ◀─ slot
//!           └─ deadline passed: Err(TimedOut), the thread is detached and runs on
//! ```
//!
//! **A Rust thread cannot be killed.** When the deadline passes the caller gets
//! [`ContextError::TimedOut`] at once, but the function keeps running, detached, until it
//! returns by itself; its value is then dropped. Do not give it work that must not outlive the
//! caller (e.g. holding a lock the caller needs). For work that can stop early, use
//! [`run_cancellable`]: the function receives a [`CancelToken`], cancelled at the deadline,
//! and checks it (or sleeps with [`CancelToken::sleep`], which wakes on cancellation).
//!
//! The framework uses this for blocking name resolution ([`resolve`]), which the C library
//! offers no way to bound.

use std::any::Any;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Why [`run_with_timeout`] or [`run_cancellable`] returned no value.
#[derive(Debug)]
pub enum ContextError {
    /// The deadline passed first; the function runs on, detached (see the [module docs](self)).
    TimedOut(Duration),
    /// The function panicked; the panic message, if it had one.
    Panicked(String),
    /// The thread could not be spawned.
    Spawn(io::Error),
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextError::TimedOut(t) => write!(f, "timed out after {t:?}"),
            ContextError::Panicked(msg) => write!(f, "the function panicked: {msg}"),
            ContextError::Spawn(e) => write!(f, "cannot spawn the context thread: {e}"),
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
        }
    }
}

/// A flag a function checks to stop early; cloning it shares the flag.
///
/// Every method may be called from any thread.
///
/// # Examples
///
/// ```
/// let token = kingpin::CancelToken::new();
/// let seen = token.clone();
/// token.cancel();
/// assert!(seen.is_cancelled());
/// ```
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    /// The flag, and a condition variable for [`sleep`](Self::sleep).
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the token (idempotent) and wakes every [`sleep`](Self::sleep).
    pub fn cancel(&self) {
        let (flag, cv) = &*self.inner;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cv.notify_all();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        *self.inner.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `duration` or until cancelled; returns `true` if cancelled.
    pub fn sleep(&self, duration: Duration) -> bool {
        let (flag, cv) = &*self.inner;
        let deadline = crate::base::timer::after(Instant::now(), duration);
        let mut cancelled = flag.lock().unwrap_or_else(PoisonError::into_inner);
        while !*cancelled {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            cancelled = cv.wait_timeout(cancelled, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        *cancelled
    }
}

/// Runs `f` on a new thread and returns its value if it arrives within `timeout`.
///
/// Any thread may call it; it blocks the caller for at most `timeout` (plus thread start-up).
///
/// # Errors
///
/// [`ContextError::TimedOut`] if `f` has not returned by the deadline (it then runs on,
/// detached), [`ContextError::Panicked`] if it panicked, [`ContextError::Spawn`] if no thread
/// could be started.
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
    std::thread::Builder::new()
        .name("kingpin-ctx".into())
        .spawn(move || {
            let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
        })
        .map_err(ContextError::Spawn)?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(payload)) => Err(ContextError::Panicked(panic_message(payload.as_ref()))),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(ContextError::TimedOut(timeout)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(ContextError::Panicked(String::new())),
    }
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
/// The system resolver cannot be interrupted, so on timeout the lookup finishes on a detached
/// thread (see the [module docs](self)). Any thread may call it.
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
    let host_port = host_port.to_owned();
    run_with_timeout(timeout, move || host_port.to_socket_addrs().map(Iterator::collect))?
}

/// The message of a panic payload, if it is a string.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    match payload.downcast_ref::<&str>() {
        Some(s) => (*s).to_owned(),
        None => payload.downcast_ref::<String>().cloned().unwrap_or_default(),
    }
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
