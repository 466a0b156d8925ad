//! Settling a connection after anything touched it: gathered output goes out, limits are
//! enforced, water marks fire, drained connections close or shut their write side,
//! `on_write_complete` is queued, and the loop's watch of the socket follows its state.

use std::os::fd::AsFd;
use std::time::Duration;

use super::callback::{call, passively_closed};
use super::handler::{Core, IoHandler};
use super::loop_core::held_back;
use super::teardown::teardown;
use crate::base::slab::ConnId;
use crate::base::timer;
use crate::conn::close::CloseReason;
use crate::conn::connection::Readable;
use crate::conn::env::ConnTimer;
use crate::conn::outbound::Room;
use crate::conn::state::{Drained, Notice, Water};
use crate::sys::{self, EPOLLIN, EPOLLOUT, EPOLLRDHUP};

/// Brings connection `id` to a consistent state after a dispatch. Called once per dispatch,
/// so the sends of a callback leave in one write.
pub(crate) fn settle<H: IoHandler>(h: &mut H, core: &mut Core<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    if c.out.tls.is_some() && c.state.is_done_sending() {
        c.out.tls_close_notify(&mut core.env); // once, after everything sent before it
    }
    if c.out.pending() > 0 && c.state.writes_output() {
        c.out.flush(&mut core.env);
    }
    if let Some(e) = c.out.error.take() {
        if !c.state.is_closing_now() {
            c.state.close_now(CloseReason::Error(e));
            passively_closed(h, core, id);
        }
    }
    let Some(c) = core.conns.get_mut(id) else { return };
    let cfg = &core.cfg;
    if !c.state.is_closing_now() {
        let over_input = c.input.as_ref().is_some_and(|b| b.len() > cfg.max_input);
        let over_output = cfg.max_output.is_some_and(|max| c.out.pending() > max);
        if over_input || over_output {
            let (what, limit, reason) = if over_input {
                ("unconsumed input", cfg.max_input, CloseReason::InputLimit)
            } else {
                ("unsent output", cfg.max_output.unwrap_or(0), CloseReason::OutputLimit)
            };
            log::warn!(target: "kingpin::conn", "conn {id} ({}): closing, {what} exceeds {limit} bytes", c.peer);
            core.env.stats.on_limit();
            c.state.close_now(reason);
        }
    }
    if let Some(reason) = c.state.take_closing() {
        return teardown(h, core, id, reason);
    }
    // Backpressure: the water marks of the output.
    let pending = c.out.pending();
    match c.water {
        Water::Low if pending >= core.cfg.high_water => {
            c.water = Water::High { paused: core.cfg.pause_on_high_water };
            call(h, core, id, "on_high_water", |h, conn| h.on_high_water(conn));
            return settle(h, core, id);
        }
        Water::High { .. } if pending <= core.cfg.low_water => {
            c.water = Water::Low;
            call(h, core, id, "on_low_water", |h, conn| h.on_low_water(conn));
            return settle(h, core, id);
        }
        _ => {}
    }
    if pending == 0 {
        if c.out.notice == Notice::Owed && c.out.room == Room::Free {
            c.out.notice = Notice::Queued;
            core.write_complete.push(id);
        }
        if c.state.shut_write_now() {
            if let Err(e) = sys::shutdown_write(c.out.fd.as_fd()) {
                log::debug!(target: "kingpin::conn", "conn {id}: shutdown(SHUT_WR): {e}");
            }
        }
        // The peer has ended and this side is done sending (nothing buffered, no write-complete
        // owed — a `send_file` stream is paced by those — the socket not waited on): close.
        let idle = c.out.notice == Notice::Idle && c.out.room == Room::Free;
        if idle && !core.cfg.half_close && c.state.is_peer_closed() {
            c.state.request_close(CloseReason::PeerClosed);
            if c.out.tls.is_some() {
                return settle(h, core, id); // `close_notify` in answer goes first
            }
        }
        match c.state.drained(core.cfg.linger > Duration::ZERO) {
            Drained::No => {}
            Drained::Close(reason) => return teardown(h, core, id, reason),
            Drained::Linger => {
                // The peer reads our end of stream; what it still sends is dropped until its
                // own end or the timeout, then the close cannot turn into a reset.
                if let Err(e) = sys::shutdown_write(c.out.fd.as_fd()) {
                    log::debug!(target: "kingpin::conn", "conn {id}: shutdown(SHUT_WR) to linger: {e}");
                }
                let at = timer::after(core.env.now, core.cfg.linger);
                let t = core.env.timers.insert(at, None, (id, ConnTimer::Linger));
                c.user_timers.push(t);
            }
        }
    }
    let lingering = c.state.is_lingering();
    let may_read = c.state.is_reading() && (!c.user_paused || lingering);
    let flowing = (!c.water.pauses() && !held_back(core.hold_back, c.held)) || c.is_introducing();
    if core.cfg.edge_triggered {
        // The interest never changes; input the socket may hold is read on the next turn.
        if may_read && (flowing || lingering || c.state.is_ending()) && c.readable == Readable::Maybe {
            c.readable = Readable::Listed;
            core.read_next.push(id);
        }
    } else {
        let mut want = 0;
        if may_read {
            want = EPOLLRDHUP;
            if flowing || lingering {
                want |= EPOLLIN;
            }
        }
        if c.out.wants_writable() {
            want |= EPOLLOUT;
        }
        if want != c.interest {
            match sys::epoll_mod(core.epoll.as_fd(), c.out.fd.as_fd(), want, id.as_u64()) {
                Ok(()) => c.interest = want,
                Err(e) => return teardown(h, core, id, CloseReason::Error(e)),
            }
        }
    }
    if c.input.as_ref().is_some_and(|b| b.is_empty()) {
        if let Some(b) = c.input.take() {
            core.env.pool.put(b);
        }
    }
    c.out.release_tls_input(&mut core.env);
    // Tell its handles what is unsent, and account the buffers it holds (for the budget).
    if let Some(shared) = &c.shared {
        shared.set_unsent(c.out.pending());
    }
    let held = c.buffers_held();
    core.buffered = core.buffered + held - c.held;
    c.held = held;
}

/// Settles every connection reached through a [`crate::LoopCtx`] since the last call.
pub(crate) fn settle_touched<H: IoHandler>(h: &mut H, core: &mut Core<H>) {
    while let Some(id) = core.touched.pop() {
        settle(h, core, id);
    }
}

/// Calls `on_write_complete` for the connections whose output drained.
pub(crate) fn run_write_complete<H: IoHandler>(h: &mut H, core: &mut Core<H>) {
    let mut due = std::mem::take(&mut core.write_complete_spare);
    std::mem::swap(&mut due, &mut core.write_complete);
    for id in due.drain(..) {
        let Some(c) = core.conns.get_mut(id) else { continue };
        if c.out.notice != Notice::Queued {
            continue;
        }
        if c.out.pending() > 0 || c.out.room == Room::Full || !c.state.writes_output() {
            c.out.notice = Notice::Owed; // owed still: due once the output drains again
            continue;
        }
        c.out.notice = Notice::Idle;
        call(h, core, id, "on_write_complete", |h, conn| h.on_write_complete(conn));
        settle(h, core, id);
    }
    core.write_complete_spare = due;
}
