//! The line format: formatting on the producer side and a regex-free parser.
//!
//! The format itself is documented on [`LogLine`].
//!
//! The seconds prefix of the timestamp is formatted by chrono only when the second changes; the
//! microseconds are appended by hand. That cache lives in each producer thread, so formatting
//! a line never touches shared state.

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{Local, TimeZone, Utc};
use log::Level;

/// Length of the timestamp field, `YYYY-mm-dd HH:MM:SS.uuuuuu`.
const STAMP_LEN: usize = 26;

/// A per-thread cache of the formatted seconds prefix of the timestamp.
pub(crate) struct Clock {
    /// The Unix second `prefix` was formatted for (`i64::MIN` before the first line).
    sec: i64,
    /// `YYYY-mm-dd HH:MM:SS.` for `sec`, in local time.
    prefix: Vec<u8>,
}

impl Clock {
    /// A cache that formats on its first use.
    pub(crate) fn new() -> Self {
        Clock { sec: i64::MIN, prefix: Vec::with_capacity(24) }
    }

    /// Appends the timestamp of `now` to `out`.
    pub(crate) fn stamp(&mut self, now: SystemTime, out: &mut Vec<u8>) {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let sec = since.as_secs() as i64;
        if sec != self.sec {
            self.refresh(sec);
        }
        out.extend_from_slice(&self.prefix);
        let mut micros = since.subsec_micros();
        let mut digits = [b'0'; 6];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        out.extend_from_slice(&digits);
    }

    /// Formats the seconds prefix for `sec` (once per second per thread).
    fn refresh(&mut self, sec: i64) {
        self.sec = sec;
        self.prefix.clear();
        const FMT: &str = "%Y-%m-%d %H:%M:%S.";
        let _ = match Local.timestamp_opt(sec, 0).earliest() {
            Some(t) => write!(self.prefix, "{}", t.format(FMT)),
            None => write!(self.prefix, "{}", Utc.timestamp_opt(sec, 0).unwrap().format(FMT)),
        };
    }
}

/// The level field: five characters, left aligned.
fn level_field(level: Level) -> &'static [u8; 5] {
    match level {
        Level::Error => b"ERROR",
        Level::Warn => b"WARN ",
        Level::Info => b"INFO ",
        Level::Debug => b"DEBUG",
        Level::Trace => b"TRACE",
    }
}

/// The thread field with its trailing space: `[tid N] ` or `[tid N name] `.
pub(crate) fn thread_field(tid: u64, name: Option<&str>) -> Box<[u8]> {
    match name {
        Some(name) => format!("[tid {tid} {name}] "),
        None => format!("[tid {tid}] "),
    }
    .into_bytes()
    .into_boxed_slice()
}

/// Appends one complete line to `out`; `thread` comes from [`thread_field`].
pub(crate) fn write_line(
    out: &mut Vec<u8>,
    clock: &mut Clock,
    now: SystemTime,
    level: Level,
    thread: &[u8],
    target: &str,
    args: &fmt::Arguments<'_>,
) {
    clock.stamp(now, out);
    out.push(b' ');
    out.extend_from_slice(level_field(level));
    out.push(b' ');
    out.extend_from_slice(thread);
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b": ");
    match args.as_str() {
        Some(s) => out.extend_from_slice(s.as_bytes()),
        None => {
            let _ = out.write_fmt(*args);
        }
    }
    out.push(b'\n');
}

/// One line of the logger's output, split into its fields.
///
/// Every line the logger writes has exactly this shape (one space between fields):
///
/// ```text
/// 2026-11-23 08:40:01.123456 INFO  [tid 12345 worker-1] my_crate::net: accepted 10.0.0.1:4242
/// └──── local time, µs ────┘ └lvl┘ └─ kernel tid, name ┘ └─ target ──┘ └─ message ──────────┘
/// ```
///
/// - the timestamp is local time, `%Y-%m-%d %H:%M:%S` then `.` and six digits of microseconds;
/// - the level is `ERROR`, `WARN `, `INFO `, `DEBUG` or `TRACE`: five characters, left aligned;
/// - the thread is `[tid N name]` with the kernel thread id and the Rust thread name, or
///   `[tid N]` for an unnamed thread (and for the rare lines logged after shutdown, from a
///   thread-local destructor or from inside another line's formatting);
/// - the target (the module path unless the caller chose one) is followed by `: `;
/// - the message is written as formatted (a newline in it is kept), and the line ends with `\n`.
///
/// Any thread may use it; it only borrows the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// `YYYY-mm-dd HH:MM:SS.uuuuuu`, local time.
    pub timestamp: &'a str,
    /// The record's level.
    pub level: Level,
    /// The kernel thread id of the thread that logged the line.
    pub tid: u64,
    /// The Rust name of that thread, if it had one.
    pub thread_name: Option<&'a str>,
    /// The record's target.
    pub target: &'a str,
    /// The message, without the final newline.
    pub message: &'a str,
}

impl<'a> LogLine<'a> {
    /// Splits one line (with or without its final `\n`) into its fields.
    ///
    /// Returns `None` when `line` does not have the logger's format.
    ///
    /// # Examples
    ///
    /// ```
    /// use kingpin::logger::LogLine;
    ///
    /// let l = LogLine::parse("2026-11-23 08:40:01.123456 INFO  [tid 7 main] app: hello\n").unwrap();
    /// assert_eq!((l.tid, l.thread_name, l.target, l.message), (7, Some("main"), "app", "hello"));
    /// assert_eq!(l.level, log::Level::Info);
    /// ```
    pub fn parse(line: &'a str) -> Option<LogLine<'a>> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let timestamp = line.get(..STAMP_LEN)?;
        if !timestamp_ok(timestamp.as_bytes()) {
            return None;
        }
        let rest = line[STAMP_LEN..].strip_prefix(' ')?;
        let level = match rest.get(..5)? {
            "ERROR" => Level::Error,
            "WARN " => Level::Warn,
            "INFO " => Level::Info,
            "DEBUG" => Level::Debug,
            "TRACE" => Level::Trace,
            _ => return None,
        };
        let rest = rest[5..].strip_prefix(" [tid ")?;
        let close = rest.find("] ")?;
        let (thread, rest) = (&rest[..close], &rest[close + 2..]);
        let (tid, thread_name) = match thread.split_once(' ') {
            Some((tid, name)) => (tid, Some(name)),
            None => (thread, None),
        };
        if tid.is_empty() || !tid.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (target, message) = rest.split_once(": ")?;
        Some(LogLine { timestamp, level, tid: tid.parse().ok()?, thread_name, target, message })
    }
}

/// Checks `YYYY-mm-dd HH:MM:SS.uuuuuu` digit by digit.
fn timestamp_ok(t: &[u8]) -> bool {
    const SHAPE: &[u8; STAMP_LEN] = b"dddd-dd-dd dd:dd:dd.dddddd";
    t.len() == STAMP_LEN && t.iter().zip(SHAPE).all(|(&c, &s)| if s == b'd' { c.is_ascii_digit() } else { c == s })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn line(now: SystemTime, clock: &mut Clock, msg: fmt::Arguments<'_>) -> String {
        let mut out = Vec::new();
        write_line(&mut out, clock, now, Level::Warn, &thread_field(42, Some("w 1")), "a::b", &msg);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_and_parses_back() {
        let mut clock = Clock::new();
        let now = UNIX_EPOCH + Duration::new(1_800_000_000, 7_654_321);
        let text = line(now, &mut clock, format_args!("x={} y: {}", 1, "z"));
        assert!(text.ends_with('\n'));
        let l = LogLine::parse(&text).unwrap();
        assert_eq!(l.level, Level::Warn);
        assert_eq!((l.tid, l.thread_name, l.target, l.message), (42, Some("w 1"), "a::b", "x=1 y: z"));
        assert!(l.timestamp.ends_with(".007654"), "{}", l.timestamp);
        let local = Local.timestamp_opt(1_800_000_000, 0).unwrap().format("%Y-%m-%d %H:%M:%S");
        assert!(l.timestamp.starts_with(&local.to_string()));
    }

    #[test]
    fn cache_follows_the_second() {
        let mut clock = Clock::new();
        let t0 = UNIX_EPOCH + Duration::new(1_800_000_000, 999_999_000);
        let a = line(t0, &mut clock, format_args!("a"));
        let b = line(t0 + Duration::from_micros(1), &mut clock, format_args!("b"));
        let (a, b) = (LogLine::parse(&a).unwrap(), LogLine::parse(&b).unwrap());
        assert!(a.timestamp.ends_with(".999999"));
        assert!(b.timestamp.ends_with(".000000"));
        assert!(b.timestamp > a.timestamp);
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "",
            "2026-11-23 08:40:01.12345 INFO  [tid 7] a: m",
            "2026-11-23 08:40:01.123456 INFO [tid 7] a: m",
            "2026-11-23 08:40:01.123456 INFO  [tid x] a: m",
            "2026-11-23 08:40:01.123456 INFO  [tid 7] no target",
        ] {
            assert_eq!(LogLine::parse(bad), None, "{bad:?}");
        }
        let l = LogLine::parse("2026-11-23 08:40:01.123456 TRACE [tid 7] a: m").unwrap();
        assert_eq!((l.level, l.thread_name), (Level::Trace, None));
    }
}
