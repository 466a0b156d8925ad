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

use super::resolver;
use crate::base::error::Error;
use crate::base::timer;
use crate::conn::target::{Outstanding, Target, Ticket};
use crate::reactor::balance::Peers;

/// A target ready for an IO thread: its address (or why it has none) and attempts so far.
pub(crate) struct PoolEntry {
    pub(crate) ticket: Ticket,
    pub(crate) addr: io::Result<SocketAddr>,
    pub(crate) attempts: u32,
}

/// The shared pool of targets of an [`crate::EpollTPClient`]. `Send + Sync`: add from any
/// thread, including from handlers (e.g. a crawler following links).
pub struct TargetPool {
    queue: Mutex<VecDeque<PoolEntry>>,
    peers: OnceLock<Peers>,
    /// Targets added and not yet finished (connected and closed, or failed for good).
    outstanding: Mutex<usize>,
    idle: Condvar,
    closed: AtomicBool,
    resolver: Mutex<Option<mpsc::Sender<Ticket>>>,
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

    pub(crate) fn set_peers(&self, peers: Peers) {
        let _ = self.peers.set(peers);
    }

    pub(crate) fn peers(&self) -> Option<&Peers> {
        self.peers.get()
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
        let owner: Weak<dyn Outstanding> = self.me.clone();
        let ticket = Ticket::new(Arc::new(target), owner);
        let target = ticket.target();
        let literal = target.host().trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>();
        match literal {
            Ok(ip) => {
                let addr = SocketAddr::new(ip, target.port());
                self.push(PoolEntry { ticket, addr: Ok(addr), attempts: 0 });
            }
            Err(_) => self.resolve(ticket),
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
        let deadline = timer::after(Instant::now(), timeout);
        let mut n = self.outstanding.lock();
        while *n > 0 {
            if self.idle.wait_until(&mut n, deadline).timed_out() {
                return *n == 0;
            }
        }
        true
    }

    /// Hands a name to the resolver thread, starting it on first use.
    fn resolve(&self, ticket: Ticket) {
        let mut resolver = self.resolver.lock();
        if resolver.is_none() {
            let pool = self.me.clone();
            let deliver: resolver::Deliver = Box::new(move |ticket, addr| match pool.upgrade() {
                Some(pool) => {
                    pool.push(PoolEntry { ticket, addr, attempts: 0 });
                    true
                }
                None => false,
            });
            match resolver::spawn(self.resolve_timeout, deliver) {
                Ok(tx) => *resolver = Some(tx),
                Err(e) => {
                    drop(resolver);
                    let addr = Err(io::Error::new(e.kind(), format!("cannot start the resolver thread: {e}")));
                    return self.push(PoolEntry { ticket, addr, attempts: 0 });
                }
            }
        }
        if let Some(tx) = resolver.as_ref() {
            if let Err(mpsc::SendError(ticket)) = tx.send(ticket) {
                drop(resolver);
                let addr = Err(io::Error::other("resolver thread has stopped"));
                self.push(PoolEntry { ticket, addr, attempts: 0 });
            }
        }
    }

    /// Queues an entry; wakes every IO thread when the pool was empty.
    pub(crate) fn push(&self, entry: PoolEntry) {
        let was_empty = {
            let mut q = self.queue.lock();
            if self.closed.load(Ordering::Acquire) {
                // Shut down meanwhile (e.g. a name resolved late): nothing will take it, and
                // dropping its ticket counts it as finished.
                drop(q);
                log::debug!(
                    target: "kingpin::client",
                    "target {} dropped: client shut down",
                    entry.ticket.target().host_port()
                );
                return;
            }
            q.push_back(entry);
            q.len() == 1
        };
        if was_empty {
            if let Some(peers) = self.peers() {
                peers.wake_all();
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

    /// Refuses new targets and returns the queued ones (shutdown), for the caller to report.
    pub(crate) fn close(&self) -> Vec<PoolEntry> {
        self.resolver.lock().take();
        let mut q = self.queue.lock();
        self.closed.store(true, Ordering::Release);
        q.drain(..).collect()
    }
}

impl Outstanding for TargetPool {
    fn done(&self) {
        let mut n = self.outstanding.lock();
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.idle.notify_all();
        }
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
