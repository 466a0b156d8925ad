//! Driving one connection: reading, writing, calling the handler, and closing — all on the
//! connection's loop thread. The functions take the handler and the loop core separately so
//! that both can be borrowed at once.

use std::any::Any;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};

use crate::config::PanicPolicy;
use crate::connection::{arm_idle, Connection};
use crate::io_ctx::{ConnTimer, IoCtx};
use crate::loop_ctx::LoopCore;
use crate::sys::{self, EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP};
use crate::{Buffer, CloseReason, Conn, ConnId, IdleAction, IoHandler};

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Logs and counts a caught panic, and aborts if the policy says so. Returns its message.
pub(crate) fn report_panic(io: &IoCtx, what: &str, payload: Box<dyn Any + Send>) -> String {
    let msg = panic_message(&*payload);
    io.stats.on_panic();
    log::error!(target: "kingpin::loop", "loop {}: {what} panicked: {msg}", io.index);
    if io.cfg.panic_policy == PanicPolicy::Abort {
        eprintln!("kingpin: aborting after a panic in {what}: {msg}");
        std::process::abort();
    }
    msg
}

/// Calls a handler callback for connection `id`; a panic marks the connection to close.
pub(crate) fn call<H: IoHandler>(
    h: &mut H,
    core: &mut LoopCore<H>,
    id: ConnId,
    what: &str,
    f: impl FnOnce(&mut H, &mut Conn<'_>),
) {
    let LoopCore { conns, io, .. } = core;
    let Some(c) = conns.get_mut(id) else { return };
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(h, &mut Conn::new(c, io))));
    if let Err(payload) = result {
        let msg = report_panic(io, &format!("{what} of conn {id} ({})", c.peer), payload);
        c.reading = false;
        c.out.refuse = true;
        c.close_now = Some(CloseReason::Panicked(msg));
    }
}

/// Calls `on_passively_closed` once per connection.
fn passively_closed<H: IoHandler>(h: &mut H, core: &mut LoopCore<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    if !std::mem::replace(&mut c.peer_gone, true) {
        call(h, core, id, "on_passively_closed", |h, conn| h.on_passively_closed(conn));
    }
}

/// Registers a new connected socket, calls `on_connect`, and settles it.
pub(crate) fn add_connection<H: IoHandler>(
    h: &mut H,
    core: &mut LoopCore<H>,
    fd: OwnedFd,
    peer: SocketAddr,
    accepted: bool,
) -> Option<ConnId> {
    if core.io.cfg.nodelay {
        if let Err(e) = sys::set_nodelay(fd.as_fd(), true) {
            log::debug!(target: "kingpin::conn", "TCP_NODELAY on {peer}: {e}");
        }
    }
    let now = core.io.now;
    let id = core.conns.insert_with(|id| Connection::new(id, fd, peer, now));
    let c = core.conns.get_mut(id).expect("just inserted");
    let interest = EPOLLIN | EPOLLRDHUP;
    if let Err(e) = sys::epoll_add(core.io.epoll.as_fd(), c.out.fd.as_fd(), interest, id.as_u64()) {
        log::warn!(target: "kingpin::conn", "cannot register connection from {peer}: {e}");
        core.conns.remove(id);
        return None;
    }
    c.registered = interest;
    c.connected = true;
    let idle = core.io.cfg.idle;
    if idle.is_enabled() {
        arm_idle(c, &mut core.io, idle);
    }
    core.io.stats.on_open(accepted);
    call(h, core, id, "on_connect", |h, conn| h.on_connect(conn));
    settle(h, core, id);
    Some(id)
}

/// Handles the epoll events of connection `id`.
pub(crate) fn on_event<H: IoHandler>(h: &mut H, core: &mut LoopCore<H>, id: ConnId, events: u32) {
    let Some(c) = core.conns.get_mut(id) else { return };
    if c.connecting.is_some() {
        return crate::connector::on_connect_event(h, core, id, events);
    }
    // Read when input flows, and also when the peer has finished sending even if backpressure
    // or the memory budget paused reading: what is left is bounded by the kernel's receive
    // buffer, and reading it to the end lets a departed peer's resources go.
    let peer_done = events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR) != 0;
    let flowing = !c.paused && !core.io.hold_back && events & EPOLLIN != 0;
    if c.reading && !c.user_paused && (peer_done || flowing) {
        let input = c.input.get_or_insert_with(|| core.io.pool.get());
        match input.read_from(c.out.fd.as_fd()) {
            Ok(0) => {
                c.reading = false;
                passively_closed(h, core, id);
                if !core.io.cfg.half_close {
                    if let Some(c) = core.conns.get_mut(id) {
                        c.request_close(CloseReason::PeerClosed);
                    }
                }
            }
            Ok(n) => {
                core.io.stats.add_in(n);
                if let Some(idle) = c.idle.as_mut() {
                    idle.last_read = core.io.now;
                }
                call(h, core, id, "on_message", |h, conn| h.on_message(conn));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                c.reading = false;
                c.out.refuse = true;
                c.close_now = Some(CloseReason::Error(e));
                passively_closed(h, core, id);
            }
        }
    } else if events & (EPOLLHUP | EPOLLERR) != 0 && c.out.pending() == 0 {
        // Not reading (paused or closing) and nothing to write: nothing else will notice.
        let reason = match sys::take_socket_error(c.out.fd.as_fd()) {
            Ok(Some(e)) => CloseReason::Error(e),
            _ => CloseReason::PeerClosed,
        };
        c.close_now.get_or_insert(reason);
    }
    if events & (EPOLLOUT | EPOLLHUP | EPOLLERR) != 0 {
        if let Some(c) = core.conns.get_mut(id) {
            if c.close_now.is_none() && c.out.pending() > 0 {
                c.out.flush(&mut core.io);
            } else if c.out.want_writable && events & EPOLLOUT != 0 {
                // A `send_file` was waiting for room: `on_write_complete` sends the next chunk.
                c.out.want_writable = false;
                c.out.wrote = true;
            }
        }
    }
    settle(h, core, id);
}

/// Brings connection `id` to a consistent state after anything touched it: closes it when due,
/// queues `on_write_complete`, shuts its write side, and fixes its epoll interest (`EPOLLOUT`
/// while output is buffered or a `send_file` waits for room).
pub(crate) fn settle<H: IoHandler>(h: &mut H, core: &mut LoopCore<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    if c.connecting.is_some() {
        return; // the connector drives it until the connect ends
    }
    if let Some(e) = c.out.error.take() {
        if c.close_now.is_none() {
            c.reading = false;
            c.out.refuse = true;
            c.close_now = Some(CloseReason::Error(e));
            passively_closed(h, core, id);
        }
    }
    let Some(c) = core.conns.get_mut(id) else { return };
    let cfg = &core.io.cfg;
    if c.close_now.is_none() {
        let over_input = c.input.as_ref().is_some_and(|b| b.len() > cfg.max_input);
        let over_output = cfg.max_output.is_some_and(|max| c.out.pending() > max);
        if over_input || over_output {
            let (what, limit, reason) = if over_input {
                ("unconsumed input", cfg.max_input, CloseReason::InputLimit)
            } else {
                ("unsent output", cfg.max_output.unwrap_or(0), CloseReason::OutputLimit)
            };
            log::warn!(target: "kingpin::conn", "conn {id} ({}): closing, {what} exceeds {limit} bytes", c.peer);
            core.io.stats.on_limit();
            c.close_now = Some(reason);
        }
    }
    if let Some(reason) = c.close_now.take() {
        return teardown(h, core, id, reason);
    }
    // Backpressure: the water marks of the output buffer.
    let pending = c.out.pending();
    if !c.above_high && pending >= core.io.cfg.high_water {
        c.above_high = true;
        c.paused = core.io.cfg.pause_on_high_water;
        call(h, core, id, "on_high_water", |h, conn| h.on_high_water(conn));
        return settle(h, core, id);
    }
    if c.above_high && pending <= core.io.cfg.low_water {
        c.above_high = false;
        c.paused = false;
        call(h, core, id, "on_low_water", |h, conn| h.on_low_water(conn));
        return settle(h, core, id);
    }
    if pending == 0 {
        if c.out.wrote && !c.out.want_writable && !c.write_complete_queued {
            c.write_complete_queued = true;
            core.io.write_complete.push(id);
        }
        if c.shutdown_after_flush && !c.write_shut {
            c.write_shut = true;
            if let Err(e) = sys::shutdown_write(c.out.fd.as_fd()) {
                log::debug!(target: "kingpin::conn", "conn {id}: shutdown(SHUT_WR): {e}");
            }
        }
        if let Some(reason) = c.close_after_flush.take() {
            return teardown(h, core, id, reason);
        }
    }
    let mut want = 0;
    if c.reading && !c.user_paused {
        want = EPOLLRDHUP;
        if !c.paused && !core.io.hold_back {
            want |= EPOLLIN;
        }
    }
    if pending > 0 || c.out.want_writable {
        want |= EPOLLOUT;
    }
    if want != c.registered {
        match sys::epoll_mod(core.io.epoll.as_fd(), c.out.fd.as_fd(), want, id.as_u64()) {
            Ok(()) => c.registered = want,
            Err(e) => return teardown(h, core, id, CloseReason::Error(e)),
        }
    }
    if c.input.as_ref().is_some_and(|b| b.is_empty()) {
        if let Some(b) = c.input.take() {
            core.io.pool.put(b);
        }
    }
    // Account the buffers this connection holds (for the memory budget).
    let held = c.input.as_ref().map_or(0, Buffer::capacity) + c.out.buf.as_ref().map_or(0, Buffer::capacity);
    core.io.buffered = core.io.buffered + held - c.held;
    c.held = held;
}

/// An idle check of connection `id` is due: fire `on_idle` for a timeout that passed, and
/// schedule the next check.
pub(crate) fn check_idle<H: IoHandler>(h: &mut H, core: &mut LoopCore<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    c.idle_timer = None;
    let Some(state) = c.idle else { return };
    let now = core.io.now;
    if let Some(kind) = state.expired(now, c.out.last_write) {
        let mut action = IdleAction::Close;
        call(h, core, id, "on_idle", |h, conn| action = h.on_idle(conn, kind));
        let Some(c) = core.conns.get_mut(id) else { return };
        match action {
            IdleAction::Close => {
                log::debug!(target: "kingpin::conn", "conn {id} ({}): idle ({kind:?}), closing", c.peer);
                core.io.stats.on_idle_close();
                c.reading = false;
                c.out.refuse = true;
                c.close_now.get_or_insert(CloseReason::Idle(kind));
                return settle(h, core, id);
            }
            IdleAction::Keep => {
                if let Some(s) = c.idle.as_mut() {
                    s.restart(kind, now);
                }
            }
        }
    }
    let Some(c) = core.conns.get_mut(id) else { return };
    if c.idle_timer.is_none() {
        if let Some(at) = c.idle.and_then(|s| s.next_check(c.out.last_write)) {
            c.idle_timer = Some(core.io.conn_timers.insert(at, None, (id, ConnTimer::Idle)));
        }
    }
    settle(h, core, id);
}

/// Settles every connection reached through a [`crate::LoopCtx`] since the last call.
pub(crate) fn settle_touched<H: IoHandler>(h: &mut H, core: &mut LoopCore<H>) {
    while let Some(id) = core.touched.pop() {
        settle(h, core, id);
    }
}

/// Closes connection `id` now: `on_closed`, deregistration, buffers back to the pool.
pub(crate) fn teardown<H: IoHandler>(h: &mut H, core: &mut LoopCore<H>, id: ConnId, reason: CloseReason) {
    let Some(c) = core.conns.get_mut(id) else { return };
    c.reading = false;
    c.out.refuse = true;
    if c.connected {
        c.connected = false;
        let LoopCore { conns, io, .. } = &mut *core;
        let c = conns.get_mut(id).expect("present");
        let result = panic::catch_unwind(AssertUnwindSafe(|| h.on_closed(&mut Conn::new(c, io), &reason)));
        if let Err(payload) = result {
            report_panic(io, "on_closed", payload);
        }
    }
    let Some(c) = core.conns.remove(id) else { return };
    core.io.buffered -= c.held;
    for t in [c.idle_timer, c.connect_timer].into_iter().flatten().chain(c.user_timers.iter().copied()) {
        core.io.conn_timers.cancel(t);
    }
    let (was_connecting, had_target) = (c.connecting.is_some(), c.target.is_some());
    match &reason {
        CloseReason::Error(e) => log::debug!(target: "kingpin::conn", "conn {id} ({}): {e}", c.peer),
        CloseReason::ShutdownForced => {
            log::warn!(target: "kingpin::conn", "conn {id} ({}): {reason}; {} bytes dropped", c.peer, c.out.pending())
        }
        _ => log::trace!(target: "kingpin::conn", "conn {id} ({}): {reason}", c.peer),
    }
    if let Some(shared) = &c.shared {
        shared.mark_closed();
    }
    if let Err(e) = sys::epoll_del(core.io.epoll.as_fd(), c.out.fd.as_fd()) {
        log::debug!(target: "kingpin::conn", "conn {id}: epoll del: {e}");
    }
    let Connection { input, out, .. } = c;
    for b in [input, out.buf].into_iter().flatten() {
        core.io.pool.put(b);
    }
    drop(out.fd);
    // Counted as closed only now that the descriptor is closed: whoever sees the count drop
    // (or the target pool go idle) can rely on the descriptor being free.
    if was_connecting {
        core.io.stats.connecting_changed(-1);
    } else {
        core.io.stats.on_close();
    }
    if had_target {
        if let Some(pool) = &core.io.targets {
            pool.done();
        }
    }
}

/// Calls `on_write_complete` for the connections whose output drained.
pub(crate) fn run_write_complete<H: IoHandler>(h: &mut H, core: &mut LoopCore<H>) {
    let mut due = std::mem::take(&mut core.io.write_complete_spare);
    std::mem::swap(&mut due, &mut core.io.write_complete);
    for id in due.drain(..) {
        let Some(c) = core.conns.get_mut(id) else { continue };
        c.write_complete_queued = false;
        if c.out.pending() > 0 || !c.out.wrote || c.out.want_writable || c.close_now.is_some() {
            continue;
        }
        c.out.wrote = false;
        call(h, core, id, "on_write_complete", |h, conn| h.on_write_complete(conn));
        settle(h, core, id);
    }
    core.io.write_complete_spare = due;
}
