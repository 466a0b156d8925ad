//! The file server: an [`IoHandler`] that answers one request per connection by streaming the
//! file with `sendfile(2)` (or bounded buffered reads), paced by `on_write_complete`.
//!
//! A connection goes through three states: reading its request line; waiting for the file's
//! checksum (computed once per file version on a helper thread, never on an IO thread); then
//! streaming, one chunk per `on_write_complete`, until the end of the file, when it closes. The
//! server never holds more than one chunk of a file in memory per connection, and with
//! `sendfile` none at all.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kingpin::{Conn, EpollTPServer, IdleTimeouts, IoHandler, LoopCtx, LoopHandle, ServerConfig, ServerHandle};

use crate::checksum::{ChecksumCache, FileKey};
use crate::protocol::{Reply, Request, MAX_LINE};

/// Most bytes handed to one `sendfile` call: the kernel takes what fits in the socket buffer.
const SENDFILE_CHUNK: usize = 4 << 20;
/// Bytes read per step when streaming without `sendfile`.
const READ_CHUNK: usize = 256 << 10;
/// A connection with no reads or writes for this long is closed (a stalled reader).
const IDLE: Duration = Duration::from_secs(60);

/// What the server needs to know.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The directory whose files are served.
    pub root: PathBuf,
    /// Address to listen on (port 0: any free port).
    pub addr: SocketAddr,
    /// IO threads.
    pub threads: usize,
    /// Stream with `sendfile(2)`; `false` reads the file in bounded chunks and sends them.
    pub sendfile: bool,
    /// Most connections open at once from one peer address (`None`: no limit).
    pub max_conns_per_ip: Option<usize>,
}

/// What all IO threads share.
struct Shared {
    /// The canonical root.
    root: PathBuf,
    cache: Arc<ChecksumCache>,
    sendfile: bool,
}

/// Starts a server; it runs until the handle shuts it down.
///
/// # Errors
/// When the root is not a readable directory or the address cannot be bound.
pub fn start(opts: &ServerOptions) -> io::Result<ServerHandle<FileServer>> {
    start_with_cache(opts, Arc::default())
}

/// Like [`start`], with a given checksum cache (to watch it, or share it between servers).
///
/// # Errors
/// As [`start`].
pub fn start_with_cache(opts: &ServerOptions, cache: Arc<ChecksumCache>) -> io::Result<ServerHandle<FileServer>> {
    let root = std::fs::canonicalize(&opts.root)
        .map_err(|e| io::Error::new(e.kind(), format!("root {}: {e}", opts.root.display())))?;
    if !root.is_dir() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("root {} is not a directory", root.display())));
    }
    let shared = Arc::new(Shared { root, cache, sendfile: opts.sendfile });
    let config = ServerConfig::new(opts.addr)
        .threads(opts.threads)
        .idle_timeouts(IdleTimeouts::all(IDLE))
        .max_connections_per_ip(opts.max_conns_per_ip);
    EpollTPServer::new(config, shared, |shared| FileServer { shared: shared.clone(), handle: None, buf: Vec::new() })
        .start()
}

/// The handler of one IO thread.
pub struct FileServer {
    shared: Arc<Shared>,
    /// This loop's handle, so a hashing thread can come back to it.
    handle: Option<LoopHandle<FileServer>>,
    /// Read buffer for streaming without `sendfile` (one per IO thread, [`READ_CHUNK`] bytes).
    buf: Vec<u8>,
}

/// Per-connection state (the handler's typed `ConnState`).
#[derive(Default)]
pub enum State {
    /// The request line has not arrived yet.
    #[default]
    Request,
    /// Waiting for the checksum of the open file.
    Hashing(Transfer),
    /// Sending `file` from `offset` to `end`.
    Streaming(Transfer),
    /// The request was answered (or refused); anything after it is ignored.
    Done,
}

/// A file being sent.
pub struct Transfer {
    file: File,
    offset: u64,
    end: u64,
    /// Use `sendfile` (until it proves unusable for this file).
    sendfile: bool,
}

/// Resolves a requested path under `root` (canonical), refusing anything that leaves it.
///
/// # Errors
/// A reason for the `ERR` reply: an absolute path, a `..` component, a path that does not
/// exist, or one that resolves (through symlinks) outside the root.
pub fn resolve(root: &Path, requested: &str) -> Result<PathBuf, String> {
    if requested.contains('\0') {
        return Err("bad request: NUL in path".into());
    }
    let rel = Path::new(requested);
    if rel.is_absolute() {
        return Err(format!("absolute path not allowed: {requested:?}"));
    }
    if rel.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("'..' not allowed in path: {requested:?}"));
    }
    let full = std::fs::canonicalize(root.join(rel)).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("no such file: {requested}"),
        _ => format!("cannot open {requested}: {e}"),
    })?;
    if !full.starts_with(root) {
        return Err(format!("{requested:?} leads outside the served directory"));
    }
    Ok(full)
}

impl FileServer {
    /// Handles a complete request line: refuses it, or starts the transfer (at once when the
    /// checksum is cached, else once a helper thread has computed it).
    fn on_request(&mut self, conn: &mut Conn<'_, State>, line: &str) {
        let req = match Request::parse(line) {
            Ok(r) => r,
            Err(reason) => return refuse(conn, reason),
        };
        let opened = resolve(&self.shared.root, &req.path).and_then(|path| {
            let file = File::open(&path).map_err(|e| format!("cannot open {}: {e}", req.path))?;
            let meta = file.metadata().map_err(|e| format!("cannot stat {}: {e}", req.path))?;
            if !meta.is_file() {
                return Err(format!("not a regular file: {}", req.path));
            }
            if req.offset > meta.len() {
                return Err(format!("offset {} beyond the end of {} ({} bytes)", req.offset, req.path, meta.len()));
            }
            Ok((FileKey::new(&path, &meta), file, meta.len()))
        });
        let (key, file, size) = match opened {
            Ok(o) => o,
            Err(reason) => return refuse(conn, reason),
        };
        log::info!("{}: GET {} from {} ({size} bytes)", conn.peer_addr(), req.path, req.offset);
        let transfer = Transfer { file, offset: req.offset, end: size, sendfile: self.shared.sendfile };
        let id = conn.id();
        let handle = self.handle.clone().expect("on_start ran");
        let waiter = Box::new(move |result: Result<u64, String>| {
            // On the hashing thread: back to the connection's loop. A connection that closed
            // meanwhile is simply not found (its id's generation moved on).
            let _ = handle.run(move |h: &mut FileServer, ctx: &mut LoopCtx<'_, FileServer>| {
                if let Some(mut conn) = ctx.conn(id) {
                    h.on_checksum(&mut conn, result);
                }
            });
        });
        match self.shared.cache.get_or_hash(key, &transfer.file, waiter) {
            Some(sum) => self.begin(conn, transfer, sum),
            None => *conn.state_mut() = State::Hashing(transfer),
        }
    }

    /// The checksum arrived (on this loop, via `LoopHandle::run`).
    fn on_checksum(&mut self, conn: &mut Conn<'_, State>, result: Result<u64, String>) {
        if !matches!(conn.state(), State::Hashing(_)) {
            return;
        }
        let State::Hashing(transfer) = std::mem::replace(conn.state_mut(), State::Done) else { return };
        match result {
            Ok(sum) => self.begin(conn, transfer, sum),
            Err(reason) => refuse(conn, reason),
        }
    }

    /// Sends the header; the bytes follow from `on_write_complete`.
    fn begin(&mut self, conn: &mut Conn<'_, State>, transfer: Transfer, checksum: u64) {
        let reply = Reply::Ok { size: transfer.end, checksum, offset: transfer.offset };
        conn.send(reply.to_line().as_bytes());
        *conn.state_mut() = State::Streaming(transfer);
    }

    /// Sends the next chunk of the file; closes once it is all sent.
    fn pump(&mut self, conn: &mut Conn<'_, State>) {
        if !matches!(conn.state(), State::Streaming(_)) {
            return;
        }
        // Out of the state for the calls below (they need the whole `conn`); put back unless
        // the transfer ends here.
        let State::Streaming(mut t) = std::mem::replace(conn.state_mut(), State::Done) else { return };
        if t.offset < t.end && t.sendfile {
            let max = (t.end - t.offset).min(SENDFILE_CHUNK as u64) as usize;
            match conn.send_file(&t.file, &mut t.offset, max) {
                Ok(_) => {}
                // The socket failed: the connection is closing already.
                Err(e) if conn.is_closing() => return log::debug!("{}: sendfile: {e}", conn.peer_addr()),
                Err(e) => {
                    log::info!("{}: sendfile unusable ({e}); reading the file instead", conn.peer_addr());
                    t.sendfile = false;
                }
            }
        }
        if t.offset < t.end && !t.sendfile {
            if let Err(e) = self.send_read(conn, &mut t) {
                log::warn!("{}: read failed: {e}", conn.peer_addr());
                return conn.force_close();
            }
        }
        if t.offset >= t.end {
            conn.close();
        } else {
            *conn.state_mut() = State::Streaming(t);
        }
    }

    /// Reads up to [`READ_CHUNK`] bytes at `t.offset` and sends them (buffered if need be; the
    /// next chunk waits for `on_write_complete`, so at most one chunk is buffered).
    fn send_read(&mut self, conn: &mut Conn<'_, State>, t: &mut Transfer) -> io::Result<()> {
        self.buf.resize(READ_CHUNK, 0);
        let want = (t.end - t.offset).min(READ_CHUNK as u64) as usize;
        let n = t.file.read_at(&mut self.buf[..want], t.offset)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank during the transfer"));
        }
        conn.send(&self.buf[..n]);
        t.offset += n as u64;
        Ok(())
    }
}

/// Answers `ERR <reason>` and closes.
fn refuse(conn: &mut Conn<'_, State>, reason: String) {
    *conn.state_mut() = State::Done;
    log::info!("{}: refused: {reason}", conn.peer_addr());
    conn.send(Reply::Err(reason).to_line().as_bytes());
    conn.close();
}

impl IoHandler for FileServer {
    type ConnState = State;

    fn on_start(&mut self, ctx: &mut LoopCtx<'_, Self>) {
        self.handle = Some(ctx.handle());
    }

    fn on_message(&mut self, conn: &mut Conn<'_, State>) {
        if !matches!(conn.state(), State::Request) {
            // Only one request per connection: anything after it is ignored.
            conn.input().clear();
            return;
        }
        let Some(end) = conn.input().find_eol() else {
            if conn.input().len() >= MAX_LINE {
                conn.input().clear();
                refuse(conn, "bad request: line too long".into());
            }
            return;
        };
        let line = String::from_utf8_lossy(&conn.input().as_slice()[..end]).into_owned();
        conn.input().clear();
        *conn.state_mut() = State::Done; // one request per connection
        self.on_request(conn, &line);
    }

    fn on_write_complete(&mut self, conn: &mut Conn<'_, State>) {
        self.pump(conn);
    }
}
