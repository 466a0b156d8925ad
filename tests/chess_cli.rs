//! The chinese_chess_game binary as a user runs it: startup errors are one plain line and a
//! non-zero exit; `play` driven through pipes against a real server — typing while waiting,
//! a capture announced, `quit` asking first, the legend without colour — and its exit status
//! when the server goes away. Every wait is bounded; a child left behind is killed.

#[path = "util/bin.rs"]
mod bin;
mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bin::example;
use parking_lot::Mutex;

/// How long any child may take to print what is awaited, or to exit.
const WAIT: Duration = Duration::from_secs(20);

/// Kills the child if a test fails before it exits, so none outlives its test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl KillOnDrop {
    /// Waits (bounded) for the child to exit.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the child did not exit within {WAIT:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Everything a child printed on one stream so far, collected by a thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn collect(mut from: impl Read + Send + 'static) -> Captured {
        let c = Captured::default();
        let into = c.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                into.0.lock().extend_from_slice(&buf[..n]);
            }
        });
        c
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }

    /// Waits (bounded) until `want` has been printed after byte `from`; returns where it ends.
    fn wait_for(&self, from: usize, want: &str) -> usize {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text();
            if let Some(i) = text.get(from..).and_then(|t| t.find(want)) {
                return from + i + want.len();
            }
            assert!(
                Instant::now() < deadline,
                "{want:?} not printed within {WAIT:?}; printed:\n{}",
                &text[from.min(text.len())..]
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Runs the example with `args` and no input; returns its exit status and stderr.
fn run(args: &[&str]) -> (ExitStatus, String) {
    let child = Command::new(example("chinese_chess_game"))
        .args(args)
        .env("KINGPIN_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let err = Captured::collect(child.0.stderr.take().unwrap());
    let status = child.wait();
    std::thread::sleep(Duration::from_millis(50)); // let the collector take the last bytes
    (status, err.text())
}

/// A free loopback port: bound, then released.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn startup_errors_are_one_plain_line_and_a_non_zero_exit() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let (status, err) = run(&["server", "--addr", &addr.to_string(), "--threads", "1"]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err, format!("chinese_chess_game: cannot listen on {addr}: address already in use\n"));

    let (status, err) = run(&["server", "--addr", "127.0.0.1:0", "--threads", "0"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("invalid value '0' for '--threads") && err.contains("must be at least 1"), "{err}");
    let (status, err) = run(&["server", "--addr", "127.0.0.1:0", "--move-time", "0"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("must be more than 0 seconds"), "{err}");

    let nobody = format!("127.0.0.1:{}", free_port());
    for args in [["play", "--addr", &nobody], ["stress", "--addr", &nobody]] {
        let (status, err) = run(&args);
        assert_ne!(status.code(), Some(0), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("chinese_chess_game: "), "{err}");
        assert!(err.contains(&nobody) && err.contains("refused"), "{err}");
        assert!(!err.contains("os error") && !err.contains("Os {") && !err.contains("panicked"), "{err}");
    }
}

/// The example's server on a free port; returns it and its address.
fn server() -> (KillOnDrop, SocketAddr) {
    let child = Command::new(example("chinese_chess_game"))
        .args(["server", "--addr", "127.0.0.1:0", "--threads", "1"])
        .env("KINGPIN_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line.split_whitespace().find_map(|w| w.parse().ok()).unwrap_or_else(|| panic!("no address in {line:?}"));
    Captured::collect(out); // keep draining its status lines
    (child, addr)
}

/// `play` against `addr`, without colour, through pipes.
fn player(addr: SocketAddr) -> (KillOnDrop, ChildStdin, Captured) {
    let child = Command::new(example("chinese_chess_game"))
        .args(["play", "--addr", &addr.to_string(), "--no-colour"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdin = child.0.stdin.take().unwrap();
    let out = Captured::collect(child.0.stdout.take().unwrap());
    (child, stdin, out)
}

/// An opponent on a raw socket.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn hello(addr: SocketAddr) -> Raw {
        let s = util::connect(addr);
        let mut raw = Raw { writer: s.try_clone().unwrap(), reader: BufReader::new(s) };
        raw.expect("WELCOME kingpin-chess");
        raw.send("HELLO kingpin-chess");
        raw
    }

    fn send(&mut self, line: &str) {
        self.writer.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    fn expect(&mut self, want: &str) {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert_eq!(line.trim_end(), want);
    }
}

#[test]
fn play_through_pipes_a_capture_and_a_confirmed_quit() {
    let (_server, addr) = server();
    let (mut child, mut keys, out) = player(addr);
    let mut at = out.wait_for(0, "Waiting for an opponent");
    let legend = out.text();
    assert!(legend.contains("red   (simplified):") && legend.contains("black (traditional):"), "{legend}");

    keys.write_all(b"h2 e2\n").unwrap();
    at = out.wait_for(at, "You are waiting for an opponent: the game has not started yet.");

    let mut black = Raw::hello(addr);
    black.expect("START black");
    black.expect("TURN red 30000");
    at = out.wait_for(at, "From: ");
    keys.write_all(b"b2 b9\n").unwrap();
    black.expect("MOVE b2 b9");
    black.expect("TURN black 60000");
    at = out.wait_for(at, "You moved b2 b9: cannon takes horse.");
    black.send("MOVE h9 g7");
    black.expect("OK");
    black.expect("TURN red 60000");
    at = out.wait_for(at, "Your opponent moved h9 g7 (horse).");

    keys.write_all(b"quit\n").unwrap();
    at = out.wait_for(at, "Quitting now forfeits the game: your opponent wins.");
    assert!(child.0.try_wait().unwrap().is_none(), "quit must ask first");
    keys.write_all(b"quit\n").unwrap();
    assert_eq!(child.wait().code(), Some(0));
    out.wait_for(at, "You left the game: it counts as a loss.");
    black.expect("END black opponent_left");
}

#[test]
fn play_exits_non_zero_when_the_server_goes_away() {
    let (mut server, addr) = server();
    let (mut child, _keys, out) = player(addr);
    out.wait_for(0, "Waiting for an opponent");
    let _ = server.0.kill();
    let _ = server.0.wait();
    assert_eq!(child.wait().code(), Some(1), "{}", out.text());
    out.wait_for(0, "The server went away");
}
