//! The IO loop: one per thread, one epoll each. It owns its connections for their whole life.
//! A server loop has an acceptor, a client loop a connector; the rest is the same.
//!
//! One turn:
//!
//! ```text
//!  take targets and start connects (client) ─► compete for the accept mutex (server)
//!      ─► epoll_wait(timeout = next timer, mutex delay, …)
//!      ─► accept a batch, release the mutex ─► connection events (read → on_message, write)
//!      ─► mailbox (commands from other threads) ─► on_write_complete ─► timers ─► on_epoll_loop
//! ```

pub use crate::loop_ctx::LoopCtx;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::acceptor::{Acceptor, LISTENER_TOKEN};
use crate::budget::Budget;
use crate::buffer_pool::BufferPool;
use crate::config::LoopConfig;
use crate::connector::{self, Connector};
use crate::dispatch::{self, report_panic};
use crate::io_ctx::{ConnTimer, IoCtx};
use crate::loop_ctx::LoopCore;
use crate::mailbox::{Command, ConnSink, Mailbox};
use crate::slab::Slab;
use crate::stats::LoopStats;
use crate::sys::{self, EpollEvent, EPOLLIN};
use crate::target_pool::{PoolEntry, TargetPool};
use crate::timer::{timeout_ms, TimerQueue};
use crate::{CloseReason, Conn, ConnId, IoHandler, LoopHandle};

/// The epoll token of the loop's waker.
pub(crate) const WAKER_TOKEN: u64 = u64::MAX;

/// What a loop is made of before its thread starts (all `Send`).
pub(crate) struct LoopParts<H> {
    pub(crate) index: usize,
    pub(crate) epoll: OwnedFd,
    pub(crate) mailbox: Arc<Mailbox<H>>,
    pub(crate) stats: Arc<LoopStats>,
    pub(crate) cfg: LoopConfig,
    pub(crate) targets: Option<Arc<TargetPool>>,
    pub(crate) budget: Option<Arc<Budget>>,
}

impl<H: IoHandler> LoopParts<H> {
    /// Creates the epoll instance and the waker, registered in it.
    ///
    /// # Errors
    /// When `epoll_create1` or `eventfd` fails (e.g. out of descriptors).
    pub(crate) fn new(index: usize, cfg: LoopConfig, targets: Option<Arc<TargetPool>>) -> io::Result<Self> {
        let epoll = sys::epoll_create()?;
        let waker = crate::waker::Waker::new()?;
        sys::epoll_add(epoll.as_fd(), waker.as_fd(), EPOLLIN, WAKER_TOKEN)?;
        Ok(LoopParts {
            index,
            epoll,
            mailbox: Arc::new(Mailbox::new(waker)),
            stats: Arc::new(LoopStats::default()),
            cfg,
            targets,
            budget: None,
        })
    }

    pub(crate) fn handle(&self) -> LoopHandle<H> {
        LoopHandle::new(self.index, self.mailbox.clone())
    }
}

/// One IO loop, living on its own thread.
pub(crate) struct EventLoop<H> {
    handler: H,
    core: LoopCore<H>,
    acceptor: Option<Acceptor>,
    mailbox: Arc<Mailbox<H>>,
    events: Vec<EpollEvent>,
    commands: Vec<Command<H>>,
    accepted: Vec<(OwnedFd, SocketAddr)>,
    accept_errors: Vec<io::Error>,
    /// Set when shutdown begins: connections are force-closed at this deadline.
    deadline: Option<Instant>,
    connector: Option<Connector>,
    entries: Vec<PoolEntry>,
    budget: Option<Arc<Budget>>,
}

impl<H: IoHandler> EventLoop<H> {
    /// Builds the loop on its own thread around `handler`.
    pub(crate) fn new(
        parts: LoopParts<H>,
        handler: H,
        acceptor: Option<Acceptor>,
        connector: Option<Connector>,
    ) -> Self {
        let handle = parts.handle();
        let cfg = parts.cfg;
        let budget = parts.budget;
        let sink: Arc<dyn ConnSink> = parts.mailbox.clone();
        let io = IoCtx {
            index: parts.index,
            epoll: parts.epoll,
            pool: BufferPool::new(cfg.buffer_capacity, 1024, 256 * 1024),
            stats: parts.stats,
            sink,
            conn_timers: TimerQueue::new(false),
            targets: parts.targets,
            write_complete: Vec::new(),
            write_complete_spare: Vec::new(),
            buffered: 0,
            hold_back: false,
            now: Instant::now(),
            cfg: cfg.clone(),
        };
        EventLoop {
            handler,
            core: LoopCore {
                conns: Slab::new(),
                io,
                timers: TimerQueue::new(true),
                touched: Vec::new(),
                handle,
                shutting_down: false,
                retries: Default::default(),
                retry_seq: 0,
            },
            acceptor,
            mailbox: parts.mailbox,
            events: vec![sys::empty_event(); cfg.max_events],
            commands: Vec::new(),
            accepted: Vec::new(),
            accept_errors: Vec::new(),
            deadline: None,
            connector,
            entries: Vec::new(),
            budget,
        }
    }

    /// Runs until shutdown has closed every connection.
    ///
    /// # Errors
    /// Only when `epoll_wait` itself fails, which means a broken loop (e.g. a closed epoll fd).
    pub(crate) fn run(mut self) -> io::Result<()> {
        self.core.io.now = Instant::now();
        let (h, core) = (&mut self.handler, &mut self.core);
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.on_start(&mut LoopCtx { core }))) {
            report_panic(&self.core.io, "on_start", p);
        }
        dispatch::settle_touched(&mut self.handler, &mut self.core);
        let result = loop {
            if let Err(e) = self.turn() {
                break Err(e);
            }
            if self.deadline.is_some() && self.core.conns.len() == 0 {
                break Ok(());
            }
        };
        self.finish();
        result
    }

    fn turn(&mut self) -> io::Result<()> {
        // Before accepting or reading: decide with what all loops hold now.
        self.check_budget();
        if let Some(connector) = self.connector.as_mut() {
            connector.take(&mut self.entries);
            let mut entries = std::mem::take(&mut self.entries);
            for entry in entries.drain(..) {
                connector::start_connect(&mut self.handler, &mut self.core, entry);
            }
            self.entries = entries;
        }
        let timeout = self.timeout();
        let n = sys::epoll_wait(self.core.io.epoll.as_fd(), &mut self.events, timeout)?;
        self.core.io.now = Instant::now();

        // Accept first, and give the mutex back before the (maybe long) connection work. The
        // wait may have been long: look at the budget again before taking anyone in.
        if self.acceptor.is_some() && self.events[..n].iter().any(|e| e.u64 == LISTENER_TOKEN) {
            self.check_budget();
        }
        if let Some(acceptor) = self.acceptor.as_mut() {
            if !self.core.io.hold_back && self.events[..n].iter().any(|e| e.u64 == LISTENER_TOKEN) {
                acceptor.accept(&self.core.io, &mut self.accepted, &mut self.accept_errors);
            }
            acceptor.after_accept();
        }
        for e in self.accept_errors.drain(..) {
            let h = &mut self.handler;
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.on_accept_error(&e))) {
                report_panic(&self.core.io, "on_accept_error", p);
            }
        }
        while let Some((fd, peer)) = self.accepted.pop() {
            dispatch::add_connection(&mut self.handler, &mut self.core, fd, peer, true);
        }

        let mut woken = false;
        for i in 0..n {
            let EpollEvent { events, u64: token } = self.events[i];
            match token {
                WAKER_TOKEN => woken = true,
                LISTENER_TOKEN => {}
                _ => dispatch::on_event(&mut self.handler, &mut self.core, ConnId::from_u64(token), events),
            }
        }
        if woken {
            self.mailbox.waker().drain();
            self.run_commands();
        }
        dispatch::run_write_complete(&mut self.handler, &mut self.core);
        self.run_timers();
        let (h, core) = (&mut self.handler, &mut self.core);
        if let Err(p) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.on_epoll_loop(&mut LoopCtx { core })))
        {
            report_panic(&self.core.io, "on_epoll_loop", p);
        }
        dispatch::settle_touched(&mut self.handler, &mut self.core);
        if let Some(deadline) = self.deadline {
            if self.core.io.now >= deadline {
                self.force_close_all(|| CloseReason::ShutdownForced);
            }
        }
        Ok(())
    }

    /// How long the next `epoll_wait` may block, in milliseconds (-1: no limit).
    fn timeout(&mut self) -> i32 {
        let now = self.core.io.now;
        let mut wait: Option<Duration> = self.core.io.cfg.epoll_timeout;
        let mut cap = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
        if let Some(acceptor) = self.acceptor.as_mut() {
            if let Some(d) = acceptor.before_wait(&self.core.io, self.core.io.hold_back) {
                cap(d);
            }
        }
        if let Some(d) = self.connector.as_ref().and_then(Connector::cap) {
            cap(d);
        }
        if !self.core.io.write_complete.is_empty() {
            cap(Duration::ZERO);
        }
        for deadline in [self.core.timers.next_deadline(), self.core.io.conn_timers.next_deadline(), self.deadline]
            .into_iter()
            .flatten()
        {
            cap(deadline.saturating_duration_since(now));
        }
        wait.map_or(-1, timeout_ms)
    }

    fn run_commands(&mut self) {
        self.mailbox.take(&mut self.commands);
        let mut commands = std::mem::take(&mut self.commands);
        for cmd in commands.drain(..) {
            let (h, core) = (&mut self.handler, &mut self.core);
            match cmd {
                Command::Send(id, data) => with_conn(h, core, id, |conn| conn.send(&data)),
                Command::Close(id) => with_conn(h, core, id, |conn| conn.close()),
                Command::ShutdownWrite(id) => with_conn(h, core, id, |conn| conn.shutdown_write()),
                Command::Run(f) => {
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(h, &mut LoopCtx { core })));
                    if let Err(p) = result {
                        report_panic(&self.core.io, "a closure run on the loop", p);
                    }
                    dispatch::settle_touched(&mut self.handler, &mut self.core);
                }
                Command::Shutdown(deadline) => self.begin_shutdown(deadline),
            }
        }
        self.commands = commands;
    }

    fn run_timers(&mut self) {
        let now = self.core.io.now;
        loop {
            let conn_next = self.core.io.conn_timers.next_deadline().filter(|d| *d <= now);
            let loop_next = self.core.timers.next_deadline().filter(|d| *d <= now);
            match (conn_next, loop_next) {
                (None, None) => break,
                (Some(c), l) if l.map_or(true, |l| c <= l) => {
                    let Some(e) = self.core.io.conn_timers.pop_expired(now) else { break };
                    let (h, core) = (&mut self.handler, &mut self.core);
                    match e.task {
                        (id, ConnTimer::User(tag)) => {
                            if let Some(c) = core.conns.get_mut(id) {
                                c.user_timers.retain(|t| *t != e.id);
                            }
                            dispatch::call(h, core, id, "on_timer", |h, conn| h.on_timer(conn, tag));
                            dispatch::settle(h, core, id);
                        }
                        (id, ConnTimer::Idle) => dispatch::check_idle(h, core, id),
                        (id, ConnTimer::ConnectTimeout) => {
                            if core.conns.get(id).is_some_and(|c| c.connecting.is_some()) {
                                let timeout = core.io.cfg.connect_timeout;
                                let error = io::Error::new(
                                    io::ErrorKind::TimedOut,
                                    format!("connect timed out after {timeout:?}"),
                                );
                                connector::connect_failed(h, core, id, error);
                            }
                        }
                    }
                }
                _ => {
                    let Some(mut e) = self.core.timers.pop_expired(now) else { break };
                    let (h, core) = (&mut self.handler, &mut self.core);
                    let task = &mut e.task;
                    let result =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task(h, &mut LoopCtx { core })));
                    if let Err(p) = result {
                        report_panic(&self.core.io, "a loop timer", p);
                    }
                    dispatch::settle_touched(&mut self.handler, &mut self.core);
                    self.core.timers.reschedule(e, now);
                }
            }
        }
    }

    /// Publishes this loop's buffered bytes and follows the budget: when it is exhausted, pause
    /// reading on every connection (accepting stops too); resume once usage has fallen.
    fn check_budget(&mut self) {
        self.core.io.stats.set_buffered(self.core.io.buffered);
        let Some(budget) = &self.budget else { return };
        budget.publish(self.core.io.index, self.core.io.buffered);
        let hold = budget.hold_back(self.core.io.hold_back);
        if hold != self.core.io.hold_back {
            if hold {
                log::warn!(
                    target: "kingpin::loop",
                    "loop {}: memory budget of {} bytes reached ({} in use): pausing reads and accepts",
                    self.core.io.index,
                    budget.limit(),
                    budget.used()
                );
            } else {
                log::info!(target: "kingpin::loop", "loop {}: memory budget ok again, resuming", self.core.io.index);
            }
            self.core.io.hold_back = hold;
            for id in self.core.conns.ids() {
                dispatch::settle(&mut self.handler, &mut self.core, id);
            }
        }
    }

    fn begin_shutdown(&mut self, deadline: Instant) {
        if self.deadline.is_some() {
            return;
        }
        log::debug!(target: "kingpin::loop", "loop {}: shutting down", self.core.io.index);
        self.deadline = Some(deadline);
        self.core.shutting_down = true;
        if let Some(acceptor) = self.acceptor.as_mut() {
            acceptor.disable(&self.core.io);
        }
        if let Some(connector) = self.connector.as_mut() {
            // Targets still queued end here, reported like the ones waiting to retry.
            for entry in connector.disable() {
                let error = io::Error::new(io::ErrorKind::Interrupted, "client shut down before the connect");
                connector::report_failure(&mut self.handler, &mut self.core, entry.target, error, entry.attempts);
            }
            connector::abandon_retries(&mut self.handler, &mut self.core);
        }
        for id in self.core.conns.ids() {
            let (h, core) = (&mut self.handler, &mut self.core);
            let Some(c) = core.conns.get_mut(id) else { continue };
            if c.connecting.is_some() {
                let error = io::Error::new(io::ErrorKind::Interrupted, "client shut down before the connect finished");
                connector::connect_failed(h, core, id, error);
            } else {
                c.request_close(CloseReason::Shutdown);
                dispatch::settle(h, core, id);
            }
        }
    }

    fn force_close_all(&mut self, reason: fn() -> CloseReason) {
        for id in self.core.conns.ids() {
            dispatch::teardown(&mut self.handler, &mut self.core, id, reason());
        }
    }

    /// Last rites when the loop exits: refuse new commands, close what is left.
    fn finish(&mut self) {
        drop(self.mailbox.close());
        connector::abandon_retries(&mut self.handler, &mut self.core);
        if let Some(acceptor) = self.acceptor.as_mut() {
            acceptor.disable(&self.core.io);
        }
        self.force_close_all(|| CloseReason::ShutdownForced);
    }
}

/// Applies `f` to connection `id` if it is still open, then settles it.
fn with_conn<H: IoHandler>(h: &mut H, core: &mut LoopCore<H>, id: ConnId, f: impl FnOnce(&mut Conn<'_>)) {
    let Some(c) = core.conns.get_mut(id) else {
        log::trace!(target: "kingpin::loop", "command for closed conn {id} dropped");
        return;
    };
    f(&mut Conn::new(c, &mut core.io));
    dispatch::settle(h, core, id);
}
