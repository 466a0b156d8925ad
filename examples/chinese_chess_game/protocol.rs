//! The line protocol between players and the server: newline-terminated ASCII lines of at
//! most [`MAX_LINE`] bytes. See the README for the conversation; this file parses and
//! formats each line, and cuts lines out of a connection's input.

use std::fmt;

use kingpin::Buffer;

use crate::board::{Move, Side};

/// The server's default address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8889";

/// Longest line, without its newline, either side may send.
pub const MAX_LINE: usize = 256;

/// After this many malformed lines the server closes the connection.
pub const MAX_MALFORMED: u32 = 5;

/// A line from a player to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `MOVE <from> <to>`, e.g. `MOVE h2 e2`.
    Move(Move),
    /// `RESIGN`: give up the game.
    Resign,
}

impl Request {
    /// Parses one line (without its newline).
    ///
    /// # Errors
    /// Why the line is malformed, for the `ERR malformed` reply.
    pub fn parse(line: &str) -> Result<Request, String> {
        let (word, rest) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        match word {
            "MOVE" => Move::parse(rest)
                .map(Request::Move)
                .ok_or_else(|| format!("expected MOVE <from> <to> with squares a0..i9, got {line:?}")),
            "RESIGN" if rest.is_empty() => Ok(Request::Resign),
            _ => Err(format!("expected MOVE <from> <to> or RESIGN, got {line:?}")),
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Move(mv) => write!(f, "MOVE {mv}"),
            Request::Resign => f.write_str("RESIGN"),
        }
    }
}

/// What an `ERR` line is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrKind {
    /// The line could not be parsed (or was too long).
    Malformed,
    /// A move arrived while the player is still waiting for an opponent.
    NoGame,
    /// A move arrived while it is the opponent's turn.
    NotYourTurn,
    /// The move breaks a rule of xiangqi.
    Illegal,
}

impl ErrKind {
    /// The word on the wire.
    pub fn name(self) -> &'static str {
        match self {
            ErrKind::Malformed => "malformed",
            ErrKind::NoGame => "no_game",
            ErrKind::NotYourTurn => "not_your_turn",
            ErrKind::Illegal => "illegal",
        }
    }
}

/// Why a game ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Checkmate,
    Stalemate,
    Resign,
    OpponentLeft,
}

impl EndReason {
    /// The word on the wire.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Checkmate => "checkmate",
            EndReason::Stalemate => "stalemate",
            EndReason::Resign => "resign",
            EndReason::OpponentLeft => "opponent_left",
        }
    }

    fn parse(s: &str) -> Option<EndReason> {
        [EndReason::Checkmate, EndReason::Stalemate, EndReason::Resign, EndReason::OpponentLeft]
            .into_iter()
            .find(|r| r.name() == s)
    }
}

/// A line from the server to a player.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `WELCOME kingpin-chess`: sent on connect.
    Welcome,
    /// `WAIT`: no opponent yet.
    Wait,
    /// `START red|black`: a game began; this player has that colour. Red moves first.
    Start(Side),
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
}

impl Reply {
    /// Parses one line (without its newline); `None` if it is not a server line.
    pub fn parse(line: &str) -> Option<Reply> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        Some(match (word, rest) {
            ("WELCOME", _) => Reply::Welcome,
            ("WAIT", "") => Reply::Wait,
            ("START", side) => Reply::Start(Side::parse(side)?),
            ("MOVE", mv) => Reply::Move(Move::parse(mv)?),
            ("OK", "") => Reply::Ok,
            ("CHECK", "") => Reply::Check,
            ("ERR", rest) => {
                let (kind, text) = rest.split_once(' ').unwrap_or((rest, ""));
                let kind = [ErrKind::Malformed, ErrKind::NoGame, ErrKind::NotYourTurn, ErrKind::Illegal]
                    .into_iter()
                    .find(|k| k.name() == kind)?;
                Reply::Err(kind, text.to_string())
            }
            ("END", rest) => {
                let (winner, reason) = rest.split_once(' ')?;
                Reply::End(Side::parse(winner)?, EndReason::parse(reason)?)
            }
            _ => return None,
        })
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Welcome => f.write_str("WELCOME kingpin-chess"),
            Reply::Wait => f.write_str("WAIT"),
            Reply::Start(side) => write!(f, "START {side}"),
            Reply::Move(mv) => write!(f, "MOVE {mv}"),
            Reply::Ok => f.write_str("OK"),
            Reply::Err(kind, text) => write!(f, "ERR {} {text}", kind.name()),
            Reply::Check => f.write_str("CHECK"),
            Reply::End(winner, reason) => write!(f, "END {winner} {}", reason.name()),
        }
    }
}

/// One line cut from a connection's input.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line, without its `\n` (or `\r\n`).
    Text(String),
    /// Longer than [`MAX_LINE`]; the rest of it, up to its newline, will be dropped.
    TooLong,
    /// Not UTF-8.
    Invalid,
}

/// Cuts the next complete line out of `input`. `skipping` carries, between calls, that the
/// rest of an over-long line is being dropped (start with `false`). `None`: no complete line
/// yet.
pub fn next_line(input: &mut Buffer, skipping: &mut bool) -> Option<Line> {
    loop {
        let Some(end) = input.find_byte(b'\n') else {
            if *skipping {
                input.clear();
            } else if input.len() > MAX_LINE {
                input.clear();
                *skipping = true;
                return Some(Line::TooLong);
            }
            return None;
        };
        if std::mem::take(skipping) {
            input.advance(end + 1);
            continue;
        }
        let raw = &input.as_slice()[..end];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = if raw.len() > MAX_LINE {
            Line::TooLong
        } else {
            std::str::from_utf8(raw).map_or(Line::Invalid, |s| Line::Text(s.to_string()))
        };
        input.advance(end + 1);
        return Some(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip() {
        for line in ["MOVE h2 e2", "RESIGN"] {
            assert_eq!(Request::parse(line).unwrap().to_string(), line);
        }
        for line in ["MOVE h2", "MOVE h2 e2 e3", "MOVE j0 a1", "move h2 e2", "RESIGN now", ""] {
            assert!(Request::parse(line).is_err(), "{line}");
        }
        for line in [
            "WELCOME kingpin-chess",
            "WAIT",
            "START red",
            "MOVE b0 c2",
            "OK",
            "ERR illegal the horse's leg is blocked at c0",
            "CHECK",
            "END black opponent_left",
        ] {
            assert_eq!(Reply::parse(line).unwrap().to_string(), line);
        }
        assert_eq!(Reply::parse("START green"), None);
    }

    #[test]
    fn lines_are_cut_and_long_ones_dropped() {
        let mut input = Buffer::new();
        let mut skipping = false;
        input.extend_from_slice(b"OK\r\nWAIT\nST");
        assert_eq!(next_line(&mut input, &mut skipping), Some(Line::Text("OK".into())));
        assert_eq!(next_line(&mut input, &mut skipping), Some(Line::Text("WAIT".into())));
        assert_eq!(next_line(&mut input, &mut skipping), None);
        input.extend_from_slice(&[b'x'; MAX_LINE + 1]);
        assert_eq!(next_line(&mut input, &mut skipping), Some(Line::TooLong));
        input.extend_from_slice(b"xxxx\nRESIGN\n\xff\n");
        assert_eq!(next_line(&mut input, &mut skipping), Some(Line::Text("RESIGN".into())));
        assert_eq!(next_line(&mut input, &mut skipping), Some(Line::Invalid));
        assert_eq!(next_line(&mut input, &mut skipping), None);
    }
}
