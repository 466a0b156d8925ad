//! [`Received`]: what a read of ciphertext brought.

/// What one call of [`TlsSession::receive`] brought.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Received {
    /// Plaintext bytes appended to the connection's input.
    pub(crate) plaintext: usize,
    /// The handshake completed in this call.
    pub(crate) established: bool,
    /// The peer sent `close_notify`: its stream has ended.
    pub(crate) peer_closed: bool,
}
