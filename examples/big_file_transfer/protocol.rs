//! The wire protocol: one request line from the client, one reply line from the server, then
//! the file's bytes.
//!
//! ```text
//! client → server   GET <offset> <path>\n            path relative to the server's root
//! server → client   OK <size> <xxh3-hex> <offset>\n  then bytes offset..size, then close
//!                   ERR <reason>\n                   then close
//! ```
//!
//! `size` is the whole file's size and the checksum the XXH3-64 of the whole file, so a
//! resumed download can be verified end to end. Numbers are plain decimal digits (no sign, no
//! spaces), the checksum 16 hex digits. The path comes last and is percent-encoded: a file name
//! on Linux is any bytes but `/` and NUL, not necessarily UTF-8, so every byte outside the
//! printable ASCII range, and `%` itself, travels as `%XX`. A server also takes raw bytes (a
//! hand-typed `GET 0 dir/with space.txt`); only `%` must be escaped, and a newline cannot be
//! sent raw.
//!
//! The server cuts the request line with kingpin's [`LinesCodec`] (through [`RequestLines`]);
//! this module only parses it.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use kingpin::{Buffer, Decoder, FrameError, LinesCodec};

/// Longest request or reply line accepted, newline included (a `\r` before it aside).
pub const MAX_LINE: usize = 4096;

/// The server's framing of request lines: kingpin's [`LinesCodec`] with [`MAX_LINE`], whose
/// error is handed over as an item instead of failing the decode.
///
/// `Conn::decode` closes the connection at once on a framing error, which would leave the
/// client without a reason. Through this decoder it yields `Err(FrameError)` for a line over
/// the limit (as soon as it is known to be, before its end arrives), and the server answers
/// `ERR bad request: line too long` before closing. After such an item the rest of the input
/// cannot be framed: drop it.
#[derive(Clone, Copy, Debug)]
pub struct RequestLines(LinesCodec);

impl RequestLines {
    /// Lines of at most [`MAX_LINE`] bytes, newline included.
    pub fn new() -> Self {
        RequestLines(LinesCodec::new(MAX_LINE - 1))
    }
}

impl Default for RequestLines {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for RequestLines {
    type Item = Result<Vec<u8>, FrameError>;

    fn decode(&mut self, src: &mut Buffer) -> Result<Option<Self::Item>, FrameError> {
        match self.0.decode(src) {
            Ok(line) => Ok(line.map(Ok)),
            Err(e) => Ok(Some(Err(e))),
        }
    }
}

/// A download request: which file, from which byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Path relative to the server's root, `/`-separated, any bytes but NUL.
    pub path: PathBuf,
    /// First byte wanted (the length of a partial download, or 0).
    pub offset: u64,
}

impl Request {
    /// The request line, newline included.
    pub fn to_line(&self) -> String {
        format!("GET {} {}\n", self.offset, encode_path(self.path.as_os_str().as_bytes()))
    }

    /// Parses a request line (without its newline): bytes, or a string.
    ///
    /// # Errors
    /// A reason fit for an `ERR` reply when the line is not `GET <offset> <path>`: an offset
    /// that is not plain decimal digits, an empty path, a bad `%` escape or a NUL.
    pub fn parse<L: AsRef<[u8]> + ?Sized>(line: &L) -> Result<Request, String> {
        let line = line.as_ref();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let usage = || "bad request: expected GET <offset> <path>".to_string();
        let rest = line.strip_prefix(b"GET ").ok_or_else(usage)?;
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(usage)?;
        let (offset, path) = (&rest[..space], &rest[space + 1..]);
        let offset = parse_decimal(offset).ok_or_else(|| {
            format!("bad request: offset {:?} is not a number of bytes", String::from_utf8_lossy(offset))
        })?;
        if path.is_empty() {
            return Err("bad request: empty path".into());
        }
        let path = decode_path(path)?;
        if path.contains(&0) {
            return Err("bad request: NUL in path".into());
        }
        Ok(Request { path: PathBuf::from(OsString::from_vec(path)), offset })
    }
}

/// A plain decimal number: one or more ASCII digits, nothing else (no sign, no spaces), that
/// fits a `u64`.
pub fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// `bytes` with every byte outside `!`..=`~`, and `%`, written as `%XX`.
pub fn encode_path(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The bytes `%XX` escapes stand for; other bytes are taken as they are.
///
/// # Errors
/// A `%` not followed by two hex digits.
pub fn decode_path(s: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = s.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit())).map(|h| u8::from_str_radix(h, 16));
            match byte {
                Some(Ok(b)) => out.push(b),
                _ => return Err("bad request: '%' in the path must be followed by two hex digits".into()),
            }
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The server's answer to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The file follows from `offset` to `size`.
    Ok {
        /// The whole file's size in bytes.
        size: u64,
        /// XXH3-64 of the whole file.
        checksum: u64,
        /// Where the bytes that follow start.
        offset: u64,
    },
    /// The request was refused, for this reason.
    Err(String),
}

impl Reply {
    /// The reply line, newline included.
    pub fn to_line(&self) -> String {
        match self {
            Reply::Ok { size, checksum, offset } => format!("OK {size} {checksum:016x} {offset}\n"),
            Reply::Err(reason) => format!("ERR {}\n", reason.replace(['\n', '\r'], " ")),
        }
    }

    /// Parses a reply line (without its newline).
    ///
    /// # Errors
    /// When the line is neither a well-formed `OK` nor an `ERR`.
    pub fn parse(line: &str) -> Result<Reply, String> {
        if let Some(reason) = line.strip_prefix("ERR ") {
            return Ok(Reply::Err(reason.to_string()));
        }
        let bad = || format!("malformed reply {line:?}");
        let rest = line.strip_prefix("OK ").ok_or_else(bad)?;
        let mut fields = rest.split(' ');
        let (Some(size), Some(checksum), Some(offset), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad());
        };
        let size = parse_decimal(size.as_bytes()).ok_or_else(bad)?;
        if checksum.len() != 16 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let checksum = u64::from_str_radix(checksum, 16).map_err(|_| bad())?;
        let offset = parse_decimal(offset.as_bytes()).ok_or_else(bad)?;
        if offset > size {
            return Err(bad());
        }
        Ok(Reply::Ok { size, checksum, offset })
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_line().trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn req(path: &[u8], offset: u64) -> Request {
        Request { path: PathBuf::from(OsStr::from_bytes(path)), offset }
    }

    #[test]
    fn request_round_trip() {
        for (path, offset) in [
            (&b"a.bin"[..], 0),
            (b"dir/with space.txt", 12345),
            (b"x", u64::MAX),
            (b"caf\xe9 \xff\xfe.bin", 1),
            (b"100%/new\nline\r\t", 2),
            ("ünïcødé/文件".as_bytes(), 3),
        ] {
            let r = req(path, offset);
            let line = r.to_line();
            assert!(line.is_ascii() && line.matches('\n').count() == 1, "{line:?}");
            assert_eq!(Request::parse(line.trim_end_matches('\n').as_bytes()).unwrap(), r);
        }
        assert_eq!(Request::parse(b"GET 7 f\r").unwrap(), req(b"f", 7));
        assert_eq!(req(b"caf\xe9.bin", 0).to_line(), "GET 0 caf%E9.bin\n");
        // Raw bytes and spaces from a hand-typed request are taken as they are.
        assert_eq!(Request::parse(b"GET 0 with space/caf\xe9").unwrap(), req(b"with space/caf\xe9", 0));
        assert_eq!(Request::parse(b"GET 0 a%2fb%41").unwrap(), req(b"a/bA", 0));
    }

    #[test]
    fn bad_requests() {
        for line in [
            &b""[..],
            b"PUT 0 x",
            b"GET",
            b"GET 0",
            b"GET 0 ",
            b"GET -1 x",
            b"GET x y",
            b"GET +5 x",
            b"GET  5 x",
            b"GET 0x10 x",
            b"GET 1_000 x",
            b"GET 18446744073709551616 x",
            b"GET \xd9\xa5 x", // an Arabic-Indic digit five
            b"GET 0 a%zz",
            b"GET 0 a%4",
            b"GET 0 a%",
            b"GET 0 a%00b",
            b"GET 0 a\0b",
        ] {
            assert!(Request::parse(line).is_err(), "{:?} accepted", String::from_utf8_lossy(line));
        }
        assert!(Request::parse(b"GET +5 x").unwrap_err().contains("not a number"));
    }

    #[test]
    fn request_lines_end_at_the_limit_and_hand_over_the_error() {
        let mut lines = RequestLines::new();
        let mut buf = Buffer::new();
        let longest = vec![b'x'; MAX_LINE - 1];
        buf.extend_from_slice(&longest);
        assert_eq!(lines.decode(&mut buf), Ok(None), "its newline may still come");
        buf.extend_from_slice(b"\nGET 0 f\r\nGET");
        assert_eq!(lines.decode(&mut buf), Ok(Some(Ok(longest))));
        assert_eq!(lines.decode(&mut buf), Ok(Some(Ok(b"GET 0 f".to_vec()))));
        assert_eq!(lines.decode(&mut buf), Ok(None));
        let mut long = Buffer::new();
        long.extend_from_slice(&[b'x'; MAX_LINE]);
        assert!(matches!(lines.decode(&mut long), Ok(Some(Err(FrameError::TooLong { .. })))));
    }

    #[test]
    fn reply_round_trip() {
        for r in [
            Reply::Ok { size: 0, checksum: 0, offset: 0 },
            Reply::Ok { size: 1 << 40, checksum: u64::MAX, offset: 5 },
            Reply::Err("no such file".into()),
        ] {
            assert_eq!(Reply::parse(r.to_line().trim_end()).unwrap(), r);
        }
        assert_eq!(Reply::Err("a\nb\rc".into()).to_line(), "ERR a b c\n");
    }

    #[test]
    fn bad_replies() {
        for line in [
            "",
            "OK",
            "OK 1 2",
            "OK 1 zz 0",
            "OK 1 0000000000000000 2",
            "OK 1 0000000000000000 0 extra",
            "OK +1 0000000000000000 0",
            "OK 1 +000000000000000 0",
            "OK 1 0000000000000000 +0",
            "OK 1 0 0",
            "HELLO",
        ] {
            assert!(Reply::parse(line).is_err(), "{line:?} accepted");
        }
    }
}
