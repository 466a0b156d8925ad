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
    /// `examples/cpp/echo_server.cpp` on the C API (`libkingpin.so`), built with CMake.
    Cpp,
}

impl Kind {
    /// Every server of this run, in the order of the first repetition.
    pub fn all() -> Vec<Kind> {
        let mut kinds = vec![Kind::Kingpin, Kind::KingpinAlt, Kind::Tokio, Kind::Mio];
        if std::env::var_os(BASELINE_ENV).is_some() {
            kinds.push(Kind::Baseline);
        }
        if cpp_echo().is_some() {
            kinds.push(Kind::Cpp);
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
            Kind::Cpp => "kingpin from C++ (examples/cpp)",
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
            Kind::Cpp => "cpp",
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
            Kind::Cpp => "#9467bd",
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
            Kind::Cpp => {
                let mut c = Command::new(cpp_echo().expect("listed only when built"));
                c.args([
                    "--addr",
                    "127.0.0.1:0",
                    "--threads",
                    &threads,
                    "--max-conns-per-ip",
                    "0",
                    "--log-level",
                    "warn",
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

/// Set to a built `kingpin_echo_cpp` to use it as the C++ peer instead of building one.
pub const CPP_ECHO_ENV: &str = "BENCH_CPP_ECHO";

/// The C++ echo server on the C API, built once per run — the release library
/// (`cargo build --release -p kingpin-capi`), installed under `target/capi-bench/` as
/// `make install` does, and `examples/cpp` built with CMake against it — or `None` (with the
/// reason printed) when `cmake` or `g++` is missing or this is not a `--bench` run.
pub fn cpp_echo() -> Option<&'static PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(path) = std::env::var_os(CPP_ECHO_ENV) {
                return Some(PathBuf::from(path));
            }
            if !std::env::args().any(|a| a == "--bench") {
                return None;
            }
            match build_cpp_echo() {
                Ok(path) => Some(path),
                Err(why) => {
                    eprintln!("C++ peer skipped: {why}");
                    None
                }
            }
        })
        .as_ref()
}

fn build_cpp_echo() -> Result<PathBuf, String> {
    let tool = |name: &str| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success());
    if !tool("cmake") || !tool("g++") {
        return Err("cmake or g++ not installed (apt-get install -y cmake g++)".into());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let work = target.join("capi-bench");
    let run = |cmd: &mut Command, what: &str| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(
        Command::new(cargo).args(["build", "--quiet", "--release", "-p", "kingpin-capi"]).current_dir(root),
        "cargo build -p kingpin-capi",
    )?;
    run(
        Command::new(root.join("capi/install.sh"))
            .arg(work.join("prefix"))
            .arg("release")
            .env("CARGO_TARGET_DIR", &target),
        "capi/install.sh",
    )?;
    let build = work.join("build");
    run(
        Command::new("cmake")
            .arg("-S")
            .arg(root.join("examples/cpp"))
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", work.join("prefix").display()))
            .arg("-DCMAKE_BUILD_TYPE=Release"),
        "cmake configure",
    )?;
    run(Command::new("cmake").arg("--build").arg(&build).arg("-j2"), "cmake --build")?;
    Ok(build.join("kingpin_echo_cpp"))
}
