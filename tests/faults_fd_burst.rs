//! 10,000 connections opened and closed in bursts leave no descriptor behind. Alone in its own
//! test binary, so no other test opens descriptors while this one counts them.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig};
use util::{connect, wait_until};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Echoes; after echoing a `c` it closes the connection itself.
struct EchoOrClose;

impl IoHandler for EchoOrClose {
    fn on_message(&mut self, conn: &mut Conn<'_>) {
        let close = conn.input().as_slice().contains(&b'c');
        conn.send_input();
        if close {
            conn.close();
        }
    }
}

/// Ten bursts of 1,000 connections (2,000 descriptors in this process, client and server side,
/// well under the 20,000 cap): each connection echoes one byte, then all close — half by the
/// client, half by the server after its echo. After each burst the server holds no
/// connection, and at the end the process has exactly the descriptors it had before the
/// first burst; after shutdown, those it had before the server started.
#[test]
fn ten_thousand_connections_in_bursts_leak_no_fd() {
    const BURSTS: usize = 10;
    const PER_BURST: usize = 1000;
    let started = Instant::now();
    let before_server = open_fds();
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(2), || EchoOrClose).start().unwrap();
    let addr = server.local_addr();
    let baseline = open_fds();
    for burst in 0..BURSTS {
        let mut conns: Vec<TcpStream> = (0..PER_BURST).map(|_| connect(addr)).collect();
        for (i, s) in conns.iter_mut().enumerate() {
            s.write_all(if i % 2 == 0 { b"e" } else { b"c" }).unwrap();
        }
        for (i, s) in conns.iter_mut().enumerate() {
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap_or_else(|e| panic!("burst {burst}, connection {i}: {e}"));
            assert_eq!(b[0], if i % 2 == 0 { b'e' } else { b'c' });
            if i % 2 == 1 {
                // The server closes this one after the echo.
                match s.read(&mut b) {
                    Ok(0) => {}
                    Ok(_) => panic!("burst {burst}, connection {i}: data after the echo"),
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                    Err(e) => panic!("burst {burst}, connection {i}: no close from the server: {e}"),
                }
            }
        }
        drop(conns);
        wait_until(Duration::from_secs(20), "burst closed on the server", || server.stats().connections == 0);
    }
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.closed), ((BURSTS * PER_BURST) as u64, (BURSTS * PER_BURST) as u64));
    assert_eq!(stats.accept_errors, 0);
    assert_eq!(open_fds(), baseline, "descriptors leaked over {} connections", BURSTS * PER_BURST);
    server.shutdown();
    server.join().unwrap();
    assert_eq!(open_fds(), before_server, "descriptors left after shutdown");
    eprintln!("{} connections in {BURSTS} bursts: {:?}", BURSTS * PER_BURST, started.elapsed());
}
