//! Without the `tls` feature: session types with no values, so that the layers above compile
//! the same and every TLS branch is dead code.

use super::error::TlsError;
use super::received::Received;
use crate::io::buffer::Buffer;
use crate::io::buffer_pool::BufferPool;

/// No TLS session can exist without the `tls` feature.
pub(crate) enum TlsSession {}

#[allow(clippy::unused_self)]
impl TlsSession {
    pub(crate) fn is_handshaking(&self) -> bool {
        match *self {}
    }
    pub(crate) fn cipher_in(&mut self, _pool: &mut BufferPool) -> &mut Buffer {
        match *self {}
    }
    pub(crate) fn receive(
        &mut self,
        _plain: &mut Option<Buffer>,
        _pool: &mut BufferPool,
    ) -> Result<Received, TlsError> {
        match *self {}
    }
    pub(crate) fn encrypt(&mut self, _data: &[u8]) {
        match *self {}
    }
    pub(crate) fn release_empty(&mut self, _pool: &mut BufferPool) {
        match *self {}
    }
    pub(crate) fn nothing_held(&mut self) {
        match *self {}
    }
    pub(crate) fn abandon(&mut self) {
        match *self {}
    }
    pub(crate) fn waiting(&self) -> usize {
        match *self {}
    }
    pub(crate) fn wants_write(&self) -> bool {
        match *self {}
    }
    pub(crate) fn write_into(&mut self, _out: &mut Buffer) {
        match *self {}
    }
    pub(crate) fn close_notify(&mut self) -> bool {
        match *self {}
    }
    pub(crate) fn held(&self) -> usize {
        match *self {}
    }
    pub(crate) fn take_buffers(&mut self) -> [Option<Buffer>; 2] {
        match *self {}
    }
    pub(crate) fn stage(&mut self, _data: &[u8], _pool: &mut BufferPool) {
        match *self {}
    }
    pub(crate) fn seal(&mut self, _pool: &mut BufferPool) {
        match *self {}
    }
    pub(crate) fn write_to(&mut self, _socket: &mut dyn std::io::Write) -> std::io::Result<usize> {
        match *self {}
    }
    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        match *self {}
    }
    pub(crate) fn server_name(&self) -> Option<&str> {
        match *self {}
    }
}

/// No server TLS without the `tls` feature.
#[derive(Clone, Debug)]
pub(crate) enum TlsServerSetup {}

impl TlsServerSetup {
    pub(crate) fn session(&self) -> Result<TlsSession, TlsError> {
        match *self {}
    }
}

/// No client TLS without the `tls` feature.
#[derive(Clone, Debug)]
pub(crate) enum TlsClientSetup {}

impl TlsClientSetup {
    pub(crate) fn session(&self, _name: &str) -> Result<TlsSession, TlsError> {
        match *self {}
    }
}
