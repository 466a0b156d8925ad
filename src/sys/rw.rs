//! Moving bytes through a connected socket: `recv`, `readv`, `send`, gathered `sendmsg`,
//! and `sendfile` from a file.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt::{cvt_size, retry};

/// Reads into `buf` (`recv`); `Ok(0)` means end of stream (for a non-empty `buf`).
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: `buf` is valid writable memory of `buf.len()` bytes for the call; the kernel
        // writes at most that many.
        cvt_size(unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })
    })
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

/// Writes several slices with one system call (`sendmsg(.., MSG_NOSIGNAL)`), never raising
/// `SIGPIPE`. Returns how many bytes the socket took, counted across the slices in order.
pub(crate) fn writev(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: msghdr is plain old data for which all-zero bytes are valid (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize) as _;
    retry(|| {
        // SAFETY: IoSlice is ABI-compatible with iovec; `msg` points to `msg_iovlen` of them,
        // each valid readable memory for the call, which the kernel only reads.
        cvt_size(unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    use super::*;
    use crate::sys::cvt::{loopback_pair, retry_until_ok};

    #[test]
    fn recv_and_gathered_send() {
        let (conn, mut client) = loopback_pair();
        let n = writev(conn.as_fd(), &[IoSlice::new(b"head "), IoSlice::new(b""), IoSlice::new(b"body")]).unwrap();
        assert_eq!(n, 9);
        let mut got = [0u8; 9];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"head body");
        client.write_all(b"xyz").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(retry_until_ok(|| recv(conn.as_fd(), &mut buf)), 3);
        assert_eq!(&buf[..3], b"xyz");
        assert_eq!(recv(conn.as_fd(), &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        drop(client);
        assert_eq!(retry_until_ok(|| recv(conn.as_fd(), &mut buf)), 0);
    }

    #[test]
    fn readv_scatters() {
        let (conn, mut client) = loopback_pair();
        client.write_all(b"abc").unwrap();
        let (mut a, mut b) = ([0u8; 1], [0u8; 8]);
        let n = retry_until_ok(|| readv(conn.as_fd(), &mut [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)]));
        assert_eq!(n, 3);
        assert_eq!((&a[..], &b[..2]), (&b"a"[..], &b"bc"[..]));
        drop(client);
        assert_eq!(retry_until_ok(|| readv(conn.as_fd(), &mut [IoSliceMut::new(&mut b)])), 0);
    }

    #[test]
    fn sendfile_from_an_offset_then_would_block() {
        let (conn, mut client) = loopback_pair();
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let file_fd = file.as_fd();

        let mut offset = 10;
        let n = retry_until_ok(|| sendfile(conn.as_fd(), file_fd, &mut offset, 1000));
        assert_eq!((n, offset), (1000, 1010));
        let mut got = vec![0; 1000];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, &data[10..1010]);

        // At the end of the file: nothing to send.
        let mut end = data.len() as u64;
        assert_eq!(sendfile(conn.as_fd(), file_fd, &mut end, 10).unwrap(), 0);
        assert_eq!(end, data.len() as u64);

        // The client never reads: the socket fills up and says so.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let err = loop {
            assert!(std::time::Instant::now() < deadline, "socket never filled up");
            let mut off = 0;
            match sendfile(conn.as_fd(), file_fd, &mut off, data.len()) {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }
}
