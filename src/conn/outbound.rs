//! The write path of a connection: sends are gathered during a dispatch and written with one
//! system call when it ends; what the socket does not take waits for `EPOLLOUT`.
//!
//! - A send of fewer than [`DIRECT`] bytes is appended to the output buffer. The loop calls
//!   [`Outbound::flush`] when the dispatch ends, so a handler that answers a hundred pipelined
//!   requests from one read makes one `send`, not a hundred.
//! - A larger send goes to the socket at once, together with what is queued ahead of it
//!   (one `sendmsg` of both), so a big message is never copied just to be gathered.
//! - Echoing the input ([`Outbound::send_buffer`]) moves the input buffer to the output when
//!   nothing is queued: no copy at all.
//! - Once the socket refuses bytes the output waits for `EPOLLOUT` ([`Room::Full`]); nothing is
//!   written before then, so bytes never overtake one another and a slow peer costs no CPU.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::time::Instant;

use super::env::Env;
use super::state::Notice;
use crate::io::buffer::Buffer;
use crate::sys;
use crate::tls::TlsSession;

/// Sends of at least this many bytes go to the socket at once instead of being gathered.
pub(crate) const DIRECT: usize = 8 * 1024;

/// A `send_file` over TLS reads the file while less than this is pending, at most this much
/// per call: the stream is paced by `on_write_complete` as the plain one is, and memory stays
/// flat whatever the file's size.
pub(crate) const TLS_FILE_WINDOW: usize = 64 * 1024;

/// Whether the socket can take more output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// As far as we know; writes are tried.
    Free,
    /// It refused bytes: nothing is written until `EPOLLOUT` says it has room again.
    Full,
}

/// The write side of a connection: its socket, its pending output, and what is owed.
pub(crate) struct Outbound {
    pub(crate) fd: OwnedFd,
    /// Bytes not written yet. `None` while empty, so an idle connection holds no buffer.
    buf: Option<Buffer>,
    /// Whether the socket has room.
    pub(crate) room: Room,
    /// Whether `on_write_complete` is owed.
    pub(crate) notice: Notice,
    /// A write failed; the connection must close.
    pub(crate) error: Option<io::Error>,
    /// When a byte was last written.
    pub(crate) last_write: Instant,
    /// The connection's TLS session, when it has one: sends are encrypted into `buf`.
    pub(crate) tls: Option<Box<TlsSession>>,
}

impl Outbound {
    pub(crate) fn new(fd: OwnedFd, now: Instant) -> Self {
        Outbound { fd, buf: None, room: Room::Free, notice: Notice::Idle, error: None, last_write: now, tls: None }
    }

    /// Bytes queued and not yet written: on a TLS connection, the records waiting (ciphertext)
    /// and the plaintext sent before the handshake completed.
    pub(crate) fn pending(&self) -> usize {
        self.buf.as_ref().map_or(0, Buffer::len) + self.tls.as_ref().map_or(0, |t| t.waiting())
    }

    /// Capacity of the buffers held (0 when none), for the memory accounting.
    pub(crate) fn held(&self) -> usize {
        self.buf.as_ref().map_or(0, Buffer::capacity) + self.tls.as_ref().map_or(0, |t| t.held())
    }

    /// A TLS connection closing at once (`force_close`, an idle timeout, a limit): says
    /// `close_notify` with one try when nothing is pending — the stream is then at a record
    /// boundary — so that the peer sees a clean end rather than a truncation.
    pub(crate) fn tls_goodbye(&mut self) {
        if self.error.is_some() || self.room == Room::Full || self.pending() > 0 {
            return;
        }
        let Some(tls) = self.tls.as_mut() else { return };
        if tls.close_notify() {
            let _ = tls.write_to(&mut Socket(self.fd.as_fd()));
        }
    }

    /// Gives back a TLS session's empty ciphertext buffer (a read found nothing).
    pub(crate) fn release_tls_input(&mut self, env: &mut Env) {
        if let Some(tls) = self.tls.as_mut() {
            tls.release_empty(&mut env.pool);
        }
    }

    /// Moves the records the TLS session has ready (handshake, data, alerts) to the output.
    pub(crate) fn take_tls_output(&mut self, env: &mut Env) {
        let Some(tls) = self.tls.as_mut().filter(|t| t.wants_write()) else { return };
        tls.write_into(self.buf.get_or_insert_with(|| env.pool.get()));
    }

    /// Queues the TLS `close_notify` (once the handshake is done, once). Nothing is encrypted
    /// after it.
    pub(crate) fn tls_close_notify(&mut self, env: &mut Env) {
        let Some(tls) = self.tls.as_mut() else { return };
        if tls.is_handshaking() {
            // Closing stops reading, so the handshake cannot complete: what waited for it
            // will never be sent, and must not hold the close (or a reset peer) forever.
            return tls.abandon();
        }
        tls.seal(&mut env.pool); // what was sent before goes first
        if tls.close_notify() {
            self.take_tls_output(env);
        }
    }

    /// Whether the loop must watch `EPOLLOUT`: the socket is full and bytes, or a
    /// [`crate::Conn::send_file`], wait for it.
    pub(crate) fn wants_writable(&self) -> bool {
        self.room == Room::Full
    }

    /// Gives the buffers back (teardown): the output, and a TLS session's own.
    pub(crate) fn take_buffers(&mut self) -> [Option<Buffer>; 3] {
        let [a, b] = self.tls.as_mut().map_or([None, None], |t| t.take_buffers());
        [self.buf.take(), a, b]
    }

    fn owe(&mut self) {
        if self.notice == Notice::Idle {
            self.notice = Notice::Owed;
        }
    }

    fn wrote(&mut self, env: &Env, n: usize) {
        if n > 0 {
            env.stats.add_out(n);
            self.last_write = env.now;
        }
    }

    /// Queues `data`; large sends go out at once with what is queued ahead of them. The caller
    /// has checked that the connection takes sends.
    pub(crate) fn send(&mut self, env: &mut Env, data: &[u8]) {
        if data.is_empty() || self.error.is_some() {
            return;
        }
        self.owe();
        if let Some(tls) = self.tls.as_mut() {
            if data.len() < DIRECT {
                // Sealed with the rest of the dispatch's sends when it ends.
                return tls.stage(data, &mut env.pool);
            }
            // A large send is sealed and written now, after what was staged.
            tls.encrypt(data);
            return self.flush(env);
        }
        let mut written = 0;
        if data.len() >= DIRECT && self.room == Room::Free {
            let queued = self.pending();
            env.stats.on_write_call();
            let result = match self.buf.as_ref().filter(|b| !b.is_empty()) {
                Some(buf) => sys::writev(self.fd.as_fd(), &[IoSlice::new(buf.as_slice()), IoSlice::new(data)]),
                None => sys::send(self.fd.as_fd(), data),
            };
            match result {
                Ok(n) => {
                    self.wrote(env, n);
                    let from_queue = n.min(queued);
                    if let Some(buf) = self.buf.as_mut() {
                        buf.advance(from_queue);
                    }
                    written = n - from_queue;
                    if n < queued + data.len() {
                        self.room = Room::Full;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.room = Room::Full,
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
        if written < data.len() {
            self.buf.get_or_insert_with(|| env.pool.get()).extend_from_slice(&data[written..]);
        } else if self.pending() == 0 {
            if let Some(b) = self.buf.take() {
                env.pool.put(b);
            }
        }
    }

    /// Queues `data` as it is, even on a TLS connection (a PROXY protocol header, which goes
    /// before the handshake); written by the next flush.
    pub(crate) fn send_raw(&mut self, env: &mut Env, data: &[u8]) {
        if !data.is_empty() && self.error.is_none() {
            self.buf.get_or_insert_with(|| env.pool.get()).extend_from_slice(data);
        }
    }

    /// Queues every readable byte of `input` and empties it. With nothing queued the buffer
    /// itself moves to the output (no copy) and `input` is left `None`.
    pub(crate) fn send_buffer(&mut self, env: &mut Env, input: &mut Option<Buffer>) {
        let Some(inp) = input.as_mut().filter(|b| !b.is_empty()) else { return };
        if self.error.is_some() {
            inp.clear();
            return;
        }
        if self.tls.is_some() {
            self.owe();
        }
        if let Some(tls) = self.tls.as_mut() {
            // Sealed straight from the input (no staging copy), after what was staged.
            tls.encrypt(inp.as_slice());
            inp.clear();
            return;
        }
        self.owe();
        match self.buf.as_mut() {
            Some(buf) if !buf.is_empty() => {
                buf.extend_from_slice(inp.as_slice());
                inp.clear();
            }
            _ => {
                if let Some(empty) = self.buf.take() {
                    env.pool.put(empty);
                }
                self.buf = input.take();
            }
        }
    }

    /// Writes queued output with one `send` if the socket has room. Called by the loop when a
    /// dispatch ends and on `EPOLLOUT`.
    pub(crate) fn flush(&mut self, env: &mut Env) {
        if self.tls.is_some() {
            self.flush_tls(env);
        }
        if self.room == Room::Full || self.error.is_some() {
            return;
        }
        let Some(buf) = self.buf.as_mut() else { return };
        if !buf.is_empty() {
            env.stats.on_write_call();
            match sys::send(self.fd.as_fd(), buf.as_slice()) {
                Ok(n) => {
                    let all = n == buf.len();
                    buf.advance(n);
                    self.wrote(env, n);
                    if !all {
                        self.room = Room::Full;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.room = Room::Full,
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
        if self.pending() == 0 {
            if let Some(b) = self.buf.take() {
                env.pool.put(b);
            }
        }
    }

    /// The socket has room again (`EPOLLOUT`).
    pub(crate) fn on_writable(&mut self) {
        self.room = Room::Free;
    }

    /// `sendfile` of up to `max` bytes of `file` from `*offset`, once nothing is queued ahead.
    /// See [`crate::Conn::send_file`]. The caller has checked that the connection takes sends.
    pub(crate) fn send_file(&mut self, env: &mut Env, file: &File, offset: &mut u64, max: usize) -> io::Result<usize> {
        if self.error.is_some() || max == 0 {
            return Ok(0);
        }
        // `on_write_complete` follows once the range is sent, the queue drains, or the socket
        // has room again, whichever this call ends waiting for.
        self.owe();
        if self.pending() > 0 {
            self.flush(env); // bytes queued ahead go first
            if self.pending() > 0 || self.error.is_some() {
                return Ok(0);
            }
        }
        if self.tls.is_some() {
            return self.send_file_tls(env, file, offset, max);
        }
        let mut sent = 0;
        while sent < max && self.room == Room::Free {
            env.stats.on_write_call();
            match sys::sendfile(self.fd.as_fd(), file.as_fd(), offset, max - sent) {
                // The file ended before the range did (truncated under the transfer?): an
                // error of the file, so that a streamer does not ask again forever.
                Ok(0) if sent == 0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the file ends before offset {} + {max}", *offset),
                    ))
                }
                Ok(0) => break, // the next call reports it
                Ok(n) => {
                    sent += n;
                    self.wrote(env, n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.room = Room::Full,
                Err(e) if sent > 0 => {
                    // What was sent counts; the error comes back on the next call.
                    log::trace!(target: "kingpin::conn", "sendfile after {sent} bytes: {e}");
                    break;
                }
                Err(e) if is_file_error(&e) => return Err(e),
                Err(e) => {
                    let copy = match e.raw_os_error() {
                        Some(code) => io::Error::from_raw_os_error(code),
                        None => io::Error::new(e.kind(), e.to_string()),
                    };
                    self.error = Some(e);
                    return Err(copy);
                }
            }
        }
        Ok(sent)
    }
}

impl Outbound {
    /// The TLS part of a flush: seals what the dispatch sent, then writes the records straight
    /// from rustls to the socket when nothing is queued ahead of them (one vectored write, no
    /// copy); what the socket does not take, or what must wait behind queued bytes, moves to the
    /// output buffer.
    fn flush_tls(&mut self, env: &mut Env) {
        let Some(tls) = self.tls.as_mut() else { return };
        tls.seal(&mut env.pool);
        if !tls.wants_write() {
            tls.nothing_held(); // rustls took bytes without a record (e.g. past a key's limit)
            return;
        }
        let queued = self.buf.as_ref().is_some_and(|b| !b.is_empty());
        // rustls hands over at most 64 records per write: write until it holds none, or the
        // socket refuses (only a refusal means an `EPOLLOUT` will come, edge-triggered too).
        while !queued && self.room == Room::Free && self.error.is_none() && tls.wants_write() {
            env.stats.on_write_call();
            match tls.write_to(&mut Socket(self.fd.as_fd())) {
                Ok(n) if n > 0 => {
                    env.stats.add_out(n);
                    self.last_write = env.now;
                }
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.room = Room::Full,
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
        self.take_tls_output(env);
    }

    /// `send_file` on a TLS connection: the file is read (at most [`TLS_FILE_WINDOW`] per
    /// call, and only while less than that is pending), encrypted and queued; the output is
    /// flushed at once. Returns how many bytes of the file were taken.
    fn send_file_tls(&mut self, env: &mut Env, file: &File, offset: &mut u64, max: usize) -> io::Result<usize> {
        let pending = self.pending();
        if pending >= TLS_FILE_WINDOW || self.room == Room::Full {
            return Ok(0); // `on_write_complete` follows once the output has drained
        }
        let want = max.min(TLS_FILE_WINDOW - pending);
        let mut chunk = env.pool.get();
        chunk.reserve(want);
        let read = file.read_at(&mut chunk.writable_mut()[..want], *offset);
        let result = match read {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the file ends before offset {} + {max}", *offset),
            )),
            Ok(n) => {
                chunk.commit(n);
                self.send(env, chunk.as_slice());
                *offset += n as u64;
                self.flush(env);
                Ok(n)
            }
            Err(e) => Err(e),
        };
        env.pool.put(chunk);
        result
    }
}

/// A socket as rustls writes to it: `writev` of its records.
struct Socket<'a>(BorrowedFd<'a>);

impl io::Write for Socket<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        sys::send(self.0, data)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        sys::writev(self.0, bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether a `sendfile` error concerns the file rather than the socket, so the connection can
/// go on (e.g. with buffered reads and [`crate::Conn::send`]).
fn is_file_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::EIO | libc::EOVERFLOW | libc::ESPIPE)
    ) || e.kind() == io::ErrorKind::InvalidInput
}
