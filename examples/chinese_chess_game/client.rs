//! The terminal client for a human player: a blocking `TcpStream`, a thread reading the
//! server's lines and one reading the keyboard, both feeding one event loop that hands them to
//! the [`Ui`] (`ui.rs`) and prints what it shows. A tick each second moves the countdown of
//! the move clock while the player is not typing.
//!
//! Over TLS (`--tls`) the handshake is done first, bounded, so that an untrusted certificate
//! is one clear error before anything is drawn; then one thread owns the rustls stream: it
//! writes what the player typed (handed over through a channel) and reads the server's lines,
//! waking every [`TLS_POLL`] to look for something to write (a rustls session cannot be split
//! between a reading and a writing thread the way a socket can).
//!
//! The server is the referee; the client checks moves with `rules.rs` too, so that a slip is
//! explained at once and never counts against the player's refused lines.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

use crate::cli::describe;
use crate::protocol::{Reply, Request};
use crate::stress::{tls_hint, TlsClient};
use crate::ui::{Action, Outcome, Ui};
use crate::START_SERVER;

/// The longest a connect, or a TLS handshake, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Over TLS, how long the network thread waits for the server before it looks for a line
/// the player typed: the most a move waits before it is sent.
const TLS_POLL: Duration = Duration::from_millis(20);

/// A TLS connection to the server.
type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// What the event loop waits for.
enum Event {
    Server(String),
    ServerGone(String),
    Key(String),
    KeysClosed,
}

/// Plays one game against whoever the server pairs us with; returns how the session ended
/// when the game is over, the player quits, or the connection ends.
///
/// # Errors
/// When the server cannot be reached, the TLS handshake fails (an untrusted certificate, a
/// server that does not speak TLS), or the terminal cannot be written.
pub fn play(addr: SocketAddr, colour: bool, tls: Option<&TlsClient>) -> io::Result<Outcome> {
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| {
        let why = format!("cannot reach the chess server at {addr}: {} (start one with: {START_SERVER})", describe(&e));
        io::Error::new(e.kind(), why)
    })?;
    stream.set_nodelay(true)?;
    let (tx, rx) = mpsc::channel();
    let net = tx.clone();
    let mut writer: Box<dyn Write> = match tls {
        None => {
            let writer = stream.try_clone()?;
            std::thread::spawn(move || read_plain(stream, &net));
            Box::new(writer)
        }
        Some(tls) => {
            let stream = handshake(stream, tls, addr)?;
            let (lines, typed) = mpsc::channel();
            std::thread::spawn(move || tls_link(stream, &typed, &net));
            Box::new(Typed(lines))
        }
    };
    writeln!(writer, "{}", Request::Hello)?;
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(Event::Key(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Event::KeysClosed);
    });
    let colour = std::env::var_os("NO_COLOR").is_none() && colour;
    let mut ui = Ui::new(colour);
    let mut out = io::stdout();
    write!(out, "{}", ui.screen(Instant::now()))?;
    out.flush()?;
    loop {
        let event = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => {
                if let Some(text) = ui.tick(Instant::now()) {
                    write!(out, "{text}")?;
                    out.flush()?;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match event {
            Event::Server(line) => match Reply::parse(&line) {
                Some(reply) => ui.server(reply, Instant::now()),
                None => ui.unexpected(&line),
            },
            Event::ServerGone(why) => {
                ui.server_gone(&why);
                break;
            }
            Event::Key(line) => match ui.key(&line) {
                Action::Send(req) => writeln!(writer, "{req}")?,
                Action::Nothing => {}
                Action::Leave => break,
            },
            Event::KeysClosed => {
                ui.outcome.get_or_insert(Outcome::Quit);
                break;
            }
        }
        write!(out, "{}", ui.screen(Instant::now()))?;
        out.flush()?;
    }
    write!(out, "{}", ui.screen(Instant::now()))?;
    let outcome = ui.outcome.unwrap_or(Outcome::Quit);
    match outcome {
        Outcome::Quit if ui.left_a_game() => writeln!(out, "\nYou left the game: it counts as a loss. Bye.")?,
        Outcome::Quit => writeln!(out, "\nBye.")?,
        _ => writeln!(out)?,
    }
    out.flush()?;
    Ok(outcome)
}

/// Hands the server's lines to the event loop until the connection ends (plain TCP).
fn read_plain(stream: TcpStream, net: &Sender<Event>) {
    for line in BufReader::new(stream).lines() {
        match line {
            Ok(line) => {
                if net.send(Event::Server(line)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = net.send(Event::ServerGone(e.to_string()));
                return;
            }
        }
    }
    let _ = net.send(Event::ServerGone("the server closed the connection".into()));
}

/// Makes the TLS session and completes its handshake, within [`CONNECT_TIMEOUT`].
fn handshake(mut tcp: TcpStream, tls: &TlsClient, addr: SocketAddr) -> io::Result<TlsStream> {
    let failed = |e: io::Error| {
        let why = match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!("no answer within {CONNECT_TIMEOUT:?}"),
            io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
            _ => describe(&e),
        };
        let hint = tls_hint(&why);
        io::Error::new(e.kind(), format!("TLS handshake with the chess server at {addr} failed: {why}{hint}"))
    };
    let mut session = tls.session()?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while session.is_handshaking() {
        // Each read and write gets what is left of the time.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(failed(io::ErrorKind::TimedOut.into()));
        }
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        session.complete_io(&mut tcp).map_err(failed)?;
    }
    // From now on the network thread wakes up often to send what the player typed; a write
    // blocks as long as the server does not read, as on a plain connection.
    tcp.set_read_timeout(Some(TLS_POLL))?;
    tcp.set_write_timeout(None)?;
    Ok(rustls::StreamOwned::new(session, tcp))
}

/// What the event loop writes, over TLS: handed to the network thread, which owns the session.
struct Typed(Sender<Vec<u8>>);

impl Write for Typed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.send(buf.to_vec()) {
            Ok(()) => Ok(buf.len()),
            Err(_) => Err(io::Error::new(io::ErrorKind::BrokenPipe, "the connection to the server is closed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The network thread over TLS: writes what the player typed, hands the server's lines to the
/// event loop, and says why the connection ended. When the event loop is gone, it says
/// `close_notify` and returns.
fn tls_link(mut stream: TlsStream, typed: &Receiver<Vec<u8>>, net: &Sender<Event>) {
    let gone = |why: String| {
        let _ = net.send(Event::ServerGone(why));
    };
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        loop {
            match typed.try_recv() {
                Ok(bytes) => {
                    if let Err(e) = stream.write_all(&bytes).and_then(|()| stream.flush()) {
                        return gone(e.to_string());
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    stream.conn.send_close_notify();
                    let _ = stream.flush();
                    return;
                }
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => return gone("the server closed the connection".into()),
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let mut line: Vec<u8> = pending.drain(..=end).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    let Ok(line) = String::from_utf8(line) else {
                        return gone("the server sent a line that is not UTF-8".into());
                    };
                    if net.send(Event::Server(line)).is_err() {
                        return;
                    }
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The connection ended without the server's close_notify.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return gone("the server closed the connection".into());
            }
            Err(e) => return gone(e.to_string()),
        }
    }
}
