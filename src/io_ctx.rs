//! The non-generic services of one IO loop that a connection callback may use.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

use crate::buffer_pool::BufferPool;
use crate::config::LoopConfig;
use crate::mailbox::ConnSink;
use crate::stats::LoopStats;
use crate::timer::TimerQueue;
use crate::ConnId;

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
    /// Timers set by [`crate::Conn::set_timer`]: (connection, tag).
    pub(crate) conn_timers: TimerQueue<(ConnId, u64)>,
    /// Connections whose output drained: `on_write_complete` is due on the next pass.
    pub(crate) write_complete: Vec<ConnId>,
    /// The other half of the double-buffered `write_complete` list (no allocation per turn).
    pub(crate) write_complete_spare: Vec<ConnId>,
    /// The time when the current loop turn began.
    pub(crate) now: Instant,
    /// Settings.
    pub(crate) cfg: LoopConfig,
}
