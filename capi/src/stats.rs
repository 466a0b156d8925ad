//! `kp_stats`: a server's or client's counters, summed over its IO threads.

use kingpin::Stats;

/// Counters of a server or client, summed over its IO threads (read with `kp_server_stats`
/// or `kp_client_stats`). Each counter is exact as of its loop's last turn; the set is not one
/// snapshot taken at one instant.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct kp_stats {
    /// Connections open now.
    pub connections: u64,
    /// Client: connects in progress.
    pub connecting: u64,
    /// Server: connections accepted so far.
    pub accepted: u64,
    /// Connections closed so far.
    pub closed: u64,
    /// Bytes read from peers.
    pub bytes_in: u64,
    /// Bytes written to peers.
    pub bytes_out: u64,
    /// Server: connections refused at the connection limits.
    pub refused: u64,
    /// Connections closed for an input, output or memory limit.
    pub closed_by_limit: u64,
    /// Connections closed by an idle timeout.
    pub closed_idle: u64,
    /// Panics caught inside the library (each closed its connection).
    pub panics: u64,
    /// Server: failed accepts (e.g. out of descriptors).
    pub accept_errors: u64,
    /// Bytes held in input and output buffers now.
    pub buffered_bytes: u64,
    /// TLS handshakes completed.
    pub tls_handshakes: u64,
    /// TLS handshakes that failed (each closed its connection; logged).
    pub tls_handshake_failures: u64,
}

impl From<Stats> for kp_stats {
    fn from(s: Stats) -> Self {
        kp_stats {
            connections: s.connections,
            connecting: s.connecting,
            accepted: s.accepted,
            closed: s.closed,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            refused: s.refused,
            closed_by_limit: s.closed_by_limit,
            closed_idle: s.closed_idle,
            panics: s.panics,
            accept_errors: s.accept_errors,
            buffered_bytes: s.buffered_bytes,
            tls_handshakes: s.tls_handshakes,
            tls_handshake_failures: s.tls_handshake_failures,
        }
    }
}
