//! The client side of a loop: taking targets from the shared pool and connecting them without
//! blocking (`EINPROGRESS` → writable → `SO_ERROR`), with a connect timeout and retries.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::fd::AsFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crate::connection::{arm_idle, Connection};
use crate::dispatch::{self, report_panic};
use crate::io_ctx::ConnTimer;
use crate::loop_ctx::{LoopCore, LoopTimer};
use crate::sys::{self, EPOLLERR, EPOLLHUP, EPOLLOUT};
use crate::target_pool::{PoolEntry, TargetPool};
use crate::{ConnId, ConnectFailure, IoHandler, Target};

/// One IO thread's side of the target pool.
pub(crate) struct Connector {
    pool: Arc<TargetPool>,
    index: usize,
    batch: usize,
    max_connecting: usize,
    mutex_delay: Duration,
    enabled: bool,
    /// Cap for the next wait, from the last `take`.
    cap: Option<Duration>,
}

impl Connector {
    pub(crate) fn new(
        pool: Arc<TargetPool>,
        index: usize,
        batch: usize,
        max_connecting: usize,
        mutex_delay: Duration,
    ) -> Self {
        Connector { pool, index, batch, max_connecting, mutex_delay, enabled: true, cap: None }
    }

    /// Whether this thread holds more than its fair share of the client's connections.
    fn over_share(&self) -> bool {
        let peers = self.pool.peers();
        if peers.len() < 2 {
            return false;
        }
        let load = |i: usize| peers[i].stats.open() + peers[i].stats.connecting();
        let mine = load(self.index);
        let total: u64 = (0..peers.len()).map(load).sum();
        let share = total / peers.len() as u64;
        mine > share + (share / 8).max(1)
    }

    /// Takes a batch of targets into `out` when this thread may. Called before each wait.
    pub(crate) fn take(&mut self, out: &mut Vec<PoolEntry>) {
        self.cap = None;
        if !self.enabled || self.pool.is_empty() {
            return;
        }
        if self.over_share() {
            self.cap = Some(self.mutex_delay);
            return;
        }
        // At the limit of connects in flight, wait for them: their completions wake the loop.
        let in_flight = self.pool.peers().get(self.index).map_or(0, |p| p.stats.connecting()) as usize;
        let room = self.max_connecting.saturating_sub(in_flight);
        if room == 0 {
            return;
        }
        match self.pool.try_take(self.batch.min(room), out) {
            None => self.cap = Some(self.mutex_delay),
            Some(0) => {}
            Some(_left) => {
                // Leave the rest to the least-loaded other thread, awake or not.
                let peers = self.pool.peers();
                let least = peers
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != self.index)
                    .min_by_key(|(_, p)| p.stats.open() + p.stats.connecting());
                if let Some((_, p)) = least {
                    p.sink.wake();
                }
                self.cap = Some(Duration::ZERO);
            }
        }
    }

    /// The cap on the next wait that the last `take` asked for.
    pub(crate) fn cap(&self) -> Option<Duration> {
        self.cap
    }

    /// Stops taking targets (shutdown) and closes the pool to new ones; returns the targets
    /// still queued (the first loop to get here gets them all).
    pub(crate) fn disable(&mut self) -> Vec<PoolEntry> {
        self.enabled = false;
        self.pool.close()
    }
}

/// Starts a non-blocking connect for `entry` on this loop.
pub(crate) fn start_connect<H: IoHandler>(h: &mut H, core: &mut LoopCore<H>, entry: PoolEntry) {
    let attempts = entry.attempts + 1;
    let target = entry.target;
    let addr = match entry.addr {
        Ok(addr) => addr,
        // A name that did not resolve is not retried: resolving again would most likely fail
        // the same way, and the error says why.
        Err(e) => return report_failure(h, core, target, e, attempts),
    };
    let started = sys::tcp_socket(&addr).and_then(|fd| sys::connect(fd.as_fd(), &addr).map(|pending| (fd, pending)));
    let (fd, pending) = match started {
        Ok(v) => v,
        Err(e) => return retry_or_report(h, core, target, addr, e, attempts),
    };
    let now = core.io.now;
    let id = core.conns.insert_with(|id| Connection::new(id, fd, addr, now));
    let c = core.conns.get_mut(id).expect("just inserted");
    if let Err(e) = sys::epoll_add(core.io.epoll.as_fd(), c.out.fd.as_fd(), EPOLLOUT, id.as_u64()) {
        core.conns.remove(id);
        return retry_or_report(h, core, target, addr, e, attempts);
    }
    c.registered = EPOLLOUT;
    c.target = Some(target);
    c.connecting = Some(attempts);
    let deadline = crate::timer::after(core.io.now, core.io.cfg.connect_timeout);
    c.connect_timer = Some(core.io.conn_timers.insert(deadline, None, (id, ConnTimer::ConnectTimeout)));
    core.io.stats.connecting_changed(1);
    if !pending {
        established(h, core, id);
    }
}

/// A connecting socket reported `events`: find out how the connect ended.
pub(crate) fn on_connect_event<H: IoHandler>(h: &mut H, core: &mut LoopCore<H>, id: ConnId, events: u32) {
    let Some(c) = core.conns.get_mut(id) else { return };
    if events & (EPOLLOUT | EPOLLERR | EPOLLHUP) == 0 {
        return;
    }
    match sys::take_socket_error(c.out.fd.as_fd()) {
        Ok(None) if events & (EPOLLERR | EPOLLHUP) == 0 => established(h, core, id),
        Ok(None) => connect_failed(h, core, id, io::ErrorKind::ConnectionReset.into()),
        Ok(Some(e)) | Err(e) => connect_failed(h, core, id, e),
    }
}

/// The connect succeeded: send the first message, call `on_connect`.
fn established<H: IoHandler>(h: &mut H, core: &mut LoopCore<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    c.connecting = None;
    if let Some(t) = c.connect_timer.take() {
        core.io.conn_timers.cancel(t);
    }
    core.io.stats.connecting_changed(-1);
    core.io.stats.on_open(false);
    if let Ok(peer) = sys::peer_addr(c.out.fd.as_fd()) {
        c.peer = peer;
    }
    if core.io.cfg.nodelay {
        let _ = sys::set_nodelay(c.out.fd.as_fd(), true);
    }
    c.connected = true;
    c.out.last_write = core.io.now;
    let idle = core.io.cfg.idle;
    if idle.is_enabled() {
        arm_idle(c, &mut core.io, idle);
    }
    let first = c.target.clone();
    if let Some(t) = first.filter(|t| !t.get_first_message().is_empty()) {
        crate::Conn::new(c, &mut core.io).send(t.get_first_message());
    }
    dispatch::call(h, core, id, "on_connect", |h, conn| h.on_connect(conn));
    dispatch::settle(h, core, id);
}

/// The connect of `id` failed (refused, unreachable, timed out, shutdown).
pub(crate) fn connect_failed<H: IoHandler>(h: &mut H, core: &mut LoopCore<H>, id: ConnId, error: io::Error) {
    let Some(c) = core.conns.remove(id) else { return };
    if let Some(t) = c.connect_timer {
        core.io.conn_timers.cancel(t);
    }
    let _ = sys::epoll_del(core.io.epoll.as_fd(), c.out.fd.as_fd());
    let (attempts, addr) = (c.connecting.unwrap_or(1), c.peer);
    let Connection { target, out, .. } = c;
    // Closed before it is counted or reported: whoever sees the attempt end can rely on the
    // descriptor being free.
    drop(out);
    core.io.stats.connecting_changed(-1);
    let target = target.expect("a connecting connection has a target");
    retry_or_report(h, core, target, addr, error, attempts);
}

/// Retries per the target's policy, or reports the failure for good.
fn retry_or_report<H: IoHandler>(
    h: &mut H,
    core: &mut LoopCore<H>,
    target: Arc<Target>,
    addr: std::net::SocketAddr,
    error: io::Error,
    attempts: u32,
) {
    if let Some(policy) = target.get_reconnect().copied() {
        if attempts < policy.max_attempts.max(1) && !core.shutting_down {
            let delay = policy.backoff(attempts, RandomState::new().build_hasher().finish());
            log::debug!(
                target: "kingpin::client",
                "connect to {} failed: {error}; attempt {} in {delay:?}",
                target.host_port(),
                attempts + 1
            );
            // The entry waits in the loop, not in the timer, so that shutdown can report it.
            core.retry_seq += 1;
            let key = core.retry_seq;
            core.retries.insert(key, PoolEntry { target, addr: Ok(addr), attempts });
            let retry: LoopTimer<H> = Box::new(move |h, ctx| {
                if let Some(entry) = ctx.core.retries.remove(&key) {
                    start_connect(h, ctx.core, entry);
                }
            });
            let deadline = crate::timer::after(core.io.now, delay);
            core.timers.insert(deadline, None, retry);
            return;
        }
    }
    report_failure(h, core, target, error, attempts);
}

/// Reports every target waiting to retry as failed with `Interrupted` (shutdown).
pub(crate) fn abandon_retries<H: IoHandler>(h: &mut H, core: &mut LoopCore<H>) {
    let waiting: Vec<PoolEntry> = core.retries.drain().map(|(_, e)| e).collect();
    for entry in waiting {
        let error = io::Error::new(io::ErrorKind::Interrupted, "client shut down before the retry");
        report_failure(h, core, entry.target, error, entry.attempts);
    }
}

/// Calls `on_connect_failed` and counts the target as finished.
pub(crate) fn report_failure<H: IoHandler>(
    h: &mut H,
    core: &mut LoopCore<H>,
    target: Arc<Target>,
    error: io::Error,
    attempts: u32,
) {
    log::debug!(target: "kingpin::client", "connect to {} failed: {error}", target.host_port());
    let failure = ConnectFailure { error, attempts };
    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| h.on_connect_failed(&target, &failure))) {
        report_panic(&core.io, "on_connect_failed", p);
    }
    if let Some(pool) = &core.io.targets {
        pool.done();
    }
}
