//! [`Connection`]: one TCP connection as its loop stores it, with the user's typed state.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

use super::env::{ConnTimer, Env};
use super::handle::ConnShared;
use super::idle::{IdleState, IdleTimeouts};
use super::intro::{Proxied, ProxyWait};
use super::outbound::Outbound;
use super::state::{ConnState, Water};
use super::target::Ticket;
use crate::base::per_ip::IpSlot;
use crate::base::slab::ConnId;
use crate::base::timer::TimerId;
use crate::io::buffer::Buffer;

/// Whether the socket may hold input the loop has not read (edge-triggered epoll reports
/// readiness once, so the loop keeps track of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Readable {
    /// The last read drained the socket; a new event will say when more arrives.
    Drained,
    /// An event said so, or the last read filled all the room it had: read again.
    Maybe,
    /// As `Maybe`, and the connection is in its loop's list of sockets to read next turn.
    Listed,
}

/// A connection in its loop's slab: socket, buffers, state machine, timers, and the user's
/// per-connection state `S` (the handler's `ConnState`).
pub(crate) struct Connection<S> {
    pub(crate) id: ConnId,
    pub(crate) peer: SocketAddr,
    /// Bytes read and not yet consumed; `None` while empty.
    pub(crate) input: Option<Buffer>,
    /// The socket and the write path.
    pub(crate) out: Outbound,
    /// Where the connection is in its life.
    pub(crate) state: ConnState,
    /// Backpressure: output above the high water mark pauses reading (by default).
    pub(crate) water: Water,
    /// Reading paused by the handler ([`crate::Conn::pause_reading`]).
    pub(crate) user_paused: bool,
    /// Input the loop may not have read yet.
    pub(crate) readable: Readable,
    /// Bytes the last read took (0: none yet, or it filled its room): chooses the next read's
    /// system call.
    pub(crate) last_read: u32,
    /// epoll events currently registered.
    pub(crate) interest: u32,
    /// The user's per-connection state.
    pub(crate) user: S,
    /// Shared with the connection's handles, made when the first is handed out.
    pub(crate) shared: Option<Arc<ConnShared>>,
    /// The client target this connection was made for.
    pub(crate) ticket: Option<Ticket>,
    /// Its place in its peer address's count (a server's, when that is limited); given back
    /// when the connection is dropped.
    pub(crate) ip_slot: Option<IpSlot>,
    /// Waiting for a PROXY protocol header (the handler meets the connection after it).
    pub(crate) proxy_wait: Option<ProxyWait>,
    /// What the PROXY header said, when one came: `peer` is then the client it named.
    pub(crate) proxied: Option<Box<Proxied>>,
    /// Idle timeouts, the activity they watch, and the pending check.
    pub(crate) idle: Option<IdleState>,
    /// Timers set with [`crate::Conn::set_timer`] that may still be pending: cancelled at
    /// teardown, so a closed connection leaves none behind.
    pub(crate) user_timers: Vec<TimerId>,
    /// Buffer capacity this connection holds, as counted in the loop's total.
    pub(crate) held: usize,
    /// Since when the memory budget has held this connection back (while it is exhausted).
    pub(crate) held_back_since: Option<Instant>,
}

impl<S> Connection<S> {
    pub(crate) fn new(
        id: ConnId,
        fd: OwnedFd,
        peer: SocketAddr,
        now: Instant,
        ticket: Option<Ticket>,
        ip_slot: Option<IpSlot>,
        user: S,
    ) -> Self {
        Connection {
            id,
            peer,
            input: None,
            out: Outbound::new(fd, now),
            state: ConnState::new(),
            water: Water::Low,
            user_paused: false,
            readable: Readable::Drained,
            last_read: 0,
            interest: 0,
            user,
            shared: None,
            ticket,
            ip_slot,
            proxy_wait: None,
            proxied: None,
            idle: None,
            user_timers: Vec::new(),
            held: 0,
            held_back_since: None,
        }
    }

    /// Starts watching for idleness with `timeouts` (none enabled: stops watching).
    pub(crate) fn watch_idle(&mut self, env: &mut Env, timeouts: IdleTimeouts) {
        if let Some(t) = self.idle.as_mut().and_then(|s| s.timer.take()) {
            env.timers.cancel(t);
        }
        if !timeouts.is_enabled() {
            self.idle = None;
            return;
        }
        let timeouts = timeouts.clamped();
        let state = self.idle.get_or_insert_with(|| IdleState::new(timeouts, env.now));
        state.timeouts = timeouts;
        self.arm_idle(env);
    }

    /// Sets the next idle check, unless one is pending.
    pub(crate) fn arm_idle(&mut self, env: &mut Env) {
        let last_write = self.out.last_write;
        let Some(state) = self.idle.as_mut().filter(|s| s.timer.is_none()) else { return };
        if let Some(at) = state.next_check(last_write) {
            state.timer = Some(env.timers.insert(at, None, (self.id, ConnTimer::Idle)));
        }
    }

    /// Sets a user timer, remembering it so that teardown can cancel it.
    pub(crate) fn set_timer(&mut self, env: &mut Env, at: Instant, tag: u64) -> TimerId {
        let id = env.timers.insert(at, None, (self.id, ConnTimer::User(tag)));
        if self.user_timers.len() >= 8 {
            let queue = &env.timers;
            self.user_timers.retain(|t| queue.contains(*t));
        }
        self.user_timers.push(id);
        id
    }

    /// Cancels every timer of this connection (teardown).
    pub(crate) fn cancel_timers(&mut self, env: &mut Env) {
        if let Some(t) = self.idle.as_mut().and_then(|s| s.timer.take()) {
            env.timers.cancel(t);
        }
        for t in self.user_timers.drain(..) {
            env.timers.cancel(t);
        }
    }

    /// Whether its TLS handshake is under way.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.out.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// Whether the handler has not met it yet: its PROXY header or its TLS handshake is still
    /// to come. No callback runs for it meanwhile.
    pub(crate) fn is_introducing(&self) -> bool {
        self.proxy_wait.is_some() || self.is_handshaking()
    }

    /// Buffer capacity held by the connection now.
    pub(crate) fn buffers_held(&self) -> usize {
        self.input.as_ref().map_or(0, Buffer::capacity) + self.out.held()
    }
}
