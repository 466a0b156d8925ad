//! epoll: create an instance, change what it watches, wait for events.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::cvt::{cvt, owned};

/// One epoll event as the kernel reports it.
pub(crate) type EpollEvent = libc::epoll_event;

/// Readable.
pub(crate) const EPOLLIN: u32 = libc::EPOLLIN as u32;
/// Writable.
pub(crate) const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
/// The peer shut its write side.
pub(crate) const EPOLLRDHUP: u32 = libc::EPOLLRDHUP as u32;
/// Both sides closed (always reported).
pub(crate) const EPOLLHUP: u32 = libc::EPOLLHUP as u32;
/// An error is pending on the socket (always reported).
pub(crate) const EPOLLERR: u32 = libc::EPOLLERR as u32;
/// Edge-triggered: report a change of readiness once, not for as long as it lasts.
pub(crate) const EPOLLET: u32 = libc::EPOLLET as u32;
/// Of the epoll instances watching one fd this way, wake one per event, not all (Linux 4.5).
pub(crate) const EPOLLEXCLUSIVE: u32 = libc::EPOLLEXCLUSIVE as u32;

/// Creates an epoll instance (`epoll_create1(EPOLL_CLOEXEC)`).
pub(crate) fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with a valid flag; the result is checked.
    let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    Ok(owned(fd))
}

fn epoll_ctl(ep: BorrowedFd<'_>, op: libc::c_int, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ep` and `fd` are open descriptors borrowed for the call; `ev` is a valid,
    // initialised epoll_event that the kernel only reads.
    cvt(unsafe { libc::epoll_ctl(ep.as_raw_fd(), op, fd, &mut ev) })?;
    Ok(())
}

/// Registers `fd` with `events`; `data` (a token, never the fd) comes back with each event.
pub(crate) fn epoll_add(ep: BorrowedFd<'_>, fd: BorrowedFd<'_>, events: u32, data: u64) -> io::Result<()> {
    epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd.as_raw_fd(), events, data)
}

/// Changes the interest set of a registered fd in place (never DEL + ADD).
pub(crate) fn epoll_mod(ep: BorrowedFd<'_>, fd: BorrowedFd<'_>, events: u32, data: u64) -> io::Result<()> {
    epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd.as_raw_fd(), events, data)
}

/// Removes a registered fd.
pub(crate) fn epoll_del(ep: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd.as_raw_fd(), 0, 0)
}

/// A zeroed event, to size the buffer `epoll_wait` fills.
pub(crate) fn empty_event() -> EpollEvent {
    libc::epoll_event { events: 0, u64: 0 }
}

/// Waits for events; `timeout_ms < 0` waits forever. An interrupted wait returns `Ok(0)`.
pub(crate) fn epoll_wait(ep: BorrowedFd<'_>, events: &mut [EpollEvent], timeout_ms: i32) -> io::Result<usize> {
    let max = events.len().min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: `events` is a valid, writable slice of `max` epoll_event structs; the kernel
    // writes at most `max` entries and returns how many.
    let ret = unsafe { libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), max, timeout_ms) };
    match cvt(ret) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;
    use crate::sys::{eventfd, eventfd_read, eventfd_write};

    #[test]
    fn eventfd_wakes_epoll() {
        let ep = epoll_create().unwrap();
        let ev = eventfd().unwrap();
        epoll_add(ep.as_fd(), ev.as_fd(), EPOLLIN, 7).unwrap();
        let mut events = vec![empty_event(); 4];
        assert_eq!(epoll_wait(ep.as_fd(), &mut events, 0).unwrap(), 0);
        eventfd_write(ev.as_fd()).unwrap();
        assert_eq!(epoll_wait(ep.as_fd(), &mut events, 1000).unwrap(), 1);
        let data = events[0].u64;
        assert_eq!(data, 7);
        eventfd_read(ev.as_fd()).unwrap();
        assert_eq!(epoll_wait(ep.as_fd(), &mut events, 0).unwrap(), 0);
        eventfd_read(ev.as_fd()).unwrap();
    }

    #[test]
    fn edge_triggered_reports_a_change_once() {
        let ep = epoll_create().unwrap();
        let ev = eventfd().unwrap();
        epoll_add(ep.as_fd(), ev.as_fd(), EPOLLIN | EPOLLET, 9).unwrap();
        let mut events = vec![empty_event(); 4];
        eventfd_write(ev.as_fd()).unwrap();
        assert_eq!(epoll_wait(ep.as_fd(), &mut events, 1000).unwrap(), 1);
        // Still readable, but no new edge: not reported again.
        assert_eq!(epoll_wait(ep.as_fd(), &mut events, 0).unwrap(), 0);
        eventfd_write(ev.as_fd()).unwrap();
        assert_eq!(epoll_wait(ep.as_fd(), &mut events, 1000).unwrap(), 1);
    }
}
