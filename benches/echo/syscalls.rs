//! Counting a server's system calls with `perf stat` on the kernel's syscall tracepoints: a
//! figure that, unlike CPU time, does not move with the machine's load. Used where `perf` can
//! read the tracepoints (as root, with `linux-perf` installed); skipped otherwise.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The calls counted: everything an echo server does per message or per connection.
const CALLS: &[&str] = &[
    "recvfrom",
    "readv",
    "read",
    "sendto",
    "sendmsg",
    "write",
    "writev",
    "epoll_wait",
    "epoll_pwait",
    "epoll_ctl",
    "accept4",
    "close",
    "setsockopt",
];

/// The tracepoints `perf` can count here (empty: counting is not available).
pub fn events() -> Vec<String> {
    CALLS
        .iter()
        .map(|c| format!("syscalls:sys_enter_{c}"))
        .filter(|e| {
            Command::new("perf")
                .args(["stat", "-e", e, "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect()
}

/// A running `perf stat` attached to one process.
pub struct SyscallCount {
    child: Child,
    out: PathBuf,
}

impl SyscallCount {
    /// Starts counting `events` in process `pid`, writing to a file in `dir`.
    pub fn start(pid: u32, events: &[String], dir: &Path) -> io::Result<SyscallCount> {
        let out = dir.join(format!("perf-{pid}.csv"));
        let child = Command::new("perf")
            .args(["stat", "-x,", "-o", &out.display().to_string(), "-e", &events.join(","), "-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // perf needs a moment to attach before the load starts.
        std::thread::sleep(std::time::Duration::from_millis(200));
        Ok(SyscallCount { child, out })
    }

    /// Stops counting (SIGINT, as Ctrl+C would) and returns the calls counted, by name.
    pub fn stop(mut self) -> io::Result<Vec<(String, u64)>> {
        // SAFETY: kill only sends a signal to our own live child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        self.child.wait()?;
        let text = fs::read_to_string(&self.out)?;
        let _ = fs::remove_file(&self.out);
        Ok(text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                let count = fields.first()?.trim().parse().ok()?;
                let name = fields.get(2)?.trim().trim_start_matches("syscalls:sys_enter_").to_string();
                Some((name, count))
            })
            .collect())
    }
}
