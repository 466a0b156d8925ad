//! [`LoopCtx`]: what closures, loop timers and loop-level callbacks get to work with.

use std::fmt;
use std::time::{Duration, Instant};

use crate::connection::Connection;
use crate::io_ctx::IoCtx;
use crate::slab::Slab;
use crate::timer::{TimerId, TimerQueue};
use crate::{Conn, ConnId, LoopHandle};

/// A timer closure of a loop whose handler is `H`.
pub(crate) type LoopTimer<H> = Box<dyn FnMut(&mut H, &mut LoopCtx<'_, H>)>;

/// The state of one IO loop apart from its handler, so both can be borrowed at once.
pub(crate) struct LoopCore<H> {
    pub(crate) conns: Slab<Connection>,
    pub(crate) io: IoCtx,
    pub(crate) timers: TimerQueue<LoopTimer<H>>,
    /// Connections reached through [`LoopCtx::conn`] during a closure; settled after it.
    pub(crate) touched: Vec<ConnId>,
    pub(crate) handle: LoopHandle<H>,
    pub(crate) shutting_down: bool,
    /// Client targets waiting (in a loop timer) to retry their connect, by key.
    pub(crate) retries: std::collections::HashMap<u64, crate::target_pool::PoolEntry>,
    /// The last key given to a retry.
    pub(crate) retry_seq: u64,
}

/// Access to one IO loop from code running on it: its connections, its timers, its handle.
///
/// Given to [`crate::IoHandler::on_start`], [`crate::IoHandler::on_epoll_loop`], closures run
/// with [`LoopHandle::run`] and loop timers, on the loop's own thread.
pub struct LoopCtx<'a, H> {
    pub(crate) core: &'a mut LoopCore<H>,
}

impl<H: 'static> LoopCtx<'_, H> {
    /// Index of this loop (0-based; one per IO thread).
    pub fn loop_index(&self) -> usize {
        self.core.io.index
    }

    /// A handle to this loop, for other threads.
    pub fn handle(&self) -> LoopHandle<H> {
        self.core.handle.clone()
    }

    /// When the current loop turn began (cheaper than `Instant::now()`, and what timers use).
    pub fn now(&self) -> Instant {
        self.core.io.now
    }

    /// Runs `f` on this loop once, after `delay`.
    pub fn run_after<F>(&mut self, delay: Duration, f: F) -> TimerId
    where
        F: FnOnce(&mut H, &mut LoopCtx<'_, H>) + 'static,
    {
        let mut f = Some(f);
        let task: LoopTimer<H> = Box::new(move |h, ctx| {
            if let Some(f) = f.take() {
                f(h, ctx)
            }
        });
        let deadline = crate::timer::after(self.core.io.now, delay);
        self.core.timers.insert(deadline, None, task)
    }

    /// Runs `f` on this loop every `period` (at least 1 ms), first after one period, until
    /// cancelled. Late turns do not pile up: a missed tick is skipped, not repeated.
    pub fn run_every<F>(&mut self, period: Duration, f: F) -> TimerId
    where
        F: FnMut(&mut H, &mut LoopCtx<'_, H>) + 'static,
    {
        let period = period.max(Duration::from_millis(1));
        let deadline = crate::timer::after(self.core.io.now, period);
        self.core.timers.insert(deadline, Some(period), Box::new(f))
    }

    /// Cancels a timer of this loop (set here or with [`Conn::set_timer`]); `false` if it
    /// already fired or was cancelled.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        if self.core.timers.owns(id) {
            self.core.timers.cancel(id)
        } else {
            self.core.io.conn_timers.cancel(id)
        }
    }

    /// The connection `id` of this loop, if it is still open.
    ///
    /// Sends and closes made through it take effect when the closure or callback returns.
    pub fn conn(&mut self, id: ConnId) -> Option<Conn<'_>> {
        let c = self.core.conns.get_mut(id).filter(|c| c.connecting.is_none())?;
        self.core.touched.push(id);
        Some(Conn::new(c, &mut self.core.io))
    }

    /// Number of connections this loop holds (client connects in progress included).
    pub fn connection_count(&self) -> usize {
        self.core.conns.len()
    }

    /// Ids of every connection this loop holds.
    pub fn conn_ids(&self) -> Vec<ConnId> {
        let conns = &self.core.conns;
        conns.ids().into_iter().filter(|id| conns.get(*id).is_some_and(|c| c.connecting.is_none())).collect()
    }

    /// Whether shutdown has begun (no new connections; existing ones are draining).
    pub fn is_shutting_down(&self) -> bool {
        self.core.shutting_down
    }
}

impl<H> fmt::Debug for LoopCtx<'_, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopCtx")
            .field("loop", &self.core.io.index)
            .field("connections", &self.core.conns.len())
            .finish()
    }
}
