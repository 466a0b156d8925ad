//! [`LengthPrefixed`]: frames that begin with their length.

use super::error::FrameError;
use super::traits::{Decoder, Encoder};
use crate::io::buffer::Buffer;

/// The width of a length prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Width {
    U16,
    U32,
}

/// Frames that begin with the length of their body, a big-endian `u16` or `u32` (the prefix
/// does not count itself), followed by the body: at most `max_length` bytes.
///
/// Decoding yields the body as an owned `Vec<u8>` (copied once out of the input); a frame of
/// length 0 is an empty vector. Encoding writes the prefix and the body.
///
/// Used on the thread that owns the buffer. The codec keeps no state between calls (only its
/// width and limit), so one codec serves every connection of a thread; a call on an
/// incomplete frame reads its prefix again, which costs next to nothing.
///
/// # Errors
///
/// [`FrameError::TooLong`] from decoding as soon as a prefix announces more than
/// `max_length` bytes, before any of the body has arrived; from encoding for a body over the
/// limit.
///
/// # Examples
///
/// ```
/// use kingpin::codec::{Decoder, Encoder, FrameError, LengthPrefixed};
/// use kingpin::Buffer;
///
/// let mut codec = LengthPrefixed::u16(1024);
/// let mut buf = Buffer::new();
/// codec.encode(b"hello", &mut buf)?;
/// assert_eq!(buf.as_slice(), b"\x00\x05hello");
/// assert_eq!(codec.decode(&mut buf), Ok(Some(b"hello".to_vec())));
///
/// buf.extend_from_slice(&[0x04, 0x01]); // announces 1025 bytes
/// assert_eq!(codec.decode(&mut buf), Err(FrameError::TooLong { limit: 1024, seen: 1025 }));
/// # Ok::<(), FrameError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthPrefixed {
    width: Width,
    /// The longest body.
    max_length: usize,
}

impl LengthPrefixed {
    /// Frames with a 2-byte big-endian length prefix and bodies of at most `max_length` bytes
    /// (at most 65,535, what a `u16` can say: a larger limit is lowered to that).
    pub fn u16(max_length: usize) -> Self {
        LengthPrefixed { width: Width::U16, max_length: max_length.min(usize::from(u16::MAX)) }
    }

    /// Frames with a 4-byte big-endian length prefix and bodies of at most `max_length` bytes
    /// (at most `u32::MAX`: a larger limit is lowered to that).
    pub fn u32(max_length: usize) -> Self {
        let most = usize::try_from(u32::MAX).unwrap_or(usize::MAX);
        LengthPrefixed { width: Width::U32, max_length: max_length.min(most) }
    }

    /// The longest body accepted, in bytes.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The length of the prefix: 2 or 4 bytes.
    pub fn prefix_len(&self) -> usize {
        match self.width {
            Width::U16 => 2,
            Width::U32 => 4,
        }
    }
}

impl Decoder for LengthPrefixed {
    type Item = Vec<u8>;

    fn decode(&mut self, src: &mut Buffer) -> Result<Option<Vec<u8>>, FrameError> {
        let bytes = src.as_slice();
        let p = self.prefix_len();
        let Some(prefix) = bytes.get(..p) else { return Ok(None) };
        let len = match self.width {
            Width::U16 => usize::from(u16::from_be_bytes([prefix[0], prefix[1]])),
            Width::U32 => {
                let n = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
                usize::try_from(n).unwrap_or(usize::MAX)
            }
        };
        if len > self.max_length {
            return Err(FrameError::TooLong { limit: self.max_length, seen: len });
        }
        if bytes.len() - p < len {
            return Ok(None);
        }
        src.advance(p);
        Ok(Some(src.split_to(len)))
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for LengthPrefixed {
    fn encode(&mut self, body: T, dst: &mut Buffer) -> Result<(), FrameError> {
        let body = body.as_ref();
        if body.len() > self.max_length {
            return Err(FrameError::TooLong { limit: self.max_length, seen: body.len() });
        }
        dst.reserve(self.prefix_len() + body.len());
        // The limit is within the prefix's range (see the constructors): the casts are exact.
        match self.width {
            Width::U16 => dst.extend_from_slice(&(body.len() as u16).to_be_bytes()),
            Width::U32 => dst.extend_from_slice(&(body.len() as u32).to_be_bytes()),
        }
        dst.extend_from_slice(body);
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

    #[test]
    fn waits_for_the_prefix_then_for_the_body() {
        let mut c = LengthPrefixed::u32(10);
        let mut b = buf(&[0, 0, 0]);
        assert_eq!(c.decode(&mut b), Ok(None));
        b.extend_from_slice(&[3, b'a', b'b']);
        assert_eq!(c.decode(&mut b), Ok(None));
        assert_eq!(b.len(), 6, "nothing consumed while waiting");
        b.extend_from_slice(b"c\0\0\0\0rest");
        assert_eq!(c.decode(&mut b), Ok(Some(b"abc".to_vec())));
        assert_eq!(c.decode(&mut b), Ok(Some(Vec::new())), "an empty frame");
        assert_eq!(b.as_slice(), b"rest");
    }

    #[test]
    fn an_announced_length_over_the_limit_fails_before_the_body() {
        let mut c = LengthPrefixed::u16(300);
        assert_eq!(c.decode(&mut buf(&[1, 44])), Ok(None), "exactly the limit waits for its body");
        assert_eq!(c.decode(&mut buf(&[1, 45])), Err(FrameError::TooLong { limit: 300, seen: 301 }));
        let mut c = LengthPrefixed::u32(usize::MAX);
        assert_eq!(c.max_length(), u32::MAX as usize);
        assert_eq!(c.decode(&mut buf(&[0xff; 4])), Ok(None), "u32::MAX is within the limit");
    }

    #[test]
    fn limits_are_lowered_to_what_the_prefix_can_say() {
        assert_eq!(LengthPrefixed::u16(1 << 20).max_length(), 65_535);
        assert_eq!(LengthPrefixed::u16(7).max_length(), 7);
        assert_eq!((LengthPrefixed::u16(1).prefix_len(), LengthPrefixed::u32(1).prefix_len()), (2, 4));
    }

    #[test]
    fn encoding_round_trips_and_refuses_bodies_over_the_limit() {
        let mut c = LengthPrefixed::u16(65_535);
        let mut out = Buffer::new();
        let big = vec![7u8; 65_535];
        c.encode(&big, &mut out).unwrap();
        assert_eq!(&out.as_slice()[..2], [0xff, 0xff]);
        assert_eq!(c.encode(vec![0u8; 65_536], &mut out), Err(FrameError::TooLong { limit: 65_535, seen: 65_536 }));
        assert_eq!(out.len(), 2 + 65_535, "untouched by the refusal");
        assert_eq!(c.decode(&mut out), Ok(Some(big)));
        let mut c = LengthPrefixed::u32(4);
        c.encode("", &mut out).unwrap();
        c.encode("abcd", &mut out).unwrap();
        assert_eq!(out.as_slice(), b"\0\0\0\0\0\0\0\x04abcd");
    }
}
