//! [`TargetPool`]: the targets a client has still to connect, shared by its IO threads (the
//! original's `TPSharedDataForClient`).
//!
//! Any thread adds targets at any time. IO threads compete for the pool with `try_lock`, each
//! taking a batch while it is not over its fair share of connections; a thread that leaves
//! targets behind wakes the least-loaded other thread, and a push into an empty pool wakes
//! every thread, so an idle client sleeps in `epoll_wait` and never spins.
//!
//! Names are resolved on a resolver thread, never on an IO thread: the system resolver blocks.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::acceptor::LoopPeer;
use crate::{Error, Target};

/// A target ready for an IO thread: its address (or why it has none) and attempts so far.
pub(crate) struct PoolEntry {
    pub(crate) target: Arc<Target>,
    pub(crate) addr: io::Result<SocketAddr>,
    pub(crate) attempts: u32,
}

/// The shared pool of targets of an [`crate::EpollTPClient`]. `Send + Sync`: add from any
/// thread, including from handlers (e.g. a crawler following links).
pub struct TargetPool {
    queue: Mutex<VecDeque<PoolEntry>>,
    peers: OnceLock<Vec<LoopPeer>>,
    /// Targets added and not yet finished (connected and closed, or failed for good).
    outstanding: Mutex<usize>,
    idle: Condvar,
    closed: AtomicBool,
    resolver: Mutex<Option<mpsc::Sender<Arc<Target>>>>,
    resolve_timeout: Duration,
    me: Weak<TargetPool>,
}

impl TargetPool {
    pub(crate) fn new(resolve_timeout: Duration) -> Arc<Self> {
        Arc::new_cyclic(|me| TargetPool {
            queue: Mutex::new(VecDeque::new()),
            peers: OnceLock::new(),
            outstanding: Mutex::new(0),
            idle: Condvar::new(),
            closed: AtomicBool::new(false),
            resolver: Mutex::new(None),
            resolve_timeout,
            me: me.clone(),
        })
    }

    pub(crate) fn set_peers(&self, peers: Vec<LoopPeer>) {
        let _ = self.peers.set(peers);
    }

    pub(crate) fn peers(&self) -> &[LoopPeer] {
        self.peers.get().map_or(&[], Vec::as_slice)
    }

    /// Queues a target to connect. Any thread.
    ///
    /// # Errors
    /// [`Error::LoopStopped`] once the client has shut down.
    pub fn add(&self, target: Target) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::LoopStopped);
        }
        *self.outstanding.lock() += 1;
        let target = Arc::new(target);
        let literal = target.host().trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>();
        match literal {
            Ok(ip) => {
                let addr = SocketAddr::new(ip, target.port());
                self.push(PoolEntry { target, addr: Ok(addr), attempts: 0 });
            }
            Err(_) => self.resolve(target),
        }
        Ok(())
    }

    /// Targets added and not yet finished: still queued, being resolved, connecting, retrying,
    /// or connected and not yet closed. Any thread.
    pub fn outstanding(&self) -> usize {
        *self.outstanding.lock()
    }

    /// Targets waiting in the pool for an IO thread to take them (resolved or literal).
    pub fn queued(&self) -> usize {
        self.queue.lock().len()
    }

    /// Waits until no target is outstanding, at most `timeout`; returns whether it got there.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = crate::timer::after(Instant::now(), timeout);
        let mut n = self.outstanding.lock();
        while *n > 0 {
            if self.idle.wait_until(&mut n, deadline).timed_out() {
                return *n == 0;
            }
        }
        true
    }

    /// Hands a name to the resolver thread, starting it on first use.
    fn resolve(&self, target: Arc<Target>) {
        let mut resolver = self.resolver.lock();
        if resolver.is_none() {
            let (tx, rx) = mpsc::channel::<Arc<Target>>();
            let pool = self.me.clone();
            let timeout = self.resolve_timeout;
            let spawned = std::thread::Builder::new().name("kingpin-resolver".into()).spawn(move || {
                while let Ok(target) = rx.recv() {
                    let addr = crate::context::resolve(&target.host_port(), timeout).and_then(|addrs| {
                        addrs.into_iter().next().ok_or_else(|| {
                            io::Error::new(io::ErrorKind::NotFound, format!("{}: no address", target.host()))
                        })
                    });
                    let addr = addr.map_err(|e| io::Error::new(e.kind(), format!("resolving {}: {e}", target.host())));
                    match pool.upgrade() {
                        Some(pool) => pool.push(PoolEntry { target, addr, attempts: 0 }),
                        None => return,
                    }
                }
            });
            match spawned {
                Ok(_) => *resolver = Some(tx),
                Err(e) => {
                    drop(resolver);
                    let addr = Err(io::Error::new(e.kind(), format!("cannot start the resolver thread: {e}")));
                    return self.push(PoolEntry { target, addr, attempts: 0 });
                }
            }
        }
        if let Some(tx) = resolver.as_ref() {
            if let Err(mpsc::SendError(target)) = tx.send(target) {
                drop(resolver);
                let addr = Err(io::Error::other("resolver thread has stopped"));
                self.push(PoolEntry { target, addr, attempts: 0 });
            }
        }
    }

    /// Queues an entry; waking every IO thread when the pool was empty.
    pub(crate) fn push(&self, entry: PoolEntry) {
        let was_empty = {
            let mut q = self.queue.lock();
            if self.closed.load(Ordering::Acquire) {
                // Shut down meanwhile (e.g. a name resolved late): nothing will take it.
                drop(q);
                log::debug!(target: "kingpin::client", "target {} dropped: client shut down", entry.target.host_port());
                return self.done();
            }
            q.push_back(entry);
            q.len() == 1
        };
        if was_empty {
            for p in self.peers() {
                p.sink.wake();
            }
        }
    }

    /// Takes up to `max` entries into `out` if the pool's lock is free. Returns `None` when the
    /// lock was taken by another thread, else how many entries are left.
    pub(crate) fn try_take(&self, max: usize, out: &mut Vec<PoolEntry>) -> Option<usize> {
        let mut q = self.queue.try_lock()?;
        let n = max.min(q.len());
        out.extend(q.drain(..n));
        Some(q.len())
    }

    /// Whether no entry is queued (a racy hint).
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.lock().is_empty()
    }

    /// One target finished for good.
    pub(crate) fn done(&self) {
        let mut n = self.outstanding.lock();
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.idle.notify_all();
        }
    }

    /// Refuses new targets and returns the queued ones (shutdown), for the caller to report.
    pub(crate) fn close(&self) -> Vec<PoolEntry> {
        self.resolver.lock().take();
        let mut q = self.queue.lock();
        self.closed.store(true, Ordering::Release);
        q.drain(..).collect()
    }
}

impl fmt::Debug for TargetPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetPool")
            .field("queued", &self.queue.lock().len())
            .field("outstanding", &self.outstanding())
            .finish()
    }
}
