//! Short, bounded property runs over the line protocols of the chess and file-transfer
//! examples: arbitrary input never panics a parser, what parses prints back to itself, and the
//! chess server's line decoder never yields an over-long line whatever the chunking.

#[path = "../examples/chinese_chess_game/board.rs"]
#[allow(dead_code)]
mod board;
#[path = "../examples/chinese_chess_game/protocol.rs"]
#[allow(dead_code)]
mod protocol;
#[path = "../examples/big_file_transfer/protocol.rs"]
#[allow(dead_code)]
mod transfer;

use kingpin::{Buffer, Decoder};
use proptest::prelude::*;

/// Strings that look like protocol lines more often than random text would.
fn line_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(MOVE|RESIGN|WELCOME|WAIT|START|OK|ERR|CHECK|END|GET) ?[a-z0-9 ]{0,20}",
        "OK [0-9]{1,20} [0-9a-f]{1,16} [0-9]{1,20}",
        "GET [0-9]{1,20} [ -~]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Chess lines: parsing never panics, and a parsed line prints as a line that parses the same.
    #[test]
    fn chess_lines_parse_and_print_back(line in line_like()) {
        if let Ok(req) = protocol::Request::parse(&line) {
            prop_assert_eq!(protocol::Request::parse(&req.to_string()), Ok(req));
        }
        if let Some(reply) = protocol::Reply::parse(&line) {
            prop_assert_eq!(protocol::Reply::parse(&reply.to_string()), Some(reply));
        }
    }

    /// Transfer lines: parsing never panics, and what parses prints back to itself.
    #[test]
    fn transfer_lines_parse_and_print_back(line in line_like()) {
        if let Ok(req) = transfer::Request::parse(&line) {
            let printed = req.to_line();
            prop_assert_eq!(transfer::Request::parse(printed.trim_end_matches('\n')), Ok(req));
        }
        if let Ok(reply) = transfer::Reply::parse(&line) {
            let printed = reply.to_line();
            prop_assert_eq!(transfer::Reply::parse(printed.trim_end_matches('\n')), Ok(reply));
        }
    }

    /// The chess server's line decoder (kingpin's `LinesCodec` within `PlayerLines`), fed
    /// arbitrary lines in arbitrary chunks: never panics, never returns a line over the limit,
    /// and returns exactly the short lines that were sent.
    #[test]
    fn chess_line_decoder_under_any_chunking(
        lines in proptest::collection::vec("[a-zA-Z0-9 ]{0,300}", 0..20),
        cuts in proptest::collection::vec(1usize..64, 1..40),
    ) {
        let stream: Vec<u8> = lines.iter().flat_map(|l| l.bytes().chain(std::iter::once(b'\n'))).collect();
        let mut input = Buffer::new();
        let mut decoder = protocol::PlayerLines::new();
        let (mut got, mut pos, mut cut) = (Vec::new(), 0, cuts.iter().cycle());
        while pos < stream.len() {
            let n = (*cut.next().unwrap()).min(stream.len() - pos);
            input.extend_from_slice(&stream[pos..pos + n]);
            pos += n;
            while let Some(line) = decoder.decode(&mut input).expect("an over-long line is an item, not an error") {
                got.push(line);
            }
        }
        let expected: Vec<protocol::Line> = lines
            .iter()
            .map(|l| if l.len() > protocol::MAX_LINE { protocol::Line::TooLong } else { protocol::Line::Text(l.clone()) })
            .collect();
        for line in &got {
            if let protocol::Line::Text(t) = line {
                prop_assert!(t.len() <= protocol::MAX_LINE);
            }
        }
        // An over-long line is reported once, as soon as it is known to be too long.
        prop_assert_eq!(got, expected);
    }
}
