//! Bench helper, not part of the library: the TLS echo server a Rust user would write with
//! tokio and tokio-rustls. A current-thread runtime (one thread, as kingpin's one IO thread in
//! the bench); one task per connection, a 16 KiB buffer per task, `TCP_NODELAY` on.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Serves TLS with `config` on `addr` until the process is killed; prints
/// `echo_server listening on ADDR` once bound.
pub fn run(addr: SocketAddr, config: Arc<rustls::ServerConfig>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        println!("echo_server listening on {} (tokio-rustls)", listener.local_addr()?);
        let acceptor = TlsAcceptor::from(config);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("tokio_rustls_echo: accept: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if tls.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}
