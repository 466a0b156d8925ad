//! Turning raw syscall results into `io::Result`s, retrying `EINTR`, and owning new fds.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Converts a `-1` return into the thread's `errno` as an `io::Error`.
pub(super) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`] for `ssize_t` returns.
pub(super) fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Runs `f` until it does not fail with `EINTR`.
pub(super) fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Wraps a freshly created fd.
pub(super) fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful syscall that creates a new descriptor, so
    // it is open and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Retries a non-blocking call for up to 5 s (tests only).
#[cfg(test)]
pub(super) fn retry_until_ok<T>(mut f: impl FnMut() -> io::Result<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// A connected TCP pair over loopback, made with std alone (tests only): the server side as a
/// non-blocking `OwnedFd`, and the client side.
#[cfg(test)]
pub(super) fn loopback_pair() -> (OwnedFd, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    (OwnedFd::from(server), client)
}
