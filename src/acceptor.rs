//! The accept mutex (nginx's): IO threads compete with `try_lock` for the right to watch the
//! shared listening socket in their own epoll.
//!
//! Each turn, before `epoll_wait`, a thread that is not over its fair share of connections
//! tries the lock. The winner adds the listener to its epoll (unless it is still there from the
//! previous win), waits, accepts up to a batch, and releases the lock before it handles its
//! other events. A loser removes the listener from its epoll if it had it, and caps its wait at
//! `accept_mutex_delay` so that it competes again soon. A thread whose share is too large backs
//! off (nginx's `accept_disabled`, measured against the average instead of free slots, so the
//! balance holds at any load) and, when it lets the lock go, wakes the least-loaded thread so
//! that pending connections are never left without a watcher.
//!
//! Resource errors (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) never kill the server: the pending
//! connection is accepted with a spare fd and closed at once (muduo's trick, so the kernel does
//! not report the listener ready forever), and accepting pauses for `accept_error_backoff`.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::lock_api::ArcMutexGuard;
use parking_lot::{Mutex, RawMutex};

use crate::io_ctx::IoCtx;
use crate::mailbox::ConnSink;
use crate::stats::LoopStats;
use crate::sys::{self, EPOLLIN};

/// The epoll token of the listening socket.
pub(crate) const LISTENER_TOKEN: u64 = u64::MAX - 1;

/// What the accept mutex guards.
pub(crate) struct AcceptState {
    /// A spare descriptor, closed to make room when the process runs out of them.
    spare: Option<File>,
    /// Accepting pauses until then after a resource error.
    paused_until: Option<Instant>,
}

/// One IO loop as the other loops see it, for balancing.
pub(crate) struct LoopPeer {
    pub(crate) stats: Arc<LoopStats>,
    pub(crate) sink: Arc<dyn ConnSink>,
}

/// Shared by all IO threads of a server: the listener, its mutex, and the loops.
pub(crate) struct AcceptShared {
    listener: OwnedFd,
    lock: Arc<Mutex<AcceptState>>,
    peers: Vec<LoopPeer>,
    /// The listener was stopped (shutdown).
    stopped: std::sync::atomic::AtomicBool,
}

impl AcceptShared {
    pub(crate) fn new(listener: OwnedFd, peers: Vec<LoopPeer>) -> Self {
        let state = AcceptState { spare: File::open("/dev/null").ok(), paused_until: None };
        AcceptShared { listener, lock: Arc::new(Mutex::new(state)), peers, stopped: Default::default() }
    }
}

/// Settings of the accept path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AcceptConfig {
    pub(crate) batch: usize,
    pub(crate) max_connections: Option<usize>,
    pub(crate) mutex_delay: Duration,
    pub(crate) error_backoff: Duration,
}

/// One IO thread's side of the accept mutex.
pub(crate) struct Acceptor {
    shared: Arc<AcceptShared>,
    index: usize,
    cfg: AcceptConfig,
    guard: Option<ArcMutexGuard<RawMutex, AcceptState>>,
    registered: bool,
    enabled: bool,
    last_error_log: Option<Instant>,
}

impl Acceptor {
    pub(crate) fn new(shared: Arc<AcceptShared>, index: usize, cfg: AcceptConfig) -> Self {
        Acceptor { shared, index, cfg, guard: None, registered: false, enabled: true, last_error_log: None }
    }

    /// Whether this thread holds more than its fair share of the server's connections.
    fn over_share(&self) -> bool {
        let peers = &self.shared.peers;
        if peers.len() < 2 {
            return false;
        }
        let mine = peers[self.index].stats.open();
        let total: u64 = peers.iter().map(|p| p.stats.open()).sum();
        let share = total / peers.len() as u64;
        mine > share + (share / 8).max(1)
    }

    fn unregister(&mut self, io: &IoCtx) {
        if self.registered {
            self.registered = false;
            if let Err(e) = sys::epoll_del(io.epoll.as_fd(), self.shared.listener.as_fd()) {
                log::warn!(target: "kingpin::accept", "loop {}: removing the listener: {e}", self.index);
            }
        }
    }

    /// Competes for the accept mutex before `epoll_wait`. Returns a cap for the wait.
    pub(crate) fn before_wait(&mut self, io: &IoCtx, hold_back: bool) -> Option<Duration> {
        debug_assert!(self.guard.is_none(), "the accept mutex is never held across turns");
        if !self.enabled {
            self.unregister(io);
            return None;
        }
        if hold_back {
            // The memory budget is exhausted: let connections wait in the kernel's queue.
            self.unregister(io);
            return Some(self.cfg.mutex_delay);
        }
        if self.over_share() {
            self.unregister(io);
            return Some(self.cfg.mutex_delay);
        }
        let Some(mut guard) = self.shared.lock.try_lock_arc() else {
            self.unregister(io);
            return Some(self.cfg.mutex_delay);
        };
        if let Some(until) = guard.paused_until {
            if io.now < until {
                drop(guard);
                self.unregister(io);
                return Some(until - io.now);
            }
            guard.paused_until = None;
        }
        if !self.registered {
            match sys::epoll_add(io.epoll.as_fd(), self.shared.listener.as_fd(), EPOLLIN, LISTENER_TOKEN) {
                Ok(()) => self.registered = true,
                Err(e) => {
                    log::error!(target: "kingpin::accept", "loop {}: adding the listener: {e}", self.index);
                    return Some(self.cfg.mutex_delay);
                }
            }
        }
        self.guard = Some(guard);
        None
    }

    /// Accepts up to a batch of connections into `out`; accept errors go to `errors`.
    pub(crate) fn accept(&mut self, io: &IoCtx, out: &mut Vec<(OwnedFd, SocketAddr)>, errors: &mut Vec<io::Error>) {
        let Some(guard) = self.guard.as_mut() else { return };
        if self.shared.stopped.load(std::sync::atomic::Ordering::Acquire) {
            return; // shutdown stopped the listener; its readiness is not a connection
        }
        let listener = self.shared.listener.as_fd();
        let open: u64 = self.shared.peers.iter().map(|p| p.stats.open()).sum();
        let mut room = self.cfg.max_connections.map_or(usize::MAX, |max| max.saturating_sub(open as usize));
        for _ in 0..self.cfg.batch {
            match sys::accept(listener) {
                Ok(conn) if room > 0 => {
                    room -= 1;
                    out.push(conn);
                }
                Ok((fd, peer)) => {
                    // Over max_connections: refuse cleanly (the peer sees the close at once).
                    io.stats.on_refused();
                    drop(fd);
                    let now = Instant::now();
                    if self.last_error_log.map_or(true, |t| now.duration_since(t) >= Duration::from_secs(1)) {
                        self.last_error_log = Some(now);
                        log::warn!(target: "kingpin::accept", "refused {peer}: max_connections reached");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) if self.shared.stopped.load(std::sync::atomic::Ordering::Acquire) => break,
                Err(e) => {
                    let code = e.raw_os_error().unwrap_or(0);
                    // The connection went away before we took it, or a per-connection
                    // failure: skip it and go on.
                    if matches!(code, libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::ENETDOWN) {
                        log::debug!(target: "kingpin::accept", "accept: {e} (skipped)");
                        continue;
                    }
                    io.stats.on_accept_error();
                    if matches!(code, libc::EMFILE | libc::ENFILE) {
                        if let Some(spare) = guard.spare.take() {
                            drop(spare);
                            // Take the waiting connections (up to a batch) and close them: the
                            // peers see a clean close at once instead of waiting in the queue,
                            // maybe for long, while no descriptor is free to serve them.
                            for _ in 0..self.cfg.batch {
                                let Ok((fd, peer)) = sys::accept(listener) else { break };
                                log::debug!(target: "kingpin::accept", "refused {peer}: out of fds");
                                io.stats.on_refused();
                                drop(fd);
                            }
                            guard.spare = File::open("/dev/null").ok();
                        }
                    }
                    let now = Instant::now();
                    guard.paused_until = Some(crate::timer::after(now, self.cfg.error_backoff));
                    if self.last_error_log.map_or(true, |t| now.duration_since(t) >= Duration::from_secs(1)) {
                        self.last_error_log = Some(now);
                        log::warn!(
                            target: "kingpin::accept",
                            "accept failed: {e}; pausing accepts for {:?}",
                            self.cfg.error_backoff
                        );
                    }
                    errors.push(e);
                    break;
                }
            }
        }
    }

    /// Releases the accept mutex after the accept phase of a turn; if this thread will sit the
    /// next round out, wakes the least-loaded other thread to take over.
    pub(crate) fn after_accept(&mut self) {
        if self.guard.take().is_none() {
            return;
        }
        if self.over_share() {
            let least = self
                .shared
                .peers
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != self.index)
                .min_by_key(|(_, p)| p.stats.open());
            if let Some((_, peer)) = least {
                peer.sink.wake();
            }
        }
    }

    /// Stops accepting for good (shutdown): releases the mutex and the listener, and stops the
    /// listener itself so that new connections are refused at once instead of waiting in the
    /// queue for a server that is going away.
    pub(crate) fn disable(&mut self, io: &IoCtx) {
        self.enabled = false;
        self.guard = None;
        self.unregister(io);
        if !self.shared.stopped.swap(true, std::sync::atomic::Ordering::AcqRel) {
            if let Err(e) = sys::stop_listening(self.shared.listener.as_fd()) {
                log::debug!(target: "kingpin::accept", "stopping the listener: {e}");
            }
        }
    }
}
