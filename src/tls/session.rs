//! [`TlsSession`]: one connection's rustls state between its socket and its handler.

use std::io::{self, IoSlice, Read, Write};

use rustls::pki_types::CertificateDer;

use super::error::TlsError;
use super::received::Received;
use crate::io::buffer::Buffer;
use crate::io::buffer_pool::BufferPool;

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The handshake is under way: plaintext sent now waits inside rustls.
    Handshaking,
    /// The handshake is done; `close_notify` not sent yet.
    Established,
    /// `close_notify` has been queued: nothing more is encrypted.
    Closed,
}

/// One connection's TLS: the rustls connection, the ciphertext read and not yet taken by it,
/// and the plaintext sent before the handshake completed.
///
/// Ciphertext comes in through [`TlsSession::cipher_in`] (filled from the socket by the loop)
/// and [`TlsSession::receive`], which decrypts into the connection's input. Plaintext goes out
/// gathered: small sends are staged ([`TlsSession::stage`]) and sealed into records once per
/// dispatch ([`TlsSession::seal`]), so a callback's sends make few records; the records wait
/// in rustls until the connection's flush writes them to the socket
/// ([`TlsSession::write_to`]) or moves them to its output buffer
/// ([`TlsSession::write_into`]). rustls's own buffer limits are off: the connection's water
/// marks and limits count what is held ([`TlsSession::waiting`]).
pub(crate) struct TlsSession {
    conn: rustls::Connection,
    /// Ciphertext read from the socket and not yet taken by rustls; `None` while empty, so an
    /// idle connection holds no buffer of its own.
    cin: Option<Buffer>,
    /// Plaintext sent during the handshake (a client's first message): rustls sends it once
    /// the handshake is done.
    early: usize,
    /// Plaintext sent and not sealed yet (gathered during a dispatch); `None` while empty.
    staged: Option<Buffer>,
    /// Plaintext sealed into records that rustls still holds (until the next write).
    sealed: usize,
    phase: Phase,
}

impl TlsSession {
    pub(crate) fn new(mut conn: rustls::Connection) -> Self {
        // The connection's own water marks and limits bound what it holds.
        conn.set_buffer_limit(None);
        TlsSession { conn, cin: None, early: 0, staged: None, sealed: 0, phase: Phase::Handshaking }
    }

    /// Whether the handshake is still under way.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.phase == Phase::Handshaking
    }

    /// The buffer the loop reads ciphertext into.
    pub(crate) fn cipher_in(&mut self, pool: &mut BufferPool) -> &mut Buffer {
        self.cin.get_or_insert_with(|| pool.get())
    }

    /// Gives the ciphertext buffer back when it is empty (an idle connection holds none).
    pub(crate) fn release_empty(&mut self, pool: &mut BufferPool) {
        if self.cin.as_ref().is_some_and(Buffer::is_empty) {
            self.drop_input(pool);
        }
    }

    /// rustls holds no record: nothing sealed is waiting.
    pub(crate) fn nothing_held(&mut self) {
        self.sealed = 0;
    }

    /// Drops the ciphertext read (a lingering close reads only to drop).
    fn drop_input(&mut self, pool: &mut BufferPool) {
        if let Some(b) = self.cin.take() {
            pool.put(b);
        }
    }

    /// Gives rustls the ciphertext read, and appends the plaintext it yields to `plain`.
    /// Handshake records to answer with, alerts and the like wait for [`Self::write_into`].
    ///
    /// # Errors
    /// The peer broke the protocol (or sent no TLS at all); rustls has queued an alert for it,
    /// which [`Self::write_into`] still delivers.
    pub(crate) fn receive(&mut self, plain: &mut Option<Buffer>, pool: &mut BufferPool) -> Result<Received, TlsError> {
        let mut got = Received::default();
        let result = self.decrypt(plain, pool, &mut got);
        if self.cin.as_ref().is_some_and(Buffer::is_empty) {
            self.drop_input(pool);
        }
        result?;
        if self.phase == Phase::Handshaking && !self.conn.is_handshaking() {
            self.phase = Phase::Established;
            self.early = 0; // rustls encrypted it as the handshake completed
            got.established = true;
        }
        Ok(got)
    }

    fn decrypt(
        &mut self,
        plain: &mut Option<Buffer>,
        pool: &mut BufferPool,
        got: &mut Received,
    ) -> Result<(), TlsError> {
        let Some(cin) = self.cin.as_mut() else { return Ok(()) };
        while !cin.is_empty() && !got.peer_closed {
            // rustls takes a few KiB at a time; the rest stays for the next round.
            let taken = self.conn.read_tls(&mut cin.as_slice()).map_err(|e| TlsError::Protocol(e.to_string()))?;
            cin.advance(taken);
            let state = self.conn.process_new_packets().map_err(|e| TlsError::Protocol(e.to_string()))?;
            let ready = state.plaintext_bytes_to_read();
            if ready > 0 {
                let buf = plain.get_or_insert_with(|| pool.get());
                buf.reserve(ready);
                let n = self
                    .conn
                    .reader()
                    .read(&mut buf.writable_mut()[..ready])
                    .map_err(|e| TlsError::Protocol(e.to_string()))?;
                buf.commit(n);
                got.plaintext += n;
            }
            if state.peer_has_closed() {
                got.peer_closed = true;
            }
            if taken == 0 {
                break; // nothing more is taken after close_notify
            }
        }
        if got.peer_closed {
            cin.clear(); // bytes after close_notify are not part of the stream
        }
        Ok(())
    }

    /// Gathers `data` to be sealed with the rest of the dispatch's sends.
    pub(crate) fn stage(&mut self, data: &[u8], pool: &mut BufferPool) {
        if self.phase != Phase::Closed {
            self.staged.get_or_insert_with(|| pool.get()).extend_from_slice(data);
        }
    }

    /// Seals what was staged into records (one write to rustls, which cuts 16 KiB records).
    pub(crate) fn seal(&mut self, pool: &mut BufferPool) {
        let Some(staged) = self.staged.take() else { return };
        self.encrypt(staged.as_slice());
        pool.put(staged);
    }

    /// Encrypts `data` after what was staged (during the handshake it waits inside rustls, and
    /// is encrypted and queued once the handshake is done). Nothing is taken after
    /// `close_notify`.
    pub(crate) fn encrypt(&mut self, data: &[u8]) {
        if self.phase == Phase::Closed || data.is_empty() {
            return;
        }
        if let Some(staged) = self.staged.take() {
            // Bytes never overtake one another.
            let _ = self.conn.writer().write_all(staged.as_slice());
            self.count(staged.len());
            drop(staged); // rare (a large send after small ones): not worth a pool
        }
        let _ = self.conn.writer().write_all(data); // with rustls's limit off, it takes everything
        self.count(data.len());
    }

    fn count(&mut self, n: usize) {
        if self.phase == Phase::Handshaking {
            self.early += n;
        } else {
            self.sealed += n;
        }
    }

    /// The session failed: plaintext that waited for the handshake will never be sent, and is
    /// no longer counted as pending (so that the close does not wait for it).
    pub(crate) fn abandon(&mut self) {
        self.early = 0;
        self.staged = None;
    }

    /// Bytes sent and not yet in the connection's output: staged, sealed into records rustls
    /// still holds (counted as their plaintext), or waiting for the handshake.
    pub(crate) fn waiting(&self) -> usize {
        self.early + self.sealed + self.staged.as_ref().map_or(0, Buffer::len)
    }

    /// Whether rustls holds records to send.
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Moves the records rustls has ready (handshake, application data, alerts) to `out`.
    pub(crate) fn write_into(&mut self, out: &mut Buffer) {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut Sink(out)) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        self.sealed = 0;
    }

    /// Writes the records rustls has ready to `socket` (one vectored write of them). Returns the
    /// bytes written; what the socket did not take stays in rustls ([`Self::wants_write`]).
    ///
    /// # Errors
    /// The socket's, `WouldBlock` included.
    pub(crate) fn write_to(&mut self, socket: &mut dyn Write) -> io::Result<usize> {
        let n = self.conn.write_tls(socket)?;
        if !self.conn.wants_write() {
            self.sealed = 0;
        }
        Ok(n)
    }

    /// Queues `close_notify` once the handshake is done (before it, closing just closes).
    /// Returns whether it was queued now.
    pub(crate) fn close_notify(&mut self) -> bool {
        if self.phase != Phase::Established {
            return false;
        }
        self.conn.send_close_notify();
        self.phase = Phase::Closed;
        true
    }

    /// Buffer capacity held outside rustls (for the memory accounting).
    pub(crate) fn held(&self) -> usize {
        self.cin.as_ref().map_or(0, Buffer::capacity) + self.staged.as_ref().map_or(0, Buffer::capacity)
    }

    /// Gives the session's buffers back (teardown).
    pub(crate) fn take_buffers(&mut self) -> [Option<Buffer>; 2] {
        [self.cin.take(), self.staged.take()]
    }

    /// The ALPN protocol agreed, if any.
    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The name the client asked for (SNI): on a server, what the client sent; on a client,
    /// `None`.
    pub(crate) fn server_name(&self) -> Option<&str> {
        match &self.conn {
            rustls::Connection::Server(s) => s.server_name(),
            rustls::Connection::Client(_) => None,
        }
    }

    /// The peer's certificate chain, once the handshake has it.
    pub(crate) fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// The protocol version agreed.
    pub(crate) fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The cipher suite agreed.
    pub(crate) fn cipher_suite(&self) -> Option<rustls::SupportedCipherSuite> {
        self.conn.negotiated_cipher_suite()
    }
}

/// Appends what rustls writes to a [`Buffer`].
struct Sink<'a>(&'a mut Buffer);

impl Write for Sink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(data);
        Ok(data.len())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total = bufs.iter().map(|b| b.len()).sum();
        self.0.reserve(total);
        for b in bufs {
            self.0.extend_from_slice(b);
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
