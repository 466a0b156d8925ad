//! [`Shutdown`]: a trigger for a graceful shutdown, usable from any thread.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::base::timer;

/// Triggers a graceful shutdown from any thread: stop accepting (or connecting), write pending
/// output (until the timeout), close every connection (their `on_closed` fires), and let the
/// IO threads exit.
#[derive(Clone)]
pub struct Shutdown {
    timeout: Duration,
    trigger: Arc<dyn Fn(Instant) + Send + Sync>,
}

impl Shutdown {
    pub(crate) fn new(timeout: Duration, trigger: Arc<dyn Fn(Instant) + Send + Sync>) -> Self {
        Shutdown { timeout, trigger }
    }

    /// Begins shutdown with the configured timeout; returns at once. Idempotent; any thread.
    pub fn shutdown(&self) {
        self.shutdown_with_timeout(self.timeout);
    }

    /// Begins shutdown; connections with output still pending after `timeout` are force-closed
    /// with [`crate::CloseReason::ShutdownForced`].
    pub fn shutdown_with_timeout(&self, timeout: Duration) {
        (self.trigger)(timer::after(Instant::now(), timeout));
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown").field("timeout", &self.timeout).finish()
    }
}
