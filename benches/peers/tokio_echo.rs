//! Bench helper, not part of the library: the echo server a Rust user would write with tokio
//! instead of kingpin. A current-thread runtime for one thread, a multi-thread runtime
//! otherwise; one task per connection, a 16 KiB buffer per task, `TCP_NODELAY` on (as kingpin).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves on `addr` with `threads` worker threads until the process is killed; prints
/// `echo_server listening on ADDR` once bound.
pub fn run(addr: SocketAddr, threads: usize) -> std::io::Result<()> {
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_io().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_io().build()?
    };
    rt.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        println!("echo_server listening on {} (tokio, {threads} threads)", listener.local_addr()?);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // E.g. out of fds: back off (blocking the runtime briefly is fine here).
                    eprintln!("tokio_echo: accept: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
            };
            tokio::spawn(echo(stream));
        }
    })
}

async fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
