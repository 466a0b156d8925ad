//! Settings: [`ServerConfig`] and the loop settings it shares with the client.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::IdleTimeouts;

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

/// Settings of each IO loop, shared by server and client.
#[derive(Clone, Debug)]
pub(crate) struct LoopConfig {
    pub(crate) max_events: usize,
    pub(crate) epoll_timeout: Option<Duration>,
    pub(crate) nodelay: bool,
    pub(crate) buffer_capacity: usize,
    pub(crate) max_input: usize,
    pub(crate) panic_policy: PanicPolicy,
    pub(crate) half_close: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) idle: IdleTimeouts,
    pub(crate) high_water: usize,
    pub(crate) low_water: usize,
    pub(crate) pause_on_high_water: bool,
    pub(crate) max_output: Option<usize>,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            max_events: 1024,
            epoll_timeout: None,
            nodelay: true,
            buffer_capacity: 4096,
            max_input: 64 * 1024 * 1024,
            panic_policy: PanicPolicy::CloseConnection,
            half_close: false,
            connect_timeout: Duration::from_secs(5),
            idle: IdleTimeouts::default(),
            high_water: 4 << 20,
            low_water: 1 << 20,
            pause_on_high_water: true,
            max_output: None,
        }
    }
}

/// Settings of an [`crate::EpollTPServer`], built by chained setters.
///
/// # Examples
///
/// ```
/// use kingpin::ServerConfig;
///
/// let config = ServerConfig::new("127.0.0.1:0".parse().unwrap()).threads(4).backlog(4096);
/// assert_eq!(config.get_threads(), 4);
/// ```
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub(crate) addr: SocketAddr,
    pub(crate) threads: usize,
    pub(crate) backlog: u32,
    pub(crate) accept_batch: usize,
    pub(crate) accept_mutex_delay: Duration,
    pub(crate) accept_error_backoff: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) thread_name: String,
    pub(crate) max_connections: Option<usize>,
    pub(crate) memory_budget: Option<usize>,
    pub(crate) lp: LoopConfig,
}

impl Default for ServerConfig {
    /// Listens on `127.0.0.1` at a port the system picks, one thread per CPU.
    fn default() -> Self {
        ServerConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }
}

impl ServerConfig {
    /// Defaults for a server listening on `addr` (port 0: the system picks one; read it back
    /// with [`crate::ServerHandle::local_addr`]).
    pub fn new(addr: SocketAddr) -> Self {
        ServerConfig {
            addr,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            backlog: 1024,
            accept_batch: 64,
            accept_mutex_delay: Duration::from_millis(100),
            accept_error_backoff: Duration::from_millis(100),
            shutdown_timeout: Duration::from_secs(5),
            thread_name: "kingpin-io".into(),
            max_connections: None,
            memory_budget: None,
            lp: LoopConfig::default(),
        }
    }

    /// The address to listen on.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Length of the kernel's accept queue (default 1024; the kernel caps it at `somaxconn`).
    pub fn backlog(mut self, n: u32) -> Self {
        self.backlog = n;
        self
    }

    /// Most connections one thread accepts per turn while it holds the accept mutex
    /// (default 64).
    pub fn accept_batch(mut self, n: usize) -> Self {
        self.accept_batch = n.max(1);
        self
    }

    /// Longest a thread that lost the accept mutex sleeps before competing again, so a free
    /// mutex is never left unclaimed for long (default 100 ms; nginx's `accept_mutex_delay`).
    pub fn accept_mutex_delay(mut self, d: Duration) -> Self {
        self.accept_mutex_delay = d.max(Duration::from_millis(1));
        self
    }

    /// How long accepting pauses after a resource error such as `EMFILE` (default 100 ms).
    pub fn accept_error_backoff(mut self, d: Duration) -> Self {
        self.accept_error_backoff = d;
        self
    }

    /// Most connections open at once over all IO threads (default: no limit but the fd
    /// limit). Beyond it, a new connection is accepted and closed at once — refused cleanly —
    /// and counted in [`crate::Stats::refused`].
    pub fn max_connections(mut self, n: Option<usize>) -> Self {
        self.max_connections = n;
        self
    }

    /// A process-wide budget of bytes held in connection buffers (default: none). When all
    /// loops together hold that much, they stop accepting and pause reading — pending output
    /// keeps draining — until usage falls below 7/8 of the budget. None of the usual frameworks
    /// has this; it bounds the server's buffer memory whatever its peers do.
    ///
    /// A peer whose reading is paused cannot be read at all — not even its end of stream,
    /// which waits behind its unread data — so pair the budget with a read-idle timeout
    /// ([`ServerConfig::idle_timeouts`]): connections that hold memory without progress are
    /// then dropped and the budget frees up.
    pub fn memory_budget(mut self, bytes: Option<usize>) -> Self {
        self.memory_budget = bytes;
        self
    }
}

/// Settings of an [`crate::EpollTPClient`], built by chained setters.
///
/// # Examples
///
/// ```
/// use kingpin::ClientConfig;
/// use std::time::Duration;
///
/// let config = ClientConfig::default().threads(4).connect_timeout(Duration::from_secs(2));
/// assert_eq!(config.get_threads(), 4);
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub(crate) threads: usize,
    pub(crate) connect_batch: usize,
    pub(crate) max_connecting: usize,
    pub(crate) mutex_delay: Duration,
    pub(crate) resolve_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) thread_name: String,
    pub(crate) lp: LoopConfig,
}

impl Default for ClientConfig {
    /// One IO thread per CPU, 5 s connect timeout.
    fn default() -> Self {
        ClientConfig {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            connect_batch: 64,
            max_connecting: 1024,
            mutex_delay: Duration::from_millis(10),
            resolve_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            thread_name: "kingpin-client".into(),
            lp: LoopConfig::default(),
        }
    }
}

impl ClientConfig {
    /// How long a connect may take before it fails with `TimedOut` (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.lp.connect_timeout = d;
        self
    }

    /// How long resolving a host name may take (default 5 s).
    pub fn resolve_timeout(mut self, d: Duration) -> Self {
        self.resolve_timeout = d;
        self
    }

    /// Most targets one thread takes from the pool per turn (default 64).
    pub fn connect_batch(mut self, n: usize) -> Self {
        self.connect_batch = n.max(1);
        self
    }

    /// Most connects in progress at once per IO thread (default 1024); further targets wait
    /// in the pool. Keeps a burst of thousands of targets from overflowing the peers' accept
    /// queues (whose dropped handshakes the kernel retries only after a second or more).
    pub fn max_connecting(mut self, n: usize) -> Self {
        self.max_connecting = n.max(1);
        self
    }
}

/// Setters shared by [`ServerConfig`] and [`ClientConfig`].
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
            pub fn shutdown_timeout(mut self, d: Duration) -> Self {
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
            pub fn epoll_timeout(mut self, d: Option<Duration>) -> Self {
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
            /// closed with [`crate::CloseReason::InputLimit`] (default 64 MiB).
            pub fn max_input_buffer(mut self, n: usize) -> Self {
                self.lp.max_input = n.max(1);
                self
            }

            /// Most unsent output bytes a connection may hold; beyond it the connection is
            /// closed with [`crate::CloseReason::OutputLimit`] (default: no limit — the high
            /// water mark pauses reading instead).
            pub fn max_output_buffer(mut self, n: Option<usize>) -> Self {
                self.lp.max_output = n;
                self
            }

            /// Write-buffer water marks (default 4 MiB and 1 MiB): when a connection's unsent
            /// output reaches `high`, [`crate::IoHandler::on_high_water`] fires and (by default)
            /// reading from it pauses; at `low` or below, reading resumes and
            /// [`crate::IoHandler::on_low_water`] fires. So a peer that never reads cannot make
            /// an echo-like handler buffer without bound.
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
            pub fn idle_timeouts(mut self, t: IdleTimeouts) -> Self {
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

            /// What a panic in a callback does (default: close that connection, keep serving).
            pub fn panic_policy(mut self, p: PanicPolicy) -> Self {
                self.lp.panic_policy = p;
                self
            }
        }
    };
}

loop_setters!(ServerConfig);
loop_setters!(ClientConfig);
