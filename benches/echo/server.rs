//! The servers under test, each a child process: which ones there are, how to start one pinned
//! to its CPU, and what the harness reads of it (CPU time, RSS, open descriptors).

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

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

/// Kills the child when the harness dies, and pins it to `cpu`; run between fork and exec.
pub fn child_setup(cmd: &mut Command, cpu: Option<usize>) {
    // SAFETY: the closure runs in the forked child before exec and only makes two
    // async-signal-safe system calls (prctl, sched_setaffinity) on plain data.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            if let Some(cpu) = cpu {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            }
            Ok(())
        });
    }
}

/// A server child process.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// What the child prints after its address (none for children started otherwise).
    out: Option<BufReader<ChildStdout>>,
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

    /// Spawns `cmd` and reads its address from the first line it prints.
    pub fn spawn(cmd: &mut Command, name: &str, pin: bool, log: &Path) -> io::Result<Server> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::OpenOptions::new().create(true).append(true).open(log)?);
        child_setup(cmd, pin.then_some(1));
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let mut line = String::new();
        // The child prints its address first; EOF (it died) ends the read.
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        out.read_line(&mut line)?;
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(|a| a.trim_start_matches("http://"))
            .and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!("{name}: no address in {line:?} (see {})", log.display())));
        };
        Ok(Server { child, pid, addr, out: Some(out) })
    }

    /// Stops the server as Ctrl+C does and returns what it printed from then on (bounded:
    /// killed after 10 s).
    pub fn interrupt(mut self) -> io::Result<String> {
        // SAFETY: kill only sends a signal to our own child's pid.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGINT);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            if std::time::Instant::now() > deadline {
                return Err(io::Error::other("the server did not stop on SIGINT within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut rest = String::new();
        if let Some(out) = self.out.as_mut() {
            io::Read::read_to_string(out, &mut rest)?;
        }
        Ok(rest)
    }

    /// Wraps a child that was started otherwise (e.g. nginx), listening on `addr`.
    pub fn from_child(child: Child, addr: SocketAddr) -> Server {
        let pid = child.id();
        Server { child, pid, addr, out: None }
    }

    /// CPU time of the whole process (all threads, live and dead): its CPU-time clock
    /// (`clock_getcpuclockid`, nanoseconds), else utime + stime from `/proc/PID/stat` (ticks).
    pub fn cpu(&self) -> Duration {
        let mut clock: libc::clockid_t = 0;
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: both calls only write the plain structs we pass; the pid is our live child.
        let ok = unsafe {
            libc::clock_getcpuclockid(self.pid as libc::pid_t, &mut clock) == 0
                && libc::clock_gettime(clock, &mut ts) == 0
        };
        if ok {
            return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = after.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
        let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
        Duration::from_nanos(ticks * 1_000_000_000 / clock_ticks())
    }

    /// Resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Open descriptors.
    pub fn fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, |d| d.count())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Pins the calling thread (and what it starts later) to `cpu`.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data, valid when zeroed; CPU_SET writes within it (cpu is
    // below CPU_SETSIZE here); sched_setaffinity reads `size_of` bytes of it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("echo bench: cannot pin to CPU {cpu}: {}", io::Error::last_os_error());
        }
    }
}

/// Raises the soft open-file limit to the hard one (children inherit it).
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the rlimit struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    lim.rlim_cur
}

/// Online CPUs.
pub fn online_cpus() -> i64 {
    // SAFETY: sysconf only reads a system constant.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }
}
