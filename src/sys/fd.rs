//! Descriptors that cross processes: adopting one inherited at start (socket activation, a
//! handover), checking that it is a listening TCP socket, and keeping one open across `exec`
//! for a successor.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::addr::local_addr;
use super::cvt::{cvt, owned};

/// Adopts descriptor `raw`, which this process inherited to own (systemd's `LISTEN_FDS`, or a
/// predecessor's handover): checks that it is open, and makes it close on `exec`.
///
/// # Errors
/// `EBADF` when no such descriptor is open.
pub(crate) fn adopt(raw: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags; an fd that is not open fails (EBADF).
    cvt(unsafe { libc::fcntl(raw, libc::F_GETFD) })?;
    // SAFETY: the descriptor is open (checked above) and was passed to this process to own by
    // its parent; the callers adopt each inherited number once (the environment is read once).
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    set_cloexec(std::os::fd::AsFd::as_fd(&fd), true)?;
    Ok(fd)
}

/// Sets or clears `FD_CLOEXEC`.
fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD read and set the flags of an open descriptor.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) })?;
    let flags = if on { flags | libc::FD_CLOEXEC } else { flags & !libc::FD_CLOEXEC };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags) })?;
    Ok(())
}

/// Makes a socket non-blocking (an inherited listener may not be).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL read and set the status flags of an open descriptor.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}

/// The address of `fd` if it is a listening TCP socket (IPv4 or IPv6), else an error that says
/// what it is not.
pub(crate) fn listening_tcp_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    let int_opt = |name| -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` is a writable c_int and `len` its exact size.
        cvt(unsafe {
            libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, name, (&mut value as *mut libc::c_int).cast(), &mut len)
        })
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("not a socket ({e})")))?;
        Ok(value)
    };
    if int_opt(libc::SO_TYPE)? != libc::SOCK_STREAM {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a stream socket"));
    }
    if int_opt(libc::SO_ACCEPTCONN)? == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not listening"));
    }
    local_addr(fd).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("not a TCP socket ({e})")))
}

/// This process's id.
pub(crate) fn getpid() -> u32 {
    std::process::id()
}

/// A pipe, both ends `CLOEXEC`: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two c_ints, as pipe2 requires.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// Has the child that `cmd` starts keep descriptors `keep` open across its `exec` (they are
/// `CLOEXEC` in this process, so no other child, and no thread's `exec`, gets them).
pub(crate) fn keep_across_exec(cmd: &mut Command, keep: Vec<RawFd>) {
    // SAFETY: the closure runs in the forked child before exec and only calls fcntl, which is
    // async-signal-safe, on descriptor numbers copied in beforehand; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &keep {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags == -1 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, IntoRawFd};

    use super::*;

    #[test]
    fn a_listener_is_recognised_and_other_descriptors_are_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(listening_tcp_addr(listener.as_fd()).unwrap(), addr);
        let client = std::net::TcpStream::connect(addr).unwrap();
        assert!(listening_tcp_addr(client.as_fd()).unwrap_err().to_string().contains("not listening"));
        let (r, _w) = pipe().unwrap();
        assert!(listening_tcp_addr(r.as_fd()).unwrap_err().to_string().contains("not a socket"));
    }

    #[test]
    fn adopting_checks_that_the_descriptor_is_open() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let raw = listener.into_raw_fd();
        let fd = adopt(raw).unwrap();
        set_nonblocking(fd.as_fd()).unwrap();
        drop(fd);
        assert_eq!(adopt(raw).unwrap_err().raw_os_error(), Some(libc::EBADF));
    }
}
