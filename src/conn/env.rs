//! [`Env`]: what a connection borrows from the loop that owns it, besides itself.

use std::sync::Arc;
use std::time::Instant;

use super::inbox::Inbox;
use crate::base::slab::ConnId;
use crate::base::stats::LoopStats;
use crate::base::timer::TimerQueue;
use crate::io::buffer_pool::BufferPool;

/// What a connection timer is for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ConnTimer {
    /// Set by the user with a tag for `on_timer`.
    User(u64),
    /// Time to check the connection's idle timeouts.
    Idle,
    /// A lingering close has waited long enough for the peer's end.
    Linger,
}

/// The services of one IO loop that its connections use: buffers, counters, timers, the
/// mailbox for handles, and the time of the current turn. Owned by the loop; lent to a
/// [`crate::Conn`] for the length of a callback.
pub(crate) struct Env {
    /// Index of the loop.
    pub(crate) index: usize,
    /// Recycled buffers, so a busy loop does not allocate per message.
    pub(crate) pool: BufferPool,
    /// Counters readable from other threads.
    pub(crate) stats: Arc<LoopStats>,
    /// The loop's mailbox, for handles.
    pub(crate) inbox: Arc<dyn Inbox>,
    /// Timers of connections: user timers and idle checks.
    pub(crate) timers: TimerQueue<(ConnId, ConnTimer)>,
    /// The time when the current loop turn began.
    pub(crate) now: Instant,
    /// Handles' sends are refused while this much output is pending (the high water mark).
    pub(crate) handle_limit: usize,
}
