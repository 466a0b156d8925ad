//! Echo load for the deployment tests: client threads doing round trips (keep-alive, a new
//! connection every few requests) until told to stop, counting what happened. A request whose
//! connection closes before any byte of the answer is retried on a new connection, as an
//! HTTP client retries an idempotent request; a partial or wrong answer is a failure.
//! Included with `#[path = "util/echo_load.rs"] mod echo_load;`.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the load saw.
#[derive(Default)]
pub struct Load {
    pub round_trips: AtomicU64,
    pub new_connections: AtomicU64,
    pub refused: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    pub stop: AtomicBool,
}

impl Load {
    pub fn summary(&self) -> String {
        format!(
            "{} round trips, {} new connections, {} retried, {} refused, {} failed",
            self.round_trips.load(Relaxed),
            self.new_connections.load(Relaxed),
            self.retried.load(Relaxed),
            self.refused.load(Relaxed),
            self.failed.load(Relaxed)
        )
    }
}

const TIMEOUT: Duration = Duration::from_secs(20);

fn open(addr: SocketAddr, from: Option<Ipv4Addr>) -> std::io::Result<TcpStream> {
    let s: TcpStream = match from {
        None => TcpStream::connect_timeout(&addr, TIMEOUT)?,
        Some(ip) => {
            use socket2::{Domain, SockAddr, Socket, Type};
            let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            s.bind(&SockAddr::from(SocketAddr::from((ip, 0))))?;
            s.connect_timeout(&SockAddr::from(addr), TIMEOUT)?;
            s.into()
        }
    };
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// One echo of `msg` over `conn` (opened from `from` when `None`); see the module docs.
pub fn request(
    addr: SocketAddr,
    from: Option<Ipv4Addr>,
    conn: &mut Option<TcpStream>,
    msg: &[u8],
    load: &Load,
) -> Result<(), String> {
    for _ in 0..5 {
        if conn.is_none() {
            match open(addr, from) {
                Ok(s) => {
                    load.new_connections.fetch_add(1, Relaxed);
                    *conn = Some(s);
                }
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    load.refused.fetch_add(1, Relaxed);
                    return Err(format!("connect refused: {e}"));
                }
                Err(e) => return Err(format!("connect: {e}")),
            }
        }
        let s = conn.as_mut().expect("just opened");
        let mut got = vec![0; msg.len()];
        let mut n = 0;
        let sent = s.write_all(msg);
        while sent.is_ok() && n < got.len() {
            match s.read(&mut got[n..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        if n == msg.len() {
            return if got == msg { Ok(()) } else { Err("the echo differs".into()) };
        }
        if n > 0 {
            return Err(format!("the connection ended after {n} of {} bytes", msg.len()));
        }
        load.retried.fetch_add(1, Relaxed);
        *conn = None;
    }
    Err("five connections in a row closed before answering".into())
}

/// Starts `clients` threads (client `i` connecting from `from(i)`), each doing round trips of
/// 100–149 bytes with a new connection every third request, until `load.stop`. Each returns
/// the errors it met.
pub fn start(
    addr: SocketAddr,
    clients: u64,
    from: impl Fn(u64) -> Option<Ipv4Addr>,
    load: &Arc<Load>,
) -> Vec<JoinHandle<Vec<String>>> {
    (0..clients)
        .map(|i| {
            let (load, from) = (load.clone(), from(i));
            std::thread::spawn(move || {
                let mut conn = None;
                let mut k = 0u64;
                let mut errors = Vec::new();
                while !load.stop.load(Relaxed) {
                    k += 1;
                    if k % 3 == 0 {
                        conn = None;
                    }
                    let msg = crate::util::pattern(100 + (k % 50) as usize, i * 1_000_000 + k);
                    match request(addr, from, &mut conn, &msg, &load) {
                        Ok(()) => {
                            load.round_trips.fetch_add(1, Relaxed);
                        }
                        Err(e) => {
                            load.failed.fetch_add(1, Relaxed);
                            errors.push(e);
                            conn = None;
                        }
                    }
                }
                errors
            })
        })
        .collect()
}

/// Stops the clients and gathers their errors.
pub fn finish(load: &Load, clients: Vec<JoinHandle<Vec<String>>>) -> Vec<String> {
    load.stop.store(true, Relaxed);
    clients.into_iter().flat_map(|c| c.join().expect("a load client panicked")).collect()
}
