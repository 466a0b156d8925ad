//! [`LoopCore`]: the state of one IO loop apart from its handler and its role, so that the
//! handler, the core and the role can be borrowed at once.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

use super::budget::Budget;
use super::config::LoopConfig;
use crate::base::slab::{ConnId, Slab};
use crate::base::timer::TimerQueue;
use crate::conn::connection::Connection;
use crate::conn::env::Env;

/// One loop's connections (each with user state `S`), their services, the loop timers (tasks
/// `T`), and the loop-wide flags. Owned by the loop's thread.
pub(crate) struct LoopCore<S, T> {
    /// The connections, by id; the id is also their epoll token.
    pub(crate) conns: Slab<Connection<S>>,
    /// What connections borrow: buffers, counters, connection timers, the turn's time.
    pub(crate) env: Env,
    /// The loop's epoll instance.
    pub(crate) epoll: OwnedFd,
    /// Settings.
    pub(crate) cfg: LoopConfig,
    /// Loop timers: closures run on the loop.
    pub(crate) timers: TimerQueue<T>,
    /// Connections reached through [`crate::LoopCtx::conn`] during a closure; settled after it.
    pub(crate) touched: Vec<ConnId>,
    /// Connections whose output drained: `on_write_complete` is due on the next pass.
    pub(crate) write_complete: Vec<ConnId>,
    /// The other half of the double-buffered `write_complete` list (no allocation per turn).
    pub(crate) write_complete_spare: Vec<ConnId>,
    /// Edge-triggered: connections to read on the next turn without an event (their last read
    /// filled its room, or reading resumed with input maybe waiting).
    pub(crate) read_next: Vec<ConnId>,
    /// The other half of the double-buffered `read_next` list.
    pub(crate) read_spare: Vec<ConnId>,
    /// Bytes of buffer capacity held by this loop's connections.
    pub(crate) buffered: usize,
    /// Bytes other threads sent that waited in the mailbox at the start of the turn.
    pub(crate) in_mailbox: usize,
    /// The process-wide memory budget, if any.
    pub(crate) budget: Option<Arc<Budget>>,
    /// The memory budget is exhausted: the large holders pause reading (and nothing is
    /// accepted).
    pub(crate) hold_back: bool,
    /// When stalled holders were last looked for (while holding back).
    pub(crate) last_stall_scan: Instant,
    /// The most buffer memory held since freed memory was last handed back.
    pub(crate) peak_held: usize,
    /// When freed memory was last handed back to the system.
    pub(crate) last_give_back: Instant,
    /// A hand-back of freed memory is waiting for this time (at most one a second).
    pub(crate) give_back_due: Option<Instant>,
    /// Most bytes read from one connection this turn: the turn's share of
    /// [`TURN_READ_BUDGET`] among the connections ready, within
    /// [`MIN_READ_PER_TURN`]..=`max_read_per_turn`.
    pub(crate) read_cap: usize,
    /// Shutdown has begun.
    pub(crate) shutting_down: bool,
}

/// What one turn reads, about, shared among the connections that are ready: a turn with many
/// busy peers gives each a smaller bite, so none waits long behind the others.
pub(crate) const TURN_READ_BUDGET: usize = 256 << 10;

/// The smallest bite of a turn's read budget.
pub(crate) const MIN_READ_PER_TURN: usize = 8 << 10;

impl<S, T> LoopCore<S, T> {
    pub(crate) fn new(env: Env, epoll: OwnedFd, cfg: LoopConfig, budget: Option<Arc<Budget>>) -> Self {
        let now = env.now;
        let read_cap = cfg.read_per_turn;
        LoopCore {
            conns: Slab::new(),
            env,
            epoll,
            cfg,
            timers: TimerQueue::new(true),
            touched: Vec::new(),
            write_complete: Vec::new(),
            write_complete_spare: Vec::new(),
            read_next: Vec::new(),
            read_spare: Vec::new(),
            buffered: 0,
            in_mailbox: 0,
            budget,
            hold_back: false,
            last_stall_scan: now,
            peak_held: 0,
            last_give_back: now,
            give_back_due: None,
            read_cap,
            shutting_down: false,
        }
    }
}

/// While the memory budget is exhausted, connections holding at least this much stop reading.
pub(crate) const LARGE_HOLDER: usize = 16 << 10;

/// Whether a loop holding back (`hold_back`) holds back a connection with `held` bytes of
/// buffers: only the large holders, so that small ones can finish their frames and let go.
pub(crate) fn held_back(hold_back: bool, held: usize) -> bool {
    hold_back && held >= LARGE_HOLDER
}
