//! [`Mailbox`]: a loop's queue of work from other threads, woken through the loop's eventfd.
//!
//! Producers push under a short lock and wake the loop only when the queue was empty, so a
//! burst costs one eventfd write. The loop swaps the whole queue out under the lock and runs
//! it outside (muduo's `doPendingFunctors`). The mailbox knows nothing of what it carries.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::waker::Waker;
use crate::base::error::Error;

/// A loop's queue of `T` plus the eventfd that wakes it.
pub(crate) struct Mailbox<T> {
    queue: Mutex<Vec<T>>,
    closed: AtomicBool,
    waker: Waker,
}

impl<T> Mailbox<T> {
    pub(crate) fn new(waker: Waker) -> Self {
        Mailbox { queue: Mutex::new(Vec::new()), closed: AtomicBool::new(false), waker }
    }

    pub(crate) fn waker(&self) -> &Waker {
        &self.waker
    }

    /// Queues `item` and wakes the loop if it may be asleep. Any thread.
    ///
    /// # Errors
    /// [`Error::LoopStopped`] once the loop has exited; the item is dropped.
    pub(crate) fn push(&self, item: T) -> Result<(), Error> {
        let was_empty = {
            let mut q = self.queue.lock();
            if self.closed.load(Ordering::Relaxed) {
                return Err(Error::LoopStopped);
            }
            q.push(item);
            q.len() == 1
        };
        if was_empty {
            self.waker.wake();
        }
        Ok(())
    }

    /// Swaps the queued items into `out` (which must be empty). Loop thread only.
    pub(crate) fn take(&self, out: &mut Vec<T>) {
        debug_assert!(out.is_empty());
        std::mem::swap(&mut *self.queue.lock(), out);
    }

    /// Refuses further items and returns what was still queued. Loop thread, at exit.
    pub(crate) fn close(&self) -> Vec<T> {
        let mut q = self.queue.lock();
        self.closed.store(true, Ordering::Relaxed);
        std::mem::take(&mut *q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_take_close() {
        let mb = Mailbox::new(Waker::new().unwrap());
        mb.push(1).unwrap();
        mb.push(2).unwrap();
        let mut out = Vec::new();
        mb.take(&mut out);
        assert_eq!(out, [1, 2]);
        mb.push(3).unwrap();
        assert_eq!(mb.close(), [3]);
        assert!(matches!(mb.push(4), Err(Error::LoopStopped)));
    }
}
