//! Driving connections on their loop: registering a new one, and handling its epoll events —
//! reading into its input and calling `on_message`, writing what waits for room.
//!
//! Level-triggered (the default), a ready connection gets one read per turn and the kernel
//! reports it again while input is left. Edge-triggered, the loop remembers a socket that may
//! hold more ([`Readable`]) and reads it on the next turn. Either way a flooding peer cannot
//! starve the others.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::panic;

use super::callback::{call, passively_closed, report_panic};
use super::handler::{Core, IoHandler};
use super::loop_core::held_back;
use super::proxy;
use super::settle::settle;
use super::teardown::teardown;
use super::tls;
use crate::base::per_ip::IpSlot;
use crate::base::slab::ConnId;
use crate::conn::close::CloseReason;
use crate::conn::connection::{Connection, Readable};
use crate::conn::intro::ProxyWait;
use crate::conn::target::Ticket;
use crate::sys::{self, EPOLLERR, EPOLLET, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP};
use crate::tls::TlsSession;

/// How a connection came to its loop.
pub(crate) enum Origin {
    /// Accepted by a server (with its place in its address's count, when that is limited).
    Accepted(Option<IpSlot>),
    /// Connected by a client for a target (whose first message is sent before `on_connect`).
    Connected(Ticket),
}

/// A connection for the loop: how it came, and its TLS session if it speaks TLS (the
/// handshake starts at once; `on_connect` waits for it).
pub(crate) struct Incoming {
    pub(crate) origin: Origin,
    pub(crate) tls: Option<Box<TlsSession>>,
    /// A server's connection that starts with a PROXY protocol header.
    pub(crate) proxy: Option<ProxyWait>,
}

impl From<Origin> for Incoming {
    fn from(origin: Origin) -> Self {
        Incoming { origin, tls: None, proxy: None }
    }
}

/// Registers a connected socket, calls `on_connect`, and settles it.
///
/// # Errors
/// When the connection cannot be set up — its `ConnState::default()` panicked (counted and
/// logged like a callback's panic) or `epoll_ctl` failed — the socket is closed and the error
/// comes back with the client's ticket, for the connector to report.
pub(crate) fn add_connection<H: IoHandler>(
    h: &mut H,
    core: &mut Core<H>,
    fd: OwnedFd,
    peer: SocketAddr,
    incoming: impl Into<Incoming>,
) -> Result<ConnId, (io::Error, Option<Ticket>)> {
    let Incoming { origin, tls, proxy: proxy_wait } = incoming.into();
    let (accepted, ticket, ip_slot) = match origin {
        Origin::Accepted(slot) => (true, None, slot),
        Origin::Connected(ticket) => (false, Some(ticket), None),
    };
    // User code, outside any callback: a panic here refuses this connection, not the loop.
    let user = match panic::catch_unwind(H::ConnState::default) {
        Ok(user) => user,
        Err(payload) => {
            let msg =
                report_panic(&core.env, core.cfg.panic_policy, &format!("ConnState::default for {peer}"), payload);
            return Err((io::Error::other(format!("the connection's state panicked: {msg}")), ticket));
        }
    };
    if core.cfg.nodelay {
        if let Err(e) = sys::set_nodelay(fd.as_fd(), true) {
            log::debug!(target: "kingpin::conn", "TCP_NODELAY on {peer}: {e}");
        }
    }
    let now = core.env.now;
    let id = core.conns.insert_with(|id| Connection::new(id, fd, peer, now, ticket, ip_slot, user));
    let c = core.conns.get_mut(id).expect("just inserted");
    let interest =
        if core.cfg.edge_triggered { EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET } else { EPOLLIN | EPOLLRDHUP };
    if let Err(e) = sys::epoll_add(core.epoll.as_fd(), c.out.fd.as_fd(), interest, id.as_u64()) {
        log::warn!(target: "kingpin::conn", "cannot register connection with {peer}: {e}");
        let c = core.conns.remove(id).expect("just inserted");
        let Connection { out, ticket, .. } = c;
        drop(out);
        return Err((e, ticket));
    }
    c.interest = interest;
    c.out.tls = tls;
    c.proxy_wait = proxy_wait;
    let idle = core.cfg.idle;
    if idle.is_enabled() {
        c.watch_idle(&mut core.env, idle);
    }
    core.env.stats.on_open(accepted);
    let target = c.ticket.as_ref().map(|t| t.target().clone());
    if let Some(header) = target.as_ref().map(|t| t.get_proxy_header()).filter(|h| !h.is_empty()) {
        c.out.send_raw(&mut core.env, header); // before everything, TLS included
    }
    if let Some(target) = target.filter(|t| !t.get_first_message().is_empty()) {
        c.out.send(&mut core.env, target.get_first_message());
    }
    if c.proxy_wait.is_some() {
        tls::start_intro(core, id); // the header first, then the handshake or `on_connect`
    } else if c.out.tls.is_some() {
        tls::start(core, id); // `on_connect` once the handshake is done
    } else {
        call(h, core, id, "on_connect", |h, conn| h.on_connect(conn));
    }
    settle(h, core, id);
    Ok(id)
}

/// Handles the epoll `events` of connection `id`.
pub(crate) fn on_event<H: IoHandler>(h: &mut H, core: &mut Core<H>, id: ConnId, events: u32) {
    let Some(c) = core.conns.get_mut(id) else { return };
    if events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR) != 0 {
        c.state.peer_ending();
    }
    if events & (EPOLLOUT | EPOLLHUP | EPOLLERR) != 0 {
        c.out.on_writable();
    }
    let input = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR) != 0;
    let edge = core.cfg.edge_triggered;
    if edge && input && c.readable == Readable::Drained {
        c.readable = Readable::Maybe; // remembered while reading waits
    }
    if may_read(c, held_back(core.hold_back, c.held)) {
        // Edge-triggered, a connection listed for the next turn is read there, not twice.
        if (edge && c.readable == Readable::Maybe) || (!edge && input) {
            read(h, core, id);
        }
    } else if events & (EPOLLHUP | EPOLLERR) != 0 && c.out.pending() == 0 && c.state.writes_output() {
        // Not read (paused by the handler, or no longer reading) and nothing to write: the
        // peer has gone, and nothing else would notice.
        let reason = match sys::take_socket_error(c.out.fd.as_fd()) {
            Ok(Some(e)) => CloseReason::Error(e),
            _ => CloseReason::PeerClosed,
        };
        c.state.close_now(reason);
    }
    settle(h, core, id);
}

/// Whether the loop reads connection `c` now: it is reading, the handler has not paused it,
/// and neither backpressure nor the memory budget holds it back — unless its peer has
/// finished, whose rest is read whatever the flow control (see [`crate::conn::state::ReadHalf::Ending`]).
fn may_read<S>(c: &Connection<S>, hold_back: bool) -> bool {
    if c.state.is_lingering() {
        return true; // what comes is dropped, whatever the flow control
    }
    // A TLS handshake is read whatever the flow control: what waits to be sent (a client's
    // first message) cannot leave before it is done.
    let flowing = (!c.water.pauses() && !hold_back) || c.is_introducing();
    c.state.is_reading() && !c.user_paused && (flowing || c.state.is_ending())
}

/// Reads once from connection `id` if it may, and calls `on_message` with what came.
pub(crate) fn read<H: IoHandler>(h: &mut H, core: &mut Core<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    if !may_read(c, held_back(core.hold_back, c.held)) {
        return;
    }
    let proxy = c.proxy_wait.is_some();
    let tls = c.out.tls.as_ref().map(|t| t.is_handshaking());
    // A TLS connection reads ciphertext into its session (after its PROXY header, if any);
    // the plaintext reaches the input.
    let input = match c.out.tls.as_mut() {
        Some(tls) if !proxy => tls.cipher_in(&mut core.env.pool),
        _ => c.input.get_or_insert_with(|| core.env.pool.get()),
    };
    let result = input.fill_from(c.out.fd.as_fd(), c.last_read as usize, core.read_cap);
    core.env.stats.on_read_call();
    if c.state.is_lingering() {
        // Closing: what the peer still sends is dropped; its end (or an error) ends the wait.
        input.clear();
        match result {
            Ok(filled) if filled.bytes > 0 => {
                c.readable = if filled.full { Readable::Maybe } else { Readable::Drained };
                core.env.stats.add_in(filled.bytes);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.readable = Readable::Drained,
            end => {
                if let Err(e) = end {
                    log::debug!(target: "kingpin::conn", "conn {id}: while lingering: {e}");
                }
                if let Some(reason) = c.state.take_lingering() {
                    teardown(h, core, id, reason);
                }
            }
        }
        return;
    }
    match result {
        Ok(filled) if filled.bytes == 0 => {
            // The peer's end: unless half-close is allowed, `settle` closes the connection once
            // it has nothing more to send (buffered output, or a `send_file` in progress).
            c.readable = Readable::Drained;
            if proxy {
                // Before its header (a balancer's TCP health check): closed, never met.
                return c.state.close_now(CloseReason::PeerClosed);
            }
            if tls == Some(true) {
                return tls::ended_in_handshake(core, id);
            }
            passively_closed(h, core, id);
        }
        Ok(filled) => {
            // The next read is a `recv` if the buffer has room for twice this one, else a
            // `readv` with the spill array (which a read that filled its room asks for).
            c.last_read = if filled.full { 0 } else { u32::try_from(filled.bytes).unwrap_or(u32::MAX) };
            // A short read drains the socket, unless the peer's end is waiting behind the data
            // (`recv` stops there): it is read on the next turn, as no new edge will say so.
            c.readable = if filled.full || c.state.is_ending() { Readable::Maybe } else { Readable::Drained };
            core.env.stats.add_in(filled.bytes);
            if proxy {
                return proxy::received(h, core, id);
            }
            if tls.is_some() {
                return tls::received(h, core, id);
            }
            if let Some(idle) = c.idle.as_mut() {
                idle.last_read = core.env.now;
            }
            call(h, core, id, "on_message", |h, conn| h.on_message(conn));
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.readable = Readable::Drained,
        Err(e) => {
            c.readable = Readable::Drained;
            c.state.close_now(CloseReason::Error(e));
            passively_closed(h, core, id); // not during a TLS handshake: the handler never saw it
        }
    }
}

/// Edge-triggered: reads the connections listed on the last turn.
pub(crate) fn read_listed<H: IoHandler>(h: &mut H, core: &mut Core<H>) {
    if core.read_next.is_empty() {
        return;
    }
    let mut due = std::mem::take(&mut core.read_spare);
    std::mem::swap(&mut due, &mut core.read_next);
    for id in due.drain(..) {
        let Some(c) = core.conns.get_mut(id) else { continue };
        if c.readable != Readable::Listed {
            continue;
        }
        c.readable = Readable::Maybe;
        read(h, core, id);
        settle(h, core, id);
    }
    core.read_spare = due;
}
