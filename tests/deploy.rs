//! Deployment beyond one process: socket activation (`LISTEN_FDS`/`LISTEN_PID`), a
//! zero-downtime restart (`SIGUSR2`: the listener handed to a new copy of the program, the old
//! one draining), and several processes sharing a port with `SO_REUSEPORT` — with the
//! `echo_server` example, as a user runs it.

#[path = "util/bin.rs"]
mod bin;
#[path = "util/echo_load.rs"]
mod echo_load;
mod util;

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bin::{example, stdout_lines, wait_bounded, KillOnDrop};
use util::{pattern, wait_until, IO_TIMEOUT};

/// Reads lines of the server's output until one contains `needle` (bounded).
fn line_with(out: &Receiver<String>, needle: &str) -> String {
    // The lines come from a pump thread, so the wait is bounded even when no line and no end
    // comes (a successor that inherited the pipe keeps it open after its parent has exited).
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match out.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => panic!("no line with {needle:?} in {IO_TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the server's output ended before a line with {needle:?}"),
        }
    }
}

fn addr_in(line: &str) -> SocketAddr {
    line.split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .expect("an address")
}

/// A copy of the listener's descriptor that children inherit, numbered 10 or above (so that
/// the shell can move it to 3 without clobbering anything).
fn inheritable(l: &TcpListener) -> std::os::fd::OwnedFd {
    use nix::fcntl::{fcntl, FcntlArg};
    use std::os::fd::FromRawFd;
    let raw = fcntl(l, FcntlArg::F_DUPFD(10)).unwrap(); // no FD_CLOEXEC on the copy
                                                        // SAFETY: F_DUPFD just returned this new descriptor, owned by nobody else.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) }
}

/// Held while a descriptor is inheritable and while children are spawned: a child started by
/// another test meanwhile would inherit that descriptor (tests run in parallel threads).
static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn spawn(cmd: &mut Command) -> std::process::Child {
    let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    cmd.spawn().unwrap()
}

/// The example binary, built once for this test process.
fn echo_server() -> std::path::PathBuf {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| example("echo_server")).clone()
}

/// Runs `echo_server` as systemd would: the socket on descriptor 3, `LISTEN_FDS=1` and
/// `LISTEN_PID` its own pid (the shell's, which `exec` keeps), plus `extra` shell words.
fn activated(listener: Option<&std::os::fd::OwnedFd>, env: &str) -> Command {
    let fd = listener.map_or("-".to_string(), |l| l.as_raw_fd().to_string());
    // The redirections go on the `exec` of the server itself (a shell may make the descriptors
    // of a bare `exec 3<&N` close-on-exec).
    let script = match listener {
        Some(_) => format!("eval \"{env} exec \\\"\\$0\\\" --threads 1 3<&$1 $1<&-\""),
        None => format!("{env} exec \"$0\" --threads 1 3</dev/null"),
    };
    let mut cmd = Command::new("bash"); // dash takes only one-digit descriptors in redirections
    cmd.args(["-c", &script, echo_server().to_str().unwrap(), &fd]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

#[test]
fn socket_activation_serves_on_the_passed_socket_and_refuses_wrong_variables() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let passed = inheritable(&listener);
    let mut server = KillOnDrop(Some(activated(Some(&passed), "LISTEN_PID=\\$\\$ LISTEN_FDS=1").spawn().unwrap()));
    drop(passed); // the server has its own descriptor; `listener` stays, as systemd's does
    drop(guard);
    let out = stdout_lines(server.0.as_mut().unwrap().stdout.take().unwrap());
    let line = line_with(&out, "listening on");
    assert_eq!(addr_in(&line), addr, "it serves on the passed socket, not --addr's");
    let mut c = util::connect(addr);
    assert_eq!(util::echo_round_trip(&mut c, b"activated"), b"activated");
    drop(c);
    // Stopping the server leaves the socket listening for its other holder (systemd), which
    // queues connections for the next start instead of refusing them.
    let child = server.0.as_mut().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    wait_bounded(child, Duration::from_secs(15), "the activated server");
    let _queued = util::connect(addr);
    listener.set_nonblocking(false).unwrap();
    let (_accepted, _) = listener.accept().expect("the socket still listens after the server stopped");

    for (env, expect) in [
        ("LISTEN_FDS=1", "LISTEN_FDS is set without LISTEN_PID"),
        ("LISTEN_PID=$$", "LISTEN_PID is set without LISTEN_FDS"),
        ("LISTEN_PID=1 LISTEN_FDS=1", "LISTEN_PID=1 names another process"),
        ("LISTEN_PID=$$ LISTEN_FDS=x", "LISTEN_FDS=\"x\": not a number"),
        ("LISTEN_PID=$$ LISTEN_FDS=1", "descriptor 3: not a socket"),
    ] {
        let out = {
            let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
            activated(None, env).spawn().unwrap()
        }
        .wait_with_output()
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{env}: {err}");
        assert!(err.contains(expect), "{env}: expected {expect:?} in {err:?}");
        assert_eq!(err.lines().count(), 1, "{env}: one line: {err:?}");
    }
}

/// 50 clients for about 6 s — keep-alive round trips and a new connection every third
/// request — with `SIGUSR2` in the middle: not one connect refused, not one request failed;
/// the old process drains and exits; only the listener crosses into the new one.
#[test]
fn a_restart_under_load_drops_nothing() {
    let mut cmd = Command::new(echo_server());
    cmd.args(["--addr", "127.0.0.1:0", "--threads", "2", "--max-conns-per-ip", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut old = KillOnDrop(Some(spawn(&mut cmd)));
    let old_pid = old.0.as_ref().unwrap().id();
    let out = stdout_lines(old.0.as_mut().unwrap().stdout.take().unwrap());
    let addr = addr_in(&line_with(&out, "listening on"));

    let load = Arc::new(echo_load::Load::default());
    let clients = echo_load::start(addr, 50, |_| None, &load);
    std::thread::sleep(Duration::from_secs(2));
    let before = load.round_trips.load(Relaxed);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old_pid as i32), nix::sys::signal::Signal::SIGUSR2).unwrap();
    let handed = line_with(&out, "handed over to process");
    let new_pid: u32 =
        handed.split("process ").nth(1).and_then(|r| r.split(';').next()).and_then(|p| p.parse().ok()).unwrap();
    let _successor = scopeguard(new_pid as i32); // killed if the test fails from here on
                                                 // The old process drains and exits on its own.
    let status = wait_bounded(old.0.as_mut().unwrap(), Duration::from_secs(15), "the old server");
    assert!(status.success(), "the old server: {status}");
    std::thread::sleep(Duration::from_secs(2)); // load on the new one alone
    let errors = echo_load::finish(&load, clients);
    let after = load.round_trips.load(Relaxed);
    eprintln!("restart under load: {} ({before} round trips before the signal)", load.summary());
    assert_eq!(load.refused.load(Relaxed), 0, "refused connects");
    assert!(errors.is_empty(), "failed requests: {:?}", &errors[..errors.len().min(5)]);
    assert!(after > before + 100, "the new server served: {before} → {after}");

    // Only the listener crossed: once the clients are gone, the new process holds one socket.
    let sockets = || {
        std::fs::read_dir(format!("/proc/{new_pid}/fd"))
            .map(|d| {
                d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter(|l| l.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(usize::MAX)
    };
    wait_until(Duration::from_secs(10), "the new server to hold only its listener", || sockets() == 1);
    let mut c = util::connect(addr);
    assert_eq!(util::echo_round_trip(&mut c, b"still here"), b"still here");
    drop(c);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(new_pid as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    wait_until(Duration::from_secs(15), "the new server to stop", || {
        !std::path::Path::new(&format!("/proc/{new_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{new_pid}/stat")).map_or(true, |s| s.contains(") Z"))
    });
}

/// Two processes on one port with `SO_REUSEPORT`: the kernel spreads the connections over
/// both, and each serves its own.
#[test]
fn two_processes_share_a_port_with_reuseport() {
    let start = |addr: &str| -> (KillOnDrop, Receiver<String>, SocketAddr) {
        let mut cmd = Command::new(echo_server());
        cmd.args(["--addr", addr, "--threads", "1", "--accept", "reuseport", "--max-conns-per-ip", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child: Child = spawn(&mut cmd);
        let out = stdout_lines(child.stdout.take().unwrap());
        let a = addr_in(&line_with(&out, "listening on"));
        (KillOnDrop(Some(child)), out, a)
    };
    let (mut first, out1, addr) = start("127.0.0.1:0");
    let (mut second, out2, addr2) = start(&addr.to_string());
    assert_eq!(addr, addr2);
    for i in 0..200u64 {
        let mut c = util::connect(addr);
        let msg = pattern(64, i);
        assert_eq!(util::echo_round_trip(&mut c, &msg), msg);
    }
    let mut accepted = Vec::new();
    for (server, out) in [(&mut first, &out1), (&mut second, &out2)] {
        let child = server.0.as_mut().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)
            .unwrap();
        let line = line_with(out, "connections accepted per IO thread");
        let n: u64 = line.rsplit(':').next().unwrap().split_whitespace().map(|n| n.parse::<u64>().unwrap()).sum();
        accepted.push(n);
        wait_bounded(child, Duration::from_secs(15), "a reuseport server");
    }
    assert_eq!(accepted.iter().sum::<u64>(), 200, "{accepted:?}");
    assert!(accepted.iter().all(|&n| n > 0), "the kernel spread the connections: {accepted:?}");
}

/// `http_server` hands over on `SIGUSR2` too: the successor answers on the same address, the
/// old process exits.
#[test]
fn http_server_restarts_on_sigusr2() {
    // A GET, retried (as clients retry an idempotent request) when the connection closes
    // before any byte of the answer: the old server may take a connection in the instant
    // before it stops accepting, and closes it unanswered as it drains.
    let get = |addr: SocketAddr| -> String {
        use std::io::{Read, Write};
        for _ in 0..3 {
            let mut s = util::connect(addr);
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut reply = String::new();
            let _ = s.read_to_string(&mut reply);
            if !reply.is_empty() {
                return reply;
            }
        }
        String::new()
    };
    let mut old = KillOnDrop(Some(spawn(
        Command::new(example("http_server"))
            .args(["--addr", "127.0.0.1:0", "--threads", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )));
    let out = stdout_lines(old.0.as_mut().unwrap().stdout.take().unwrap());
    let line = line_with(&out, "listening on");
    let addr: SocketAddr = line
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap();
    assert!(get(addr).contains("Hello, kingpin!"));
    let pid = old.0.as_ref().unwrap().id();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGUSR2).unwrap();
    let handed = line_with(&out, "handed over to process");
    let new_pid: i32 =
        handed.split("process ").nth(1).and_then(|r| r.split(';').next()).and_then(|p| p.parse().ok()).unwrap();
    let _successor = scopeguard(new_pid);
    assert!(get(addr).contains("Hello, kingpin!"), "the successor answers");
    let status = wait_bounded(old.0.as_mut().unwrap(), Duration::from_secs(15), "the old http_server");
    assert!(status.success());
    assert!(get(addr).contains("Hello, kingpin!"), "the successor answers alone");
}

/// Kills a process that is not our child (a successor) when the test ends.
struct Reaper(i32);

impl Drop for Reaper {
    fn drop(&mut self) {
        // Only if it is still one of ours (the pid may have been reused once it exited).
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("_server") {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

fn scopeguard(pid: i32) -> Reaper {
    Reaper(pid)
}
