//! eventfd: a counter another thread can bump to make an `epoll_wait` return.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::cvt::{cvt, cvt_size, owned, retry};

/// Creates a non-blocking, close-on-exec eventfd with counter 0.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with valid flags; the result is checked.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    Ok(owned(fd))
}

/// Adds 1 to an eventfd's counter. A full counter (`WouldBlock`) already means "wake up".
pub(crate) fn eventfd_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one: u64 = 1;
    let ret = retry(|| {
        // SAFETY: writes 8 bytes from a valid u64 on the stack to an open eventfd.
        cvt_size(unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) })
    });
    match ret {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

/// Resets an eventfd's counter to 0; a counter already at 0 is not an error.
pub(crate) fn eventfd_read(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut value: u64 = 0;
    let ret = retry(|| {
        // SAFETY: reads 8 bytes into a valid, writable u64 on the stack from an open eventfd.
        cvt_size(unsafe { libc::read(fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) })
    });
    match ret {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}
