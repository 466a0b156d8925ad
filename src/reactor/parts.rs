//! [`LoopParts`]: what a loop is made of before its thread starts, built on the caller's
//! thread so that failures (out of descriptors) surface there.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use super::balance::LoopPeer;
use super::budget::Budget;
use super::command::LoopMailbox;
use super::config::LoopConfig;
use super::handler::LoopHandle;
use super::handler::{IoHandler, Remote};
use super::token;
use super::waker::Waker;
use crate::base::stats::LoopStats;
use crate::conn::inbox::Inbox;
use crate::sys::{self, EPOLLIN};
use crate::work::pool::WorkerPool;

/// One loop's epoll, mailbox and counters, made before its thread (all `Send`).
pub(crate) struct LoopParts<H: IoHandler> {
    pub(crate) index: usize,
    pub(crate) epoll: OwnedFd,
    pub(crate) mailbox: Arc<LoopMailbox<H>>,
    pub(crate) stats: Arc<LoopStats>,
    pub(crate) cfg: LoopConfig,
    pub(crate) budget: Option<Arc<Budget>>,
    /// The pool that runs the loop's blocking jobs (shared by every loop of the group).
    pub(crate) workers: WorkerPool,
}

impl<H: IoHandler> LoopParts<H> {
    /// Creates the epoll instance and the waker, registered in it.
    ///
    /// # Errors
    /// When `epoll_create1` or `eventfd` fails (e.g. out of descriptors).
    pub(crate) fn new(index: usize, cfg: LoopConfig, workers: WorkerPool) -> io::Result<Self> {
        let epoll = sys::epoll_create()?;
        let waker = Waker::new()?;
        sys::epoll_add(epoll.as_fd(), waker.as_fd(), EPOLLIN, token::WAKER)?;
        Ok(LoopParts {
            index,
            epoll,
            mailbox: Arc::new(LoopMailbox::new(waker)),
            stats: Arc::new(LoopStats::default()),
            cfg,
            budget: None,
            workers,
        })
    }

    /// The handle other threads use to reach this loop.
    pub(crate) fn handle(&self) -> LoopHandle<H> {
        LoopHandle::new(self.index, self.mailbox.clone() as Arc<dyn Remote<H>>)
    }

    /// How the other loops see this one.
    pub(crate) fn peer(&self) -> LoopPeer {
        LoopPeer { stats: self.stats.clone(), inbox: self.mailbox.clone() as Arc<dyn Inbox> }
    }
}
