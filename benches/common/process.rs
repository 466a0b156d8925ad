//! Benchmark helper: a server child process (spawned pinned to a CPU, killed with the
//! harness) and what a harness reads of it (CPU time, RSS, open descriptors). Shared by the
//! benches.
#![allow(dead_code)] // each bench uses part of it

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

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
    pub(crate) child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// What the child prints after its address (none for children started otherwise).
    pub(crate) out: Option<BufReader<ChildStdout>>,
}

impl Server {
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
            .map(|a| a.rsplit("://").next().unwrap_or(a))
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
            eprintln!("bench: cannot pin to CPU {cpu}: {}", io::Error::last_os_error());
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
