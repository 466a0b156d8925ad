//! [`Connector`]: a client loop's [`Role`] — takes targets from the shared pool and connects
//! them without blocking (`EINPROGRESS` → writable → `SO_ERROR`), with a connect timeout and
//! retries. A socket stays the connector's, under its own token, until the connect succeeds;
//! then it is handed to the loop as a connection (muduo's `Connector`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::target_pool::{PoolEntry, TargetPool};
use crate::base::slab::{ConnId, Slab};
use crate::base::stats::LoopStats;
use crate::base::timer::{self, TimerId, TimerQueue};
use crate::conn::target::{ConnectFailure, Ticket};
use crate::reactor::callback::guarded;
use crate::reactor::dispatch::{add_connection, Incoming, Origin};
use crate::reactor::handler::{Core, IoHandler};
use crate::reactor::role::Role;
use crate::reactor::token::role_token;
use crate::sys::{self, EpollEvent, EPOLLERR, EPOLLHUP, EPOLLOUT};
use crate::tls::TlsClientSetup;

/// Settings of the connect path.
#[derive(Clone, Debug)]
pub(crate) struct ConnectConfig {
    pub(crate) batch: usize,
    pub(crate) max_connecting: usize,
    pub(crate) mutex_delay: Duration,
    pub(crate) timeout: Duration,
    /// Targets that ask for TLS get sessions of this config.
    pub(crate) tls: Option<TlsClientSetup>,
}

/// How the balance counts a client loop's load: connections open and connecting.
fn load(stats: &LoopStats) -> u64 {
    stats.open() + stats.connecting()
}

/// A connect in progress.
struct Attempt {
    fd: OwnedFd,
    addr: SocketAddr,
    ticket: Ticket,
    /// This attempt's number (1 for the first).
    attempt: u32,
    timeout: TimerId,
}

/// What the connector's timers are for.
enum Due {
    /// A connect that must have finished by now.
    Timeout(ConnId),
    /// A target waiting to retry its connect.
    Retry(PoolEntry),
}

/// One IO thread's side of the target pool, and its connects in progress.
pub(crate) struct Connector {
    pool: Arc<TargetPool>,
    index: usize,
    cfg: ConnectConfig,
    enabled: bool,
    /// Cap for the next wait, from the last `take`.
    cap: Option<Duration>,
    /// Entries taken this turn (reused every turn).
    taken: Vec<PoolEntry>,
    attempts: Slab<Attempt>,
    timers: TimerQueue<Due>,
}

impl Connector {
    pub(crate) fn new(pool: Arc<TargetPool>, index: usize, cfg: ConnectConfig) -> Self {
        Connector {
            pool,
            index,
            cfg,
            enabled: true,
            cap: None,
            taken: Vec::new(),
            attempts: Slab::new(),
            timers: TimerQueue::new(false),
        }
    }

    /// Takes a batch of targets into `self.taken` when this thread may.
    fn take(&mut self, stats: &LoopStats) {
        self.cap = None;
        if !self.enabled || self.pool.is_empty() {
            return;
        }
        let Some(peers) = self.pool.peers() else { return };
        if peers.over_share(self.index, load) {
            self.cap = Some(self.cfg.mutex_delay);
            return;
        }
        // At the limit of connects in flight, wait for them: their completions wake the loop.
        let room = self.cfg.max_connecting.saturating_sub(stats.connecting() as usize);
        if room == 0 {
            return;
        }
        match self.pool.try_take(self.cfg.batch.min(room), &mut self.taken) {
            None => self.cap = Some(self.cfg.mutex_delay),
            Some(0) => {}
            Some(_left) => {
                // Leave the rest to the least-loaded other thread, awake or not.
                peers.wake_least_loaded(self.index, load);
                self.cap = Some(Duration::ZERO);
            }
        }
    }

    /// Starts a non-blocking connect for `entry`.
    fn start<H: IoHandler>(&mut self, h: &mut H, core: &mut Core<H>, entry: PoolEntry) {
        let attempt = entry.attempts + 1;
        let ticket = entry.ticket;
        let addr = match entry.addr {
            Ok(addr) => addr,
            // A name that did not resolve is not retried: resolving again would most likely
            // fail the same way, and the error says why.
            Err(e) => return report_failure(h, core, ticket, e, attempt),
        };
        let started =
            sys::tcp_socket(&addr).and_then(|fd| sys::connect(fd.as_fd(), &addr).map(|pending| (fd, pending)));
        let (fd, pending) = match started {
            Ok(v) => v,
            Err(e) => return self.retry_or_report(h, core, ticket, addr, e, attempt),
        };
        if !pending {
            // Connected at once (possible on loopback).
            core.env.stats.connecting_changed(1);
            return self.established(h, core, fd, addr, ticket, attempt);
        }
        let deadline = timer::after(core.env.now, self.cfg.timeout);
        let timers = &mut self.timers;
        let id = self.attempts.insert_with(|id| Attempt {
            fd,
            addr,
            ticket,
            attempt,
            timeout: timers.insert(deadline, None, Due::Timeout(id)),
        });
        let a = self.attempts.get(id).expect("just inserted");
        if let Err(e) = sys::epoll_add(core.epoll.as_fd(), a.fd.as_fd(), EPOLLOUT, role_token(id.as_u64())) {
            let a = self.attempts.remove(id).expect("just inserted");
            self.timers.cancel(a.timeout);
            return self.retry_or_report(h, core, a.ticket, addr, e, attempt);
        }
        core.env.stats.connecting_changed(1);
    }

    /// The connect succeeded: hand the socket to the loop (first message, then `on_connect`).
    /// If the loop cannot take it, the target fails like a connect (and may be retried).
    fn established<H: IoHandler>(
        &mut self,
        h: &mut H,
        core: &mut Core<H>,
        fd: OwnedFd,
        addr: SocketAddr,
        ticket: Ticket,
        attempt: u32,
    ) {
        let peer = sys::peer_addr(fd.as_fd()).unwrap_or(addr);
        core.env.stats.connecting_changed(-1);
        let tls = match ticket.target().get_tls_name() {
            None => None,
            Some(name) => match self.cfg.tls.as_ref().map(|setup| setup.session(name)) {
                Some(Ok(session)) => Some(Box::new(session)),
                Some(Err(e)) => {
                    return report_failure(h, core, ticket, io::Error::new(io::ErrorKind::InvalidInput, e), attempt)
                }
                None => {
                    let e = io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "the target asks for TLS and the client has no TLS config (ClientConfig::tls)",
                    );
                    return report_failure(h, core, ticket, e, attempt);
                }
            },
        };
        let incoming = Incoming { origin: Origin::Connected(ticket), tls, proxy: None };
        if let Err((error, Some(ticket))) = add_connection(h, core, fd, peer, incoming) {
            self.retry_or_report(h, core, ticket, addr, error, attempt);
        }
    }

    /// The connect of attempt `id` failed (refused, unreachable, timed out, shutdown).
    fn failed<H: IoHandler>(&mut self, h: &mut H, core: &mut Core<H>, id: ConnId, error: io::Error) {
        let Some(a) = self.attempts.remove(id) else { return };
        self.timers.cancel(a.timeout);
        let _ = sys::epoll_del(core.epoll.as_fd(), a.fd.as_fd());
        let Attempt { fd, addr, ticket, attempt, .. } = a;
        // Closed before it is counted or reported: whoever sees the attempt end can rely on the
        // descriptor being free.
        drop(fd);
        core.env.stats.connecting_changed(-1);
        self.retry_or_report(h, core, ticket, addr, error, attempt);
    }

    /// Retries per the target's policy, or reports the failure for good.
    fn retry_or_report<H: IoHandler>(
        &mut self,
        h: &mut H,
        core: &mut Core<H>,
        ticket: Ticket,
        addr: SocketAddr,
        error: io::Error,
        attempt: u32,
    ) {
        if let Some(policy) = ticket.target().get_reconnect().copied() {
            if attempt < policy.max_attempts.max(1) && self.enabled {
                let delay = policy.backoff(attempt, RandomState::new().build_hasher().finish());
                log::debug!(
                    target: "kingpin::client",
                    "connect to {} failed: {error}; attempt {} in {delay:?}",
                    ticket.target().host_port(),
                    attempt + 1
                );
                let deadline = timer::after(core.env.now, delay);
                self.timers.insert(deadline, None, Due::Retry(PoolEntry { ticket, addr: Ok(addr), attempts: attempt }));
                return;
            }
        }
        report_failure(h, core, ticket, error, attempt);
    }

    /// This loop fails while the others go on: its own connects and retries fail, and the
    /// shared queue of targets is left to the other loops.
    fn leave<H: IoHandler>(&mut self, h: &mut H, core: &mut Core<H>) {
        self.enabled = false;
        for id in self.attempts.ids() {
            self.failed(h, core, id, io::Error::other("the IO loop failed before the connect finished"));
        }
        for due in self.timers.take_all() {
            if let Due::Retry(entry) = due {
                report_failure(
                    h,
                    core,
                    entry.ticket,
                    io::Error::other("the IO loop failed before the retry"),
                    entry.attempts,
                );
            }
        }
    }

    /// Shutdown or exit: stops taking targets, and reports every target that will now never
    /// connect — queued, connecting, or waiting to retry — as `Interrupted`.
    fn abandon<H: IoHandler>(&mut self, h: &mut H, core: &mut Core<H>) {
        self.enabled = false;
        // The first loop here gets the whole queue.
        for entry in self.pool.close() {
            let error = io::Error::new(io::ErrorKind::Interrupted, "client shut down before the connect");
            report_failure(h, core, entry.ticket, error, entry.attempts);
        }
        for id in self.attempts.ids() {
            let error = io::Error::new(io::ErrorKind::Interrupted, "client shut down before the connect finished");
            self.failed(h, core, id, error);
        }
        for due in self.timers.take_all() {
            if let Due::Retry(entry) = due {
                let error = io::Error::new(io::ErrorKind::Interrupted, "client shut down before the retry");
                report_failure(h, core, entry.ticket, error, entry.attempts);
            }
        }
    }
}

/// Calls `on_connect_failed`; the target is then finished (its ticket is dropped).
fn report_failure<H: IoHandler>(h: &mut H, core: &mut Core<H>, ticket: Ticket, error: io::Error, attempts: u32) {
    log::debug!(target: "kingpin::client", "connect to {} failed: {error}", ticket.target().host_port());
    let failure = ConnectFailure { error, attempts };
    guarded::<H>(core, "on_connect_failed", || h.on_connect_failed(ticket.target(), &failure));
}

impl<H: IoHandler> Role<H> for Connector {
    /// Takes a batch of targets and starts their connects.
    fn before_wait(&mut self, h: &mut H, core: &mut Core<H>) -> Option<Duration> {
        self.take(&core.env.stats);
        let mut taken = std::mem::take(&mut self.taken);
        for entry in taken.drain(..) {
            self.start(h, core, entry);
        }
        self.taken = taken;
        self.cap
    }

    fn after_wait(&mut self, _h: &mut H, _core: &mut Core<H>, _events: &[EpollEvent]) {}

    /// A connecting socket reported `events`: find out how the connect ended.
    fn on_event(&mut self, h: &mut H, core: &mut Core<H>, key: u64, events: u32) {
        let id = ConnId::from_u64(key);
        let Some(a) = self.attempts.get(id) else { return };
        if events & (EPOLLOUT | EPOLLERR | EPOLLHUP) == 0 {
            return;
        }
        match sys::take_socket_error(a.fd.as_fd()) {
            Ok(None) if events & (EPOLLERR | EPOLLHUP) == 0 => {
                let a = self.attempts.remove(id).expect("present");
                self.timers.cancel(a.timeout);
                if let Err(e) = sys::epoll_del(core.epoll.as_fd(), a.fd.as_fd()) {
                    log::debug!(target: "kingpin::client", "connect to {}: epoll del: {e}", a.addr);
                }
                self.established(h, core, a.fd, a.addr, a.ticket, a.attempt);
            }
            Ok(None) => self.failed(h, core, id, io::ErrorKind::ConnectionReset.into()),
            Ok(Some(e)) | Err(e) => self.failed(h, core, id, e),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Connect timeouts and retries that are due.
    fn run_timers(&mut self, h: &mut H, core: &mut Core<H>) {
        let mark = self.timers.mark();
        while let Some(e) = self.timers.pop_due(core.env.now, mark) {
            match e.task {
                Due::Timeout(id) => {
                    let error = io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connect timed out after {:?}", self.cfg.timeout),
                    );
                    self.failed(h, core, id, error);
                }
                Due::Retry(entry) => self.start(h, core, entry),
            }
        }
    }

    fn begin_shutdown(&mut self, h: &mut H, core: &mut Core<H>) {
        self.abandon(h, core);
    }

    fn finish(&mut self, h: &mut H, core: &mut Core<H>, failed: bool) {
        if failed && self.pool.peers().is_some_and(|p| p.others_live(self.index)) {
            self.leave(h, core);
        } else {
            self.abandon(h, core);
        }
    }
}
