//! TCP sockets: create, listen, accept, connect, options, half-close.

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::addr::{from_sockaddr, to_sockaddr};
use super::cvt::{cvt, owned, retry};

fn set_int_opt(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: passes a pointer to a valid c_int and its exact size; the kernel only reads it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

fn get_int_opt(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` is a writable c_int and `len` its exact size.
    cvt(unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, (&mut value as *mut libc::c_int).cast(), &mut len) })?;
    Ok(value)
}

/// Creates a TCP socket for `addr`'s family, `NONBLOCK | CLOEXEC`.
pub(crate) fn tcp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain syscall with valid constants; the result is checked.
    let fd = cvt(unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })?;
    Ok(owned(fd))
}

/// Creates a listening TCP socket bound to `addr` (`SO_REUSEADDR`, optionally `SO_REUSEPORT`).
pub(crate) fn tcp_listen(addr: &SocketAddr, backlog: u32, reuse_port: bool) -> io::Result<OwnedFd> {
    let fd = tcp_socket(addr)?;
    set_int_opt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if reuse_port {
        set_int_opt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    }
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes for the socket's family.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len) })?;
    let backlog = backlog.min(libc::c_int::MAX as u32) as libc::c_int;
    // SAFETY: plain syscall on an open, bound socket.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) })?;
    Ok(fd)
}

/// Accepts one connection, `NONBLOCK | CLOEXEC`; `WouldBlock` when the queue is empty.
pub(crate) fn accept(listener: BorrowedFd<'_>) -> io::Result<(OwnedFd, SocketAddr)> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let fd = retry(|| {
        let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `storage` is a writable sockaddr_storage of `len` bytes; flags are valid.
        cvt(unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                storage.as_mut_ptr().cast(),
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        })
    })?;
    let fd = owned(fd);
    // SAFETY: zero-initialised storage, partly overwritten by the kernel: always initialised.
    let peer = from_sockaddr(unsafe { &storage.assume_init() })?;
    Ok((fd, peer))
}

/// Starts a non-blocking connect; `Ok(true)` while it is in progress (`EINPROGRESS`),
/// `Ok(false)` when it completed at once.
pub(crate) fn connect(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<bool> {
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes for the socket's family.
    let ret = unsafe { libc::connect(fd.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len) };
    match cvt(ret) {
        Ok(_) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(true),
        // An interrupted non-blocking connect goes on in the background, like EINPROGRESS.
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
        Err(e) => Err(e),
    }
}

/// Takes the pending error of a socket (`SO_ERROR`), e.g. the outcome of a connect.
pub(crate) fn take_socket_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let err = get_int_opt(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok(if err == 0 { None } else { Some(io::Error::from_raw_os_error(err)) })
}

/// Sets or clears `TCP_NODELAY`.
pub(crate) fn set_nodelay(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on as libc::c_int)
}

/// Reads whether `TCP_NODELAY` is set.
#[cfg(test)]
pub(crate) fn nodelay(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(get_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0)
}

/// Shuts down the write side of a connected socket (half-close; the peer reads end of stream).
pub(crate) fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on an open socket with a valid `how`.
    cvt(unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) })?;
    Ok(())
}

/// Stops a listening socket from listening (`shutdown(SHUT_RDWR)`): connections still in its
/// queue are reset and new ones are refused, while the fd stays open for whoever holds it.
pub(crate) fn stop_listening(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on an open socket with a valid `how`.
    cvt(unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::sys::cvt::retry_until_ok;

    #[test]
    fn listen_accept_options_half_close() {
        let listener = tcp_listen(&"127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
        let addr = std::net::TcpListener::from(listener.try_clone().unwrap()).local_addr().unwrap();
        assert!(matches!(accept(listener.as_fd()), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        let (conn, peer) = retry_until_ok(|| accept(listener.as_fd()));
        assert_eq!(peer, client.local_addr().unwrap());
        set_nodelay(conn.as_fd(), true).unwrap();
        assert!(nodelay(conn.as_fd()).unwrap());
        assert!(take_socket_error(conn.as_fd()).unwrap().is_none());
        let mut server = std::net::TcpStream::from(conn);
        server.write_all(b"hi").unwrap();
        shutdown_write(server.as_fd()).unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hi", "end of stream after the bytes");
    }
}
