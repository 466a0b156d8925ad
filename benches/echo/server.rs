//! The servers under test, each a child process: which ones there are, how to start one pinned
//! to its CPU, and what the harness reads of it (CPU time, RSS, open descriptors).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::process::{child_setup, online_cpus, pin_to_cpu, raise_nofile, Server};

/// Set in a server child: which server to run.
pub const SERVE_ENV: &str = "KINGPIN_BENCH_SERVE";
/// A kingpin `echo_server` binary from another build, run as a fourth peer (before/after).
pub const BASELINE_ENV: &str = "BENCH_BASELINE";

/// An echo server under test.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Kind {
    /// `examples/echo_server.rs` with the default epoll mode.
    Kingpin,
    /// The same with the other epoll mode (edge- vs level-triggered).
    KingpinAlt,
    /// What a Rust user would write with tokio (`peers/tokio_echo.rs`).
    Tokio,
    /// The simplest correct epoll loop (`peers/mio_echo.rs`): the floor.
    Mio,
    /// The binary named by `BENCH_BASELINE` (e.g. `echo_server` built from an older commit).
    Baseline,
}

impl Kind {
    /// Every server of this run, in the order of the first repetition.
    pub fn all() -> Vec<Kind> {
        let mut kinds = vec![Kind::Kingpin, Kind::KingpinAlt, Kind::Tokio, Kind::Mio];
        if std::env::var_os(BASELINE_ENV).is_some() {
            kinds.push(Kind::Baseline);
        }
        kinds
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Kingpin => "kingpin",
            Kind::KingpinAlt if crate::ALT_EPOLL == "edge" => "kingpin, edge-triggered",
            Kind::KingpinAlt => "kingpin, level-triggered",
            Kind::Tokio => "tokio",
            Kind::Mio => "mio (bare loop)",
            Kind::Baseline => "kingpin (baseline build)",
        }
    }

    /// The name `BENCH_ONLY` matches and the child is told.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Kingpin => "kingpin",
            Kind::KingpinAlt => "kingpin-et",
            Kind::Tokio => "tokio",
            Kind::Mio => "mio",
            Kind::Baseline => "baseline",
        }
    }

    /// Plot colour.
    pub fn color(self) -> &'static str {
        match self {
            Kind::Kingpin => "#d62728",
            Kind::KingpinAlt => "#ff9896",
            Kind::Tokio => "#1f77b4",
            Kind::Mio => "#7f7f7f",
            Kind::Baseline => "#2ca02c",
        }
    }
}

impl Server {
    /// Starts `kind` with `threads` IO threads, pinned to CPU 1 when `pin`; waits for the
    /// address it prints (`… listening on ADDR …`). Its stderr goes to `log`.
    pub fn start(kind: Kind, threads: usize, pin: bool, log: &Path) -> io::Result<Server> {
        let threads = threads.to_string();
        let mut cmd = match kind {
            Kind::Baseline => {
                let bin = std::env::var_os(BASELINE_ENV).map(PathBuf::from).unwrap_or_default();
                let mut c = Command::new(bin);
                c.args(["--addr", "127.0.0.1:0", "--threads", &threads]);
                c
            }
            Kind::KingpinAlt => {
                let mut c = Command::new(std::env::current_exe()?);
                c.env(SERVE_ENV, "kingpin").args([
                    "--addr",
                    "127.0.0.1:0",
                    "--threads",
                    &threads,
                    "--epoll",
                    crate::ALT_EPOLL,
                    // One load generator, one address: no per-address limit.
                    "--max-conns-per-ip",
                    "0",
                ]);
                c
            }
            Kind::Kingpin => {
                let mut c = Command::new(std::env::current_exe()?);
                c.env(SERVE_ENV, "kingpin").args([
                    "--addr",
                    "127.0.0.1:0",
                    "--threads",
                    &threads,
                    "--epoll",
                    crate::DEFAULT_EPOLL,
                    // One load generator, one address: no per-address limit.
                    "--max-conns-per-ip",
                    "0",
                ]);
                c
            }
            Kind::Tokio | Kind::Mio => {
                let mut c = Command::new(std::env::current_exe()?);
                c.env(SERVE_ENV, kind.key()).args(["--addr", "127.0.0.1:0", "--threads", &threads]);
                c
            }
        };
        Self::spawn(&mut cmd, kind.name(), pin, log)
    }
}
