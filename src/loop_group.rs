//! The IO threads of a server or a client, and what both do with them: spawn, count, shut
//! down, join.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::LoopConfig;
use crate::event_loop::{EventLoop, LoopParts};
use crate::mailbox::{Command, ConnSink};
use crate::stats::LoopStats;
use crate::target_pool::TargetPool;
use crate::{IoHandler, LoopHandle, Shutdown, Stats};

/// Builds a thread's loop from its parts; runs on that thread.
pub(crate) type MakeLoop<H> = Arc<dyn Fn(LoopParts<H>) -> EventLoop<H> + Send + Sync>;

/// N IO threads, each running one [`EventLoop`].
pub(crate) struct LoopGroup<H: IoHandler> {
    loops: Vec<LoopHandle<H>>,
    stats: Vec<Arc<LoopStats>>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    shutdown_timeout: Duration,
}

impl<H: IoHandler> LoopGroup<H> {
    /// Creates every loop's epoll and waker (so failures surface here, on the caller's thread).
    pub(crate) fn prepare(
        threads: usize,
        cfg: &LoopConfig,
        targets: Option<&Arc<TargetPool>>,
    ) -> io::Result<Vec<LoopParts<H>>> {
        (0..threads).map(|i| LoopParts::new(i, cfg.clone(), targets.cloned())).collect()
    }

    /// The balancing view of each loop: its counters and a way to wake it.
    pub(crate) fn peers(parts: &[LoopParts<H>]) -> Vec<crate::acceptor::LoopPeer> {
        parts
            .iter()
            .map(|p| crate::acceptor::LoopPeer { stats: p.stats.clone(), sink: p.mailbox.clone() as Arc<dyn ConnSink> })
            .collect()
    }

    /// Spawns one thread per part, named `<name>-<index>`, each running `make(part)`.
    ///
    /// # Errors
    /// When a thread cannot be spawned; the threads already started are shut down and joined.
    pub(crate) fn spawn(
        parts: Vec<LoopParts<H>>,
        name: &str,
        shutdown_timeout: Duration,
        make: MakeLoop<H>,
    ) -> io::Result<Self> {
        let mut group = LoopGroup {
            loops: parts.iter().map(LoopParts::handle).collect(),
            stats: parts.iter().map(|p| p.stats.clone()).collect(),
            threads: Vec::with_capacity(parts.len()),
            shutdown_timeout,
        };
        for part in parts {
            let make = make.clone();
            let spawned =
                std::thread::Builder::new().name(format!("{name}-{}", part.index)).spawn(move || make(part).run());
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
        self.stats.iter().map(|s| s.snapshot()).sum()
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
                    let _ = l.mailbox().push(Command::Shutdown(deadline));
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
                Err(p) => Err(io::Error::other(format!("IO thread panicked: {}", crate::dispatch::panic_message(&*p)))),
            };
            if let (Ok(()), Err(e)) = (&result, r) {
                result = Err(e);
            }
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
