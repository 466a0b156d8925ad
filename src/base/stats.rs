//! Per-loop counters, written by their loop thread and readable from any thread.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

/// The live counters of one IO loop. Each is written only by the loop's own thread (relaxed
/// atomics on a cache line of its own), so counting costs no contention.
#[derive(Debug, Default)]
pub(crate) struct LoopStats {
    inner: CachePadded<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    open: AtomicU64,
    connecting: AtomicU64,
    accepted: AtomicU64,
    closed: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    closed_by_limit: AtomicU64,
    panics: AtomicU64,
    accept_errors: AtomicU64,
    refused: AtomicU64,
    refused_per_ip: AtomicU64,
    closed_idle: AtomicU64,
    buffered: AtomicU64,
    read_calls: AtomicU64,
    write_calls: AtomicU64,
    failed: AtomicU64,
    tls_handshakes: AtomicU64,
    tls_failures: AtomicU64,
    proxy_failures: AtomicU64,
}

impl LoopStats {
    pub(crate) fn open(&self) -> u64 {
        self.inner.open.load(Relaxed)
    }

    pub(crate) fn connecting(&self) -> u64 {
        self.inner.connecting.load(Relaxed)
    }

    pub(crate) fn connecting_changed(&self, delta: i64) {
        if delta >= 0 {
            self.inner.connecting.fetch_add(delta as u64, Relaxed);
        } else {
            self.inner.connecting.fetch_sub(delta.unsigned_abs(), Relaxed);
        }
    }

    pub(crate) fn on_open(&self, accepted: bool) {
        self.inner.open.fetch_add(1, Relaxed);
        if accepted {
            self.inner.accepted.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn on_close(&self) {
        self.inner.open.fetch_sub(1, Relaxed);
        self.inner.closed.fetch_add(1, Relaxed);
    }

    pub(crate) fn add_in(&self, n: usize) {
        self.inner.bytes_in.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn add_out(&self, n: usize) {
        self.inner.bytes_out.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn on_limit(&self) {
        self.inner.closed_by_limit.fetch_add(1, Relaxed);
    }

    pub(crate) fn on_panic(&self) {
        self.inner.panics.fetch_add(1, Relaxed);
    }

    pub(crate) fn set_buffered(&self, bytes: usize) {
        self.inner.buffered.store(bytes as u64, Relaxed);
    }

    pub(crate) fn on_refused(&self) {
        self.inner.refused.fetch_add(1, Relaxed);
    }

    /// A refusal for `max_connections_per_ip` (counted in `refused` too).
    pub(crate) fn on_refused_per_ip(&self) {
        self.inner.refused.fetch_add(1, Relaxed);
        self.inner.refused_per_ip.fetch_add(1, Relaxed);
    }

    pub(crate) fn on_idle_close(&self) {
        self.inner.closed_idle.fetch_add(1, Relaxed);
    }

    /// The loop ended abnormally: nothing is open or connecting on it any more.
    pub(crate) fn on_loop_failed(&self) {
        let c = &self.inner;
        let open = c.open.swap(0, Relaxed);
        c.closed.fetch_add(open, Relaxed);
        c.connecting.store(0, Relaxed);
        c.buffered.store(0, Relaxed);
        c.failed.store(1, Relaxed);
    }

    /// Whether the loop ended abnormally.
    pub(crate) fn is_failed(&self) -> bool {
        self.inner.failed.load(Relaxed) != 0
    }

    pub(crate) fn on_read_call(&self) {
        self.inner.read_calls.fetch_add(1, Relaxed);
    }

    pub(crate) fn on_write_call(&self) {
        self.inner.write_calls.fetch_add(1, Relaxed);
    }

    pub(crate) fn on_tls_handshake(&self) {
        self.inner.tls_handshakes.fetch_add(1, Relaxed);
    }

    pub(crate) fn on_tls_failure(&self) {
        self.inner.tls_failures.fetch_add(1, Relaxed);
    }

    pub(crate) fn on_proxy_failure(&self) {
        self.inner.proxy_failures.fetch_add(1, Relaxed);
    }

    pub(crate) fn on_accept_error(&self) {
        self.inner.accept_errors.fetch_add(1, Relaxed);
    }

    /// A consistent-enough copy of the counters (each read is atomic; the set is not).
    pub(crate) fn snapshot(&self) -> Stats {
        let c = &self.inner;
        Stats {
            connections: c.open.load(Relaxed),
            connecting: c.connecting.load(Relaxed),
            accepted: c.accepted.load(Relaxed),
            closed: c.closed.load(Relaxed),
            bytes_in: c.bytes_in.load(Relaxed),
            bytes_out: c.bytes_out.load(Relaxed),
            closed_by_limit: c.closed_by_limit.load(Relaxed),
            panics: c.panics.load(Relaxed),
            accept_errors: c.accept_errors.load(Relaxed),
            refused: c.refused.load(Relaxed),
            refused_per_ip: c.refused_per_ip.load(Relaxed),
            closed_idle: c.closed_idle.load(Relaxed),
            buffered_bytes: c.buffered.load(Relaxed),
            read_calls: c.read_calls.load(Relaxed),
            write_calls: c.write_calls.load(Relaxed),
            failed_loops: c.failed.load(Relaxed),
            jobs_queued: 0,
            workers_busy: 0,
            tls_handshakes: c.tls_handshakes.load(Relaxed),
            tls_handshake_failures: c.tls_failures.load(Relaxed),
            proxy_header_failures: c.proxy_failures.load(Relaxed),
        }
    }
}

/// A snapshot of counters, of one IO loop or summed over all of them.
///
/// Taken from any thread with [`crate::ServerHandle::stats`] or
/// [`crate::ServerHandle::loop_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections open now.
    pub connections: u64,
    /// Client connects in progress now.
    pub connecting: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections closed since start, for any reason.
    pub closed: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Connections closed because they exceeded a buffer limit (input or output cap), or were
    /// stalled by the memory budget.
    pub closed_by_limit: u64,
    /// Callbacks that panicked (each closed its connection).
    pub panics: u64,
    /// Errors from `accept` (e.g. `EMFILE`), each survived.
    pub accept_errors: u64,
    /// Connections refused at accept: over `max_connections` or `max_connections_per_ip`, or
    /// out of descriptors.
    pub refused: u64,
    /// Of `refused`, those refused because their address already had
    /// `max_connections_per_ip` connections open.
    pub refused_per_ip: u64,
    /// Connections closed by an idle timeout.
    pub closed_idle: u64,
    /// Bytes held now in connection buffers (their capacity), pooled buffers and sends waiting
    /// in the loops' mailboxes (updated once per loop turn).
    pub buffered_bytes: u64,
    /// System calls that read from connections (`recv`, `readv`), those that found nothing
    /// included.
    pub read_calls: u64,
    /// System calls that wrote to connections (`send`, `sendmsg`, `sendfile`), those the socket
    /// refused included. Sends made during one callback are gathered into one.
    pub write_calls: u64,
    /// IO loops that ended abnormally (a panic outside any callback, or a failed
    /// `epoll_wait`): their connections were closed, and handles to them fail with
    /// [`crate::Error::LoopStopped`]. 0 in a healthy server; `join` returns the first error.
    pub failed_loops: u64,
    /// Blocking jobs waiting in the worker pool's queue (server or client totals only).
    pub jobs_queued: u64,
    /// Workers running a blocking job now (server or client totals only).
    pub workers_busy: u64,
    /// TLS handshakes completed.
    pub tls_handshakes: u64,
    /// TLS connections closed before their handshake completed: refused by rustls (not TLS,
    /// an untrusted certificate, nothing in common…), out of time, or ended by the peer.
    pub tls_handshake_failures: u64,
    /// Connections closed because their PROXY protocol header was malformed, too long, or did
    /// not come in time (see [`crate::ServerConfig::proxy_protocol`]).
    pub proxy_header_failures: u64,
}

impl std::ops::Add for Stats {
    type Output = Stats;

    fn add(self, o: Stats) -> Stats {
        Stats {
            connections: self.connections + o.connections,
            connecting: self.connecting + o.connecting,
            accepted: self.accepted + o.accepted,
            closed: self.closed + o.closed,
            bytes_in: self.bytes_in + o.bytes_in,
            bytes_out: self.bytes_out + o.bytes_out,
            closed_by_limit: self.closed_by_limit + o.closed_by_limit,
            panics: self.panics + o.panics,
            accept_errors: self.accept_errors + o.accept_errors,
            refused: self.refused + o.refused,
            refused_per_ip: self.refused_per_ip + o.refused_per_ip,
            closed_idle: self.closed_idle + o.closed_idle,
            buffered_bytes: self.buffered_bytes + o.buffered_bytes,
            read_calls: self.read_calls + o.read_calls,
            write_calls: self.write_calls + o.write_calls,
            failed_loops: self.failed_loops + o.failed_loops,
            jobs_queued: self.jobs_queued + o.jobs_queued,
            workers_busy: self.workers_busy + o.workers_busy,
            tls_handshakes: self.tls_handshakes + o.tls_handshakes,
            tls_handshake_failures: self.tls_handshake_failures + o.tls_handshake_failures,
            proxy_header_failures: self.proxy_header_failures + o.proxy_header_failures,
        }
    }
}

impl std::iter::Sum for Stats {
    fn sum<I: Iterator<Item = Stats>>(iter: I) -> Stats {
        iter.fold(Stats::default(), |a, b| a + b)
    }
}
