//! The process-wide budget of buffered bytes: each loop publishes what its connections' buffers,
//! its pool and its mailbox hold once per turn; when the sum reaches the budget, every loop stops accepting
//! and its largest holders pause reading until it falls below 7/8 of it, while pending output
//! keeps draining.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crossbeam_utils::CachePadded;

/// The largest move of a loop's figure that is not published.
const PUBLISH_STEP: usize = 64 << 10;

/// Bytes held by the buffers of each loop, against one limit.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    stall: Duration,
    per_loop: Vec<CachePadded<AtomicUsize>>,
}

impl Budget {
    pub(crate) fn new(limit: usize, loops: usize, stall: Duration) -> Self {
        Budget { limit, stall, per_loop: (0..loops).map(|_| CachePadded::new(AtomicUsize::new(0))).collect() }
    }

    /// How long a large holder may stay stuck while the budget is exhausted.
    pub(crate) fn stall_timeout(&self) -> Duration {
        self.stall
    }

    /// Publishes loop `index`'s total.
    pub(crate) fn publish(&self, index: usize, bytes: usize) {
        // Only moves of a step or more are written, so that loops reading the figure every
        // turn do not pull a cache line that changes every turn.
        let slot = &self.per_loop[index];
        let now = slot.load(Relaxed);
        if now.abs_diff(bytes) >= (self.limit / 64).min(PUBLISH_STEP) || (bytes == 0 && now != 0) {
            slot.store(bytes, Relaxed);
        }
    }

    pub(crate) fn used(&self) -> usize {
        self.per_loop.iter().map(|a| a.load(Relaxed)).sum()
    }

    /// Whether loops should hold back, given whether they already do (hysteresis: hold back at
    /// the limit, resume below 7/8 of it).
    pub(crate) fn hold_back(&self, holding: bool) -> bool {
        let used = self.used();
        if holding {
            used >= self.limit / 8 * 7
        } else {
            used >= self.limit
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis() {
        let b = Budget::new(800, 2, Duration::from_secs(1));
        b.publish(0, 500);
        assert!(!b.hold_back(false));
        b.publish(1, 300);
        assert!(b.hold_back(false));
        b.publish(1, 250);
        assert!(b.hold_back(true), "750 >= 700: still holding");
        b.publish(1, 100);
        assert!(!b.hold_back(true));
        assert_eq!((b.used(), b.limit()), (600, 800));
    }
}
