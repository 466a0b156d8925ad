//! The line protocol between players and the server: newline-terminated ASCII lines of at
//! most [`MAX_LINE`] bytes. See the README for the conversation; this file parses and
//! formats each line. Lines are cut out of a connection's input by kingpin's [`LinesCodec`]:
//! the server through [`PlayerLines`], which answers an over-long line and goes on.

use std::fmt;

use kingpin::{Buffer, Decoder, FrameError, LinesCodec};

use crate::board::{Move, Side};

/// The server's default address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8889";

/// The protocol's name, in `WELCOME` and `HELLO`.
pub const PROTOCOL: &str = "kingpin-chess";

/// Longest line, without its newline, either side may send.
pub const MAX_LINE: usize = 256;

/// After this many refused lines (any `ERR`) the server says `BYE errors` and closes the
/// connection.
pub const MAX_REFUSED: u32 = 5;

/// A line from a player to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `HELLO kingpin-chess`: the first line of a player; only then is it seated.
    Hello,
    /// `MOVE <from> <to>`, e.g. `MOVE h2 e2`.
    Move(Move),
    /// `RESIGN`: give up the game.
    Resign,
}

impl Request {
    /// Parses one line (without its newline).
    ///
    /// # Errors
    /// Why the line is malformed, for the `ERR malformed` reply (which quotes at most
    /// [`SHOWN`] bytes of it, so that the reply stays within the line limit).
    pub fn parse(line: &str) -> Result<Request, String> {
        let (word, rest) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        match word {
            "HELLO" if rest == PROTOCOL => Ok(Request::Hello),
            "HELLO" => Err(format!("expected HELLO {PROTOCOL}, got {}", shown(line))),
            "MOVE" => Move::parse(rest)
                .map(Request::Move)
                .ok_or_else(|| format!("expected MOVE <from> <to> with squares a0..i9, got {}", shown(line))),
            "RESIGN" if rest.is_empty() => Ok(Request::Resign),
            _ => Err(format!("expected MOVE <from> <to> or RESIGN, got {}", shown(line))),
        }
    }
}

/// Most bytes of a refused line, quoted and escaped, echoed in its `ERR` reply.
pub const SHOWN: usize = 60;

/// `line` quoted and escaped (`"…"`), cut to at most [`SHOWN`] bytes with `…` when longer.
fn shown(line: &str) -> String {
    let quoted = format!("{line:?}");
    if quoted.len() <= SHOWN {
        return quoted;
    }
    let mut end = SHOWN;
    while !quoted.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &quoted[..end])
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Hello => write!(f, "HELLO {PROTOCOL}"),
            Request::Move(mv) => write!(f, "MOVE {mv}"),
            Request::Resign => f.write_str("RESIGN"),
        }
    }
}

/// What an `ERR` line is about. Every `ERR` counts toward [`MAX_REFUSED`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrKind {
    /// The line could not be parsed (or was too long, or a second `HELLO`).
    Malformed,
    /// A request other than `HELLO` arrived before `HELLO`.
    NoHello,
    /// A move arrived while the player is still waiting for an opponent.
    NoGame,
    /// A move arrived while it is the opponent's turn.
    NotYourTurn,
    /// The move breaks a rule of xiangqi.
    Illegal,
}

impl ErrKind {
    const ALL: [ErrKind; 5] =
        [ErrKind::Malformed, ErrKind::NoHello, ErrKind::NoGame, ErrKind::NotYourTurn, ErrKind::Illegal];

    /// The word on the wire.
    pub fn name(self) -> &'static str {
        match self {
            ErrKind::Malformed => "malformed",
            ErrKind::NoHello => "no_hello",
            ErrKind::NoGame => "no_game",
            ErrKind::NotYourTurn => "not_your_turn",
            ErrKind::Illegal => "illegal",
        }
    }
}

/// Why a game ended (`END`), or was called off before its first move (`REQUEUE`: only
/// `opponent_left` and `time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Checkmate,
    Stalemate,
    Resign,
    OpponentLeft,
    /// The side to move did not move within the move clock.
    Time,
}

impl EndReason {
    const ALL: [EndReason; 5] =
        [EndReason::Checkmate, EndReason::Stalemate, EndReason::Resign, EndReason::OpponentLeft, EndReason::Time];

    /// The word on the wire.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Checkmate => "checkmate",
            EndReason::Stalemate => "stalemate",
            EndReason::Resign => "resign",
            EndReason::OpponentLeft => "opponent_left",
            EndReason::Time => "time",
        }
    }

    fn parse(s: &str) -> Option<EndReason> {
        EndReason::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// Why the server closes a connection that is not ending a game (`BYE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByeReason {
    /// No `HELLO` within the hello timeout.
    HelloTimeout,
    /// No opponent came within the wait timeout.
    WaitTimeout,
    /// [`MAX_REFUSED`] lines were refused.
    Errors,
    /// Lines came faster than the rate limit, and kept coming.
    Flooding,
}

impl ByeReason {
    const ALL: [ByeReason; 4] =
        [ByeReason::HelloTimeout, ByeReason::WaitTimeout, ByeReason::Errors, ByeReason::Flooding];

    /// The word on the wire.
    pub fn name(self) -> &'static str {
        match self {
            ByeReason::HelloTimeout => "hello_timeout",
            ByeReason::WaitTimeout => "wait_timeout",
            ByeReason::Errors => "errors",
            ByeReason::Flooding => "flooding",
        }
    }
}

/// A line from the server to a player.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `WELCOME kingpin-chess`: sent on connect; the server then waits for `HELLO`.
    Welcome,
    /// `WAIT`: no opponent yet.
    Wait,
    /// `START red|black`: a game began; this player has that colour. Red moves first.
    Start(Side),
    /// `TURN <side> <ms>`: `side` is to move and must within `ms` milliseconds, or lose on
    /// time. Sent after `START` and after every move that does not end the game.
    Turn(Side, u64),
    /// `MOVE <from> <to>`: the opponent's move.
    Move(Move),
    /// `OK`: your move was accepted.
    Ok,
    /// `ERR <kind> <text>`: your line was refused; the game goes on.
    Err(ErrKind, String),
    /// `CHECK`: the side to move is in check (after the `OK` or `MOVE` of the move).
    Check,
    /// `END <winner> <reason>`: the game is over; the server then closes the connection.
    End(Side, EndReason),
    /// `REQUEUE opponent_left|time`: the game was called off before its first move (the
    /// opponent left, or did not make the first move in time); you are back in the queue,
    /// and `WAIT` or `START` follows.
    Requeue(EndReason),
    /// `BYE <reason>`: the server closes the connection (no game is being ended).
    Bye(ByeReason),
}

impl Reply {
    /// Parses one line (without its newline); `None` if it is not a server line.
    pub fn parse(line: &str) -> Option<Reply> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        Some(match (word, rest) {
            ("WELCOME", _) => Reply::Welcome,
            ("WAIT", "") => Reply::Wait,
            ("START", side) => Reply::Start(Side::parse(side)?),
            ("TURN", rest) => {
                let (side, ms) = rest.split_once(' ')?;
                if !ms.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Reply::Turn(Side::parse(side)?, ms.parse().ok()?)
            }
            ("MOVE", mv) => Reply::Move(Move::parse(mv)?),
            ("OK", "") => Reply::Ok,
            ("CHECK", "") => Reply::Check,
            ("ERR", rest) => {
                let (kind, text) = rest.split_once(' ').unwrap_or((rest, ""));
                let kind = ErrKind::ALL.into_iter().find(|k| k.name() == kind)?;
                Reply::Err(kind, text.to_string())
            }
            ("END", rest) => {
                let (winner, reason) = rest.split_once(' ')?;
                Reply::End(Side::parse(winner)?, EndReason::parse(reason)?)
            }
            ("REQUEUE", reason) => match EndReason::parse(reason)? {
                r @ (EndReason::OpponentLeft | EndReason::Time) => Reply::Requeue(r),
                _ => return None,
            },
            ("BYE", reason) => Reply::Bye(ByeReason::ALL.into_iter().find(|r| r.name() == reason)?),
            _ => return None,
        })
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Welcome => write!(f, "WELCOME {PROTOCOL}"),
            Reply::Wait => f.write_str("WAIT"),
            Reply::Start(side) => write!(f, "START {side}"),
            Reply::Turn(side, ms) => write!(f, "TURN {side} {ms}"),
            Reply::Move(mv) => write!(f, "MOVE {mv}"),
            Reply::Ok => f.write_str("OK"),
            Reply::Err(kind, text) => write!(f, "ERR {} {text}", kind.name()),
            Reply::Check => f.write_str("CHECK"),
            Reply::End(winner, reason) => write!(f, "END {winner} {}", reason.name()),
            Reply::Requeue(reason) => write!(f, "REQUEUE {}", reason.name()),
            Reply::Bye(reason) => write!(f, "BYE {}", reason.name()),
        }
    }
}

/// One line cut from a player's input by [`PlayerLines`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line, without its `\n` (or `\r\n`).
    Text(String),
    /// Longer than [`MAX_LINE`]; the rest of it, up to its newline, is dropped.
    TooLong,
    /// Not UTF-8.
    Invalid,
}

/// The server's framing of a player's lines: kingpin's [`LinesCodec`] with [`MAX_LINE`], whose
/// error for an over-long line is handed over as [`Line::TooLong`] instead of failing the
/// decode, so that the server refuses it (`ERR malformed`, a strike) and the conversation
/// goes on with the next line.
///
/// `Conn::decode` would close the connection at once on a framing error. Here the error is
/// an item, reported once, as soon as the line is known to be too long (before its end
/// arrives), and the line's bytes are dropped up to its newline, however many reads that
/// takes: a peer cannot make the input grow with one endless line. That skipping is state of
/// the stream, so a decoder belongs to one connection (the server keeps it in the
/// connection's state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayerLines {
    lines: LinesCodec,
    /// Dropping the rest of an over-long line, up to its newline.
    skipping: bool,
}

impl PlayerLines {
    /// Lines of at most [`MAX_LINE`] bytes, without the newline.
    pub fn new() -> Self {
        PlayerLines { lines: LinesCodec::new(MAX_LINE), skipping: false }
    }

    /// Drops the over-long line at the front of `src`, up to and including its newline; with
    /// no newline yet, drops all of it and goes on skipping in the next call.
    fn skip(&mut self, src: &mut Buffer) {
        match src.find_byte(b'\n') {
            Some(end) => {
                src.advance(end + 1);
                self.skipping = false;
            }
            None => {
                src.clear();
                self.skipping = true;
            }
        }
    }
}

impl Default for PlayerLines {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for PlayerLines {
    type Item = Line;

    /// The next line, or `None` when no whole line is there yet.
    ///
    /// # Errors
    /// Any [`FrameError`] of [`LinesCodec`] other than [`FrameError::TooLong`] (it has none
    /// today): the stream cannot be framed.
    fn decode(&mut self, src: &mut Buffer) -> Result<Option<Line>, FrameError> {
        if self.skipping {
            self.skip(src);
            if self.skipping {
                return Ok(None);
            }
        }
        match self.lines.decode(src) {
            Ok(line) => Ok(line.map(|bytes| String::from_utf8(bytes).map_or(Line::Invalid, Line::Text))),
            Err(FrameError::TooLong { .. }) => {
                self.skip(src);
                Ok(Some(Line::TooLong))
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip() {
        for line in ["HELLO kingpin-chess", "MOVE h2 e2", "RESIGN"] {
            assert_eq!(Request::parse(line).unwrap().to_string(), line);
        }
        for line in ["MOVE h2", "MOVE h2 e2 e3", "MOVE j0 a1", "move h2 e2", "RESIGN now", "", "HELLO", "HELLO x"] {
            assert!(Request::parse(line).is_err(), "{line}");
        }
        for line in [
            "WELCOME kingpin-chess",
            "WAIT",
            "START red",
            "TURN black 60000",
            "MOVE b0 c2",
            "OK",
            "ERR illegal the horse's leg is blocked at c0",
            "CHECK",
            "END black opponent_left",
            "END red time",
            "REQUEUE opponent_left",
            "REQUEUE time",
            "BYE hello_timeout",
            "BYE flooding",
            "ERR no_hello say HELLO kingpin-chess first",
        ] {
            assert_eq!(Reply::parse(line).unwrap().to_string(), line);
        }
        for line in ["START green", "TURN red", "TURN red -5", "TURN red +5", "REQUEUE resign", "BYE now"] {
            assert_eq!(Reply::parse(line), None, "{line}");
        }
    }

    #[test]
    fn lines_are_cut_and_long_ones_dropped() {
        let mut lines = PlayerLines::new();
        let mut input = Buffer::new();
        input.extend_from_slice(b"OK\r\nWAIT\nST");
        assert_eq!(lines.decode(&mut input), Ok(Some(Line::Text("OK".into()))));
        assert_eq!(lines.decode(&mut input), Ok(Some(Line::Text("WAIT".into()))));
        assert_eq!(lines.decode(&mut input), Ok(None));
        input.extend_from_slice(&[b'x'; MAX_LINE + 1]);
        assert_eq!(lines.decode(&mut input), Ok(Some(Line::TooLong)), "known before its end");
        assert!(input.is_empty(), "dropped");
        input.extend_from_slice(b"xxxx");
        assert_eq!(lines.decode(&mut input), Ok(None), "still the long line");
        assert!(input.is_empty(), "dropped as it comes");
        input.extend_from_slice(b"xxxx\nRESIGN\n\xff\n");
        assert_eq!(lines.decode(&mut input), Ok(Some(Line::Text("RESIGN".into()))));
        assert_eq!(lines.decode(&mut input), Ok(Some(Line::Invalid)));
        assert_eq!(lines.decode(&mut input), Ok(None));
    }

    #[test]
    fn a_line_of_the_limit_passes_and_a_long_one_whole_in_the_input_is_dropped_alone() {
        let mut lines = PlayerLines::default();
        let mut input = Buffer::new();
        let longest = "y".repeat(MAX_LINE);
        input.extend_from_slice(format!("{longest}\r\n{}\nRESIGN\n", "z".repeat(MAX_LINE + 1)).as_bytes());
        assert_eq!(lines.decode(&mut input), Ok(Some(Line::Text(longest))));
        assert_eq!(lines.decode(&mut input), Ok(Some(Line::TooLong)));
        assert_eq!(lines.decode(&mut input), Ok(Some(Line::Text("RESIGN".into()))));
        assert_eq!(lines.decode(&mut input), Ok(None));
        assert!(input.is_empty());
    }

    #[test]
    fn a_refused_line_is_quoted_short_enough_to_fit_a_line() {
        let long = "\u{1}".repeat(256);
        let why = Request::parse(&long).unwrap_err();
        assert!(why.len() < 160, "{} bytes: {why}", why.len());
        let accents = format!("MOVE {}", "é".repeat(128));
        assert!(Request::parse(&accents).unwrap_err().len() < 160);
    }
}
