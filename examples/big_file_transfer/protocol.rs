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
//! resumed download can be verified end to end. The path comes last so it may hold spaces; it
//! may not hold a newline.

use std::fmt;

/// Longest request or reply line accepted, newline included.
pub const MAX_LINE: usize = 4096;

/// A download request: which file, from which byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Path relative to the server's root, `/`-separated.
    pub path: String,
    /// First byte wanted (the length of a partial download, or 0).
    pub offset: u64,
}

impl Request {
    /// The request line, newline included.
    pub fn to_line(&self) -> String {
        format!("GET {} {}\n", self.offset, self.path)
    }

    /// Parses a request line (without its newline).
    ///
    /// # Errors
    /// A reason fit for an `ERR` reply when the line is not `GET <offset> <path>`.
    pub fn parse(line: &str) -> Result<Request, String> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let rest = line.strip_prefix("GET ").ok_or("bad request: expected GET <offset> <path>")?;
        let (offset, path) = rest.split_once(' ').ok_or("bad request: expected GET <offset> <path>")?;
        let offset = offset.parse().map_err(|_| format!("bad request: offset {offset:?} is not a number"))?;
        if path.is_empty() {
            return Err("bad request: empty path".into());
        }
        Ok(Request { path: path.to_string(), offset })
    }
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
            Reply::Err(reason) => format!("ERR {}\n", reason.replace('\n', " ")),
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
        let size = size.parse().map_err(|_| bad())?;
        let checksum = u64::from_str_radix(checksum, 16).map_err(|_| bad())?;
        let offset: u64 = offset.parse().map_err(|_| bad())?;
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

    #[test]
    fn request_round_trip() {
        for (path, offset) in [("a.bin", 0), ("dir/with space.txt", 12345), ("x", u64::MAX)] {
            let r = Request { path: path.into(), offset };
            let line = r.to_line();
            assert_eq!(Request::parse(line.trim_end_matches('\n')).unwrap(), r);
        }
        assert_eq!(Request::parse("GET 7 f\r").unwrap(), Request { path: "f".into(), offset: 7 });
    }

    #[test]
    fn bad_requests() {
        for line in ["", "PUT 0 x", "GET", "GET 0", "GET 0 ", "GET -1 x", "GET x y"] {
            assert!(Request::parse(line).is_err(), "{line:?} accepted");
        }
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
        assert_eq!(Reply::Err("a\nb".into()).to_line(), "ERR a b\n");
    }

    #[test]
    fn bad_replies() {
        for line in ["", "OK", "OK 1 2", "OK 1 zz 0", "OK 1 0 2", "OK 1 0 0 extra", "HELLO"] {
            assert!(Reply::parse(line).is_err(), "{line:?} accepted");
        }
    }
}
