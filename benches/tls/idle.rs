//! The idle shape: many TLS connections opened (handshake done, one request answered, kept
//! alive) and held; the server's RSS growth per connection once they are idle.

use std::io::{self, Read, Write};
use std::time::Duration;

use crate::process::Server;
use crate::servers;

/// Opens `conns` connections to `server`, each answering one `GET /`, and returns the server's
/// RSS growth per connection (bytes) after they have been idle a moment.
pub fn measure(server: &Server, pem: &str, conns: usize) -> io::Result<f64> {
    let config = servers::client_config(pem)?;
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss_kib();
    let mut held = Vec::with_capacity(conns);
    let mut buf = [0u8; 1024];
    for _ in 0..conns {
        let mut s = servers::connect(server.addr, &config)?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let n = s.read(&mut buf)?;
        if !buf[..n].starts_with(b"HTTP/1.1 200") {
            return Err(io::Error::other(format!("unexpected answer: {:?}", String::from_utf8_lossy(&buf[..n]))));
        }
        held.push(s);
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = server.rss_kib();
    drop(held);
    Ok((after.saturating_sub(before) * 1024) as f64 / conns as f64)
}
