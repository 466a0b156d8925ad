//! [`LinesCodec`]: frames that end with `\n` or `\r\n`.

use super::error::FrameError;
use super::traits::{Decoder, Encoder};
use crate::io::buffer::Buffer;

/// Lines of bytes: each frame ends with `\n` or `\r\n`, and is at most `max_length` bytes
/// without that terminator.
///
/// Decoding yields the line without its terminator as an owned `Vec<u8>` (copied once out of
/// the input); an empty line is an empty vector. Encoding writes the line and `\n`. Lines are
/// bytes, not text: decode them with [`String::from_utf8`] if the protocol says UTF-8.
///
/// Used on the thread that owns the buffer. The codec keeps no state between calls (only its
/// limit), so one codec serves every connection of a thread; each call searches the input for
/// the end of a line again, at most `max_length + 2` bytes of it. A line that arrives a few
/// bytes at a time is therefore searched over and over: keep `max_length` to what the protocol
/// needs (a few KiB), not near the connection's input limit, or a slow sender of a long line
/// costs CPU in proportion to the limit's square.
///
/// # Errors
///
/// [`FrameError::TooLong`] from decoding as soon as the line in the input is sure to be over
/// the limit: when its end has arrived, or, before that, when more than `max_length` bytes
/// are buffered without a `\n` (not counting a last `\r`, which may begin a `\r\n`). So the
/// input never holds more than `max_length + 1` bytes of a line that is still arriving.
/// Encoding refuses a line over the limit with [`FrameError::TooLong`], and a line that holds
/// a `\n` or ends with `\r` (it would not decode as itself) with [`FrameError::Invalid`].
///
/// # Examples
///
/// ```
/// use kingpin::codec::{Decoder, Encoder, FrameError, LinesCodec};
/// use kingpin::Buffer;
///
/// let mut lines = LinesCodec::new(8);
/// let mut buf = Buffer::new();
/// buf.extend_from_slice(b"hello\r\n\nwor");
/// assert_eq!(lines.decode(&mut buf), Ok(Some(b"hello".to_vec())));
/// assert_eq!(lines.decode(&mut buf), Ok(Some(Vec::new()))); // an empty line
/// assert_eq!(lines.decode(&mut buf), Ok(None)); // "wor" waits for its end
///
/// buf.extend_from_slice(b"ld, and more");
/// assert_eq!(lines.decode(&mut buf), Err(FrameError::TooLong { limit: 8, seen: 15 }));
///
/// let mut out = Buffer::new();
/// lines.encode("hi", &mut out)?;
/// assert_eq!(out.as_slice(), b"hi\n");
/// # Ok::<(), FrameError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinesCodec {
    /// The longest line, without its terminator.
    max_length: usize,
}

impl LinesCodec {
    /// A codec of lines of at most `max_length` bytes (without the terminator).
    pub fn new(max_length: usize) -> Self {
        LinesCodec { max_length }
    }

    /// The longest line accepted, in bytes, without its terminator.
    pub fn max_length(&self) -> usize {
        self.max_length
    }
}

impl Decoder for LinesCodec {
    type Item = Vec<u8>;

    fn decode(&mut self, src: &mut Buffer) -> Result<Option<Vec<u8>>, FrameError> {
        let max = self.max_length;
        let bytes = src.as_slice();
        // A line of `max` bytes ending with "\r\n" has its '\n' at index `max + 1`: looking
        // further is pointless, but for the error's message.
        let window = &bytes[..bytes.len().min(max.saturating_add(2))];
        let (len, ended) = match window.iter().position(|&b| b == b'\n') {
            Some(nl) => (line_len(bytes, nl), true),
            None if window.len() == bytes.len() => (unended_len(bytes), false),
            None => match bytes[window.len()..].iter().position(|&b| b == b'\n') {
                Some(nl) => (line_len(bytes, window.len() + nl), true),
                None => (unended_len(bytes), false),
            },
        };
        if len > max {
            return Err(FrameError::TooLong { limit: max, seen: len });
        }
        if !ended {
            return Ok(None);
        }
        let line = src.split_to(len);
        let terminator = if src.as_slice().first() == Some(&b'\r') { 2 } else { 1 };
        src.advance(terminator);
        Ok(Some(line))
    }
}

/// The length of the line whose '\n' is at `nl`, without its terminator.
fn line_len(bytes: &[u8], nl: usize) -> usize {
    if nl > 0 && bytes[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    }
}

/// The least length of a line whose end has not arrived: what is buffered, less a last '\r'
/// that may begin its "\r\n".
fn unended_len(bytes: &[u8]) -> usize {
    bytes.len() - usize::from(bytes.last() == Some(&b'\r'))
}

impl<T: AsRef<[u8]>> Encoder<T> for LinesCodec {
    fn encode(&mut self, line: T, dst: &mut Buffer) -> Result<(), FrameError> {
        let line = line.as_ref();
        if line.len() > self.max_length {
            return Err(FrameError::TooLong { limit: self.max_length, seen: line.len() });
        }
        if line.contains(&b'\n') {
            return Err(FrameError::invalid("a line to encode holds a '\\n'"));
        }
        if line.last() == Some(&b'\r') {
            return Err(FrameError::invalid("a line to encode ends with '\\r', which decoding would strip"));
        }
        dst.reserve(line.len() + 1);
        dst.extend_from_slice(line);
        dst.extend_from_slice(b"\n");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(bytes: &[u8]) -> Buffer {
        let mut b = Buffer::new();
        b.extend_from_slice(bytes);
        b
    }

    fn too_long(limit: usize, seen: usize) -> Result<Option<Vec<u8>>, FrameError> {
        Err(FrameError::TooLong { limit, seen })
    }

    #[test]
    fn both_terminators_are_stripped_and_only_a_last_cr_is() {
        let mut c = LinesCodec::new(16);
        let mut b = buf(b"a\nb\r\n\r\n\n c\rd \r\n");
        for want in [&b"a"[..], b"b", b"", b"", b" c\rd "] {
            assert_eq!(c.decode(&mut b), Ok(Some(want.to_vec())));
        }
        assert_eq!(c.decode(&mut b), Ok(None));
        assert!(b.is_empty());
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes_with_either_terminator() {
        let mut c = LinesCodec::new(4);
        let mut b = buf(b"abcd\nefgh\r\n");
        assert_eq!(c.decode(&mut b), Ok(Some(b"abcd".to_vec())));
        assert_eq!(c.decode(&mut b), Ok(Some(b"efgh".to_vec())));
        assert_eq!(c.decode(&mut buf(b"abcde\n")), too_long(4, 5));
        assert_eq!(c.decode(&mut buf(b"abcde\r\n")), too_long(4, 5));
    }

    #[test]
    fn an_unterminated_line_fails_as_soon_as_it_is_sure_to_be_too_long() {
        let mut c = LinesCodec::new(4);
        let mut b = buf(b"abcd");
        assert_eq!(c.decode(&mut b), Ok(None), "may still be a line of 4");
        b.extend_from_slice(b"\r");
        assert_eq!(c.decode(&mut b), Ok(None), "may still end with \\r\\n");
        b.extend_from_slice(b"\n");
        assert_eq!(c.decode(&mut b), Ok(Some(b"abcd".to_vec())));
        assert_eq!(c.decode(&mut buf(b"abcde")), too_long(4, 5), "5 bytes and no end");
        assert_eq!(c.decode(&mut buf(b"abcd\rx")), too_long(4, 6));
        assert_eq!(c.decode(&mut buf(b"abcd\r\r")), too_long(4, 5));
        let mut flood = buf(&[b'x'; 100_000]);
        assert_eq!(c.decode(&mut flood), too_long(4, 100_000));
    }

    #[test]
    fn a_zero_limit_takes_only_empty_lines() {
        let mut c = LinesCodec::new(0);
        let mut b = buf(b"\n\r\n\r");
        assert_eq!(c.decode(&mut b), Ok(Some(Vec::new())));
        assert_eq!(c.decode(&mut b), Ok(Some(Vec::new())));
        assert_eq!(c.decode(&mut b), Ok(None));
        assert_eq!(c.decode(&mut buf(b"x")), too_long(0, 1));
    }

    #[test]
    fn a_huge_limit_does_not_overflow() {
        let mut c = LinesCodec::new(usize::MAX);
        assert_eq!(c.decode(&mut buf(b"abc")), Ok(None));
        assert_eq!(c.decode(&mut buf(b"abc\n")), Ok(Some(b"abc".to_vec())));
    }

    #[test]
    fn encoding_refuses_what_would_not_decode_as_itself() {
        let mut c = LinesCodec::new(3);
        let mut out = buf(b"x");
        assert_eq!(c.encode(&b"abcd"[..], &mut out), Err(FrameError::TooLong { limit: 3, seen: 4 }));
        assert!(matches!(c.encode("a\nb", &mut out), Err(FrameError::Invalid(_))));
        assert!(matches!(c.encode("ab\r", &mut out), Err(FrameError::Invalid(_))));
        assert_eq!(out.as_slice(), b"x", "untouched by refusals");
        c.encode("", &mut out).unwrap();
        c.encode(String::from("a\rb"), &mut out).unwrap();
        c.encode(vec![b'z'; 3], &mut out).unwrap();
        assert_eq!(out.as_slice(), b"x\na\rb\nzzz\n");
    }
}
