//! The example binaries as a user runs them: they print where they listen, serve, and stop
//! cleanly on Ctrl+C (SIGINT); a startup error (busy port, bad argument, bad `KINGPIN_LOG`) is
//! one plain line and a failing status; the crawler gives up on a silent server and sums up
//! on Ctrl+C; the demo's verdict never contradicts itself.

mod util;

#[path = "util/bin.rs"]
mod bin;
#[path = "util/silent.rs"]
mod silent;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bin::{example, wait_bounded, KillOnDrop};
use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig, ServerHandle};
use silent::SilentServer;
use util::{connect, connect_from, echo_round_trip};

/// The longest any example run here may take before the test kills it and fails.
const RUN_BOUND: Duration = Duration::from_secs(60);

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

/// Sends SIGINT to the child.
fn send_sigint(child: &Child) {
    let ok = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success();
    assert!(ok);
}

/// Sends SIGINT and waits (bounded) for a clean exit; returns what it printed after.
fn interrupt(mut guard: KillOnDrop, mut out: BufReader<std::process::ChildStdout>) -> String {
    let mut child = guard.0.take().expect("running");
    send_sigint(&child);
    let status = wait_bounded(&mut child, Duration::from_secs(20), "example did not stop on SIGINT");
    assert!(status.success(), "exit status {status}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    rest
}

/// How a finished example run ended and what it printed.
#[derive(Debug)]
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Reads a pipe to its end on a thread of its own.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Runs example `name` with `args` (and `env`) to its end, at most [`RUN_BOUND`].
fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut cmd = Command::new(example(name));
    cmd.args(args).env("KINGPIN_LOG", "warn").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = KillOnDrop(Some(cmd.spawn().unwrap()));
    let c = child.0.as_mut().unwrap();
    let (out, err) = (drain(c.stdout.take().unwrap()), drain(c.stderr.take().unwrap()));
    let status = wait_bounded(c, RUN_BOUND, &format!("{name} {args:?}"));
    child.0 = None;
    Ran { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// Answers every request `200 OK` with body `ok`, then closes.
struct Ok200;

impl IoHandler for Ok200 {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        if conn.input().find(b"\r\n\r\n").is_some() {
            conn.input().clear();
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            conn.close();
        }
    }
}

fn ok_server() -> ServerHandle<Ok200> {
    EpollTPServer::from_fn(ServerConfig::default().threads(1), || Ok200).start().unwrap()
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

/// A server started on a port that is taken says so in one line naming the address (no Rust
/// debug output), prints nothing else, and fails.
#[test]
fn a_server_on_a_busy_port_prints_one_line_and_fails() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for name in ["echo_server", "http_server", "quick_start"] {
        let ran = run(name, &["--addr", &addr, "--threads", "1"], &[]);
        assert!(!ran.status.success(), "{name}: {ran:?}");
        assert_eq!(ran.stderr, format!("{name}: cannot listen on {addr}: address already in use\n"), "{name}");
        assert_eq!(ran.stdout, "", "{name}");
    }
}

/// `--threads 0` is a usage error, not a silent 1.
#[test]
fn zero_threads_is_refused() {
    let refused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{refused}/");
    for (name, args) in [
        ("echo_server", vec!["--addr", "127.0.0.1:0"]),
        ("http_server", vec!["--addr", "127.0.0.1:0"]),
        ("quick_start", vec!["--addr", "127.0.0.1:0"]),
        ("crawler", vec![url.as_str()]),
        ("demo", vec!["--connections", "1", "--seconds", "0.1"]),
    ] {
        let ran = run(name, &[&args[..], &["--threads", "0"]].concat(), &[]);
        assert_eq!(ran.status.code(), Some(2), "{name}: {ran:?}");
        assert!(ran.stderr.contains("invalid value '0' for '--threads"), "{name}: {}", ran.stderr);
        assert!(ran.stderr.contains("must be at least 1"), "{name}: {}", ran.stderr);
        assert_eq!(ran.stdout, "", "{name}");
    }
}

/// `KINGPIN_LOG` set to something that is not a level stops the example with one line naming
/// the value and the valid ones, instead of logging at `info` as if nothing were wrong.
#[test]
fn an_unknown_log_level_is_refused() {
    let refused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{refused}/");
    for (name, args) in [
        ("echo_server", vec!["--addr", "127.0.0.1:0"]),
        ("http_server", vec!["--addr", "127.0.0.1:0"]),
        ("quick_start", vec!["--addr", "127.0.0.1:0"]),
        ("crawler", vec![url.as_str()]),
    ] {
        let ran = run(name, &args, &[("KINGPIN_LOG", "verbose")]);
        assert!(!ran.status.success(), "{name}: {ran:?}");
        assert_eq!(
            ran.stderr,
            format!(
                "{name}: KINGPIN_LOG=\"verbose\" is not a log level (use one of: off, error, warn, info, debug, trace)\n"
            )
        );
    }
}

/// The demo's verdict comes from what its clients read back, so it is "matched" every time
/// (it used to read the server's byte counter before it caught up, and print "FAILED, 0
/// messages differed"); with more client threads than connections, the spare threads are not
/// started (they had nothing to wait on and spun).
#[test]
fn demo_verifies_every_run_without_contradiction() {
    for run_no in 0..5 {
        let ran = run("demo", &["--connections", "3", "--seconds", "1"], &[]);
        assert!(ran.status.success(), "run {run_no}: {ran:?}");
        assert!(ran.stdout.contains("from 3 client threads"), "run {run_no}: {}", ran.stdout);
        assert!(ran.stdout.contains("verified    : every echoed byte matched"), "run {run_no}: {}", ran.stdout);
        assert!(!ran.stdout.contains("FAILED"), "run {run_no}: {}", ran.stdout);
    }
}

/// A server that accepts and never answers fails its URL once `--idle-timeout` passes; the
/// other URL is fetched, and the status and summary say one failed.
#[test]
fn crawler_gives_up_on_a_silent_server_and_goes_on() {
    let server = ok_server();
    let silent = SilentServer::start();
    let (good, mute) = (format!("http://{}/", server.local_addr()), format!("http://{}/", silent.addr()));
    let started = Instant::now();
    let ran = run("crawler", &["--idle-timeout", "0.5", &mute, &good], &[]);
    assert!(started.elapsed() < RUN_BOUND);
    assert_eq!(ran.status.code(), Some(1), "{ran:?}");
    let line = |url: &str| ran.stdout.lines().find(|l| l.contains(url)).unwrap_or_else(|| panic!("{}", ran.stdout));
    assert!(line(&mute).contains("timed out before a response: the server sent nothing for 500ms"), "{}", ran.stdout);
    assert!(line(&good).starts_with("HTTP/1.1 200 OK"), "{}", ran.stdout);
    assert!(ran.stdout.ends_with("1 fetched (1 with a 2xx status), 1 failed\n"), "{}", ran.stdout);
}

/// Ctrl+C stops a crawl held by a silent server: the crawler prints what finished and what did
/// not, and exits 130.
#[test]
fn crawler_sums_up_on_ctrl_c() {
    let server = ok_server();
    let silent = SilentServer::start();
    let (good, mute) = (format!("http://{}/", server.local_addr()), format!("http://{}/", silent.addr()));
    let mut cmd = Command::new(example("crawler"));
    // The default idle timeout (30 s): only Ctrl+C ends this crawl in time.
    cmd.args([&mute, &good]).env("KINGPIN_LOG", "warn").stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child = KillOnDrop(Some(cmd.spawn().unwrap()));
    let out = BufReader::new(child.0.as_mut().unwrap().stdout.take().unwrap());
    let (tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    while !printed.iter().any(|l: &String| l.contains(&good)) {
        match lines.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => printed.push(line),
            Err(_) => panic!("the crawler did not report {good}: {printed:?}"),
        }
    }
    silent.wait_accepted(1, Duration::from_secs(20));
    let mut c = child.0.take().unwrap();
    send_sigint(&c);
    let status = wait_bounded(&mut c, Duration::from_secs(20), "the crawler did not stop on SIGINT");
    assert_eq!((status.code(), status.signal()), (Some(130), None), "{status}");
    reader.join().unwrap();
    printed.extend(lines.try_iter());
    assert_eq!(
        printed.last().map(String::as_str),
        Some("interrupted: 1 fetched (1 with a 2xx status), 0 failed, 1 not finished"),
        "{printed:?}"
    );
    assert!(!printed.iter().any(|l| l.contains(&mute)), "the cut URL is not reported as failed: {printed:?}");
}
