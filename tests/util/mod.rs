//! Shared helpers for the integration tests: bounded waits, clients with timeouts, and a
//! recorder of handler events.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingpin::{CloseReason, Conn, ConnHandle, IoHandler};
use parking_lot::Mutex;

/// Every blocking client call in the tests gives up after this long.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Polls `cond` every millisecond until it holds; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Connects with read and write timeouts set, so a test can never hang on the socket.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Like [`connect`], from the loopback address `from` (any of 127.0.0.0/8): a second peer
/// address for the per-address limits.
pub fn connect_from(from: std::net::Ipv4Addr, addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, SockAddr, Socket, Type};
    assert!(from.is_loopback(), "tests use loopback addresses only");
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SockAddr::from(SocketAddr::from((from, 0)))).unwrap();
    s.connect_timeout(&SockAddr::from(addr), IO_TIMEOUT).expect("connect");
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads exactly `n` bytes (bounded by the socket's timeout).
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).unwrap_or_else(|e| panic!("read {n} bytes: {e}"));
    buf
}

/// Reads until end of stream (bounded by the socket's timeout).
pub fn read_to_end(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Writes `data` and reads the same number of bytes back, writing on another thread so that
/// neither side can block the other whatever the size.
pub fn echo_round_trip(s: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    let mut writer = s.try_clone().unwrap();
    std::thread::scope(|scope| {
        let w = scope.spawn(|| writer.write_all(data));
        let got = read_n(s, data.len());
        w.join().unwrap().expect("write");
        got
    })
}

/// Deterministic pseudo-random bytes (xorshift), so a failure is reproducible.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What handlers saw, shared between the IO threads and the test.
#[derive(Default)]
pub struct Record {
    pub connects: Mutex<Vec<(usize, ConnHandle)>>,
    pub closes: Mutex<Vec<String>>,
    pub passive: Mutex<usize>,
}

impl Record {
    pub fn new() -> Arc<Self> {
        Arc::new(Record::default())
    }

    pub fn close_reasons(&self) -> Vec<String> {
        self.closes.lock().clone()
    }

    pub fn handles(&self) -> Vec<ConnHandle> {
        self.connects.lock().iter().map(|(_, h)| h.clone()).collect()
    }
}

/// Echo handler that records connects, passive closes and close reasons.
pub struct RecordingEcho(pub Arc<Record>);

impl IoHandler for RecordingEcho {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        let h = conn.handle();
        self.0.connects.lock().push((conn.loop_index(), h));
    }

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }

    fn on_passively_closed(&mut self, _conn: &mut Conn<'_>) {
        *self.0.passive.lock() += 1;
    }

    fn on_closed(&mut self, _conn: &mut Conn<'_>, reason: &CloseReason) {
        self.0.closes.lock().push(reason.to_string());
    }
}
