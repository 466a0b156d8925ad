//! [`ProxyError`]: why bytes are not a PROXY protocol header.

use std::error::Error;
use std::fmt;

use super::header::{MAX_V1_HEADER, MAX_V2_HEADER};

/// Why [`parse_proxy_header`](crate::parse_proxy_header) refused its input.
///
/// Each is final: more bytes cannot make the input a header, and the specification asks the
/// receiver to close the connection (it "must not try to guess whether the protocol header is
/// present or not").
///
/// # Examples
///
/// ```
/// use kingpin::{parse_proxy_header, ProxyError};
///
/// let e = parse_proxy_header(b"GET / HTTP/1.1\r\n").unwrap_err();
/// assert_eq!(e, ProxyError::NotProxy);
/// assert_eq!(e.to_string(), "not a PROXY protocol header");
///
/// let e = parse_proxy_header(b"PROXY TCP4 1.2.3.4 5.6.7.8 080 443\r\n").unwrap_err();
/// assert!(matches!(e, ProxyError::Malformed(_)));
/// assert!(e.to_string().starts_with("malformed PROXY protocol header: "));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyError {
    /// The input starts with neither the version 1 prefix (`PROXY `) nor the version 2
    /// signature: the first bytes that differ already say so.
    NotProxy,
    /// The input starts like a header but breaks the format; the message says how (a bad
    /// address or port, a missing or doubled space, a bare `\r` or `\n`, version 2's version
    /// or command, an address block too short for its family, a TLV past the header's end).
    Malformed(String),
    /// The header is longer than this crate accepts: a version 1 line without its `\r\n`
    /// within [`MAX_V1_HEADER`] bytes, or a version 2 header announcing more than
    /// [`MAX_V2_HEADER`] bytes in all.
    TooLong,
}

impl ProxyError {
    /// A [`ProxyError::Malformed`] with `message`.
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        ProxyError::Malformed(message.into())
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::NotProxy => f.write_str("not a PROXY protocol header"),
            ProxyError::Malformed(message) => write!(f, "malformed PROXY protocol header: {message}"),
            ProxyError::TooLong => write!(
                f,
                "PROXY protocol header too long: over {MAX_V1_HEADER} bytes (version 1) \
                 or {MAX_V2_HEADER} bytes (version 2)"
            ),
        }
    }
}

impl Error for ProxyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_is_wrong() {
        assert_eq!(ProxyError::NotProxy.to_string(), "not a PROXY protocol header");
        assert_eq!(ProxyError::malformed("bad port").to_string(), "malformed PROXY protocol header: bad port");
        let long = ProxyError::TooLong.to_string();
        assert!(long.contains("107") && long.contains("4096"), "{long}");
        let boxed: Box<dyn Error + Send + Sync> = Box::new(ProxyError::TooLong);
        assert!(boxed.to_string().starts_with("PROXY protocol header too long"));
    }
}
