//! [`EpollTPClient`]: N IO threads, one epoll each, connecting targets from a shared pool.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::config::ClientConfig;
use super::connector::{ConnectConfig, Connector};
use super::target_pool::TargetPool;
use crate::base::error::Error;
use crate::base::stats::Stats;
use crate::conn::target::Target;
use crate::reactor::handler::IoHandler;
use crate::reactor::handler::LoopHandle;
use crate::reactor::loop_group::LoopGroup;
use crate::reactor::shutdown::Shutdown;
use crate::work::pool::WorkerPool;

type Factory<H> = Arc<dyn Fn() -> H + Send + Sync>;

/// A TCP client: N IO threads, each with its own epoll and [`IoHandler`], that take targets
/// (host, port, first message) from a shared [`TargetPool`], connect them without blocking
/// and run them like server connections.
///
/// # Examples
///
/// A batch job: connect, send, read the answer, close; `run_until_idle` returns when every
/// target is done.
///
/// ```
/// use kingpin::{ClientConfig, Conn, EpollTPClient, EpollTPServer, IoHandler, ServerConfig, Target};
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
/// struct Ping;
/// impl IoHandler for Ping {
///     type ConnState = ();
///
///     fn on_message(&mut self, conn: &mut Conn<'_>) {
///         if conn.input().as_slice() == b"ping" {
///             conn.close();
///         }
///     }
/// }
///
/// let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), || Echo).start()?;
/// let port = server.local_addr().port();
/// let targets = (0..10).map(|_| Target::new("127.0.0.1", port).first_message(b"ping".to_vec()));
/// EpollTPClient::from_fn(ClientConfig::default().threads(2), || Ping).run_until_idle(targets)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct EpollTPClient<H> {
    config: ClientConfig,
    factory: Factory<H>,
    pool: Arc<TargetPool>,
}

impl<H: IoHandler> EpollTPClient<H> {
    /// A client whose handlers are built from data shared by all IO threads (the original's
    /// `TPSharedDataForClient`): `factory` runs once on each IO thread with `shared`.
    pub fn new<S, F>(config: ClientConfig, shared: Arc<S>, factory: F) -> Self
    where
        S: Send + Sync + ?Sized + 'static,
        F: Fn(&Arc<S>) -> H + Send + Sync + 'static,
    {
        Self::from_fn(config, move || factory(&shared))
    }

    /// A client whose handlers are built by `factory`, once on each IO thread.
    pub fn from_fn<F>(config: ClientConfig, factory: F) -> Self
    where
        F: Fn() -> H + Send + Sync + 'static,
    {
        let pool = TargetPool::new(config.resolve_timeout);
        EpollTPClient { config, factory: Arc::new(factory), pool }
    }

    /// The client's target pool: add targets before or after start, from any thread. Put it in
    /// the shared data (e.g. through a `OnceLock`) for handlers that add targets themselves.
    pub fn targets(&self) -> Arc<TargetPool> {
        self.pool.clone()
    }

    /// Starts the IO threads. Call from any thread.
    ///
    /// # Errors
    /// When the system refuses an epoll, eventfd or thread; nothing is left running then.
    pub fn start(self) -> io::Result<ClientHandle<H>> {
        let cfg = self.config;
        let parts = LoopGroup::<H>::prepare(cfg.threads, &cfg.lp)?;
        self.pool.set_peers(LoopGroup::peers(&parts));
        let (factory, pool) = (self.factory, self.pool.clone());
        let connect = ConnectConfig {
            batch: cfg.connect_batch,
            max_connecting: cfg.max_connecting,
            mutex_delay: cfg.mutex_delay,
            timeout: cfg.connect_timeout,
            tls: cfg.tls.clone(),
        };
        let group = LoopGroup::spawn(parts, &cfg.thread_name, cfg.shutdown_timeout, move |index| {
            (factory(), Connector::new(pool.clone(), index, connect.clone()))
        })?;
        Ok(ClientHandle { pool: self.pool, group })
    }

    /// Starts, adds `targets`, waits until every target is done (connected and closed, or
    /// failed), then shuts down and joins: a batch job that ends by itself.
    ///
    /// # Errors
    /// As [`EpollTPClient::start`] and [`ClientHandle::join`].
    pub fn run_until_idle(self, targets: impl IntoIterator<Item = Target>) -> io::Result<()> {
        let handle = self.start()?;
        for t in targets {
            handle.add(t).map_err(io::Error::from)?;
        }
        while !handle.wait_idle(Duration::from_secs(3600)) {}
        handle.shutdown();
        handle.join()
    }

    /// Like [`EpollTPClient::run_until_idle`], but gives up after `timeout`: then it shuts
    /// down (connections drain for the configured shutdown timeout) and fails with `TimedOut`.
    ///
    /// # Errors
    /// `io::ErrorKind::TimedOut` when the targets were not all done in time; else as
    /// [`EpollTPClient::run_until_idle`].
    pub fn run_until_idle_timeout(
        self,
        targets: impl IntoIterator<Item = Target>,
        timeout: Duration,
    ) -> io::Result<()> {
        let handle = self.start()?;
        for t in targets {
            handle.add(t).map_err(io::Error::from)?;
        }
        let idle = handle.wait_idle(timeout);
        let left = handle.targets().outstanding();
        handle.shutdown();
        handle.join()?;
        if idle {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::TimedOut, format!("{left} targets not done after {timeout:?}")))
        }
    }
}

impl<H> fmt::Debug for EpollTPClient<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpollTPClient").field("config", &self.config).field("targets", &self.pool).finish()
    }
}

/// A running client: add targets, read counters, wait for idleness, shut down.
///
/// Dropping the handle shuts the client down and waits for its threads.
pub struct ClientHandle<H: IoHandler> {
    pool: Arc<TargetPool>,
    group: LoopGroup<H>,
}

impl<H: IoHandler> ClientHandle<H> {
    /// Queues a target; an idle IO thread wakes up for it. Any thread.
    ///
    /// # Errors
    /// [`Error::LoopStopped`] once the client is shutting down.
    pub fn add(&self, target: Target) -> Result<(), Error> {
        self.pool.add(target)
    }

    /// The shared target pool (see [`EpollTPClient::targets`]).
    pub fn targets(&self) -> &Arc<TargetPool> {
        &self.pool
    }

    /// Waits until every target added so far is done, at most `timeout`; `true` if so.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        self.pool.wait_idle(timeout)
    }

    /// Handles to the IO loops, by index.
    pub fn loops(&self) -> &[LoopHandle<H>] {
        self.group.loops()
    }

    /// Counters summed over all IO threads. Any thread.
    pub fn stats(&self) -> Stats {
        self.group.stats()
    }

    /// The worker pool of the client's blocking jobs ([`IoHandler::spawn_blocking`]): its
    /// counters, or to run more work on it.
    pub fn workers(&self) -> &WorkerPool {
        self.group.workers()
    }

    /// Counters of each IO thread, by loop index. Any thread.
    pub fn loop_stats(&self) -> Vec<Stats> {
        self.group.loop_stats()
    }

    /// Begins a graceful shutdown: stop taking targets (queued ones, connects in progress and
    /// retries waiting fail with `Interrupted` through `on_connect_failed`), drain, close,
    /// exit. Returns at once; idempotent.
    pub fn shutdown(&self) {
        self.group.shutdown_handle().shutdown();
    }

    /// A cloneable, `Send + Sync` trigger for shutdown.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.group.shutdown_handle()
    }

    /// Waits until every IO thread has exited (after a shutdown).
    ///
    /// # Errors
    /// As [`crate::ServerHandle::join`].
    pub fn join(mut self) -> io::Result<()> {
        self.group.join()
    }
}

impl<H: IoHandler> fmt::Debug for ClientHandle<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHandle").field("targets", &self.pool).field("threads", &self.loops().len()).finish()
    }
}
