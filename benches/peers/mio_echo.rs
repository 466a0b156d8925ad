//! Bench helper, not part of the library: the simplest correct single-threaded epoll echo loop
//! (on mio, edge-triggered) — the floor a framework can approach. One 64 KiB read buffer for
//! the whole loop; a connection holds a `Vec` only for output the socket did not take, and
//! stops reading until it drains. `TCP_NODELAY` on, as kingpin.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

/// Serves on `addr` until the process is killed; prints `echo_server listening on ADDR` once
/// bound.
pub fn run(addr: SocketAddr) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("echo_server listening on {} (mio, 1 thread)", listener.local_addr()?);
    let mut events = Events::with_capacity(1024);
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            next = next.wrapping_add(1) % (usize::MAX - 1);
                            let token = Token(next);
                            poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
                            conns.insert(next, Conn { stream, pending: Vec::new() });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            // E.g. out of fds: the listener stays ready; try again next turn.
                            eprintln!("mio_echo: accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let key = event.token().0;
            let Some(conn) = conns.get_mut(&key) else { continue };
            if !drive(conn, &mut buf) {
                if let Some(mut c) = conns.remove(&key) {
                    let _ = poll.registry().deregister(&mut c.stream);
                }
            }
        }
    }
}

/// Writes what is pending, then echoes until the socket would block. `false`: close it.
fn drive(conn: &mut Conn, buf: &mut [u8]) -> bool {
    loop {
        while !conn.pending.is_empty() {
            match conn.stream.write(&conn.pending) {
                Ok(n) => {
                    conn.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        let n = match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        match conn.stream.write(&buf[..n]) {
            Ok(w) => conn.pending.extend_from_slice(&buf[w..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {
                conn.pending.extend_from_slice(&buf[..n])
            }
            Err(_) => return false,
        }
    }
}
