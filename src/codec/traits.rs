//! [`Decoder`] and [`Encoder`]: what a codec does to a [`Buffer`].

use super::error::FrameError;
use crate::io::buffer::Buffer;

/// Takes frames off the front of a byte stream, one per call.
///
/// Called on the thread that owns the buffer (for a connection, its IO thread), typically in
/// a loop in [`crate::IoHandler::on_message`], through [`crate::Conn::decode`].
///
/// A decoder's contract, which [`crate::Conn::decode`] relies on:
///
/// - `Ok(Some(frame))`: exactly the frame's bytes were consumed from `src`; what follows it
///   stays for the next call.
/// - `Ok(None)`: no whole frame yet. `src` is left as it was (a decoder that keeps state may
///   consume what it remembers); call again once more bytes have arrived.
/// - `Err(_)`: the stream cannot be framed. As soon as a frame is known to be over the
///   decoder's limit — not only once it is all there — the decoder says so, so that a peer
///   cannot make the buffer grow past the limit by never finishing a frame. What is left in
///   `src` is unspecified.
///
/// # Examples
///
/// A decoder of fixed 4-byte big-endian numbers:
///
/// ```
/// use kingpin::codec::{Decoder, FrameError};
/// use kingpin::Buffer;
///
/// struct Numbers;
///
/// impl Decoder for Numbers {
///     type Item = u32;
///
///     fn decode(&mut self, src: &mut Buffer) -> Result<Option<u32>, FrameError> {
///         let Some(bytes) = src.as_slice().get(..4) else { return Ok(None) };
///         let n = u32::from_be_bytes(bytes.try_into().expect("4 bytes"));
///         src.advance(4);
///         Ok(Some(n))
///     }
/// }
///
/// let mut buf = Buffer::new();
/// buf.extend_from_slice(&[0, 0, 1, 0, 0, 0]);
/// assert_eq!(Numbers.decode(&mut buf), Ok(Some(256)));
/// assert_eq!(Numbers.decode(&mut buf), Ok(None)); // 2 of 4 bytes so far
/// ```
pub trait Decoder {
    /// A decoded frame.
    type Item;

    /// Takes the next frame off the front of `src`, or returns `Ok(None)` if it is not all
    /// there yet.
    ///
    /// # Errors
    ///
    /// A [`FrameError`] when the bytes cannot be a frame: [`FrameError::TooLong`] as soon as a
    /// frame is known to be over the limit, [`FrameError::Invalid`] for other breaches.
    fn decode(&mut self, src: &mut Buffer) -> Result<Option<Self::Item>, FrameError>;
}

/// Appends frames to a byte stream: one item, one frame.
///
/// Called on the thread that owns the buffer; on a connection, through
/// [`crate::Conn::encode`], which hands the frame to the connection's output without copying
/// it again when nothing is queued ahead of it (see the [module docs](crate::codec) for why
/// the target is a [`Buffer`]).
///
/// # Examples
///
/// ```
/// use kingpin::codec::{Encoder, FrameError};
/// use kingpin::Buffer;
///
/// struct Numbers;
///
/// impl Encoder<u32> for Numbers {
///     fn encode(&mut self, n: u32, dst: &mut Buffer) -> Result<(), FrameError> {
///         dst.extend_from_slice(&n.to_be_bytes());
///         Ok(())
///     }
/// }
///
/// let mut buf = Buffer::new();
/// Numbers.encode(256, &mut buf).unwrap();
/// assert_eq!(buf.as_slice(), [0, 0, 1, 0]);
/// ```
pub trait Encoder<Item> {
    /// Appends `item`, framed, after the readable bytes of `dst`.
    ///
    /// # Errors
    ///
    /// A [`FrameError`] when `item` cannot be framed (e.g. it is over the codec's limit);
    /// `dst` is then left as it was.
    fn encode(&mut self, item: Item, dst: &mut Buffer) -> Result<(), FrameError>;
}
