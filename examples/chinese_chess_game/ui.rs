//! What the terminal client knows and shows, without any IO: the board as the server told it,
//! whose turn it is and until when, what happened lately, and what to ask the player. The
//! event loop in `client.rs` feeds it server lines, typed lines and clock ticks, and prints
//! the screens it returns; so every message a player sees is tested here.

use std::time::{Duration, Instant};

use crate::board::{Board, Move, Piece, Side, Square};
use crate::protocol::{ByeReason, EndReason, Reply, Request};
use crate::rules::check_move;
use crate::view::{legend, render, CLEAR};

/// Where the player stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connected; no `WAIT` or `START` yet.
    Connecting,
    Waiting,
    /// Our turn: asking for the square to move from.
    From,
    /// Our turn: asking for the square to move to.
    To(Square),
    /// Our move is on its way; the server has not answered.
    Sent(Move),
    TheirTurn,
    Over,
}

/// How the session ended, and the exit status it gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The game ended (won or lost) and the server said so.
    GameOver,
    /// The player left with `quit` (or closed the input).
    Quit,
    /// The connection ended before the game did.
    ServerGone,
    /// The server closed the connection with `BYE` (no opponent came, too many errors…).
    Dismissed,
}

impl Outcome {
    /// The process's exit status: 0 when the game or the player ended it, 1 otherwise.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::GameOver | Outcome::Quit => 0,
            Outcome::ServerGone | Outcome::Dismissed => 1,
        }
    }
}

/// What to do about a typed line.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Nothing,
    Send(Request),
    /// Leave: close the connection and exit.
    Leave,
}

/// A command that forfeits the game, typed once and waiting for confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Confirm {
    Quit,
    Resign,
}

/// The client's state.
pub struct Ui {
    board: Board,
    side: Option<Side>,
    pub phase: Phase,
    last: Option<Move>,
    /// The game's recent events, oldest first.
    log: Vec<String>,
    /// The answer to the last thing typed (a refusal, a question); gone with the next key.
    alert: Option<String>,
    confirm: Option<Confirm>,
    /// Who must move, and by when.
    clock: Option<(Side, Instant)>,
    /// Whether the "little time left" warning was printed for the current turn.
    warned: bool,
    pub outcome: Option<Outcome>,
    colour: bool,
}

/// Time left below which the player is warned once, even while typing.
const WARN_AT: Duration = Duration::from_secs(10);

impl Ui {
    pub fn new(colour: bool) -> Ui {
        Ui {
            board: Board::initial(),
            side: None,
            phase: Phase::Connecting,
            last: None,
            log: Vec::new(),
            alert: None,
            confirm: None,
            clock: None,
            warned: false,
            outcome: None,
            colour,
        }
    }

    fn note(&mut self, text: impl Into<String>) {
        self.log.push(text.into());
        let excess = self.log.len().saturating_sub(4);
        self.log.drain(..excess);
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn in_game(&self) -> bool {
        self.side.is_some() && self.phase != Phase::Over
    }

    /// Applies `mv` to the board and describes it: `b2 b9: cannon takes horse`.
    fn apply(&mut self, mv: Move, theirs: bool) -> String {
        let mover = self.board.get(mv.from);
        let taken = self.board.apply(mv);
        self.last = Some(mv);
        match (mover, taken) {
            (Some(m), Some(t)) => {
                let whose = if theirs { "your " } else { "" };
                format!("{mv}: {} takes {whose}{}", m.kind.name(), t.kind.name())
            }
            (Some(m), None) => format!("{mv} ({})", m.kind.name()),
            _ => mv.to_string(),
        }
    }

    /// Back to the state of a player waiting for an opponent.
    fn reset(&mut self) {
        self.board = Board::initial();
        self.side = None;
        self.last = None;
        self.clock = None;
        self.confirm = None;
        self.phase = Phase::Waiting;
    }

    /// Takes in one server line.
    pub fn server(&mut self, reply: Reply, now: Instant) {
        match reply {
            Reply::Welcome => self.note("Connected."),
            Reply::Wait => self.phase = Phase::Waiting,
            Reply::Requeue(reason) => {
                self.reset();
                let why = match reason {
                    EndReason::Time => "did not make the first move in time",
                    _ => "left before the first move",
                };
                self.note(format!("Your opponent {why}: looking for another opponent."));
            }
            Reply::Start(side) => {
                self.reset();
                self.side = Some(side);
                self.note(format!("The game begins: you play {side}. Red moves first."));
                self.phase = if side == Side::Red { Phase::From } else { Phase::TheirTurn };
            }
            Reply::Turn(side, ms) => {
                self.clock = Some((side, now + Duration::from_millis(ms)));
                self.warned = false;
            }
            Reply::Move(mv) => {
                let what = self.apply(mv, true);
                self.note(format!("Your opponent moved {what}."));
                self.alert = None;
                self.phase = Phase::From;
            }
            Reply::Ok => {
                if let Phase::Sent(mv) = self.phase {
                    let what = self.apply(mv, false);
                    self.note(format!("You moved {what}."));
                }
                self.alert = None;
                self.phase = Phase::TheirTurn;
            }
            Reply::Err(_, text) => {
                self.alert = Some(format!("The server refused that: {text}."));
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
                let why = match (reason, Some(winner) == self.side) {
                    (EndReason::Checkmate, _) => "checkmate",
                    (EndReason::Stalemate, _) => "stalemate (no legal move)",
                    (EndReason::Resign, true) => "your opponent resigned",
                    (EndReason::Resign, false) => "you resigned",
                    (EndReason::OpponentLeft, _) => "your opponent left the game",
                    (EndReason::Time, true) => "your opponent ran out of time",
                    (EndReason::Time, false) => "you ran out of time",
                };
                self.note(self.paint("1", &format!("{you}: {why}.")));
                self.finish(Outcome::GameOver);
            }
            Reply::Bye(reason) => {
                let why = match reason {
                    ByeReason::HelloTimeout => "this client did not greet it in time",
                    ByeReason::WaitTimeout => "no opponent came; try again later",
                    ByeReason::Errors => "too many lines were refused",
                    ByeReason::Flooding => "lines came faster than a person types",
                };
                self.note(self.paint("1;33", &format!("The server closed the connection: {why}.")));
                self.finish(Outcome::Dismissed);
            }
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        self.phase = Phase::Over;
        self.clock = None;
        self.confirm = None;
        self.alert = None;
        self.outcome.get_or_insert(outcome);
    }

    /// A line from the server that is not part of the protocol.
    pub fn unexpected(&mut self, line: &str) {
        self.note(format!("Unexpected line from the server: {line:?}"));
    }

    /// Whether the player is leaving a game that is still on (quitting forfeits it).
    pub fn left_a_game(&self) -> bool {
        self.in_game()
    }

    /// The connection ended (`why`); the session is over.
    pub fn server_gone(&mut self, why: &str) {
        if self.outcome.is_none() {
            self.note(self.paint("1;33", &format!("The server went away ({why}).")));
        }
        self.finish(Outcome::ServerGone);
    }

    /// Takes in one typed line.
    pub fn key(&mut self, line: &str) -> Action {
        let line = line.trim();
        self.alert = None;
        if let Some(asked) = self.confirm.take() {
            let word = if asked == Confirm::Quit { ["quit", "q", "exit"].as_slice() } else { &["resign"] };
            if word.contains(&line) || matches!(line, "y" | "yes") {
                return if asked == Confirm::Quit {
                    self.outcome = Some(Outcome::Quit);
                    Action::Leave
                } else {
                    Action::Send(Request::Resign)
                };
            }
            if line.is_empty() {
                self.alert = Some("Playing on.".into());
                return Action::Nothing;
            }
        }
        match line {
            "quit" | "q" | "exit" if self.in_game() => {
                self.confirm = Some(Confirm::Quit);
                self.alert = Some(
                    "Quitting now forfeits the game: your opponent wins. Type quit again to leave, \
                     or anything else to play on."
                        .into(),
                );
                return Action::Nothing;
            }
            "quit" | "q" | "exit" => {
                self.outcome.get_or_insert(Outcome::Quit);
                return Action::Leave;
            }
            "resign" if self.in_game() => {
                self.confirm = Some(Confirm::Resign);
                self.alert =
                    Some("Resign this game? Type resign again to confirm, or anything else to play on.".into());
                return Action::Nothing;
            }
            "resign" if self.phase != Phase::Over => {
                self.alert = Some("There is no game to resign yet.".into());
                return Action::Nothing;
            }
            "" => return Action::Nothing,
            _ => {}
        }
        let me = self.side.unwrap_or(Side::Red);
        match self.phase {
            Phase::Connecting | Phase::Waiting => {
                self.alert = Some("You are waiting for an opponent: the game has not started yet.".into());
            }
            Phase::From => match (Move::parse(line), Square::parse(line)) {
                (Some(mv), _) => return self.try_move(mv),
                (None, Some(from)) => match self.board.get(from) {
                    Some(Piece { side, .. }) if side == me => self.phase = Phase::To(from),
                    _ => self.alert = Some(format!("There is no {me} piece on {from}.")),
                },
                (None, None) => {
                    self.alert = Some(format!("{line:?} is not a square: a file a–i then a rank 0–9, e.g. h2."))
                }
            },
            Phase::To(from) => match (Move::parse(line), Square::parse(line)) {
                (Some(mv), _) => return self.try_move(mv),
                (None, Some(to)) => return self.try_move(Move { from, to }),
                (None, None) => {
                    self.alert = Some(format!("{line:?} is not a square: a file a–i then a rank 0–9, e.g. e2."))
                }
            },
            Phase::Sent(_) => self.alert = Some("Your move is on its way: wait for the server's answer.".into()),
            Phase::TheirTurn => {
                self.alert = Some(format!("It is {}'s turn: wait for your opponent's move.", me.opponent()));
            }
            Phase::Over => return Action::Leave,
        }
        Action::Nothing
    }

    /// Checks `mv` by the rules before sending it, so a slip costs nothing.
    fn try_move(&mut self, mv: Move) -> Action {
        match check_move(&self.board, mv) {
            Ok(()) => {
                self.phase = Phase::Sent(mv);
                Action::Send(Request::Move(mv))
            }
            Err(why) => {
                self.alert = Some(format!("{mv} is not allowed: {why}."));
                self.phase = Phase::From;
                Action::Nothing
            }
        }
    }

    /// Seconds left on the clock of the side to move, rounded up.
    fn seconds_left(&self, now: Instant) -> Option<(Side, u64)> {
        let (side, by) = self.clock?;
        let left = by.saturating_duration_since(now);
        Some((side, left.as_millis().div_ceil(1000) as u64))
    }

    /// What a clock tick at `now` should print: a whole screen while the player is not typing
    /// (the countdown moves), once a warning line when little time is left while typing, or
    /// nothing.
    pub fn tick(&mut self, now: Instant) -> Option<String> {
        let (side, by) = self.clock?;
        match self.phase {
            Phase::From | Phase::To(_) => {
                if self.warned || by.saturating_duration_since(now) > WARN_AT {
                    return None;
                }
                self.warned = true;
                let (_, secs) = self.seconds_left(now)?;
                let warning = self.paint("1;33", &format!("{secs} s left to move, or you lose on time!"));
                Some(format!("\n  {warning}\n{}", self.prompt(side, now)))
            }
            Phase::TheirTurn | Phase::Sent(_) => Some(self.screen(now)),
            _ => None,
        }
    }

    fn prompt(&self, side: Side, now: Instant) -> String {
        let left = self.seconds_left(now).map_or(String::new(), |(_, s)| format!(", {s} s left"));
        match self.phase {
            Phase::To(from) => format!("Your move ({side}) from {from}{left}.\nTo: "),
            _ => format!("Your move ({side}){left}; type squares like h2, or resign / quit.\nFrom: "),
        }
    }

    /// The whole screen: the board, the legend, recent events, the answer to the last line
    /// typed, whose turn it is with the time left, and the prompt.
    pub fn screen(&self, now: Instant) -> String {
        let me = self.side.unwrap_or(Side::Red);
        let mut screen = format!("{CLEAR}kingpin xiangqi");
        if let Some(side) = self.side {
            screen +=
                &format!(" — you play {}", self.paint(if side == Side::Red { "1;31" } else { "1;94" }, side.name()));
        }
        screen += &format!("\n\n{}\n{}\n", render(&self.board, me, self.last, self.colour), legend(self.colour));
        for n in &self.log {
            screen += &format!("  {n}\n");
        }
        if let Some(a) = &self.alert {
            screen += &format!("  {}\n", self.paint("1;33", a));
        }
        let turn = self.board.turn();
        let left = self.seconds_left(now).map_or(String::new(), |(_, s)| format!(" ({s} s left)"));
        screen += &match self.phase {
            Phase::Connecting => "\nConnecting…\n".to_string(),
            Phase::Waiting => "\nWaiting for an opponent…\n".to_string(),
            Phase::TheirTurn => format!("\nWaiting for {turn} to move{left}…\n"),
            Phase::Sent(mv) => format!("\nSent {mv}; waiting for the server{left}…\n"),
            Phase::Over => "\nGame over.\n".to_string(),
            Phase::From | Phase::To(_) => format!("\n{}", self.prompt(turn, now)),
        };
        screen
    }
}
