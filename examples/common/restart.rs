//! Zero-downtime restart and socket activation for the example servers:
//! [`inherited_listeners`] picks up listening sockets from systemd or from a predecessor, and
//! [`on_sigusr2_hand_over`] makes `SIGUSR2` start a new copy of the program (same arguments)
//! that takes over the listening sockets, while this one drains its connections and exits.
//!
//! Include with `#[path = "common/restart.rs"] mod restart;` (from a folder example,
//! `#[path = "../common/restart.rs"]`).
#![allow(dead_code)]

use std::process::Command;
use std::sync::{Arc, OnceLock};
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
        match handover.hand_over(successor, SUCCESSOR_TIMEOUT) {
            Ok(child) => println!("{name}: handed over to process {}; draining, then stopping", child.id()),
            Err(e) => eprintln!("{name}: restart failed, serving on: {e}"),
        }
    })
    .map_err(|e| format!("cannot watch for SIGUSR2: {e}"))?;
    Ok(slot)
}
