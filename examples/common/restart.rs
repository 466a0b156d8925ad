//! Zero-downtime restart and socket activation for the example servers:
//! [`inherited_listeners`] picks up listening sockets from systemd or from a predecessor, and
//! [`on_sigusr2_hand_over`] makes `SIGUSR2` start a new copy of the program (same arguments)
//! that takes over the listening sockets, while this one drains its connections and exits.
//!
//! Include with `#[path = "common/restart.rs"] mod restart;` (from a folder example,
//! `#[path = "../common/restart.rs"]`).
#![allow(dead_code)]

use std::process::Command;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use kingpin::{Handover, Listeners, ServerConfig};

/// How long a successor may take to start accepting before the handover is given up.
const SUCCESSOR_TIMEOUT: Duration = Duration::from_secs(10);

/// The listeners this process was started with (systemd's `LISTEN_FDS`, or a predecessor's
/// handover), put into `config`. Call first in `main`, before any thread starts.
pub fn inherited_listeners(config: ServerConfig) -> Result<ServerConfig, String> {
    match Listeners::from_env() {
        Ok(Some(listeners)) => Ok(config.listeners(listeners)),
        Ok(None) => Ok(config),
        Err(e) => Err(format!("cannot use the inherited listening sockets: {e}")),
    }
}

/// Where the running server's [`Handover`] goes once it has started.
pub type Slot = Arc<OnceLock<Handover>>;

/// Whether a handover is under way on the signal's thread: it stops this server (whose `join`
/// then returns in `main`) before it reports, so `main` waits for the report before it exits.
static HANDING_OVER: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

fn handing_over(on: bool) {
    let (lock, changed) = &HANDING_OVER;
    *lock.lock().unwrap_or_else(|e| e.into_inner()) = on;
    changed.notify_all();
}

/// Call in `main` after the server has stopped: lets a handover that stopped it say so (its
/// line about the successor) before the process exits. Bounded by the successor's timeout.
pub fn wait_for_handover_report() {
    let (lock, changed) = &HANDING_OVER;
    let on = lock.lock().unwrap_or_else(|e| e.into_inner());
    let _ = changed.wait_timeout_while(on, SUCCESSOR_TIMEOUT + Duration::from_secs(1), |on| *on);
}

/// Watches `SIGUSR2` (call before threads start): each one starts a new copy of this program
/// with the same arguments, hands it the listening sockets, and lets this server drain and
/// stop. `name` prefixes what it prints.
pub fn on_sigusr2_hand_over(name: &'static str) -> Result<Slot, String> {
    let slot: Slot = Arc::new(OnceLock::new());
    let armed = slot.clone();
    kingpin::on_restart_signal(move || {
        let Some(handover) = armed.get() else { return };
        let exe = match std::env::current_exe() {
            // A binary replaced on disk since the start (an upgrade): its path runs the new one.
            Ok(exe) => match exe.to_str().and_then(|p| p.strip_suffix(" (deleted)")) {
                Some(path) => std::path::PathBuf::from(path),
                None => exe,
            },
            Err(e) => return eprintln!("{name}: cannot restart: cannot find this program: {e}"),
        };
        let mut successor = Command::new(exe);
        successor.args(std::env::args_os().skip(1));
        handing_over(true);
        match handover.hand_over(successor, SUCCESSOR_TIMEOUT) {
            Ok(child) => println!("{name}: handed over to process {}; draining, then stopping", child.id()),
            Err(e) => eprintln!("{name}: restart failed, serving on: {e}"),
        }
        handing_over(false);
    })
    .map_err(|e| format!("cannot watch for SIGUSR2: {e}"))?;
    Ok(slot)
}
