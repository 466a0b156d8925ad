//! The non-generic services of one IO loop that a connection callback may use.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

use crate::buffer_pool::BufferPool;
use crate::config::LoopConfig;
use crate::mailbox::ConnSink;
use crate::stats::LoopStats;
use crate::target_pool::TargetPool;
use crate::timer::TimerQueue;
use crate::ConnId;

/// What a connection timer is for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ConnTimer {
    /// Set by the user with a tag for `on_timer`.
    User(u64),
    /// A client connect that must have finished by now.
    ConnectTimeout,
    /// Time to check the connection's idle timeouts.
    Idle,
}

/// What a [`crate::Conn`] borrows from its loop besides the connection itself.
pub(crate) struct IoCtx {
    /// Index of the loop.
    pub(crate) index: usize,
    /// The loop's epoll instance.
    pub(crate) epoll: OwnedFd,
    /// Recycled buffers, so a busy loop does not allocate per message.
    pub(crate) pool: BufferPool,
    /// Counters readable from other threads.
    pub(crate) stats: Arc<LoopStats>,
    /// The loop's mailbox, for handles.
    pub(crate) sink: Arc<dyn ConnSink>,
    /// Timers of connections: user timers and connect timeouts.
    pub(crate) conn_timers: TimerQueue<(ConnId, ConnTimer)>,
    /// The client's target pool (client loops only).
    pub(crate) targets: Option<Arc<TargetPool>>,
    /// Connections whose output drained: `on_write_complete` is due on the next pass.
    pub(crate) write_complete: Vec<ConnId>,
    /// The other half of the double-buffered `write_complete` list (no allocation per turn).
    pub(crate) write_complete_spare: Vec<ConnId>,
    /// Bytes of buffer capacity held by this loop's connections.
    pub(crate) buffered: usize,
    /// The memory budget is exhausted: pause reading everywhere (and do not accept).
    pub(crate) hold_back: bool,
    /// The time when the current loop turn began.
    pub(crate) now: Instant,
    /// Settings.
    pub(crate) cfg: LoopConfig,
}
