//! [`LoopGroup`]: the N IO threads of a server or a client, and what both do with them —
//! prepare, spawn, count, shut down, join — whatever their role.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::balance::Peers;
use super::config::{LoopConfig, Workers};
use super::event_loop::EventLoop;
use super::handler::IoHandler;
use super::handler::LoopHandle;
use super::parts::LoopParts;
use super::role::Role;
use super::shutdown::Shutdown;
use crate::base::panic::panic_message;
use crate::base::stats::{LoopStats, Stats};
use crate::sys;
use crate::work::pool::WorkerPool;

/// How long `join` waits for the owned pool's workers once the loops have exited.
const POOL_GRACE: Duration = Duration::from_millis(100);

/// N IO threads, each running one [`EventLoop`].
pub(crate) struct LoopGroup<H: IoHandler> {
    loops: Vec<LoopHandle<H>>,
    stats: Vec<Arc<LoopStats>>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    shutdown_timeout: Duration,
    /// The pool of the loops' blocking jobs, and whether the group owns it (then it shuts it
    /// down once the loops have exited).
    workers: WorkerPool,
    owns_workers: bool,
}

impl<H: IoHandler> LoopGroup<H> {
    /// Creates every loop's epoll and waker (so failures surface here, on the caller's thread),
    /// and the worker pool they share.
    pub(crate) fn prepare(threads: usize, cfg: &LoopConfig) -> io::Result<Vec<LoopParts<H>>> {
        let (workers, _) = cfg.workers.make();
        (0..threads).map(|i| LoopParts::new(i, cfg.clone(), workers.clone())).collect()
    }

    /// How the loops of `parts` see each other, for balancing.
    pub(crate) fn peers(parts: &[LoopParts<H>]) -> Peers {
        Peers::new(parts.iter().map(LoopParts::peer).collect())
    }

    /// Spawns one thread per part, named `<name>-<index>`; each makes its handler and role
    /// with `make(index)` on its own thread (so neither need be `Send`) and runs its loop.
    ///
    /// # Errors
    /// When a thread cannot be spawned; the threads already started are shut down and joined.
    pub(crate) fn spawn<R, F>(
        parts: Vec<LoopParts<H>>,
        name: &str,
        shutdown_timeout: Duration,
        make: F,
    ) -> io::Result<Self>
    where
        R: Role<H> + 'static,
        F: Fn(usize) -> (H, R) + Send + Sync + 'static,
    {
        let workers = parts[0].workers.clone();
        let mut group = LoopGroup {
            loops: parts.iter().map(LoopParts::handle).collect(),
            stats: parts.iter().map(|p| p.stats.clone()).collect(),
            threads: Vec::with_capacity(parts.len()),
            shutdown_timeout,
            owns_workers: matches!(parts[0].cfg.workers, Workers::Own { .. }),
            workers,
        };
        let make = Arc::new(make);
        for part in parts {
            let make = make.clone();
            let spawned = std::thread::Builder::new().name(format!("{name}-{}", part.index)).spawn(move || {
                let index = part.index;
                if let Err(e) = sys::block_sigpipe() {
                    log::warn!(target: "kingpin::loop", "loop {index}: cannot block SIGPIPE: {e}");
                }
                // The factory is user code: a panic there ends this loop before it starts,
                // visibly (its mailbox refuses work, its stats say failed, `join` reports it).
                match panic::catch_unwind(AssertUnwindSafe(|| make(index))) {
                    Ok((handler, role)) => EventLoop::new(part, handler, role).run(),
                    Err(payload) => {
                        let msg = panic_message(&*payload);
                        log::error!(target: "kingpin::loop", "loop {index}: the handler factory panicked: {msg}");
                        drop(part.mailbox.close());
                        part.stats.on_panic();
                        part.stats.on_loop_failed();
                        log::logger().flush();
                        Err(io::Error::other(format!("IO loop {index}: the handler factory panicked: {msg}")))
                    }
                }
            });
            match spawned {
                Ok(t) => group.threads.push(t),
                Err(e) => {
                    group.shutdown_handle().shutdown_with_timeout(Duration::ZERO);
                    let _ = group.join();
                    return Err(e);
                }
            }
        }
        Ok(group)
    }

    pub(crate) fn loops(&self) -> &[LoopHandle<H>] {
        &self.loops
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut stats: Stats = self.stats.iter().map(|s| s.snapshot()).sum();
        let workers = self.workers.stats();
        stats.jobs_queued = workers.queued;
        stats.workers_busy = workers.busy;
        stats
    }

    pub(crate) fn workers(&self) -> &WorkerPool {
        &self.workers
    }

    pub(crate) fn loop_stats(&self) -> Vec<Stats> {
        self.stats.iter().map(|s| s.snapshot()).collect()
    }

    pub(crate) fn shutdown_handle(&self) -> Shutdown {
        let loops = self.loops.clone();
        Shutdown::new(
            self.shutdown_timeout,
            Arc::new(move |deadline| {
                for l in &loops {
                    // A loop that already stopped needs no telling.
                    let _ = l.shutdown(deadline);
                }
            }),
        )
    }

    pub(crate) fn is_joined(&self) -> bool {
        self.threads.is_empty()
    }

    /// Waits for every thread; returns the first failure.
    pub(crate) fn join(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        for t in self.threads.drain(..) {
            let r = match t.join() {
                Ok(r) => r,
                Err(p) => Err(io::Error::other(format!("IO thread panicked: {}", panic_message(&*p)))),
            };
            if let (Ok(()), Err(e)) = (&result, r) {
                result = Err(e);
            }
        }
        // Every loop has completed its jobs (and fired their tokens); the pool's workers may
        // still run some whose loop gave up at the deadline. They get a moment to see their
        // token, then go on detached: the deadline has passed already.
        if self.owns_workers && !self.workers.shutdown(POOL_GRACE.min(self.shutdown_timeout)) {
            log::warn!(target: "kingpin::loop", "worker pool: jobs still running after the shutdown timeout");
        }
        result
    }
}

impl<H: IoHandler> Drop for LoopGroup<H> {
    /// Shuts down and joins threads still running, so none outlives its handle.
    fn drop(&mut self) {
        if !self.is_joined() {
            self.shutdown_handle().shutdown();
            if let Err(e) = self.join() {
                log::error!(target: "kingpin::loop", "{e}");
            }
        }
    }
}
