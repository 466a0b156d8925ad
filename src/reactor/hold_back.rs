//! A loop's side of the memory budget: once per turn it publishes what its connections'
//! buffers hold and follows the verdict — hold back (pause every read, accept nothing) or not.

use super::handler::{Core, IoHandler};
use super::settle::settle;

/// Publishes this loop's buffered bytes and follows the budget: when it is exhausted, pause
/// reading on every connection (the acceptor stops too); resume once usage has fallen.
pub(crate) fn check_budget<H: IoHandler>(h: &mut H, core: &mut Core<H>) {
    core.env.stats.set_buffered(core.buffered);
    let Some(budget) = &core.budget else { return };
    budget.publish(core.env.index, core.buffered);
    let hold = budget.hold_back(core.hold_back);
    if hold == core.hold_back {
        return;
    }
    if hold {
        log::warn!(
            target: "kingpin::loop",
            "loop {}: memory budget of {} bytes reached ({} in use): pausing reads and accepts",
            core.env.index,
            budget.limit(),
            budget.used()
        );
    } else {
        log::info!(target: "kingpin::loop", "loop {}: memory budget ok again, resuming", core.env.index);
    }
    core.hold_back = hold;
    for id in core.conns.ids() {
        settle(h, core, id);
    }
}
