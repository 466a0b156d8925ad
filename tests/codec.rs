//! Property runs of the line and length-prefix codecs under random chunking: random frames on
//! the wire, the stream cut at random points and fed piece by piece into a `Buffer`, decoded
//! after each piece as an `on_message` would. Decoding must yield exactly the frames, in order,
//! whatever the cuts; frames of exactly the limit pass, and a frame one byte over it is an
//! error at the first piece after which it is sure to be over (not only once it is complete).

use kingpin::codec::{Decoder, Encoder, FrameError, LengthPrefixed, LinesCodec};
use kingpin::Buffer;
use proptest::prelude::*;

/// Cuts `data` at `cuts` (any positions, sorted and clamped here) into consecutive pieces.
fn pieces<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|&c| c % (data.len() + 1)).collect();
    at.sort_unstable();
    at.push(data.len());
    let mut prev = 0;
    let mut out = Vec::new();
    for p in at {
        if p > prev {
            out.push(&data[prev..p]);
            prev = p;
        }
    }
    out
}

/// What feeding a stream piece by piece gave.
#[derive(Debug)]
struct Fed {
    /// The frames decoded, in order.
    frames: Vec<Vec<u8>>,
    /// The error, and how many bytes of the stream had been fed when it came.
    error: Option<(FrameError, usize)>,
    /// Bytes left in the buffer at the end.
    left: usize,
    /// Every piece's end offset into the stream.
    ends: Vec<usize>,
}

/// Feeds `wire`, cut at `cuts`, into a small buffer, decoding all it can after each piece.
fn feed<D: Decoder<Item = Vec<u8>>>(codec: &mut D, wire: &[u8], cuts: &[usize]) -> Fed {
    let mut buf = Buffer::with_capacity(16);
    let mut fed = Fed { frames: Vec::new(), error: None, left: 0, ends: Vec::new() };
    let mut at = 0;
    'pieces: for piece in pieces(wire, cuts) {
        buf.extend_from_slice(piece);
        at += piece.len();
        fed.ends.push(at);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => fed.frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    fed.error = Some((e, at));
                    break 'pieces;
                }
            }
        }
    }
    fed.left = buf.len();
    fed
}

// ---------------------------------------------------------------------------------------------
// Lines
// ---------------------------------------------------------------------------------------------

/// Bytes a line may hold: anything but '\n', with '\r' (alone, inside a line) among them.
const LINE_BYTES: &[u8] = b"ab \r\t\0\xff";

/// A line's bytes and whether it ends with "\r\n" rather than "\n".
#[derive(Debug, Clone)]
struct Line {
    bytes: Vec<u8>,
    crlf: bool,
}

impl Line {
    /// The line on the wire. A line whose last byte is '\r' is always sent with "\r\n": with
    /// "\n" alone, that '\r' would be taken for part of the terminator.
    fn wire(&self) -> Vec<u8> {
        let crlf = self.crlf || self.bytes.last() == Some(&b'\r');
        let mut out = self.bytes.clone();
        out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        out
    }
}

/// A line of exactly `len` bytes.
fn line_of(len: usize) -> impl Strategy<Value = Line> {
    (prop::collection::vec(prop::sample::select(LINE_BYTES), len), any::<bool>())
        .prop_map(|(bytes, crlf)| Line { bytes, crlf })
}

/// A line within `max`: often empty or of exactly `max` bytes.
fn good_line(max: usize) -> impl Strategy<Value = Line> {
    prop_oneof![3 => 0..=max, 1 => Just(max), 1 => Just(0)].prop_flat_map(line_of)
}

/// `max`, the good lines, maybe a line of `max + 1` bytes after them (and more good lines
/// after that, which must never come out), and the cuts.
#[allow(clippy::type_complexity)]
fn line_case() -> impl Strategy<Value = (usize, Vec<Line>, Option<(Line, Vec<Line>)>, Vec<usize>)> {
    (0usize..24).prop_flat_map(|max| {
        (
            Just(max),
            prop::collection::vec(good_line(max), 0..24),
            prop::option::of((line_of(max + 1), prop::collection::vec(good_line(max), 0..3))),
            prop::collection::vec(any::<usize>(), 0..40),
        )
    })
}

/// The least length of an unended line, as the codec counts it: a last '\r' may begin "\r\n".
fn unended_len(bytes: &[u8]) -> usize {
    bytes.len() - usize::from(bytes.last() == Some(&b'\r'))
}

// ---------------------------------------------------------------------------------------------
// Length prefixes
// ---------------------------------------------------------------------------------------------

/// A body within `max`: often empty or of exactly `max` bytes.
fn good_body(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![3 => 0..=max, 1 => Just(max), 1 => Just(0)].prop_flat_map(|n| prop::collection::vec(any::<u8>(), n))
}

/// The prefix width (`true`: u32), `max`, the good bodies, maybe a body of `max + 1` bytes
/// (then more good ones, which must never come out), and the cuts.
#[allow(clippy::type_complexity)]
fn length_case() -> impl Strategy<Value = (bool, usize, Vec<Vec<u8>>, Option<(Vec<u8>, Vec<Vec<u8>>)>, Vec<usize>)> {
    (any::<bool>(), 0usize..40).prop_flat_map(|(wide, max)| {
        (
            Just(wide),
            Just(max),
            prop::collection::vec(good_body(max), 0..24),
            prop::option::of((
                prop::collection::vec(any::<u8>(), max + 1),
                prop::collection::vec(good_body(max), 0..3),
            )),
            prop::collection::vec(any::<usize>(), 0..40),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Lines cut anywhere come out whole and in order, with "\n" or "\r\n" stripped, empty lines
    /// and lines of exactly the limit included; a line one byte over the limit is an error at
    /// the first piece after which more than `max` of its bytes (not counting a last '\r') or
    /// its end are buffered, and nothing after it comes out.
    #[test]
    fn lines_survive_any_chunking((max, good, bad, cuts) in line_case()) {
        let mut wire: Vec<u8> = good.iter().flat_map(Line::wire).collect();
        let bad_at = wire.len();
        if let Some((line, after)) = &bad {
            wire.extend(line.wire());
            wire.extend(after.iter().flat_map(Line::wire));
        }
        let fed = feed(&mut LinesCodec::new(max), &wire, &cuts);
        let want: Vec<Vec<u8>> = good.iter().map(|l| l.bytes.clone()).collect();
        prop_assert_eq!(&fed.frames, &want);
        match &bad {
            None => {
                prop_assert!(fed.error.is_none(), "{:?}", fed.error);
                prop_assert_eq!(fed.left, 0);
            }
            Some((line, _)) => {
                let end = bad_at + line.wire().len();
                let sure = |fed_to: usize| {
                    let seen = &wire[bad_at..fed_to.min(end)];
                    seen.contains(&b'\n') || unended_len(seen) > max
                };
                let first = fed.ends.iter().copied().find(|&e| e > bad_at && sure(e));
                let (error, at) = fed.error.clone().expect("the long line is an error");
                prop_assert_eq!(Some(at), first, "the error comes at the first piece that makes it sure");
                let seen = if at >= end { max + 1 } else { unended_len(&wire[bad_at..at]) };
                prop_assert_eq!(error, FrameError::TooLong { limit: max, seen });
            }
        }
    }

    /// Length-prefixed bodies cut anywhere come out whole and in order, empty ones and ones of
    /// exactly the limit included; a prefix announcing one byte over the limit is an error as
    /// soon as the prefix is buffered, before any of the body, and nothing after it comes out.
    #[test]
    fn length_prefixed_frames_survive_any_chunking((wide, max, good, bad, cuts) in length_case()) {
        let mut codec = if wide { LengthPrefixed::u32(max) } else { LengthPrefixed::u16(max) };
        let mut wire = Buffer::new();
        for body in &good {
            codec.encode(body, &mut wire).expect("within the limit");
        }
        let bad_at = wire.len();
        if let Some((body, after)) = &bad {
            prop_assert!(codec.encode(body, &mut Buffer::new()).is_err(), "the encoder refuses it too");
            let len = (body.len() as u32).to_be_bytes();
            wire.extend_from_slice(if wide { &len[..] } else { &len[2..] });
            wire.extend_from_slice(body);
            for body in after {
                codec.encode(body, &mut wire).expect("within the limit");
            }
        }
        let fed = feed(&mut codec, wire.as_slice(), &cuts);
        prop_assert_eq!(&fed.frames, &good);
        match &bad {
            None => {
                prop_assert!(fed.error.is_none(), "{:?}", fed.error);
                prop_assert_eq!(fed.left, 0);
            }
            Some(_) => {
                let first = fed.ends.iter().copied().find(|&e| e >= bad_at + codec.prefix_len());
                let (error, at) = fed.error.clone().expect("the long frame is an error");
                prop_assert_eq!(Some(at), first, "the error comes with the prefix, not the body");
                prop_assert_eq!(error, FrameError::TooLong { limit: max, seen: max + 1 });
            }
        }
    }

    /// Encoding a line either refuses it (over the limit, a '\n' inside, a last '\r') and
    /// writes nothing, or writes what decodes as that very line.
    #[test]
    fn encoded_lines_decode_as_themselves(max in 0usize..16, line in prop::collection::vec(prop::sample::select(b"a\r\n".to_vec()), 0..20)) {
        let mut codec = LinesCodec::new(max);
        let mut buf = Buffer::new();
        let valid = line.len() <= max && !line.contains(&b'\n') && line.last() != Some(&b'\r');
        match codec.encode(&line, &mut buf) {
            Ok(()) => {
                prop_assert!(valid);
                prop_assert_eq!(codec.decode(&mut buf), Ok(Some(line)));
                prop_assert!(buf.is_empty());
            }
            Err(_) => {
                prop_assert!(!valid);
                prop_assert!(buf.is_empty());
            }
        }
    }
}

/// The limits at the edges of what a prefix can say: 65,535 with a `u16` prefix.
#[test]
fn a_u16_prefix_carries_a_body_of_65535_bytes() {
    let mut codec = LengthPrefixed::u16(usize::MAX);
    assert_eq!(codec.max_length(), 65_535);
    let body: Vec<u8> = (0..65_535u32).map(|i| i as u8).collect();
    let mut wire = Buffer::new();
    codec.encode(&body, &mut wire).unwrap();
    let cuts: Vec<usize> = (0..200).map(|i| i * 331).collect();
    let fed = feed(&mut codec, wire.as_slice(), &cuts);
    assert_eq!(fed.frames, [body]);
    assert!(fed.error.is_none() && fed.left == 0);
}
