//! [`FrameError`]: why bytes could not be cut into a frame, or an item not framed.

use std::error::Error;
use std::fmt;

/// Why a [`Decoder`](super::Decoder) could not take the next frame off its input, or an
/// [`Encoder`](super::Encoder) refused an item.
///
/// After a decoding error the stream cannot be framed any more (where would the next frame
/// begin?): [`Conn::decode`](crate::Conn::decode) closes the connection with
/// [`CloseReason::Protocol`](crate::CloseReason::Protocol), whose message is this error's
/// `Display`.
///
/// # Examples
///
/// ```
/// use kingpin::codec::FrameError;
///
/// let e = FrameError::TooLong { limit: 1024, seen: 4096 };
/// assert_eq!(e.to_string(), "frame too long: 4096 bytes, over the limit of 1024");
/// assert_eq!(FrameError::invalid("bad magic").to_string(), "invalid frame: bad magic");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame is over its codec's limit. Decoders say so as soon as it is known, before the
    /// frame is all there, so that a peer cannot make the input grow past the limit.
    TooLong {
        /// The codec's limit, in bytes.
        limit: usize,
        /// The frame's length as far as it is known: the length a prefix or header announces,
        /// the length of an encoder's item, or, for a line whose end has not arrived, the
        /// bytes seen so far (the line is at least that long).
        seen: usize,
    },
    /// The bytes break the protocol in another way (a bad header, a line to encode that holds
    /// a newline, …); the message says how.
    Invalid(String),
}

impl FrameError {
    /// A [`FrameError::Invalid`] with `message`, e.g. for the body-length function of a
    /// [`FixedHeader`](super::FixedHeader) that finds a bad header.
    pub fn invalid(message: impl Into<String>) -> Self {
        FrameError::Invalid(message.into())
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { limit, seen } => write!(f, "frame too long: {seen} bytes, over the limit of {limit}"),
            FrameError::Invalid(message) => write!(f, "invalid frame: {message}"),
        }
    }
}

impl Error for FrameError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_limit_and_the_size() {
        let e = FrameError::TooLong { limit: 10, seen: 11 };
        assert_eq!(e.to_string(), "frame too long: 11 bytes, over the limit of 10");
        let boxed: Box<dyn Error + Send + Sync> = Box::new(e);
        assert!(boxed.to_string().contains("limit of 10"));
        assert_eq!(FrameError::invalid(String::from("x")), FrameError::Invalid("x".into()));
    }
}
