//! [`AcceptStrategy`]: how the IO threads of a server share the accepting of connections.

/// How a server's IO threads share the accepting of new connections
/// ([`crate::ServerConfig::accept_strategy`]).
///
/// `make bench` measures the three side by side on short-lived connections (how evenly they
/// spread, CPU per connection, connections a second); see `docs/performance.md`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptStrategy {
    /// One listening socket; the threads take turns at it with an accept mutex taken by
    /// `try_lock` only (nginx's `accept_mutex`), so at most one thread watches it and no thread
    /// is woken for a connection another takes. A thread past its fair share of open
    /// connections sits out, and a thread that has just accepted hands the next turn to
    /// another, so that short-lived connections are spread too. The default: it balances by
    /// what the threads hold, which the kernel cannot see.
    #[default]
    Mutex,
    /// One listening socket in every thread's epoll with `EPOLLEXCLUSIVE` (Linux 4.5): the
    /// kernel wakes one waiting thread per connection instead of all. No lock and no turns,
    /// but the kernel tries the threads in the order they joined, so under light load the
    /// first idle ones take most connections. A thread past its fair share of open
    /// connections leaves the wait until it is back under.
    EpollExclusive,
    /// A listening socket per thread, all bound to the same address with `SO_REUSEPORT`
    /// (Linux 3.9): the kernel hashes each connection's addresses to one of them. No sharing
    /// at all between threads; the spread is as even as the hash, whatever each thread holds.
    /// A connection waiting in the queue of a socket that closes is reset, and any process of
    /// the same user may bind to the same port and take a share of the connections.
    ReusePort,
}
