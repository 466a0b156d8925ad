//! [`Acceptor`]: a server loop's [`Role`] — it takes this thread's share of the new
//! connections, as the [`AcceptStrategy`] says.
//!
//! With the accept mutex (the default), IO threads compete with `try_lock` for the right to
//! watch the shared listening socket in their own epoll. Each turn, before `epoll_wait`, a
//! thread that is not over its fair share of connections tries the lock. The winner adds the
//! listener to its epoll (unless it is still there from the previous win), waits, accepts up to
//! a batch, and releases the lock before it handles its other events. A loser removes the
//! listener from its epoll if it had it, and caps its wait at `accept_mutex_delay` so that it
//! competes again soon. A thread whose share is too large backs off; a thread that has just
//! accepted sits the next turn out (short-lived connections leave every share at zero, and the
//! thread that just released the lock would take it straight back). Either way, when it lets
//! the lock go it wakes the next thread in line that is under its share, so pending
//! connections are never left without a watcher.
//!
//! With `EPOLLEXCLUSIVE`, every thread under its share keeps the one listener in its epoll and
//! the kernel wakes one of them per connection; with `SO_REUSEPORT`, every thread keeps its own
//! listener, and the kernel hashes connections to them.
//!
//! Resource errors (`EMFILE`, `ENFILE`) never kill the server: the waiting connections are
//! accepted with the spare descriptor's room and closed at once (muduo's trick), and accepting
//! pauses for `accept_error_backoff` (on every thread with the mutex; on the thread that met it
//! otherwise).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::accept_shared::{AcceptGuard, AcceptShared, AcceptState};
use super::proxy_protocol::ProxyProtocol;
use super::strategy::AcceptStrategy;
use crate::base::per_ip::{IpSlot, PerIp};
use crate::base::stats::LoopStats;
use crate::base::timer;
use crate::conn::intro::ProxyWait;
use crate::reactor::callback::guarded;
use crate::reactor::dispatch::{add_connection, Incoming, Origin};
use crate::reactor::handler::{Core, IoHandler};
use crate::reactor::loop_core::LoopCore;
use crate::reactor::memory::check_budget;
use crate::reactor::role::Role;
use crate::reactor::token::role_token;
use crate::sys::{self, EpollEvent, EPOLLEXCLUSIVE, EPOLLIN};
use crate::tls::TlsServerSetup;

/// The role key of the listening socket.
const LISTENER: u64 = 0;

/// Settings of the accept path.
#[derive(Clone, Debug)]
pub(crate) struct AcceptConfig {
    pub(crate) batch: usize,
    pub(crate) max_connections: Option<usize>,
    /// Open connections per peer address, when they are limited.
    pub(crate) per_ip: Option<Arc<PerIp>>,
    pub(crate) mutex_delay: Duration,
    pub(crate) error_backoff: Duration,
    /// Every accepted connection speaks TLS with this config, when set.
    pub(crate) tls: Option<TlsServerSetup>,
    /// Whether connections start with a PROXY protocol header.
    pub(crate) proxy: ProxyProtocol,
}

/// How the balance counts a loop's load: its open connections.
fn open(stats: &LoopStats) -> u64 {
    stats.open()
}

/// One IO thread's side of the accept mutex.
pub(crate) struct Acceptor {
    shared: Arc<AcceptShared>,
    index: usize,
    cfg: AcceptConfig,
    /// The accept mutex, held from before the wait until the batch is accepted (`Mutex`).
    guard: Option<AcceptGuard>,
    /// This thread's spare descriptor and error pause (`EpollExclusive`, `ReusePort`: with the
    /// mutex, they are the mutex's).
    own: Option<AcceptState>,
    /// This thread accepted last turn: it sits the next one out (`Mutex`).
    sit_out: bool,
    /// Whether the listener is in this loop's epoll (it is removed lazily).
    registered: bool,
    enabled: bool,
    last_warning: Option<Instant>,
    /// The batch accepted this turn, and the errors met (reused every turn).
    accepted: Vec<(OwnedFd, SocketAddr, Option<IpSlot>)>,
    errors: Vec<io::Error>,
}

impl Acceptor {
    pub(crate) fn new(shared: Arc<AcceptShared>, index: usize, cfg: AcceptConfig) -> Self {
        let own = (shared.strategy() != AcceptStrategy::Mutex).then(AcceptState::new);
        Acceptor {
            shared,
            index,
            cfg,
            guard: None,
            own,
            sit_out: false,
            registered: false,
            enabled: true,
            last_warning: None,
            accepted: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn unregister<S, T>(&mut self, core: &LoopCore<S, T>) {
        if self.registered {
            self.registered = false;
            if let Err(e) = sys::epoll_del(core.epoll.as_fd(), self.shared.listener(self.index)) {
                log::warn!(target: "kingpin::accept", "loop {}: removing the listener: {e}", self.index);
            }
        }
    }

    /// Accepts up to a batch of connections; errors go to `self.errors`.
    fn accept_batch(&mut self, stats: &LoopStats) {
        if self.shared.is_stopped() {
            return; // shutdown stopped the listener; its readiness is not a connection
        }
        let mut guard = self.guard.take();
        let Some(state) = guard.as_deref_mut().or(self.own.as_mut()) else { return };
        let listener = self.shared.listener(self.index);
        let open_now = self.shared.peers.total(open) as usize;
        let mut room = self.cfg.max_connections.map_or(usize::MAX, |max| max.saturating_sub(open_now));
        for _ in 0..self.cfg.batch {
            match sys::accept(listener) {
                Ok((fd, peer)) if room > 0 => {
                    let slot = match &self.cfg.per_ip {
                        // Behind a balancer the address to count is the one in the header.
                        _ if self.cfg.proxy != ProxyProtocol::Off => None,
                        None => None,
                        Some(per_ip) => match per_ip.admit(peer.ip()) {
                            Some(slot) => Some(slot),
                            None => {
                                // Over max_connections_per_ip: refused cleanly, like below.
                                stats.on_refused_per_ip();
                                drop(fd);
                                if may_warn(&mut self.last_warning) {
                                    log::warn!(
                                        target: "kingpin::accept",
                                        "refused {peer}: max_connections_per_ip reached for its address"
                                    );
                                }
                                continue;
                            }
                        },
                    };
                    room -= 1;
                    self.accepted.push((fd, peer, slot));
                }
                Ok((fd, peer)) => {
                    // Over max_connections: refuse cleanly (the peer sees the close at once).
                    stats.on_refused();
                    drop(fd);
                    if may_warn(&mut self.last_warning) {
                        log::warn!(target: "kingpin::accept", "refused {peer}: max_connections reached");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) if self.shared.is_stopped() => break,
                Err(e) => {
                    let code = e.raw_os_error().unwrap_or(0);
                    // The connection went away before we took it, or a per-connection
                    // failure: skip it and go on.
                    if matches!(code, libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::ENETDOWN) {
                        log::debug!(target: "kingpin::accept", "accept: {e} (skipped)");
                        continue;
                    }
                    stats.on_accept_error();
                    if matches!(code, libc::EMFILE | libc::ENFILE) {
                        refuse_waiting(state, listener, stats, self.cfg.batch);
                    }
                    state.paused_until = Some(timer::after(Instant::now(), self.cfg.error_backoff));
                    if may_warn(&mut self.last_warning) {
                        log::warn!(
                            target: "kingpin::accept",
                            "accept failed: {e}; pausing accepts for {:?}",
                            self.cfg.error_backoff
                        );
                    }
                    self.errors.push(e);
                    break;
                }
            }
        }
        self.guard = guard;
    }

    /// Releases the accept mutex after the accept phase of a turn. If this thread will sit the
    /// next turn out — it accepted this turn, or it is over its share — it wakes the next
    /// thread in line to take over.
    fn release(&mut self, accepted: bool) {
        if self.guard.take().is_none() {
            return;
        }
        let peers = &self.shared.peers;
        if (accepted || peers.over_share(self.index, open)) && peers.wake_next_under_share(self.index, open) {
            self.sit_out = accepted;
        }
    }

    /// This loop stops accepting while the others go on (it failed): releases the mutex and
    /// the listener. A listener of its own (`ReusePort`) is stopped, so that the kernel sends
    /// new connections to the other threads' listeners instead of leaving them in a queue that
    /// nobody takes from.
    fn leave<S, T>(&mut self, core: &LoopCore<S, T>) {
        self.enabled = false;
        self.guard = None;
        self.unregister(core);
        if self.shared.strategy() == AcceptStrategy::ReusePort && !self.shared.is_handed_over() {
            if let Err(e) = sys::stop_listening(self.shared.listener(self.index)) {
                log::debug!(target: "kingpin::accept", "loop {}: stopping its listener: {e}", self.index);
            }
        }
    }

    /// Stops accepting for good (shutdown, exit): releases the mutex and the listener, and
    /// stops the listener itself.
    fn disable<S, T>(&mut self, core: &LoopCore<S, T>) {
        self.enabled = false;
        self.guard = None;
        self.unregister(core);
        self.shared.stop();
    }
}

/// Whether a warning may be logged now (at most one a second per thread).
fn may_warn(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if last.map_or(true, |t| now.duration_since(t) >= Duration::from_secs(1)) {
        *last = Some(now);
        return true;
    }
    false
}

/// Out of descriptors: closes the spare to make room, takes the waiting connections (up to a
/// batch) and closes each — their peers see a close at once instead of waiting in the queue,
/// maybe for long, while no descriptor is free to serve them — then reopens the spare.
fn refuse_waiting(state: &mut AcceptState, listener: std::os::fd::BorrowedFd<'_>, stats: &LoopStats, batch: usize) {
    let Some(spare) = state.spare.take() else { return };
    drop(spare);
    for _ in 0..batch {
        let Ok((fd, peer)) = sys::accept(listener) else { break };
        log::debug!(target: "kingpin::accept", "refused {peer}: out of fds");
        stats.on_refused();
        drop(fd);
    }
    state.spare = std::fs::File::open("/dev/null").ok();
}

impl Acceptor {
    /// Adds this thread's listener to its epoll if it is not there; false if that failed.
    fn register<S, T>(&mut self, core: &LoopCore<S, T>) -> bool {
        if self.registered {
            return true;
        }
        let flags = match self.shared.strategy() {
            AcceptStrategy::EpollExclusive => EPOLLIN | EPOLLEXCLUSIVE,
            _ => EPOLLIN,
        };
        match sys::epoll_add(core.epoll.as_fd(), self.shared.listener(self.index), flags, role_token(LISTENER)) {
            Ok(()) => {
                self.registered = true;
                true
            }
            Err(e) => {
                log::error!(target: "kingpin::accept", "loop {}: adding the listener: {e}", self.index);
                false
            }
        }
    }

    /// The mutex strategy's turn: compete for the lock, unless sitting out. Returns a cap for
    /// the wait.
    fn take_turn<S, T>(&mut self, core: &LoopCore<S, T>) -> Option<Duration> {
        // Holding back (memory budget), over its share, just had its turn, or beaten to the
        // lock: let connections wait in the kernel's queue for another thread, and compete
        // again soon.
        let sit_out = std::mem::take(&mut self.sit_out);
        if sit_out || core.hold_back || self.shared.peers.over_share(self.index, open) {
            self.unregister(core);
            return Some(self.cfg.mutex_delay);
        }
        let Some(mut guard) = self.shared.try_lock() else {
            self.unregister(core);
            return Some(self.cfg.mutex_delay);
        };
        let now = core.env.now;
        if let Some(until) = guard.paused_until {
            if now < until {
                drop(guard);
                self.unregister(core);
                return Some(until - now);
            }
            guard.paused_until = None;
        }
        if !self.register(core) {
            return Some(self.cfg.mutex_delay);
        }
        self.guard = Some(guard);
        None
    }

    /// The other strategies: watch this thread's listener unless holding back, paused after
    /// an error, or (one shared listener) over its share. Returns a cap for the wait.
    fn keep_watch<S, T>(&mut self, core: &LoopCore<S, T>) -> Option<Duration> {
        let now = core.env.now;
        let paused = self.own.as_mut().and_then(|st| match st.paused_until {
            Some(until) if now < until => Some(until - now),
            Some(_) => {
                st.paused_until = None;
                None
            }
            None => None,
        });
        if let Some(left) = paused {
            self.unregister(core);
            return Some(left);
        }
        // With its own listener (`ReusePort`), a thread that stopped watching would leave the
        // connections hashed to it waiting: only the budget stops it.
        let over_share =
            self.shared.strategy() == AcceptStrategy::EpollExclusive && self.shared.peers.over_share(self.index, open);
        if core.hold_back || over_share {
            self.unregister(core);
            return Some(self.cfg.mutex_delay);
        }
        if !self.register(core) {
            return Some(self.cfg.mutex_delay);
        }
        None
    }
}

impl<H: IoHandler> Role<H> for Acceptor {
    /// Takes this thread's part in accepting (competes for the mutex, or watches its
    /// listener). Returns a cap for the wait.
    fn before_wait(&mut self, _h: &mut H, core: &mut Core<H>) -> Option<Duration> {
        debug_assert!(self.guard.is_none(), "the accept mutex is never held across turns");
        if !self.enabled {
            self.unregister(core);
            return None;
        }
        match self.shared.strategy() {
            AcceptStrategy::Mutex => self.take_turn(core),
            _ => self.keep_watch(core),
        }
    }

    /// Accepts first, and gives the mutex back before the (maybe long) connection work.
    fn after_wait(&mut self, h: &mut H, core: &mut Core<H>, events: &[EpollEvent]) {
        let listener = role_token(LISTENER);
        let watching = self.guard.is_some() || (self.own.is_some() && self.registered);
        if watching && events.iter().any(|e| e.u64 == listener) {
            // The wait may have been long: look at the budget again before taking anyone in.
            check_budget(h, core);
            if !core.hold_back {
                self.accept_batch(&core.env.stats);
            }
        }
        self.release(!self.accepted.is_empty());
        for e in self.errors.drain(..) {
            guarded::<H>(core, "on_accept_error", || h.on_accept_error(&e));
        }
        let mut accepted = std::mem::take(&mut self.accepted);
        for (fd, peer, slot) in accepted.drain(..) {
            let tls = match self.cfg.tls.as_ref().map(TlsServerSetup::session) {
                None => None,
                Some(Ok(session)) => Some(Box::new(session)),
                Some(Err(e)) => {
                    log::error!(target: "kingpin::tls", "cannot start TLS with {peer}: {e}");
                    continue; // the socket closes
                }
            };
            let proxy = match self.cfg.proxy {
                ProxyProtocol::Off => None,
                mode => Some(ProxyWait { optional: mode == ProxyProtocol::Optional, per_ip: self.cfg.per_ip.clone() }),
            };
            // A refusal is logged where it happens; the peer sees the socket close.
            let _ = add_connection(h, core, fd, peer, Incoming { origin: Origin::Accepted(slot), tls, proxy });
        }
        self.accepted = accepted;
    }

    fn on_event(&mut self, _h: &mut H, _core: &mut Core<H>, _key: u64, _events: u32) {
        // The listener's readiness is taken in `after_wait`.
    }

    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    fn run_timers(&mut self, _h: &mut H, _core: &mut Core<H>) {}

    fn begin_shutdown(&mut self, _h: &mut H, core: &mut Core<H>) {
        self.disable(core);
    }

    fn finish(&mut self, _h: &mut H, core: &mut Core<H>, failed: bool) {
        if failed && self.shared.peers.others_live(self.index) {
            self.leave(core);
        } else {
            self.disable(core);
        }
    }
}
