//! [`EventLoop`]: one per IO thread, one epoll each. It owns its connections for their whole
//! life and serves whichever [`Role`] brings them in, without knowing which.
//!
//! One turn:
//!
//! ```text
//!  budget ─► role.before_wait (accept mutex / take targets) ─► epoll_wait(timeout = next timer, …)
//!      ─► role.after_wait (accept a batch, release the mutex) ─► events in kernel order:
//!         waker · role tokens · connections (read → on_message; gathered sends written once)
//!      ─► mailbox ─► listed reads (edge-triggered) ─► on_write_complete ─► timers ─► on_epoll_loop
//! ```

use std::io;
use std::os::fd::AsFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::callback::run_guarded;
use super::command::{Command, LoopMailbox};
use super::dispatch::{self, read_listed};
use super::handler::{Core, IoHandler, LoopCtx, Remote};
use super::jobs;
use super::loop_core::{LoopCore, MIN_READ_PER_TURN, TURN_READ_BUDGET};
use super::memory::{check_budget, give_back};
use super::parts::LoopParts;
use super::role::Role;
use super::settle::{run_write_complete, settle_touched};
use super::teardown::teardown;
use super::timers::run_timers;
use super::token::Token;
use crate::base::panic::panic_message;
use crate::base::slab::Slab;
use crate::base::timer::{timeout_ms, TimerQueue};
use crate::conn::close::CloseReason;
use crate::conn::env::Env;
use crate::conn::inbox::{ConnCommand, Via};
use crate::conn::view::Conn;
use crate::io::buffer_pool::BufferPool;
use crate::sys::{self, EpollEvent};

/// One IO loop, living on its own thread: handler `H`, role `R`.
pub(crate) struct EventLoop<H: IoHandler, R: Role<H>> {
    handler: H,
    core: Core<H>,
    role: R,
    mailbox: Arc<LoopMailbox<H>>,
    remote: Arc<dyn Remote<H>>,
    events: Vec<EpollEvent>,
    commands: Vec<Command<H>>,
    /// Set when shutdown begins: connections are force-closed at this deadline.
    deadline: Option<Instant>,
}

impl<H: IoHandler, R: Role<H>> EventLoop<H, R> {
    /// Builds the loop on its own thread around `handler` and `role`.
    pub(crate) fn new(parts: LoopParts<H>, handler: H, role: R) -> Self {
        let cfg = parts.cfg;
        let env = Env {
            index: parts.index,
            // A few MiB a loop at most; buffers that grew past 64 KiB go back to their size.
            pool: BufferPool::new(cfg.buffer_capacity, 1024, 64 << 10).max_bytes(4 << 20),
            stats: parts.stats,
            inbox: parts.mailbox.clone(),
            timers: TimerQueue::new(false),
            now: Instant::now(),
            handle_limit: cfg.high_water,
            workers: parts.workers,
            jobs: Slab::new(),
            handler_type: std::any::TypeId::of::<H>(),
        };
        let events = vec![sys::empty_event(); cfg.max_events];
        EventLoop {
            handler,
            core: LoopCore::new(env, parts.epoll, cfg, parts.budget),
            role,
            remote: parts.mailbox.clone(),
            mailbox: parts.mailbox,
            events,
            commands: Vec::new(),
            deadline: None,
        }
    }

    /// Runs until shutdown has closed every connection.
    ///
    /// # Errors
    /// Only when `epoll_wait` itself fails, which means a broken loop (e.g. a closed epoll fd).
    ///
    /// A panic outside any callback (a bug, or user code the loop runs without a callback's
    /// guard) ends the loop like a failed wait, never silently: it is logged and counted, the
    /// connections are closed (`on_closed` with [`CloseReason::ShutdownForced`]), the mailbox
    /// refuses further work (handles get `LoopStopped`), the loop's stats are corrected and
    /// marked failed, and the error is what `join` returns.
    pub(crate) fn run(mut self) -> io::Result<()> {
        self.core.env.now = Instant::now();
        let h = &mut self.handler;
        run_guarded(&mut LoopCtx { core: &mut self.core, remote: &self.remote }, "on_start", |ctx| h.on_start(ctx));
        settle_touched(&mut self.handler, &mut self.core);
        let result = loop {
            match panic::catch_unwind(AssertUnwindSafe(|| self.turn())) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    log::error!(target: "kingpin::loop", "loop {}: epoll_wait failed: {e}", self.core.env.index);
                    break Err(e);
                }
                Err(payload) => {
                    let msg = panic_message(&*payload);
                    self.core.env.stats.on_panic();
                    log::error!(target: "kingpin::loop", "loop {}: panicked outside any callback: {msg}", self.core.env.index);
                    break Err(io::Error::other(format!("IO loop {} panicked: {msg}", self.core.env.index)));
                }
            }
            // Done when no connection is left and no job is waited for (or the deadline passed:
            // the jobs still out are then completed with `Shutdown`).
            if let Some(deadline) = self.deadline {
                let jobs_done = self.core.env.jobs.len() == 0 || self.core.env.now >= deadline;
                if self.core.conns.len() == 0 && jobs_done {
                    break Ok(());
                }
            }
        };
        let failed = result.is_err();
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| self.finish(failed))) {
            log::error!(
                target: "kingpin::loop",
                "loop {}: panicked while closing: {}",
                self.core.env.index,
                panic_message(&*payload)
            );
        }
        if result.is_err() {
            drop(self.mailbox.close());
            self.core.env.stats.on_loop_failed();
            log::logger().flush();
        }
        result
    }

    fn turn(&mut self) -> io::Result<()> {
        let (h, core) = (&mut self.handler, &mut self.core);
        // Before accepting or reading: decide with what all loops hold now.
        core.in_mailbox = self.mailbox.queued_bytes();
        check_budget(h, core);
        give_back(core);
        let cap = self.role.before_wait(h, core);
        let timeout = self.timeout(cap);
        let n = sys::epoll_wait(self.core.epoll.as_fd(), &mut self.events, timeout)?;
        let (h, core) = (&mut self.handler, &mut self.core);
        core.env.now = Instant::now();
        core.read_cap = read_cap(core.cfg.read_per_turn, n + core.read_next.len());
        self.role.after_wait(h, core, &self.events[..n]);
        let mut woken = false;
        for event in &self.events[..n] {
            let EpollEvent { events, u64: raw } = *event;
            match Token::from_raw(raw) {
                Token::Waker => woken = true,
                Token::Role(key) => self.role.on_event(h, core, key, events),
                Token::Conn(id) => dispatch::on_event(h, core, id, events),
            }
        }
        if woken {
            self.mailbox.waker().drain();
            self.run_commands();
        }
        let (h, core) = (&mut self.handler, &mut self.core);
        read_listed(h, core);
        run_write_complete(h, core);
        run_timers(h, core, &self.remote);
        self.role.run_timers(h, core);
        run_guarded(&mut LoopCtx { core, remote: &self.remote }, "on_epoll_loop", |ctx| h.on_epoll_loop(ctx));
        settle_touched(h, core);
        if self.deadline.is_some_and(|d| core.env.now >= d) {
            self.force_close_all();
        }
        Ok(())
    }

    /// How long the next `epoll_wait` may block, in milliseconds (-1: no limit).
    fn timeout(&self, role_cap: Option<Duration>) -> i32 {
        let core = &self.core;
        let now = core.env.now;
        let mut wait: Option<Duration> = core.cfg.epoll_timeout;
        let mut cap = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
        if let Some(d) = role_cap {
            cap(d);
        }
        if !core.write_complete.is_empty() || !core.read_next.is_empty() {
            cap(Duration::ZERO);
        }
        let deadlines = [
            core.timers.next_deadline(),
            core.env.timers.next_deadline(),
            self.role.next_deadline(),
            self.deadline,
            core.give_back_due,
        ];
        for deadline in deadlines.into_iter().flatten() {
            cap(deadline.saturating_duration_since(now));
        }
        wait.map_or(-1, timeout_ms)
    }

    /// Runs what other threads queued, then settles the connections the commands reached:
    /// sends to one connection from a whole batch leave in one write.
    fn run_commands(&mut self) {
        self.mailbox.take(&mut self.commands);
        let mut commands = std::mem::take(&mut self.commands);
        for cmd in commands.drain(..) {
            let (h, core) = (&mut self.handler, &mut self.core);
            match cmd {
                Command::Conn(ConnCommand::JobDone(key, outcome)) => {
                    jobs::complete(h, core, &self.remote, key, Some(outcome));
                }
                Command::Conn(cmd) => apply(core, cmd),
                Command::Run(f) => {
                    let mut ctx = LoopCtx { core, remote: &self.remote };
                    run_guarded(&mut ctx, "a closure run on the loop", |ctx| f(h, ctx));
                }
                Command::Shutdown(deadline) => self.begin_shutdown(deadline),
            }
        }
        self.commands = commands;
        settle_touched(&mut self.handler, &mut self.core);
    }

    fn begin_shutdown(&mut self, deadline: Instant) {
        if self.deadline.is_some() {
            return;
        }
        let (h, core) = (&mut self.handler, &mut self.core);
        log::debug!(target: "kingpin::loop", "loop {}: shutting down", core.env.index);
        self.deadline = Some(deadline);
        core.shutting_down = true;
        // Jobs that check their token stop early; their completions still run.
        core.env.cancel_all_jobs();
        self.role.begin_shutdown(h, core);
        for id in core.conns.ids() {
            if let Some(c) = core.conns.get_mut(id) {
                c.state.request_close(CloseReason::Shutdown);
            }
            super::settle::settle(h, core, id);
        }
    }

    /// Tears down every connection left (shutdown's deadline passed, or the loop exits).
    fn force_close_all(&mut self) {
        for id in self.core.conns.ids() {
            teardown(&mut self.handler, &mut self.core, id, CloseReason::ShutdownForced);
        }
    }

    /// Last rites when the loop exits (`failed`: abnormally, while the others go on): refuse
    /// new commands, let the role go, close what is left.
    fn finish(&mut self, failed: bool) {
        // No more jobs from here on (a completion run below cannot start one that nobody
        // would complete).
        self.core.shutting_down = true;
        drop(self.mailbox.close());
        self.role.finish(&mut self.handler, &mut self.core, failed);
        self.force_close_all();
        jobs::complete_all(&mut self.handler, &mut self.core, &self.remote);
    }
}

/// What one connection may read this turn, with `ready` connections to read: the turn's
/// budget shared among them, within the bounds.
fn read_cap(max: usize, ready: usize) -> usize {
    (TURN_READ_BUDGET / ready.max(1)).clamp(MIN_READ_PER_TURN.min(max), max)
}

/// Applies a connection command from another thread, if the connection is still open; the
/// caller settles it afterwards.
fn apply<S>(core: &mut LoopCore<S, impl Sized>, cmd: ConnCommand) {
    let id = match &cmd {
        ConnCommand::Send(id, ..) | ConnCommand::Close(id) | ConnCommand::ShutdownWrite(id) => *id,
        // Completed by the loop, which has the handler: never here.
        ConnCommand::JobDone(..) => return,
    };
    let Some(c) = core.conns.get_mut(id).filter(|c| !c.is_introducing()) else {
        log::trace!(target: "kingpin::loop", "command for closed (or not yet met) conn {id} dropped");
        return;
    };
    if let (ConnCommand::Send(_, data, Via::Handle), Some(shared)) = (&cmd, &c.shared) {
        // Publish the grown output before the mailbox shrinks, so handles never see less
        // pending than there is.
        shared.set_unsent(c.out.pending() + data.len());
        shared.taken(data.len());
    }
    let mut conn = Conn::new(c, &mut core.env);
    match cmd {
        ConnCommand::Send(_, data, _) => conn.send(&data),
        ConnCommand::Close(_) => conn.close(),
        ConnCommand::ShutdownWrite(_) => conn.shutdown_write(),
        ConnCommand::JobDone(..) => {}
    }
    core.touched.push(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A turn's read budget is shared among the ready connections, within the bounds.
    #[test]
    fn read_cap_shares_the_turn_budget() {
        let max = 64 << 10;
        assert_eq!(read_cap(max, 0), max, "nothing else ready: the most one connection may read");
        assert_eq!(read_cap(max, 1), max);
        assert_eq!(read_cap(max, 8), TURN_READ_BUDGET / 8);
        assert_eq!(read_cap(max, 10_000), MIN_READ_PER_TURN, "never less than the smallest bite");
        assert_eq!(read_cap(1000, 10_000), 1000, "nor more than the configured most");
    }
}
