//! The system layer: every raw syscall and every `unsafe` block of the crate lives here.
//!
//! Conventions, checked by review:
//! - every fd is returned as an [`OwnedFd`] and created `NONBLOCK | CLOEXEC`;
//! - `EINTR` is retried here, so callers never see it;
//! - `WouldBlock` is returned as an ordinary `io::Error` of kind `WouldBlock`, which callers
//!   treat as flow, not failure;
//! - writes use `send(.., MSG_NOSIGNAL)`, so a peer that has gone never raises `SIGPIPE`.

use std::io::{self, IoSliceMut};
use std::mem::{self, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Converts a `-1` return into the thread's `errno` as an `io::Error`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`] for `ssize_t` returns.
fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Runs `f` until it does not fail with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Wraps a freshly created fd.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful syscall that creates a new descriptor, so
    // it is open and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

// ---------------------------------------------------------------------------------------------
// epoll
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// eventfd
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// socket addresses
// ---------------------------------------------------------------------------------------------

/// Converts a std address into a `sockaddr_storage` and its length.
fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data for which all-zero bytes are valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Converts a kernel-filled `sockaddr_storage` back into a std address.
fn from_sockaddr(storage: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in; storage is aligned for it.
            let sin: &libc::sockaddr_in = unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6; storage is aligned for it.
            let sin6: &libc::sockaddr_in6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        family => Err(io::Error::new(io::ErrorKind::InvalidData, format!("unsupported address family {family}"))),
    }
}

type AddrFn = unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

fn sock_name(fd: BorrowedFd<'_>, f: AddrFn) -> io::Result<SocketAddr> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is a writable sockaddr_storage of `len` bytes; the kernel writes at most
    // `len` bytes and updates `len`.
    cvt(unsafe { f(fd.as_raw_fd(), storage.as_mut_ptr().cast(), &mut len) })?;
    // SAFETY: zero-initialised storage, partly overwritten by the kernel: always initialised.
    from_sockaddr(unsafe { &storage.assume_init() })
}

/// The local address of a socket (`getsockname`).
pub(crate) fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    sock_name(fd, libc::getsockname)
}

/// The peer address of a connected socket (`getpeername`).
pub(crate) fn peer_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    sock_name(fd, libc::getpeername)
}

// ---------------------------------------------------------------------------------------------
// sockets
// ---------------------------------------------------------------------------------------------

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
    set_int_opt(fd.as_fd_ref(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if reuse_port {
        set_int_opt(fd.as_fd_ref(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
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

/// Scatter-reads into `bufs` (`readv`); `Ok(0)` means end of stream.
pub(crate) fn readv(fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    let count = bufs.len().min(libc::c_int::MAX as usize) as libc::c_int;
    retry(|| {
        // SAFETY: IoSliceMut is ABI-compatible with iovec; each points to writable memory that
        // outlives the call, and the kernel writes at most each slice's length.
        cvt_size(unsafe { libc::readv(fd.as_raw_fd(), bufs.as_ptr().cast(), count) })
    })
}

/// Writes to a socket without ever raising `SIGPIPE` (`send(.., MSG_NOSIGNAL)`).
pub(crate) fn send(fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: `data` is a valid readable slice for the duration of the call.
        cvt_size(unsafe { libc::send(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) })
    })
}

/// Copies up to `count` bytes of `file`, starting at `*offset`, to the socket `out` inside the
/// kernel (`sendfile(2)`): no copy through user space. `*offset` advances by the bytes sent;
/// the file's own position is untouched.
///
/// `Ok(0)` with `count > 0` means `*offset` is at or past the end of the file. `WouldBlock` is
/// returned as is when the socket's send buffer is full; `EINTR` is retried. Errors that
/// concern the file rather than the socket (`EINVAL` when it cannot be mapped, `EIO`,
/// `EOVERFLOW`) come back like any other.
pub(crate) fn sendfile(out: BorrowedFd<'_>, file: BorrowedFd<'_>, offset: &mut u64, count: usize) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(*offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset does not fit in off_t"))?;
    let n = retry(|| {
        // SAFETY: both descriptors are open for the call; `off` is a valid, writable off_t on the
        // stack that the kernel reads and updates; `count` is a plain length (the kernel caps it).
        cvt_size(unsafe { libc::sendfile(out.as_raw_fd(), file.as_raw_fd(), &mut off, count) })
    })?;
    *offset = off as u64;
    Ok(n)
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

/// The calling thread's kernel thread id (for log lines).
pub(crate) fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() as u64 }
}

/// Borrowing helper so call sites read `fd.as_fd_ref()` on an `OwnedFd`.
pub(crate) trait AsFdRef {
    /// Borrows the descriptor.
    fn as_fd_ref(&self) -> BorrowedFd<'_>;
}

impl AsFdRef for OwnedFd {
    fn as_fd_ref(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for s in ["127.0.0.1:8080", "[::1]:9000", "0.0.0.0:0", "[fe80::1%2]:1"] {
            let addr: SocketAddr = s.parse().unwrap();
            let (storage, _) = to_sockaddr(&addr);
            assert_eq!(from_sockaddr(&storage).unwrap(), addr);
        }
    }

    #[test]
    fn listen_accept_send_read() {
        let listener = tcp_listen(&"127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
        let addr = local_addr(listener.as_fd_ref()).unwrap();
        assert!(matches!(accept(listener.as_fd_ref()), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        let (conn, peer) = retry_until_ok(|| accept(listener.as_fd_ref()));
        assert_eq!(peer, client.local_addr().unwrap());
        set_nodelay(conn.as_fd_ref(), true).unwrap();
        assert!(nodelay(conn.as_fd_ref()).unwrap());
        assert_eq!(send(conn.as_fd_ref(), b"hi").unwrap(), 2);
        let mut got = [0u8; 2];
        std::io::Read::read_exact(&mut client, &mut got).unwrap();
        assert_eq!(&got, b"hi");
        std::io::Write::write_all(&mut client, b"abc").unwrap();
        let (mut a, mut b) = ([0u8; 1], [0u8; 8]);
        let n = retry_until_ok(|| readv(conn.as_fd_ref(), &mut [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)]));
        assert_eq!(n, 3);
        assert_eq!((&a[..], &b[..2]), (&b"a"[..], &b"bc"[..]));
        drop(client);
        assert_eq!(retry_until_ok(|| readv(conn.as_fd_ref(), &mut [IoSliceMut::new(&mut b)])), 0);
    }

    #[test]
    fn eventfd_wakes_epoll() {
        let ep = epoll_create().unwrap();
        let ev = eventfd().unwrap();
        epoll_add(ep.as_fd_ref(), ev.as_fd_ref(), EPOLLIN, 7).unwrap();
        let mut events = vec![empty_event(); 4];
        assert_eq!(epoll_wait(ep.as_fd_ref(), &mut events, 0).unwrap(), 0);
        eventfd_write(ev.as_fd_ref()).unwrap();
        assert_eq!(epoll_wait(ep.as_fd_ref(), &mut events, 1000).unwrap(), 1);
        let data = events[0].u64;
        assert_eq!(data, 7);
        eventfd_read(ev.as_fd_ref()).unwrap();
        assert_eq!(epoll_wait(ep.as_fd_ref(), &mut events, 0).unwrap(), 0);
        eventfd_read(ev.as_fd_ref()).unwrap();
    }

    #[test]
    fn sendfile_from_an_offset_then_would_block() {
        use std::io::{Read, Write};
        let listener = tcp_listen(&"127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
        let mut client = std::net::TcpStream::connect(local_addr(listener.as_fd_ref()).unwrap()).unwrap();
        let (conn, _) = retry_until_ok(|| accept(listener.as_fd_ref()));
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let file_fd = std::os::fd::AsFd::as_fd(&file);

        let mut offset = 10;
        let n = retry_until_ok(|| sendfile(conn.as_fd_ref(), file_fd, &mut offset, 1000));
        assert_eq!((n, offset), (1000, 1010));
        let mut got = vec![0; 1000];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, &data[10..1010]);

        // At the end of the file: nothing to send.
        let mut end = data.len() as u64;
        assert_eq!(sendfile(conn.as_fd_ref(), file_fd, &mut end, 10).unwrap(), 0);
        assert_eq!(end, data.len() as u64);

        // The client never reads: the socket fills up and says so.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let err = loop {
            assert!(std::time::Instant::now() < deadline, "socket never filled up");
            let mut off = 0;
            match sendfile(conn.as_fd_ref(), file_fd, &mut off, data.len()) {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    /// Retries a non-blocking call for up to 5 s.
    fn retry_until_ok<T>(mut f: impl FnMut() -> io::Result<T>) -> T {
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
}
