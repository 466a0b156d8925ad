//! The settings of each IO loop, shared by server and client, and the setters both configs
//! offer for them.

use std::time::Duration;

use crate::conn::idle::IdleTimeouts;
use crate::work::pool::WorkerPool;

/// What a panic in a user callback does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanicPolicy {
    /// Log it, close the connection concerned, and keep serving (the default).
    #[default]
    CloseConnection,
    /// Abort the process (for those who prefer a crash to a possibly inconsistent handler).
    Abort,
}

/// Which worker pool the loops' blocking jobs run on.
#[derive(Clone, Debug)]
pub(crate) enum Workers {
    /// A pool of this many threads and this queue, made at start and shut down at the end.
    Own { threads: usize, queue: usize },
    /// The user's pool, shared (never shut down by the server or client).
    Shared(WorkerPool),
}

impl Workers {
    /// The pool to use, and whether the server or client owns it.
    pub(crate) fn make(&self) -> (WorkerPool, bool) {
        match self {
            Workers::Own { threads, queue } => (WorkerPool::new(*threads, *queue), true),
            Workers::Shared(pool) => (pool.clone(), false),
        }
    }
}

/// Default worker threads: one per CPU, at least two.
pub(crate) fn default_worker_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Settings of each IO loop, shared by server and client.
#[derive(Clone, Debug)]
pub(crate) struct LoopConfig {
    pub(crate) max_events: usize,
    pub(crate) epoll_timeout: Option<Duration>,
    pub(crate) nodelay: bool,
    pub(crate) buffer_capacity: usize,
    pub(crate) max_input: usize,
    pub(crate) read_per_turn: usize,
    pub(crate) panic_policy: PanicPolicy,
    pub(crate) half_close: bool,
    pub(crate) idle: IdleTimeouts,
    pub(crate) high_water: usize,
    pub(crate) low_water: usize,
    pub(crate) pause_on_high_water: bool,
    pub(crate) max_output: Option<usize>,
    pub(crate) edge_triggered: bool,
    pub(crate) linger: Duration,
    pub(crate) workers: Workers,
    pub(crate) tls_handshake_timeout: Duration,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            max_events: 1024,
            epoll_timeout: None,
            nodelay: true,
            buffer_capacity: 4096,
            max_input: 1 << 20,
            read_per_turn: 64 << 10,
            panic_policy: PanicPolicy::CloseConnection,
            half_close: false,
            idle: IdleTimeouts::default(),
            high_water: 64 << 10,
            low_water: 32 << 10,
            pause_on_high_water: true,
            max_output: None,
            edge_triggered: false,
            linger: Duration::from_secs(2),
            workers: Workers::Own { threads: default_worker_threads(), queue: 1024 },
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Setters shared by [`crate::ServerConfig`] and [`crate::ClientConfig`] (each has `threads`,
/// `shutdown_timeout`, `thread_name` and `lp: LoopConfig` fields).
macro_rules! loop_setters {
    ($ty:ident) => {
        impl $ty {
            /// Number of IO threads, one epoll each (default: one per CPU; at least 1).
            pub fn threads(mut self, n: usize) -> Self {
                self.threads = n.max(1);
                self
            }

            /// The configured number of IO threads.
            pub fn get_threads(&self) -> usize {
                self.threads
            }

            /// How long shutdown waits for pending output before it force-closes (default 5 s).
            pub fn shutdown_timeout(mut self, d: std::time::Duration) -> Self {
                self.shutdown_timeout = d;
                self
            }

            /// Prefix of the IO threads' names (threads are `<prefix>-<index>`; default
            /// `kingpin-io` for a server, `kingpin-client` for a client).
            pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
                self.thread_name = prefix.into();
                self
            }

            /// Longest an idle loop blocks in `epoll_wait` (default: until an event or a timer),
            /// e.g. to have [`crate::IoHandler::on_epoll_loop`] called at least that often.
            pub fn epoll_timeout(mut self, d: Option<std::time::Duration>) -> Self {
                self.lp.epoll_timeout = d;
                self
            }

            /// Most events one `epoll_wait` returns (default 1024).
            pub fn max_events(mut self, n: usize) -> Self {
                self.lp.max_events = n.max(1);
                self
            }

            /// Sets `TCP_NODELAY` on every connection (default `true`: no Nagle delay).
            pub fn nodelay(mut self, on: bool) -> Self {
                self.lp.nodelay = on;
                self
            }

            /// Initial capacity of pooled buffers (default 4 KiB; they grow as messages need).
            pub fn buffer_capacity(mut self, n: usize) -> Self {
                self.lp.buffer_capacity = n.max(64);
                self
            }

            /// Most unconsumed input bytes a connection may hold; beyond it the connection is
            /// closed with [`crate::CloseReason::InputLimit`] (default 1 MiB: far more than a
            /// line or a request head; raise it for protocols that buffer whole large messages).
            pub fn max_input_buffer(mut self, n: usize) -> Self {
                self.lp.max_input = n.max(1);
                self
            }

            /// Threads of the worker pool that runs blocking jobs
            /// ([`crate::IoHandler::spawn_blocking`]; default: one per CPU, at least 2). The
            /// threads, named `kingpin-worker-N`, start with the first job; the pool shuts down
            /// with the server or client.
            pub fn worker_threads(mut self, n: usize) -> Self {
                let queue = match self.lp.workers {
                    crate::reactor::config::Workers::Own { queue, .. } => queue,
                    crate::reactor::config::Workers::Shared(_) => 1024,
                };
                self.lp.workers = crate::reactor::config::Workers::Own { threads: n.max(1), queue };
                self
            }

            /// Jobs that may wait for a worker (default 1,024); beyond it
            /// [`crate::IoHandler::spawn_blocking`] fails at once with [`crate::Error::Busy`].
            /// Like [`Self::worker_threads`], it replaces a pool set with
            /// [`Self::worker_pool`] by one of the server's or client's own.
            pub fn worker_queue(mut self, n: usize) -> Self {
                let threads = match self.lp.workers {
                    crate::reactor::config::Workers::Own { threads, .. } => threads,
                    crate::reactor::config::Workers::Shared(_) => crate::reactor::config::default_worker_threads(),
                };
                self.lp.workers = crate::reactor::config::Workers::Own { threads, queue: n.max(1) };
                self
            }

            /// Runs blocking jobs on `pool`, shared with whoever else holds it, instead of a
            /// pool of the server's or client's own. It is not shut down with them.
            pub fn worker_pool(mut self, pool: crate::work::pool::WorkerPool) -> Self {
                self.lp.workers = crate::reactor::config::Workers::Shared(pool);
                self
            }

            /// Most bytes read from one connection in one loop turn (default 64 KiB). What a
            /// peer sends beyond it waits in the kernel for the next turn, after every other
            /// ready connection has had its turn: a peer that floods cannot hold its thread
            /// while the others wait. Larger values trade that fairness for fewer system calls
            /// on bulk transfers.
            pub fn max_read_per_turn(mut self, n: usize) -> Self {
                self.lp.read_per_turn = n.max(1);
                self
            }

            /// Most unsent output bytes a connection may hold; beyond it the connection is
            /// closed with [`crate::CloseReason::OutputLimit`] (default: no limit — the high
            /// water mark pauses reading instead).
            pub fn max_output_buffer(mut self, n: Option<usize>) -> Self {
                self.lp.max_output = n;
                self
            }

            /// Write-buffer water marks (default 64 KiB and 32 KiB, netty's): when a connection's
            /// unsent output reaches `high`, [`crate::IoHandler::on_high_water`] fires and (by
            /// default) reading from it pauses; at `low` or below, reading resumes and
            /// [`crate::IoHandler::on_low_water`] fires. So a peer that never reads holds little
            /// more than `high` of the server's memory (the kernel's socket buffers take the
            /// rest), however much it sends: 1,500 such peers stay under 300 MiB of server RSS.
            pub fn write_water_marks(mut self, high: usize, low: usize) -> Self {
                self.lp.high_water = high.max(1);
                self.lp.low_water = low.min(self.lp.high_water - 1);
                self
            }

            /// Whether reading pauses while output is above the high water mark (default `true`).
            pub fn pause_reading_on_high_water(mut self, on: bool) -> Self {
                self.lp.pause_on_high_water = on;
                self
            }

            /// Default idle timeouts of every connection (default: none); see
            /// [`crate::IoHandler::on_idle`] and [`crate::Conn::set_idle_timeouts`].
            pub fn idle_timeouts(mut self, t: $crate::conn::idle::IdleTimeouts) -> Self {
                self.lp.idle = t;
                self
            }

            /// Keeps a connection open after the peer shuts its write side (default `false`).
            ///
            /// By default end of stream closes the connection once pending output is written,
            /// so a reply sent from `on_message` or `on_passively_closed` still arrives. With
            /// half-close allowed the connection stays open, still able to send (e.g. a reply
            /// computed later), until the handler calls [`crate::Conn::close`].
            pub fn allow_half_close(mut self, on: bool) -> Self {
                self.lp.half_close = on;
                self
            }

            /// Whether connections are watched edge-triggered (`EPOLLET`, as mio and tokio do) or
            /// level-triggered (default `false`). Edge-triggered registers each socket once and
            /// never changes its interest; the loop remembers which sockets may hold unread input.
            /// Both keep one read per connection per turn, so a flooding peer cannot starve the
            /// others; `docs/performance.md` has the measured difference.
            pub fn edge_triggered(mut self, on: bool) -> Self {
                self.lp.edge_triggered = on;
                self
            }

            /// Whether connections are watched edge-triggered (see `edge_triggered`).
            pub fn get_edge_triggered(&self) -> bool {
                self.lp.edge_triggered
            }

            /// How long a graceful close lingers (default 2 s; zero: never). When a connection
            /// closes ([`crate::Conn::close`], shutdown) while its peer may still send, its write
            /// side is shut once output is written and what the peer still sends is read and
            /// dropped until the peer's end of stream or this timeout, then it is closed —
            /// nginx's lingering close. Without it, input left unread at the close makes the
            /// kernel answer with a reset, which can destroy the last response before the peer
            /// reads it. [`crate::IoHandler::on_closed`] follows when the linger ends.
            pub fn linger_timeout(mut self, d: std::time::Duration) -> Self {
                self.lp.linger = d;
                self
            }

            /// How long a TLS handshake may take (default 10 s); a connection still shaking
            /// hands then is closed ([`crate::TlsError::HandshakeTimeout`]), so that peers that
            /// start a handshake and stall cannot hold connections. Only TLS connections have
            /// one (feature `tls`).
            pub fn tls_handshake_timeout(mut self, d: std::time::Duration) -> Self {
                self.lp.tls_handshake_timeout = d.max(std::time::Duration::from_millis(1));
                self
            }

            /// What a panic in a callback does (default: close that connection, keep serving).
            pub fn panic_policy(mut self, p: $crate::reactor::config::PanicPolicy) -> Self {
                self.lp.panic_policy = p;
                self
            }
        }
    };
}

pub(crate) use loop_setters;
