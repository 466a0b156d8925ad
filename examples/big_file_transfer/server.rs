//! The file server: an [`IoHandler`] that answers one request per connection by streaming the
//! file with `sendfile(2)` (or bounded buffered reads), paced by `on_write_complete`. Over TLS
//! the same code runs: kingpin's `send_file` then reads the file in bounded chunks and
//! encrypts them, paced the same way.
//!
//! A connection goes through three states: reading its request line (cut by kingpin's
//! `LinesCodec`, through [`RequestLines`]); waiting for the file's checksum (computed once per
//! file version on kingpin's worker pool, never on an IO thread, and shared through
//! [`Hashes`]); then streaming, one chunk per `on_write_complete`, until the end of the file,
//! when it closes. The server never holds more than one chunk of a file in memory per
//! connection, and with `sendfile` none at all.
//!
//! The first request for a file starts its hashing with `spawn_blocking` on its connection;
//! the completion comes back on that connection's loop and tells every request that joined
//! meanwhile — on that loop or, through the loop handle each waiter carries, on another.
//!
//! Files are opened with `openat2(RESOLVE_BENEATH)` relative to a descriptor of the root, so
//! the kernel itself keeps every lookup inside the root, whatever is renamed or replaced by a
//! symlink meanwhile; and what was opened is checked through its descriptor, never its name.

use std::fs::{File, Metadata};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kingpin::{
    CancelToken, Conn, ConnId, EpollTPServer, IdleAction, IdleKind, IdleTimeouts, IoHandler, JobError, LoopCtx,
    LoopHandle, ServerConfig, ServerHandle, Shutdown, Stats,
};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::checksum::FileKey;
use crate::hashes::{HashJob, HashStats, Hashed, Hashes, JobId, Lookup, Ticket};
use crate::os_error::describe;
use crate::protocol::{Reply, Request, RequestLines};

/// Most bytes handed to one `sendfile` call: the kernel takes what fits in the socket buffer.
const SENDFILE_CHUNK: usize = 4 << 20;
/// Bytes read per step when streaming without `sendfile`.
const READ_CHUNK: usize = 256 << 10;
/// How often `openat2` is retried when the kernel saw a rename race during the lookup.
const OPEN_RETRIES: usize = 16;

/// What the server needs to know.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The directory whose files are served.
    pub root: PathBuf,
    /// Address to listen on (port 0: any free port).
    pub addr: SocketAddr,
    /// IO threads (at least 1).
    pub threads: usize,
    /// Stream with `sendfile(2)`; `false` reads the file in bounded chunks and sends them.
    pub sendfile: bool,
    /// Most connections open at once from one peer address (`None`: no limit).
    pub max_conns_per_ip: Option<usize>,
    /// Threads of the server's worker pool, which hashes files (at least 1).
    pub hash_threads: usize,
    /// Files that may wait for a worker (at least 1); a request for one more is refused.
    pub hash_queue: usize,
    /// A connection that reads and writes nothing for this long is closed, unless it waits
    /// for its file's checksum.
    pub idle_timeout: Duration,
    /// Speak TLS with this config (`None`: plain TCP). The file still goes out through
    /// `Conn::send_file`, which kingpin then reads in bounded chunks and encrypts.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl ServerOptions {
    /// The defaults for serving `root` on `addr`: 2 IO threads, `sendfile`, 64 connections per
    /// address, 2 worker threads with 64 files waiting at most, 60 s idle timeout, no TLS.
    pub fn new(root: impl Into<PathBuf>, addr: SocketAddr) -> Self {
        ServerOptions {
            root: root.into(),
            addr,
            threads: 2,
            sendfile: true,
            max_conns_per_ip: Some(64),
            hash_threads: 2,
            hash_queue: 64,
            idle_timeout: Duration::from_secs(60),
            tls: None,
        }
    }
}

/// What all IO threads share.
struct Shared {
    /// The root directory, opened once: every file is looked up beneath it.
    root: OwnedFd,
    hashes: Arc<Hashes<Waiter>>,
    sendfile: bool,
}

/// A request waiting for its file's checksum, as the job's completion reaches it: through its
/// loop (possibly another than the completion's), by its connection's id.
pub struct Waiter {
    at: LoopHandle<FileServer>,
    conn: ConnId,
}

/// A running server: the IO threads, and the worker pool they hash on.
pub struct Server {
    io: ServerHandle<FileServer>,
    hashes: Arc<Hashes<Waiter>>,
}

impl Server {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.io.local_addr()
    }

    /// The IO threads' counters.
    #[allow(dead_code)] // used by the tests
    pub fn stats(&self) -> Stats {
        self.io.stats()
    }

    /// Each IO thread's counters, by loop index.
    #[allow(dead_code)] // used by the tests
    pub fn loop_stats(&self) -> Vec<Stats> {
        self.io.loop_stats()
    }

    /// The hashing counters (the worker pool's among them).
    #[allow(dead_code)] // used by the tests
    pub fn hash_stats(&self) -> HashStats {
        self.hashes.stats(self.io.workers().stats())
    }

    /// Starts a graceful shutdown (any thread); [`Server::join`] waits for it.
    #[allow(dead_code)] // used by the tests
    pub fn shutdown(&self) {
        self.io.shutdown();
    }

    /// A handle that shuts the server down from anywhere (a signal handler, say).
    #[allow(dead_code)] // used by main, not by the tests
    pub fn shutdown_handle(&self) -> Shutdown {
        self.io.shutdown_handle()
    }

    /// Waits until the IO threads and the worker pool have stopped; returns the hashing
    /// counters at the end.
    ///
    /// # Errors
    /// As [`ServerHandle::join`].
    pub fn join(self) -> io::Result<HashStats> {
        let workers = self.io.workers().clone();
        let result = self.io.join();
        result.map(|()| self.hashes.stats(workers.stats()))
    }
}

/// Starts a server; it runs until shut down.
///
/// # Errors
/// One line for a person: no IO or worker thread (or queue) asked for, a root that is not a directory
/// (`cannot serve <root>: ...`), a kernel without `openat2`, or an address that cannot be
/// bound (`cannot listen on <addr>: address already in use`).
pub fn start(opts: &ServerOptions) -> io::Result<Server> {
    let invalid = |msg: &str| io::Error::new(io::ErrorKind::InvalidInput, msg);
    if opts.threads == 0 {
        return Err(invalid("at least one IO thread is needed"));
    }
    if opts.hash_threads == 0 {
        return Err(invalid("at least one hashing thread is needed"));
    }
    if opts.hash_queue == 0 {
        return Err(invalid("room for at least one file waiting to be hashed is needed"));
    }
    let cannot_serve =
        |e: io::Error| io::Error::new(e.kind(), format!("cannot serve {}: {}", opts.root.display(), describe(&e)));
    let root = nix::fcntl::open(&opts.root, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| cannot_serve(e.into()))?;
    // Fail now, not on every request, on a kernel without openat2 (Linux before 5.6).
    if let Err(e) = openat2_beneath(root.as_fd(), Path::new(".")) {
        let e = io::Error::from(e);
        return Err(match e.raw_os_error() {
            Some(libc::ENOSYS) => cannot_serve(io::Error::new(e.kind(), "this kernel lacks openat2 (Linux 5.6+)")),
            _ => cannot_serve(e),
        });
    }
    let hashes = Hashes::new();
    let shared = Arc::new(Shared { root, hashes: hashes.clone(), sendfile: opts.sendfile });
    let mut config = ServerConfig::new(opts.addr)
        .threads(opts.threads)
        .idle_timeouts(IdleTimeouts::all(opts.idle_timeout))
        .max_connections_per_ip(opts.max_conns_per_ip)
        .worker_threads(opts.hash_threads)
        .worker_queue(opts.hash_queue);
    if let Some(tls) = &opts.tls {
        config = config.tls(tls.clone());
    }
    let io = EpollTPServer::new(config, shared, |shared| FileServer {
        shared: shared.clone(),
        handle: None,
        lines: RequestLines::new(),
        buf: Vec::new(),
    })
    .start()
    .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {}", opts.addr, describe(&e))))?;
    Ok(Server { io, hashes })
}

/// The handler of one IO thread.
pub struct FileServer {
    shared: Arc<Shared>,
    /// This loop's handle, for the waiters of a checksum: a completion on another loop comes
    /// back to this one with it.
    handle: Option<LoopHandle<FileServer>>,
    /// Cuts the request line.
    lines: RequestLines,
    /// Read buffer for streaming without `sendfile` (one per IO thread, [`READ_CHUNK`] bytes).
    buf: Vec<u8>,
}

/// Per-connection state (the handler's typed `ConnState`).
#[derive(Default)]
pub enum State {
    /// The request line has not arrived yet.
    #[default]
    Request,
    /// Waiting for the checksum of the open file. Dropping the ticket (the connection closed)
    /// withdraws the request, and stops the hashing when nobody else waits for it.
    Hashing {
        /// The transfer, ready to start.
        transfer: Transfer,
        /// This request's place among the job's waiters.
        _ticket: Ticket<Waiter>,
    },
    /// Sending `file` from `offset` to `end`.
    Streaming(Transfer),
    /// The request was answered (or refused); anything after it is ignored.
    Done,
}

/// A file being sent.
pub struct Transfer {
    /// Shared with the job hashing it, if any.
    file: Arc<File>,
    offset: u64,
    end: u64,
    /// Use `sendfile` (until it proves unusable for this file).
    sendfile: bool,
}

/// `openat2(root, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, RESOLVE_BENEATH |
/// RESOLVE_NO_MAGICLINKS)`: every component, symlinks followed, must stay beneath `root` (the
/// kernel refuses an absolute symlink, or a `..` that would climb out, with `EXDEV`, and
/// retries or fails with `EAGAIN` when a rename races the lookup). Non-blocking, so a FIFO or
/// a device opens at once — to be refused — instead of waiting for a writer.
fn openat2_beneath(root: BorrowedFd<'_>, path: &Path) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut tries = 0;
    loop {
        match nix::fcntl::openat2(root, path, how) {
            Err(Errno::EAGAIN | Errno::EINTR) if tries < OPEN_RETRIES => tries += 1,
            other => return other,
        }
    }
}

/// Opens the regular file at `requested` beneath the root directory `root`.
///
/// # Errors
/// A reason for the `ERR` reply: an absolute path, a `..` component, a path that does not
/// exist, one that leads (through symlinks) outside the root, or anything but a regular file.
pub fn open_beneath(root: BorrowedFd<'_>, requested: &Path) -> Result<(File, Metadata), String> {
    // At most 200 characters of the name in a reply: a long name of raw bytes, shown with
    // replacement characters, must not make the reply longer than a line may be.
    let shown = {
        let full = requested.display().to_string();
        match full.char_indices().nth(200) {
            Some((at, _)) => format!("{}…", &full[..at]),
            None => full,
        }
    };
    if requested.as_os_str().as_bytes().contains(&0) {
        return Err("bad request: NUL in path".into());
    }
    if requested.is_absolute() {
        return Err(format!("absolute path not allowed: {shown}"));
    }
    if requested.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("'..' not allowed in path: {shown}"));
    }
    let fd = openat2_beneath(root, requested).map_err(|e| match e {
        Errno::ENOENT | Errno::ENOTDIR => format!("no such file: {shown}"),
        Errno::EXDEV => format!("{shown} leads outside the served directory"),
        Errno::ELOOP => format!("too many levels of symbolic links: {shown}"),
        Errno::ENXIO | Errno::ENODEV => format!("not a regular file: {shown}"),
        Errno::EACCES | Errno::EPERM => format!("permission denied: {shown}"),
        Errno::EAGAIN => format!("{shown}: the served directory kept changing during the lookup; try again"),
        e => format!("cannot open {shown}: {}", describe(&e.into())),
    })?;
    let file = File::from(fd);
    // What was opened, through its descriptor: the name may point elsewhere by now.
    let meta = file.metadata().map_err(|e| format!("cannot stat {shown}: {}", describe(&e)))?;
    if !meta.is_file() {
        return Err(format!("not a regular file: {shown}"));
    }
    Ok((file, meta))
}

impl FileServer {
    /// Handles a complete request line: refuses it, or starts the transfer (at once when the
    /// checksum is cached, else once a worker has computed it).
    fn on_request(&mut self, conn: &mut Conn<'_, State>, line: &[u8]) {
        let req = match Request::parse(line) {
            Ok(r) => r,
            Err(reason) => return refuse(conn, reason),
        };
        let name = req.path.display().to_string();
        let opened = open_beneath(self.shared.root.as_fd(), &req.path).and_then(|(file, meta)| {
            if req.offset > meta.len() {
                return Err(format!("offset {} beyond the end of {name} ({} bytes)", req.offset, meta.len()));
            }
            Ok((file, meta))
        });
        let (file, meta) = match opened {
            Ok(o) => o,
            Err(reason) => return refuse(conn, reason),
        };
        let size = meta.len();
        log::info!("{}: GET {name} from {} ({size} bytes)", conn.peer_addr(), req.offset);
        let file = Arc::new(file);
        let transfer = Transfer { file: file.clone(), offset: req.offset, end: size, sendfile: self.shared.sendfile };
        let waiter = Waiter { at: self.handle.clone().expect("on_start ran"), conn: conn.id() };
        let hashes = self.shared.hashes.clone();
        // Only when no job for this file is in progress: queue one, on the worker pool, for
        // this connection (a full pool is refused at once, never waited for).
        let start = |job: HashJob<Waiter>| {
            let id = job.id();
            Self::spawn_blocking(
                conn,
                move |started_for: &CancelToken| job.run(&file, started_for),
                move |me: &mut Self, conn, hashed| me.on_hashed(conn, id, hashed),
            )
        };
        match hashes.request(FileKey::new(&meta), &name, waiter, start) {
            Lookup::Ready(sum) => self.begin(conn, transfer, sum),
            Lookup::Waiting(ticket) => *conn.state_mut() = State::Hashing { transfer, _ticket: ticket },
            Lookup::Refused(reason) => refuse(conn, reason),
        }
    }

    /// The job this loop started came back (`starter`: its connection, if still open): every
    /// request waiting for it hears the result — the starter here, the others on their loops.
    fn on_hashed(&mut self, mut starter: Option<&mut Conn<'_, State>>, job: JobId, hashed: Result<Hashed, JobError>) {
        let result = match hashed {
            Ok(Hashed::Sum(sum)) => Ok(sum),
            Ok(Hashed::Failed(reason)) => Err(reason),
            Ok(Hashed::Cancelled) => Err("hashing was cancelled; try again".to_string()),
            Err(JobError::Shutdown) => Err("server shutting down".to_string()),
            Err(e) => Err(format!("cannot hash the file: {e}")),
        };
        for Waiter { at, conn: id } in self.shared.hashes.finish(job) {
            match starter.as_deref_mut() {
                Some(conn) if conn.loop_index() == at.index() && conn.id() == id => {
                    self.on_checksum(conn, result.clone());
                }
                _ => {
                    // A connection that closed meanwhile is simply not found (its id's
                    // generation moved on).
                    let result = result.clone();
                    let _ = at.run(move |h: &mut FileServer, ctx: &mut LoopCtx<'_, FileServer>| {
                        if let Some(mut conn) = ctx.conn(id) {
                            h.on_checksum(&mut conn, result);
                        }
                    });
                }
            }
        }
    }

    /// The checksum arrived, on this connection's loop.
    fn on_checksum(&mut self, conn: &mut Conn<'_, State>, result: Result<u64, String>) {
        if !matches!(conn.state(), State::Hashing { .. }) {
            return;
        }
        let State::Hashing { transfer, .. } = std::mem::replace(conn.state_mut(), State::Done) else { return };
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
        let Some(line) = conn.decode(&mut self.lines) else { return }; // not all there yet
        conn.input().clear();
        *conn.state_mut() = State::Done; // one request per connection
        match line {
            Ok(line) => self.on_request(conn, &line),
            Err(_) => refuse(conn, "bad request: line too long".into()),
        }
    }

    fn on_write_complete(&mut self, conn: &mut Conn<'_, State>) {
        self.pump(conn);
    }

    fn on_idle(&mut self, conn: &mut Conn<'_, State>, _kind: IdleKind) -> IdleAction {
        // Silent because the server is still hashing its file: not the peer's fault.
        if matches!(conn.state(), State::Hashing { .. }) {
            IdleAction::Keep
        } else {
            IdleAction::Close
        }
    }
}
