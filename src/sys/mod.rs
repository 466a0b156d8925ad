//! The system layer: every raw syscall and every `unsafe` block of the crate lives here, split
//! by topic. Nothing in it knows of loops, connections or handlers.
//!
//! Conventions, checked by review:
//! - every fd is returned as an [`std::os::fd::OwnedFd`] and created `NONBLOCK | CLOEXEC`;
//! - `EINTR` is retried here, so callers never see it;
//! - `WouldBlock` is returned as an ordinary `io::Error` of kind `WouldBlock`, which callers
//!   treat as flow, not failure;
//! - writes use `MSG_NOSIGNAL`, so a peer that has gone never raises `SIGPIPE`.

mod addr;
mod cvt;
mod epoll;
mod eventfd;
mod fd;
mod rw;
mod socket;
mod thread;

pub(crate) use addr::{local_addr, peer_addr};
pub(crate) use epoll::{
    empty_event, epoll_add, epoll_create, epoll_del, epoll_mod, epoll_wait, EpollEvent, EPOLLERR, EPOLLET,
    EPOLLEXCLUSIVE, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP,
};
pub(crate) use eventfd::{eventfd, eventfd_read, eventfd_write};
pub(crate) use fd::{adopt, getpid, keep_across_exec, listening_tcp_addr, pipe, set_nonblocking};
pub(crate) use rw::{readv, recv, send, sendfile, writev};
pub(crate) use socket::{
    accept, connect, set_nodelay, shutdown_write, stop_listening, take_socket_error, tcp_listen, tcp_socket,
};
pub(crate) use thread::{block_sigpipe, gettid, trim_heap};
