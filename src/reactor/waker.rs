//! Wakes an IO loop blocked in `epoll_wait` from any thread, through an eventfd.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys;

/// An eventfd registered in one loop's epoll; writing it makes that `epoll_wait` return.
#[derive(Debug)]
pub(crate) struct Waker {
    fd: OwnedFd,
}

impl Waker {
    /// Creates the eventfd (`EFD_NONBLOCK | EFD_CLOEXEC`).
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Waker { fd: sys::eventfd()? })
    }

    /// Wakes the loop. Any thread may call it; a wake-up already pending is merged.
    pub(crate) fn wake(&self) {
        if let Err(e) = sys::eventfd_write(self.fd.as_fd()) {
            // An eventfd write can only fail on a programming error (bad fd); never lose it silently.
            log::error!(target: "kingpin::waker", "eventfd write failed: {e}");
        }
    }

    /// Clears pending wake-ups. Called by the loop thread when the eventfd is readable.
    pub(crate) fn drain(&self) {
        if let Err(e) = sys::eventfd_read(self.fd.as_fd()) {
            log::error!(target: "kingpin::waker", "eventfd read failed: {e}");
        }
    }
}

impl AsFd for Waker {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
