//! [`EpollTPServer`]: N IO threads, one epoll each, competing for the accept mutex.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;

use super::accept_shared::AcceptShared;
use super::acceptor::{AcceptConfig, Acceptor};
use super::config::ServerConfig;
use super::handover::Handover;
use super::listeners::Listeners;
use super::strategy::AcceptStrategy;
use crate::base::per_ip::PerIp;
use crate::base::stats::Stats;
use crate::reactor::budget::Budget;
use crate::reactor::handler::IoHandler;
use crate::reactor::handler::LoopHandle;
use crate::reactor::loop_group::LoopGroup;
use crate::reactor::shutdown::Shutdown;
use crate::sys;
use crate::work::pool::WorkerPool;

type Factory<H> = Arc<dyn Fn() -> H + Send + Sync>;

/// A TCP server: N IO threads, each with its own epoll and its own [`IoHandler`].
///
/// Threads compete through `try_lock` on shared data for the right to watch the listening
/// socket (nginx's accept mutex); a connection then lives on the thread that accepted it.
///
/// # Examples
///
/// ```
/// use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig};
/// use std::io::{Read, Write};
///
/// struct Echo;
/// impl IoHandler for Echo {
///     type ConnState = ();
///
///     fn on_message(&mut self, conn: &mut Conn<'_>) {
///         conn.send_input();
///     }
/// }
///
/// let server = EpollTPServer::from_fn(ServerConfig::default().threads(2), || Echo).start()?;
/// let mut client = std::net::TcpStream::connect(server.local_addr())?;
/// client.write_all(b"ping")?;
/// let mut reply = [0; 4];
/// client.read_exact(&mut reply)?;
/// assert_eq!(&reply, b"ping");
/// server.shutdown();
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct EpollTPServer<H> {
    config: ServerConfig,
    factory: Factory<H>,
}

impl<H: IoHandler> EpollTPServer<H> {
    /// A server whose handlers are built from data shared by all IO threads (the original's
    /// `TPSharedData`): `factory` runs once on each IO thread with `shared` (any `Arc`, a slice or a trait
    /// object too).
    pub fn new<S, F>(config: ServerConfig, shared: Arc<S>, factory: F) -> Self
    where
        S: Send + Sync + ?Sized + 'static,
        F: Fn(&Arc<S>) -> H + Send + Sync + 'static,
    {
        EpollTPServer { config, factory: Arc::new(move || factory(&shared)) }
    }

    /// A server whose handlers are built by `factory`, once on each IO thread.
    pub fn from_fn<F>(config: ServerConfig, factory: F) -> Self
    where
        F: Fn() -> H + Send + Sync + 'static,
    {
        EpollTPServer { config, factory: Arc::new(factory) }
    }

    /// Binds the listening socket and starts the IO threads. Call from any thread.
    ///
    /// # Errors
    /// When binding fails (address in use, permission) or the system refuses an epoll,
    /// eventfd or thread; nothing is left running then.
    pub fn start(self) -> io::Result<ServerHandle<H>> {
        let cfg = self.config;
        let reuse_port = cfg.accept_strategy == AcceptStrategy::ReusePort;
        let given = match &cfg.listeners {
            Some(slot) => Some(slot.lock().take().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "these listeners were taken by another server's start")
            })?),
            None => None,
        };
        let inherited = given.is_some();
        let (mut listeners, ready) = match given {
            Some(Listeners { fds, ready, .. }) => (fds, ready),
            None => (vec![sys::tcp_listen(&cfg.addr, cfg.backlog, reuse_port)?], None),
        };
        if listeners.len() > 1 && !reuse_port {
            // With one shared listener per strategy, the others would never be watched.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} listening sockets given: several need AcceptStrategy::ReusePort (or give one)",
                    listeners.len()
                ),
            ));
        }
        let local_addr = sys::local_addr(listeners[0].as_fd())?;
        if reuse_port && ready.is_none() && cfg.listeners.is_none() {
            // One listener per thread, all on the address the first one got (its port too).
            for _ in 1..cfg.threads {
                listeners.push(sys::tcp_listen(&local_addr, cfg.backlog, true)?);
            }
        }
        let mut parts = LoopGroup::<H>::prepare(cfg.threads, &cfg.lp)?;
        if let Some(limit) = cfg.memory_budget {
            let budget = Arc::new(Budget::new(limit, cfg.threads, cfg.budget_stall));
            for p in &mut parts {
                p.budget = Some(budget.clone());
            }
        }
        let shared = Arc::new(AcceptShared::new(cfg.accept_strategy, listeners, LoopGroup::peers(&parts)));
        if inherited {
            // Not ours alone (systemd holds it, or a predecessor did): stopping must not
            // shut the socket down for its other holders; closing our descriptor is enough.
            shared.hand_over();
        }
        let shared_for_handle = shared.clone();
        let accept_cfg = AcceptConfig {
            batch: cfg.accept_batch,
            max_connections: cfg.max_connections,
            per_ip: cfg.max_connections_per_ip.map(|n| PerIp::new(n.min(u32::MAX as usize) as u32)),
            mutex_delay: cfg.accept_mutex_delay,
            error_backoff: cfg.accept_error_backoff,
            tls: cfg.tls.clone(),
            proxy: cfg.proxy,
        };
        let factory = self.factory;
        let group = LoopGroup::spawn(parts, &cfg.thread_name, cfg.shutdown_timeout, move |index| {
            (factory(), Acceptor::new(shared.clone(), index, accept_cfg.clone()))
        })?;
        log::info!(target: "kingpin::server", "listening on {local_addr} with {} IO threads", cfg.threads);
        if let Some(ready) = ready {
            // The predecessor waits for this byte to stop accepting.
            if let Err(e) = std::io::Write::write_all(&mut std::fs::File::from(ready), b"R") {
                log::warn!(target: "kingpin::server", "telling the predecessor we accept: {e}");
            }
        }
        Ok(ServerHandle { local_addr, group, shared: shared_for_handle })
    }

    /// Starts the server and blocks until it has shut down (see [`ServerHandle::join`]).
    ///
    /// # Errors
    /// As [`EpollTPServer::start`] and [`ServerHandle::join`].
    pub fn run(self) -> io::Result<()> {
        self.start()?.join()
    }
}

impl<H> fmt::Debug for EpollTPServer<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpollTPServer").field("config", &self.config).finish()
    }
}

/// A running server: its address, its loops, its counters, and the way to stop it.
///
/// Dropping the handle shuts the server down and waits for its threads.
pub struct ServerHandle<H: IoHandler> {
    local_addr: SocketAddr,
    group: LoopGroup<H>,
    shared: Arc<AcceptShared>,
}

impl<H: IoHandler> ServerHandle<H> {
    /// The address the server listens on (with the real port when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Handles to the IO loops, by index.
    pub fn loops(&self) -> &[LoopHandle<H>] {
        self.group.loops()
    }

    /// Counters summed over all IO threads. Any thread.
    pub fn stats(&self) -> Stats {
        self.group.stats()
    }

    /// The worker pool of the server's blocking jobs ([`IoHandler::spawn_blocking`]): its
    /// counters, or to run more work on it.
    pub fn workers(&self) -> &WorkerPool {
        self.group.workers()
    }

    /// Counters of each IO thread, by loop index. Any thread.
    pub fn loop_stats(&self) -> Vec<Stats> {
        self.group.loop_stats()
    }

    /// Begins a graceful shutdown with the configured timeout; returns at once. Idempotent.
    /// See [`Shutdown::shutdown`].
    pub fn shutdown(&self) {
        self.shutdown_handle().shutdown();
    }

    /// A cloneable, `Send + Sync` way to hand the listening sockets to a successor process
    /// and drain (a zero-downtime restart), e.g. for a `SIGUSR2` handler: see
    /// [`Handover::hand_over`].
    pub fn handover(&self) -> Handover {
        Handover { shared: self.shared.clone(), shutdown: self.shutdown_handle() }
    }

    /// A cloneable, `Send + Sync` trigger for shutdown, e.g. for a Ctrl+C handler.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.group.shutdown_handle()
    }

    /// Waits until every IO thread has exited (after [`ServerHandle::shutdown`]).
    ///
    /// # Errors
    /// The first error an IO loop failed with (its `epoll_wait` broke), or an
    /// `io::ErrorKind::Other` error if an IO thread panicked outside any callback (e.g. in
    /// the handler factory).
    pub fn join(mut self) -> io::Result<()> {
        self.group.join()
    }
}

impl<H: IoHandler> fmt::Debug for ServerHandle<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("threads", &self.loops().len())
            .finish()
    }
}
