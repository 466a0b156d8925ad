//! Framing: cutting a connection's byte stream into messages, and writing messages as bytes.
//!
//! A [`Decoder`] takes one frame off the front of a [`Buffer`](crate::Buffer) or says that
//! the frame is not all there yet; an [`Encoder`] appends one frame to a `Buffer`. Three
//! codecs are ready, each with a limit on a frame's size, so that a peer cannot make a
//! connection buffer more than that:
//!
//! | codec | frame on the wire | item |
//! |---|---|---|
//! | [`LinesCodec`] | bytes ended by `\n` or `\r\n` | the line, without its terminator |
//! | [`LengthPrefixed`] | a big-endian `u16` or `u32` length, then that many bytes | the body |
//! | [`FixedHeader`] | a header of N bytes, a body whose length a function reads from it | header and body |
//!
//! On a connection, [`Conn::decode`](crate::Conn::decode) and
//! [`Conn::encode`](crate::Conn::encode) use a codec in a callback, and keep everything else
//! a [`Conn`](crate::Conn) offers (sends, `send_file`, timers, handles):
//!
//! ```
//! use kingpin::codec::LinesCodec;
//! use kingpin::{Conn, IoHandler};
//!
//! /// Answers each line with itself, upper-cased.
//! struct Shout {
//!     lines: LinesCodec,
//! }
//!
//! impl IoHandler for Shout {
//!     type ConnState = ();
//!
//!     fn on_message(&mut self, conn: &mut Conn<'_>) {
//!         // A line over 1 KiB closes the connection (CloseReason::Protocol); a partial line
//!         // waits in the input for the next call.
//!         while let Some(line) = conn.decode(&mut self.lines) {
//!             let _ = conn.encode(&mut self.lines, line.to_ascii_uppercase());
//!         }
//!     }
//! }
//!
//! let handler = Shout { lines: LinesCodec::new(1024) };
//! # let _ = handler;
//! ```
//!
//! # Errors
//!
//! A [`FrameError`] says a frame is over its codec's limit ([`FrameError::TooLong`], as soon
//! as that is known: when a length prefix or header announces it, or when a line has more
//! bytes than the limit without its end) or breaks the protocol otherwise
//! ([`FrameError::Invalid`]). After an error in decoding the stream cannot be framed any more;
//! [`Conn::decode`](crate::Conn::decode) closes the connection with
//! [`CloseReason::Protocol`](crate::CloseReason::Protocol). An encoder refuses an item it
//! cannot frame (e.g. over the limit) and leaves the buffer as it was.
//!
//! # Why encoders write into a `Buffer`
//!
//! A connection's output is a [`Buffer`](crate::Buffer), and an input buffer can become the
//! output without a copy when nothing is queued ahead of it (that is how
//! [`Conn::send_input`](crate::Conn::send_input) echoes). [`Conn::encode`](crate::Conn::encode)
//! encodes into a buffer from the loop's pool and hands it over the same way: the frame is
//! written once, by the encoder, and becomes the output as it is when the output is empty (the
//! usual case of one answer per message); behind other output of the same callback it is
//! appended with one copy and the buffer goes back to the pool. Encoding into a `Vec<u8>`
//! and then sending would always copy the frame a second time, and allocate unless a vector is
//! kept around. A `Buffer` also offers [`Buffer::prepend`](crate::Buffer::prepend), for a
//! header written after its body.
//!
//! # Threads and state
//!
//! A codec is used on the thread that owns the buffer (for a connection, its IO thread). The
//! ready codecs keep no state between calls — only their configuration — so one codec in a
//! handler serves every connection of its thread, and each call looks at the buffer afresh.
//! A [`Decoder`] of your own that keeps state between calls belongs to one stream: keep it in
//! the connection's state ([`crate::IoHandler::ConnState`]).

mod error;
mod fixed_header;
mod length;
mod lines;
mod traits;

pub use error::FrameError;
pub use fixed_header::FixedHeader;
pub use length::LengthPrefixed;
pub use lines::LinesCodec;
pub use traits::{Decoder, Encoder};
