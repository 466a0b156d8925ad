//! [`FixedHeader`]: frames with a header of fixed size that says how long the body is.

use std::fmt;

use super::error::FrameError;
use super::traits::{Decoder, Encoder};
use crate::io::buffer::Buffer;

/// Frames made of a header of `header_len` bytes and a body whose length a function reads
/// from the header, e.g. a binary protocol's `| magic | type | flags | length |`. Bodies are
/// at most `max_body` bytes.
///
/// The function, `FnMut(&[u8]) -> Result<usize, FrameError>`, is given exactly the header's
/// bytes and returns the body's length, or an error for a bad header (a wrong magic number,
/// an unknown version: [`FrameError::invalid`]). It is called again each time
/// [`decode`](Decoder::decode) looks at a frame that is not all there, so it should depend on
/// the header alone.
///
/// Decoding yields the whole frame, header then body, as one owned `Vec<u8>` (copied once out
/// of the input): the header's fields stay at hand, `&frame[..header_len]`, and the body is
/// `&frame[header_len..]`. Encoding takes a `(header, body)` pair, so the two need not be put
/// together first, and checks that the header announces the body's length. A header with a
/// body length of 0 makes fixed-size records.
///
/// Used on the thread that owns the buffer. The codec keeps no state of the stream between
/// calls, so one codec serves every connection of a thread.
///
/// # Errors
///
/// Decoding: [`FrameError::TooLong`] as soon as a header announces a body over `max_body`,
/// before the body arrives; the function's own error for a bad header. Encoding: a header
/// that is not `header_len` bytes, or that announces another length than the body's
/// ([`FrameError::Invalid`]); a body over the limit ([`FrameError::TooLong`]).
///
/// # Examples
///
/// A 6-byte header: a magic byte, a message type, and the body length as a big-endian `u32`:
///
/// ```
/// use kingpin::codec::{Decoder, Encoder, FixedHeader, FrameError};
/// use kingpin::Buffer;
///
/// let mut codec = FixedHeader::new(6, 64 * 1024, |h: &[u8]| {
///     if h[0] != 0xAB {
///         return Err(FrameError::invalid(format!("bad magic {:#x}", h[0])));
///     }
///     Ok(u32::from_be_bytes([h[2], h[3], h[4], h[5]]) as usize)
/// });
///
/// let mut buf = Buffer::new();
/// codec.encode((&[0xAB, 7, 0, 0, 0, 2], b"hi"), &mut buf)?;
/// let frame = codec.decode(&mut buf)?.expect("a whole frame");
/// assert_eq!((frame[1], &frame[6..]), (7, &b"hi"[..])); // the type, the body
///
/// buf.extend_from_slice(&[0xCD, 7, 0, 0, 0, 0]);
/// assert_eq!(codec.decode(&mut buf), Err(FrameError::invalid("bad magic 0xcd")));
/// # Ok::<(), FrameError>(())
/// ```
#[derive(Clone)]
pub struct FixedHeader<F> {
    /// The header's size in bytes.
    header_len: usize,
    /// The longest body.
    max_body: usize,
    /// Reads the body's length from the header.
    body_len: F,
}

impl<F> FixedHeader<F>
where
    F: FnMut(&[u8]) -> Result<usize, FrameError>,
{
    /// Frames with a header of `header_len` bytes, from which `body_len` reads the length of
    /// the body that follows, at most `max_body` bytes.
    ///
    /// # Panics
    ///
    /// Panics if `header_len` is 0: every frame must take at least one byte off the stream.
    pub fn new(header_len: usize, max_body: usize, body_len: F) -> Self {
        assert!(header_len > 0, "FixedHeader::new: the header must be at least one byte");
        FixedHeader { header_len, max_body, body_len }
    }
}

impl<F> FixedHeader<F> {
    /// The header's size in bytes.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The longest body accepted, in bytes.
    pub fn max_body(&self) -> usize {
        self.max_body
    }
}

impl<F> Decoder for FixedHeader<F>
where
    F: FnMut(&[u8]) -> Result<usize, FrameError>,
{
    type Item = Vec<u8>;

    fn decode(&mut self, src: &mut Buffer) -> Result<Option<Vec<u8>>, FrameError> {
        let bytes = src.as_slice();
        let Some(header) = bytes.get(..self.header_len) else { return Ok(None) };
        let body = (self.body_len)(header)?;
        if body > self.max_body {
            return Err(FrameError::TooLong { limit: self.max_body, seen: body });
        }
        // `body <= max_body`, but both are the user's: a sum past usize is over any limit.
        let total =
            self.header_len.checked_add(body).ok_or(FrameError::TooLong { limit: self.max_body, seen: body })?;
        if bytes.len() < total {
            return Ok(None);
        }
        Ok(Some(src.split_to(total)))
    }
}

impl<F, H, B> Encoder<(H, B)> for FixedHeader<F>
where
    F: FnMut(&[u8]) -> Result<usize, FrameError>,
    H: AsRef<[u8]>,
    B: AsRef<[u8]>,
{
    fn encode(&mut self, (header, body): (H, B), dst: &mut Buffer) -> Result<(), FrameError> {
        let (header, body) = (header.as_ref(), body.as_ref());
        if header.len() != self.header_len {
            return Err(FrameError::invalid(format!(
                "a header of {} bytes to encode, not {}",
                header.len(),
                self.header_len
            )));
        }
        if body.len() > self.max_body {
            return Err(FrameError::TooLong { limit: self.max_body, seen: body.len() });
        }
        let announced = (self.body_len)(header)?;
        if announced != body.len() {
            return Err(FrameError::invalid(format!(
                "the header to encode announces a body of {announced} bytes, not {}",
                body.len()
            )));
        }
        dst.reserve(header.len() + body.len());
        dst.extend_from_slice(header);
        dst.extend_from_slice(body);
        Ok(())
    }
}

impl<F> fmt::Debug for FixedHeader<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedHeader")
            .field("header_len", &self.header_len)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3-byte header: a type, then the body length as a big-endian `u16`.
    fn codec(max_body: usize) -> FixedHeader<impl FnMut(&[u8]) -> Result<usize, FrameError> + Clone> {
        FixedHeader::new(3, max_body, |h: &[u8]| Ok(usize::from(u16::from_be_bytes([h[1], h[2]]))))
    }

    fn buf(bytes: &[u8]) -> Buffer {
        let mut b = Buffer::new();
        b.extend_from_slice(bytes);
        b
    }

    #[test]
    fn waits_for_the_header_then_the_body_and_yields_both() {
        let mut c = codec(8);
        let mut b = buf(&[9, 0]);
        assert_eq!(c.decode(&mut b), Ok(None));
        b.extend_from_slice(&[2, b'x']);
        assert_eq!(c.decode(&mut b), Ok(None));
        assert_eq!(b.len(), 4, "nothing consumed while waiting");
        b.extend_from_slice(&[b'y', 5, 0, 0, 1]);
        assert_eq!(c.decode(&mut b), Ok(Some(vec![9, 0, 2, b'x', b'y'])));
        assert_eq!(c.decode(&mut b), Ok(Some(vec![5, 0, 0])), "an empty body");
        assert_eq!(b.as_slice(), [1]);
    }

    #[test]
    fn a_body_over_the_limit_fails_before_it_arrives() {
        let mut c = codec(8);
        assert_eq!(c.decode(&mut buf(&[0, 0, 8])), Ok(None), "exactly the limit waits");
        assert_eq!(c.decode(&mut buf(&[0, 0, 9])), Err(FrameError::TooLong { limit: 8, seen: 9 }));
        let mut huge = FixedHeader::new(1, usize::MAX, |_: &[u8]| Ok(usize::MAX));
        assert_eq!(huge.decode(&mut buf(&[0])), Err(FrameError::TooLong { limit: usize::MAX, seen: usize::MAX }));
    }

    #[test]
    fn the_functions_error_is_the_decoders() {
        let mut c = FixedHeader::new(2, 8, |h: &[u8]| match h[0] {
            1 => Ok(usize::from(h[1])),
            v => Err(FrameError::invalid(format!("version {v}"))),
        });
        assert_eq!(c.decode(&mut buf(&[1, 0])), Ok(Some(vec![1, 0])));
        assert_eq!(c.decode(&mut buf(&[2, 0])), Err(FrameError::invalid("version 2")));
    }

    #[test]
    fn a_zero_body_length_makes_fixed_records() {
        let mut c = FixedHeader::new(4, 0, |_: &[u8]| Ok(0));
        let mut b = buf(b"abcdefghij");
        assert_eq!(c.decode(&mut b), Ok(Some(b"abcd".to_vec())));
        assert_eq!(c.decode(&mut b), Ok(Some(b"efgh".to_vec())));
        assert_eq!(c.decode(&mut b), Ok(None));
    }

    #[test]
    #[should_panic(expected = "at least one byte")]
    fn an_empty_header_is_a_bug() {
        let _ = FixedHeader::new(0, 8, |_: &[u8]| Ok(1));
    }

    #[test]
    fn encoding_checks_the_header_against_the_body() {
        let mut c = codec(4);
        let mut out = Buffer::new();
        c.encode(([7, 0, 2], b"ok"), &mut out).unwrap();
        c.encode((vec![7, 0, 0], ""), &mut out).unwrap();
        assert_eq!(out.as_slice(), [7, 0, 2, b'o', b'k', 7, 0, 0]);
        let before = out.len();
        assert!(matches!(c.encode(([7, 0], b""), &mut out), Err(FrameError::Invalid(_))), "short header");
        assert!(matches!(c.encode(([7, 0, 3], b"ok"), &mut out), Err(FrameError::Invalid(_))), "wrong length");
        assert_eq!(c.encode(([7, 0, 5], b"12345"), &mut out), Err(FrameError::TooLong { limit: 4, seen: 5 }));
        assert_eq!(out.len(), before, "untouched by refusals");
        assert_eq!(c.clone().decode(&mut out), Ok(Some(vec![7, 0, 2, b'o', b'k'])));
        assert_eq!(format!("{c:?}"), "FixedHeader { header_len: 3, max_body: 4, .. }");
    }
}
