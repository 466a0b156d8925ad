//! Running what is due on a loop's two timer queues — loop timers (closures) and connection
//! timers (user timers and idle checks) — merged in deadline order.

use std::sync::Arc;

use super::callback::{call, run_guarded};
use super::handler::{Core, IoHandler, LoopCtx, Remote};
use super::settle::{settle, settle_touched};
use super::teardown::teardown;
use super::tls;
use crate::base::slab::ConnId;
use crate::conn::close::CloseReason;
use crate::conn::env::ConnTimer;
use crate::conn::idle::IdleAction;

/// Runs the timers due at the turn's `now` and set before this pass began, earliest first (a
/// connection timer wins a tie). A timer set while they run — even with no delay — waits for the
/// next turn, so the loop's sockets are served in between.
pub(crate) fn run_timers<H: IoHandler>(h: &mut H, core: &mut Core<H>, remote: &Arc<dyn Remote<H>>) {
    let now = core.env.now;
    let (conn_mark, loop_mark) = (core.env.timers.mark(), core.timers.mark());
    loop {
        let conn_next = core.env.timers.peek_due(now, conn_mark);
        let loop_next = core.timers.peek_due(now, loop_mark);
        match (conn_next, loop_next) {
            (None, None) => break,
            (Some(c), l) if l.map_or(true, |l| c <= l) => {
                let Some(e) = core.env.timers.pop_due(now, conn_mark) else { break };
                match e.task {
                    (id, ConnTimer::User(tag)) => {
                        if let Some(c) = core.conns.get_mut(id) {
                            c.user_timers.retain(|t| *t != e.id);
                        }
                        call(h, core, id, "on_timer", |h, conn| h.on_timer(conn, tag));
                        settle(h, core, id);
                    }
                    (id, ConnTimer::Idle) => check_idle(h, core, id),
                    (id, ConnTimer::Handshake) => tls::handshake_timeout(h, core, id),
                    (id, ConnTimer::Linger) => {
                        if let Some(reason) = core.conns.get_mut(id).and_then(|c| c.state.take_lingering()) {
                            teardown(h, core, id, reason);
                        }
                    }
                }
            }
            _ => {
                let Some(mut e) = core.timers.pop_due(now, loop_mark) else { break };
                let task = &mut e.task;
                let mut ctx = LoopCtx { core, remote };
                run_guarded(&mut ctx, "a loop timer", |ctx| task(h, ctx));
                settle_touched(h, core);
                core.timers.reschedule(e, now);
            }
        }
    }
}

/// An idle check of connection `id` is due: fires `on_idle` for a timeout that passed, and
/// schedules the next check.
fn check_idle<H: IoHandler>(h: &mut H, core: &mut Core<H>, id: ConnId) {
    let Some(c) = core.conns.get_mut(id) else { return };
    let Some(state) = c.idle.as_mut() else { return };
    state.timer = None;
    let now = core.env.now;
    if let Some(kind) = state.expired(now, c.out.last_write) {
        let mut action = IdleAction::Close;
        call(h, core, id, "on_idle", |h, conn| action = h.on_idle(conn, kind));
        let Some(c) = core.conns.get_mut(id) else { return };
        match action {
            IdleAction::Close => {
                log::debug!(target: "kingpin::conn", "conn {id} ({}): idle ({kind:?}), closing", c.peer);
                core.env.stats.on_idle_close();
                c.state.close_now(CloseReason::Idle(kind));
                return settle(h, core, id);
            }
            IdleAction::Keep => {
                if let Some(s) = c.idle.as_mut() {
                    s.restart(kind, now);
                }
            }
        }
    }
    if let Some(c) = core.conns.get_mut(id) {
        c.arm_idle(&mut core.env);
    }
    settle(h, core, id);
}
