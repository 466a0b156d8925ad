//! The xiangqi board: sides, pieces, squares, moves, and positions (with a FEN-style text form
//! for tests). Pure data; the rules that move pieces are in `rules.rs`.
//!
//! Coordinates follow the protocol: files `a`–`i` from red's left, ranks `0`–`9` from red's
//! back rank. Red's general starts on `e0`, black's on `e9`; the river lies between ranks 4
//! and 5.

use std::fmt;

/// Files across the board.
pub const FILES: i8 = 9;
/// Ranks along the board.
pub const RANKS: i8 = 10;

/// The two players. Red moves first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Red,
    Black,
}

impl Side {
    /// The other side.
    pub fn opponent(self) -> Side {
        match self {
            Side::Red => Side::Black,
            Side::Black => Side::Red,
        }
    }

    /// `red` or `black`, as in the protocol.
    pub fn name(self) -> &'static str {
        match self {
            Side::Red => "red",
            Side::Black => "black",
        }
    }

    /// Parses `red` or `black`.
    pub fn parse(s: &str) -> Option<Side> {
        match s {
            "red" => Some(Side::Red),
            "black" => Some(Side::Black),
            _ => None,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The seven kinds of piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    General,
    Advisor,
    Elephant,
    Horse,
    Chariot,
    Cannon,
    Soldier,
}

impl Kind {
    /// The English name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::General => "general",
            Kind::Advisor => "advisor",
            Kind::Elephant => "elephant",
            Kind::Horse => "horse",
            Kind::Chariot => "chariot",
            Kind::Cannon => "cannon",
            Kind::Soldier => "soldier",
        }
    }
}

/// A piece: its side and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Piece {
    pub side: Side,
    pub kind: Kind,
}

impl Piece {
    /// A piece of `side` and `kind`.
    pub const fn new(side: Side, kind: Kind) -> Piece {
        Piece { side, kind }
    }

    /// The FEN letter: `K A B N R C P`, upper case for red, lower case for black.
    pub fn letter(self) -> char {
        let c = match self.kind {
            Kind::General => 'K',
            Kind::Advisor => 'A',
            Kind::Elephant => 'B',
            Kind::Horse => 'N',
            Kind::Chariot => 'R',
            Kind::Cannon => 'C',
            Kind::Soldier => 'P',
        };
        if self.side == Side::Red {
            c
        } else {
            c.to_ascii_lowercase()
        }
    }

    /// The piece for a FEN letter.
    pub fn from_letter(c: char) -> Option<Piece> {
        let kind = match c.to_ascii_uppercase() {
            'K' => Kind::General,
            'A' => Kind::Advisor,
            'B' => Kind::Elephant,
            'N' => Kind::Horse,
            'R' => Kind::Chariot,
            'C' => Kind::Cannon,
            'P' => Kind::Soldier,
            _ => return None,
        };
        Some(Piece::new(if c.is_ascii_uppercase() { Side::Red } else { Side::Black }, kind))
    }
}

/// A point of the board, e.g. `e0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Square {
    pub file: i8,
    pub rank: i8,
}

impl Square {
    /// The square at `file` (0 = `a`) and `rank` (0–9), if on the board.
    pub fn at(file: i8, rank: i8) -> Option<Square> {
        ((0..FILES).contains(&file) && (0..RANKS).contains(&rank)).then_some(Square { file, rank })
    }

    /// Parses `a0`…`i9`.
    pub fn parse(s: &str) -> Option<Square> {
        let &[f, r] = s.as_bytes() else { return None };
        if !(b'a'..=b'i').contains(&f) || !r.is_ascii_digit() {
            return None;
        }
        Square::at((f - b'a') as i8, (r - b'0') as i8)
    }

    /// The square `df` files and `dr` ranks away, if on the board.
    pub fn offset(self, df: i8, dr: i8) -> Option<Square> {
        Square::at(self.file + df, self.rank + dr)
    }

    /// Index into the board's 90 points.
    pub fn index(self) -> usize {
        (self.rank * FILES + self.file) as usize
    }

    /// Every point of the board, rank by rank from `a0`.
    pub fn all() -> impl Iterator<Item = Square> {
        (0..RANKS).flat_map(|rank| (0..FILES).map(move |file| Square { file, rank }))
    }

    /// Whether the square is on `side`'s half, below (red) or above (black) the river.
    pub fn on_own_half(self, side: Side) -> bool {
        match side {
            Side::Red => self.rank <= 4,
            Side::Black => self.rank >= 5,
        }
    }

    /// Whether the square is in `side`'s palace (files `d`–`f`, three ranks at its end).
    pub fn in_palace(self, side: Side) -> bool {
        let ranks = match side {
            Side::Red => 0..=2,
            Side::Black => 7..=9,
        };
        (3..=5).contains(&self.file) && ranks.contains(&self.rank)
    }
}

impl fmt::Display for Square {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", (b'a' + self.file as u8) as char, self.rank)
    }
}

/// A move from one square to another (a capture if the target holds an enemy piece).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Move {
    pub from: Square,
    pub to: Square,
}

impl Move {
    /// Parses `"h2 e2"` style text: two squares separated by whitespace.
    pub fn parse(s: &str) -> Option<Move> {
        let mut it = s.split_whitespace();
        let (from, to) = (Square::parse(it.next()?)?, Square::parse(it.next()?)?);
        it.next().is_none().then_some(Move { from, to })
    }
}

impl fmt::Display for Move {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.from, self.to)
    }
}

/// The opening position in FEN (ranks from 9 down to 0, `w` = red to move).
pub const OPENING: &str = "rnbakabnr/9/1c5c1/p1p1p1p1p/9/9/P1P1P1P1P/1C5C1/9/RNBAKABNR w";

/// A position: 90 points and the side to move.
#[derive(Clone, PartialEq, Eq)]
pub struct Board {
    points: [Option<Piece>; 90],
    turn: Side,
}

impl Board {
    /// The opening position, red to move.
    pub fn initial() -> Board {
        Board::from_fen(OPENING).expect("the opening FEN is valid")
    }

    /// Parses FEN-style text: ten ranks from 9 down to 0 separated by `/`, digits for runs of
    /// empty points, letters as [`Piece::letter`]; then `w` (red to move) or `b`.
    pub fn from_fen(fen: &str) -> Option<Board> {
        let (placement, turn) = fen.split_once(' ').unwrap_or((fen, "w"));
        let turn = match turn.trim() {
            "w" | "r" => Side::Red,
            "b" => Side::Black,
            _ => return None,
        };
        let mut board = Board { points: [None; 90], turn };
        let rows: Vec<&str> = placement.split('/').collect();
        if rows.len() != RANKS as usize {
            return None;
        }
        for (i, row) in rows.iter().enumerate() {
            let rank = RANKS - 1 - i as i8;
            let mut file = 0i8;
            for c in row.chars() {
                if let Some(n) = c.to_digit(10) {
                    file += n as i8;
                } else {
                    board.set(Square::at(file, rank)?, Some(Piece::from_letter(c)?));
                    file += 1;
                }
            }
            if file != FILES {
                return None;
            }
        }
        Some(board)
    }

    /// The piece on `sq`, if any.
    pub fn get(&self, sq: Square) -> Option<Piece> {
        self.points[sq.index()]
    }

    /// Puts `piece` (or nothing) on `sq`.
    pub fn set(&mut self, sq: Square, piece: Option<Piece>) {
        self.points[sq.index()] = piece;
    }

    /// The side to move.
    pub fn turn(&self) -> Side {
        self.turn
    }

    /// Moves the piece without checking any rule, passes the turn, and returns what was
    /// captured. Rules are `rules.rs`'s business.
    pub fn apply(&mut self, mv: Move) -> Option<Piece> {
        let piece = self.get(mv.from);
        let captured = self.get(mv.to);
        self.set(mv.to, piece);
        self.set(mv.from, None);
        self.turn = self.turn.opponent();
        captured
    }

    /// The squares holding `side`'s pieces.
    pub fn pieces(&self, side: Side) -> impl Iterator<Item = (Square, Piece)> + '_ {
        Square::all().filter_map(move |sq| self.get(sq).filter(|p| p.side == side).map(|p| (sq, p)))
    }

    /// Where `side`'s general stands (searched in its palace only).
    pub fn general(&self, side: Side) -> Option<Square> {
        let ranks = if side == Side::Red { 0..=2 } else { 7..=9 };
        ranks
            .flat_map(|r| (3..=5).map(move |f| Square { file: f, rank: r }))
            .find(|&sq| self.get(sq) == Some(Piece::new(side, Kind::General)))
    }
}

impl fmt::Debug for Board {
    /// The FEN form, which is what a failing test wants to see.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for rank in (0..RANKS).rev() {
            let mut empty = 0;
            for file in 0..FILES {
                match self.get(Square { file, rank }) {
                    None => empty += 1,
                    Some(p) => {
                        if empty > 0 {
                            write!(f, "{empty}")?;
                            empty = 0;
                        }
                        write!(f, "{}", p.letter())?;
                    }
                }
            }
            if empty > 0 {
                write!(f, "{empty}")?;
            }
            if rank > 0 {
                f.write_str("/")?;
            }
        }
        write!(f, " {}", if self.turn == Side::Red { 'w' } else { 'b' })
    }
}
