//! Drawing the board for a terminal: Chinese piece characters, ANSI colours (red pieces red,
//! black pieces blue), file labels `a`–`i` and rank labels `0`–`9`, the river, and the last
//! move highlighted. The player's own side is at the bottom. A legend names the pieces and
//! tells the sides apart without colour: red's characters are simplified, black's traditional.

use crate::board::{Board, Kind, Move, Piece, Side, Square, FILES, RANKS};

/// ANSI escape sequences, or nothing when colour is off.
struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Clears the terminal and moves the cursor home.
pub const CLEAR: &str = "\x1b[2J\x1b[H";

/// The customary character of a piece: red 帅 仕 相 马 车 炮 兵, black 將 士 象 馬 車 砲 卒.
pub fn glyph(piece: Piece) -> char {
    let (red, black) = match piece.kind {
        Kind::General => ('帅', '將'),
        Kind::Advisor => ('仕', '士'),
        Kind::Elephant => ('相', '象'),
        Kind::Horse => ('马', '馬'),
        Kind::Chariot => ('车', '車'),
        Kind::Cannon => ('炮', '砲'),
        Kind::Soldier => ('兵', '卒'),
    };
    if piece.side == Side::Red {
        red
    } else {
        black
    }
}

/// The kinds in the order the legend lists them.
const KINDS: [Kind; 7] =
    [Kind::General, Kind::Advisor, Kind::Elephant, Kind::Horse, Kind::Chariot, Kind::Cannon, Kind::Soldier];

/// Two lines naming the pieces: red's (simplified characters) with their English names, then
/// black's (traditional characters), in the pieces' colours when `colour` is on.
pub fn legend(colour: bool) -> String {
    let paint = Paint { on: colour };
    let names: Vec<String> = KINDS
        .iter()
        .map(|&kind| format!("{} {}", paint.wrap("1;31", &glyph(Piece::new(Side::Red, kind)).to_string()), kind.name()))
        .collect();
    let black: Vec<String> =
        KINDS.iter().map(|&kind| paint.wrap("1;94", &glyph(Piece::new(Side::Black, kind)).to_string())).collect();
    format!("  red   (simplified):  {}\n  black (traditional): {}\n", names.join("  "), black.join("  "))
}

/// The board as text, seen from `me`'s side, with `last` highlighted. Every point is two
/// columns wide (piece characters are full width; an empty point is a dim `＋`).
pub fn render(board: &Board, me: Side, last: Option<Move>, colour: bool) -> String {
    let paint = Paint { on: colour };
    let files: Vec<i8> = if me == Side::Red { (0..FILES).collect() } else { (0..FILES).rev().collect() };
    let ranks: Vec<i8> = if me == Side::Red { (0..RANKS).rev().collect() } else { (0..RANKS).collect() };
    let labels: String = files.iter().map(|&f| format!("{}   ", (b'a' + f as u8) as char)).collect();
    let labels = format!("     {}\n", labels.trim_end());
    let mut out = labels.clone();
    for (row, &rank) in ranks.iter().enumerate() {
        if row == 5 {
            out += &format!("     {}\n", paint.wrap("2", "~~~~~~~~  楚 河    漢 界  ~~~~~~~~~"));
        }
        out += &format!("{rank:>3}  ");
        for (col, &file) in files.iter().enumerate() {
            let sq = Square { file, rank };
            let cell = match board.get(sq) {
                Some(p) => paint.wrap(if p.side == Side::Red { "1;31" } else { "1;94" }, &glyph(p).to_string()),
                None => paint.wrap("2", "＋"),
            };
            let marked = last.is_some_and(|m| m.from == sq || m.to == sq);
            out += &if marked { paint.wrap("43", &cell) } else { cell };
            if col + 1 < files.len() {
                out += "  ";
            }
        }
        out += &format!("  {rank}\n");
    }
    out + &labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_drawn_from_each_side() {
        let board = Board::initial();
        let red = render(&board, Side::Red, None, false);
        let lines: Vec<&str> = red.lines().collect();
        assert_eq!(lines.len(), 13, "{red}");
        assert_eq!(lines[0], "     a   b   c   d   e   f   g   h   i");
        assert_eq!(lines[1], "  9  車  馬  象  士  將  士  象  馬  車  9");
        assert_eq!(lines[10], "  1  ＋  ＋  ＋  ＋  ＋  ＋  ＋  ＋  ＋  1");
        assert_eq!(lines[11], "  0  车  马  相  仕  帅  仕  相  马  车  0");
        assert!(lines[6].contains("楚 河"));
        let black = render(&board, Side::Black, None, false);
        let lines: Vec<&str> = black.lines().collect();
        assert_eq!(lines[0], "     i   h   g   f   e   d   c   b   a");
        assert_eq!(lines[1], "  0  车  马  相  仕  帅  仕  相  马  车  0");
    }

    #[test]
    fn the_legend_tells_the_sides_apart_without_colour() {
        let text = legend(false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("red") && lines[0].contains("simplified"), "{text}");
        assert!(lines[0].contains("帅 general") && lines[0].contains("炮 cannon") && lines[0].contains("兵 soldier"));
        assert!(lines[1].contains("black") && lines[1].contains("traditional") && lines[1].contains("將  士  象"));
        assert!(!text.contains('\x1b'));
        assert!(legend(true).contains("\x1b[1;94m砲\x1b[0m"));
    }

    #[test]
    fn colours_and_last_move() {
        let mut board = Board::initial();
        let mv = Move::parse("h2 e2").unwrap();
        board.apply(mv);
        let text = render(&board, Side::Red, Some(mv), true);
        assert!(text.contains("\x1b[1;31m炮\x1b[0m"));
        assert!(text.contains("\x1b[1;94m將\x1b[0m"));
        assert!(text.contains("\x1b[43m\x1b[1;31m炮\x1b[0m\x1b[0m"), "the moved cannon is highlighted");
    }
}
