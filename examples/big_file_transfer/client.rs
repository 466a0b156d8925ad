//! The downloading side: a blocking `TcpStream` (one download is one stream), or a rustls
//! stream over it with `--tls`, written to `<dest>.part`, resumed from that file's length,
//! verified, then renamed to `<dest>`.
//! Also the CLI's helpers: where `-o` puts the file, and curl-style rates (`50M`).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::checksum::hash_path;
use crate::os_error::describe;
use crate::protocol::{Reply, Request, MAX_LINE};

/// Bytes read from the socket per step, and so the most the client holds in memory.
const RECV_CHUNK: usize = 1 << 20;

/// One download.
#[derive(Clone, Debug)]
pub struct GetOptions {
    /// The server, `host:port`.
    pub addr: String,
    /// The file's path under the server's root (any bytes: names need not be UTF-8).
    pub path: PathBuf,
    /// Where the file goes; `<dest>.part` holds it until it is verified.
    pub dest: PathBuf,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Read at most this many bytes per second (tests use it to interrupt a download).
    pub limit_rate: Option<u64>,
    /// Connect timeout, and the longest the server may stay silent.
    pub timeout: Duration,
    /// Speak TLS (`None`: plain TCP).
    pub tls: Option<TlsOptions>,
}

/// A download over TLS: the roots to trust, and the name the server's certificate must be
/// valid for (checked when made).
#[derive(Clone, Debug)]
pub struct TlsOptions {
    pub config: Arc<rustls::ClientConfig>,
    pub name: rustls::pki_types::ServerName<'static>,
}

impl TlsOptions {
    /// Trusts what `config` trusts; the server must prove it is `name`.
    ///
    /// # Errors
    /// `name` is neither a host name nor an IP address.
    pub fn new(config: Arc<rustls::ClientConfig>, name: &str) -> Result<TlsOptions, String> {
        let name = rustls::pki_types::ServerName::try_from(name.to_owned())
            .map_err(|_| format!("--tls-name {name:?} is neither a host name nor an IP address"))?;
        Ok(TlsOptions { config, name })
    }
}

/// The name a TLS server at `addr` (`host:port`, `[v6]:port`) is expected to have: its host,
/// or `localhost` for an unspecified address (`0.0.0.0`, `::`) or none.
pub fn default_tls_name(addr: &str) -> String {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_unspecified() => "localhost".into(),
        _ if host.is_empty() => "localhost".into(),
        _ => host.into(),
    }
}

/// A finished, verified download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The file's size.
    pub size: u64,
    /// Bytes already in `<dest>.part` when this run began.
    pub resumed_from: u64,
    /// The file's XXH3-64, as announced and as verified.
    pub checksum: u64,
    /// Time from connecting to the last byte written.
    pub transfer: Duration,
    /// Time to hash the finished file.
    pub verify: Duration,
}

/// Why a download failed.
#[derive(Debug)]
pub enum GetError {
    /// Connecting, reading, writing the file or renaming it failed.
    Io(String, io::Error),
    /// The server answered `ERR`.
    Refused(String),
    /// The server's reply was not understood.
    Protocol(String),
    /// The connection ended early; `<dest>.part` keeps what arrived, for a resume.
    Truncated {
        /// Bytes of the file held now.
        have: u64,
        /// The file's size.
        size: u64,
    },
    /// The finished file does not match the announced checksum; `<dest>.part` was removed.
    Checksum {
        /// Announced by the server.
        expected: u64,
        /// Computed over the received file.
        actual: u64,
        /// Whether part of the file came from an earlier run.
        resumed: bool,
    },
}

impl GetError {
    /// The process exit status for this error: 2 for a verification failure, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            GetError::Checksum { .. } => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Io(what, e) => write!(f, "{what}: {}", describe(e)),
            GetError::Refused(reason) => write!(f, "server refused the request: {reason}"),
            GetError::Protocol(what) => write!(f, "protocol error: {what}"),
            GetError::Truncated { have, size } => {
                write!(f, "connection ended after {have} of {size} bytes; run again to resume")
            }
            GetError::Checksum { expected, actual, resumed } => {
                write!(
                    f,
                    "checksum mismatch: expected {expected:016x}, got {actual:016x}; the partial file was removed"
                )?;
                if *resumed {
                    f.write_str(" (the file may have changed on the server since the download began)")?;
                }
                f.write_str("; run again to download from scratch")
            }
        }
    }
}

impl std::error::Error for GetError {}

/// `<dest>.part`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut p = dest.as_os_str().to_owned();
    p.push(".part");
    PathBuf::from(p)
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> GetError {
    let what = what.into();
    move |e| GetError::Io(what, e)
}

/// Where `get <path> [-o <output>]` writes: `output`, or — when `output` is an existing
/// directory, or ends with `/` — the requested file's name inside it; without `output`, that
/// name in the current directory.
///
/// # Errors
/// `path` has no file name (`dir/..`, `/`), or `output` ends with `/` but is no directory.
pub fn destination(path: &Path, output: Option<&Path>) -> Result<PathBuf, GetError> {
    let name = || {
        path.file_name().map(PathBuf::from).ok_or_else(|| {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "it has no file name; give one with -o");
            GetError::Io(format!("cannot name the download of {}", path.display()), e)
        })
    };
    let Some(output) = output else { return name() };
    if output.is_dir() {
        return Ok(output.join(name()?));
    }
    if output.as_os_str().as_bytes().ends_with(b"/") {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        return Err(GetError::Io(format!("output directory {}", output.display()), e));
    }
    Ok(output.to_path_buf())
}

/// Parses a rate in bytes per second the way curl's `--limit-rate` does: a number, possibly
/// with a fraction, and an optional `k`, `M`, `G`, `T` or `P` suffix (either case, powers of
/// 1024):
/// `200k`, `50M`, `1.5G`, `1000000`.
///
/// # Errors
/// Anything else, or a rate under one byte per second.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let bad = || {
        format!("invalid rate {s:?}: expected bytes per second, optionally with a k, M, G, T or P suffix (1024-based), e.g. 200k, 50M, 1.5G")
    };
    let (number, shift) = match s.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                'p' => 50,
                _ => return Err(bad()),
            };
            (&s[..at], shift)
        }
        _ => (s, 0),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || (number.contains('.') && fraction.is_empty()) {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let whole = whole.checked_mul(1 << shift).ok_or_else(bad)?;
    // The fraction, to the byte (rounded down): 0.5k is 512.
    let fraction = if fraction.is_empty() { 0.0 } else { format!("0.{fraction}").parse::<f64>().map_err(|_| bad())? };
    let rate = whole.checked_add((fraction * (1u64 << shift) as f64) as u64).ok_or_else(bad)?;
    if rate == 0 {
        return Err(format!("invalid rate {s:?}: must be at least one byte per second"));
    }
    Ok(rate)
}

/// Downloads `opts.path` to `opts.dest`, resuming from `<dest>.part` if it exists.
///
/// # Errors
/// See [`GetError`]; on every error but [`GetError::Checksum`] the partial file is kept. A
/// destination that is a directory, or whose directory does not exist, is an error before
/// anything is sent.
pub fn download(opts: &GetOptions) -> Result<Outcome, GetError> {
    check_destination(&opts.dest)?;
    let part = part_path(&opts.dest);
    let offset = match fs::metadata(&part) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(GetError::Io(format!("{}", part.display()), e)),
    };
    let started = Instant::now();
    let tcp = connect(&opts.addr, opts.timeout)?;
    let mut stream = match &opts.tls {
        None => Stream::Plain(tcp),
        Some(tls) => Stream::Tls(Box::new(handshake(tcp, tls, &opts.addr, opts.timeout)?)),
    };
    let request = Request { path: opts.path.clone(), offset };
    stream.write_all(request.to_line().as_bytes()).map_err(io_err("sending the request"))?;
    let mut reader = BufReader::with_capacity(RECV_CHUNK, stream);

    let mut line = Vec::new();
    match (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line) {
        Ok(_) => {}
        // Over TLS: the connection ended without the server's close_notify.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => line.clear(),
        Err(e) => return Err(GetError::Io("reading the reply".into(), e)),
    }
    if line.pop() != Some(b'\n') {
        // What a TLS server does to a plain request.
        let hint = if opts.tls.is_none() { " (if it speaks TLS, add --tls --ca-file FILE)" } else { "" };
        return Err(GetError::Protocol(format!("the server closed the connection without a complete reply{hint}")));
    }
    let line = String::from_utf8(line).map_err(|_| GetError::Protocol("reply is not UTF-8".into()))?;
    let (size, checksum) = match Reply::parse(&line).map_err(GetError::Protocol)? {
        Reply::Err(reason) if offset > 0 => {
            return Err(GetError::Refused(format!(
                "{reason} (resuming from {offset} bytes of {}; delete it to start over)",
                part.display()
            )))
        }
        Reply::Err(reason) => return Err(GetError::Refused(reason)),
        Reply::Ok { offset: o, .. } if o != offset => {
            return Err(GetError::Protocol(format!("asked for bytes from {offset}, got them from {o}")))
        }
        Reply::Ok { size, checksum, .. } => (size, checksum),
    };

    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .map_err(io_err(format!("opening {}", part.display())))?;
    let bar = progress_bar(opts.progress, size, offset);
    let mut have = offset;
    let mut buf = vec![0; RECV_CHUNK];
    let step = opts.limit_rate.map_or(RECV_CHUNK, |r| (r / 20).clamp(1, RECV_CHUNK as u64) as usize);
    let pace_from = Instant::now();
    while have < size {
        let want = (size - have).min(step as u64) as usize;
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) => break,
            // Over TLS: the connection ended without the server's close_notify, as a plain
            // one ends early.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(GetError::Io(format!("receiving (have {have} of {size} bytes; run again to resume)"), e));
            }
        };
        file.write_all(&buf[..n]).map_err(io_err(format!("writing {}", part.display())))?;
        have += n as u64;
        bar.inc(n as u64);
        if let Some(rate) = opts.limit_rate {
            let due = Duration::from_secs_f64((have - offset) as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(pace_from.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    if have < size {
        bar.abandon();
        return Err(GetError::Truncated { have, size });
    }
    file.sync_all().map_err(io_err(format!("syncing {}", part.display())))?;
    drop(file);
    bar.finish();
    let transfer = started.elapsed();

    let verify_start = Instant::now();
    let actual = hash_path(&part).map_err(io_err(format!("hashing {}", part.display())))?;
    let verify = verify_start.elapsed();
    if actual != checksum {
        let _ = fs::remove_file(&part);
        return Err(GetError::Checksum { expected: checksum, actual, resumed: offset > 0 });
    }
    fs::rename(&part, &opts.dest).map_err(io_err(format!("renaming to {}", opts.dest.display())))?;
    Ok(Outcome { size, resumed_from: offset, checksum, transfer, verify })
}

/// Fails unless `dest` can become a file: not a directory (nor named like one), and inside an
/// existing directory.
fn check_destination(dest: &Path) -> Result<(), GetError> {
    let what = || format!("cannot write {}", dest.display());
    if dest.is_dir() || dest.as_os_str().as_bytes().ends_with(b"/") || dest.file_name().is_none() {
        return Err(GetError::Io(what(), io::Error::from_raw_os_error(libc::EISDIR)));
    }
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(GetError::Io(
            what(),
            io::Error::new(io::ErrorKind::NotFound, format!("no directory {}", dir.display())),
        ));
    }
    Ok(())
}

/// Connects to the first address of `addr` that answers, with timeouts set.
fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, GetError> {
    let addrs = addr.to_socket_addrs().map_err(io_err(format!("resolving {addr}")))?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(timeout)).map_err(io_err("socket"))?;
                s.set_write_timeout(Some(timeout)).map_err(io_err("socket"))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(GetError::Io(format!("connecting to {addr}"), last))
}

/// The connection a download reads: plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Completes the TLS handshake on `tcp` (each read and write bounded by the socket's
/// timeouts, the whole by `timeout`), so that an untrusted certificate is an error of its
/// own, with a hint, before anything is asked for.
fn handshake(
    mut tcp: TcpStream,
    tls: &TlsOptions,
    addr: &str,
    timeout: Duration,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, GetError> {
    let what = || format!("TLS handshake with {addr} failed");
    let mut session = rustls::ClientConnection::new(tls.config.clone(), tls.name.clone())
        .map_err(|e| GetError::Io(what(), io::Error::other(e)))?;
    let deadline = Instant::now() + timeout;
    while session.is_handshaking() {
        // Each read and write gets what is left of the time; the socket's own timeouts (the
        // longest silence) come back after.
        let left = deadline.saturating_duration_since(Instant::now());
        let result = match left.is_zero() {
            false => tcp
                .set_read_timeout(Some(left))
                .and_then(|()| tcp.set_write_timeout(Some(left)))
                .and_then(|()| session.complete_io(&mut tcp).map(drop)),
            true => Err(io::ErrorKind::TimedOut.into()),
        };
        if let Err(e) = result {
            let why = match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!("no answer within {timeout:?}"),
                io::ErrorKind::UnexpectedEof => "the server closed the connection".into(),
                _ => describe(&e),
            };
            let hint = tls_hint(&why);
            return Err(GetError::Io(what(), io::Error::new(e.kind(), format!("{why}{hint}"))));
        }
    }
    tcp.set_read_timeout(Some(timeout))
        .and_then(|()| tcp.set_write_timeout(Some(timeout)))
        .map_err(io_err("socket"))?;
    Ok(rustls::StreamOwned::new(session, tcp))
}

/// What to check when a TLS handshake failed with `why` (rustls's words): the usual slips.
fn tls_hint(why: &str) -> &'static str {
    if why.contains("UnknownIssuer") || why.contains("BadSignature") {
        " (the server's certificate is not the one in --ca-file, nor signed by it)"
    } else if why.contains("not valid for name") || why.contains("NotValidForName") {
        " (give the name the certificate is valid for with --tls-name)"
    } else if why.contains("corrupt message") || why.contains("InvalidContentType") {
        " (does the server speak TLS?)"
    } else {
        ""
    }
}

fn progress_bar(show: bool, size: u64, offset: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{bytes:>10}/{total_bytes} [{wide_bar}] {binary_bytes_per_sec:>12} ETA {eta:>4} ({elapsed})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_position(offset);
    bar.reset_eta(); // the rate counts this run's bytes only
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_name_defaults_to_the_host_of_the_address() {
        assert_eq!(default_tls_name("127.0.0.1:8890"), "127.0.0.1");
        assert_eq!(default_tls_name("files.example:443"), "files.example");
        assert_eq!(default_tls_name("[::1]:8890"), "::1");
        assert_eq!(default_tls_name("0.0.0.0:8890"), "localhost");
        assert_eq!(default_tls_name("[::]:8890"), "localhost");
        assert_eq!(default_tls_name(":8890"), "localhost");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let config = Arc::new(config);
        assert!(TlsOptions::new(config.clone(), "::1").is_ok());
        let err = TlsOptions::new(config, "not a name!").unwrap_err();
        assert!(err.contains("--tls-name") && err.contains("neither a host name nor an IP address"), "{err}");
    }
}
