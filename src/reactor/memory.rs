//! A loop's side of memory. Once per turn it publishes what its connections' buffers, its
//! buffer pool and its mailbox hold and follows the budget's verdict: while it is exhausted, the connections
//! holding the most stop reading (small ones finish their frames and let go), nothing is
//! accepted, and a large holder that stays stuck for the budget's stall timeout is closed. And
//! when the loop's buffers shrink by a lot, the freed memory goes back to the system.

use std::time::Duration;

use super::handler::{Core, IoHandler};
use super::loop_core::{LoopCore, LARGE_HOLDER};
use super::settle::settle;
use crate::conn::close::CloseReason;
use crate::sys;

/// How often, at most, stalled holders are looked for while the budget is exhausted.
const STALL_SCAN: Duration = Duration::from_millis(100);

/// Memory freed since the last hand-back that makes it worth the (process-wide) call.
const GIVE_BACK_STEP: usize = 4 << 20;

/// How often, at most, a loop hands freed memory back to the system.
const GIVE_BACK_EVERY: Duration = Duration::from_secs(1);

/// Publishes this loop's held bytes (with the bytes other threads sent that waited in its
/// mailbox at the start of the turn) and follows the budget: when it is exhausted, the large
/// holders pause reading (the acceptor stops too) and the stalled ones are closed; all resume
/// once usage has fallen.
pub(crate) fn check_budget<H: IoHandler>(h: &mut H, core: &mut Core<H>) {
    let held = core.buffered + core.env.pool.pooled_bytes() + core.in_mailbox;
    core.env.stats.set_buffered(held);
    let Some(budget) = &core.budget else { return };
    budget.publish(core.env.index, held);
    let hold = budget.hold_back(core.hold_back);
    if hold != core.hold_back {
        if hold {
            log::warn!(
                target: "kingpin::loop",
                "loop {}: memory budget of {} bytes reached ({} in use): large holders pause, no accepts",
                core.env.index,
                budget.limit(),
                budget.used()
            );
        } else {
            log::info!(target: "kingpin::loop", "loop {}: memory budget ok again, resuming", core.env.index);
        }
        core.hold_back = hold;
        for id in core.conns.ids() {
            if let Some(c) = core.conns.get_mut(id) {
                c.held_back_since = None;
            }
            settle(h, core, id);
        }
        return;
    }
    let now = core.env.now;
    if !hold || now.duration_since(core.last_stall_scan) < STALL_SCAN {
        return;
    }
    core.last_stall_scan = now;
    let stall = budget.stall_timeout();
    for id in core.conns.ids() {
        let Some(c) = core.conns.get_mut(id) else { continue };
        if c.held < LARGE_HOLDER || !c.state.is_reading() {
            // It let go (or stopped reading): progress, so its clock starts again if it grows.
            c.held_back_since = None;
            continue;
        }
        match c.held_back_since {
            None => c.held_back_since = Some(now),
            Some(since) if now.duration_since(since) >= stall => {
                log::warn!(
                    target: "kingpin::conn",
                    "conn {id} ({}): closing, held {} bytes for {stall:?} while the memory budget was exhausted",
                    c.peer,
                    c.held
                );
                core.env.stats.on_limit();
                c.state.close_now(CloseReason::MemoryBudget);
                settle(h, core, id);
            }
            Some(_) => {}
        }
    }
}

/// Hands freed memory back to the system once the loop's buffers have shrunk by a step since
/// the last time (the allocator keeps freed blocks for reuse otherwise, and a burst of peers
/// would leave the process large long after they left). The call is process-wide and walks
/// the allocator's free lists, so it runs at most once a second; a hand-back that has to wait
/// sets `give_back_due`, which bounds the loop's next wait.
pub(crate) fn give_back<S, T>(core: &mut LoopCore<S, T>) {
    let held = core.buffered + core.env.pool.pooled_bytes();
    core.peak_held = core.peak_held.max(held);
    if core.peak_held - held < GIVE_BACK_STEP {
        core.give_back_due = None;
        return;
    }
    let due = core.last_give_back + GIVE_BACK_EVERY;
    if core.env.now < due {
        core.give_back_due = Some(due);
        return;
    }
    sys::trim_heap();
    core.peak_held = held;
    core.last_give_back = core.env.now;
    core.give_back_due = None;
}
