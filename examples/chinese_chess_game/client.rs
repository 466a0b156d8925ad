//! The terminal client for a human player: a blocking `TcpStream`, a thread reading the
//! server's lines and one reading the keyboard, both feeding one event loop that keeps the
//! board, redraws it, and asks "From: " then "To: " when it is the player's turn.
//!
//! The server is the referee: the client only checks that what is typed looks like a square,
//! and shows the server's `ERR` lines as they come.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use crate::board::{Board, Move, Side, Square};
use crate::protocol::{EndReason, Reply, Request};
use crate::view::{render, CLEAR};

/// What the event loop waits for.
enum Event {
    Server(String),
    ServerGone(String),
    Key(String),
    KeysClosed,
}

/// Where the player stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    From,
    To(Square),
    Sent(Move),
    TheirTurn,
    Over,
}

/// The client's state: the board as the server told it, and what to show.
struct Ui {
    board: Board,
    side: Option<Side>,
    phase: Phase,
    last: Option<Move>,
    notes: Vec<String>,
    colour: bool,
}

impl Ui {
    fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
        let excess = self.notes.len().saturating_sub(4);
        self.notes.drain(..excess);
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Clears the screen and draws the board, the notes, whose turn it is and the prompt.
    fn redraw(&self) {
        let me = self.side.unwrap_or(Side::Red);
        let mut screen = format!("{CLEAR}kingpin xiangqi");
        if let Some(side) = self.side {
            screen +=
                &format!(" — you play {}", self.paint(if side == Side::Red { "1;31" } else { "1;94" }, side.name()));
        }
        screen += &format!("\n\n{}\n", render(&self.board, me, self.last, self.colour));
        for n in &self.notes {
            screen += &format!("  {n}\n");
        }
        let turn = self.board.turn();
        screen += &match self.phase {
            Phase::Waiting => "\nWaiting for an opponent…\n".to_string(),
            Phase::TheirTurn | Phase::Sent(_) => format!("\nWaiting for {turn} to move…\n"),
            Phase::Over => "\nGame over.\n".to_string(),
            Phase::From => format!("\nYour move ({turn}); type squares like h2, or resign / quit.\nFrom: "),
            Phase::To(from) => format!("\nYour move ({turn}) from {from}.\nTo: "),
        };
        print!("{screen}");
        let _ = io::stdout().flush();
    }

    /// Updates the board and the notes for one server line.
    fn server(&mut self, reply: Reply) {
        match reply {
            Reply::Welcome => self.note("Connected."),
            Reply::Wait => self.phase = Phase::Waiting,
            Reply::Start(side) => {
                self.side = Some(side);
                self.board = Board::initial();
                self.note(format!("The game begins: you play {side}. Red moves first."));
                self.phase = if side == Side::Red { Phase::From } else { Phase::TheirTurn };
            }
            Reply::Move(mv) => {
                self.board.apply(mv);
                self.last = Some(mv);
                self.note(format!("Your opponent moved {mv}."));
                self.phase = Phase::From;
            }
            Reply::Ok => {
                if let Phase::Sent(mv) = self.phase {
                    self.board.apply(mv);
                    self.last = Some(mv);
                    self.note(format!("You moved {mv}."));
                }
                self.phase = Phase::TheirTurn;
            }
            Reply::Err(_, text) => {
                let line = self.paint("1;33", &format!("Server: {text}"));
                self.note(line);
                if matches!(self.phase, Phase::Sent(_)) {
                    self.phase = Phase::From;
                }
            }
            Reply::Check => {
                let who = if Some(self.board.turn()) == self.side { "You are" } else { "Your opponent is" };
                self.note(self.paint("1;35", &format!("Check! {who} in check.")));
            }
            Reply::End(winner, reason) => {
                let you = if Some(winner) == self.side { "You win" } else { "You lose" };
                let why = match reason {
                    EndReason::Checkmate => "checkmate",
                    EndReason::Stalemate => "stalemate (no legal move)",
                    EndReason::Resign => "resignation",
                    EndReason::OpponentLeft => "your opponent left the game",
                };
                self.note(self.paint("1", &format!("{you}: {why}.")));
                self.phase = Phase::Over;
            }
        }
    }

    /// Handles one typed line; returns a request to send, or `Err(())` to quit.
    fn key(&mut self, line: &str) -> Result<Option<Request>, ()> {
        let line = line.trim();
        match line {
            "quit" | "q" | "exit" => return Err(()),
            "resign" if self.side.is_some() && self.phase != Phase::Over => return Ok(Some(Request::Resign)),
            "" => return Ok(None),
            _ => {}
        }
        let to_sq = |s: &str| Square::parse(s).ok_or(());
        match self.phase {
            Phase::From => match (Move::parse(line), to_sq(line)) {
                (Some(mv), _) => return Ok(Some(self.send_move(mv))),
                (None, Ok(from)) => self.phase = Phase::To(from),
                (None, Err(())) => self.note(format!("{line:?} is not a square: a file a–i then a rank 0–9, e.g. h2")),
            },
            Phase::To(from) => match to_sq(line) {
                Ok(to) => return Ok(Some(self.send_move(Move { from, to }))),
                Err(()) => self.note(format!("{line:?} is not a square: a file a–i then a rank 0–9, e.g. e2")),
            },
            Phase::Over => return Err(()),
            _ => self.note("It is not your turn."),
        }
        Ok(None)
    }

    fn send_move(&mut self, mv: Move) -> Request {
        self.phase = Phase::Sent(mv);
        Request::Move(mv)
    }
}

/// Plays one game against whoever the server pairs us with; returns when it is over, the
/// player quits, or the server goes away.
///
/// # Errors
/// When the server cannot be reached.
pub fn play(addr: SocketAddr, colour: bool) -> io::Result<()> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot reach the chess server at {addr}: {e}\n(start one with: cargo run --release --example chinese_chess_game -- server)"),
        )
    })?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
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
    let mut ui =
        Ui { board: Board::initial(), side: None, phase: Phase::Waiting, last: None, notes: Vec::new(), colour };
    ui.redraw();
    for event in rx {
        match event {
            Event::Server(line) => match Reply::parse(&line) {
                Some(reply) => ui.server(reply),
                None => ui.note(format!("Unexpected line from the server: {line:?}")),
            },
            Event::ServerGone(why) => {
                if ui.phase != Phase::Over {
                    ui.note(ui.paint("1;33", &format!("The server went away ({why}).")));
                    ui.phase = Phase::Over;
                }
                ui.redraw();
                println!();
                return Ok(());
            }
            Event::Key(line) => match ui.key(&line) {
                Ok(Some(req)) => writeln!(writer, "{req}")?,
                Ok(None) => {}
                Err(()) => break,
            },
            Event::KeysClosed => break,
        }
        ui.redraw();
    }
    println!("\nBye.");
    Ok(())
}
