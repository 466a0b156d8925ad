//! [`EpollTPServer`]: N IO threads, one epoll each, competing for the accept mutex.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::acceptor::{AcceptConfig, AcceptShared, Acceptor, LoopPeer};
use crate::event_loop::{EventLoop, LoopParts};
use crate::mailbox::{Command, ConnSink};
use crate::stats::LoopStats;
use crate::{sys, IoHandler, LoopHandle, ServerConfig, Stats};

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
    /// `TPSharedData`): `factory` runs once on each IO thread with `shared`.
    pub fn new<S, F>(config: ServerConfig, shared: Arc<S>, factory: F) -> Self
    where
        S: Send + Sync + 'static,
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
        let listener = sys::tcp_listen(&cfg.addr, cfg.backlog, false)?;
        let local_addr = sys::local_addr(listener.as_fd())?;
        let parts = (0..cfg.threads).map(|i| LoopParts::<H>::new(i, cfg.lp.clone())).collect::<io::Result<Vec<_>>>()?;
        let loops: Vec<LoopHandle<H>> = parts.iter().map(LoopParts::handle).collect();
        let stats: Vec<Arc<LoopStats>> = parts.iter().map(|p| p.stats.clone()).collect();
        let peers = parts
            .iter()
            .map(|p| LoopPeer { stats: p.stats.clone(), sink: p.mailbox.clone() as Arc<dyn ConnSink> })
            .collect();
        let shared = Arc::new(AcceptShared::new(listener, peers));
        let accept_cfg = AcceptConfig {
            batch: cfg.accept_batch,
            mutex_delay: cfg.accept_mutex_delay,
            error_backoff: cfg.accept_error_backoff,
        };
        let mut handle = ServerHandle {
            local_addr,
            loops,
            stats,
            threads: Vec::with_capacity(cfg.threads),
            shutdown_timeout: cfg.shutdown_timeout,
        };
        for part in parts {
            let index = part.index;
            let shared = shared.clone();
            let factory = self.factory.clone();
            let spawned = std::thread::Builder::new().name(format!("{}-{index}", cfg.thread_name)).spawn(move || {
                let acceptor = Acceptor::new(shared, index, accept_cfg);
                let handler = factory();
                EventLoop::new(part, handler, Some(acceptor)).run()
            });
            match spawned {
                Ok(t) => handle.threads.push(t),
                Err(e) => return Err(e), // `handle` drops: started threads shut down and join
            }
        }
        log::info!(target: "kingpin::server", "listening on {local_addr} with {} IO threads", cfg.threads);
        Ok(handle)
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
    loops: Vec<LoopHandle<H>>,
    stats: Vec<Arc<LoopStats>>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    shutdown_timeout: Duration,
}

impl<H: IoHandler> ServerHandle<H> {
    /// The address the server listens on (with the real port when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Handles to the IO loops, by index.
    pub fn loops(&self) -> &[LoopHandle<H>] {
        &self.loops
    }

    /// Counters summed over all IO threads. Any thread.
    pub fn stats(&self) -> Stats {
        self.stats.iter().map(|s| s.snapshot()).sum()
    }

    /// Counters of each IO thread, by loop index. Any thread.
    pub fn loop_stats(&self) -> Vec<Stats> {
        self.stats.iter().map(|s| s.snapshot()).collect()
    }

    /// Begins a graceful shutdown with the configured timeout; returns at once. Idempotent.
    /// See [`Shutdown::shutdown`].
    pub fn shutdown(&self) {
        self.shutdown_handle().shutdown();
    }

    /// A cloneable, `Send + Sync` trigger for shutdown, e.g. for a Ctrl+C handler.
    pub fn shutdown_handle(&self) -> Shutdown {
        let loops = self.loops.clone();
        Shutdown {
            timeout: self.shutdown_timeout,
            trigger: Arc::new(move |deadline| {
                for l in &loops {
                    // A loop that already stopped needs no telling.
                    let _ = l.mailbox().push(Command::Shutdown(deadline));
                }
            }),
        }
    }

    /// Waits until every IO thread has exited (after [`ServerHandle::shutdown`]).
    ///
    /// # Errors
    /// The first error an IO loop failed with (its `epoll_wait` broke), or an
    /// `io::ErrorKind::Other` error if an IO thread panicked outside any callback (e.g. in
    /// the handler factory).
    pub fn join(mut self) -> io::Result<()> {
        self.join_threads()
    }

    fn join_threads(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        for t in self.threads.drain(..) {
            let r = match t.join() {
                Ok(r) => r,
                Err(p) => Err(io::Error::other(format!("IO thread panicked: {}", crate::dispatch::panic_message(&*p)))),
            };
            if let (Ok(()), Err(e)) = (&result, r) {
                result = Err(e);
            }
        }
        result
    }
}

impl<H: IoHandler> Drop for ServerHandle<H> {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
            if let Err(e) = self.join_threads() {
                log::error!(target: "kingpin::server", "{e}");
            }
        }
    }
}

impl<H: IoHandler> fmt::Debug for ServerHandle<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("threads", &self.loops.len())
            .finish()
    }
}

/// Triggers a graceful shutdown from any thread: stop accepting, write pending output (until
/// the timeout), close every connection (their `on_closed` fires), and let the IO threads exit.
#[derive(Clone)]
pub struct Shutdown {
    timeout: Duration,
    trigger: Arc<dyn Fn(Instant) + Send + Sync>,
}

impl Shutdown {
    /// Begins shutdown with the configured timeout; returns at once. Idempotent; any thread.
    pub fn shutdown(&self) {
        self.shutdown_with_timeout(self.timeout);
    }

    /// Begins shutdown; connections with output still pending after `timeout` are force-closed
    /// with [`crate::CloseReason::ShutdownForced`].
    pub fn shutdown_with_timeout(&self, timeout: Duration) {
        (self.trigger)(Instant::now() + timeout);
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown").field("timeout", &self.timeout).finish()
    }
}
