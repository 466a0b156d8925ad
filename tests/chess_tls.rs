//! The chinese_chess_game binaries over TLS: `stress --tls` plays every game (with TLS
//! flooders beside them), `play --tls` plays against an opponent speaking TLS, a client that
//! does not trust the server's certificate is refused with one clear line, and a plaintext
//! client or one that never starts its handshake is closed while the server serves on. Every
//! wait is bounded; a child left behind is killed.

#[path = "util/bin.rs"]
mod bin;
mod util;

#[path = "../examples/common/tls.rs"]
mod tls_config;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bin::{example, wait_bounded, KillOnDrop};
use parking_lot::Mutex;

/// How long any child may take to print what is awaited, or to exit.
const WAIT: Duration = Duration::from_secs(20);

/// The example binary, built once for the whole test run.
fn exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| example("chinese_chess_game"))
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
            assert!(Instant::now() < deadline, "{want:?} not printed within {WAIT:?}; printed:\n{text}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A TLS server on a free port with a self-signed certificate, and where that certificate is.
struct Server {
    child: KillOnDrop,
    addr: SocketAddr,
    cert: PathBuf,
    out: Captured,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("chess-cert.pem");
        let mut child = KillOnDrop(Some(
            Command::new(exe())
                .args(["server", "--addr", "127.0.0.1:0", "--threads", "2", "--self-signed"])
                .arg(&cert)
                .args(extra)
                .env("KINGPIN_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        let mut out = BufReader::new(child.0.as_mut().and_then(|c| c.stdout.take()).unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.contains("over TLS"), "{line:?}");
        let addr = line.split_whitespace().find_map(|w| w.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
        let out = Captured::collect(out);
        out.wait_for(0, &format!("clients trust it with: --tls --ca-file {}", cert.display()));
        Server { child, addr, cert, out, _dir: dir }
    }

    fn cert(&self) -> &str {
        self.cert.to_str().unwrap()
    }

    fn assert_running(&mut self) {
        let status = self.child.0.as_mut().unwrap().try_wait().unwrap();
        assert!(status.is_none(), "the server exited: {status:?}; it printed:\n{}", self.out.text());
    }
}

/// Runs the example with `args` and no input to its end (bounded); its status, stdout, stderr.
fn run(args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = Command::new(exe())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let status = wait_bounded(&mut child, Duration::from_secs(60), "chinese_chess_game");
    (status, out.join().unwrap(), err.join().unwrap())
}

/// A certificate the server does not have, as a PEM file in `dir`.
fn wrong_certificate(dir: &Path) -> String {
    let (_, pem) = tls_config::self_signed(&[]).unwrap();
    let path = dir.join("wrong.pem");
    std::fs::write(&path, pem).unwrap();
    path.to_str().unwrap().to_string()
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// An opponent speaking TLS on a raw connection.
struct Opponent(BufReader<TlsStream>);

impl Opponent {
    fn hello(server: &Server) -> Opponent {
        let pem = std::fs::read_to_string(&server.cert).unwrap();
        let config = tls_config::client_config(&pem, &[]).unwrap();
        let session = rustls::ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
        let mut me = Opponent(BufReader::new(rustls::StreamOwned::new(session, util::connect(server.addr))));
        me.expect("WELCOME kingpin-chess");
        me.send("HELLO kingpin-chess");
        me
    }

    fn send(&mut self, line: &str) {
        let s = self.0.get_mut();
        s.write_all(format!("{line}\n").as_bytes()).and_then(|()| s.flush()).unwrap();
    }

    fn expect(&mut self, want: &str) {
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        assert_eq!(line.trim_end(), want);
    }
}

#[test]
fn stress_over_tls_plays_every_game_with_tls_flooders_beside() {
    let mut server = Server::start(&[]);
    let addr = server.addr;
    let args = format!(
        "stress --addr {addr} --tls --ca-file {} --connections 20 --moves 6 --threads 1 --flooders 2 --timeout 30",
        server.cert()
    );
    let (status, out, err) = run(&args.split(' ').collect::<Vec<_>>());
    eprintln!("{out}");
    assert!(status.success(), "{status}: {out}{err}");
    assert!(out.contains("over TLS"), "{out}");
    assert!(out.contains("connections      20 (20 connected"), "{out}");
    assert!(out.contains("games completed  10\n"), "{out}");
    assert!(out.contains("errors           0"), "{out}");
    // The flooders got through the handshake to the line limits: closed with BYE each time.
    let flood = out.lines().find(|l| l.starts_with("flood")).unwrap_or_else(|| panic!("no flood line: {out}"));
    assert!(flood.contains("with BYE") && !flood.contains("never closed"), "{flood}");
    let closed: u64 =
        flood.split(" the server closed ").nth(1).and_then(|t| t.split(' ').next()?.parse().ok()).unwrap();
    assert!(closed >= 2, "{flood}");
    server.assert_running();
}

#[test]
fn play_over_tls_against_an_opponent_over_tls() {
    let server = Server::start(&[]);
    let mut child = Command::new(exe())
        .args(["play", "--addr", &server.addr.to_string(), "--no-colour", "--tls", "--ca-file", server.cert()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut keys = child.stdin.take().unwrap();
    let out = Captured::collect(child.stdout.take().unwrap());
    let err = Captured::collect(child.stderr.take().unwrap());
    let mut child = KillOnDrop(Some(child));
    let mut at = out.wait_for(0, "Waiting for an opponent");

    let mut black = Opponent::hello(&server);
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

    keys.write_all(b"quit\nquit\n").unwrap();
    let status = wait_bounded(child.0.as_mut().unwrap(), WAIT, "play after quit");
    assert_eq!(status.code(), Some(0), "{}{}", out.text(), err.text());
    out.wait_for(at, "You left the game: it counts as a loss.");
    black.expect("END black opponent_left");
    // Then the server's close_notify: a clean end of stream.
    let mut rest = String::new();
    assert_eq!(black.0.read_line(&mut rest).unwrap(), 0, "{rest:?}");
}

#[test]
fn clients_that_do_not_trust_the_certificate_are_refused_with_one_line() {
    let mut server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let wrong = wrong_certificate(dir.path());
    let addr = server.addr.to_string();

    let (status, out, err) = run(&["play", "--addr", &addr, "--tls", "--ca-file", &wrong]);
    assert_eq!(status.code(), Some(1), "{out}{err}");
    assert!(out.is_empty(), "play drew before its handshake: {out}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let failed = format!("chinese_chess_game: TLS handshake with the chess server at {addr} failed: invalid peer");
    assert!(err.starts_with(&failed) && err.contains("--ca-file"), "{err}");

    let (status, out, err) = run(&["stress", "--addr", &addr, "--tls", "--ca-file", &wrong, "--connections", "2"]);
    assert_eq!(status.code(), Some(2), "{out}{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let failed = format!("chinese_chess_game: cannot play with the chess server at {addr}: TLS handshake");
    assert!(err.starts_with(&failed) && err.contains("invalid peer certificate"), "{err}");
    assert!(err.contains("--ca-file") && !err.contains("start one with"), "{err}");

    let (status, _, err) =
        run(&["play", "--addr", &addr, "--tls", "--ca-file", server.cert(), "--tls-name", "x.example"]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("not valid for name \"x.example\"") && err.contains("--tls-name"), "{err}");

    // Flags that need one another.
    let (status, _, err) = run(&["play", "--addr", &addr, "--tls"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--ca-file"), "{err}");
    let (status, _, err) = run(&["server", "--addr", "127.0.0.1:0", "--tls-cert", server.cert()]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--tls-key"), "{err}");
    server.assert_running();
}

#[test]
fn plaintext_and_silent_clients_are_closed_and_the_server_serves_on() {
    let mut server = Server::start(&["--hello-timeout", "0.5"]);

    // A plaintext player: its HELLO is no TLS handshake. The server answers at most an alert,
    // never a line, and closes.
    let mut plain = util::connect(server.addr);
    plain.write_all(b"HELLO kingpin-chess\n").unwrap();
    let mut got = Vec::new();
    match plain.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close a plaintext client: {e}"),
    }
    assert!(!String::from_utf8_lossy(&got).contains("WELCOME"), "{got:?}");

    // One that never starts its handshake is closed at the hello timeout.
    let t = Instant::now();
    let mut silent = util::connect(server.addr);
    let mut got = Vec::new();
    silent.read_to_end(&mut got).expect("closed at the hello timeout");
    let waited = t.elapsed();
    assert!(got.is_empty() && waited >= Duration::from_millis(400) && waited < Duration::from_secs(10), "{waited:?}");

    // A plaintext `play` (its keyboard open): the server goes away from it.
    let mut child = Command::new(exe())
        .args(["play", "--addr", &server.addr.to_string(), "--no-colour"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _keys = child.stdin.take().unwrap();
    let out = Captured::collect(child.stdout.take().unwrap());
    let mut child = KillOnDrop(Some(child));
    let status = wait_bounded(child.0.as_mut().unwrap(), WAIT, "a plaintext play");
    assert_eq!(status.code(), Some(1), "{}", out.text());
    out.wait_for(0, "The server went away");

    server.assert_running();
    let args = format!("stress --addr {} --tls --ca-file {} --connections 4 --moves 4", server.addr, server.cert());
    let (status, out, err) = run(&args.split(' ').collect::<Vec<_>>());
    assert!(status.success() && out.contains("errors           0"), "{out}{err}");
    // The status line counts the failed handshakes (it is printed every 5 s).
    server.out.wait_for(0, "3 failed TLS handshakes");
}
