//! The stress client's hostile connections (`--flooders N`): each a thread that connects,
//! writes `MOVE a0 a1` lines in 16 KiB batches as fast as the socket takes them, reads what
//! the server answers, and connects again as soon as the server closes it — for the whole
//! run. They never say `HELLO`, so the server never pairs one with a player; it refuses their
//! lines and closes each connection after `protocol::MAX_REFUSED` of them (`BYE errors`), or
//! sooner for flooding. The report says how many connections they made, how many the server
//! closed, the most lines one of them had answered before its close, and the slowest close.
//! Against a TLS server they speak TLS too (the handshake is part of their first writes and
//! reads), so that it is the server's line limits they meet, not its handshake.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::stress::TlsClient;

/// How long [`Flood::stop`] waits for every flooder to have been closed by the server once.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What the flooders did.
#[derive(Debug, Clone, Default)]
pub struct FloodReport {
    /// Flooding threads.
    pub flooders: usize,
    /// Connections they made.
    pub connections: u64,
    /// Connections the server closed (end of stream or reset while flooding).
    pub closed: u64,
    /// Of those, how many were told `BYE` first.
    pub byes: u64,
    /// The most `ERR` lines one connection read before the server closed it.
    pub max_answered: u64,
    /// The longest time from connect to the server's close.
    pub slowest_close: Duration,
    /// Bytes they wrote.
    pub bytes: u64,
    /// Flooders the server never closed, even after the run (should be 0).
    pub never_closed: u64,
}

impl fmt::Display for FloodReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "flood            {} flooders made {} connections and sent {:.1} MiB; the server closed {} ({} with BYE), \
             each after at most {} answered lines, the slowest {:.1} ms after its connect",
            self.flooders,
            self.connections,
            self.bytes as f64 / f64::from(1 << 20),
            self.closed,
            self.byes,
            self.max_answered,
            self.slowest_close.as_secs_f64() * 1e3
        )?;
        if self.never_closed > 0 {
            write!(f, "; {} flooders were never closed", self.never_closed)?;
        }
        Ok(())
    }
}

/// Counters shared by the flooding threads.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    give_up: AtomicBool,
    connections: AtomicU64,
    closed: AtomicU64,
    byes: AtomicU64,
    max_answered: AtomicU64,
    slowest_close_us: AtomicU64,
    bytes: AtomicU64,
    never_closed: AtomicU64,
    done: AtomicU64,
}

/// The running flood.
pub struct Flood {
    n: usize,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Flood {
    /// Starts `n` flooders against `addr`, over TLS with `tls`.
    pub fn start(addr: SocketAddr, n: usize, tls: Option<TlsClient>) -> Flood {
        let shared = Arc::new(Shared::default());
        let threads = (0..n)
            .map(|_| {
                let (s, tls) = (shared.clone(), tls.clone());
                std::thread::spawn(move || flooder(addr, tls.as_ref(), &s))
            })
            .collect();
        Flood { n, shared, threads }
    }

    /// Stops the flood once every flooder has been closed by the server at least once (or
    /// after a grace period), and reports.
    pub fn stop(self) -> FloodReport {
        let s = &self.shared;
        s.stop.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + STOP_GRACE;
        while s.done.load(Ordering::Relaxed) < self.n as u64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        s.give_up.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FloodReport {
            flooders: self.n,
            connections: get(&s.connections),
            closed: get(&s.closed),
            byes: get(&s.byes),
            max_answered: get(&s.max_answered),
            slowest_close: Duration::from_micros(get(&s.slowest_close_us)),
            bytes: get(&s.bytes),
            never_closed: get(&s.never_closed),
        }
    }
}

/// How one flooding connection ended.
enum End {
    /// The server closed it, after answering `answered` lines (`bye`: the last was `BYE`).
    Closed { answered: u64, bye: bool },
    /// The flood was stopped first.
    Stopped,
}

/// One flooder: connects, floods, and connects again, until stopped.
fn flooder(addr: SocketAddr, tls: Option<&TlsClient>, s: &Shared) {
    let mut closed_once = false;
    let mut connected_once = false;
    loop {
        let stop = s.stop.load(Ordering::Relaxed);
        if s.give_up.load(Ordering::Relaxed) || (stop && (closed_once || !connected_once)) {
            break;
        }
        let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        connected_once = true;
        s.connections.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let flooded = match tls {
            None => flood_one(stream, s, closed_once),
            Some(tls) => tls.session().and_then(|session| {
                stream.set_nodelay(true)?;
                flood_one(rustls::StreamOwned::new(session, stream), s, closed_once)
            }),
        };
        match flooded {
            Ok(End::Closed { answered, bye }) => {
                closed_once = true;
                s.closed.fetch_add(1, Ordering::Relaxed);
                s.byes.fetch_add(u64::from(bye), Ordering::Relaxed);
                s.max_answered.fetch_max(answered, Ordering::Relaxed);
                let us = started.elapsed().as_micros().min(u64::MAX as u128) as u64;
                s.slowest_close_us.fetch_max(us, Ordering::Relaxed);
            }
            Ok(End::Stopped) | Err(_) => {}
        }
    }
    if !closed_once {
        s.never_closed.fetch_add(1, Ordering::Relaxed);
    }
    s.done.fetch_add(1, Ordering::Relaxed);
}

/// The socket under a flooding connection, plain or TLS.
trait Socket: Read + Write {
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Socket for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref()
    }
}

/// Floods one connection until the server closes it or the flood stops.
fn flood_one(mut stream: impl Socket, s: &Shared, closed_once: bool) -> io::Result<End> {
    const LINE: &[u8] = b"MOVE a0 a1\n";
    let batch: Vec<u8> = LINE.iter().copied().cycle().take((16 << 10) / LINE.len() * LINE.len()).collect();
    stream.tcp().set_read_timeout(Some(Duration::from_millis(20)))?;
    stream.tcp().set_write_timeout(Some(Duration::from_millis(100)))?;
    let (mut pending, mut buf) = (Vec::new(), vec![0u8; 16 << 10]);
    let (mut answered, mut bye) = (0, false);
    let closed = |answered, bye| Ok(End::Closed { answered, bye });
    loop {
        if s.give_up.load(Ordering::Relaxed) || (s.stop.load(Ordering::Relaxed) && closed_once) {
            return Ok(End::Stopped);
        }
        match stream.write(&batch) {
            Ok(n) => {
                s.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(_) => return closed(answered, bye),
        }
        match stream.read(&mut buf) {
            Ok(0) => return closed(answered, bye),
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    answered += u64::from(line.starts_with(b"ERR "));
                    bye |= line.starts_with(b"BYE ");
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(_) => return closed(answered, bye),
        }
    }
}
