//! What the examples share on the command line: argument checks for clap, and errors printed
//! as one plain line (`echo_server: cannot listen on 127.0.0.1:9000: address already in use`)
//! and exit status 1, instead of `main`'s `Error: Os { code: 98, .. }`.
//!
//! Include with `#[path = "common/cli.rs"] mod cli;` (from a folder example,
//! `#[path = "../common/cli.rs"]`). Not every example uses every item, and the echo bench
//! compiles it (twice, through `echo_server` and `http_server`) without running its tests.
#![allow(dead_code, unused_imports)]

use std::fmt::Display;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// An io::Error's message as it reads in a sentence: std's `Address already in use (os error
/// 98)` becomes `address already in use`.
pub fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => &text[..],
    };
    lower_first(text)
}

/// Lower-cases the first letter unless the word is an acronym (`TLS`, `IO`).
fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && !b.is_uppercase() => {
            a.to_lowercase().chain(s[a.len_utf8()..].chars()).collect()
        }
        _ => s.to_owned(),
    }
}

/// The one line for a server that could not start on `addr` (binding it is what fails in
/// practice: the address is in use, not local, or a privileged port).
pub fn cannot_listen(addr: SocketAddr, e: &io::Error) -> String {
    format!("cannot listen on {addr}: {}", describe(e))
}

/// Prints `program: message` as one line on stderr and exits with status 1. Call it once the
/// work is over (the logger guard dropped), as `process::exit` runs no destructor.
pub fn fail(program: &str, message: impl Display) -> ! {
    eprintln!("{program}: {message}");
    std::process::exit(1)
}

/// Turns an io::Error into the line [`fail`] prints, after what was being done.
pub fn context(what: impl Display) -> impl FnOnce(io::Error) -> String {
    move |e| format!("{what}: {}", describe(&e))
}

/// Clap parser for a count that must be at least 1 (threads, connections).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Clap parser for a duration in seconds (fractions allowed): finite and above zero.
pub fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err("must be more than 0 seconds".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| "too long".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_os_errors_as_plain_words() {
        let e = io::Error::from_raw_os_error(libc::EADDRINUSE);
        assert_eq!(describe(&e), "address already in use");
        assert_eq!(describe(&io::Error::other("TLS handshake failed")), "TLS handshake failed");
        assert_eq!(describe(&io::Error::other("Bad thing (x)")), "bad thing (x)");
    }

    #[test]
    fn checks_counts_and_seconds() {
        assert_eq!(at_least_one("2"), Ok(2));
        assert!(at_least_one("0").unwrap_err().contains("at least 1"));
        assert!(at_least_one("-1").is_err());
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(seconds("0").is_err() && seconds("-1").is_err() && seconds("NaN").is_err());
        assert!(seconds("inf").is_err() && seconds("x").is_err());
    }
}
