//! The example binaries as a user runs them: they print where they listen, serve, and stop
//! cleanly on Ctrl+C (SIGINT).

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use util::{connect, connect_from, echo_round_trip};

/// The path of an example binary built next to this test, brought up to date first (cargo
/// builds examples only when asked, so one left from an older build would be tested).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "--example", name]);
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "building example {name}");
    profile_dir.join("examples").join(name)
}

/// Kills the example if a test fails before stopping it, so no server outlives its test.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts an example on a free loopback port; returns it and the address it printed.
fn start(name: &str) -> (KillOnDrop, SocketAddr, BufReader<std::process::ChildStdout>) {
    start_with(name, None)
}

/// Like [`start`], with the child's descriptor limit lowered to `nofile`.
fn start_with(name: &str, nofile: Option<u64>) -> (KillOnDrop, SocketAddr, BufReader<std::process::ChildStdout>) {
    let mut cmd = Command::new(example(name));
    cmd.args(["--addr", "127.0.0.1:0", "--threads", "2"]).env("KINGPIN_LOG", "warn").stdout(Stdio::piped());
    if let Some(n) = nofile {
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    let mut child = KillOnDrop(Some(cmd.spawn().unwrap()));
    let mut out = BufReader::new(child.0.as_mut().and_then(|c| c.stdout.take()).unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.trim_start_matches("http://").parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("{name} printed no address: {line:?}"));
    (child, addr, out)
}

/// Sends SIGINT and waits (bounded) for a clean exit; returns what it printed after.
fn interrupt(mut guard: KillOnDrop, mut out: BufReader<std::process::ChildStdout>) -> String {
    let mut child = guard.0.take().expect("running");
    let ok = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("example did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "exit status {status}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    rest
}

#[test]
fn echo_server_serves_then_stops_on_ctrl_c() {
    let (child, addr, out) = start("echo_server");
    let mut s = connect(addr);
    assert_eq!(echo_round_trip(&mut s, b"hello"), b"hello");
    assert!(interrupt(child, out).contains("stopped"));
}

#[test]
fn quick_start_says_hello_and_closes() {
    let (child, addr, out) = start("quick_start");
    for _ in 0..3 {
        let mut s = connect(addr);
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "Hello, kingpin!\n");
    }
    assert!(interrupt(child, out).contains("stopped"));
}

/// One address holding a partial request on more connections than the server has
/// descriptors (slowloris) cannot make http_server unreachable for others: past its
/// per-address limit, its connections are refused, and another address is answered at once.
#[test]
fn http_server_stays_reachable_while_one_address_squats() {
    // 400 descriptors, 600 squatters: without the per-address limit they take them all.
    let (child, addr, out) = start_with("http_server", Some(400));
    let squat: Vec<_> = (0..600)
        .map(|_| {
            let mut s = connect(addr);
            let _ = s.write_all(b"GET / HT");
            s
        })
        .collect();
    let mut other = connect_from("127.0.0.3".parse().unwrap(), addr);
    other.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    other.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    let _ = other.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "another address got {reply:?} while one squatted");
    assert!(reply.ends_with("Hello, kingpin!"), "{reply:?}");
    drop(squat);
    assert!(interrupt(child, out).contains("stopped"));
}
