//! [`CancelToken`]: a flag that asks work running on another thread to stop early.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

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
