//! [`ServerConfig`]: the settings of an [`crate::EpollTPServer`].

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::listeners::Listeners;
use super::proxy_protocol::ProxyProtocol;
use super::strategy::AcceptStrategy;
use crate::reactor::config::{loop_setters, LoopConfig};
use crate::tls::TlsServerSetup;
use parking_lot::Mutex;
use std::sync::Arc;

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
    pub(crate) accept_strategy: AcceptStrategy,
    pub(crate) accept_mutex_delay: Duration,
    pub(crate) accept_error_backoff: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) thread_name: String,
    pub(crate) max_connections: Option<usize>,
    pub(crate) max_connections_per_ip: Option<usize>,
    pub(crate) memory_budget: Option<usize>,
    pub(crate) budget_stall: Duration,
    pub(crate) lp: LoopConfig,
    pub(crate) tls: Option<TlsServerSetup>,
    /// Listening sockets to use instead of binding `addr` (taken by the first `start`).
    pub(crate) listeners: Option<Arc<Mutex<Option<Listeners>>>>,
    pub(crate) proxy: ProxyProtocol,
}

/// The default memory budget: with the default per-connection limits (1 MiB of input, 64 KiB
/// of output before reading pauses), 20,000 peers that each park a partial frame could
/// otherwise hold some 20 GiB.
const DEFAULT_MEMORY_BUDGET: usize = 1 << 30;

/// The default cap on connections from one address: far above what one honest client opens,
/// and about 5% of a process allowed 20,000 descriptors, so one address cannot take them all.
pub(crate) const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1024;

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
            accept_strategy: AcceptStrategy::Mutex,
            accept_mutex_delay: Duration::from_millis(100),
            accept_error_backoff: Duration::from_millis(100),
            shutdown_timeout: Duration::from_secs(5),
            thread_name: "kingpin-io".into(),
            max_connections: None,
            max_connections_per_ip: Some(DEFAULT_MAX_CONNECTIONS_PER_IP),
            memory_budget: Some(DEFAULT_MEMORY_BUDGET),
            budget_stall: Duration::from_secs(10),
            lp: LoopConfig::default(),
            tls: None,
            listeners: None,
            proxy: ProxyProtocol::Off,
        }
    }

    /// Serves TLS with `config` (feature `tls`): every accepted connection does a TLS
    /// handshake first — `on_connect` fires once it is done, `conn.input()` holds plaintext
    /// and `conn.send` encrypts. A handshake has [`Self::tls_handshake_timeout`] (10 s) to
    /// complete; a failed one closes only its connection, with a logged reason, counted in
    /// [`crate::Stats::tls_handshake_failures`] and told to [`crate::IoHandler::on_tls_error`].
    /// Set `config.alpn_protocols` to offer ALPN (e.g. `b"http/1.1"`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(TlsServerSetup(config));
        self
    }

    /// Accepts on `listeners` (systemd's, a predecessor's, or the program's own; see
    /// [`Listeners::from_env`]) instead of binding the configured address. With
    /// [`AcceptStrategy::ReusePort`], each IO thread takes the listeners in turn. A successor
    /// started by [`crate::Handover`] is told its predecessor's listeners this way, and tells
    /// it when it accepts.
    pub fn listeners(mut self, listeners: Listeners) -> Self {
        self.addr = listeners.local_addr();
        self.listeners = Some(Arc::new(Mutex::new(Some(listeners))));
        self
    }

    /// Whether connections start with a PROXY protocol header (v1 or v2) from a load balancer
    /// (default [`ProxyProtocol::Off`]). With a header, [`crate::Conn::peer_addr`] is the
    /// client's address it carries and [`crate::Conn::proxied_by`] the balancer's;
    /// `max_connections_per_ip` counts the client's address (not the balancer's, which holds
    /// them all). The header is read before TLS and before `on_connect`, within
    /// [`Self::tls_handshake_timeout`]; a split header is waited for; a connection without a
    /// valid one (when [`ProxyProtocol::Required`]) is closed with a logged reason, counted
    /// in [`crate::Stats::proxy_header_failures`], and never reaches the handler.
    pub fn proxy_protocol(mut self, mode: ProxyProtocol) -> Self {
        self.proxy = mode;
        self
    }

    /// Whether the server speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
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

    /// How the IO threads share the accepting of new connections (default: the accept mutex;
    /// see [`AcceptStrategy`] for `EPOLLEXCLUSIVE` and `SO_REUSEPORT`).
    pub fn accept_strategy(mut self, strategy: AcceptStrategy) -> Self {
        self.accept_strategy = strategy;
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

    /// Most connections open at once from one peer address, over all IO threads (default
    /// 1,024; `None`: no limit; nginx's `limit_conn` on the remote address). An IPv6 peer is counted by its /64
    /// network — a host gets a whole /64, so counting its addresses one by one would limit
    /// nothing — and an IPv4-mapped IPv6 peer as its IPv4 address. Beyond the limit, a new
    /// connection is accepted and closed at once, counted in [`crate::Stats::refused_per_ip`]
    /// (and [`crate::Stats::refused`]). Behind a proxy or a large NAT every client shares one
    /// address: set it with that in mind (a load test from one machine may need `None`).
    pub fn max_connections_per_ip(mut self, n: Option<usize>) -> Self {
        self.max_connections_per_ip = n;
        self
    }

    /// A process-wide budget of bytes held in connection buffers, buffer pools and loop
    /// mailboxes (default 1 GiB; `None`: no budget). When all loops together hold that much, they stop accepting and the connections
    /// holding 16 KiB or more pause reading — pending output keeps draining, and smaller
    /// holders read on, so that they can finish the frame they are in and let go — until usage
    /// falls below 7/8 of the budget. A large holder that stays stuck for the stall timeout
    /// ([`ServerConfig::memory_budget_stall_timeout`]) is closed with
    /// [`crate::CloseReason::MemoryBudget`]. None of the usual frameworks has this; it bounds
    /// the server's buffer memory whatever its peers do.
    pub fn memory_budget(mut self, bytes: Option<usize>) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// How long a large holder may stay held back by an exhausted memory budget before it is
    /// closed (default 10 s).
    pub fn memory_budget_stall_timeout(mut self, d: Duration) -> Self {
        self.budget_stall = d;
        self
    }
}

loop_setters!(ServerConfig);
