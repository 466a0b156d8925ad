//! The rules of xiangqi: how each piece moves (the horse's leg, the elephant's eye, palace and
//! river, the cannon's screen), the flying general, check, and the end of a game by checkmate
//! or stalemate. Pure functions of a [`Board`]; no IO.
//!
//! Not implemented: the rules on perpetual check and perpetual chasing, and draws by
//! repetition — a game ends by checkmate, stalemate, resignation or a departure.

use std::fmt;

use crate::board::{Board, Kind, Move, Piece, Side, Square};

/// Why a move is not allowed. Its `Display` is the text of the server's `ERR illegal` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Illegal {
    /// No piece stands on the square moved from.
    Empty(Square),
    /// The piece belongs to the opponent.
    NotYours,
    /// From and to are the same square.
    Stay,
    /// The target holds one's own piece.
    OwnPiece,
    /// The piece does not move like that.
    Shape(Kind),
    /// The general and advisors may not leave the palace.
    Palace(Kind),
    /// The elephant may not cross the river.
    River,
    /// The elephant's eye (the point it jumps over) is occupied.
    Eye(Square),
    /// The horse's leg (the point next to it in the direction of its move) is occupied.
    Leg(Square),
    /// A piece stands in the way of a chariot or a non-capturing cannon.
    Blocked(Square),
    /// A cannon captures by jumping exactly one piece (the screen).
    Screen(usize),
    /// The two generals would face each other on an open file.
    FlyingGeneral,
    /// The move leaves (or puts) one's own general in check.
    Check,
}

impl fmt::Display for Illegal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Illegal::Empty(sq) => write!(f, "there is no piece on {sq}"),
            Illegal::NotYours => f.write_str("that piece is not yours"),
            Illegal::Stay => f.write_str("a move must go somewhere"),
            Illegal::OwnPiece => f.write_str("you cannot capture your own piece"),
            Illegal::Shape(kind) => f.write_str(match kind {
                Kind::General => "the general moves one point along a line",
                Kind::Advisor => "the advisor moves one point diagonally",
                Kind::Elephant => "the elephant moves exactly two points diagonally",
                Kind::Horse => "the horse moves one point straight then one diagonally",
                Kind::Chariot => "the chariot moves along a rank or a file",
                Kind::Cannon => "the cannon moves along a rank or a file",
                Kind::Soldier => "the soldier moves one point forward, or sideways once across the river",
            }),
            Illegal::Palace(kind) => write!(f, "the {} may not leave the palace", kind.name()),
            Illegal::River => f.write_str("the elephant may not cross the river"),
            Illegal::Eye(sq) => write!(f, "the elephant's eye is blocked at {sq}"),
            Illegal::Leg(sq) => write!(f, "the horse's leg is blocked at {sq}"),
            Illegal::Blocked(sq) => write!(f, "the way is blocked at {sq}"),
            Illegal::Screen(n) => write!(f, "a cannon captures over exactly one piece, not {n}"),
            Illegal::FlyingGeneral => f.write_str("the generals may not face each other on an open file"),
            Illegal::Check => f.write_str("that leaves your general in check"),
        }
    }
}

/// How the side to move stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It has a legal move.
    Ongoing,
    /// It is in check and has no legal move: it has lost.
    Checkmate,
    /// It is not in check but has no legal move: in xiangqi it has lost too.
    Stalemate,
}

/// The squares strictly between `from` and `to`, which share a rank or a file.
fn between(from: Square, to: Square) -> impl Iterator<Item = Square> {
    let (sf, sr) = ((to.file - from.file).signum(), (to.rank - from.rank).signum());
    let steps = (to.file - from.file).abs().max((to.rank - from.rank).abs());
    (1..steps).filter_map(move |i| from.offset(sf * i, sr * i))
}

/// Whether `piece` on `from` could move to (or capture on) `to` by its own movement rules,
/// ignoring who owns the target and whether its general is left in check.
fn reach(board: &Board, from: Square, piece: Piece, to: Square) -> Result<(), Illegal> {
    let (df, dr) = (to.file - from.file, to.rank - from.rank);
    let (af, ar) = (df.abs(), dr.abs());
    let side = piece.side;
    let occupied = |sq: Option<Square>| sq.filter(|&s| board.get(s).is_some());
    match piece.kind {
        Kind::General | Kind::Advisor => {
            let step = if piece.kind == Kind::General { af + ar == 1 } else { af == 1 && ar == 1 };
            if !step {
                return Err(Illegal::Shape(piece.kind));
            }
            if !to.in_palace(side) {
                return Err(Illegal::Palace(piece.kind));
            }
        }
        Kind::Elephant => {
            if af != 2 || ar != 2 {
                return Err(Illegal::Shape(piece.kind));
            }
            if !to.on_own_half(side) {
                return Err(Illegal::River);
            }
            if let Some(eye) = occupied(from.offset(df / 2, dr / 2)) {
                return Err(Illegal::Eye(eye));
            }
        }
        Kind::Horse => {
            if !((af == 1 && ar == 2) || (af == 2 && ar == 1)) {
                return Err(Illegal::Shape(piece.kind));
            }
            let leg = if af == 2 { from.offset(df / 2, 0) } else { from.offset(0, dr / 2) };
            if let Some(leg) = occupied(leg) {
                return Err(Illegal::Leg(leg));
            }
        }
        Kind::Chariot | Kind::Cannon => {
            if df != 0 && dr != 0 {
                return Err(Illegal::Shape(piece.kind));
            }
            let mut screens = between(from, to).filter(|&sq| board.get(sq).is_some());
            let first = screens.next();
            if piece.kind == Kind::Cannon && board.get(to).is_some() {
                let n = first.map_or(0, |_| 1 + screens.count());
                if n != 1 {
                    return Err(Illegal::Screen(n));
                }
            } else if let Some(sq) = first {
                return Err(Illegal::Blocked(sq));
            }
        }
        Kind::Soldier => {
            let forward = if side == Side::Red { 1 } else { -1 };
            let sideways = dr == 0 && af == 1 && !from.on_own_half(side);
            if !((df == 0 && dr == forward) || sideways) {
                return Err(Illegal::Shape(piece.kind));
            }
        }
    }
    Ok(())
}

/// Whether the two generals stand on one file with nothing between them.
pub fn generals_face(board: &Board) -> bool {
    match (board.general(Side::Red), board.general(Side::Black)) {
        (Some(r), Some(b)) => r.file == b.file && between(r, b).all(|sq| board.get(sq).is_none()),
        _ => false,
    }
}

/// Whether `side`'s general is attacked (the generals facing each other counts). A side
/// without a general counts as in check.
pub fn in_check(board: &Board, side: Side) -> bool {
    let Some(general) = board.general(side) else { return true };
    generals_face(board) || board.pieces(side.opponent()).any(|(from, p)| reach(board, from, p, general).is_ok())
}

/// Checks `mv` for the side to move; `Ok` if it is legal.
///
/// # Errors
/// The first rule it breaks, as [`Illegal`].
pub fn check_move(board: &Board, mv: Move) -> Result<(), Illegal> {
    let side = board.turn();
    let piece = board.get(mv.from).ok_or(Illegal::Empty(mv.from))?;
    if piece.side != side {
        return Err(Illegal::NotYours);
    }
    if mv.from == mv.to {
        return Err(Illegal::Stay);
    }
    if board.get(mv.to).is_some_and(|p| p.side == side) {
        return Err(Illegal::OwnPiece);
    }
    reach(board, mv.from, piece, mv.to)?;
    let mut next = board.clone();
    next.apply(mv);
    if generals_face(&next) {
        return Err(Illegal::FlyingGeneral);
    }
    if in_check(&next, side) {
        return Err(Illegal::Check);
    }
    Ok(())
}

/// The squares a piece of this kind could reach in one move on an empty board: a superset
/// of its moves, which [`check_move`] then filters.
fn candidates(from: Square, kind: Kind) -> Vec<Square> {
    const ORTHO: [(i8, i8); 4] = [(1, 0), (-1, 0), (0, 1), (0, -1)];
    const DIAG: [(i8, i8); 4] = [(1, 1), (1, -1), (-1, 1), (-1, -1)];
    const HORSE: [(i8, i8); 8] = [(1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1), (-2, 1), (-1, 2)];
    let steps = |deltas: &[(i8, i8)], k: i8| deltas.iter().filter_map(|&(f, r)| from.offset(f * k, r * k)).collect();
    match kind {
        Kind::General | Kind::Soldier => steps(&ORTHO, 1),
        Kind::Advisor => steps(&DIAG, 1),
        Kind::Elephant => steps(&DIAG, 2),
        Kind::Horse => steps(&HORSE, 1),
        Kind::Chariot | Kind::Cannon => {
            Square::all().filter(|sq| (sq.file == from.file) != (sq.rank == from.rank)).collect()
        }
    }
}

/// Every legal move of the side to move.
pub fn legal_moves(board: &Board) -> Vec<Move> {
    let mut moves = Vec::with_capacity(64);
    for (from, piece) in board.pieces(board.turn()) {
        for to in candidates(from, piece.kind) {
            let mv = Move { from, to };
            if check_move(board, mv).is_ok() {
                moves.push(mv);
            }
        }
    }
    moves
}

/// How the side to move stands: still playing, checkmated or stalemated.
pub fn status(board: &Board) -> Status {
    let any = board.pieces(board.turn()).any(|(from, piece)| {
        candidates(from, piece.kind).into_iter().any(|to| check_move(board, Move { from, to }).is_ok())
    });
    match (any, in_check(board, board.turn())) {
        (true, _) => Status::Ongoing,
        (false, true) => Status::Checkmate,
        (false, false) => Status::Stalemate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(s: &str) -> Move {
        Move::parse(s).unwrap()
    }

    fn fen(s: &str) -> Board {
        Board::from_fen(s).unwrap_or_else(|| panic!("bad FEN {s}"))
    }

    #[test]
    fn opening_has_44_moves_for_each_side() {
        let board = Board::initial();
        assert_eq!(legal_moves(&board).len(), 44);
        let black = fen(&crate::board::OPENING.replace(" w", " b"));
        assert_eq!(legal_moves(&black).len(), 44);
        // The central cannon opening frees the h-file for black's cannon: one move more.
        let mut after = board.clone();
        after.apply(mv("h2 e2"));
        assert_eq!(legal_moves(&after).len(), 45);
        assert_eq!(status(&board), Status::Ongoing);
        assert!(!in_check(&board, Side::Red) && !in_check(&board, Side::Black));
    }

    #[test]
    fn blocked_horse_and_elephant() {
        let board = Board::initial();
        assert_eq!(check_move(&board, mv("b0 c2")), Ok(()));
        assert_eq!(check_move(&board, mv("b0 d1")), Err(Illegal::Leg(Square::parse("c0").unwrap())));
        assert_eq!(check_move(&board, mv("c0 e2")), Ok(()));
        // A horse on d1 is in the way of the elephant's jump c0-e2.
        let eye = fen("rnbakabnr/9/1c5c1/p1p1p1p1p/9/9/P1P1P1P1P/1C5C1/3N5/R1BAKABNR w");
        assert_eq!(check_move(&eye, mv("c0 e2")), Err(Illegal::Eye(Square::parse("d1").unwrap())));
        assert_eq!(check_move(&eye, mv("c0 a2")), Ok(()));
        let river = fen("4k4/9/9/9/9/2B6/9/9/9/4K4 w");
        assert_eq!(check_move(&river, mv("c4 e6")), Err(Illegal::River));
        assert_eq!(check_move(&river, mv("c4 e2")), Ok(()));
    }

    #[test]
    fn movement_palace_cannon_and_soldiers() {
        let board = Board::initial();
        assert_eq!(check_move(&board, mv("h2 h9")), Ok(())); // cannon over the screen on h7
        assert_eq!(check_move(&board, mv("h2 h7")), Err(Illegal::Screen(0)));
        assert_eq!(check_move(&board, mv("h2 h8")), Err(Illegal::Blocked(Square::parse("h7").unwrap())));
        assert_eq!(check_move(&board, mv("a0 a3")), Err(Illegal::OwnPiece));
        assert_eq!(check_move(&board, mv("a0 a2")), Ok(()));
        assert_eq!(check_move(&board, mv("e3 d3")), Err(Illegal::Shape(Kind::Soldier)));
        assert_eq!(check_move(&board, mv("e3 e4")), Ok(()));
        assert_eq!(check_move(&board, mv("e6 e5")), Err(Illegal::NotYours));
        assert_eq!(check_move(&board, mv("e5 e4")), Err(Illegal::Empty(Square::parse("e5").unwrap())));
        assert_eq!(check_move(&board, mv("d0 c1")), Err(Illegal::Palace(Kind::Advisor)));
        let crossed = fen("4k4/9/9/9/4P4/9/9/9/9/3K5 w");
        assert_eq!(check_move(&crossed, mv("e5 d5")), Ok(()));
        assert_eq!(check_move(&crossed, mv("e5 e4")), Err(Illegal::Shape(Kind::Soldier)));
        assert_eq!(check_move(&crossed, mv("d0 c0")), Err(Illegal::Palace(Kind::General)));
    }

    #[test]
    fn flying_general() {
        // Generals on the e-file with one piece between: it is pinned to the file.
        let board = fen("4k4/9/9/9/9/4R4/9/9/9/4K4 w");
        assert_eq!(check_move(&board, mv("e4 a4")), Err(Illegal::FlyingGeneral));
        assert_eq!(check_move(&board, mv("e4 e8")), Ok(()));
        // A general may not step onto the open file of the other.
        let side = fen("3k5/9/9/9/9/9/9/9/9/4K4 w");
        assert_eq!(check_move(&side, mv("e0 d0")), Err(Illegal::FlyingGeneral));
        assert!(!in_check(&side, Side::Black));
        assert!(in_check(&fen("4k4/9/9/9/9/9/9/9/9/4K4 b"), Side::Black));
    }

    #[test]
    fn checks_by_each_attacker() {
        assert!(in_check(&fen("4k4/9/9/9/9/4R4/9/9/9/3K5 b"), Side::Black)); // chariot
        assert!(in_check(&fen("4k4/9/4p4/9/9/4C4/9/9/9/3K5 b"), Side::Black)); // cannon over a screen
        assert!(!in_check(&fen("4k4/9/9/9/9/4C4/9/9/9/3K5 b"), Side::Black)); // no screen
        assert!(in_check(&fen("4k4/9/5N3/9/9/9/9/9/9/3K5 b"), Side::Black)); // horse f7
        assert!(!in_check(&fen("4k4/5a3/5N3/9/9/9/9/9/9/3K5 b"), Side::Black)); // leg f8 blocked
        assert!(in_check(&fen("4k4/4P4/9/9/9/9/9/9/9/3K5 b"), Side::Black)); // soldier e8
                                                                             // A move that walks into check is refused.
        let board = fen("3k5/9/9/9/9/9/9/9/4R4/5K3 b");
        assert_eq!(check_move(&board, mv("d9 e9")), Err(Illegal::Check));
    }

    #[test]
    fn checkmate_and_stalemate() {
        let mate = fen("1R2k4/R8/9/9/9/9/9/9/9/3K5 b"); // two chariots on ranks 9 and 8
        assert!(in_check(&mate, Side::Black));
        assert_eq!(status(&mate), Status::Checkmate);
        assert!(legal_moves(&mate).is_empty());
        let stale = fen("3k5/R8/9/9/4R4/9/9/9/9/5K3 b"); // d9 is safe; e9 and d8 are not
        assert!(!in_check(&stale, Side::Black));
        assert_eq!(status(&stale), Status::Stalemate);
        let escape = fen("1R2k4/9/9/9/9/9/9/9/9/3K5 b"); // the general can step to e8
        assert_eq!(status(&escape), Status::Ongoing);
    }

    #[test]
    fn move_generation_agrees_with_validation_in_random_games() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _game in 0..5 {
            let mut board = Board::initial();
            for _ply in 0..60 {
                let moves = legal_moves(&board);
                let every: Vec<Move> = Square::all()
                    .flat_map(|from| Square::all().map(move |to| Move { from, to }))
                    .filter(|&m| check_move(&board, m).is_ok())
                    .collect();
                assert_eq!(moves.len(), every.len(), "{board:?}");
                assert!(every.iter().all(|m| moves.contains(m)), "{board:?}");
                if moves.is_empty() {
                    break;
                }
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let side = board.turn();
                board.apply(moves[(x % moves.len() as u64) as usize]);
                assert!(!in_check(&board, side), "{board:?}");
            }
        }
    }
}
