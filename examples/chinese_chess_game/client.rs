//! The terminal client for a human player: a blocking `TcpStream`, a thread reading the
//! server's lines and one reading the keyboard, both feeding one event loop that hands them to
//! the [`Ui`] (`ui.rs`) and prints what it shows. A tick each second moves the countdown of
//! the move clock while the player is not typing.
//!
//! The server is the referee; the client checks moves with `rules.rs` too, so that a slip is
//! explained at once and never counts against the player's refused lines.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::cli::describe;
use crate::protocol::{Reply, Request};
use crate::ui::{Action, Outcome, Ui};
use crate::START_SERVER;

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
/// When the server cannot be reached, or the terminal cannot be written.
pub fn play(addr: SocketAddr, colour: bool) -> io::Result<Outcome> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| {
        let why = format!("cannot reach the chess server at {addr}: {} (start one with: {START_SERVER})", describe(&e));
        io::Error::new(e.kind(), why)
    })?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    writeln!(writer, "{}", Request::Hello)?;
    let (tx, rx) = mpsc::channel();
    let net = tx.clone();
    std::thread::spawn(move || {
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
    });
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
